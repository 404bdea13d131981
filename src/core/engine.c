/* The engine: the public API and the top of the pipeline. A capture goes
 * request -> policy gate (here) -> sizing (sizing.c, allocate.c) ->
 * capture pages (capture.c, quiesce.c) -> secondary data (secondary.c) ->
 * format writer and sink (write.c), each stage a file of its own below
 * this one; the state machine is state.c, events emit.c. */
#include "session.h"
#include "capture.h"
#include "emit.h"
#include "secondary.h"
#include "select.h"
#include "sizing.h"
#include "state.h"
#include "write.h"

/* ---- engine lifetime, subscriptions, registrations ---- */

void ld_engine_options_init(ld_engine_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->version = LD_ENGINE_OPTIONS_VERSION;
    opts->allow_live_dump = true;
    opts->max_deferred = 1;
    opts->on_event_mask = LD_CHANNEL_MASK_ALL;
    opts->dump_file_size_limit = 0;
    opts->dynamic_low_memory_threshold = true;
}

static bool hal_usable(const ld_hal *hal)
{
    const ld_platform *p = hal->platform;
    if (hal->version < 1 || hal->version > LD_HAL_VERSION || !p || p->version != LD_PLATFORM_VERSION)
        return false;
    if (!p->alloc || !p->free || !p->now_ns || !p->lock_create || !p->lock_acquire ||
        !p->lock_release || !p->lock_destroy)
        return false;
    if (!hal->mem_ranges || !hal->mem_kinds || !hal->mem_read || !hal->cpu_count || !hal->quiesce)
        return false;
    /* A page size the bitmaps and CR3 arithmetic can use. */
    return hal->page_size >= 512 && (hal->page_size & (hal->page_size - 1)) == 0;
}

ld_status ld_engine_create(const ld_hal *hal, const ld_engine_options *opts, ld_engine **out)
{
    ld_engine_options defaults;
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = 0;
    if (!hal || !hal_usable(hal))
        return LD_STATUS_INVALID_PARAMETER;
    if (!opts) {
        ld_engine_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->version != LD_ENGINE_OPTIONS_VERSION || opts->max_deferred > LD_MAX_DEFERRED)
        return LD_STATUS_INVALID_PARAMETER;
    ld_engine *e = ldi_zalloc(hal->platform, sizeof *e);
    if (!e)
        return LD_STATUS_NO_MEMORY;
    e->hal = hal;
    e->plat = hal->platform;
    e->allow = opts->allow_live_dump;
    e->max_deferred = opts->max_deferred;
    e->size_limit = opts->dump_file_size_limit;
    e->dynamic_threshold = opts->dynamic_low_memory_threshold;
    ld_status st = e->plat->lock_create(e->plat->ctx, &e->lock);
    if (st != LD_STATUS_SUCCESS) {
        e->plat->free(e->plat->ctx, e);
        return st;
    }
    if (opts->on_event) {
        e->subs[0].fn = opts->on_event;
        e->subs[0].arg = opts->on_event_arg;
        e->subs[0].mask = opts->on_event_mask ? opts->on_event_mask : LD_CHANNEL_MASK_ALL;
    }
    /* The policy is read once at start-up, as Windows reads AllowLiveDump
     * at boot. */
    ldi_emit_policy(e, "Query", e->allow, LD_STATUS_SUCCESS);
    if (!e->allow) {
        ld_event ev;
        ldi_ev(&ev, e, 273);
        ldi_ev_u64(&ev, "PolicyValue", 0);
        ldi_emit(e, &ev);
    }
    *out = e;
    return LD_STATUS_SUCCESS;
}

void ld_engine_destroy(ld_engine *e)
{
    if (!e)
        return;
    /* The engine owns what is still held: discard it (events 251/252). */
    while (e->held_count)
        (void)ld_engine_discard_deferred(e);
    e->plat->lock_destroy(e->plat->ctx, e->lock);
    e->plat->free(e->plat->ctx, e);
}

