/* Dump buffer allocation from the HAL pools. */
#include "pools.h"

static bool pool_usable(const ld_hal *hal, ld_pool pool, bool use_io_space, ldi_pool_report *rep)
{
    if (!use_io_space && (pool == LD_POOL_VM_PARTITION_IO_SPACE || pool == LD_POOL_SYSTEM_PARTITION_IO_SPACE))
        return false;
    ld_status st = hal->pool_open(hal->ctx, pool);
    if (st == LD_STATUS_SUCCESS)
        return true;
    /* NOT_SUPPORTED means the pool does not exist here: not an error. */
    if (st != LD_STATUS_NOT_SUPPORTED && pool == LD_POOL_VM_PARTITION && rep->vm_open_status == 0)
        rep->vm_open_status = st;
    return false;
}

ld_status ldi_buffers_alloc(ldi_buffers *b, const ld_hal *hal, const ld_platform *plat, uint64_t pages, bool use_io_space,
                            ldi_pool_report *report)
{
    memset(b, 0, sizeof *b);
    memset(report, 0, sizeof *report);
    b->page_size = hal->page_size;
    uint64_t want_chunks = (pages + LDI_CHUNK_PAGES - 1) / LDI_CHUNK_PAGES;
    if (want_chunks == 0)
        return LD_STATUS_SUCCESS;
    if (want_chunks > SIZE_MAX / sizeof(ldi_chunk))
        return LD_STATUS_NO_MEMORY;
    b->chunks = plat->alloc(plat->ctx, (size_t)want_chunks * sizeof(ldi_chunk));
    if (!b->chunks)
        return LD_STATUS_NO_MEMORY;
    memset(b->chunks, 0, (size_t)want_chunks * sizeof(ldi_chunk));

    uint64_t chunk_bytes = (uint64_t)LDI_CHUNK_PAGES * hal->page_size;
    bool pools = (hal->caps & LD_HAL_CAP_POOLS) && hal->pool_open && hal->pool_alloc && hal->pool_free;
    uint32_t pool = 0;
    bool usable = pools ? pool_usable(hal, (ld_pool)pool, use_io_space, report) : false;
    while (b->chunk_count < want_chunks) {
        /* The last chunk is only as large as needed. */
        uint64_t left = pages - b->chunk_count * LDI_CHUNK_PAGES;
        uint64_t bytes = left < LDI_CHUNK_PAGES ? left * hal->page_size : chunk_bytes;
        void *mem = 0;
        ld_status st;
        if (!pools) {
            mem = (size_t)bytes == bytes ? plat->alloc(plat->ctx, (size_t)bytes) : 0;
            if (!mem)
                break; /* exhausted: partial */
            /* Commit it now: a first touch later would be a page fault, an
             * allocation by another name, possibly while the machine is
             * stopped. (Pool memory comes committed from the HAL.) */
            memset(mem, 0, (size_t)bytes);
            pool = LD_POOL_SYSTEM_PARTITION;
        } else {
            while (pool < LD_POOL_COUNT && !usable) {
                pool++;
                usable = pool < LD_POOL_COUNT && pool_usable(hal, (ld_pool)pool, use_io_space, report);
            }
            if (pool >= LD_POOL_COUNT)
                break; /* every pool dry: partial */
            st = hal->pool_alloc(hal->ctx, (ld_pool)pool, bytes, &mem);
            if (st != LD_STATUS_SUCCESS || !mem) {
                if (pool == LD_POOL_VM_PARTITION && report->vm_alloc_status == 0)
                    report->vm_alloc_status = st ? st : LD_STATUS_NO_MEMORY;
                usable = false; /* move on to the next pool */
                continue;
            }
        }
        ldi_chunk *c = &b->chunks[b->chunk_count++];
        c->mem = mem;
        c->bytes = bytes;
        c->pool = pools ? pool : LD_POOL_COUNT;
        b->pool_pages[pool] += bytes / hal->page_size;
        b->slots += bytes / hal->page_size;
    }
    return LD_STATUS_SUCCESS;
}

void ldi_buffers_free(ldi_buffers *b, const ld_hal *hal, const ld_platform *plat)
{
    for (uint64_t i = 0; i < b->chunk_count; i++) {
        ldi_chunk *c = &b->chunks[i];
        if (c->pool == LD_POOL_COUNT)
            plat->free(plat->ctx, c->mem);
        else
            hal->pool_free(hal->ctx, (ld_pool)c->pool, c->mem, c->bytes);
    }
    if (b->chunks)
        plat->free(plat->ctx, b->chunks);
    memset(b, 0, sizeof *b);
}
