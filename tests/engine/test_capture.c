/* Captures on the simulated machine: the right pages with the right bytes
 * for every dump type, the raw writer's layout, the file sink's rules. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evlog.h"
#include "harness.h"

/* Which kinds each request keeps: written from the documented policy
 * (docs/architecture.md), not from the engine's table. */
static bool expect_kind(ld_page_kind k, const ld_capture_request *r)
{
    bool required = k == LD_PAGE_KERNEL_IMAGE || k == LD_PAGE_HAL_IMAGE || k == LD_PAGE_SHARED_USER_DATA ||
                    k == LD_PAGE_PROCESSOR_BLOCKS || k == LD_PAGE_DEBUGGER_DATA || k == LD_PAGE_LOADED_MODULES;
    if (required)
        return true;
    if (r->type == LD_DUMP_MINI)
        return false;
    if (r->type == LD_DUMP_KERNEL_STACKS)
        return k == LD_PAGE_KERNEL_STACKS || k == LD_PAGE_PAGE_TABLES;
    switch (k) {
    case LD_PAGE_PAGE_TABLES: case LD_PAGE_KERNEL_STACKS: case LD_PAGE_KERNEL_OTHER: return true;
    case LD_PAGE_FILE_CACHE: return !(r->flags & LD_FLAG_SELECTIVE_DUMP);
    case LD_PAGE_USER: return r->add_pages & LD_ADD_USER_PAGES;
    case LD_PAGE_HV_ESSENTIAL: return r->add_pages & LD_ADD_HV_PAGES;
    case LD_PAGE_HV_NONESSENTIAL: return r->add_pages & LD_ADD_HV_NONESSENTIAL_PAGES;
    default: return false;
    }
}

/* Capture with the workload paused, so memory after the capture equals
 * memory at the quiesce; then every page of the raw image must equal the
 * machine's page, and every page left out must be a hole of zeros. */
static void check_request(const ld_capture_request *req, bool hypervisor)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.hypervisor = hypervisor;
    cfg.ipt = true;
    harness h;
    harness_start(&h, &cfg, true);
    ld_sim_pause(h.sim, true);

    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_false(m.aborted);

    size_t nr = 0, nk = 0;
    assert_int_equal(h.hal->mem_ranges(h.hal->ctx, NULL, &nr), LD_STATUS_SUCCESS);
    ld_phys_range *ranges = calloc(nr, sizeof *ranges);
    assert_int_equal(h.hal->mem_ranges(h.hal->ctx, ranges, &nr), LD_STATUS_SUCCESS);
    assert_int_equal(h.hal->mem_kinds(h.hal->ctx, NULL, &nk), LD_STATUS_SUCCESS);
    ld_kind_range *kinds = calloc(nk, sizeof *kinds);
    assert_int_equal(h.hal->mem_kinds(h.hal->ctx, kinds, &nk), LD_STATUS_SUCCESS);

    uint64_t ps = h.hal->page_size;
    uint64_t end = ranges[nr - 1].first_pfn + ranges[nr - 1].page_count;
    assert_int_equal(m.size, end * ps);
    uint64_t expected_pages = 0, seen_by_kind[LD_PAGE_KIND_COUNT] = {0};
    static const uint8_t zero[65536];
    for (size_t i = 0; i < nk; i++) {
        bool keep = expect_kind((ld_page_kind)kinds[i].kind, req);
        for (uint64_t p = kinds[i].first_pfn; p < kinds[i].first_pfn + kinds[i].page_count; p++) {
            const uint8_t *img = m.data + p * ps;
            const uint8_t *mem = ld_sim_page(h.sim, p);
            if (keep) {
                assert_non_null(mem);
                if (memcmp(img, mem, ps) != 0)
                    fail_msg("pfn 0x%llx (%s) differs from the machine", (unsigned long long)p,
                             ld_page_kind_name((ld_page_kind)kinds[i].kind));
                expected_pages++;
                seen_by_kind[kinds[i].kind]++;
            } else if (memcmp(img, zero, ps) != 0) {
                /* A current stack or page directory is required whatever
                 * its kind; anything else must be absent. */
                bool is_stack_or_cr3 = kinds[i].kind == LD_PAGE_KERNEL_STACKS || kinds[i].kind == LD_PAGE_PAGE_TABLES;
                if (!is_stack_or_cr3)
                    fail_msg("pfn 0x%llx (%s) should not be in the dump", (unsigned long long)p,
                             ld_page_kind_name((ld_page_kind)kinds[i].kind));
                expected_pages++;
                seen_by_kind[kinds[i].kind]++;
            }
        }
    }
    assert_int_equal(r.pages, expected_pages);
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++)
        assert_int_equal(r.pages_by_kind[k], seen_by_kind[k]);
    assert_int_equal(r.primary_bytes, r.pages * ps);
    assert_int_equal(r.total_bytes, r.primary_bytes);
    assert_true(r.pages_required > 0);

    /* Events 4 report exactly the bytes the writer produced. */
    assert_int_equal(recorder_count(h.rec, 4), 1);
    assert_int_equal(recorder_count(h.rec, 2), 1);

    free(ranges);
    free(kinds);
    mem_sink_release(&m);
    harness_stop(&h);
}

