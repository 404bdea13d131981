/* LD_PRELOAD shim for the CLI test: creating a file (open/openat with
 * O_CREAT) whose path contains LD_TEST_CREATE_MATCH fails with the errno
 * LD_TEST_CREATE_ERRNO, so errors such as EROFS can be met from the shell
 * without mounting anything. */
#undef _FILE_OFFSET_BITS /* define open and open64 both, not one as the other */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open_fn)(const char *, int, ...);

static int injected(const char *path, int flags)
{
    const char *m = getenv("LD_TEST_CREATE_MATCH"), *e = getenv("LD_TEST_CREATE_ERRNO");
    if (!m || !e || !*m || !(flags & O_CREAT) || !strstr(path, m))
        return 0;
    errno = atoi(e);
    return 1;
}

static mode_t mode_of(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

#define AT(name)                                                                                    \
    int name(int dfd, const char *path, int flags, ...)                                             \
    {                                                                                               \
        va_list ap;                                                                                 \
        va_start(ap, flags);                                                                        \
        mode_t mode = mode_of(flags, ap);                                                           \
        va_end(ap);                                                                                 \
        if (injected(path, flags))                                                                  \
            return -1;                                                                              \
        return ((openat_fn)dlsym(RTLD_NEXT, #name))(dfd, path, flags, mode);                        \
    }
#define PLAIN(name)                                                                                 \
    int name(const char *path, int flags, ...)                                                      \
    {                                                                                               \
        va_list ap;                                                                                 \
        va_start(ap, flags);                                                                        \
        mode_t mode = mode_of(flags, ap);                                                           \
        va_end(ap);                                                                                 \
        if (injected(path, flags))                                                                  \
            return -1;                                                                              \
        return ((open_fn)dlsym(RTLD_NEXT, #name))(path, flags, mode);                               \
    }

AT(openat)
AT(openat64)
PLAIN(open)
PLAIN(open64)
