/* /proc/kcore: an ELF64 core whose PT_LOADs map kernel virtual ranges to
 * file offsets. The direct-map segments (KCORE_RAM) carry the physical
 * address in p_paddr; the kernel-text segment, vmalloc, vmemmap and module
 * segments are skipped (text has a p_vaddr in the kernel-image map, the
 * others p_paddr = -1). Every field is checked before use: a malformed or
 * hostile file gives LD_LINUX_BAD_KCORE, never a wild read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

#define EHDR_SIZE 64u
#define PHDR_SIZE 56u
#define PN_XNUM 0xffffu
#define MAX_PHNUM 65536u            /* kcore has a few dozen; more is not a kernel's */
#define MAX_NOTES_BYTES (1u << 20)  /* kcore's notes are a few KiB */
#define PT_LOAD 1u
#define PT_NOTE 4u
#define KERNEL_TEXT_MAP 0xffffffff80000000ull /* __START_KERNEL_map (x86-64) */

uint64_t ldl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int cmp_seg(const void *a, const void *b)
{
    const ldl_segment *x = a, *y = b;
    return x->first_pfn < y->first_pfn ? -1 : x->first_pfn > y->first_pfn;
}

/* Keep the VMCOREINFO note (name "VMCOREINFO", type 0): its text goes
 * verbatim into the ELF dump, for makedumpfile, drgn and crash. */
static ld_status parse_notes(ld_linux *lx, const uint8_t *buf, uint64_t len, ld_error *err)
{
    uint64_t pos = 0;
    while (len - pos >= 12) {
        uint32_t namesz = le32(buf + pos), descsz = le32(buf + pos + 4), type = le32(buf + pos + 8);
        if (namesz == 0 && descsz == 0)
            break; /* the kernel's end-of-notes marker */
        uint64_t name_off = pos + 12;
        uint64_t desc_off = name_off + (((uint64_t)namesz + 3) & ~3ull);
        uint64_t next = desc_off + (((uint64_t)descsz + 3) & ~3ull);
        if (desc_off > len || next > len || desc_off + descsz > len)
            return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                            "/proc/kcore: a note at +%llu runs past its PT_NOTE", (unsigned long long)pos);
        if (namesz == sizeof "VMCOREINFO" && type == 0 && !memcmp(buf + name_off, "VMCOREINFO", namesz) &&
            !lx->vmcoreinfo && descsz > 0) {
            lx->vmcoreinfo = malloc(descsz + 1);
            if (!lx->vmcoreinfo)
                return ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
            memcpy(lx->vmcoreinfo, buf + desc_off, descsz);
            lx->vmcoreinfo[descsz] = 0;
            lx->vmcoreinfo_size = descsz;
        }
        pos = next;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ldl_kcore_parse(ld_linux *lx, const char *path, ld_error *err)
{
    int fd = lx->kcore_fd;
    uint8_t eh[EHDR_SIZE];
    if (ldu_pread_all(fd, eh, sizeof eh, 0) != LD_STATUS_SUCCESS)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: cannot read the ELF header: %s", path,
                        errno ? strerror(errno) : "file too short");
    if (memcmp(eh, "\177ELF", 4) || eh[4] != 2 || eh[5] != 1)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                        "%s: not a little-endian ELF64 file", path);
    if (le16(eh + 16) != 4)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: not an ELF core (e_type %u)", path,
                        le16(eh + 16));
    uint64_t phoff = le64(eh + 32);
    uint64_t phnum = le16(eh + 56);
    if (le16(eh + 54) != PHDR_SIZE)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: e_phentsize %u, not %u", path,
                        le16(eh + 54), PHDR_SIZE);
    if (phnum == PN_XNUM) {
        /* the real count is in section header 0 */
        uint64_t shoff = le64(eh + 40);
        uint8_t sh[64];
        if (le16(eh + 58) != 64 || ldu_pread_all(fd, sh, sizeof sh, shoff) != LD_STATUS_SUCCESS)
            return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                            "%s: PN_XNUM without a readable section header", path);
        phnum = le32(sh + 44);
    }
    if (phnum == 0 || phnum > MAX_PHNUM || phoff < EHDR_SIZE || phoff > (uint64_t)INT64_MAX / 2)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                        "%s: implausible program headers (%llu at offset %llu)", path, (unsigned long long)phnum,
                        (unsigned long long)phoff);
    uint8_t *ph = malloc(phnum * PHDR_SIZE);
    lx->segs = calloc(phnum, sizeof *lx->segs);
    if (!ph || !lx->segs) {
        free(ph);
        return ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    }
    if (ldu_pread_all(fd, ph, phnum * PHDR_SIZE, phoff) != LD_STATUS_SUCCESS) {
        free(ph);
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: program headers past the end", path);
    }

    /* The kernel sizes /proc/kcore to cover every segment (its size is the
     * data offset plus the highest segment end), so a segment past the end
     * is not the kernel's: a file size of 0 (unknown) checks nothing. */
    struct stat sb;
    uint64_t file_size = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    ld_status st = LD_STATUS_SUCCESS;
    uint64_t ps = lx->page_size;
    bool any_paddr = false, base_set = false;
    size_t loads = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *p = ph + i * PHDR_SIZE;
        if (le32(p) == PT_LOAD) {
            loads++;
            any_paddr |= le64(p + 24) != 0;
        }
    }
    if (loads > 1 && !any_paddr) {
        free(ph);
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                        "%s: no PT_LOAD has a physical address (kernels before 4.11 do not give them)", path);
    }
    for (uint64_t i = 0; i < phnum && st == LD_STATUS_SUCCESS; i++) {
        const uint8_t *p = ph + i * PHDR_SIZE;
        uint32_t type = le32(p);
        uint64_t off = le64(p + 8), vaddr = le64(p + 16), paddr = le64(p + 24), filesz = le64(p + 32);
        if (type == PT_NOTE) {
            if (filesz > MAX_NOTES_BYTES) {
                st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: PT_NOTE of %llu bytes", path,
                              (unsigned long long)filesz);
                break;
            }
            uint8_t *notes = malloc(filesz ? filesz : 1);
            if (!notes) {
                st = ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
                break;
            }
            if (ldu_pread_all(fd, notes, filesz, off) != LD_STATUS_SUCCESS)
                st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: PT_NOTE past the end", path);
            else
                st = parse_notes(lx, notes, filesz, err);
            free(notes);
            continue;
        }
        if (type != PT_LOAD || paddr == UINT64_MAX || filesz == 0)
            continue; /* vmalloc, modules, vmemmap, user: no physical address */
        if (vaddr >= KERNEL_TEXT_MAP) {
            lx->kernel_text_va = vaddr; /* the kernel image, mapped a second time */
            continue;
        }
        if (off > (uint64_t)INT64_MAX || filesz > (uint64_t)INT64_MAX - off || paddr > UINT64_MAX - filesz ||
            vaddr < paddr) {
            st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                          "%s: PT_LOAD %llu has an impossible range", path, (unsigned long long)i);
            break;
        }
        if (file_size && off + filesz > file_size) {
            st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                          "%s: PT_LOAD %llu (%llu bytes at offset %llu) runs past the end of the file (%llu bytes)",
                          path, (unsigned long long)i, (unsigned long long)filesz, (unsigned long long)off,
                          (unsigned long long)file_size);
            break;
        }
        /* Every direct-map segment has vaddr = PAGE_OFFSET + paddr. */
        uint64_t base = vaddr - paddr;
        if (!base_set) {
            lx->direct_map_base = base;
            base_set = true;
        } else if (base != lx->direct_map_base) {
            st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                          "%s: RAM segments disagree on the direct-map base (0x%llx, 0x%llx)", path,
                          (unsigned long long)lx->direct_map_base, (unsigned long long)base);
            break;
        }
        /* Whole pages only: round the start up and the end down (paddr +
         * filesz - 1 cannot wrap: checked above). */
        uint64_t first, end;
        ldl_whole_pages(paddr, paddr + filesz - 1, ps, &first, &end);
        if (end <= first)
            continue;
        ldl_segment *s = &lx->segs[lx->seg_count++];
        s->first_pfn = first;
        s->page_count = end - first;
        s->file_offset = off + (first * ps - paddr);
    }
    free(ph);
    if (st != LD_STATUS_SUCCESS)
        return st;
    if (lx->seg_count == 0)
        return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT, "%s: no direct-map RAM segment", path);
    qsort(lx->segs, lx->seg_count, sizeof *lx->segs, cmp_seg);
    for (size_t i = 1; i < lx->seg_count; i++)
        if (lx->segs[i].first_pfn < lx->segs[i - 1].first_pfn + lx->segs[i - 1].page_count)
            return ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_FILE_CORRUPT,
                            "%s: RAM segments overlap at physical 0x%llx", path,
                            (unsigned long long)(lx->segs[i].first_pfn * ps));
    lx->stats.kcore_ram_segments = lx->seg_count;
    lx->stats.direct_map_base = lx->direct_map_base;
    lx->stats.vmcoreinfo_bytes = lx->vmcoreinfo_size;
    return LD_STATUS_SUCCESS;
}

