/* The capture-pages workflow (events 151-169).
 *
 * Mirroring is pre-copy: phase 0 copies every page of the dump into its
 * buffer slot while the machine runs; phase 1 recopies the pages the dirty
 * log reports, pass after pass, while that set shrinks; the quiesce then
 * copies only what was dirtied since the last pass. So the time the machine
 * is stopped follows the dirty set, not the memory size. Without a dirty
 * log every page is copied while the machine is stopped. */
#include "capture.h"
#include "emit.h"
#include "quiesce.h"
#include "state.h"

#define COPY_MAX_RUN 256u

/* Copy every page of `set` (AND `also`, if given) from the machine into
 * its slot, walking both bitmaps word by word. Consecutive pages whose
 * slots are adjacent go in one HAL read. `running`: the machine runs, so a
 * cancel is honoured between runs; in the quiesce the copy always ends. */
static ld_status copy_set(ld_engine *e, ldi_session *s, const ldi_bitmap *set, const ldi_bitmap *also,
                          const char *phase, bool running, uint64_t *copied)
{
    const ld_hal *hal = e->hal;
    uint64_t total = phase ? ldi_bitmap_count(set) : 0, done = 0;
    uint64_t pfn, n;
    uint8_t *dst;
    for (ldi_dump_run(s->dump, set, also, 0, COPY_MAX_RUN, true, &pfn, &n, &dst); pfn != LDI_NO_PFN;
         ldi_dump_run(s->dump, set, also, pfn + n, COPY_MAX_RUN, true, &pfn, &n, &dst)) {
        if (!dst)
            return LD_STATUS_INVALID_DEVICE_STATE; /* a page without a slot: engine bug */
        ld_status st = hal->mem_read(hal->ctx, pfn, n, dst);
        if (st != LD_STATUS_SUCCESS)
            return st;
        done += n;
        if (phase && (done % 16384 < n || done == total) && ldi_progress(s, phase, done, total) != LD_STATUS_SUCCESS)
            break;
        if (running && ldi_check_stop(e, s) != LD_STATUS_SUCCESS)
            break;
    }
    *copied += done;
    if (running && s->stop != LD_STATUS_SUCCESS)
        return s->stop;
    return LD_STATUS_SUCCESS;
}

/* Fetch the dirty log into s->dirty (cleared first), restricted to `keep`. */
static ld_status fetch_dirty(ld_engine *e, ldi_session *s, const ldi_bitmap *keep, uint64_t *count)
{
    uint64_t raw = 0;
    ldi_bitmap_clear_all(&s->dirty);
    ld_status st = e->hal->dirty_fetch(e->hal->ctx, s->dirty.words, s->dirty.nbits, &raw);
    if (st != LD_STATUS_SUCCESS)
        return st;
    ldi_bitmap_and(&s->dirty, keep);
    *count = ldi_bitmap_count(&s->dirty);
    return LD_STATUS_SUCCESS;
}

static void mirror_failed(ld_engine *e, ldi_session *s, ld_status st)
{
    ld_event ev;
    ldi_ev(&ev, e, 168);
    ldi_ev_u64(&ev, "NTStatus", st);
    ldi_ev_u64(&ev, "MirrorInProgress", 1);
    ldi_emit(e, &ev);
    (void)e->hal->dirty_stop(e->hal->ctx);
    s->mirroring = false;
}

/* Phase 0 and phase 1. A failure of the dirty log ends mirroring (the
 * quiesce then copies everything); a failure to read memory ends the dump. */
