/* Cancellation in the engine: a cancel that arrives in any state of a
 * capture (through the request's flag or ld_engine_cancel), a progress
 * callback that says stop, a cancelled deferred write. Each time: the
 * status and event 2 say STATUS_CANCELLED, the sink was aborted (no file),
 * the machine runs, the pools and platform memory are all given back
 * (harness_stop checks), and the engine takes the next capture normally. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "session.h"
#include "state.h"

typedef struct cancel_at {
    ldi_state when;       /* set the flag when the engine enters this state */
    bool use_engine_call; /* ld_engine_cancel instead of the request's flag */
    ld_engine *engine;
    volatile int flag;
    bool corralled_then;  /* the machine was stopped when the flag was set */
    ld_sim *sim;
} cancel_at;

static void on_state(void *arg, ldi_state from, ldi_state to)
{
    cancel_at *c = arg;
    (void)from;
    if (to != c->when)
        return;
    c->corralled_then = ld_sim_corralled(c->sim);
    if (c->use_engine_call)
        ld_engine_cancel(c->engine);
    else
        c->flag = 1;
}

static uint64_t event2_status(const recorder *r)
{
    long i = -1, next;
    while ((next = recorder_find(r, 2, (size_t)(i + 1))) >= 0)
        i = next;
    assert_true(i >= 0);
    assert_true(r->ev[i].has_status);
    return r->ev[i].status;
}

/* A capture that must succeed, on the same engine, after a cancelled one. */
static void capture_ok(harness *h)
{
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h->engine, &req, ld_format_dmp(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_true(r.pages > 0);
    mem_sink_release(&m);
}

static void cancel_in_state(ldi_state when, bool engine_call, bool defer)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.dirty_rate = 32ull << 20; /* mirroring passes happen */
    harness h;
    harness_start(&h, &cfg, true);
    cancel_at c;
    memset(&c, 0, sizeof c);
    c.when = when;
    c.use_engine_call = engine_call;
    c.engine = h.engine;
    c.sim = h.sim;
    h.engine->state_hook = on_state;
    h.engine->state_hook_arg = &c;

    ld_capture_request req;
    ld_capture_request_init(&req);
    req.cancel = &c.flag;
    if (defer)
        req.flags |= LD_FLAG_DEFER;
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    ld_status st = defer ? ld_engine_capture(h.engine, &req, NULL, NULL, &r)
                         : ld_engine_capture(h.engine, &req, ld_format_dmp(), &m.sink, &r);
    if (st != LD_STATUS_CANCELLED)
        print_error("cancel in state %s (%s, %s): status 0x%x\n", ldi_state_name(when),
                    engine_call ? "ld_engine_cancel" : "request flag", defer ? "deferred" : "to a sink", (unsigned)st);
    assert_int_equal(st, LD_STATUS_CANCELLED);
    assert_int_equal(r.status, LD_STATUS_CANCELLED);
    assert_int_equal(event2_status(h.rec), LD_STATUS_CANCELLED);
    if (!defer)
        assert_true(m.aborted && !m.finished);
    assert_null(r.deferred);
    assert_int_equal(ld_engine_deferred_count(h.engine), 0);
    assert_false(ld_sim_corralled(h.sim));
    /* A cancel raised while the machine was stopped waited for the quiesce
     * to end: the quiesce's end event came before event 2. */
    if (c.corralled_then)
        assert_true(recorder_find(h.rec, when == LDI_SIZING_QUIESCED ? 105 : 155, 0) >= 0);
    mem_sink_release(&m);

    h.engine->state_hook = NULL;
    capture_ok(&h);
    harness_stop(&h);
}

static const ldi_state capture_states[] = {
    LDI_STARTED,          LDI_SIZING_MIRROR,  LDI_SIZING_QUIESCED, LDI_SIZING_CALLBACKS, LDI_SIZING_ESTIMATE,
    LDI_SIZING_ALLOCATE,  LDI_CAPTURE_PHASE0, LDI_CAPTURE_PHASE1,  LDI_CAPTURE_QUIESCED, LDI_CAPTURE_SECONDARY,
    LDI_WRITING,
};

static void test_cancel_in_every_state(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof capture_states / sizeof capture_states[0]; i++) {
        cancel_in_state(capture_states[i], false, false);
        cancel_in_state(capture_states[i], true, false);
    }
}

static void test_cancel_deferred_capture(void **state)
{
    (void)state;
    /* Every state a deferred capture passes through (it never writes). */
    for (size_t i = 0; i + 1 < sizeof capture_states / sizeof capture_states[0]; i++)
        cancel_in_state(capture_states[i], i % 2 == 0, true);
}

/* ---- a cancel that arrives while the machine is stopped ---- */

static const ld_hal *inner_hal;
static volatile int *stopped_flag;
static unsigned context_calls, cancel_at_call;
static bool was_corralled;
static ld_sim *stopped_sim;

static ld_status context_then_cancel(void *ctx, uint32_t cpu, ld_cpu_context *out)
{
    if (++context_calls == cancel_at_call) {
        was_corralled = ld_sim_corralled(stopped_sim);
        *stopped_flag = 1;
    }
    return inner_hal->cpu_context(ctx, cpu, out);
}

