/* The NT backend's logic, run against the stand-in for the NT routines
 * (standin.h): classification, the stop and its steps, contexts, full
 * captures through the engine into .dmp files read back page for page by
 * the project's reader, the driver's request/reply/events, one capture at
 * a time, fault injection on every routine the stand-in provides, and the
 * stop budget under a stalled processor, a stalled leader and a DPC
 * watchdog near its limit. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "nt_internal.h"
#include "standin.h"
#include "livedump/dmp.h"
#include "livedump/nt.h"

#define PG 4096u
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
/* What the host adds to "parked no longer than the budget": the time it
 * takes to schedule the stand-in's processor threads again (a sanitizer,
 * or another test beside this one, makes that long). */
#define SLACK ((SANITIZED ? 600 : 60) * MS)
#define MS 1000000ull
#define DIRECT_BASE 0xfffff80000000000ull

/* ---- the world of one test ---- */

static bool running;

static void start(standin_config *c)
{
    assert_int_equal(standin_start(c), 0);
    running = true;
}

/* After a failed test too: the world's threads must not outlive it. */
static int teardown(void **state)
{
    (void)state;
    if (running)
        standin_stop();
    running = false;
    return 0;
}

static void start_default(void)
{
    standin_config c;
    standin_config_init(&c);
    start(&c);
}

/* What every test ends with: nothing parked, nothing leaked, no rule of
 * the DDK broken. */
static void finish(void)
{
    assert_false(standin_corralled());
    assert_int_equal(standin_outstanding(), 0);
    if (standin_violations())
        fail_msg("violation: %s", standin_last_violation());
    assert_false(ldn_service_busy());
    standin_stop();
    running = false;
}

/* ---- one capture through the driver's service ---- */

typedef struct capture {
    ld_status status;
    ld_nt_reply reply;
    uint8_t *out;          /* the reply and its event records */
    size_t out_len;
    char path[64];
    uint64_t file_bytes;
} capture;

static void request_init(ld_nt_request *r, ld_dump_type type)
{
    memset(r, 0, sizeof *r);
    r->version = LD_NT_REQUEST_VERSION;
    r->size = sizeof *r;
    r->type = type;
    r->bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
    strcpy(r->format, "dmp");
}

/* cfg NULL: what the driver does (the request's budget, capped). */
static void run_capture(const ld_nt_request *req, const ldn_config *cfg, capture *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->path, "/tmp/ld-nt-XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    void *h = standin_file_handle(fd);
    size_t cap = sizeof(ld_nt_reply) + (256u << 10);
    c->out = malloc(cap);
    assert_non_null(c->out);
    c->status = ldn_service_capture(req, h, c->out, cap, &c->out_len, cfg);
    /* nothing written when refused before any work (busy, a bad request) */
    assert_true(c->out_len == 0 || c->out_len >= sizeof c->reply);
    if (c->out_len)
        memcpy(&c->reply, c->out, sizeof c->reply);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    c->file_bytes = (uint64_t)sb.st_size;
    standin_file_handle_free(h);
    close(fd);
}

static void drop_capture(capture *c)
{
    unlink(c->path);
    free(c->out);
    c->out = NULL;
}

/* With roomy(), the stand-in's clock watchdog is as roomy: the real
 * limit is the real budget's business (test_stalled_leader & co.). */
static void roomy_world(standin_config *sc)
{
    standin_config_init(sc);
    sc->clock_watchdog_ns = 20000 * MS;
}

static ldn_config roomy(void)
{
    /* The stand-in's processors are threads on a shared host: copying a
     * whole 64 MiB machine while stopped takes it longer than the real
     * budget. Tests of the budget itself use the real one. */
    ldn_config cfg = {0};
    cfg.stop_budget_ns = 10000 * MS;
    cfg.stop_budget_cap_ns = 10000 * MS;
    return cfg;
}

static bool kind_covers(const ld_kind_range *k, size_t n, uint64_t pfn, uint32_t kind)
{
    for (size_t i = 0; i < n; i++)
        if (pfn >= k[i].first_pfn && pfn - k[i].first_pfn < k[i].page_count)
            return k[i].kind == kind;
    return kind == LD_PAGE_UNKNOWN;
}

/* ---- classification ---- */

