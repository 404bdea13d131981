/* "Quiesce" from user space. The kernel cannot be stopped from here: what
 * can be stopped is user space — a cgroup v2 (cgroup.freeze, then wait for
 * cgroup.events to say "frozen 1") and/or a set of processes (SIGSTOP, then
 * wait for state T). The callback runs while they are stopped, and they are
 * always thawed afterwards, on every path (a timeout, the callback's
 * failure), with SIGINT/SIGTERM/SIGHUP/SIGQUIT held back meanwhile so a
 * Ctrl-C cannot leave them frozen. Without any of them, quiesce only times
 * its steps: the HAL never claims LD_HAL_CAP_QUIESCE.
 *
 * While user space is stopped, /proc says which task each CPU runs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hal/linux/linux_internal.h"

#define POLL_NS 200000ull /* 0.2 ms between checks of the freeze */

static void nap(void)
{
    struct timespec ts = {0, (long)POLL_NS};
    nanosleep(&ts, NULL);
}

static int write_str(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return -1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* 1 frozen, 0 not yet, -1 cannot tell */
static int cgroup_frozen(const char *dir)
{
    char path[PATH_MAX], buf[512];
    if ((size_t)snprintf(path, sizeof path, "%s/cgroup.events", dir) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *f = strstr(buf, "frozen ");
    return f ? f[7] == '1' : -1;
}

/* The state letter of a process (field 3 of PROC/PID/stat), or 0. The
 * processes to stop are real ones: always the real /proc. */
static char proc_state(const char *proc, int pid)
{
    char path[PATH_MAX], buf[512];
    if ((size_t)snprintf(path, sizeof path, "%s/%d/stat", proc, pid) >= sizeof path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold anything */
    return p && p[1] == ' ' ? p[2] : 0;
}

ld_status lx_check_freeze_config(const ld_linux *lx, ld_linux_error *err)
{
    for (size_t i = 0; i < lx->stop_pid_count; i++)
        if (lx->stop_pids[i] <= 1 || lx->stop_pids[i] == getpid())
            return lx_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                           "cannot stop process %d (init or the capturing process itself)", lx->stop_pids[i]);
    if (!lx->freeze_cgroup)
        return LD_STATUS_SUCCESS;
    char want[PATH_MAX], path[PATH_MAX];
    if (!realpath(lx->freeze_cgroup, want) || cgroup_frozen(want) < 0)
        return lx_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                       "%s: not a cgroup v2 directory with cgroup.events", lx->freeze_cgroup);
    /* Freezing our own cgroup (or an ancestor) would freeze the capture. */
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX];
    bool ours = false;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3))
            continue;
        line[strcspn(line, "\n")] = 0;
        /* the cgroup2 mount: the freeze path minus its tail matching ours */
        char mine[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "/sys/fs/cgroup%s", line + 3) < sizeof path && realpath(path, mine)) {
            size_t n = strlen(want);
            ours = !strncmp(mine, want, n) && (mine[n] == 0 || mine[n] == '/');
        }
    }
    if (f)
        fclose(f);
    if (ours)
        return lx_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                       "%s holds the capturing process itself: freezing it would freeze the capture",
                       lx->freeze_cgroup);
    return LD_STATUS_SUCCESS;
}

/* For each CPU, the one task /proc shows running there (state R, field 39
 * "processor"). A CPU with no such task, or several, stays unknown: /proc
 * cannot tell which of several runnable tasks is on the CPU. */
