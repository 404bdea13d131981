/* The format writer and the sink: the last stage of a capture, and all of
 * a deferred write. */
#ifndef LDI_WRITE_H
#define LDI_WRITE_H

#include "session.h"

/* Write d through format to sink (consumed), with the start/end events of
 * the workflow (3/4 for a capture, 203/204 for a deferred write). The
 * engine's dump file size limit applies; the engine's cancel, `cancel`
 * (may be NULL) and progress may stop it (the sink is then aborted). Fills
 * the byte counts and write_ns of res. */
ld_status ldi_write_dump(ld_engine *e, ld_dump *d, const ld_format *format, ld_sink *sink,
                         ld_progress_fn progress, void *progress_arg, const volatile int *cancel, ld_result *res,
                         uint16_t ev_start, uint16_t ev_end);

#endif
