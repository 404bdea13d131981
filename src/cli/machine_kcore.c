/* `capture --machine kcore`: the running Linux kernel, through /proc/kcore. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "livedump/linux.h"

#define MAX_STOP_PIDS 256

typedef struct kcore_state {
    ld_linux_config cfg;
    bool seen_cgroup, seen_kcore, seen_iomem, seen_kpageflags; /* single-value options */
    int pids[MAX_STOP_PIDS];
    ld_linux *lx;
    cli_output out; /* the classification's progress line, on a terminal */
} kcore_state;

static void kcore_init(void *state)
{
    kcore_state *s = state;
    ld_linux_config_init(&s->cfg);
    s->cfg.stop_pids = s->pids;
    cli_output_init(&s->out);
    s->cfg.progress = cli_on_progress;
    s->cfg.progress_arg = &s->out;
}

static int kcore_option(void *state, const char *o, const char *v, bool *used)
{
    kcore_state *s = state;
    uint64_t n;
    *used = true;
    if (!strcmp(o, "--no-zero-scan")) {
        s->cfg.scan_zero_pages = false;
        *used = false;
        return 1;
    }
    if (!v)
        return !strcmp(o, "--freeze-cgroup") || !strcmp(o, "--stop-pid") || !strcmp(o, "--kcore") ||
                       !strcmp(o, "--iomem") || !strcmp(o, "--kpageflags")
                   ? 1 /* the caller says it needs a value */
                   : (*used = false, 0);
    bool *seen = !strcmp(o, "--freeze-cgroup") ? &s->seen_cgroup
                 : !strcmp(o, "--kcore")       ? &s->seen_kcore
                 : !strcmp(o, "--iomem")       ? &s->seen_iomem
                 : !strcmp(o, "--kpageflags")  ? &s->seen_kpageflags
                                               : NULL;
    if (seen && cli_once("capture", seen, o))
        return -1;
    if (!strcmp(o, "--freeze-cgroup")) {
        s->cfg.freeze_cgroup = v;
    } else if (!strcmp(o, "--stop-pid")) {
        if (cli_parse_u64(v, &n) || n < 2 || n > 0x7fffffff) {
            cli_usage_error("capture", "invalid process id: '%s'", v);
            return -1;
        }
        if (s->cfg.stop_pid_count == MAX_STOP_PIDS) {
            cli_usage_error("capture", "at most %d --stop-pid", MAX_STOP_PIDS);
            return -1;
        }
        s->pids[s->cfg.stop_pid_count++] = (int)n;
    } else if (!strcmp(o, "--kcore")) {
        s->cfg.kcore_path = v;
    } else if (!strcmp(o, "--iomem")) {
        s->cfg.iomem_path = v;
    } else if (!strcmp(o, "--kpageflags")) {
        s->cfg.kpageflags_path = v;
    } else {
        *used = false;
        return 0;
    }
    return 1;
}

static int kcore_open(void *state, const ld_hal **hal)
{
    kcore_state *s = state;
    ld_error err;
    ld_status st = ld_linux_open(&s->cfg, &s->lx, &err);
    if (!ld_ok(st)) {
        fprintf(stderr, "livedump: cannot open the running kernel: %s\n", err.message);
        cli_status_error(st, "machine kcore (%s)", ld_linux_reason_name(err.reason));
        return CLI_EXIT_FAILED;
    }
    *hal = ld_linux_hal(s->lx);
    return CLI_EXIT_OK;
}

/* The backend's own figures: what the engine's summary cannot know. Only
 * after a capture that succeeded, and not with --quiet. */
static void kcore_summary(void *state)
{
    kcore_state *s = state;
    ld_linux_stats st;
    ld_linux_get_stats(s->lx, &st);
    double secs = (double)st.read_ns / 1e9;
    printf("  kcore           %" PRIu64 " RAM pages in %" PRIu64 " segments, PAGE_OFFSET 0x%" PRIx64
           ", VMCOREINFO %" PRIu64 " bytes, kpageflags %s\n",
           st.ram_pages, st.kcore_ram_segments, st.direct_map_base, st.vmcoreinfo_bytes,
           st.kpageflags_used ? "used" : "not available");
    printf("  kcore reads     %" PRIu64 " MiB in %.2f s (%.1f MiB/s); %u checksum passes, "
           "%" PRIu64 " pages still changing at the last\n",
           st.bytes_read >> 20, secs, secs > 0 ? (double)st.bytes_read / 1048576.0 / secs : 0.0, st.dirty_fetches,
           st.last_dirty_pages);
    printf("  user space      %s for %.3f ms (%u processes stopped%s)\n",
           st.last_freeze_ns ? "frozen" : "not frozen (kernel and processes kept running)",
           (double)st.last_freeze_ns / 1e6, st.last_frozen_tasks,
           st.last_cgroup_frozen_by_other ? ", cgroup already frozen by someone else: left frozen"
           : st.last_cgroup_frozen      ? ", cgroup frozen"
                                        : "");
    if (st.dirty_log_error)
        printf("  mirroring       unavailable: the checksum log needs %" PRIu64
               " MiB that could not be allocated; every page was copied in the final pass\n",
               st.dirty_log_bytes_wanted >> 20);
}

static void kcore_close(void *state)
{
    kcore_state *s = state;
    ld_linux_close(s->lx);
    s->lx = NULL;
}

const cli_machine cli_machine_kcore = {
    .name = "kcore",
    .help = "running Linux kernel (--machine kcore; root):\n"
            "  --freeze-cgroup PATH     freeze this cgroup v2 during the final pass\n"
            "  --stop-pid PID           stop this process (SIGSTOP) during the final pass (repeatable)\n"
            "  --no-zero-scan           keep all-zero pages (default: left out, read once to find them)\n"
            "  --kcore / --iomem / --kpageflags PATH   read these instead of /proc's\n",
    .one_at_a_time = true,
    .state_size = sizeof(kcore_state),
    .init = kcore_init,
    .option = kcore_option,
    .open = kcore_open,
    .close = kcore_close,
    .summary = kcore_summary,
};
