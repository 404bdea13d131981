/* The capture-pages workflow (events 151-168): mirroring and the final
 * quiesce. */
#ifndef LDI_CAPTURE_H
#define LDI_CAPTURE_H

#include "session.h"

ld_status ldi_capture_pages(ld_engine *e, ldi_session *s);

#endif