/* cpu_context runs inside both quiesces: the first call is in the sizing
 * quiesce, the ones after the sizing quiesce's in the capture quiesce.
 * The quiesce under way finishes (its end event, processors resumed),
 * then the capture stops. */
static void test_cancel_while_stopped(void **state)
{
    (void)state;
    for (unsigned at = 1; at <= 3; at += 2) {
        ld_sim_config cfg;
        harness_config(&cfg);
        harness h;
        harness_start(&h, &cfg, true);
        ld_hal hal = *h.hal;
        inner_hal = h.hal;
        hal.cpu_context = context_then_cancel;
        ld_engine *e;
        ld_engine_options o;
        ld_engine_options_init(&o);
        o.on_event = recorder_fn;
        o.on_event_arg = h.rec;
        assert_int_equal(ld_engine_create(&hal, &o, &e), LD_STATUS_SUCCESS);
        volatile int flag = 0;
        stopped_flag = &flag;
        stopped_sim = h.sim;
        context_calls = 0;
        cancel_at_call = at; /* 2 vCPUs: call 1 is the sizing quiesce's, 3 the capture's */
        was_corralled = false;
        ld_capture_request req;
        ld_capture_request_init(&req);
        req.cancel = &flag;
        mem_sink m;
        mem_sink_init(&m);
        assert_int_equal(ld_engine_capture(e, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_CANCELLED);
        assert_true(was_corralled);
        assert_false(ld_sim_corralled(h.sim));
        uint16_t end_of_quiesce = at == 1 ? 105 : 155, uncorral = at == 1 ? 122 : 166;
        long q = recorder_find(h.rec, end_of_quiesce, 0), u = recorder_find(h.rec, uncorral, 0);
        assert_true(q >= 0 && u >= 0 && u < q);
        /* Nothing after the quiesce ran: no allocation (107) after a sizing
         * cancel, no secondary data (169 would follow callouts) or write (3). */
        if (at == 1)
            assert_int_equal(recorder_find(h.rec, 107, 0), -1);
        assert_int_equal(recorder_find(h.rec, 3, 0), -1);
        assert_true(m.aborted && !m.finished);
        mem_sink_release(&m);
        ld_engine_destroy(e);
        capture_ok(&h);
        harness_stop(&h);
    }
}

/* ---- progress that says stop ---- */

typedef struct stop_after {
    const char *phase;
    unsigned calls, at;
} stop_after;

static ld_status stop_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    stop_after *s = arg;
    (void)done;
    (void)total;
    if (strcmp(phase, s->phase) == 0 && ++s->calls >= s->at)
        return LD_STATUS_CANCELLED;
    return LD_STATUS_SUCCESS;
}

static void test_progress_stops(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.memory_bytes = 512ull << 20; /* enough pages for several progress calls */
    harness h;
    harness_start(&h, &cfg, true);
    static const char *const phases[] = {"mirror", "write"};
    for (int p = 0; p < 2; p++) {
        for (unsigned at = 1; at <= 2; at++) {
            stop_after s = {phases[p], 0, at};
            ld_capture_request req;
            ld_capture_request_init(&req);
            req.progress = stop_progress;
            req.progress_arg = &s;
            mem_sink m;
            mem_sink_init(&m);
            ld_result r;
            assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_CANCELLED);
            assert_int_equal(s.calls, at); /* not called again once it said stop */
            assert_true(m.aborted && !m.finished);
            assert_int_equal(event2_status(h.rec), LD_STATUS_CANCELLED);
            mem_sink_release(&m);
        }
    }
    capture_ok(&h);
    harness_stop(&h);
}

/* ---- a deferred write: cancelled, the dump stays held, then written ---- */

static ld_engine *write_engine;

static ld_status cancel_engine_on_write(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    (void)arg;
    (void)done;
    (void)total;
    if (strcmp(phase, "write") == 0)
        ld_engine_cancel(write_engine);
    return LD_STATUS_SUCCESS;
}

static void test_cancel_deferred_write(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    write_engine = h.engine;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
    const ld_dump *held = r.deferred;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred_ex(h.engine, held, ld_format_raw(), &m.sink, cancel_engine_on_write,
                                                 NULL, &r),
                     LD_STATUS_CANCELLED);
    assert_true(m.aborted && !m.finished);
    assert_true(ld_engine_holds(h.engine, held)); /* nothing is lost */
    long e202 = recorder_find(h.rec, 202, 0);
    assert_true(e202 >= 0);
    assert_int_equal(h.rec->ev[e202].status, LD_STATUS_CANCELLED);
    mem_sink_release(&m);
    /* A cancel with nothing running is forgotten: the next write works. */
    ld_engine_cancel(h.engine);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred_ex(h.engine, held, ld_format_raw(), &m.sink, NULL, NULL, &r),
                     LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_int_equal(ld_engine_deferred_count(h.engine), 0);
    mem_sink_release(&m);
    harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_in_every_state),
        cmocka_unit_test(test_cancel_deferred_capture),
        cmocka_unit_test(test_cancel_while_stopped),
        cmocka_unit_test(test_progress_stops),
        cmocka_unit_test(test_cancel_deferred_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
