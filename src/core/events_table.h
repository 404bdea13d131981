/* The event table generated from data/kernel-livedump-events.tsv, sorted by
 * id (tools/gen_events.py). */
#ifndef LDI_EVENTS_TABLE_H
#define LDI_EVENTS_TABLE_H

#include "base.h"
#include "livedump/events.h"

extern const ld_event_desc ldi_event_descs[];
extern const size_t ldi_event_desc_count;

#endif
