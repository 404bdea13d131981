/* Every event of the Kernel-LiveDump manifest (data/kernel-livedump-events.tsv,
 * read here at run time) is produced by some scenario with every listed
 * field set, and the events of a normal capture come in workflow order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *tsv_path;
static recorder *all; /* events of every scenario */

static void merge(const recorder *r)
{
    for (int id = 0; id < 300; id++) {
        all->seen[id] += r->seen[id];
        all->seen_complete[id] += r->seen_complete[id];
    }
}

static ld_status remove_ok(void *arg, ld_page_set *set)
{
    (void)arg;
    ld_page_set_remove(set, 0, 16);
    return LD_STATUS_SUCCESS;
}

static ld_status remove_fails(void *arg, ld_page_set *set)
{
    (void)arg;
    (void)set;
    return LD_STATUS_UNSUCCESSFUL;
}

static ld_status callout(void *arg, void *buf, uint64_t cap, uint64_t *len)
{
    (void)arg;
    memset(buf, 0x5a, cap);
    *len = cap / 2;
    return LD_STATUS_SUCCESS;
}

static void capture(harness *h, ld_capture_request *req, ld_status expect)
{
    mem_sink m;
    mem_sink_init(&m);
    bool defer = req->flags & LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h->engine, req, defer ? NULL : ld_format_raw(), defer ? NULL : &m.sink, NULL),
                     expect);
    mem_sink_release(&m);
}

/* A: everything a rich machine offers, with callbacks and callouts. */
static void scenario_rich(void)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.hypervisor = true;
    cfg.secure_kernel = true;
    cfg.ipt = true;
    cfg.dirty_rate = 128ull << 20;
    cfg.hot_set_bytes = 8ull << 20;
    cfg.pool_bytes[LD_POOL_VM_PARTITION] = 4ull << 20; /* too small: 116, then the system pool */
    harness h;
    harness_start(&h, &cfg, true);
    static const uint8_t guid[16] = {0xde, 0xad};
    assert_int_equal(ld_engine_add_remove_pages(h.engine, "KeepsGoing", remove_ok, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_add_remove_pages(h.engine, "Fails", remove_fails, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_add_callout(h.engine, "Component", guid, 8192, callout, NULL), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
    req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
    capture(&h, &req, LD_STATUS_SUCCESS);

    /* Workflow order of a normal capture. */
    static const uint16_t order[] = {1,   101, 102, 103, 104, 121, 117, 118, 119, 120, 122, 105,
                                     108, 110, 111, 110, 112, 109, 106, 107, 113, 125, 151, 152,
                                     153, 154, 165, 158, 159, 160, 161, 162, 163, 164, 156, 157,
                                     166, 155, 167, 169, 3,   4,   2};
    size_t at = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        long found = recorder_find(h.rec, order[i], at);
        if (found < 0)
            fail_msg("event %u missing or out of order", order[i]);
        at = (size_t)found + 1;
    }
    /* The failing callback is an error event, and the dump still succeeds. */
    long i112 = recorder_find(h.rec, 112, 0);
    assert_int_equal(h.rec->ev[i112].level, LD_LEVEL_ERROR);
    merge(h.rec);
    harness_stop(&h);
}

static void scenario_deferred_and_policy(void)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, false); /* 271 + 273 */
    assert_int_equal(ld_engine_set_allow_live_dump(h.engine, true), LD_STATUS_SUCCESS); /* 272 */
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    capture(&h, &req, LD_STATUS_SUCCESS);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    capture(&h, &req, LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    merge(h.rec);
    harness_stop(&h);
}

static void scenario_memory_pressure(void)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.available_bytes = 1 << 20;
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
    capture(&h, &req, LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(recorder_count(h.rec, 5), 1);
    merge(h.rec);
    harness_stop(&h);
}

static void scenario_no_dirty_log(void)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.no_dirty_log = true;
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    capture(&h, &req, LD_STATUS_SUCCESS);
    assert_true(recorder_count(h.rec, 6) >= 1);
    merge(h.rec);
    harness_stop(&h);
}

/* One HAL fault per run, for the failure events. */
static void scenario_fault(ld_hal_op op, uint64_t nth, bool vm_pool, uint16_t expect_id)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.hypervisor = true;
    cfg.dirty_rate = 64ull << 20;
    cfg.hot_set_bytes = 4ull << 20;
    if (vm_pool)
        cfg.pool_bytes[LD_POOL_VM_PARTITION] = 64ull << 20;
    harness h;
    harness_start(&h, &cfg, true);
    ld_fault f = {.op = op, .nth = nth, .status = LD_STATUS_UNSUCCESSFUL};
    assert_int_equal(ld_fault_inject(h.fault, &f), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_HV_PAGES;
    mem_sink m;
    mem_sink_init(&m);
    (void)ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL);
    mem_sink_release(&m);
    if (recorder_count(h.rec, expect_id) == 0)
        fail_msg("fault in %s did not produce event %u", ld_hal_op_name(op), expect_id);
    merge(h.rec);
    harness_stop(&h);
}

static void test_every_event_covered(void **state)
{
    (void)state;
    all = calloc(1, sizeof *all);
    scenario_rich();
    scenario_deferred_and_policy();
    scenario_memory_pressure();
    scenario_no_dirty_log();
    scenario_fault(LD_HAL_OP_HV_SIZE, 1, false, 114);
    scenario_fault(LD_HAL_OP_POOL_OPEN, 2, true, 115);   /* the 2nd pool opened is the VM partition */
    scenario_fault(LD_HAL_OP_DIRTY_START, 1, false, 123);
    scenario_fault(LD_HAL_OP_HV_PREPARE, 1, false, 126);
    scenario_fault(LD_HAL_OP_DIRTY_FETCH, 3, false, 168); /* sizing, phase 0, then phase 1 */

    FILE *f = fopen(tsv_path, "r");
    assert_non_null(f);
    char line[8192];
    int ids = 0, missing = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        int id = atoi(line);
        if (id <= 0 || id >= 300)
            continue;
        ids++;
        if (!all->seen_complete[id]) {
            print_error("event %d: %s\n", id, all->seen[id] ? "never with all fields set" : "never produced");
            missing++;
        }
    }
    fclose(f);
    assert_int_equal(ids, 60);
    assert_int_equal(missing, 0);
    free(all);
}

int main(int argc, char **argv)
{
    tsv_path = argc > 1 ? argv[1] : "data/kernel-livedump-events.tsv";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_event_covered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
