/* Allocation, the last step of sizing (events 107, 113, 115, 116, 124,
 * 125, 126): every buffer the capture will need, so that nothing is
 * allocated while the machine is stopped. When the buffers (or the dump
 * file size limit) cannot take every selected page, the lowest-priority
 * pages are left out: a partial dump. */
#include "allocate.h"
#include "emit.h"
#include "select.h"
#include "registry.h"

/* Partial dump: drop selected pages, lowest priority first (user and
 * hypervisor, then other kernel data, then important data), highest PFN
 * first within a class. Required pages are never dropped. */
static int priority_class(uint32_t kind)
{
    if (ldi_kind_required((ld_page_kind)kind))
        return 3;
    if (ldi_kind_important((ld_page_kind)kind))
        return 2;
    if (kind == LD_PAGE_USER || ldi_kind_is_hv(kind) || kind == LD_PAGE_SECURE_KERNEL)
        return 0;
    return 1;
}

static uint64_t trim_selection(ldi_session *s, uint64_t drop)
{
    ld_result *res = s->res;
    ld_dump *d = s->dump;
    uint64_t dropped = 0;
    for (int cls = 0; cls < 3 && dropped < drop; cls++) {
        for (size_t i = d->kind_count; i-- > 0 && dropped < drop;) {
            const ld_kind_range *k = &d->kinds[i];
            if (priority_class(k->kind) != cls)
                continue;
            uint64_t end = k->first_pfn + k->page_count;
            uint64_t pfn = ldi_bitmap_prev_set(&s->select, end);
            while (pfn != LDI_NO_PFN && pfn >= k->first_pfn && dropped < drop) {
                if (!ldi_bitmap_test(&s->required, pfn)) {
                    ldi_bitmap_clear(&s->select, pfn);
                    res->pages_left_out_by_kind[k->kind]++;
                    dropped++;
                }
                pfn = ldi_bitmap_prev_set(&s->select, pfn);
            }
        }
    }
    return dropped;
}

static void emit_pool_report(ld_engine *e, const ldi_pool_report *rep)
{
    if (rep->vm_open_status)
        ldi_emit_status(e, 115, rep->vm_open_status);
    if (rep->vm_alloc_status)
        ldi_emit_status(e, 116, rep->vm_alloc_status);
}

/* What allocation decided, for events 107 and 113. */
typedef struct alloc_report {
    uint64_t hv_prepare_ns, buffers_ns, extra_ns;
    uint64_t wanted;       /* slots asked for: selection + spares */
    bool limit_reached;    /* the dump file size limit left pages out */
    bool aborted;          /* buffers ran short and the request gives up */
} alloc_report;

/* The hypervisor's descriptor, and whether IO-space pools may be used. */
static void prepare_sources(ld_engine *e, ldi_session *s, alloc_report *rep)
{
    const ld_hal *hal = e->hal;
    if (s->hv) {
        uint64_t h0 = ldi_now(e);
        ld_status st = hal->hv_prepare(hal->ctx);
        rep->hv_prepare_ns = ldi_now(e) - h0;
        if (st != LD_STATUS_SUCCESS) {
            ldi_emit_status(e, 126, st);
            s->hv = false; /* the dump goes on without hypervisor data */
            s->hv_secondary_bytes = 0;
        }
    }
    /* IO-space pools hold device-visible memory; with a secure kernel
     * running, hypervisor pages must not land there. */
    s->io_space = true;
    if ((s->req->add_pages & LD_ADD_HV_PAGES) && (hal->caps & LD_HAL_CAP_SECURE_KERNEL)) {
        s->io_space = false;
        ldi_emit_simple(e, 124);
    }
    s->res->io_space_enabled = s->io_space;
}

/* The dump file size limit: leave the lowest-priority pages out so the
 * estimate fits. Required data that alone does not fit ends the request as
 * a full disk would, before any page is copied. The format's headers count
 * too, or the write side would refuse them; its bound for the whole
 * selection also bounds any smaller one. */
