/* The fault wrapper's platform: the inner HAL's, with every allocation and
 * lock counted (a leak check) and allocations open to fault rules. */
#include "fault_internal.h"

static void *counting_alloc(void *ctx, size_t size)
{
    ld_fault_hal *f = ctx;
    if (ldft_apply(f, LD_HAL_OP_PLATFORM_ALLOC) != LD_STATUS_SUCCESS)
        return NULL;
    const ld_platform *in = f->inner->platform;
    void *p = in->alloc(in->ctx, size);
    if (p)
        __atomic_add_fetch(&f->outstanding, 1, __ATOMIC_RELAXED);
    return p;
}

static void counting_free(void *ctx, void *ptr)
{
    ld_fault_hal *f = ctx;
    if (!ptr)
        return;
    const ld_platform *in = f->inner->platform;
    in->free(in->ctx, ptr);
    __atomic_sub_fetch(&f->outstanding, 1, __ATOMIC_RELAXED);
}

static uint64_t forward_now_ns(void *ctx)
{
    const ld_platform *in = ((ld_fault_hal *)ctx)->inner->platform;
    return in->now_ns(in->ctx);
}

static uint64_t forward_system_time(void *ctx)
{
    const ld_platform *in = ((ld_fault_hal *)ctx)->inner->platform;
    return in->system_time(in->ctx);
}

/* A lock is an allocation too: a lock never destroyed shows as a leak. */
static ld_status counting_lock_create(void *ctx, void **lock)
{
    ld_fault_hal *f = ctx;
    const ld_platform *in = f->inner->platform;
    ld_status st = in->lock_create(in->ctx, lock);
    if (st == LD_STATUS_SUCCESS)
        __atomic_add_fetch(&f->outstanding, 1, __ATOMIC_RELAXED);
    return st;
}

static void forward_lock_acquire(void *ctx, void *lock)
{
    const ld_platform *in = ((ld_fault_hal *)ctx)->inner->platform;
    in->lock_acquire(in->ctx, lock);
}

static void forward_lock_release(void *ctx, void *lock)
{
    const ld_platform *in = ((ld_fault_hal *)ctx)->inner->platform;
    in->lock_release(in->ctx, lock);
}

static void counting_lock_destroy(void *ctx, void *lock)
{
    ld_fault_hal *f = ctx;
    if (!lock)
        return;
    const ld_platform *in = f->inner->platform;
    in->lock_destroy(in->ctx, lock);
    __atomic_sub_fetch(&f->outstanding, 1, __ATOMIC_RELAXED);
}

void ldft_platform_init(ld_fault_hal *f)
{
    const ld_platform *in = f->inner->platform;
    /* An entry the inner platform lacks stays absent, so the engine judges
     * the wrapper as it would judge the inner HAL. */
    f->platform = (ld_platform){
        .version = in->version,
        .ctx = f,
        .alloc = in->alloc ? counting_alloc : NULL,
        .free = in->free ? counting_free : NULL,
        .now_ns = in->now_ns ? forward_now_ns : NULL,
        .system_time = in->system_time ? forward_system_time : NULL,
        .lock_create = in->lock_create ? counting_lock_create : NULL,
        .lock_acquire = in->lock_acquire ? forward_lock_acquire : NULL,
        .lock_release = in->lock_release ? forward_lock_release : NULL,
        .lock_destroy = in->lock_destroy ? counting_lock_destroy : NULL,
    };
}

int64_t ld_fault_outstanding_allocs(const ld_fault_hal *f)
{
    return f ? __atomic_load_n(&f->outstanding, __ATOMIC_RELAXED) : 0;
}
