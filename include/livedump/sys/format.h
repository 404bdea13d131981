/* livedump: for format authors. A format turns a captured dump into bytes
 * for a sink; this header is all it needs: the format table, the read-only
 * view of a captured dump, and one iterator over its runs of pages.
 *
 * The engine captures into buffers: header data (bug check, processor
 * contexts, runs), primary data (the pages of the bitmap) and secondary data
 * (tagged blobs). A writer reads them through the calls below, in file
 * order, and writes through the sink's table (livedump/sys/sink.h). The
 * built-in writers (src/formats/) use nothing else, and no libc, so a
 * kernel-mode build writes the same formats; a third party adds a format
 * the same way, without touching the engine, and passes its table to
 * ld_engine_capture.
 */
#ifndef LIVEDUMP_SYS_FORMAT_H
#define LIVEDUMP_SYS_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/types.h"
#include "livedump/sys/hal.h"
#include "livedump/sys/sink.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the captured dump (read-only view, owned by the engine) ---- */

/* A secondary-data blob from a callout or the HAL. */
typedef struct ld_blob {
    uint8_t guid[16];   /* tag, in Windows in-memory GUID byte order */
    const char *name;   /* the callout's name */
    const void *data;
    uint64_t size;
} ld_blob;

typedef struct ld_dump_info {
    uint32_t page_size;
    uint32_t bugcheck_code;
    uint64_t bugcheck_params[4];
    uint32_t dump_type;       /* ld_dump_type (engine.h) */
    uint32_t add_pages;       /* LD_ADD_* */
    uint32_t flags;           /* LD_FLAG_* */
    const ld_phys_range *ranges; /* the machine's physical RAM ranges */
    size_t range_count;
    uint32_t cpu_count;
    uint32_t capturing_cpu;   /* index into contexts of the processor that took the dump */
    const ld_cpu_context *contexts; /* cpu_count entries */
    const ld_blob *blobs;
    size_t blob_count;
    uint64_t page_count;      /* pages present in the dump */
    uint64_t max_pfn;         /* one past the highest PFN of any range */
    uint64_t system_time;     /* FILETIME at the quiesce, 0 if unknown */
    uint64_t system_uptime;   /* the platform's monotonic clock at the quiesce, in 100 ns
                                 units (time since boot where that clock counts from boot) */
    const char *comment;      /* producer and options, NUL-terminated */
    ld_system_info system;    /* from the HAL's system_info; zeros where unknown */
} ld_dump_info;

LD_EXTERN const ld_dump_info *ld_dump_get_info(const ld_dump *dump);
/* The bytes of a present page, or NULL if the page is not in the dump. */
LD_EXTERN const void *ld_dump_page(const ld_dump *dump, uint64_t pfn);
/* The first present PFN >= pfn, or UINT64_MAX when none is left. */
LD_EXTERN uint64_t ld_dump_next_page(const ld_dump *dump, uint64_t pfn);
/* The kind the page had at the quiesce (LD_PAGE_UNKNOWN outside RAM). */
LD_EXTERN ld_page_kind ld_dump_page_kind(const ld_dump *dump, uint64_t pfn);

/* Present pages among the `count` from first_pfn. */
LD_EXTERN uint64_t ld_dump_count_pages(const ld_dump *dump, uint64_t first_pfn, uint64_t count);
/* The highest present PFN, or UINT64_MAX when the dump holds no page. */
LD_EXTERN uint64_t ld_dump_last_page(const ld_dump *dump);
/* The presence bitmap, `count` 64-bit words from word `first_word` on: bit
 * b of word w says whether PFN 64 * w + b is present (zeros past the end),
 * for formats that store a bitmap (.dmp, kdump). */
LD_EXTERN void ld_dump_bitmap_words(const ld_dump *dump, uint64_t first_word, uint64_t *words, size_t count);
/* Memory for a writer's own buffers, from the platform the dump was
 * captured with (a kernel build has no malloc); NULL on failure. Free it
 * with ld_dump_free_memory. */
LD_EXTERN void *ld_dump_alloc_memory(const ld_dump *dump, size_t bytes);
LD_EXTERN void ld_dump_free_memory(const ld_dump *dump, void *mem);

/* A run of consecutive present pages, from first_pfn on. */
typedef struct ld_page_run {
    uint64_t first_pfn;
    uint64_t count;
    const uint8_t *data; /* LD_RUN_DATA: the run's copies, count * page_size bytes */
} ld_page_run;

/* What makes a run: */
#define LD_RUN_PRESENCE 0u /* consecutive present pages (a layout: PT_LOAD, LiME range, ...) */
#define LD_RUN_DATA     1u /* ... whose copies also lie back to back in memory (one write) */

/* The first run at or after pfn, at most max_pages long (0: no limit), in
 * `run`; false when no present page is left. Every writer walks a dump so:
 *
 *     ld_page_run r;
 *     for (uint64_t pfn = 0; ld_dump_next_run(d, pfn, max, LD_RUN_DATA, &r);
 *          pfn = r.first_pfn + r.count)
 *         write r.count pages from r.data;
 *
 * With LD_RUN_DATA a page reported present without a copy (which the
 * engine never produces) gives a run with data NULL; writers refuse it
 * with LD_STATUS_INVALID_DEVICE_STATE. */
LD_EXTERN bool ld_dump_next_run(const ld_dump *dump, uint64_t pfn, uint64_t max_pages, uint32_t flags,
                                ld_page_run *run);

/* ---- format writers ---- */
typedef struct ld_write_stats {
    uint64_t header_bytes;
    uint64_t primary_bytes;
    uint64_t secondary_bytes;
    uint64_t file_bytes; /* size of the file (holes included) */
} ld_write_stats;

/* Version 2 added `overhead`; a version 1 format has no such field. The
 * engine refuses (LD_STATUS_INVALID_PARAMETER) a format of another
 * version. */
#define LD_FORMAT_VERSION 2

struct ld_format {
    uint32_t version; /* LD_FORMAT_VERSION, or 1 */
    const char *name; /* "raw", ... */
    /* Write the whole dump to sink (not finishing it); fill stats. */
    ld_status (*write)(const ld_dump *dump, ld_sink *sink, ld_progress_fn progress,
                       void *progress_arg, ld_write_stats *stats);
    /* Optional (version >= 2, may be NULL = 0): an upper bound of the bytes
     * the format writes beyond the page data, the blob data and the
     * processor contexts, for a dump of `pages` pages. The engine calls it
     * while sizing, so that a dump file size limit leaves room for the
     * format's own headers. Then info->blobs is NULL and info->blob_count
     * an upper bound of the blobs; the other layout fields (page_size,
     * ranges, max_pfn, cpu_count, system) are final. It must not decrease
     * when pages grows. */
    uint64_t (*overhead)(const ld_dump_info *info, uint64_t pages);
};

#ifdef __cplusplus
}
#endif
#endif
