/* RAM of the simulated machine: backing store, generated content, reads
 * and the dirty log.
 *
 * RAM is one lazily committed anonymous mapping. Page content is a pure
 * function of (seed, pfn); it is written into RAM per 2 MiB chunk, either
 * at create (small machines) or on the first access through mem_read or
 * ld_sim_page (large ones), which is indistinguishable from outside and
 * keeps a 16 GiB machine cheap. Chunks the vCPUs write are always
 * generated at create, so a lazily generated chunk is never written. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "machine.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

enum { CHUNK_EMPTY = 0, CHUNK_FILLING = 1, CHUNK_READY = 2 };

void lds_fill_bytes(uint64_t seed, uint64_t salt, void *dst, uint64_t len)
{
    uint8_t *out = dst;
    uint64_t state = seed ^ (salt * 0xd1b54a32d192ed03ull);
    while (len >= 8) {
        uint64_t v = lds_splitmix64(&state);
        memcpy(out, &v, 8);
        out += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = lds_splitmix64(&state);
        memcpy(out, &v, (size_t)len);
    }
}

void lds_populate(void *mem, uint64_t bytes)
{
    /* Best effort: older kernels refuse it and the writes fault as usual. */
    (void)madvise(mem, (size_t)bytes, MADV_POPULATE_WRITE);
}

/* Content is generated before its chunk is published (release store of
 * CHUNK_READY), so nothing can race with it; leaving it uninstrumented
 * keeps ThreadSanitizer builds fast. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NO_TSAN __attribute__((no_sanitize("thread")))
#endif
#endif
#if !defined(NO_TSAN) && defined(__SANITIZE_THREAD__)
#define NO_TSAN __attribute__((no_sanitize_thread))
#endif
#ifndef NO_TSAN
#define NO_TSAN
#endif

NO_TSAN static void fill_page(uint64_t seed, uint64_t pfn, uint64_t *page)
{
    uint64_t state = seed ^ (pfn * 0xd1b54a32d192ed03ull);
    for (size_t i = 0; i < LDS_PAGE_SIZE / 8; i++)
        page[i] = lds_splitmix64(&state);
}

/* Where a RAM page lives in the backing store; false outside RAM. */
static bool backing_page(const lds_layout *l, uint64_t pfn, uint64_t *page)
{
    if (pfn < l->low_end_pfn) {
        if (pfn < LDS_FIRST_RAM_PFN || (pfn >= LDS_LEGACY_IO_PFN && pfn - LDS_LEGACY_IO_PFN < LDS_LEGACY_IO_PAGES))
            return false;
        *page = pfn;
        return true;
    }
    if (pfn >= LDS_HIGH_RAM_PFN && pfn - LDS_HIGH_RAM_PFN < l->high_pages) {
        *page = l->low_end_pfn + (pfn - LDS_HIGH_RAM_PFN);
        return true;
    }
    return false;
}

uint8_t *lds_page_ptr(ld_sim *sim, uint64_t pfn)
{
    uint64_t page;
    return backing_page(&sim->layout, pfn, &page) ? sim->ram + page * LDS_PAGE_SIZE : NULL;
}

/* Write the content of every content page of one chunk. Runs while the
 * chunk is marked FILLING, so nobody else touches these pages. */
static void fill_chunk(ld_sim *sim, size_t chunk)
{
    const lds_layout *l = &sim->layout;
    uint64_t first = (uint64_t)chunk * LDS_CHUNK_PAGES, end = first + LDS_CHUNK_PAGES;
    for (size_t i = 0; i < l->run_count; i++) {
        const ld_kind_range *k = &l->runs[i];
        if (!lds_kind_has_content(k->kind))
            continue;
        uint64_t from = k->first_pfn > first ? k->first_pfn : first;
        uint64_t to = k->first_pfn + k->page_count < end ? k->first_pfn + k->page_count : end;
        if (from >= to)
            continue;
        lds_populate(lds_page_ptr(sim, from), (to - from) * LDS_PAGE_SIZE);
        for (uint64_t pfn = from; pfn < to; pfn++)
            fill_page(sim->cfg.seed, pfn, (uint64_t *)lds_page_ptr(sim, pfn));
    }
}

