/* ld_platform for the engine inside the driver. Memory is non-paged
 * (NonPagedPoolNx: the engine's bitmaps and tables are read while the
 * machine is stopped at DISPATCH_LEVEL, where a page fault is fatal);
 * time is the performance counter (any IRQL); the lock is a fast mutex
 * (the engine takes it only at PASSIVE_LEVEL, never while stopped). */
#include "nt_internal.h"

ld_status ldn_status(NTSTATUS s)
{
    /* ld_status values are NTSTATUS values */
    return (ld_status)(uint32_t)s;
}

void *ldn_alloc(size_t bytes)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, bytes ? bytes : 1, LDN_TAG);
}

void *ldn_zalloc(size_t bytes)
{
    void *p = ldn_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void ldn_free(void *p)
{
    if (p)
        ExFreePoolWithTag(p, LDN_TAG);
}

uint64_t ldn_now_ns(void)
{
    LARGE_INTEGER freq;
    LARGE_INTEGER c = KeQueryPerformanceCounter(&freq);
    uint64_t f = (uint64_t)freq.QuadPart, v = (uint64_t)c.QuadPart;
    if (!f)
        return 0;
    /* whole seconds and the rest apart: no overflow for centuries */
    return v / f * 1000000000ull + v % f * 1000000000ull / f;
}

static void *plat_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return ldn_alloc(size);
}

static void plat_free(void *ctx, void *p)
{
    (void)ctx;
    ldn_free(p);
}

static uint64_t plat_now(void *ctx)
{
    (void)ctx;
    return ldn_now_ns();
}

static uint64_t plat_system_time(void *ctx)
{
    (void)ctx;
    LARGE_INTEGER t;
    KeQuerySystemTime(&t);
    return (uint64_t)t.QuadPart;
}

static ld_status plat_lock_create(void *ctx, void **lock)
{
    (void)ctx;
    PFAST_MUTEX m = ldn_alloc(sizeof *m);
    if (!m)
        return LD_STATUS_NO_MEMORY;
    ExInitializeFastMutex(m);
    *lock = m;
    return LD_STATUS_SUCCESS;
}

static void plat_lock_acquire(void *ctx, void *lock)
{
    (void)ctx;
    ExAcquireFastMutex(lock);
}

static void plat_lock_release(void *ctx, void *lock)
{
    (void)ctx;
    ExReleaseFastMutex(lock);
}

static void plat_lock_destroy(void *ctx, void *lock)
{
    (void)ctx;
    ldn_free(lock);
}

void ldn_platform_init(ld_platform *p)
{
    memset(p, 0, sizeof *p);
    p->version = LD_PLATFORM_VERSION;
    p->alloc = plat_alloc;
    p->free = plat_free;
    p->now_ns = plat_now;
    p->system_time = plat_system_time;
    p->lock_create = plat_lock_create;
    p->lock_acquire = plat_lock_acquire;
    p->lock_release = plat_lock_release;
    p->lock_destroy = plat_lock_destroy;
}
