/* What the engine does at the limits an agent running for months meets:
 * the admission hook (throttling), the dump file size limit, a full disk at
 * several points of the write, each buffer pool running dry (partial
 * dumps), memory pressure with and without the dynamic threshold, and
 * several deferred dumps held by handle. Every case asserts the events
 * and their fields. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/dmp.h"
#include "evlog.h"
#include "harness.h"

static evlog *start(harness *h, ld_sim_config *cfg)
{
    harness_start(h, cfg, true);
    evlog *log = evlog_new();
    assert_int_equal(ld_engine_subscribe(h->engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);
    return log;
}

static void stop(harness *h, evlog *log)
{
    harness_stop(h);
    evlog_free(log);
}

/* Event 2 closes the request with `st`, and its level says error if it failed. */
static void assert_api_end(const evlog *log, ld_status st)
{
    const evlog_entry *e2 = evlog_last(log, 2);
    assert_non_null(e2);
    assert_int_equal(evlog_u64(e2, "NTStatus"), st);
    assert_int_equal(e2->level, st == LD_STATUS_SUCCESS ? LD_LEVEL_INFO : LD_LEVEL_ERROR);
}

/* ---- admission (the throttling hook of the report storage) ---- */

static int admit_calls;
static ld_status refuse_throttled(void *arg, const ld_capture_request *req, ld_admission *why)
{
    (void)arg;
    admit_calls++;
    assert_int_equal(req->bugcheck_code, LD_BUGCHECK_LIVE_SYSTEM_DUMP);
    snprintf(why->description, sizeof why->description, "throttled by SystemThrottleThreshold");
    snprintf(why->param_name[0], sizeof why->param_name[0], "SystemThrottleThresholdHours");
    why->param_value[0] = 120;
    snprintf(why->param_name[1], sizeof why->param_name[1], "NextDumpAllowedUnixTime");
    why->param_value[1] = 1700000000;
    return LD_STATUS_THROTTLED;
}

