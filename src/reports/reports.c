/* Report storage: the folders (0700, refused if a symlink, not ours or
 * writable by others), the names (component + UTC time, never reused),
 * captures and deferred writes into them, listing, and retention
 * (FullLiveReportsMax, AlwaysKeepMemoryDump, DeleteLiveMiniDumps). */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "livedump/runtime.h"
#include "file_io.h"
#include "files.h"
#include "reports_internal.h"

static uint64_t system_clock(void *arg)
{
    (void)arg;
    return (uint64_t)time(NULL);
}

uint64_t ldr_now(const ld_reports *r)
{
    return r->clock(r->clock_arg);
}

bool ld_component_name_valid(const char *name)
{
    if (!name || !name[0])
        return false;
    size_t i = 0;
    for (; name[i]; i++) {
        char c = name[i];
        if (i >= LD_COMPONENT_MAX || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* A folder reports may live in, already open (so the check is of the
 * folder used, not of a name): a folder, ours, not writable by group or
 * others. */
static ld_status check_dir_fd(int fd, const char *shown, char *err, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ldr_err(err, cap, "%s: %s", shown, strerror(errno));
        return ldu_errno_status(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        ldr_err(err, cap, "%s: not a folder", shown);
        return LD_STATUS_ACCESS_DENIED;
    }
    if (st.st_uid != geteuid()) {
        ldr_err(err, cap, "%s: refusing a folder owned by another user", shown);
        return LD_STATUS_ACCESS_DENIED;
    }
    if (st.st_mode & 022) {
        ldr_err(err, cap, "%s: refusing a folder writable by others (mode %03o)", shown, (unsigned)(st.st_mode & 0777));
        return LD_STATUS_ACCESS_DENIED;
    }
    return LD_STATUS_SUCCESS;
}

/* Open `name` in the folder dfd as a folder, never through a symlink;
 * create it 0700 first when missing and `create`. -1 with errno. */
static int open_dir_at(int dfd, const char *name, bool create)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dfd, name, 0700) != 0 && errno != EEXIST)
            return -1;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && errno == ENOTDIR) {
        /* O_NOFOLLOW meeting a symlink to a non-folder says ENOTDIR. */
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            errno = ELOOP;
        else
            errno = ENOTDIR;
    }
    return fd;
}

/* Open the reports root by walking its path one component at a time from
 * "/" (or the working folder for a relative path), each opened O_NOFOLLOW:
 * a symlink anywhere in the path is refused, and no component can be
 * swapped between the check and the use, since everything after is done
 * relative to the descriptor returned. Only the last component is created
 * (0700), and only when `create`; it must then pass check_dir_fd. */
static ld_status open_root(const char *path, bool create, int *out, char *err, size_t cap)
{
    *out = -1;
    char buf[LD_SETTINGS_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        ldr_err(err, cap, "%s: %s", path, strerror(errno));
        return ldu_errno_status(errno);
    }
    char *save = NULL;
    char *c = strtok_r(buf, "/", &save);
    while (c) {
        char *next = strtok_r(NULL, "/", &save);
        int nfd = open_dir_at(fd, c, create && !next);
        if (nfd < 0) {
            int e = errno;
            int upto = (int)(c - buf + (ptrdiff_t)strlen(c));
            close(fd);
            if (e == ELOOP) {
                ldr_err(err, cap, "%s: refusing a symlink in the reports path: %.*s", path, upto, path);
                return LD_STATUS_ACCESS_DENIED;
            }
            if (e == ENOTDIR) {
                ldr_err(err, cap, "%s: not a folder: %.*s", path, upto, path);
                return LD_STATUS_ACCESS_DENIED;
            }
            ldr_err(err, cap, "%s: %s%s", path, e == ENOENT || !next ? "" : "cannot open the folder: ",
                    strerror(e));
            return ldu_errno_status(e);
        }
        close(fd);
        fd = nfd;
        c = next;
    }
    ld_status st = check_dir_fd(fd, path, err, cap);
    if (st != LD_STATUS_SUCCESS) {
        close(fd);
        return st;
    }
    *out = fd;
    return LD_STATUS_SUCCESS;
}

void ld_reports_options_init(ld_reports_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->version = 1;
}

