/* `livedump capture`: take a live dump of a machine and write it to a file. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "livedump/reports.h"
#include "livedump/runtime.h"

/* The machines this build can dump. */
static const cli_machine *const machines[] = {
    &cli_machine_sim,
#ifdef __linux__
    &cli_machine_kcore,
#endif
};
#define MACHINE_COUNT (sizeof machines / sizeof machines[0])

static const char usage_text[] =
    "usage: livedump capture --machine NAME [options] -o FILE\n"
    "\n"
    "  --machine NAME           the machine to dump (sim: the simulated machine,\n"
    "                           kcore: the running Linux kernel)\n"
    "  -o, --output FILE        the dump file to create (must not exist)\n"
    "  --format NAME            output format; default: the one the file's extension\n"
    "                           names (x.raw, x.dmp, x.elf), else raw (physical image, holes sparse);\n"
    "                           dmp: Windows 64-bit kernel dump (bug check 0x161); elf: Linux vmcore\n"
    "  --type full|kernel-stacks|mini   dump type (default full)\n"
    "  --user-pages             add user pages (full dumps)\n"
    "  --hv-pages               add hypervisor pages (full dumps)\n"
    "  --hv-nonessential        add non-essential hypervisor pages too\n"
    "  --lkd N                  set type and pages from a DTrace lkd() option (0,1,2,4,5)\n"
    "  --selective              leave the file cache out\n"
    "  --abort-if-memory-pressure  give up rather than squeeze a low-memory machine (the default,\n"
    "                           as in Task Manager)\n"
    "  --no-abort-if-memory-pressure  take a partial dump instead: leave the lowest-priority\n"
    "                           pages out when buffers run short\n"
    "  --no-mirror              copy every page while the machine is stopped\n"
    "  --bugcheck-code N        bug check code (default 0x161)\n"
    "  --param1..--param4 N     bug check parameters\n"
    "  --taskmgr                parameter 1 = \"Taskmgr\", as Task Manager sets it\n"
    "  --corral-timeout-ms N    give up if processors do not stop in N ms (default 2000)\n"
    "  --events text|json|none  print the Kernel-LiveDump events (default text)\n"
    "  --reports [DIR]          write into the reports folder instead of -o (throttling,\n"
    "                           retention; full dumps in DIR, others in DIR/COMPONENT; .dmp\n"
    "                           unless --format says otherwise). Without DIR (the next\n"
    "                           argument starts with '-'): LiveKernelReportsPath of the policy\n"
    "  --component NAME         the component the dump is for (with --reports; 1-16 of A-Z a-z 0-9 _)\n"
    "  --policy FILE            the settings file (default " CLI_DEFAULT_POLICY ", if present)\n"
    "  --defer                  capture into memory first, then write (deferred dump data)\n"
    "  --wait                   a real machine takes one live dump at a time: wait for the one\n"
    "                           running instead of failing with STATUS_DEVICE_BUSY\n"
    "  --quiet                  no summary\n";

static void print_usage(void)
{
    fputs(usage_text, stdout);
    for (size_t i = 0; i < MACHINE_COUNT; i++)
        fputs(machines[i]->help, stdout);
}

typedef struct capture_args {
    const char *machine_name, *output, *format;
    const char *reports, *component, *policy;
    bool to_reports; /* --reports, with or without a folder */
    bool defer, wait;
    /* What the command line said, to refuse repeats and combinations. */
    struct {
        bool machine, output, format, type, lkd, code, param[4], timeout, events, reports, component, policy;
        bool taskmgr, abort, no_abort;
        const char *type_name;   /* --type's value */
        const char *extra_pages; /* the first of --user-pages, --hv-pages, --hv-nonessential */
    } seen;
    const cli_machine *machine;
    void *machine_state;
    ld_capture_request req;
    cli_output out;
    bool quiet;
} capture_args;

