/* livedump: status codes.
 *
 * Every function that can fail returns an ld_status. The values are the
 * Windows NTSTATUS values for the same condition, so a status printed by
 * livedump means the same as one in a Windows Kernel-LiveDump event
 * (e.g. 0xC000007F is "disk full" in both). LD_STATUS_SUCCESS is the only
 * success value livedump returns; test with ld_ok().
 */
#ifndef LIVEDUMP_STATUS_H
#define LIVEDUMP_STATUS_H

#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t ld_status;

#define LD_STATUS_SUCCESS                0x00000000u /* STATUS_SUCCESS */
#define LD_STATUS_TIMEOUT                0x00000102u /* STATUS_TIMEOUT: processors did not arrive */
#define LD_STATUS_DEVICE_BUSY            0x80000011u /* STATUS_DEVICE_BUSY: a live dump is already running or held */
#define LD_STATUS_PARTIAL_COPY           0x8000000Du /* STATUS_PARTIAL_COPY: dump written without some pages */
#define LD_STATUS_UNSUCCESSFUL           0xC0000001u /* STATUS_UNSUCCESSFUL */
#define LD_STATUS_NOT_IMPLEMENTED        0xC0000002u /* STATUS_NOT_IMPLEMENTED */
#define LD_STATUS_INVALID_PARAMETER      0xC000000Du /* STATUS_INVALID_PARAMETER */
#define LD_STATUS_NO_SUCH_FILE           0xC000000Fu /* STATUS_NO_SUCH_FILE */
#define LD_STATUS_END_OF_FILE            0xC0000011u /* STATUS_END_OF_FILE */
#define LD_STATUS_NO_MEMORY              0xC0000017u /* STATUS_NO_MEMORY */
#define LD_STATUS_ACCESS_DENIED          0xC0000022u /* STATUS_ACCESS_DENIED */
#define LD_STATUS_BUFFER_TOO_SMALL       0xC0000023u /* STATUS_BUFFER_TOO_SMALL */
#define LD_STATUS_OBJECT_NAME_COLLISION  0xC0000035u /* STATUS_OBJECT_NAME_COLLISION: file exists */
#define LD_STATUS_DISK_FULL              0xC000007Fu /* STATUS_DISK_FULL */
#define LD_STATUS_INSUFFICIENT_RESOURCES 0xC000009Au /* STATUS_INSUFFICIENT_RESOURCES */
#define LD_STATUS_MEDIA_WRITE_PROTECTED  0xC00000A2u /* STATUS_MEDIA_WRITE_PROTECTED: read-only file system (EROFS) */
#define LD_STATUS_IO_TIMEOUT             0xC00000B5u /* STATUS_IO_TIMEOUT: the machine would have stayed stopped past its stop budget */
#define LD_STATUS_FILE_IS_A_DIRECTORY    0xC00000BAu /* STATUS_FILE_IS_A_DIRECTORY (EISDIR) */
#define LD_STATUS_NOT_SUPPORTED          0xC00000BBu /* STATUS_NOT_SUPPORTED */
#define LD_STATUS_FILE_CORRUPT           0xC0000102u /* STATUS_FILE_CORRUPT_ERROR */
#define LD_STATUS_NOT_A_DIRECTORY        0xC0000103u /* STATUS_NOT_A_DIRECTORY (ENOTDIR) */
#define LD_STATUS_NAME_TOO_LONG          0xC0000106u /* STATUS_NAME_TOO_LONG (ENAMETOOLONG) */
#define LD_STATUS_TOO_MANY_OPENED_FILES  0xC000011Fu /* STATUS_TOO_MANY_OPENED_FILES (EMFILE, ENFILE) */
#define LD_STATUS_CANCELLED              0xC0000120u /* STATUS_CANCELLED */
#define LD_STATUS_INVALID_DEVICE_STATE   0xC0000184u /* STATUS_INVALID_DEVICE_STATE: wrong state for this call */
#define LD_STATUS_IO_DEVICE_ERROR        0xC0000185u /* STATUS_IO_DEVICE_ERROR */
#define LD_STATUS_NOT_FOUND              0xC0000225u /* STATUS_NOT_FOUND */
/* livedump's own code, in the NTSTATUS customer range (severity error,
 * customer bit, facility 0, code 0x161 like the bug check): the request was
 * refused by SystemThrottleThreshold or ComponentThrottleThreshold. */
#define LD_STATUS_THROTTLED              0xE0000161u

/* True only for LD_STATUS_SUCCESS. */
static inline bool ld_ok(ld_status s) { return s == LD_STATUS_SUCCESS; }

/* The NTSTATUS symbolic name ("STATUS_DISK_FULL"), or NULL for a value
 * livedump does not know. Never fails; the string is static. */
LD_EXTERN const char *ld_status_name(ld_status s);

/* A short English description ("disk full"), or "unknown status". */
LD_EXTERN const char *ld_status_describe(ld_status s);

/* Error detail. A call that can say more than its status about a failure
 * (opening the report storage, a settings file or a dump, the Linux
 * backend; a capture into the report storage) takes an optional
 * `ld_error *err` as its last argument: NULL when the status is enough.
 * The call clears it first; on failure it holds the status returned and
 * what else is known, and after a success it is clear. The caller owns it
 * (a stack variable will do): no allocation, no thread-local state, so the
 * same shape serves a kernel-mode caller (docs/architecture.md, "Errors"). */
#define LD_ERROR_NO_OFFSET UINT64_MAX
#define LD_ERROR_MESSAGE_MAX 512

typedef struct ld_error {
    ld_status status;  /* what the call returned; LD_STATUS_SUCCESS: no failure */
    int os_error;      /* the OS error behind it (errno), 0 when none or not known */
    uint32_t reason;   /* the call's own finer reason, 0 when none: ld_linux_reason
                          for ld_linux_open */
    uint64_t offset;   /* the file offset it is about (ld_dmp_open),
                          LD_ERROR_NO_OFFSET when it is about none */
    char message[LD_ERROR_MESSAGE_MAX]; /* one line for a person: what, which file,
                                           why; "" when the status says it all */
} ld_error;

/* Clear err (NULL: nothing): no failure, no offset, no message. */
static inline void ld_error_clear(ld_error *err)
{
    if (!err)
        return;
    err->status = LD_STATUS_SUCCESS;
    err->os_error = 0;
    err->reason = 0;
    err->offset = LD_ERROR_NO_OFFSET;
    err->message[0] = 0;
}

#ifdef __cplusplus
}
#endif
#endif
