/* Page bitmaps against a plain bool-array model, under random operations. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "bitmap.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_against_model(void **state)
{
    (void)state;
    const ld_platform *p = ld_platform_default();
    static const uint64_t sizes[] = {1, 63, 64, 65, 127, 128, 1000, 4097};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint64_t n = sizes[si];
        ldi_bitmap bm, other;
        assert_int_equal(ldi_bitmap_init(&bm, p, n), LD_STATUS_SUCCESS);
        assert_int_equal(ldi_bitmap_init(&other, p, n), LD_STATUS_SUCCESS);
        bool *model = calloc(n, 1), *model2 = calloc(n, 1);
        for (int round = 0; round < 2000; round++) {
            uint64_t a = next_rand() % (n + 4), len = next_rand() % (n / 2 + 3);
            switch (next_rand() % 6) {
            case 0:
                ldi_bitmap_set_range(&bm, a, len);
                for (uint64_t i = a; i < a + len && i < n; i++) model[i] = true;
                break;
            case 1:
                ldi_bitmap_clear_range(&bm, a, len);
                for (uint64_t i = a; i < a + len && i < n; i++) model[i] = false;
                break;
            case 2:
                ldi_bitmap_set_range(&other, a, len);
                for (uint64_t i = a; i < a + len && i < n; i++) model2[i] = true;
                ldi_bitmap_and(&bm, &other);
                for (uint64_t i = 0; i < n; i++) model[i] = model[i] && model2[i];
                break;
            case 3:
                ldi_bitmap_or(&bm, &other);
                for (uint64_t i = 0; i < n; i++) model[i] = model[i] || model2[i];
                break;
            case 4:
                ldi_bitmap_andnot(&bm, &other);
                for (uint64_t i = 0; i < n; i++) model[i] = model[i] && !model2[i];
                break;
            default:
                ldi_bitmap_clear_range(&other, a, len);
                for (uint64_t i = a; i < a + len && i < n; i++) model2[i] = false;
            }
            /* Every query agrees with the model. */
            uint64_t count = 0;
            for (uint64_t i = 0; i < n; i++) {
                assert_int_equal(ldi_bitmap_test(&bm, i), model[i]);
                count += model[i];
            }
            assert_int_equal(ldi_bitmap_count(&bm), count);
            uint64_t q = next_rand() % (n + 2), ql = next_rand() % (n + 2), c = 0;
            for (uint64_t i = q; i < q + ql && i < n; i++) c += model[i];
            assert_int_equal(ldi_bitmap_count_range(&bm, q, ql), c);
            uint64_t nx = LDI_NO_PFN, pv = LDI_NO_PFN;
            for (uint64_t i = q; i < n; i++) if (model[i]) { nx = i; break; }
            for (uint64_t i = (q < n ? q : n); i-- > 0;) if (model[i]) { pv = i; break; }
            assert_int_equal(ldi_bitmap_next_set(&bm, q), nx);
            assert_int_equal(ldi_bitmap_prev_set(&bm, q), pv);
            if (round % 50 == 0) {
                assert_int_equal(ldi_bitmap_build_rank(&bm, p), LD_STATUS_SUCCESS);
                uint64_t r = 0;
                for (uint64_t i = 0; i < n; i++) {
                    assert_int_equal(ldi_bitmap_rank(&bm, i), r);
                    r += model[i];
                }
            }
        }
        free(model);
        free(model2);
        ldi_bitmap_free(&bm, p);
        ldi_bitmap_free(&other, p);
    }
}

/* Ranks beyond 2^32 (layouts allow 2^40 PFNs). A bitmap with 2^32 set bits
 * is too large for a unit test, so the index of a small full one is shifted
 * as if 2^32 + 7 set bits came before it: the index must hold that and the
 * lookup add to it without truncation. */
static void test_rank_beyond_32_bits(void **state)
{
    (void)state;
    const ld_platform *p = ld_platform_default();
    ldi_bitmap bm;
    assert_int_equal(ldi_bitmap_init(&bm, p, 192), LD_STATUS_SUCCESS);
    ldi_bitmap_set_range(&bm, 0, 192);
    assert_int_equal(ldi_bitmap_build_rank(&bm, p), LD_STATUS_SUCCESS);
    volatile uint64_t before = (1ull << 32) + 7;
    for (uint64_t w = 0; w < bm.nwords; w++)
        bm.rank[w] += before;
    assert_int_equal(ldi_bitmap_rank(&bm, 0), before);
    assert_int_equal(ldi_bitmap_rank(&bm, 130), before + 130);
    assert_int_equal(ldi_bitmap_rank(&bm, 191), before + 191);
    ldi_bitmap_free(&bm, p);
}

static void test_popcount(void **state)
{
    (void)state;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = next_rand(), naive = 0;
        for (int b = 0; b < 64; b++) naive += (x >> b) & 1;
        assert_int_equal(ldi_popcount64(x), naive);
    }
    assert_int_equal(ldi_popcount64(~0ull), 64);
    assert_int_equal(ldi_popcount64(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_popcount),
        cmocka_unit_test(test_rank_beyond_32_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
