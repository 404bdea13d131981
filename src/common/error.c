/* Filling an ld_error (src/common/error.h). */
#include "error.h"

#include <stdio.h>

ld_status ldu_failv(ld_error *err, ld_status st, int os_error, uint32_t reason, uint64_t offset, const char *fmt,
                    va_list ap)
{
    if (!err || err->status != LD_STATUS_SUCCESS)
        return st;
    err->status = st;
    err->os_error = os_error;
    err->reason = reason;
    err->offset = offset;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return st;
}

ld_status ldu_fail(ld_error *err, ld_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ldu_failv(err, st, 0, 0, LD_ERROR_NO_OFFSET, fmt, ap);
    va_end(ap);
    return st;
}

ld_status ldu_fail_os(ld_error *err, ld_status st, int os_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ldu_failv(err, st, os_error, 0, LD_ERROR_NO_OFFSET, fmt, ap);
    va_end(ap);
    return st;
}

ld_status ldu_fail_full(ld_error *err, ld_status st, int os_error, uint32_t reason, uint64_t offset,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ldu_failv(err, st, os_error, reason, offset, fmt, ap);
    va_end(ap);
    return st;
}

ld_status ldu_error_end(ld_error *err, ld_status st)
{
    if (!err)
        return st;
    if (st == LD_STATUS_SUCCESS)
        ld_error_clear(err);
    else if (err->status == LD_STATUS_SUCCESS)
        err->status = st;
    return st;
}
