/* The part of the NT kernel API the NT backend uses, declared for a build
 * off Windows (-DLDN_STANDIN), so the backend's own logic compiles and runs
 * against a stand-in for those routines (tests/nt/standin.c defines them,
 * over the simulated machine and real threads). Names, fields and
 * constants follow the Windows DDK; types have the same widths as on x64
 * Windows (ULONG is 32 bits). Only what the backend touches is here.
 *
 * Two things a real kernel does that user mode cannot are modelled as
 * calls: YieldProcessor() is where a spinning processor takes the
 * interrupts (IPIs) sent to it, and ldn_read_cpu_regs (cpu.h) returns the
 * stand-in processor's control registers. */
#ifndef LDN_NTSTANDIN_H
#define LDN_NTSTANDIN_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

typedef int32_t NTSTATUS;
typedef uint8_t BOOLEAN, UCHAR, KIRQL, *PKIRQL;
typedef uint16_t USHORT;
typedef int16_t CSHORT;
typedef uint32_t ULONG, *PULONG;
typedef int32_t LONG;
typedef uint64_t ULONG64, ULONGLONG;
typedef int64_t LONGLONG;
typedef uintptr_t ULONG_PTR, *PULONG_PTR, KAFFINITY, PFN_NUMBER, *PPFN_NUMBER;
typedef size_t SIZE_T, *PSIZE_T;
typedef void *PVOID, *HANDLE, **PHANDLE;
typedef wchar_t WCHAR, *PWSTR;
typedef char CHAR;
typedef ULONG ACCESS_MASK;
typedef int KPROCESSOR_MODE;

#define NTAPI
#define TRUE 1
#define FALSE 0
#define NT_SUCCESS(s) ((NTSTATUS)(s) >= 0)

#define STATUS_SUCCESS ((NTSTATUS)0x00000000)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001)
#define STATUS_INFO_LENGTH_MISMATCH ((NTSTATUS)0xC0000004)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000D)
#define STATUS_NO_MEMORY ((NTSTATUS)0xC0000017)
#define STATUS_ACCESS_DENIED ((NTSTATUS)0xC0000022)
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023)
#define STATUS_DISK_FULL ((NTSTATUS)0xC000007F)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009A)
#define STATUS_NOT_SUPPORTED ((NTSTATUS)0xC00000BB)
#define STATUS_INVALID_PARAMETER_1 ((NTSTATUS)0xC00000EF)
#define STATUS_INVALID_PARAMETER_2 ((NTSTATUS)0xC00000F0)
#define STATUS_INVALID_PARAMETER_4 ((NTSTATUS)0xC00000F2)
#define STATUS_PARTIAL_COPY ((NTSTATUS)0x8000000D)

#define PAGE_SIZE 0x1000u
#define PAGE_SHIFT 12

#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
#define SYNCH_LEVEL 12
#define CLOCK_LEVEL 13
#define IPI_LEVEL 14
#define HIGH_LEVEL 15

#define KI_USER_SHARED_DATA 0xFFFFF78000000000ull
#define ALL_PROCESSOR_GROUPS 0xffff

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, PHYSICAL_ADDRESS, *PLARGE_INTEGER;

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
#define RTL_CONSTANT_STRING(s) {(USHORT)(sizeof(s) - sizeof((s)[0])), (USHORT)sizeof(s), (PWSTR)(s)}

/* ---- memory ---- */

typedef enum _POOL_TYPE { NonPagedPool = 0, NonPagedPoolNx = 512 } POOL_TYPE;
typedef enum _MEMORY_CACHING_TYPE { MmNonCached = 0, MmCached = 1 } MEMORY_CACHING_TYPE;
typedef enum _MM_PAGE_PRIORITY { LowPagePriority = 0, NormalPagePriority = 16, HighPagePriority = 32 } MM_PAGE_PRIORITY;
enum { KernelMode = 0, UserMode = 1 };

PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T bytes, ULONG tag);
void NTAPI ExFreePoolWithTag(PVOID p, ULONG tag);
void NTAPI ExFreePool(PVOID p);

typedef struct _PHYSICAL_MEMORY_RANGE {
    PHYSICAL_ADDRESS BaseAddress;
    LARGE_INTEGER NumberOfBytes;
} PHYSICAL_MEMORY_RANGE, *PPHYSICAL_MEMORY_RANGE;
PPHYSICAL_MEMORY_RANGE NTAPI MmGetPhysicalMemoryRanges(void);

typedef struct _MM_COPY_ADDRESS {
    union {
        PVOID VirtualAddress;
        PHYSICAL_ADDRESS PhysicalAddress;
    };
} MM_COPY_ADDRESS;
#define MM_COPY_MEMORY_PHYSICAL 0x1
#define MM_COPY_MEMORY_VIRTUAL 0x2
NTSTATUS NTAPI MmCopyMemory(PVOID target, MM_COPY_ADDRESS source, SIZE_T bytes, ULONG flags, PSIZE_T done);

typedef struct _MDL {
    struct _MDL *Next;
    CSHORT Size;
    CSHORT MdlFlags;
    PVOID Process;
    PVOID MappedSystemVa;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL, *PMDL;
#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MDL_PAGES_LOCKED 0x0002
#define MDL_SOURCE_IS_NONPAGED_POOL 0x0004
#define MmGetMdlPfnArray(m) ((PPFN_NUMBER)((m) + 1))
#define MmGetMdlByteCount(m) ((m)->ByteCount)
#define MmInitializeMdl(m, va, len)                                                           \
    do {                                                                                      \
        (m)->Next = NULL;                                                                     \
        (m)->Size = (CSHORT)(sizeof(MDL) + sizeof(PFN_NUMBER) * (((len) + PAGE_SIZE - 1) / PAGE_SIZE)); \
        (m)->MdlFlags = 0;                                                                    \
        (m)->StartVa = (PVOID)((ULONG_PTR)(va) & ~(ULONG_PTR)(PAGE_SIZE - 1));                \
        (m)->ByteOffset = (ULONG)((ULONG_PTR)(va) & (PAGE_SIZE - 1));                         \
        (m)->ByteCount = (ULONG)(len);                                                        \
    } while (0)
#define MdlMappingNoExecute 0x40000000u

PVOID NTAPI MmAllocateMappingAddress(SIZE_T bytes, ULONG tag);
void NTAPI MmFreeMappingAddress(PVOID va, ULONG tag);
PVOID NTAPI MmMapLockedPagesWithReservedMapping(PVOID va, ULONG tag, PMDL mdl, MEMORY_CACHING_TYPE cache);
void NTAPI MmUnmapReservedMapping(PVOID va, ULONG tag, PMDL mdl);

#define MM_DONT_ZERO_ALLOCATION 0x00000001
#define MM_ALLOCATE_FULLY_REQUIRED 0x00000004
PMDL NTAPI MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS low, PHYSICAL_ADDRESS high, PHYSICAL_ADDRESS skip, SIZE_T bytes,
                                   MEMORY_CACHING_TYPE cache, ULONG flags);
void NTAPI MmFreePagesFromMdl(PMDL mdl);
PVOID NTAPI MmMapLockedPagesSpecifyCache(PMDL mdl, KPROCESSOR_MODE mode, MEMORY_CACHING_TYPE cache, PVOID base,
                                         ULONG bugcheck, ULONG priority);
void NTAPI MmUnmapLockedPages(PVOID va, PMDL mdl);

PHYSICAL_ADDRESS NTAPI MmGetPhysicalAddress(PVOID va);
BOOLEAN NTAPI MmIsAddressValid(PVOID va);

NTSTATUS NTAPI ZwQuerySystemInformation(ULONG cls, PVOID buf, ULONG len, PULONG ret);