ld_status ld_reports_open(const ld_reports_options *opts, ld_reports **out, char *err, size_t cap)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!opts || opts->version != 1 || (opts->flags & ~LD_REPORTS_READ_ONLY)) {
        ldr_err(err, cap, "bad options");
        return LD_STATUS_INVALID_PARAMETER;
    }
    ld_reports *r = calloc(1, sizeof *r);
    if (!r)
        return LD_STATUS_NO_MEMORY;
    r->root_fd = -1;
    r->read_only = (opts->flags & LD_REPORTS_READ_ONLY) != 0;
    if (opts->settings)
        r->settings = *opts->settings;
    else
        ld_settings_init(&r->settings);
    r->clock = opts->clock ? opts->clock : system_clock;
    r->clock_arg = opts->clock_arg;
    const char *root = opts->root ? opts->root : r->settings.live_kernel_reports_path;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    bool bad = n == 0 || n >= sizeof r->root;
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)root[i] < 0x20;
    if (bad) {
        ldr_err(err, cap, "reports folder: empty, too long or with control characters");
        free(r);
        return LD_STATUS_INVALID_PARAMETER;
    }
    memcpy(r->root, root, n);
    r->root[n] = 0;
    ld_status st = open_root(r->root, !r->read_only, &r->root_fd, err, cap);
    int lock = -1;
    /* A rebuild writes the state: not while another process records. */
    if (st == LD_STATUS_SUCCESS && !r->read_only) {
        st = ldr_lock(r, &lock);
        if (st != LD_STATUS_SUCCESS)
            ldr_err(err, cap, "%s/%s: cannot lock: %s", r->root, LDR_LOCK_FILE, ld_status_describe(st));
    }
    if (st == LD_STATUS_SUCCESS) {
        st = ldr_state_load(r);
        if (st != LD_STATUS_SUCCESS)
            ldr_err(err, cap, "%s/%s: cannot read the throttling state: %s", r->root, LDR_STATE_FILE,
                    ld_status_describe(st));
    }
    ldr_unlock(lock);
    if (st != LD_STATUS_SUCCESS) {
        ld_reports_close(r);
        return st;
    }
    *out = r;
    return LD_STATUS_SUCCESS;
}

void ld_reports_close(ld_reports *r)
{
    if (r && r->root_fd >= 0)
        close(r->root_fd);
    if (r)
        free(r->known);
    free(r);
}

const char *ld_reports_root(const ld_reports *r)
{
    return r ? r->root : NULL;
}

const char *ld_reports_state_problem(const ld_reports *r)
{
    return r && r->state_problem[0] ? r->state_problem : NULL;
}

const char *ld_reports_error(const ld_reports *r)
{
    return r && r->error[0] ? r->error : NULL;
}

/* ---- names ---- */

static bool ext_ok(const char *ext)
{
    size_t i = 0;
    for (; ext[i]; i++)
        if (i >= 8 || !((ext[i] >= 'a' && ext[i] <= 'z') || (ext[i] >= '0' && ext[i] <= '9')))
            return false;
    return i > 0;
}

static bool digits(const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static int num(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

#define PARTIAL_SUFFIX ".partial"

/* "COMP-YYYYMMDD-HHMMSS[-N].ext" -> its parts; false for any other name.
 * The same with ".partial" (the file sink's temporary name): incomplete. */
static bool parse_name(const char *full_name, ld_report_entry *e)
{
    char name[NAME_MAX + 1];
    size_t len = strlen(full_name), sl = strlen(PARTIAL_SUFFIX);
    if (len >= sizeof name)
        return false;
    memcpy(name, full_name, len + 1);
    e->incomplete = len > sl && !strcmp(name + len - sl, PARTIAL_SUFFIX);
    if (e->incomplete)
        name[len - sl] = 0;
    const char *dash = strchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) > LD_COMPONENT_MAX)
        return false;
    memcpy(e->component, name, (size_t)(dash - name));
    e->component[dash - name] = 0;
    if (!ld_component_name_valid(e->component))
        return false;
    const char *t = dash + 1;
    if (!digits(t, 8) || t[8] != '-' || !digits(t + 9, 6))
        return false;
    const char *p = t + 15;
    e->sequence = 0;
    if (*p == '-') {
        p++;
        const char *q = p;
        while (*q >= '0' && *q <= '9' && q - p < 6)
            q++;
        if (q == p || *q != '.' || *p == '0')
            return false;
        e->sequence = (uint32_t)num(p, (int)(q - p));
        p = q;
    }
    if (*p != '.' || !ext_ok(p + 1))
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = num(t, 4) - 1900;
    tm.tm_mon = num(t + 4, 2) - 1;
    tm.tm_mday = num(t + 6, 2);
    tm.tm_hour = num(t + 9, 2);
    tm.tm_min = num(t + 11, 2);
    tm.tm_sec = num(t + 13, 2);
    time_t when = timegm(&tm);
    if (when < 0)
        return false;
    e->time = (uint64_t)when;
    return true;
}