void lx_gather_cpu_tasks(ld_linux *lx)
{
    if (!lx->tasks)
        return;
    uint32_t *seen = calloc(lx->cpus, sizeof *seen);
    memset(lx->tasks, 0, lx->cpus * sizeof *lx->tasks);
    DIR *d = seen ? opendir(lx->proc_path) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char tdir[PATH_MAX];
        if ((size_t)snprintf(tdir, sizeof tdir, "%s/%ld/task", lx->proc_path, pid) >= sizeof tdir)
            continue;
        DIR *t = opendir(tdir);
        struct dirent *te;
        while (t && (te = readdir(t))) {
            long tid = strtol(te->d_name, &end, 10);
            if (*end || tid <= 0)
                continue;
            char path[PATH_MAX + 64], buf[1024];
            snprintf(path, sizeof path, "%s/%ld/stat", tdir, tid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = 0;
            char *p = strrchr(buf, ')');
            if (!p || p[1] != ' ' || p[2] != 'R')
                continue;
            /* p+2 is field 3; "processor" is field 39 */
            int field = 3;
            for (p += 2; *p && field < 39; p++)
                if (*p == ' ')
                    field++;
            long cpu = field == 39 ? strtol(p, &end, 10) : -1;
            if (cpu < 0 || (uint64_t)cpu >= lx->cpus)
                continue;
            if (seen[cpu]++ == 0)
                lx->tasks[cpu].pid = (uint64_t)tid;
        }
        if (t)
            closedir(t);
    }
    if (d)
        closedir(d);
    for (uint32_t c = 0; seen && c < lx->cpus; c++)
        lx->tasks[c].known = seen[c] == 1;
    free(seen);
}

ld_status lx_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    ld_linux *lx = ctx;
    memset(times, 0, sizeof *times);
    sigset_t hold, old;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    sigaddset(&hold, SIGHUP);
    sigaddset(&hold, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &hold, &old);

    uint64_t t0 = lx_now_ns(), deadline = t0 + timeout_ns;
    ld_status st = LD_STATUS_SUCCESS;
    bool cg_written = false;
    size_t stopped = 0;
    lx->stats.last_cgroup_frozen = false;
    lx->stats.last_frozen_tasks = 0;

    if (lx->freeze_cgroup) {
        if (write_str(lx->freeze_cgroup, "cgroup.freeze", "1") == 0) {
            cg_written = true;
            int fr;
            while ((fr = cgroup_frozen(lx->freeze_cgroup)) == 0 && lx_now_ns() < deadline)
                nap();
            if (fr == 1)
                lx->stats.last_cgroup_frozen = true;
            else
                st = LD_STATUS_TIMEOUT;
        } else {
            st = LD_STATUS_ACCESS_DENIED;
        }
    }
    for (size_t i = 0; i < lx->stop_pid_count && st == LD_STATUS_SUCCESS; i++) {
        lx->we_stopped[i] = false;
        char before = proc_state("/proc", lx->stop_pids[i]);
        stopped = i + 1;
        if (before == 'T' || before == 't')
            continue; /* stopped by someone else: theirs to continue, not ours */
        if (kill(lx->stop_pids[i], SIGSTOP) != 0) {
            st = errno == ESRCH ? LD_STATUS_NOT_FOUND : LD_STATUS_ACCESS_DENIED;
            break;
        }
        lx->we_stopped[i] = true;
        char s;
        while ((s = proc_state("/proc", lx->stop_pids[i])) != 'T' && s != 't' && s != 'Z' && s != 0 &&
               lx_now_ns() < deadline)
            nap();
        if (s != 'T' && s != 't' && s != 'Z' && s != 0)
            st = LD_STATUS_TIMEOUT;
    }
    uint64_t t1 = lx_now_ns();
    times->corral_ns = t1 - t0;
    if (st == LD_STATUS_SUCCESS) {
        for (size_t i = 0; i < stopped; i++)
            lx->stats.last_frozen_tasks += lx->we_stopped[i];
        lx_gather_cpu_tasks(lx);
        st = fn(arg);
    }
    uint64_t t2 = lx_now_ns();
    times->stopped_ns = t2 - t1;

    /* Thaw, whatever happened above. */
    for (size_t i = 0; i < stopped; i++)
        if (lx->we_stopped[i])
            kill(lx->stop_pids[i], SIGCONT);
    if (cg_written)
        write_str(lx->freeze_cgroup, "cgroup.freeze", "0");
    uint64_t t3 = lx_now_ns();
    times->uncorral_ns = t3 - t2;
    if (cg_written || lx->stats.last_frozen_tasks)
        lx->stats.last_freeze_ns = t3 - t0;
    else
        lx->stats.last_freeze_ns = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return st;
}
