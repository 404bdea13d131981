/* The few POSIX names the portable user-mode files use (the dump reader,
 * the errno map, temporary names, the shared file operations, the command
 * line's info and verify), for their Windows build: given to those files
 * with -include by the cross build (meson), never included by a source
 * file. Win32 code of the
 * Windows runtime (src/runtime/win/) uses Win32 itself. */
#ifndef LD_COMMON_WIN_POSIX_H
#define LD_COMMON_WIN_POSIX_H

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>

/* Every file we open is a byte stream: binary mode, never text mode's
 * CR LF translation. Our opens all say O_CLOEXEC (meaningless here). */
#undef O_CLOEXEC
#define O_CLOEXEC _O_BINARY
#ifndef O_NONBLOCK
#define O_NONBLOCK 0
#endif
#ifndef O_NOCTTY
#define O_NOCTTY 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef NAME_MAX
#define NAME_MAX 255
#endif

/* errno values Windows' CRT does not have: never produced here, mapped
 * all the same so the one errno map compiles unchanged. */
#ifndef EDQUOT
#define EDQUOT 10069
#endif
#ifndef ELOOP
#define ELOOP 10062
#endif
#ifndef ETXTBSY
#define ETXTBSY 10139
#endif
#ifndef EMLINK
#define EMLINK 10031
#endif

/* F_GETFL / F_SETFL are all the reader asks of fcntl (O_NONBLOCK off
 * again): nothing to do. */
#define F_GETFL 3
#define F_SETFL 4
static inline int ld_win_fcntl(int fd, int cmd, ...)
{
    (void)fd;
    (void)cmd;
    return 0;
}
#define fcntl ld_win_fcntl

/* pread: a read at an offset that leaves the file position alone, as
 * ReadFile with an OVERLAPPED offset does on a synchronous handle. */
static inline ssize_t ld_win_pread(int fd, void *buf, size_t len, int64_t offset)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(uint64_t)offset;
    ov.OffsetHigh = (DWORD)((uint64_t)offset >> 32);
    DWORD n = 0, want = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    if (!ReadFile(h, buf, want, &n, &ov)) {
        if (GetLastError() == ERROR_HANDLE_EOF)
            return 0;
        errno = EIO;
        return -1;
    }
    return (ssize_t)n;
}
#define pread(fd, buf, len, off) ld_win_pread((fd), (buf), (len), (int64_t)(off))

/* pwrite, as pread. */
static inline ssize_t ld_win_pwrite(int fd, const void *buf, size_t len, int64_t offset)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(uint64_t)offset;
    ov.OffsetHigh = (DWORD)((uint64_t)offset >> 32);
    DWORD n = 0, want = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    if (!WriteFile(h, buf, want, &n, &ov)) {
        errno = GetLastError() == ERROR_DISK_FULL ? ENOSPC : EIO;
        return -1;
    }
    return (ssize_t)n;
}
#define pwrite(fd, buf, len, off) ld_win_pwrite((fd), (buf), (len), (int64_t)(off))

/* Names relative to a folder descriptor: only the current folder
 * (AT_FDCWD), which is all the reader asks; anything else is ENOSYS. */
#ifndef AT_FDCWD
#define AT_FDCWD (-100)
#endif
#ifndef AT_SYMLINK_NOFOLLOW
#define AT_SYMLINK_NOFOLLOW 0x100
#endif
static inline int ld_win_openat(int dfd, const char *name, int flags, int mode)
{
    if (dfd != AT_FDCWD) {
        errno = ENOSYS;
        return -1;
    }
    return open(name, flags, mode);
}
#define openat(dfd, name, flags, mode) ld_win_openat((dfd), (name), (flags), (int)(mode))
static inline int ld_win_fstatat(int dfd, const char *name, struct stat *st, int flags)
{
    (void)flags;
    if (dfd != AT_FDCWD) {
        errno = ENOSYS;
        return -1;
    }
    return stat(name, st);
}
#define fstatat ld_win_fstatat

/* flock: a byte-range lock on the whole file (LockFileEx). */
#ifndef LOCK_SH
#define LOCK_SH 1
#define LOCK_EX 2
#define LOCK_NB 4
#define LOCK_UN 8
#endif
#ifndef EWOULDBLOCK
#define EWOULDBLOCK EAGAIN
#endif
static inline int ld_win_flock(int fd, int op)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    if (op & LOCK_UN)
        return UnlockFileEx(h, 0, MAXDWORD, MAXDWORD, &ov) ? 0 : (errno = EINVAL, -1);
    DWORD how = (op & LOCK_EX ? LOCKFILE_EXCLUSIVE_LOCK : 0) | (op & LOCK_NB ? LOCKFILE_FAIL_IMMEDIATELY : 0);
    if (LockFileEx(h, how, 0, MAXDWORD, MAXDWORD, &ov))
        return 0;
    errno = GetLastError() == ERROR_LOCK_VIOLATION ? EWOULDBLOCK : EIO;
    return -1;
}
#define flock ld_win_flock

static inline struct tm *ld_win_gmtime_r(const time_t *t, struct tm *out)
{
    return gmtime_s(out, t) == 0 ? out : NULL;
}
#define gmtime_r ld_win_gmtime_r

#endif