bool ldr_rel_valid(const char *rel, bool *full)
{
    ld_report_entry e;
    const char *slash = strchr(rel, '/');
    *full = !slash;
    if (!slash)
        return strlen(rel) < LDR_REL_MAX && parse_name(rel, &e) && !e.incomplete;
    size_t cl = (size_t)(slash - rel);
    return strlen(rel) < LDR_REL_MAX && cl <= LD_COMPONENT_MAX && !strchr(slash + 1, '/') && parse_name(slash + 1, &e) && !e.incomplete &&
           strlen(e.component) == cl && !strncmp(rel, e.component, cl);
}

static void dump_name(char *buf, size_t cap, const char *component, uint64_t when, uint32_t seq, const char *ext)
{
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (seq)
        snprintf(buf, cap, "%s-%s-%u.%s", component, stamp, seq, ext);
    else
        snprintf(buf, cap, "%s-%s.%s", component, stamp, ext);
}

/* The folder of a dump, open: the root for full dumps, ROOT/COMPONENT
 * (created 0700 when missing) else; *owned says whether to close it. */
static ld_status dump_folder(ld_reports *r, const char *component, bool full, int *dfd, bool *owned)
{
    *owned = false;
    *dfd = r->root_fd;
    ld_status st = check_dir_fd(r->root_fd, r->root, NULL, 0);
    if (st != LD_STATUS_SUCCESS || full)
        return st;
    int fd = open_dir_at(r->root_fd, component, true);
    if (fd < 0)
        return ldu_errno_status(errno);
    st = check_dir_fd(fd, component, NULL, 0);
    if (st != LD_STATUS_SUCCESS) {
        close(fd);
        return st;
    }
    *dfd = fd;
    *owned = true;
    return LD_STATUS_SUCCESS;
}

/* ---- cancellation (ld_reports_set_cancel) ---- */

static bool cancelled(const ld_reports *r)
{
    return r->cancelled && r->cancelled(r->cancel_arg);
}

/* The report's file sink is filtered: a stop fails the next write (the
 * engine then aborts the sink, which removes the .partial file) or the
 * finish. The filter lives in the storage object: one report is written at
 * a time. */
static ld_status check_cancel(void *arg, uint64_t offset, size_t len)
{
    (void)offset;
    (void)len;
    return cancelled(arg) ? LD_STATUS_CANCELLED : LD_STATUS_SUCCESS;
}

static void wrap_cancel(ld_reports *r, ld_sink **sink)
{
    if (r->cancelled)
        *sink = ld_sink_filter_init(&r->cancel_filter, *sink, check_cancel, r);
}

void ld_reports_set_cancel(ld_reports *r, ld_reports_cancel_fn fn, void *arg)
{
    if (!r)
        return;
    r->cancelled = fn;
    r->cancel_arg = fn ? arg : NULL;
}

/* A sink at a name no file has: same-second dumps take -1, -2, ... */
static ld_status open_report_sink(ld_reports *r, const char *component, bool full, const char *ext, uint64_t when,
                                  ld_sink **sink, char *path, size_t cap)
{
    int dfd;
    bool owned;
    ld_status st = dump_folder(r, component, full, &dfd, &owned);
    if (st != LD_STATUS_SUCCESS)
        return st;
    st = LD_STATUS_OBJECT_NAME_COLLISION;
    for (uint32_t seq = 0; seq < 1000; seq++) {
        char name[96];
        dump_name(name, sizeof name, component, when, seq, ext);
        if ((size_t)(full ? snprintf(path, cap, "%s/%s", r->root, name)
                          : snprintf(path, cap, "%s/%s/%s", r->root, component, name)) >= cap) {
            st = LD_STATUS_BUFFER_TOO_SMALL;
            break;
        }
        st = ld_sink_file_openat(dfd, name, sink);
        /* Busy: another writer has this name's .partial; take the next. */
        if (st != LD_STATUS_OBJECT_NAME_COLLISION && st != LD_STATUS_DEVICE_BUSY)
            break;
    }
    if (st == LD_STATUS_SUCCESS)
        wrap_cancel(r, sink);
    if (owned)
        close(dfd);
    return st;
}

/* ---- listing and retention ---- */

typedef struct list_builder {
    ld_report_entry *v;
    size_t n, cap;
} list_builder;

/* The reports in the folder open as dfd (shown as `dir` in paths). */
static ld_status scan(const ld_reports *r, list_builder *b, int dfd, const char *dir, const char *component, bool full)
{
    int own = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = own >= 0 ? fdopendir(own) : NULL;
    if (!d) {
        ld_status st = ldu_errno_status(errno);
        if (own >= 0)
            close(own);
        return st;
    }
    /* A duplicate shares the offset of the descriptor: start over. */
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        ld_report_entry e;
        memset(&e, 0, sizeof e);
        if (!parse_name(de->d_name, &e) || (component && strcmp(e.component, component)))
            continue;
        snprintf(e.path, sizeof e.path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        e.full = full;
        e.bytes = (uint64_t)st.st_blocks * 512;
        e.order = e.incomplete ? 0 : ldr_known_order(r, e.path + strlen(r->root) + 1);
        if (b->n == b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 16;
            ld_report_entry *nv = realloc(b->v, nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                return LD_STATUS_NO_MEMORY;
            }
            b->v = nv;
            b->cap = nc;
        }
        b->v[b->n++] = e;
    }
    closedir(d);
    return LD_STATUS_SUCCESS;
}

