/* LD_PRELOAD shim for the CLI test: pread at the file offset named by
 * LD_TEST_EIO_AT fails with EIO, so a page read error can be met from the
 * shell (a real disk error cannot be made on demand). */
#undef _FILE_OFFSET_BITS /* define pread and pread64 both, not one as the other */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static ssize_t eio_or(const char *name, int fd, void *buf, size_t n, off_t off)
{
    const char *at = getenv("LD_TEST_EIO_AT");
    if (at && off == (off_t)strtoll(at, NULL, 10)) {
        errno = EIO;
        return -1;
    }
    pread_fn real = (pread_fn)dlsym(RTLD_NEXT, name);
    return real(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    return eio_or("pread", fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
    return eio_or("pread64", fd, buf, n, off);
}
