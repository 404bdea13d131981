/* livedump: command-line front end.
 *
 *   livedump capture --machine sim [options] -o FILE
 *   livedump version
 *
 * Exit status: 0 success, 1 the capture failed, 2 bad arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "livedump/livedump.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"

enum { EXIT_CAPTURE_FAILED = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: livedump capture --machine sim [options] -o FILE\n"
    "       livedump version\n"
    "\n"
    "capture options:\n"
    "  --machine sim            the machine to dump (sim: the simulated machine)\n"
    "  -o, --output FILE        the dump file to create (must not exist)\n"
    "  --format raw             output format (raw: physical image, holes sparse)\n"
    "  --type full|kernel-stacks|mini   dump type (default full)\n"
    "  --user-pages             add user pages (full dumps)\n"
    "  --hv-pages               add hypervisor pages (full dumps)\n"
    "  --hv-nonessential        add non-essential hypervisor pages too\n"
    "  --lkd N                  set type and pages from a DTrace lkd() option (0,1,2,4,5)\n"
    "  --selective              leave the file cache out\n"
    "  --abort-if-memory-pressure  give up rather than squeeze a low-memory machine\n"
    "  --no-mirror              copy every page while the machine is stopped\n"
    "  --bugcheck-code N        bug check code (default 0x161)\n"
    "  --param1..--param4 N     bug check parameters\n"
    "  --taskmgr                parameter 1 = \"Taskmgr\", as Task Manager sets it\n"
    "  --corral-timeout-ms N    give up if processors do not stop in N ms (default 2000)\n"
    "  --events text|json|none  print the Kernel-LiveDump events (default text)\n"
    "  --quiet                  no summary\n"
    "simulated machine:\n"
    "  --memory SIZE            RAM (default 512M; K, M, G suffixes)\n"
    "  --cpus N                 virtual CPUs (default 2)\n"
    "  --dirty-rate SIZE        bytes of pages dirtied per second (default 0)\n"
    "  --hot-set SIZE           region the workload writes (default 64M)\n"
    "  --hypervisor             the machine runs under a hypervisor\n"
    "  --seed N                 layout, content and workload seed\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "livedump: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'livedump capture --help'.\n");
}

/* Parse an unsigned number (decimal or 0x hex), all of the string. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* A size with an optional K/M/G/T suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'B')
            end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (*end)
            return -1;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

typedef enum { EVENTS_TEXT, EVENTS_JSON, EVENTS_NONE } events_mode;

typedef struct cli {
    events_mode events;
    bool progress_tty;
    bool progress_shown;
} cli;

static void on_event(void *arg, const ld_event *ev)
{
    cli *c = arg;
    char buf[2048];
    if (c->progress_shown) {
        fputs("\r\033[K", stderr);
        c->progress_shown = false;
    }
    if (c->events == EVENTS_JSON) {
        ld_event_format_json(ev, buf, sizeof buf);
        printf("%s\n", buf);
    } else if (c->events == EVENTS_TEXT) {
        ld_event_format_message(ev, buf, sizeof buf);
        printf("[%3u %-11s %-11s] %s", ev->id, ld_channel_name(ev->channel), ld_level_name(ev->level), buf);
        /* The generic event's message says nothing by itself: show what it carries. */
        const char *what = ld_event_get_str(ev, "LiveDumpEventDescription");
        if (what) {
            printf(" %s.", what);
            for (int i = 1; i <= 8; i++) {
                char name[32], value[32];
                uint64_t v;
                snprintf(name, sizeof name, "Parameter%dName", i);
                snprintf(value, sizeof value, "Parameter%dValue", i);
                const char *n = ld_event_get_str(ev, name);
                if (n && *n && ld_event_get_u64(ev, value, &v))
                    printf(" %s=%" PRIu64, n, v);
            }
        }
        printf("\n");
    }
    fflush(stdout);
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    cli *c = arg;
    if (!c->progress_tty || total == 0)
        return;
    fprintf(stderr, "\r\033[K%-7s %3u%% (%" PRIu64 " / %" PRIu64 " pages)", phase,
            (unsigned)(done * 100 / total), done, total);
    c->progress_shown = done < total;
    if (!c->progress_shown)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void print_summary(const ld_result *r, uint32_t page_size, const char *path)
{
    printf("\nlivedump: %s (%s)\n", ld_ok(r->status) ? "dump written" : "capture failed",
           ld_status_name(r->status) ? ld_status_name(r->status) : "unknown status");
    if (!ld_ok(r->status))
        return;
    printf("  file            %s (%" PRIu64 " bytes, header|primary|secondary %" PRIu64 "|%" PRIu64 "|%" PRIu64 ")\n",
           path, r->file_bytes, r->header_bytes, r->primary_bytes, r->secondary_bytes);
    printf("  pages           %" PRIu64 " (%" PRIu64 " MiB), required %" PRIu64 ", left out %" PRIu64 "\n", r->pages,
           r->pages * page_size >> 20, r->pages_required, r->pages_left_out);
    printf("  by kind        ");
    int shown = 0;
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++) {
        if (!r->pages_by_kind[k])
            continue;
        printf("%s %s %" PRIu64, shown++ % 4 == 0 && shown > 1 ? "\n                 " : "",
               ld_page_kind_name((ld_page_kind)k), r->pages_by_kind[k]);
    }
    printf("\n");
    printf("  mirroring       %s: phase 0 %" PRIu64 " pages in %.1f ms, phase 1 %u passes %" PRIu64 " pages in %.1f ms\n",
           r->mirrored ? "on" : "off (pages copied while stopped)", r->mirror_phase0_pages, ms(r->mirror_phase0_ns),
           r->mirror_passes, r->mirror_phase1_pages, ms(r->mirror_phase1_ns));
    printf("  machine stopped sizing %.3f ms, capture %.3f ms (corral %.3f ms, %" PRIu64 " pages copied stopped)\n",
           ms(r->sizing_stopped_ns), ms(r->capture_stopped_ns), ms(r->capture_quiesce.corral_ns),
           r->quiesce_copied_pages);
    printf("  durations       capture %.1f ms, write %.1f ms\n", ms(r->capture_ns), ms(r->write_ns));
}

