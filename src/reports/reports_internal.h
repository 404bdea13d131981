/* The report storage's private state, shared by reports.c (folders, names,
 * capture, retention) and throttle.c (LastFullLiveReport). */
#ifndef LD_REPORTS_INTERNAL_H
#define LD_REPORTS_INTERNAL_H

#include "livedump/reports.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"

#define LDR_MAX_COMPONENTS 256
#define LDR_STATE_FILE ".LastFullLiveReport"
#define LDR_LOCK_FILE ".LastFullLiveReport.lock"

typedef struct ldr_last {
    char component[LD_COMPONENT_MAX + 1];
    uint64_t time;
} ldr_last;

/* A report's path under the root: "NAME" (full) or "COMPONENT/NAME". */
#define LDR_REL_MAX (LD_COMPONENT_MAX + 1 + 64)

/* A report the state knows, with its place in the order reports landed
 * (1, 2, ...): what retention and listings go by, never the time in a
 * name, which a clock set wrong or a rename can make lie. */
typedef struct ldr_known {
    char rel[LDR_REL_MAX];
    uint64_t order;
} ldr_known;

/* A full dump about to get its name, recorded in the state before the
 * capture starts: a load finding its file counts it, one not finding it
 * forgets it. So a dump on disk is always counted, whatever fails after. */
typedef struct ldr_landing {
    bool active;
    uint64_t time;
    char component[LD_COMPONENT_MAX + 1];
    char rel[LDR_REL_MAX];
} ldr_landing;

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
    /* The reports in the order they landed, and the next place. */
    ldr_known *known;
    uint32_t known_count, known_cap;
    uint64_t next_order;
    ldr_landing landing;
    char error[LD_SETTINGS_PATH_MAX + 192]; /* ld_reports_error: "" = none */
    char state_problem[256]; /* "" when the state file was sound */
    bool state_problem_noted; /* told as event 6 to an engine already */
    ldr_held held[LD_MAX_DEFERRED];
    uint32_t held_count;
    /* Progress of deferred writes (ld_reports_set_progress). */
    ld_progress_fn progress;
    void *progress_arg;
    /* ld_reports_set_cancel */
    ld_reports_cancel_fn cancelled;
    void *cancel_arg;
    ld_sink_filter cancel_filter; /* around the report being written */
    /* For the admission hook: the capture under way, and for a full dump
     * written now, the name it gets and its time (the landing record). */
    const char *admit_component;
    const char *admit_rel;
    uint64_t admit_time;
};

uint64_t ldr_now(const ld_reports *r);
/* reports.c: is `rel` a complete report's path under the root ("NAME" in
 * the root is a full dump, "COMPONENT/NAME" a small one)? *full says which. */
bool ldr_rel_valid(const char *rel, bool *full);
/* throttle.c */
/* Read the state, repair it (times in the future clamped to now, a landing
 * settled, reports on disk it did not list added, reports gone forgotten)
 * and save it when that changed anything (unless read-only; a failed save
 * is tried again at the next change). */
ld_status ldr_state_load(ld_reports *r);
/* Save the state as it is in memory. */
ld_status ldr_state_save(ld_reports *r);
uint64_t ldr_component_last(const ld_reports *r, const char *component);
/* The place of the report `rel` in the landing order; 0: not known. */
uint64_t ldr_known_order(const ld_reports *r, const char *rel);
/* Add the reports on disk the state does not know (in name order, after
 * those it knows; full ones count for throttling at the time in their
 * name, no later than now) except `skip` (may be NULL), and forget those
 * gone. *changed (may be NULL) says whether anything did. */
ld_status ldr_reconcile(ld_reports *r, const char *skip, bool *changed);
/* A report landed: it takes the next place; a full one is what throttling
 * counts from `when` on. The landing record, if any, is cleared. */
ld_status ldr_record(ld_reports *r, const char *rel, const char *component, bool full, uint64_t when);
/* Retention removed the report `rel`. */
void ldr_forget(ld_reports *r, const char *rel);
/* Before a full dump is written under `rel`: save the state with its
 * landing record. On failure nothing is recorded and the dump must not be
 * written. */
ld_status ldr_landing_begin(ld_reports *r, const char *component, uint64_t when, const char *rel);
/* The dump was not written after all: forget its landing record (saved
 * when possible; a record whose file is missing is forgotten at load). */
void ldr_landing_cancel(ld_reports *r);
/* The cross-process throttling lock: an exclusive flock on ROOT/LDR_LOCK_FILE
 * (0600, created relative to the root, never through a symlink), held from
 * admission to the record so two processes cannot both pass. *fd to give
 * back to ldr_unlock. */
ld_status ldr_lock(ld_reports *r, int *fd);
/* The same without waiting: LD_STATUS_DEVICE_BUSY if another holds it. */
ld_status ldr_trylock(ld_reports *r, int *fd);
void ldr_unlock(int fd);
/* Under the lock: read the state again, so a dump another process recorded
 * since the open counts. A problem found at open stays reported. */
ld_status ldr_state_reload(ld_reports *r);

#endif