/* The machine is named first so its own options can be told apart. */
static int find_machine(int argc, char **argv, capture_args *a)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--machine")) {
            if (a->machine_name) {
                cli_usage_error("capture", "option '--machine' is given twice: it takes one value");
                return -1;
            }
            a->machine_name = argv[++i];
        }
    if (!a->machine_name) {
        cli_usage_error("capture", "capture needs --machine (sim or kcore)");
        return -1;
    }
    for (size_t i = 0; i < MACHINE_COUNT; i++)
        if (!strcmp(machines[i]->name, a->machine_name))
            a->machine = machines[i];
    if (!a->machine) {
        cli_usage_error("capture", "unknown machine '%s' (this build knows: sim, kcore)", a->machine_name);
        return -1;
    }
    a->machine_state = calloc(1, a->machine->state_size);
    if (!a->machine_state) {
        fprintf(stderr, "livedump: out of memory\n");
        return -1;
    }
    a->machine->init(a->machine_state);
    return 0;
}

/* Options that contradict each other are usage errors, named. */
static int check_combinations(const capture_args *a)
{
    const char *why = NULL, *one = NULL, *other = NULL;
    if (a->seen.abort && a->seen.no_abort) {
        one = "--abort-if-memory-pressure", other = "--no-abort-if-memory-pressure";
        why = "they say opposite things";
    } else if (a->seen.taskmgr && a->seen.param[0]) {
        one = "--taskmgr", other = "--param1";
        why = "both set bug check parameter 1";
    } else if (a->seen.lkd && a->seen.type) {
        one = "--lkd", other = "--type";
        why = "both set the dump type";
    } else if (a->seen.lkd && a->seen.extra_pages) {
        one = a->seen.extra_pages, other = "--lkd";
        why = "--lkd sets the extra pages itself";
    } else if (a->seen.extra_pages && a->req.type != LD_DUMP_FULL_KERNEL) {
        one = a->seen.extra_pages, other = "--type";
        why = "user and hypervisor pages are added to full dumps only";
    }
    if (!why)
        return 0;
    if (other && !strcmp(other, "--type") && a->seen.type_name)
        cli_usage_error("capture", "option '%s' does not go with '--type %s': %s", one, a->seen.type_name, why);
    else
        cli_usage_error("capture", "option '%s' does not go with '%s': %s", one, other, why);
    return -1;
}

static int parse_capture(int argc, char **argv, capture_args *a)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_usage();
            exit(CLI_EXIT_OK);
        }
    }
    if (find_machine(argc, argv, a))
        return -1;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        bool used = false;
        int mine = a->machine->option(a->machine_state, o, v, &used);
        if (mine < 0)
            return -1;
        if (mine > 0) {
            if (used && !v) {
                cli_usage_error("capture", "option '%s' needs a value", o);
                return -1;
            }
            i += used;
            continue;
        }
