/* Page kinds from /proc/kpageflags (one u64 per PFN) and /proc/iomem's
 * kernel image ranges, in the spirit of makedumpfile's dump levels
 * (docs/linux.md has the table):
 *
 *   no struct page, hwpoisoned, logically offline  -> io-space (never read)
 *   "Kernel code/rodata/data/bss"                  -> kernel-image (required)
 *   buddy (free)                                   -> free
 *   slab                                           -> kernel-other
 *   page table                                     -> page-tables
 *   anonymous (not slab), hugetlbfs                -> user
 *   LRU or swap cache, not anonymous               -> file-cache
 *   reserved, anything else                        -> kernel-other
 *   content all zero (optional scan)               -> zero
 *
 * The kernel's KPF_ZERO_PAGE flag marks the shared zero page, not pages
 * whose content is zero, so zero pages are found by reading them. Flags and
 * content race with the running kernel: a page seen free may be reused
 * before the copy (its new content is then missing from the dump), a page
 * seen in use and then freed is still copied. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#define KPF_LRU 5
#define KPF_SLAB 7
#define KPF_BUDDY 10
#define KPF_ANON 12
#define KPF_SWAPCACHE 13
#define KPF_HUGE 17
#define KPF_HWPOISON 19
#define KPF_NOPAGE 20
#define KPF_OFFLINE 23
#define KPF_PGTABLE 26
#define KPF_RESERVED 32
#define BIT(n) (1ull << (n))

#define FLAGS_CHUNK 4096u

static ld_page_kind kind_of_flags(uint64_t f)
{
    if (f & (BIT(KPF_NOPAGE) | BIT(KPF_HWPOISON) | BIT(KPF_OFFLINE)))
        return LD_PAGE_IO_SPACE;
    if (f & BIT(KPF_BUDDY))
        return LD_PAGE_FREE;
    if (f & BIT(KPF_SLAB))
        return LD_PAGE_KERNEL_OTHER;
    if (f & BIT(KPF_PGTABLE))
        return LD_PAGE_PAGE_TABLES;
    if ((f & BIT(KPF_ANON)) || (f & BIT(KPF_HUGE)))
        return LD_PAGE_USER;
    if (f & (BIT(KPF_LRU) | BIT(KPF_SWAPCACHE)))
        return LD_PAGE_FILE_CACHE;
    return LD_PAGE_KERNEL_OTHER; /* reserved and the rest of the kernel */
}

typedef struct run_list {
    ld_kind_range *runs;
    size_t count, cap;
} run_list;

static int add_page(run_list *l, uint64_t pfn, ld_page_kind kind)
{
    if (l->count) {
        ld_kind_range *last = &l->runs[l->count - 1];
        if (last->kind == (uint32_t)kind && last->first_pfn + last->page_count == pfn) {
            last->page_count++;
            return 0;
        }
    }
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        ld_kind_range *r = realloc(l->runs, cap * sizeof *r);
        if (!r)
            return -1;
        l->runs = r;
        l->cap = cap;
    }
    l->runs[l->count++] = (ld_kind_range){pfn, 1, (uint32_t)kind};
    return 0;
}

/* Any byte of the page in a kernel image range: compared as pfns, so no
 * address computation can wrap. */
static bool in_image(const ld_linux *lx, uint64_t pfn)
{
    for (size_t i = 0; i < lx->iomem.image_count; i++)
        if (pfn >= lx->iomem.image[i].start / lx->page_size && pfn <= lx->iomem.image[i].last / lx->page_size)
            return true;
    return false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < n / 8; i++)
        if (w[i])
            return false;
    return true;
}