static ld_status fit_size_limit(ld_engine *e, ldi_session *s, alloc_report *rep)
{
    ld_dump *d = s->dump;
    uint64_t ps = e->hal->page_size;
    if (!s->size_limit)
        return LD_STATUS_SUCCESS;
    ld_dump_info planned = d->info;
    planned.blobs = 0;
    planned.blob_count = e->callout_count + 2; /* callouts, hypervisor, IPT */
    uint64_t fixed = s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes +
                     (uint64_t)d->info.cpu_count * sizeof(ld_cpu_context) +
                     ldf_format_overhead(s->format, &planned, ldi_bitmap_count(&s->select));
    uint64_t sel_bytes = ldi_bitmap_count(&s->select) * ps;
    if (fixed + sel_bytes <= s->size_limit)
        return LD_STATUS_SUCCESS;
    rep->limit_reached = true;
    uint64_t room = s->size_limit > fixed ? (s->size_limit - fixed) / ps : 0;
    uint64_t drop = ldi_bitmap_count(&s->select) - room;
    uint64_t dropped = trim_selection(s, drop);
    s->res->pages_left_out += dropped;
    s->res->size_limit_reached = true;
    if (dropped < drop)
        return LD_STATUS_DISK_FULL;
    const char *names[3] = {"DumpFileSizeLimitInBytes", "PagesLeftOut", "EstimatedBytes"};
    uint64_t values[3] = {s->size_limit, dropped, fixed + sel_bytes};
    ldi_emit_generic_n(e, "Partial dump: the dump file size limit was reached; lowest-priority pages were left out",
                       names, values, 3);
    return LD_STATUS_SUCCESS;
}

/* Without HAL pools (which bound themselves) buffers come from the platform
 * allocator: never more than available memory less the threshold's reserve
 * (and the secondary data), since where the OS overcommits an allocation
 * beyond that succeeds and the OOM killer strikes later. Fewer buffers make
 * a partial dump, as a dry pool does. */
static uint64_t buffer_budget(const ld_engine *e, const ldi_session *s, uint64_t wanted)
{
    const ld_hal *hal = e->hal;
    bool pools = (hal->caps & LD_HAL_CAP_POOLS) && hal->pool_open && hal->pool_alloc && hal->pool_free;
    if (!s->know_memory || pools)
        return wanted;
    uint64_t keep = s->mem_reserve + s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes;
    uint64_t budget = s->mem_available > keep ? (s->mem_available - keep) / hal->page_size : 0;
    return LDI_MIN(wanted, budget);
}

/* The page slots. When fewer than wanted come, a partial dump (the
 * lowest-priority pages left out), unless the request said to give up or
 * not even the required data fits. */
static ld_status take_buffers(ld_engine *e, ldi_session *s, uint64_t spare, alloc_report *rep)
{
    ld_dump *d = s->dump;
    ld_result *res = s->res;
    uint64_t t0 = ldi_now(e);
    ldi_pool_report pools;
    memset(&pools, 0, sizeof pools);
    ld_status st = ldi_buffers_alloc(&d->buffers, e->hal, e->plat, buffer_budget(e, s, rep->wanted), s->io_space, &pools);
    emit_pool_report(e, &pools);
    rep->buffers_ns = ldi_now(e) - t0;
    uint64_t short_by = st == LD_STATUS_SUCCESS && d->buffers.slots < rep->wanted ? rep->wanted - d->buffers.slots : 0;
    if (short_by) {
        uint64_t keep_min = ldi_bitmap_count(&s->required) + spare;
        if ((s->req->flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE) || d->buffers.slots < keep_min) {
            rep->aborted = true;
            st = LD_STATUS_INSUFFICIENT_RESOURCES;
        } else {
            uint64_t dropped = trim_selection(s, short_by);
            res->pages_left_out += dropped;
            ldi_emit_generic(e, "Partial dump: dump buffers could not be allocated for every page; lowest-priority pages were left out",
                             "PagesLeftOut", dropped, "PagesAllocated", d->buffers.slots);
        }
    }
    res->pages_allocated = d->buffers.slots;
    for (int i = 0; i < LD_POOL_COUNT; i++)
        res->pool_pages[i] = d->buffers.pool_pages[i];
    return st;
}

/* Extra buffers: the spare-slot map, the blob table and the secondary
 * data; then the slot map, ranked, so a page's slot is O(1). */
static ld_status extra_buffers(ld_engine *e, ldi_session *s, uint64_t spare, alloc_report *rep)
{
    const ld_platform *p = e->plat;
    ld_dump *d = s->dump;
    uint64_t t0 = ldi_now(e);
    ld_status st = LD_STATUS_SUCCESS;
    d->spare_cap = spare;
    d->spare_pfn = p->alloc(p->ctx, (size_t)(spare ? spare : 1) * sizeof(uint64_t));
    if (!d->spare_pfn)
        st = LD_STATUS_NO_MEMORY;
    if (st == LD_STATUS_SUCCESS) {
        uint64_t sec = s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes;
        size_t nblobs = e->callout_count + 2;
        d->blobs = ldi_zalloc(p, nblobs * sizeof(ld_blob));
        if (!d->blobs)
            st = LD_STATUS_NO_MEMORY;
        d->blob_cap = nblobs;
        if (st == LD_STATUS_SUCCESS && sec) {
            d->secondary = (size_t)sec == sec ? p->alloc(p->ctx, (size_t)sec) : 0;
            if (d->secondary) {
                d->secondary_cap = sec;
                s->callouts_fit = true;
            } else {
                /* Secondary data is optional: the dump goes on without it. */
                s->hv_secondary_bytes = s->ipt_bytes = 0;
                ldi_emit_generic(e, "Secondary data left out: its buffer could not be allocated", "Bytes", sec, 0, 0);
            }
        }
    }
    if (st == LD_STATUS_SUCCESS) {
        ldi_bitmap_copy(&d->slots_map, &s->select);
        st = ldi_bitmap_build_rank(&d->slots_map, p);
        d->slot_pages = ldi_bitmap_count(&d->slots_map);
    }
    rep->extra_ns = ldi_now(e) - t0;
    return st;
}

