/* Captures and deferred writes into the report storage: admission through
 * the engine's hook, the file at a name no file has, the landing record
 * before the machine is stopped, then the state and retention; the held
 * deferred dumps this storage admitted; cancellation. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "livedump/runtime.h"
#include "error.h"
#include "folders.h"
#include "lock.h"
#include "names.h"
#include "retention.h"
#include "throttle.h"

/* ---- cancellation (ld_reports_set_cancel) ---- */

static bool cancelled(const ld_reports *r)
{
    return r->cancelled && r->cancelled(r->cancel_arg);
}

/* The report's file sink is filtered: a stop fails the next write (the
 * engine then aborts the sink, which removes the .partial file) or the
 * finish. The filter lives in the storage object: one report is written at
 * a time. */
static ld_status check_cancel(void *arg, uint64_t offset, size_t len)
{
    (void)offset;
    (void)len;
    return cancelled(arg) ? LD_STATUS_CANCELLED : LD_STATUS_SUCCESS;
}

static void wrap_cancel(ld_reports *r, ld_sink **sink)
{
    if (r->cancelled)
        *sink = ld_sink_filter_init(&r->cancel_filter, *sink, check_cancel, r);
}

void ld_reports_set_cancel(ld_reports *r, ld_reports_cancel_fn fn, void *arg)
{
    if (!r)
        return;
    r->cancelled = fn;
    r->cancel_arg = fn ? arg : NULL;
}

/* A sink at a name no file has: same-second dumps take -1, -2, ... */
static ld_status open_report_sink(ld_reports *r, const char *component, bool full, const char *ext, uint64_t when,
                                  ld_sink **sink, char *path, size_t cap)
{
    int dfd;
    bool owned;
    ld_status st = ldr_dump_folder(r, component, full, &dfd, &owned);
    if (st != LD_STATUS_SUCCESS)
        return st;
    st = LD_STATUS_OBJECT_NAME_COLLISION;
    for (uint32_t seq = 0; seq < 1000; seq++) {
        char name[96];
        ldr_dump_name(name, sizeof name, component, when, seq, ext);
        if ((size_t)(full ? snprintf(path, cap, "%s/%s", r->root, name)
                          : snprintf(path, cap, "%s/%s/%s", r->root, component, name)) >= cap) {
            st = LD_STATUS_BUFFER_TOO_SMALL;
            break;
        }
        st = ld_sink_file_openat(dfd, name, sink);
        /* Busy: another writer has this name's .partial; take the next. */
        if (st != LD_STATUS_OBJECT_NAME_COLLISION && st != LD_STATUS_DEVICE_BUSY)
            break;
    }
    if (st == LD_STATUS_SUCCESS)
        wrap_cancel(r, sink);
    if (owned)
        close(dfd);
    return st;
}

/* ---- captures into the reports ---- */

/* The storage could not save the state, so the dump was not kept: say so
 * (in the call's error detail, and as event 6 when an engine is there to
 * tell). */
static void not_kept(ld_reports *r, ld_engine *e, ld_status st, const char *what)
{
    ldu_fail(r->call_err, st, "cannot save the throttling state %s/%s (%s): %s", r->root, LDR_STATE_FILE,
             ld_status_describe(st), what);
    if (!e)
        return;
    ld_admission note;
    memset(&note, 0, sizeof note);
    snprintf(note.description, sizeof note.description, "Throttling state not saved (%.60s): %s",
             ld_status_describe(st), what);
    snprintf(note.param_name[0], sizeof note.param_name[0], "ThrottleStateSaved");
    (void)ld_engine_note(e, &note);
}

static ld_status admit_hook(void *arg, const ld_capture_request *req, ld_admission *why)
{
    ld_reports *r = arg;
    ld_status st = ld_reports_admit(r, r->admit_component, req->type, why);
    if (st != LD_STATUS_SUCCESS || !r->admit_rel)
        return st;
    /* Admitted, and written now: the landing record first. The state is
     * saved before the machine is stopped and the dump is named, so a dump
     * that lands is counted whatever fails after it; if it cannot be
     * saved no dump is taken. */
    st = ldr_landing_begin(r, r->admit_component, r->admit_time, r->admit_rel);
    if (st != LD_STATUS_SUCCESS) {
        not_kept(r, NULL, st, "no dump was taken"); /* the engine tells event 6 from why */
        memset(why, 0, sizeof *why);
        snprintf(why->description, sizeof why->description,
                 "Live dump not taken: the throttling state could not be saved (%.80s)", ld_status_describe(st));
        snprintf(why->param_name[0], sizeof why->param_name[0], "ThrottleStateSaved");
    }
    return st;
}

