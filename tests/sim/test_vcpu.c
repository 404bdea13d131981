/* The simulated machine's processors: the corral really stops them, the
 * probe is consistent at the stop, a vCPU late at the corral, register
 * files, the dirty log, pause, secondary data, destroy while running. */
#include "sim_test.h"

static ld_sim *make(uint32_t cpus, uint64_t rate, uint64_t hot, bool hv_ipt)
{
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    cfg.cpus = cpus;
    cfg.dirty_rate = rate;
    cfg.hot_set_bytes = hot;
    cfg.seed = 1234;
    cfg.hypervisor = cfg.ipt = hv_ipt;
    ld_sim *sim = NULL;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    return sim;
}

/* ---- the corral stops the machine ---- */

typedef struct stop_check {
    ld_sim *sim;
    uint64_t written_before, written_after;
    bool corralled;
    ld_cpu_context ctx[4];
    ld_status ctx_status[4];
    int calls;
} stop_check;

static ld_status check_stopped(void *arg)
{
    stop_check *c = arg;
    const ld_hal *hal = ld_sim_hal(c->sim);
    c->calls++;
    c->corralled = ld_sim_corralled(c->sim);
    c->written_before = ld_sim_pages_written(c->sim);
    sleep_ms(20);
    c->written_after = ld_sim_pages_written(c->sim);
    for (uint32_t i = 0; i < hal->cpu_count(hal->ctx) && i < 4; i++)
        c->ctx_status[i] = hal->cpu_context(hal->ctx, i, &c->ctx[i]);
    return LD_STATUS_CANCELLED; /* any status: quiesce returns it, and resumes anyway */
}

static void test_corral_stops_writes(void **state)
{
    (void)state;
    ld_sim *sim = make(3, 64ull << 20, 4ull << 20, false);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(hal->caps & LD_HAL_CAP_QUIESCE);
    assert_true(wait_written_more(sim, 0, 2000));
    assert_false(ld_sim_corralled(sim));

    stop_check c = {.sim = sim};
    ld_quiesce_times t;
    memset(&t, 0xee, sizeof t);
    assert_int_equal(hal->quiesce(hal->ctx, 2000000000ull, check_stopped, &c, &t), LD_STATUS_CANCELLED);
    assert_int_equal(c.calls, 1);
    assert_true(c.corralled);
    assert_true(c.written_before > 0);
    assert_int_equal(c.written_after, c.written_before);
    assert_false(ld_sim_corralled(sim));

    /* Every step was timed; the machine was stopped at least for fn. */
    assert_true(t.corral_ns > 0 && t.corral_ns < 2000000000ull);
    assert_true(t.stopped_ns >= 20000000ull && t.stopped_ns < 10000000000ull);
    assert_true(t.uncorral_ns > 0 && t.uncorral_ns < 2000000000ull);
    uint64_t small[] = {t.disable_interrupts_ns, t.save_supervisor_state_ns, t.suspend_clock_timer_ns,
                        t.enable_interrupts_ns, t.restore_supervisor_state_ns, t.resume_clock_timer_ns};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        assert_true(small[i] < 1000000000ull); /* really written (not the 0xee fill) */

    /* Register files, as they parked. */
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);
    const ld_kind_range *kimg = find_kind(kinds, nk, LD_PAGE_KERNEL_IMAGE);
    const ld_kind_range *pt = find_kind(kinds, nk, LD_PAGE_PAGE_TABLES);
    const ld_kind_range *stacks = find_kind(kinds, nk, LD_PAGE_KERNEL_STACKS);
    const uint64_t va = 0xfffff80000000000ull;
    for (uint32_t i = 0; i < 3; i++) {
        const ld_cpu_context *x = &c.ctx[i];
        assert_int_equal(c.ctx_status[i], LD_STATUS_SUCCESS);
        assert_int_equal(x->cpu, i);
        assert_int_equal(x->valid, LD_CTX_GPRS | LD_CTX_CONTROL | LD_CTX_SEGMENTS | LD_CTX_STACK_RANGE |
                                       LD_CTX_THREAD | LD_CTX_FLOAT);
        assert_true(x->rip >= va + kimg->first_pfn * PAGE &&
                    x->rip < va + (kimg->first_pfn + kimg->page_count) * PAGE);
        assert_true(x->gpr[LD_RSP] >= x->stack_limit && x->gpr[LD_RSP] < x->stack_base);
        assert_int_equal(x->stack_base - x->stack_limit, x->stack_pages * PAGE);
        assert_int_equal(x->stack_limit, va + x->stack_base_pfn * PAGE);
        assert_true(x->stack_base_pfn >= stacks->first_pfn &&
                    x->stack_base_pfn + x->stack_pages <= stacks->first_pfn + stacks->page_count);
        assert_true(x->cr3 % PAGE == 0);
        assert_true(x->cr3 / PAGE >= pt->first_pfn && x->cr3 / PAGE < pt->first_pfn + pt->page_count);
        assert_int_equal(x->cs, 0x10);
        assert_int_equal(x->ss, 0x18);
        assert_int_equal(x->ds, 0x2b);
        assert_int_equal(x->es, 0x2b);
        assert_int_equal(x->gs, 0x2b);
        assert_int_equal(x->fs, 0x53);
        assert_int_equal(x->rflags, 0x202);
        assert_int_equal(x->mxcsr, 0x1f80);
        for (uint32_t j = 0; j < i; j++) {
            assert_true(x->thread_id != c.ctx[j].thread_id);
            assert_true(x->stack_base_pfn != c.ctx[j].stack_base_pfn);
        }
    }
    free(ranges);
    free(kinds);

    /* Writing resumes. */
    uint64_t after = ld_sim_pages_written(sim);
    assert_true(wait_written_more(sim, after, 2000));
    ld_sim_destroy(sim);
}

