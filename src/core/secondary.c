/* After the machine resumes: the secondary-data callouts (event 169) and
 * the dump's comment. */
#include "secondary.h"
#include "emit.h"
#include "state.h"

/* Secondary-data callouts run after the machine resumes: they are
 * component code, which must never run while processors are corralled. */
ld_status ldi_collect_secondary(ld_engine *e, ldi_session *s)
{
    ld_dump *d = s->dump;
    if (!ldi_transition(e, LDI_CAPTURE_SECONDARY))
        return LD_STATUS_INVALID_DEVICE_STATE;
    for (uint32_t i = 0; i < e->callout_count; i++) {
        ldi_callout *c = &e->callouts[i];
        bool included = s->callouts_fit &&
                        ldi_dump_add_blob(d, c->fn, c->arg, c->max_bytes, c->name, c->guid) == LD_STATUS_SUCCESS;
        ld_event ev;
        ldi_ev(&ev, e, 169);
        ldi_ev_str(&ev, "Callout", c->name);
        ldi_ev_u64(&ev, "Included", included);
        ldi_emit(e, &ev);
    }
    s->res->blobs = (uint32_t)d->info.blob_count;
    /* The comment names the producer and the options, for whoever opens
     * the file later. */
    const ld_capture_request *req = s->req;
    char *p = d->comment;
    size_t cap = sizeof d->comment, n = 0;
    /* Only what the dump holds: no "+hv" from a machine without a hypervisor. */
    bool hv_asked = (req->add_pages & LD_ADD_HV_PAGES) != 0, hv_none = s->res->hv_unavailable;
    const char *parts[] = {"livedump live dump; type=", ld_dump_type_name(req->type),
                           (req->add_pages & LD_ADD_USER_PAGES) ? " +user" : "",
                           hv_asked ? (hv_none ? " hv-unavailable" : " +hv") : "",
                           (req->add_pages & LD_ADD_HV_NONESSENTIAL_PAGES) && !hv_none ? " +hv-nonessential" : "",
                           (req->flags & LD_FLAG_SELECTIVE_DUMP) ? " selective" : "",
                           s->res->mirrored ? " mirrored" : " stopped-copy",
                           s->res->machine_stopped ? "" : "; not stopped (the kernel kept running)",
                           req->comment ? "; " : "", req->comment ? req->comment : ""};
    for (size_t i = 0; i < LDI_ARRAY_SIZE(parts); i++)
        for (const char *q = parts[i]; *q && n + 1 < cap; q++)
            p[n++] = *q;
    p[n] = 0;
    d->info.comment = d->comment;
    return LD_STATUS_SUCCESS;
}
