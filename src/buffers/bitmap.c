/* Page bitmaps. Word-level operations keep bitmap work during the quiesce
 * proportional to memory/64 words, which is microseconds even at 16 GiB. */
#include "bitmap.h"

ld_status ldi_bitmap_init(ldi_bitmap *bm, const ld_platform *plat, uint64_t nbits)
{
    memset(bm, 0, sizeof *bm);
    bm->nbits = nbits;
    bm->nwords = (nbits + 63) / 64;
    if (bm->nwords == 0)
        return LD_STATUS_SUCCESS;
    if (bm->nwords > SIZE_MAX / sizeof(uint64_t))
        return LD_STATUS_NO_MEMORY;
    bm->words = plat->alloc(plat->ctx, (size_t)bm->nwords * sizeof(uint64_t));
    if (!bm->words) {
        bm->nwords = bm->nbits = 0;
        return LD_STATUS_NO_MEMORY;
    }
    memset(bm->words, 0, (size_t)bm->nwords * sizeof(uint64_t));
    return LD_STATUS_SUCCESS;
}

void ldi_bitmap_free(ldi_bitmap *bm, const ld_platform *plat)
{
    if (bm->words)
        plat->free(plat->ctx, bm->words);
    if (bm->rank)
        plat->free(plat->ctx, bm->rank);
    memset(bm, 0, sizeof *bm);
}

void ldi_bitmap_clear_all(ldi_bitmap *bm)
{
    if (bm->words)
        memset(bm->words, 0, (size_t)bm->nwords * sizeof(uint64_t));
}

/* Apply a mask to bits [first, first+count), clipped to the bitmap. */
static void range_op(ldi_bitmap *bm, uint64_t first, uint64_t count, bool set)
{
    if (first >= bm->nbits || count == 0)
        return;
    if (count > bm->nbits - first)
        count = bm->nbits - first;
    uint64_t last = first + count; /* exclusive */
    uint64_t w = first >> 6, wend = (last - 1) >> 6;
    for (; w <= wend; w++) {
        uint64_t lo = (w == first >> 6) ? (first & 63) : 0;
        uint64_t hi = (w == wend) ? ((last - 1) & 63) : 63;
        uint64_t mask = (hi == 63 ? ~0ull : (((uint64_t)1 << (hi + 1)) - 1)) & (~0ull << lo);
        if (set)
            bm->words[w] |= mask;
        else
            bm->words[w] &= ~mask;
    }
}

void ldi_bitmap_set_range(ldi_bitmap *bm, uint64_t first, uint64_t count)
{
    range_op(bm, first, count, true);
}

void ldi_bitmap_clear_range(ldi_bitmap *bm, uint64_t first, uint64_t count)
{
    range_op(bm, first, count, false);
}

static uint64_t min_words(const ldi_bitmap *a, const ldi_bitmap *b)
{
    return a->nwords < b->nwords ? a->nwords : b->nwords;
}

void ldi_bitmap_copy(ldi_bitmap *dst, const ldi_bitmap *src)
{
    uint64_t n = min_words(dst, src);
    memcpy(dst->words, src->words, (size_t)n * sizeof(uint64_t));
    if (dst->nwords > n)
        memset(dst->words + n, 0, (size_t)(dst->nwords - n) * sizeof(uint64_t));
}

void ldi_bitmap_and(ldi_bitmap *dst, const ldi_bitmap *src)
{
    uint64_t n = min_words(dst, src);
    for (uint64_t i = 0; i < n; i++)
        dst->words[i] &= src->words[i];
    for (uint64_t i = n; i < dst->nwords; i++)
        dst->words[i] = 0;
}

void ldi_bitmap_or(ldi_bitmap *dst, const ldi_bitmap *src)
{
    uint64_t n = min_words(dst, src);
    for (uint64_t i = 0; i < n; i++)
        dst->words[i] |= src->words[i];
}

void ldi_bitmap_andnot(ldi_bitmap *dst, const ldi_bitmap *src)
{
    uint64_t n = min_words(dst, src);
    for (uint64_t i = 0; i < n; i++)
        dst->words[i] &= ~src->words[i];
}

