/* The landing order (src/reports/known.c). */
#ifndef LD_REPORTS_KNOWN_H
#define LD_REPORTS_KNOWN_H

#include "storage.h"

/* The index of `rel` in r->known, or where it would go; *found says which. */
uint32_t ldr_known_slot(const ld_reports *r, const char *rel, bool *found);
ldr_known *ldr_find_known(const ld_reports *r, const char *rel);
/* The place of the report `rel` in the landing order; 0: not known. */
uint64_t ldr_known_order(const ld_reports *r, const char *rel);
/* Add or move `rel` to place `order` (next_order follows). */
ld_status ldr_set_known(ld_reports *r, const char *rel, uint64_t order);
void ldr_drop_known(ld_reports *r, uint32_t index);
/* The report `rel` is gone (retention removed it). */
void ldr_forget(ld_reports *r, const char *rel);

#endif
