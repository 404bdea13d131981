/* livedump: the hardware abstraction layer (HAL) contract.
 *
 * A backend (simulated machine, Linux /proc/kcore, Windows NT kernel) is a
 * table of function pointers with a version and a capability mask, in the
 * manner of SQLite's VFS. The engine calls nothing else to reach the machine.
 *
 * Rules every backend follows:
 *  - Every operation returns an ld_status; a failure is reported, never
 *    fatal. The engine turns it into an event and a clean stop.
 *  - Operations marked OPTIONAL may be NULL; the matching LD_HAL_CAP_* bit
 *    tells the engine it is there. The engine's fallback for each absent
 *    operation is documented beside it.
 *  - quiesce() owns the stop-the-world: it corrals, runs the engine's
 *    callback, and always uncorrals before it returns, whatever the callback
 *    returned. No engine path can leave the machine stopped.
 *  - While corralled (inside the quiesce callback) the engine calls only
 *    cpu_context, mem_read, dirty_fetch, hv_collect and ipt_collect, and
 *    allocates nothing.
 *
 * Pages are identified by page frame number (PFN): physical address divided
 * by the page size.
 */
#ifndef LIVEDUMP_SYS_HAL_H
#define LIVEDUMP_SYS_HAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/status.h"
#include "livedump/machine.h"
#include "livedump/sys/platform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added system_info. The engine accepts backends built for 1 (no
 * system_info) and for 2. */
#define LD_HAL_VERSION 2

/* A run of pages of one kind. */
typedef struct ld_kind_range {
    uint64_t first_pfn;
    uint64_t page_count;
    uint32_t kind; /* ld_page_kind */
} ld_kind_range;

/* What the running OS says of itself, for format headers a debugger needs
 * (the Windows .dmp header, the ELF vmcore's notes). Every field may be 0 or
 * NULL where the backend does not know it; a writer then leaves it out or
 * writes what Windows writes for "unknown". Pointers are owned by the HAL
 * and stay valid as long as it does. */
typedef struct ld_system_info {
    uint32_t machine_type;          /* PE machine: 0x8664 (x64); 0 unknown */
    uint32_t os_major, os_minor;    /* Windows: 15 (free build) and the build number */
    uint64_t kernel_base;           /* virtual base of the kernel image */
    uint64_t directory_table_base;  /* the kernel's page directory (CR3), when no context has it */
    uint64_t pfn_database;          /* MmPfnDatabase (Linux: vmemmap base) */
    uint64_t loaded_module_list;    /* PsLoadedModuleList */
    uint64_t active_process_list;   /* PsActiveProcessHead */
    uint64_t debugger_data_block;   /* KdDebuggerDataBlock, virtual */
    uint64_t direct_map_base;       /* virtual address of physical 0 in the kernel's direct
                                       map (Linux PAGE_OFFSET); 0 unknown */
    const char *vmcoreinfo;         /* Linux VMCOREINFO note text, copied verbatim; NULL none */
    uint64_t vmcoreinfo_size;       /* its bytes (no NUL needed) */
    const char *os_release;         /* e.g. "6.1.0-28-amd64"; NULL unknown */
} ld_system_info;

/* Called by quiesce() while every processor is stopped. */
typedef ld_status (*ld_quiesced_fn)(void *arg);

/* Capability bits: which optional operations a backend provides. */
#define LD_HAL_CAP_DIRTY_LOG     0x0001u /* dirty_start / dirty_fetch / dirty_stop */
#define LD_HAL_CAP_CPU_CONTEXT   0x0002u /* cpu_context */
#define LD_HAL_CAP_QUIESCE       0x0004u /* quiesce really stops the machine */
#define LD_HAL_CAP_POOLS         0x0008u /* pool_alloc / pool_free (else platform alloc, system pool) */
#define LD_HAL_CAP_HYPERVISOR    0x0010u /* hv_size / hv_prepare / hv_collect */
#define LD_HAL_CAP_IPT           0x0020u /* ipt_size / ipt_collect */
#define LD_HAL_CAP_SECURE_KERNEL 0x0040u /* a secure kernel runs (affects IO-space pools, event 124) */
#define LD_HAL_CAP_MEM_STATUS    0x0080u /* mem_status */
#define LD_HAL_CAP_SYSTEM_INFO   0x0100u /* system_info (HAL version 2) */

struct ld_hal {
    uint32_t version;             /* LD_HAL_VERSION the backend was built for */
    uint32_t caps;                /* LD_HAL_CAP_* */
    const char *name;             /* "sim", "kcore", "nt" */
    void *ctx;                    /* passed back to every operation */
    const ld_platform *platform;  /* memory, time, lock for the core */
    uint32_t page_size;           /* bytes; a power of two, 4096 on x86-64 */

    /* ---- memory ---- */