ld_status ld_engine_subscribe(ld_engine *e, uint32_t mask, ld_event_fn fn, void *arg)
{
    if (!e || !fn || !(mask & LD_CHANNEL_MASK_ALL))
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = LD_STATUS_INSUFFICIENT_RESOURCES;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    for (int i = 0; i < LDI_MAX_SUBSCRIBERS; i++) {
        if (!e->subs[i].fn) {
            e->subs[i].fn = fn;
            e->subs[i].arg = arg;
            e->subs[i].mask = mask;
            st = LD_STATUS_SUCCESS;
            break;
        }
    }
    e->plat->lock_release(e->plat->ctx, e->lock);
    return st;
}

ld_status ld_engine_unsubscribe(ld_engine *e, ld_event_fn fn, void *arg)
{
    if (!e || !fn)
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = LD_STATUS_NOT_FOUND;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    for (int i = 0; i < LDI_MAX_SUBSCRIBERS; i++) {
        if (e->subs[i].fn == fn && e->subs[i].arg == arg) {
            memset(&e->subs[i], 0, sizeof e->subs[i]);
            st = LD_STATUS_SUCCESS;
            break;
        }
    }
    e->plat->lock_release(e->plat->ctx, e->lock);
    return st;
}

static bool name_ok(const char *name)
{
    if (!name || !name[0])
        return false;
    for (size_t i = 0; name[i]; i++)
        if (i + 1 >= LDI_NAME_MAX || (unsigned char)name[i] < 0x20)
            return false;
    return true;
}

/* Registrations change only while no dump runs, so a capture sees a fixed
 * list. */
static bool lock_if_idle(ld_engine *e)
{
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    if (e->state == LDI_IDLE || e->state == LDI_HELD)
        return true;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return false;
}

ld_status ld_engine_add_remove_pages(ld_engine *e, const char *name, ld_remove_pages_fn fn, void *arg)
{
    if (!e || !fn || !name_ok(name))
        return LD_STATUS_INVALID_PARAMETER;
    if (!lock_if_idle(e))
        return LD_STATUS_DEVICE_BUSY;
    ld_status st = LD_STATUS_INSUFFICIENT_RESOURCES;
    if (e->remove_pages_count < LDI_MAX_REMOVE_PAGES) {
        ldi_remove_pages *r = &e->remove_pages[e->remove_pages_count++];
        ldi_strlcpy(r->name, name, sizeof r->name);
        r->fn = fn;
        r->arg = arg;
        st = LD_STATUS_SUCCESS;
    }
    e->plat->lock_release(e->plat->ctx, e->lock);
    return st;
}

ld_status ld_engine_add_callout(ld_engine *e, const char *name, const uint8_t guid[16],
                                uint64_t max_bytes, ld_callout_fn fn, void *arg)
{
    if (!e || !fn || !guid || !name_ok(name) || max_bytes == 0 ||
        max_bytes > LD_CALLOUT_MAX_BYTES)
        return LD_STATUS_INVALID_PARAMETER;
    if (!lock_if_idle(e))
        return LD_STATUS_DEVICE_BUSY;
    ld_status st = LD_STATUS_INSUFFICIENT_RESOURCES;
    if (e->callout_count < LDI_MAX_CALLOUTS) {
        ldi_callout *c = &e->callouts[e->callout_count++];
        ldi_strlcpy(c->name, name, sizeof c->name);
        memcpy(c->guid, guid, 16);
        c->max_bytes = max_bytes;
        c->fn = fn;
        c->arg = arg;
        st = LD_STATUS_SUCCESS;
    }
    e->plat->lock_release(e->plat->ctx, e->lock);
    return st;
}

ld_status ld_engine_set_allow_live_dump(ld_engine *e, bool allow)
{
    if (!e)
        return LD_STATUS_INVALID_PARAMETER;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    e->allow = allow;
    e->plat->lock_release(e->plat->ctx, e->lock);
    ldi_emit_policy(e, "Set", allow, LD_STATUS_SUCCESS);
    return LD_STATUS_SUCCESS;
}

