/* Benchmark: how long the machine is stopped, with and without mirroring,
 * on a 512 MiB and a 4 GiB simulated machine at the same dirty rate; the
 * capture's copy throughput as a ratio to memcpy bandwidth measured in the
 * same run; and peak memory. Every configuration runs in a child process so
 * its peak RSS is its own.
 *
 *   bench_quiesce [--runs N] [--cpus N] [--dirty-rate BYTES] [--sizes 512M,4G]
 *
 * Prints figures and ratios; it asserts nothing (the machine is noisy). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/livedump.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"

typedef struct figures {
    double stopped_ms_median;   /* capture quiesce: machine stopped */
    double corral_ms, inside_ms, uncorral_ms, copy_ms; /* medians of its parts */
    double stopped_ms_max;
    double quiesce_copied_pages;
    double phase0_gbps;         /* copy throughput while running */
    double stopped_copy_gbps;   /* copy throughput while stopped (no mirroring) */
    double pages;
    long peak_rss_kib;
} figures;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ld_status null_write(ld_sink *s, uint64_t o, const void *b, size_t n) { (void)s; (void)o; (void)b; (void)n; return 0; }
static ld_status null_finish(ld_sink *s, uint64_t n) { (void)s; (void)n; return 0; }
static void null_abort(ld_sink *s) { (void)s; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median memcpy bandwidth over a buffer larger than the caches. */
static double memcpy_gbps(void)
{
    size_t n = 256u << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b)
        return 0;
    memset(a, 1, n);
    memset(b, 2, n);
    double best[5];
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ns();
        memcpy(b, a, n);
        uint64_t t = now_ns() - t0;
        best[i] = (double)n / (double)t;
        a[i] = b[n - 1 - (size_t)i]; /* keep the copy observable */
    }
    qsort(best, 5, sizeof best[0], cmp_double);
    free(a);
    free(b);
    return best[2];
}

static int run_config(uint64_t mem, uint32_t cpus, uint64_t rate, bool mirror, int runs, figures *out)
{
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = mem;
    cfg.cpus = cpus;
    cfg.dirty_rate = rate;
    cfg.hot_set_bytes = 64ull << 20;
    cfg.seed = 7;
    ld_sim *sim;
    ld_engine *e;
    if (!ld_ok(ld_sim_create(&cfg, &sim)))
        return -1;
    if (!ld_ok(ld_engine_create(ld_sim_hal(sim), NULL, &e)))
        return -1;
    ld_capture_request req;
    ld_capture_request_init(&req);
    if (!mirror)
        req.flags &= ~LD_FLAG_USE_MIRRORING;
    /* One capture first: the simulated machine generates page content on
     * first read, which is not what we measure. */
    {
        ld_sink warm = {LD_SINK_VERSION, NULL, null_write, null_finish, null_abort};
        if (!ld_ok(ld_engine_capture(e, &req, ld_format_raw(), &warm, NULL)))
            return -1;
    }
    double *stopped = calloc((size_t)runs, sizeof(double));
    double *parts[4];
    for (int k = 0; k < 4; k++)
        parts[k] = calloc((size_t)runs, sizeof(double));
    double copied = 0, p0 = 0, stopped_copy = 0, pages = 0;
    for (int i = 0; i < runs; i++) {
        ld_sink sink = {LD_SINK_VERSION, NULL, null_write, null_finish, null_abort};
        ld_result r;
        if (!ld_ok(ld_engine_capture(e, &req, ld_format_raw(), &sink, &r))) {
            fprintf(stderr, "capture failed: 0x%08X\n", r.status);
            return -1;
        }
        stopped[i] = (double)r.capture_stopped_ns / 1e6;
        parts[0][i] = (double)r.capture_quiesce.corral_ns / 1e6;
        parts[1][i] = (double)r.capture_quiesce.stopped_ns / 1e6;
        parts[2][i] = (double)r.capture_quiesce.uncorral_ns / 1e6;
        parts[3][i] = (double)r.copy_ns / 1e6;
        copied += (double)r.quiesce_copied_pages;
        pages += (double)r.pages;
        if (r.mirror_phase0_ns)
            p0 += (double)r.mirror_phase0_pages * 4096.0 / (double)r.mirror_phase0_ns;
        if (!mirror && r.copy_ns)
            stopped_copy += (double)r.quiesce_copied_pages * 4096.0 / (double)r.copy_ns;
    }
    qsort(stopped, (size_t)runs, sizeof(double), cmp_double);
    out->stopped_ms_median = stopped[runs / 2];
    out->stopped_ms_max = stopped[runs - 1];
    double *med[4] = {&out->corral_ms, &out->inside_ms, &out->uncorral_ms, &out->copy_ms};
    for (int k = 0; k < 4; k++) {
        qsort(parts[k], (size_t)runs, sizeof(double), cmp_double);
        *med[k] = parts[k][runs / 2];
        free(parts[k]);
    }
    out->quiesce_copied_pages = copied / runs;
    out->phase0_gbps = p0 / runs;
    out->stopped_copy_gbps = stopped_copy / runs;
    out->pages = pages / runs;
    free(stopped);
    ld_engine_destroy(e);
    ld_sim_destroy(sim);
    return 0;
}

