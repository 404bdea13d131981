/* Raising events: build one (event_build.h), then deliver it to the
 * subscribers, or queue it while the machine is stopped. */
#ifndef LDI_EMIT_H
#define LDI_EMIT_H

#include "session.h"

/* Initialise ev as event id, now. */
ld_event *ldi_ev(ld_event *ev, ld_engine *e, uint16_t id);
void ldi_ev_u64(ld_event *ev, const char *field, uint64_t v);
void ldi_ev_str(ld_event *ev, const char *field, const char *s);
/* Deliver (or queue, while e->queue_events) an event built above. */
void ldi_emit(ld_engine *e, ld_event *ev);
/* An event without fields / with NTStatus only. */
void ldi_emit_simple(ld_engine *e, uint16_t id);
void ldi_emit_status(ld_engine *e, uint16_t id, ld_status st);
/* Event 6 with up to 8 named parameters (names NULL or "" = unused). */
void ldi_emit_generic_n(ld_engine *e, const char *text, const char *const *names, const uint64_t *values,
                        unsigned count);
void ldi_emit_generic(ld_engine *e, const char *text, const char *n1, uint64_t v1, const char *n2, uint64_t v2);
/* Events 271 (operation "Query" or "Set") and, for "Set", 272 with the
 * AllowLiveDump in force and the change's status. */
void ldi_emit_policy(ld_engine *e, const char *operation, bool allow, ld_status status);
/* Start queueing (the machine is about to stop) / deliver what was queued,
 * in order. */
void ldi_queue_events(ld_engine *e);
void ldi_flush_events(ld_engine *e);

#endif
