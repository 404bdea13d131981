/* The engine API: one dump at a time, deferred dump data, the state
 * machine's transitions, subscriptions and registrations. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "session.h"
#include "state.h"

/* ---- busy ---- */

static ld_engine *reentrant_engine;
static ld_status reentrant_status;

static ld_status reenter(void *arg, ld_page_set *set)
{
    (void)arg;
    (void)set;
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    reentrant_status = ld_engine_capture(reentrant_engine, &req, ld_format_raw(), &m.sink, NULL);
    assert_true(m.aborted);
    mem_sink_release(&m);
    return LD_STATUS_SUCCESS;
}

static void test_one_dump_at_a_time(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    reentrant_engine = h.engine;
    assert_int_equal(ld_engine_add_remove_pages(h.engine, "reenter", reenter, NULL), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(reentrant_status, LD_STATUS_DEVICE_BUSY);
    /* A busy request starts nothing: one capture, one event 1 and one 2. */
    assert_int_equal(recorder_count(h.rec, 1), 1);
    assert_int_equal(recorder_count(h.rec, 2), 1);
    mem_sink_release(&m);
    harness_stop(&h);
}

/* ---- the embedder's allocator ---- */

typedef struct counting_allocator {
    int64_t live;      /* blocks not freed */
    uint64_t calls;    /* alloc calls */
    uint64_t fail_at;  /* 0: never; n: the nth call fails */
} counting_allocator;

static void *count_alloc(void *ctx, size_t size)
{
    counting_allocator *c = ctx;
    if (++c->calls == c->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        c->live++;
    return p;
}

static void count_free(void *ctx, void *ptr)
{
    counting_allocator *c = ctx;
    if (ptr)
        c->live--;
    free(ptr);
}

/* The engine's memory comes from the allocator in its options (the HAL's
 * platform has no platform buffers then), all of it is given back, and a
 * failing one ends a capture with NO_MEMORY, not a crash. */
static void test_engine_allocator(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    counting_allocator c = {0, 0, 0};
    ld_allocator a = {&c, count_alloc, count_free};
    ld_engine_options o;
    ld_engine_options_init(&o);
    assert_int_equal(o.version, LD_ENGINE_OPTIONS_VERSION);
    o.allocator = &a;
    ld_engine *e;
    assert_int_equal(ld_engine_create(h.hal, &o, &e), LD_STATUS_SUCCESS);
    int64_t hal_allocs = ld_fault_outstanding_allocs(h.fault);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(e, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(r.pages > 0);
    assert_true(c.calls > 10);      /* bitmaps, tables, the dump */
    assert_int_equal(c.live, 1);     /* the engine itself */
    /* Nothing of the capture came from the HAL's platform. */
    assert_int_equal(ld_fault_outstanding_allocs(h.fault), hal_allocs);
    ld_engine_destroy(e);
    assert_int_equal(c.live, 0);
    mem_sink_release(&m);

    /* Every allocation failing in turn: NO_MEMORY or success, never a leak. */
    uint64_t total = c.calls;
    for (uint64_t k = 1; k <= total; k++) {
        counting_allocator f = {0, 0, k};
        ld_allocator fa = {&f, count_alloc, count_free};
        o.allocator = &fa;
        ld_status st = ld_engine_create(h.hal, &o, &e);
        if (st == LD_STATUS_SUCCESS) {
            mem_sink_init(&m);
            st = ld_engine_capture(e, &req, ld_format_raw(), &m.sink, &r);
            assert_true(st == LD_STATUS_SUCCESS || st == LD_STATUS_NO_MEMORY);
            ld_engine_destroy(e);
            mem_sink_release(&m);
        } else {
            assert_int_equal(st, LD_STATUS_NO_MEMORY);
        }
        assert_int_equal(f.live, 0);
    }
    /* An allocator without its functions is refused; version 1 options
     * (no allocator field) still work. */
    ld_allocator half = {&c, count_alloc, NULL};
    o.allocator = &half;
    assert_int_equal(ld_engine_create(h.hal, &o, &e), LD_STATUS_INVALID_PARAMETER);
    o.version = 1;
    assert_int_equal(ld_engine_create(h.hal, &o, &e), LD_STATUS_SUCCESS);
    ld_engine_destroy(e);
    o.version = LD_ENGINE_OPTIONS_VERSION + 1;
    assert_int_equal(ld_engine_create(h.hal, &o, &e), LD_STATUS_INVALID_PARAMETER);
    harness_stop(&h);
}

/* ---- deferred ---- */

static void test_deferred(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    mem_sink m;

    /* Nothing held: write and discard refuse, with their events. */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_DEVICE_STATE);
    assert_true(m.aborted);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(recorder_count(h.rec, 202), 1);
    assert_int_equal(recorder_count(h.rec, 252), 1);

    /* Defer with a sink is a caller error. */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_true(m.aborted);

    ld_result r1, r2;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r1), LD_STATUS_SUCCESS);
    assert_non_null(ld_engine_deferred(h.engine));
    assert_int_equal(recorder_count(h.rec, 3), 0); /* nothing written yet */

    /* While held, another capture is refused. */
    ld_capture_request plain;
    ld_capture_request_init(&plain);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &plain, ld_format_raw(), &m.sink, NULL), LD_STATUS_DEVICE_BUSY);

    /* A failing write keeps the data; a second write elsewhere succeeds. */
    mem_sink_init(&m);
    m.fail_after_bytes = 4096;
    m.fail_status = LD_STATUS_DISK_FULL;
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, NULL), LD_STATUS_DISK_FULL);
    assert_true(m.aborted);
    mem_sink_release(&m);
    assert_non_null(ld_engine_deferred(h.engine));
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, &r2), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_int_equal(r2.pages, r1.pages);
    assert_int_equal(r2.primary_bytes, r1.pages * 4096);
    assert_null(ld_engine_deferred(h.engine));
    mem_sink_release(&m);

    /* Double write and write after discard. */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_INVALID_DEVICE_STATE);

    /* Workflow events: 201 203 204 202 for each write, 251 252 for each discard. */
    assert_int_equal(recorder_count(h.rec, 203), 2);
    assert_int_equal(recorder_count(h.rec, 204), 2);
    assert_int_equal(recorder_count(h.rec, 251), 3);

    /* Destroying the engine with a dump held frees it (no leak). */
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    harness_stop(&h);
}