#define VALUE() do { if (!v) { cli_usage_error("capture", "option '%s' needs a value", o); return -1; } i++; } while (0)
#define BAD(what) do { cli_usage_error("capture", "invalid " what ": '%s'", v); return -1; } while (0)
/* A single-value option: a second one would silently override the first. */
#define ONCE(flag) do { VALUE(); if (cli_once("capture", &a->seen.flag, o)) return -1; } while (0)
        if (!strcmp(o, "--machine")) {
            VALUE(); /* find_machine took it */
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            ONCE(output); a->output = v;
        } else if (!strcmp(o, "--format")) {
            ONCE(format); a->format = v;
        } else if (!strcmp(o, "--type")) {
            ONCE(type);
            if (!strcmp(v, "full")) a->req.type = LD_DUMP_FULL_KERNEL;
            else if (!strcmp(v, "kernel-stacks")) a->req.type = LD_DUMP_KERNEL_STACKS;
            else if (!strcmp(v, "mini")) a->req.type = LD_DUMP_MINI;
            else BAD("dump type (full, kernel-stacks or mini)");
            a->seen.type_name = v;
        } else if (!strcmp(o, "--user-pages")) {
            a->req.add_pages |= LD_ADD_USER_PAGES;
            a->seen.extra_pages = a->seen.extra_pages ? a->seen.extra_pages : o;
        } else if (!strcmp(o, "--hv-pages")) {
            a->req.add_pages |= LD_ADD_HV_PAGES;
            a->seen.extra_pages = a->seen.extra_pages ? a->seen.extra_pages : o;
        } else if (!strcmp(o, "--hv-nonessential")) {
            a->req.add_pages |= LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
            a->seen.extra_pages = a->seen.extra_pages ? a->seen.extra_pages : o;
        } else if (!strcmp(o, "--lkd")) {
            ONCE(lkd);
            if (cli_parse_u64(v, &n) || n > UINT32_MAX || !ld_ok(ld_capture_request_from_lkd(&a->req, (uint32_t)n)))
                BAD("lkd() option (0, 1, 2, 4 or 5)");
        } else if (!strcmp(o, "--selective")) {
            a->req.flags |= LD_FLAG_SELECTIVE_DUMP;
        } else if (!strcmp(o, "--abort-if-memory-pressure")) {
            a->req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
            a->seen.abort = true;
        } else if (!strcmp(o, "--no-abort-if-memory-pressure")) {
            a->req.flags &= ~LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
            a->seen.no_abort = true;
        } else if (!strcmp(o, "--no-mirror")) {
            a->req.flags &= ~LD_FLAG_USE_MIRRORING;
        } else if (!strcmp(o, "--bugcheck-code")) {
            ONCE(code);
            if (cli_parse_u64(v, &n) || n > UINT32_MAX) BAD("bug check code");
            a->req.bugcheck_code = (uint32_t)n;
        } else if (!strncmp(o, "--param", 7) && o[7] >= '1' && o[7] <= '4' && !o[8]) {
            ONCE(param[o[7] - '1']);
            if (cli_parse_u64(v, &n)) BAD("bug check parameter");
            a->req.bugcheck_params[o[7] - '1'] = n;
        } else if (!strcmp(o, "--taskmgr")) {
            a->req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
            a->seen.taskmgr = true;
        } else if (!strcmp(o, "--corral-timeout-ms")) {
            ONCE(timeout);
            if (cli_parse_u64(v, &n) || n == 0 || n > 3600000) BAD("corral timeout");
            a->req.corral_timeout_ns = n * 1000000ull;
        } else if (!strcmp(o, "--events")) {
            ONCE(events);
            if (cli_parse_events_mode(v, &a->out.events)) BAD("events mode (text, json or none)");
        } else if (!strcmp(o, "--quiet")) {
            a->quiet = true;
        } else if (!strcmp(o, "--reports")) {
            /* The folder is optional: without it, LiveKernelReportsPath. */
            if (cli_once("capture", &a->seen.reports, o))
                return -1;
            a->to_reports = true;
            if (v && v[0] != '-') {
                a->reports = v;
                i++;
            }
        } else if (!strcmp(o, "--component")) {
            ONCE(component);
            if (!ld_component_name_valid(v)) BAD("component name (1-16 of A-Z a-z 0-9 _)");
            a->component = v;
        } else if (!strcmp(o, "--policy")) {
            ONCE(policy); a->policy = v;
        } else if (!strcmp(o, "--defer")) {
            a->defer = true;
        } else if (!strcmp(o, "--wait")) {
            a->wait = true;
        } else {
            cli_usage_error("capture", "unknown option '%s'", o);
            return -1;
        }
#undef VALUE
#undef BAD
#undef ONCE
    }
    if (check_combinations(a))
        return -1;
    if (!a->output == !a->to_reports) {
        cli_usage_error("capture", a->output ? "give -o FILE or --reports DIR, not both" : "capture needs -o FILE");
        return -1;
    }
    if (!a->to_reports != !a->component) {
        cli_usage_error("capture", "--reports and --component go together");
        return -1;
    }
    /* Live kernel reports are .dmp files, as on Windows. */
    if (!a->format && a->to_reports)
        a->format = "dmp";
    if (!a->format) {
        /* The extension names the format when it is one we write. */
        const char *dot = strrchr(a->output, '.');
        const char *slash = strrchr(a->output, '/');
        a->format = dot && (!slash || dot > slash) && ld_format_find(dot + 1) ? dot + 1 : "raw";
    }
    if (!ld_format_find(a->format)) {
        cli_usage_error("capture", "unknown format '%s' (this build knows: raw, dmp, elf)", a->format);
        return -1;
    }
    return 0;
}

static bool stop_requested(void *arg);

/* Into the reports folder: throttling and retention apply. A stop signal
 * stops it as it stops -o (the storage asks stop_requested before each
 * write), and a held dump is then discarded, not written. */