/* In the order they landed; those the state does not know yet (just
 * written by another process, copied or renamed in) after them, by name. */
static int older_first(const void *pa, const void *pb)
{
    const ld_report_entry *a = pa, *b = pb;
    if (!a->order != !b->order)
        return a->order ? -1 : 1;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->sequence != b->sequence)
        return a->sequence < b->sequence ? -1 : 1;
    return strcmp(a->path, b->path);
}

ld_status ld_reports_list(ld_reports *r, ld_report_entry **entries, size_t *count)
{
    if (!r || !entries || !count)
        return LD_STATUS_INVALID_PARAMETER;
    *entries = NULL;
    *count = 0;
    list_builder b = {0};
    ld_status st = scan(r, &b, r->root_fd, r->root, NULL, true);
    int own = st == LD_STATUS_SUCCESS ? fcntl(r->root_fd, F_DUPFD_CLOEXEC, 0) : -1;
    DIR *d = own >= 0 ? fdopendir(own) : NULL;
    if (own >= 0 && !d)
        close(own);
    if (d)
        rewinddir(d);
    struct dirent *de;
    while (d && st == LD_STATUS_SUCCESS && (de = readdir(d))) {
        if (!ld_component_name_valid(de->d_name))
            continue;
        char sub[LD_SETTINGS_PATH_MAX + 32];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", r->root, de->d_name) >= sizeof sub)
            continue;
        /* Only our own safe folders: a symlink planted here is not followed. */
        int sfd = open_dir_at(r->root_fd, de->d_name, false);
        if (sfd < 0)
            continue;
        if (check_dir_fd(sfd, sub, NULL, 0) == LD_STATUS_SUCCESS)
            st = scan(r, &b, sfd, sub, de->d_name, false);
        close(sfd);
    }
    if (d)
        closedir(d);
    if (st != LD_STATUS_SUCCESS) {
        free(b.v);
        return st;
    }
    if (b.n)
        qsort(b.v, b.n, sizeof *b.v, older_first);
    *entries = b.v;
    *count = b.n;
    return LD_STATUS_SUCCESS;
}

void ld_reports_list_free(ld_report_entry *entries)
{
    free(entries);
}

static void note_deleted(ld_engine *e, const ld_report_entry *x, const char *rule, uint64_t limit)
{
    if (!e)
        return;
    ld_admission note;
    memset(&note, 0, sizeof note);
    const char *base = strrchr(x->path, '/');
    base = base ? base + 1 : x->path;
    snprintf(note.description, sizeof note.description, "Report deleted by %s: %.100s", rule, base);
    snprintf(note.param_name[0], sizeof note.param_name[0], "%s", rule);
    note.param_value[0] = limit;
    snprintf(note.param_name[1], sizeof note.param_name[1], "ReportUnixTime");
    note.param_value[1] = x->time;
    (void)ld_engine_note(e, &note);
}

/* The folder of a listed report, open (never through a symlink); close
 * it with close_entry_dir. */
