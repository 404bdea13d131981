/* The simulated machine's memory: ranges, classification, content, reads,
 * memory status, configuration checks, and a 16 GiB machine. */
#include <stdio.h>

#include "sim_test.h"

static ld_sim *make(uint64_t memory, bool hv, bool sk, uint64_t seed)
{
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = memory;
    cfg.hot_set_bytes = 4ull << 20;
    cfg.hypervisor = hv;
    cfg.secure_kernel = sk;
    cfg.seed = seed;
    ld_sim *sim = NULL;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    assert_non_null(sim);
    return sim;
}

/* The ranges are RAM only, as Windows' MmPhysicalMemoryBlock: PFN 1 to
 * 640 KiB, 1 MiB to the 3 GiB hole, then from 4 GiB; page 0 and the legacy
 * device window 640 KiB-1 MiB are in none. The ranges' pages add up to
 * memory_bytes. Every PFN of every range lies in exactly one run, and runs
 * lie only inside ranges. */
static void check_cover(ld_sim *sim, uint64_t memory, bool hv, bool sk)
{
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);

    uint64_t low_max = 0xC0000 - 1 - 0x60; /* RAM pages below the hole */
    uint64_t pages = memory / PAGE;
    assert_int_equal(nr, pages > low_max ? 3 : 2);
    assert_int_equal(ranges[0].first_pfn, 1);
    assert_int_equal(ranges[0].page_count, 0xA0 - 1);
    assert_int_equal(ranges[1].first_pfn, 0x100);
    assert_true(ranges[1].first_pfn + ranges[1].page_count <= 0xC0000); /* below the 3 GiB hole */
    if (nr == 3) {
        assert_int_equal(ranges[1].first_pfn + ranges[1].page_count, 0xC0000);
        assert_int_equal(ranges[2].first_pfn, 0x100000);
    }

    uint64_t range_pages = 0, io_pages = 0, per_kind[LD_PAGE_KIND_COUNT] = {0};
    for (size_t r = 0; r < nr; r++)
        range_pages += ranges[r].page_count;
    size_t k = 0;
    for (size_t r = 0; r < nr; r++) {
        uint64_t at = ranges[r].first_pfn, end = at + ranges[r].page_count;
        while (at < end) {
            assert_true(k < nk);
            assert_int_equal(kinds[k].first_pfn, at); /* no gap, no overlap */
            assert_true(kinds[k].page_count > 0);
            assert_true(kinds[k].first_pfn + kinds[k].page_count <= end);
            assert_true(kinds[k].kind > LD_PAGE_UNKNOWN && kinds[k].kind < LD_PAGE_KIND_COUNT);
            per_kind[kinds[k].kind] += kinds[k].page_count;
            if (kinds[k].kind == LD_PAGE_IO_SPACE)
                io_pages += kinds[k].page_count;
            at += kinds[k].page_count;
            k++;
        }
    }
    assert_int_equal(k, nk); /* no run outside the ranges */
    assert_true(nk <= 24);   /* a modest classification */
    assert_int_equal(io_pages, 0); /* device memory is not RAM: in no range */
    assert_int_equal(range_pages, pages);
    for (int kind = LD_PAGE_UNKNOWN + 1; kind < LD_PAGE_KIND_COUNT; kind++) {
        bool expected = true;
        if (kind == LD_PAGE_HV_ESSENTIAL || kind == LD_PAGE_HV_NONESSENTIAL)
            expected = hv;
        if (kind == LD_PAGE_SECURE_KERNEL)
            expected = sk;
        if (kind == LD_PAGE_IO_SPACE)
            expected = false;
        if (expected != (per_kind[kind] > 0))
            fail_msg("%llu MiB: kind %s: %llu pages", (unsigned long long)(memory >> 20),
                     ld_page_kind_name((ld_page_kind)kind), (unsigned long long)per_kind[kind]);
    }
    assert_int_equal(per_kind[LD_PAGE_PROCESSOR_BLOCKS], hal->cpu_count(hal->ctx));
    free(ranges);
    free(kinds);
}

static void test_ranges_and_kinds_cover_memory(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {64ull << 20, 512ull << 20, 3ull << 30, (4ull << 30) + 7 * PAGE};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int variant = 0; variant < 2; variant++) {
            bool extras = variant == 1;
            ld_sim *sim = make(sizes[i], extras, extras, 1);
            check_cover(sim, sizes[i], extras, extras);
            ld_sim_destroy(sim);
        }
    }
}

