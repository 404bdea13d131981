/* The live dump's state machine: every change goes through ldi_transition,
 * which refuses a change its table does not list. */
#ifndef LDI_STATE_H
#define LDI_STATE_H

#include "session.h"

const char *ldi_state_name(ldi_state s);
/* Change state under the engine's lock; false if not allowed. */
bool ldi_transition(ld_engine *e, ldi_state to);
/* The same, with the lock already held (claims test and change in one hold). */
bool ldi_transition_locked(ld_engine *e, ldi_state to);
/* Where a capture, write or discard ends: held while any dump is. */
ldi_state ldi_rest_state(const ld_engine *e);

#endif
