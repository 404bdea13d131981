/* The NT kernel API as the NT backend sees it: the DDK of Debian's
 * mingw-w64 (include/ddk) and our own prototypes for what it lacks, in
 * the driver; the stand-in's declarations (ntstandin.h) in a build off
 * Windows. Everything in hal/nt includes this and nothing else of NT. */
#ifndef LDN_NTAPI_H
#define LDN_NTAPI_H

#if defined(LDN_STANDIN)
#include "ntstandin.h"
#else
#include <ntifs.h>
#include <ntddk.h>

/* Documented (Windows 8.1+), exported, missing from mingw-w64's headers
 * and import library (our .def provides the import). */
typedef struct _MM_COPY_ADDRESS {
    union {
        PVOID VirtualAddress;
        PHYSICAL_ADDRESS PhysicalAddress;
    };
} MM_COPY_ADDRESS, *PMM_COPY_ADDRESS;
#define MM_COPY_MEMORY_PHYSICAL 0x1
#define MM_COPY_MEMORY_VIRTUAL 0x2
NTKERNELAPI NTSTATUS NTAPI MmCopyMemory(PVOID TargetAddress, MM_COPY_ADDRESS SourceAddress, SIZE_T NumberOfBytes,
                                        ULONG Flags, PSIZE_T NumberOfBytesTransferred);
/* Documented, exported, not declared by mingw-w64. */
NTKERNELAPI NTSTATUS NTAPI KeInitializeCrashDumpHeader(ULONG DumpType, ULONG Flags, PVOID Buffer, ULONG BufferSize,
                                                       PULONG BufferNeeded);
/* Exported; documented for user mode only, declared here ourselves. */
NTSYSAPI NTSTATUS NTAPI ZwQuerySystemInformation(ULONG SystemInformationClass, PVOID SystemInformation,
                                                 ULONG SystemInformationLength, PULONG ReturnLength);
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000u
#endif
#ifndef SYNCH_LEVEL
#define SYNCH_LEVEL 12 /* x64: IPI_LEVEL - 2 */
#endif
#endif

/* Both builds. */
#define LDN_DUMP_TYPE_FULL 1u
/* ZwQuerySystemInformation classes (stable since NT 4; phnt names). */
#define LDN_SYSTEM_PERFORMANCE_INFORMATION 2u
#define LDN_SYSTEM_MODULE_INFORMATION 11u

/* KeCapturePersistentThreadState: exported, undocumented, looked up at run
 * time (MmGetSystemRoutineAddress) so a kernel without it still loads us. */
typedef ULONG(NTAPI *ldn_capture_persistent_fn)(PCONTEXT context, PVOID thread, ULONG code, ULONG_PTR p1,
                                                ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4, PVOID buffer);
#define LDN_PERSISTENT_STATE_BYTES 0x40000u

/* Pool tag "Ldmp" (bytes in memory order, as pool tools print it). */
#define LDN_TAG 0x706d644cu

#endif
