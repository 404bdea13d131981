/* Fault injection, the counting platform, and the buffer pools. */
#include "sim_test.h"

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

static ld_status ranges_call(const ld_hal *hal)
{
    size_t n = 0;
    return hal->mem_ranges(hal->ctx, NULL, &n);
}

static void test_nth_call_fails(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS); /* calls before the rule do not count toward nth */
    ld_sim_fault f = {.op = LD_HAL_OP_MEM_RANGES, .nth = 3, .status = LD_STATUS_IO_DEVICE_ERROR};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ranges_call(hal), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(ranges_call(hal), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_calls(sim, LD_HAL_OP_MEM_RANGES), 5);
    /* Other operations are untouched. */
    size_t nk = 0;
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);

    /* repeat: the nth and every later call. */
    f = (ld_sim_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 2, .status = LD_STATUS_NOT_FOUND, .repeat = true};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_NOT_FOUND);

    /* A new rule replaces the old. */
    f = (ld_sim_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 1, .status = LD_STATUS_CANCELLED};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_CANCELLED);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);

    /* Clear: no rules, counters from zero. */
    f = (ld_sim_fault){.op = LD_HAL_OP_MEM_KINDS, .nth = 1, .status = LD_STATUS_CANCELLED, .repeat = true};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    ld_sim_clear_faults(sim);
    assert_int_equal(ld_sim_calls(sim, LD_HAL_OP_MEM_KINDS), 0);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_calls(sim, LD_HAL_OP_MEM_KINDS), 1);

    /* Bad rules are refused. */
    assert_int_equal(ld_sim_inject(NULL, &f), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_sim_inject(sim, NULL), LD_STATUS_INVALID_PARAMETER);
    f.nth = 0;
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_INVALID_PARAMETER);
    f.nth = 1;
    f.op = LD_HAL_OP_COUNT;
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_sim_calls(sim, LD_HAL_OP_COUNT), 0);
    ld_sim_destroy(sim);
}

typedef struct inside {
    ld_sim *sim;
    ld_status ctx_st, hv_st, ipt_st, fetch_st;
} inside;

static ld_status call_inside(void *arg)
{
    inside *in = arg;
    const ld_hal *hal = ld_sim_hal(in->sim);
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
    const ld_hal *hal = ld_sim_hal(sim);
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        ld_sim_fault f = {.op = (ld_hal_op)op, .nth = 1, .status = bad};
        assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
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
    hal->pool_free(hal->ctx, LD_POOL_SYSTEM_PARTITION, NULL, 0); /* cannot fail; counted */
    assert_int_equal(hal->cpu_count(hal->ctx), 0);             /* a count fails as 0 */
    assert_int_equal(hal->hv_size(hal->ctx, &a), bad);
    assert_int_equal(hal->hv_prepare(hal->ctx), bad);
    assert_int_equal(hal->ipt_size(hal->ctx, &a), bad);
    ld_system_info si;
    assert_int_equal(hal->system_info(hal->ctx, &si), bad);
    assert_null(hal->platform->alloc(hal->platform->ctx, 16));
    inside in = {.sim = sim};
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, call_inside, &in, NULL), bad);
    assert_false(ld_sim_corralled(sim));
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        if (op != LD_HAL_OP_CPU_CONTEXT && op != LD_HAL_OP_HV_COLLECT && op != LD_HAL_OP_IPT_COLLECT)
            assert_int_equal(ld_sim_calls(sim, (ld_hal_op)op), 1);
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
    ld_sim_destroy(sim);
}

static void test_stall_then_succeed(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_sim_fault f = {.op = LD_HAL_OP_MEM_STATUS, .nth = 1, .status = LD_STATUS_SUCCESS, .stall_ns = 30000000ull};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    uint64_t a, b;
    uint64_t t0 = test_now_ns();
    assert_int_equal(hal->mem_status(hal->ctx, &a, &b), LD_STATUS_SUCCESS);
    assert_true(test_now_ns() - t0 >= 30000000ull);
    t0 = test_now_ns();
    assert_int_equal(hal->mem_status(hal->ctx, &a, &b), LD_STATUS_SUCCESS);
    assert_true(test_now_ns() - t0 < 30000000ull);
    ld_sim_destroy(sim);
}

