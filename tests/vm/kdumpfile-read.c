/* Reads a dump with libkdumpfile, the reader crash's ecosystem shares:
 * prints what it recognised, then the bytes at the given physical
 * addresses (machine physical: no page tables involved) into OUT.
 *   kdumpfile-read DUMP OUT PADDR LEN [PADDR LEN]...
 * Exit 0 only if every range was read in full. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libkdumpfile/kdumpfile.h>

static void print_attr(kdump_ctx_t *ctx, const char *key)
{
    const char *s;
    kdump_num_t n;
    if (kdump_get_string_attr(ctx, key, &s) == KDUMP_OK)
        printf("%s = %s\n", key, s);
    else if (kdump_get_number_attr(ctx, key, &n) == KDUMP_OK)
        printf("%s = %" PRIu64 "\n", key, (uint64_t)n);
    else
        printf("%s = (none: %s)\n", key, kdump_get_err(ctx));
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: kdumpfile-read DUMP OUT PADDR LEN [PADDR LEN]...\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    kdump_ctx_t *ctx = kdump_new();
    if (!ctx || kdump_open_fd(ctx, fd) != KDUMP_OK) {
        fprintf(stderr, "libkdumpfile cannot open %s: %s\n", argv[1], ctx ? kdump_get_err(ctx) : "no memory");
        return 1;
    }
    print_attr(ctx, KDUMP_ATTR_FILE_FORMAT);
    print_attr(ctx, KDUMP_ATTR_ARCH_NAME);
    print_attr(ctx, KDUMP_ATTR_PAGE_SIZE);
    print_attr(ctx, KDUMP_ATTR_NUM_CPUS);
    print_attr(ctx, "linux.vmcoreinfo.lines.OSRELEASE");
    print_attr(ctx, "linux.phys_base");
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    int bad = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        uint64_t addr = strtoull(argv[i], NULL, 0);
        size_t len = strtoull(argv[i + 1], NULL, 0), got = len;
        unsigned char *buf = calloc(1, len ? len : 1);
        if (!buf || kdump_read(ctx, KDUMP_MACHPHYSADDR, addr, buf, &got) != KDUMP_OK || got != len) {
            fprintf(stderr, "read 0x%" PRIx64 "+0x%zx: %s (got %zu)\n", addr, len, kdump_get_err(ctx), got);
            bad = 1;
        }
        fwrite(buf, 1, len, out);
        free(buf);
    }
    fclose(out);
    kdump_free(ctx);
    close(fd);
    printf("read %d ranges: %s\n", (argc - 3) / 2, bad ? "FAILED" : "ok");
    return bad;
}
