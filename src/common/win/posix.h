/* The few POSIX names the portable user-mode files use (the dump reader,
 * the errno map, temporary names, the command line's info and verify), for
 * their Windows build: given to those files with -include by the cross
 * build (meson), never included by a source file. Win32 code of the
 * Windows runtime (src/runtime/win/) uses Win32 itself. */
#ifndef LD_COMMON_WIN_POSIX_H
#define LD_COMMON_WIN_POSIX_H

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
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

static inline struct tm *ld_win_gmtime_r(const time_t *t, struct tm *out)
{
    return gmtime_s(out, t) == 0 ? out : NULL;
}
#define gmtime_r ld_win_gmtime_r

#endif