ld_status ld_engine_report_policy_failure(ld_engine *e, ld_status failure)
{
    if (!e || failure == LD_STATUS_SUCCESS)
        return LD_STATUS_INVALID_PARAMETER;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    bool allow = e->allow;
    e->plat->lock_release(e->plat->ctx, e->lock);
    ldi_emit_policy(e, "Set", allow, failure);
    return LD_STATUS_SUCCESS;
}

ld_status ld_engine_set_limits(ld_engine *e, uint64_t dump_file_size_limit, bool dynamic_low_memory_threshold)
{
    if (!e)
        return LD_STATUS_INVALID_PARAMETER;
    if (!lock_if_idle(e))
        return LD_STATUS_DEVICE_BUSY;
    e->size_limit = dump_file_size_limit;
    e->dynamic_threshold = dynamic_low_memory_threshold;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return LD_STATUS_SUCCESS;
}

ld_status ld_engine_set_admission(ld_engine *e, ld_admit_fn fn, void *arg)
{
    if (!e)
        return LD_STATUS_INVALID_PARAMETER;
    if (!lock_if_idle(e))
        return LD_STATUS_DEVICE_BUSY;
    e->admit = fn;
    e->admit_arg = fn ? arg : 0;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return LD_STATUS_SUCCESS;
}

/* The hook's answer (or a note), as event 6. Its strings are terminated
 * here: the hook is the caller's code. */
static void emit_refusal(ld_engine *e, ld_admission *why)
{
    const char *names[LD_ADMISSION_PARAMS];
    why->description[sizeof why->description - 1] = 0;
    for (int i = 0; i < LD_ADMISSION_PARAMS; i++) {
        why->param_name[i][sizeof why->param_name[i] - 1] = 0;
        names[i] = why->param_name[i];
    }
    ldi_emit_generic_n(e, why->description[0] ? why->description : "Live dump refused by the admission hook", names,
                       why->param_value, LD_ADMISSION_PARAMS);
}

ld_status ld_engine_note(ld_engine *e, const ld_admission *note)
{
    if (!e || !note)
        return LD_STATUS_INVALID_PARAMETER;
    ld_admission copy = *note;
    emit_refusal(e, &copy);
    return LD_STATUS_SUCCESS;
}

/* ---- the capture API ---- */

/* What a capture holds only while it runs: the dirty log and its bitmaps. */
static void session_free(ld_engine *e, ldi_session *s)
{
    const ld_platform *p = e->plat;
    if (s->mirroring && e->hal->dirty_stop)
        (void)e->hal->dirty_stop(e->hal->ctx);
    s->mirroring = false;
    ldi_bitmap_free(&s->select, p);
    ldi_bitmap_free(&s->required, p);
    ldi_bitmap_free(&s->dirty, p);
}

static void fill_info(ld_dump_info *info, const ld_capture_request *req)
{
    info->bugcheck_code = req->bugcheck_code;
    for (int i = 0; i < 4; i++)
        info->bugcheck_params[i] = req->bugcheck_params[i];
    info->dump_type = (uint32_t)req->type;
    info->add_pages = req->add_pages;
    info->flags = req->flags;
}

/* The summary events 2, 202 and 252 share their fields. A request refused
 * before its dump existed (bad request, AllowLiveDump = 0, admission hook)
 * still reports what it asked for: its bug check and flags come from req. */
