/* livedump: fault injection, as a wrapper of any HAL (user mode).
 *
 * ld_fault_hal_create wraps a HAL (the simulated machine's, the Linux
 * backend's, one of your own) in a HAL that forwards every operation to it
 * and can make the nth call of any operation fail, or stall, or both. Give
 * the wrapper's table (ld_fault_hal_get) to ld_engine_create and every path
 * a failing machine would drive the engine down can be tested, on any
 * backend.
 *
 * The wrapper keeps the inner HAL's shape: its name, version, capabilities
 * and page size, and an operation the inner HAL does not have stays absent
 * (unless cfg->hide_caps takes more away). Its platform wraps the inner
 * HAL's: allocations go to the inner allocator, are counted (a leak check:
 * ld_fault_outstanding_allocs) and can fail (LD_HAL_OP_PLATFORM_ALLOC);
 * time and locks are forwarded, and a lock counts as an allocation until
 * it is destroyed.
 *
 * Calls are counted with atomics: operations may be called from any thread
 * (the engine calls some from inside the quiesce callback), and the nth
 * call is the nth to reach the wrapper.
 *
 * Ownership: ld_fault_hal_create returns a wrapper the caller frees with
 * ld_fault_hal_destroy after every engine that uses it; the inner HAL must
 * outlive it. The table ld_fault_hal_get returns is owned by the wrapper.
 */
#ifndef LIVEDUMP_FAULT_H
#define LIVEDUMP_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"
#include "livedump/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ld_fault_hal ld_fault_hal;

#define LD_FAULT_CONFIG_VERSION 1

typedef struct ld_fault_config {
    uint32_t version;   /* LD_FAULT_CONFIG_VERSION */
    /* LD_HAL_CAP_* bits (livedump/sys/hal.h) the wrapper takes away from
     * the inner HAL, with the operations they stand for: the same machine
     * without a dirty log, pools, ... to test the engine's fallback for an
     * absent operation. LD_HAL_CAP_QUIESCE and LD_HAL_CAP_SECURE_KERNEL
     * name no operation: only the claim goes. Default 0. */
    uint32_t hide_caps;
} ld_fault_config;

/* Fill cfg with the defaults above. */
LD_EXTERN void ld_fault_config_init(ld_fault_config *cfg);

/* Wrap inner. cfg may be NULL for the defaults. LD_STATUS_INVALID_PARAMETER
 * for a NULL inner or out, a HAL version this library does not know (0 or
 * above LD_HAL_VERSION), a HAL without a platform of LD_PLATFORM_VERSION,
 * or a config of another version; LD_STATUS_NO_MEMORY. */
LD_EXTERN ld_status ld_fault_hal_create(const ld_hal *inner, const ld_fault_config *cfg, ld_fault_hal **out);
/* The wrapping HAL (NULL for NULL), valid until ld_fault_hal_destroy. */
LD_EXTERN const ld_hal *ld_fault_hal_get(ld_fault_hal *f);
/* Free the wrapper (NULL: nothing). The inner HAL is not touched. */
LD_EXTERN void ld_fault_hal_destroy(ld_fault_hal *f);

/* A rule: the nth call of `op` from now (1-based: counted from the
 * ld_fault_inject that sets it) sleeps stall_ns, then fails with `status`
 * without reaching the inner HAL; with status LD_STATUS_SUCCESS it only
 * stalls, then is forwarded. repeat: every call from the nth on, not just
 * the nth. How each kind of operation fails:
 *  - an operation that returns a status returns `status`;
 *  - cpu_count returns 0 (the only failure a count can say);
 *  - pool_free cannot fail: it only stalls, and is always forwarded;
 *  - LD_HAL_OP_PLATFORM_ALLOC: the platform's alloc returns NULL;
 *  - quiesce fails before it stops anything (the callback is not called);
 *    its stall comes before the inner quiesce, with the machine running:
 *    a processor late at the corral is the machine's affair (the simulated
 *    machine's ld_sim_set_corral_delay), not the wrapper's. */
typedef struct ld_fault {
    ld_hal_op op;       /* any operation, LD_HAL_OP_PLATFORM_ALLOC included */
    uint64_t nth;       /* at least 1 */
    ld_status status;
    uint64_t stall_ns;
    bool repeat;
} ld_fault;

/* Set the rule of rule->op; one rule per operation, a new one replaces the
 * old. LD_STATUS_INVALID_PARAMETER for a NULL argument, an unknown op or
 * nth 0. May be called while another thread calls the wrapper. */
LD_EXTERN ld_status ld_fault_inject(ld_fault_hal *f, const ld_fault *rule);
/* Remove every rule and start every call count again from 0. */
LD_EXTERN void ld_fault_clear(ld_fault_hal *f);
/* Calls of `op` through the wrapper since create (or the last clear),
 * failed ones included; 0 for NULL or an unknown op. */
LD_EXTERN uint64_t ld_fault_calls(const ld_fault_hal *f, ld_hal_op op);
/* Allocations and locks made through the wrapper's platform and not yet
 * freed or destroyed (0 for NULL): a leak check. Never reset by
 * ld_fault_clear. */
LD_EXTERN int64_t ld_fault_outstanding_allocs(const ld_fault_hal *f);

#ifdef __cplusplus
}
#endif
#endif
