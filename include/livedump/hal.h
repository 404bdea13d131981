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
#ifndef LIVEDUMP_HAL_H
#define LIVEDUMP_HAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/status.h"
#include "livedump/platform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added system_info. The engine accepts backends built for 1 (no
 * system_info) and for 2. */
#define LD_HAL_VERSION 2

/* What a page holds. Classification drives which pages a dump type keeps
 * (docs/architecture.md has the table). */
typedef enum ld_page_kind {
    LD_PAGE_UNKNOWN = 0,       /* not classified: treated as other kernel */
    LD_PAGE_KERNEL_IMAGE,      /* required: kernel code and data */
    LD_PAGE_HAL_IMAGE,         /* required: HAL image */
    LD_PAGE_PAGE_TABLES,       /* important: page-table pages */
    LD_PAGE_KERNEL_STACKS,     /* important: kernel thread stacks */
    LD_PAGE_SHARED_USER_DATA,  /* required: KUSER_SHARED_DATA */
    LD_PAGE_PROCESSOR_BLOCKS,  /* required: KPRCB / per-CPU areas */
    LD_PAGE_DEBUGGER_DATA,     /* required: KdDebuggerDataBlock */
    LD_PAGE_LOADED_MODULES,    /* required: loaded module list */
    LD_PAGE_KERNEL_OTHER,      /* kernel pool, slab, other kernel data */
    LD_PAGE_USER,              /* user-mode pages */
    LD_PAGE_HV_ESSENTIAL,      /* hypervisor pages needed to debug it */
    LD_PAGE_HV_NONESSENTIAL,   /* other hypervisor pages */
    LD_PAGE_SECURE_KERNEL,     /* secure kernel (VTL1) pages */
    LD_PAGE_FILE_CACHE,        /* system file cache */
    LD_PAGE_FREE,              /* free pages (stale content) */
    LD_PAGE_ZERO,              /* free pages known to be zero */
    LD_PAGE_IO_SPACE,          /* device memory: never read */
    LD_PAGE_KIND_COUNT
} ld_page_kind;

/* Static name of a page kind ("kernel-image"), or "invalid". */
LD_EXTERN const char *ld_page_kind_name(ld_page_kind kind);

/* A physical memory range, in pages. */
typedef struct ld_phys_range {
    uint64_t first_pfn;
    uint64_t page_count;
} ld_phys_range;

/* A run of pages of one kind. */
typedef struct ld_kind_range {
    uint64_t first_pfn;
    uint64_t page_count;
    uint32_t kind; /* ld_page_kind */
} ld_kind_range;

/* The four buffer pools of event 113, in the order the engine tries them. */
typedef enum ld_pool {
    LD_POOL_VM_PARTITION_IO_SPACE = 0,
    LD_POOL_VM_PARTITION,
    LD_POOL_SYSTEM_PARTITION_IO_SPACE,
    LD_POOL_SYSTEM_PARTITION,
    LD_POOL_COUNT
} ld_pool;

/* Register state of one processor, x86-64 layout. `valid` says which groups
 * were really captured; a backend never invents values it could not read. */
#define LD_CTX_GPRS        0x01u /* gpr[], rip, rflags */
#define LD_CTX_CONTROL     0x02u /* cr0, cr2, cr3, cr4, cr8 */
#define LD_CTX_SEGMENTS    0x04u /* selectors, fs_base, gs_base */
#define LD_CTX_STACK_RANGE 0x08u /* stack_base/stack_limit of the current thread */
#define LD_CTX_THREAD      0x10u /* thread_id */
#define LD_CTX_FLOAT       0x20u /* mxcsr */

/* Indexes into gpr[], in x86-64 register-encoding order. */
enum { LD_RAX, LD_RCX, LD_RDX, LD_RBX, LD_RSP, LD_RBP, LD_RSI, LD_RDI,
       LD_R8, LD_R9, LD_R10, LD_R11, LD_R12, LD_R13, LD_R14, LD_R15 };

typedef struct ld_cpu_context {
    uint32_t cpu;
    uint32_t valid; /* LD_CTX_* */
    uint64_t gpr[16];
    uint64_t rip, rflags;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint16_t cs, ds, es, fs, gs, ss;
    uint32_t mxcsr;
    uint64_t fs_base, gs_base;
    uint64_t stack_base;  /* highest address of the current kernel stack */
    uint64_t stack_limit; /* lowest address */
    uint64_t stack_base_pfn; /* physical frames of that stack: first PFN */
    uint64_t stack_pages;    /*   and page count (0 if unknown) */
    uint64_t thread_id;
} ld_cpu_context;

/* Duration of each step of one quiesce, in nanoseconds: the four steps of
 * events 121/165 and the four inverse steps of 122/166. */
typedef struct ld_quiesce_times {
    uint64_t corral_ns;
    uint64_t disable_interrupts_ns;
    uint64_t save_supervisor_state_ns;
    uint64_t suspend_clock_timer_ns;
    uint64_t uncorral_ns;
    uint64_t enable_interrupts_ns;
    uint64_t restore_supervisor_state_ns;
    uint64_t resume_clock_timer_ns;
    uint64_t stopped_ns; /* from the last processor parked to the first released */
} ld_quiesce_times;

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

/* Operation numbers, for fault injection and messages. */
typedef enum ld_hal_op {
    LD_HAL_OP_MEM_RANGES = 0,
    LD_HAL_OP_MEM_KINDS,
    LD_HAL_OP_MEM_READ,
    LD_HAL_OP_MEM_STATUS,
    LD_HAL_OP_DIRTY_START,
    LD_HAL_OP_DIRTY_FETCH,
    LD_HAL_OP_DIRTY_STOP,
    LD_HAL_OP_POOL_OPEN,
    LD_HAL_OP_POOL_ALLOC,
    LD_HAL_OP_POOL_FREE,
    LD_HAL_OP_CPU_COUNT,
    LD_HAL_OP_QUIESCE,
    LD_HAL_OP_CPU_CONTEXT,
    LD_HAL_OP_HV_SIZE,
    LD_HAL_OP_HV_PREPARE,
    LD_HAL_OP_HV_COLLECT,
    LD_HAL_OP_IPT_SIZE,
    LD_HAL_OP_IPT_COLLECT,
    LD_HAL_OP_SYSTEM_INFO,
    LD_HAL_OP_PLATFORM_ALLOC, /* the platform's alloc, for fault injection */
    LD_HAL_OP_COUNT
} ld_hal_op;

LD_EXTERN const char *ld_hal_op_name(ld_hal_op op);

typedef struct ld_hal {
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
} ld_hal;

#ifdef __cplusplus
}
#endif
#endif