static void test_classification(void **state)
{
    (void)state;
    standin_config sc;
    standin_config_init(&sc);
    sc.secure_kernel = true;
    start(&sc);
    const standin_layout *L = standin_layout_get();
    ldn *n = NULL;
    assert_int_equal(ldn_open(NULL, &n), LD_STATUS_SUCCESS);
    const ld_hal *h = ldn_hal(n);
    size_t count = 0;
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &count), LD_STATUS_SUCCESS);
    ld_kind_range *k = calloc(count, sizeof *k);
    assert_int_equal(h->mem_kinds(h->ctx, k, &count), LD_STATUS_SUCCESS);
    for (size_t i = 1; i < count; i++)
        assert_true(k[i - 1].first_pfn + k[i - 1].page_count <= k[i].first_pfn);

    /* page tables: exactly the kernel half's tables */
    uint64_t tables = 0;
    for (size_t i = 0; i < count; i++)
        if (k[i].kind == LD_PAGE_PAGE_TABLES)
            tables += k[i].page_count;
    assert_int_equal(tables, L->table_count);
    for (size_t i = 0; i < L->table_count; i++)
        assert_true(kind_covers(k, count, L->table_pfns[i], LD_PAGE_PAGE_TABLES));
    for (uint64_t p = 0; p < L->kernel_pages; p++)
        assert_true(kind_covers(k, count, L->kernel_pfn + p, LD_PAGE_KERNEL_IMAGE));
    for (uint64_t p = 0; p < L->hal_pages; p++)
        assert_true(kind_covers(k, count, L->hal_pfn + p, LD_PAGE_HAL_IMAGE));
    assert_true(kind_covers(k, count, L->kdbg_pa / PG, LD_PAGE_DEBUGGER_DATA));
    for (int i = 0; i < 4; i++)
        assert_true(kind_covers(k, count, L->module_entry_pfns[i], LD_PAGE_LOADED_MODULES));
    assert_true(kind_covers(k, count, L->shared_data_pfn, LD_PAGE_SHARED_USER_DATA));
    for (uint32_t p = 0; p < sc.cpus; p++)
        assert_true(kind_covers(k, count, L->kpcr_pfn[p], LD_PAGE_PROCESSOR_BLOCKS));
    for (uint64_t p = 0; p < L->secure_pages; p++)
        assert_true(kind_covers(k, count, L->secure_pfn + p, LD_PAGE_SECURE_KERNEL));
    /* what a driver cannot tell stays unknown */
    assert_true(kind_covers(k, count, L->probe_a_pfn, LD_PAGE_UNKNOWN));

    ld_nt_stats st;
    ldn_get_stats(n, &st);
    assert_int_equal(st.page_table_pages, L->table_count);
    assert_int_equal(st.unreadable_pages, L->secure_pages);
    assert_int_equal(st.modules, 3);
    assert_int_equal(st.kdbg_decoded, 1);

    ld_system_info si;
    assert_int_equal(h->system_info(h->ctx, &si), LD_STATUS_SUCCESS);
    assert_int_equal(si.directory_table_base, L->directory_table_base);
    assert_int_equal(si.debugger_data_block, L->kdbg_va);
    assert_int_equal(si.loaded_module_list, L->module_list_va);
    assert_int_equal(si.os_major, 15);
    assert_int_equal(si.os_minor, 26100);
    assert_int_equal(si.machine_type, 0x8664);
    assert_int_equal(si.kernel_base, DIRECT_BASE + L->kernel_pfn * PG);

    /* the ranges are the machine's RAM */
    ld_phys_range want[8], got[8];
    size_t nw = 8, ng = 8;
    const ld_hal *sh = ld_sim_hal(standin_sim());
    assert_int_equal(sh->mem_ranges(sh->ctx, want, &nw), LD_STATUS_SUCCESS);
    assert_int_equal(h->mem_ranges(h->ctx, got, &ng), LD_STATUS_SUCCESS);
    assert_int_equal(nw, ng);
    assert_memory_equal(want, got, nw * sizeof want[0]);
    free(k);
    ldn_close(n);
    finish();
}

/* ---- the stop, inside ---- */

typedef struct inside {
    const ld_hal *h;
    uint32_t cpus;
    ld_cpu_context ctx[STANDIN_MAX_CPUS];
    uint8_t page[PG];
    ld_status read;
} inside;

static ld_status look_inside(void *arg)
{
    inside *in = arg;
    for (uint32_t i = 0; i < in->cpus; i++)
        assert_int_equal(in->h->cpu_context(in->h->ctx, i, &in->ctx[i]), LD_STATUS_SUCCESS);
    in->read = in->h->mem_read(in->h->ctx, standin_layout_get()->kernel_pfn, 1, in->page);
    return LD_STATUS_SUCCESS;
}

