/* "Quiesce" from user space. The kernel cannot be stopped from here: what
 * can be stopped is user space — a cgroup v2 (cgroup.freeze, then wait for
 * cgroup.events to say "frozen 1") and/or a set of processes (SIGSTOP, then
 * wait for state T). The callback runs while they are stopped, and they are
 * always thawed afterwards, on every path (a timeout, the callback's
 * failure), with every blockable signal held back meanwhile so a Ctrl-C
 * cannot leave them frozen, and a watchdog process that thaws them if we
 * are killed. Only what we froze is thawed: a cgroup or a process someone
 * else had frozen or stopped stays so. Without any of them, quiesce only
 * times its steps: the HAL never claims LD_HAL_CAP_QUIESCE.
 *
 * While user space is stopped, /proc says which task each CPU runs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

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

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
            p[3] <= '7') {
            *o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

/* PATH is DIR or below it ("/" holds everything). */
static bool path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return true;
    return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

/* Where WANT (a resolved directory) sits in the cgroup v2 hierarchy, named
 * as PROC/self/cgroup names cgroups, found from the deepest cgroup2 mount
 * holding it in PROC/self/mountinfo. False when none holds it or the
 * mount's root lies outside our cgroup namespace: then we cannot tell. */
static bool cgroup_hier_path(const char *proc, const char *want, char *out, size_t cap)
{
    char path[PATH_MAX], line[3 * PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/self/mountinfo", proc) >= sizeof path)
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t best = 0;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER */
        char *sep = strstr(line, " - ");
        if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
            continue;
        char *save = NULL, *tok = strtok_r(line, " ", &save), *root = NULL;
        for (int i = 0; tok && i < 4; i++) {
            if (i == 3)
                root = tok;
            tok = strtok_r(NULL, " ", &save);
        }
        char *mnt = tok;
        if (!root || !mnt)
            continue;
        unescape(root);
        unescape(mnt);
        size_t n = strlen(mnt);
        if (!path_within(want, mnt) || (found && n < best) || root[0] != '/' || strstr(root, "/.."))
            continue;
        const char *rest = n == 1 ? want : want + n;
        const char *base = strcmp(root, "/") ? root : "";
        if ((size_t)snprintf(out, cap, "%s%s", base, *base || *rest ? rest : "/") >= cap)
            continue;
        best = n;
        found = true;
    }
    fclose(f);
    return found;
}

/* Is a task of ours (the cgroup in FILE, a /proc .../cgroup) in the cgroup
 * HIER or below it? 1 yes, 0 no, -1 cannot tell. */
static int task_within(const char *file, const char *hier)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return -1;
    char line[PATH_MAX + 8];
    int r = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3))
            continue; /* v1 hierarchies of a hybrid layout: not what is frozen */
        line[strcspn(line, "\n")] = 0;
        const char *mine = line + 3;
        /* outside our namespace's root, or gone: no safe answer */
        r = mine[0] != '/' || strstr(mine, "/..") || strstr(mine, " (deleted)") ? -1 : path_within(mine, hier);
    }
    fclose(f);
    return r;
}

/* Freezing a cgroup that holds any thread of ours would freeze the capture
 * itself, forever: refused, and refused too when we cannot tell. Run at
 * open and again before each freeze, since processes move. */
static ld_status check_not_ours(const char *proc, const char *cgroup, ld_error *err)
{
    char want[PATH_MAX], hier[PATH_MAX], path[PATH_MAX + 64];
    if (!realpath(cgroup, want) || cgroup_frozen(want) < 0)
        return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                        "%s: not a cgroup v2 directory with cgroup.events", cgroup);
    if (!cgroup_hier_path(proc, want, hier, sizeof hier))
        return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                        "%s: no cgroup2 mount in %s/self/mountinfo holds it, so it cannot be told "
                        "whether it holds the capturing process: refused",
                        cgroup, proc);
    snprintf(path, sizeof path, "%s/self/cgroup", proc);
    int r = task_within(path, hier);
    /* threads may sit in other cgroups (threaded mode): each one counts */
    snprintf(path, sizeof path, "%s/self/task", proc);
    DIR *d = r == 0 ? opendir(path) : NULL;
    struct dirent *de;
    while (d && r == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/self/task/%.32s/cgroup", proc, de->d_name);
        r = task_within(path, hier);
    }
    if (d)
        closedir(d);
    if (r < 0)
        return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                        "%s: cannot tell from %s/self/cgroup whether it holds the capturing process: refused",
                        cgroup, proc);
    if (r > 0)
        return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                        "%s holds the capturing process itself: freezing it would freeze the capture", cgroup);
    return LD_STATUS_SUCCESS;
}