static void test_full(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    check_request(&req, false);
}

static void test_full_user_hv(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_USER_PAGES | LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
    check_request(&req, true);
}

static void test_selective_no_mirror(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags = LD_FLAG_SELECTIVE_DUMP;
    check_request(&req, false);
}

static void test_kernel_stacks(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_KERNEL_STACKS;
    check_request(&req, false);
}

static void test_mini(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    check_request(&req, false);
}

static void test_lkd_options(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    /* The library's request keeps abort-if-memory-pressure off: the caller
     * sets it (the CLI does, as Task Manager). */
    assert_int_equal(req.flags, LD_FLAG_USE_MIRRORING);
    static const struct { uint32_t opt; ld_dump_type type; uint32_t add; } map[] = {
        {0x0, LD_DUMP_FULL_KERNEL, 0},
        {0x1, LD_DUMP_FULL_KERNEL, LD_ADD_USER_PAGES},
        {0x2, LD_DUMP_MINI, 0},
        {0x4, LD_DUMP_FULL_KERNEL, LD_ADD_HV_PAGES},
        {0x5, LD_DUMP_FULL_KERNEL, LD_ADD_USER_PAGES | LD_ADD_HV_PAGES},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        assert_int_equal(ld_capture_request_from_lkd(&req, map[i].opt), LD_STATUS_SUCCESS);
        assert_int_equal(req.type, map[i].type);
        assert_int_equal(req.add_pages, map[i].add);
    }
    assert_int_equal(ld_capture_request_from_lkd(&req, 0x3), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_capture_request_from_lkd(&req, 0x6), LD_STATUS_INVALID_PARAMETER);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    mem_sink m;

    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    req.add_pages = LD_ADD_USER_PAGES; /* extra pages only on full dumps */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_true(m.aborted);

    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_HV_NONESSENTIAL_PAGES; /* without LD_ADD_HV_PAGES */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);

    ld_capture_request_init(&req);
    req.type = (ld_dump_type)7;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);

    ld_capture_request_init(&req);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_true(m.aborted);
    assert_int_equal(ld_engine_capture(h.engine, NULL, NULL, NULL, NULL), LD_STATUS_INVALID_PARAMETER);

    /* Every refused request still reports start and end (1 and 2). */
    assert_int_equal(recorder_count(h.rec, 1), 4);
    assert_int_equal(recorder_count(h.rec, 2), 4);
    harness_stop(&h);
}

static void test_policy_refuses(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, false);
    assert_int_equal(recorder_count(h.rec, 273), 1);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_ACCESS_DENIED);
    assert_true(m.aborted);
    assert_int_equal(ld_engine_set_allow_live_dump(h.engine, true), LD_STATUS_SUCCESS);
    assert_int_equal(recorder_count(h.rec, 272), 1);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    harness_stop(&h);
}

/* The file sink: 0600, exclusive, no symlinks, no partial file on failure,
 * sparse holes. */
/* The dump carries what the HAL says of the OS; a HAL whose system_info
 * fails still gives a dump, with those fields 0. */
static void test_system_info(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    const ld_dump_info *info = ld_dump_get_info(ld_engine_deferred(h.engine));
    assert_int_equal(info->system.machine_type, 0x8664);
    /* The debugger data block's address is the VA of a page the dump holds. */
    uint64_t dbg = info->system.debugger_data_block;
    assert_true(dbg > info->system.direct_map_base);
    uint64_t pfn = (dbg - info->system.direct_map_base) / info->page_size;
    assert_int_equal(ld_dump_page_kind(ld_engine_deferred(h.engine), pfn), LD_PAGE_DEBUGGER_DATA);
    assert_non_null(ld_dump_page(ld_engine_deferred(h.engine), pfn));
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);

    ld_fault f = {.op = LD_HAL_OP_SYSTEM_INFO, .nth = 1, .status = LD_STATUS_IO_DEVICE_ERROR};
    assert_int_equal(ld_fault_inject(h.fault, &f), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    info = ld_dump_get_info(ld_engine_deferred(h.engine));
    assert_int_equal(info->system.machine_type, 0);
    assert_int_equal(info->system.debugger_data_block, 0);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    harness_stop(&h);
}

