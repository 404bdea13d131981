/* The fault-injecting HAL wrapper (hal/fault/): the nth call of any
 * operation fails or stalls, counted atomically across threads; the
 * counting platform; the wrapper keeps the inner HAL's shape (an absent
 * operation stays absent, a version 1 table is not read past its end) and
 * can hide capabilities. Most of it on the simulated machine, the rest on
 * a small HAL of the test's own: the wrapper wraps any HAL. */
#include <pthread.h>
#include <stdio.h>

#include "../sim/sim_test.h"
#include "livedump/fault.h"
#include "livedump/engine.h"

static ld_sim *make(uint64_t rate)
{
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    cfg.dirty_rate = rate;
    cfg.hot_set_bytes = 4ull << 20;
    cfg.hypervisor = true;
    cfg.ipt = true;
    cfg.pool_bytes[LD_POOL_VM_PARTITION] = 1ull << 20;
    ld_sim *sim = NULL;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    return sim;
}

static ld_fault_hal *wrap(const ld_hal *inner)
{
    ld_fault_hal *f = NULL;
    assert_int_equal(ld_fault_hal_create(inner, NULL, &f), LD_STATUS_SUCCESS);
    assert_non_null(f);
    return f;
}

static ld_status ranges_call(const ld_hal *hal)
{
    size_t n = 0;
    return hal->mem_ranges(hal->ctx, NULL, &n);
}

static void test_nth_call_fails(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    ld_fault_hal *fh = wrap(ld_sim_hal(sim));
    const ld_hal *hal = ld_fault_hal_get(fh);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS); /* calls before the rule do not count toward nth */
    ld_fault f = {.op = LD_HAL_OP_MEM_RANGES, .nth = 3, .status = LD_STATUS_IO_DEVICE_ERROR};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_RANGES), 5);
    /* Other operations are untouched. */
    size_t nk = 0;
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);

    /* repeat: the nth and every later call. */
    f = (ld_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 2, .status = LD_STATUS_NOT_FOUND, .repeat = true};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_NOT_FOUND);

    /* A new rule replaces the old. */
    f = (ld_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 1, .status = LD_STATUS_CANCELLED};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_CANCELLED);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);

    /* Clear: no rules, counters from zero. */
    f = (ld_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 1, .status = LD_STATUS_CANCELLED, .repeat = true};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    ld_fault_clear(fh);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_KINDS), 0);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_KINDS), 1);

    /* Bad rules are refused. */
    assert_int_equal(ld_fault_inject(NULL, &f), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_fault_inject(fh, NULL), LD_STATUS_INVALID_PARAMETER);
    f.nth = 0;
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_INVALID_PARAMETER);
    f.nth = 1;
    f.op = LD_HAL_OP_COUNT;
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_COUNT), 0);
    /* Calls to the machine itself are neither counted nor failed. */
    f = (ld_fault){.op = LD_HAL_OP_MEM_RANGES, .nth = 1, .status = LD_STATUS_CANCELLED};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(ld_sim_hal(sim)), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_RANGES), 0);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

typedef struct inside {
    const ld_hal *hal;
    ld_status ctx_st, hv_st, ipt_st, fetch_st;
} inside;

static ld_status call_inside(void *arg)
{
    inside *in = arg;
    const ld_hal *hal = in->hal;
    ld_cpu_context c;
    uint8_t buf[64];
    uint64_t len, bits[1] = {0}, count;
    in->ctx_st = hal->cpu_context(hal->ctx, 0, &c);
    in->hv_st = hal->hv_collect(hal->ctx, buf, sizeof buf, &len);
    in->ipt_st = hal->ipt_collect(hal->ctx, buf, sizeof buf, &len);
    in->fetch_st = hal->dirty_fetch(hal->ctx, bits, 64, &count);
    return LD_STATUS_SUCCESS;
}

