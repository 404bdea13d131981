/* One live dump at a time per machine: an exclusive flock on a lock file.
 *
 * Windows refuses a second live dump while one runs (a global busy flag);
 * processes that dump the same real machine share no memory, so the flag
 * is a file lock here. flock belongs to the open file description: the
 * kernel drops it when the holder's last descriptor closes, which includes
 * any exit, SIGKILL and crash, so no stale lock can outlive its holder. The
 * file itself is never removed: unlinking a lock file lets a waiter lock
 * the old inode while a newcomer locks a new one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/runtime.h"
#include "errno_status.h"
#include "file_io.h"

#define NAME_MAX_LEN 32

struct ld_machine_lock {
    int fd;
};

const char *ld_machine_lock_dir(const char *dir)
{
    if (dir && dir[0])
        return dir;
    const char *env = getenv("LIVEDUMP_LOCK_DIR");
    return env && env[0] ? env : LD_MACHINE_LOCK_DIR;
}

/* One path component of safe characters, not hidden. */
static bool name_ok(const char *name)
{
    if (!name || !name[0] || name[0] == '.')
        return false;
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= NAME_MAX_LEN || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                   c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* The folder: created 0700 if missing; a real directory (not a symlink),
 * ours or root's, that nobody else may write into (or they could swap the
 * lock file). */
static ld_status open_dir(const char *dir, int *out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ldu_errno_status(errno);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOTDIR ? LD_STATUS_ACCESS_DENIED : ldu_errno_status(errno);
    struct stat st;
    if (fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0) ||
        (st.st_mode & (S_IWGRP | S_IWOTH))) {
        close(dfd);
        return LD_STATUS_ACCESS_DENIED;
    }
    *out = dfd;
    return LD_STATUS_SUCCESS;
}

ld_status ld_machine_lock_acquire(const char *dir, const char *name, bool wait, ld_machine_lock **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!name_ok(name))
        return LD_STATUS_INVALID_PARAMETER;
    int dfd = -1;
    ld_status st = open_dir(ld_machine_lock_dir(dir), &dfd);
    if (st != LD_STATUS_SUCCESS)
        return st;
    char file[NAME_MAX_LEN + 8];
    snprintf(file, sizeof file, "%s.lock", name);
    /* Never through a symlink; O_NONBLOCK so a FIFO planted there cannot
     * hang the open (it is refused just below). */
    struct stat sb;
    int fd = ldu_open_regular(dfd, file, O_RDWR | O_CREAT | O_NOFOLLOW, 0600, &sb);
    int err = errno;
    close(dfd);
    if (fd == -1)
        return err == ELOOP ? LD_STATUS_OBJECT_NAME_COLLISION : ldu_errno_status(err);
    /* Our own regular file with one name: not another user's, not a hard
     * link to some other file. */
    if (fd == LDU_NOT_REGULAR || sb.st_uid != geteuid() || sb.st_nlink != 1) {
        if (fd >= 0)
            close(fd);
        return LD_STATUS_OBJECT_NAME_COLLISION;
    }
    st = ldu_flock(fd, wait);
    if (st != LD_STATUS_SUCCESS) {
        close(fd);
        return st;
    }
    ld_machine_lock *lock = malloc(sizeof *lock);
    if (!lock) {
        close(fd);
        return LD_STATUS_NO_MEMORY;
    }
    lock->fd = fd;
    /* Who holds it, for whoever looks (cat the file); best effort. */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) {
        /* informational only */
    }
    *out = lock;
    return LD_STATUS_SUCCESS;
}

void ld_machine_lock_release(ld_machine_lock *lock)
{
    if (!lock)
        return;
    close(lock->fd); /* drops the flock */
    free(lock);
}
