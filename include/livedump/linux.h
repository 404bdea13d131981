/* livedump: the Linux backend — live dumps of the running kernel through
 * /proc/kcore (user mode, needs root: CAP_SYS_RAWIO, and CAP_SYS_ADMIN for
 * /proc/iomem addresses).
 *
 * It reads physical memory through the direct-map segments of /proc/kcore,
 * classifies pages from /proc/kpageflags and /proc/iomem, and emulates the
 * HAL's dirty log with a checksum per page (docs/linux.md). The kernel keeps
 * running during the whole capture: "quiesce" can only freeze user space (a
 * cgroup v2 and/or a set of processes), so LD_HAL_CAP_QUIESCE is never set.
 *
 * Ownership: ld_linux_open returns a backend the caller frees with
 * ld_linux_close. ld_linux_hal returns a table owned by it, valid until
 * ld_linux_close. Every path in the config is copied.
 */
#ifndef LIVEDUMP_LINUX_H
#define LIVEDUMP_LINUX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added progress/progress_arg; a version 1 config (without them) is
 * still accepted. */
#define LD_LINUX_CONFIG_VERSION 2

typedef struct ld_linux_config {
    uint32_t version;            /* LD_LINUX_CONFIG_VERSION (ld_linux_config_init), or 1 */
    /* Files read; NULL means the system's own. Tests point them at
     * synthetic copies. kpageflags "" disables page classification (every
     * page is then "other kernel" data, so every dump is a full one). */
    const char *kcore_path;      /* /proc/kcore */
    const char *iomem_path;      /* /proc/iomem */
    const char *kpageflags_path; /* /proc/kpageflags */
    const char *meminfo_path;    /* /proc/meminfo: MemAvailable for the memory-pressure check,
                                  * MemTotal to refuse a layout with more RAM than the machine */
    const char *proc_path;       /* /proc: which task runs on each CPU; self/mountinfo and
                                  * self/cgroup: whether freeze_cgroup holds us */
    const char *lockdown_path;   /* /sys/kernel/security/lockdown: tells lockdown from EPERM */
    /* Quiesce from user space: freeze this cgroup v2 directory (e.g.
     * /sys/fs/cgroup/app) and stop these processes (SIGSTOP/SIGCONT) while
     * the final pass runs. Both optional; the capturing process may not be
     * among them (nor any thread of it), and a cgroup of which that cannot
     * be told is refused. One already frozen or stopped is left so. */
    const char *freeze_cgroup;
    const int *stop_pids;
    size_t stop_pid_count;
    /* Classify pages whose content is all zero as LD_PAGE_ZERO (one read
     * of memory at classification; makedumpfile's dump level bit 1).
     * Default true. Racy: a page zero then and written before the dump
     * instant is missing from the dump (docs/linux.md); false avoids it. */
    bool scan_zero_pages;
    uint32_t cpu_count;          /* 0: the online CPUs */
    /* Version 2. Progress of the scan of every RAM page at classification
     * (the start of each capture; phase "classify", in pages), which
     * takes seconds per GiB with scan_zero_pages. NULL: none. */
    ld_progress_fn progress;
    void *progress_arg;
} ld_linux_config;

LD_EXTERN void ld_linux_config_init(ld_linux_config *cfg);

/* Why ld_linux_open failed: ld_error.reason. */
typedef enum ld_linux_reason {
    LD_LINUX_OK = 0,
    LD_LINUX_NO_KCORE,       /* /proc/kcore does not exist: kernel built without CONFIG_PROC_KCORE */
    LD_LINUX_NOT_PERMITTED,  /* open refused: not root / no CAP_SYS_RAWIO */
    LD_LINUX_LOCKDOWN,       /* kernel lockdown (integrity or confidentiality) refuses /proc/kcore */
    LD_LINUX_IOMEM_HIDDEN,   /* /proc/iomem shows zero addresses: no CAP_SYS_ADMIN */
    LD_LINUX_BAD_KCORE,      /* /proc/kcore is malformed or has no physical addresses */
    LD_LINUX_BAD_IOMEM,      /* /proc/iomem unreadable, malformed, or without System RAM */
    LD_LINUX_BAD_CONFIG,     /* the configuration is invalid (e.g. it would freeze the caller) */
    LD_LINUX_NO_MEMORY,
    LD_LINUX_IMPLAUSIBLE_LAYOUT /* kcore and iomem give more RAM than the machine has (MemTotal) */
} ld_linux_reason;

typedef struct ld_linux ld_linux;

/* Open the backend. On failure *out is NULL and err (may be NULL,
 * livedump/status.h) says why: its reason is an ld_linux_reason, its
 * message one line for a person (what, which file, why). The status is LD_STATUS_NO_SUCH_FILE (no kcore), LD_STATUS_ACCESS_DENIED
 * (permission, lockdown, hidden iomem), LD_STATUS_FILE_CORRUPT (malformed
 * file; a layout with more RAM than the machine has, reason
 * LD_LINUX_IMPLAUSIBLE_LAYOUT), LD_STATUS_INVALID_PARAMETER or
 * LD_STATUS_NO_MEMORY. */
LD_EXTERN ld_status ld_linux_open(const ld_linux_config *cfg, ld_linux **out, ld_error *err);
LD_EXTERN const ld_hal *ld_linux_hal(ld_linux *lx);
LD_EXTERN void ld_linux_close(ld_linux *lx);

/* What the backend saw, for reports and tests. */
typedef struct ld_linux_stats {
    uint64_t ram_pages;            /* pages in the physical ranges */
    uint64_t kcore_ram_segments;   /* direct-map PT_LOADs of /proc/kcore */
    uint64_t direct_map_base;      /* PAGE_OFFSET, from those segments */
    uint64_t vmcoreinfo_bytes;     /* size of the kernel's VMCOREINFO note; 0 none */
    bool kpageflags_used;          /* false: classification fell back to "other kernel" */
    uint64_t pages_by_kind[LD_PAGE_KIND_COUNT]; /* last classification */
    uint64_t bytes_read;           /* bytes read from /proc/kcore */
    uint64_t read_ns;              /* time spent in those reads */
    uint32_t dirty_fetches;        /* checksum passes */
    uint64_t last_dirty_pages;     /* pages whose checksum changed at the last pass */
    ld_status dirty_log_error;     /* why the last dirty_start failed (no mirroring then); 0 it did not */
    uint64_t dirty_log_bytes_wanted; /* what it could not allocate (8 bytes and a bit per RAM page) */
    uint64_t last_freeze_ns;       /* how long user space was frozen at the last quiesce */
    uint32_t last_frozen_tasks;    /* processes stopped by SIGSTOP at the last quiesce */
    bool last_cgroup_frozen;       /* the cgroup reported frozen at the last quiesce */
    bool last_cgroup_frozen_by_other; /* it was already frozen (cgroup.freeze 1): neither frozen nor thawed by us */
} ld_linux_stats;

LD_EXTERN void ld_linux_get_stats(const ld_linux *lx, ld_linux_stats *out);

/* The name of a reason ("no-kcore"). */
LD_EXTERN const char *ld_linux_reason_name(ld_linux_reason r);

#ifdef __cplusplus
}
#endif
#endif
