/* The simulated machine's buffer pools. */
#include "sim_test.h"

static ld_sim *make(void)
{
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    cfg.hot_set_bytes = 4ull << 20;
    cfg.hypervisor = true;
    cfg.ipt = true;
    cfg.pool_bytes[LD_POOL_VM_PARTITION] = 1ull << 20;
    ld_sim *sim = NULL;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    return sim;
}

/* ---- pools ---- */

static void test_pools_honour_capacity(void **state)
{
    (void)state;
    ld_sim *sim = make();
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
        cmocka_unit_test(test_pools_honour_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
