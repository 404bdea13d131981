/* ld_sink_filter_open: the engine's sink filter (livedump/sys/sink.h) in
 * memory of its own, for callers that hand the sink on and return. */
#include <stdlib.h>

#include "livedump/runtime.h"
#include "livedump/sys/sink.h"

typedef struct owned_filter {
    ld_sink_filter filter;
    ld_sink sink; /* what the caller gets: frees the filter after inner */
} owned_filter;

static ld_status owned_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    owned_filter *o = sink->ctx;
    return o->filter.sink.write(&o->filter.sink, offset, buf, len);
}

static ld_status owned_finish(ld_sink *sink, uint64_t size)
{
    owned_filter *o = sink->ctx;
    ld_status st = o->filter.sink.finish(&o->filter.sink, size);
    free(o);
    return st;
}

static void owned_abort(ld_sink *sink)
{
    owned_filter *o = sink->ctx;
    o->filter.sink.abort(&o->filter.sink);
    free(o);
}

ld_status ld_sink_filter_open(ld_sink *inner, ld_sink_check_fn check, void *arg, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!ld_sink_usable(inner) || !check)
        return LD_STATUS_INVALID_PARAMETER;
    owned_filter *o = malloc(sizeof *o);
    if (!o)
        return LD_STATUS_NO_MEMORY;
    ld_sink_filter_init(&o->filter, inner, check, arg);
    o->sink.version = LD_SINK_VERSION;
    o->sink.ctx = o;
    o->sink.write = owned_write;
    o->sink.finish = owned_finish;
    o->sink.abort = owned_abort;
    *out = &o->sink;
    return LD_STATUS_SUCCESS;
}
