/* The NT backend's private state, shared by its files:
 *   platform.c  ld_platform over the kernel (pool, performance counter, fast mutex)
 *   memory.c    physical ranges, page reads (MmCopyMemory running, a reserved
 *               mapping stopped), dump buffer pools, memory status
 *   classify.c  page kinds from what a driver can see
 *   corral.c    the stop: a DPC on every other processor, the four steps,
 *               the stop budget, the processors' contexts
 *   sysinfo.c   KeInitializeCrashDumpHeader's values, the decoded KDBG
 *   hal.c       the HAL table, open/close
 *   service.c   one capture job for the driver: request, engine, events, file
 *   driver.c    DriverEntry, the device, the IOCTL (Windows only)
 *
 * Internal names start with ldn_. Everything here lives in non-paged pool:
 * the corral touches it at DISPATCH_LEVEL and above. */
#ifndef LDN_NT_INTERNAL_H
#define LDN_NT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ntapi.h"
#include "cpu.h"
#include "livedump/nt.h"
#include "livedump/sys/hal.h"

#define LDN_PAGE 4096u
/* Pages mapped at once while stopped: one reserved mapping of this size. */
#define LDN_MAP_PAGES 64u
/* A parked processor leaves by itself after this many budgets, whatever
 * the leader does: the failsafe against a leader that never comes back. */
#define LDN_FAILSAFE_BUDGETS 2u
/* Refuse to park a processor with less than this share (percent) of
 * either DPC watchdog allowance left. */
#define LDN_DPC_ALLOWANCE_MIN_PERCENT 50u
/* Bytes from a processor's KPCR taken as its processor block (KPCR and
 * KPRCB; larger than both on Windows 10 and 11, a guess, docs/windows.md). */
#define LDN_PRCB_SPAN 0x8000u

typedef struct ldn_config {
    uint64_t stop_budget_ns;     /* 0: LD_NT_STOP_BUDGET_DEFAULT_NS */
    uint64_t stop_budget_cap_ns; /* 0: LD_NT_STOP_BUDGET_MAX_NS (the driver never raises it; tests may) */
    uint32_t nt_flags;           /* LD_NT_* */
} ldn_config;

/* Commands from the leader to the parked processors, in order. */
enum {
    LDN_CMD_PARK = 0,
    LDN_CMD_DISABLE_INTERRUPTS, /* raise to SYNCH_LEVEL: device interrupts held */
    LDN_CMD_SAVE_STATE,         /* registers, control state, stack */
    LDN_CMD_SUSPEND_CLOCK,      /* raise to CLOCK_LEVEL: clock interrupts held, IPIs still taken */
    LDN_CMD_RESUME_CLOCK,       /* back to SYNCH_LEVEL */
    LDN_CMD_RESTORE_STATE,      /* nothing was changed: an acknowledgement */
    LDN_CMD_ENABLE_INTERRUPTS,  /* back to DISPATCH_LEVEL */
    LDN_CMD_RELEASE             /* leave the DPC */
};

typedef struct ldn_cpu {
    PROCESSOR_NUMBER number;
    KDPC dpc;
    CONTEXT *context;         /* 16-byte aligned, in ldn.context_mem */
    ldn_cpu_regs regs;
    ULONG_PTR stack_low, stack_high;
    uint64_t stack_pfn, stack_pages;
    uint64_t thread_id;
    bool saved;               /* this stop's state is in context/regs */
    uint32_t acked;           /* atomic: the last command carried out */
    uint32_t dpc_percent;     /* DPC allowance left on arrival, percent */
    uint64_t parked_ns;       /* how long it stayed parked */
} ldn_cpu;

typedef struct ldn_pool_entry {
    void *va;
    PMDL mdl;
    uint64_t bytes;
} ldn_pool_entry;

typedef struct ldn_kdbg {
    bool valid;
    uint64_t va;
    uint32_t size;            /* bytes of the decoded block */
    uint64_t pa[2];           /* physical address of its first byte and of its page-crossing part */
    uint32_t first_bytes;     /* bytes in the first page */
    uint8_t *bytes;           /* the decoded copy */
} ldn_kdbg;