static ld_status capture_to_reports(capture_args *a, ld_engine *engine, const ld_settings *s, ld_result *r,
                                    char *path, size_t cap)
{
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = a->reports; /* NULL: the policy's LiveKernelReportsPath */
    o.settings = s;
    ld_reports *reports;
    ld_error err;
    ld_status st = ld_reports_open(&o, &reports, &err);
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot open the reports: %s", err.message);
        return st;
    }
    if (ld_reports_state_problem(reports))
        fprintf(stderr, "livedump: warning: %s\n", ld_reports_state_problem(reports));
    const ld_format *fmt = ld_format_find(a->format);
    ld_reports_set_progress(reports, a->req.progress, a->req.progress_arg);
    ld_reports_set_cancel(reports, stop_requested, NULL);
    st = ld_reports_capture(reports, engine, a->component, &a->req, fmt, r, path, cap, &err);
    if (ld_ok(st) && a->defer && stop_requested(NULL)) {
        (void)ld_reports_discard_deferred(reports, engine, r->deferred);
        st = r->status = LD_STATUS_CANCELLED;
    } else if (ld_ok(st) && a->defer) {
        st = ld_reports_write_deferred(reports, engine, a->component, r->deferred, fmt, r, path, cap, &err);
    }
    /* The storage's own failure (the only one with a message here) says
     * what became of the dump. */
    if (err.message[0])
        fprintf(stderr, "livedump: %s\n", err.message);
    ld_reports_close(reports);
    return st;
}

/* SIGINT, SIGTERM or SIGHUP during a capture: the write stops and the sink
 * is aborted (its .partial file removed), so an interrupted capture leaves
 * no file holding the machine's memory behind. The engine has no cancel
 * call; the sink's next write failing with STATUS_CANCELLED is one. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static bool stop_requested(void *arg)
{
    (void)arg;
    return stop_signal != 0;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        /* An ignored signal stays ignored (nohup, a background job). */
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            (void)sigaction(sigs[i], &sa, NULL);
    }
}

static ld_status check_stop(void *arg, uint64_t offset, size_t len)
{
    (void)arg;
    (void)offset;
    (void)len;
    return stop_signal ? LD_STATUS_CANCELLED : LD_STATUS_SUCCESS;
}

/* Why the sink for `path` could not be created, naming the real obstacle. */
static void sink_open_error(ld_status st, const char *path)
{
    char partial[4096], tmp[NAME_MAX + 1];
    struct stat sb;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    if (ld_sink_file_partial_name(path + dir_len, tmp, sizeof tmp) == LD_STATUS_SUCCESS)
        snprintf(partial, sizeof partial, "%.*s%s", dir_len, path, tmp);
    else
        partial[0] = 0; /* the name itself is the problem: no .partial to name */
    bool final_exists = lstat(path, &sb) == 0;
    if (!final_exists && st == LD_STATUS_DEVICE_BUSY)
        cli_status_error(st, "cannot create '%s': '%s' is being written by another running livedump", path, partial);
    else if (!final_exists && partial[0] && lstat(partial, &sb) == 0)
        cli_status_error(st, "cannot create '%s': '%s' is in the way and is not a leftover livedump may remove "
                             "(a symlink, not a regular file, or another user's)", path, partial);
    else
        cli_status_error(st, "cannot create '%s'", path);
}

static ld_status capture_to_file(capture_args *a, ld_engine *engine, ld_result *r)
{
    ld_file_options o;
    ld_file_options_init(&o);
    o.format = ld_format_find(a->format);
    o.check = check_stop;
    uint64_t events_before = a->out.events_seen;
    ld_status st = ld_capture_to_path(engine, &a->req, a->output, &o, r);
    /* No event: the engine never ran, the file could not be created. */
    if (!ld_ok(st) && a->out.events_seen == events_before)
        sink_open_error(st, a->output);
    return st;
}

