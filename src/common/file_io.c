/* File operations shared by the user-mode layers (src/common/file_io.h). */
#define _GNU_SOURCE
#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "errno_status.h"

int ldu_open_regular(int dfd, const char *name, int flags, mode_t mode, struct stat *info)
{
    int fd = openat(dfd, name, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    struct stat sb;
    int fl;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return LDU_NOT_REGULAR;
    }
    if (info)
        *info = sb;
    return fd;
}

ld_status ldu_write_all(int fd, bool positioned, uint64_t offset, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        if (offset > (uint64_t)INT64_MAX)
            return LD_STATUS_DISK_FULL;
        ssize_t n = positioned ? pwrite(fd, p, len, (off_t)offset) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ldu_errno_status(errno);
        }
        if (n == 0)
            return LD_STATUS_DISK_FULL;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ldu_pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
    if (len > (uint64_t)INT64_MAX || offset > (uint64_t)INT64_MAX - len) {
        errno = EINVAL;
        return LD_STATUS_INVALID_PARAMETER;
    }
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ldu_errno_status(errno);
        if (n == 0) {
            errno = 0;
            return LD_STATUS_END_OF_FILE;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ldu_flock(int fd, bool wait)
{
    int rc;
    while ((rc = flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc == 0)
        return LD_STATUS_SUCCESS;
    return errno == EWOULDBLOCK ? LD_STATUS_DEVICE_BUSY : ldu_errno_status(errno);
}

bool ldu_still_named(int fd, int dfd, const char *name)
{
    struct stat mine, named;
    return fstat(fd, &mine) == 0 && fstatat(dfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
           mine.st_dev == named.st_dev && mine.st_ino == named.st_ino;
}