/* After a dump landed under `rel`: the state (its place, newest; a full
 * dump's time), retention (never of this dump), the state saved. Failing
 * to save it then is no failure of the dump: a full dump's landing record,
 * saved before, already counts it, and a small one is added at the next
 * load. */
static void landed(ld_reports *r, ld_engine *e, const char *rel, const char *component, bool full, uint64_t when)
{
    (void)ldr_reconcile(r, rel, NULL);
    (void)ldr_record(r, rel, component, full, when);
    (void)ldr_prune(r, e, rel, NULL);
    (void)ldr_state_save(r);
}

/* A small dump landed without the lock: record it if the lock is free.
 * Busy (another process is taking a full dump): the next load adds it,
 * after the reports it knows, and its retention runs at the next landing. */
static void landed_small(ld_reports *r, ld_engine *e, const char *rel, const char *component, uint64_t when)
{
    int lock;
    if (ldr_trylock(r, &lock) != LD_STATUS_SUCCESS)
        return;
    if (ldr_state_reload(r) == LD_STATUS_SUCCESS)
        landed(r, e, rel, component, false, when);
    ldr_unlock(lock);
}

/* ---- held deferred dumps ---- */

static bool held_is(const ld_engine *e, const ldr_held *h)
{
    return ld_engine_holds(e, h->handle) && ld_dump_get_info(h->handle)->system_uptime == h->uptime;
}

/* Forget the held dumps the engine no longer holds (discarded through the
 * engine, or the engine's own limit), so they stop counting. */
static void forget_released(ld_reports *r, const ld_engine *e)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < r->held_count; i++)
        if (held_is(e, &r->held[i]))
            r->held[kept++] = r->held[i];
    r->held_count = kept;
}

static ldr_held *find_held(ld_reports *r, const ld_dump *d)
{
    for (uint32_t i = 0; d && i < r->held_count; i++)
        if (r->held[i].handle == d)
            return &r->held[i];
    return NULL;
}

static void forget_held(ld_reports *r, const ldr_held *h)
{
    uint32_t i = (uint32_t)(h - r->held);
    memmove(&r->held[i], &r->held[i + 1], (r->held_count - i - 1) * sizeof r->held[0]);
    r->held_count--;
}

/* A corrupt throttling state found at open is told in the event stream
 * too (event 6), once, to the first engine that captures or writes here. */
static void note_state_problem(ld_reports *r, ld_engine *e)
{
    if (!r->state_problem[0] || r->state_problem_noted)
        return;
    r->state_problem_noted = true;
    ld_admission note;
    memset(&note, 0, sizeof note);
    const char *why = strstr(r->state_problem, LDR_STATE_FILE ": ");
    snprintf(note.description, sizeof note.description, "Throttling state %.150s",
             why ? why + strlen(LDR_STATE_FILE ": ") : r->state_problem);
    snprintf(note.param_name[0], sizeof note.param_name[0], "ThrottleStateRebuilt");
    note.param_value[0] = 1;
    snprintf(note.param_name[1], sizeof note.param_name[1], "LastFullLiveReportUnixTime");
    note.param_value[1] = r->system_last;
    (void)ld_engine_note(e, &note);
}

/* The storage's own refusal, as event 6, when it decides without the
 * engine starting a capture. */
static ld_status refuse(ld_engine *e, ld_status st, ld_admission *why, ld_result *res)
{
    (void)ld_engine_note(e, why);
    return res->status = st;
}

/* One capture or deferred write into the storage: what it was given. */
typedef struct report_call {
    ld_engine *engine;
    const char *component;
    const ld_capture_request *req; /* a capture */
    const ld_dump *handle;         /* a deferred write: NULL = the oldest */
    const ld_format *format;
    ld_result *res;
    char *path;
    size_t cap;
    ld_error *err;
} report_call;

/* What both calls do first: a cleared result, no path and no storage
 * error yet; then their arguments (args_ok: the call's own ones), a
 * storage that may write, no stop asked. */
static ld_status begin(ld_reports *r, report_call *c, bool args_ok)
{
    memset(c->res, 0, sizeof *c->res);
    if (c->path && c->cap)
        c->path[0] = 0;
    ld_error_clear(c->err);
    if (!r || !c->engine || !ld_component_name_valid(c->component) || !args_ok)
        return c->res->status = LD_STATUS_INVALID_PARAMETER;
    if (r->read_only)
        return c->res->status = LD_STATUS_ACCESS_DENIED;
    if (cancelled(r))
        return c->res->status = LD_STATUS_CANCELLED; /* a held dump stays held */
    return LD_STATUS_SUCCESS;
}

