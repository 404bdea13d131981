/* The report storage's private state, shared by its files, which stand in
 * this order, each using only those before it:
 *   names      report names and paths (no I/O)
 *   folders    the root and component folders, opened safely
 *   known      the landing order of the reports, in memory
 *   listing    the reports on disk, oldest first
 *   lock       the cross-process throttling lock
 *   throttle   LastFullLiveReport: the state file, and admission
 *   retention  what retention and prune delete
 *   capture    captures and deferred writes into the storage
 *   reports    the object: open, close
 * (files.c and settings.c: the settings and their file, beside them.) */
#ifndef LDR_STORAGE_H
#define LDR_STORAGE_H

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
    ld_error *call_err; /* the error detail of the capture or deferred write under way; may be NULL */
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

/* The storage's clock: seconds since 1970 UTC (ld_reports_options.clock). */
static inline uint64_t ldr_now(const ld_reports *r)
{
    return r->clock(r->clock_arg);
}

#endif
