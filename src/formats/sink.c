/* What every sink shares, whoever made it: the version check, dropping an
 * unused one, and the filter (livedump/sys/sink.h). Freestanding: the
 * engine's size limit is a filter too. */
#include "format_base.h"

bool ld_sink_usable(const ld_sink *sink)
{
    return sink && sink->version == LD_SINK_VERSION && sink->write && sink->finish && sink->abort;
}

void ld_sink_drop(ld_sink *sink)
{
    if (sink && sink->abort)
        sink->abort(sink);
}

ld_status ld_sink_put(ld_sink_cursor *c, const void *buf, uint64_t len)
{
    /* One positioned write per call, in pieces a size_t can hold. */
    const uint8_t *p = buf;
    while (len) {
        size_t n = len > ((size_t)-1 >> 1) ? ((size_t)-1 >> 1) : (size_t)len;
        ld_status st = c->sink->write(c->sink, c->offset, p, n);
        if (st != LD_STATUS_SUCCESS)
            return st;
        c->offset += n;
        p += n;
        len -= n;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ld_sink_put_zeros(ld_sink_cursor *c, uint64_t len)
{
    static const uint8_t zeros[256];
    while (len) {
        uint64_t n = LDF_MIN(len, (uint64_t)sizeof zeros);
        ld_status st = ld_sink_put(c, zeros, n);
        if (st != LD_STATUS_SUCCESS)
            return st;
        len -= n;
    }
    return LD_STATUS_SUCCESS;
}

static ld_status filter_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    ld_sink_filter *f = sink->ctx;
    ld_status st = f->check(f->arg, offset, len);
    return st != LD_STATUS_SUCCESS ? st : f->inner->write(f->inner, offset, buf, len);
}

static ld_status filter_finish(ld_sink *sink, uint64_t size)
{
    ld_sink_filter *f = sink->ctx;
    ld_status st = f->check(f->arg, size, 0);
    if (st != LD_STATUS_SUCCESS) {
        f->inner->abort(f->inner);
        return st;
    }
    return f->inner->finish(f->inner, size);
}

static void filter_abort(ld_sink *sink)
{
    ld_sink_filter *f = sink->ctx;
    f->inner->abort(f->inner);
}

ld_sink *ld_sink_filter_init(ld_sink_filter *f, ld_sink *inner, ld_sink_check_fn check, void *arg)
{
    f->sink.version = LD_SINK_VERSION;
    f->sink.ctx = f;
    f->sink.write = filter_write;
    f->sink.finish = filter_finish;
    f->sink.abort = filter_abort;
    f->inner = inner;
    f->check = check;
    f->arg = arg;
    return &f->sink;
}
