/* Event delivery: subscribers are called on the capturing thread, never
 * while processors are corralled (events raised then are queued without
 * allocating and delivered after the corral event). */
#include "emit.h"
#include "event_build.h"

ld_event *ldi_ev(ld_event *ev, ld_engine *e, uint16_t id)
{
    ldi_event_init(ev, id, ldi_now(e));
    return ev;
}

void ldi_ev_u64(ld_event *ev, const char *field, uint64_t v)
{
    (void)ldi_event_set_u64(ev, field, v);
}

void ldi_ev_str(ld_event *ev, const char *field, const char *s)
{
    (void)ldi_event_set_str(ev, field, s);
}

/* Callbacks run without the lock (they may call the engine), on a copy of
 * the subscriber list taken under it. */
static void deliver(ld_engine *e, const ld_event *ev)
{
    ldi_subscriber subs[LDI_MAX_SUBSCRIBERS];
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    memcpy(subs, e->subs, sizeof subs);
    e->plat->lock_release(e->plat->ctx, e->lock);
    uint32_t bit = LD_CHANNEL_BIT(ev->channel);
    for (int i = 0; i < LDI_MAX_SUBSCRIBERS; i++)
        if (subs[i].fn && (subs[i].mask & bit))
            subs[i].fn(subs[i].arg, ev);
}

void ldi_emit(ld_engine *e, ld_event *ev)
{
    uint64_t st;
    if (ld_event_get_u64(ev, "NTStatus", &st) && st != LD_STATUS_SUCCESS)
        ev->level = LD_LEVEL_ERROR;
    else if (ev->id == 5 || ev->id == 124)
        ev->level = LD_LEVEL_WARNING;
    if (e->queue_events) {
        if (e->queued < LDI_QUEUED_EVENTS)
            e->queue[e->queued++] = *ev;
        else
            e->dropped_events++;
        return;
    }
    deliver(e, ev);
}

void ldi_emit_simple(ld_engine *e, uint16_t id)
{
    ld_event ev;
    ldi_emit(e, ldi_ev(&ev, e, id));
}

void ldi_emit_status(ld_engine *e, uint16_t id, ld_status st)
{
    ld_event ev;
    ldi_ev(&ev, e, id);
    ldi_ev_u64(&ev, "NTStatus", st);
    ldi_emit(e, &ev);
}

/* Event 6. ETW events always carry every field, so the unused parameter
 * pairs are sent empty, as Windows sends them. */
void ldi_emit_generic_n(ld_engine *e, const char *text, const char *const *pnames, const uint64_t *values,
                        unsigned count)
{
    static const char *const names[8][2] = {
        {"Parameter1Name", "Parameter1Value"}, {"Parameter2Name", "Parameter2Value"},
        {"Parameter3Name", "Parameter3Value"}, {"Parameter4Name", "Parameter4Value"},
        {"Parameter5Name", "Parameter5Value"}, {"Parameter6Name", "Parameter6Value"},
        {"Parameter7Name", "Parameter7Value"}, {"Parameter8Name", "Parameter8Value"},
    };
    ld_event ev;
    ldi_ev(&ev, e, 6);
    ldi_ev_str(&ev, "LiveDumpEventDescription", text);
    for (unsigned i = 0; i < 8; i++) {
        const char *n = i < count && pnames[i] && pnames[i][0] ? pnames[i] : 0;
        ldi_ev_str(&ev, names[i][0], n ? n : "");
        ldi_ev_u64(&ev, names[i][1], n ? values[i] : 0);
    }
    ldi_emit(e, &ev);
}

void ldi_emit_generic(ld_engine *e, const char *text, const char *n1, uint64_t v1, const char *n2, uint64_t v2)
{
    const char *names[2] = {n1, n2};
    uint64_t values[2] = {v1, v2};
    ldi_emit_generic_n(e, text, names, values, 2);
}

void ldi_emit_policy(ld_engine *e, const char *operation, bool allow, ld_status status)
{
    ld_event ev;
    ldi_ev(&ev, e, 271);
    ldi_ev_str(&ev, "OperationType", operation);
    ldi_emit(e, &ev);
    if (operation[0] != 'S')
        return;
    ldi_ev(&ev, e, 272);
    ldi_ev_u64(&ev, "PolicyValue", allow ? 1 : 0);
    ldi_ev_u64(&ev, "NTStatus", status);
    ldi_emit(e, &ev);
}

void ldi_queue_events(ld_engine *e)
{
    e->queued = 0;
    e->queue_events = true;
}

void ldi_flush_events(ld_engine *e)
{
    e->queue_events = false;
    for (uint32_t i = 0; i < e->queued; i++)
        deliver(e, &e->queue[i]);
    e->queued = 0;
}
