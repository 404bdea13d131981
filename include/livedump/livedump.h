/* livedump: live memory dumps of a running machine.
 * The one header to include; each part also stands alone. */
#ifndef LIVEDUMP_H
#define LIVEDUMP_H

#include "livedump/version.h"
#include "livedump/status.h"
#include "livedump/platform.h"
#include "livedump/hal.h"
#include "livedump/events.h"
#include "livedump/writer.h"
#include "livedump/engine.h"

#endif