static void test_quiesce_contexts(void **state)
{
    (void)state;
    standin_config sc;
    roomy_world(&sc);
    sc.leader = 2;
    start(&sc);
    const standin_layout *L = standin_layout_get();
    ldn *n = NULL;
    ldn_config cfg = roomy(); /* not a test of the budget */
    assert_int_equal(ldn_open(&cfg, &n), LD_STATUS_SUCCESS);
    const ld_hal *h = ldn_hal(n);
    inside in;
    memset(&in, 0, sizeof in);
    in.h = h;
    in.cpus = h->cpu_count(h->ctx);
    assert_int_equal(in.cpus, sc.cpus);
    ld_quiesce_times t;
    standin_reset_times();
    assert_int_equal(h->quiesce(h->ctx, 0, look_inside, &in, &t), LD_STATUS_SUCCESS);
    assert_false(standin_corralled());
    assert_int_equal(in.read, LD_STATUS_SUCCESS);
    assert_memory_equal(in.page, ld_sim_page(standin_sim(), L->kernel_pfn), PG);
    for (uint32_t i = 0; i < in.cpus; i++) {
        const ld_cpu_context *c = &in.ctx[i];
        uint32_t want = LD_CTX_GPRS | LD_CTX_CONTROL | LD_CTX_SEGMENTS | LD_CTX_THREAD | LD_CTX_FLOAT | LD_CTX_STACK_RANGE;
        assert_int_equal(c->valid, want);
        assert_int_equal(c->gpr[LD_RAX], 0xA000 + i);
        assert_int_equal(c->gs_base, DIRECT_BASE + L->kpcr_pfn[i] * PG);
        /* the leader is the capturing system thread: the System process's
         * page directory; the others, whatever they interrupted */
        assert_int_equal(c->cr3, i == sc.leader ? L->pml4_pfn * PG : L->cr3_pfn[i] * PG);
        assert_int_equal(c->stack_base_pfn, L->stack_pfn[i]);
        assert_int_equal(c->stack_pages, L->stack_pages[i]);
        assert_int_equal(c->cs, 0x10);
        assert_int_equal(c->mxcsr, 0x1f80);
        /* parked processors were held at CLOCK_LEVEL: cr8 read there */
        assert_int_equal(c->cr8, i == sc.leader ? DISPATCH_LEVEL : SYNCH_LEVEL);
        assert_int_equal(c->thread_id, i == sc.leader ? 4 : 0x1000 + 4 * i); /* 4: this thread */
    }
    assert_true(t.corral_ns > 0);
    assert_true(t.uncorral_ns > 0);
    ld_nt_stats st;
    ldn_get_stats(n, &st);
    assert_int_equal(st.leader, sc.leader);
    assert_int_equal(st.dpc_allowance_percent, 100);
    for (uint32_t i = 0; i < in.cpus; i++)
        if (i != sc.leader)
            assert_true(standin_max_clock_masked_ns(i) > 0); /* the clock step really ran */
    ldn_close(n);
    finish();
}

/* ---- full captures, read back ---- */

static ld_dmp *open_dump(const capture *c)
{
    ld_dmp *d = NULL;
    ld_status st = ld_dmp_open(c->path, &d, NULL);
    if (st != LD_STATUS_SUCCESS)
        fail_msg("%s: refused by the reader (0x%08X)", c->path, st);
    return d;
}

typedef struct evlist {
    uint16_t ids[512];
    size_t n;
    uint64_t end_status;
    bool end_seen;
} evlist;

static void collect(void *arg, const ld_event *ev)
{
    evlist *l = arg;
    if (l->n < 512)
        l->ids[l->n++] = ev->id;
    if (ev->id == 2)
        l->end_seen = ld_event_get_u64(ev, "NTStatus", &l->end_status);
}

static bool has(const evlist *l, uint16_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return true;
    return false;
}

static void decode_events(const capture *c, evlist *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(c->out_len, sizeof c->reply + c->reply.event_bytes);
    assert_int_equal(ld_nt_events_decode(c->out + sizeof c->reply, c->reply.event_bytes, collect, l),
                     LD_STATUS_SUCCESS);
    assert_int_equal(l->n, c->reply.event_count);
    assert_int_equal(c->reply.events_dropped, 0);
}

static bool in_range(uint64_t x, uint64_t first, uint64_t count)
{
    return x >= first && x - first < count;
}

