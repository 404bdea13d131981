/* livedump: the handle types every part of the API passes around, declared
 * once (their insides are private, or for backend and format authors in
 * livedump/sys/), and the progress callback.
 *
 * Ownership, in one place:
 *  - ld_engine: ld_engine_create / ld_engine_destroy (engine.h).
 *  - ld_hal: owned by its backend (ld_sim_hal, ld_linux_hal, ...), which
 *    must outlive every engine that uses it.
 *  - ld_sink: made by an open call (runtime.h); from then on exactly one of
 *    the engine (a capture or write consumes it) or ld_sink_drop frees it.
 *  - ld_format: static tables; never freed.
 *  - ld_dump: a captured dump, owned by the engine; a deferred one is a
 *    handle valid until it is written or discarded.
 */
#ifndef LIVEDUMP_TYPES_H
#define LIVEDUMP_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ld_engine ld_engine;
typedef struct ld_hal ld_hal;
typedef struct ld_platform ld_platform;
typedef struct ld_format ld_format;
typedef struct ld_sink ld_sink;
typedef struct ld_dump ld_dump;

/* Progress of long work: `phase` names it ("classify", "mirror", "copy",
 * "write"); done of total units. Return LD_STATUS_SUCCESS to go on;
 * anything else stops the work with that status (LD_STATUS_CANCELLED, say):
 * a capture ends as a cancelled one does (livedump/engine.h). */
typedef uint32_t (*ld_progress_fn)(void *arg, const char *phase, uint64_t done, uint64_t total);

#ifdef __cplusplus
}
#endif
#endif
