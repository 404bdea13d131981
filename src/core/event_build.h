/* Building events inside the core. */
#ifndef LDI_EVENT_BUILD_H
#define LDI_EVENT_BUILD_H

#include "base.h"
#include "livedump/events.h"

/* Initialise ev for event id at now_ns: desc, channel, level = LD_LEVEL_INFO,
 * no value set. False if the id is not in the manifest. */
bool ldi_event_init(ld_event *ev, uint16_t id, uint64_t now_ns);
/* Set a field by name. False if the event has no such field or the type
 * does not fit (set_str for string fields only, set_u64 for the others). */
bool ldi_event_set_u64(ld_event *ev, const char *field, uint64_t value);
bool ldi_event_set_str(ld_event *ev, const char *field, const char *value);
/* True if every field the manifest lists for the event was set. */
bool ldi_event_complete(const ld_event *ev);

#endif
