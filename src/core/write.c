/* The format writer and the sink (events 3/4, 203/204). */
#include "write.h"
#include "emit.h"

/* What stands between the writer and the sink: the dump file size limit
 * (bytes written beyond it fail as a full disk does, so the sink aborts
 * and removes what it has) and a cancel (the engine's, or the request's
 * flag), asked before every write and the finish; and the caller's
 * progress, which may stop the write too. */
typedef struct write_guard {
    ld_engine *e;
    const volatile int *cancel;
    ld_progress_fn progress;
    void *progress_arg;
    uint64_t limit, written; /* limit 0: none */
    ld_status stop;
} write_guard;

static ld_status guard_check(void *arg, uint64_t offset, size_t len)
{
    write_guard *g = arg;
    (void)offset;
    if (g->stop == LD_STATUS_SUCCESS &&
        (__atomic_load_n(&g->e->cancel, __ATOMIC_ACQUIRE) || (g->cancel && *g->cancel)))
        g->stop = LD_STATUS_CANCELLED;
    if (g->stop != LD_STATUS_SUCCESS)
        return g->stop;
    if (g->limit && len > g->limit - g->written)
        return LD_STATUS_DISK_FULL;
    g->written += len;
    return LD_STATUS_SUCCESS;
}

static uint32_t guard_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    write_guard *g = arg;
    if (g->stop == LD_STATUS_SUCCESS && g->progress) {
        ld_status st = g->progress(g->progress_arg, phase, done, total);
        if (st != LD_STATUS_SUCCESS)
            g->stop = st;
    }
    return g->stop;
}

ld_status ldi_write_dump(ld_engine *e, ld_dump *d, const ld_format *format, ld_sink *sink,
                         ld_progress_fn progress, void *progress_arg, const volatile int *cancel, ld_result *res,
                         uint16_t ev_start, uint16_t ev_end)
{
    write_guard g = {e, cancel, progress, progress_arg, 0, 0, LD_STATUS_SUCCESS};
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    g.limit = e->size_limit;
    e->plat->lock_release(e->plat->ctx, e->lock);
    ld_sink_filter filter;
    sink = ld_sink_filter_init(&filter, sink, guard_check, &g);
    ldi_emit_simple(e, ev_start);
    uint64_t t0 = ldi_now(e);
    ld_write_stats ws;
    memset(&ws, 0, sizeof ws);
    ld_status st = format->write(d, sink, guard_progress, &g, &ws);
    /* A writer that went on after a stop its progress was told of. */
    if (st == LD_STATUS_SUCCESS && g.stop != LD_STATUS_SUCCESS)
        st = g.stop;
    if (st == LD_STATUS_SUCCESS)
        st = sink->finish(sink, ws.file_bytes);
    else
        sink->abort(sink);
    res->write_ns = ldi_now(e) - t0;
    res->header_bytes = ws.header_bytes;
    res->primary_bytes = ws.primary_bytes;
    res->secondary_bytes = ws.secondary_bytes;
    res->total_bytes = ws.header_bytes + ws.primary_bytes + ws.secondary_bytes;
    res->file_bytes = st == LD_STATUS_SUCCESS ? ws.file_bytes : 0;
    ld_event ev;
    ldi_ev(&ev, e, ev_end);
    ldi_ev_u64(&ev, "NTStatus", st);
    ldi_ev_u64(&ev, "TotalBytes", res->total_bytes);
    ldi_ev_u64(&ev, "HeaderBytes", ws.header_bytes);
    ldi_ev_u64(&ev, "PrimaryDataBytes", ws.primary_bytes);
    ldi_ev_u64(&ev, "SecondaryDataBytes", ws.secondary_bytes);
    ldi_ev_u64(&ev, "DumpWriteDuration_ms", ldi_ms(res->write_ns));
    ldi_emit(e, &ev);
    return st;
}