static void test_full_capture_roundtrip(void **state)
{
    (void)state;
    standin_config sc;
    roomy_world(&sc);
    sc.secure_kernel = true;
    start(&sc);
    standin_pause(true); /* memory holds still: every page must equal the machine's */
    const standin_layout *L = standin_layout_get();
    ld_nt_request req;
    request_init(&req, LD_DUMP_FULL_KERNEL);
    ldn_config cfg = roomy();
    capture c;
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_SUCCESS);
    assert_int_equal(c.reply.status, LD_STATUS_SUCCESS);
    assert_int_equal(c.reply.version, LD_NT_REPLY_VERSION);
    const ld_result *r = &c.reply.result;
    assert_int_equal(r->status, LD_STATUS_SUCCESS);
    assert_true(r->machine_stopped);
    assert_false(r->mirrored); /* no dirty log: every page copied stopped */
    assert_int_equal(r->quiesce_copied_pages, r->pages);
    assert_int_equal(r->file_bytes, c.file_bytes);
    assert_int_equal(c.reply.stats.kdbg_decoded, 1);

    evlist ev;
    decode_events(&c, &ev);
    assert_true(ev.end_seen);
    assert_int_equal(ev.end_status, LD_STATUS_SUCCESS);
    assert_true(has(&ev, 1) && has(&ev, 3) && has(&ev, 4) && has(&ev, 121) && has(&ev, 122) && has(&ev, 165) &&
                has(&ev, 166));

    ld_dmp *d = open_dump(&c);
    const ld_dmp_info *in = ld_dmp_get_info(d);
    assert_int_equal(in->bugcheck_code, LD_BUGCHECK_LIVE_SYSTEM_DUMP);
    assert_int_equal(in->bugcheck_params[0], LD_BUGCHECK_PARAM_TASKMGR);
    assert_int_equal(in->major_version, 15);
    assert_int_equal(in->minor_version, 26100);
    assert_int_equal(in->debugger_data_block, L->kdbg_va);
    assert_int_equal(in->loaded_module_list, L->module_list_va);
    assert_int_equal(in->processor_count, sc.cpus);
    assert_int_equal(in->directory_table_base, L->pml4_pfn * PG);
    assert_int_equal(in->context_count, sc.cpus);
    assert_int_equal(in->page_count, r->pages);

    /* page for page: the machine's memory, but for the decoded KDBG and
     * the dump's own buffers (zeros) */
    uint8_t *page = malloc(PG);
    uint64_t present = 0, zeroed = 0, kdbg_pages = 0;
    static const uint8_t zero[PG];
    const ld_hal *sh = ld_sim_hal(standin_sim());
    ld_phys_range ranges[8];
    size_t nr = 8;
    assert_int_equal(sh->mem_ranges(sh->ctx, ranges, &nr), LD_STATUS_SUCCESS);
    for (size_t i = 0; i < nr; i++) {
        for (uint64_t pfn = ranges[i].first_pfn; pfn < ranges[i].first_pfn + ranges[i].page_count; pfn++) {
            if (in_range(pfn, L->secure_pfn, L->secure_pages)) {
                assert_false(ld_dmp_page_present(d, pfn)); /* never read, never in the dump */
                continue;
            }
            if (!ld_dmp_page_present(d, pfn))
                fail_msg("pfn 0x%llx absent; left out %llu, pages %llu", (unsigned long long)pfn,
                         (unsigned long long)r->pages_left_out, (unsigned long long)r->pages);
            assert_int_equal(ld_dmp_read_page(d, pfn, page), LD_STATUS_SUCCESS);
            present++;
            const uint8_t *mem = ld_sim_page(standin_sim(), pfn);
            if (pfn == L->kdbg_pa / PG) {
                uint64_t off = L->kdbg_pa % PG;
                assert_memory_equal(page + off, L->kdbg_decoded, L->kdbg_size);
                assert_memory_not_equal(mem + off, L->kdbg_decoded, L->kdbg_size); /* memory: encoded */
                assert_memory_equal(page, mem, off);
                kdbg_pages++;
            } else if (memcmp(page, mem, PG)) {
                assert_memory_equal(page, zero, PG); /* one of our own buffers */
                zeroed++;
            }
        }
    }
    assert_int_equal(kdbg_pages, 1);
    assert_int_equal(present, r->pages);
    assert_true(zeroed > 0);
    assert_true(zeroed <= c.reply.stats.own_pages_zeroed);
    /* every processor's context, as the stop saw it */
    for (uint32_t i = 0; i < sc.cpus; i++) {
        ld_cpu_context ctx;
        bool capturing = false;
        assert_int_equal(ld_dmp_context(d, i, &ctx, &capturing), LD_STATUS_SUCCESS);
        assert_int_equal(capturing, i == c.reply.stats.leader);
        assert_int_equal(ctx.gs_base, DIRECT_BASE + L->kpcr_pfn[i] * PG);
        assert_int_equal(ctx.rip, DIRECT_BASE + L->kernel_pfn * PG + 0x2000 + 0x40 * i);
    }
    uint64_t problems = 1;
    assert_int_equal(ld_dmp_verify(d, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
    printf("# nt stand-in, full dump of %u processors / %llu MiB: status 0x%08X, %llu pages (%llu zeroed buffer "
           "pages), stopped %.3f ms in the capture (corral %.3f ms), %llu mapped batches, file %llu bytes\n",
           sc.cpus, (unsigned long long)(sc.memory_bytes >> 20), c.status, (unsigned long long)r->pages,
           (unsigned long long)zeroed, (double)r->capture_stopped_ns / 1e6, (double)r->capture_quiesce.corral_ns / 1e6,
           (unsigned long long)c.reply.stats.mapped_batches, (unsigned long long)c.file_bytes);
    free(page);
    ld_dmp_close(d);
    drop_capture(&c);
    finish();
}

/* A mini dump in the default budget: the required data, each processor's
 * current stack and page directory. */
static void test_mini_capture_default_budget(void **state)
{
    (void)state;
    start_default();
    const standin_layout *L = standin_layout_get();
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    /* The stand-in's processors are threads on a shared host: a busy host
     * (or a sanitizer) can make one stop overrun. The budget then ends it,
     * never late (STATUS_IO_TIMEOUT, every processor let go in time);
     * without a sanitizer a few tries must see one fit. */
    for (int tries = 0;; tries++) {
        standin_reset_times();
        run_capture(&req, NULL, &c);
        assert_int_equal(c.reply.stats.stop_budget_ns, LD_NT_STOP_BUDGET_DEFAULT_NS);
        if (c.status == LD_STATUS_SUCCESS)
            break;
        assert_int_equal(c.status, LD_STATUS_IO_TIMEOUT);
        assert_false(standin_corralled());
        for (uint32_t p = 1; p < 4; p++)
            assert_true(standin_max_dispatch_ns(p) <= LD_NT_STOP_BUDGET_DEFAULT_NS + SLACK);
        drop_capture(&c);
        if (SANITIZED && tries == 2) {
            printf("# a sanitizer makes the stand-in too slow for the default budget: ended in time, 3 tries\n");
            finish();
            return;
        }
        assert_true(tries < 10);
    }
    assert_true(c.reply.result.capture_stopped_ns <= LD_NT_STOP_BUDGET_DEFAULT_NS);
    ld_dmp *d = open_dump(&c);
    uint32_t leader = c.reply.stats.leader;
    assert_true(ld_dmp_page_present(d, L->pml4_pfn)); /* the leader's (System's) page directory */
    for (uint32_t p = 0; p < 4; p++) {
        for (uint64_t s = 0; s < L->stack_pages[p]; s++)
            assert_true(ld_dmp_page_present(d, L->stack_pfn[p] + s));
        if (p != leader)
            assert_true(ld_dmp_page_present(d, L->cr3_pfn[p]));
        assert_true(ld_dmp_page_present(d, L->kpcr_pfn[p]));
    }
    assert_true(ld_dmp_page_present(d, L->kdbg_pa / PG));
    assert_true(ld_dmp_page_present(d, L->shared_data_pfn));
    assert_true(ld_dmp_page_present(d, L->kernel_pfn));
    assert_true(ld_dmp_page_present(d, L->hal_pfn));
    assert_false(ld_dmp_page_present(d, L->probe_a_pfn)); /* unknown: not in a mini dump */
    assert_false(ld_dmp_page_present(d, L->table_pfns[1])); /* important, not required */
    printf("# nt stand-in, mini dump in the default budget: status 0x%08X, %llu pages, stopped %.3f ms\n", c.status,
           (unsigned long long)c.reply.result.pages, (double)c.reply.result.capture_stopped_ns / 1e6);
    ld_dmp_close(d);
    drop_capture(&c);
    finish();
}

/* With the processors writing all the while, every processor's probe
 * (A, then B on its stack) reads the same in the dump: one instant. */
static void test_consistent_under_workload(void **state)
{
    (void)state;
    standin_config sc;
    roomy_world(&sc);
    start(&sc);
    const standin_layout *L = standin_layout_get();
    ld_nt_request req;
    request_init(&req, LD_DUMP_FULL_KERNEL);
    ldn_config cfg = roomy();
    for (int round = 0; round < 3; round++) {
        capture c;
        run_capture(&req, &cfg, &c);
        assert_int_equal(c.status, LD_STATUS_SUCCESS);
        ld_dmp *d = open_dump(&c);
        uint8_t a[PG], b[PG];
        assert_int_equal(ld_dmp_read_page(d, L->probe_a_pfn, a), LD_STATUS_SUCCESS);
        uint64_t moving = 0;
        for (uint32_t p = 0; p < 4; p++) {
            uint64_t va, vb;
            assert_int_equal(ld_dmp_read_page(d, L->stack_pfn[p] + L->stack_pages[p] - 1, b), LD_STATUS_SUCCESS);
            memcpy(&va, a + L->probe_a_offset + 8 * p, 8);
            memcpy(&vb, b + L->probe_b_offset, 8);
            assert_int_equal(va, vb);
            moving += va;
        }
        assert_true(moving > 0); /* the workload did run */
        ld_dmp_close(d);
        drop_capture(&c);
    }
    finish();
}

/* ---- the budget ---- */

/* A processor that does not come: the leader gives up at the budget, the
 * others were parked no longer, and the late DPC leaves at once. */
static void test_stalled_processor(void **state)
{
    (void)state;
    start_default();
    standin_stall_processor(2, 300 * MS);
    standin_reset_times();
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, NULL, &c);
    assert_int_equal(c.status, LD_STATUS_TIMEOUT);
    evlist ev;
    decode_events(&c, &ev);
    assert_true(ev.end_seen);
    assert_int_equal(ev.end_status, LD_STATUS_TIMEOUT);
    assert_int_equal(c.file_bytes, 0);
    for (uint32_t p = 0; p < 4; p++)
        if (p != 2 && p != 0) /* 0 is the leader */
            assert_true(standin_max_dispatch_ns(p) <= LD_NT_STOP_BUDGET_DEFAULT_NS + SLACK);
    usleep(400000); /* the stalled one takes its DPC now, and leaves */
    assert_true(standin_max_dispatch_ns(2) < SLACK);
    drop_capture(&c);
    finish();
}