static int entry_dir(ld_reports *r, const ld_report_entry *x)
{
    if (x->full)
        return r->root_fd;
    int fd = open_dir_at(r->root_fd, x->component, false);
    if (fd >= 0 && check_dir_fd(fd, x->component, NULL, 0) != LD_STATUS_SUCCESS) {
        close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}

static void close_entry_dir(ld_reports *r, int fd)
{
    if (fd >= 0 && fd != r->root_fd)
        close(fd);
}

static const char *base_name(const ld_report_entry *x)
{
    const char *slash = strrchr(x->path, '/');
    return slash ? slash + 1 : x->path;
}

/* Remove a listed report, relative to its held folder. */
static ld_status remove_entry(ld_reports *r, const ld_report_entry *x)
{
    int dfd = entry_dir(r, x);
    if (dfd < 0)
        return ldu_errno_status(errno);
    ld_status st = unlinkat(dfd, base_name(x), 0) == 0 ? LD_STATUS_SUCCESS : ldu_errno_status(errno);
    close_entry_dir(r, dfd);
    return st;
}

/* Remove an incomplete report if no one writes it: only while holding its
 * flock (the file sink holds it for the whole write), only if the name
 * still is the file locked, and never through a symlink (the folder and the
 * file are opened O_NOFOLLOW, the name removed relative to the folder).
 * Busy: *removed false, success. */
static ld_status remove_leftover(ld_reports *r, const ld_report_entry *x, bool *removed)
{
    *removed = false;
    int dfd = entry_dir(r, x);
    if (dfd < 0)
        return ldu_errno_status(errno);
    const char *name = base_name(x);
    ld_status st = LD_STATUS_SUCCESS;
    int fd = ldu_open_regular(dfd, name, O_RDONLY | O_NOFOLLOW, 0, NULL);
    if (fd == -1) {
        /* Gone meanwhile (its writer finished): nothing to do. */
        st = errno == ENOENT ? LD_STATUS_SUCCESS : ldu_errno_status(errno);
    } else if (fd >= 0 && ldu_flock(fd, false) == LD_STATUS_SUCCESS && ldu_still_named(fd, dfd, name)) {
        if (unlinkat(dfd, name, 0) == 0)
            *removed = true;
        else
            st = ldu_errno_status(errno);
    }
    if (fd >= 0)
        close(fd);
    close_entry_dir(r, dfd);
    return st;
}

/* A listed report's path under the root, as the state names it. */
static const char *rel_of(const ld_reports *r, const ld_report_entry *x)
{
    return x->path + strlen(r->root) + 1;
}

/* Retention, in the order the reports landed; `keep` (may be NULL) is the
 * report that just landed, never deleted. What is deleted leaves the state
 * (in memory: the caller saves it). */
static ld_status prune(ld_reports *r, ld_engine *e, const char *keep, uint32_t *deleted)
{
    ld_report_entry *v;
    size_t n;
    uint32_t del = 0;
    ld_status st = ld_reports_list(r, &v, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    const ld_settings *s = &r->settings;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].incomplete)
            continue;
        bool removed = false;
        ld_status rst = remove_leftover(r, &v[i], &removed);
        if (removed) {
            del++;
            note_deleted(e, &v[i], "IncompleteLeftover", 1);
        } else if (rst != LD_STATUS_SUCCESS && st == LD_STATUS_SUCCESS) {
            st = rst;
        }
    }
    if (!s->always_keep_memory_dump) {
        size_t full = 0;
        for (size_t i = 0; i < n; i++)
            full += v[i].full && !v[i].incomplete;
        /* Oldest first: delete until FullLiveReportsMax remain. */
        for (size_t i = 0; i < n && full > s->full_live_reports_max; i++) {
            if (!v[i].full || v[i].incomplete || (keep && !strcmp(rel_of(r, &v[i]), keep)))
                continue;
            ld_status ust = remove_entry(r, &v[i]);
            if (ust == LD_STATUS_SUCCESS) {
                del++;
                ldr_forget(r, rel_of(r, &v[i]));
                note_deleted(e, &v[i], "FullLiveReportsMax", s->full_live_reports_max);
            } else if (st == LD_STATUS_SUCCESS) {
                st = ust;
            }
            full--;
        }
    }
    if (s->delete_live_mini_dumps) {
        /* Keep the newest small dump of each component: delete any that a
         * later entry of the same component follows. */
        for (size_t i = 0; i < n; i++) {
            if (v[i].full || v[i].incomplete || (keep && !strcmp(rel_of(r, &v[i]), keep)))
                continue;
            bool newer = false;
            for (size_t j = i + 1; j < n && !newer; j++)
                newer = !v[j].full && !v[j].incomplete && !strcmp(v[j].component, v[i].component);
            if (!newer)
                continue;
            ld_status ust = remove_entry(r, &v[i]);
            if (ust == LD_STATUS_SUCCESS) {
                del++;
                ldr_forget(r, rel_of(r, &v[i]));
                note_deleted(e, &v[i], "DeleteLiveMiniDumps", 1);
            } else if (st == LD_STATUS_SUCCESS) {
                st = ust;
            }
        }
    }
    ld_reports_list_free(v);
    if (deleted)
        *deleted = del;
    return st;
}

ld_status ld_reports_prune(ld_reports *r, uint32_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!r)
        return LD_STATUS_INVALID_PARAMETER;
    if (r->read_only)
        return LD_STATUS_ACCESS_DENIED;
    /* Under the lock, with the state read again: the order is the one
     * every process agrees on, and what is deleted leaves it. */
    int lock;
    ld_status st = ldr_lock(r, &lock);
    if (st == LD_STATUS_SUCCESS)
        st = ldr_state_reload(r);
    uint32_t del = 0;
    if (st == LD_STATUS_SUCCESS)
        st = prune(r, NULL, NULL, &del);
    if (del)
        (void)ldr_state_save(r);
    ldr_unlock(lock);
    if (deleted)
        *deleted = del;
    return st;
}