/* ---- the probe ---- */

typedef struct probe_check {
    ld_sim *sim;
    int bad;
    uint64_t rax[4];
    ld_status st;
} probe_check;

static ld_status check_probe(void *arg)
{
    probe_check *c = arg;
    const ld_hal *hal = ld_sim_hal(c->sim);
    uint8_t page[PAGE];
    for (uint32_t i = 0; i < hal->cpu_count(hal->ctx); i++) {
        ld_sim_probe p;
        ld_cpu_context ctx;
        if (ld_sim_probe_of(c->sim, i, &p) != LD_STATUS_SUCCESS ||
            hal->cpu_context(hal->ctx, i, &ctx) != LD_STATUS_SUCCESS) {
            c->st = LD_STATUS_UNSUCCESSFUL;
            return c->st;
        }
        if (hal->mem_read(hal->ctx, p.a_pfn, 1, page) != LD_STATUS_SUCCESS)
            return c->st = LD_STATUS_UNSUCCESSFUL;
        uint64_t a = le64_at(page + p.a_offset);
        if (hal->mem_read(hal->ctx, p.b_pfn, 1, page) != LD_STATUS_SUCCESS)
            return c->st = LD_STATUS_UNSUCCESSFUL;
        uint64_t b = le64_at(page + p.b_offset);
        if (a != b || b != ctx.gpr[LD_RAX] || p.b_pfn != ctx.stack_base_pfn)
            c->bad++;
        c->rax[i] = ctx.gpr[LD_RAX];
    }
    return LD_STATUS_SUCCESS;
}

static void probe_rounds(ld_sim *sim, int rounds)
{
    const ld_hal *hal = ld_sim_hal(sim);
    probe_check c = {.sim = sim};
    uint64_t last[4] = {0};
    for (int r = 0; r < rounds; r++) {
        assert_int_equal(hal->quiesce(hal->ctx, 5000000000ull, check_probe, &c, NULL), LD_STATUS_SUCCESS);
        assert_int_equal(c.bad, 0);
        for (uint32_t i = 0; i < hal->cpu_count(hal->ctx); i++) {
            assert_true(c.rax[i] >= last[i]);
            last[i] = c.rax[i];
        }
        sleep_ms(2);
    }
    /* The counters really moved. */
    for (uint32_t i = 0; i < hal->cpu_count(hal->ctx); i++)
        assert_true(last[i] > 0);
}