/* Run one configuration in a child; its figures come back through a pipe
 * and its peak RSS through wait4. */
static int run_isolated(uint64_t mem, uint32_t cpus, uint64_t rate, bool mirror, int runs, figures *out)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        figures f;
        memset(&f, 0, sizeof f);
        int rc = run_config(mem, cpus, rate, mirror, runs, &f);
        if (write(fds[1], &f, sizeof f) != (ssize_t)sizeof f)
            rc = -1;
        _exit(rc ? 1 : 0);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], out, sizeof *out);
    close(fds[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof *out)
        return -1;
    out->peak_rss_kib = ru.ru_maxrss;
    return 0;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    switch (*end) {
    case 'G': case 'g': return v << 30;
    case 'M': case 'm': return v << 20;
    case 'K': case 'k': return v << 10;
    default: return v;
    }
}

int main(int argc, char **argv)
{
    int runs = 5;
    uint32_t cpus = 4;
    uint64_t rate = 200ull << 20;
    uint64_t sizes[2] = {512ull << 20, 4ull << 30};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpus")) cpus = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dirty-rate")) rate = parse_size(argv[i + 1]);
        else if (!strcmp(argv[i], "--sizes")) {
            char *comma = strchr(argv[i + 1], ',');
            sizes[0] = parse_size(argv[i + 1]);
            sizes[1] = comma ? parse_size(comma + 1) : sizes[0];
        } else {
            fprintf(stderr, "usage: bench_quiesce [--runs N] [--cpus N] [--dirty-rate SIZE] [--sizes A,B]\n");
            return 2;
        }
    }
    if (runs < 1 || cpus < 1)
        return 2;
    double bw = memcpy_gbps();
    printf("livedump quiesce benchmark: %u vCPUs, dirty rate %" PRIu64 " MiB/s, hot set 64 MiB, %d captures each\n",
           cpus, rate >> 20, runs);
    printf("memcpy bandwidth (this run): %.2f GB/s\n\n", bw);
    printf("%-8s %-9s %12s %12s %14s %12s %12s %14s\n", "memory", "mirroring", "stopped ms", "stopped max",
           "copied stopped", "pages", "copy GB/s", "peak RSS MiB");
    figures f[2][2];
    for (int s = 0; s < 2; s++) {
        for (int m = 1; m >= 0; m--) {
            if (run_isolated(sizes[s], cpus, rate, m, runs, &f[s][m])) {
                fprintf(stderr, "configuration failed\n");
                return 1;
            }
            double gbps = m ? f[s][m].phase0_gbps : f[s][m].stopped_copy_gbps;
            printf("%-8" PRIu64 " %-9s %12.3f %12.3f %14.0f %12.0f %12.2f %14.0f\n", sizes[s] >> 20, m ? "on" : "off",
                   f[s][m].stopped_ms_median, f[s][m].stopped_ms_max, f[s][m].quiesce_copied_pages, f[s][m].pages,
                   gbps, (double)f[s][m].peak_rss_kib / 1024.0);
            fflush(stdout);
        }
    }
    printf("\nwhere the stop goes (medians, ms): corral | stopped, all parked | of which page copy | uncorral\n");
    for (int s = 0; s < 2; s++)
        for (int m = 1; m >= 0; m--)
            printf("  %4" PRIu64 " MiB mirroring %-3s  %8.3f | %8.3f | %8.3f | %8.3f\n", sizes[s] >> 20, m ? "on" : "off",
                   f[s][m].corral_ms, f[s][m].inside_ms, f[s][m].copy_ms, f[s][m].uncorral_ms);
    printf("\nratios (same run):\n");
    for (int s = 0; s < 2; s++)
        printf("  %4" PRIu64 " MiB: stopped time with mirroring / without = %.4f\n", sizes[s] >> 20,
               f[s][1].stopped_ms_median / f[s][0].stopped_ms_median);
    printf("  stopped time with mirroring, %" PRIu64 " MiB / %" PRIu64 " MiB = %.2f (target: within 2x)\n",
           sizes[1] >> 20, sizes[0] >> 20, f[1][1].stopped_ms_median / f[0][1].stopped_ms_median);
    for (int s = 0; s < 2; s++)
        printf("  %4" PRIu64 " MiB: copy throughput / memcpy: running (phase 0) %.2f, stopped %.2f\n", sizes[s] >> 20,
               f[s][1].phase0_gbps / bw, f[s][0].stopped_copy_gbps / bw);
    return 0;
}