/* Every operation obeys a rule on its first call, and only its own. */
static void test_every_op_fails(void **state)
{
    (void)state;
    const ld_status bad = LD_STATUS_IO_DEVICE_ERROR;
    ld_sim *sim = make(16ull << 20);
    ld_fault_hal *fh = wrap(ld_sim_hal(sim));
    const ld_hal *hal = ld_fault_hal_get(fh);
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        ld_fault f = {.op = (ld_hal_op)op, .nth = 1, .status = bad};
        assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    }
    uint8_t page[PAGE];
    size_t n = 0;
    uint64_t a, b, bits[1] = {0};
    void *mem = (void *)page;
    assert_int_equal(hal->mem_ranges(hal->ctx, NULL, &n), bad);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &n), bad);
    assert_int_equal(hal->mem_read(hal->ctx, 0x100, 1, page), bad);
    assert_int_equal(hal->mem_status(hal->ctx, &a, &b), bad);
    assert_int_equal(hal->dirty_start(hal->ctx), bad);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, 64, &a), bad);
    assert_int_equal(hal->dirty_stop(hal->ctx), bad);
    assert_int_equal(hal->pool_open(hal->ctx, LD_POOL_SYSTEM_PARTITION), bad);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, PAGE, &mem), bad);
    assert_null(mem);                                          /* a failed allocation gives nothing */
    hal->pool_free(hal->ctx, LD_POOL_SYSTEM_PARTITION, NULL, 0); /* cannot fail; counted */
    assert_int_equal(hal->cpu_count(hal->ctx), 0);             /* a count fails as 0 */
    assert_int_equal(hal->hv_size(hal->ctx, &a), bad);
    assert_int_equal(hal->hv_prepare(hal->ctx), bad);
    assert_int_equal(hal->ipt_size(hal->ctx, &a), bad);
    ld_system_info si;
    assert_int_equal(hal->system_info(hal->ctx, &si), bad);
    assert_null(hal->platform->alloc(hal->platform->ctx, 16));
    inside in = {.hal = hal};
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, call_inside, &in, NULL), bad);
    assert_false(ld_sim_corralled(sim));
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        if (op != LD_HAL_OP_CPU_CONTEXT && op != LD_HAL_OP_HV_COLLECT && op != LD_HAL_OP_IPT_COLLECT)
            assert_int_equal(ld_fault_calls(fh, (ld_hal_op)op), 1);
    }

    /* Second calls succeed; the collectors fail on their first. */
    assert_int_equal(hal->dirty_start(hal->ctx), LD_STATUS_SUCCESS);
    assert_int_equal(hal->hv_prepare(hal->ctx), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, call_inside, &in, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(in.ctx_st, bad);
    assert_int_equal(in.hv_st, bad);
    assert_int_equal(in.ipt_st, bad);
    assert_int_equal(in.fetch_st, LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, call_inside, &in, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(in.ctx_st, LD_STATUS_SUCCESS);
    assert_int_equal(in.hv_st, LD_STATUS_SUCCESS);
    assert_int_equal(in.ipt_st, LD_STATUS_SUCCESS);
    assert_int_equal(hal->cpu_count(hal->ctx), 2);
    void *p = hal->platform->alloc(hal->platform->ctx, 16);
    assert_non_null(p);
    hal->platform->free(hal->platform->ctx, p);
    assert_int_equal(ld_fault_outstanding_allocs(fh), 0);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

static void test_stall_then_succeed(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    ld_fault_hal *fh = wrap(ld_sim_hal(sim));
    const ld_hal *hal = ld_fault_hal_get(fh);
    ld_fault f = {.op = LD_HAL_OP_MEM_STATUS, .nth = 1, .status = LD_STATUS_SUCCESS, .stall_ns = 30000000ull};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    uint64_t a, b;
    uint64_t t0 = test_now_ns();
    assert_int_equal(hal->mem_status(hal->ctx, &a, &b), LD_STATUS_SUCCESS);
    assert_true(test_now_ns() - t0 >= 30000000ull);
    t0 = test_now_ns();
    assert_int_equal(hal->mem_status(hal->ctx, &a, &b), LD_STATUS_SUCCESS);
    assert_true(test_now_ns() - t0 < 30000000ull);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

static int fn_calls;

static ld_status count_call(void *arg)
{
    (void)arg;
    fn_calls++;
    return LD_STATUS_SUCCESS;
}

static void test_quiesce_fails_before_stopping(void **state)
{
    (void)state;
    ld_sim *sim = make(16ull << 20);
    ld_fault_hal *fh = wrap(ld_sim_hal(sim));
    const ld_hal *hal = ld_fault_hal_get(fh);
    ld_fault f = {.op = LD_HAL_OP_QUIESCE, .nth = 2, .status = LD_STATUS_UNSUCCESSFUL};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    fn_calls = 0;
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, NULL), LD_STATUS_SUCCESS);
    ld_quiesce_times t;
    memset(&t, 0xff, sizeof t);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, &t), LD_STATUS_UNSUCCESSFUL);
    assert_int_equal(fn_calls, 1);
    assert_int_equal(t.stopped_ns, 0); /* nothing stopped, and the times say so */
    assert_int_equal(t.corral_ns, 0);
    assert_false(ld_sim_corralled(sim));
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(fn_calls, 2);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

