/* Dump buffers: the primary data (one page slot per captured page), taken
 * from the HAL's buffer pools in 2 MiB chunks before the quiesce, in the
 * pool order of event 113. */
#ifndef LDI_POOLS_H
#define LDI_POOLS_H

#include "base.h"
#include "livedump/sys/hal.h"

#define LDI_CHUNK_PAGES 512u

typedef struct ldi_chunk {
    void *mem;
    uint64_t bytes;
    uint32_t pool; /* ld_pool, or LD_POOL_COUNT for platform memory */
} ldi_chunk;

typedef struct ldi_buffers {
    ldi_chunk *chunks;
    uint64_t chunk_count;
    uint64_t slots;                      /* page slots available */
    uint64_t pool_pages[LD_POOL_COUNT];  /* event 113 */
    uint32_t page_size;
} ldi_buffers;

/* What allocation ran into, for events 115/116. */
typedef struct ldi_pool_report {
    ld_status vm_open_status;   /* failure opening the VM memory partition (115) */
    ld_status vm_alloc_status;  /* failure allocating from it (116) */
} ldi_pool_report;

/* Allocate up to `pages` slots. Returns success with fewer slots when the
 * pools run dry (the caller decides: partial dump or abort), or a failure
 * for an error that is not exhaustion. use_io_space false skips the two
 * IO-space pools. */
/* plat: where the chunk table and, without HAL pools, the buffers come from. */
ld_status ldi_buffers_alloc(ldi_buffers *b, const ld_hal *hal, const ld_platform *plat, uint64_t pages, bool use_io_space,
                            ldi_pool_report *report);
void ldi_buffers_free(ldi_buffers *b, const ld_hal *hal, const ld_platform *plat);

static inline void *ldi_buffers_slot(const ldi_buffers *b, uint64_t slot)
{
    const ldi_chunk *c = &b->chunks[slot / LDI_CHUNK_PAGES];
    return (uint8_t *)c->mem + (slot % LDI_CHUNK_PAGES) * b->page_size;
}

#endif