static void emit_api_end(ld_engine *e, uint16_t id, ld_status st, const ld_dump_info *info,
                         const ld_capture_request *req, const ld_result *res, uint64_t duration_ns)
{
    ld_dump_info from_req;
    if (!info && req) {
        memset(&from_req, 0, sizeof from_req);
        fill_info(&from_req, req);
        info = &from_req;
    }
    ld_event ev;
    ldi_ev(&ev, e, id);
    ldi_ev_u64(&ev, "NTStatus", st);
    ldi_ev_u64(&ev, "BugcheckCode", info ? info->bugcheck_code : 0);
    ldi_ev_u64(&ev, "BugCheckParameter1", info ? info->bugcheck_params[0] : 0);
    ldi_ev_u64(&ev, "BugCheckParameter2", info ? info->bugcheck_params[1] : 0);
    ldi_ev_u64(&ev, "BugCheckParameter3", info ? info->bugcheck_params[2] : 0);
    ldi_ev_u64(&ev, "BugCheckParameter4", info ? info->bugcheck_params[3] : 0);
    ldi_ev_u64(&ev, "AbortIfMemoryPressure", info ? (info->flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE) != 0 : 0);
    ldi_ev_u64(&ev, "DumpCaptureDuration_ms", ldi_ms(duration_ns));
    ldi_ev_u64(&ev, "SelectiveDump", info ? (info->flags & LD_FLAG_SELECTIVE_DUMP) != 0 : 0);
    ldi_ev_u64(&ev, "DynamicLowMemoryThresholdBytes", res ? res->low_memory_threshold : 0);
    ldi_ev_u64(&ev, "AvailablePhysicalMemoryInBytes", res ? res->available_bytes : 0);
    ldi_ev_u64(&ev, "TotalPhysicalMemoryInBytes", res ? res->physical_bytes : 0);
    ldi_ev_u64(&ev, "IOSpaceEnabled", res ? res->io_space_enabled : 0);
    ldi_emit(e, &ev);
}

static bool format_usable(const ld_format *f)
{
    return f && (f->version == 1 || f->version == LD_FORMAT_VERSION) && f->write;
}

/* A sink the engine may not call (unknown version) is left alone. */
static void drop_sink(ld_sink *sink)
{
    if (ld_sink_usable(sink))
        sink->abort(sink);
}

/* What a claimed engine had when the capture started. */
typedef struct capture_claim {
    bool allowed, can_defer;
    ld_admit_fn admit;
    void *admit_arg;
} capture_claim;

/* The policy gate: a valid request, a format and sink that fit it,
 * AllowLiveDump, then the admission hook (throttling). */
static ld_status policy_gate(ld_engine *e, const ld_capture_request *req, const ld_format *format,
                             const ld_sink *sink, const capture_claim *claim)
{
    bool defer = (req->flags & LD_FLAG_DEFER) != 0;
    ld_status st = ldi_validate_request(req, e->hal);
    if (st == LD_STATUS_SUCCESS &&
        (defer ? (format || sink) : (!format_usable(format) || !ld_sink_usable(sink))))
        st = LD_STATUS_INVALID_PARAMETER;
    /* max_deferred 0: this engine does not keep dumps. */
    if (st == LD_STATUS_SUCCESS && defer && !claim->can_defer)
        st = LD_STATUS_NOT_SUPPORTED;
    if (st == LD_STATUS_SUCCESS && !claim->allowed)
        st = LD_STATUS_ACCESS_DENIED;
    if (st == LD_STATUS_SUCCESS && claim->admit) {
        ld_admission why;
        memset(&why, 0, sizeof why);
        st = claim->admit(claim->admit_arg, req, &why);
        if (st != LD_STATUS_SUCCESS)
            emit_refusal(e, &why);
    }
    return st;
}

