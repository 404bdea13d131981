/* Listing: the reports on disk (root and component folders), in the
 * order they landed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errno_status.h"
#include "folders.h"
#include "known.h"
#include "listing.h"
#include "names.h"

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
        if (!ldr_parse_name(de->d_name, &e) || (component && strcmp(e.component, component)))
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
        int sfd = ldr_open_dir_at(r->root_fd, de->d_name, false);
        if (sfd < 0)
            continue;
        if (ldr_check_dir(sfd, sub, NULL) == LD_STATUS_SUCCESS)
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