static void test_admission_refuses(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    assert_int_equal(ld_engine_set_admission(h.engine, refuse_throttled, NULL), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    uint64_t quiesces = ld_fault_calls(h.fault, LD_HAL_OP_QUIESCE);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_THROTTLED);
    assert_int_equal(r.status, LD_STATUS_THROTTLED);
    assert_int_equal(admit_calls, 1);
    assert_true(m.aborted);
    /* Refused before any work: the machine was never stopped. */
    assert_int_equal(ld_fault_calls(h.fault, LD_HAL_OP_QUIESCE), quiesces);
    assert_int_equal(evlog_count(log, 104), 0);
    /* 1, then 6 naming the threshold and the next allowed time, then 2. */
    long i1 = evlog_find(log, 1, 0), i6 = evlog_find(log, 6, 0), i2 = evlog_find(log, 2, 0);
    assert_true(i1 >= 0 && i1 < i6 && i6 < i2);
    const evlog_entry *e6 = &log->ev[i6];
    assert_string_equal(evlog_str(e6, "LiveDumpEventDescription"), "throttled by SystemThrottleThreshold");
    assert_int_equal(evlog_param(e6, "SystemThrottleThresholdHours"), 120);
    assert_int_equal(evlog_param(e6, "NextDumpAllowedUnixTime"), 1700000000);
    assert_string_equal(evlog_str(e6, "Parameter3Name"), "");
    assert_api_end(log, LD_STATUS_THROTTLED);
    assert_string_equal(ld_status_name(LD_STATUS_THROTTLED), "LD_STATUS_THROTTLED");
    assert_non_null(strstr(ld_status_describe(LD_STATUS_THROTTLED), "SystemThrottleThreshold"));

    /* Without the hook the next capture runs. */
    assert_int_equal(ld_engine_set_admission(h.engine, NULL, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(admit_calls, 1);
    mem_sink_release(&m);
    stop(&h, log);
}

/* Event 2 of a refused request names the request: its bug check code and
 * parameters (the manifest's fields), and its flags, whatever refused it. */
static ld_status refuse_quietly(void *arg, const ld_capture_request *req, ld_admission *why)
{
    (void)arg;
    (void)req;
    snprintf(why->description, sizeof why->description, "refused");
    return LD_STATUS_THROTTLED;
}

static void assert_request_in_api_end(const evlog *log, ld_status st, const ld_capture_request *req)
{
    const evlog_entry *e2 = evlog_last(log, 2);
    assert_non_null(e2);
    assert_int_equal(evlog_u64(e2, "NTStatus"), st);
    assert_int_equal(evlog_u64(e2, "BugcheckCode"), req->bugcheck_code);
    assert_int_equal(evlog_u64(e2, "BugCheckParameter1"), req->bugcheck_params[0]);
    assert_int_equal(evlog_u64(e2, "BugCheckParameter2"), req->bugcheck_params[1]);
    assert_int_equal(evlog_u64(e2, "BugCheckParameter3"), req->bugcheck_params[2]);
    assert_int_equal(evlog_u64(e2, "BugCheckParameter4"), req->bugcheck_params[3]);
    assert_int_equal(evlog_u64(e2, "AbortIfMemoryPressure"), (req->flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE) != 0);
    assert_int_equal(evlog_u64(e2, "SelectiveDump"), (req->flags & LD_FLAG_SELECTIVE_DUMP) != 0);
}

static void test_refused_request_named_in_event_2(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.bugcheck_code = 0x1A1;
    req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
    req.bugcheck_params[1] = 0x22;
    req.bugcheck_params[2] = 0x333;
    req.bugcheck_params[3] = 0x4444;
    req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE | LD_FLAG_SELECTIVE_DUMP;
    mem_sink m;

    /* Throttled by the admission hook. */
    assert_int_equal(ld_engine_set_admission(h.engine, refuse_quietly, NULL), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_THROTTLED);
    assert_request_in_api_end(log, LD_STATUS_THROTTLED, &req);
    assert_int_equal(ld_engine_set_admission(h.engine, NULL, NULL), LD_STATUS_SUCCESS);

    /* AllowLiveDump = 0. */
    assert_int_equal(ld_engine_set_allow_live_dump(h.engine, false), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_ACCESS_DENIED);
    assert_request_in_api_end(log, LD_STATUS_ACCESS_DENIED, &req);
    assert_int_equal(ld_engine_set_allow_live_dump(h.engine, true), LD_STATUS_SUCCESS);

    /* A bad request: extra pages on a mini dump. */
    ld_capture_request bad = req;
    bad.type = LD_DUMP_MINI;
    bad.add_pages = LD_ADD_USER_PAGES;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &bad, ld_format_raw(), &m.sink, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_request_in_api_end(log, LD_STATUS_INVALID_PARAMETER, &bad);

    /* A deferred request where nothing may be held. */
    ld_engine_destroy(h.engine);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.max_deferred = 0;
    assert_int_equal(ld_engine_create(h.hal, &opts, &h.engine), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);
    ld_capture_request defer = req;
    defer.flags |= LD_FLAG_DEFER;
    defer.flags &= ~LD_FLAG_SELECTIVE_DUMP;
    assert_int_equal(ld_engine_capture(h.engine, &defer, NULL, NULL, NULL), LD_STATUS_NOT_SUPPORTED);
    assert_request_in_api_end(log, LD_STATUS_NOT_SUPPORTED, &defer);
    stop(&h, log);
}

/* ---- the dump file size limit ---- */

static void test_size_limit_trims(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_USER_PAGES;
    mem_sink m;
    ld_result full, r;

    /* No limit: 113 says so. */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &full), LD_STATUS_SUCCESS);
    const evlog_entry *e113 = evlog_last(log, 113);
    assert_int_equal(evlog_u64(e113, "LimitDumpFileSize"), 0);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitInBytes"), 0);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitReached"), 0);
    assert_false(full.size_limit_reached);
    mem_sink_release(&m);

    /* Half the full dump: the lowest-priority pages go, required data stays,
     * and no more than the limit is written. */
    uint64_t limit = full.primary_bytes / 2;
    assert_int_equal(ld_engine_set_limits(h.engine, limit, true), LD_STATUS_SUCCESS);
    evlog_clear(log);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_true(m.written <= limit);
    assert_true(r.size_limit_reached);
    assert_true(r.pages_left_out > 0);
    assert_true(r.pages * 4096 <= limit);
    e113 = evlog_last(log, 113);
    assert_int_equal(evlog_u64(e113, "LimitDumpFileSize"), 1);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitInBytes"), limit);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitReached"), 1);
    assert_int_equal(evlog_u64(e113, "AbortWhileBufferAllocation"), 0);
    const evlog_entry *e6 = evlog_last(log, 6);
    assert_int_equal(evlog_param(e6, "DumpFileSizeLimitInBytes"), limit);
    assert_int_equal(evlog_param(e6, "PagesLeftOut"), r.pages_left_out);
    /* User pages go first: none is left while kernel pages were dropped. */
    assert_int_equal(r.pages_by_kind[LD_PAGE_USER], 0);
    assert_int_equal(r.pages_left_out_by_kind[LD_PAGE_USER], full.pages_by_kind[LD_PAGE_USER]);
    static const ld_page_kind required[] = {LD_PAGE_KERNEL_IMAGE, LD_PAGE_HAL_IMAGE, LD_PAGE_SHARED_USER_DATA,
                                           LD_PAGE_PROCESSOR_BLOCKS, LD_PAGE_DEBUGGER_DATA, LD_PAGE_LOADED_MODULES};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        assert_int_equal(r.pages_by_kind[required[i]], full.pages_by_kind[required[i]]);
        assert_int_equal(r.pages_left_out_by_kind[required[i]], 0);
    }
    uint64_t sum = 0;
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++)
        sum += r.pages_left_out_by_kind[k];
    assert_int_equal(sum, r.pages_left_out);
    assert_api_end(log, LD_STATUS_SUCCESS);
    mem_sink_release(&m);

    /* A limit below the required data: disk full before anything is copied. */
    assert_int_equal(ld_engine_set_limits(h.engine, 4096, true), LD_STATUS_SUCCESS);
    evlog_clear(log);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_DISK_FULL);
    assert_true(m.aborted);
    assert_int_equal(m.written, 0);
    assert_int_equal(evlog_u64(evlog_last(log, 113), "DumpFileSizeLimitReached"), 1);
    assert_int_equal(evlog_count(log, 151), 0); /* no page copied */
    assert_int_equal(evlog_count(log, 3), 0);
    assert_api_end(log, LD_STATUS_DISK_FULL);
    mem_sink_release(&m);
    stop(&h, log);
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The ELF parses: a core file whose PT_LOADs lie inside it and hold `pages`
 * pages. */
