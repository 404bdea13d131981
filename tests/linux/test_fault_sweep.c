/* A fault sweep over the Linux backend on synthetic /proc files: for every
 * HAL operation and every k up to the number of calls one capture makes
 * (plus one past it), the fault wrapper fails the kth call and a whole
 * capture runs through the engine into a .dmp file. Each case checks:
 *  - the engine returns the status the HAL gave, or, where the operation
 *    is optional, takes the fallback docs/architecture.md gives it (the
 *    dump goes on) — and the result carries the same status;
 *  - user space is never left frozen: the stand-in cgroup is thawed and
 *    the process the quiesce stops (SIGSTOP) runs again;
 *  - nothing leaks: the wrapper's platform counts every allocation and
 *    lock back to zero once the engine is gone;
 *  - a failed capture leaves no file, not even the .partial one; a
 *    successful one leaves a 0600 .dmp that reads back, every page equal
 *    to the synthetic RAM. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "livedump/livedump.h"
#include "livedump/fault.h"
#include "synthetic_proc.h"

static synth_proc sp;
static int child = -1; /* the process each quiesce stops */

static int setup(void **state)
{
    (void)state;
    if (!synth_proc_create(&sp))
        return -1;
    child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        for (;;)
            pause();
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    synth_proc_destroy(&sp);
    return 0;
}

static char proc_state_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p ? p[2] : 0;
}

/* The result of one capture, and the calls it made of each operation. */
typedef struct run {
    ld_status status;
    ld_result result;
    uint64_t calls[LD_HAL_OP_COUNT];
} run;

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A successful capture's file: private, valid, and every page the dump
 * holds is the machine's. Returns the pages it holds. */
