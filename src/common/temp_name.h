/* The temporary name a file is written under before it gets its own
 * (sinks: ".partial", report storage: ".tmp"), for every user-mode layer. */
#ifndef LD_COMMON_TEMP_NAME_H
#define LD_COMMON_TEMP_NAME_H

#include <stddef.h>

#include "livedump/status.h"

/* NAME + SUFFIX, or, when that would exceed NAME_MAX, the longest prefix of
 * NAME that fits (cut at a UTF-8 character boundary), '~', 16 hex digits
 * of a hash of the whole NAME, and SUFFIX: the same at every run, so a
 * crashed writer's leftover is found again, and still ending in SUFFIX.
 * LD_STATUS_NAME_TOO_LONG when NAME itself exceeds NAME_MAX (no errno is
 * recorded: no OS call failed), LD_STATUS_BUFFER_TOO_SMALL when OUT (CAP
 * bytes; NAME_MAX + 1 is enough) cannot hold it. */
ld_status ldu_temp_name(const char *name, const char *suffix, char *out, size_t cap);

#endif
