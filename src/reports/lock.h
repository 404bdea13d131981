/* The throttling lock (src/reports/lock.c). */
#ifndef LD_REPORTS_LOCK_H
#define LD_REPORTS_LOCK_H

#include "storage.h"

/* The cross-process throttling lock: an exclusive flock on ROOT/LDR_LOCK_FILE
 * (0600, created relative to the root, never through a symlink), held from
 * admission to the record so two processes cannot both pass. *fd to give
 * back to ldr_unlock. */
ld_status ldr_lock(ld_reports *r, int *fd);
/* The same without waiting: LD_STATUS_DEVICE_BUSY if another holds it. */
ld_status ldr_trylock(ld_reports *r, int *fd);
void ldr_unlock(int fd);

#endif
