/* One mapping from errno to ld_status for every user-mode layer — the
 * runtime's sinks, report storage and settings, the dump reader, the Linux
 * backend — so the same failure always gets the same status, named for
 * what it is. (The core is freestanding and never sees an errno.)
 *
 * ldu_errno_status also remembers, per thread, the errno it mapped and the
 * status it gave, so a caller holding only the status can still say the
 * OS error in words (ld_os_error, livedump/runtime.h). */
#ifndef LD_COMMON_ERRNO_STATUS_H
#define LD_COMMON_ERRNO_STATUS_H

#include <errno.h>

#include "livedump/status.h"

ld_status ldu_errno_status(int err);

#endif
