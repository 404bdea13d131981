/* Fault injection and the counting platform.
 *
 * Every HAL operation counts its calls; a rule names the call number that
 * fails (or every one from it, with repeat). Rules and counters are
 * atomics, so operations called from any thread stay deterministic: the
 * nth call is the nth to increment the counter. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "sim_internal.h"

void ldi_sim_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (ns && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

ldi_sim_fault_hit ldi_sim_fault_check(ld_sim *sim, ld_hal_op op)
{
    ldi_sim_fault_hit hit = {LD_STATUS_SUCCESS, 0};
    if ((unsigned)op >= LD_HAL_OP_COUNT)
        return hit;
    uint64_t n = __atomic_add_fetch(&sim->calls[op], 1, __ATOMIC_ACQ_REL);
    ldi_sim_fault_rule *r = &sim->rules[op];
    uint64_t trigger = __atomic_load_n(&r->trigger, __ATOMIC_ACQUIRE);
    if (trigger == 0 || n < trigger)
        return hit;
    if (n != trigger && !__atomic_load_n(&r->repeat, __ATOMIC_RELAXED))
        return hit;
    hit.status = __atomic_load_n(&r->status, __ATOMIC_RELAXED);
    hit.stall_ns = __atomic_load_n(&r->stall_ns, __ATOMIC_RELAXED);
    return hit;
}

ld_status ldi_sim_fault_apply(ld_sim *sim, ld_hal_op op)
{
    ldi_sim_fault_hit hit = ldi_sim_fault_check(sim, op);
    ldi_sim_sleep_ns(hit.stall_ns);
    return hit.status;
}

ld_status ld_sim_inject(ld_sim *sim, const ld_sim_fault *fault)
{
    if (!sim || !fault || (unsigned)fault->op >= LD_HAL_OP_COUNT || fault->nth == 0)
        return LD_STATUS_INVALID_PARAMETER;
    ldi_sim_fault_rule *r = &sim->rules[fault->op];
    uint64_t now = __atomic_load_n(&sim->calls[fault->op], __ATOMIC_ACQUIRE);
    if (fault->nth > UINT64_MAX - now)
        return LD_STATUS_INVALID_PARAMETER;
    /* Disarm while the fields change, then arm with release so a call that
     * sees the trigger sees the fields. */
    __atomic_store_n(&r->trigger, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&r->status, fault->status, __ATOMIC_RELAXED);
    __atomic_store_n(&r->stall_ns, fault->stall_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&r->repeat, fault->repeat, __ATOMIC_RELAXED);
    __atomic_store_n(&r->trigger, now + fault->nth, __ATOMIC_RELEASE);
    return LD_STATUS_SUCCESS;
}

void ld_sim_clear_faults(ld_sim *sim)
{
    if (!sim)
        return;
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        __atomic_store_n(&sim->rules[op].trigger, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&sim->calls[op], 0, __ATOMIC_RELEASE);
    }
}

uint64_t ld_sim_calls(ld_sim *sim, ld_hal_op op)
{
    if (!sim || (unsigned)op >= LD_HAL_OP_COUNT)
        return 0;
    return __atomic_load_n(&sim->calls[op], __ATOMIC_ACQUIRE);
}

/* ---- the counting platform: the default one, with leak counting and
 * allocation faults ---- */

static void *counting_alloc(void *ctx, size_t size)
{
    ld_sim *sim = ctx;
    if (ldi_sim_fault_apply(sim, LD_HAL_OP_PLATFORM_ALLOC) != LD_STATUS_SUCCESS)
        return NULL;
    const ld_platform *base = ld_platform_default();
    void *p = base->alloc(base->ctx, size);
    if (p)
        __atomic_add_fetch(&sim->outstanding_allocs, 1, __ATOMIC_RELAXED);
    return p;
}

static void counting_free(void *ctx, void *ptr)
{
    ld_sim *sim = ctx;
    if (!ptr)
        return;
    const ld_platform *base = ld_platform_default();
    base->free(base->ctx, ptr);
    __atomic_sub_fetch(&sim->outstanding_allocs, 1, __ATOMIC_RELAXED);
}

static uint64_t counting_now_ns(void *ctx)
{
    (void)ctx;
    const ld_platform *base = ld_platform_default();
    return base->now_ns(base->ctx);
}

static uint64_t counting_system_time(void *ctx)
{
    (void)ctx;
    const ld_platform *base = ld_platform_default();
    return base->system_time(base->ctx);
}

/* A lock is an allocation too: a lock never destroyed shows as a leak. */
static ld_status counting_lock_create(void *ctx, void **lock)
{
    ld_sim *sim = ctx;
    const ld_platform *base = ld_platform_default();
    ld_status st = base->lock_create(base->ctx, lock);
    if (st == LD_STATUS_SUCCESS)
        __atomic_add_fetch(&sim->outstanding_allocs, 1, __ATOMIC_RELAXED);
    return st;
}

static void counting_lock_acquire(void *ctx, void *lock)
{
    (void)ctx;
    const ld_platform *base = ld_platform_default();
    base->lock_acquire(base->ctx, lock);
}

static void counting_lock_release(void *ctx, void *lock)
{
    (void)ctx;
    const ld_platform *base = ld_platform_default();
    base->lock_release(base->ctx, lock);
}

static void counting_lock_destroy(void *ctx, void *lock)
{
    ld_sim *sim = ctx;
    if (!lock)
        return;
    const ld_platform *base = ld_platform_default();
    base->lock_destroy(base->ctx, lock);
    __atomic_sub_fetch(&sim->outstanding_allocs, 1, __ATOMIC_RELAXED);
}

void ldi_sim_platform_init(ld_sim *sim)
{
    sim->platform = (ld_platform){
        .version = LD_PLATFORM_VERSION,
        .ctx = sim,
        .alloc = counting_alloc,
        .free = counting_free,
        .now_ns = counting_now_ns,
        .system_time = counting_system_time,
        .lock_create = counting_lock_create,
        .lock_acquire = counting_lock_acquire,
        .lock_release = counting_lock_release,
        .lock_destroy = counting_lock_destroy,
    };
}

int64_t ld_sim_outstanding_allocs(ld_sim *sim)
{
    return sim ? __atomic_load_n(&sim->outstanding_allocs, __ATOMIC_RELAXED) : 0;
}