/* ---- captures into the reports ---- */

/* The storage could not save the state, so the dump was not kept: say so
 * (ld_reports_error, and event 6 when an engine is there to tell). */
static void not_kept(ld_reports *r, ld_engine *e, ld_status st, const char *what)
{
    snprintf(r->error, sizeof r->error, "cannot save the throttling state %s/%s (%s): %s", r->root, LDR_STATE_FILE,
             ld_status_describe(st), what);
    if (!e)
        return;
    ld_admission note;
    memset(&note, 0, sizeof note);
    snprintf(note.description, sizeof note.description, "Throttling state not saved (%.60s): %s",
             ld_status_describe(st), what);
    snprintf(note.param_name[0], sizeof note.param_name[0], "ThrottleStateSaved");
    (void)ld_engine_note(e, &note);
}

static ld_status admit_hook(void *arg, const ld_capture_request *req, ld_admission *why)
{
    ld_reports *r = arg;
    ld_status st = ld_reports_admit(r, r->admit_component, req->type, why);
    if (st != LD_STATUS_SUCCESS || !r->admit_rel)
        return st;
    /* Admitted, and written now: the landing record first. The state is
     * saved before the machine is stopped and the dump is named, so a dump
     * that lands is counted whatever fails after it; if it cannot be
     * saved no dump is taken. */
    st = ldr_landing_begin(r, r->admit_component, r->admit_time, r->admit_rel);
    if (st != LD_STATUS_SUCCESS) {
        snprintf(r->error, sizeof r->error, "cannot save the throttling state %s/%s (%s): no dump was taken", r->root,
                 LDR_STATE_FILE, ld_status_describe(st));
        memset(why, 0, sizeof *why);
        snprintf(why->description, sizeof why->description,
                 "Live dump not taken: the throttling state could not be saved (%.80s)", ld_status_describe(st));
        snprintf(why->param_name[0], sizeof why->param_name[0], "ThrottleStateSaved");
    }
    return st;
}

/* After a dump landed under `rel`: the state (its place, newest; a full
 * dump's time), retention (never of this dump), the state saved. Failing
 * to save it then is no failure of the dump: a full dump's landing record,
 * saved before, already counts it, and a small one is added at the next
 * load. */
static void landed(ld_reports *r, ld_engine *e, const char *rel, const char *component, bool full, uint64_t when)
{
    (void)ldr_reconcile(r, rel, NULL);
    (void)ldr_record(r, rel, component, full, when);
    (void)prune(r, e, rel, NULL);
    (void)ldr_state_save(r);
}

/* A small dump landed without the lock: record it if the lock is free.
 * Busy (another process is taking a full dump): the next load adds it,
 * after the reports it knows, and its retention runs at the next landing. */
static void landed_small(ld_reports *r, ld_engine *e, const char *rel, const char *component, uint64_t when)
{
    int lock;
    if (ldr_trylock(r, &lock) != LD_STATUS_SUCCESS)
        return;
    if (ldr_state_reload(r) == LD_STATUS_SUCCESS)
        landed(r, e, rel, component, false, when);
    ldr_unlock(lock);
}

/* ---- held deferred dumps ---- */

static bool held_is(const ld_engine *e, const ldr_held *h)
{
    return ld_engine_holds(e, h->handle) && ld_dump_get_info(h->handle)->system_uptime == h->uptime;
}

/* Forget the held dumps the engine no longer holds (discarded through the
 * engine, or the engine's own limit), so they stop counting. */
static void forget_released(ld_reports *r, const ld_engine *e)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < r->held_count; i++)
        if (held_is(e, &r->held[i]))
            r->held[kept++] = r->held[i];
    r->held_count = kept;
}

static ldr_held *find_held(ld_reports *r, const ld_dump *d)
{
    for (uint32_t i = 0; d && i < r->held_count; i++)
        if (r->held[i].handle == d)
            return &r->held[i];
    return NULL;
}

static void forget_held(ld_reports *r, const ldr_held *h)
{
    uint32_t i = (uint32_t)(h - r->held);
    memmove(&r->held[i], &r->held[i + 1], (r->held_count - i - 1) * sizeof r->held[0]);
    r->held_count--;
}

/* A corrupt throttling state found at open is told in the event stream
 * too (event 6), once, to the first engine that captures or writes here. */
