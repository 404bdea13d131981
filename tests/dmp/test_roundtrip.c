/* .dmp round trips on the simulated machine: what the reader returns from a
 * written file is what the machine held at the quiesce instant.
 *
 * With the workload paused, memory does not change, so every page the
 * reader returns must equal the machine's RAM (ld_sim_page); with it
 * running, it must equal the engine's captured copy, whose consistency
 * test_consistency.c proves, and the probe (A == B == rax) must hold in the
 * file. Pages the dump leaves out must read as absent, the header's bug
 * check and the contexts of every processor must read back, and the byte
 * counts of events 4/204 must be the file's. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/harness.h"
#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/dmp.h"

#define PAGE 4096u

/* Byte counts from the write-end events (4 and 204). */
typedef struct write_event {
    uint16_t id;
    uint64_t header, primary, secondary, total;
    int seen;
} write_event;

static void on_write_event(void *arg, const ld_event *ev)
{
    write_event *w = arg;
    if (ev->id != 4 && ev->id != 204)
        return;
    w->id = ev->id;
    w->seen++;
    assert_true(ld_event_get_u64(ev, "HeaderBytes", &w->header));
    assert_true(ld_event_get_u64(ev, "PrimaryDataBytes", &w->primary));
    assert_true(ld_event_get_u64(ev, "SecondaryDataBytes", &w->secondary));
    assert_true(ld_event_get_u64(ev, "TotalBytes", &w->total));
}

/* ---- HAL wrappers: make every page capturable, or split the ranges ---- */

typedef struct wrap {
    ld_hal hal;
    const ld_hal *real;
    bool all_kernel;      /* classify never-dumped kinds as kernel data */
    uint64_t split_pages; /* cut ranges into pieces of this many pages */
} wrap;

static wrap the_wrap; /* the wrappers get the sim's ctx, so one at a time */

static ld_status wrap_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    ld_status st = the_wrap.real->mem_kinds(ctx, runs, count);
    if (st != LD_STATUS_SUCCESS || !runs || !the_wrap.all_kernel)
        return st;
    for (size_t i = 0; i < *count; i++) {
        uint32_t k = runs[i].kind;
        if (k == LD_PAGE_FREE || k == LD_PAGE_ZERO || k == LD_PAGE_IO_SPACE || k == LD_PAGE_SECURE_KERNEL)
            runs[i].kind = LD_PAGE_KERNEL_OTHER;
    }
    return st;
}

static ld_status wrap_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    size_t n = 0;
    ld_status st = the_wrap.real->mem_ranges(ctx, NULL, &n);
    if (st != LD_STATUS_SUCCESS && st != LD_STATUS_BUFFER_TOO_SMALL)
        return st;
    ld_phys_range real[8];
    assert_true(n <= 8);
    assert_int_equal(the_wrap.real->mem_ranges(ctx, real, &n), LD_STATUS_SUCCESS);
    size_t pieces = 0;
    for (size_t i = 0; i < n; i++)
        for (uint64_t at = 0; at < real[i].page_count; at += the_wrap.split_pages) {
            if (ranges && pieces < *count) {
                uint64_t left = real[i].page_count - at;
                ranges[pieces] = (ld_phys_range){real[i].first_pfn + at,
                                                 left < the_wrap.split_pages ? left : the_wrap.split_pages};
            }
            pieces++;
        }
    bool fits = ranges && pieces <= *count;
    *count = pieces;
    return fits ? LD_STATUS_SUCCESS : LD_STATUS_BUFFER_TOO_SMALL;
}

static const ld_hal *wrap_hal(const ld_hal *real, bool all_kernel, uint64_t split_pages)
{
    memset(&the_wrap, 0, sizeof the_wrap);
    the_wrap.hal = *real;
    the_wrap.real = real;
    the_wrap.all_kernel = all_kernel;
    the_wrap.split_pages = split_pages;
    the_wrap.hal.mem_kinds = wrap_kinds;
    if (split_pages)
        the_wrap.hal.mem_ranges = wrap_ranges;
    return &the_wrap.hal;
}

/* ---- a callout blob ---- */

