/* The sizing workflow (events 101-126). */
#ifndef LDI_SIZING_H
#define LDI_SIZING_H

#include "session.h"

/* Layout, dirty log, the sizing quiesce (contexts, required data, bitmap),
 * RemovePages callbacks, estimate and memory pressure, then allocation. */
ld_status ldi_sizing(ld_engine *e, ldi_session *s);

#endif