/* ---- processors, IRQL, DPCs ---- */

typedef struct _PROCESSOR_NUMBER {
    USHORT Group;
    UCHAR Number;
    UCHAR Reserved;
} PROCESSOR_NUMBER, *PPROCESSOR_NUMBER;

struct _KDPC;
typedef void(NTAPI *PKDEFERRED_ROUTINE)(struct _KDPC *dpc, PVOID context, PVOID arg1, PVOID arg2);
typedef struct _KDPC {
    UCHAR Type;
    UCHAR Importance;
    volatile USHORT Number;
    PKDEFERRED_ROUTINE DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    volatile PVOID DpcData;
    /* the stand-in's own */
    struct _KDPC *standin_next;
    ULONG standin_target;
    int standin_queued;
} KDPC, *PKDPC;
typedef enum _KDPC_IMPORTANCE { LowImportance, MediumImportance, HighImportance } KDPC_IMPORTANCE;

typedef struct _KDPC_WATCHDOG_INFORMATION {
    ULONG DpcTimeLimit;
    ULONG DpcTimeCount;
    ULONG DpcWatchdogLimit;
    ULONG DpcWatchdogCount;
    ULONG Reserved;
} KDPC_WATCHDOG_INFORMATION, *PKDPC_WATCHDOG_INFORMATION;

KIRQL NTAPI KeGetCurrentIrql(void);
KIRQL NTAPI KfRaiseIrql(KIRQL irql);
void NTAPI KeLowerIrql(KIRQL irql);
#define KeRaiseIrql(a, b) (*(b) = KfRaiseIrql(a))
void NTAPI YieldProcessor(void);

ULONG NTAPI KeQueryActiveProcessorCountEx(USHORT group);
ULONG NTAPI KeGetCurrentProcessorNumberEx(PPROCESSOR_NUMBER number);
NTSTATUS NTAPI KeGetProcessorNumberFromIndex(ULONG index, PPROCESSOR_NUMBER number);
typedef struct _GROUP_AFFINITY {
    KAFFINITY Mask;
    USHORT Group;
    USHORT Reserved[3];
} GROUP_AFFINITY, *PGROUP_AFFINITY;
void NTAPI KeSetSystemGroupAffinityThread(PGROUP_AFFINITY affinity, PGROUP_AFFINITY previous);
void NTAPI KeRevertToUserGroupAffinityThread(PGROUP_AFFINITY previous);
void NTAPI KeInitializeDpc(PKDPC dpc, PKDEFERRED_ROUTINE routine, PVOID context);
NTSTATUS NTAPI KeSetTargetProcessorDpcEx(PKDPC dpc, PPROCESSOR_NUMBER number);
void NTAPI KeSetImportanceDpc(PKDPC dpc, KDPC_IMPORTANCE importance);
BOOLEAN NTAPI KeInsertQueueDpc(PKDPC dpc, PVOID arg1, PVOID arg2);
BOOLEAN NTAPI KeRemoveQueueDpc(PKDPC dpc);
void NTAPI KeFlushQueuedDpcs(void);
NTSTATUS NTAPI KeQueryDpcWatchdogInformation(PKDPC_WATCHDOG_INFORMATION info);
LARGE_INTEGER NTAPI KeQueryPerformanceCounter(PLARGE_INTEGER frequency);
void NTAPI KeQuerySystemTime(PLARGE_INTEGER time);

/* x64 CONTEXT: the fields the backend reads (the real one is 0x4D0 bytes
 * and 16-byte aligned; the backend allocates it, never declares one on
 * the stack). */