ld_status ldl_check_freeze_config(const ld_linux *lx, ld_error *err)
{
    for (size_t i = 0; i < lx->stop_pid_count; i++) {
        char task[64];
        snprintf(task, sizeof task, "/proc/self/task/%d", lx->stop_pids[i]);
        /* any thread of ours, not only the main one: stopping it stops us */
        if (lx->stop_pids[i] <= 1 || lx->stop_pids[i] == getpid() || access(task, F_OK) == 0)
            return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER,
                            "cannot stop process %d (init or the capturing process itself)", lx->stop_pids[i]);
    }
    return lx->freeze_cgroup ? check_not_ours(lx->proc_path, lx->freeze_cgroup, err) : LD_STATUS_SUCCESS;
}

/* For each CPU, the one task /proc shows running there (state R, field 39
 * "processor"). A CPU with no such task, or several, stays unknown: /proc
 * cannot tell which of several runnable tasks is on the CPU. */
void ldl_gather_cpu_tasks(ld_linux *lx)
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

/* 1 or 0: what cgroup.freeze asks for now; -1 cannot tell. */
static int cgroup_freeze_set(const char *dir)
{
    char path[PATH_MAX], c = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/cgroup.freeze", dir) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 && (c == '0' || c == '1') ? c - '0' : -1;
}

/* ---- the watchdog ----
 * If we die while they are frozen (SIGKILL, a crash), nobody would thaw
 * them. So before freezing, a child is forked that holds the read end of a
 * pipe. Before each freeze or stop we tell it what we are about to do; at
 * the end we send "done". If the pipe reaches EOF without "done", we died:
 * it thaws the cgroup and continues the processes we stopped. It is in our
 * cgroup (which is not the frozen one, checked) and not among the stopped
 * pids (checked), and it inherits our fully blocked signal mask, so a
 * Ctrl-C to the process group does not kill it either. */

enum { WD_CGROUP = 'C', WD_STOP = 'S', WD_DONE = 'D' };

typedef struct watchdog {
    pid_t pid;
    int fd; /* write end; -1 none */
} watchdog;

/* Exactly N bytes, or false (EOF). Messages queue up in the pipe, so
 * they are read by their own length, not one per read. */
static bool read_full(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void wd_child(int rfd, const char *freeze_file)
{
    int pids[4096];
    size_t npids = 0;
    bool cgroup = false;
    unsigned char m[5];
    while (read_full(rfd, m, 1)) {
        if (m[0] == WD_DONE)
            _exit(0);
        if (m[0] == WD_CGROUP)
            cgroup = true;
        else if (m[0] == WD_STOP && read_full(rfd, m + 1, 4) && npids < sizeof pids / sizeof pids[0])
            memcpy(&pids[npids++], m + 1, sizeof(int));
    }
    /* EOF without "done": the capture is gone */
    for (size_t i = 0; i < npids; i++)
        kill(pids[i], SIGCONT);
    if (cgroup) {
        int fd = open(freeze_file, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, "0", 1);
            (void)w;
            close(fd);
        }
    }
    _exit(1);
}

/* Fork the watchdog; the caller has blocked all signals. */
static ld_status wd_start(const ld_linux *lx, watchdog *wd)
{
    char freeze_file[PATH_MAX] = "";
    if (lx->freeze_cgroup &&
        (size_t)snprintf(freeze_file, sizeof freeze_file, "%s/cgroup.freeze", lx->freeze_cgroup) >= sizeof freeze_file)
        return LD_STATUS_INVALID_PARAMETER;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return LD_STATUS_NO_MEMORY;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return LD_STATUS_NO_MEMORY;
    }
    if (pid == 0) {
        close(p[1]);
        wd_child(p[0], freeze_file);
    }
    close(p[0]);
    wd->pid = pid;
    wd->fd = p[1];
    for (size_t i = 0; i < lx->stop_pid_count; i++)
        if (lx->stop_pids[i] == pid)
            return LD_STATUS_INVALID_PARAMETER; /* a stale pid now reused by the watchdog */
    return LD_STATUS_SUCCESS;
}

