/* LD_PRELOAD shim for the CLI test: each write to a file whose name ends in
 * ".partial" (a dump being written) first sleeps LD_TEST_SLOW_PARTIAL_MS
 * milliseconds, so a write lasts long enough for a signal sent from the
 * shell to land in its middle, however fast the machine. */
#undef _FILE_OFFSET_BITS /* define pwrite and pwrite64 both, not one as the other */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static void slow_if_partial(int fd)
{
    const char *ms = getenv("LD_TEST_SLOW_PARTIAL_MS");
    if (!ms)
        return;
    char link[64], name[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, name, sizeof name - 1);
    if (n <= 8)
        return;
    name[n] = 0;
    if (strcmp(name + n - 8, ".partial") != 0)
        return;
    long v = strtol(ms, NULL, 10);
    struct timespec t = {v / 1000, (v % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

static ssize_t slow_or(const char *fn, int fd, const void *buf, size_t n, off_t off)
{
    slow_if_partial(fd);
    pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, fn);
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return slow_or("pwrite", fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    return slow_or("pwrite64", fd, buf, n, off);
}