typedef struct _CONTEXT {
    ULONG ContextFlags;
    ULONG MxCsr;
    USHORT SegCs, SegDs, SegEs, SegFs, SegGs, SegSs;
    ULONG EFlags;
    ULONG64 Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi;
    ULONG64 R8, R9, R10, R11, R12, R13, R14, R15;
    ULONG64 Rip;
} __attribute__((aligned(16))) CONTEXT, *PCONTEXT;
void NTAPI RtlCaptureContext(PCONTEXT context);
void NTAPI IoGetStackLimits(PULONG_PTR low, PULONG_PTR high);
HANDLE NTAPI PsGetCurrentThreadId(void);

/* ---- system information ---- */

NTSTATUS NTAPI KeInitializeCrashDumpHeader(ULONG type, ULONG flags, PVOID buf, ULONG size, PULONG needed);
PVOID NTAPI MmGetSystemRoutineAddress(PUNICODE_STRING name);

/* ---- locks, threads, files ---- */

typedef struct _FAST_MUTEX {
    volatile long standin_lock; /* the stand-in's lock word */
    ULONG OldIrql;
} FAST_MUTEX, *PFAST_MUTEX;
void NTAPI ExInitializeFastMutex(PFAST_MUTEX m);
void NTAPI ExAcquireFastMutex(PFAST_MUTEX m);
void NTAPI ExReleaseFastMutex(PFAST_MUTEX m);

typedef struct _IO_STATUS_BLOCK {
    NTSTATUS Status;
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;
typedef struct _FILE_END_OF_FILE_INFORMATION {
    LARGE_INTEGER EndOfFile;
} FILE_END_OF_FILE_INFORMATION;
enum { FileEndOfFileInformation = 20 };
NTSTATUS NTAPI ZwWriteFile(HANDLE file, HANDLE event, PVOID apc, PVOID apc_ctx, PIO_STATUS_BLOCK iosb, PVOID buf,
                           ULONG len, PLARGE_INTEGER offset, PULONG key);
NTSTATUS NTAPI ZwSetInformationFile(HANDLE file, PIO_STATUS_BLOCK iosb, PVOID info, ULONG len, int cls);
NTSTATUS NTAPI ZwFlushBuffersFile(HANDLE file, PIO_STATUS_BLOCK iosb);
NTSTATUS NTAPI ZwClose(HANDLE h);

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;
#define OBJ_KERNEL_HANDLE 0x00000200u
#define InitializeObjectAttributes(p, n, a, r, s)                                              \
    do {                                                                                       \
        (p)->Length = sizeof(OBJECT_ATTRIBUTES);                                               \
        (p)->RootDirectory = (r);                                                              \
        (p)->Attributes = (a);                                                                 \
        (p)->ObjectName = (n);                                                                 \
        (p)->SecurityDescriptor = (s);                                                         \
        (p)->SecurityQualityOfService = NULL;                                                  \
    } while (0)

typedef void(NTAPI *PKSTART_ROUTINE)(PVOID context);
NTSTATUS NTAPI PsCreateSystemThread(PHANDLE thread, ULONG access, PVOID attributes, HANDLE process, PVOID client_id,
                                    PKSTART_ROUTINE start, PVOID context);
NTSTATUS NTAPI PsTerminateSystemThread(NTSTATUS status);
/* The stand-in's one way to wait for a thread: ObReferenceObjectByHandle +
 * KeWaitForSingleObject + ObDereferenceObject, as the driver does. */
NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE h, ACCESS_MASK access, PVOID type, KPROCESSOR_MODE mode, PVOID *object,
                                         PVOID info);
NTSTATUS NTAPI KeWaitForSingleObject(PVOID object, int reason, KPROCESSOR_MODE mode, BOOLEAN alertable,
                                     PLARGE_INTEGER timeout);
void NTAPI ObDereferenceObject(PVOID object);
NTSTATUS NTAPI ZwWaitForSingleObject(HANDLE h, BOOLEAN alertable, PLARGE_INTEGER timeout);
enum { Executive = 0 };
#define THREAD_ALL_ACCESS 0x001FFFFFu
#define SYNCHRONIZE 0x00100000u

#endif
