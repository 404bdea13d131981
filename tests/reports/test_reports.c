/* The report storage: layout and names, secure folders (symlinks, foreign
 * modes, traversal in component names), throttling across restarts with an
 * injected clock, a corrupt throttling state, retention, disk full, and
 * deferred writes into the reports. Each case checks the events. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/runtime.h"

#include "evlog.h"
#include "harness.h"
#include "livedump/reports.h"

/* 2025-01-02 03:04:05 UTC */
#define T0 1735787045ull
#define HOUR 3600ull

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static char base[64];
static char root[128];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/livedump-reports-XXXXXX");
    if (!mkdtemp(base))
        return -1;
    snprintf(root, sizeof root, "%s/LiveKernelReports", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd);
}

/* Each test starts with no reports folder. */
static int fresh(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", base, base);
    fake_now = T0;
    return system(cmd);
}

typedef struct fixture {
    harness h;
    evlog *log;
    ld_reports *reports;
    ld_settings settings;
    ld_error err; /* of the last take() */
} fixture;

static ld_status open_reports(fixture *f, ld_error *err)
{
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = root;
    o.settings = &f->settings;
    o.clock = fake_clock;
    return ld_reports_open(&o, &f->reports, err);
}

static void start(fixture *f)
{
    memset(f, 0, sizeof *f);
    ld_settings_init(&f->settings);
    ld_sim_config cfg;
    harness_config(&cfg);
    harness_start(&f->h, &cfg, true);
    f->log = evlog_new();
    assert_int_equal(ld_engine_subscribe(f->h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, f->log), LD_STATUS_SUCCESS);
}

/* A process restart, as far as the reports go: close and open again. */
static void reopen(fixture *f)
{
    ld_reports_close(f->reports);
    f->reports = NULL;
    ld_error err;
    assert_int_equal(open_reports(f, &err), LD_STATUS_SUCCESS);
}

static void stop(fixture *f)
{
    ld_reports_close(f->reports);
    harness_stop(&f->h);
    evlog_free(f->log);
}

static ld_status take(fixture *f, const char *component, ld_dump_type type, char *path, size_t cap)
{
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = type;
    return ld_reports_capture(f->reports, f->h.engine, component, &req, ld_format_raw(), NULL, path, cap, &f->err);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 0777;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- options ---- */

/* The options carry their version: one the library does not know, or an
 * unknown flag, is refused before anything is created. */
static void test_options_checked(void **state)
{
    (void)state;
    ld_reports_options o;
    ld_reports_options_init(&o);
    assert_int_equal(o.version, LD_REPORTS_OPTIONS_VERSION);
    o.root = root;
    o.clock = fake_clock;
    ld_reports *r = (ld_reports *)1;
    const uint32_t unknown[] = {0, LD_REPORTS_OPTIONS_VERSION + 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ld_error err;
        o.version = unknown[i];
        assert_int_equal(ld_reports_open(&o, &r, &err), LD_STATUS_INVALID_PARAMETER);
        assert_null(r);
        assert_non_null(strstr(err.message, "version"));
    }
    o.version = LD_REPORTS_OPTIONS_VERSION;
    o.flags = 0x80;
    ld_error err;
    assert_int_equal(ld_reports_open(&o, &r, &err), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "flags"));
    assert_false(exists(root));
    o.flags = 0;
    assert_int_equal(ld_reports_open(&o, &r, &err), LD_STATUS_SUCCESS);
    assert_true(exists(root));
    ld_reports_close(r);
}

/* ---- layout ---- */

static void test_layout_and_names(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    f.settings.full_live_reports_max = 10;
    ld_error err;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_null(ld_reports_state_problem(f.reports));
    /* The engine created the root itself, 0700. */
    assert_int_equal(mode_of(root), 0700);
    char path[512], want[512];
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/WATCHDOG-20250102-030405.raw", root);
    assert_string_equal(path, want);
    assert_int_equal(mode_of(path), 0600);
    /* Same second: a new name, the first file untouched. */
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/WATCHDOG-20250102-030405-1.raw", root);
    assert_string_equal(path, want);
    /* Small dumps go in the component's folder, created 0700. */
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/USBHUB3/USBHUB3-20250102-030405.raw", root);
    assert_string_equal(path, want);
    snprintf(want, sizeof want, "%s/USBHUB3", root);
    assert_int_equal(mode_of(want), 0700);
    fake_now = T0 + 86400 + 59;
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_KERNEL_STACKS, path, sizeof path), LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/USBHUB3/USBHUB3-20250103-030504.raw", root);
    assert_string_equal(path, want);
    /* No format named: a .dmp file, as Windows writes live kernel reports. */
    ld_capture_request dreq;
    ld_capture_request_init(&dreq);
    dreq.type = LD_DUMP_MINI;
    fake_now = T0 + 2 * 86400;
    assert_int_equal(ld_reports_capture(f.reports, f.h.engine, "NETADAPTER", &dreq, NULL, NULL, path, sizeof path, NULL),
                     LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/NETADAPTER/NETADAPTER-20250104-030405.dmp", root);
    assert_string_equal(path, want);
    FILE *fp = fopen(path, "rb");
    char magic[8] = "";
    assert_non_null(fp);
    assert_int_equal(fread(magic, 1, 8, fp), 8);
    fclose(fp);
    assert_memory_equal(magic, "PAGEDU64", 8);
    assert_int_equal(unlink(path), 0);
    snprintf(want, sizeof want, "%s/NETADAPTER", root);
    assert_int_equal(rmdir(want), 0);
    /* The listing, oldest first, parses component and time back. */
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 4);
    int full = 0;
    for (size_t i = 0; i < n; i++) {
        full += v[i].full;
        assert_string_equal(v[i].component, v[i].full ? "WATCHDOG" : "USBHUB3");
        assert_true(i == 0 || v[i - 1].time <= v[i].time);
        assert_int_equal(v[i].time, i < 3 ? T0 : T0 + 86400 + 59);
        assert_true(v[i].bytes > 0);
    }
    assert_int_equal(full, 2);
    assert_false(v[3].full);
    ld_reports_list_free(v);
    /* No temporary file is left anywhere; the state file is 0600. */
    assert_int_equal(count_files(root), 5); /* 2 dumps, USBHUB3/, .LastFullLiveReport and its lock */
    char sp[256];
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    assert_int_equal(mode_of(sp), 0600);
    stop(&f);
}

/* ---- refused folders and names ---- */

static void test_refuses_unsafe_folders(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char target[256];
    snprintf(target, sizeof target, "%s/elsewhere", base);
    assert_int_equal(mkdir(target, 0700), 0);

    /* Root is a symlink. */
    assert_int_equal(symlink(target, root), 0);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_ACCESS_DENIED);
    assert_non_null(strstr(err.message, "symlink"));
    assert_int_equal(count_files(target), 0);
    unlink(root);
    /* Root writable by others. */
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(chmod(root, 0777), 0);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_ACCESS_DENIED);
    assert_non_null(strstr(err.message, "writable by others"));
    assert_int_equal(chmod(root, 0770), 0);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(chmod(root, 0700), 0);
    /* Root is a file. */
    rmdir(root);
    FILE *fp = fopen(root, "w");
    fclose(fp);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_ACCESS_DENIED);
    assert_non_null(strstr(err.message, "not a folder"));
    unlink(root);

    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    /* A component folder planted as a symlink: refused, target untouched. */
    char comp[256];
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(symlink(target, comp), 0);
    char path[512];
    size_t before = evlog_count(f.log, 1);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(count_files(target), 0);
    assert_int_equal(evlog_count(f.log, 1), before); /* refused before any capture */
    unlink(comp);
    /* A component folder writable by others: refused. */
    assert_int_equal(mkdir(comp, 0700), 0);
    assert_int_equal(chmod(comp, 0757), 0);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(count_files(comp), 0);
    stop(&f);
}