static const uint8_t callout_guid[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                         0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
static const char callout_text[] = "driver state: 3 queues, 17 requests pending"; /* not a multiple of 8 */

static ld_status callout_fn(void *arg, void *buf, uint64_t cap, uint64_t *len)
{
    (void)arg;
    assert_true(cap >= sizeof callout_text);
    memcpy(buf, callout_text, sizeof callout_text);
    *len = sizeof callout_text;
    return LD_STATUS_SUCCESS;
}

/* ---- what the captured dump held, kept before it is written ---- */

typedef struct expected {
    ld_dump_info info;
    ld_cpu_context ctx[64];
    uint8_t *present;      /* one byte per PFN below max_pfn */
    uint64_t max_pfn;
    ld_phys_range ranges[256];
    ld_blob blobs[8];        /* copies: the dump's own are freed by the write */
    char comment[256];
} expected;

static void remember(expected *x, const ld_dump *d)
{
    const ld_dump_info *info = ld_dump_get_info(d);
    x->info = *info;
    assert_true(strlen(info->comment) < sizeof x->comment);
    strcpy(x->comment, info->comment);
    assert_true(info->cpu_count <= 64);
    memcpy(x->ctx, info->contexts, info->cpu_count * sizeof *info->contexts);
    assert_true(info->range_count <= 256);
    memcpy(x->ranges, info->ranges, info->range_count * sizeof *info->ranges);
    assert_true(info->blob_count <= 8);
    for (size_t i = 0; i < info->blob_count; i++) {
        x->blobs[i] = info->blobs[i];
        void *copy = malloc(info->blobs[i].size + 1);
        assert_non_null(copy);
        memcpy(copy, info->blobs[i].data, info->blobs[i].size);
        x->blobs[i].data = copy;
    }
    x->max_pfn = info->max_pfn;
    x->present = calloc(info->max_pfn, 1);
    assert_non_null(x->present);
    for (uint64_t pfn = ld_dump_next_page(d, 0); pfn != UINT64_MAX; pfn = ld_dump_next_page(d, pfn + 1)) {
        assert_true(pfn < info->max_pfn);
        x->present[pfn] = 1;
    }
}

static void forget(expected *x)
{
    for (size_t i = 0; i < x->info.blob_count; i++)
        free((void *)x->blobs[i].data);
    free(x->present);
    free(x);
}

static void check_contexts(ld_dmp *r, const expected *x)
{
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(in->processor_count, x->info.cpu_count);
    assert_int_equal(in->context_count, x->info.cpu_count);
    for (uint32_t i = 0; i < in->context_count; i++) {
        ld_cpu_context got;
        bool capturing = false;
        assert_int_equal(ld_dmp_context(r, i, &got, &capturing), LD_STATUS_SUCCESS);
        const ld_cpu_context *want = &x->ctx[i];
        assert_int_equal(got.cpu, want->cpu);
        assert_int_equal(got.valid, want->valid);
        assert_memory_equal(got.gpr, want->gpr, sizeof got.gpr);
        assert_int_equal(got.rip, want->rip);
        assert_int_equal(got.rflags, want->rflags);
        assert_int_equal(got.cr0, want->cr0);
        assert_int_equal(got.cr3, want->cr3);
        assert_int_equal(got.cr4, want->cr4);
        assert_int_equal(got.cs, want->cs);
        assert_int_equal(got.ss, want->ss);
        assert_int_equal(got.gs, want->gs);
        assert_int_equal(got.mxcsr, want->mxcsr);
        assert_int_equal(got.gs_base, want->gs_base);
        assert_int_equal(got.stack_base, want->stack_base);
        assert_int_equal(got.stack_base_pfn, want->stack_base_pfn);
        assert_int_equal(got.thread_id, want->thread_id);
        assert_int_equal(capturing, i == x->info.capturing_cpu);
    }
    /* The header's DirectoryTableBase is the capturing processor's CR3. */
    assert_int_equal(in->directory_table_base, x->ctx[x->info.capturing_cpu].cr3);
}

/* Every PFN below max_pfn: present in the file exactly when it was in the
 * dump, and then with the bytes `want(pfn)` says. Returns pages compared. */
typedef const void *(*page_source)(void *arg, uint64_t pfn);

static uint64_t check_pages(ld_dmp *r, const expected *x, page_source want, void *arg)
{
    uint8_t page[PAGE];
    uint64_t compared = 0, nonzero = 0;
    for (uint64_t pfn = 0; pfn < x->max_pfn; pfn++) {
        ld_status st = ld_dmp_read_page(r, pfn, page);
        if (!x->present[pfn]) {
            assert_int_equal(st, LD_STATUS_NOT_FOUND);
            assert_false(ld_dmp_page_present(r, pfn));
            continue;
        }
        assert_int_equal(st, LD_STATUS_SUCCESS);
        const void *w = want(arg, pfn);
        assert_non_null(w);
        if (memcmp(page, w, PAGE) != 0)
            fail_msg("page 0x%llx differs from the machine's memory", (unsigned long long)pfn);
        compared++;
        for (size_t i = 0; i < PAGE; i++)
            if (page[i]) {
                nonzero++;
                break;
            }
    }
    /* Nothing beyond the dump's PFNs. */
    assert_int_equal(ld_dmp_next_page(r, x->max_pfn), UINT64_MAX);
    assert_int_equal(compared, ld_dmp_get_info(r)->page_count);
    /* A comparison of empty pages would prove little. */
    assert_true(nonzero > compared / 2);
    return compared;
}

static const void *sim_page(void *arg, uint64_t pfn)
{
    return ld_sim_page(arg, pfn);
}

static void check_header(ld_dmp *r, const expected *x, uint64_t file_size)
{
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(in->bugcheck_code, x->info.bugcheck_code);
    assert_memory_equal(in->bugcheck_params, x->info.bugcheck_params, sizeof in->bugcheck_params);
    assert_int_equal(in->machine_type, 0x8664);
    assert_int_equal(in->major_version, x->info.system.os_major);
    assert_int_equal(in->minor_version, x->info.system.os_minor);
    assert_int_equal(in->debugger_data_block, x->info.system.debugger_data_block);
    assert_int_equal(in->loaded_module_list, x->info.system.loaded_module_list);
    assert_int_equal(in->system_time, x->info.system_time);
    assert_int_equal(in->system_uptime, x->info.system_uptime);
    assert_int_equal(in->attributes & 0x10, 0x10);
    assert_int_equal(in->file_bytes, file_size);
    assert_int_equal(in->required_dump_space, file_size);
    assert_int_equal(in->header_bytes + in->primary_bytes + in->secondary_bytes, file_size);
    assert_int_equal(in->page_count, x->info.page_count);
    assert_string_equal(in->comment, x->comment);
    if (x->info.range_count <= 42) {
        assert_int_equal(in->run_count, x->info.range_count);
        assert_memory_equal(in->runs, x->ranges, in->run_count * sizeof *in->runs);
    } else {
        assert_null(in->runs); /* left as the 'PAGE' fill */
    }
    uint64_t problems = 99;
    assert_int_equal(ld_dmp_verify(r, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
}

static void check_blob(ld_dmp *r, const uint8_t guid[16], const void *data, size_t size)
{
    const ld_dmp_info *in = ld_dmp_get_info(r);
    for (size_t i = 0; i < in->blob_count; i++) {
        ld_dmp_blob b;
        assert_int_equal(ld_dmp_get_blob(r, i, &b), LD_STATUS_SUCCESS);
        if (memcmp(b.guid, guid, 16))
            continue;
        assert_int_equal(b.size, size);
        uint8_t *buf = malloc(size);
        assert_int_equal(ld_dmp_read_blob(r, i, 0, buf, size), LD_STATUS_SUCCESS);
        assert_memory_equal(buf, data, size);
        assert_int_equal(ld_dmp_read_blob(r, i, 1, buf, size), LD_STATUS_END_OF_FILE);
        free(buf);
        return;
    }
    fail_msg("blob not found");
}

/* One paused capture, written twice (directly, then by the engine), read
 * back and compared with the machine. Returns the reader's dump type. */
typedef struct scenario {
    const char *name;
    ld_dump_type type;
    uint32_t add_pages;
    uint32_t flags;
    bool hypervisor;
    bool all_kernel;
    uint64_t split_pages;
    bool callout;
} scenario;

/* LD_TEST_DMP_DIR=dir keeps each scenario's file, to check it by hand with
 * other readers (docs/dmp-format.md). */
static void keep_file(const char *name, const uint8_t *data, uint64_t size)
{
    const char *dir = getenv("LD_TEST_DMP_DIR");
    if (!dir)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.dmp", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static uint32_t run_paused(const scenario *sc)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.dirty_rate = 64ull << 20;
    cfg.hot_set_bytes = 8ull << 20;
    cfg.hypervisor = sc->hypervisor;
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    const ld_hal *hal = ld_sim_hal(sim);
    if (sc->all_kernel || sc->split_pages)
        hal = wrap_hal(hal, sc->all_kernel, sc->split_pages);
    write_event we;
    memset(&we, 0, sizeof we);
    ld_engine *e;
    assert_int_equal(ld_engine_create(hal, NULL, &e), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_subscribe(e, LD_CHANNEL_MASK_ALL, on_write_event, &we), LD_STATUS_SUCCESS);
    if (sc->callout)
        assert_int_equal(ld_engine_add_callout(e, "test-driver", callout_guid, 256, callout_fn, NULL),
                         LD_STATUS_SUCCESS);
    ld_sim_pause(sim, true);

    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = sc->type;
    req.add_pages = sc->add_pages;
    req.flags |= sc->flags | LD_FLAG_DEFER;
    req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
    req.bugcheck_params[3] = 0x1234;
    assert_int_equal(ld_engine_capture(e, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    const ld_dump *d = ld_engine_deferred(e);
    assert_non_null(d);
    expected *x = calloc(1, sizeof *x);
    remember(x, d);

    /* The writer run directly, then through the engine: same bytes. */
    mem_sink direct, written;
    mem_sink_init(&direct);
    mem_sink_init(&written);
    ld_write_stats ws;
    assert_int_equal(ld_format_dmp()->write(d, &direct.sink, NULL, NULL, &ws), LD_STATUS_SUCCESS);
    assert_int_equal(ws.file_bytes, direct.size);
    ld_result res;
    assert_int_equal(ld_engine_write_deferred(e, ld_format_find("dmp"), &written.sink, &res), LD_STATUS_SUCCESS);
    assert_true(written.finished);
    assert_int_equal(written.size, direct.size);
    assert_memory_equal(written.data, direct.data, direct.size);

    /* Event 204 counts the file's bytes. */
    assert_int_equal(we.id, 204);
    assert_int_equal(we.header + we.primary + we.secondary, written.size);
    assert_int_equal(we.total, written.size);
    assert_int_equal(res.file_bytes, written.size);

    keep_file(sc->name, written.data, written.size);
    ld_dmp *r;
    ld_error err;
    assert_int_equal(ld_dmp_open_memory(written.data, written.size, &r, &err), LD_STATUS_SUCCESS);
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(in->header_bytes, we.header);
    assert_int_equal(in->primary_bytes, we.primary);
    assert_int_equal(in->secondary_bytes, we.secondary);
    check_header(r, x, written.size);
    check_contexts(r, x);
    check_pages(r, x, sim_page, sim);
    if (sc->callout)
        check_blob(r, callout_guid, callout_text, sizeof callout_text);
    /* Every blob of the capture is in the file, with its tag and bytes,
     * followed by livedump's contexts blob. */
    assert_int_equal(in->blob_count, x->info.blob_count + 1);
    for (size_t i = 0; i < x->info.blob_count; i++)
        check_blob(r, x->blobs[i].guid, x->blobs[i].data, x->blobs[i].size);
    if (sc->hypervisor) {
        static const uint8_t hv[16] = LD_DMP_GUID_HYPERVISOR;
        ld_dmp_blob b;
        assert_int_equal(ld_dmp_get_blob(r, 0, &b), LD_STATUS_SUCCESS);
        assert_memory_equal(b.guid, hv, 16);
        assert_true(b.size > 0);
    }
    uint32_t type = in->dump_type;

    /* Control: one changed byte in one page is seen. */
    uint64_t pfn = ld_dmp_next_page(r, 0x200);
    uint64_t off = ld_dmp_page_offset(r, pfn);
    written.data[off + 100] ^= 0x5a;
    uint8_t page[PAGE];
    assert_int_equal(ld_dmp_read_page(r, pfn, page), LD_STATUS_SUCCESS);
    assert_memory_not_equal(page, ld_sim_page(sim, pfn), PAGE);

    ld_dmp_close(r);
    mem_sink_release(&direct);
    mem_sink_release(&written);
    forget(x);
    ld_engine_destroy(e);
    ld_sim_destroy(sim);
    return type;
}

static void test_bitmap_full_kernel(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-full-kernel", .type = LD_DUMP_FULL_KERNEL, .callout = true};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

static void test_bitmap_kernel_stacks(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-kernel-stacks", .type = LD_DUMP_KERNEL_STACKS};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

static void test_bitmap_mini(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-mini", .type = LD_DUMP_MINI};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

static void test_bitmap_user_selective(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-user-selective", .type = LD_DUMP_FULL_KERNEL, .add_pages = LD_ADD_USER_PAGES, .flags = LD_FLAG_SELECTIVE_DUMP};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

/* Hypervisor pages and the HAL's hypervisor secondary data. */
static void test_bitmap_hypervisor(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-hypervisor", .type = LD_DUMP_FULL_KERNEL,
                   .add_pages = LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES,
                   .hypervisor = true,
                   .callout = true};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

/* Every page of every range captured: a full dump (type 1). */
static void test_full_dump(void **state)
{
    (void)state;
    scenario sc = {.name = "full", .type = LD_DUMP_FULL_KERNEL, .add_pages = LD_ADD_USER_PAGES, .all_kernel = true, .callout = true};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_FULL);
}

/* More ranges than the header holds: the bitmap form, even with every page. */
static void test_many_runs_use_bitmap(void **state)
{
    (void)state;
    scenario sc = {.name = "bitmap-many-runs", .type = LD_DUMP_FULL_KERNEL, .add_pages = LD_ADD_USER_PAGES, .all_kernel = true,
                   .split_pages = 512};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_BITMAP_FULL);
}

/* Up to 42 ranges still make a full dump. */
static void test_42_runs_full(void **state)
{
    (void)state;
    /* 128 MiB in ranges of 0x9F and 32609 pages: pieces of 800 give 1 + 41 = 42 ranges. */
    scenario sc = {.name = "full-42-runs", .type = LD_DUMP_FULL_KERNEL, .add_pages = LD_ADD_USER_PAGES, .all_kernel = true,
                   .split_pages = 800};
    assert_int_equal(run_paused(&sc), LD_DMP_TYPE_FULL);
}

/* The header's physical memory runs describe RAM and nothing else, as
 * Windows' MmPhysicalMemoryBlock: NumberOfPages is the machine's RAM, no run
 * holds page 0 or the legacy device window (640 KiB-1 MiB), and the runs
 * are the machine's ranges. */
static void test_runs_describe_ram_only(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.memory_bytes = 256ull << 20;
    harness h;
    harness_start(&h, &cfg, true);
    ld_sim_pause(h.sim, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), &m.sink, NULL), LD_STATUS_SUCCESS);
    ld_dmp *r;
    assert_int_equal(ld_dmp_open_memory(m.data, m.size, &r, NULL), LD_STATUS_SUCCESS);
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(in->run_pages, cfg.memory_bytes / PAGE);
    assert_non_null(in->runs);
    uint64_t sum = 0;
    for (size_t i = 0; i < in->run_count; i++) {
        const ld_phys_range *run = &in->runs[i];
        sum += run->page_count;
        assert_true(run->first_pfn > 0);
        assert_true(run->first_pfn + run->page_count <= 0xA0 || run->first_pfn >= 0x100);
    }
    assert_int_equal(sum, in->run_pages);
    size_t nr = 0;
    assert_int_equal(h.hal->mem_ranges(h.hal->ctx, NULL, &nr), LD_STATUS_SUCCESS);
    ld_phys_range ranges[8];
    assert_true(nr <= 8);
    assert_int_equal(h.hal->mem_ranges(h.hal->ctx, ranges, &nr), LD_STATUS_SUCCESS);
    assert_int_equal(in->run_count, nr);
    assert_memory_equal(in->runs, ranges, nr * sizeof *ranges);
    ld_dmp_close(r);
    mem_sink_release(&m);
    harness_stop(&h);
}

/* ---- a running machine: the file holds one instant ---- */

static const void *dump_page(void *arg, uint64_t pfn)
{
    return ld_dump_page(arg, pfn);
}

static uint64_t read_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void test_running_machine_consistent(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.cpus = 3;
    cfg.dirty_rate = 256ull << 20;
    cfg.hot_set_bytes = 16ull << 20;
    harness h;
    harness_start(&h, &cfg, true);
    for (int round = 0; round < 3; round++) {
        ld_capture_request req;
        ld_capture_request_init(&req);
        req.flags |= LD_FLAG_DEFER;
        req.mirror_max_passes = 3;
        assert_int_equal(ld_engine_capture(h.engine, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
        const ld_dump *d = ld_engine_deferred(h.engine);
        expected *x = calloc(1, sizeof *x);
        remember(x, d);
        mem_sink m;
        mem_sink_init(&m);
        ld_write_stats ws;
        assert_int_equal(ld_format_dmp()->write(d, &m.sink, NULL, NULL, &ws), LD_STATUS_SUCCESS);
        ld_dmp *r;
        assert_int_equal(ld_dmp_open_memory(m.data, m.size, &r, NULL), LD_STATUS_SUCCESS);
        check_pages(r, x, dump_page, (void *)d);
        check_contexts(r, x);
        for (uint32_t c = 0; c < cfg.cpus; c++) {
            ld_sim_probe p;
            assert_int_equal(ld_sim_probe_of(h.sim, c, &p), LD_STATUS_SUCCESS);
            uint8_t a[PAGE], b[PAGE];
            assert_int_equal(ld_dmp_read_page(r, p.a_pfn, a), LD_STATUS_SUCCESS);
            assert_int_equal(ld_dmp_read_page(r, p.b_pfn, b), LD_STATUS_SUCCESS);
            ld_cpu_context ctx;
            assert_int_equal(ld_dmp_context(r, c, &ctx, NULL), LD_STATUS_SUCCESS);
            assert_int_equal(read_u64(a + p.a_offset), read_u64(b + p.b_offset));
            assert_int_equal(read_u64(b + p.b_offset), ctx.gpr[LD_RAX]);
        }
        ld_dmp_close(r);
        mem_sink_release(&m);
        forget(x);
        assert_int_equal(ld_engine_discard_deferred(h.engine), LD_STATUS_SUCCESS);
    }
    harness_stop(&h);
}

typedef struct progress_seen {
    uint64_t calls, last_done, last_total;
} progress_seen;

static ld_status on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    progress_seen *p = arg;
    if (strcmp(phase, "write") != 0)
        return LD_STATUS_SUCCESS;
    assert_true(done >= p->last_done && done <= total);
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    return LD_STATUS_SUCCESS;
}

/* A direct capture: event 4 carries the file's byte counts, and the
 * writer reports its progress up to the last page. */
static void test_capture_event_counts(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    write_event we;
    memset(&we, 0, sizeof we);
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, on_write_event, &we), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_KERNEL_STACKS;
    progress_seen prog = {0, 0, 0};
    req.progress = on_progress;
    req.progress_arg = &prog;
    mem_sink m;
    mem_sink_init(&m);
    ld_result res;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_find("dmp"), &m.sink, &res), LD_STATUS_SUCCESS);
    assert_int_equal(we.seen, 1);
    assert_int_equal(we.id, 4);
    ld_dmp *r;
    assert_int_equal(ld_dmp_open_memory(m.data, m.size, &r, NULL), LD_STATUS_SUCCESS);
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(we.header, in->header_bytes);
    assert_int_equal(we.primary, in->primary_bytes);
    assert_int_equal(we.secondary, in->secondary_bytes);
    assert_int_equal(we.total, m.size);
    assert_int_equal(res.pages, in->page_count);
    assert_int_equal(in->bugcheck_code, LD_BUGCHECK_LIVE_SYSTEM_DUMP);
    assert_true(prog.calls >= 1);
    assert_int_equal(prog.last_done, in->page_count);
    assert_int_equal(prog.last_total, in->page_count);
    ld_dmp_close(r);
    mem_sink_release(&m);
    harness_stop(&h);
}

/* A failing sink fails the write and leaves nothing behind. */
static void test_sink_failure(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    uint64_t limits[] = {100, 0x2000 + 10, 0x5000, 1u << 20};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        mem_sink m;
        mem_sink_init(&m);
        m.fail_after_bytes = limits[i];
        m.fail_status = LD_STATUS_DISK_FULL;
        assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), &m.sink, NULL), LD_STATUS_DISK_FULL);
        assert_true(m.aborted);
        assert_false(m.finished);
        mem_sink_release(&m);
    }
    harness_stop(&h);
}