static int fn_calls;

static ld_status count_call(void *arg)
{
    (void)arg;
    fn_calls++;
    return LD_STATUS_SUCCESS;
}

/* A vCPU arriving later than the timeout: TIMEOUT, fn never runs, the
 * machine runs on. A shorter delay only lengthens the corral. */
static void test_quiesce_timeout(void **state)
{
    (void)state;
    ld_sim *sim = make(64ull << 20);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(wait_written_more(sim, 0, 2000));
    ld_sim_fault f = {.op = LD_HAL_OP_QUIESCE, .nth = 1, .status = LD_STATUS_SUCCESS, .stall_ns = 2000000000ull};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    fn_calls = 0;
    ld_quiesce_times t;
    uint64_t t0 = test_now_ns();
    assert_int_equal(hal->quiesce(hal->ctx, 50000000ull, count_call, NULL, &t), LD_STATUS_TIMEOUT);
    uint64_t took = test_now_ns() - t0;
    assert_int_equal(fn_calls, 0);
    assert_false(ld_sim_corralled(sim));
    assert_true(t.corral_ns >= 50000000ull);
    assert_true(took < 1500000000ull); /* the late vCPU is not waited for */
    uint64_t w = ld_sim_pages_written(sim);
    assert_true(wait_written_more(sim, w, 2000));

    f.stall_ns = 30000000ull; /* 30 ms late, 2 s allowed */
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 2000000000ull, count_call, NULL, &t), LD_STATUS_SUCCESS);
    assert_int_equal(fn_calls, 1);
    assert_true(t.corral_ns >= 30000000ull);
    assert_false(ld_sim_corralled(sim));

    /* A single vCPU that is late: the machine still runs after. */
    ld_sim_destroy(sim);
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 64ull << 20;
    cfg.cpus = 1;
    cfg.dirty_rate = 32ull << 20;
    cfg.hot_set_bytes = 1ull << 20;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    hal = ld_sim_hal(sim);
    f.stall_ns = 10000000000ull;
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 20000000ull, count_call, NULL, NULL), LD_STATUS_TIMEOUT);
    w = ld_sim_pages_written(sim);
    assert_true(wait_written_more(sim, w, 2000));
    ld_sim_destroy(sim); /* does not wait out the 10 s stall */
}

static void test_quiesce_fails_before_stopping(void **state)
{
    (void)state;
    ld_sim *sim = make(16ull << 20);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_sim_fault f = {.op = LD_HAL_OP_QUIESCE, .nth = 2, .status = LD_STATUS_UNSUCCESSFUL};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    fn_calls = 0;
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, NULL), LD_STATUS_UNSUCCESSFUL);
    assert_int_equal(fn_calls, 1);
    assert_false(ld_sim_corralled(sim));
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, count_call, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(fn_calls, 2);
    ld_sim_destroy(sim);
}

/* ---- the counting platform ---- */

static void test_platform_counts_and_fails(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    const ld_platform *p = ld_sim_hal(sim)->platform;
    assert_non_null(p);
    assert_int_equal(p->version, LD_PLATFORM_VERSION);
    int64_t base = ld_sim_outstanding_allocs(sim);
    void *a = p->alloc(p->ctx, 100);
    assert_non_null(a);
    assert_int_equal(ld_sim_outstanding_allocs(sim), base + 1);

    ld_sim_fault f = {.op = LD_HAL_OP_PLATFORM_ALLOC, .nth = 2, .status = LD_STATUS_NO_MEMORY};
    assert_int_equal(ld_sim_inject(sim, &f), LD_STATUS_SUCCESS);
    void *b = p->alloc(p->ctx, 100);
    void *c = p->alloc(p->ctx, 100); /* the 2nd from the rule: fails */
    void *d = p->alloc(p->ctx, 100);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    assert_int_equal(ld_sim_outstanding_allocs(sim), base + 3);
    p->free(p->ctx, a);
    p->free(p->ctx, b);
    p->free(p->ctx, NULL);
    assert_int_equal(ld_sim_outstanding_allocs(sim), base + 1);

    void *lock = NULL;
    assert_int_equal(p->lock_create(p->ctx, &lock), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_outstanding_allocs(sim), base + 2); /* a lock not destroyed is a leak too */
    p->lock_acquire(p->ctx, lock);
    p->lock_release(p->ctx, lock);
    p->lock_destroy(p->ctx, lock);
    p->free(p->ctx, d);
    assert_int_equal(ld_sim_outstanding_allocs(sim), base);
    assert_true(p->now_ns(p->ctx) > 0);
    ld_sim_destroy(sim);
}

