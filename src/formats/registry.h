/* The built-in formats, for the engine's sizing. */
#ifndef LDF_REGISTRY_H
#define LDF_REGISTRY_H

#include "livedump/sys/format.h"

/* format's bound of its own bytes (ld_format.overhead); NULL format (a
 * deferred capture: not known yet): the largest of the built-in formats. */
uint64_t ldf_format_overhead(const ld_format *format, const ld_dump_info *info, uint64_t pages);

#endif
