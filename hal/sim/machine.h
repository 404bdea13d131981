/* The simulated machine: private state shared by the files of hal/sim/.
 *
 * sim.c         create/destroy, the HAL table, pools, secondary data, observation
 * sim_layout.c  physical ranges, page kinds, where each region lies
 * sim_memory.c  RAM content, mem_read, the dirty log
 * sim_vcpu.c    vCPU threads, workload, probe, safe point, corral (quiesce)
 *
 * Shared words that threads race on are accessed only with __atomic
 * builtins; everything else about the vCPUs' park state is under sim->lock. */
#ifndef LDS_MACHINE_H
#define LDS_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <uv.h>

#include "livedump/runtime.h"
#include "livedump/sim.h"
#include "livedump/sys/hal.h"

#define LDS_PAGE_SIZE 4096u
#define LDS_PAGE_SHIFT 12
#define LDS_MIN_MEMORY LD_SIM_MIN_MEMORY
/* Keeps every fixed region (kernel image .. kernel stacks) below the 3 GiB
 * hole, so each stays physically contiguous. */
#define LDS_MAX_MEMORY LD_SIM_MAX_MEMORY
/* What the host keeps for itself: max(this, host memory / 8). */
#define LDS_HOST_RESERVE_MIN (512ull << 20)
#define LDS_MAX_CPUS 64u

/* x86 PC physical map. Page 0 belongs to the firmware (real-mode
 * interrupt vectors, BIOS data) and 640 KiB-1 MiB to legacy devices: neither
 * is RAM, so neither is in the ranges, as in Windows' MmPhysicalMemoryBlock
 * (whose first run starts at PFN 1). */
#define LDS_FIRST_RAM_PFN 1ull
#define LDS_LEGACY_IO_PFN 0xA0ull    /* 640 KiB: legacy device memory starts */
#define LDS_LEGACY_IO_PAGES 0x60ull  /* up to 1 MiB */
/* RAM pages below 640 KiB. */
#define LDS_CONV_PAGES (LDS_LEGACY_IO_PFN - LDS_FIRST_RAM_PFN)
#define LDS_MMIO_HOLE_PFN 0xC0000ull /* 3 GiB: the MMIO hole starts */
#define LDS_HIGH_RAM_PFN 0x100000ull /* 4 GiB: RAM resumes */

/* Kernel virtual addresses: a direct map of physical memory, so any page's
 * VA is this base plus its physical address. */
#define LDS_KERNEL_VA_BASE 0xfffff80000000000ull

#define LDS_STACK_PAGES 6u
#define LDS_OTHER_STACKS 256u
/* Content is materialized per chunk of this many pages (2 MiB). */
#define LDS_CHUNK_PAGES 512u
/* Content up to this size is generated at create; above it, on first
 * access to each chunk, so a 16 GiB machine is created quickly and only
 * commits what is touched. */
#define LDS_EAGER_CONTENT_MAX (1ull << 30)
#define LDS_MAX_RUNS 32u
#define LDS_HV_BYTES (64u << 10)
#define LDS_IPT_BYTES_PER_CPU (16u << 10)

/* Where things are. Regions are laid out in "RAM index" order (the n-th
 * page of RAM, IO space and holes excluded); lds_ram_pfn maps a RAM
 * index to its PFN. */
typedef struct lds_layout {
    uint64_t ram_pages;      /* memory_bytes / page size */
    uint64_t low_ram_pages;  /* RAM pages below the 3 GiB hole (the first two ranges) */
    uint64_t low_end_pfn;    /* one past the last RAM PFN below the hole */
    uint64_t high_pages;     /* pages of the range at 4 GiB (0: none) */
    uint64_t max_pfn;        /* one past the last PFN */
    size_t range_count;
    ld_phys_range ranges[3]; /* RAM only: below 640 KiB, 1 MiB to the hole, from 4 GiB */
    size_t run_count;
    ld_kind_range runs[LDS_MAX_RUNS];
    uint64_t kind_pages[LD_PAGE_KIND_COUNT];
    uint64_t content_pages;  /* pages that hold generated content */

    uint64_t kernel_image_pfn, kernel_image_pages;
    uint64_t processor_blocks_pfn;
    uint64_t page_tables_pfn, page_tables_pages;
    uint64_t stacks_pfn, stacks_pages; /* vCPU i's current stack: stacks_pfn + i * LDS_STACK_PAGES */
    uint64_t probe_pfn;                /* the probe page (A slots), first page of kernel-other */
    uint64_t hot_first_index, hot_pages; /* the hot set, in RAM index order */
} lds_layout;

typedef struct lds_pool_alloc {
    void *mem;
    uint64_t bytes;
    uint32_t pool;
} lds_pool_alloc;

