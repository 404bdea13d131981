/* The captured dump and its read-only accessors.
 *
 * Slots: every page of slots_map (the selection at allocation time) owns
 * the slot given by its rank, so a page keeps its slot even when the final
 * bitmap drops other pages. Required pages found only in the capture
 * quiesce take spare slots after those. */
#include "dump.h"

ld_dump *ldi_dump_new(const ld_hal *hal, const ld_platform *plat)
{
    ld_dump *d = ldi_zalloc(plat, sizeof *d);
    if (d) {
        d->hal = hal;
        d->plat = plat;
    }
    return d;
}

void ldi_dump_free(ld_dump *d)
{
    if (!d)
        return;
    const ld_platform *p = d->plat;
    ldi_buffers_free(&d->buffers, d->hal, d->plat);
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

void ldi_dump_run(const ld_dump *d, const ldi_bitmap *set, const ldi_bitmap *also, uint64_t from,
                  uint64_t max_pages, bool data, uint64_t *first, uint64_t *count, uint8_t **slot)
{
    uint64_t ps = d->info.page_size;
    uint64_t pfn = ldi_bitmap_next_set_and(set, also, from);
    *first = pfn;
    *count = 0;
    *slot = 0;
    if (pfn == LDI_NO_PFN)
        return;
    uint8_t *dst = data ? ldi_dump_slot((ld_dump *)d, pfn) : 0;
    uint64_t n = 1;
    if (!data || dst)
        while ((!max_pages || n < max_pages) && ldi_bitmap_test(set, pfn + n) &&
               (!also || ldi_bitmap_test(also, pfn + n)) &&
               (!data || ldi_dump_slot((ld_dump *)d, pfn + n) == dst + n * ps))
            n++;
    *count = n;
    *slot = dst;
}

ld_status ldi_dump_add_blob(ld_dump *d, ldi_blob_fill_fn fn, void *ctx, uint64_t cap, const char *name,
                            const uint8_t guid[16])
{
    if (!cap || d->secondary_used + cap > d->secondary_cap || d->info.blob_count >= d->blob_cap)
        return LD_STATUS_BUFFER_TOO_SMALL;
    uint64_t len = 0;
    ld_status st = fn(ctx, d->secondary + d->secondary_used, cap, &len);
    if (st != LD_STATUS_SUCCESS)
        return st;
    if (len > cap)
        len = cap;
    ld_blob *b = &d->blobs[d->info.blob_count++];
    memcpy(b->guid, guid, 16);
    b->name = name;
    b->data = d->secondary + d->secondary_used;
    b->size = len;
    d->secondary_used += len;
    d->info.blobs = d->blobs;
    return LD_STATUS_SUCCESS;
}

bool ld_dump_next_run(const ld_dump *dump, uint64_t pfn, uint64_t max_pages, uint32_t flags, ld_page_run *run)
{
    if (!dump || !run)
        return false;
    uint8_t *slot;
    ldi_dump_run(dump, &dump->present, 0, pfn, max_pages, (flags & LD_RUN_DATA) != 0, &run->first_pfn,
                 &run->count, &slot);
    run->data = slot;
    return run->first_pfn != LDI_NO_PFN;
}

uint64_t ld_dump_count_pages(const ld_dump *dump, uint64_t first_pfn, uint64_t count)
{
    return dump ? ldi_bitmap_count_range(&dump->present, first_pfn, count) : 0;
}

uint64_t ld_dump_last_page(const ld_dump *dump)
{
    return dump ? ldi_bitmap_prev_set(&dump->present, dump->present.nbits) : LDI_NO_PFN;
}

void ld_dump_bitmap_words(const ld_dump *dump, uint64_t first_word, uint64_t *words, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t w = first_word + i;
        words[i] = dump && w < dump->present.nwords ? dump->present.words[w] : 0;
    }
}

void *ld_dump_alloc_memory(const ld_dump *dump, size_t bytes)
{
    const ld_platform *p = dump->plat;
    return p->alloc(p->ctx, bytes);
}

void ld_dump_free_memory(const ld_dump *dump, void *mem)
{
    const ld_platform *p = dump->plat;
    p->free(p->ctx, mem);
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
    size_t i = ld_range_find(dump->kinds, dump->kind_count, sizeof *dump->kinds, pfn);
    if (i == dump->kind_count)
        return LD_PAGE_UNKNOWN;
    return dump->kinds[i].kind < LD_PAGE_KIND_COUNT ? (ld_page_kind)dump->kinds[i].kind : LD_PAGE_UNKNOWN;
}
