/* The default user-mode platform (src/runtime/platform_uv.c). */
#include "sim_test.h"

static void test_memory(void **state)
{
    (void)state;
    const ld_platform *p = ld_platform_default();
    assert_non_null(p);
    assert_int_equal(p->version, LD_PLATFORM_VERSION);
    assert_ptr_equal(p, ld_platform_default()); /* one static table */
    uint8_t *m = p->alloc(p->ctx, 1000);
    assert_non_null(m);
    memset(m, 1, 1000);
    p->free(p->ctx, m);
    p->free(p->ctx, NULL); /* harmless */
}

static void test_time(void **state)
{
    (void)state;
    const ld_platform *p = ld_platform_default();
    uint64_t a = p->now_ns(p->ctx);
    sleep_ms(5);
    uint64_t b = p->now_ns(p->ctx);
    assert_true(b - a >= 5000000ull);
    assert_true(b - a < 5000000000ull);

    /* FILETIME: 100 ns units since 1601. */
    assert_non_null(p->system_time);
    uint64_t ft = p->system_time(p->ctx);
    uint64_t unix_s = (uint64_t)time(NULL);
    uint64_t expect = (unix_s + 11644473600ull) * 10000000ull;
    assert_true(ft + 20000000ull >= expect && ft <= expect + 20000000ull); /* within 2 s */
    assert_true(ft > 132223104000000000ull); /* after 2020-01-01 */
}

static void test_lock(void **state)
{
    (void)state;
    const ld_platform *p = ld_platform_default();
    void *lock = NULL;
    assert_int_equal(p->lock_create(p->ctx, &lock), LD_STATUS_SUCCESS);
    assert_non_null(lock);
    p->lock_acquire(p->ctx, lock);
    p->lock_release(p->ctx, lock);
    p->lock_acquire(p->ctx, lock);
    p->lock_release(p->ctx, lock);
    p->lock_destroy(p->ctx, lock);
    p->lock_destroy(p->ctx, NULL);
    assert_int_equal(p->lock_create(p->ctx, NULL), LD_STATUS_INVALID_PARAMETER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
