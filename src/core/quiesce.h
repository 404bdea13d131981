/* The quiesce step sequence both workflows use (events 104/105 121/122 for
 * sizing, 154/155 165/166 for the capture), and the work done while
 * stopped that both need. */
#ifndef LDI_QUIESCE_H
#define LDI_QUIESCE_H

#include "session.h"

/* Run fn with the machine stopped, between the start/end and corral/
 * uncorral events given; times and the wall time of the whole call are
 * filled. A corral that fails leaves the machine running (the HAL
 * guarantees it) and is reported. */
ld_status ldi_quiesce(ld_engine *e, ldi_session *s, uint16_t start_id, uint16_t corral_id,
                      uint16_t uncorral_id, uint16_t end_id, ld_quiesced_fn fn, void *arg,
                      ld_quiesce_times *times, uint64_t *wall_ns);
/* While stopped: every processor's context, the system time and uptime. */
ld_status ldi_capture_contexts(ld_engine *e, ldi_session *s);
/* While stopped: s->required = the required kinds + each processor's
 * current stack and page-directory page. */
void ldi_mark_required(ld_engine *e, ldi_session *s);
/* Each processor's current stack pages and page-directory (CR3) page that
 * are real RAM, to fn. */
void ldi_context_pages(ld_engine *e, ldi_session *s, void (*fn)(ldi_session *s, uint64_t pfn));

#endif