/* A symlink anywhere in the reports path is refused, not only as its last
 * component; folders swapped for symlinks after the open are never
 * followed (everything is done relative to the folders opened). */
static void test_refuses_symlinked_parents(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char real[256], linked[256], deep[320], target[256], moved[256];
    snprintf(real, sizeof real, "%s/real", base);
    snprintf(linked, sizeof linked, "%s/linked", base);
    snprintf(deep, sizeof deep, "%s/LiveKernelReports", linked);
    snprintf(target, sizeof target, "%s/elsewhere", base);
    snprintf(moved, sizeof moved, "%s/moved", base);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(real, linked), 0);
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = deep;
    o.settings = &f.settings;
    o.clock = fake_clock;
    assert_int_equal(ld_reports_open(&o, &f.reports, &err), LD_STATUS_ACCESS_DENIED);
    assert_non_null(strstr(err.message, "symlink"));
    assert_non_null(strstr(err.message, linked));
    assert_int_equal(count_files(real), 0);

    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    char path[512], comp[256];
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_SUCCESS);
    /* The component folder replaced by a symlink after the open. */
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(rename(comp, moved), 0);
    assert_int_equal(symlink(target, comp), 0);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(count_files(target), 0);
    /* The root itself moved away and replaced by a symlink: the dump goes
     * into the folder that was opened, never through the symlink. */
    char old_root[256];
    snprintf(old_root, sizeof old_root, "%s/old-root", base);
    assert_int_equal(rename(root, old_root), 0);
    assert_int_equal(symlink(target, root), 0);
    (void)take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path);
    assert_int_equal(count_files(target), 0);
    stop(&f);
}

/* A root or component folder owned by another user (nobody, 65534) is
 * refused with a clear error, and nothing is written into it. Needs root
 * to give a folder away. */
static void test_refuses_foreign_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    fixture f;
    start(&f);
    ld_error err;
    char path[512] = "x";
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(chown(root, 65534, 65534), 0);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_ACCESS_DENIED);
    assert_null(f.reports);
    assert_non_null(strstr(err.message, root));
    assert_non_null(strstr(err.message, "owned by another user"));
    assert_int_equal(count_files(root), 0);
    /* Owned by root but another group: still ours. */
    assert_int_equal(chown(root, 0, 65534), 0);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);

    /* A component folder given away after the root was opened. */
    char comp[256];
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(mkdir(comp, 0700), 0);
    assert_int_equal(chown(comp, 65534, 0), 0);
    size_t before = evlog_count(f.log, 1);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    assert_string_equal(path, "");
    assert_int_equal(count_files(comp), 0);
    assert_int_equal(evlog_count(f.log, 1), before);
    /* And its reports are not listed (nor pruned). */
    char planted[600];
    snprintf(planted, sizeof planted, "%s/USBHUB3-20250101-000000.raw.partial", comp);
    FILE *fp = fopen(planted, "w");
    assert_non_null(fp);
    fclose(fp);
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 0);
    ld_reports_list_free(v);
    assert_int_equal(ld_reports_prune(f.reports, NULL), LD_STATUS_SUCCESS);
    assert_true(exists(planted));
    /* The root given away while open: the next capture is refused. */
    assert_int_equal(chown(root, 65534, 0), 0);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(evlog_count(f.log, 1), before);
    assert_int_equal(chown(root, 0, 0), 0);
    stop(&f);
}

static void test_component_names(void **state)
{
    (void)state;
    assert_true(ld_component_name_valid("WATCHDOG"));
    assert_true(ld_component_name_valid("USBHUB3"));
    assert_true(ld_component_name_valid("ABCDEFGHIJKLMNOP")); /* 16 */
    assert_true(ld_component_name_valid("my_agent"));
    static const char *const bad[] = {"", "ABCDEFGHIJKLMNOPQ", "..", ".", "../etc", "a/b", "/abs", "A-B",
                                      "WATCH DOG", "tab\tx", "nl\n", "dot.dot", "\x7f", "caf\xc3\xa9"};
    fixture f;
    start(&f);
    ld_error err;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ld_component_name_valid(bad[i]));
        char path[512] = "x";
        assert_int_equal(take(&f, bad[i], LD_DUMP_MINI, path, sizeof path), LD_STATUS_INVALID_PARAMETER);
        assert_string_equal(path, "");
        assert_int_equal(ld_reports_admit(f.reports, bad[i], LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_INVALID_PARAMETER);
    }
    assert_false(ld_component_name_valid(NULL));
    /* Nothing was created: only the state file and its lock are in the root, and the
     * base folder has only the root. */
    assert_int_equal(count_files(root), 2);
    assert_int_equal(count_files(base), 1);
    assert_int_equal(evlog_count(f.log, 1), 0);
    stop(&f);
}

/* ---- throttling ---- */

static void assert_throttled(fixture *f, const char *component, const char *threshold_param, uint64_t hours,
                             uint64_t last, uint64_t next)
{
    char path[512];
    evlog_clear(f->log);
    assert_int_equal(take(f, component, LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_THROTTLED);
    assert_string_equal(path, "");
    const evlog_entry *e6 = evlog_last(f->log, 6);
    assert_non_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "throttled"));
    assert_int_equal(evlog_param(e6, threshold_param), hours);
    assert_int_equal(evlog_param(e6, "LastFullLiveReportUnixTime"), last);
    assert_int_equal(evlog_param(e6, "NextDumpAllowedUnixTime"), next);
    assert_int_equal(evlog_param(e6, "NowUnixTime"), fake_now);
    assert_int_equal(evlog_u64(evlog_last(f->log, 2), "NTStatus"), LD_STATUS_THROTTLED);
    assert_int_equal(evlog_count(f->log, 104), 0); /* the machine was not stopped */
}

static void test_throttling_across_restarts(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.full_live_reports_max = 10;
    ld_error err;
    char path[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);

    /* An hour later, in a new process: any component waits for the system
     * threshold (120 h). */
    fake_now = T0 + HOUR;
    reopen(&f);
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    /* Small dumps are not throttled. */
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_KERNEL_STACKS, path, sizeof path), LD_STATUS_SUCCESS);

    /* One second before the system threshold: still refused; at it: allowed
     * for another component, but WATCHDOG waits for its own (168 h). */
    fake_now = T0 + 120 * HOUR - 1;
    reopen(&f);
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
    fake_now = T0 + 121 * HOUR;
    reopen(&f);
    assert_throttled(&f, "WATCHDOG", "ComponentThrottleThresholdHours", 168, T0, T0 + 168 * HOUR);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    /* That dump restarted the system clock of throttling. */
    fake_now = T0 + 170 * HOUR;
    reopen(&f);
    assert_throttled(&f, "WATCHDOG", "SystemThrottleThresholdHours", 120, T0 + 121 * HOUR, T0 + 241 * HOUR);

    /* Both thresholds 0: time throttling is off. */
    ld_reports_close(f.reports);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    stop(&f);
}