static uint64_t check_dump(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ld_dmp *d = NULL;
    ld_error err;
    if (ld_dmp_open(path, &d, &err) != LD_STATUS_SUCCESS)
        fail_msg("%s does not read back: %s", path, err.message);
    uint64_t problems = 1;
    assert_int_equal(ld_dmp_verify(d, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    assert_int_equal(problems, 0);
    uint8_t got[SYNTH_PAGE], want[SYNTH_PAGE];
    uint64_t pages = 0;
    for (uint64_t pfn = ld_dmp_next_page(d, 0); pfn != UINT64_MAX; pfn = ld_dmp_next_page(d, pfn + 1)) {
        assert_true(synth_is_ram(pfn));
        assert_int_equal(ld_dmp_read_page(d, pfn, got), LD_STATUS_SUCCESS);
        synth_page(pfn, want);
        assert_memory_equal(got, want, SYNTH_PAGE);
        pages++;
    }
    for (uint64_t pfn = SYNTH_IMAGE_FIRST; pfn < SYNTH_IMAGE_FIRST + SYNTH_IMAGE_PAGES; pfn++)
        assert_true(ld_dmp_page_present(d, pfn));
    ld_dmp_close(d);
    return pages;
}

/* One capture with the nth call of op failing with `fail` (op ==
 * LD_HAL_OP_COUNT: nothing fails), and the checks every case shares. */
static void capture(ld_hal_op op, uint64_t nth, ld_status fail, run *out)
{
    memset(out, 0, sizeof *out);
    ld_linux_config cfg;
    synth_proc_config(&sp, &cfg);
    cfg.stop_pids = &child;
    cfg.stop_pid_count = 1;
    ld_linux *lx = NULL;
    ld_error lerr;
    if (ld_linux_open(&cfg, &lx, &lerr) != LD_STATUS_SUCCESS)
        fail_msg("open failed: %s", lerr.message);
    ld_fault_hal *fh = NULL;
    assert_int_equal(ld_fault_hal_create(ld_linux_hal(lx), NULL, &fh), LD_STATUS_SUCCESS);
    ld_engine *e = NULL;
    assert_int_equal(ld_engine_create(ld_fault_hal_get(fh), NULL, &e), LD_STATUS_SUCCESS);
    int64_t engine_allocs = ld_fault_outstanding_allocs(fh);
    ld_fault_clear(fh); /* count the capture's calls only: k is counted from here */
    if (op != LD_HAL_OP_COUNT) {
        ld_fault f = {.op = op, .nth = nth, .status = fail};
        assert_int_equal(ld_fault_inject(fh, &f), LD_STATUS_SUCCESS);
    }

    char path[400], partial[300];
    snprintf(path, sizeof path, "%s/case.dmp", sp.dir);
    assert_int_equal(ld_sink_file_partial_name("case.dmp", partial, sizeof partial), LD_STATUS_SUCCESS);
    char partial_path[720];
    snprintf(partial_path, sizeof partial_path, "%s/%s", sp.dir, partial);
    ld_sink *sink = NULL;
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    out->status = ld_engine_capture(e, &req, ld_format_dmp(), sink, &out->result);
    assert_int_equal(out->result.status, out->status);

    /* user space runs again, whatever failed */
    assert_int_equal(synth_cgroup_freeze(&sp), '0');
    assert_int_not_equal(proc_state_of(child), 'T');
    /* the capture gave back all it took; the engine all it holds */
    assert_int_equal(ld_fault_outstanding_allocs(fh), engine_allocs);
    for (int i = 0; i < LD_HAL_OP_COUNT; i++)
        out->calls[i] = ld_fault_calls(fh, (ld_hal_op)i);
    ld_engine_destroy(e);
    assert_int_equal(ld_fault_outstanding_allocs(fh), 0);
    ld_fault_hal_destroy(fh);
    ld_linux_close(lx);

    assert_false(exists(partial_path));
    if (out->status == LD_STATUS_SUCCESS) {
        assert_true(check_dump(path) > 0);
        assert_int_equal(unlink(path), 0);
    } else {
        assert_false(exists(path));
    }
}

/* What a capture must return when a call of op fails with `fail`: the
 * status itself where the operation is needed; where it is optional, the
 * documented fallback, a dump all the same. */
static void check_outcome(ld_hal_op op, uint64_t nth, ld_status fail, const run *r)
{
    ld_status want;
    switch (op) {
    case LD_HAL_OP_DIRTY_START:
    case LD_HAL_OP_DIRTY_FETCH:
    case LD_HAL_OP_DIRTY_STOP:  /* mirroring ends: the quiesce copies every page */
    case LD_HAL_OP_MEM_STATUS:  /* no memory-pressure check */
    case LD_HAL_OP_SYSTEM_INFO: /* those header fields are 0 */
        want = LD_STATUS_SUCCESS;
        break;
    case LD_HAL_OP_CPU_COUNT: /* a count fails as 0: a machine without processors */
        want = LD_STATUS_UNSUCCESSFUL;
        break;
    case LD_HAL_OP_PLATFORM_ALLOC:
        /* The platform's alloc returns NULL: NO_MEMORY for the engine's
         * own structures; INSUFFICIENT_RESOURCES when it is the dump
         * buffers (without HAL pools they come from the platform, and too
         * few for the required pages is a pool run dry, event 113). */
        want = r->status == LD_STATUS_INSUFFICIENT_RESOURCES ? r->status : LD_STATUS_NO_MEMORY;
        break;
    default:
        want = fail;
        break;
    }
    if (r->status != want)
        fail_msg("%s call %llu failing: capture returned 0x%08x, expected 0x%08x", ld_hal_op_name(op),
                 (unsigned long long)nth, r->status, want);
    if (op == LD_HAL_OP_DIRTY_START)
        assert_false(r->result.mirrored);
    if (op == LD_HAL_OP_MEM_STATUS)
        assert_int_equal(r->result.available_bytes, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_sweep(void **state)
{
    (void)state;
    const ld_status fail = LD_STATUS_IO_DEVICE_ERROR;
    uint64_t t0 = now_ns();
    run base;
    capture(LD_HAL_OP_COUNT, 0, 0, &base);
    assert_int_equal(base.status, LD_STATUS_SUCCESS);
    assert_true(base.result.mirrored);
    /* What the backend has is called; what it lacks is absent, not called. */
    static const ld_hal_op absent[] = {LD_HAL_OP_POOL_OPEN, LD_HAL_OP_POOL_ALLOC, LD_HAL_OP_POOL_FREE,
                                       LD_HAL_OP_HV_SIZE,   LD_HAL_OP_HV_PREPARE, LD_HAL_OP_HV_COLLECT,
                                       LD_HAL_OP_IPT_SIZE,  LD_HAL_OP_IPT_COLLECT};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_int_equal(base.calls[absent[i]], 0);

    uint64_t cases = 0, failed = 0, fallbacks = 0;
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        uint64_t n = base.calls[op];
        bool present = true;
        for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
            present = present && (int)absent[i] != op;
        if (present && n == 0)
            fail_msg("%s: never called by a capture", ld_hal_op_name((ld_hal_op)op));
        print_message("%-16s %3llu call(s)\n", ld_hal_op_name((ld_hal_op)op), (unsigned long long)n);
        for (uint64_t k = 1; k <= n; k++) {
            run r;
            capture((ld_hal_op)op, k, fail, &r);
            check_outcome((ld_hal_op)op, k, fail, &r);
            cases++;
            failed += r.status != LD_STATUS_SUCCESS;
            fallbacks += r.status == LD_STATUS_SUCCESS;
        }
        /* One past the last call: the rule never fires, and the capture
         * makes the same calls as the clean one (the sweep missed none). */
        if (n) {
            run r;
            capture((ld_hal_op)op, n + 1, fail, &r);
            assert_int_equal(r.status, LD_STATUS_SUCCESS);
            assert_int_equal(r.calls[op], n);
            cases++;
        }
    }
    print_message("fault sweep: %llu cases (%llu failed captures, %llu fallbacks to a whole dump) in %llu ms\n",
                  (unsigned long long)cases, (unsigned long long)failed, (unsigned long long)fallbacks,
                  (unsigned long long)((now_ns() - t0) / 1000000u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
