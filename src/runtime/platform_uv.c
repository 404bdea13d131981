/* The default user-mode platform: libc memory, libuv time and mutexes.
 * A static table: it holds no state, so every caller may share it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "livedump/runtime.h"
#include "livedump/sys/platform.h"

/* Seconds from 1601-01-01 (the FILETIME epoch) to 1970-01-01. */
#define FILETIME_UNIX_OFFSET_S 11644473600ull
#define FILETIME_UNITS_PER_S 10000000ull /* 100 ns units */

static void *ldu_platform_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void ldu_platform_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static uint64_t ldu_platform_now_ns(void *ctx)
{
    (void)ctx;
    return uv_hrtime();
}

static uint64_t ldu_platform_system_time(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0; /* headers then carry 0, as for a platform without a clock */
    return ((uint64_t)ts.tv_sec + FILETIME_UNIX_OFFSET_S) * FILETIME_UNITS_PER_S + (uint64_t)ts.tv_nsec / 100u;
}

static ld_status ldu_platform_lock_create(void *ctx, void **lock)
{
    (void)ctx;
    if (!lock)
        return LD_STATUS_INVALID_PARAMETER;
    *lock = NULL;
    uv_mutex_t *m = malloc(sizeof *m);
    if (!m)
        return LD_STATUS_NO_MEMORY;
    if (uv_mutex_init(m) != 0) {
        free(m);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    *lock = m;
    return LD_STATUS_SUCCESS;
}

static void ldu_platform_lock_acquire(void *ctx, void *lock)
{
    (void)ctx;
    if (lock)
        uv_mutex_lock(lock);
}

static void ldu_platform_lock_release(void *ctx, void *lock)
{
    (void)ctx;
    if (lock)
        uv_mutex_unlock(lock);
}

static void ldu_platform_lock_destroy(void *ctx, void *lock)
{
    (void)ctx;
    if (!lock)
        return;
    uv_mutex_destroy(lock);
    free(lock);
}

static const ld_platform ldu_platform = {
    .version = LD_PLATFORM_VERSION,
    .ctx = NULL,
    .alloc = ldu_platform_alloc,
    .free = ldu_platform_free,
    .now_ns = ldu_platform_now_ns,
    .system_time = ldu_platform_system_time,
    .lock_create = ldu_platform_lock_create,
    .lock_acquire = ldu_platform_lock_acquire,
    .lock_release = ldu_platform_lock_release,
    .lock_destroy = ldu_platform_lock_destroy,
};

const ld_platform *ld_platform_default(void)
{
    return &ldu_platform;
}