static void write_raw(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static void test_corrupt_state_is_rebuilt(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512], sp[256];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    char good[4096];
    snprintf(good, sizeof good, "%s", read_all(sp));
    assert_non_null(strstr(good, "component WATCHDOG 1735787045\n"));

    /* Each corruption is reported and rebuilt from the dump present, so
     * the throttle still holds: never trusted, never lost. */
    char edited[4096];
    snprintf(edited, sizeof edited, "%s", good);
    char *digit = strstr(edited, "system 17") + 7;
    *digit = '0'; /* "system 0735..." : an edited time, checksum mismatch */
    char truncated[4096];
    snprintf(truncated, sizeof truncated, "%s", good);
    *strstr(truncated, "end ") = 0;
    const char *bodies[] = {edited, truncated, "garbage\n", "", "livedump-throttle 1\nsystem x\nend 0\n"};
    const char *reasons[] = {"checksum mismatch", "no checksum", "no checksum", "no checksum", "checksum mismatch"};
    fake_now = T0 + HOUR;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        write_raw(sp, bodies[i]);
        reopen(&f);
        const char *problem = ld_reports_state_problem(f.reports);
        assert_non_null(problem);
        print_message("%s\n", problem);
        assert_non_null(strstr(problem, reasons[i]));
        assert_non_null(strstr(problem, "rebuilt"));
        assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
        /* The first capture after the open also says so as event 6. */
        const evlog_entry *note = evlog_nth(f.log, 6, 0);
        assert_non_null(strstr(evlog_str(note, "LiveDumpEventDescription"), reasons[i]));
        assert_non_null(strstr(evlog_str(note, "LiveDumpEventDescription"), "rebuilt"));
        assert_int_equal(evlog_param(note, "ThrottleStateRebuilt"), 1);
        assert_int_equal(evlog_param(note, "LastFullLiveReportUnixTime"), T0);
        assert_int_equal(evlog_count(f.log, 6), 2);
        /* Once: the next capture has only its throttling event. */
        assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
        assert_int_equal(evlog_count(f.log, 6), 1);
        /* The rebuilt file is sound again. */
        reopen(&f);
        assert_null(ld_reports_state_problem(f.reports));
        assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
        assert_int_equal(evlog_count(f.log, 6), 1);
    }
    /* A symlink in its place is not followed, and is replaced. */
    char target[256];
    snprintf(target, sizeof target, "%s/target", base);
    write_raw(target, "precious\n");
    unlink(sp);
    assert_int_equal(symlink(target, sp), 0);
    reopen(&f);
    assert_non_null(ld_reports_state_problem(f.reports));
    assert_string_equal(read_all(target), "precious\n");
    struct stat st;
    assert_int_equal(lstat(sp, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* A deleted state file is rebuilt silently from the dumps present. */
    unlink(sp);
    reopen(&f);
    assert_null(ld_reports_state_problem(f.reports));
    assert_int_equal(ld_reports_admit(f.reports, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    /* A time in the future (clock set back) is clamped to now. */
    fake_now = T0 - 1000 * HOUR;
    reopen(&f);
    ld_admission why;
    assert_int_equal(ld_reports_admit(f.reports, "WATCHDOG", LD_DUMP_FULL_KERNEL, &why), LD_STATUS_THROTTLED);
    assert_int_equal(why.param_value[2], fake_now + 168 * HOUR);
    stop(&f);
}

/* ---- retention ---- */

static void test_retention(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    f.settings.full_live_reports_max = 2;
    ld_error err;
    char path[512], first[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, first, sizeof first), LD_STATUS_SUCCESS);
    fake_now++;
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    assert_true(exists(first));
    fake_now++;
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    /* The third full dump landed: the oldest went, and event 6 says so. */
    assert_false(exists(first));
    assert_true(exists(path));
    const evlog_entry *e6 = evlog_last(f.log, 6);
    assert_non_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "WATCHDOG-20250102-030405.raw"));
    assert_int_equal(evlog_param(e6, "FullLiveReportsMax"), 2);
    assert_int_equal(evlog_param(e6, "ReportUnixTime"), T0);
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].time, T0 + 1);
    ld_reports_list_free(v);

    /* AlwaysKeepMemoryDump: nothing is deleted. */
    ld_reports_close(f.reports);
    f.settings.always_keep_memory_dump = 1;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    fake_now++;
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 3);
    ld_reports_list_free(v);

    /* Small dumps: kept, unless DeleteLiveMiniDumps keeps the newest only. */
    for (int i = 0; i < 3; i++) {
        fake_now++;
        assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_SUCCESS);
    }
    char comp[256];
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(count_files(comp), 3);

    /* Prune with a lower limit and DeleteLiveMiniDumps: oldest full dumps
     * and older small dumps go. */
    ld_reports_close(f.reports);
    f.settings.always_keep_memory_dump = 0;
    f.settings.full_live_reports_max = 1;
    f.settings.delete_live_mini_dumps = 1;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    uint32_t deleted = 0;
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_SUCCESS);
    assert_int_equal(deleted, 2 + 2);
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    assert_true(v[0].full && v[0].time == T0 + 3);
    assert_true(!v[1].full && v[1].time == T0 + 6);
    ld_reports_list_free(v);
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_SUCCESS);
    assert_int_equal(deleted, 0);
    /* Files that are not reports are never touched. */
    char other[256];
    snprintf(other, sizeof other, "%s/notes.txt", root);
    write_raw(other, "keep\n");
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_SUCCESS);
    assert_true(exists(other));

    /* FullLiveReportsMax 0: full dumps are not taken (event 6 says why). */
    ld_reports_close(f.reports);
    f.settings.full_live_reports_max = 0;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_ACCESS_DENIED);
    e6 = evlog_last(f.log, 6);
    assert_int_equal(evlog_param(e6, "FullLiveReportsMax"), 0);
    assert_int_equal(evlog_u64(evlog_last(f.log, 2), "NTStatus"), LD_STATUS_ACCESS_DENIED);
    stop(&f);
}

/* Retention goes by the order the reports landed, never by the time in
 * their names, and never deletes the dump that just landed: three full
 * dumps of one component in one second (the third reuses the name the
 * first freed, which sorts before "-1"), the same for small dumps with
 * DeleteLiveMiniDumps, and the path returned is always there. */
