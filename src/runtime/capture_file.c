/* ld_capture_to_path: a live dump into a file in one call, the format
 * picked by the file's extension. */
#include <stdbool.h>
#include <string.h>

#include "livedump/runtime.h"
#include "livedump/sys/sink.h"

void ld_file_options_init(ld_file_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->version = LD_FILE_OPTIONS_VERSION;
}

/* The caller's check, remembering whether it said no. */
typedef struct checked {
    const ld_file_options *opts;
    bool refused;
} checked;

static ld_status ask(void *arg, uint64_t offset, size_t len)
{
    checked *c = arg;
    ld_status st = c->opts->check(c->opts->check_arg, offset, len);
    if (st != LD_STATUS_SUCCESS)
        c->refused = true;
    return st;
}

ld_status ld_capture_to_path(ld_engine *engine, const ld_capture_request *req, const char *path,
                             const ld_file_options *opts, ld_result *result)
{
    ld_result local;
    ld_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    ld_file_options defaults;
    if (!opts) {
        ld_file_options_init(&defaults);
        opts = &defaults;
    }
    if (!engine || !req || !path || opts->version != LD_FILE_OPTIONS_VERSION)
        return res->status = LD_STATUS_INVALID_PARAMETER;
    const ld_format *format = opts->format ? opts->format : ld_format_for_path(path);
    if (!format)
        format = ld_format_raw();

    checked c = {opts, false};
    ld_sink *sink = NULL;
    ld_status st = ld_sink_file_open(path, &sink);
    if (st == LD_STATUS_SUCCESS && opts->check) {
        ld_sink *filtered = NULL;
        st = ld_sink_filter_open(sink, ask, &c, &filtered);
        if (st != LD_STATUS_SUCCESS)
            ld_sink_drop(sink);
        sink = filtered;
    }
    if (st != LD_STATUS_SUCCESS)
        return res->status = st;

    if (!(req->flags & LD_FLAG_DEFER))
        return ld_engine_capture(engine, req, format, sink, res);
    st = ld_engine_capture(engine, req, NULL, NULL, res);
    if (st == LD_STATUS_SUCCESS && opts->check)
        st = ask(&c, 0, 0);
    if (st == LD_STATUS_SUCCESS) {
        const ld_dump *held = res->deferred;
        st = ld_engine_write_deferred_ex(engine, held, format, sink, req->progress, req->progress_arg, res);
        /* Stopped by the check: nothing is kept. Any other failure (a full
         * disk) leaves the dump held for a write elsewhere. */
        if (st != LD_STATUS_SUCCESS && c.refused)
            (void)ld_engine_discard_deferred_dump(engine, held);
        else if (st != LD_STATUS_SUCCESS)
            res->deferred = held;
        return st;
    }
    ld_sink_drop(sink);
    if (res->status == LD_STATUS_SUCCESS) {
        /* Stopped between the capture and the write: the held dump goes,
         * and the result says so. */
        (void)ld_engine_discard_deferred_dump(engine, res->deferred);
        res->deferred = NULL;
        res->status = st;
    }
    return st;
}
