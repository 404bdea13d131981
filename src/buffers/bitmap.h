/* Page bitmaps: one bit per PFN, with an optional rank index so that the
 * position of a page among the set bits (its buffer slot) is O(1). */
#ifndef LDI_BITMAP_H
#define LDI_BITMAP_H

#include "base.h"

typedef struct ldi_bitmap {
    uint64_t *words;
    uint64_t nbits;
    uint64_t nwords;
    uint64_t *rank; /* rank[w] = set bits in words[0..w-1]; NULL until built
                       (64-bit: layouts allow 2^40 PFNs) */
} ldi_bitmap;

#define LDI_NO_PFN UINT64_MAX

ld_status ldi_bitmap_init(ldi_bitmap *bm, const ld_platform *plat, uint64_t nbits);
void ldi_bitmap_free(ldi_bitmap *bm, const ld_platform *plat);
void ldi_bitmap_clear_all(ldi_bitmap *bm);
void ldi_bitmap_set_range(ldi_bitmap *bm, uint64_t first, uint64_t count);
void ldi_bitmap_clear_range(ldi_bitmap *bm, uint64_t first, uint64_t count);
void ldi_bitmap_copy(ldi_bitmap *dst, const ldi_bitmap *src);
void ldi_bitmap_and(ldi_bitmap *dst, const ldi_bitmap *src);
void ldi_bitmap_or(ldi_bitmap *dst, const ldi_bitmap *src);
void ldi_bitmap_andnot(ldi_bitmap *dst, const ldi_bitmap *src);
uint64_t ldi_bitmap_count(const ldi_bitmap *bm);
uint64_t ldi_bitmap_count_range(const ldi_bitmap *bm, uint64_t first, uint64_t count);
/* First set bit >= from, or LDI_NO_PFN. */
uint64_t ldi_bitmap_next_set(const ldi_bitmap *bm, uint64_t from);
/* First bit >= from set in both a and b (b may be NULL: a alone). */
uint64_t ldi_bitmap_next_set_and(const ldi_bitmap *a, const ldi_bitmap *b, uint64_t from);
/* Last set bit < before, or LDI_NO_PFN. */
uint64_t ldi_bitmap_prev_set(const ldi_bitmap *bm, uint64_t before);

/* Rank index: build after the last change; rank_of(pfn) is then the number
 * of set bits below pfn. */
ld_status ldi_bitmap_build_rank(ldi_bitmap *bm, const ld_platform *plat);
uint64_t ldi_bitmap_rank(const ldi_bitmap *bm, uint64_t pfn);

static inline bool ldi_bitmap_test(const ldi_bitmap *bm, uint64_t bit)
{
    return bit < bm->nbits && ((bm->words[bit >> 6] >> (bit & 63)) & 1u);
}

static inline void ldi_bitmap_set(ldi_bitmap *bm, uint64_t bit)
{
    if (bit < bm->nbits)
        bm->words[bit >> 6] |= (uint64_t)1 << (bit & 63);
}

static inline void ldi_bitmap_clear(ldi_bitmap *bm, uint64_t bit)
{
    if (bit < bm->nbits)
        bm->words[bit >> 6] &= ~((uint64_t)1 << (bit & 63));
}

/* Population count without libgcc (__builtin_popcountll may call
 * __popcountdi2, which a kernel build does not have). */
static inline unsigned ldi_popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

#endif