ld_status ldl_classify(ld_linux *lx)
{
    run_list l = {0};
    uint64_t *flags = malloc(FLAGS_CHUNK * sizeof *flags);
    uint8_t *pages = lx->scan_zero ? malloc((size_t)LDL_SCRATCH_PAGES * lx->page_size) : NULL;
    ld_page_kind *kinds = malloc(FLAGS_CHUNK * sizeof *kinds);
    ld_status st = LD_STATUS_SUCCESS;
    if (!flags || !kinds || (lx->scan_zero && !pages)) {
        st = LD_STATUS_NO_MEMORY;
        goto out;
    }
    bool flags_ok = lx->kpageflags_fd >= 0;
    uint64_t done = 0, total = lx->stats.ram_pages;
    for (size_t r = 0; r < lx->range_count && st == LD_STATUS_SUCCESS; r++) {
        uint64_t pfn = lx->ranges[r].first_pfn, left = lx->ranges[r].page_count;
        while (left && st == LD_STATUS_SUCCESS) {
            uint64_t n = left < FLAGS_CHUNK ? left : FLAGS_CHUNK;
            size_t got = 0;
            if (flags_ok) {
                ssize_t rd;
                do
                    rd = pread(lx->kpageflags_fd, flags, n * 8, (off_t)(pfn * 8));
                while (rd < 0 && errno == EINTR);
                got = rd > 0 ? (size_t)rd / 8 : 0; /* past max_pfn: EOF, those pages are unknown */
            }
            for (uint64_t i = 0; i < n; i++) {
                ld_page_kind k = i < got ? kind_of_flags(flags[i]) : LD_PAGE_KERNEL_OTHER;
                /* the kernel image is required whatever its flags say,
                 * unless the page cannot be read at all */
                if (k != LD_PAGE_IO_SPACE && in_image(lx, pfn + i))
                    k = LD_PAGE_KERNEL_IMAGE;
                kinds[i] = k;
            }
            if (lx->scan_zero) {
                for (uint64_t i = 0; i < n && st == LD_STATUS_SUCCESS; i += LDL_SCRATCH_PAGES) {
                    uint64_t m = n - i < LDL_SCRATCH_PAGES ? n - i : LDL_SCRATCH_PAGES;
                    bool wanted = false;
                    for (uint64_t j = 0; j < m; j++)
                        wanted |= kinds[i + j] != LD_PAGE_IO_SPACE && kinds[i + j] != LD_PAGE_FREE &&
                                  kinds[i + j] != LD_PAGE_KERNEL_IMAGE;
                    if (!wanted)
                        continue;
                    /* read only between unreadable pages. Zero now, not
                     * at the dump instant: a page written later is lost,
                     * as the engine never reads unselected pages again
                     * (docs/linux.md) */
                    for (uint64_t j = 0; j < m && st == LD_STATUS_SUCCESS;) {
                        if (kinds[i + j] == LD_PAGE_IO_SPACE) {
                            j++;
                            continue;
                        }
                        uint64_t e = j;
                        while (e < m && kinds[i + e] != LD_PAGE_IO_SPACE)
                            e++;
                        st = ldl_read_pages(lx, pfn + i + j, e - j, pages);
                        for (uint64_t q = j; st == LD_STATUS_SUCCESS && q < e; q++) {
                            ld_page_kind *k = &kinds[i + q];
                            if (*k != LD_PAGE_FREE && *k != LD_PAGE_KERNEL_IMAGE &&
                                all_zero(pages + (q - j) * lx->page_size, lx->page_size))
                                *k = LD_PAGE_ZERO;
                        }
                        j = e;
                    }
                }
            }
            for (uint64_t i = 0; i < n; i++)
                if (add_page(&l, pfn + i, kinds[i])) {
                    st = LD_STATUS_NO_MEMORY;
                    break;
                }
            pfn += n;
            left -= n;
            /* every 256 MiB of 4 KiB pages (FLAGS_CHUNK divides it), and the end */
            done += n;
            /* The caller may stop a long classification (a cancel). */
            if (lx->progress && st == LD_STATUS_SUCCESS && (done % (FLAGS_CHUNK * 16) < n || done == total))
                st = lx->progress(lx->progress_arg, "classify", done, total);
        }
    }
out:
    free(flags);
    free(pages);
    free(kinds);
    if (st != LD_STATUS_SUCCESS) {
        free(l.runs);
        return st;
    }
    free(lx->kinds);
    lx->kinds = l.runs;
    lx->kind_count = l.count;
    memset(lx->stats.pages_by_kind, 0, sizeof lx->stats.pages_by_kind);
    for (size_t i = 0; i < l.count; i++)
        lx->stats.pages_by_kind[l.runs[i].kind] += l.runs[i].page_count;
    lx->stats.kpageflags_used = lx->kpageflags_fd >= 0;
    return LD_STATUS_SUCCESS;
}
