/* Secondary data and the comment, once the machine runs again (event 169). */
#ifndef LDI_SECONDARY_H
#define LDI_SECONDARY_H

#include "session.h"

ld_status ldi_collect_secondary(ld_engine *e, ldi_session *s);

#endif