static void test_probe_consistent_when_stopped(void **state)
{
    (void)state;
    ld_sim *sim = make(3, 256ull << 20, 16ull << 20, false);
    assert_true(wait_written_more(sim, 1000, 3000));
    probe_rounds(sim, 40);
    ld_sim_destroy(sim);
}

static void test_idle_machine_ticks(void **state)
{
    (void)state;
    ld_sim *sim = make(2, 0, 4ull << 20, false);
    ld_sim_probe p;
    assert_int_equal(ld_sim_probe_of(sim, 0, &p), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_probe_of(sim, 2, &p), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_sim_probe_of(sim, 0, NULL), LD_STATUS_INVALID_PARAMETER);
    const ld_hal *hal = ld_sim_hal(sim);
    uint8_t page[PAGE];
    assert_int_equal(hal->mem_read(hal->ctx, p.a_pfn, 1, page), LD_STATUS_SUCCESS);
    uint64_t first = le64_at(page + p.a_offset);
    /* Idle vCPUs tick about every millisecond. */
    uint64_t now = first;
    for (int i = 0; i < 2000 && now < first + 5; i++) {
        sleep_ms(1);
        assert_int_equal(hal->mem_read(hal->ctx, p.a_pfn, 1, page), LD_STATUS_SUCCESS);
        now = le64_at(page + p.a_offset);
    }
    assert_true(now >= first + 5);
    assert_int_equal(ld_sim_pages_written(sim), 0);
    probe_rounds(sim, 10);
    ld_sim_destroy(sim);
}

/* ---- register files only while stopped; quiesce rules ---- */

typedef struct nested {
    ld_sim *sim;
    ld_status inner, bad_cpu, null_out;
} nested;

static ld_status noop(void *arg)
{
    (void)arg;
    return LD_STATUS_SUCCESS;
}

static ld_status try_nested(void *arg)
{
    nested *n = arg;
    const ld_hal *hal = ld_sim_hal(n->sim);
    ld_cpu_context ctx;
    n->inner = hal->quiesce(hal->ctx, 1000000000ull, noop, NULL, NULL);
    n->bad_cpu = hal->cpu_context(hal->ctx, hal->cpu_count(hal->ctx), &ctx);
    n->null_out = hal->cpu_context(hal->ctx, 0, NULL);
    return LD_STATUS_SUCCESS;
}