static void test_four_gib_has_three_ranges(void **state)
{
    (void)state;
    ld_sim *sim = make(4ull << 30, true, true, 3);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range r[3];
    size_t n = 3;
    assert_int_equal(hal->mem_ranges(hal->ctx, r, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].first_pfn, 1);
    assert_int_equal(r[0].page_count, 0x9F);
    assert_int_equal(r[1].first_pfn, 0x100);
    assert_int_equal(r[1].page_count, 0xC0000 - 0x100);
    assert_int_equal(r[2].first_pfn, 0x100000);
    assert_int_equal(r[2].page_count, (4ull << 30) / PAGE - (0xC0000 - 0x61));
    ld_sim_destroy(sim);
}

static void test_table_calling_convention(void **state)
{
    (void)state;
    ld_sim *sim = make(4ull << 30, false, false, 1);
    const ld_hal *hal = ld_sim_hal(sim);
    size_t n = 0;
    assert_int_equal(hal->mem_ranges(hal->ctx, NULL, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 3);
    ld_phys_range one;
    n = 1;
    assert_int_equal(hal->mem_ranges(hal->ctx, &one, &n), LD_STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3);
    assert_int_equal(hal->mem_ranges(hal->ctx, &one, NULL), LD_STATUS_INVALID_PARAMETER);

    size_t nk = 0;
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    assert_true(nk > 2);
    ld_kind_range *kinds = calloc(nk, sizeof *kinds);
    size_t small = nk - 1;
    assert_int_equal(hal->mem_kinds(hal->ctx, kinds, &small), LD_STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(small, nk);
    small = nk + 5; /* more room than needed: count comes back exact */
    kinds = realloc(kinds, small * sizeof *kinds);
    assert_int_equal(hal->mem_kinds(hal->ctx, kinds, &small), LD_STATUS_SUCCESS);
    assert_int_equal(small, nk);
    for (size_t i = 1; i < nk; i++)
        assert_true(kinds[i].first_pfn >= kinds[i - 1].first_pfn + kinds[i - 1].page_count);
    free(kinds);
    ld_sim_destroy(sim);
}

static void read_page(const ld_hal *hal, uint64_t pfn, uint8_t *buf)
{
    assert_int_equal(hal->mem_read(hal->ctx, pfn, 1, buf), LD_STATUS_SUCCESS);
}

/* Same seed, same bytes (whether generated at create or on first touch);
 * another seed, other bytes; free and zero pages are zero. */
static void test_content_deterministic(void **state)
{
    (void)state;
    ld_sim *a = make(128ull << 20, true, false, 77);
    ld_sim *b = make(128ull << 20, true, false, 77);
    ld_sim *c = make(128ull << 20, true, false, 78);
    ld_sim *big = make(2ull << 30, true, false, 77); /* content generated lazily */
    ld_sim_pause(a, true);
    ld_sim_pause(b, true);
    const ld_hal *ha = ld_sim_hal(a), *hb = ld_sim_hal(b), *hc = ld_sim_hal(c), *hbig = ld_sim_hal(big);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(ha, &ranges, &nr, &kinds, &nk);

    /* The machines are idle (no hot-set writes), but the probe pages (A,
     * B) change with each tick: skip them. */
    uint64_t skip[3];
    ld_sim_probe p;
    assert_int_equal(ld_sim_probe_of(a, 0, &p), LD_STATUS_SUCCESS);
    skip[0] = p.a_pfn;
    skip[1] = p.b_pfn;
    assert_int_equal(ld_sim_probe_of(a, 1, &p), LD_STATUS_SUCCESS);
    skip[2] = p.b_pfn;

    uint8_t *pa = malloc(PAGE), *pb = malloc(PAGE), *pc = malloc(PAGE);
    static const uint8_t zero[PAGE];
    uint64_t compared = 0, differing_seed = 0;
    for (size_t i = 0; i < nk; i++) {
        /* Every 7th page keeps the test quick under sanitizers. */
        for (uint64_t pfn = kinds[i].first_pfn; pfn < kinds[i].first_pfn + kinds[i].page_count; pfn += 7) {
            if (pfn == skip[0] || pfn == skip[1] || pfn == skip[2])
                continue;
            read_page(ha, pfn, pa);
            read_page(hb, pfn, pb);
            read_page(hc, pfn, pc);
            assert_memory_equal(pa, pb, PAGE);
            assert_memory_equal(pa, ld_sim_page(a, pfn), PAGE);
            switch (kinds[i].kind) {
            case LD_PAGE_FREE:
            case LD_PAGE_ZERO:
                assert_memory_equal(pa, zero, PAGE);
                break;
            case LD_PAGE_IO_SPACE:
                for (size_t j = 0; j < PAGE; j++)
                    assert_int_equal(pa[j], 0xff);
                break;
            default:
                assert_memory_not_equal(pa, zero, PAGE);
                differing_seed += memcmp(pa, pc, PAGE) != 0;
                compared++;
                break;
            }
        }
    }
    assert_true(compared > 100);
    assert_int_equal(differing_seed, compared);

    /* The kernel image lies at the same PFNs in the 2 GiB machine, whose
     * content is generated on first access: same bytes. */
    const ld_kind_range *kimg = find_kind(kinds, nk, LD_PAGE_KERNEL_IMAGE);
    assert_non_null(kimg);
    for (uint64_t pfn = kimg->first_pfn; pfn < kimg->first_pfn + kimg->page_count; pfn += 97) {
        read_page(ha, pfn, pa);
        read_page(hbig, pfn, pb);
        assert_memory_equal(pa, pb, PAGE);
    }
    free(pa);
    free(pb);
    free(pc);
    free(ranges);
    free(kinds);
    ld_sim_destroy(a);
    ld_sim_destroy(b);
    ld_sim_destroy(c);
    ld_sim_destroy(big);
}

static void test_mem_read_bounds(void **state)
{
    (void)state;
    ld_sim *sim = make(4ull << 30, false, false, 5);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range r[3];
    size_t n = 3;
    assert_int_equal(hal->mem_ranges(hal->ctx, r, &n), LD_STATUS_SUCCESS);
    uint8_t *buf = malloc(4 * PAGE);
    uint64_t end = r[2].first_pfn + r[2].page_count;

    assert_int_equal(hal->mem_read(hal->ctx, end, 1, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, end - 1, 2, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 0xC0000, 1, buf), LD_STATUS_INVALID_PARAMETER); /* MMIO hole */
    assert_int_equal(hal->mem_read(hal->ctx, 0xBFFFF, 2, buf), LD_STATUS_INVALID_PARAMETER); /* across it */
    assert_int_equal(hal->mem_read(hal->ctx, UINT64_MAX, 2, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 1, 1, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 1, 0, buf), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_read(hal->ctx, end - 1, 1, buf), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_read(hal->ctx, 0xBFFFF, 1, buf), LD_STATUS_SUCCESS);
    assert_null(ld_sim_page(sim, 0xC0000));
    assert_null(ld_sim_page(sim, end));
    assert_non_null(ld_sim_page(sim, end - 1));

    /* Page 0 and the legacy IO window are not RAM: no read, no page; the
     * RAM on either side of the window is. */
    assert_int_equal(hal->mem_read(hal->ctx, 0, 1, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 0xA0, 1, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 0xFF, 1, buf), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(hal->mem_read(hal->ctx, 0x9F, 2, buf), LD_STATUS_INVALID_PARAMETER); /* across it */
    assert_null(ld_sim_page(sim, 0));
    assert_null(ld_sim_page(sim, 0xA0));
    assert_null(ld_sim_page(sim, 0xFF));
    assert_int_equal(hal->mem_read(hal->ctx, 0x9F, 1, buf), LD_STATUS_SUCCESS);
    assert_memory_equal(buf, ld_sim_page(sim, 0x9F), PAGE);
    assert_int_equal(hal->mem_read(hal->ctx, 0x100, 1, buf), LD_STATUS_SUCCESS);
    assert_memory_equal(buf, ld_sim_page(sim, 0x100), PAGE); /* the kernel image at 1 MiB */
    free(buf);
    ld_sim_destroy(sim);
}

static void test_mem_status(void **state)
{
    (void)state;
    ld_sim *sim = make(256ull << 20, false, false, 9);
    const ld_hal *hal = ld_sim_hal(sim);
    assert_true(hal->caps & LD_HAL_CAP_MEM_STATUS);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);
    uint64_t free_pages = 0;
    for (size_t i = 0; i < nk; i++)
        if (kinds[i].kind == LD_PAGE_FREE || kinds[i].kind == LD_PAGE_ZERO)
            free_pages += kinds[i].page_count;
    uint64_t avail, total;
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(total, 256ull << 20);
    assert_int_equal(avail, free_pages * PAGE);
    assert_int_equal(hal->mem_status(hal->ctx, NULL, &total), LD_STATUS_INVALID_PARAMETER);

    /* The system pool takes from available memory. */
    void *mem;
    assert_int_equal(hal->pool_alloc(hal->ctx, LD_POOL_SYSTEM_PARTITION, 1 << 20, &mem), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(avail, free_pages * PAGE - (1 << 20));
    hal->pool_free(hal->ctx, LD_POOL_SYSTEM_PARTITION, mem, 1 << 20);
    free(ranges);
    free(kinds);
    ld_sim_destroy(sim);

    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    cfg.available_bytes = 12345;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    hal = ld_sim_hal(sim);
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(avail, 12345);
    ld_sim_destroy(sim);
}

static void expect_invalid(const ld_sim_config *cfg)
{
    ld_sim *sim = (ld_sim *)(uintptr_t)1; /* must be reset to NULL */
    assert_int_equal(ld_sim_create(cfg, &sim), LD_STATUS_INVALID_PARAMETER);
    assert_null(sim);
}

static void test_invalid_configs(void **state)
{
    (void)state;
    ld_sim_config cfg;
    ld_sim *sim = NULL;
    assert_int_equal(ld_sim_create(NULL, &sim), LD_STATUS_INVALID_PARAMETER);
    ld_sim_config_init(&cfg);
    assert_int_equal(ld_sim_create(&cfg, NULL), LD_STATUS_INVALID_PARAMETER);

    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 0;
    expect_invalid(&cfg);
    cfg.memory_bytes = (64ull << 20) - 1; /* rounds down below the minimum */
    expect_invalid(&cfg);
    cfg.memory_bytes = 1ull << 40;
    expect_invalid(&cfg);
    cfg.memory_bytes = UINT64_MAX;
    expect_invalid(&cfg);

    ld_sim_config_init(&cfg);
    cfg.cpus = 0;
    expect_invalid(&cfg);
    cfg.cpus = 65;
    expect_invalid(&cfg);
    cfg.cpus = UINT32_MAX;
    expect_invalid(&cfg);

    /* A configuration of another version (or never initialised) is
     * refused, and check says why. */
    ld_sim_config_init(&cfg);
    assert_int_equal(cfg.version, LD_SIM_CONFIG_VERSION);
    cfg.version = 0;
    expect_invalid(&cfg);
    cfg.version = LD_SIM_CONFIG_VERSION + 1;
    expect_invalid(&cfg);
    char why[256];
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(why, "version"));

    ld_sim_config_init(&cfg);
    cfg.hot_set_bytes = 0;
    expect_invalid(&cfg);
    cfg.hot_set_bytes = cfg.memory_bytes / 2 + 1;
    expect_invalid(&cfg);
    cfg.hot_set_bytes = UINT64_MAX;
    expect_invalid(&cfg);

    /* The edges that are valid. */
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = (64ull << 20) + 100; /* rounded down to 64 MiB */
    cfg.hot_set_bytes = 32ull << 20;
    cfg.cpus = 64;
    cfg.hypervisor = cfg.secure_kernel = cfg.ipt = true;
    cfg.dirty_rate = UINT64_MAX;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    const ld_hal *hal = ld_sim_hal(sim);
    uint64_t avail, total;
    assert_int_equal(hal->mem_status(hal->ctx, &avail, &total), LD_STATUS_SUCCESS);
    assert_int_equal(total, 64ull << 20);
    assert_int_equal(hal->cpu_count(hal->ctx), 64);
    ld_sim_destroy(sim);

    ld_sim_destroy(NULL); /* harmless */
    assert_null(ld_sim_hal(NULL));
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * 4;
}

/* A 16 GiB machine on a smaller host: quick, and it commits only what is
 * touched. */
static void test_sixteen_gib_machine(void **state)
{
    (void)state;
    long rss_before = rss_kib();
    uint64_t t0 = test_now_ns();
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 16ull << 30;
    cfg.cpus = 4;
    cfg.dirty_rate = 64ull << 20;
    cfg.seed = 11;
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    uint64_t created = test_now_ns() - t0;
    long rss_created = rss_kib();
    check_cover(sim, cfg.memory_bytes, false, false);

    /* The last page of RAM reads, the same as ld_sim_page shows. */
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range r[3];
    size_t n = 3;
    assert_int_equal(hal->mem_ranges(hal->ctx, r, &n), LD_STATUS_SUCCESS);
    uint8_t *buf = malloc(PAGE);
    uint64_t last = r[2].first_pfn + r[2].page_count - 1;
    assert_int_equal(hal->mem_read(hal->ctx, last, 1, buf), LD_STATUS_SUCCESS);
    assert_memory_equal(buf, ld_sim_page(sim, last), PAGE);
    free(buf);
    assert_true(wait_written_more(sim, 0, 2000));

    t0 = test_now_ns();
    ld_sim_destroy(sim);
    uint64_t destroyed = test_now_ns() - t0;
    print_message("16 GiB machine: create %.1f ms, destroy %.1f ms, RSS +%ld MiB\n", (double)created / 1e6,
                  (double)destroyed / 1e6, (rss_created - rss_before) / 1024);
    assert_true(created < 5000000000ull);
    assert_true(destroyed < 2000000000ull);
    assert_true(rss_created - rss_before < 1024 * 1024); /* far below 16 GiB */
}

/* What the host cannot back is refused, with the reason; the limits name
 * themselves. Host figures are injected: nothing large is allocated. */
static void test_host_must_back_the_machine(void **state)
{
    (void)state;
    ld_sim_config cfg;
    char why[256];
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 512ull << 20; /* content generated at create: ~330 MiB committed */
    cfg.host_memory_bytes = 4ull << 30;
    cfg.host_available_bytes = 600ull << 20; /* less the 512 MiB reserve: 88 MiB */
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_non_null(strstr(why, "this host cannot back the simulated machine"));
    ld_sim *sim = (ld_sim *)(uintptr_t)1;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_null(sim);
    cfg.host_available_bytes = 2ull << 30;
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_SUCCESS);

    /* Larger than its host is fine: only what the vCPUs write is committed
     * (and a dump's buffers, which the host bounds). */
    cfg.memory_bytes = 64ull << 30;
    cfg.host_memory_bytes = 24ull << 30;
    cfg.host_available_bytes = 20ull << 30;
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_SUCCESS);
    cfg.host_available_bytes = 3ull << 30; /* the reserve (3 GiB) leaves nothing for the hot set */
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_INSUFFICIENT_RESOURCES);

    /* The limits, stated. */
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 1ull << 40;
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(why, "64 MiB to 128 GiB"));
    cfg.memory_bytes = LD_SIM_MAX_MEMORY;
    cfg.host_memory_bytes = 24ull << 30;
    cfg.host_available_bytes = 20ull << 30;
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_SUCCESS);
    cfg.cpus = 65;
    assert_int_equal(ld_sim_config_check(&cfg, why, sizeof why), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(why, "1 to 64"));
    assert_int_equal(ld_sim_config_check(NULL, why, sizeof why), LD_STATUS_INVALID_PARAMETER);
}