typedef struct lds_vcpu {
    ld_sim *sim;
    uint32_t index;
    uv_thread_t thread;
    bool thread_started;

    /* Private to the vCPU thread. */
    uint64_t rng;
    uint64_t seq;         /* the probe's sequence number */
    ld_cpu_context regs;  /* the working register file */

    /* Under sim->lock. */
    ld_cpu_context published; /* the register file as it parked */
    uint64_t parked_gen;      /* corral generation it parked in */
    uint64_t corral_delay_ns; /* how late it arrives at a corral (ld_sim_set_corral_delay) */
    uint64_t delayed_gen;     /* corral generation it already arrived late at */

    uint64_t pages_written;   /* atomic */

    uint64_t stack_pfn;       /* first PFN of its current stack */
    uint64_t probe_a_pfn, probe_a_offset;
    uint64_t probe_b_pfn, probe_b_offset;
} lds_vcpu;

struct ld_sim {
    ld_sim_config cfg;
    lds_layout layout;

    /* Backing store: PFNs 0 to low_end_pfn (the non-RAM pages below it
     * are never touched), then the range at 4 GiB, back to back. */
    uint8_t *ram;
    size_t ram_bytes;
    uint8_t *chunk_state; /* atomic, per chunk: LDS_CHUNK_* */
    size_t chunk_count;

    uint64_t *dirty_words; /* atomic: one bit per PFN */
    size_t dirty_word_count;
    bool dirty_enabled;    /* atomic */

    ld_hal hal;

    uv_mutex_t pool_lock;
    bool pool_lock_ready;
    uint64_t pool_used[LD_POOL_COUNT]; /* written under pool_lock, read atomically */
    lds_pool_alloc *pool_allocs;
    size_t pool_alloc_count, pool_alloc_cap;

    bool hv_prepared; /* atomic */

    uint64_t footprint; /* bytes of host memory the machine committed at create */

    /* vCPUs and the corral. */
    uint32_t cpu_count;
    lds_vcpu *cpus;
    uv_mutex_t lock;
    uv_cond_t wake;    /* to the vCPUs: something changed (corral, pause, stop) */
    uv_cond_t changed; /* from the vCPUs: one parked, left the park, reached its safe point */
    bool sync_ready;
    /* Under lock: */
    bool stopping, paused, corral_active;
    uint64_t corral_gen;
    uint32_t parked, at_safe_point;
    uint64_t last_parked_ns;
    uint64_t saved_control[LDS_MAX_CPUS][5]; /* cr0, cr2, cr3, cr4, cr8 */
    /* Atomic: */
    int attention;   /* stopping || paused || corral_active: vCPUs leave their fast path */
    int quiesce_busy;
    bool corralled;
    bool interrupts_enabled;
    bool clock_running;
    uint64_t virtual_clock_ns;
};

/* ---- sim_layout.c ---- */
/* Compute the layout; false if the configuration cannot be laid out. */
bool lds_layout_build(lds_layout *l, uint64_t memory_bytes, uint32_t cpus, uint64_t hot_pages,
                          bool hypervisor, bool secure_kernel);
uint64_t lds_ram_pfn(const lds_layout *l, uint64_t ram_index);
/* Index of the range holding [pfn, pfn + count), or -1. */
int lds_range_of(const lds_layout *l, uint64_t pfn, uint64_t count);
ld_page_kind lds_kind_of(const lds_layout *l, uint64_t pfn);
bool lds_kind_has_content(uint32_t kind);
ld_status lds_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count);
ld_status lds_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count);

/* Host memory the machine of layout l commits at create (its footprint). */
uint64_t lds_footprint(const lds_layout *l);

/* ---- sim_memory.c ---- */
ld_status lds_memory_init(ld_sim *sim);
void lds_memory_release(ld_sim *sim);
/* RAM of one PFN (NULL outside the ranges). Does not materialize content. */
uint8_t *lds_page_ptr(ld_sim *sim, uint64_t pfn);
/* Make sure the content of every page of [pfn, pfn + count) exists. */
void lds_materialize(ld_sim *sim, uint64_t pfn, uint64_t count);
static inline void lds_mark_dirty(ld_sim *sim, uint64_t pfn)
{
    __atomic_fetch_or(&sim->dirty_words[pfn >> 6], 1ull << (pfn & 63), __ATOMIC_RELEASE);
}
/* Commit [mem, mem + bytes) in one go: one call is much cheaper than a
 * page fault per page, especially in a VM. */
void lds_populate(void *mem, uint64_t bytes);
/* The splitmix64 generator: every pseudo-random byte of the machine. */
static inline uint64_t lds_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Deterministic bytes derived from (seed, salt), into a buffer of any alignment. */
void lds_fill_bytes(uint64_t seed, uint64_t salt, void *dst, uint64_t len);
ld_status lds_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst);
ld_status lds_dirty_start(void *ctx);
ld_status lds_dirty_fetch(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *dirty_count);
ld_status lds_dirty_stop(void *ctx);

/* ---- sim_vcpu.c ---- */
/* Set up the register files and probe, then start the threads. */
ld_status lds_vcpus_start(ld_sim *sim);
/* Stop and join every started thread. */
void lds_vcpus_stop(ld_sim *sim);
uint32_t lds_cpu_count(void *ctx);
ld_status lds_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times);
ld_status lds_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out);

#endif