static void assert_elf_ok(const mem_sink *m, uint64_t pages)
{
    assert_true(m->size >= 64);
    assert_memory_equal(m->data, "\x7f" "ELF", 4);
    assert_int_equal(le(m->data + 16, 2), 4); /* ET_CORE */
    uint64_t phoff = le(m->data + 32, 8), phnum = le(m->data + 56, 2), loaded = 0;
    assert_true(phnum >= 1 && phnum < 0xffff);
    assert_true(phoff + phnum * 56 <= m->size);
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = m->data + phoff + 56 * i;
        uint64_t off = le(ph + 8, 8), filesz = le(ph + 32, 8);
        assert_true(off + filesz <= m->size);
        if (le(ph, 4) == 1)
            loaded += filesz;
    }
    assert_int_equal(loaded, pages * 4096);
}

/* The same limit with the .dmp and ELF formats: their headers count, so the
 * dump is partial, not refused on the write side (deferred too, where the
 * format is only known at the write). */
static void test_size_limit_formats(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_USER_PAGES;
    mem_sink m;
    ld_result full, r;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &full), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    uint64_t limit = full.primary_bytes / 2;
    assert_int_equal(ld_engine_set_limits(h.engine, limit, true), LD_STATUS_SUCCESS);
    const ld_format *formats[] = {ld_format_dmp(), ld_format_elf()};
    for (size_t f = 0; f < 2; f++) {
        for (int defer = 0; defer <= 1; defer++) {
            evlog_clear(log);
            mem_sink_init(&m);
            if (defer) {
                req.flags |= LD_FLAG_DEFER;
                assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
                req.flags &= ~LD_FLAG_DEFER;
                assert_int_equal(ld_engine_write_deferred(h.engine, formats[f], &m.sink, &r), LD_STATUS_SUCCESS);
            } else {
                assert_int_equal(ld_engine_capture(h.engine, &req, formats[f], &m.sink, &r), LD_STATUS_SUCCESS);
                assert_api_end(log, LD_STATUS_SUCCESS);
            }
            assert_true(m.finished);
            assert_true(m.written <= limit);
            assert_true(m.size <= limit);
            assert_true(r.size_limit_reached);
            assert_true(r.pages_left_out > 0);
            assert_int_equal(evlog_u64(evlog_last(log, defer ? 204 : 4), "NTStatus"), LD_STATUS_SUCCESS);
            if (!defer)
                assert_int_equal(evlog_u64(evlog_last(log, 113), "DumpFileSizeLimitReached"), 1);
            if (f == 0) {
                ld_dmp *d;
                assert_int_equal(ld_dmp_open_memory(m.data, m.size, &d, NULL), LD_STATUS_SUCCESS);
                assert_int_equal(ld_dmp_get_info(d)->page_count, r.pages);
                assert_int_equal(ld_dmp_get_info(d)->file_bytes, m.size);
                uint64_t problems = 1;
                assert_int_equal(ld_dmp_verify(d, NULL, NULL, &problems), LD_STATUS_SUCCESS);
                assert_int_equal(problems, 0);
                ld_dmp_close(d);
            } else {
                assert_elf_ok(&m, r.pages);
            }
            mem_sink_release(&m);
        }
    }
    stop(&h, log);
}