static const ldl_segment *find_seg(const ld_linux *lx, uint64_t pfn)
{
    size_t i = ld_range_find(lx->segs, lx->seg_count, sizeof *lx->segs, pfn);
    return i < lx->seg_count ? &lx->segs[i] : NULL;
}

ld_status ldl_read_pages(ld_linux *lx, uint64_t pfn, uint64_t count, void *dst)
{
    uint8_t *out = dst;
    uint64_t t0 = ldl_now_ns();
    if (count > SIZE_MAX / lx->page_size)
        return LD_STATUS_INVALID_PARAMETER; /* no buffer holds it: count * page size would wrap */
    while (count) {
        const ldl_segment *s = find_seg(lx, pfn);
        if (!s)
            return LD_STATUS_INVALID_PARAMETER; /* not RAM: never read */
        uint64_t n = s->first_pfn + s->page_count - pfn;
        if (n > count)
            n = count;
        uint64_t bytes = n * lx->page_size;
        ld_status st = ldu_pread_all(lx->kcore_fd, out, bytes, s->file_offset + (pfn - s->first_pfn) * lx->page_size);
        if (st != LD_STATUS_SUCCESS)
            /* EFAULT: kcore cannot read that page; as past the end */
            return errno == EFAULT ? LD_STATUS_END_OF_FILE : st;
        lx->stats.bytes_read += bytes;
        out += bytes;
        pfn += n;
        count -= n;
    }
    lx->stats.read_ns += ldl_now_ns() - t0;
    return LD_STATUS_SUCCESS;
}