/* ---- pools ---- */

static void test_pools_honour_capacity(void **state)
{
    (void)state;
    ld_sim *sim = make(0);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(hal->caps & LD_HAL_CAP_POOLS);
    /* Absent pools (capacity 0) do not exist; the system pool always does. */
    assert_int_equal(hal->pool_open(hal->ctx, LD_POOL_VM_PARTITION_IO_SPACE), LD_STATUS_NOT_SUPPORTED);
    assert_int_equal(hal->pool_open(hal->ctx, LD_POOL_SYSTEM_PARTITION_IO_SPACE), LD_STATUS_NOT_SUPPORTED);
    assert_int_equal(hal->pool_open(hal->ctx, LD_POOL_VM_PARTITION), LD_STATUS_SUCCESS);
    assert_int_equal(hal->pool_open(hal->ctx, LD_POOL_SYSTEM_PARTITION), LD_STATUS_SUCCESS);
    assert_int_equal(hal->pool_open(hal->ctx, (ld_pool)LD_POOL_COUNT), LD_STATUS_INVALID_PARAMETER);

    void *m1, *m2, *m3, *m4;
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, 512 << 10, &m1), LD_STATUS_SUCCESS);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, 512 << 10, &m2), LD_STATUS_SUCCESS);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, PAGE, &m3), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_null(m3);
    assert_int_equal(ld_sim_pool_used(sim, LD_POOL_VM_PARTITION), 1 << 20);
    memset(m1, 0xab, 512 << 10); /* usable memory */
    memset(m2, 0xcd, 512 << 10);
    hal->pool_free(hal->ctx, LD_POOL_VM_PARTITION, m1, 512 << 10);
    assert_int_equal(ld_sim_pool_used(sim, LD_POOL_VM_PARTITION), 512 << 10);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, PAGE, &m3), LD_STATUS_SUCCESS);

    /* Bad requests, and frees of what the pool never gave, change nothing. */
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, 100, &m4), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, 0, &m4), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION, PAGE, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_VM_PARTITION_IO_SPACE, PAGE, &m4), LD_STATUS_NOT_SUPPORTED);
    uint8_t local[PAGE];
    hal->pool_free(hal->ctx, LD_POOL_VM_PARTITION, local, PAGE);
    hal->pool_free(hal->ctx, LD_POOL_SYSTEM_PARTITION, m2, 512 << 10); /* wrong pool */
    hal->pool_free(hal->ctx, LD_POOL_VM_PARTITION, NULL, PAGE);
    assert_int_equal(ld_sim_pool_used(sim, LD_POOL_VM_PARTITION), (512 << 10) + PAGE);
    assert_int_equal(ld_sim_pool_used(sim, (ld_pool)LD_POOL_COUNT), 0);
    hal->pool_free(hal->ctx, LD_POOL_VM_PARTITION, m2, 512 << 10);
    hal->pool_free(hal->ctx, LD_POOL_VM_PARTITION, m3, PAGE);
    assert_int_equal(ld_sim_pool_used(sim, LD_POOL_VM_PARTITION), 0);

    /* The system pool is bounded by the machine's free memory. */
    uint64_t avail, total;
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, avail + PAGE, &m4),
                     LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, avail, &m4), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_pool_used(sim, LD_POOL_SYSTEM_PARTITION), avail);
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(avail, 0);
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, PAGE, &m3),
                     LD_STATUS_INSUFFICIENT_RESOURCES);
    ld_sim_destroy(sim); /* frees m4 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nth_call_fails),
        cmocka_unit_test(test_every_op_fails),
        cmocka_unit_test(test_stall_then_succeed),
        cmocka_unit_test(test_quiesce_timeout),
        cmocka_unit_test(test_quiesce_fails_before_stopping),
        cmocka_unit_test(test_platform_counts_and_fails),
        cmocka_unit_test(test_pools_honour_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