/* A limit lowered after a deferred capture is met on the write side: disk
 * full in 204 and 202, the data stays held, and a write under a larger
 * limit succeeds. */
static void test_size_limit_on_write(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r0, r;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r0), LD_STATUS_SUCCESS);
    assert_non_null(r0.deferred);
    assert_int_equal(ld_engine_set_limits(h.engine, 1 << 20, true), LD_STATUS_SUCCESS);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, &r), LD_STATUS_DISK_FULL);
    assert_true(m.aborted);
    assert_true(m.written <= 1 << 20);
    assert_int_equal(evlog_u64(evlog_last(log, 204), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(log, 202), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_ptr_equal(ld_engine_deferred(h.engine), r0.deferred);
    mem_sink_release(&m);
    assert_int_equal(ld_engine_set_limits(h.engine, 0, true), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_int_equal(r.pages, r0.pages);
    assert_int_equal(r.primary_bytes, r0.pages * 4096);
    assert_int_equal(m.size, r.file_bytes);
    assert_null(ld_engine_deferred(h.engine));
    mem_sink_release(&m);
    stop(&h, log);
}

/* ---- disk full at several points of the write ---- */

static void test_disk_full_points(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    ld_result full;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &full), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    /* The first byte, the first page, the middle, the last page. */
    uint64_t points[] = {1, 4096, full.primary_bytes / 2, full.primary_bytes - 1};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        for (int defer = 0; defer <= 1; defer++) {
            evlog_clear(log);
            mem_sink_init(&m);
            m.fail_after_bytes = points[i];
            m.fail_status = LD_STATUS_DISK_FULL;
            ld_result r;
            ld_status st;
            if (defer) {
                req.flags |= LD_FLAG_DEFER;
                assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
                req.flags &= ~LD_FLAG_DEFER;
                st = ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, &r);
            } else {
                st = ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r);
            }
            assert_int_equal(st, LD_STATUS_DISK_FULL);
            assert_true(m.aborted && !m.finished);
            assert_int_equal(r.file_bytes, 0);
            assert_false(ld_sim_corralled(h.sim));
            assert_int_equal(evlog_u64(evlog_last(log, defer ? 204 : 4), "NTStatus"), LD_STATUS_DISK_FULL);
            assert_int_equal(evlog_u64(evlog_last(log, defer ? 202 : 2), "NTStatus"), LD_STATUS_DISK_FULL);
            assert_int_equal(evlog_last(log, defer ? 202 : 2)->level, LD_LEVEL_ERROR);
            mem_sink_release(&m);
            if (defer) {
                /* Nothing lost: the same dump is written elsewhere. */
                mem_sink_init(&m);
                assert_int_equal(ld_engine_write_deferred(h.engine, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
                assert_true(m.finished);
                assert_int_equal(r.primary_bytes, r.pages * 4096);
                assert_int_equal(m.size, r.file_bytes);
                mem_sink_release(&m);
            }
        }
    }
    stop(&h, log);
}

/* A real file on a full "disk": RLIMIT_FSIZE makes the kernel refuse the
 * write past the limit (EFBIG), as a full filesystem does (ENOSPC). The
 * status is disk full and no file, partial or final, is left. */
static void test_disk_full_real_file(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    char dir[] = "/tmp/livedump-full-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/dump.raw", dir);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 2 << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    ld_status st = ld_engine_capture(h.engine, &req, ld_format_raw(), sink, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st, LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(log, 4), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_api_end(log, LD_STATUS_DISK_FULL);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    rmdir(dir);
    stop(&h, log);
}

/* ---- partial dumps under each pool running dry ---- */

typedef struct pool_case {
    const char *name;
    uint64_t bytes[LD_POOL_COUNT]; /* VM IO, VM, system IO, system */
    bool secure_kernel;            /* hypervisor pages + secure kernel: IO-space pools unused */
} pool_case;

static ld_page_kind class_of(int k)
{
    return (ld_page_kind)k;
}

