/* The sizing workflow (events 101-126): read the machine's layout, start
 * the dirty log, stop the machine once to take a consistent bitmap of what
 * the dump keeps, let components remove pages, estimate, check memory
 * pressure, and allocate every buffer the capture will need, so that
 * nothing is allocated while the machine is stopped. */
#include "src/core/engine_internal.h"

/* Read a HAL table with the count-then-fill convention. The table may grow
 * between the two calls (memory hot-add), so retry a few times. */
static ld_status call_table(const ld_hal *hal, bool kinds, void *items, size_t *count)
{
    return kinds ? hal->mem_kinds(hal->ctx, items, count) : hal->mem_ranges(hal->ctx, items, count);
}

static ld_status read_table(const ld_hal *hal, bool kinds, size_t item_size, void **out, size_t *count)
{
    const ld_platform *p = hal->platform;
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

/* Layout: ranges must be sorted and disjoint, kinds sorted, disjoint and
 * inside the ranges' span. A HAL that says otherwise is refused rather than
 * trusted with bitmap indexes. */
static ld_status read_layout(ld_engine *e, ld_dump *d)
{
    const ld_hal *hal = e->hal;
    size_t n = 0;
    void *items = 0;
    ld_status st = read_table(hal, false, sizeof(ld_phys_range), &items, &n);
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

    st = read_table(hal, true, sizeof(ld_kind_range), &items, &n);
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
    return LD_STATUS_SUCCESS;
}

static bool in_ranges(const ld_dump *d, uint64_t pfn)
{
    for (size_t i = 0; i < d->info.range_count; i++)
        if (pfn >= d->ranges[i].first_pfn && pfn - d->ranges[i].first_pfn < d->ranges[i].page_count)
            return true;
    return false;
}

static bool is_io_space(const ld_dump *d, uint64_t pfn)
{
    return ld_dump_page_kind(d, pfn) == LD_PAGE_IO_SPACE;
}

/* Each processor's current stack pages and page-directory (CR3) page that
 * are real RAM: required data whatever their kind. */
void ldi_context_pages(ld_engine *e, ldi_session *s, void (*fn)(ldi_session *s, uint64_t pfn))
{
    ld_dump *d = s->dump;
    uint32_t shift = (uint32_t)__builtin_ctz(e->hal->page_size);
    for (uint32_t i = 0; i < d->info.cpu_count; i++) {
        const ld_cpu_context *c = &d->contexts[i];
        uint64_t pages[65];
        int n = 0;
        if (c->valid & LD_CTX_STACK_RANGE)
            for (uint64_t p = 0; p < c->stack_pages && p < 64; p++)
                pages[n++] = c->stack_base_pfn + p;
        if (c->valid & LD_CTX_CONTROL)
            pages[n++] = (c->cr3 & ~0xfffull) >> shift;
        for (int k = 0; k < n; k++)
            if (pages[k] < d->info.max_pfn && in_ranges(d, pages[k]) && !is_io_space(d, pages[k]))
                fn(s, pages[k]);
    }
}

static void require_page(ldi_session *s, uint64_t pfn)
{
    ldi_bitmap_set(&s->required, pfn);
}

/* ---- work done while the machine is stopped (both quiesces) ---- */

ld_status ldi_capture_contexts(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    ld_dump *d = s->dump;
    for (uint32_t i = 0; i < d->info.cpu_count; i++) {
        ld_cpu_context *c = &d->contexts[i];
        memset(c, 0, sizeof *c);
        c->cpu = i;
        if ((hal->caps & LD_HAL_CAP_CPU_CONTEXT) && hal->cpu_context) {
            ld_status st = hal->cpu_context(hal->ctx, i, c);
            if (st != LD_STATUS_SUCCESS)
                return st;
            c->cpu = i;
        }
    }
    if (e->plat->system_time)
        d->info.system_time = e->plat->system_time(e->plat->ctx);
    d->info.system_uptime = ldi_now(e) / 100u;
    return LD_STATUS_SUCCESS;
}

/* Required data: the required kinds, every processor's current stack and
 * its page directory (CR3) page. */
void ldi_mark_required(ld_engine *e, ldi_session *s)
{
    ld_dump *d = s->dump;
    ldi_bitmap_clear_all(&s->required);
    for (size_t i = 0; i < d->kind_count; i++)
        if (ldi_kind_required((ld_page_kind)d->kinds[i].kind))
            ldi_bitmap_set_range(&s->required, d->kinds[i].first_pfn, d->kinds[i].page_count);
    ldi_context_pages(e, s, require_page);
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

/* After a quiesce: the corral event, then the events raised while the
 * machine was stopped (queued, in order), then the uncorral event. */
static void emit_quiesce_steps(ld_engine *e, uint16_t corral_id, uint16_t uncorral_id, const ld_quiesce_times *t)
{
    ld_event ev;
    e->queue_events = false;
    ldi_ev(&ev, e, corral_id);
    ldi_ev_u64(&ev, "CorralDuration_ms", ldi_ms(t->corral_ns));
    ldi_ev_u64(&ev, "DisableInterruptsDuration_ms", ldi_ms(t->disable_interrupts_ns));
    ldi_ev_u64(&ev, "SaveSupervisorStateDuration_ms", ldi_ms(t->save_supervisor_state_ns));
    ldi_ev_u64(&ev, "SuspendClockTimerDuration_ms", ldi_ms(t->suspend_clock_timer_ns));
    ldi_emit(e, &ev);
    ldi_flush_events(e);
    ldi_ev(&ev, e, uncorral_id);
    ldi_ev_u64(&ev, "UncorralDuration_ms", ldi_ms(t->uncorral_ns));
    ldi_ev_u64(&ev, "EnableInterruptsDuration_ms", ldi_ms(t->enable_interrupts_ns));
    ldi_ev_u64(&ev, "RestoreSupervisorStateDuration_ms", ldi_ms(t->restore_supervisor_state_ns));
    ldi_ev_u64(&ev, "ResumeClockTimerDuration_ms", ldi_ms(t->resume_clock_timer_ns));
    ldi_emit(e, &ev);
}

/* Run fn with the machine stopped. Events raised inside are queued and
 * delivered after the corral event, in order. A corral that fails leaves
 * the machine running (the HAL guarantees it) and is reported. */
ld_status ldi_quiesce(ld_engine *e, ldi_session *s, uint16_t start_id, uint16_t corral_id,
                      uint16_t uncorral_id, uint16_t end_id, ld_quiesced_fn fn, void *arg,
                      ld_quiesce_times *times, uint64_t *wall_ns)
{
    ldi_emit_simple(e, start_id);
    memset(times, 0, sizeof *times);
    e->queued = 0;
    e->queue_events = true;
    uint64_t t0 = ldi_now(e);
    ld_status st = e->hal->quiesce(e->hal->ctx, s->req->corral_timeout_ns, fn, arg, times);
    *wall_ns = ldi_now(e) - t0;
    emit_quiesce_steps(e, corral_id, uncorral_id, times);
    if (st == LD_STATUS_TIMEOUT)
        ldi_emit_generic(e, "Processors did not reach the corral in time; the machine was resumed", "TimeoutNs",
                         s->req->corral_timeout_ns, "ProcessorCount", s->dump->info.cpu_count);
    ldi_emit_simple(e, end_id);
    return st;
}

/* ---- the workflow ---- */

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

/* Event 6. ETW events always carry every field, so the unused parameter
 * pairs are sent empty, as Windows sends them. */
void ldi_emit_generic_n(ld_engine *e, const char *text, const char *const *pnames, const uint64_t *values,
                        unsigned count)
{
    static const char *const names[8][2] = {
        {"Parameter1Name", "Parameter1Value"}, {"Parameter2Name", "Parameter2Value"},
        {"Parameter3Name", "Parameter3Value"}, {"Parameter4Name", "Parameter4Value"},
        {"Parameter5Name", "Parameter5Value"}, {"Parameter6Name", "Parameter6Value"},
        {"Parameter7Name", "Parameter7Value"}, {"Parameter8Name", "Parameter8Value"},
    };
    ld_event ev;
    ldi_ev(&ev, e, 6);
    ldi_ev_str(&ev, "LiveDumpEventDescription", text);
    for (unsigned i = 0; i < 8; i++) {
        const char *n = i < count && pnames[i] && pnames[i][0] ? pnames[i] : 0;
        ldi_ev_str(&ev, names[i][0], n ? n : "");
        ldi_ev_u64(&ev, names[i][1], n ? values[i] : 0);
    }
    ldi_emit(e, &ev);
}

void ldi_emit_generic(ld_engine *e, const char *text, const char *n1, uint64_t v1, const char *n2, uint64_t v2)
{
    const char *names[2] = {n1, n2};
    uint64_t values[2] = {v1, v2};
    ldi_emit_generic_n(e, text, names, values, 2);
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

static uint64_t count_kinds(const ldi_session *s, bool (*pick)(uint32_t kind))
{
    const ld_dump *d = s->dump;
    uint64_t n = 0;
    for (size_t i = 0; i < d->kind_count; i++)
        if (pick(d->kinds[i].kind))
            n += ldi_bitmap_count_range(&s->select, d->kinds[i].first_pfn, d->kinds[i].page_count);
    return n;
}

static bool kind_is_hv(uint32_t k)
{
    return k == LD_PAGE_HV_ESSENTIAL || k == LD_PAGE_HV_NONESSENTIAL;
}

/* Pages of the machine's classification (not the selection) of some kinds. */
static uint64_t classified_pages(const ld_dump *d, bool (*pick)(uint32_t kind))
{
    uint64_t n = 0;
    for (size_t i = 0; i < d->kind_count; i++)
        if (pick(d->kinds[i].kind))
            n += d->kinds[i].page_count;
    return n;
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
        classified_pages(d, kind_is_hv) == 0) {
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
    uint64_t hv_pages = count_kinds(s, kind_is_hv);
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

/* Partial dump: drop selected pages, lowest priority first (user and
 * hypervisor, then other kernel data, then important data), highest PFN
 * first within a class. Required pages are never dropped. */
static int priority_class(uint32_t kind)
{
    if (ldi_kind_required((ld_page_kind)kind))
        return 3;
    if (ldi_kind_important((ld_page_kind)kind))
        return 2;
    if (kind == LD_PAGE_USER || kind_is_hv(kind) || kind == LD_PAGE_SECURE_KERNEL)
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

static ld_status allocate(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    const ld_platform *p = e->plat;
    ld_dump *d = s->dump;
    ld_result *res = s->res;
    uint64_t ps = hal->page_size;
    ld_status st = LD_STATUS_SUCCESS;
    uint64_t t0 = ldi_now(e);

    uint64_t hv_prep_ns = 0;
    if (s->hv) {
        uint64_t h0 = ldi_now(e);
        st = hal->hv_prepare(hal->ctx);
        hv_prep_ns = ldi_now(e) - h0;
        if (st != LD_STATUS_SUCCESS) {
            ldi_emit_status(e, 126, st);
            s->hv = false;
            s->hv_secondary_bytes = 0;
            st = LD_STATUS_SUCCESS; /* the dump goes on without hypervisor data */
        }
    }
    /* IO-space pools hold device-visible memory; with a secure kernel
     * running, hypervisor pages must not land there. */
    s->io_space = true;
    if ((s->req->add_pages & LD_ADD_HV_PAGES) && (hal->caps & LD_HAL_CAP_SECURE_KERNEL)) {
        s->io_space = false;
        ldi_emit_simple(e, 124);
    }
    res->io_space_enabled = s->io_space;

    /* The dump file size limit: leave the lowest-priority pages out so the
     * estimate fits. Required data that alone does not fit ends the request
     * as a full disk would, before any page is copied. The format's headers
     * count too, or the write side would refuse them; its bound for the
     * whole selection also bounds any smaller one. */
    bool limit_reached = false;
    if (s->size_limit) {
        ld_dump_info planned = d->info;
        planned.blobs = 0;
        planned.blob_count = e->callout_count + 2; /* callouts, hypervisor, IPT */
        uint64_t fixed = s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes +
                         (uint64_t)d->info.cpu_count * sizeof(ld_cpu_context) +
                         ldi_format_overhead(s->format, &planned, ldi_bitmap_count(&s->select));
        uint64_t sel_bytes = ldi_bitmap_count(&s->select) * ps;
        if (fixed + sel_bytes > s->size_limit) {
            limit_reached = true;
            uint64_t room = s->size_limit > fixed ? (s->size_limit - fixed) / ps : 0;
            uint64_t drop = ldi_bitmap_count(&s->select) - room;
            uint64_t dropped = trim_selection(s, drop);
            res->pages_left_out += dropped;
            res->size_limit_reached = true;
            if (dropped < drop) {
                st = LD_STATUS_DISK_FULL;
            } else {
                const char *names[3] = {"DumpFileSizeLimitInBytes", "PagesLeftOut", "EstimatedBytes"};
                uint64_t values[3] = {s->size_limit, dropped, fixed + sel_bytes};
                ldi_emit_generic_n(e, "Partial dump: the dump file size limit was reached; lowest-priority pages were left out",
                                   names, values, 3);
            }
        }
    }

    uint64_t spare = (uint64_t)d->info.cpu_count * LDI_SPARE_SLOTS_PER_CPU;
    uint64_t wanted = ldi_bitmap_count(&s->select) + spare;
    /* Without HAL pools (which bound themselves) buffers come from the
     * platform allocator: never more than available memory less the
     * threshold's reserve (and the secondary data), since where the OS
     * overcommits an allocation beyond that succeeds and the OOM killer
     * strikes later. Fewer buffers make a partial dump below, as a dry
     * pool does. */
    uint64_t alloc_pages = wanted;
    bool pools = (hal->caps & LD_HAL_CAP_POOLS) && hal->pool_open && hal->pool_alloc && hal->pool_free;
    if (s->know_memory && !pools) {
        uint64_t keep = s->mem_reserve + s->hv_secondary_bytes + s->ipt_bytes + s->callout_bytes;
        uint64_t budget = s->mem_available > keep ? (s->mem_available - keep) / ps : 0;
        alloc_pages = LDI_MIN(alloc_pages, budget);
    }
    ldi_pool_report rep;
    memset(&rep, 0, sizeof rep);
    if (st == LD_STATUS_SUCCESS) {
        st = ldi_buffers_alloc(&d->buffers, hal, alloc_pages, s->io_space, &rep);
        emit_pool_report(e, &rep);
    }
    uint64_t alloc_ns = ldi_now(e) - t0;
    bool abort_alloc = false;
    uint64_t short_by = st == LD_STATUS_SUCCESS && d->buffers.slots < wanted ? wanted - d->buffers.slots : 0;
    if (short_by) {
        uint64_t keep_min = ldi_bitmap_count(&s->required) + spare;
        if ((s->req->flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE) || d->buffers.slots < keep_min) {
            abort_alloc = true;
            st = LD_STATUS_INSUFFICIENT_RESOURCES;
        } else {
            uint64_t dropped = trim_selection(s, short_by);
            res->pages_left_out += dropped;
            ldi_emit_generic(e, "Partial dump: dump buffers could not be allocated for every page; lowest-priority pages were left out",
                             "PagesLeftOut", dropped, "PagesAllocated", d->buffers.slots);
        }
    }
    res->pages_estimated = wanted;
    res->pages_allocated = d->buffers.slots;
    for (int i = 0; i < LD_POOL_COUNT; i++)
        res->pool_pages[i] = d->buffers.pool_pages[i];

    /* Extra buffers: spare-slot map and secondary data. */
    uint64_t x0 = ldi_now(e);
    if (st == LD_STATUS_SUCCESS) {
        d->spare_cap = spare;
        d->spare_pfn = p->alloc(p->ctx, (size_t)(spare ? spare : 1) * sizeof(uint64_t));
        if (!d->spare_pfn)
            st = LD_STATUS_NO_MEMORY;
    }
    s->callouts_fit = false;
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
    uint64_t extra_ns = ldi_now(e) - x0;
    res->allocation_ns = ldi_now(e) - t0;

    uint64_t hv_pages = count_kinds(s, kind_is_hv);
    uint64_t sel = ldi_bitmap_count(&s->select);
    ld_event ev;
    ldi_ev(&ev, e, 107);
    ldi_ev_u64(&ev, "NtPrimaryDataBytes", (sel - hv_pages) * ps);
    ldi_ev_u64(&ev, "HvPrimaryDataBytes", hv_pages * ps);
    ldi_ev_u64(&ev, "HvSecondaryDataBytes", s->hv_secondary_bytes);
    ldi_ev_u64(&ev, "SkPrimaryDataBytes", 0);
    ldi_ev_u64(&ev, "AllocateDumpBuffersDuration_ms", ldi_ms(alloc_ns));
    ldi_ev_u64(&ev, "AllocateExtraBuffersDuration_ms", ldi_ms(extra_ns));
    ldi_ev_u64(&ev, "HvlPrepareLivedumpDescriptorDuration_ms", ldi_ms(hv_prep_ns));
    ldi_emit(e, &ev);

    ldi_ev(&ev, e, 113);
    ldi_ev_u64(&ev, "EstimatedPageCount", wanted);
    ldi_ev_u64(&ev, "AllocatedPageCount", d->buffers.slots);
    ldi_ev_u64(&ev, "VMMemoryPartitionIOSpaceAllocatedPages", d->buffers.pool_pages[LD_POOL_VM_PARTITION_IO_SPACE]);
    ldi_ev_u64(&ev, "VMMemoryPartitionAllocatedPages", d->buffers.pool_pages[LD_POOL_VM_PARTITION]);
    ldi_ev_u64(&ev, "SystemPartitionIOSpaceAllocatedPages", d->buffers.pool_pages[LD_POOL_SYSTEM_PARTITION_IO_SPACE]);
    ldi_ev_u64(&ev, "SystemPartitionAllocatedPages", d->buffers.pool_pages[LD_POOL_SYSTEM_PARTITION]);
    ldi_ev_u64(&ev, "LimitDumpFileSize", s->size_limit ? 1 : 0);
    ldi_ev_u64(&ev, "DumpFileSizeLimitInBytes", s->size_limit);
    ldi_ev_u64(&ev, "DumpFileSizeLimitReached", limit_reached ? 1 : 0);
    ldi_ev_u64(&ev, "AbortWhileBufferAllocation", abort_alloc ? 1 : 0);
    ldi_emit(e, &ev);

    for (uint32_t i = 0; i < e->callout_count; i++) {
        ldi_ev(&ev, e, 125);
        ldi_ev_str(&ev, "Callout", e->callouts[i].name);
        ldi_ev_u64(&ev, "Included", s->callouts_fit && st == LD_STATUS_SUCCESS);
        ldi_emit(e, &ev);
    }
    return st;
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

    if (!ldi_transition(e, LDI_SIZING_ESTIMATE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    if ((st = estimate(e, s)) != LD_STATUS_SUCCESS)
        return st;

    if (!ldi_transition(e, LDI_SIZING_ALLOCATE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    return allocate(e, s);
}
