/* File-descriptor sink: the bytes go to a descriptor the caller opened and
 * keeps (a file, or a pipe or socket for streaming elsewhere). Seekable
 * descriptors take positioned writes; others take writes only in order,
 * which is how the .dmp writer writes. finish flushes (fsync where the
 * descriptor supports it) and never closes: the caller owns the fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/runtime.h"
#include "livedump/sys/sink.h"
#include "errno_status.h"
#include "file_io.h"

typedef struct fd_sink {
    ld_sink sink;
    int fd;
    bool seekable;
    bool regular;      /* a regular file (O_APPEND ones are not seekable): fsync it */
    uint64_t base;     /* the descriptor's offset at open: file offset 0 of the dump */
    uint64_t position; /* bytes written so far, for non-seekable descriptors */
} fd_sink;

static ld_status fd_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    fd_sink *s = sink->ctx;
    if (!s->seekable && offset != s->position)
        return LD_STATUS_INVALID_PARAMETER; /* a pipe cannot go back or skip */
    if (offset > (uint64_t)INT64_MAX - s->base)
        return LD_STATUS_DISK_FULL;
    ld_status st = ldu_write_all(s->fd, s->seekable, s->base + offset, buf, len);
    if (st == LD_STATUS_SUCCESS && !s->seekable)
        s->position = offset + len;
    return st;
}

static ld_status fd_finish(ld_sink *sink, uint64_t size)
{
    fd_sink *s = sink->ctx;
    ld_status st = LD_STATUS_SUCCESS;
    if (s->seekable) {
        /* Trailing holes a writer left become the file's end. */
        if (size > (uint64_t)INT64_MAX - s->base || ftruncate(s->fd, (off_t)(s->base + size)) != 0 ||
            fsync(s->fd) != 0)
            st = ldu_errno_status(errno);
    } else if (s->position != size) {
        st = LD_STATUS_INVALID_PARAMETER;
    } else if (s->regular && fsync(s->fd) != 0) {
        st = ldu_errno_status(errno);
    }
    free(s);
    return st;
}

static void fd_abort(ld_sink *sink)
{
    /* What was written to someone else's descriptor cannot be taken back;
     * the caller learns of the failure from the capture's status. */
    free(sink->ctx);
}

ld_status ld_sink_fd_open(int fd, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return LD_STATUS_INVALID_PARAMETER;
    fd_sink *s = calloc(1, sizeof *s);
    if (!s)
        return LD_STATUS_NO_MEMORY;
    s->fd = fd;
    /* With O_APPEND every write lands at the end whatever its offset
     * (pwrite included, on Linux): such a file is a stream, in order only. */
    int fl = fcntl(fd, F_GETFL);
    s->regular = S_ISREG(st.st_mode);
    off_t at = s->regular && fl >= 0 && !(fl & O_APPEND) ? lseek(fd, 0, SEEK_CUR) : -1;
    s->seekable = at >= 0;
    s->base = at >= 0 ? (uint64_t)at : 0;
    s->sink.version = LD_SINK_VERSION;
    s->sink.ctx = s;
    s->sink.write = fd_write;
    s->sink.finish = fd_finish;
    s->sink.abort = fd_abort;
    *out = &s->sink;
    return LD_STATUS_SUCCESS;
}