/* ---- the counting platform ---- */

static void test_platform_counts_and_fails(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    ld_fault_hal *fh = wrap(ld_sim_hal(sim));
    const ld_platform *p = ld_fault_hal_get(fh)->platform;
    assert_non_null(p);
    assert_int_equal(p->version, LD_PLATFORM_VERSION);
    int64_t base = ld_fault_outstanding_allocs(fh);
    assert_int_equal(base, 0);
    void *a = p->alloc(p->ctx, 100);
    assert_non_null(a);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base + 1);

    ld_fault f = {.op = LD_HAL_OP_PLATFORM_ALLOC, .nth = 2, .status = LD_STATUS_NO_MEMORY};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    void *b = p->alloc(p->ctx, 100);
    void *c = p->alloc(p->ctx, 100); /* the 2nd from the rule: fails */
    void *d = p->alloc(p->ctx, 100);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base + 3);
    p->free(p->ctx, a);
    p->free(p->ctx, b);
    p->free(p->ctx, NULL);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base + 1);

    void *lock = NULL;
    assert_int_equal(p->lock_create(p->ctx, &lock), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base + 2); /* a lock not destroyed is a leak too */
    p->lock_acquire(p->ctx, lock);
    p->lock_release(p->ctx, lock);
    p->lock_destroy(p->ctx, lock);
    p->free(p->ctx, d);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base);
    assert_true(p->now_ns(p->ctx) > 0);
    assert_true(p->system_time(p->ctx) > 0);
    /* Clearing the rules leaves the count alone. */
    void *e = p->alloc(p->ctx, 8);
    ld_fault_clear(fh);
    assert_int_equal(ld_fault_outstanding_allocs(fh), base + 1);
    p->free(p->ctx, e);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

/* ---- any HAL: a small one of the test's own ---- */

typedef struct tiny {
    ld_hal hal; /* first: a version 1 table is cut at system_info */
    uint64_t reads;
} tiny;

static ld_status tiny_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    (void)ctx;
    if (ranges && *count >= 1)
        ranges[0] = (ld_phys_range){1, 16};
    *count = 1;
    return LD_STATUS_SUCCESS;
}

static ld_status tiny_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    (void)ctx;
    (void)runs;
    *count = 0;
    return LD_STATUS_SUCCESS;
}

static ld_status tiny_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    (void)pfn;
    (void)count;
    (void)dst;
    __atomic_add_fetch(&((tiny *)ctx)->reads, 1, __ATOMIC_RELAXED);
    return LD_STATUS_SUCCESS;
}

static uint32_t tiny_cpus(void *ctx)
{
    (void)ctx;
    return 1;
}

static ld_status tiny_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    (void)ctx;
    (void)timeout_ns;
    if (times)
        memset(times, 0, sizeof *times);
    return fn(arg);
}

static ld_status tiny_system_info(void *ctx, ld_system_info *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    return LD_STATUS_SUCCESS;
}

static ld_platform tiny_platform;

/* Only the mandatory operations; a platform without a wall clock. */
static void tiny_init(tiny *t)
{
    memset(t, 0, sizeof *t);
    tiny_platform = *ld_platform_default();
    tiny_platform.system_time = NULL;
    t->hal = (ld_hal){
        .version = LD_HAL_VERSION,
        .caps = LD_HAL_CAP_QUIESCE,
        .name = "tiny",
        .ctx = t,
        .platform = &tiny_platform,
        .page_size = 4096,
        .mem_ranges = tiny_ranges,
        .mem_kinds = tiny_kinds,
        .mem_read = tiny_read,
        .cpu_count = tiny_cpus,
        .quiesce = tiny_quiesce,
    };
}

