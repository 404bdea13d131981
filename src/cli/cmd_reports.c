/* `livedump reports list|prune`: the report storage (include/livedump/reports.h). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "livedump/reports.h"

static const char usage_text[] =
    "usage: livedump reports [--reports DIR] [--policy FILE] list|prune\n"
    "\n"
    "  --reports DIR   the reports folder (default: LiveKernelReportsPath of the policy)\n"
    "  --policy FILE   the settings file (default " CLI_DEFAULT_POLICY ")\n"
    "  list            every report, oldest first (the order they landed in): time (UTC)\n"
    "                  from the name, kind, component, size, file;\n"
    "                  a .partial file is marked incomplete\n"
    "  prune           delete what the retention rules say to (FullLiveReportsMax,\n"
    "                  AlwaysKeepMemoryDump, DeleteLiveMiniDumps), and the .partial\n"
    "                  files no live writer holds\n";

static int list(ld_reports *r)
{
    ld_report_entry *v;
    size_t n;
    ld_status st = ld_reports_list(r, &v, &n);
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot list '%s'", ld_reports_root(r));
        return CLI_EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        time_t t = (time_t)v[i].time;
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s  %-5s %-16s %12" PRIu64 "  %s%s\n", when, v[i].full ? "full" : "small", v[i].component, v[i].bytes,
               v[i].path, v[i].incomplete ? "  (incomplete: being written, or left by a crash)" : "");
    }
    printf("%zu report(s) in %s\n", n, ld_reports_root(r));
    ld_reports_list_free(v);
    return CLI_EXIT_OK;
}

int cmd_reports(int argc, char **argv)
{
    const char *policy = CLI_DEFAULT_POLICY, *dir = NULL, *verb = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--policy") || !strcmp(argv[i], "--reports")) {
            if (i + 1 >= argc) {
                cli_usage_error("reports", "option '%s' needs a value", argv[i]);
                return CLI_EXIT_USAGE;
            }
            *(argv[i][2] == 'p' ? &policy : &dir) = argv[i + 1];
            i++;
        } else if (!verb && (!strcmp(argv[i], "list") || !strcmp(argv[i], "prune"))) {
            verb = argv[i];
        } else {
            cli_usage_error("reports", "unknown argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (!verb) {
        cli_usage_error("reports", "reports needs list or prune");
        return CLI_EXIT_USAGE;
    }
    ld_settings s;
    int rc = cli_load_policy(policy, false, &s);
    if (rc)
        return rc;
    ld_reports_options o;
    ld_reports_options_init(&o);
    o.root = dir;
    o.settings = &s;
    bool listing = !strcmp(verb, "list");
    /* Listing only looks: it must create no folder or state file, and work
     * on a read-only file system. */
    if (listing)
        o.flags = LD_REPORTS_READ_ONLY;
    ld_reports *r;
    ld_error err;
    ld_status st = ld_reports_open(&o, &r, &err);
    if (listing && st == LD_STATUS_NO_SUCH_FILE) {
        const char *shown = dir ? dir : s.live_kernel_reports_path;
        fprintf(stderr, "livedump: note: the reports folder '%s' does not exist (%s)\n", shown, err.message);
        printf("0 report(s) in %s\n", shown);
        return CLI_EXIT_OK;
    }
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot open the reports: %s", err.message);
        return CLI_EXIT_FAILED;
    }
    if (ld_reports_state_problem(r))
        fprintf(stderr, "livedump: warning: %s\n", ld_reports_state_problem(r));
    if (listing) {
        rc = list(r);
    } else {
        uint32_t deleted = 0;
        st = ld_reports_prune(r, &deleted);
        printf("%u report(s) deleted\n", deleted);
        if (!ld_ok(st))
            cli_status_error(st, "prune stopped");
        rc = ld_ok(st) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    }
    ld_reports_close(r);
    return rc;
}
