/* Filling an ld_error (livedump/status.h), for every user-mode call that
 * takes one: the report storage and settings, the dump reader, the Linux
 * backend. A call clears err when it starts (ld_error_clear), tells the
 * first failure it meets with ldu_fail* (what went wrong first is the
 * cause; what follows from it is not), and returns through ldu_error_end. */
#ifndef LD_COMMON_ERROR_H
#define LD_COMMON_ERROR_H

#include <stdarg.h>
#include <stdint.h>

#include "livedump/status.h"

#define LDU_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* err (may be NULL) takes status st and the message, unless it holds a
 * failure already. Returns st. */
ld_status ldu_fail(ld_error *err, ld_status st, const char *fmt, ...) LDU_PRINTF(3, 4);
/* The same, with the OS error (errno) behind it. */
ld_status ldu_fail_os(ld_error *err, ld_status st, int os_error, const char *fmt, ...) LDU_PRINTF(4, 5);
/* Every field: a reason of the call's own (0: none) and the file offset
 * it is about (LD_ERROR_NO_OFFSET: none). */
ld_status ldu_fail_full(ld_error *err, ld_status st, int os_error, uint32_t reason, uint64_t offset,
                        const char *fmt, ...) LDU_PRINTF(6, 7);
ld_status ldu_failv(ld_error *err, ld_status st, int os_error, uint32_t reason, uint64_t offset, const char *fmt,
                    va_list ap) LDU_PRINTF(6, 0);
/* The end of a call that takes err: it returns st. A failure no ldu_fail
 * told still sets err->status; after a success err is clear. */
ld_status ldu_error_end(ld_error *err, ld_status st);

#endif
