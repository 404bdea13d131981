/* Retention (FullLiveReportsMax, AlwaysKeepMemoryDump,
 * DeleteLiveMiniDumps) and the removal of incomplete leftovers, in the
 * order reports landed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errno_status.h"
#include "file_io.h"
#include "folders.h"
#include "known.h"
#include "listing.h"
#include "lock.h"
#include "retention.h"
#include "throttle.h"

static const char *base_name(const ld_report_entry *x)
{
    const char *slash = strrchr(x->path, '/');
    return slash ? slash + 1 : x->path;
}

static void note_deleted(ld_engine *e, const ld_report_entry *x, const char *rule, uint64_t limit)
{
    if (!e)
        return;
    ld_admission note;
    memset(&note, 0, sizeof note);
    snprintf(note.description, sizeof note.description, "Report deleted by %s: %.100s", rule, base_name(x));
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
    int fd = ldr_open_dir_at(r->root_fd, x->component, false);
    if (fd >= 0 && ldr_check_dir(fd, x->component, NULL) != LD_STATUS_SUCCESS) {
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
ld_status ldr_prune(ld_reports *r, ld_engine *e, const char *keep, uint32_t *deleted)
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
        st = ldr_prune(r, NULL, NULL, &del);
    if (del)
        (void)ldr_state_save(r);
    ldr_unlock(lock);
    if (deleted)
        *deleted = del;
    return st;
}