static void test_quiesce_rules(void **state)
{
    (void)state;
    ld_sim *sim = make(2, 16ull << 20, 4ull << 20, false);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_cpu_context ctx;
    assert_int_equal(hal->cpu_context(hal->ctx, 0, &ctx), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(hal->cpu_context(hal->ctx, 2, &ctx), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, NULL, NULL, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_false(ld_sim_corralled(sim));

    nested n = {.sim = sim};
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, try_nested, &n, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(n.inner, LD_STATUS_DEVICE_BUSY); /* one stop-the-world at a time */
    assert_int_equal(n.bad_cpu, LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(n.null_out, LD_STATUS_INVALID_PARAMETER);
    assert_false(ld_sim_corralled(sim));
    assert_int_equal(hal->cpu_context(hal->ctx, 0, &ctx), LD_STATUS_INVALID_DEVICE_STATE);
    /* And the next one works. */
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, noop, NULL, NULL), LD_STATUS_SUCCESS);
    ld_sim_destroy(sim);
}

/* ---- a vCPU late at the corral ---- */

static int fn_calls;

static ld_status count_call(void *arg)
{
    (void)arg;
    fn_calls++;
    return LD_STATUS_SUCCESS;
}

/* A vCPU arriving later than the timeout: TIMEOUT, fn never runs, the
 * machine runs on. A shorter delay only lengthens the corral. The delay
 * is the machine's: it holds at every corral until set back to 0. */
static void test_late_vcpu(void **state)
{
    (void)state;
    ld_sim *sim = make(2, 64ull << 20, 4ull << 20, true);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(wait_written_more(sim, 0, 2000));
    assert_int_equal(ld_sim_set_corral_delay(sim, 1, 2000000000ull), LD_STATUS_SUCCESS);
    fn_calls = 0;
    ld_quiesce_times t;
    for (int round = 0; round < 2; round++) {
        uint64_t t0 = test_now_ns();
        assert_int_equal(hal->quiesce(hal->ctx, 50000000ull, count_call, NULL, &t), LD_STATUS_TIMEOUT);
        uint64_t took = test_now_ns() - t0;
        assert_int_equal(fn_calls, 0);
        assert_false(ld_sim_corralled(sim));
        assert_true(t.corral_ns >= 50000000ull);
        assert_true(took < 1500000000ull); /* the late vCPU is not waited for */
        uint64_t w = ld_sim_pages_written(sim);
        assert_true(wait_written_more(sim, w, 2000));
    }

    assert_int_equal(ld_sim_set_corral_delay(sim, 1, 30000000ull), LD_STATUS_SUCCESS); /* 30 ms late, 2 s allowed */
    assert_int_equal(hal->quiesce(hal->ctx, 2000000000ull, count_call, NULL, &t), LD_STATUS_SUCCESS);
    assert_int_equal(fn_calls, 1);
    assert_true(t.corral_ns >= 30000000ull);
    assert_false(ld_sim_corralled(sim));

    /* Each vCPU has its own delay; 0 puts it back on time. */
    assert_int_equal(ld_sim_set_corral_delay(sim, 1, 0), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sim_set_corral_delay(sim, 0, 2000000000ull), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 50000000ull, count_call, NULL, &t), LD_STATUS_TIMEOUT);
    assert_int_equal(fn_calls, 1);
    assert_int_equal(ld_sim_set_corral_delay(sim, 0, 0), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 2000000000ull, count_call, NULL, &t), LD_STATUS_SUCCESS);
    assert_int_equal(fn_calls, 2);
    assert_true(t.corral_ns < 2000000000ull);

    /* Only the machine's vCPUs. */
    assert_int_equal(ld_sim_set_corral_delay(sim, 2, 1), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_sim_set_corral_delay(NULL, 0, 1), LD_STATUS_INVALID_PARAMETER);

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
    assert_int_equal(ld_sim_set_corral_delay(sim, 0, 10000000000ull), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 20000000ull, count_call, NULL, NULL), LD_STATUS_TIMEOUT);
    uint64_t w = ld_sim_pages_written(sim);
    assert_true(wait_written_more(sim, w, 2000));
    ld_sim_destroy(sim); /* does not wait out the 10 s delay */
}

/* ---- the dirty log ---- */

static uint8_t *snapshot(const ld_hal *hal, const ld_phys_range *ranges, size_t nr, uint64_t max_pfn)
{
    uint8_t *img = calloc(max_pfn, PAGE);
    assert_non_null(img);
    for (size_t r = 0; r < nr; r++)
        assert_int_equal(hal->mem_read(hal->ctx, ranges[r].first_pfn, ranges[r].page_count,
                                       img + ranges[r].first_pfn * PAGE),
                         LD_STATUS_SUCCESS);
    return img;
}

static bool bit(const uint64_t *bits, uint64_t pfn)
{
    return (bits[pfn / 64] >> (pfn % 64)) & 1;
}