static void test_retention_same_second(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    f.settings.full_live_reports_max = 1;
    f.settings.delete_live_mini_dumps = 1;
    ld_error err;
    char p1[512], p2[512], p3[512], want[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, p1, sizeof p1), LD_STATUS_SUCCESS);
    assert_true(exists(p1));
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, p2, sizeof p2), LD_STATUS_SUCCESS);
    snprintf(want, sizeof want, "%s/WATCHDOG-20250102-030405-1.raw", root);
    assert_string_equal(p2, want);
    assert_true(exists(p2));
    assert_false(exists(p1));
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, p3, sizeof p3), LD_STATUS_SUCCESS);
    assert_string_equal(p3, p1); /* the freed name again */
    assert_true(exists(p3));
    assert_false(exists(p2));
    /* Event 6 names the dump deleted, not the one that landed. */
    assert_int_equal(evlog_count(f.log, 6), 1);
    assert_non_null(strstr(evlog_str(evlog_last(f.log, 6), "LiveDumpEventDescription"), "030405-1.raw"));
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].path, p3);
    ld_reports_list_free(v);
    /* The order survives a restart: a fourth dump deletes the third. */
    reopen(&f);
    char p4[512];
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, p4, sizeof p4), LD_STATUS_SUCCESS);
    assert_true(exists(p4));
    assert_false(exists(p3));

    /* Small dumps, DeleteLiveMiniDumps: the newest is the one just taken. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, p1, sizeof p1), LD_STATUS_SUCCESS);
        assert_true(exists(p1));
        char comp[256];
        snprintf(comp, sizeof comp, "%s/USBHUB3", root);
        assert_int_equal(count_files(comp), 1);
    }
    snprintf(want, sizeof want, "%s/USBHUB3/USBHUB3-20250102-030405.raw", root);
    assert_string_equal(p1, want);
    stop(&f);
}

/* A report whose name carries a later time (a clock ahead, or a rename)
 * sorts after every new dump by name: it must not make retention delete
 * each new dump. It is added to the state's order when found, after the
 * reports known then, so the next dump is newer. */
static void test_retention_future_name(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    f.settings.full_live_reports_max = 1;
    ld_error err;
    char p1[512], p2[512], p3[512], future[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "APP", LD_DUMP_FULL_KERNEL, p1, sizeof p1), LD_STATUS_SUCCESS);
    snprintf(future, sizeof future, "%s/APP-20991231-000000.raw", root);
    assert_int_equal(rename(p1, future), 0);

    fake_now = T0 + 10;
    evlog_clear(f.log);
    assert_int_equal(take(&f, "APP", LD_DUMP_FULL_KERNEL, p2, sizeof p2), LD_STATUS_SUCCESS);
    assert_true(exists(p2));
    assert_false(exists(future));
    const evlog_entry *e6 = evlog_last(f.log, 6);
    assert_non_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "APP-20991231-000000.raw"));
    assert_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "20250102-030415"));

    /* The same with a restart between, and another component. */
    assert_int_equal(rename(p2, future), 0);
    fake_now = T0 + 20;
    reopen(&f);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, p3, sizeof p3), LD_STATUS_SUCCESS);
    assert_true(exists(p3));
    assert_false(exists(future));
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].path, p3);
    assert_true(v[0].order > 0);
    ld_reports_list_free(v);
    stop(&f);
}

/* ---- cancellation ---- */

static ld_status take_deferred(fixture *f, const char *component, ld_result *r);

/* True once it has been asked `left` more times: a signal that arrives
 * mid-write. */
static bool stop_after(void *arg)
{
    int *left = arg;
    return (*left)-- <= 0;
}

static void test_cancel(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    ld_error err;
    char old[512], path[512] = "x";
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "OLD", LD_DUMP_FULL_KERNEL, old, sizeof old), LD_STATUS_SUCCESS);
    f.settings.system_throttle_hours = 120;
    ld_reports_close(f.reports);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    fake_now = T0 + 200 * HOUR;
    int left = 3;
    ld_reports_set_cancel(f.reports, stop_after, &left);
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_CANCELLED);
    assert_string_equal(path, "");
    assert_true(left < 0); /* asked during the write */
    assert_int_equal(evlog_u64(evlog_last(f.log, 2), "NTStatus"), LD_STATUS_CANCELLED);
    /* Nothing but the old dump, and nothing recorded: retention did not run. */
    assert_int_equal(count_files(root), 3);
    assert_true(exists(old));
    reopen(&f);
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);

    /* Already stopped: no capture starts at all. */
    left = 0;
    ld_reports_set_cancel(f.reports, stop_after, &left);
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_MINI, path, sizeof path), LD_STATUS_CANCELLED);
    assert_int_equal(evlog_count(f.log, 1), 0);

    /* A held dump's write stopped: no file, the dump still held. */
    ld_reports_set_cancel(f.reports, NULL, NULL);
    ld_result r;
    assert_int_equal(take_deferred(&f, "WATCHDOG", &r), LD_STATUS_SUCCESS);
    left = 2;
    ld_reports_set_cancel(f.reports, stop_after, &left);
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", r.deferred, ld_format_raw(), NULL,
                                               path, sizeof path, NULL),
                     LD_STATUS_CANCELLED);
    assert_true(ld_engine_holds(f.h.engine, r.deferred));
    assert_int_equal(count_files(root), 3);
    ld_reports_set_cancel(f.reports, NULL, NULL);
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", r.deferred, ld_format_raw(), NULL,
                                               path, sizeof path, NULL),
                     LD_STATUS_SUCCESS);
    assert_true(exists(path));
    stop(&f);
}

/* ---- the throttling state when the disk is full ---- */

/* Saving the state ends with renameat onto .LastFullLiveReport: this
 * test's own renameat fails it with ENOSPC once `state_saves_left` more
 * saves went through (-1: never). The library is linked in statically, so
 * its call comes here. */
static int state_saves_left = -1;
static int state_saves_seen;

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    if (!strcmp(newpath, ".LastFullLiveReport")) {
        state_saves_seen++;
        if (state_saves_left == 0) {
            errno = ENOSPC;
            return -1;
        }
        if (state_saves_left > 0)
            state_saves_left--;
    }
    int (*real)(int, const char *, int, const char *) =
        (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    return real(olddirfd, oldpath, newdirfd, newpath);
}

static void test_state_disk_full(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512] = "x", sp[256];
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);

    /* The state cannot be saved before the capture: no dump is taken (the
     * machine is not stopped), the error says so, nothing is recorded. */
    state_saves_left = 0;
    state_saves_seen = 0;
    evlog_clear(f.log);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_DISK_FULL);
    state_saves_left = -1;
    assert_true(state_saves_seen > 0);
    assert_string_equal(path, "");
    assert_int_equal(count_files(root), 2); /* the state and its lock */
    assert_int_equal(f.err.status, LD_STATUS_DISK_FULL);
    assert_non_null(strstr(f.err.message, "no dump was taken"));
    assert_non_null(strstr(evlog_str(evlog_last(f.log, 6), "LiveDumpEventDescription"), "not taken"));
    assert_int_equal(evlog_u64(evlog_last(f.log, 2), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_count(f.log, 104), 0);
    fake_now = T0 + 60;
    reopen(&f);
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);

    /* Saved before the capture, not after it (the dump filled the disk):
     * the dump is kept, the capture succeeds, and a restart still counts
     * it, so the next full dump seconds later is throttled and retention
     * keeps the first. */
    state_saves_left = 1;
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    state_saves_left = -1;
    assert_int_equal(f.err.status, LD_STATUS_SUCCESS);
    assert_string_equal(f.err.message, "");
    assert_true(exists(path));
    fake_now = T0 + 90;
    reopen(&f);
    assert_null(ld_reports_state_problem(f.reports));
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0 + 60, T0 + 60 + 120 * HOUR);
    assert_true(exists(path));
    /* The state file says so by now (saved at that load). */
    assert_non_null(strstr(read_all(sp), "component WATCHDOG 1735787105\n"));

    /* The dump itself does not fit (disk full), and the state cannot be
     * put back either: the landing record names a file that is not
     * there, so a restart forgets it. Nothing is kept, nothing counted. */
    ld_reports_close(f.reports);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    f.settings.full_live_reports_max = 5;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*h)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1 << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    fake_now = T0 + 100;
    state_saves_left = 1;
    ld_status st = take(&f, "NETADAPTER", LD_DUMP_FULL_KERNEL, path, sizeof path);
    state_saves_left = -1;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, h);
    assert_int_equal(st, LD_STATUS_DISK_FULL);
    assert_non_null(strstr(read_all(sp), "landing "));
    reopen(&f);
    assert_null(strstr(read_all(sp), "landing "));
    ld_reports_close(f.reports);
    f.settings.system_throttle_hours = 120;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    ld_admission why;
    assert_int_equal(ld_reports_admit(f.reports, "NETADAPTER", LD_DUMP_FULL_KERNEL, &why), LD_STATUS_THROTTLED);
    assert_int_equal(why.param_value[1], T0 + 60); /* still the WATCHDOG dump, not the one that failed */
    stop(&f);
}