static void test_keeps_the_inner_shape(void **state)
{
    (void)state;
    tiny t;
    tiny_init(&t);
    ld_fault_hal *fh = wrap(&t.hal);
    const ld_hal *h = ld_fault_hal_get(fh);
    assert_int_equal(h->version, LD_HAL_VERSION);
    assert_int_equal(h->caps, LD_HAL_CAP_QUIESCE);
    assert_string_equal(h->name, "tiny");
    assert_int_equal(h->page_size, 4096);
    assert_ptr_equal(h->ctx, fh);
    /* absent operations stay absent */
    assert_null(h->mem_status);
    assert_null(h->dirty_start);
    assert_null(h->dirty_fetch);
    assert_null(h->dirty_stop);
    assert_null(h->pool_open);
    assert_null(h->pool_alloc);
    assert_null(h->pool_free);
    assert_null(h->cpu_context);
    assert_null(h->hv_size);
    assert_null(h->hv_prepare);
    assert_null(h->hv_collect);
    assert_null(h->ipt_size);
    assert_null(h->ipt_collect);
    assert_null(h->system_info);
    assert_null(h->platform->system_time);
    assert_non_null(h->platform->alloc);
    /* present ones forward */
    uint8_t page[PAGE];
    assert_int_equal(h->mem_read(h->ctx, 1, 1, page), LD_STATUS_SUCCESS);
    assert_int_equal(t.reads, 1);
    assert_int_equal(h->cpu_count(h->ctx), 1);
    ld_fault_hal_destroy(fh);

    /* A version 1 table ends before system_info: the wrapper does not read
     * what lies beyond it (here a pointer that is not NULL). */
    union {
        ld_hal hal;
        unsigned char bytes[sizeof(ld_hal)];
    } v1;
    memset(&v1, 0, sizeof v1);
    t.hal.system_info = tiny_system_info;
    memcpy(&v1.hal, &t.hal, sizeof t.hal);
    v1.hal.version = 1;
    fh = wrap(&v1.hal);
    h = ld_fault_hal_get(fh);
    assert_int_equal(h->version, 1);
    assert_null(h->system_info);
    ld_fault_hal_destroy(fh);

    /* Version 2 with system_info: forwarded. */
    fh = wrap(&t.hal);
    h = ld_fault_hal_get(fh);
    assert_non_null(h->system_info);
    ld_system_info si;
    assert_int_equal(h->system_info(h->ctx, &si), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_SYSTEM_INFO), 1);
    ld_fault_hal_destroy(fh);
}

static void test_refuses_what_it_cannot_wrap(void **state)
{
    (void)state;
    tiny t;
    tiny_init(&t);
    ld_fault_hal *fh = (ld_fault_hal *)(uintptr_t)1; /* must be reset to NULL */
    assert_int_equal(ld_fault_hal_create(NULL, NULL, &fh), LD_STATUS_INVALID_PARAMETER);
    assert_null(fh);
    assert_int_equal(ld_fault_hal_create(&t.hal, NULL, NULL), LD_STATUS_INVALID_PARAMETER);
    t.hal.version = 0;
    assert_int_equal(ld_fault_hal_create(&t.hal, NULL, &fh), LD_STATUS_INVALID_PARAMETER);
    t.hal.version = LD_HAL_VERSION + 1;
    assert_int_equal(ld_fault_hal_create(&t.hal, NULL, &fh), LD_STATUS_INVALID_PARAMETER);
    t.hal.version = LD_HAL_VERSION;
    t.hal.platform = NULL;
    assert_int_equal(ld_fault_hal_create(&t.hal, NULL, &fh), LD_STATUS_INVALID_PARAMETER);
    ld_platform other = *ld_platform_default();
    other.version = LD_PLATFORM_VERSION + 1;
    t.hal.platform = &other;
    assert_int_equal(ld_fault_hal_create(&t.hal, NULL, &fh), LD_STATUS_INVALID_PARAMETER);
    t.hal.platform = &tiny_platform;
    ld_fault_config cfg;
    ld_fault_config_init(&cfg);
    assert_int_equal(cfg.version, LD_FAULT_CONFIG_VERSION);
    assert_int_equal(cfg.hide_caps, 0);
    cfg.version = LD_FAULT_CONFIG_VERSION + 1;
    assert_int_equal(ld_fault_hal_create(&t.hal, &cfg, &fh), LD_STATUS_INVALID_PARAMETER);
    assert_null(fh);
    /* NULL is harmless everywhere. */
    assert_null(ld_fault_hal_get(NULL));
    assert_int_equal(ld_fault_calls(NULL, LD_HAL_OP_MEM_READ), 0);
    assert_int_equal(ld_fault_outstanding_allocs(NULL), 0);
    ld_fault_clear(NULL);
    ld_fault_hal_destroy(NULL);
    ld_fault_config_init(NULL);
}

/* ---- calls from several threads ---- */

#define THREADS 4
#define CALLS_PER_THREAD 20000

typedef struct hammer {
    const ld_hal *hal;
    uint64_t failed;
} hammer;

static void *hammer_reads(void *arg)
{
    hammer *hm = arg;
    uint8_t page[8];
    for (int i = 0; i < CALLS_PER_THREAD; i++)
        if (hm->hal->mem_read(hm->hal->ctx, 1, 1, page) != LD_STATUS_SUCCESS)
            hm->failed++;
    return NULL;
}