ld_status ld_engine_capture(ld_engine *e, const ld_capture_request *req, const ld_format *format,
                            ld_sink *sink, ld_result *result)
{
    ld_result local;
    ld_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    if (!e || !req) {
        drop_sink(sink);
        return res->status = LD_STATUS_INVALID_PARAMETER;
    }
    /* Claim the engine: one live dump at a time, and none while
     * max_deferred dumps are held (their buffers are still taken). */
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    bool claimed = (e->state == LDI_IDLE || e->state == LDI_HELD) &&
                   (e->held_count == 0 || e->held_count < e->max_deferred) && ldi_transition_locked(e, LDI_STARTED);
    capture_claim claim = {e->allow, e->held_count < e->max_deferred, e->admit, e->admit_arg};
    ldi_session s;
    memset(&s, 0, sizeof s);
    s.size_limit = e->size_limit;
    s.format = format;
    s.dynamic_threshold = e->dynamic_threshold;
    e->plat->lock_release(e->plat->ctx, e->lock);
    if (!claimed) {
        drop_sink(sink);
        return res->status = LD_STATUS_DEVICE_BUSY;
    }

    s.req = req;
    s.res = res;
    res->page_size = e->hal->page_size;
    s.t_start = ldi_now(e);
    ldi_emit_simple(e, 1);

    bool defer = (req->flags & LD_FLAG_DEFER) != 0;
    ld_status st = policy_gate(e, req, format, sink, &claim);
    if (st == LD_STATUS_SUCCESS) {
        s.dump = ldi_dump_new(e->hal);
        if (!s.dump)
            st = LD_STATUS_NO_MEMORY;
    }
    if (s.dump)
        fill_info(&s.dump->info, req);
    if (st == LD_STATUS_SUCCESS)
        st = ldi_sizing(e, &s);
    if (st == LD_STATUS_SUCCESS)
        st = ldi_capture_pages(e, &s);
    /* The dirty log is no longer needed once the pages are captured. */
    session_free(e, &s);
    if (st == LD_STATUS_SUCCESS)
        st = ldi_collect_secondary(e, &s);
    res->capture_ns = ldi_now(e) - s.t_start;

    bool held = false;
    if (st == LD_STATUS_SUCCESS && defer) {
        s.dump->result = *res;
        e->plat->lock_acquire(e->plat->ctx, e->lock);
        held = e->held_count < LD_MAX_DEFERRED && ldi_transition_locked(e, LDI_HELD);
        if (held)
            e->held[e->held_count++] = s.dump;
        e->plat->lock_release(e->plat->ctx, e->lock);
        if (held)
            res->deferred = s.dump;
        else
            st = LD_STATUS_INVALID_DEVICE_STATE;
    } else if (st == LD_STATUS_SUCCESS) {
        (void)ldi_transition(e, LDI_WRITING);
        st = ldi_write_dump(e, s.dump, format, sink, req->progress, req->progress_arg, res, 3, 4);
        sink = 0; /* consumed */
    }
    drop_sink(sink);
    res->status = st;
    emit_api_end(e, 2, st, s.dump ? &s.dump->info : 0, req, res, ldi_now(e) - s.t_start);
    if (!held) {
        ldi_dump_free(s.dump);
        e->plat->lock_acquire(e->plat->ctx, e->lock);
        (void)ldi_transition_locked(e, ldi_rest_state(e));
        e->plat->lock_release(e->plat->ctx, e->lock);
    }
    return st;
}
/* Index of handle among the held dumps (NULL: the oldest), or -1. Under
 * the lock. */
static int held_index(const ld_engine *e, const ld_dump *handle)
{
    if (!handle)
        return e->held_count ? 0 : -1;
    for (uint32_t i = 0; i < e->held_count; i++)
        if (e->held[i] == handle)
            return (int)i;
    return -1;
}

static void held_remove(ld_engine *e, int i)
{
    for (uint32_t k = (uint32_t)i; k + 1 < e->held_count; k++)
        e->held[k] = e->held[k + 1];
    e->held[--e->held_count] = 0;
}