static void test_dirty_log(void **state)
{
    (void)state;
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 64ull << 20;
    cfg.dirty_rate = 64ull << 20;
    cfg.hot_set_bytes = 2ull << 20;
    cfg.seed = 99;
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(hal->caps & LD_HAL_CAP_DIRTY_LOG);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);
    uint64_t max_pfn = max_pfn_of(ranges, nr);
    size_t words = (size_t)(max_pfn / 64 + 2); /* room beyond the machine */
    uint64_t *bits = calloc(words, sizeof *bits);
    uint64_t count = 0;

    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(hal->dirty_start(hal->ctx), LD_STATUS_SUCCESS);
    assert_int_equal(hal->dirty_fetch(hal->ctx, NULL, max_pfn, &count), LD_STATUS_INVALID_PARAMETER);

    /* Paused and drained, the log stays empty. */
    ld_sim_pause(sim, true);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_SUCCESS);
    memset(bits, 0, words * sizeof *bits);
    sleep_ms(10);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_SUCCESS);
    assert_int_equal(count, 0);

    /* Run, then every page whose bytes changed is in the next fetch. */
    uint8_t *before = snapshot(hal, ranges, nr, max_pfn);
    uint64_t written = ld_sim_pages_written(sim);
    ld_sim_pause(sim, false);
    assert_true(wait_written_more(sim, written + 50, 3000));
    ld_sim_pause(sim, true);
    /* Bits the caller already had, and bits beyond the machine, stay. */
    bits[0] |= 1;                       /* PFN 0: free, never written */
    bits[words - 1] = 0x8000000000000000ull;
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_SUCCESS);
    assert_true(bits[0] & 1);
    assert_int_equal(bits[words - 1], 0x8000000000000000ull);
    uint8_t *after = snapshot(hal, ranges, nr, max_pfn);
    uint64_t changed = 0, set = 0;
    for (uint64_t pfn = 1; pfn < max_pfn; pfn++) {
        bool differs = memcmp(before + pfn * PAGE, after + pfn * PAGE, PAGE) != 0;
        if (differs && !bit(bits, pfn))
            fail_msg("pfn 0x%llx changed but is not in the dirty log", (unsigned long long)pfn);
        changed += differs;
        set += bit(bits, pfn);
    }
    assert_true(changed > 10);
    assert_int_equal(count, set);
    ld_sim_probe p;
    assert_int_equal(ld_sim_probe_of(sim, 0, &p), LD_STATUS_SUCCESS);
    assert_true(bit(bits, p.a_pfn)); /* the probe page: every step of every vCPU writes it */

    /* A fetch of fewer bits leaves the rest for the next fetch. */
    ld_sim_pause(sim, false);
    assert_true(wait_written_more(sim, ld_sim_pages_written(sim), 3000));
    ld_sim_pause(sim, true);
    memset(bits, 0, words * sizeof *bits);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, p.a_pfn, &count), LD_STATUS_SUCCESS);
    assert_false(bit(bits, p.a_pfn));
    memset(bits, 0, words * sizeof *bits);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_SUCCESS);
    assert_true(bit(bits, p.a_pfn));
    for (uint64_t pfn = 0; pfn < p.a_pfn; pfn++)
        assert_false(bit(bits, pfn));

    /* While corralled, too; and stop ends it. */
    ld_sim_pause(sim, false);
    assert_int_equal(hal->dirty_stop(hal->ctx), LD_STATUS_SUCCESS);
    assert_int_equal(hal->dirty_fetch(hal->ctx, bits, max_pfn, &count), LD_STATUS_INVALID_DEVICE_STATE);
    free(before);
    free(after);
    free(bits);
    free(ranges);
    free(kinds);
    ld_sim_destroy(sim);
}

typedef struct fetch_inside {
    ld_sim *sim;
    uint64_t *bits;
    uint64_t nbits, count1, count2;
    ld_status st1, st2;
} fetch_inside;

static ld_status fetch_twice(void *arg)
{
    fetch_inside *f = arg;
    const ld_hal *hal = ld_sim_hal(f->sim);
    f->st1 = hal->dirty_fetch(hal->ctx, f->bits, f->nbits, &f->count1);
    sleep_ms(5);
    f->st2 = hal->dirty_fetch(hal->ctx, f->bits, f->nbits, &f->count2);
    return LD_STATUS_SUCCESS;
}

