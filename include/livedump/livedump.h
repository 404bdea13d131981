/* livedump: live memory dumps of a running machine.
 *
 * The one header an embedder includes: everything a program that takes,
 * stores or reads dumps uses. Each part also stands alone (one header per
 * concern). Writing a backend (a HAL), a platform, a format or a sink is
 * for livedump/sys/ (hal.h, platform.h, format.h, sink.h), which this
 * header does not pull in.
 */
#ifndef LIVEDUMP_H
#define LIVEDUMP_H

#include "livedump/version.h"
#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"
#include "livedump/machine.h"
#include "livedump/events.h"
#include "livedump/output.h"
#include "livedump/engine.h"
#include "livedump/policy.h"
#include "livedump/reports.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"
#include "livedump/fault.h"
#include "livedump/dmp.h"
#include "livedump/nt.h"
#ifdef __linux__
#include "livedump/linux.h"
#endif

#endif