/* Reading a large machine does not commit its memory on the host: a page
 * nobody wrote is generated into the reader's buffer, with the bytes it
 * would have in RAM. */
static void test_reads_do_not_commit(void **state)
{
    (void)state;
    ld_sim *sim = make(4ull << 30, false, false, 21); /* content generated on demand */
    ld_sim_pause(sim, true);
    const ld_hal *hal = ld_sim_hal(sim);
    ld_phys_range *ranges;
    ld_kind_range *kinds;
    size_t nr, nk;
    get_layout(hal, &ranges, &nr, &kinds, &nk);
    const ld_kind_range *user = find_kind(kinds, nk, LD_PAGE_USER);
    assert_non_null(user);
    uint64_t pages = 256ull << 20 >> 12; /* 256 MiB of user pages, past the hot set */
    assert_true(user->page_count > pages + 4096);
    uint64_t first = user->first_pfn + user->page_count - pages;
    uint8_t *buf = malloc(256 * PAGE);
    long rss_before = rss_kib();
    for (uint64_t at = 0; at < pages; at += 256)
        assert_int_equal(hal->mem_read(hal->ctx, first + at, 256, buf), LD_STATUS_SUCCESS);
    long grown = rss_kib() - rss_before;
    print_message("read 256 MiB of a 4 GiB machine: RSS +%ld KiB\n", grown);
    assert_true(grown < 32 * 1024);
    /* The same bytes as RAM holds once the chunk is materialized. */
    assert_int_equal(hal->mem_read(hal->ctx, first + pages - 1, 1, buf), LD_STATUS_SUCCESS);
    assert_memory_equal(buf, ld_sim_page(sim, first + pages - 1), PAGE);
    static const uint8_t zero[PAGE];
    assert_memory_not_equal(buf, zero, PAGE);
    const ld_kind_range *zk = find_kind(kinds, nk, LD_PAGE_ZERO);
    assert_int_equal(hal->mem_read(hal->ctx, zk->first_pfn + zk->page_count - 1, 1, buf), LD_STATUS_SUCCESS);
    assert_memory_equal(buf, zero, PAGE);
    free(buf);
    free(ranges);
    free(kinds);
    ld_sim_destroy(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_and_kinds_cover_memory),
        cmocka_unit_test(test_four_gib_has_three_ranges),
        cmocka_unit_test(test_table_calling_convention),
        cmocka_unit_test(test_content_deterministic),
        cmocka_unit_test(test_mem_read_bounds),
        cmocka_unit_test(test_mem_status),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_sixteen_gib_machine),
        cmocka_unit_test(test_host_must_back_the_machine),
        cmocka_unit_test(test_reads_do_not_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
