/* Raw physical image writer: each present page at pfn * page_size.
 * Consecutive present pages go out in one write (up to 1 MiB) when their
 * slots are adjacent, which they are within a buffer chunk. */
#include "src/core/engine_internal.h"

#define RAW_MAX_RUN_PAGES 256u

static ld_status raw_write(const ld_dump *dump, ld_sink *sink, ld_progress_fn progress,
                           void *progress_arg, ld_write_stats *stats)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    uint64_t ps = info->page_size;
    uint64_t done = 0, total = info->page_count;
    memset(stats, 0, sizeof *stats);

    uint64_t pfn = ld_dump_next_page(dump, 0);
    while (pfn != LDI_NO_PFN) {
        const uint8_t *first = ld_dump_page(dump, pfn);
        if (!first)
            return LD_STATUS_INVALID_DEVICE_STATE; /* present without a copy: the dump changed */
        uint64_t n = 1;
        /* Extend the run while the next page is present and its copy
         * directly follows in memory. */
        while (n < RAW_MAX_RUN_PAGES) {
            const uint8_t *next = ld_dump_page(dump, pfn + n);
            if (!next || next != first + n * ps)
                break;
            n++;
        }
        ld_status st = sink->write(sink, pfn * ps, first, (size_t)(n * ps));
        if (st != LD_STATUS_SUCCESS)
            return st;
        stats->primary_bytes += n * ps;
        done += n;
        if (progress && (done % 4096 < n || done == total))
            progress(progress_arg, "write", done, total);
        pfn = ld_dump_next_page(dump, pfn + n);
    }
    /* The image spans all of physical memory, holes included. */
    stats->file_bytes = info->max_pfn * ps;
    return LD_STATUS_SUCCESS;
}

/* Only pages are written; the holes cost nothing against the limit. */
static uint64_t raw_overhead(const ld_dump_info *info, uint64_t pages)
{
    (void)info;
    (void)pages;
    return 0;
}

static const ld_format raw_format = {
    .version = LD_FORMAT_VERSION,
    .name = "raw",
    .write = raw_write,
    .overhead = raw_overhead,
};

const ld_format *ld_format_raw(void)
{
    return &raw_format;
}

static bool same_name(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && b[i] && a[i] == b[i])
        i++;
    return a[i] == 0 && b[i] == 0;
}

uint64_t ldi_format_overhead(const ld_format *format, const ld_dump_info *info, uint64_t pages)
{
    if (format)
        return format->version >= 2 && format->overhead ? format->overhead(info, pages) : 0;
    /* Not known yet (a deferred capture): the largest built-in bound. */
    const ld_format *const formats[] = {&raw_format, ld_format_dmp(), ld_format_elf()};
    uint64_t worst = 0;
    for (size_t i = 0; i < LDI_ARRAY_SIZE(formats); i++)
        worst = LDI_MAX(worst, formats[i]->overhead(info, pages));
    return worst;
}

const ld_format *ld_format_find(const char *name)
{
    if (!name)
        return 0;
    const ld_format *const formats[] = {&raw_format, ld_format_dmp(), ld_format_elf()};
    for (size_t i = 0; i < LDI_ARRAY_SIZE(formats); i++)
        if (same_name(name, formats[i]->name))
            return formats[i];
    return 0;
}