typedef struct capture_args {
    const char *machine, *output, *format;
    ld_capture_request req;
    ld_sim_config sim;
    bool quiet;
    bool hot_set_given;
} capture_args;

static int need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        usage_error("option '%s' needs a value", argv[i]);
        return -1;
    }
    return 0;
}

static int parse_capture(int argc, char **argv, capture_args *a, cli *c)
{
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
#define VALUE() do { if (need_value(argc, argv, i)) return -1; i++; } while (0)
#define BAD(what) do { usage_error("invalid " what ": '%s'", v); return -1; } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(o, "--machine")) {
            VALUE(); a->machine = v;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            VALUE(); a->output = v;
        } else if (!strcmp(o, "--format")) {
            VALUE(); a->format = v;
        } else if (!strcmp(o, "--type")) {
            VALUE();
            if (!strcmp(v, "full")) a->req.type = LD_DUMP_FULL_KERNEL;
            else if (!strcmp(v, "kernel-stacks")) a->req.type = LD_DUMP_KERNEL_STACKS;
            else if (!strcmp(v, "mini")) a->req.type = LD_DUMP_MINI;
            else BAD("dump type (full, kernel-stacks or mini)");
        } else if (!strcmp(o, "--user-pages")) {
            a->req.add_pages |= LD_ADD_USER_PAGES;
        } else if (!strcmp(o, "--hv-pages")) {
            a->req.add_pages |= LD_ADD_HV_PAGES;
        } else if (!strcmp(o, "--hv-nonessential")) {
            a->req.add_pages |= LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
        } else if (!strcmp(o, "--lkd")) {
            VALUE();
            if (parse_u64(v, &n) || n > UINT32_MAX || !ld_ok(ld_capture_request_from_lkd(&a->req, (uint32_t)n)))
                BAD("lkd() option (0, 1, 2, 4 or 5)");
        } else if (!strcmp(o, "--selective")) {
            a->req.flags |= LD_FLAG_SELECTIVE_DUMP;
        } else if (!strcmp(o, "--abort-if-memory-pressure")) {
            a->req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
        } else if (!strcmp(o, "--no-mirror")) {
            a->req.flags &= ~LD_FLAG_USE_MIRRORING;
        } else if (!strcmp(o, "--bugcheck-code")) {
            VALUE();
            if (parse_u64(v, &n) || n > UINT32_MAX) BAD("bug check code");
            a->req.bugcheck_code = (uint32_t)n;
        } else if (!strncmp(o, "--param", 7) && o[7] >= '1' && o[7] <= '4' && !o[8]) {
            VALUE();
            if (parse_u64(v, &n)) BAD("bug check parameter");
            a->req.bugcheck_params[o[7] - '1'] = n;
        } else if (!strcmp(o, "--taskmgr")) {
            a->req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
        } else if (!strcmp(o, "--corral-timeout-ms")) {
            VALUE();
            if (parse_u64(v, &n) || n == 0 || n > 3600000) BAD("corral timeout");
            a->req.corral_timeout_ns = n * 1000000ull;
        } else if (!strcmp(o, "--events")) {
            VALUE();
            if (!strcmp(v, "text")) c->events = EVENTS_TEXT;
            else if (!strcmp(v, "json")) c->events = EVENTS_JSON;
            else if (!strcmp(v, "none")) c->events = EVENTS_NONE;
            else BAD("events mode (text, json or none)");
        } else if (!strcmp(o, "--quiet")) {
            a->quiet = true;
        } else if (!strcmp(o, "--memory")) {
            VALUE();
            if (parse_size(v, &a->sim.memory_bytes)) BAD("memory size");
        } else if (!strcmp(o, "--cpus")) {
            VALUE();
            if (parse_u64(v, &n) || n == 0 || n > 64) BAD("CPU count (1 to 64)");
            a->sim.cpus = (uint32_t)n;
        } else if (!strcmp(o, "--dirty-rate")) {
            VALUE();
            if (parse_size(v, &a->sim.dirty_rate)) BAD("dirty rate");
        } else if (!strcmp(o, "--hot-set")) {
            VALUE();
            if (parse_size(v, &a->sim.hot_set_bytes)) BAD("hot set size");
            a->hot_set_given = true;
        } else if (!strcmp(o, "--hypervisor")) {
            a->sim.hypervisor = true;
        } else if (!strcmp(o, "--seed")) {
            VALUE();
            if (parse_u64(v, &a->sim.seed)) BAD("seed");
        } else {
            usage_error("unknown option '%s'", o);
            return -1;
        }