/* Hypervisor pages asked of a machine without a hypervisor: said in event
 * 6 and the result, and the dump's comment does not claim "+hv". The same
 * request on a machine with one is the control. */
static void capture_hv(bool hypervisor, ld_result *r, char *comment, size_t cap, evlog *log)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.hypervisor = hypervisor;
    harness h;
    harness_start(&h, &cfg, true);
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, r), LD_STATUS_SUCCESS);
    const ld_dump_info *info = ld_dump_get_info(r->deferred);
    snprintf(comment, cap, "%s", info->comment);
    harness_stop(&h); /* discards the held dump */
}

static bool hv_note(const evlog *log)
{
    for (size_t i = 0; i < log->count; i++)
        if (log->ev[i].id == 6 && strstr(evlog_str(&log->ev[i], "LiveDumpEventDescription"), "no hypervisor"))
            return true;
    return false;
}

static void test_hv_pages_without_hypervisor(void **state)
{
    (void)state;
    ld_result r;
    char comment[256];
    evlog *log = evlog_new();

    capture_hv(false, &r, comment, sizeof comment, log);
    assert_true(r.hv_unavailable);
    assert_int_equal(r.pages_by_kind[LD_PAGE_HV_ESSENTIAL] + r.pages_by_kind[LD_PAGE_HV_NONESSENTIAL], 0);
    assert_true(hv_note(log));
    assert_null(strstr(comment, "+hv"));
    assert_non_null(strstr(comment, "hv-unavailable"));

    evlog_clear(log);
    capture_hv(true, &r, comment, sizeof comment, log);
    assert_false(r.hv_unavailable);
    assert_true(r.pages_by_kind[LD_PAGE_HV_ESSENTIAL] > 0);
    assert_false(hv_note(log));
    assert_non_null(strstr(comment, " +hv +hv-nonessential"));
    assert_null(strstr(comment, "unavailable"));
    evlog_free(log);
}

/* A HAL that does not claim LD_HAL_CAP_QUIESCE (as the Linux one): the
 * result and the dump's comment say the machine was not stopped; the sim,
 * which really stops its vCPUs, says it was. */
static void capture_quiesce_cap(bool really_stops, ld_result *r, char *comment, size_t cap)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_hal copy = *h.hal;
    if (!really_stops)
        copy.caps &= ~LD_HAL_CAP_QUIESCE;
    ld_engine *engine;
    assert_int_equal(ld_engine_create(&copy, NULL, &engine), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(engine, &req, NULL, NULL, r), LD_STATUS_SUCCESS);
    snprintf(comment, cap, "%s", ld_dump_get_info(r->deferred)->comment);
    ld_engine_destroy(engine); /* discards the held dump */
    harness_stop(&h);
}

static void test_says_when_nothing_stopped(void **state)
{
    (void)state;
    ld_result r;
    char comment[256];
    capture_quiesce_cap(false, &r, comment, sizeof comment);
    assert_false(r.machine_stopped);
    assert_non_null(strstr(comment, "not stopped (the kernel kept running)"));
    capture_quiesce_cap(true, &r, comment, sizeof comment);
    assert_true(r.machine_stopped);
    assert_null(strstr(comment, "not stopped"));
}

/* The HAL contract: RAM in no kind run is LD_PAGE_UNKNOWN, which a full
 * dump keeps. A machine whose classification leaves the kernel's other
 * data out of its runs gives the same full dump, those pages counted as
 * unknown; a mini dump leaves them out; a partial dump can trim them. */
static const ld_hal *kinds_inner;

static ld_status kinds_without_other(void *ctx, ld_kind_range *runs, size_t *count)
{
    size_t n = 0;
    ld_status st = kinds_inner->mem_kinds(ctx, 0, &n);
    if (st != LD_STATUS_SUCCESS && st != LD_STATUS_BUFFER_TOO_SMALL)
        return st;
    ld_kind_range *all = calloc(n + 8, sizeof *all);
    size_t cap = n + 8;
    st = kinds_inner->mem_kinds(ctx, all, &cap);
    if (st != LD_STATUS_SUCCESS) {
        free(all);
        return st;
    }
    size_t kept = 0;
    for (size_t i = 0; i < cap; i++)
        if (all[i].kind != LD_PAGE_KERNEL_OTHER) {
            if (runs && kept < *count)
                runs[kept] = all[i];
            kept++;
        }
    free(all);
    bool fits = runs && kept <= *count;
    *count = kept;
    return !runs ? LD_STATUS_SUCCESS : fits ? LD_STATUS_SUCCESS : LD_STATUS_BUFFER_TOO_SMALL;
}