/* ---- state machine ---- */

typedef struct trace {
    ldi_state from[64], to[64];
    int n;
} trace;

static void hook(void *arg, ldi_state from, ldi_state to)
{
    trace *t = arg;
    if (t->n < 64) {
        t->from[t->n] = from;
        t->to[t->n] = to;
        t->n++;
    }
}

static void test_state_machine(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    trace t = {0};
    h.engine->state_hook = hook;
    h.engine->state_hook_arg = &t;
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    static const ldi_state expect[] = {LDI_STARTED,          LDI_SIZING_MIRROR,   LDI_SIZING_QUIESCED,
                                       LDI_SIZING_CALLBACKS, LDI_SIZING_ESTIMATE, LDI_SIZING_ALLOCATE,
                                       LDI_CAPTURE_PHASE0,   LDI_CAPTURE_PHASE1,  LDI_CAPTURE_QUIESCED,
                                       LDI_CAPTURE_SECONDARY, LDI_WRITING,        LDI_IDLE};
    assert_int_equal(t.n, (int)(sizeof expect / sizeof expect[0]));
    for (int i = 0; i < t.n; i++)
        assert_int_equal(t.to[i], expect[i]);
    mem_sink_release(&m);

    /* Without mirroring the phases are skipped; after a failure the engine
     * goes straight back to idle. */
    t.n = 0;
    req.flags = 0;
    ld_fault f = {.op = LD_HAL_OP_QUIESCE, .nth = 2, .status = LD_STATUS_UNSUCCESSFUL};
    assert_int_equal(ld_fault_inject(h.fault, &f), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_UNSUCCESSFUL);
    assert_int_equal(t.to[t.n - 1], LDI_IDLE);
    assert_int_equal(t.from[t.n - 1], LDI_CAPTURE_QUIESCED);
    for (int i = 0; i < t.n; i++)
        assert_true(t.to[i] != LDI_CAPTURE_PHASE0 && t.to[i] != LDI_CAPTURE_PHASE1);
    mem_sink_release(&m);

    /* The transition table refuses jumps. */
    assert_false(ldi_transition(h.engine, LDI_WRITING));
    assert_false(ldi_transition(h.engine, LDI_HELD));
    assert_int_equal(h.engine->state, LDI_IDLE);
    harness_stop(&h);
}

/* ---- subscriptions and registrations ---- */

static int count_a, count_b;
static void sub_a(void *arg, const ld_event *ev) { (void)arg; (void)ev; count_a++; }
static void sub_b(void *arg, const ld_event *ev)
{
    (void)arg;
    assert_int_equal(ev->channel, LD_CHANNEL_OPERATIONAL);
    count_b++;
}

static ld_status noop_remove(void *arg, ld_page_set *set) { (void)arg; (void)set; return LD_STATUS_SUCCESS; }
static ld_status noop_callout(void *arg, void *buf, uint64_t cap, uint64_t *len)
{
    (void)arg;
    (void)buf;
    (void)cap;
    *len = 0;
    return LD_STATUS_SUCCESS;
}