/* A leader that does not come back (here: a mapping that takes three
 * budgets): the parked processors leave by themselves after two, and the
 * capture says the stop was not one instant. */
static void test_stalled_leader(void **state)
{
    (void)state;
    start_default();
    standin_reset_times();
    standin_stall("MmMapLockedPagesWithReservedMapping", 5, 150 * MS);
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, NULL, &c);
    /* (a slow host may spend the budget before the fifth batch, or even
     * waiting for the processors: then the budget ends it there) */
    assert_true(standin_faults_fired("MmMapLockedPagesWithReservedMapping") <= 1);
    assert_true(c.status == LD_STATUS_IO_TIMEOUT || c.status == LD_STATUS_TIMEOUT);
    for (uint32_t p = 1; p < 4; p++)
        assert_true(standin_max_dispatch_ns(p) <= LDN_FAILSAFE_BUDGETS * LD_NT_STOP_BUDGET_DEFAULT_NS + SLACK);
    assert_int_equal(c.file_bytes, 0);
    drop_capture(&c);
    finish();
}

/* A processor already deep into its DPC watchdog is not kept parked. */
static void test_dpc_watchdog_low(void **state)
{
    (void)state;
    standin_config sc;
    standin_config_init(&sc);
    sc.dpc_percent[3] = 30;
    start(&sc);
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, NULL, &c);
    assert_int_equal(c.status, LD_STATUS_IO_TIMEOUT);
    assert_int_equal(c.reply.stats.dpc_allowance_percent, 30);
    drop_capture(&c);
    finish();
}

