/* `livedump capture` on Windows: ask the driver (livedump.sys) for a live
 * dump of this machine into a new file (ld_nt_capture, livedump/nt.h).
 * The engine runs in the kernel; its events come back with the answer and
 * are printed as on Linux. What is Linux-only (the simulated machine,
 * --reports, --defer, --wait, the policy file) is refused by name. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: livedump capture [--machine nt] [options] -o FILE\n"
    "\n"
    "  Take a live dump of this Windows machine through the livedump driver\n"
    "  (sc start livedump; an administrator's prompt).\n"
    "  -o, --output FILE        the dump file to create (must not exist)\n"
    "  --format NAME            dmp, raw or elf; default: the one the file's extension\n"
    "                           names (x.dmp, x.raw, x.elf), else raw\n"
    "  --type full|kernel-stacks|mini   dump type (default full)\n"
    "  --user-pages             add user pages (full dumps)\n"
    "  --hv-pages               add hypervisor pages (full dumps)\n"
    "  --hv-nonessential        add non-essential hypervisor pages too\n"
    "  --lkd N                  set type and pages from a DTrace lkd() option (0,1,2,4,5)\n"
    "  --selective              leave the file cache out\n"
    "  --abort-if-memory-pressure  give up rather than squeeze a low-memory machine (default)\n"
    "  --no-abort-if-memory-pressure  take a partial dump instead\n"
    "  --bugcheck-code N        bug check code (default 0x161)\n"
    "  --param1..--param4 N     bug check parameters\n"
    "  --taskmgr                parameter 1 = \"Taskmgr\", as Task Manager sets it\n"
    "  --stop-budget-ms N       the longest the machine may stay stopped, 1 to 100 (default 50):\n"
    "                           every page is copied while it is, so this bounds the dump's size\n"
    "  --corral-timeout-ms N    give up if processors do not stop in N ms (at most the budget)\n"
    "  --no-kdbg-decode         leave KdDebuggerDataBlock as memory holds it (encoded)\n"
    "  --no-probe               do not probe every page for readability first\n"
    "  --events text|json|none  print the Kernel-LiveDump events (default text)\n"
    "  --quiet                  no summary\n";

static int refuse(const char *opt, const char *why)
{
    cli_usage_error("capture", "option '%s' is not available on Windows: %s", opt, why);
    return CLI_EXIT_USAGE;
}

static void print_nt(const ld_nt_reply *r)
{
    const ld_nt_stats *s = &r->stats;
    printf("  windows         %u processors, leader %u, stop budget %.1f ms, longest parked %.3f ms,\n"
           "                  DPC allowance left %u%%, debugger data %s, %" PRIu64 " unreadable pages kept out\n",
           s->processors, s->leader, (double)s->stop_budget_ns / 1e6, (double)s->max_parked_ns / 1e6,
           s->dpc_allowance_percent, s->kdbg_decoded ? "decoded" : "as in memory (encoded)", s->unreadable_pages);
}

int cmd_capture(int argc, char **argv)
{
    ld_nt_request req;
    memset(&req, 0, sizeof req);
    req.version = LD_NT_REQUEST_VERSION;
    req.size = sizeof req;
    req.flags = LD_FLAG_ABORT_IF_MEMORY_PRESSURE; /* Task Manager's default */
    const char *output = NULL, *format = NULL;
    bool quiet = false, abort_seen = false, no_abort_seen = false, type_seen = false, lkd_seen = false;
    cli_output out;
    cli_output_init(&out);
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
#define VALUE() do { if (!v) { cli_usage_error("capture", "option '%s' needs a value", o); return CLI_EXIT_USAGE; } i++; } while (0)
#define BAD(what) do { cli_usage_error("capture", "invalid " what ": '%s'", v); return CLI_EXIT_USAGE; } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(o, "--machine")) {
            VALUE();
            if (strcmp(v, "nt"))
                return refuse("--machine", "this build dumps this machine only (--machine nt)");
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            VALUE();
            output = v;
        } else if (!strcmp(o, "--format")) {
            VALUE();
            if (!ld_format_find(v)) BAD("format (dmp, raw or elf)");
            format = v;
        } else if (!strcmp(o, "--type")) {
            VALUE();
            type_seen = true;
            if (!strcmp(v, "full")) req.type = LD_DUMP_FULL_KERNEL;
            else if (!strcmp(v, "kernel-stacks")) req.type = LD_DUMP_KERNEL_STACKS;
            else if (!strcmp(v, "mini")) req.type = LD_DUMP_MINI;
            else BAD("dump type (full, kernel-stacks or mini)");
        } else if (!strcmp(o, "--user-pages")) {
            req.add_pages |= LD_ADD_USER_PAGES;
        } else if (!strcmp(o, "--hv-pages")) {
            req.add_pages |= LD_ADD_HV_PAGES;
        } else if (!strcmp(o, "--hv-nonessential")) {
            req.add_pages |= LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES;
        } else if (!strcmp(o, "--lkd")) {
            VALUE();
            ld_capture_request cr;
            ld_capture_request_init(&cr);
            if (cli_parse_u64(v, &n) || n > UINT32_MAX || !ld_ok(ld_capture_request_from_lkd(&cr, (uint32_t)n)))
                BAD("lkd() option (0, 1, 2, 4 or 5)");
            req.type = cr.type;
            req.add_pages = cr.add_pages;
            lkd_seen = true;
        } else if (!strcmp(o, "--selective")) {
            req.flags |= LD_FLAG_SELECTIVE_DUMP;
        } else if (!strcmp(o, "--abort-if-memory-pressure")) {
            req.flags |= LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
            abort_seen = true;
        } else if (!strcmp(o, "--no-abort-if-memory-pressure")) {
            req.flags &= ~LD_FLAG_ABORT_IF_MEMORY_PRESSURE;
            no_abort_seen = true;
        } else if (!strcmp(o, "--no-mirror")) {
            /* nothing to turn off: the NT backend copies every page stopped */
        } else if (!strcmp(o, "--bugcheck-code")) {
            VALUE();
            if (cli_parse_u64(v, &n) || n > UINT32_MAX) BAD("bug check code");
            req.bugcheck_code = (uint32_t)n;
        } else if (!strncmp(o, "--param", 7) && o[7] >= '1' && o[7] <= '4' && !o[8]) {
            VALUE();
            if (cli_parse_u64(v, &n)) BAD("bug check parameter");
            req.bugcheck_params[o[7] - '1'] = n;
        } else if (!strcmp(o, "--taskmgr")) {
            req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
        } else if (!strcmp(o, "--stop-budget-ms")) {
            VALUE();
            if (cli_parse_u64(v, &n) || n == 0 || n * 1000000ull > LD_NT_STOP_BUDGET_MAX_NS) BAD("stop budget (1 to 100 ms)");
            req.stop_budget_ns = n * 1000000ull;
        } else if (!strcmp(o, "--corral-timeout-ms")) {
            VALUE();
            if (cli_parse_u64(v, &n) || n == 0 || n > 3600000) BAD("corral timeout");
            req.corral_timeout_ns = n * 1000000ull;
        } else if (!strcmp(o, "--no-kdbg-decode")) {
            req.nt_flags |= LD_NT_NO_KDBG_DECODE;
        } else if (!strcmp(o, "--no-probe")) {
            req.nt_flags |= LD_NT_NO_PROBE;
        } else if (!strcmp(o, "--events")) {
            VALUE();
            if (cli_parse_events_mode(v, &out.events)) BAD("events mode (text, json or none)");
        } else if (!strcmp(o, "--quiet")) {
            quiet = true;
        } else if (!strcmp(o, "--reports") || !strcmp(o, "--component")) {
            return refuse(o, "the driver writes into the file you name with -o");
        } else if (!strcmp(o, "--defer")) {
            return refuse(o, "the driver writes the dump as soon as it is captured");
        } else if (!strcmp(o, "--wait")) {
            return refuse(o, "the driver refuses a second live dump while one runs (STATUS_DEVICE_BUSY)");
        } else if (!strcmp(o, "--policy")) {
            return refuse(o, "there is no policy file on Windows");
        } else {
            cli_usage_error("capture", "unknown option '%s'", o);
            return CLI_EXIT_USAGE;
        }
