/* The rules and call counters of the fault wrapper.
 *
 * Every operation counts its calls; a rule names the call number that
 * fails (or every one from it, with repeat). The counter is incremented
 * atomically, so with calls from several threads the nth call is the nth
 * to increment it, and exactly one call sees each number. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "fault_internal.h"

void ldft_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (ns && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

ldft_hit ldft_check(ld_fault_hal *f, ld_hal_op op)
{
    ldft_hit hit = {LD_STATUS_SUCCESS, 0};
    if ((unsigned)op >= LD_HAL_OP_COUNT)
        return hit;
    uint64_t n = __atomic_add_fetch(&f->calls[op], 1, __ATOMIC_ACQ_REL);
    ldft_rule *r = &f->rules[op];
    uint64_t trigger = __atomic_load_n(&r->trigger, __ATOMIC_ACQUIRE);
    if (trigger == 0 || n < trigger)
        return hit;
    if (n != trigger && !__atomic_load_n(&r->repeat, __ATOMIC_RELAXED))
        return hit;
    hit.status = __atomic_load_n(&r->status, __ATOMIC_RELAXED);
    hit.stall_ns = __atomic_load_n(&r->stall_ns, __ATOMIC_RELAXED);
    return hit;
}

ld_status ldft_apply(ld_fault_hal *f, ld_hal_op op)
{
    ldft_hit hit = ldft_check(f, op);
    ldft_sleep_ns(hit.stall_ns);
    return hit.status;
}

ld_status ld_fault_inject(ld_fault_hal *f, const ld_fault *rule)
{
    if (!f || !rule || (unsigned)rule->op >= LD_HAL_OP_COUNT || rule->nth == 0)
        return LD_STATUS_INVALID_PARAMETER;
    ldft_rule *r = &f->rules[rule->op];
    uint64_t now = __atomic_load_n(&f->calls[rule->op], __ATOMIC_ACQUIRE);
    if (rule->nth > UINT64_MAX - now)
        return LD_STATUS_INVALID_PARAMETER;
    /* Disarm while the fields change, then arm with release so a call that
     * sees the trigger sees the fields. */
    __atomic_store_n(&r->trigger, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&r->status, rule->status, __ATOMIC_RELAXED);
    __atomic_store_n(&r->stall_ns, rule->stall_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&r->repeat, rule->repeat, __ATOMIC_RELAXED);
    __atomic_store_n(&r->trigger, now + rule->nth, __ATOMIC_RELEASE);
    return LD_STATUS_SUCCESS;
}

void ld_fault_clear(ld_fault_hal *f)
{
    if (!f)
        return;
    for (int op = 0; op < LD_HAL_OP_COUNT; op++) {
        __atomic_store_n(&f->rules[op].trigger, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&f->calls[op], 0, __ATOMIC_RELEASE);
    }
}

uint64_t ld_fault_calls(const ld_fault_hal *f, ld_hal_op op)
{
    if (!f || (unsigned)op >= LD_HAL_OP_COUNT)
        return 0;
    return __atomic_load_n(&f->calls[op], __ATOMIC_ACQUIRE);
}