static void test_subscriptions(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, sub_a, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_BIT(LD_CHANNEL_OPERATIONAL), sub_b, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_subscribe(h.engine, 0, sub_b, NULL), LD_STATUS_INVALID_PARAMETER);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    assert_true(count_a > count_b);
    assert_int_equal(count_b, 4); /* 1, 3, 4, 2 */
    assert_int_equal(ld_engine_unsubscribe(h.engine, sub_a, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_unsubscribe(h.engine, sub_a, NULL), LD_STATUS_NOT_FOUND);

    /* Names are checked and copied. */
    static const uint8_t guid[16] = {0};
    assert_int_equal(ld_engine_add_remove_pages(h.engine, "", noop_remove, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_engine_add_remove_pages(h.engine, "bad\nname", noop_remove, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_engine_add_callout(h.engine, "x", guid, 0, NULL, NULL), LD_STATUS_INVALID_PARAMETER);
    /* Sizes the .dmp writer cannot store (DataSize is 32 bits, padded to 8)
     * are refused at registration, not at the write. */
    assert_int_equal(ld_engine_add_callout(h.engine, "x", guid, 0xFFFFFFF1ull, noop_callout, NULL),
                     LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_engine_add_callout(h.engine, "x", guid, 1ull << 32, noop_callout, NULL),
                     LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(h.engine->callout_count, 0);
    assert_int_equal(ld_engine_add_callout(h.engine, "x", guid, 0xFFFFFFF0ull, noop_callout, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(h.engine->callout_count, 1);
    char name[16];
    strcpy(name, "temporary");
    assert_int_equal(ld_engine_add_remove_pages(h.engine, name, noop_remove, NULL), LD_STATUS_SUCCESS);
    strcpy(name, "changed");
    assert_string_equal(h.engine->remove_pages[0].name, "temporary");
    harness_stop(&h);
}

/* A page marked present without a buffer slot (a dump changed under the
 * writer) ends every writer with an error instead of a NULL read; the dump
 * stays held and is written once consistent again. */
static void test_writers_refuse_page_without_slot(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
    ld_dump *d = (ld_dump *)r.deferred;
    uint64_t pfn = 0;
    while (pfn < d->info.max_pfn && (ldi_bitmap_test(&d->slots_map, pfn) || ldi_bitmap_test(&d->present, pfn)))
        pfn++;
    assert_true(pfn < d->info.max_pfn);
    ldi_bitmap_set_range(&d->present, pfn, 1);
    assert_null(ld_dump_page(d, pfn));
    const ld_format *formats[] = {ld_format_raw(), ld_format_dmp(), ld_format_elf()};
    mem_sink m;
    for (size_t i = 0; i < 3; i++) {
        mem_sink_init(&m);
        assert_int_equal(ld_engine_write_deferred(h.engine, formats[i], &m.sink, NULL), LD_STATUS_INVALID_DEVICE_STATE);
        assert_true(m.aborted);
        mem_sink_release(&m);
    }
    ldi_bitmap_clear_range(&d->present, pfn, 1);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_elf(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    harness_stop(&h);
}

static void test_create_refuses_bad_hal(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    ld_hal bad = *ld_sim_hal(sim);
    ld_engine *e = (ld_engine *)1;
    bad.version = 99;
    assert_int_equal(ld_engine_create(&bad, NULL, &e), LD_STATUS_INVALID_PARAMETER);
    assert_null(e);
    bad = *ld_sim_hal(sim);
    bad.quiesce = NULL;
    assert_int_equal(ld_engine_create(&bad, NULL, &e), LD_STATUS_INVALID_PARAMETER);
    bad = *ld_sim_hal(sim);
    bad.page_size = 3000;
    assert_int_equal(ld_engine_create(&bad, NULL, &e), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_engine_create(NULL, NULL, &e), LD_STATUS_INVALID_PARAMETER);
    ld_sim_destroy(sim);
}

/* Options and requests carry their version: one the library does not know
 * is refused (LD_STATUS_INVALID_PARAMETER), the init functions set the
 * current one. */
static void test_versions_checked(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    ld_engine_options o;
    ld_engine_options_init(&o);
    assert_int_equal(o.version, LD_ENGINE_OPTIONS_VERSION);
    ld_engine *e = (ld_engine *)1;
    const uint32_t unknown[] = {0, LD_ENGINE_OPTIONS_VERSION + 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        o.version = unknown[i];
        assert_int_equal(ld_engine_create(ld_sim_hal(sim), &o, &e), LD_STATUS_INVALID_PARAMETER);
        assert_null(e);
    }
    o.version = LD_ENGINE_OPTIONS_VERSION;
    assert_int_equal(ld_engine_create(ld_sim_hal(sim), &o, &e), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    assert_int_equal(req.version, LD_CAPTURE_REQUEST_VERSION);
    req.version = LD_CAPTURE_REQUEST_VERSION + 1;
    mem_sink m;
    mem_sink_init(&m);
    ld_result res;
    assert_int_equal(ld_engine_capture(e, &req, ld_format_raw(), &m.sink, &res), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(res.status, LD_STATUS_INVALID_PARAMETER);
    assert_true(m.aborted);
    mem_sink_release(&m);
    ld_engine_destroy(e);
    ld_sim_destroy(sim);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(ld_status_name(LD_STATUS_DISK_FULL), "STATUS_DISK_FULL");
    assert_int_equal(LD_STATUS_DISK_FULL, 0xC000007F);
    assert_string_equal(ld_status_name(LD_STATUS_SUCCESS), "STATUS_SUCCESS");
    assert_null(ld_status_name(0xDEADBEEF));
    assert_string_equal(ld_status_describe(0xDEADBEEF), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_dump_at_a_time),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_engine_allocator),
        cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_create_refuses_bad_hal),
        cmocka_unit_test(test_versions_checked),
        cmocka_unit_test(test_writers_refuse_page_without_slot),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
