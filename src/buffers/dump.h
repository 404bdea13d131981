/* The captured dump: the buffers one live dump fills (primary data in page
 * slots, header data, secondary blobs) and the bitmaps that say which page
 * is where. The engine fills it; writers read it through the public view
 * (livedump/sys/format.h) that dump.c implements. */
#ifndef LDI_DUMP_H
#define LDI_DUMP_H

#include "base.h"
#include "bitmap.h"
#include "pools.h"
#include "livedump/engine.h"
#include "livedump/sys/format.h"

#define LDI_COMMENT_MAX 256

struct ld_dump {
    ld_dump_info info;
    const ld_hal *hal;
    const ld_platform *plat;    /* its memory (the engine's allocator) */
    ld_phys_range *ranges;
    ld_kind_range *kinds;       /* the classification read for this dump */
    size_t kind_count;
    ld_cpu_context *contexts;
    ldi_bitmap slots_map;       /* pages given a slot at allocation (ranked) */
    ldi_bitmap present;         /* pages in the dump: a subset of slots_map + spare */
    ldi_buffers buffers;
    uint64_t slot_pages;        /* slots used by slots_map; spares follow */
    uint64_t *spare_pfn;        /* PFN held by each spare slot */
    uint64_t spare_count, spare_cap;
    uint8_t *secondary;         /* one buffer for every blob */
    uint64_t secondary_cap, secondary_used;
    ld_blob *blobs;
    size_t blob_cap;
    char comment[LDI_COMMENT_MAX];
    ld_result result;           /* the capture's result, for deferred writes */
};

/* A new, empty dump of hal's machine; plat gives its memory. */
ld_dump *ldi_dump_new(const ld_hal *hal, const ld_platform *plat);
void ldi_dump_free(ld_dump *d);
/* Where pfn's copy goes, or NULL. */
void *ldi_dump_slot(ld_dump *d, uint64_t pfn);
/* Give pfn a spare slot (none is allocated: spares were sized before). */
ld_status ldi_dump_spare(ld_dump *d, uint64_t pfn);
/* Pages by kind into res; info.page_count. */
void ldi_dump_count_kinds(ld_dump *d, ld_result *res);

/* The run of pages from the first pfn >= from that is set in `set` (and in
 * `also`, if not NULL), at most max_pages long (0: no limit); with `data`
 * the run also stops where the next page's slot does not directly follow.
 * *first = LDI_NO_PFN when none is left; *slot = the first page's slot
 * (with data; NULL if it has none). The one page-run walk of the engine:
 * the copies (capture.c) and the writers (ld_dump_next_run) use it. */
void ldi_dump_run(const ld_dump *d, const ldi_bitmap *set, const ldi_bitmap *also, uint64_t from,
                  uint64_t max_pages, bool data, uint64_t *first, uint64_t *count, uint8_t **slot);

/* Fill a blob from fn into the secondary buffer: LD_STATUS_BUFFER_TOO_SMALL
 * when cap does not fit what is left, fn's failure otherwise. */
typedef ld_status (*ldi_blob_fill_fn)(void *ctx, void *dst, uint64_t cap, uint64_t *len);
ld_status ldi_dump_add_blob(ld_dump *d, ldi_blob_fill_fn fn, void *ctx, uint64_t cap, const char *name,
                            const uint8_t guid[16]);

#endif
