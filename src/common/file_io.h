/* File operations every user-mode layer does the same way (libc only): open
 * a file and make sure it is a regular one, write or read a whole buffer,
 * flock, and "is this name still that file". One copy each, so a fix (a
 * FIFO that hangs an open, a short write, EINTR) is made once. */
#ifndef LD_COMMON_FILE_IO_H
#define LD_COMMON_FILE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "livedump/status.h"

/* ldu_open_regular's result when the name exists but is not a regular
 * file (a FIFO, a device, a folder), or cannot be fstat'ed. */
#define LDU_NOT_REGULAR (-2)

/* Open `name` relative to the folder dfd (AT_FDCWD: a path) with `flags`
 * (access mode, O_CREAT, O_NOFOLLOW to refuse a symlink, ...) and `mode`,
 * and make sure it is a regular file. O_NONBLOCK, O_NOCTTY and O_CLOEXEC
 * are added, so a FIFO or device in its place neither hangs the open nor
 * becomes our terminal; O_NONBLOCK is cleared again once it is known to be
 * a regular file. The descriptor; -1 with errno from open; LDU_NOT_REGULAR.
 * info (may be NULL) gets the fstat of the very file opened. */
int ldu_open_regular(int dfd, const char *name, int flags, mode_t mode, struct stat *info);

/* Write all `len` bytes of buf: at `offset` (pwrite) when `positioned`,
 * else where the descriptor stands (write; offset only counts, and must
 * be the position a caller keeps). EINTR is retried; a write of no byte,
 * or an offset beyond INT64_MAX, is LD_STATUS_DISK_FULL; an OS error is
 * mapped (ldu_errno_status). */
ld_status ldu_write_all(int fd, bool positioned, uint64_t offset, const void *buf, size_t len);

/* Read all `len` bytes at `offset` (pread). EINTR is retried. End of file
 * before the last byte: LD_STATUS_END_OF_FILE with errno 0; an OS error:
 * mapped, errno kept (a caller may give one its own meaning); an offset
 * that would pass INT64_MAX: LD_STATUS_INVALID_PARAMETER with errno
 * EINVAL. */
ld_status ldu_pread_all(int fd, void *buf, size_t len, uint64_t offset);

/* An exclusive flock on fd; `wait` false: LD_STATUS_DEVICE_BUSY when
 * another holds it. EINTR is retried; another error is mapped. */
ld_status ldu_flock(int fd, bool wait);

/* Does `name` in the folder dfd (not following a symlink) still lead to
 * the file open as fd? */
bool ldu_still_named(int fd, int dfd, const char *name);

#endif
