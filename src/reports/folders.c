/* The report folders: the root opened one component at a time without
 * following a symlink, and every folder checked as opened (a folder, ours,
 * not writable by others) before anything is put in it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "errno_status.h"
#include "folders.h"

/* A folder reports may live in, already open (so the check is of the
 * folder used, not of a name): a folder, ours, not writable by group or
 * others. */
ld_status ldr_check_dir(int fd, const char *shown, ld_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        return ldu_fail_os(err, ldu_errno_status(e), e, "%s: %s", shown, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED, "%s: not a folder", shown);
    if (st.st_uid != geteuid())
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED, "%s: refusing a folder owned by another user", shown);
    if (st.st_mode & 022)
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED, "%s: refusing a folder writable by others (mode %03o)", shown,
                        (unsigned)(st.st_mode & 0777));
    return LD_STATUS_SUCCESS;
}

/* Open `name` in the folder dfd as a folder, never through a symlink;
 * create it 0700 first when missing and `create`. -1 with errno. */
int ldr_open_dir_at(int dfd, const char *name, bool create)
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
 * (0700), and only when `create`; it must then pass ldr_check_dir. */
ld_status ldr_open_root(const char *path, bool create, int *out, ld_error *err)
{
    *out = -1;
    char buf[LD_SETTINGS_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ldu_fail_os(err, ldu_errno_status(e), e, "%s: %s", path, strerror(e));
    }
    char *save = NULL;
    char *c = strtok_r(buf, "/", &save);
    while (c) {
        char *next = strtok_r(NULL, "/", &save);
        int nfd = ldr_open_dir_at(fd, c, create && !next);
        if (nfd < 0) {
            int e = errno;
            int upto = (int)(c - buf + (ptrdiff_t)strlen(c));
            close(fd);
            /* A symlink or a non-folder in the path is refused as unsafe,
             * not only as what the OS calls it. */
            if (e == ELOOP)
                return ldu_fail_os(err, LD_STATUS_ACCESS_DENIED, e,
                                   "%s: refusing a symlink in the reports path: %.*s", path, upto, path);
            if (e == ENOTDIR)
                return ldu_fail_os(err, LD_STATUS_ACCESS_DENIED, e, "%s: not a folder: %.*s", path, upto, path);
            return ldu_fail_os(err, ldu_errno_status(e), e, "%s: %s%s", path,
                               e == ENOENT || !next ? "" : "cannot open the folder: ", strerror(e));
        }
        close(fd);
        fd = nfd;
        c = next;
    }
    ld_status st = ldr_check_dir(fd, path, err);
    if (st != LD_STATUS_SUCCESS) {
        close(fd);
        return st;
    }
    *out = fd;
    return LD_STATUS_SUCCESS;
}

/* The folder of a dump, open: the root for full dumps, ROOT/COMPONENT
 * (created 0700 when missing) else; *owned says whether to close it. */
ld_status ldr_dump_folder(ld_reports *r, const char *component, bool full, int *dfd, bool *owned)
{
    *owned = false;
    *dfd = r->root_fd;
    ld_status st = ldr_check_dir(r->root_fd, r->root, NULL);
    if (st != LD_STATUS_SUCCESS || full)
        return st;
    int fd = ldr_open_dir_at(r->root_fd, component, true);
    if (fd < 0)
        return ldu_errno_status(errno);
    st = ldr_check_dir(fd, component, NULL);
    if (st != LD_STATUS_SUCCESS) {
        close(fd);
        return st;
    }
    *dfd = fd;
    *owned = true;
    return LD_STATUS_SUCCESS;
}
