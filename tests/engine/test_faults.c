#define _GNU_SOURCE
/* Fault injection on every HAL operation, at several calls: whatever fails,
 * the machine ends uncorralled, nothing leaks, event 2 reports the status
 * the API returned, no half-written dump is presented as good, and the
 * engine can take the next dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static void setup_config(ld_sim_config *cfg)
{
    harness_config(cfg);
    cfg->memory_bytes = 64ull << 20;
    cfg->dirty_rate = 64ull << 20;
    cfg->hot_set_bytes = 4ull << 20;
    cfg->hypervisor = true;
    cfg->ipt = true;
    cfg->pool_bytes[LD_POOL_VM_PARTITION] = 8ull << 20;
}

static ld_status dummy_callout(void *arg, void *buf, uint64_t cap, uint64_t *len)
{
    (void)arg;
    memset(buf, 0xab, cap);
    *len = cap;
    return LD_STATUS_SUCCESS;
}

static void check_one(ld_hal_op op, uint64_t nth, ld_status fail, uint64_t stall_ns, bool defer)
{
    ld_sim_config cfg;
    setup_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    static const uint8_t guid[16] = {1, 2, 3};
    assert_int_equal(ld_engine_add_callout(h.engine, "test", guid, 4096, dummy_callout, NULL), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_HV_PAGES;
    if (defer)
        req.flags |= LD_FLAG_DEFER;
    ld_fault f = {.op = op, .nth = nth, .status = fail, .stall_ns = stall_ns};
    assert_int_equal(ld_fault_inject(h.fault, &f), LD_STATUS_SUCCESS);

    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    ld_status st = ld_engine_capture(h.engine, &req, defer ? NULL : ld_format_raw(), defer ? NULL : &m.sink, &r);
    assert_int_equal(st, r.status);
    assert_false(ld_sim_corralled(h.sim));
    if (!defer) {
        /* The sink was consumed exactly once, and finished only on success. */
        assert_true(m.finished != m.aborted);
        assert_int_equal(m.finished, st == LD_STATUS_SUCCESS);
    } else if (st == LD_STATUS_SUCCESS) {
        assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    }
    /* Event 2 closes every capture with the status returned. */
    long i2 = recorder_find(h.rec, 2, 0);
    assert_true(i2 >= 0);
    assert_int_equal(recorder_count(h.rec, 2), 1);
    assert_int_equal(h.rec->ev[i2].status, st);
    if (st != LD_STATUS_SUCCESS)
        assert_int_equal(h.rec->ev[i2].level, LD_LEVEL_ERROR);
    mem_sink_release(&m);

    /* The engine is idle again and the next dump works. */
    ld_fault_clear(h.fault);
    mem_sink_init(&m);
    req.flags &= ~LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    harness_stop(&h);
}

static void test_every_op_fails(void **state)
{
    (void)state;
    /* First and second call of each operation (most are called once or
     * twice per dump: once per workflow); deferred only for the first. */
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        for (uint64_t nth = 1; nth <= 2; nth++) {
            for (int defer = 0; defer <= (nth == 1); defer++) {
                print_message("fault: %s call %llu%s\n", ld_hal_op_name((ld_hal_op)op), (unsigned long long)nth,
                              defer ? " (deferred)" : "");
                check_one((ld_hal_op)op, nth, LD_STATUS_IO_DEVICE_ERROR, 0, defer);
            }
        }
    }
}

/* Allocation failures at each platform allocation of a capture exercise
 * every cleanup path (a capture makes about 20). */
static void test_platform_alloc_fails_everywhere(void **state)
{
    (void)state;
    for (uint64_t nth = 1; nth <= 24; nth++)
        check_one(LD_HAL_OP_PLATFORM_ALLOC, nth, LD_STATUS_NO_MEMORY, 0, false);
}

static void test_memory_read_fails_late(void **state)
{
    (void)state;
    /* Reads fail in phase 0, phase 1 and inside the quiesce. */
    for (uint64_t nth = 10; nth <= 4000; nth *= 8)
        check_one(LD_HAL_OP_MEM_READ, nth, LD_STATUS_IO_DEVICE_ERROR, 0, false);
}

static void test_corral_timeout(void **state)
{
    (void)state;
    ld_sim_config cfg;
    setup_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.corral_timeout_ns = 50000000ull; /* 50 ms */
    /* One vCPU arrives 500 ms late at the corral: a property of the
     * machine, not a fault of a call. */
    assert_int_equal(ld_sim_set_corral_delay(h.sim, cfg.cpus - 1, 500000000ull), LD_STATUS_SUCCESS);
    mem_sink m;
    mem_sink_init(&m);
    uint64_t before = ld_sim_pages_written(h.sim);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_TIMEOUT);
    assert_false(ld_sim_corralled(h.sim));
    assert_true(m.aborted);
    /* Event 6 explains the timeout; the machine keeps running. */
    assert_true(recorder_count(h.rec, 6) >= 1);
    assert_int_equal(recorder_count(h.rec, 105), 1);
    for (int i = 0; i < 100 && ld_sim_pages_written(h.sim) == before; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_true(ld_sim_pages_written(h.sim) > before);
    mem_sink_release(&m);
    harness_stop(&h);
}

static void test_sink_fails(void **state)
{
    (void)state;
    ld_sim_config cfg;
    setup_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    m.fail_after_bytes = 1 << 20;
    m.fail_status = LD_STATUS_DISK_FULL;
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_DISK_FULL);
    assert_true(m.aborted);
    long i4 = recorder_find(h.rec, 4, 0);
    assert_true(i4 >= 0);
    assert_int_equal(h.rec->ev[i4].status, LD_STATUS_DISK_FULL);
    mem_sink_release(&m);
    harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_fails),
        cmocka_unit_test(test_platform_alloc_fails_everywhere),
        cmocka_unit_test(test_memory_read_fails_late),
        cmocka_unit_test(test_corral_timeout),
        cmocka_unit_test(test_sink_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