typedef ld_status (*report_step)(ld_reports *r, report_call *c);

/* `step`, under the throttling lock with the state read again when
 * `locked` (a dump another process recorded since the open counts, and
 * none is admitted meanwhile); the storage's own failures go to the call's
 * error detail. */
static ld_status run(ld_reports *r, report_call *c, report_step step, bool locked)
{
    r->call_err = c->err;
    int lock = -1;
    ld_status st = locked ? ldr_lock(r, &lock) : LD_STATUS_SUCCESS;
    if (st == LD_STATUS_SUCCESS && locked)
        st = ldr_state_reload(r);
    if (st == LD_STATUS_SUCCESS)
        st = step(r, c);
    else
        c->res->status = st;
    ldr_unlock(lock);
    r->call_err = NULL;
    return st;
}

/* What both calls do once they may go on: a problem of the state told,
 * the held dumps the engine let go forgotten. */
static void catch_up(ld_reports *r, ld_engine *e)
{
    note_state_problem(r, e);
    forget_released(r, e);
}

/* The dump has its file `where`: the caller learns the name. */
static void tell_path(const report_call *c, const char *where)
{
    if (c->path && c->cap)
        snprintf(c->path, c->cap, "%s", where);
}

/* ld_reports_capture, arguments checked and, for a full dump, under the
 * throttling lock with the state read again. */
static ld_status capture_step(ld_reports *r, report_call *c)
{
    ld_engine *e = c->engine;
    const ld_capture_request *req = c->req;
    ld_result *res = c->res;
    char where[LD_SETTINGS_PATH_MAX + 64];
    bool defer = (req->flags & LD_FLAG_DEFER) != 0;
    catch_up(r, e);
    ld_status st;
    /* While the engine holds a dump it may start no capture at all (its
     * max_deferred limit, LD_STATUS_DEVICE_BUSY); throttling is decided here
     * first, so a throttled request is named as such (event 6 alone). */
    if (ld_engine_deferred_count(e) > 0) {
        ld_admission why;
        st = ld_reports_admit(r, c->component, req->type, &why);
        if (st != LD_STATUS_SUCCESS)
            return refuse(e, st, &why, res);
    }
    st = ld_engine_set_admission(e, admit_hook, r);
    if (st != LD_STATUS_SUCCESS)
        return res->status = st;
    r->admit_component = c->component;
    bool full = req->type == LD_DUMP_FULL_KERNEL;
    uint64_t when = ldr_now(r);
    ld_sink *sink = NULL;
    const char *rel = NULL;
    if (!defer) {
        st = open_report_sink(r, c->component, full, ld_format_name(c->format), when, &sink, where, sizeof where);
        if (st != LD_STATUS_SUCCESS) {
            (void)ld_engine_set_admission(e, NULL, NULL);
            r->admit_component = NULL;
            return res->status = st;
        }
        rel = where + strlen(r->root) + 1;
        /* The hook saves the landing record once the dump is admitted. */
        r->admit_rel = full ? rel : NULL;
        r->admit_time = when;
    }
    st = ld_engine_capture(e, req, defer ? NULL : c->format, sink, res);
    (void)ld_engine_set_admission(e, NULL, NULL);
    r->admit_component = NULL;
    r->admit_rel = NULL;
    if (st != LD_STATUS_SUCCESS)
        ldr_landing_cancel(r);
    if (st == LD_STATUS_SUCCESS && defer && res->deferred && r->held_count < LD_MAX_DEFERRED) {
        ldr_held *h = &r->held[r->held_count++];
        h->handle = res->deferred;
        h->uptime = ld_dump_get_info(res->deferred)->system_uptime;
        snprintf(h->component, sizeof h->component, "%s", c->component);
        h->time = when;
        h->full = full;
    }
    if (st == LD_STATUS_SUCCESS && !defer) {
        tell_path(c, where);
        if (full)
            landed(r, e, rel, c->component, true, when);
        else
            landed_small(r, e, rel, c->component, when);
    }
    return st;
}

