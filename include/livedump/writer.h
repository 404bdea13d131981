/* livedump: captured dumps, format writers and sinks.
 *
 * The engine captures into buffers: header data (bug check, processor
 * contexts, runs), primary data (the pages of the bitmap) and secondary data
 * (tagged blobs). A format writer (raw image, Windows .dmp, ELF vmcore, ...)
 * turns an ld_dump into bytes for an ld_sink. Writers are part of the core:
 * they use no libc, so a kernel-mode build writes the same formats.
 */
#ifndef LIVEDUMP_WRITER_H
#define LIVEDUMP_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/hal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sinks: where the bytes go ----
 * A sink takes positioned writes (a writer may leave holes, which a file
 * sink keeps sparse), then exactly one of finish or abort, which also frees
 * it. finish(size) makes the result durable and visible with `size` bytes;
 * abort discards everything written. */
#define LD_SINK_VERSION 1

typedef struct ld_sink ld_sink;
struct ld_sink {
    uint32_t version;
    void *ctx;
    ld_status (*write)(ld_sink *sink, uint64_t offset, const void *buf, size_t len);
    ld_status (*finish)(ld_sink *sink, uint64_t size);
    void (*abort)(ld_sink *sink);
};

/* Progress of long work: `phase` names it ("mirror", "copy", "write"). */
typedef void (*ld_progress_fn)(void *arg, const char *phase, uint64_t done, uint64_t total);

/* ---- the captured dump (read-only view, owned by the engine) ---- */
typedef struct ld_dump ld_dump;

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

/* ---- format writers ---- */
typedef struct ld_write_stats {
    uint64_t header_bytes;
    uint64_t primary_bytes;
    uint64_t secondary_bytes;
    uint64_t file_bytes; /* size of the file (holes included) */
} ld_write_stats;

/* Version 2 added `overhead`; a version 1 format has no such field. */
#define LD_FORMAT_VERSION 2

typedef struct ld_format {
    uint32_t version;
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
} ld_format;

/* Raw physical image: every present page at offset pfn * page_size, holes
 * (absent pages, gaps between ranges) left unwritten. No header, no
 * secondary data: it is the simplest proof that the right bytes were
 * captured, and what `dd` of /dev/mem would give. */
LD_EXTERN const ld_format *ld_format_raw(void);
/* Windows 64-bit kernel dump (.dmp, "PAGEDU64"): a bitmap dump (DumpType 5)
 * of the present pages, or a full dump (DumpType 1) when every page of every
 * physical range is present and the ranges fit the header; secondary data
 * (blobs and every processor's context) after the pages. Page size 4 KiB.
 * Layout: docs/dmp-format.md; reader: livedump/dmp.h. */
LD_EXTERN const ld_format *ld_format_dmp(void);
/* ELF vmcore (ET_CORE), the layout of Linux's /proc/vmcore: NT_PRSTATUS per
 * processor and the kernel's VMCOREINFO note, one PT_LOAD per run of
 * captured pages (p_paddr physical, p_vaddr in the direct map). crash, drgn,
 * libkdumpfile and makedumpfile open it. Secondary data is not stored. */
LD_EXTERN const ld_format *ld_format_elf(void);
/* A built-in format by name ("raw", "dmp", "elf"), or NULL. */
LD_EXTERN const ld_format *ld_format_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
