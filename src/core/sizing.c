/* The sizing workflow (events 101-126): read the machine's layout, start
 * the dirty log, stop the machine once to take a consistent bitmap of what
 * the dump keeps, let components remove pages, estimate, check memory
 * pressure, and allocate every buffer the capture will need, so that
 * nothing is allocated while the machine is stopped. */
#include "sizing.h"
#include "allocate.h"
#include "emit.h"
#include "quiesce.h"
#include "select.h"
#include "state.h"

/* Read a HAL table with the count-then-fill convention. The table may grow
 * between the two calls (memory hot-add), so retry a few times. */
static ld_status call_table(const ld_hal *hal, bool kinds, void *items, size_t *count)
{
    return kinds ? hal->mem_kinds(hal->ctx, items, count) : hal->mem_ranges(hal->ctx, items, count);
}

static ld_status read_table(const ld_hal *hal, const ld_platform *p, bool kinds, size_t item_size, void **out,
                            size_t *count)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        size_t n = 0;
        ld_status st = call_table(hal, kinds, 0, &n);
        if (st != LD_STATUS_SUCCESS && st != LD_STATUS_BUFFER_TOO_SMALL)
            return st;
        if (n == 0 || n > SIZE_MAX / item_size / 2)
            return LD_STATUS_UNSUCCESSFUL;
        size_t cap = n + 8;
        void *items = p->alloc(p->ctx, cap * item_size);
        if (!items)
            return LD_STATUS_NO_MEMORY;
        n = cap;
        st = call_table(hal, kinds, items, &n);
        if (st == LD_STATUS_SUCCESS && n <= cap) {
            *out = items;
            *count = n;
            return LD_STATUS_SUCCESS;
        }
        p->free(p->ctx, items);
        if (st != LD_STATUS_BUFFER_TOO_SMALL)
            return st == LD_STATUS_SUCCESS ? LD_STATUS_UNSUCCESSFUL : st;
    }
    return LD_STATUS_UNSUCCESSFUL;
}

/* The pages of the RAM ranges that no kind run names, as runs, in order:
 * calls fn(arg, first, count) for each gap. */
static size_t for_each_gap(const ld_dump *d, void (*fn)(void *arg, uint64_t first, uint64_t count), void *arg)
{
    size_t gaps = 0, k = 0;
    for (size_t i = 0; i < d->info.range_count; i++) {
        uint64_t pos = d->ranges[i].first_pfn, end = pos + d->ranges[i].page_count;
        while (k < d->kind_count && d->kinds[k].first_pfn + d->kinds[k].page_count <= pos)
            k++;
        for (size_t j = k; pos < end; j++) {
            uint64_t next = j < d->kind_count ? LDI_MIN(d->kinds[j].first_pfn, end) : end;
            if (next > pos) {
                if (fn)
                    fn(arg, pos, next - pos);
                gaps++;
            }
            if (j >= d->kind_count || d->kinds[j].first_pfn >= end)
                break;
            pos = d->kinds[j].first_pfn + d->kinds[j].page_count;
        }
    }
    return gaps;
}

typedef struct gap_list {
    ld_kind_range *runs;
    size_t n;
} gap_list;

static void add_gap(void *arg, uint64_t first, uint64_t count)
{
    gap_list *g = arg;
    g->runs[g->n++] = (ld_kind_range){first, count, LD_PAGE_UNKNOWN};
}

/* The HAL contract: a page of RAM in no kind run is LD_PAGE_UNKNOWN. Make
 * those pages explicit runs, so that selection, trimming and counting by
 * kind see every page of RAM. */
static ld_status fill_unclassified(ld_engine *e, ld_dump *d)
{
    size_t gaps = for_each_gap(d, 0, 0);
    if (gaps == 0)
        return LD_STATUS_SUCCESS;
    size_t total = d->kind_count + gaps;
    ld_kind_range *merged = e->plat->alloc(e->plat->ctx, total * sizeof *merged);
    ld_kind_range *extra = e->plat->alloc(e->plat->ctx, gaps * sizeof *extra);
    if (!merged || !extra) {
        e->plat->free(e->plat->ctx, merged);
        e->plat->free(e->plat->ctx, extra);
        return LD_STATUS_NO_MEMORY;
    }
    gap_list g = {extra, 0};
    for_each_gap(d, add_gap, &g);
    size_t a = 0, b = 0, n = 0;
    while (a < d->kind_count || b < gaps)
        merged[n++] = b >= gaps || (a < d->kind_count && d->kinds[a].first_pfn < extra[b].first_pfn) ? d->kinds[a++]
                                                                                                   : extra[b++];
    e->plat->free(e->plat->ctx, extra);
    e->plat->free(e->plat->ctx, d->kinds);
    d->kinds = merged;
    d->kind_count = total;
    return LD_STATUS_SUCCESS;
}

