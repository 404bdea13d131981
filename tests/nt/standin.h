/* The stand-in for the NT kernel routines the NT backend calls (the
 * routines themselves are declared by hal/nt/ntstandin.h): what a test
 * controls and observes.
 *
 * The machine: a simulated machine (ld_sim, paused: its own vCPUs never
 * write) gives RAM, its layout and page kinds. Its memory holds what a
 * Windows kernel would: a module list, KdDebuggerDataBlock (encoded, as
 * Windows 8+ keeps it), PsLoadedModuleList, four-level page tables of the
 * kernel half, per-processor stacks and KPCRs. N processors are real
 * threads: each runs a workload (a probe: a sequence number written to
 * page A, then to page B on its current stack) and takes the DPCs queued
 * to it and the IPIs (TLB flushes) sent to it. A thread that raises to
 * DISPATCH_LEVEL holds one processor, so that processor's own thread
 * waits: nothing else runs there.
 *
 * Every routine checks the IRQL its documentation allows and records a
 * violation otherwise; reserved mappings are real pages (PROT_NONE when
 * unmapped, so a read after unmap faults) filled from the machine; a map
 * of a page that is not RAM, or that the OS would not let us read, is a
 * violation (what bug check 0x1A would be); a TLB flush a processor does
 * not take in time is one; so is a processor held at or above
 * CLOCK_LEVEL longer than the clock watchdog, or in a DPC longer than the
 * DPC watchdog. Every routine can be made to fail (faults below). */
#ifndef LDN_TESTS_STANDIN_H
#define LDN_TESTS_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/sim.h"

#define STANDIN_MAX_CPUS 8

typedef struct standin_config {
    uint64_t memory_bytes;          /* default 64 MiB */
    uint32_t cpus;                  /* default 4 */
    bool workload;                  /* processors write their probe (default true) */
    bool secure_kernel;             /* the machine has pages MmCopyMemory refuses */
    bool no_persistent_state;       /* KeCapturePersistentThreadState is not exported */
    uint32_t leader;                /* the processor a thread raising to DISPATCH takes */
    uint32_t dpc_percent[STANDIN_MAX_CPUS]; /* DPC allowance left each reports; 0 = 100 */
    uint64_t clock_watchdog_ns;     /* default 187.5 ms (12 ticks of 15.625 ms) */
    uint64_t dpc_watchdog_ns;       /* default 20 s */
} standin_config;

void standin_config_init(standin_config *c);
/* Build the world (one at a time). 0 on success. */
int standin_start(const standin_config *c);
/* Stop the processors and free the world. */
void standin_stop(void);
ld_sim *standin_sim(void);

/* ---- faults ----
 * The nth call (1-based, from now) of `routine` fails its own way: an
 * NTSTATUS routine returns STATUS_INSUFFICIENT_RESOURCES (ZwWriteFile
 * STATUS_DISK_FULL), a pointer routine NULL, a BOOLEAN one FALSE (a DPC
 * not queued), a count 0, and a routine that cannot fail stalls
 * `stall_ns` (default 2 ms) instead. repeat: every call from the nth. */
const char *const *standin_routines(void);  /* NULL-terminated */
void standin_fault(const char *routine, uint64_t nth, bool repeat, uint64_t stall_ns);
/* The nth call of `routine` stalls `stall_ns`, then does its work. */
void standin_stall(const char *routine, uint64_t nth, uint64_t stall_ns);
void standin_clear_faults(void);
uint64_t standin_calls(const char *routine);
uint64_t standin_faults_fired(const char *routine);
void standin_reset_calls(void);
/* Processor `cpu` takes its next DPC only after `ns` (stuck with its
 * interrupts off, say). */
void standin_stall_processor(uint32_t cpu, uint64_t ns);

/* ---- observation ---- */
/* Violations of the documented rules since start (or reset). */
uint64_t standin_violations(void);
const char *standin_last_violation(void);
void standin_reset_violations(void);
/* Pool allocations, MDLs, mapping addresses, live mappings, thread handles
 * not released. */
int64_t standin_outstanding(void);
/* True while any processor is in a DPC, above PASSIVE_LEVEL, held by a
 * thread, or has a DPC queued. */
bool standin_corralled(void);
/* Longest time each processor stayed at or above DISPATCH_LEVEL / at or
 * above CLOCK_LEVEL since the last reset. */
uint64_t standin_max_dispatch_ns(uint32_t cpu);
uint64_t standin_max_clock_masked_ns(uint32_t cpu);
void standin_reset_times(void);
/* Pause the workload (every processor at its loop's top). */
void standin_pause(bool paused);

/* What the stand-in put where. */
typedef struct standin_layout {
    uint64_t pml4_pfn;
    uint64_t table_pfns[16];        /* every page-table page of the kernel half */
    size_t table_count;
    uint64_t kernel_pfn, kernel_pages, hal_pfn, hal_pages;
    uint64_t kdbg_va, kdbg_pa;
    uint32_t kdbg_size;
    uint8_t kdbg_decoded[0x340];    /* what the dump must hold */
    uint64_t module_list_va;
    uint64_t module_entry_pfns[4];  /* the list head's page and its entries' */
    uint64_t shared_data_pfn;
    uint64_t kpcr_pfn[STANDIN_MAX_CPUS];
    uint64_t stack_pfn[STANDIN_MAX_CPUS];   /* the run of its stack the backend can tell */
    uint64_t stack_pages[STANDIN_MAX_CPUS];
    uint64_t cr3_pfn[STANDIN_MAX_CPUS];     /* each processor's own page directory */
    uint64_t probe_a_pfn, probe_a_offset;   /* processor i's A: offset + 8 * i */
    uint64_t probe_b_offset;                /* its B: top page of its stack (stack_pfn + pages - 1) */
    uint64_t secure_pfn, secure_pages;      /* pages MmCopyMemory refuses (secure_kernel) */
    uint64_t directory_table_base;          /* as the crash dump header gives it */
} standin_layout;
const standin_layout *standin_layout_get(void);

/* A stand-in HANDLE for a file descriptor (ZwWriteFile & co. use it); not
 * closed by ZwClose. */
void *standin_file_handle(int fd);
void standin_file_handle_free(void *h);

#endif
