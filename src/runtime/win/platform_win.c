/* The default user-mode platform on Windows: the C heap, the performance
 * counter, the system time as a FILETIME, SRW locks. A static table, as
 * the libuv one on Unix. */
#include <stdlib.h>

#include "win_internal.h"
#include "livedump/runtime.h"
#include "livedump/sys/platform.h"

static void *win_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size ? size : 1);
}

static void win_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static uint64_t win_now_ns(void *ctx)
{
    (void)ctx;
    LARGE_INTEGER f, c;
    if (!QueryPerformanceFrequency(&f) || !QueryPerformanceCounter(&c) || f.QuadPart <= 0)
        return 0;
    uint64_t fq = (uint64_t)f.QuadPart, v = (uint64_t)c.QuadPart;
    return v / fq * 1000000000ull + v % fq * 1000000000ull / fq;
}

static uint64_t win_system_time(void *ctx)
{
    (void)ctx;
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    return (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
}

static ld_status win_lock_create(void *ctx, void **lock)
{
    (void)ctx;
    if (!lock)
        return LD_STATUS_INVALID_PARAMETER;
    SRWLOCK *l = malloc(sizeof *l);
    if (!l)
        return LD_STATUS_NO_MEMORY;
    InitializeSRWLock(l);
    *lock = l;
    return LD_STATUS_SUCCESS;
}

static void win_lock_acquire(void *ctx, void *lock)
{
    (void)ctx;
    AcquireSRWLockExclusive(lock);
}

static void win_lock_release(void *ctx, void *lock)
{
    (void)ctx;
    ReleaseSRWLockExclusive(lock);
}

static void win_lock_destroy(void *ctx, void *lock)
{
    (void)ctx;
    free(lock); /* an SRW lock needs no teardown */
}

static const ld_platform win_platform = {
    .version = LD_PLATFORM_VERSION,
    .ctx = NULL,
    .alloc = win_alloc,
    .free = win_free,
    .now_ns = win_now_ns,
    .system_time = win_system_time,
    .lock_create = win_lock_create,
    .lock_acquire = win_lock_acquire,
    .lock_release = win_lock_release,
    .lock_destroy = win_lock_destroy,
};

const ld_platform *ld_platform_default(void)
{
    return &win_platform;
}