static int priority(ld_page_kind k)
{
    switch (k) {
    case LD_PAGE_KERNEL_IMAGE: case LD_PAGE_HAL_IMAGE: case LD_PAGE_SHARED_USER_DATA:
    case LD_PAGE_PROCESSOR_BLOCKS: case LD_PAGE_DEBUGGER_DATA: case LD_PAGE_LOADED_MODULES:
        return 3;
    case LD_PAGE_PAGE_TABLES: case LD_PAGE_KERNEL_STACKS:
        return 2;
    case LD_PAGE_USER: case LD_PAGE_HV_ESSENTIAL: case LD_PAGE_HV_NONESSENTIAL: case LD_PAGE_SECURE_KERNEL:
        return 0;
    default:
        return 1;
    }
}

static void run_pool_case(const pool_case *pc)
{
    print_message("pools: %s\n", pc->name);
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.hypervisor = true;
    cfg.secure_kernel = pc->secure_kernel;
    /* Plenty of memory: only the pools are short, not the machine. */
    cfg.available_bytes = 64ull << 30;
    for (int p = 0; p < LD_POOL_COUNT; p++)
        cfg.pool_bytes[p] = pc->bytes[p];
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = LD_ADD_USER_PAGES | LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    const evlog_entry *e113 = evlog_last(log, 113);
    uint64_t est = evlog_u64(e113, "EstimatedPageCount"), got = evlog_u64(e113, "AllocatedPageCount");
    assert_true(got < est);
    assert_int_equal(evlog_u64(e113, "AbortWhileBufferAllocation"), 0);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitReached"), 0);
    static const char *const fields[LD_POOL_COUNT] = {
        "VMMemoryPartitionIOSpaceAllocatedPages", "VMMemoryPartitionAllocatedPages",
        "SystemPartitionIOSpaceAllocatedPages", "SystemPartitionAllocatedPages"};
    uint64_t sum = 0;
    for (int p = 0; p < LD_POOL_COUNT; p++) {
        uint64_t n = evlog_u64(e113, fields[p]);
        sum += n;
        assert_int_equal(n, r.pool_pages[p]);
        /* Each pool gave what it had, and no more. */
        assert_true(n * 4096 <= pc->bytes[p]);
        if (pc->secure_kernel && (p == LD_POOL_VM_PARTITION_IO_SPACE || p == LD_POOL_SYSTEM_PARTITION_IO_SPACE))
            assert_int_equal(n, 0);
    }
    assert_int_equal(sum, got);
    if (pc->secure_kernel)
        assert_int_equal(evlog_count(log, 124), 1);
    /* The partial dump is reported: event 6 with the pages left out. */
    assert_true(r.pages_left_out > 0);
    const evlog_entry *e6 = evlog_last(log, 6);
    assert_int_equal(evlog_param(e6, "PagesLeftOut"), r.pages_left_out);
    /* Priority order: a class loses pages only once every lower class is
     * gone; required data never does. */
    int highest_dropped = -1;
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++)
        if (r.pages_left_out_by_kind[k] && priority(class_of(k)) > highest_dropped)
            highest_dropped = priority(class_of(k));
    assert_true(highest_dropped >= 0 && highest_dropped < 3);
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++)
        if (priority(class_of(k)) < highest_dropped)
            assert_int_equal(r.pages_by_kind[k], 0);
    assert_int_equal(r.pages + r.pages_left_out + 2 * 16 >= est, true);
    assert_api_end(log, LD_STATUS_SUCCESS);
    mem_sink_release(&m);

    /* With abort-if-memory-pressure the same shortage ends the request. */
    evlog_clear(log);
    req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_true(m.aborted);
    assert_int_equal(evlog_u64(evlog_last(log, 113), "AbortWhileBufferAllocation"), 1);
    assert_api_end(log, LD_STATUS_INSUFFICIENT_RESOURCES);
    mem_sink_release(&m);
    stop(&h, log);
}

