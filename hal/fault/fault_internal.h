/* The fault-injecting HAL wrapper: private state shared by the files of
 * hal/fault/, bottom first:
 *
 * fault_rules.c     the rules and call counters (ld_fault_inject, clear, calls)
 * fault_platform.c  the counting platform around the inner HAL's
 * fault_hal.c       the forwarding HAL table, create / destroy
 *
 * Counters and rule fields are touched only with __atomic builtins: the
 * engine calls some operations from other threads (and from inside the
 * quiesce callback) while a test may set a rule. */
#ifndef LDFT_INTERNAL_H
#define LDFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/fault.h"
#include "livedump/sys/hal.h"

typedef struct ldft_rule {
    uint64_t trigger;  /* call number that fires the rule; 0: no rule */
    uint32_t status;
    uint64_t stall_ns;
    bool repeat;
} ldft_rule;

/* What a counted call must do. */
typedef struct ldft_hit {
    ld_status status;
    uint64_t stall_ns;
} ldft_hit;

struct ld_fault_hal {
    const ld_hal *inner;
    ld_hal hal;            /* ctx = this wrapper */
    ld_platform platform;  /* ctx = this wrapper */
    uint64_t calls[LD_HAL_OP_COUNT];   /* atomic */
    ldft_rule rules[LD_HAL_OP_COUNT];  /* atomic fields */
    int64_t outstanding;               /* atomic: allocations and locks not yet given back */
};

/* ---- fault_rules.c ---- */
/* Count one call of op and say what the rule (if any) makes it do. */
ldft_hit ldft_check(ld_fault_hal *f, ld_hal_op op);
/* Check, stall, and return the status the call must fail with (or SUCCESS). */
ld_status ldft_apply(ld_fault_hal *f, ld_hal_op op);
void ldft_sleep_ns(uint64_t ns);

/* ---- fault_platform.c ---- */
/* Fill f->platform: a counting wrapper of f->inner->platform. */
void ldft_platform_init(ld_fault_hal *f);

#endif
