/* livedump: platform services for the core.
 *
 * The core engine runs in user mode and inside a Windows kernel driver, so it
 * never calls malloc, clock_gettime or pthreads. It takes memory, time and a
 * lock from this table instead. User-mode programs use ld_platform_default()
 * (livedump/runtime.h); a kernel backend supplies its own.
 */
#ifndef LIVEDUMP_SYS_PLATFORM_H
#define LIVEDUMP_SYS_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "livedump/status.h"
#include "livedump/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LD_PLATFORM_VERSION 1

struct ld_platform {
    uint32_t version; /* LD_PLATFORM_VERSION the table was written for */
    void *ctx;        /* passed back to every call */

    /* Memory. alloc returns NULL on failure (never aborts); the engine
     * turns that into LD_STATUS_NO_MEMORY. free(NULL) must be harmless. */
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr);

    /* Monotonic time in nanoseconds, for durations. */
    uint64_t (*now_ns)(void *ctx);
    /* Wall-clock time as a Windows FILETIME (100 ns units since 1601-01-01
     * UTC), for dump headers. May be NULL: headers then carry 0. */
    uint64_t (*system_time)(void *ctx);

    /* One non-recursive lock. lock_create stores an opaque handle. */
    ld_status (*lock_create)(void *ctx, void **lock);
    void (*lock_acquire)(void *ctx, void *lock);
    void (*lock_release)(void *ctx, void *lock);
    void (*lock_destroy)(void *ctx, void *lock);
};

#ifdef __cplusplus
}
#endif
#endif