static void materialize_chunk(ld_sim *sim, size_t chunk)
{
    uint8_t *state = &sim->chunk_state[chunk];
    if (__atomic_load_n(state, __ATOMIC_ACQUIRE) == CHUNK_READY)
        return;
    uint8_t expected = CHUNK_EMPTY;
    if (__atomic_compare_exchange_n(state, &expected, CHUNK_FILLING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        fill_chunk(sim, chunk);
        __atomic_store_n(state, CHUNK_READY, __ATOMIC_RELEASE);
        return;
    }
    /* Another thread is generating it: a few milliseconds at most. */
    while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != CHUNK_READY)
        sched_yield();
}

void lds_materialize(ld_sim *sim, uint64_t pfn, uint64_t count)
{
    if (count == 0)
        return;
    size_t first = (size_t)(pfn / LDS_CHUNK_PAGES), last = (size_t)((pfn + count - 1) / LDS_CHUNK_PAGES);
    for (size_t c = first; c <= last && c < sim->chunk_count; c++)
        materialize_chunk(sim, c);
}

ld_status lds_memory_init(ld_sim *sim)
{
    const lds_layout *l = &sim->layout;
    uint64_t bytes = (l->low_end_pfn + l->high_pages) * LDS_PAGE_SIZE;
    if ((size_t)bytes != bytes)
        return LD_STATUS_NO_MEMORY;
    void *ram = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED)
        return LD_STATUS_NO_MEMORY;
    sim->ram = ram;
    sim->ram_bytes = (size_t)bytes;
    sim->chunk_count = (size_t)((l->max_pfn + LDS_CHUNK_PAGES - 1) / LDS_CHUNK_PAGES);
    sim->chunk_state = calloc(sim->chunk_count, 1);
    sim->dirty_word_count = (size_t)((l->max_pfn + 63) / 64);
    sim->dirty_words = calloc(sim->dirty_word_count, sizeof(uint64_t));
    if (!sim->chunk_state || !sim->dirty_words)
        return LD_STATUS_NO_MEMORY;

    if (l->content_pages * LDS_PAGE_SIZE <= LDS_EAGER_CONTENT_MAX) {
        lds_materialize(sim, 0, l->max_pfn);
    } else {
        /* Everything the vCPUs write: the probe page, the current stacks,
         * the hot set (one span of RAM indexes, possibly split by the
         * MMIO hole). */
        lds_materialize(sim, l->probe_pfn, 1);
        lds_materialize(sim, l->stacks_pfn, l->stacks_pages);
        uint64_t hot_first = lds_ram_pfn(l, l->hot_first_index);
        uint64_t hot_last = lds_ram_pfn(l, l->hot_first_index + l->hot_pages - 1);
        if (hot_last - hot_first + 1 == l->hot_pages) {
            lds_materialize(sim, hot_first, l->hot_pages);
        } else {
            uint64_t low_part = l->low_ram_pages - l->hot_first_index;
            lds_materialize(sim, hot_first, low_part);
            lds_materialize(sim, LDS_HIGH_RAM_PFN, l->hot_pages - low_part);
        }
    }
    return LD_STATUS_SUCCESS;
}

void lds_memory_release(ld_sim *sim)
{
    if (sim->ram)
        munmap(sim->ram, sim->ram_bytes);
    sim->ram = NULL;
    free(sim->chunk_state);
    sim->chunk_state = NULL;
    free(sim->dirty_words);
    sim->dirty_words = NULL;
}

/* Relaxed 8-byte loads: the vCPUs store with relaxed 8-byte atomics, so a
 * copy of a running machine is torn only between words (and the dirty log
 * repairs it), and ThreadSanitizer sees no data race. */
static void copy_page(const uint8_t *src, uint8_t *dst)
{
    const uint64_t *words = (const uint64_t *)src;
    for (size_t i = 0; i < LDS_PAGE_SIZE / 8; i++) {
        uint64_t v = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
        memcpy(dst + i * 8, &v, 8);
    }
}