uint64_t ldi_bitmap_count(const ldi_bitmap *bm)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < bm->nwords; i++)
        n += ldi_popcount64(bm->words[i]);
    return n;
}

uint64_t ldi_bitmap_count_range(const ldi_bitmap *bm, uint64_t first, uint64_t count)
{
    if (first >= bm->nbits || count == 0)
        return 0;
    if (count > bm->nbits - first)
        count = bm->nbits - first;
    uint64_t last = first + count;
    uint64_t n = 0;
    uint64_t w = first >> 6, wend = (last - 1) >> 6;
    for (; w <= wend; w++) {
        uint64_t lo = (w == first >> 6) ? (first & 63) : 0;
        uint64_t hi = (w == wend) ? ((last - 1) & 63) : 63;
        uint64_t mask = (hi == 63 ? ~0ull : (((uint64_t)1 << (hi + 1)) - 1)) & (~0ull << lo);
        n += ldi_popcount64(bm->words[w] & mask);
    }
    return n;
}

uint64_t ldi_bitmap_next_set(const ldi_bitmap *bm, uint64_t from)
{
    if (from >= bm->nbits)
        return LDI_NO_PFN;
    uint64_t w = from >> 6;
    uint64_t word = bm->words[w] & (~0ull << (from & 63));
    for (;;) {
        if (word) {
            uint64_t bit = (w << 6) + (uint64_t)__builtin_ctzll(word);
            return bit < bm->nbits ? bit : LDI_NO_PFN;
        }
        if (++w >= bm->nwords)
            return LDI_NO_PFN;
        word = bm->words[w];
    }
}

uint64_t ldi_bitmap_next_set_and(const ldi_bitmap *a, const ldi_bitmap *b, uint64_t from)
{
    if (!b)
        return ldi_bitmap_next_set(a, from);
    uint64_t nbits = a->nbits < b->nbits ? a->nbits : b->nbits;
    if (from >= nbits)
        return LDI_NO_PFN;
    uint64_t nwords = (nbits + 63) / 64;
    uint64_t w = from >> 6;
    uint64_t word = a->words[w] & b->words[w] & (~0ull << (from & 63));
    for (;;) {
        if (word) {
            uint64_t bit = (w << 6) + (uint64_t)__builtin_ctzll(word);
            return bit < nbits ? bit : LDI_NO_PFN;
        }
        if (++w >= nwords)
            return LDI_NO_PFN;
        word = a->words[w] & b->words[w];
    }
}

uint64_t ldi_bitmap_prev_set(const ldi_bitmap *bm, uint64_t before)
{
    if (before > bm->nbits)
        before = bm->nbits;
    if (before == 0)
        return LDI_NO_PFN;
    uint64_t last = before - 1;
    uint64_t w = last >> 6;
    uint64_t word = bm->words[w] & ((last & 63) == 63 ? ~0ull : (((uint64_t)1 << ((last & 63) + 1)) - 1));
    for (;;) {
        if (word)
            return (w << 6) + 63 - (uint64_t)__builtin_clzll(word);
        if (w == 0)
            return LDI_NO_PFN;
        word = bm->words[--w];
    }
}

ld_status ldi_bitmap_build_rank(ldi_bitmap *bm, const ld_platform *plat)
{
    if (!bm->rank && bm->nwords) {
        if (bm->nwords > SIZE_MAX / sizeof(uint64_t))
            return LD_STATUS_NO_MEMORY;
        bm->rank = plat->alloc(plat->ctx, (size_t)bm->nwords * sizeof(uint64_t));
        if (!bm->rank)
            return LD_STATUS_NO_MEMORY;
    }
    uint64_t r = 0;
    for (uint64_t i = 0; i < bm->nwords; i++) {
        bm->rank[i] = r;
        r += ldi_popcount64(bm->words[i]);
    }
    return LD_STATUS_SUCCESS;
}

uint64_t ldi_bitmap_rank(const ldi_bitmap *bm, uint64_t pfn)
{
    uint64_t w = pfn >> 6;
    uint64_t below = bm->words[w] & ((((uint64_t)1) << (pfn & 63)) - 1);
    return bm->rank[w] + ldi_popcount64(below);
}
