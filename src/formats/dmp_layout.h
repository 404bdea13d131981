/* The 64-bit Windows kernel dump file (PAGEDU64): offsets and constants
 * shared by the writer (src/formats/windows_dmp.c) and the reader
 * (src/reader/dmp_reader.c). Layout facts and their sources:
 * docs/dmp-format.md. All integers in the file are little-endian. */
#ifndef LDF_DMP_LAYOUT_H
#define LDF_DMP_LAYOUT_H

#include <stdint.h>

#define LDF_DMP_PAGE_SIZE 0x1000u
#define LDF_DMP_HEADER_SIZE 0x2000u

/* DUMP_HEADER64 */
#define LDF_DMP_OFF_SIGNATURE 0x000u          /* "PAGE" */
#define LDF_DMP_OFF_VALID_DUMP 0x004u         /* "DU64" */
#define LDF_DMP_OFF_MAJOR_VERSION 0x008u
#define LDF_DMP_OFF_MINOR_VERSION 0x00Cu
#define LDF_DMP_OFF_DIRECTORY_TABLE_BASE 0x010u
#define LDF_DMP_OFF_PFN_DATABASE 0x018u
#define LDF_DMP_OFF_LOADED_MODULE_LIST 0x020u
#define LDF_DMP_OFF_ACTIVE_PROCESS_LIST 0x028u
#define LDF_DMP_OFF_MACHINE_TYPE 0x030u
#define LDF_DMP_OFF_PROCESSOR_COUNT 0x034u
#define LDF_DMP_OFF_BUGCHECK_CODE 0x038u
#define LDF_DMP_OFF_BUGCHECK_PARAMS 0x040u    /* 4 x u64 */
#define LDF_DMP_OFF_VERSION_USER 0x060u       /* 32 bytes */
#define LDF_DMP_OFF_DEBUGGER_DATA_BLOCK 0x080u
#define LDF_DMP_OFF_PHYSICAL_MEMORY 0x088u    /* PHYSICAL_MEMORY_DESCRIPTOR64 */
#define LDF_DMP_PHYSICAL_MEMORY_SIZE 700u     /* the area; runs may not pass it */
#define LDF_DMP_MAX_RUNS 42u                  /* (700 - 16) / 16 */
#define LDF_DMP_OFF_RUNS_PADDING 0x344u       /* 4 bytes after the run area */
#define LDF_DMP_OFF_CONTEXT 0x348u
#define LDF_DMP_CONTEXT_AREA 3000u
#define LDF_DMP_OFF_EXCEPTION 0xF00u          /* EXCEPTION_RECORD64, 0x98 bytes */
#define LDF_DMP_OFF_DUMP_TYPE 0xF98u
#define LDF_DMP_OFF_REQUIRED_DUMP_SPACE 0xFA0u
#define LDF_DMP_OFF_SYSTEM_TIME 0xFA8u
#define LDF_DMP_OFF_COMMENT 0xFB0u
#define LDF_DMP_COMMENT_SIZE 128u
#define LDF_DMP_OFF_SYSTEM_UPTIME 0x1030u
#define LDF_DMP_OFF_MINIDUMP_FIELDS 0x1038u
#define LDF_DMP_OFF_SECONDARY_DATA_STATE 0x103Cu
#define LDF_DMP_OFF_UNUSED1 0x104Cu           /* Unused1, KdSecondaryVersion, Unused[2]: 4 bytes */
#define LDF_DMP_OFF_ATTRIBUTES 0x1050u

#define LDF_DMP_DUMP_TYPE_FULL 1u
#define LDF_DMP_DUMP_TYPE_BITMAP_FULL 5u
#define LDF_DMP_DUMP_TYPE_BITMAP_KERNEL 6u

#define LDF_DMP_ATTR_LIVE_DUMP 0x10u          /* DUMP_FILE_ATTRIBUTES.LiveDumpGeneratedDump */

/* The bitmap header that follows DUMP_HEADER64 in types 5 and 6. */
#define LDF_DMP_BMP_OFF_SIGNATURE 0x00u       /* "SDMP" or "FDMP" */
#define LDF_DMP_BMP_OFF_VALID_DUMP 0x04u      /* "DUMP" */
#define LDF_DMP_BMP_OFF_FIRST_PAGE 0x20u      /* file offset of the first page */
#define LDF_DMP_BMP_OFF_PRESENT_PAGES 0x28u
#define LDF_DMP_BMP_OFF_BITMAP_BITS 0x30u
#define LDF_DMP_BMP_HEADER_SIZE 0x38u

/* x64 CONTEXT (0x4D0 bytes). */
#define LDF_CTX_SIZE 0x4D0u
#define LDF_CTX_OFF_FLAGS 0x30u
#define LDF_CTX_OFF_MXCSR 0x34u
#define LDF_CTX_OFF_SEGCS 0x38u               /* then ds, es, fs, gs, ss: u16 each */
#define LDF_CTX_OFF_EFLAGS 0x44u
#define LDF_CTX_OFF_RAX 0x78u                 /* 16 GPRs in encoding order */
#define LDF_CTX_OFF_RIP 0xF8u
#define LDF_CTX_OFF_FLTSAVE_MXCSR 0x118u      /* FltSave.MxCsr: must equal MxCsr */
#define LDF_CTX_AMD64 0x00100000u
#define LDF_CTX_CONTROL 0x1u
#define LDF_CTX_INTEGER 0x2u
#define LDF_CTX_SEGMENTS 0x4u
#define LDF_CTX_FLOATING_POINT 0x8u

/* Secondary data: one DUMP_BLOB_FILE_HEADER, then DUMP_BLOB_HEADERs. */
#define LDF_BLOB_FILE_HEADER_SIZE 0x10u       /* "Dump" "Blob" u32 size, u32 build */
#define LDF_BLOB_HEADER_SIZE 0x20u            /* u32 size, GUID, u32 data, pre, post */
#define LDF_BLOB_ALIGN 8u
/* DataSize is a u32 and the data is padded to LDF_BLOB_ALIGN: the largest
 * blob a header can describe (the engine refuses larger callouts). */
#define LDF_BLOB_MAX_DATA 0xFFFFFFF0ull

/* livedump's processor-contexts blob (tagged LD_DMP_GUID_CPU_CONTEXTS). */
#define LDF_CPUS_HEADER_SIZE 0x18u            /* "LDCX", version, count, record size, capturing cpu, 0 */
#define LDF_CPUS_VERSION 1u
#define LDF_CPUS_RECORD_SIZE 0x540u
#define LDF_CPUS_OFF_CPU 0x00u
#define LDF_CPUS_OFF_VALID 0x04u
#define LDF_CPUS_OFF_CR0 0x08u                /* cr0, cr2, cr3, cr4, cr8 */
#define LDF_CPUS_OFF_FS_BASE 0x30u            /* fs_base, gs_base, stack_base, stack_limit,
                                                 stack_base_pfn, stack_pages, thread_id */
#define LDF_CPUS_OFF_CONTEXT 0x70u            /* x64 CONTEXT */

#endif
