/* The cross-process throttling lock: an exclusive flock on
 * ROOT/.LastFullLiveReport.lock, held from admission to record. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "errno_status.h"
#include "file_io.h"
#include "lock.h"

static ld_status lock(ld_reports *r, int *out, bool wait)
{
    *out = -1;
    /* O_NONBLOCK: a FIFO planted here must not hang the open; it is then
     * refused as not a file. */
    int fd = ldu_open_regular(r->root_fd, LDR_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW, 0600, NULL);
    if (fd == -1)
        return ldu_errno_status(errno);
    if (fd == LDU_NOT_REGULAR)
        return LD_STATUS_ACCESS_DENIED;
    ld_status s = ldu_flock(fd, wait);
    if (s != LD_STATUS_SUCCESS) {
        close(fd);
        return s;
    }
    *out = fd;
    return LD_STATUS_SUCCESS;
}

ld_status ldr_lock(ld_reports *r, int *out)
{
    return lock(r, out, true);
}

ld_status ldr_trylock(ld_reports *r, int *out)
{
    return lock(r, out, false);
}

void ldr_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}
