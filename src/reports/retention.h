/* Retention (src/reports/retention.c). */
#ifndef LD_REPORTS_RETENTION_H
#define LD_REPORTS_RETENTION_H

#include "storage.h"

/* Retention, in the order the reports landed, and the removal of
 * incomplete leftovers no live writer holds; `keep` (may be NULL) is the
 * report that just landed, never deleted; e (may be NULL) is told each
 * deletion (event 6). What is deleted leaves the state (in memory: the
 * caller saves it). *deleted (may be NULL) counts the files removed. */
ld_status ldr_prune(ld_reports *r, ld_engine *e, const char *keep, uint32_t *deleted);

#endif
