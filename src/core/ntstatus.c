/* Names of the NTSTATUS values livedump returns. */
#include "livedump/status.h"

struct status_name {
    ld_status status;
    const char *name;
    const char *text;
};

static const struct status_name status_names[] = {
    {LD_STATUS_SUCCESS, "STATUS_SUCCESS", "success"},
    {LD_STATUS_TIMEOUT, "STATUS_TIMEOUT", "timed out (processors did not stop in time)"},
    {LD_STATUS_DEVICE_BUSY, "STATUS_DEVICE_BUSY", "busy: a live dump is already running or held"},
    {LD_STATUS_PARTIAL_COPY, "STATUS_PARTIAL_COPY", "partial dump: some pages were left out"},
    {LD_STATUS_UNSUCCESSFUL, "STATUS_UNSUCCESSFUL", "operation failed"},
    {LD_STATUS_NOT_IMPLEMENTED, "STATUS_NOT_IMPLEMENTED", "not implemented"},
    {LD_STATUS_INVALID_PARAMETER, "STATUS_INVALID_PARAMETER", "invalid parameter"},
    {LD_STATUS_NO_SUCH_FILE, "STATUS_NO_SUCH_FILE", "no such file"},
    {LD_STATUS_END_OF_FILE, "STATUS_END_OF_FILE", "unexpected end of file"},
    {LD_STATUS_NO_MEMORY, "STATUS_NO_MEMORY", "out of memory"},
    {LD_STATUS_ACCESS_DENIED, "STATUS_ACCESS_DENIED", "access denied"},
    {LD_STATUS_BUFFER_TOO_SMALL, "STATUS_BUFFER_TOO_SMALL", "buffer too small"},
    {LD_STATUS_OBJECT_NAME_COLLISION, "STATUS_OBJECT_NAME_COLLISION", "file already exists"},
    {LD_STATUS_DISK_FULL, "STATUS_DISK_FULL", "disk full or file size limit reached"},
    {LD_STATUS_INSUFFICIENT_RESOURCES, "STATUS_INSUFFICIENT_RESOURCES", "insufficient resources"},
    {LD_STATUS_MEDIA_WRITE_PROTECTED, "STATUS_MEDIA_WRITE_PROTECTED", "write-protected (read-only file system)"},
    {LD_STATUS_IO_TIMEOUT, "STATUS_IO_TIMEOUT",
     "timed out: the machine would have stayed stopped longer than its stop budget allows"},
    {LD_STATUS_FILE_IS_A_DIRECTORY, "STATUS_FILE_IS_A_DIRECTORY", "is a folder, not a file"},
    {LD_STATUS_NOT_SUPPORTED, "STATUS_NOT_SUPPORTED", "not supported"},
    {LD_STATUS_FILE_CORRUPT, "STATUS_FILE_CORRUPT_ERROR", "file is corrupt"},
    {LD_STATUS_NOT_A_DIRECTORY, "STATUS_NOT_A_DIRECTORY", "not a folder"},
    {LD_STATUS_NAME_TOO_LONG, "STATUS_NAME_TOO_LONG", "name too long"},
    {LD_STATUS_TOO_MANY_OPENED_FILES, "STATUS_TOO_MANY_OPENED_FILES", "too many open files"},
    {LD_STATUS_CANCELLED, "STATUS_CANCELLED", "cancelled"},
    {LD_STATUS_INVALID_DEVICE_STATE, "STATUS_INVALID_DEVICE_STATE", "not valid in the current state"},
    {LD_STATUS_IO_DEVICE_ERROR, "STATUS_IO_DEVICE_ERROR", "I/O error"},
    {LD_STATUS_NOT_FOUND, "STATUS_NOT_FOUND", "not found"},
    {LD_STATUS_THROTTLED, "LD_STATUS_THROTTLED",
     "throttled: a live dump was taken too recently (see SystemThrottleThreshold and ComponentThrottleThreshold)"},
};

static const struct status_name *find(ld_status s)
{
    for (unsigned i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (status_names[i].status == s)
            return &status_names[i];
    return 0;
}

const char *ld_status_name(ld_status s)
{
    const struct status_name *n = find(s);
    return n ? n->name : 0;
}

const char *ld_status_describe(ld_status s)
{
    const struct status_name *n = find(s);
    return n ? n->text : "unknown status";
}