static void test_partial_each_pool(void **state)
{
    (void)state;
    const uint64_t M = 1ull << 20;
    const pool_case cases[] = {
        {"system partition only, dry", {0, 0, 0, 24 * M}, false},
        {"VM partition dry, then system partition dry", {0, 12 * M, 0, 12 * M}, false},
        {"all four pools dry", {6 * M, 6 * M, 6 * M, 6 * M}, false},
        {"IO-space pools skipped (secure kernel), the others dry", {16 * M, 6 * M, 16 * M, 12 * M}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_pool_case(&cases[i]);
}

/* Pools too small for the required data: the request ends (113
 * AbortWhileBufferAllocation), never a crash or an out-of-memory. */
static void test_pools_below_required(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.pool_bytes[LD_POOL_SYSTEM_PARTITION] = 64 * 1024;
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_true(m.aborted);
    assert_int_equal(evlog_u64(evlog_last(log, 113), "AbortWhileBufferAllocation"), 1);
    assert_api_end(log, LD_STATUS_INSUFFICIENT_RESOURCES);
    mem_sink_release(&m);
    stop(&h, log);
}

/* ---- memory pressure and the dynamic threshold ---- */

static void test_memory_pressure(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    /* Dynamic: buffers + max(64 MiB, physical / 32). */
    uint64_t reserve = r.physical_bytes / 32 > (64ull << 20) ? r.physical_bytes / 32 : 64ull << 20;
    assert_true(r.low_memory_threshold > reserve);
    uint64_t need = r.low_memory_threshold - reserve;
    assert_true(need >= r.pages_allocated * 4096 - 2 * 16 * 4096);
    const evlog_entry *e2 = evlog_last(log, 2);
    assert_int_equal(evlog_u64(e2, "DynamicLowMemoryThresholdBytes"), r.low_memory_threshold);
    assert_int_equal(evlog_u64(e2, "AvailablePhysicalMemoryInBytes"), r.available_bytes);
    assert_int_equal(evlog_u64(e2, "TotalPhysicalMemoryInBytes"), r.physical_bytes);
    stop(&h, log);

    /* Available memory between the buffers and the dynamic threshold: the
     * dynamic threshold aborts (event 5), the switch off lets it go on. */
    harness_config(&cfg);
    cfg.available_bytes = need + reserve / 2;
    log = start(&h, &cfg);
    req.flags = LD_FLAG_USE_MIRRORING | LD_FLAG_ABORT_IF_MEMORY_PRESSURE | LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(evlog_count(log, 5), 1);
    assert_int_equal(evlog_last(log, 5)->level, LD_LEVEL_WARNING);
    e2 = evlog_last(log, 2);
    assert_int_equal(evlog_u64(e2, "AbortIfMemoryPressure"), 1);
    assert_true(evlog_u64(e2, "DynamicLowMemoryThresholdBytes") > evlog_u64(e2, "AvailablePhysicalMemoryInBytes"));
    assert_int_equal(evlog_count(log, 151), 0);
    assert_int_equal(ld_engine_set_limits(h.engine, 0, false), LD_STATUS_SUCCESS);
    evlog_clear(log);
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r), LD_STATUS_SUCCESS);
    assert_int_equal(evlog_count(log, 5), 0);
    assert_true(r.low_memory_threshold <= r.available_bytes);
    assert_int_equal(evlog_u64(evlog_last(log, 2), "DynamicLowMemoryThresholdBytes"), r.low_memory_threshold);
    stop(&h, log); /* destroy discards the held dump */
}

/* Without HAL pools buffers come from the platform allocator, which on an
 * overcommitting OS never fails: the engine itself keeps the buffers within
 * available memory less the reserve, with a partial dump, even without
 * LD_FLAG_ABORT_IF_MEMORY_PRESSURE. */
static void test_available_memory_caps_buffers(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    ld_result full, r;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &full), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    assert_int_equal(full.pages_left_out, 0);
    uint64_t reserve = full.physical_bytes / 32 > (64ull << 20) ? full.physical_bytes / 32 : 64ull << 20;
    stop(&h, log);

    harness_config(&cfg);
    cfg.available_bytes = reserve + full.pages_allocated * 4096 / 2;
    log = start(&h, &cfg);
    /* The same machine without pools: platform allocation. */
    ld_hal nopools = *h.hal;
    nopools.caps &= ~LD_HAL_CAP_POOLS;
    nopools.pool_open = NULL;
    nopools.pool_alloc = NULL;
    nopools.pool_free = NULL;
    ld_engine_destroy(h.engine);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.on_event = evlog_fn;
    opts.on_event_arg = log;
    assert_int_equal(ld_engine_create(&nopools, &opts, &h.engine), LD_STATUS_SUCCESS);
    evlog_clear(log);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    assert_true(r.pages_allocated * 4096 <= cfg.available_bytes - reserve);
    assert_true(r.pages_left_out > 0);
    assert_true(r.pages < full.pages);
    assert_int_equal(r.pool_pages[LD_POOL_SYSTEM_PARTITION], r.pages_allocated);
    const evlog_entry *e113 = evlog_last(log, 113);
    assert_int_equal(evlog_u64(e113, "AllocatedPageCount"), r.pages_allocated);
    assert_true(evlog_u64(e113, "AllocatedPageCount") < evlog_u64(e113, "EstimatedPageCount"));
    assert_int_equal(evlog_u64(e113, "AbortWhileBufferAllocation"), 0);
    assert_int_equal(evlog_param(evlog_last(log, 6), "PagesLeftOut"), r.pages_left_out);
    assert_int_equal(evlog_count(log, 5), 0);
    assert_api_end(log, LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    stop(&h, log);
}

