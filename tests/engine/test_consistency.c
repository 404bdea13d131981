/* Point-in-time consistency under a dirty workload.
 *
 * Each vCPU writes its sequence number to page A, then page B, then its
 * register rax. A dump taken at one instant has A == B == rax for every
 * vCPU. With mirroring, A and B are first copied at different times while
 * the machine runs; only a correct dirty log and final recopy make them
 * agree. A control run with a HAL whose dirty log loses updates must show
 * the disagreement, proving the check can fail. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CAPTURES 50

static uint64_t read_u64(const uint8_t *page, uint64_t off)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | page[off + (uint64_t)i];
    return v;
}

/* Number of vCPUs whose A, B and rax disagree in this dump. */
static int inconsistencies(ld_sim *sim, const ld_dump *d, const mem_sink *raw, uint64_t ps)

{
    const ld_dump_info *info = ld_dump_get_info(d);
    int bad = 0;
    for (uint32_t c = 0; c < info->cpu_count; c++) {
        ld_sim_probe p;
        assert_int_equal(ld_sim_probe_of(sim, c, &p), LD_STATUS_SUCCESS);
        const uint8_t *pa = ld_dump_page(d, p.a_pfn);
        const uint8_t *pb = ld_dump_page(d, p.b_pfn);
        assert_non_null(pa);
        assert_non_null(pb);
        uint64_t a = read_u64(pa, p.a_offset), b = read_u64(pb, p.b_offset);
        uint64_t rax = info->contexts[c].gpr[LD_RAX];
        assert_true(info->contexts[c].valid & LD_CTX_GPRS);
        if (raw) {
            /* The written image holds the same bytes. */
            assert_int_equal(read_u64(raw->data + p.a_pfn * ps, p.a_offset), a);
            assert_int_equal(read_u64(raw->data + p.b_pfn * ps, p.b_offset), b);
        }
        if (a != b || b != rax)
            bad++;
    }
    return bad;
}

static void run_captures(ld_sim *sim, ld_engine *e, const ld_hal *hal, int n, uint32_t flags, int *bad_dumps,
                         uint64_t *mirrored)
{
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags = flags | LD_FLAG_DEFER;
    req.mirror_max_passes = 3;
    *bad_dumps = 0;
    *mirrored = 0;
    uint64_t progress_before = ld_sim_pages_written(sim);
    for (int i = 0; i < n; i++) {
        ld_result r;
        assert_int_equal(ld_engine_capture(e, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
        const ld_dump *d = ld_engine_deferred(e);
        assert_non_null(d);
        mem_sink m;
        mem_sink_init(&m);
        bool write = i % 10 == 0;
        if (inconsistencies(sim, d, NULL, hal->page_size))
            (*bad_dumps)++;
        if (write) {
            /* Written out, the image must hold the same probe bytes; the
             * dump stays readable until the write frees it, so compare
             * through a second deferred capture's worth of state: keep
             * copies of the probe pages first. */
            ld_sim_probe p;
            assert_int_equal(ld_sim_probe_of(sim, 0, &p), LD_STATUS_SUCCESS);
            uint8_t *a = malloc(hal->page_size), *b = malloc(hal->page_size);
            memcpy(a, ld_dump_page(d, p.a_pfn), hal->page_size);
            memcpy(b, ld_dump_page(d, p.b_pfn), hal->page_size);
            assert_int_equal(ld_engine_write_deferred(e, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
            assert_memory_equal(m.data + p.a_pfn * hal->page_size, a, hal->page_size);
            assert_memory_equal(m.data + p.b_pfn * hal->page_size, b, hal->page_size);
            free(a);
            free(b);
        } else {
            assert_int_equal(ld_engine_discard_deferred(e), LD_STATUS_SUCCESS);
        }
        mem_sink_release(&m);
        *mirrored += r.mirrored;
    }
    /* The workload really ran during the captures. */
    assert_true(ld_sim_pages_written(sim) > progress_before);
}

static void test_consistent_with_mirroring(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.cpus = 3;
    cfg.dirty_rate = 256ull << 20;
    cfg.hot_set_bytes = 16ull << 20;
    harness h;
    harness_start(&h, &cfg, true);
    int bad;
    uint64_t mirrored;
    run_captures(h.sim, h.engine, h.hal, CAPTURES, LD_FLAG_USE_MIRRORING, &bad, &mirrored);
    assert_int_equal(bad, 0);
    assert_int_equal(mirrored, CAPTURES);
    harness_stop(&h);
}

static void test_consistent_without_mirroring(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.dirty_rate = 256ull << 20;
    cfg.hot_set_bytes = 16ull << 20;
    harness h;
    harness_start(&h, &cfg, true);
    int bad;
    uint64_t mirrored;
    run_captures(h.sim, h.engine, h.hal, 10, 0, &bad, &mirrored);
    assert_int_equal(bad, 0);
    assert_int_equal(mirrored, 0);
    harness_stop(&h);
}

/* ---- negative control: a dirty log that forgets the probe pages ---- */

static ld_hal lossy;
static const ld_hal *real;
static uint64_t forget_a, forget_b;

static ld_status lossy_fetch(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *count)
{
    ld_status st = real->dirty_fetch(ctx, bits, nbits, count);
    bits[forget_a / 64] &= ~(1ull << (forget_a % 64));
    bits[forget_b / 64] &= ~(1ull << (forget_b % 64));
    return st;
}

static void test_control_lossy_dirty_log_is_caught(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.dirty_rate = 256ull << 20;
    cfg.hot_set_bytes = 16ull << 20;
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    real = ld_sim_hal(sim);
    lossy = *real;
    lossy.dirty_fetch = lossy_fetch;
    ld_sim_probe p;
    assert_int_equal(ld_sim_probe_of(sim, 0, &p), LD_STATUS_SUCCESS);
    forget_a = p.a_pfn;
    forget_b = p.b_pfn;
    ld_engine *e;
    assert_int_equal(ld_engine_create(&lossy, NULL, &e), LD_STATUS_SUCCESS);
    int bad;
    uint64_t mirrored;
    run_captures(sim, e, &lossy, 10, LD_FLAG_USE_MIRRORING, &bad, &mirrored);
    /* Stale copies of A and B from phase 0 survive: the check sees it. */
    assert_true(bad > 0);
    ld_engine_destroy(e);
    ld_sim_destroy(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consistent_with_mirroring),
        cmocka_unit_test(test_consistent_without_mirroring),
        cmocka_unit_test(test_control_lossy_dirty_log_is_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