static void note_state_problem(ld_reports *r, ld_engine *e)
{
    if (!r->state_problem[0] || r->state_problem_noted)
        return;
    r->state_problem_noted = true;
    ld_admission note;
    memset(&note, 0, sizeof note);
    const char *why = strstr(r->state_problem, LDR_STATE_FILE ": ");
    snprintf(note.description, sizeof note.description, "Throttling state %.150s",
             why ? why + strlen(LDR_STATE_FILE ": ") : r->state_problem);
    snprintf(note.param_name[0], sizeof note.param_name[0], "ThrottleStateRebuilt");
    note.param_value[0] = 1;
    snprintf(note.param_name[1], sizeof note.param_name[1], "LastFullLiveReportUnixTime");
    note.param_value[1] = r->system_last;
    (void)ld_engine_note(e, &note);
}

/* The storage's own refusal, as event 6, when it decides without the
 * engine starting a capture. */
static ld_status refuse(ld_engine *e, ld_status st, ld_admission *why, ld_result *res)
{
    (void)ld_engine_note(e, why);
    return res->status = st;
}

/* ld_reports_capture, arguments checked and, for a full dump, under the
 * throttling lock with the state read again. */
static ld_status capture_locked(ld_reports *r, ld_engine *e, const char *component, const ld_capture_request *req,
                                const ld_format *format, ld_result *res, char *path, size_t cap)
{
    char where[LD_SETTINGS_PATH_MAX + 64];
    bool defer = (req->flags & LD_FLAG_DEFER) != 0;
    note_state_problem(r, e);
    forget_released(r, e);
    ld_status st;
    /* While the engine holds a dump it may start no capture at all (its
     * max_deferred limit, LD_STATUS_DEVICE_BUSY); throttling is decided here
     * first, so a throttled request is named as such (event 6 alone). */
    if (ld_engine_deferred_count(e) > 0) {
        ld_admission why;
        st = ld_reports_admit(r, component, req->type, &why);
        if (st != LD_STATUS_SUCCESS)
            return refuse(e, st, &why, res);
    }
    st = ld_engine_set_admission(e, admit_hook, r);
    if (st != LD_STATUS_SUCCESS)
        return res->status = st;
    r->admit_component = component;
    bool full = req->type == LD_DUMP_FULL_KERNEL;
    uint64_t when = ldr_now(r);
    ld_sink *sink = NULL;
    const char *rel = NULL;
    if (!defer) {
        st = open_report_sink(r, component, full, ld_format_name(format), when, &sink, where, sizeof where);
        if (st != LD_STATUS_SUCCESS) {
            (void)ld_engine_set_admission(e, NULL, NULL);
            r->admit_component = NULL;
            return res->status = st;
        }
        rel = where + strlen(r->root) + 1;
        /* The hook saves the landing record once the dump is admitted. */
        r->admit_rel = full ? rel : NULL;
        r->admit_time = when;
    }
    st = ld_engine_capture(e, req, defer ? NULL : format, sink, res);
    (void)ld_engine_set_admission(e, NULL, NULL);
    r->admit_component = NULL;
    r->admit_rel = NULL;
    if (st != LD_STATUS_SUCCESS)
        ldr_landing_cancel(r);
    if (st == LD_STATUS_SUCCESS && defer && res->deferred && r->held_count < LD_MAX_DEFERRED) {
        ldr_held *h = &r->held[r->held_count++];
        h->handle = res->deferred;
        h->uptime = ld_dump_get_info(res->deferred)->system_uptime;
        snprintf(h->component, sizeof h->component, "%s", component);
        h->time = when;
        h->full = full;
    }
    if (st == LD_STATUS_SUCCESS && !defer) {
        if (path && cap)
            snprintf(path, cap, "%s", where);
        if (full)
            landed(r, e, rel, component, true, when);
        else
            landed_small(r, e, rel, component, when);
    }
    return st;
}

ld_status ld_reports_capture(ld_reports *r, ld_engine *e, const char *component, const ld_capture_request *req,
                             const ld_format *format, ld_result *result, char *path, size_t cap)
{
    ld_result local;
    ld_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    if (path && cap)
        path[0] = 0;
    if (r)
        r->error[0] = 0;
    if (!r || !e || !req || !ld_component_name_valid(component))
        return res->status = LD_STATUS_INVALID_PARAMETER;
    if (r->read_only)
        return res->status = LD_STATUS_ACCESS_DENIED;
    bool defer = (req->flags & LD_FLAG_DEFER) != 0;
    if (!defer && !format)
        format = ld_format_dmp(); /* live kernel reports are .dmp files, as on Windows */
    if (!defer && (!ld_format_name(format) || !ext_ok(ld_format_name(format))))
        return res->status = LD_STATUS_INVALID_PARAMETER;
    if (cancelled(r))
        return res->status = LD_STATUS_CANCELLED;
    /* Only full dumps are throttled: small ones need no lock. */
    if (req->type != LD_DUMP_FULL_KERNEL)
        return capture_locked(r, e, component, req, format, res, path, cap);
    int lock;
    ld_status st = ldr_lock(r, &lock);
    if (st == LD_STATUS_SUCCESS)
        st = ldr_state_reload(r);
    if (st == LD_STATUS_SUCCESS)
        st = capture_locked(r, e, component, req, format, res, path, cap);
    else
        res->status = st;
    ldr_unlock(lock);
    return st;
}

