/* The report storage's private state, shared by reports.c (folders, names,
 * capture, retention) and throttle.c (LastFullLiveReport). */
#ifndef LD_REPORTS_INTERNAL_H
#define LD_REPORTS_INTERNAL_H

#include "livedump/reports.h"

#define LDR_MAX_COMPONENTS 256
#define LDR_STATE_FILE ".LastFullLiveReport"
#define LDR_LOCK_FILE ".LastFullLiveReport.lock"

typedef struct ldr_last {
    char component[LD_COMPONENT_MAX + 1];
    uint64_t time;
} ldr_last;

/* A deferred capture this storage admitted and that is still held: it
 * counts for throttling from its capture time until it lands (recorded) or
 * is discarded (forgotten). */
typedef struct ldr_held {
    const ld_dump *handle;
    uint64_t uptime; /* with the handle, names the dump: an address can be reused */
    char component[LD_COMPONENT_MAX + 1];
    uint64_t time;   /* capture time, by the storage's clock */
    bool full;
} ldr_held;

struct ld_reports {
    char root[LD_SETTINGS_PATH_MAX];
    int root_fd; /* the root, open: every file operation is relative to it */
    bool read_only; /* LD_REPORTS_READ_ONLY: create and write nothing */
    ld_settings settings;
    ld_clock_fn clock;
    void *clock_arg;
    /* LastFullLiveReport: of the system, and of each component. */
    uint64_t system_last;
    ldr_last last[LDR_MAX_COMPONENTS];
    uint32_t last_count;
    char state_problem[256]; /* "" when the state file was sound */
    bool state_problem_noted; /* told as event 6 to an engine already */
    ldr_held held[LD_MAX_DEFERRED];
    uint32_t held_count;
    /* Progress of deferred writes (ld_reports_set_progress). */
    ld_progress_fn progress;
    void *progress_arg;
    /* For the admission hook: the component of the capture under way. */
    const char *admit_component;
};

uint64_t ldr_now(const ld_reports *r);
/* throttle.c */
ld_status ldr_state_load(ld_reports *r);
ld_status ldr_state_record(ld_reports *r, const char *component, uint64_t when);
uint64_t ldr_component_last(const ld_reports *r, const char *component);
/* The cross-process throttling lock: an exclusive flock on ROOT/LDR_LOCK_FILE
 * (0600, created relative to the root, never through a symlink), held from
 * admission to the record so two processes cannot both pass. *fd to give
 * back to ldr_unlock. */
ld_status ldr_lock(ld_reports *r, int *fd);
void ldr_unlock(int fd);
/* Under the lock: read the state again, so a dump another process recorded
 * since the open counts. A problem found at open stays reported. */
ld_status ldr_state_reload(ld_reports *r);

#endif
