/* File sink: positioned writes to "<path>.partial", made durable and
 * renamed to <path> only when the whole dump is written. Dumps hold
 * secrets: the file is created 0600, exclusively, and never through a
 * symlink. While it is written the .partial file is held under an
 * exclusive flock: the report storage removes a leftover .partial (a
 * crashed writer's) only when it can take that lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/runtime.h"

typedef struct file_sink {
    ld_sink sink;
    int fd;
    char *path;
    char *tmp;
} file_sink;

static ld_status errno_status(int err)
{
    switch (err) {
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return LD_STATUS_DISK_FULL;
    case EEXIST:
        return LD_STATUS_OBJECT_NAME_COLLISION;
    case EACCES:
    case EPERM:
    case ELOOP: /* O_NOFOLLOW met a symlink */
        return LD_STATUS_ACCESS_DENIED;
    case ENOENT:
    case ENOTDIR:
        return LD_STATUS_NO_SUCH_FILE;
    case ENOMEM:
        return LD_STATUS_NO_MEMORY;
    default:
        return LD_STATUS_IO_DEVICE_ERROR;
    }
}

static void release(file_sink *fs)
{
    if (fs->fd >= 0)
        close(fs->fd);
    free(fs->path);
    free(fs->tmp);
    free(fs);
}

static ld_status sink_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    file_sink *fs = sink->ctx;
    const char *p = buf;
    while (len > 0) {
        if (offset > (uint64_t)INT64_MAX)
            return LD_STATUS_DISK_FULL;
        ssize_t n = pwrite(fs->fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_status(errno);
        }
        if (n == 0)
            return LD_STATUS_DISK_FULL;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return LD_STATUS_SUCCESS;
}

static void sink_abort(ld_sink *sink)
{
    file_sink *fs = sink->ctx;
    unlink(fs->tmp);
    release(fs);
}

static ld_status sink_finish(ld_sink *sink, uint64_t size)
{
    file_sink *fs = sink->ctx;
    /* ftruncate sets the final size, so trailing holes exist in the file
     * without being written (sparse). */
    if (size > (uint64_t)INT64_MAX || ftruncate(fs->fd, (off_t)size) != 0 || fsync(fs->fd) != 0) {
        ld_status st = size > (uint64_t)INT64_MAX ? LD_STATUS_DISK_FULL : errno_status(errno);
        sink_abort(sink);
        return st;
    }
    /* link() refuses an existing name, unlike rename(): a dump never
     * replaces a file that appeared meanwhile. */
    if (link(fs->tmp, fs->path) != 0) {
        ld_status st = errno_status(errno);
        sink_abort(sink);
        return st;
    }
    unlink(fs->tmp);
    /* Make the new name durable too. */
    char *dir = strdup(fs->path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    release(fs);
    return LD_STATUS_SUCCESS;
}

/* Lock fd exclusively and check `name` still is that file. A file system
 * without flock leaves it unlocked: the pruner cannot lock it either, so it
 * never removes it. */
static bool lock_and_still_named(int fd, const char *name)
{
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return true;
    struct stat mine, named;
    return fstat(fd, &mine) == 0 && lstat(name, &named) == 0 && mine.st_dev == named.st_dev &&
           mine.st_ino == named.st_ino;
}

ld_status ld_sink_file_open(const char *path, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!path || !path[0] || strlen(path) > PATH_MAX - 16)
        return LD_STATUS_INVALID_PARAMETER;
    struct stat st;
    /* Refuse an existing final name up front (a clear error before any
     * capture work); finish checks again atomically. */
    if (lstat(path, &st) == 0)
        return LD_STATUS_OBJECT_NAME_COLLISION;
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs)
        return LD_STATUS_NO_MEMORY;
    fs->fd = -1;
    fs->path = strdup(path);
    size_t tl = strlen(path) + sizeof ".partial";
    fs->tmp = malloc(tl);
    if (!fs->path || !fs->tmp) {
        release(fs);
        return LD_STATUS_NO_MEMORY;
    }
    snprintf(fs->tmp, tl, "%s.partial", path);
    /* Between the create and the lock a pruner may take the lock of the
     * new, empty file and remove it: then the name no longer leads to our
     * file once we hold the lock, and we create it again. */
    for (int attempt = 0;; attempt++) {
        fs->fd = open(fs->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fs->fd < 0) {
            ld_status s = errno_status(errno);
            release(fs);
            return s;
        }
        if (lock_and_still_named(fs->fd, fs->tmp))
            break;
        close(fs->fd);
        fs->fd = -1;
        if (attempt == 3) {
            release(fs);
            return LD_STATUS_IO_DEVICE_ERROR;
        }
    }
    /* The umask can only remove bits; make sure no group/other bit exists
     * even if the process umask was odd. */
    (void)fchmod(fs->fd, 0600);
    fs->sink.version = LD_SINK_VERSION;
    fs->sink.ctx = fs;
    fs->sink.write = sink_write;
    fs->sink.finish = sink_finish;
    fs->sink.abort = sink_abort;
    *out = &fs->sink;
    return LD_STATUS_SUCCESS;
}
