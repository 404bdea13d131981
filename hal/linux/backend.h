/* The Linux /proc/kcore backend's private state, shared by its files:
 * kcore.c (ELF parsing, physical reads), iomem.c (/proc/iomem),
 * classify.c (page kinds), quiesce.c (user-space freeze, tasks per CPU),
 * linux.c (the HAL table, dirty-log emulation, open/close). */
#ifndef LDL_BACKEND_H
#define LDL_BACKEND_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#include "livedump/linux.h"
#include "livedump/output.h"
#include "livedump/sys/hal.h"
#include "errno_status.h"
#include "error.h"
#include "file_io.h"

/* A direct-map PT_LOAD of /proc/kcore, trimmed to whole pages. Starts as
 * an ld_phys_range does, for ld_range_find. */
typedef struct ldl_segment {
    uint64_t first_pfn, page_count;
    uint64_t file_offset; /* of first_pfn's page */
} ldl_segment;

/* An /proc/iomem range, bytes, both ends inclusive as iomem prints them:
 * a range may end at the last byte of the address space (an exclusive end
 * would not fit in 64 bits). */
typedef struct ldl_iomem_range {
    uint64_t start, last;
} ldl_iomem_range;

/* The pages wholly inside the bytes [start, last], as pfns [*first, *end);
 * never wraps, whatever the values (empty: *first >= *end). */
static inline void ldl_whole_pages(uint64_t start, uint64_t last, uint64_t page_size, uint64_t *first,
                                   uint64_t *end)
{
    *first = start / page_size + (start % page_size != 0);
    *end = last / page_size + (last % page_size == page_size - 1);
}

typedef struct ldl_iomem {
    ldl_iomem_range *ram;      /* top-level "System RAM" */
    size_t ram_count;
    ldl_iomem_range *image;    /* "Kernel code/rodata/data/bss" */
    size_t image_count;
    bool all_zero;            /* every address printed as 0: no CAP_SYS_ADMIN */
} ldl_iomem;

typedef struct ldl_cpu_task {
    bool known;
    uint64_t pid;
} ldl_cpu_task;

struct ld_linux {
    ld_hal hal;
    int kcore_fd;
    int kpageflags_fd;        /* -1: no classification by flags */
    uint32_t page_size, page_shift;
    char *meminfo_path, *proc_path, *freeze_cgroup;
    int *stop_pids;
    bool *we_stopped;         /* per stop_pids entry: SIGSTOP was ours to undo */
    size_t stop_pid_count;
    bool scan_zero;
    ld_progress_fn progress;  /* of classification; may be NULL */
    void *progress_arg;
    uint32_t cpus;

    ldl_segment *segs;         /* sorted, not overlapping */
    size_t seg_count;
    ld_phys_range *ranges;    /* RAM: segments cross-checked with iomem */
    size_t range_count;
    uint64_t *rank_base;      /* per range: RAM pages in the ranges before it */
    uint64_t max_pfn;
    ldl_iomem iomem;

    char *vmcoreinfo;
    uint64_t vmcoreinfo_size;
    char os_release[128];
    uint64_t direct_map_base, kernel_text_va;

    ld_kind_range *kinds;     /* last classification */
    size_t kind_count;

    /* dirty-log emulation: a checksum per page read while tracking */
    bool tracking;
    uint64_t *sums;           /* per RAM page, by rank (rank_base): stats.ram_pages entries */
    uint64_t *tracked;        /* bitmap by rank: sums[rank] holds a checksum */
    uint8_t *scratch;         /* LDL_SCRATCH_PAGES pages */

    ldl_cpu_task *tasks;       /* per CPU, gathered at each quiesce */
    ld_linux_stats stats;
};

#define LDL_SCRATCH_PAGES 64u

/* Open one of the files the backend reads (kcore, iomem, kpageflags):
 * read-only, and a regular file as procfs's are, without hanging on a FIFO
 * or device put in its place. A symlink is followed: the path is the
 * system's own or one the caller configured. -1 with errno, or
 * LDU_NOT_REGULAR. */
static inline int ldl_open_file(const char *path)
{
    return ldu_open_regular(AT_FDCWD, path, O_RDONLY, 0, NULL);
}

/* The first failure of ld_linux_open, told in err with its reason. */
#define ldl_fail(err, reason, st, ...) ldu_fail_full((err), (st), 0, (reason), LD_ERROR_NO_OFFSET, __VA_ARGS__)
#define ldl_fail_os(err, reason, st, os_error, ...) \
    ldu_fail_full((err), (st), (os_error), (reason), LD_ERROR_NO_OFFSET, __VA_ARGS__)

/* kcore.c */
ld_status ldl_kcore_parse(ld_linux *lx, const char *path, ld_error *err);
ld_status ldl_read_pages(ld_linux *lx, uint64_t pfn, uint64_t count, void *dst);
uint64_t ldl_now_ns(void);

/* iomem.c */
ld_status ldl_iomem_parse(const char *path, ldl_iomem *out, ld_error *err);
void ldl_iomem_free(ldl_iomem *io);

/* classify.c */
ld_status ldl_classify(ld_linux *lx);

/* quiesce.c */
ld_status ldl_check_freeze_config(const ld_linux *lx, ld_error *err);
ld_status ldl_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times);
void ldl_gather_cpu_tasks(ld_linux *lx);

#endif
