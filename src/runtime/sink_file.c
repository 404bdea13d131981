/* File sink: positioned writes to "<name>.partial" (shorter when that
 * would exceed NAME_MAX: ld_sink_file_partial_name), made durable and
 * given the name <name> only when the whole dump is written. Dumps hold
 * secrets: the file is created 0600, exclusively, and never through a
 * symlink; every name is resolved relative to a held directory descriptor,
 * so the folder cannot be swapped under the sink. While it is written the
 * .partial file is held under an exclusive flock: a leftover .partial (a
 * crashed writer's) is told from a live one by that lock, and only a
 * leftover is removed (by the report storage's prune, or by the next sink
 * for the same name). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "livedump/runtime.h"
#include "livedump/sys/sink.h"
#include "errno_status.h"
#include "file_io.h"
#include "temp_name.h"

typedef struct file_sink {
    ld_sink sink;
    int fd;
    int dfd;   /* the folder: every name below is relative to it */
    char *name;
    char *tmp;
} file_sink;

/* How finish gives the file its name; tests/runtime/test_sink_file.c
 * replaces it to act as a file system without hard links. */
static int (*link_fn)(int, const char *, int, const char *, int) = linkat;

static void release(file_sink *fs)
{
    if (fs->fd >= 0)
        close(fs->fd);
    if (fs->dfd >= 0)
        close(fs->dfd);
    free(fs->name);
    free(fs->tmp);
    free(fs);
}

static ld_status sink_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    file_sink *fs = sink->ctx;
    return ldu_write_all(fs->fd, true, offset, buf, len);
}

static void sink_abort(ld_sink *sink)
{
    file_sink *fs = sink->ctx;
    if (ldu_still_named(fs->fd, fs->dfd, fs->tmp))
        (void)unlinkat(fs->dfd, fs->tmp, 0);
    release(fs);
}

/* A file system without hard links (vfat, exFAT, some SMB and FUSE): rename
 * without replacing. Where even that is missing the dump is refused rather
 * than risk rename() overwriting a file that appeared meanwhile. */
static int rename_noreplace(int dfd, const char *from, const char *to)
{
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, dfd, from, dfd, to, 1 /* RENAME_NOREPLACE */);
#else
    (void)dfd, (void)from, (void)to;
    errno = EINVAL;
    return -1;
#endif
}

/* Replaced by the test as well, to act as a kernel without renameat2. */
static int (*rename_fn)(int, const char *, const char *) = rename_noreplace;

static bool no_hard_links(int err)
{
    return err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS;
}

static ld_status publish(file_sink *fs)
{
    /* linkat() refuses an existing name, unlike rename(): a dump never
     * replaces a file that appeared meanwhile. */
    if (link_fn(fs->dfd, fs->tmp, fs->dfd, fs->name, 0) == 0) {
        (void)unlinkat(fs->dfd, fs->tmp, 0);
        return LD_STATUS_SUCCESS;
    }
    if (!no_hard_links(errno))
        return ldu_errno_status(errno);
    if (rename_fn(fs->dfd, fs->tmp, fs->name) == 0)
        return LD_STATUS_SUCCESS;
    if (errno == EINVAL || no_hard_links(errno))
        return LD_STATUS_NOT_SUPPORTED;
    return ldu_errno_status(errno);
}

static ld_status sink_finish(ld_sink *sink, uint64_t size)
{
    file_sink *fs = sink->ctx;
    /* ftruncate sets the final size, so trailing holes exist in the file
     * without being written (sparse). */
    if (size > (uint64_t)INT64_MAX || ftruncate(fs->fd, (off_t)size) != 0 || fsync(fs->fd) != 0) {
        ld_status st = size > (uint64_t)INT64_MAX ? LD_STATUS_DISK_FULL : ldu_errno_status(errno);
        sink_abort(sink);
        return st;
    }
    ld_status st = publish(fs);
    if (st != LD_STATUS_SUCCESS) {
        sink_abort(sink);
        return st;
    }
    /* Make the new name durable too. */
    (void)fsync(fs->dfd);
    release(fs);
    return LD_STATUS_SUCCESS;
}

/* Lock fd exclusively and check `name` still is that file. A file system
 * without flock leaves it unlocked: the pruner cannot lock it either, so it
 * never removes it. */