ld_status ld_engine_write_deferred_ex(ld_engine *e, const ld_dump *handle, const ld_format *format, ld_sink *sink,
                                      ld_progress_fn progress, void *progress_arg, ld_result *result)
{
    ld_result local;
    ld_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    if (!e || !format_usable(format) || !ld_sink_usable(sink)) {
        drop_sink(sink);
        return res->status = LD_STATUS_INVALID_PARAMETER;
    }
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    int idx = held_index(e, handle);
    ld_dump *d = idx >= 0 ? e->held[idx] : 0;
    bool claimed = d && e->state == LDI_HELD && ldi_transition_locked(e, LDI_WRITING);
    bool busy = d && !claimed;
    e->plat->lock_release(e->plat->ctx, e->lock);

    uint64_t t0 = ldi_now(e);
    ldi_emit_simple(e, 201);
    ld_status st;
    if (!claimed) {
        sink->abort(sink);
        st = busy ? LD_STATUS_DEVICE_BUSY : LD_STATUS_INVALID_DEVICE_STATE;
        emit_api_end(e, 202, st, 0, 0, 0, ldi_now(e) - t0);
        return res->status = st;
    }
    *res = d->result;
    res->deferred = 0;
    st = ldi_write_dump(e, d, format, sink, progress, progress_arg, res, 203, 204);
    res->status = st;
    emit_api_end(e, 202, st, &d->info, 0, res, ldi_now(e) - t0);
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    if (st == LD_STATUS_SUCCESS)
        held_remove(e, held_index(e, d));
    /* On failure nothing is lost: the data stays held for a write elsewhere. */
    (void)ldi_transition_locked(e, ldi_rest_state(e));
    e->plat->lock_release(e->plat->ctx, e->lock);
    if (st == LD_STATUS_SUCCESS)
        ldi_dump_free(d);
    return st;
}

ld_status ld_engine_write_deferred_dump(ld_engine *e, const ld_dump *handle, const ld_format *format,
                                       ld_sink *sink, ld_result *result)
{
    return ld_engine_write_deferred_ex(e, handle, format, sink, 0, 0, result);
}

ld_status ld_engine_write_deferred(ld_engine *e, const ld_format *format, ld_sink *sink, ld_result *result)
{
    return ld_engine_write_deferred_ex(e, 0, format, sink, 0, 0, result);
}

ld_status ld_engine_discard_deferred_dump(ld_engine *e, const ld_dump *handle)
{
    if (!e)
        return LD_STATUS_INVALID_PARAMETER;
    uint64_t t0 = ldi_now(e);
    ldi_emit_simple(e, 251);
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    int idx = held_index(e, handle);
    ld_dump *d = idx >= 0 ? e->held[idx] : 0;
    /* Only while nothing runs: a capture or write may be using it. */
    bool claimed = d && e->state == LDI_HELD;
    if (claimed) {
        held_remove(e, idx);
        if (e->held_count == 0)
            (void)ldi_transition_locked(e, LDI_IDLE);
    }
    bool busy = d && !claimed;
    e->plat->lock_release(e->plat->ctx, e->lock);
    ld_status st = claimed ? LD_STATUS_SUCCESS : busy ? LD_STATUS_DEVICE_BUSY : LD_STATUS_INVALID_DEVICE_STATE;
    emit_api_end(e, 252, st, claimed ? &d->info : 0, 0, claimed ? &d->result : 0, ldi_now(e) - t0);
    if (claimed)
        ldi_dump_free(d);
    return st;
}

ld_status ld_engine_discard_deferred(ld_engine *e)
{
    return ld_engine_discard_deferred_dump(e, 0);
}

const ld_dump *ld_engine_deferred(const ld_engine *e)
{
    if (!e)
        return 0;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    const ld_dump *d = e->held_count ? e->held[0] : 0;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return d;
}

bool ld_engine_holds(const ld_engine *e, const ld_dump *handle)
{
    if (!e || !handle)
        return false;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    bool held = held_index(e, handle) >= 0;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return held;
}

uint32_t ld_engine_deferred_count(const ld_engine *e)
{
    if (!e)
        return 0;
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    uint32_t n = e->held_count;
    e->plat->lock_release(e->plat->ctx, e->lock);
    return n;
}

void ld_page_set_remove(ld_page_set *set, uint64_t first_pfn, uint64_t count)
{
    if (set)
        ldi_bitmap_clear_range((ldi_bitmap *)set, first_pfn, count);
}

bool ld_page_set_contains(const ld_page_set *set, uint64_t pfn)
{
    return set && ldi_bitmap_test((const ldi_bitmap *)set, pfn);
}