/* A dump larger than the budget can copy ends cleanly, not late. */
static void test_budget_too_small(void **state)
{
    (void)state;
    start_default();
    standin_reset_times();
    ld_nt_request req;
    request_init(&req, LD_DUMP_FULL_KERNEL);
    req.stop_budget_ns = 1 * MS;
    capture c;
    run_capture(&req, NULL, &c);
    /* out of time copying, or already waiting for the processors */
    assert_true(c.status == LD_STATUS_IO_TIMEOUT || c.status == LD_STATUS_TIMEOUT);
    assert_int_equal(c.reply.stats.stop_budget_ns, 1 * MS);
    for (uint32_t p = 1; p < 4; p++)
        assert_true(standin_max_dispatch_ns(p) <= 1 * MS + SLACK);
    assert_int_equal(c.file_bytes, 0);
    drop_capture(&c);
    finish();
}

/* ---- the driver's service ---- */

static void test_request_check(void **state)
{
    (void)state;
    ld_nt_request r;
    request_init(&r, LD_DUMP_FULL_KERNEL);
    assert_int_equal(ldn_request_check(&r), LD_STATUS_SUCCESS);
    ld_nt_request x;
    x = r; x.version = 2; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.size = sizeof x - 8; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.type = 3; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.flags |= LD_FLAG_DEFER; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.add_pages = 0x80; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.nt_flags = 0x100; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.reserved = 1; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.stop_budget_ns = LD_NT_STOP_BUDGET_MAX_NS + 1; assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; strcpy(x.format, "pdf"); assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; memset(x.format, 'd', sizeof x.format); assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; memset(x.comment, 'c', sizeof x.comment); assert_int_equal(ldn_request_check(&x), LD_STATUS_INVALID_PARAMETER);
    x = r; x.format[0] = 0; assert_int_equal(ldn_request_check(&x), LD_STATUS_SUCCESS); /* dmp by default */
    x = r; x.stop_budget_ns = LD_NT_STOP_BUDGET_MAX_NS; assert_int_equal(ldn_request_check(&x), LD_STATUS_SUCCESS);
    assert_int_equal(ldn_request_check(NULL), LD_STATUS_INVALID_PARAMETER);
}