#undef VALUE
#undef BAD
    }
    if (!a->machine) {
        usage_error("%s", "capture needs --machine (sim)");
        return -1;
    }
    if (strcmp(a->machine, "sim") != 0) {
        usage_error("unknown machine '%s' (this build knows: sim)", a->machine);
        return -1;
    }
    if (!a->output) {
        usage_error("%s", "capture needs -o FILE");
        return -1;
    }
    /* The default hot set (64 MiB) must fit in half of a small machine. */
    if (!a->hot_set_given && a->sim.hot_set_bytes > a->sim.memory_bytes / 4)
        a->sim.hot_set_bytes = (a->sim.memory_bytes / 4) & ~(uint64_t)4095;
    if (!ld_format_find(a->format)) {
        usage_error("unknown format '%s' (this build knows: raw)", a->format);
        return -1;
    }
    return 0;
}

static int cmd_capture(int argc, char **argv)
{
    capture_args a;
    memset(&a, 0, sizeof a);
    a.format = "raw";
    ld_capture_request_init(&a.req);
    ld_sim_config_init(&a.sim);
    cli c = {.events = EVENTS_TEXT, .progress_tty = isatty(STDERR_FILENO) != 0};
    if (parse_capture(argc, argv, &a, &c))
        return EXIT_USAGE;
    a.req.progress = on_progress;
    a.req.progress_arg = &c;

    ld_sim *sim = NULL;
    ld_status st = ld_sim_create(&a.sim, &sim);
    if (!ld_ok(st)) {
        fprintf(stderr, "livedump: cannot build the simulated machine: %s (0x%08X)\n", ld_status_describe(st), st);
        if (st == LD_STATUS_INVALID_PARAMETER)
            fprintf(stderr, "livedump: the machine needs --memory of at least 64M, --cpus 1 to 64, "
                            "and --hot-set at most half the memory\n");
        return st == LD_STATUS_INVALID_PARAMETER ? EXIT_USAGE : EXIT_CAPTURE_FAILED;
    }
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.on_event = on_event;
    opts.on_event_arg = &c;
    ld_engine *engine = NULL;
    st = ld_engine_create(ld_sim_hal(sim), &opts, &engine);
    if (!ld_ok(st)) {
        fprintf(stderr, "livedump: cannot start the engine: %s (0x%08X)\n", ld_status_describe(st), st);
        ld_sim_destroy(sim);
        return EXIT_CAPTURE_FAILED;
    }
    ld_sink *sink = NULL;
    st = ld_sink_file_open(a.output, &sink);
    if (!ld_ok(st)) {
        fprintf(stderr, "livedump: cannot create '%s': %s (0x%08X)\n", a.output, ld_status_describe(st), st);
        ld_engine_destroy(engine);
        ld_sim_destroy(sim);
        return EXIT_CAPTURE_FAILED;
    }
    ld_result r;
    st = ld_engine_capture(engine, &a.req, ld_format_find(a.format), sink, &r);
    if (c.progress_shown)
        fputs("\r\033[K", stderr);
    if (!a.quiet)
        print_summary(&r, ld_sim_hal(sim)->page_size, a.output);
    if (!ld_ok(st))
        fprintf(stderr, "livedump: capture failed: %s (0x%08X)\n", ld_status_describe(st), st);
    ld_engine_destroy(engine);
    ld_sim_destroy(sim);
    return ld_ok(st) ? 0 : EXIT_CAPTURE_FAILED;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("livedump %s\n", LD_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "capture"))
        return cmd_capture(argc - 2, argv + 2);
    usage_error("unknown command '%s'", argv[1]);
    return EXIT_USAGE;
}