/* A simulated machine whose host has little memory left: its dump
 * buffers (pool memory, committed on the host) never exceed what the host
 * can give, whatever the simulated machine has free. Host figures are
 * injected (ld_sim_config.host_*): nothing large is allocated. */
static void test_host_memory_bounds_buffers(void **state)
{
    (void)state;
    const uint64_t M = 1ull << 20, room = 24 * M;
    ld_sim_config cfg;
    harness_config(&cfg); /* pools of 1 GiB: the simulated machine itself would give every buffer */
    cfg.host_memory_bytes = 4ull << 30;
    /* The smallest host that can back this machine (ld_sim_config_check),
     * plus `room` for buffers. */
    uint64_t lo = 0, hi = 4ull << 30;
    while (hi - lo > M) {
        cfg.host_available_bytes = lo + (hi - lo) / 2;
        if (ld_sim_config_check(&cfg, NULL, 0) == LD_STATUS_SUCCESS)
            hi = cfg.host_available_bytes;
        else
            lo = cfg.host_available_bytes;
    }
    cfg.host_available_bytes = hi + room;
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    assert_true(m.finished);
    /* A partial dump within the host's room (M: the search's step). */
    assert_true(r.pages_allocated * 4096 <= room + M);
    assert_true(r.pages_left_out > 0);
    assert_true(r.available_bytes <= room + M);
    assert_int_equal(evlog_param(evlog_last(log, 6), "PagesLeftOut"), r.pages_left_out);
    mem_sink_release(&m);

    /* With LD_FLAG_ABORT_IF_MEMORY_PRESSURE: refused before any buffer. */
    evlog_clear(log);
    req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_INSUFFICIENT_RESOURCES);
    assert_true(m.aborted);
    assert_int_equal(evlog_count(log, 5), 1);
    assert_int_equal(evlog_count(log, 107), 0);
    mem_sink_release(&m);
    stop(&h, log);
}

typedef struct progress_log {
    uint64_t calls, last_done, last_total;
    bool other_phase;
} progress_log;

static ld_status on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    progress_log *p = arg;
    p->calls++;
    p->other_phase |= strcmp(phase, "write") != 0;
    p->last_done = done;
    p->last_total = total;
    return LD_STATUS_SUCCESS;
}

/* A deferred write reports its progress, as a capture's write does. */
static void test_deferred_write_progress(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    evlog *log = start(&h, &cfg);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r0, r;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &r0), LD_STATUS_SUCCESS);
    progress_log pl;
    memset(&pl, 0, sizeof pl);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred_ex(h.engine, r0.deferred, ld_format_dmp(), &m.sink, on_progress, &pl, &r),
                     LD_STATUS_SUCCESS);
    assert_true(pl.calls > 0);
    assert_false(pl.other_phase);
    assert_int_equal(pl.last_total, r0.pages);
    assert_int_equal(pl.last_done, r0.pages);
    assert_int_equal(evlog_u64(evlog_last(log, 202), "NTStatus"), LD_STATUS_SUCCESS);
    assert_null(ld_engine_deferred(h.engine));
    mem_sink_release(&m);
    stop(&h, log);
}

/* ---- deferred dumps: several, by handle ---- */