typedef struct second {
    capture c;
    ld_nt_request req;
} second;

static void *run_second(void *arg)
{
    second *s = arg;
    run_capture(&s->req, NULL, &s->c);
    return NULL;
}

/* One live dump at a time, machine-wide. */
static void test_one_at_a_time(void **state)
{
    (void)state;
    ldn_config cfg = roomy(); /* not a test of the budget: the host's speed must not matter */
    standin_config sc;
    roomy_world(&sc);
    start(&sc);
    second s;
    request_init(&s.req, LD_DUMP_MINI);
    /* the first one lingers 300 ms where it reads the ranges, then fails */
    standin_fault("MmGetPhysicalMemoryRanges", 1, false, 300 * MS);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_second, &s), 0);
    usleep(100000);
    assert_true(ldn_service_busy());
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_DEVICE_BUSY);
    assert_int_equal(c.reply.status, 0); /* no reply written: refused before any work */
    pthread_join(t, NULL);
    /* the first failed in its own way (its ranges did not come) and let go */
    assert_true(s.c.status != LD_STATUS_DEVICE_BUSY);
    assert_false(ldn_service_busy());
    drop_capture(&c);
    drop_capture(&s.c);
    standin_clear_faults();
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_SUCCESS);
    drop_capture(&c);
    finish();
}

/* Without KeCapturePersistentThreadState the dump holds the block as
 * memory does, and the reply says why. */
static void test_kdbg_not_decoded(void **state)
{
    (void)state;
    ldn_config cfg = roomy(); /* not a test of the budget: the host's speed must not matter */
    standin_config sc;
    roomy_world(&sc);
    sc.no_persistent_state = true;
    start(&sc);
    standin_pause(true);
    const standin_layout *L = standin_layout_get();
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_SUCCESS);
    assert_int_equal(c.reply.stats.kdbg_decoded, 0);
    assert_int_equal(c.reply.stats.kdbg_status, LD_STATUS_NOT_SUPPORTED);
    ld_dmp *d = open_dump(&c);
    uint8_t page[PG];
    assert_int_equal(ld_dmp_read_page(d, L->kdbg_pa / PG, page), LD_STATUS_SUCCESS);
    assert_memory_equal(page, ld_sim_page(standin_sim(), L->kdbg_pa / PG), PG);
    ld_dmp_close(d);
    drop_capture(&c);
    finish();
}

/* ---- events over the wire ---- */

static void test_events_hostile(void **state)
{
    (void)state;
    ldn_config cfg = roomy(); /* not a test of the budget: the host's speed must not matter */
    standin_config sc;
    roomy_world(&sc);
    start(&sc);
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    capture c;
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_SUCCESS);
    const uint8_t *ev = c.out + sizeof c.reply;
    size_t len = c.reply.event_bytes;
    assert_true(len > 0);
    /* every truncation is refused or read within bounds (ASan watches) */
    uint8_t *copy = malloc(len);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, ev, cut);
        ld_status st = ld_nt_events_decode(copy, cut, NULL, NULL);
        assert_true(st == LD_STATUS_SUCCESS || st == LD_STATUS_FILE_CORRUPT);
    }
    /* random corruption: never a read outside the buffer */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        memcpy(copy, ev, len);
        for (int k = 0; k < 3; k++)
            copy[(size_t)rand() % len] = (uint8_t)rand();
        ld_status st = ld_nt_events_decode(copy, len, NULL, NULL);
        assert_true(st == LD_STATUS_SUCCESS || st == LD_STATUS_FILE_CORRUPT);
    }
    free(copy);
    drop_capture(&c);
    finish();
}

/* ---- fault injection on every routine ---- */

/* Routines a capture that succeeds never calls: each is reached by
 * faulting the one named beside it. */
static const char *const reached_by[][2] = {
    {"ZwWaitForSingleObject", "ObReferenceObjectByHandle"},
};

