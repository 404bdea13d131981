/* One mapping from errno to ld_status for every user-mode file operation
 * (sinks, report storage), so the same failure always gets the same status. */
#ifndef LD_RUNTIME_ERRNO_STATUS_H
#define LD_RUNTIME_ERRNO_STATUS_H

#include <errno.h>

#include "livedump/status.h"

static inline ld_status ldi_errno_status(int err)
{
    switch (err) {
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return LD_STATUS_DISK_FULL;
    case EEXIST:
        return LD_STATUS_OBJECT_NAME_COLLISION;
    case EACCES:
    case EPERM:
    case ELOOP: /* O_NOFOLLOW met a symlink */
        return LD_STATUS_ACCESS_DENIED;
    case ENOENT:
    case ENOTDIR:
        return LD_STATUS_NO_SUCH_FILE;
    case ENOMEM:
        return LD_STATUS_NO_MEMORY;
    default:
        return LD_STATUS_IO_DEVICE_ERROR;
    }
}

#endif
