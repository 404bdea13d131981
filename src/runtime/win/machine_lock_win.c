/* Machine locks on Windows: the driver itself takes one live dump at a
 * time machine-wide (a second request gets STATUS_DEVICE_BUSY), so the
 * client needs no lock of its own. The calls exist for a program written
 * against runtime.h, and say so. */
#include <stdlib.h>

#include "livedump/runtime.h"

const char *ld_machine_lock_dir(const char *dir)
{
    return dir && *dir ? dir : "";
}

ld_status ld_machine_lock_acquire(const char *dir, const char *name, bool wait, ld_machine_lock **out)
{
    (void)dir;
    (void)name;
    (void)wait;
    if (out)
        *out = NULL;
    return LD_STATUS_NOT_SUPPORTED;
}

void ld_machine_lock_release(ld_machine_lock *lock)
{
    (void)lock;
}