#undef VALUE
#undef BAD
    }
    if (abort_seen && no_abort_seen) {
        cli_usage_error("capture", "option '--abort-if-memory-pressure' does not go with "
                                   "'--no-abort-if-memory-pressure': they say opposite things");
        return CLI_EXIT_USAGE;
    }
    if (lkd_seen && type_seen) {
        cli_usage_error("capture", "option '--lkd' does not go with '--type': both set the dump type");
        return CLI_EXIT_USAGE;
    }
    if (req.add_pages && req.type != LD_DUMP_FULL_KERNEL) {
        cli_usage_error("capture", "user and hypervisor pages are added to full dumps only");
        return CLI_EXIT_USAGE;
    }
    if (!output) {
        cli_usage_error("capture", "capture needs -o FILE");
        return CLI_EXIT_USAGE;
    }
    if (!format) {
        const ld_format *f = ld_format_for_path(output);
        format = f ? ld_format_name(f) : "raw";
    }
    snprintf(req.format, sizeof req.format, "%s", format);
    ld_nt_reply reply;
    ld_status st = ld_nt_capture(&req, output, cli_on_event, &out, &reply);
    if (reply.version == LD_NT_REPLY_VERSION && !quiet && (reply.result.status || reply.result.pages)) {
        cli_print_summary(&reply.result, output);
        if (ld_ok(st))
            print_nt(&reply);
    }
    if (st == LD_STATUS_NO_SUCH_FILE && reply.version == 0)
        cli_status_error(st, "cannot reach the livedump driver (%s): is it loaded? (sc start livedump)",
                         LD_NT_DEVICE_PATH);
    else if (st == LD_STATUS_ACCESS_DENIED && reply.version == 0)
        cli_status_error(st, "the livedump driver lets only SYSTEM and Administrators in: run as administrator");
    else if (st == LD_STATUS_IO_TIMEOUT)
        cli_status_error(st, "the stop budget ran out before every page was copied: take a smaller dump "
                             "(--type kernel-stacks or mini) or raise --stop-budget-ms (at most 100)");
    else if (!ld_ok(st))
        cli_status_error(st, "capture failed");
    return ld_ok(st) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}
