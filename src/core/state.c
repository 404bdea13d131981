/* The state machine's table (docs/architecture.md draws it). */
#include "state.h"

#define B(s) (1u << (s))
/* A capture may start while deferred dumps are held (up to max_deferred),
 * and every path ends in the rest state: held if any dump is held, else
 * idle. */
#define REST (B(LDI_IDLE) | B(LDI_HELD))
static const uint32_t allowed_next[LDI_STATE_COUNT] = {
    [LDI_IDLE] = B(LDI_STARTED),
    [LDI_STARTED] = B(LDI_SIZING_MIRROR) | REST,
    [LDI_SIZING_MIRROR] = B(LDI_SIZING_QUIESCED) | REST,
    [LDI_SIZING_QUIESCED] = B(LDI_SIZING_CALLBACKS) | REST,
    [LDI_SIZING_CALLBACKS] = B(LDI_SIZING_ESTIMATE) | REST,
    [LDI_SIZING_ESTIMATE] = B(LDI_SIZING_ALLOCATE) | REST,
    [LDI_SIZING_ALLOCATE] = B(LDI_CAPTURE_PHASE0) | B(LDI_CAPTURE_QUIESCED) | REST,
    [LDI_CAPTURE_PHASE0] = B(LDI_CAPTURE_PHASE1) | B(LDI_CAPTURE_QUIESCED) | REST,
    [LDI_CAPTURE_PHASE1] = B(LDI_CAPTURE_QUIESCED) | REST,
    [LDI_CAPTURE_QUIESCED] = B(LDI_CAPTURE_SECONDARY) | REST,
    [LDI_CAPTURE_SECONDARY] = B(LDI_WRITING) | REST,
    [LDI_WRITING] = REST,
    [LDI_HELD] = B(LDI_WRITING) | B(LDI_STARTED) | B(LDI_IDLE),
};
#undef REST
#undef B

const char *ldi_state_name(ldi_state s)
{
    static const char *const names[LDI_STATE_COUNT] = {
        "idle", "started", "sizing-mirror", "sizing-quiesced", "sizing-callbacks",
        "sizing-estimate", "sizing-allocate", "capture-phase0", "capture-phase1",
        "capture-quiesced", "capture-secondary", "writing", "held",
    };
    return (unsigned)s < LDI_STATE_COUNT ? names[s] : "invalid";
}

/* The state is read by other threads (to answer "busy"), so every change
 * happens under the lock. */
bool ldi_transition_locked(ld_engine *e, ldi_state to)
{
    ldi_state from = e->state;
    if ((unsigned)to >= LDI_STATE_COUNT || !(allowed_next[from] & (1u << to)))
        return false;
    e->state = to;
    if (e->state_hook)
        e->state_hook(e->state_hook_arg, from, to);
    return true;
}

bool ldi_transition(ld_engine *e, ldi_state to)
{
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    bool ok = ldi_transition_locked(e, to);
    e->plat->lock_release(e->plat->ctx, e->lock);
    return ok;
}

ldi_state ldi_rest_state(const ld_engine *e)
{
    return e->held_count ? LDI_HELD : LDI_IDLE;
}