/* A state that disagrees with the dumps on disk (restored from before a
 * dump, or written by a version that lost a save) is rebuilt from them:
 * the dump it did not count counts, and it is said. */
static void test_state_missing_a_dump(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512], sp[256], before[4096];
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    snprintf(before, sizeof before, "%s", read_all(sp));
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    write_raw(sp, before);
    fake_now = T0 + HOUR;
    reopen(&f);
    const char *problem = ld_reports_state_problem(f.reports);
    assert_non_null(problem);
    assert_non_null(strstr(problem, "not counted"));
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
    assert_true(exists(path));
    reopen(&f);
    assert_null(ld_reports_state_problem(f.reports));
    stop(&f);
}

/* A version 1 state (no order, no landing records) is read as it was and
 * rewritten as version 2, the dumps present taking their places by name. */
static void test_state_version_1(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char sp[256], text[512], dump[256];
    assert_int_equal(mkdir(root, 0700), 0);
    snprintf(dump, sizeof dump, "%s/WATCHDOG-20250102-030405.raw", root);
    write_raw(dump, "dump");
    int n = snprintf(text, sizeof text, "livedump-throttle 1\nsystem %llu\ncomponent WATCHDOG %llu\n",
                     (unsigned long long)T0, (unsigned long long)T0);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (int i = 0; i < n; i++) {
        h ^= (unsigned char)text[i];
        h *= 0x100000001b3ull;
    }
    snprintf(text + n, sizeof text - (size_t)n, "end %016llx\n", (unsigned long long)h);
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    write_raw(sp, text);
    fake_now = T0 + HOUR;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_null(ld_reports_state_problem(f.reports));
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
    const char *now = read_all(sp);
    assert_non_null(strstr(now, "livedump-throttle 2\n"));
    assert_non_null(strstr(now, "report 1 WATCHDOG-20250102-030405.raw\n"));
    stop(&f);
}

/* ---- a clock set wrong ---- */

/* 2099-12-31 00:00:00 UTC */
#define Y2099 4102358400ull

/* A dump taken while the clock was ahead (2099), then the clock put right:
 * full dumps are blocked for one threshold from the first load that sees
 * it, not until 2099, and not by a threshold from each attempt (the clamp
 * is saved). The same for a state rebuilt from a dump named in 2099. */
static void test_future_times_block_one_threshold(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512];
    fake_now = Y2099;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    assert_non_null(strstr(path, "WATCHDOG-20991231-000000.raw"));

    fake_now = T0;
    reopen(&f);
    assert_non_null(ld_reports_state_problem(f.reports));
    assert_non_null(strstr(ld_reports_state_problem(f.reports), "future"));
    assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
    /* Restarts and attempts later: the same limit, not one slid along. */
    for (uint64_t later = HOUR; later < 120 * HOUR; later += 40 * HOUR) {
        fake_now = T0 + later;
        reopen(&f);
        assert_null(ld_reports_state_problem(f.reports));
        assert_throttled(&f, "USBHUB3", "SystemThrottleThresholdHours", 120, T0, T0 + 120 * HOUR);
        assert_throttled(&f, "WATCHDOG", "ComponentThrottleThresholdHours", 168, T0, T0 + 168 * HOUR);
    }
    fake_now = T0 + 120 * HOUR;
    reopen(&f);
    assert_throttled(&f, "WATCHDOG", "ComponentThrottleThresholdHours", 168, T0, T0 + 168 * HOUR);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);

    /* The state lost: rebuilt from the dumps, the 2099 name counts as now,
     * once. FullLiveReportsMax 1 kept the USBHUB3 dump only; put a 2099
     * dump back beside it. */
    char future[512], sp[256];
    snprintf(future, sizeof future, "%s/WATCHDOG-20991231-000000.raw", root);
    write_raw(future, "dump");
    snprintf(sp, sizeof sp, "%s/.LastFullLiveReport", root);
    assert_int_equal(unlink(sp), 0);
    fake_now = T0 + 200 * HOUR;
    reopen(&f);
    assert_throttled(&f, "NETADAPTER", "SystemThrottleThresholdHours", 120, T0 + 200 * HOUR, T0 + 320 * HOUR);
    fake_now = T0 + 201 * HOUR;
    reopen(&f);
    assert_throttled(&f, "NETADAPTER", "SystemThrottleThresholdHours", 120, T0 + 200 * HOUR, T0 + 320 * HOUR);
    fake_now = T0 + 320 * HOUR;
    reopen(&f);
    assert_int_equal(ld_reports_admit(f.reports, "NETADAPTER", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);
    stop(&f);
}

/* ---- disk full and deferred writes into the reports ---- */

static ld_status count_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    uint64_t *p = arg;
    (void)phase;
    (void)total;
    p[0]++;
    p[1] = done;
    return LD_STATUS_SUCCESS;
}