void ld_reports_set_progress(ld_reports *r, ld_progress_fn progress, void *arg)
{
    if (!r)
        return;
    r->progress = progress;
    r->progress_arg = arg;
}

/* ld_reports_write_deferred, arguments checked, under the throttling lock
 * with the state read again. */
static ld_status write_deferred_locked(ld_reports *r, ld_engine *e, const char *component, const ld_dump *handle,
                                       const ld_format *format, ld_result *res, char *path, size_t cap)
{
    note_state_problem(r, e);
    forget_released(r, e);
    /* A handle no longer held is not dereferenced: the engine refuses it
     * (events 201/202) and aborts the sink, which removes its file. */
    const ld_dump *d = handle ? handle : ld_engine_deferred(e);
    bool live = d && ld_engine_holds(e, d);
    bool full = !live || ld_dump_get_info(d)->dump_type == LD_DUMP_FULL_KERNEL;
    ldr_held *h = live ? find_held(r, d) : NULL;
    uint64_t when = ldr_now(r);
    if (h) {
        /* Admitted at capture: it lands under its own component and capture
         * time, which is what throttling records. */
        if (strcmp(h->component, component) != 0)
            return res->status = LD_STATUS_INVALID_PARAMETER;
        when = h->time;
    } else if (live && full) {
        /* Captured without this storage: not admitted yet, so now. */
        ld_admission why;
        ld_status ast = ld_reports_admit(r, component, LD_DUMP_FULL_KERNEL, &why);
        if (ast != LD_STATUS_SUCCESS)
            return refuse(e, ast, &why, res);
    }
    char where[LD_SETTINGS_PATH_MAX + 64];
    ld_sink *sink;
    ld_status st = open_report_sink(r, component, full, ld_format_name(format), when, &sink, where, sizeof where);
    if (st != LD_STATUS_SUCCESS)
        return res->status = st;
    const char *rel = where + strlen(r->root) + 1;
    /* A full dump's landing record first (see admit_hook): if it cannot be
     * saved, the dump is not written and stays held. */
    if (live && full) {
        st = ldr_landing_begin(r, component, when, rel);
        if (st != LD_STATUS_SUCCESS) {
            sink->abort(sink);
            not_kept(r, e, st, "the dump was not written and is still held");
            return res->status = st;
        }
    }
    st = ld_engine_write_deferred_ex(e, handle, format, sink, r->progress, r->progress_arg, res);
    if (st == LD_STATUS_SUCCESS) {
        if (h)
            forget_held(r, h);
        if (path && cap)
            snprintf(path, cap, "%s", where);
        landed(r, e, rel, component, full, when);
    } else {
        ldr_landing_cancel(r);
    }
    return st;
}

ld_status ld_reports_write_deferred(ld_reports *r, ld_engine *e, const char *component, const ld_dump *handle,
                                    const ld_format *format, ld_result *result, char *path, size_t cap)
{
    ld_result local;
    ld_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    if (path && cap)
        path[0] = 0;
    if (!format)
        format = ld_format_dmp();
    if (r)
        r->error[0] = 0;
    if (!r || !e || !ld_component_name_valid(component) || !ld_format_name(format) || !ext_ok(ld_format_name(format)))
        return res->status = LD_STATUS_INVALID_PARAMETER;
    if (r->read_only)
        return res->status = LD_STATUS_ACCESS_DENIED;
    if (cancelled(r))
        return res->status = LD_STATUS_CANCELLED; /* the dump stays held */
    int lock;
    ld_status st = ldr_lock(r, &lock);
    if (st == LD_STATUS_SUCCESS)
        st = ldr_state_reload(r);
    if (st == LD_STATUS_SUCCESS)
        st = write_deferred_locked(r, e, component, handle, format, res, path, cap);
    else
        res->status = st;
    ldr_unlock(lock);
    return st;
}

ld_status ld_reports_discard_deferred(ld_reports *r, ld_engine *e, const ld_dump *handle)
{
    if (!r || !e)
        return LD_STATUS_INVALID_PARAMETER;
    forget_released(r, e);
    const ld_dump *d = handle ? handle : ld_engine_deferred(e);
    ldr_held *h = d && ld_engine_holds(e, d) ? find_held(r, d) : NULL;
    ld_status st = ld_engine_discard_deferred_dump(e, d);
    if (st == LD_STATUS_SUCCESS && h)
        forget_held(r, h);
    return st;
}
