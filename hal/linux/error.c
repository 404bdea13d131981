/* The backend's error detail: every file of it reports a failure of
 * ld_linux_open through ldl_fail, so it lives below them all. */
#include <stdarg.h>
#include <stdio.h>

#include "linux_internal.h"

ld_status ldl_fail(ld_linux_error *err, ld_linux_reason reason, ld_status st, const char *fmt, ...)
{
    if (err && err->reason == LD_LINUX_OK) {
        err->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}
