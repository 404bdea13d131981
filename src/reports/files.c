/* Small, safe file operations for policy and report state: atomic
 * replacement and bounded reads, never through a symlink. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "files.h"
#include "file_io.h"
#include "temp_name.h"

/* May a file that decides what is dumped live in this folder? Owned by
 * root or us, and not writable by group or others, unless the sticky bit
 * is set (as on /tmp): there others may add names but not rename or remove
 * ours, and a file of theirs fails the file's own owner check. */
static ld_status check_folder(int fd, const char *shown, int shown_len, ld_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        return ldu_fail_os(err, ldu_errno_status(e), e, "%.*s: %s", shown_len, shown, strerror(e));
    }
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED,
                        "refusing a folder owned by another user (uid %u) in the path: %.*s", (unsigned)st.st_uid,
                        shown_len, shown);
    if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED,
                        "refusing a folder writable by group or others (mode %03o) in the path: %.*s",
                        (unsigned)(st.st_mode & 0777), shown_len, shown);
    return LD_STATUS_SUCCESS;
}

int ldr_open_folder_of(const char *path, const char **name, ld_status *status, ld_error *err)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    *status = LD_STATUS_SUCCESS;
    const char *top = path[0] == '/' ? "/" : ".";
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e0 = errno;
    ld_status st = fd < 0 ? ldu_fail_os(err, ldu_errno_status(e0), e0, "%s: %s", top, strerror(e0))
                          : check_folder(fd, top, 1, err);
    /* Each folder below is opened O_NOFOLLOW relative to the one above and
     * checked as opened: no symlink and no unsafe folder anywhere. */
    const char *c = path;
    while (st == LD_STATUS_SUCCESS && slash && c < slash) {
        while (*c == '/')
            c++;
        if (c >= slash)
            break;
        const char *e = memchr(c, '/', (size_t)(slash - c + 1));
        char part[NAME_MAX + 1];
        size_t n = (size_t)(e - c);
        int upto = (int)(e - path);
        if (n > NAME_MAX) {
            st = ldu_fail_os(err, ldu_errno_status(ENAMETOOLONG), ENAMETOOLONG, "%.*s: %s", upto, path,
                             strerror(ENAMETOOLONG));
            break;
        }
        memcpy(part, c, n);
        part[n] = 0;
        int nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            int e2 = errno;
            struct stat ls;
            if ((e2 == ELOOP || e2 == ENOTDIR) && fstatat(fd, part, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode))
                st = ldu_fail(err, LD_STATUS_ACCESS_DENIED, "refusing a symlink in the path: %.*s", upto, path);
            else
                st = ldu_fail_os(err, ldu_errno_status(e2), e2, "%.*s: %s", upto, path, strerror(e2));
            break;
        }
        close(fd);
        fd = nfd;
        st = check_folder(fd, path, upto, err);
        c = e;
    }
    if (st != LD_STATUS_SUCCESS) {
        if (fd >= 0)
            close(fd);
        *status = st;
        return -1;
    }
    return fd;
}

/* Open the folder of `path` safely (ldr_open_folder_of) and point *name at
 * its last component; -1 with *status. */
static int parent_fd(const char *path, const char **name, ld_status *status)
{
    return ldr_open_folder_of(path, name, status, NULL);
}

ld_status ldr_write_atomic_at(int dfd, const char *name, const void *data, size_t len)
{
    /* name.tmp, shortened when over NAME_MAX: a valid name always works */
    char *tmp = malloc(NAME_MAX + 1);
    if (!tmp)
        return LD_STATUS_NO_MEMORY;
    ld_status ts = ldu_temp_name(name, ".tmp", tmp, NAME_MAX + 1);
    if (ts != LD_STATUS_SUCCESS) {
        free(tmp);
        return ts == LD_STATUS_NAME_TOO_LONG ? ldu_errno_status(ENAMETOOLONG) : ts;
    }
    /* A stale temporary file from a crash is ours to replace; a symlink in
     * its place is not followed (unlinkat removes the link itself). */
    (void)unlinkat(dfd, tmp, 0);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ld_status st = ldu_errno_status(errno);
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0600);
    ld_status st = ldu_write_all(fd, false, 0, data, len);
    if (st == LD_STATUS_SUCCESS && fsync(fd) != 0)
        st = ldu_errno_status(errno);
    if (close(fd) != 0 && st == LD_STATUS_SUCCESS)
        st = ldu_errno_status(errno);
    if (st == LD_STATUS_SUCCESS && renameat(dfd, tmp, dfd, name) != 0)
        st = ldu_errno_status(errno);
    if (st != LD_STATUS_SUCCESS)
        (void)unlinkat(dfd, tmp, 0);
    else
        (void)fsync(dfd);
    free(tmp);
    return st;
}

ld_status ldr_write_atomic(const char *path, const void *data, size_t len)
{
    const char *name;
    ld_status st;
    int dfd = parent_fd(path, &name, &st);
    if (dfd < 0)
        return st;
    st = ldr_write_atomic_at(dfd, name, data, len);
    close(dfd);
    return st;
}

ld_status ldr_read_small_at(int dfd, const char *name, size_t max, char **out, size_t *len)
{
    return ldr_read_small_at_st(dfd, name, max, out, len, NULL);
}

ld_status ldr_read_small_at_st(int dfd, const char *name, size_t max, char **out, size_t *len, struct stat *info)
{
    *out = NULL;
    *len = 0;
    struct stat st;
    int fd = ldu_open_regular(dfd, name, O_RDONLY | O_NOFOLLOW, 0, &st);
    if (fd == -1)
        return ldu_errno_status(errno);
    if (fd == LDU_NOT_REGULAR)
        return LD_STATUS_ACCESS_DENIED;
    if (info)
        *info = st;
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return LD_STATUS_FILE_CORRUPT;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return LD_STATUS_NO_MEMORY;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    *len = got;
    return LD_STATUS_SUCCESS;
}

ld_status ldr_read_small(const char *path, size_t max, char **out, size_t *len)
{
    return ldr_read_small_st(path, max, out, len, NULL);
}

ld_status ldr_read_small_st(const char *path, size_t max, char **out, size_t *len, struct stat *info)
{
    *out = NULL;
    *len = 0;
    const char *name;
    ld_status st;
    int dfd = parent_fd(path, &name, &st);
    if (dfd < 0)
        return st;
    st = ldr_read_small_at_st(dfd, name, max, out, len, info);
    close(dfd);
    return st;
}
