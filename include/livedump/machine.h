/* livedump: what a machine is made of, in the words both the embedder and
 * a backend author use: page kinds, physical ranges, buffer pools, processor
 * contexts, the steps of a quiesce, and the names of the HAL's operations
 * (for fault injection and messages). The HAL's table itself is for
 * backend authors: livedump/sys/hal.h.
 */
#ifndef LIVEDUMP_MACHINE_H
#define LIVEDUMP_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* The index of the range holding pfn among `count` entries of `stride`
 * bytes at `ranges`, each starting with an ld_phys_range (first_pfn,
 * page_count), sorted and disjoint; `count` when none holds it. The one
 * binary search over sorted ranges, for the engine, the backends and the
 * readers. */
static inline size_t ld_range_find(const void *ranges, size_t count, size_t stride, uint64_t pfn)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ld_phys_range *r = (const ld_phys_range *)(const void *)((const unsigned char *)ranges + mid * stride);
        if (pfn < r->first_pfn)
            hi = mid;
        else if (pfn - r->first_pfn >= r->page_count)
            lo = mid + 1;
        else
            return mid;
    }
    return count;
}

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

/* Tags (Windows in-memory GUID byte order) of the secondary data a HAL
 * gives: its hypervisor's dump data and Intel PT traces. */
#define LD_BLOB_GUID_HYPERVISOR {0x6c, 0x64, 0x68, 0x76, 0x8e, 0x2f, 0x4b, 0x41, \
                                 0x9a, 0x43, 0x11, 0x6a, 0x1f, 0x5d, 0x70, 0x01}
#define LD_BLOB_GUID_IPT        {0x6c, 0x64, 0x69, 0x70, 0x74, 0x2f, 0x4b, 0x41, \
                                 0x9a, 0x43, 0x11, 0x6a, 0x1f, 0x5d, 0x70, 0x02}

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

#ifdef __cplusplus
}
#endif
#endif