typedef struct ldn {
    ld_hal hal;
    ld_platform platform;
    ldn_config cfg;
    uint64_t budget_ns, failsafe_ns;

    /* processors */
    uint32_t cpus;
    ldn_cpu *cpu;
    void *context_mem;

    /* the corral (atomics) */
    uint32_t gen;             /* of the current or last stop */
    uint32_t cmd;             /* LDN_CMD_* for gen */
    uint32_t arrived, departed, in_flight;
    uint32_t escaped;         /* a processor left by the failsafe: the stop is not one instant */
    uint32_t leader;
    bool corralled;           /* the engine's callback runs */
    uint64_t deadline_ns;     /* of the stop, on the leader's clock */

    /* memory */
    ld_phys_range *ranges;
    size_t range_count;
    uint64_t max_pfn, ram_pages;
    uint64_t *own;            /* bitmap, max_pfn bits: pages of our dump buffers */
    ldn_pool_entry *pools;
    size_t pool_count, pool_cap;
    void *map_va;             /* the reserved mapping */
    PMDL map_mdl;             /* MDL for LDN_MAP_PAGES pages */
    uint8_t *table;           /* one page, for the page-table walk (running only) */

    /* classification */
    ld_kind_range *kinds;
    size_t kind_count;

    /* system information */
    bool have_sys;
    ld_system_info sys;
    uint8_t *dump_header;     /* KeInitializeCrashDumpHeader's 0x2000 bytes */
    ldn_kdbg kdbg;

    ld_nt_stats stats;
} ldn;

/* hal.c */
ld_status ldn_open(const ldn_config *cfg, ldn **out);
const ld_hal *ldn_hal(ldn *n);
void ldn_get_stats(const ldn *n, ld_nt_stats *out);
void ldn_close(ldn *n);

/* platform.c (the bottom: every other file may call it) */
ld_status ldn_status(NTSTATUS s);
void ldn_platform_init(ld_platform *p);
void *ldn_alloc(size_t bytes);
void *ldn_zalloc(size_t bytes);
void ldn_free(void *p);
uint64_t ldn_now_ns(void);

/* memory.c */
ld_status ldn_memory_open(ldn *n);
void ldn_memory_close(ldn *n);
ld_status ldn_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count);
ld_status ldn_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst);
ld_status ldn_mem_status(void *ctx, uint64_t *available, uint64_t *total);
ld_status ldn_pool_open(void *ctx, ld_pool pool);
ld_status ldn_pool_alloc(void *ctx, ld_pool pool, uint64_t bytes, void **mem);
void ldn_pool_free(void *ctx, ld_pool pool, void *mem, uint64_t bytes);
bool ldn_in_ram(const ldn *n, uint64_t pfn);
/* One page at pa, read running with MmCopyMemory; false if refused. */
bool ldn_read_phys(ldn *n, uint64_t pa, void *dst, size_t len);

/* classify.c */
ld_status ldn_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count);

/* corral.c */
ld_status ldn_corral_open(ldn *n);
void ldn_corral_close(ldn *n);
uint32_t ldn_cpu_count(void *ctx);
ld_status ldn_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times);
ld_status ldn_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out);
/* Inside the stop: LD_STATUS_IO_TIMEOUT once the budget is spent or a
 * processor left by the failsafe. */
ld_status ldn_stop_check(ldn *n);

/* sysinfo.c */
ld_status ldn_system_info(void *ctx, ld_system_info *out);
ld_status ldn_sysinfo_refresh(ldn *n);
void ldn_sysinfo_close(ldn *n);

/* service.c */
/* The request is one the driver runs: versions, sizes, known bits,
 * terminated strings, a budget within LD_NT_STOP_BUDGET_MAX_NS. */
ld_status ldn_request_check(const ld_nt_request *req);
/* One event as a record (livedump/nt.h); its size, or 0 if cap is short. */
size_t ldn_event_encode(const ld_event *ev, void *dst, size_t cap);
/* One capture for the driver (PASSIVE_LEVEL): from a new system thread,
 * into `file` (a kernel handle open for synchronous writing), one at a
 * time machine-wide (LD_STATUS_DEVICE_BUSY otherwise). The reply and the
 * event records go to out (cap bytes, at least sizeof(ld_nt_reply));
 * *out_len says how many. `cfg` NULL: the backend's defaults from the
 * request; tests pass their own. Returns the reply's status. */
ld_status ldn_service_capture(const ld_nt_request *req, HANDLE file, void *out, size_t cap, size_t *out_len,
                              const ldn_config *cfg);
/* True while a capture runs. */
bool ldn_service_busy(void);

#endif
