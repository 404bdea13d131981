/* The report storage's private state, shared by reports.c (folders, names,
 * capture, retention) and throttle.c (LastFullLiveReport). */
#ifndef LD_REPORTS_INTERNAL_H
#define LD_REPORTS_INTERNAL_H

#include "livedump/reports.h"

#define LDR_MAX_COMPONENTS 256
#define LDR_STATE_FILE ".LastFullLiveReport"

typedef struct ldr_last {
    char component[LD_COMPONENT_MAX + 1];
    uint64_t time;
} ldr_last;

struct ld_reports {
    char root[LD_SETTINGS_PATH_MAX];
    ld_settings settings;
    ld_clock_fn clock;
    void *clock_arg;
    /* LastFullLiveReport: of the system, and of each component. */
    uint64_t system_last;
    ldr_last last[LDR_MAX_COMPONENTS];
    uint32_t last_count;
    char state_problem[256]; /* "" when the state file was sound */
    /* For the admission hook: the component of the capture under way. */
    const char *admit_component;
};

uint64_t ldr_now(const ld_reports *r);
/* throttle.c */
ld_status ldr_state_load(ld_reports *r);
ld_status ldr_state_record(ld_reports *r, const char *component, uint64_t when);
uint64_t ldr_component_last(const ld_reports *r, const char *component);

#endif