static ld_status mirror(ld_engine *e, ldi_session *s)
{
    ld_dump *d = s->dump;
    ld_result *res = s->res;
    const ld_capture_request *req = s->req;
    s->mirror_start_ns = ldi_now(e);
    ldi_emit_simple(e, 151);

    if (!ldi_transition(e, LDI_CAPTURE_PHASE0))
        return LD_STATUS_INVALID_DEVICE_STATE;
    /* Pages dirtied before this point are covered by the full copy. */
    uint64_t ignored;
    ld_status st = fetch_dirty(e, s, &d->slots_map, &ignored);
    if (st != LD_STATUS_SUCCESS) {
        mirror_failed(e, s, st);
    } else {
        uint64_t t0 = ldi_now(e);
        st = copy_set(e, s, &d->slots_map, 0, "mirror", true, &res->mirror_phase0_pages);
        res->mirror_phase0_ns = ldi_now(e) - t0;
        if (st != LD_STATUS_SUCCESS)
            return st;
    }
    ldi_emit_simple(e, 152);

    if (!ldi_transition(e, LDI_CAPTURE_PHASE1))
        return LD_STATUS_INVALID_DEVICE_STATE;
    uint64_t t1 = ldi_now(e);
    uint64_t prev = UINT64_MAX;
    /* Stop once what is left is small enough to copy stopped in well under
     * a millisecond, once a pass no longer shrinks the set by a tenth, or
     * at the pass or time budget. */
    uint64_t target = LDI_MAX(64u, d->slot_pages / 4096u);
    while (s->mirroring && res->mirror_passes < req->mirror_max_passes) {
        if ((st = ldi_check_stop(e, s)) != LD_STATUS_SUCCESS)
            return st;
        uint64_t n = 0;
        st = fetch_dirty(e, s, &d->slots_map, &n);
        if (st != LD_STATUS_SUCCESS) {
            mirror_failed(e, s, st);
            break;
        }
        res->mirror_passes++;
        st = copy_set(e, s, &s->dirty, 0, 0, true, &res->mirror_phase1_pages);
        if (st != LD_STATUS_SUCCESS)
            return st;
        if (n <= target || (prev != UINT64_MAX && n * 10 > prev * 9) || ldi_now(e) - t1 > req->mirror_budget_ns)
            break;
        prev = n;
    }
    res->mirror_phase1_ns = ldi_now(e) - t1;
    ldi_emit_simple(e, 153);
    s->mirror_bytes = (res->mirror_phase0_pages + res->mirror_phase1_pages) * e->hal->page_size;
    return LD_STATUS_SUCCESS;
}

typedef struct capture_ctx {
    ld_engine *e;
    ldi_session *s;
} capture_ctx;

/* livedump's own tags for the HAL's secondary data. */
static const uint8_t hv_guid[16] = LD_BLOB_GUID_HYPERVISOR;
static const uint8_t ipt_guid[16] = LD_BLOB_GUID_IPT;

/* A current stack or page directory that had no slot at sizing gets a
 * spare one (allocated then: nothing is allocated here). */
static void take_context_page(ldi_session *s, uint64_t pfn)
{
    ld_dump *d = s->dump;
    if (ldi_bitmap_test(&d->present, pfn))
        return;
    if (ldi_dump_spare(d, pfn) == LD_STATUS_SUCCESS)
        ldi_bitmap_set(&d->present, pfn);
}

/* Everything here runs with the machine stopped, so it does only what must:
 * one copy of the bitmap sizing decided, O(processors) for the stacks, one
 * dirty-log fetch, and the copy of what that fetch names. */
static ld_status capture_quiesced(void *arg)
{
    capture_ctx *c = arg;
    ld_engine *e = c->e;
    ldi_session *s = c->s;
    ld_dump *d = s->dump;
    const ld_hal *hal = e->hal;

    ld_status st = ldi_capture_contexts(e, s);
    if (st != LD_STATUS_SUCCESS)
        return st;
    ldi_emit_simple(e, 158);

    /* The final bitmap is the one sizing decided (classification, removed
     * file cache, RemovePages callbacks, buffer fit: slots_map), plus the
     * required data of this instant: the processors' current stacks and
     * page directories. The required kinds are in slots_map already. */
    uint64_t t0 = ldi_now(e);
    ldi_bitmap_copy(&d->present, &d->slots_map);
    uint64_t spares_before = d->spare_count;
    ldi_context_pages(e, s, take_context_page);
    ldi_emit_simple(e, 159);
    ldi_emit_simple(e, 160);
    {
        ld_event ev;
        ldi_ev(&ev, e, 161);
        ldi_ev_u64(&ev, "PopulateBitmapForDumpDuration_ms", ldi_ms(ldi_now(e) - t0));
        ldi_ev_u64(&ev, "RemoveSystemCacheFromDumpDuration_ms", 0); /* done in sizing */
        ldi_emit(e, &ev);
    }

    if (s->hv) {
        uint64_t h0 = ldi_now(e);
        st = ldi_dump_add_blob(d, hal->hv_collect, hal->ctx, s->hv_secondary_bytes, "hypervisor", hv_guid);
        s->res->hv_collect_ns = ldi_now(e) - h0;
        if (st != LD_STATUS_SUCCESS)
            s->hv = false; /* reported after the quiesce */
        ldi_emit_simple(e, 162);
    }
    if (s->ipt) {
        st = ldi_dump_add_blob(d, hal->ipt_collect, hal->ctx, s->ipt_bytes, "ipt", ipt_guid);
        if (st != LD_STATUS_SUCCESS)
            s->ipt = false;
        ldi_emit_simple(e, 163);
    }

    /* The instant of the dump: the last dirty set (s->dirty was cleared
     * before the quiesce). What it names is copied now; every other page
     * already holds its current content. Without a log, everything is. */
    bool all = !s->mirroring;
    if (s->mirroring) {
        uint64_t raw = 0;
        st = hal->dirty_fetch(hal->ctx, s->dirty.words, s->dirty.nbits, &raw);
        if (st != LD_STATUS_SUCCESS) {
            s->fail_in_quiesce = st; /* reported after; still consistent: */
            all = true;
        }
    }
    ldi_emit_simple(e, 164);

    ldi_emit_simple(e, 156);
    uint64_t c0 = ldi_now(e);
    st = copy_set(e, s, &d->present, all ? 0 : &s->dirty, 0, false, &s->res->quiesce_copied_pages);
    /* New spare pages were never copied while running. */
    for (uint64_t i = spares_before; st == LD_STATUS_SUCCESS && i < d->spare_count; i++) {
        uint64_t pfn = d->spare_pfn[i];
        if (!all && ldi_bitmap_test(&s->dirty, pfn))
            continue; /* copied just above */
        st = hal->mem_read(hal->ctx, pfn, 1, ldi_dump_slot(d, pfn));
        s->res->quiesce_copied_pages++;
    }
    s->res->copy_ns = ldi_now(e) - c0;
    ldi_emit_simple(e, 157);
    return st;
}