static void test_disk_full_and_deferred(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    ld_result r;
    assert_int_equal(ld_reports_capture(f.reports, f.h.engine, "WATCHDOG", &req, NULL, &r, path, sizeof path, NULL),
                     LD_STATUS_SUCCESS);
    assert_non_null(r.deferred);
    assert_string_equal(path, "");
    assert_int_equal(count_files(root), 2); /* nothing written yet: state and lock */

    /* The disk fills (RLIMIT_FSIZE: EFBIG) at 1 MiB: disk full, no file left,
     * the dump still held, and no throttling recorded. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*h)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1 << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    evlog_clear(f.log);
    ld_status st = ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", r.deferred, ld_format_raw(), NULL,
                                             path, sizeof path, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, h);
    assert_int_equal(st, LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(f.log, 204), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(f.log, 202), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_int_equal(count_files(root), 2);
    assert_true(ld_engine_holds(f.h.engine, r.deferred));
    /* Still held, so it still counts for throttling; nothing was recorded:
     * a restart (which loses the held dump) finds no full dump taken. */
    assert_int_equal(ld_reports_admit(f.reports, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    ld_reports *other;
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = root;
    o.clock = fake_clock;
    assert_int_equal(ld_reports_open(&o, &other, &err), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_admit(other, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);
    ld_reports_close(other);

    /* Room again: the same dump lands, with progress, and now throttling
     * counts it. */
    ld_result w;
    uint64_t progress[2] = {0, 0}; /* calls, last done */
    ld_reports_set_progress(f.reports, count_progress, progress);
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", r.deferred, ld_format_raw(), &w,
                                               path, sizeof path, NULL),
                     LD_STATUS_SUCCESS);
    ld_reports_set_progress(f.reports, NULL, NULL);
    assert_int_equal(w.pages, r.pages);
    assert_true(progress[0] > 0);
    assert_int_equal(progress[1], r.pages);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(ld_reports_admit(f.reports, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    /* Double write: refused by the engine (202), no file made. */
    evlog_clear(f.log);
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", r.deferred, ld_format_raw(), NULL,
                                               path, sizeof path, NULL),
                     LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(evlog_u64(evlog_last(f.log, 202), "NTStatus"), LD_STATUS_INVALID_DEVICE_STATE);
    assert_int_equal(count_files(root), 3);
    /* A throttled deferred capture holds nothing. */
    assert_int_equal(ld_reports_capture(f.reports, f.h.engine, "WATCHDOG", &req, NULL, &r, NULL, 0, NULL),
                     LD_STATUS_THROTTLED);
    assert_null(r.deferred);
    assert_int_equal(ld_engine_deferred_count(f.h.engine), 0);
    assert_int_equal(ld_engine_discard_deferred(f.h.engine), LD_STATUS_INVALID_DEVICE_STATE);
    /* A direct capture when the disk is full: no file, partial or final. */
    req.flags &= ~LD_FLAG_DEFER;
    req.type = LD_DUMP_MINI;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    h = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    st = ld_reports_capture(f.reports, f.h.engine, "USBHUB3", &req, ld_format_raw(), NULL, path, sizeof path, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, h);
    assert_int_equal(st, LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(f.log, 4), "NTStatus"), LD_STATUS_DISK_FULL);
    assert_int_equal(evlog_u64(evlog_last(f.log, 2), "NTStatus"), LD_STATUS_DISK_FULL);
    char comp[256];
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(count_files(comp), 0);
    stop(&f);
}

/* ---- throttling of deferred captures ---- */

/* The event 6 of a refusal: threshold, last and next, and no capture started. */
static void assert_held_refusal(fixture *f, ld_status st, const char *threshold_param, uint64_t hours, uint64_t last)
{
    assert_int_equal(st, LD_STATUS_THROTTLED);
    const evlog_entry *e6 = evlog_last(f->log, 6);
    assert_non_null(e6);
    assert_non_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "deferred dump is held"));
    assert_int_equal(evlog_param(e6, threshold_param), hours);
    assert_int_equal(evlog_param(e6, "LastFullLiveReportUnixTime"), last);
    assert_int_equal(evlog_param(e6, "NextDumpAllowedUnixTime"), last + hours * HOUR);
    assert_int_equal(evlog_param(e6, "NowUnixTime"), fake_now);
    assert_int_equal(evlog_count(f->log, 1), 0); /* refused before any capture work */
}

static ld_status take_deferred(fixture *f, const char *component, ld_result *r)
{
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    return ld_reports_capture(f->reports, f->h.engine, component, &req, NULL, r, NULL, 0, NULL);
}