static void test_deferred_handles(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_engine_destroy(h.engine);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    assert_int_equal(opts.max_deferred, 1);
    opts.max_deferred = LD_MAX_DEFERRED + 1;
    assert_int_equal(ld_engine_create(h.hal, &opts, &h.engine), LD_STATUS_INVALID_PARAMETER);
    opts.max_deferred = 2;
    assert_int_equal(ld_engine_create(h.hal, &opts, &h.engine), LD_STATUS_SUCCESS);
    evlog *log = evlog_new();
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);

    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result a, b, c;
    req.bugcheck_params[1] = 0xA;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &a), LD_STATUS_SUCCESS);
    req.bugcheck_params[1] = 0xB;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &b), LD_STATUS_SUCCESS);
    assert_non_null(a.deferred);
    assert_non_null(b.deferred);
    assert_ptr_not_equal(a.deferred, b.deferred);
    assert_int_equal(ld_engine_deferred_count(h.engine), 2);
    assert_ptr_equal(ld_engine_deferred(h.engine), a.deferred);
    /* The limit reached: a third capture is refused, with or without defer. */
    req.bugcheck_params[1] = 0xC;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, &c), LD_STATUS_DEVICE_BUSY);
    assert_null(c.deferred);

    /* Write the newer first, by handle; 202 names its bug check parameters. */
    mem_sink m;
    mem_sink_init(&m);
    ld_result w;
    assert_int_equal(ld_engine_write_deferred_dump(h.engine, b.deferred, ld_format_raw(), &m.sink, &w), LD_STATUS_SUCCESS);
    assert_int_equal(evlog_u64(evlog_last(log, 202), "BugCheckParameter2"), 0xB);
    assert_int_equal(evlog_u64(evlog_last(log, 204), "NTStatus"), LD_STATUS_SUCCESS);
    assert_int_equal(w.pages, b.pages);
    mem_sink_release(&m);
    /* Double write of the same handle. */
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred_dump(h.engine, b.deferred, ld_format_raw(), &m.sink, NULL),
                     LD_STATUS_INVALID_DEVICE_STATE);
    assert_true(m.aborted);
    assert_int_equal(evlog_u64(evlog_last(log, 202), "NTStatus"), LD_STATUS_INVALID_DEVICE_STATE);
    mem_sink_release(&m);
    /* Discard the other; 252 names it. Then write after discard, discard of
     * nothing. */
    assert_int_equal(ld_engine_discard_deferred_dump(h.engine, a.deferred), LD_STATUS_SUCCESS);
    const evlog_entry *e252 = evlog_last(log, 252);
    assert_int_equal(evlog_u64(e252, "NTStatus"), LD_STATUS_SUCCESS);
    assert_int_equal(evlog_u64(e252, "BugCheckParameter2"), 0xA);
    assert_int_equal(evlog_u64(e252, "BugcheckCode"), LD_BUGCHECK_LIVE_SYSTEM_DUMP);
    assert_int_equal(ld_engine_deferred_count(h.engine), 0);
    mem_sink_init(&m);
    assert_int_equal(ld_engine_write_deferred_dump(h.engine, a.deferred, ld_format_raw(), &m.sink, NULL),
                     LD_STATUS_INVALID_DEVICE_STATE);
    mem_sink_release(&m);
    assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_INVALID_DEVICE_STATE);
    e252 = evlog_last(log, 252);
    assert_int_equal(evlog_u64(e252, "NTStatus"), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(evlog_u64(e252, "BugcheckCode"), 0);
    assert_int_equal(evlog_count(log, 251), 2);
    assert_int_equal(evlog_count(log, 201), 3);

    /* Held dumps left at destroy are discarded (251/252 each), no leak. */
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    size_t before = evlog_count(log, 252);
    ld_engine_destroy(h.engine);
    assert_int_equal(evlog_count(log, 252), before + 2);
    h.engine = NULL;
    harness_stop(&h);
    evlog_free(log);
}

/* max_deferred 0: the engine keeps no dump; a deferred request says so. */
static void test_no_deferral(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_engine_destroy(h.engine);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.max_deferred = 0;
    assert_int_equal(ld_engine_create(h.hal, &opts, &h.engine), LD_STATUS_SUCCESS);
    evlog *log = evlog_new();
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_NOT_SUPPORTED);
    assert_api_end(log, LD_STATUS_NOT_SUPPORTED);
    req.flags &= ~LD_FLAG_DEFER;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    harness_stop(&h);
    evlog_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admission_refuses),
        cmocka_unit_test(test_refused_request_named_in_event_2),
        cmocka_unit_test(test_size_limit_trims),
        cmocka_unit_test(test_size_limit_formats),
        cmocka_unit_test(test_size_limit_on_write),
        cmocka_unit_test(test_disk_full_points),
        cmocka_unit_test(test_disk_full_real_file),
        cmocka_unit_test(test_partial_each_pool),
        cmocka_unit_test(test_pools_below_required),
        cmocka_unit_test(test_memory_pressure),
        cmocka_unit_test(test_available_memory_caps_buffers),
        cmocka_unit_test(test_host_memory_bounds_buffers),
        cmocka_unit_test(test_deferred_handles),
        cmocka_unit_test(test_deferred_write_progress),
        cmocka_unit_test(test_no_deferral),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
