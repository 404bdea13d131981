/* errno -> NTSTATUS (src/common/errno_status.h). The statuses are those
 * NT file systems return for the same condition. */
#include "errno_status.h"

#include "livedump/runtime.h"

static ld_status map(int err)
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
    /* ELOOP: O_NOFOLLOW met a symlink, which every caller refuses on
     * purpose (policy.h and reports.h document the refusal as access
     * denied); the OS text still says "symbolic links". */
    case ELOOP:
        return LD_STATUS_ACCESS_DENIED;
    case ENOENT:
        return LD_STATUS_NO_SUCH_FILE;
    case ENOTDIR:
        return LD_STATUS_NOT_A_DIRECTORY;
    case EISDIR:
        return LD_STATUS_FILE_IS_A_DIRECTORY;
    case ENAMETOOLONG:
        return LD_STATUS_NAME_TOO_LONG;
    case EROFS:
        return LD_STATUS_MEDIA_WRITE_PROTECTED;
    case EMFILE:
    case ENFILE:
        return LD_STATUS_TOO_MANY_OPENED_FILES;
    case ENOMEM:
        return LD_STATUS_NO_MEMORY;
    case EINVAL:
        return LD_STATUS_INVALID_PARAMETER;
    case ENOSYS:
    case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
        return LD_STATUS_NOT_SUPPORTED;
    case ESRCH:
        return LD_STATUS_NOT_FOUND;
    default:
        return LD_STATUS_IO_DEVICE_ERROR;
    }
}

static _Thread_local struct {
    ld_status status;
    int err;
} last;

ld_status ldu_errno_status(int err)
{
    ld_status st = map(err);
    last.status = st;
    last.err = err;
    return st;
}

int ld_os_error(ld_status status)
{
    return !ld_ok(status) && last.status == status ? last.err : 0;
}
