/* livedump: the simulated machine (user mode, libuv threads).
 *
 * A machine with RAM backed by lazily committed anonymous memory, N virtual
 * CPUs each run by a real thread that writes memory and keeps a register
 * file, a memory layout with RAM-only ranges and every RAM page kind, a dirty log and a real
 * stop-the-world corral. Every unit test runs the engine against it, and
 * users can test their agents with it. It has what a real machine has (a
 * vCPU may be late at the corral: ld_sim_set_corral_delay); failing HAL
 * calls are the fault wrapper's (livedump/fault.h), which wraps this
 * machine's HAL as it wraps any other.
 *
 * Ownership: ld_sim_create returns a machine the caller frees with
 * ld_sim_destroy. ld_sim_hal returns a table owned by the machine, valid
 * until ld_sim_destroy.
 */
#ifndef LIVEDUMP_SIM_H
#define LIVEDUMP_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ld_sim ld_sim;

/* The machine's RAM: at least 64 MiB, at most 128 GiB. */
#define LD_SIM_MIN_MEMORY (64ull << 20)
#define LD_SIM_MAX_MEMORY (128ull << 30)

/* The version of ld_sim_config this header describes. */
#define LD_SIM_CONFIG_VERSION 1

typedef struct ld_sim_config {
    uint32_t version;          /* LD_SIM_CONFIG_VERSION (set by ld_sim_config_init) */
    uint64_t memory_bytes;     /* RAM; default 512 MiB; at least 64 MiB */
    uint32_t cpus;             /* vCPU threads; default 2; 1..64 */
    uint64_t dirty_rate;       /* bytes of pages dirtied per second by all vCPUs together; 0 = idle */
    uint64_t hot_set_bytes;    /* size of the region the workload writes to; default 64 MiB */
    uint64_t seed;             /* deterministic layout, content and workload */
    bool hypervisor;           /* machine runs under a hypervisor: HV pages and LD_HAL_CAP_HYPERVISOR */
    bool secure_kernel;        /* secure kernel running: SK pages and LD_HAL_CAP_SECURE_KERNEL */
    bool ipt;                  /* Intel PT secondary data available */
    bool no_dirty_log;         /* hide the dirty log (LD_HAL_CAP_DIRTY_LOG off) */
    uint64_t pool_bytes[LD_POOL_COUNT]; /* capacity of each buffer pool; 0 = pool absent,
                                           except the system pool where 0 = bounded by
                                           the machine's free memory */
    uint64_t available_bytes;  /* reported available memory; 0 = computed from free pages
                                  (and bounded by what the host can give, below) */
    /* The host, for tests: its physical memory, and its available memory
     * before this machine exists; 0 = read from the OS (/proc/meminfo). */
    uint64_t host_memory_bytes;
    uint64_t host_available_bytes;
} ld_sim_config;

/* Fill cfg with the defaults above and the version. */
LD_EXTERN void ld_sim_config_init(ld_sim_config *cfg);

/* Build the machine and start its vCPUs (they run until destroy).
 * Refuses what ld_sim_config_check refuses, with the same status. */
LD_EXTERN ld_status ld_sim_create(const ld_sim_config *cfg, ld_sim **out);

/* What the host must back. RAM is lazily committed and a page nobody wrote
 * is generated when read, never stored, so a machine larger than its host
 * is fine: it commits only its footprint (all its content when that is at
 * most 1 GiB, generated at create; otherwise the pages its vCPUs write: hot
 * set, stacks, probe) and its dump buffers (the pools). Both come out of
 * the host's available memory less a reserve of max(512 MiB, host memory /
 * 8): a machine whose footprint does not fit is refused; pool allocations
 * beyond it fail (a partial dump, or a refusal with
 * LD_FLAG_ABORT_IF_MEMORY_PRESSURE), and mem_status never reports more
 * available memory than that.
 *
 * Whether ld_sim_create would accept cfg, and if not why, as one sentence
 * into why (cap bytes; why may be NULL): LD_STATUS_INVALID_PARAMETER for a
 * configuration of another version than LD_SIM_CONFIG_VERSION or out of the
 * machine's limits (memory LD_SIM_MIN_MEMORY to
 * LD_SIM_MAX_MEMORY, 1 to 64 CPUs, a hot set of at most half the memory),
 * LD_STATUS_INSUFFICIENT_RESOURCES when the host cannot back it. */
LD_EXTERN ld_status ld_sim_config_check(const ld_sim_config *cfg, char *why, size_t cap);
LD_EXTERN void ld_sim_destroy(ld_sim *sim);

/* The HAL of this machine. Its platform is ld_platform_default(); to
 * count its allocations or make calls fail, wrap it (livedump/fault.h). */
LD_EXTERN const ld_hal *ld_sim_hal(ld_sim *sim);

/* From now on, vCPU `cpu` arrives delay_ns late at every corral (0: on
 * time, the default), as a processor that keeps interrupts disabled for a
 * while: a delay longer than a quiesce's timeout makes it time out
 * (LD_STATUS_TIMEOUT, the machine running on), a shorter one lengthens the
 * corral. Each vCPU keeps its own delay. The wait ends early when the
 * corral is called off or the machine destroyed.
 * LD_STATUS_INVALID_PARAMETER for a NULL sim or a cpu it does not have. */
LD_EXTERN ld_status ld_sim_set_corral_delay(ld_sim *sim, uint32_t cpu, uint64_t delay_ns);

/* ---- observation, for tests ---- */

/* True while the vCPUs are parked in a corral. */
LD_EXTERN bool ld_sim_corralled(ld_sim *sim);
/* Bytes currently held by each pool. */
LD_EXTERN uint64_t ld_sim_pool_used(ld_sim *sim, ld_pool pool);
/* Direct pointer to the machine's RAM for one page (NULL outside RAM).
 * Racy while vCPUs run; for tests that compare after a capture. */
LD_EXTERN const void *ld_sim_page(ld_sim *sim, uint64_t pfn);
/* Total pages written by the workload so far. */
LD_EXTERN uint64_t ld_sim_pages_written(ld_sim *sim);
/* Pause / resume the workload (vCPUs idle at their safe point; not a corral). */
LD_EXTERN void ld_sim_pause(ld_sim *sim, bool paused);

/* ---- the consistency probe ----
 * Each vCPU i runs a sequence counter. At every step it writes the new value
 * to a slot in a kernel-data page (A), then to its current kernel stack page
 * (B), then into its register file (rax), in that order, and only then may
 * it park. A dump taken at one instant therefore has A == B == rax for every
 * vCPU. The probe's addresses: */
typedef struct ld_sim_probe {
    uint64_t a_pfn, a_offset; /* where vCPU i's A counter lives (8 bytes, little endian) */
    uint64_t b_pfn, b_offset; /* where its B counter lives */
} ld_sim_probe;

LD_EXTERN ld_status ld_sim_probe_of(ld_sim *sim, uint32_t cpu, ld_sim_probe *out);

#ifdef __cplusplus
}
#endif
#endif
