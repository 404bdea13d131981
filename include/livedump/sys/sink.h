/* livedump: the sink table, for authors of sinks (where a dump's bytes go)
 * and of formats (which write to one).
 *
 * A sink takes positioned writes (a writer may leave holes, which a file
 * sink keeps sparse), then exactly one of finish or abort, which also frees
 * it. finish(size) makes the result durable and visible with `size` bytes;
 * abort discards everything written. The library checks `version` of every
 * sink it is given and refuses (LD_STATUS_INVALID_PARAMETER, without
 * calling it) a table it does not know.
 */
#ifndef LIVEDUMP_SYS_SINK_H
#define LIVEDUMP_SYS_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"
#include "livedump/output.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LD_SINK_VERSION 1

struct ld_sink {
    uint32_t version; /* LD_SINK_VERSION */
    void *ctx;
    ld_status (*write)(ld_sink *sink, uint64_t offset, const void *buf, size_t len);
    ld_status (*finish)(ld_sink *sink, uint64_t size);
    void (*abort)(ld_sink *sink);
};

/* True if the library can use `sink`: a known version and every operation
 * present. */
LD_EXTERN bool ld_sink_usable(const ld_sink *sink);

/* ---- writing in file order ----
 * Most formats write front to back; a cursor keeps the offset. */
typedef struct ld_sink_cursor {
    ld_sink *sink;
    uint64_t offset; /* where the next put goes; the bytes written so far */
} ld_sink_cursor;

/* Write len bytes at the cursor and advance it. */
LD_EXTERN ld_status ld_sink_put(ld_sink_cursor *cursor, const void *buf, uint64_t len);
/* Write len zero bytes. */
LD_EXTERN ld_status ld_sink_put_zeros(ld_sink_cursor *cursor, uint64_t len);

/* ---- the one way to put something between a writer and a sink ----
 * A filter is a sink that asks `check` before every write (with its offset
 * and length) and before the finish (offset = the final size, length 0),
 * and passes the call on to `inner` only if check says LD_STATUS_SUCCESS;
 * otherwise that write or finish fails with check's status (a failed finish
 * aborts inner). Finish and abort go to inner, which they free; the filter
 * itself lives in storage the caller provides (no allocation, so the core
 * uses it too), which must outlive the sink's use. The engine's dump file
 * size limit and a caller's cancellation are filters. */
typedef struct ld_sink_filter {
    ld_sink sink;  /* hand &filter->sink to whoever writes */
    ld_sink *inner;
    ld_sink_check_fn check;
    void *arg;
} ld_sink_filter;

/* Initialise f around inner; returns &f->sink. */
LD_EXTERN ld_sink *ld_sink_filter_init(ld_sink_filter *f, ld_sink *inner, ld_sink_check_fn check, void *arg);

#ifdef __cplusplus
}
#endif
#endif