static void check_after_fault(const char *routine, uint64_t nth, const capture *c)
{
    if (standin_corralled())
        fail_msg("%s #%llu: the machine stayed corralled", routine, (unsigned long long)nth);
    if (standin_outstanding())
        fail_msg("%s #%llu: %lld allocations leaked", routine, (unsigned long long)nth,
                 (long long)standin_outstanding());
    if (standin_violations())
        fail_msg("%s #%llu: violation: %s", routine, (unsigned long long)nth, standin_last_violation());
    if (ldn_service_busy())
        fail_msg("%s #%llu: the driver stayed busy", routine, (unsigned long long)nth);
    if (c->status != LD_STATUS_SUCCESS && c->file_bytes != 0)
        fail_msg("%s #%llu: failed (0x%08X) but left %llu bytes", routine, (unsigned long long)nth, c->status,
                 (unsigned long long)c->file_bytes);
    if (c->status == LD_STATUS_SUCCESS) {
        ld_dmp *d = NULL;
        if (ld_dmp_open(c->path, &d, NULL) != LD_STATUS_SUCCESS)
            fail_msg("%s #%llu: succeeded with an unreadable dump", routine, (unsigned long long)nth);
        ld_dmp_close(d);
    }
}

static void test_fault_injection(void **state)
{
    (void)state;
    ldn_config cfg = roomy(); /* not a test of the budget: the host's speed must not matter */
    standin_config sc;
    roomy_world(&sc);
    start(&sc);
    ld_nt_request req;
    request_init(&req, LD_DUMP_MINI);
    req.stop_budget_ns = LD_NT_STOP_BUDGET_MAX_NS;
    capture c;
    standin_reset_calls();
    run_capture(&req, &cfg, &c);
    assert_int_equal(c.status, LD_STATUS_SUCCESS);
    drop_capture(&c);
    /* A fault that keeps a processor away (its DPC never queued) costs the
     * whole corral timeout: a short one for the faulted captures. */
    req.corral_timeout_ns = 300 * MS;
    const char *const *routines = standin_routines();
    uint64_t baseline[64];
    size_t count = 0;
    for (; routines[count]; count++)
        baseline[count] = standin_calls(routines[count]);
    unsigned runs = 0, failed = 0;
    for (size_t r = 0; r < count; r++) {
        const char *name = routines[r];
        uint64_t calls = baseline[r];
        const char *via = NULL;
        for (size_t k = 0; k < sizeof reached_by / sizeof reached_by[0]; k++)
            if (!strcmp(reached_by[k][0], name))
                via = reached_by[k][1];
        if (!calls && !via)
            fail_msg("%s: never called by a capture, so never faulted", name);
        uint64_t picks[4] = {1, 2, calls / 2, calls};
        for (int i = 0; i < 4; i++) {
            uint64_t nth = picks[i];
            if (!nth || (i && nth <= picks[i - 1]) || (!calls && i) || (calls && nth > calls))
                continue;
            standin_reset_calls();
            if (via)
                standin_fault(via, 1, false, 0);
            standin_fault(name, via ? 1 : nth, false, 0);
            run_capture(&req, &cfg, &c);
            standin_clear_faults();
            /* spin loops call some routines a varying number of times:
             * a later call number may not come in this run */
            if (!standin_faults_fired(name) && (nth == 1 || via || standin_calls(name) >= nth))
                fail_msg("%s #%llu: the fault never fired", name, (unsigned long long)nth);
            check_after_fault(name, nth, &c);
            runs++;
            failed += c.status != LD_STATUS_SUCCESS;
            drop_capture(&c);
        }
    }
    printf("# fault injection: %zu routines, %u faulted captures, %u of them failed cleanly, the rest went on\n", count,
           runs, failed);
    finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_request_check, teardown),
        cmocka_unit_test_teardown(test_classification, teardown),
        cmocka_unit_test_teardown(test_quiesce_contexts, teardown),
        cmocka_unit_test_teardown(test_full_capture_roundtrip, teardown),
        cmocka_unit_test_teardown(test_mini_capture_default_budget, teardown),
        cmocka_unit_test_teardown(test_consistent_under_workload, teardown),
        cmocka_unit_test_teardown(test_stalled_processor, teardown),
        cmocka_unit_test_teardown(test_stalled_leader, teardown),
        cmocka_unit_test_teardown(test_dpc_watchdog_low, teardown),
        cmocka_unit_test_teardown(test_budget_too_small, teardown),
        cmocka_unit_test_teardown(test_one_at_a_time, teardown),
        cmocka_unit_test_teardown(test_kdbg_not_decoded, teardown),
        cmocka_unit_test_teardown(test_events_hostile, teardown),
        cmocka_unit_test_teardown(test_fault_injection, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