static uint64_t run_hammer(const ld_hal *hal)
{
    pthread_t th[THREADS];
    hammer hm[THREADS];
    for (int i = 0; i < THREADS; i++) {
        hm[i] = (hammer){hal, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_reads, &hm[i]), 0);
    }
    uint64_t failed = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        failed += hm[i].failed;
    }
    return failed;
}

/* Each call gets its own number, whatever thread makes it: exactly one
 * call is the nth, and with repeat exactly the calls from the nth on fail. */
static void test_calls_from_many_threads(void **state)
{
    (void)state;
    tiny t;
    tiny_init(&t);
    ld_fault_hal *fh = wrap(&t.hal);
    const ld_hal *h = ld_fault_hal_get(fh);
    const uint64_t total = (uint64_t)THREADS * CALLS_PER_THREAD;
    ld_fault f = {.op = LD_HAL_OP_MEM_READ, .nth = total / 2, .status = LD_STATUS_IO_DEVICE_ERROR};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(run_hammer(h), 1);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_READ), total);
    assert_int_equal(t.reads, total - 1); /* the failed call never reached the inner HAL */

    ld_fault_clear(fh);
    f = (ld_fault){.op = LD_HAL_OP_MEM_READ, .nth = total - 999, .status = LD_STATUS_IO_DEVICE_ERROR, .repeat = true};
    assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    assert_int_equal(run_hammer(h), 1000);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_MEM_READ), total);
    ld_fault_hal_destroy(fh);
}

/* ---- hiding capabilities: the same machine without them ---- */

static void test_hide_caps(void **state)
{
    (void)state;
    ld_sim *sim = make(16ull << 20);
    ld_fault_config cfg;
    ld_fault_config_init(&cfg);
    /* Without mem_status the engine does not bound platform buffers by
     * available memory (a 128 MiB machine has too little for it). */
    cfg.hide_caps = LD_HAL_CAP_DIRTY_LOG | LD_HAL_CAP_POOLS | LD_HAL_CAP_HYPERVISOR | LD_HAL_CAP_MEM_STATUS;
    ld_fault_hal *fh = NULL;
    assert_int_equal(ld_fault_hal_create(ld_sim_hal(sim), &cfg, &fh), LD_STATUS_SUCCESS);
    const ld_hal *h = ld_fault_hal_get(fh);
    assert_int_equal(h->caps, ld_sim_hal(sim)->caps & ~cfg.hide_caps);
    assert_true(h->caps & LD_HAL_CAP_IPT);
    assert_null(h->dirty_start);
    assert_null(h->dirty_fetch);
    assert_null(h->dirty_stop);
    assert_null(h->pool_open);
    assert_null(h->pool_alloc);
    assert_null(h->pool_free);
    assert_null(h->hv_size);
    assert_null(h->mem_status);
    assert_non_null(h->ipt_size);
    assert_non_null(h->cpu_context);

    /* The engine takes its fallbacks: no mirroring, buffers from the
     * (counted) platform rather than the machine's pools. */
    ld_engine *e = NULL;
    assert_int_equal(ld_engine_create(h, NULL, &e), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r;
    assert_int_equal(ld_engine_capture(e, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
    assert_false(r.mirrored);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_DIRTY_START), 0);
    assert_int_equal(ld_fault_calls(fh, LD_HAL_OP_POOL_ALLOC), 0);
    for (int p = 0; p < LD_POOL_COUNT; p++)
        assert_int_equal(ld_sim_pool_used(sim, (ld_pool)p), 0);
    assert_true(ld_fault_outstanding_allocs(fh) > 0); /* the held dump's buffers */
    assert_int_equal(ld_engine_discard_deferred(e), LD_STATUS_SUCCESS);
    ld_engine_destroy(e);
    assert_int_equal(ld_fault_outstanding_allocs(fh), 0);
    ld_fault_hal_destroy(fh);
    ld_sim_destroy(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nth_call_fails),
        cmocka_unit_test(test_every_op_fails),
        cmocka_unit_test(test_stall_then_succeed),
        cmocka_unit_test(test_quiesce_fails_before_stopping),
        cmocka_unit_test(test_platform_counts_and_fails),
        cmocka_unit_test(test_keeps_the_inner_shape),
        cmocka_unit_test(test_refuses_what_it_cannot_wrap),
        cmocka_unit_test(test_calls_from_many_threads),
        cmocka_unit_test(test_hide_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
