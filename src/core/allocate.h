/* Allocation: the dump's buffers, before any page is copied. */
#ifndef LDI_ALLOCATE_H
#define LDI_ALLOCATE_H

#include "session.h"

ld_status ldi_allocate(ld_engine *e, ldi_session *s);

#endif