/* A page of a chunk never materialized, as it would be generated: nobody
 * wrote it (the chunks the vCPUs write are materialized at create), so its
 * content is a function of (seed, pfn). Generating it into dst instead of
 * into RAM keeps a dump of a large machine from committing the machine's
 * memory on the host. */
static void generate_page(const ld_sim *sim, uint64_t pfn, uint8_t *out)
{
    if (!lds_kind_has_content(lds_kind_of(&sim->layout, pfn))) {
        memset(out, 0, LDS_PAGE_SIZE);
        return;
    }
    uint64_t words[LDS_PAGE_SIZE / 8];
    fill_page(sim->cfg.seed, pfn, words);
    memcpy(out, words, LDS_PAGE_SIZE);
}

ld_status lds_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    ld_sim *sim = ctx;
    if (count == 0)
        return LD_STATUS_SUCCESS;
    if (!dst || lds_range_of(&sim->layout, pfn, count) < 0)
        return LD_STATUS_INVALID_PARAMETER;
    uint8_t *out = dst;
    for (uint64_t i = 0; i < count; i++, out += LDS_PAGE_SIZE) {
        size_t chunk = (size_t)((pfn + i) / LDS_CHUNK_PAGES);
        if (__atomic_load_n(&sim->chunk_state[chunk], __ATOMIC_ACQUIRE) == CHUNK_READY)
            copy_page(lds_page_ptr(sim, pfn + i), out);
        else
            generate_page(sim, pfn + i, out);
    }
    return LD_STATUS_SUCCESS;
}

/* The vCPUs set bits whether or not the log is enabled (one atomic OR per
 * write); start clears what accumulated before it. */
ld_status lds_dirty_start(void *ctx)
{
    ld_sim *sim = ctx;
    __atomic_store_n(&sim->dirty_enabled, true, __ATOMIC_RELEASE);
    /* An acquiring exchange, not a store: a write whose bit is cleared
     * here happens-before every copy made after start returns, so losing
     * its bit loses nothing. */
    for (size_t i = 0; i < sim->dirty_word_count; i++)
        (void)__atomic_exchange_n(&sim->dirty_words[i], 0, __ATOMIC_ACQ_REL);
    return LD_STATUS_SUCCESS;
}

ld_status lds_dirty_fetch(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *dirty_count)
{
    ld_sim *sim = ctx;
    if (!bits && nbits)
        return LD_STATUS_INVALID_PARAMETER;
    if (!__atomic_load_n(&sim->dirty_enabled, __ATOMIC_ACQUIRE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    uint64_t limit = nbits < sim->layout.max_pfn ? nbits : sim->layout.max_pfn;
    uint64_t fetched = 0;
    size_t full = (size_t)(limit / 64);
    for (size_t w = 0; w < full; w++) {
        /* Acquire pairs with the vCPU's release OR: a copy made after this
         * sees at least the write that set the bit. */
        /* Most words are clean: a load is far cheaper than an exchange,
         * and a bit set after it is simply taken by the next fetch. */
        if (__atomic_load_n(&sim->dirty_words[w], __ATOMIC_RELAXED) == 0)
            continue;
        uint64_t v = __atomic_exchange_n(&sim->dirty_words[w], 0, __ATOMIC_ACQ_REL);
        bits[w] |= v;
        fetched += (uint64_t)__builtin_popcountll(v);
    }
    if (limit % 64) {
        /* Only the caller's bits: the ones above stay for a later fetch. */
        uint64_t mask = (1ull << (limit % 64)) - 1;
        uint64_t v = __atomic_fetch_and(&sim->dirty_words[full], ~mask, __ATOMIC_ACQ_REL) & mask;
        bits[full] |= v;
        fetched += (uint64_t)__builtin_popcountll(v);
    }
    if (dirty_count)
        *dirty_count = fetched;
    return LD_STATUS_SUCCESS;
}

ld_status lds_dirty_stop(void *ctx)
{
    ld_sim *sim = ctx;
    __atomic_store_n(&sim->dirty_enabled, false, __ATOMIC_RELEASE);
    return LD_STATUS_SUCCESS;
}
