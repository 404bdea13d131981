/* livedump: reading 64-bit Windows kernel dump files (.dmp).
 *
 * ld_format_dmp() writes them (output.h); this reader opens a .dmp
 * written by anyone: full (type 1) and bitmap (types 5 and 6) 64-bit kernel
 * dumps. Every offset and count in the file is checked against the file's
 * size before it is used, so a truncated or hostile file gives an error
 * (LD_STATUS_FILE_CORRUPT, LD_STATUS_END_OF_FILE, LD_STATUS_NOT_SUPPORTED)
 * with a message, never an out-of-bounds read. User mode only (libc I/O).
 *
 * Ownership: ld_dmp_open / ld_dmp_open_memory return a reader the caller
 * frees with ld_dmp_close. Pointers the reader returns (info, runs,
 * comment) belong to it and live until ld_dmp_close. A memory image given
 * to ld_dmp_open_memory is not copied: it must outlive the reader.
 */
#ifndef LIVEDUMP_DMP_H
#define LIVEDUMP_DMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tags (Windows in-memory GUID byte order) of livedump's own secondary
 * blobs: the HAL's hypervisor and Intel PT data, and every processor's
 * context (layout in docs/dmp-format.md). */
#define LD_DMP_GUID_HYPERVISOR LD_BLOB_GUID_HYPERVISOR
#define LD_DMP_GUID_IPT        LD_BLOB_GUID_IPT
#define LD_DMP_GUID_CPU_CONTEXTS {0x6c, 0x64, 0x63, 0x78, 0x8e, 0x2f, 0x4b, 0x41, \
                                  0x9a, 0x43, 0x11, 0x6a, 0x1f, 0x5d, 0x70, 0x03}

/* DumpType values the reader knows. */
#define LD_DMP_TYPE_FULL 1u
#define LD_DMP_TYPE_BITMAP_FULL 5u
#define LD_DMP_TYPE_BITMAP_KERNEL 6u

typedef struct ld_dmp ld_dmp;

typedef struct ld_dmp_info {
    uint32_t dump_type;            /* LD_DMP_TYPE_* */
    char bitmap_signature[5];      /* "SDMP"/"FDMP" for bitmap dumps, "" for full */
    uint32_t major_version, minor_version;
    uint32_t machine_type;         /* 0x8664 ... */
    uint32_t processor_count;      /* NumberProcessors */
    uint32_t bugcheck_code;
    uint64_t bugcheck_params[4];
    uint64_t directory_table_base;
    uint64_t pfn_database, loaded_module_list, active_process_list, debugger_data_block;
    uint64_t required_dump_space;
    uint64_t system_time;          /* FILETIME */
    uint64_t system_uptime;        /* 100 ns units */
    uint32_t attributes;           /* DUMP_FILE_ATTRIBUTES; 0x10 = live dump */
    uint32_t secondary_data_state; /* NTSTATUS */
    const char *comment;           /* NUL-terminated, "" if none */
    /* The physical memory runs of the header; NULL/0 when the header leaves
     * them unset (bitmap dumps may). */
    const ld_phys_range *runs;
    size_t run_count;
    uint64_t run_pages;            /* NumberOfPages as written (may be unset fill) */
    uint64_t page_count;           /* pages stored in the file (bitmap popcount or runs' sum) */
    uint64_t pfn_limit;            /* highest present PFN + 1 (0: no page); not a header field */
    uint64_t first_page_offset;    /* file offset of the first page (FirstPage; 0x2000 in full dumps) */
    uint64_t header_bytes;         /* up to the first page */
    uint64_t primary_bytes;        /* the pages */
    uint64_t secondary_bytes;      /* after the pages, up to the end of the file */
    uint64_t file_bytes;
    size_t blob_count;             /* secondary blobs found */
    uint32_t context_count;        /* processor contexts readable with ld_dmp_context */
    /* The bitmap header's own fields as written (bitmap dumps; 0 in full
     * dumps): BitmapSize in bits, and TotalPresentPages, which verify
     * compares with page_count. */
    uint64_t bitmap_size;
    uint64_t total_present_pages;
} ld_dmp_info;

/* A secondary-data blob. */
typedef struct ld_dmp_blob {
    uint8_t guid[16];
    uint64_t offset;               /* file offset of its data */
    uint64_t size;
} ld_dmp_blob;

/* Open and validate. err may be NULL; on failure it says why (livedump/
 * status.h): a message and the file offset it is about (LD_ERROR_NO_OFFSET
 * when the failure is not about the file's content: it cannot be opened,
 * no memory). */
LD_EXTERN ld_status ld_dmp_open(const char *path, ld_dmp **out, ld_error *err);
/* The same over a file image in memory (not copied). */
LD_EXTERN ld_status ld_dmp_open_memory(const void *data, uint64_t size, ld_dmp **out, ld_error *err);
LD_EXTERN void ld_dmp_close(ld_dmp *dmp);

LD_EXTERN const ld_dmp_info *ld_dmp_get_info(const ld_dmp *dmp);

/* Whether the page is in the file; the first present PFN >= pfn
 * (UINT64_MAX when none is left). */
LD_EXTERN bool ld_dmp_page_present(const ld_dmp *dmp, uint64_t pfn);
LD_EXTERN uint64_t ld_dmp_next_page(const ld_dmp *dmp, uint64_t pfn);
/* The page's file offset, or UINT64_MAX when it is absent. */
LD_EXTERN uint64_t ld_dmp_page_offset(const ld_dmp *dmp, uint64_t pfn);
/* Copy one page (0x1000 bytes) into buf. LD_STATUS_NOT_FOUND when the page
 * is not in the dump, LD_STATUS_IO_DEVICE_ERROR / END_OF_FILE on I/O. */
LD_EXTERN ld_status ld_dmp_read_page(ld_dmp *dmp, uint64_t pfn, void *buf);

/* Secondary blobs, in file order. */
LD_EXTERN ld_status ld_dmp_get_blob(const ld_dmp *dmp, size_t index, ld_dmp_blob *out);
/* Copy len bytes of blob `index` from `offset` into buf (bounds checked). */
LD_EXTERN ld_status ld_dmp_read_blob(ld_dmp *dmp, size_t index, uint64_t offset, void *buf, size_t len);

/* Processor context `index` (0 .. context_count-1): from livedump's
 * contexts blob when the file has one (every processor, with control
 * registers), else the header's CONTEXT (one processor, index 0).
 * *capturing is set when it is the processor that took the dump. */
LD_EXTERN ld_status ld_dmp_context(ld_dmp *dmp, uint32_t index, ld_cpu_context *out, bool *capturing);

/* Re-read every page and check the file against itself: bitmap popcount
 * vs the stored count, pages vs file size, runs vs NumberOfPages, the two
 * MxCsr copies, non-zero bytes between the bitmap and the first page, the
 * secondary area. Problems found go to fn (may be NULL),
 * one message each; the count is returned in *problems. Returns an error
 * only when reading fails. */
typedef void (*ld_dmp_problem_fn)(void *arg, uint64_t offset, const char *message);
LD_EXTERN ld_status ld_dmp_verify(ld_dmp *dmp, ld_dmp_problem_fn fn, void *arg, uint64_t *problems);

#ifdef __cplusplus
}
#endif
#endif
