/* Small, safe file operations for policy and report state: atomic
 * replacement and bounded reads, never through a symlink. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/reports/files.h"
#include "src/runtime/temp_name.h"

void ldr_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Open the folder of `path` and point *name at its last component. */
static int parent_fd(const char *path, const char **name)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    if (!slash)
        return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return fd;
}

ld_status ldr_write_atomic_at(int dfd, const char *name, const void *data, size_t len)
{
    /* name.tmp, shortened when over NAME_MAX: a valid name always works */
    char *tmp = malloc(NAME_MAX + 1);
    if (!tmp)
        return LD_STATUS_NO_MEMORY;
    ld_status ts = ldi_temp_name(name, ".tmp", tmp, NAME_MAX + 1);
    if (ts != LD_STATUS_SUCCESS) {
        free(tmp);
        return ts == LD_STATUS_NAME_TOO_LONG ? ldi_errno_status(ENAMETOOLONG) : ts;
    }
    /* A stale temporary file from a crash is ours to replace; a symlink in
     * its place is not followed (unlinkat removes the link itself). */
    (void)unlinkat(dfd, tmp, 0);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ld_status st = ldi_errno_status(errno);
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0600);
    const char *p = data;
    size_t left = len;
    ld_status st = LD_STATUS_SUCCESS;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = n < 0 ? ldi_errno_status(errno) : LD_STATUS_DISK_FULL;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (st == LD_STATUS_SUCCESS && fsync(fd) != 0)
        st = ldi_errno_status(errno);
    if (close(fd) != 0 && st == LD_STATUS_SUCCESS)
        st = ldi_errno_status(errno);
    if (st == LD_STATUS_SUCCESS && renameat(dfd, tmp, dfd, name) != 0)
        st = ldi_errno_status(errno);
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
    int dfd = parent_fd(path, &name);
    if (dfd < 0)
        return ldi_errno_status(errno);
    ld_status st = ldr_write_atomic_at(dfd, name, data, len);
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
    /* O_NONBLOCK: a FIFO in its place must not hang the open. */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ldi_errno_status(errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return LD_STATUS_ACCESS_DENIED;
    }
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
    int dfd = parent_fd(path, &name);
    if (dfd < 0)
        return ldi_errno_status(errno);
    ld_status st = ldr_read_small_at_st(dfd, name, max, out, len, info);
    close(dfd);
    return st;
}