static bool lock_and_still_named(int fd, int dfd, const char *name)
{
    if (ldu_flock(fd, true) != LD_STATUS_SUCCESS)
        return true;
    return ldu_still_named(fd, dfd, name);
}

/* `tmp` exists: remove it if it is a leftover, i.e. our own regular file
 * that no live writer holds the flock of, and the name still leads to the
 * file we locked (never through a symlink: it is opened O_NOFOLLOW and
 * removed relative to the folder). LD_STATUS_DEVICE_BUSY: a live writer
 * has it; LD_STATUS_OBJECT_NAME_COLLISION: not a leftover of ours (a
 * symlink, not a regular file, another user's), the name stays taken. */
static ld_status remove_stale(int dfd, const char *tmp)
{
    struct stat s;
    int fd = ldu_open_regular(dfd, tmp, O_RDONLY | O_NOFOLLOW, 0, &s);
    if (fd == -1)
        return errno == ENOENT ? LD_STATUS_SUCCESS : LD_STATUS_OBJECT_NAME_COLLISION;
    if (fd == LDU_NOT_REGULAR)
        return LD_STATUS_OBJECT_NAME_COLLISION;
    ld_status st = s.st_uid == geteuid() ? ldu_flock(fd, false) : LD_STATUS_OBJECT_NAME_COLLISION;
    if (st == LD_STATUS_SUCCESS && ldu_still_named(fd, dfd, tmp)) /* else replaced meanwhile: look again */
        st = unlinkat(dfd, tmp, 0) == 0 || errno == ENOENT ? LD_STATUS_SUCCESS : ldu_errno_status(errno);
    close(fd);
    return st;
}

ld_status ld_sink_file_partial_name(const char *name, char *out, size_t cap)
{
    return ldu_temp_name(name, ".partial", out, cap);
}

/* Takes ownership of dfd. */
static ld_status open_in(int dfd, const char *name, ld_sink **out)
{
    struct stat st;
    /* Refuse an existing final name up front (a clear error before any
     * capture work); finish checks again atomically. A name the folder
     * cannot hold (too long, no search permission) is refused here too,
     * not after the capture when the link fails. */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        close(dfd);
        return LD_STATUS_OBJECT_NAME_COLLISION;
    }
    if (errno != ENOENT) {
        ld_status s = ldu_errno_status(errno);
        close(dfd);
        return s;
    }
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs) {
        close(dfd);
        return LD_STATUS_NO_MEMORY;
    }
    fs->fd = -1;
    fs->dfd = dfd;
    fs->name = strdup(name);
    fs->tmp = malloc(NAME_MAX + 1);
    if (!fs->name || !fs->tmp) {
        release(fs);
        return LD_STATUS_NO_MEMORY;
    }
    ld_status ps = ld_sink_file_partial_name(name, fs->tmp, NAME_MAX + 1);
    if (ps != LD_STATUS_SUCCESS) {
        release(fs);
        return ps;
    }
    /* A .partial in the way is a crashed writer's leftover (removed, then
     * we go on) or a live writer's (busy). Between the create and the lock
     * a pruner may take the lock of the new, empty file and remove it: then
     * the name no longer leads to our file once we hold the lock, and we
     * create it again. */
    for (int attempt = 0;; attempt++) {
        fs->fd = openat(dfd, fs->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fs->fd < 0) {
            ld_status s = ldu_errno_status(errno);
            if (errno == EEXIST && attempt < 3)
                s = remove_stale(dfd, fs->tmp);
            if (s == LD_STATUS_SUCCESS)
                continue;
            release(fs);
            return s;
        }
        if (lock_and_still_named(fs->fd, dfd, fs->tmp))
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

ld_status ld_sink_file_open(const char *path, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!path || !path[0])
        return LD_STATUS_INVALID_PARAMETER;
    if (strlen(path) >= PATH_MAX)
        return ldu_errno_status(ENAMETOOLONG);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!name[0])
        return LD_STATUS_INVALID_PARAMETER;
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ldu_errno_status(errno);
    return open_in(dfd, name, out);
}

ld_status ld_sink_file_openat(int dirfd, const char *name, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (dirfd < 0 || !name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return LD_STATUS_INVALID_PARAMETER;
    if (strlen(name) > NAME_MAX)
        return ldu_errno_status(ENAMETOOLONG);
    /* Our own descriptor: the caller may close theirs while we write. */
    int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return ldu_errno_status(errno);
    return open_in(dfd, name, out);
}