/* ---- descriptor sinks: a file (read back through the reader's file
 * path) and a pipe (the writer streams in order, never seeks) ---- */

typedef struct drain {
    int fd;
    uint8_t *data;
    size_t size;
} drain;

static void *drain_pipe(void *arg)
{
    drain *d = arg;
    size_t cap = 1 << 20;
    d->data = malloc(cap);
    for (;;) {
        if (d->size == cap)
            d->data = realloc(d->data, cap *= 2);
        ssize_t n = read(d->fd, d->data + d->size, cap - d->size);
        if (n <= 0)
            break;
        d->size += (size_t)n;
    }
    return NULL;
}

static void test_fd_sinks(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;

    char path[] = "/tmp/livedump-dmp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    ld_sink *sink;
    assert_int_equal(ld_sink_fd_open(fd, &sink), LD_STATUS_SUCCESS);
    ld_result res;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), sink, &res), LD_STATUS_SUCCESS);
    assert_int_equal(close(fd), 0);
    ld_dmp *r;
    ld_error err;
    assert_int_equal(ld_dmp_open(path, &r, &err), LD_STATUS_SUCCESS);
    assert_int_equal(ld_dmp_get_info(r)->file_bytes, res.file_bytes);
    assert_int_equal(ld_dmp_get_info(r)->page_count, res.pages);
    uint64_t problems = 1;
    assert_int_equal(ld_dmp_verify(r, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
    ld_dmp_close(r);
    unlink(path);

    /* O_APPEND: pwrite would ignore the offsets and append. The .dmp goes in
     * order after what the file held; the raw image's holes are refused
     * rather than written packed at the wrong offsets. */
    strcpy(path, "/tmp/livedump-dmp-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "prefix", 6), 6);
    assert_int_equal(close(fd), 0);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(ld_sink_fd_open(fd, &sink), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), sink, NULL), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_sink_fd_open(fd, &sink), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), sink, &res), LD_STATUS_SUCCESS);
    assert_int_equal(close(fd), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, 6 + res.file_bytes);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *buf = malloc(res.file_bytes + 6);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, res.file_bytes + 6, fp), res.file_bytes + 6);
    fclose(fp);
    assert_memory_equal(buf, "prefix", 6);
    assert_int_equal(ld_dmp_open_memory(buf + 6, res.file_bytes, &r, &err), LD_STATUS_SUCCESS);
    assert_int_equal(ld_dmp_verify(r, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
    assert_int_equal(ld_dmp_get_info(r)->page_count, res.pages);
    ld_dmp_close(r);
    free(buf);
    unlink(path);

    int p[2];
    assert_int_equal(pipe(p), 0);
    drain dr = {p[0], NULL, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_pipe, &dr), 0);
    assert_int_equal(ld_sink_fd_open(p[1], &sink), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), sink, &res), LD_STATUS_SUCCESS);
    /* The raw image has holes: a pipe cannot take it. */
    assert_int_equal(ld_sink_fd_open(p[1], &sink), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), sink, NULL), LD_STATUS_INVALID_PARAMETER);
    close(p[1]);
    pthread_join(t, NULL);
    close(p[0]);
    assert_int_equal(dr.size, res.file_bytes); /* and nothing of the failed raw write */
    assert_int_equal(ld_dmp_open_memory(dr.data, res.file_bytes, &r, &err), LD_STATUS_SUCCESS);
    assert_int_equal(ld_dmp_verify(r, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
    assert_int_equal(ld_dmp_get_info(r)->page_count, res.pages);
    ld_dmp_close(r);
    free(dr.data);
    harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitmap_full_kernel),
        cmocka_unit_test(test_bitmap_kernel_stacks),
        cmocka_unit_test(test_bitmap_mini),
        cmocka_unit_test(test_bitmap_user_selective),
        cmocka_unit_test(test_bitmap_hypervisor),
        cmocka_unit_test(test_full_dump),
        cmocka_unit_test(test_many_runs_use_bitmap),
        cmocka_unit_test(test_42_runs_full),
        cmocka_unit_test(test_runs_describe_ram_only),
        cmocka_unit_test(test_running_machine_consistent),
        cmocka_unit_test(test_capture_event_counts),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_fd_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