ld_status ld_reports_capture(ld_reports *r, ld_engine *e, const char *component, const ld_capture_request *req,
                             const ld_format *format, ld_result *result, char *path, size_t cap, ld_error *err)
{
    ld_result local;
    bool defer = req && (req->flags & LD_FLAG_DEFER) != 0;
    if (!defer && !format)
        format = ld_format_dmp(); /* live kernel reports are .dmp files, as on Windows */
    report_call c = {e, component, req, NULL, format, result ? result : &local, path, cap, err};
    ld_status st = begin(r, &c, req && (defer || ldr_ext_ok(ld_format_name(format))));
    /* Only full dumps are throttled: small ones need no lock. */
    if (st == LD_STATUS_SUCCESS)
        st = run(r, &c, capture_step, req->type == LD_DUMP_FULL_KERNEL);
    return ldu_error_end(err, st);
}

void ld_reports_set_progress(ld_reports *r, ld_progress_fn progress, void *arg)
{
    if (!r)
        return;
    r->progress = progress;
    r->progress_arg = arg;
}

/* ld_reports_write_deferred, arguments checked, under the throttling lock
 * with the state read again. */
static ld_status write_deferred_step(ld_reports *r, report_call *c)
{
    ld_engine *e = c->engine;
    ld_result *res = c->res;
    catch_up(r, e);
    /* A handle no longer held is not dereferenced: the engine refuses it
     * (events 201/202) and aborts the sink, which removes its file. */
    const ld_dump *d = c->handle ? c->handle : ld_engine_deferred(e);
    bool live = d && ld_engine_holds(e, d);
    bool full = !live || ld_dump_get_info(d)->dump_type == LD_DUMP_FULL_KERNEL;
    ldr_held *h = live ? find_held(r, d) : NULL;
    uint64_t when = ldr_now(r);
    if (h) {
        /* Admitted at capture: it lands under its own component and capture
         * time, which is what throttling records. */
        if (strcmp(h->component, c->component) != 0)
            return res->status = LD_STATUS_INVALID_PARAMETER;
        when = h->time;
    } else if (live && full) {
        /* Captured without this storage: not admitted yet, so now. */
        ld_admission why;
        ld_status ast = ld_reports_admit(r, c->component, LD_DUMP_FULL_KERNEL, &why);
        if (ast != LD_STATUS_SUCCESS)
            return refuse(e, ast, &why, res);
    }
    char where[LD_SETTINGS_PATH_MAX + 64];
    ld_sink *sink;
    ld_status st = open_report_sink(r, c->component, full, ld_format_name(c->format), when, &sink, where, sizeof where);
    if (st != LD_STATUS_SUCCESS)
        return res->status = st;
    const char *rel = where + strlen(r->root) + 1;
    /* A full dump's landing record first (see admit_hook): if it cannot be
     * saved, the dump is not written and stays held. */
    if (live && full) {
        st = ldr_landing_begin(r, c->component, when, rel);
        if (st != LD_STATUS_SUCCESS) {
            sink->abort(sink);
            not_kept(r, e, st, "the dump was not written and is still held");
            return res->status = st;
        }
    }
    st = ld_engine_write_deferred_ex(e, c->handle, c->format, sink, r->progress, r->progress_arg, res);
    if (st == LD_STATUS_SUCCESS) {
        if (h)
            forget_held(r, h);
        tell_path(c, where);
        landed(r, e, rel, c->component, full, when);
    } else {
        ldr_landing_cancel(r);
    }
    return st;
}

ld_status ld_reports_write_deferred(ld_reports *r, ld_engine *e, const char *component, const ld_dump *handle,
                                    const ld_format *format, ld_result *result, char *path, size_t cap,
                                    ld_error *err)
{
    ld_result local;
    if (!format)
        format = ld_format_dmp();
    report_call c = {e, component, NULL, handle, format, result ? result : &local, path, cap, err};
    ld_status st = begin(r, &c, ldr_ext_ok(ld_format_name(format)));
    if (st == LD_STATUS_SUCCESS)
        st = run(r, &c, write_deferred_step, true);
    return ldu_error_end(err, st);
}

ld_status ld_reports_discard_deferred(ld_reports *r, ld_engine *e, const ld_dump *handle)
{
    if (!r || !e)
        return LD_STATUS_INVALID_PARAMETER;
    forget_released(r, e);
    const ld_dump *d = handle ? handle : ld_engine_deferred(e);
    ldr_held *h = d && ld_engine_holds(e, d) ? find_held(r, d) : NULL;
    ld_status st = ld_engine_discard_deferred_dump(e, d);
    if (st == LD_STATUS_SUCCESS && h)
        forget_held(r, h);
    return st;
}
