/* Report names (src/reports/names.c). */
#ifndef LD_REPORTS_NAMES_H
#define LD_REPORTS_NAMES_H

#include "storage.h"

/* A report's file extension: 1 to 8 of a-z, 0-9 (NULL is none). */
bool ldr_ext_ok(const char *ext);
/* "COMP-YYYYMMDD-HHMMSS[-N].ext" -> its parts in e (component, time,
 * sequence); false for any other name. The same with ".partial" (the file
 * sink's temporary name): e->incomplete. */
bool ldr_parse_name(const char *name, ld_report_entry *e);
/* Is `rel` a complete report's path under the root ("NAME" in the root is
 * a full dump, "COMPONENT/NAME" a small one)? *full says which. */
bool ldr_rel_valid(const char *rel, bool *full);
/* The name of the dump of `component` at `when` (UTC), with "-seq" when
 * seq is not 0. */
void ldr_dump_name(char *buf, size_t cap, const char *component, uint64_t when, uint32_t seq, const char *ext);

#endif