    /* Physical RAM ranges, ascending, not overlapping: RAM only, as
     * Windows' MmPhysicalMemoryBlock (no firmware or device pages; a .dmp
     * header's runs and NumberOfPages are these). Call with
     * ranges == NULL to learn *count; then with room for *count entries.
     * Returns LD_STATUS_BUFFER_TOO_SMALL (with *count set) if too small. */
    ld_status (*mem_ranges)(void *ctx, ld_phys_range *ranges, size_t *count);

    /* Classification of every page of every range, as runs of one kind,
     * ascending. Same calling convention as mem_ranges. Pages in no run are
     * LD_PAGE_UNKNOWN. */
    ld_status (*mem_kinds)(void *ctx, ld_kind_range *runs, size_t *count);

    /* Copy `count` pages starting at `pfn` into dst. The machine may be
     * running: the copy may be torn, which is what the dirty log is for. */
    ld_status (*mem_read)(void *ctx, uint64_t pfn, uint64_t count, void *dst);

    /* OPTIONAL (LD_HAL_CAP_MEM_STATUS): available and total physical memory
     * in bytes. Absent: the engine skips the memory-pressure check and
     * reports 0 for both in event 2. */
    ld_status (*mem_status)(void *ctx, uint64_t *available, uint64_t *total);

    /* OPTIONAL (LD_HAL_CAP_DIRTY_LOG): log pages written from dirty_start on.
     * dirty_fetch ORs into `bits` (one bit per PFN, LSB first, `nbits` bits
     * from PFN 0) every page written since the previous fetch (or start) and
     * clears the log; it is called running and corralled. Absent: the
     * engine copies every page while the machine is stopped. */
    ld_status (*dirty_start)(void *ctx);
    ld_status (*dirty_fetch)(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *dirty_count);
    ld_status (*dirty_stop)(void *ctx);

    /* OPTIONAL (LD_HAL_CAP_POOLS): dump buffers from the four pools of
     * event 113. pool_open says whether a pool can be used at all
     * (LD_STATUS_NOT_SUPPORTED: it does not exist here). pool_alloc gives
     * `bytes` bytes (a multiple of the page size), committed (resident:
     * the engine writes them while the machine is stopped, where a page
     * fault is not allowed), or fails. Absent: the
     * engine allocates buffers with the platform's alloc and counts them as
     * system-partition pages. */
    ld_status (*pool_open)(void *ctx, ld_pool pool);
    ld_status (*pool_alloc)(void *ctx, ld_pool pool, uint64_t bytes, void **mem);
    void (*pool_free)(void *ctx, ld_pool pool, void *mem, uint64_t bytes);

    /* ---- processors ---- */

    uint32_t (*cpu_count)(void *ctx);

    /* Stop every processor, run fn(arg), then resume them all; fill times.
     * Steps: corral (every processor parked within timeout_ns, else
     * LD_STATUS_TIMEOUT and fn is not called), disable interrupts, save
     * supervisor state, suspend the clock timer; then the four inverse steps.
     * Returns fn's status, or the HAL's own failure. Always returns with
     * every processor running. */
    ld_status (*quiesce)(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg,
                         ld_quiesce_times *times);

    /* OPTIONAL (LD_HAL_CAP_CPU_CONTEXT): the registers of a processor, as it
     * stopped. Valid only inside the quiesce callback. Absent: contexts are
     * reported with valid == 0. */
    ld_status (*cpu_context)(void *ctx, uint32_t cpu, ld_cpu_context *out);

    /* ---- optional secondary sources ---- */

    /* OPTIONAL (LD_HAL_CAP_HYPERVISOR): hypervisor dump data. hv_size gives
     * the secondary bytes it will add; hv_prepare readies its descriptor
     * before the quiesce; hv_collect copies it into dst (up to cap bytes,
     * *len set) while corralled. */
    ld_status (*hv_size)(void *ctx, uint64_t *secondary_bytes);
    ld_status (*hv_prepare)(void *ctx);
    ld_status (*hv_collect)(void *ctx, void *dst, uint64_t cap, uint64_t *len);

    /* OPTIONAL (LD_HAL_CAP_IPT): Intel PT trace secondary data, same shape. */
    ld_status (*ipt_size)(void *ctx, uint64_t *bytes);
    ld_status (*ipt_collect)(void *ctx, void *dst, uint64_t cap, uint64_t *len);

    /* ---- version 2 ---- */

    /* OPTIONAL (LD_HAL_CAP_SYSTEM_INFO): kernel addresses and notes for the
     * dump's headers, read once per capture while the machine runs. Absent
     * or failing: those header fields stay 0 and the dump goes on. */
    ld_status (*system_info)(void *ctx, ld_system_info *out);
};

#ifdef __cplusplus
}
#endif
#endif
