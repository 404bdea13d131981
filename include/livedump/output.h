/* livedump: where a dump goes: the built-in formats, picked by name or by
 * a file's extension, and sinks (opaque here; made by livedump/runtime.h,
 * written to by the engine).
 */
#ifndef LIVEDUMP_OUTPUT_H
#define LIVEDUMP_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Raw physical image: every present page at offset pfn * page_size, holes
 * (absent pages, gaps between ranges) left unwritten. No header, no
 * secondary data: it is the simplest proof that the right bytes were
 * captured, and what `dd` of /dev/mem would give. */
LD_EXTERN const ld_format *ld_format_raw(void);
/* Windows 64-bit kernel dump (.dmp, "PAGEDU64"): a bitmap dump (DumpType 5)
 * of the present pages, or a full dump (DumpType 1) when every page of every
 * physical range is present and the ranges fit the header; secondary data
 * (blobs and every processor's context) after the pages. Page size 4 KiB.
 * Layout: docs/dmp-format.md; reader: livedump/dmp.h. */
LD_EXTERN const ld_format *ld_format_dmp(void);
/* ELF vmcore (ET_CORE), the layout of Linux's /proc/vmcore: NT_PRSTATUS per
 * processor and the kernel's VMCOREINFO note, one PT_LOAD per run of
 * captured pages (p_paddr physical, p_vaddr in the direct map). crash, drgn,
 * libkdumpfile and makedumpfile open it. Secondary data is not stored. */
LD_EXTERN const ld_format *ld_format_elf(void);
/* A built-in format by name ("raw", "dmp", "elf"), or NULL. */
LD_EXTERN const ld_format *ld_format_find(const char *name);
/* The built-in format a file name's extension names ("x.dmp" -> dmp), or
 * NULL when it names none (no extension, or one no format has). */
LD_EXTERN const ld_format *ld_format_for_path(const char *path);
/* The format's name ("dmp"); "" for NULL. */
LD_EXTERN const char *ld_format_name(const ld_format *format);
/* The built-in formats: index 0 .. count-1, NULL past the end. */
LD_EXTERN const ld_format *ld_format_at(size_t index);

/* A check put in front of a sink (a filter: livedump/sys/sink.h, or
 * ld_sink_filter_open in runtime.h): asked before every write with its
 * offset and length, and before the finish with the final size and length
 * 0; anything but LD_STATUS_SUCCESS fails that call with that status. */
typedef ld_status (*ld_sink_check_fn)(void *arg, uint64_t offset, size_t len);

/* Free a sink that will not be used (the engine frees the sinks it is
 * given; this is for one opened and then not handed over): what was
 * written, if anything, is discarded. NULL does nothing. */
LD_EXTERN void ld_sink_drop(ld_sink *sink);

#ifdef __cplusplus
}
#endif
#endif