/* Layout: ranges must be sorted and disjoint, kinds sorted, disjoint and
 * inside the ranges' span. A HAL that says otherwise is refused rather than
 * trusted with bitmap indexes. */
static ld_status read_layout(ld_engine *e, ld_dump *d)
{
    const ld_hal *hal = e->hal;
    size_t n = 0;
    void *items = 0;
    ld_status st = read_table(hal, e->plat, false, sizeof(ld_phys_range), &items, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    d->ranges = items;
    d->info.ranges = d->ranges;
    d->info.range_count = n;
    uint64_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const ld_phys_range *r = &d->ranges[i];
        if (r->page_count == 0 || r->first_pfn < end || r->first_pfn + r->page_count < r->first_pfn ||
            r->first_pfn + r->page_count > (1ull << 40))
            return LD_STATUS_UNSUCCESSFUL;
        end = r->first_pfn + r->page_count;
    }
    d->info.max_pfn = end;

    st = read_table(hal, e->plat, true, sizeof(ld_kind_range), &items, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    d->kinds = items;
    d->kind_count = n;
    uint64_t kend = 0;
    for (size_t i = 0; i < n; i++) {
        const ld_kind_range *k = &d->kinds[i];
        if (k->first_pfn < kend || k->page_count > end || k->first_pfn > end - k->page_count ||
            k->kind >= LD_PAGE_KIND_COUNT)
            return LD_STATUS_UNSUCCESSFUL;
        kend = k->first_pfn + k->page_count;
    }
    return fill_unclassified(e, d);
}

/* Populate the selection from the kinds; returns the time spent removing
 * the file cache (selective dumps), which event 120/161 reports apart. */
static uint64_t populate_bitmap(ld_engine *e, ldi_session *s)
{
    ld_dump *d = s->dump;
    ld_capture_request full_req = *s->req;
    full_req.flags &= ~LD_FLAG_SELECTIVE_DUMP;
    ldi_bitmap_clear_all(&s->select);
    for (size_t i = 0; i < d->kind_count; i++)
        if (ldi_kind_selected((ld_page_kind)d->kinds[i].kind, &full_req, e->hal))
            ldi_bitmap_set_range(&s->select, d->kinds[i].first_pfn, d->kinds[i].page_count);
    uint64_t t0 = ldi_now(e);
    if (s->req->flags & LD_FLAG_SELECTIVE_DUMP)
        for (size_t i = 0; i < d->kind_count; i++)
            if (d->kinds[i].kind == LD_PAGE_FILE_CACHE)
                ldi_bitmap_clear_range(&s->select, d->kinds[i].first_pfn, d->kinds[i].page_count);
    uint64_t cache_ns = ldi_now(e) - t0;
    ldi_bitmap_or(&s->select, &s->required);
    return cache_ns;
}

static void emit_populate(ld_engine *e, uint16_t id, uint64_t populate_ns, uint64_t cache_ns)
{
    ld_event ev;
    ldi_ev(&ev, e, id);
    ldi_ev_u64(&ev, "PopulateBitmapForDumpDuration_ms", ldi_ms(populate_ns));
    ldi_ev_u64(&ev, "RemoveSystemCacheFromDumpDuration_ms", ldi_ms(cache_ns));
    ldi_emit(e, &ev);
}

typedef struct sizing_ctx {
    ld_engine *e;
    ldi_session *s;
} sizing_ctx;

static ld_status sizing_quiesced(void *arg)
{
    sizing_ctx *c = arg;
    ld_engine *e = c->e;
    ldi_session *s = c->s;
    ld_status st = ldi_capture_contexts(e, s);
    if (st != LD_STATUS_SUCCESS)
        return st;
    ldi_emit_simple(e, 117);
    ldi_mark_required(e, s);
    ldi_emit_simple(e, 118);
    /* Important data (page tables, kernel stacks) needs no marking of its
     * own: it is recognised by kind when a partial dump must choose. */
    ldi_emit_simple(e, 119);
    uint64_t t0 = ldi_now(e);
    uint64_t cache_ns = populate_bitmap(e, s);
    s->res->populate_bitmap_ns = ldi_now(e) - t0;
    s->res->remove_cache_ns = cache_ns;
    emit_populate(e, 120, s->res->populate_bitmap_ns, cache_ns);
    return LD_STATUS_SUCCESS;
}

static ld_status alloc_bitmaps(ld_engine *e, ldi_session *s)
{
    const ld_platform *p = e->plat;
    uint64_t n = s->dump->info.max_pfn;
    ld_status st;
    if ((st = ldi_bitmap_init(&s->select, p, n)) || (st = ldi_bitmap_init(&s->required, p, n)) ||
        (st = ldi_bitmap_init(&s->dirty, p, n)) ||
        (st = ldi_bitmap_init(&s->dump->present, p, n)) || (st = ldi_bitmap_init(&s->dump->slots_map, p, n)))
        return st;
    return LD_STATUS_SUCCESS;
}

static void emit_mirror_failed(ld_engine *e, uint16_t id, ld_status st, bool in_progress)
{
    ld_event ev;
    ldi_ev(&ev, e, id);
    ldi_ev_u64(&ev, "NTStatus", st);
    ldi_ev_u64(&ev, "MirrorInProgress", in_progress ? 1 : 0);
    ldi_emit(e, &ev);
}

/* Start the dirty log (phase 0) and take its first fetch (phase 1), so the
 * capture workflow can pre-copy against a log that already runs. */
static void sizing_mirroring(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    if (!(s->req->flags & LD_FLAG_USE_MIRRORING))
        return;
    uint64_t t0 = ldi_now(e);
    ldi_emit_simple(e, 101);
    bool have_log = (hal->caps & LD_HAL_CAP_DIRTY_LOG) && hal->dirty_start && hal->dirty_fetch && hal->dirty_stop;
    if (!have_log) {
        ldi_emit_generic(e, "Mirroring unavailable: the HAL has no dirty-page log; every page is copied while the machine is stopped",
                         "Capabilities", hal->caps, 0, 0);
    } else {
        ld_status st = hal->dirty_start(hal->ctx);
        if (st != LD_STATUS_SUCCESS)
            emit_mirror_failed(e, 123, st, false);
        else
            s->mirroring = true;
    }
    ldi_emit_simple(e, 102);
    if (s->mirroring) {
        uint64_t n = 0;
        ld_status st = hal->dirty_fetch(hal->ctx, s->dirty.words, s->dirty.nbits, &n);
        if (st != LD_STATUS_SUCCESS) {
            emit_mirror_failed(e, 123, st, true);
            (void)hal->dirty_stop(hal->ctx);
            s->mirroring = false;
        }
    }
    ldi_emit_simple(e, 103);
    s->res->sizing_mirror_ns = ldi_now(e) - t0;
}

static void run_remove_pages_callbacks(ld_engine *e, ldi_session *s)
{
    uint64_t t0 = ldi_now(e);
    uint64_t before = ldi_bitmap_count(&s->select);
    ldi_emit_simple(e, 108);
    for (uint32_t i = 0; i < e->remove_pages_count; i++) {
        ldi_remove_pages *r = &e->remove_pages[i];
        ld_event ev;
        ldi_ev(&ev, e, 110);
        ldi_ev_str(&ev, "CallbackIdentifier", r->name);
        ldi_emit(e, &ev);
        ld_status st = r->fn(r->arg, (ld_page_set *)&s->select);
        ldi_ev(&ev, e, st == LD_STATUS_SUCCESS ? 111 : 112);
        ldi_ev_str(&ev, "CallbackIdentifier", r->name);
        if (st != LD_STATUS_SUCCESS)
            ldi_ev_u64(&ev, "NTStatus", st);
        ldi_emit(e, &ev);
    }
    /* Required data stays, whatever a callback removed. */
    ldi_bitmap_or(&s->select, &s->required);
    ldi_emit_simple(e, 109);
    s->res->pages_removed_by_callbacks = before - ldi_bitmap_count(&s->select);
    s->res->remove_pages_callbacks_ns = ldi_now(e) - t0;
}

/* Dynamic low-memory threshold: the buffers the dump needs plus a reserve
 * for the running system of 1/32 of physical memory, at least 64 MiB. A
 * capture whose buffers would push available memory below that reserve
 * would page the machine out from under its workload. With the switch off
 * the threshold is the buffers alone: only a dump that cannot fit at all
 * is refused. */
static uint64_t low_memory_threshold(uint64_t need_bytes, uint64_t total, bool dynamic)
{
    if (!dynamic)
        return need_bytes;
    uint64_t reserve = total / 32;
    if (reserve < (64ull << 20))
        reserve = 64ull << 20;
    return need_bytes + reserve;
}

static ld_status estimate(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    ld_result *res = s->res;
    ld_dump *d = s->dump;
    uint64_t ps = hal->page_size;
    uint64_t t0 = ldi_now(e);

    s->hv = (s->req->add_pages & LD_ADD_HV_PAGES) && (hal->caps & LD_HAL_CAP_HYPERVISOR) &&
            hal->hv_size && hal->hv_prepare && hal->hv_collect;
    /* Hypervisor pages asked of a machine without a hypervisor: neither its
     * pages nor its secondary data exist. Said once, not dropped silently. */
    if ((s->req->add_pages & LD_ADD_HV_PAGES) && !(hal->caps & LD_HAL_CAP_HYPERVISOR) &&
        ldi_classified_of_kinds(d, ldi_kind_is_hv) == 0) {
        res->hv_unavailable = true;
        ldi_emit_generic(e, "Hypervisor pages were requested but the machine runs no hypervisor: the dump holds none",
                         "Capabilities", hal->caps, 0, 0);
    }
    uint64_t hv_ns = 0;
    if (s->hv) {
        uint64_t h0 = ldi_now(e);
        ld_status st = hal->hv_size(hal->ctx, &s->hv_secondary_bytes);
        hv_ns = ldi_now(e) - h0;
        if (st != LD_STATUS_SUCCESS) {
            ldi_emit_status(e, 114, st);
            s->hv = false;
            s->hv_secondary_bytes = 0;
        }
    }
    s->ipt = (hal->caps & LD_HAL_CAP_IPT) && hal->ipt_size && hal->ipt_collect;
    if (s->ipt && hal->ipt_size(hal->ctx, &s->ipt_bytes) != LD_STATUS_SUCCESS) {
        s->ipt = false;
        s->ipt_bytes = 0;
    }
    s->callout_bytes = 0;
    for (uint32_t i = 0; i < e->callout_count; i++)
        s->callout_bytes += e->callouts[i].max_bytes;

    uint64_t selected = ldi_bitmap_count(&s->select);
    uint64_t hv_pages = ldi_selected_of_kinds(&s->select, s->dump, ldi_kind_is_hv);
    uint64_t required = ldi_bitmap_count(&s->required);
    uint64_t header = (uint64_t)d->info.cpu_count * sizeof(ld_cpu_context);
    uint64_t need = selected * ps + s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes + header;
    res->pages_required = required;

    uint64_t avail = 0, total = 0;
    bool know_memory = (hal->caps & LD_HAL_CAP_MEM_STATUS) && hal->mem_status &&
                       hal->mem_status(hal->ctx, &avail, &total) == LD_STATUS_SUCCESS;
    if (know_memory) {
        res->available_bytes = avail;
        res->physical_bytes = total;
        res->low_memory_threshold = low_memory_threshold(need, total, s->dynamic_threshold);
        s->know_memory = true;
        s->mem_available = avail;
        s->mem_reserve = res->low_memory_threshold - need;
    }
    res->estimation_ns = ldi_now(e) - t0;

    ld_event ev;
    ldi_ev(&ev, e, 106);
    ldi_ev_u64(&ev, "NtEstimatedRequiredPrimaryDataBytes", required * ps);
    ldi_ev_u64(&ev, "NtEstimatedPrimaryDataBytes", (selected - hv_pages) * ps);
    ldi_ev_u64(&ev, "HvEstimatedPrimaryDataBytes", hv_pages * ps);
    ldi_ev_u64(&ev, "HvEstimatedSecondaryDataBytes", s->hv_secondary_bytes);
    ldi_ev_u64(&ev, "SkEstimatedPrimaryDataBytes", 0); /* secure kernel pages are never dumped */
    ldi_ev_u64(&ev, "MemoryEstimationDuration_ms", ldi_ms(res->estimation_ns));
    ldi_ev_u64(&ev, "SystemQuiescedDuration_ms", ldi_ms(res->sizing_stopped_ns));
    ldi_ev_u64(&ev, "EndMirroringPhasesDuration_ms", ldi_ms(res->sizing_mirror_ns));
    ldi_ev_u64(&ev, "MirrorPhysicalMemoryDuration_ms", ldi_ms(res->sizing_mirror_ns));
    ldi_ev_u64(&ev, "MirrorPhysicalMemorySizeInBytes", s->mirroring ? selected * ps : 0);
    ldi_ev_u64(&ev, "HvlCalculateLiveDumpSizeDuration_ms", ldi_ms(hv_ns));
    ldi_emit(e, &ev);

    if (know_memory && (s->req->flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE) && avail < res->low_memory_threshold) {
        ldi_emit_simple(e, 5);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    return LD_STATUS_SUCCESS;
}

/* Optional: what the OS says of itself, for the format headers. A backend
 * without it, or whose answer fails, leaves the fields 0. */
static void read_system_info(const ld_hal *hal, ld_dump *d)
{
    ld_system_info si;
    memset(&d->info.system, 0, sizeof d->info.system);
    if (hal->version < 2 || !(hal->caps & LD_HAL_CAP_SYSTEM_INFO) || !hal->system_info)
        return;
    memset(&si, 0, sizeof si);
    if (hal->system_info(hal->ctx, &si) != LD_STATUS_SUCCESS)
        return;
    if (!si.vmcoreinfo)
        si.vmcoreinfo_size = 0;
    d->info.system = si;
}

ld_status ldi_sizing(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    ld_dump *d = s->dump;
    ld_status st;
    if (!ldi_transition(e, LDI_SIZING_MIRROR))
        return LD_STATUS_INVALID_DEVICE_STATE;
    d->info.page_size = hal->page_size;
    if ((st = read_layout(e, d)) != LD_STATUS_SUCCESS)
        return st;
    uint32_t ncpu = hal->cpu_count(hal->ctx);
    if (ncpu == 0 || ncpu > 4096)
        return LD_STATUS_UNSUCCESSFUL;
    d->info.cpu_count = ncpu;
    d->contexts = ldi_zalloc(e->plat, ncpu * sizeof(ld_cpu_context));
    if (!d->contexts)
        return LD_STATUS_NO_MEMORY;
    d->info.contexts = d->contexts;
    read_system_info(hal, d);
    if ((st = alloc_bitmaps(e, s)) != LD_STATUS_SUCCESS)
        return st;

    sizing_mirroring(e, s);

    if ((st = ldi_check_stop(e, s)) != LD_STATUS_SUCCESS)
        return st;
    if (!ldi_transition(e, LDI_SIZING_QUIESCED))
        return LD_STATUS_INVALID_DEVICE_STATE;
    sizing_ctx c = {e, s};
    st = ldi_quiesce(e, s, 104, 121, 122, 105, sizing_quiesced, &c, &s->res->sizing_quiesce,
                     &s->res->sizing_stopped_ns);
    if (st != LD_STATUS_SUCCESS)
        return st;

    if (!ldi_transition(e, LDI_SIZING_CALLBACKS))
        return LD_STATUS_INVALID_DEVICE_STATE;
    run_remove_pages_callbacks(e, s);

    if ((st = ldi_check_stop(e, s)) != LD_STATUS_SUCCESS)
        return st;
    if (!ldi_transition(e, LDI_SIZING_ESTIMATE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    if ((st = estimate(e, s)) != LD_STATUS_SUCCESS)
        return st;

    if ((st = ldi_check_stop(e, s)) != LD_STATUS_SUCCESS)
        return st;
    if (!ldi_transition(e, LDI_SIZING_ALLOCATE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    return ldi_allocate(e, s);
}
