/* The captured dump and its read-only accessors.
 *
 * Slots: every page of slots_map (the selection at allocation time) owns
 * the slot given by its rank, so a page keeps its slot even when the final
 * bitmap drops other pages. Required pages found only in the capture
 * quiesce take spare slots after those. */
#include "src/core/engine_internal.h"

ld_dump *ldi_dump_new(const ld_hal *hal)
{
    ld_dump *d = ldi_zalloc(hal->platform, sizeof *d);
    if (d)
        d->hal = hal;
    return d;
}

void ldi_dump_free(ld_dump *d)
{
    if (!d)
        return;
    const ld_platform *p = d->hal->platform;
    ldi_buffers_free(&d->buffers, d->hal);
    ldi_bitmap_free(&d->slots_map, p);
    ldi_bitmap_free(&d->present, p);
    if (d->ranges)
        p->free(p->ctx, d->ranges);
    if (d->kinds)
        p->free(p->ctx, d->kinds);
    if (d->contexts)
        p->free(p->ctx, d->contexts);
    if (d->spare_pfn)
        p->free(p->ctx, d->spare_pfn);
    if (d->secondary)
        p->free(p->ctx, d->secondary);
    if (d->blobs)
        p->free(p->ctx, d->blobs);
    p->free(p->ctx, d);
}

static uint64_t slot_of(const ld_dump *d, uint64_t pfn)
{
    if (ldi_bitmap_test(&d->slots_map, pfn)) {
        uint64_t r = ldi_bitmap_rank(&d->slots_map, pfn);
        return r < d->slot_pages ? r : LDI_NO_PFN;
    }
    for (uint64_t i = 0; i < d->spare_count; i++)
        if (d->spare_pfn[i] == pfn)
            return d->slot_pages + i;
    return LDI_NO_PFN;
}

void *ldi_dump_slot(ld_dump *d, uint64_t pfn)
{
    uint64_t s = slot_of(d, pfn);
    if (s == LDI_NO_PFN || s >= d->buffers.slots)
        return 0;
    return ldi_buffers_slot(&d->buffers, s);
}

/* Give pfn a spare slot (no allocation: spares were sized before). */
ld_status ldi_dump_spare(ld_dump *d, uint64_t pfn)
{
    if (slot_of(d, pfn) != LDI_NO_PFN)
        return LD_STATUS_SUCCESS;
    if (d->spare_count >= d->spare_cap || d->slot_pages + d->spare_count >= d->buffers.slots)
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    d->spare_pfn[d->spare_count++] = pfn;
    return LD_STATUS_SUCCESS;
}

void ldi_dump_count_kinds(ld_dump *d, ld_result *res)
{
    memset(res->pages_by_kind, 0, sizeof res->pages_by_kind);
    uint64_t classified = 0;
    for (size_t i = 0; i < d->kind_count; i++) {
        const ld_kind_range *k = &d->kinds[i];
        uint64_t n = ldi_bitmap_count_range(&d->present, k->first_pfn, k->page_count);
        uint32_t kind = k->kind < LD_PAGE_KIND_COUNT ? k->kind : LD_PAGE_UNKNOWN;
        res->pages_by_kind[kind] += n;
        classified += n;
    }
    res->pages = ldi_bitmap_count(&d->present);
    res->pages_by_kind[LD_PAGE_UNKNOWN] += res->pages - classified;
    d->info.page_count = res->pages;
}

const ld_dump_info *ld_dump_get_info(const ld_dump *dump)
{
    return dump ? &dump->info : 0;
}

const void *ld_dump_page(const ld_dump *dump, uint64_t pfn)
{
    if (!dump || !ldi_bitmap_test(&dump->present, pfn))
        return 0;
    return ldi_dump_slot((ld_dump *)dump, pfn);
}

uint64_t ld_dump_next_page(const ld_dump *dump, uint64_t pfn)
{
    return dump ? ldi_bitmap_next_set(&dump->present, pfn) : LDI_NO_PFN;
}

ld_page_kind ld_dump_page_kind(const ld_dump *dump, uint64_t pfn)
{
    if (!dump)
        return LD_PAGE_UNKNOWN;
    /* Runs are sorted: binary search. */
    size_t lo = 0, hi = dump->kind_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ld_kind_range *k = &dump->kinds[mid];
        if (pfn < k->first_pfn)
            hi = mid;
        else if (pfn - k->first_pfn >= k->page_count)
            lo = mid + 1;
        else
            return k->kind < LD_PAGE_KIND_COUNT ? (ld_page_kind)k->kind : LD_PAGE_UNKNOWN;
    }
    return LD_PAGE_UNKNOWN;
}