static void test_deferred_throttling(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);

    /* A full deferred capture is held: it counts from its capture time. */
    ld_result held;
    assert_int_equal(take_deferred(&f, "WATCHDOG", &held), LD_STATUS_SUCCESS);
    assert_non_null(held.deferred);
    fake_now = T0 + HOUR;
    evlog_clear(f.log);
    /* Another component, not deferred: the system threshold refuses it
     * (not the engine's DEVICE_BUSY of its one-held-dump limit). */
    assert_held_refusal(&f, take(&f, "USBHUB3", LD_DUMP_FULL_KERNEL, path, sizeof path),
                        "SystemThrottleThresholdHours", 120, T0);
    assert_string_equal(path, "");
    /* The same component, deferred again: its own, longer threshold. */
    evlog_clear(f.log);
    ld_result second;
    assert_held_refusal(&f, take_deferred(&f, "WATCHDOG", &second), "ComponentThrottleThresholdHours", 168, T0);
    assert_null(second.deferred);
    assert_int_equal(ld_engine_deferred_count(f.h.engine), 1);
    assert_int_equal(count_files(root), 2); /* only the state file and its lock */
    /* Written under another component: refused, still held. */
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "USBHUB3", held.deferred, ld_format_raw(), NULL,
                                               path, sizeof path, NULL),
                     LD_STATUS_INVALID_PARAMETER);
    assert_true(ld_engine_holds(f.h.engine, held.deferred));

    /* Written two hours later: named and recorded with its capture time. */
    fake_now = T0 + 2 * HOUR;
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "WATCHDOG", held.deferred, ld_format_raw(), NULL,
                                               path, sizeof path, NULL),
                     LD_STATUS_SUCCESS);
    assert_non_null(strstr(path, "/WATCHDOG-20250102-030405.raw"));
    reopen(&f); /* the recorded time survives a restart */
    fake_now = T0 + 120 * HOUR - 1;
    ld_admission why;
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, &why), LD_STATUS_THROTTLED);
    assert_int_equal(why.param_value[1], T0);
    assert_int_equal(why.param_value[2], T0 + 120 * HOUR);
    assert_null(strstr(why.description, "held"));
    fake_now = T0 + 120 * HOUR;
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);

    /* Discarding a held dump does not lock anything out. */
    fake_now = T0 + 200 * HOUR;
    assert_int_equal(take_deferred(&f, "USBHUB3", &held), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    assert_int_equal(ld_reports_admit(f.reports, "NETADAPTER", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_THROTTLED);
    evlog_clear(f.log);
    assert_int_equal(ld_reports_discard_deferred(f.reports, f.h.engine, held.deferred), LD_STATUS_SUCCESS);
    assert_int_equal(evlog_u64(evlog_last(f.log, 252), "NTStatus"), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_admit(f.reports, "USBHUB3", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_admit(f.reports, "NETADAPTER", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);
    /* Discard of nothing. */
    assert_int_equal(ld_reports_discard_deferred(f.reports, f.h.engine, NULL), LD_STATUS_INVALID_DEVICE_STATE);
    /* Discarded through the engine directly: forgotten at the next capture. */
    assert_int_equal(take_deferred(&f, "USBHUB3", &held), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_discard_deferred_dump(f.h.engine, held.deferred), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);
    assert_non_null(strstr(path, "/USBHUB3-"));

    /* A full dump captured with the engine alone was never admitted: the
     * storage throttles it when it is written, and it stays held. */
    fake_now += HOUR;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_engine_capture(f.h.engine, &req, NULL, NULL, &held), LD_STATUS_SUCCESS);
    evlog_clear(f.log);
    assert_int_equal(ld_reports_write_deferred(f.reports, f.h.engine, "NETADAPTER", held.deferred, ld_format_raw(),
                                               NULL, path, sizeof path, NULL),
                     LD_STATUS_THROTTLED);
    assert_int_equal(evlog_param(evlog_last(f.log, 6), "SystemThrottleThresholdHours"), 120);
    assert_int_equal(evlog_count(f.log, 201), 0);
    assert_true(ld_engine_holds(f.h.engine, held.deferred));
    assert_int_equal(ld_engine_discard_deferred(f.h.engine), LD_STATUS_SUCCESS);
    stop(&f);
}

/* An engine that holds two dumps: the second full deferred capture is
 * throttled while the first is held, unless the thresholds are 0. */
static void test_deferred_throttling_two_held(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_engine_destroy(f.h.engine);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.max_deferred = 2;
    opts.on_event = evlog_fn;
    opts.on_event_arg = f.log;
    assert_int_equal(ld_engine_create(f.h.hal, &opts, &f.h.engine), LD_STATUS_SUCCESS);
    ld_error err;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    ld_result a, b;
    assert_int_equal(take_deferred(&f, "WATCHDOG", &a), LD_STATUS_SUCCESS);
    evlog_clear(f.log);
    assert_held_refusal(&f, take_deferred(&f, "USBHUB3", &b), "SystemThrottleThresholdHours", 120, T0);
    assert_int_equal(ld_engine_deferred_count(f.h.engine), 1);
    /* A small dump is not throttled and may be held beside it. */
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    req.flags |= LD_FLAG_DEFER;
    assert_int_equal(ld_reports_capture(f.reports, f.h.engine, "USBHUB3", &req, NULL, &b, NULL, 0, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_deferred_count(f.h.engine), 2);
    assert_int_equal(ld_reports_discard_deferred(f.reports, f.h.engine, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_reports_discard_deferred(f.reports, f.h.engine, NULL), LD_STATUS_SUCCESS);

    /* Time throttling off: two full deferred captures are both held. */
    ld_reports_close(f.reports);
    f.settings.system_throttle_hours = 0;
    f.settings.component_throttle_hours = 0;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take_deferred(&f, "WATCHDOG", &a), LD_STATUS_SUCCESS);
    assert_int_equal(take_deferred(&f, "WATCHDOG", &b), LD_STATUS_SUCCESS);
    assert_int_equal(ld_engine_deferred_count(f.h.engine), 2);
    stop(&f); /* destroy discards both */
}

/* ---- incomplete reports (.partial) ---- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const ld_report_entry *find_entry(const ld_report_entry *v, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(v[i].path);
        if (pl >= sl && !strcmp(v[i].path + pl - sl, suffix))
            return &v[i];
    }
    return NULL;
}

/* A child process that opens a file sink at `path`, writes, tells the
 * parent and waits to be killed: a writer alive, then one that crashed. */
static pid_t start_writer(const char *path)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Bounded, should the test fail before it kills the writer. */
        alarm(30);
        close(p[0]);
        ld_sink *sink;
        char buf[4096];
        memset(buf, 0xab, sizeof buf);
        bool ok = ld_sink_file_open(path, &sink) == LD_STATUS_SUCCESS &&
                  sink->write(sink, 0, buf, sizeof buf) == LD_STATUS_SUCCESS;
        (void)!write(p[1], ok ? "y" : "n", 1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    assert_int_equal(c, 'y');
    return pid;
}

static void test_incomplete_reports(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char path[512], p[512];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, path, sizeof path), LD_STATUS_SUCCESS);

    /* A writer in another process, alive; a leftover in a component folder. */
    snprintf(p, sizeof p, "%s/WATCHDOG-20250102-040405.raw", root);
    pid_t writer = start_writer(p);
    char comp[256], leftover[600], victim[256], link_path[600], other[600];
    snprintf(comp, sizeof comp, "%s/USBHUB3", root);
    assert_int_equal(mkdir(comp, 0700), 0);
    snprintf(leftover, sizeof leftover, "%s/USBHUB3-20250102-050405.raw.partial", comp);
    write_file(leftover, "half a dump");
    /* A symlink with a leftover's name, and a file that is no report. */
    snprintf(victim, sizeof victim, "%s/victim", base);
    write_file(victim, "keep me");
    snprintf(link_path, sizeof link_path, "%s/WATCHDOG-20250102-060405.raw.partial", root);
    assert_int_equal(symlink(victim, link_path), 0);
    snprintf(other, sizeof other, "%s/notes.partial", root);
    write_file(other, "not a report");

    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 3);
    assert_false(v[0].incomplete); /* the dump, oldest */
    const ld_report_entry *live = find_entry(v, n, "/WATCHDOG-20250102-040405.raw.partial");
    assert_non_null(live);
    assert_true(live->incomplete);
    assert_true(live->full);
    assert_int_equal(live->time, T0 + HOUR);
    const ld_report_entry *left = find_entry(v, n, "/USBHUB3-20250102-050405.raw.partial");
    assert_non_null(left);
    assert_true(left->incomplete);
    assert_false(left->full);
    assert_string_equal(left->component, "USBHUB3");
    ld_reports_list_free(v);

    /* Incomplete dumps do not count: a rebuilt throttling state knows only
     * the dump at T0, and retention (FullLiveReportsMax 1) keeps it. */
    snprintf(p, sizeof p, "%s/.LastFullLiveReport", root);
    assert_int_equal(unlink(p), 0);
    fake_now = T0 + 120 * HOUR;
    reopen(&f);
    assert_int_equal(ld_reports_admit(f.reports, "NETADAPTER", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);

    /* Prune removes the leftover, not the file a live writer holds, not
     * the symlink nor its target, not the file that is no report. */
    uint32_t deleted = 99;
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_SUCCESS);
    assert_int_equal(deleted, 1);
    assert_false(exists(leftover));
    assert_true(exists(path));
    snprintf(p, sizeof p, "%s/WATCHDOG-20250102-040405.raw.partial", root);
    assert_true(exists(p));
    assert_true(exists(link_path));
    assert_true(exists(victim));
    assert_true(exists(other));

    /* The writer dies: its file is a crash leftover, removed when a dump
     * lands (retention), with an event 6 naming it. */
    kill(writer, SIGKILL);
    assert_int_equal(waitpid(writer, NULL, 0), writer);
    evlog_clear(f.log);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_MINI, path, sizeof path), LD_STATUS_SUCCESS);
    assert_false(exists(p));
    const evlog_entry *e6 = evlog_last(f.log, 6);
    assert_int_equal(evlog_param(e6, "IncompleteLeftover"), 1);
    assert_int_equal(evlog_param(e6, "ReportUnixTime"), T0 + HOUR);
    assert_non_null(strstr(evlog_str(e6, "LiveDumpEventDescription"), "WATCHDOG-20250102-040405.raw.partial"));
    assert_true(exists(victim));
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    assert_false(v[0].incomplete || v[1].incomplete);
    ld_reports_list_free(v);
    stop(&f);
}

/* In this process too: a file sink being written is never pruned, and it
 * still lands under its final name. */
static void test_prune_spares_open_sink(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    char p[512], partial[600];
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    snprintf(p, sizeof p, "%s/WATCHDOG-20250102-030405.raw", root);
    snprintf(partial, sizeof partial, "%s.partial", p);
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(p, &sink), LD_STATUS_SUCCESS);
    assert_int_equal(sink->write(sink, 0, "dump", 4), LD_STATUS_SUCCESS);
    uint32_t deleted = 99;
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_SUCCESS);
    assert_int_equal(deleted, 0);
    assert_true(exists(partial));
    assert_int_equal(sink->finish(sink, 4), LD_STATUS_SUCCESS);
    assert_true(exists(p));
    assert_false(exists(partial));
    stop(&f);
}

/* ---- read-only opening (listing) ---- */