static int run_capture(capture_args *a, const ld_hal *hal)
{
    ld_settings settings;
    if (cli_load_policy(a->policy ? a->policy : CLI_DEFAULT_POLICY, a->policy != NULL, &settings))
        return CLI_EXIT_FAILED;
    if (a->defer)
        a->req.flags |= LD_FLAG_DEFER;
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    ld_settings_engine_options(&settings, &opts);
    opts.on_event = cli_on_event;
    opts.on_event_arg = &a->out;
    ld_engine *engine = NULL;
    ld_status st = ld_engine_create(hal, &opts, &engine);
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot start the engine");
        return CLI_EXIT_FAILED;
    }
    ld_result r;
    memset(&r, 0, sizeof r);
    char path[LD_SETTINGS_PATH_MAX + 64] = "";
    catch_stop_signals();
    st = a->to_reports ? capture_to_reports(a, engine, &settings, &r, path, sizeof path) : capture_to_file(a, engine, &r);
    cli_progress_clear(&a->out);
    if (r.hv_unavailable)
        fprintf(stderr, "livedump: warning: hypervisor pages were asked for, but machine '%s' runs no hypervisor: "
                        "the dump holds none\n", a->machine_name);
    if (!a->quiet && (r.status || r.pages))
        cli_print_summary(&r, a->to_reports ? path : a->output);
    if (stop_signal && !ld_ok(st))
        cli_status_error(st, "interrupted by signal %d: nothing was written", (int)stop_signal);
    else if (!ld_ok(st) && (r.status || r.pages))
        cli_status_error(st, "capture failed");
    if (st == LD_STATUS_INSUFFICIENT_RESOURCES && (a->req.flags & LD_FLAG_ABORT_IF_MEMORY_PRESSURE)) {
        if (r.low_memory_threshold > r.available_bytes)
            fprintf(stderr, "livedump: the machine is under memory pressure: %" PRIu64 " MiB available, the dump needs %"
                            PRIu64 " MiB with the low-memory reserve\n", r.available_bytes >> 20, r.low_memory_threshold >> 20);
        else
            fprintf(stderr, "livedump: the machine is under memory pressure: dump buffers could not be allocated for every page\n");
        fprintf(stderr, "livedump: abort-if-memory-pressure is on (the default, as in Task Manager); "
                        "--no-abort-if-memory-pressure takes a partial dump instead\n");
    }
    ld_engine_destroy(engine);
    return ld_ok(st) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* A real machine takes one live dump at a time: its machine lock, taken
 * before the machine is opened, so a second capture starts nothing. */
static int take_machine_lock(const capture_args *a, ld_machine_lock **lock)
{
    const char *dir = ld_machine_lock_dir(NULL);
    ld_status st = ld_machine_lock_acquire(NULL, a->machine->name, false, lock);
    if (st == LD_STATUS_DEVICE_BUSY && a->wait) {
        fprintf(stderr, "livedump: another live dump of machine '%s' is running: waiting for it to finish\n",
                a->machine->name);
        st = ld_machine_lock_acquire(NULL, a->machine->name, true, lock);
    }
    if (ld_ok(st))
        return CLI_EXIT_OK;
    if (st == LD_STATUS_DEVICE_BUSY)
        cli_status_error(st, "another live dump of machine '%s' is running (it holds %s/%s.lock); one at a time, "
                             "--wait waits for it", a->machine->name, dir, a->machine->name);
    else
        cli_status_error(st, "cannot take the lock of machine '%s' in %s (a real machine needs root; "
                             "LIVEDUMP_LOCK_DIR names another folder)", a->machine->name, dir);
    return CLI_EXIT_FAILED;
}

int cmd_capture(int argc, char **argv)
{
    capture_args a;
    memset(&a, 0, sizeof a);
    ld_capture_request_init(&a.req);
    /* Task Manager's default: give up rather than squeeze a machine low on
     * memory. The library's request keeps its explicit flag. */
    a.req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
    cli_output_init(&a.out);
    int rc = CLI_EXIT_USAGE;
    if (parse_capture(argc, argv, &a) == 0) {
        a.req.progress = cli_on_progress;
        /* A stop signal cancels the capture in the engine (between runs of
         * pages; a quiesce under way ends first). */
        a.req.cancel = &stop_signal;
        a.req.progress_arg = &a.out;
        const ld_hal *hal = NULL;
        ld_machine_lock *lock = NULL;
        rc = a.machine->one_at_a_time ? take_machine_lock(&a, &lock) : CLI_EXIT_OK;
        if (rc == CLI_EXIT_OK)
            rc = a.machine->open(a.machine_state, &hal);
        if (rc == CLI_EXIT_OK) {
            rc = run_capture(&a, hal);
            if (rc == CLI_EXIT_OK && !a.quiet && a.machine->summary)
                a.machine->summary(a.machine_state);
            a.machine->close(a.machine_state);
        }
        ld_machine_lock_release(lock);
    }
    free(a.machine_state);
    return rc;
}
