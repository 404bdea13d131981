/* The format writer and the sink (events 3/4, 203/204). */
#include "write.h"
#include "emit.h"

/* The dump file size limit on the write side: bytes written beyond it fail
 * as a full disk does, so the sink aborts and removes what it has. */
typedef struct size_limit {
    uint64_t limit, written;
} size_limit;

static ld_status check_limit(void *arg, uint64_t offset, size_t len)
{
    size_limit *l = arg;
    (void)offset;
    if (len > l->limit - l->written)
        return LD_STATUS_DISK_FULL;
    l->written += len;
    return LD_STATUS_SUCCESS;
}

ld_status ldi_write_dump(ld_engine *e, ld_dump *d, const ld_format *format, ld_sink *sink,
                         ld_progress_fn progress, void *progress_arg, ld_result *res, uint16_t ev_start,
                         uint16_t ev_end)
{
    e->plat->lock_acquire(e->plat->ctx, e->lock);
    size_limit lim = {e->size_limit, 0};
    e->plat->lock_release(e->plat->ctx, e->lock);
    ld_sink_filter filter;
    if (lim.limit)
        sink = ld_sink_filter_init(&filter, sink, check_limit, &lim);
    ldi_emit_simple(e, ev_start);
    uint64_t t0 = ldi_now(e);
    ld_write_stats ws;
    memset(&ws, 0, sizeof ws);
    ld_status st = format->write(d, sink, progress, progress_arg, &ws);
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