static void capture_with_kinds(harness *h, const ld_hal *hal, ld_dump_type type, ld_result *r)
{
    ld_engine *e;
    assert_int_equal(ld_engine_create(hal, NULL, &e), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = type;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(e, &req, ld_format_raw(), &m.sink, r), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    ld_engine_destroy(e);
    (void)h;
}

static void test_unclassified_pages_are_unknown(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_sim_pause(h.sim, true); /* the same pages in both captures */
    ld_result full, gaps, mini;
    capture_with_kinds(&h, h.hal, LD_DUMP_FULL_KERNEL, &full);
    ld_hal hal = *h.hal;
    kinds_inner = h.hal;
    hal.mem_kinds = kinds_without_other;
    capture_with_kinds(&h, &hal, LD_DUMP_FULL_KERNEL, &gaps);
    assert_true(full.pages_by_kind[LD_PAGE_KERNEL_OTHER] > 0);
    assert_int_equal(gaps.pages_by_kind[LD_PAGE_KERNEL_OTHER], 0);
    assert_int_equal(gaps.pages, full.pages);
    assert_int_equal(gaps.pages_by_kind[LD_PAGE_UNKNOWN],
                     full.pages_by_kind[LD_PAGE_UNKNOWN] + full.pages_by_kind[LD_PAGE_KERNEL_OTHER]);
    capture_with_kinds(&h, &hal, LD_DUMP_MINI, &mini);
    assert_int_equal(mini.pages_by_kind[LD_PAGE_UNKNOWN], 0);
    ld_sim_pause(h.sim, false);
    harness_stop(&h);
}

static void test_file_sink(void **state)
{
    (void)state;
    char dir[] = "/tmp/ld-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], link_path[512], partial[600];
    snprintf(path, sizeof path, "%s/dump.raw", dir);
    snprintf(link_path, sizeof link_path, "%s/link.raw", dir);
    snprintf(partial, sizeof partial, "%s/dump.raw.partial", dir);

    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);

    ld_sink *sink;
    mode_t old = umask(0);
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    umask(old);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), sink, &r), LD_STATUS_SUCCESS);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal((uint64_t)st.st_size, r.file_bytes);
    /* Holes (user, free, zero pages, the IO hole) take no disk space. */
    assert_true((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size);
    assert_true((uint64_t)st.st_blocks * 512 >= r.primary_bytes);
    assert_int_equal(access(partial, F_OK), -1);

    /* An existing file is never overwritten. */
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_OBJECT_NAME_COLLISION);
    /* A symlink planted at the temporary name is not followed. */
    assert_int_equal(symlink("/tmp/ld-should-not-exist", partial), 0);
    char other[600];
    snprintf(other, sizeof other, "%s/dump.raw", dir);
    unlink(other);
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_OBJECT_NAME_COLLISION);
    unlink(partial);
    assert_int_equal(symlink("/tmp/ld-should-not-exist", link_path), 0);
    assert_int_equal(ld_sink_file_open(link_path, &sink), LD_STATUS_OBJECT_NAME_COLLISION);

    /* A capture that fails while writing leaves no file at all. */
    ld_fault f = {.op = LD_HAL_OP_MEM_READ, .nth = 3, .status = LD_STATUS_IO_DEVICE_ERROR};
    assert_int_equal(ld_fault_inject(h.fault, &f), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), sink, &r), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(partial, F_OK), -1);

    unlink(link_path);
    rmdir(dir);
    harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_full_user_hv),
        cmocka_unit_test(test_selective_no_mirror),
        cmocka_unit_test(test_kernel_stacks),
        cmocka_unit_test(test_mini),
        cmocka_unit_test(test_lkd_options),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_policy_refuses),
        cmocka_unit_test(test_file_sink),
        cmocka_unit_test(test_system_info),
        cmocka_unit_test(test_hv_pages_without_hypervisor),
        cmocka_unit_test(test_says_when_nothing_stopped),
        cmocka_unit_test(test_unclassified_pages_are_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
