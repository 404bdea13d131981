/* The throttling state (LastFullLiveReport) (src/reports/throttle.c). */
#ifndef LD_REPORTS_THROTTLE_H
#define LD_REPORTS_THROTTLE_H

#include "storage.h"

/* Read the state, repair it (times in the future clamped to now, a landing
 * settled, reports on disk it did not list added, reports gone forgotten)
 * and save it when that changed anything (unless read-only; a failed save
 * is tried again at the next change). */
ld_status ldr_state_load(ld_reports *r);
/* Under the lock: read the state again, so a dump another process recorded
 * since the open counts. A problem found at open stays reported. */
ld_status ldr_state_reload(ld_reports *r);
/* Save the state as it is in memory. */
ld_status ldr_state_save(ld_reports *r);
uint64_t ldr_component_last(const ld_reports *r, const char *component);
/* Add the reports on disk the state does not know (in name order, after
 * those it knows; full ones count for throttling at the time in their
 * name, no later than now) except `skip` (may be NULL), and forget those
 * gone. *changed (may be NULL) says whether anything did. */
ld_status ldr_reconcile(ld_reports *r, const char *skip, bool *changed);
/* A report landed: it takes the next place; a full one is what throttling
 * counts from `when` on. The landing record, if any, is cleared. */
ld_status ldr_record(ld_reports *r, const char *rel, const char *component, bool full, uint64_t when);
/* Before a full dump is written under `rel`: save the state with its
 * landing record. On failure nothing is recorded and the dump must not be
 * written. */
ld_status ldr_landing_begin(ld_reports *r, const char *component, uint64_t when, const char *rel);
/* The dump was not written after all: forget its landing record (saved
 * when possible; a record whose file is missing is forgotten at load). */
void ldr_landing_cancel(ld_reports *r);

#endif