typedef struct snap_entry {
    char name[256];
    struct stat st;
} snap_entry;

/* Everything under dir (one level of folders down), with its stat: what a
 * read-only open must leave exactly as it was. chmod 0500 does not stop
 * root, so the comparison, not EACCES, is the test. */
static size_t snapshot(const char *dir, snap_entry *v, size_t cap)
{
    size_t n = 0;
    assert_true(n < cap);
    snprintf(v[n].name, sizeof v[n].name, ".");
    assert_int_equal(lstat(dir, &v[n].st), 0);
    n++;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        assert_true(n < cap);
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        snprintf(v[n].name, sizeof v[n].name, "%s", de->d_name);
        assert_int_equal(lstat(p, &v[n].st), 0);
        n++;
        if (S_ISDIR(v[n - 1].st.st_mode))
            n += snapshot(p, v + n, cap - n);
    }
    closedir(d);
    return n;
}

static void assert_same(const snap_entry *a, size_t na, const snap_entry *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_int_equal(a[i].st.st_ino, b[i].st.st_ino);
        assert_int_equal(a[i].st.st_size, b[i].st.st_size);
        assert_int_equal(a[i].st.st_mode, b[i].st.st_mode);
        assert_int_equal(a[i].st.st_mtim.tv_sec, b[i].st.st_mtim.tv_sec);
        assert_int_equal(a[i].st.st_mtim.tv_nsec, b[i].st.st_mtim.tv_nsec);
    }
}

static ld_status open_read_only(fixture *f, ld_error *err)
{
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = root;
    o.settings = &f->settings;
    o.clock = fake_clock;
    o.flags = LD_REPORTS_READ_ONLY;
    return ld_reports_open(&o, &f->reports, err);
}

static void test_read_only_open(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    ld_error err;
    /* A missing root: refused, and nothing created. */
    assert_int_equal(open_read_only(&f, &err), LD_STATUS_NO_SUCH_FILE);
    assert_null(f.reports);
    assert_non_null(strstr(err.message, root));
    assert_false(exists(root));
    assert_int_equal(count_files(base), 0);

    /* Reports present, a corrupt state file (a writing open would replace
     * it) and no write permission: listed, nothing written. */
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL, 0), LD_STATUS_SUCCESS);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_KERNEL_STACKS, NULL, 0), LD_STATUS_SUCCESS);
    ld_reports_close(f.reports);
    f.reports = NULL;
    char statefile[256];
    snprintf(statefile, sizeof statefile, "%s/.LastFullLiveReport", root);
    write_raw(statefile, "garbage\n");
    char sub[256];
    snprintf(sub, sizeof sub, "%s/USBHUB3", root);
    assert_int_equal(chmod(sub, 0500), 0);
    assert_int_equal(chmod(root, 0500), 0);
    snap_entry before[32], after[32];
    size_t nb = snapshot(root, before, 32);

    fake_now = T0 + 1000 * HOUR;
    assert_int_equal(open_read_only(&f, &err), LD_STATUS_SUCCESS);
    assert_non_null(ld_reports_state_problem(f.reports));
    ld_report_entry *v;
    size_t n;
    assert_int_equal(ld_reports_list(f.reports, &v, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    ld_reports_list_free(v);
    /* The rebuilt state is used, in memory. */
    assert_int_equal(ld_reports_admit(f.reports, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL), LD_STATUS_SUCCESS);
    uint32_t deleted = 7;
    assert_int_equal(ld_reports_prune(f.reports, &deleted), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(take(&f, "USBHUB3", LD_DUMP_KERNEL_STACKS, NULL, 0), LD_STATUS_ACCESS_DENIED);
    ld_reports_close(f.reports);
    f.reports = NULL;
    size_t na = snapshot(root, after, 32);
    assert_same(before, nb, after, na);
    assert_int_equal(chmod(root, 0700), 0);
    assert_int_equal(chmod(sub, 0700), 0);
    stop(&f);
}

/* ---- two processes racing for a full dump ---- */

/* A child: open the reports (reading the state, still empty), say so, wait
 * for the start, take a full dump. Exit 0 taken, 1 throttled, 2 else; no
 * cmocka asserts here, a failure must not run the parent's tests. */
static void racer(int ready, int go)
{
    fixture f;
    start(&f);
    ld_error err;
    int code = 2;
    if (open_reports(&f, &err) == LD_STATUS_SUCCESS) {
        char c = 'r';
        if (write(ready, &c, 1) == 1 && read(go, &c, 1) == 0) {
            ld_status st = take(&f, "WATCHDOG", LD_DUMP_FULL_KERNEL, NULL, 0);
            code = st == LD_STATUS_SUCCESS ? 0 : st == LD_STATUS_THROTTLED ? 1 : 2;
        }
    }
    stop(&f);
    _exit(code);
}

static void test_throttle_across_processes(void **state)
{
    (void)state;
    /* The root and its state exist before the race, as on a running system. */
    fixture f;
    start(&f);
    ld_error err;
    assert_int_equal(open_reports(&f, &err), LD_STATUS_SUCCESS);
    stop(&f);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            close(ready[0]);
            close(go[1]);
            racer(ready[1], go[0]);
        }
    }
    close(ready[1]);
    close(go[0]);
    char c;
    for (int i = 0; i < 2; i++)
        assert_int_equal(read(ready[0], &c, 1), 1);
    close(go[1]); /* both read end-of-file: the start */
    close(ready[0]);
    int taken = 0, throttled = 0;
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status));
        taken += WEXITSTATUS(status) == 0;
        throttled += WEXITSTATUS(status) == 1;
    }
    assert_int_equal(taken, 1);
    assert_int_equal(throttled, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_options_checked, fresh),
        cmocka_unit_test_setup(test_layout_and_names, fresh),
        cmocka_unit_test_setup(test_refuses_unsafe_folders, fresh),
        cmocka_unit_test_setup(test_refuses_foreign_owner, fresh),
        cmocka_unit_test_setup(test_refuses_symlinked_parents, fresh),
        cmocka_unit_test_setup(test_component_names, fresh),
        cmocka_unit_test_setup(test_throttling_across_restarts, fresh),
        cmocka_unit_test_setup(test_corrupt_state_is_rebuilt, fresh),
        cmocka_unit_test_setup(test_retention, fresh),
        cmocka_unit_test_setup(test_retention_same_second, fresh),
        cmocka_unit_test_setup(test_retention_future_name, fresh),
        cmocka_unit_test_setup(test_cancel, fresh),
        cmocka_unit_test_setup(test_state_disk_full, fresh),
        cmocka_unit_test_setup(test_state_missing_a_dump, fresh),
        cmocka_unit_test_setup(test_state_version_1, fresh),
        cmocka_unit_test_setup(test_future_times_block_one_threshold, fresh),
        cmocka_unit_test_setup(test_disk_full_and_deferred, fresh),
        cmocka_unit_test_setup(test_deferred_throttling, fresh),
        cmocka_unit_test_setup(test_deferred_throttling_two_held, fresh),
        cmocka_unit_test_setup(test_incomplete_reports, fresh),
        cmocka_unit_test_setup(test_prune_spares_open_sink, fresh),
        cmocka_unit_test_setup(test_read_only_open, fresh),
        cmocka_unit_test_setup(test_throttle_across_processes, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