ld_status ldi_capture_pages(ld_engine *e, ldi_session *s)
{
    ld_result *res = s->res;
    uint64_t t0 = ldi_now(e);
    ld_status st;
    if (s->mirroring) {
        st = mirror(e, s);
        if (st != LD_STATUS_SUCCESS)
            return st;
    }
    /* The last moment a cancel is taken: once the quiesce starts, it ends
     * with the copy (never with processors left corralled). */
    if ((st = ldi_check_stop(e, s)) != LD_STATUS_SUCCESS)
        return st;
    if (!ldi_transition(e, LDI_CAPTURE_QUIESCED))
        return LD_STATUS_INVALID_DEVICE_STATE;
    uint64_t end_mirror_ns = ldi_now(e) - t0;
    s->fail_in_quiesce = LD_STATUS_SUCCESS;
    /* The dirty log ORs into this bitmap inside the quiesce; clear it now,
     * while the machine runs. */
    ldi_bitmap_clear_all(&s->dirty);
    capture_ctx c = {e, s};
    st = ldi_quiesce(e, s, 154, 165, 166, 155, capture_quiesced, &c, &res->capture_quiesce,
                     &res->capture_stopped_ns);
    if (s->fail_in_quiesce != LD_STATUS_SUCCESS)
        mirror_failed(e, s, s->fail_in_quiesce);
    res->mirrored = s->mirroring;
    res->machine_stopped = (e->hal->caps & LD_HAL_CAP_QUIESCE) != 0;
    if (st != LD_STATUS_SUCCESS)
        return st;
    if (s->req->add_pages & LD_ADD_HV_PAGES && !s->hv && (e->hal->caps & LD_HAL_CAP_HYPERVISOR))
        ldi_emit_generic(e, "Hypervisor secondary data could not be collected", 0, 0, 0, 0);
    ldi_dump_count_kinds(s->dump, res);
    res->memory_capture_ns = ldi_now(e) - t0;

    ld_event ev;
    ldi_ev(&ev, e, 167);
    ldi_ev_u64(&ev, "MemoryCaptureDuration_ms", ldi_ms(res->memory_capture_ns));
    ldi_ev_u64(&ev, "SystemQuiescedDuration_ms", ldi_ms(res->capture_stopped_ns));
    ldi_ev_u64(&ev, "EndMirroringPhasesDuration_ms", ldi_ms(end_mirror_ns));
    ldi_ev_u64(&ev, "MirrorPhysicalMemoryDuration_ms", ldi_ms(res->mirror_phase0_ns + res->mirror_phase1_ns));
    ldi_ev_u64(&ev, "MirrorPhysicalMemorySizeInBytes", s->mirror_bytes);
    ldi_ev_u64(&ev, "HvlCollectLivedumpDuration_ms", ldi_ms(res->hv_collect_ns));
    ldi_ev_u64(&ev, "DumpDataBufferingDuration_ms", ldi_ms(res->copy_ns));
    ldi_emit(e, &ev);
    return LD_STATUS_SUCCESS;
}
