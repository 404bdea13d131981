/* /proc/iomem: "START-END : NAME" per resource, hex, END inclusive, nested
 * resources indented by two spaces per level. We keep the top-level
 * "System RAM" ranges (to cross-check kcore's RAM segments) and the kernel
 * image ranges nested in them ("Kernel code", "Kernel rodata", "Kernel
 * data", "Kernel bss"). Without CAP_SYS_ADMIN every address reads 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#define MAX_RANGES 65536u

static int parse_hex(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    int digits = 0;
    for (;; p++, digits++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            break;
        if (digits >= 16)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    if (!digits)
        return -1;
    *s = p;
    *out = v;
    return 0;
}

static int push(ldl_iomem_range **arr, size_t *n, uint64_t start, uint64_t end_inclusive)
{
    if (*n >= MAX_RANGES)
        return -1;
    ldl_iomem_range *a = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!a)
        return -1;
    *arr = a;
    a[*n].start = start;
    a[*n].last = end_inclusive;
    (*n)++;
    return 0;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && !memcmp(name, want, len);
}

void ldl_iomem_free(ldl_iomem *io)
{
    free(io->ram);
    free(io->image);
    memset(io, 0, sizeof *io);
}

ld_status ldl_iomem_parse(const char *path, ldl_iomem *out, ld_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = ldl_open_file(path);
    if (fd == LDU_NOT_REGULAR)
        return ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_INVALID_PARAMETER,
                        "%s: not a regular file (a FIFO or device?): /proc/iomem is one", path);
    FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
    if (!f) {
        int e = errno; /* before close can change it */
        if (fd >= 0)
            close(fd);
        ld_status st = ldu_errno_status(e);
        return ldl_fail_os(err, st == LD_STATUS_ACCESS_DENIED ? LD_LINUX_NOT_PERMITTED : LD_LINUX_BAD_IOMEM, st, e,
                           "%s: %s", path, strerror(e));
    }
    char line[512];
    unsigned lineno = 0, entries = 0, nonzero = 0;
    ld_status st = LD_STATUS_SUCCESS;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT, "%s:%u: line too long", path, lineno);
            break;
        }
        const char *p = line;
        unsigned indent = 0;
        while (*p == ' ')
            p++, indent++;
        uint64_t start, end;
        if (parse_hex(&p, &start) || *p++ != '-' || parse_hex(&p, &end) || strncmp(p, " : ", 3)) {
            st = ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT, "%s:%u: not 'START-END : NAME'", path,
                          lineno);
            break;
        }
        const char *name = p + 3;
        size_t len = strcspn(name, "\n");
        entries++;
        if (start || end)
            nonzero++;
        if (end < start) {
            st = ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT, "%s:%u: end before start", path, lineno);
            break;
        }
        int bad = 0;
        if (indent == 0 && name_is(name, len, "System RAM"))
            bad = push(&out->ram, &out->ram_count, start, end);
        else if (indent > 0 && (name_is(name, len, "Kernel code") || name_is(name, len, "Kernel rodata") ||
                                name_is(name, len, "Kernel data") || name_is(name, len, "Kernel bss")))
            bad = push(&out->image, &out->image_count, start, end);
        if (bad) {
            st = ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "%s: too many ranges", path);
            break;
        }
    }
    fclose(f);
    if (st == LD_STATUS_SUCCESS && entries > 0 && nonzero == 0) {
        out->all_zero = true;
        st = ldl_fail(err, LD_LINUX_IOMEM_HIDDEN, LD_STATUS_ACCESS_DENIED,
                      "%s shows every address as 0: reading physical ranges needs CAP_SYS_ADMIN (run as root)", path);
    } else if (st == LD_STATUS_SUCCESS && out->ram_count == 0) {
        st = ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT, "%s: no 'System RAM' range", path);
    }
    if (st != LD_STATUS_SUCCESS) {
        bool zero = out->all_zero;
        ldl_iomem_free(out);
        out->all_zero = zero;
    }
    return st;
}