/* Tell the watchdog; false if it cannot hear us (then do not freeze). */
static bool wd_tell(watchdog *wd, unsigned char what, int pid)
{
    unsigned char m[5] = {what};
    memcpy(m + 1, &pid, sizeof pid);
    size_t n = what == WD_STOP ? 5 : 1;
    ssize_t w;
    while ((w = write(wd->fd, m, n)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)n;
}

static void wd_finish(watchdog *wd)
{
    if (wd->fd < 0)
        return;
    wd_tell(wd, WD_DONE, 0);
    close(wd->fd);
    wd->fd = -1;
    while (waitpid(wd->pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

ld_status ldl_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    ld_linux *lx = ctx;
    memset(times, 0, sizeof *times);
    /* Every blockable signal, in this thread: whatever arrives waits until
     * they are thawed. (Other threads of the caller are the caller's; the
     * watchdog covers us being killed.) */
    sigset_t hold, old;
    sigfillset(&hold);
    pthread_sigmask(SIG_BLOCK, &hold, &old);

    uint64_t t0 = ldl_now_ns(), deadline = t0 + timeout_ns;
    ld_status st = LD_STATUS_SUCCESS;
    bool cg_written = false;
    size_t stopped = 0;
    watchdog wd = {-1, -1};
    lx->stats.last_cgroup_frozen = false;
    lx->stats.last_cgroup_frozen_by_other = false;
    lx->stats.last_frozen_tasks = 0;

    if (lx->freeze_cgroup || lx->stop_pid_count) {
        /* checked at open, but processes move between cgroups since */
        st = lx->freeze_cgroup ? check_not_ours(lx->proc_path, lx->freeze_cgroup, NULL) : LD_STATUS_SUCCESS;
        if (st == LD_STATUS_SUCCESS)
            st = wd_start(lx, &wd);
    }
    if (lx->freeze_cgroup && st == LD_STATUS_SUCCESS) {
        errno = 0;
        int set = cgroup_freeze_set(lx->freeze_cgroup);
        if (set == 1) {
            /* frozen by someone else (an admin): theirs to thaw, not ours */
            lx->stats.last_cgroup_frozen_by_other = true;
        } else if (set == 0 && wd_tell(&wd, WD_CGROUP, 0) &&
                   write_str(lx->freeze_cgroup, "cgroup.freeze", "1") == 0) {
            cg_written = true;
        } else {
            /* Named by the errno map when an OS call failed (no
             * cgroup.freeze: NO_SUCH_FILE; EACCES, EROFS); a file that
             * says neither 0 nor 1 is not ours to write. */
            st = errno ? ldu_errno_status(errno) : LD_STATUS_ACCESS_DENIED;
        }
        int fr = 0;
        while (st == LD_STATUS_SUCCESS && (fr = cgroup_frozen(lx->freeze_cgroup)) == 0 && ldl_now_ns() < deadline)
            nap();
        if (fr == 1)
            lx->stats.last_cgroup_frozen = true;
        else if (st == LD_STATUS_SUCCESS)
            st = LD_STATUS_TIMEOUT;
    }
    for (size_t i = 0; i < lx->stop_pid_count && st == LD_STATUS_SUCCESS; i++) {
        lx->we_stopped[i] = false;
        char before = proc_state("/proc", lx->stop_pids[i]);
        stopped = i + 1;
        if (before == 'T' || before == 't')
            continue; /* stopped by someone else: theirs to continue, not ours */
        if (!wd_tell(&wd, WD_STOP, lx->stop_pids[i])) {
            st = LD_STATUS_IO_DEVICE_ERROR;
            break;
        }
        if (kill(lx->stop_pids[i], SIGSTOP) != 0) {
            st = ldu_errno_status(errno); /* ESRCH: not found; EPERM: access denied */
            break;
        }
        lx->we_stopped[i] = true;
        char s;
        while ((s = proc_state("/proc", lx->stop_pids[i])) != 'T' && s != 't' && s != 'Z' && s != 0 &&
               ldl_now_ns() < deadline)
            nap();
        if (s != 'T' && s != 't' && s != 'Z' && s != 0)
            st = LD_STATUS_TIMEOUT;
    }
    uint64_t t1 = ldl_now_ns();
    times->corral_ns = t1 - t0;
    if (st == LD_STATUS_SUCCESS) {
        for (size_t i = 0; i < stopped; i++)
            lx->stats.last_frozen_tasks += lx->we_stopped[i];
        ldl_gather_cpu_tasks(lx);
        st = fn(arg);
    }
    uint64_t t2 = ldl_now_ns();
    times->stopped_ns = t2 - t1;

    /* Thaw, whatever happened above: only what we froze. */
    for (size_t i = 0; i < stopped; i++)
        if (lx->we_stopped[i])
            kill(lx->stop_pids[i], SIGCONT);
    if (cg_written)
        write_str(lx->freeze_cgroup, "cgroup.freeze", "0");
    wd_finish(&wd);
    uint64_t t3 = ldl_now_ns();
    times->uncorral_ns = t3 - t2;
    if (cg_written || lx->stats.last_frozen_tasks)
        lx->stats.last_freeze_ns = t3 - t0;
    else
        lx->stats.last_freeze_ns = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return st;
}