static void test_dirty_fetch_while_corralled(void **state)
{
    (void)state;
    ld_sim *sim = make(2, 64ull << 20, 4ull << 20, false);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);
    fetch_inside f = {.sim = sim, .nbits = max_pfn_of(ranges, nr)};
    f.bits = calloc(f.nbits / 64 + 1, sizeof(uint64_t));
    assert_int_equal(hal->dirty_start(hal->ctx), LD_STATUS_SUCCESS);
    assert_true(wait_written_more(sim, ld_sim_pages_written(sim) + 10, 3000)); /* written while logging */
    assert_int_equal(hal->quiesce(hal->ctx, 2000000000ull, fetch_twice, &f, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(f.st1, LD_STATUS_SUCCESS);
    assert_int_equal(f.st2, LD_STATUS_SUCCESS);
    assert_true(f.count1 > 0);
    assert_int_equal(f.count2, 0); /* stopped: nothing new */
    assert_int_equal(hal->dirty_stop(hal->ctx), LD_STATUS_SUCCESS);
    free(f.bits);
    free(ranges);
    free(kinds);
    ld_sim_destroy(sim);
}

/* ---- pause ---- */

static void test_pause(void **state)
{
    (void)state;
    ld_sim *sim = make(2, 64ull << 20, 4ull << 20, false);
    assert_true(wait_written_more(sim, 0, 2000));
    ld_sim_pause(sim, true);
    ld_sim_probe p;
    assert_int_equal(ld_sim_probe_of(sim, 0, &p), LD_STATUS_SUCCESS);
    uint64_t w = ld_sim_pages_written(sim);
    uint64_t a = le64_at((const uint8_t *)ld_sim_page(sim, p.a_pfn) + p.a_offset);
    sleep_ms(20);
    assert_int_equal(ld_sim_pages_written(sim), w);
    assert_int_equal(le64_at((const uint8_t *)ld_sim_page(sim, p.a_pfn) + p.a_offset), a);
    assert_false(ld_sim_corralled(sim));
    /* A paused machine can still be corralled. */
    const ld_hal *hal = ld_sim_hal(sim);
    probe_check c = {.sim = sim};
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, check_probe, &c, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(c.bad, 0);
    assert_int_equal(ld_sim_pages_written(sim), w);
    ld_sim_pause(sim, false);
    assert_true(wait_written_more(sim, w, 2000));
    ld_sim_destroy(sim);
}

/* ---- secondary data ---- */

typedef struct collect {
    ld_sim *sim;
    uint8_t hv[70000], ipt[40000];
    uint64_t hv_len, ipt_len;
    ld_status hv_st, ipt_st;
} collect;

static ld_status collect_inside(void *arg)
{
    collect *c = arg;
    const ld_hal *hal = ld_sim_hal(c->sim);
    c->hv_st = hal->hv_collect(hal->ctx, c->hv, sizeof c->hv, &c->hv_len);
    c->ipt_st = hal->ipt_collect(hal->ctx, c->ipt, sizeof c->ipt, &c->ipt_len);
    return LD_STATUS_SUCCESS;
}

static void test_secondary_data(void **state)
{
    (void)state;
    ld_sim *plain = make(2, 0, 4ull << 20, false);
    const ld_hal *hp = ld_sim_hal(plain);
    assert_false(hp->caps & (LD_HAL_CAP_HYPERVISOR | LD_HAL_CAP_IPT | LD_HAL_CAP_SECURE_KERNEL));
    assert_null(hp->hv_size);
    assert_null(hp->ipt_collect);
    uint32_t always = LD_HAL_CAP_CPU_CONTEXT | LD_HAL_CAP_QUIESCE | LD_HAL_CAP_POOLS | LD_HAL_CAP_MEM_STATUS |
                      LD_HAL_CAP_DIRTY_LOG;
    assert_int_equal(hp->caps & always, always);
    assert_int_equal(hp->version, LD_HAL_VERSION);
    assert_int_equal(hp->page_size, PAGE);
    assert_string_equal(hp->name, "sim");
    ld_sim_destroy(plain);

    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    cfg.no_dirty_log = true;
    cfg.secure_kernel = true;
    assert_int_equal(ld_sim_create(&cfg, &plain), LD_STATUS_SUCCESS);
    hp = ld_sim_hal(plain);
    assert_false(hp->caps & LD_HAL_CAP_DIRTY_LOG);
    assert_true(hp->caps & LD_HAL_CAP_SECURE_KERNEL);
    assert_null(hp->dirty_start);
    assert_null(hp->dirty_fetch);
    assert_null(hp->dirty_stop);
    ld_sim_destroy(plain);

    ld_sim *sim = make(2, 16ull << 20, 4ull << 20, true);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_int_equal(hal->caps & (LD_HAL_CAP_HYPERVISOR | LD_HAL_CAP_IPT), LD_HAL_CAP_HYPERVISOR | LD_HAL_CAP_IPT);
    uint64_t hv_bytes = 0, ipt_bytes = 0, len;
    assert_int_equal(hal->hv_size(hal->ctx, &hv_bytes), LD_STATUS_SUCCESS);
    assert_int_equal(hal->ipt_size(hal->ctx, &ipt_bytes), LD_STATUS_SUCCESS);
    assert_true(hv_bytes > 0 && hv_bytes <= 70000);
    assert_int_equal(ipt_bytes, 2 * 16384);
    uint8_t small[16];
    assert_int_equal(hal->hv_collect(hal->ctx, small, sizeof small, &len), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(hal->hv_prepare(hal->ctx), LD_STATUS_SUCCESS);

    collect *c = calloc(2, sizeof *c);
    c[0].sim = c[1].sim = sim;
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, collect_inside, &c[0], NULL), LD_STATUS_SUCCESS);
    assert_int_equal(hal->quiesce(hal->ctx, 1000000000ull, collect_inside, &c[1], NULL), LD_STATUS_SUCCESS);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(c[i].hv_st, LD_STATUS_SUCCESS);
        assert_int_equal(c[i].ipt_st, LD_STATUS_SUCCESS);
        assert_int_equal(c[i].hv_len, hv_bytes);
        assert_int_equal(c[i].ipt_len, ipt_bytes);
    }
    assert_memory_equal(c[0].hv, c[1].hv, hv_bytes); /* deterministic */
    assert_memory_equal(c[0].ipt, c[1].ipt, ipt_bytes);
    static const uint8_t zero[1024];
    assert_memory_not_equal(c[0].hv, zero, sizeof zero);
    free(c);
    ld_sim_destroy(sim);
}

/* ---- destroy while running (ASan/LSan check the leaks) ---- */

static void test_destroy_while_running(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        ld_sim *sim = make(4, i % 2 ? 512ull << 20 : 0, 8ull << 20, i % 2 == 0);
        if (i == 2)
            ld_sim_pause(sim, true);
        if (i == 3) {
            const ld_hal *hal = ld_sim_hal(sim);
            void *mem;
            /* Pool memory not given back goes with the machine. */
            assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, 1 << 20, &mem), LD_STATUS_SUCCESS);
            assert_int_equal(hal->dirty_start(hal->ctx), LD_STATUS_SUCCESS);
        }
        sleep_ms((unsigned)i);
        ld_sim_destroy(sim);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corral_stops_writes),
        cmocka_unit_test(test_probe_consistent_when_stopped),
        cmocka_unit_test(test_idle_machine_ticks),
        cmocka_unit_test(test_quiesce_rules),
        cmocka_unit_test(test_late_vcpu),
        cmocka_unit_test(test_dirty_log),
        cmocka_unit_test(test_dirty_fetch_while_corralled),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_secondary_data),
        cmocka_unit_test(test_destroy_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