/* Events 107, 113 and 125 (one per callout). */
static void emit_allocation(ld_engine *e, ldi_session *s, const alloc_report *rep, ld_status st)
{
    ld_dump *d = s->dump;
    uint64_t ps = e->hal->page_size;
    uint64_t hv_pages = ldi_selected_of_kinds(&s->select, d, ldi_kind_is_hv);
    uint64_t sel = ldi_bitmap_count(&s->select);
    ld_event ev;
    ldi_ev(&ev, e, 107);
    ldi_ev_u64(&ev, "NtPrimaryDataBytes", (sel - hv_pages) * ps);
    ldi_ev_u64(&ev, "HvPrimaryDataBytes", hv_pages * ps);
    ldi_ev_u64(&ev, "HvSecondaryDataBytes", s->hv_secondary_bytes);
    ldi_ev_u64(&ev, "SkPrimaryDataBytes", 0);
    ldi_ev_u64(&ev, "AllocateDumpBuffersDuration_ms", ldi_ms(rep->buffers_ns));
    ldi_ev_u64(&ev, "AllocateExtraBuffersDuration_ms", ldi_ms(rep->extra_ns));
    ldi_ev_u64(&ev, "HvlPrepareLivedumpDescriptorDuration_ms", ldi_ms(rep->hv_prepare_ns));
    ldi_emit(e, &ev);

    ldi_ev(&ev, e, 113);
    ldi_ev_u64(&ev, "EstimatedPageCount", rep->wanted);
    ldi_ev_u64(&ev, "AllocatedPageCount", d->buffers.slots);
    ldi_ev_u64(&ev, "VMMemoryPartitionIOSpaceAllocatedPages", d->buffers.pool_pages[LD_POOL_VM_PARTITION_IO_SPACE]);
    ldi_ev_u64(&ev, "VMMemoryPartitionAllocatedPages", d->buffers.pool_pages[LD_POOL_VM_PARTITION]);
    ldi_ev_u64(&ev, "SystemPartitionIOSpaceAllocatedPages", d->buffers.pool_pages[LD_POOL_SYSTEM_PARTITION_IO_SPACE]);
    ldi_ev_u64(&ev, "SystemPartitionAllocatedPages", d->buffers.pool_pages[LD_POOL_SYSTEM_PARTITION]);
    ldi_ev_u64(&ev, "LimitDumpFileSize", s->size_limit ? 1 : 0);
    ldi_ev_u64(&ev, "DumpFileSizeLimitInBytes", s->size_limit);
    ldi_ev_u64(&ev, "DumpFileSizeLimitReached", rep->limit_reached ? 1 : 0);
    ldi_ev_u64(&ev, "AbortWhileBufferAllocation", rep->aborted ? 1 : 0);
    ldi_emit(e, &ev);

    for (uint32_t i = 0; i < e->callout_count; i++) {
        ldi_ev(&ev, e, 125);
        ldi_ev_str(&ev, "Callout", e->callouts[i].name);
        ldi_ev_u64(&ev, "Included", s->callouts_fit && st == LD_STATUS_SUCCESS);
        ldi_emit(e, &ev);
    }
}

ld_status ldi_allocate(ld_engine *e, ldi_session *s)
{
    uint64_t t0 = ldi_now(e);
    alloc_report rep;
    memset(&rep, 0, sizeof rep);
    uint64_t spare = (uint64_t)s->dump->info.cpu_count * LDI_SPARE_SLOTS_PER_CPU;
    s->callouts_fit = false;

    prepare_sources(e, s, &rep);
    ld_status st = fit_size_limit(e, s, &rep);
    rep.wanted = ldi_bitmap_count(&s->select) + spare;
    s->res->pages_estimated = rep.wanted;
    if (st == LD_STATUS_SUCCESS)
        st = take_buffers(e, s, spare, &rep);
    if (st == LD_STATUS_SUCCESS)
        st = extra_buffers(e, s, spare, &rep);
    s->res->allocation_ns = ldi_now(e) - t0;
    emit_allocation(e, s, &rep, st);
    return st;
}
