/* Raw physical image writer: each present page at pfn * page_size; absent
 * pages and gaps are holes. A run of present pages whose copies lie back
 * to back goes out in one write (up to 1 MiB). */
#include "format_base.h"

#define RAW_MAX_RUN_PAGES 256u

static ld_status raw_write(const ld_dump *dump, ld_sink *sink, ld_progress_fn progress,
                           void *progress_arg, ld_write_stats *stats)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    uint64_t ps = info->page_size;
    uint64_t done = 0, total = info->page_count;
    memset(stats, 0, sizeof *stats);
    ld_page_run r;
    for (uint64_t pfn = 0; ld_dump_next_run(dump, pfn, RAW_MAX_RUN_PAGES, LD_RUN_DATA, &r); pfn = r.first_pfn + r.count) {
        if (!r.data)
            return LD_STATUS_INVALID_DEVICE_STATE; /* present without a copy: the dump changed */
        ld_sink_cursor at = {sink, r.first_pfn * ps};
        ld_status st = ld_sink_put(&at, r.data, r.count * ps);
        if (st != LD_STATUS_SUCCESS)
            return st;
        stats->primary_bytes += r.count * ps;
        done += r.count;
        if (progress && (done % 4096 < r.count || done == total) &&
            (st = progress(progress_arg, "write", done, total)) != LD_STATUS_SUCCESS)
            return st; /* the caller said stop */
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
