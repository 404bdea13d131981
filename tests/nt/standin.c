/* The stand-in for the NT kernel routines the NT backend calls
 * (standin.h says what it models and checks). One world at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ntstandin.h"
#include "cpu.h"
#include "standin.h"
#include "livedump/sys/hal.h"

#define DIRECT_BASE 0xfffff80000000000ull /* the sim's direct map of physical memory */
#define STACK_WINDOW 0xfffff90000000000ull
#define STACK_WINDOW_STRIDE 0x100000ull
#define STACK_PAGES 6u
#define PG 4096u

/* ---- the routines, their failure modes ---- */

enum {
    R_ExAllocatePoolWithTag, R_ExFreePoolWithTag, R_ExFreePool, R_MmGetPhysicalMemoryRanges, R_MmCopyMemory,
    R_MmAllocateMappingAddress, R_MmFreeMappingAddress, R_MmMapLockedPagesWithReservedMapping,
    R_MmUnmapReservedMapping, R_MmAllocatePagesForMdlEx, R_MmFreePagesFromMdl, R_MmMapLockedPagesSpecifyCache,
    R_MmUnmapLockedPages, R_MmGetPhysicalAddress, R_MmIsAddressValid, R_ZwQuerySystemInformation,
    R_KeGetCurrentIrql, R_KfRaiseIrql, R_KeLowerIrql, R_YieldProcessor, R_KeQueryActiveProcessorCountEx,
    R_KeGetCurrentProcessorNumberEx, R_KeGetProcessorNumberFromIndex, R_KeSetSystemGroupAffinityThread,
    R_KeRevertToUserGroupAffinityThread, R_KeInitializeDpc, R_KeSetTargetProcessorDpcEx, R_KeSetImportanceDpc,
    R_KeInsertQueueDpc, R_KeRemoveQueueDpc, R_KeFlushQueuedDpcs, R_KeQueryDpcWatchdogInformation,
    R_KeQueryPerformanceCounter, R_KeQuerySystemTime, R_RtlCaptureContext, R_IoGetStackLimits,
    R_PsGetCurrentThreadId, R_KeInitializeCrashDumpHeader, R_MmGetSystemRoutineAddress,
    R_KeCapturePersistentThreadState, R_ExInitializeFastMutex, R_ExAcquireFastMutex, R_ExReleaseFastMutex,
    R_ZwWriteFile, R_ZwSetInformationFile, R_ZwFlushBuffersFile, R_ZwClose, R_PsCreateSystemThread,
    R_PsTerminateSystemThread, R_ObReferenceObjectByHandle, R_KeWaitForSingleObject, R_ObDereferenceObject,
    R_ZwWaitForSingleObject, R_COUNT
};

static const char *const names[R_COUNT + 1] = {
    "ExAllocatePoolWithTag", "ExFreePoolWithTag", "ExFreePool", "MmGetPhysicalMemoryRanges", "MmCopyMemory",
    "MmAllocateMappingAddress", "MmFreeMappingAddress", "MmMapLockedPagesWithReservedMapping",
    "MmUnmapReservedMapping", "MmAllocatePagesForMdlEx", "MmFreePagesFromMdl", "MmMapLockedPagesSpecifyCache",
    "MmUnmapLockedPages", "MmGetPhysicalAddress", "MmIsAddressValid", "ZwQuerySystemInformation",
    "KeGetCurrentIrql", "KfRaiseIrql", "KeLowerIrql", "YieldProcessor", "KeQueryActiveProcessorCountEx",
    "KeGetCurrentProcessorNumberEx", "KeGetProcessorNumberFromIndex", "KeSetSystemGroupAffinityThread",
    "KeRevertToUserGroupAffinityThread", "KeInitializeDpc", "KeSetTargetProcessorDpcEx", "KeSetImportanceDpc",
    "KeInsertQueueDpc", "KeRemoveQueueDpc", "KeFlushQueuedDpcs", "KeQueryDpcWatchdogInformation",
    "KeQueryPerformanceCounter", "KeQuerySystemTime", "RtlCaptureContext", "IoGetStackLimits",
    "PsGetCurrentThreadId", "KeInitializeCrashDumpHeader", "MmGetSystemRoutineAddress",
    "KeCapturePersistentThreadState", "ExInitializeFastMutex", "ExAcquireFastMutex", "ExReleaseFastMutex",
    "ZwWriteFile", "ZwSetInformationFile", "ZwFlushBuffersFile", "ZwClose", "PsCreateSystemThread",
    "PsTerminateSystemThread", "ObReferenceObjectByHandle", "KeWaitForSingleObject", "ObDereferenceObject",
    "ZwWaitForSingleObject", NULL,
};

/* Routines that cannot fail (void, or a value with no failure: the
 * current IRQL, the processor number, a non-alertable untimed wait on a
 * valid object): a fault stalls them. */
static const bool stall_only[R_COUNT] = {
    [R_ExFreePoolWithTag] = 1, [R_ExFreePool] = 1, [R_MmFreeMappingAddress] = 1, [R_MmUnmapReservedMapping] = 1,
    [R_MmFreePagesFromMdl] = 1, [R_MmUnmapLockedPages] = 1, [R_KeGetCurrentIrql] = 1, [R_KfRaiseIrql] = 1,
    [R_KeLowerIrql] = 1, [R_YieldProcessor] = 1, [R_KeGetCurrentProcessorNumberEx] = 1,
    [R_KeSetSystemGroupAffinityThread] = 1, [R_KeRevertToUserGroupAffinityThread] = 1, [R_KeInitializeDpc] = 1,
    [R_KeSetImportanceDpc] = 1, [R_KeFlushQueuedDpcs] = 1, [R_KeQueryPerformanceCounter] = 1,
    [R_KeQuerySystemTime] = 1, [R_RtlCaptureContext] = 1, [R_IoGetStackLimits] = 1, [R_ExInitializeFastMutex] = 1,
    [R_ExAcquireFastMutex] = 1, [R_ExReleaseFastMutex] = 1, [R_ZwClose] = 1, [R_PsTerminateSystemThread] = 1,
    [R_KeWaitForSingleObject] = 1, [R_ObDereferenceObject] = 1, [R_ZwWaitForSingleObject] = 1,
};

typedef struct fault {
    uint64_t trigger;
    bool repeat;
    bool stall_only; /* stall, then go on as if nothing happened */
    uint64_t stall_ns;
} fault;

/* ---- the world ---- */

typedef struct proc {
    pthread_t thread;
    bool started;
    pthread_mutex_t token;     /* held by whatever runs on this processor */
    pthread_cond_t wake;       /* under W.lock */
    KDPC *head, *tail;         /* under W.lock */
    int in_dpc;                /* atomic */
    int held;                  /* atomic: a thread that is not the processor's holds it */
    int irql;                  /* atomic: the IRQL of whoever runs on it */
    uint64_t stall_ns;         /* atomic: delay before its next DPC */
    uint64_t flush_req, flush_ack; /* atomic */
    uint64_t seq;
    uint64_t disp_start, max_disp, clock_start, max_clock;
} proc;

typedef struct rmap {
    uint8_t *va;
    size_t bytes;
    ULONG tag;
    bool used, mapped;
} rmap;

static struct world {
    standin_config cfg;
    ld_sim *sim;
    ld_phys_range ranges[8];
    size_t range_count;
    uint64_t max_pfn;
    standin_layout L;
    uint64_t other_pfn, other_pages;   /* kernel-other run */
    /* MDL pages: the machine's free and zero runs, then frames above its
     * RAM (memory the dump never covers), as many as a full dump needs */
    uint64_t seg_first[40], seg_pages[40];
    size_t seg_count;
    uint64_t free_pages;               /* pages of all segments */
    uint8_t *free_used;                /* per page of the segments, in order */
    uint64_t free_total;               /* free + zero pages of the machine */
    pthread_mutex_t lock;
    proc cpu[STANDIN_MAX_CPUS];
    int stop, paused;                  /* atomic */
    int64_t outstanding;               /* atomic */
    uint64_t violations;               /* atomic */
    char last_violation[512];
    fault faults[R_COUNT];
    uint64_t calls[R_COUNT], fired[R_COUNT]; /* atomic */
    rmap maps[16];
    uint64_t stack_base_pfn[STANDIN_MAX_CPUS];
} W;

static __thread int t_cpu = -1;        /* the processor this thread runs on */
static __thread int t_irql;
static __thread bool t_is_proc;
static __thread bool t_in_dpc;
static __thread int t_affinity = -1;
static __thread uint64_t t_thread_id = 4;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (ns && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&W.lock);
    vsnprintf(W.last_violation, sizeof W.last_violation, fmt, ap);
    pthread_mutex_unlock(&W.lock);
    va_end(ap);
    __atomic_add_fetch(&W.violations, 1, __ATOMIC_RELAXED);
}

/* Count the call; true when it must fail now (a stall-only routine
 * stalls here and never fails). */
static bool enter(int id)
{
    uint64_t n = __atomic_add_fetch(&W.calls[id], 1, __ATOMIC_ACQ_REL);
    fault *f = &W.faults[id];
    uint64_t trig = __atomic_load_n(&f->trigger, __ATOMIC_ACQUIRE);
    if (!trig || n < trig || (n != trig && !f->repeat))
        return false;
    __atomic_add_fetch(&W.fired[id], 1, __ATOMIC_RELAXED);
    if (stall_only[id] || f->stall_only) {
        sleep_ns(f->stall_ns ? f->stall_ns : 2000000u);
        return false;
    }
    if (f->stall_ns)
        sleep_ns(f->stall_ns);
    return true;
}

static void irql_max(int id, int max)
{
    if (t_irql > max)
        violation("%s called at IRQL %d (allowed up to %d)", names[id], t_irql, max);
}

/* ---- IRQL, processors ---- */

static void track(proc *p, int old, int new)
{
    uint64_t t = now_ns();
    if (old < DISPATCH_LEVEL && new >= DISPATCH_LEVEL)
        p->disp_start = t;
    if (old >= DISPATCH_LEVEL && new < DISPATCH_LEVEL) {
        uint64_t d = t - p->disp_start;
        if (d > __atomic_load_n(&p->max_disp, __ATOMIC_RELAXED))
            __atomic_store_n(&p->max_disp, d, __ATOMIC_RELAXED);
        if (d > W.cfg.dpc_watchdog_ns)
            violation("DPC watchdog: a processor stayed at DISPATCH_LEVEL or above for %llu ms",
                      (unsigned long long)(d / 1000000));
    }
    if (old < CLOCK_LEVEL && new >= CLOCK_LEVEL)
        p->clock_start = t;
    if (old >= CLOCK_LEVEL && new < CLOCK_LEVEL) {
        uint64_t d = t - p->clock_start;
        if (d > __atomic_load_n(&p->max_clock, __ATOMIC_RELAXED))
            __atomic_store_n(&p->max_clock, d, __ATOMIC_RELAXED);
        if (d > W.cfg.clock_watchdog_ns)
            violation("clock watchdog: a processor took no clock interrupt for %llu ms",
                      (unsigned long long)(d / 1000000));
    }
}

static void set_irql(int new)
{
    int old = t_irql;
    t_irql = new;
    if (t_cpu >= 0) {
        track(&W.cpu[t_cpu], old, new);
        __atomic_store_n(&W.cpu[t_cpu].irql, new, __ATOMIC_RELEASE);
    }
}

static void take_cpu(int p)
{
    pthread_mutex_lock(&W.cpu[p].token);
    t_cpu = p;
    __atomic_store_n(&W.cpu[p].held, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&W.cpu[p].irql, t_irql, __ATOMIC_RELEASE);
}

static void give_cpu(void)
{
    int p = t_cpu;
    if (p < 0)
        return;
    __atomic_store_n(&W.cpu[p].irql, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&W.cpu[p].held, 0, __ATOMIC_RELEASE);
    t_cpu = -1;
    pthread_mutex_unlock(&W.cpu[p].token);
}

static void take_ipis(int p)
{
    uint64_t req = __atomic_load_n(&W.cpu[p].flush_req, __ATOMIC_ACQUIRE);
    __atomic_store_n(&W.cpu[p].flush_ack, req, __ATOMIC_RELEASE);
}

KIRQL NTAPI KeGetCurrentIrql(void)
{
    enter(R_KeGetCurrentIrql);
    return (KIRQL)t_irql;
}

KIRQL NTAPI KfRaiseIrql(KIRQL irql)
{
    enter(R_KfRaiseIrql);
    int old = t_irql;
    if (irql < old)
        violation("KeRaiseIrql to %d from %d: that is a lowering", irql, old);
    if (!t_is_proc && t_cpu < 0 && irql >= DISPATCH_LEVEL)
        take_cpu((int)W.cfg.leader);
    set_irql(irql);
    return (KIRQL)old;
}

void NTAPI KeLowerIrql(KIRQL irql)
{
    enter(R_KeLowerIrql);
    if (irql > t_irql)
        violation("KeLowerIrql to %d from %d: that is a raise", irql, t_irql);
    set_irql(irql);
    if (!t_is_proc && irql < DISPATCH_LEVEL && t_cpu >= 0 && t_affinity < 0)
        give_cpu();
}

/* A spinning processor: takes the IPIs sent to it, then lets the host run
 * something else for a moment (woken at once by the next IPI), so a
 * dozen spinning "processors" on a two-core host do not starve each
 * other: what matters to the backend is only that time passes. */
void NTAPI YieldProcessor(void)
{
    enter(R_YieldProcessor);
    if (t_cpu < 0 || t_irql >= IPI_LEVEL) {
        sched_yield();
        return;
    }
    proc *c = &W.cpu[t_cpu];
    take_ipis(t_cpu);
    pthread_mutex_lock(&W.lock);
    if (__atomic_load_n(&c->flush_ack, __ATOMIC_ACQUIRE) == __atomic_load_n(&c->flush_req, __ATOMIC_ACQUIRE)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->wake, &W.lock, &ts);
    }
    pthread_mutex_unlock(&W.lock);
    take_ipis(t_cpu);
}

ULONG NTAPI KeQueryActiveProcessorCountEx(USHORT group)
{
    if (enter(R_KeQueryActiveProcessorCountEx))
        return 0;
    return group == ALL_PROCESSOR_GROUPS || group == 0 ? W.cfg.cpus : 0;
}

ULONG NTAPI KeGetCurrentProcessorNumberEx(PPROCESSOR_NUMBER number)
{
    enter(R_KeGetCurrentProcessorNumberEx);
    int p = t_cpu >= 0 ? t_cpu : 0;
    if (number) {
        number->Group = 0;
        number->Number = (UCHAR)p;
        number->Reserved = 0;
    }
    return (ULONG)p;
}

NTSTATUS NTAPI KeGetProcessorNumberFromIndex(ULONG index, PPROCESSOR_NUMBER number)
{
    if (enter(R_KeGetProcessorNumberFromIndex))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (index >= W.cfg.cpus || !number)
        return STATUS_INVALID_PARAMETER;
    number->Group = 0;
    number->Number = (UCHAR)index;
    number->Reserved = 0;
    return STATUS_SUCCESS;
}

void NTAPI KeSetSystemGroupAffinityThread(PGROUP_AFFINITY affinity, PGROUP_AFFINITY previous)
{
    enter(R_KeSetSystemGroupAffinityThread);
    irql_max(R_KeSetSystemGroupAffinityThread, APC_LEVEL);
    if (previous)
        memset(previous, 0, sizeof *previous);
    if (!affinity || !affinity->Mask || affinity->Group) {
        violation("KeSetSystemGroupAffinityThread: no processor in the affinity");
        return;
    }
    if (t_cpu >= 0)
        give_cpu();
    int p = __builtin_ctzll(affinity->Mask);
    take_cpu(p);
    t_affinity = p;
}

void NTAPI KeRevertToUserGroupAffinityThread(PGROUP_AFFINITY previous)
{
    (void)previous;
    enter(R_KeRevertToUserGroupAffinityThread);
    irql_max(R_KeRevertToUserGroupAffinityThread, APC_LEVEL);
    t_affinity = -1;
    if (t_irql < DISPATCH_LEVEL)
        give_cpu();
}

/* ---- DPCs ---- */

void NTAPI KeInitializeDpc(PKDPC dpc, PKDEFERRED_ROUTINE routine, PVOID context)
{
    enter(R_KeInitializeDpc);
    memset(dpc, 0, sizeof *dpc);
    dpc->DeferredRoutine = routine;
    dpc->DeferredContext = context;
    dpc->standin_target = (ULONG)(t_cpu >= 0 ? t_cpu : 0);
}

NTSTATUS NTAPI KeSetTargetProcessorDpcEx(PKDPC dpc, PPROCESSOR_NUMBER number)
{
    if (enter(R_KeSetTargetProcessorDpcEx))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (!number || number->Group || number->Number >= W.cfg.cpus)
        return STATUS_INVALID_PARAMETER;
    dpc->standin_target = number->Number;
    return STATUS_SUCCESS;
}

void NTAPI KeSetImportanceDpc(PKDPC dpc, KDPC_IMPORTANCE importance)
{
    enter(R_KeSetImportanceDpc);
    dpc->Importance = (UCHAR)importance;
}

BOOLEAN NTAPI KeInsertQueueDpc(PKDPC dpc, PVOID arg1, PVOID arg2)
{
    if (enter(R_KeInsertQueueDpc))
        return FALSE; /* modelled as a DPC that was already queued: nothing new runs */
    pthread_mutex_lock(&W.lock);
    if (dpc->standin_queued) {
        pthread_mutex_unlock(&W.lock);
        return FALSE;
    }
    dpc->SystemArgument1 = arg1;
    dpc->SystemArgument2 = arg2;
    dpc->standin_queued = 1;
    dpc->standin_next = NULL;
    proc *p = &W.cpu[dpc->standin_target];
    if (p->tail)
        p->tail->standin_next = dpc;
    else
        p->head = dpc;
    p->tail = dpc;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&W.lock);
    return TRUE;
}

BOOLEAN NTAPI KeRemoveQueueDpc(PKDPC dpc)
{
    if (enter(R_KeRemoveQueueDpc))
        return FALSE; /* as if it had just started running: it will */
    pthread_mutex_lock(&W.lock);
    BOOLEAN removed = FALSE;
    if (dpc->standin_queued) {
        proc *p = &W.cpu[dpc->standin_target];
        KDPC **at = &p->head, *prev = NULL;
        while (*at && *at != dpc) {
            prev = *at;
            at = &(*at)->standin_next;
        }
        if (*at) {
            *at = dpc->standin_next;
            if (p->tail == dpc)
                p->tail = prev;
            dpc->standin_queued = 0;
            removed = TRUE;
        }
    }
    pthread_mutex_unlock(&W.lock);
    return removed;
}

static KDPC *pop_dpc(int p)
{
    pthread_mutex_lock(&W.lock);
    KDPC *d = W.cpu[p].head;
    if (d) {
        W.cpu[p].head = d->standin_next;
        if (!W.cpu[p].head)
            W.cpu[p].tail = NULL;
        d->standin_queued = 0;
        __atomic_store_n(&W.cpu[p].in_dpc, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&W.lock);
    return d;
}

static bool dpcs_pending(void)
{
    bool any = false;
    pthread_mutex_lock(&W.lock);
    for (uint32_t i = 0; i < W.cfg.cpus; i++)
        any |= W.cpu[i].head != NULL || __atomic_load_n(&W.cpu[i].in_dpc, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&W.lock);
    return any;
}

void NTAPI KeFlushQueuedDpcs(void)
{
    enter(R_KeFlushQueuedDpcs);
    irql_max(R_KeFlushQueuedDpcs, PASSIVE_LEVEL);
    uint64_t t0 = now_ns();
    while (dpcs_pending()) {
        if (now_ns() - t0 > 10000000000ull) {
            violation("KeFlushQueuedDpcs: DPCs still run after 10 s");
            return;
        }
        sleep_ns(100000);
    }
}

NTSTATUS NTAPI KeQueryDpcWatchdogInformation(PKDPC_WATCHDOG_INFORMATION info)
{
    if (enter(R_KeQueryDpcWatchdogInformation))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (!t_in_dpc || t_irql < DISPATCH_LEVEL)
        return STATUS_UNSUCCESSFUL; /* documented: only inside a DPC */
    uint32_t pct = W.cfg.dpc_percent[t_cpu] ? W.cfg.dpc_percent[t_cpu] : 100;
    memset(info, 0, sizeof *info);
    info->DpcTimeLimit = 1280;
    info->DpcTimeCount = 1280 * pct / 100;
    info->DpcWatchdogLimit = 7680;
    info->DpcWatchdogCount = 7680;
    return STATUS_SUCCESS;
}

/* ---- time ---- */

LARGE_INTEGER NTAPI KeQueryPerformanceCounter(PLARGE_INTEGER frequency)
{
    enter(R_KeQueryPerformanceCounter);
    if (frequency)
        frequency->QuadPart = 10000000;
    LARGE_INTEGER v;
    v.QuadPart = (LONGLONG)(now_ns() / 100);
    return v;
}

void NTAPI KeQuerySystemTime(PLARGE_INTEGER time)
{
    enter(R_KeQuerySystemTime);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time->QuadPart = (LONGLONG)((uint64_t)ts.tv_sec * 10000000u + (uint64_t)ts.tv_nsec / 100 + 116444736000000000ull);
}

/* ---- pool ---- */

#define POOL_MAGIC 0x6c6f6f7021646c4cull

static void *pool_get(size_t bytes)
{
    uint64_t *h = malloc(16 + bytes);
    if (!h)
        return NULL;
    h[0] = POOL_MAGIC;
    h[1] = bytes;
    __atomic_add_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
    return h + 2;
}

static void pool_put(void *p, const char *who)
{
    if (!p) {
        violation("%s(NULL)", who);
        return;
    }
    uint64_t *h = (uint64_t *)p - 2;
    if (h[0] != POOL_MAGIC) {
        violation("%s of memory that is not pool", who);
        return;
    }
    h[0] = 0;
    free(h);
    __atomic_sub_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
}

PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T bytes, ULONG tag)
{
    (void)tag;
    irql_max(R_ExAllocatePoolWithTag, DISPATCH_LEVEL);
    if (type != NonPagedPoolNx && type != NonPagedPool)
        violation("ExAllocatePoolWithTag: paged pool for the backend");
    if (enter(R_ExAllocatePoolWithTag))
        return NULL;
    return pool_get(bytes);
}

void NTAPI ExFreePoolWithTag(PVOID p, ULONG tag)
{
    (void)tag;
    enter(R_ExFreePoolWithTag);
    irql_max(R_ExFreePoolWithTag, DISPATCH_LEVEL);
    pool_put(p, "ExFreePoolWithTag");
}

void NTAPI ExFreePool(PVOID p)
{
    enter(R_ExFreePool);
    irql_max(R_ExFreePool, DISPATCH_LEVEL);
    pool_put(p, "ExFreePool");
}

/* ---- physical memory ---- */

static bool in_ram(uint64_t pfn)
{
    return ld_range_find(W.ranges, W.range_count, sizeof W.ranges[0], pfn) < W.range_count;
}

static bool is_secure(uint64_t pfn)
{
    return W.L.secure_pages && pfn >= W.L.secure_pfn && pfn - W.L.secure_pfn < W.L.secure_pages;
}

static uint8_t *ram(uint64_t pfn)
{
    return (uint8_t *)(uintptr_t)ld_sim_page(W.sim, pfn);
}

/* Memory the processors write while others read it (the machine runs):
 * word by word with relaxed atomics, as the simulated machine does, so
 * the race is the modelled one and ThreadSanitizer sees no other. */
static void copy_ram(uint8_t *dst, uint64_t pfn, size_t off, size_t n)
{
    const uint8_t *src = ram(pfn) + off;
    while (n && ((uintptr_t)src & 7)) {
        *dst++ = __atomic_load_n(src++, __ATOMIC_RELAXED);
        n--;
    }
    for (; n >= 8; n -= 8, src += 8, dst += 8) {
        uint64_t v = __atomic_load_n((const uint64_t *)(const void *)src, __ATOMIC_RELAXED);
        memcpy(dst, &v, 8);
    }
    while (n--)
        *dst++ = __atomic_load_n(src++, __ATOMIC_RELAXED);
}

/* The machine's virtual addresses: its direct map, KI_USER_SHARED_DATA
 * and the processors' stack windows. */
static bool va_to_pa(uint64_t va, uint64_t *pa)
{
    if (va >= DIRECT_BASE && va - DIRECT_BASE < W.max_pfn * PG) {
        *pa = va - DIRECT_BASE;
        return in_ram(*pa / PG);
    }
    if (va >> 12 == KI_USER_SHARED_DATA >> 12) {
        *pa = W.L.shared_data_pfn * PG + (va & (PG - 1));
        return true;
    }
    if (va >= STACK_WINDOW && va < STACK_WINDOW + STANDIN_MAX_CPUS * STACK_WINDOW_STRIDE) {
        uint64_t cpu = (va - STACK_WINDOW) / STACK_WINDOW_STRIDE, off = (va - STACK_WINDOW) % STACK_WINDOW_STRIDE;
        uint64_t page = off / PG;
        if (cpu >= W.cfg.cpus || page >= STACK_PAGES)
            return false;
        /* the two lowest pages lie elsewhere: not one physical run */
        uint64_t pfn = W.stack_base_pfn[cpu] + (page < 2 ? 10 + page : page);
        *pa = pfn * PG + (off & (PG - 1));
        return true;
    }
    return false;
}

PPHYSICAL_MEMORY_RANGE NTAPI MmGetPhysicalMemoryRanges(void)
{
    irql_max(R_MmGetPhysicalMemoryRanges, PASSIVE_LEVEL);
    if (enter(R_MmGetPhysicalMemoryRanges))
        return NULL;
    PPHYSICAL_MEMORY_RANGE r = pool_get((W.range_count + 1) * sizeof *r);
    if (!r)
        return NULL;
    for (size_t i = 0; i < W.range_count; i++) {
        r[i].BaseAddress.QuadPart = (LONGLONG)(W.ranges[i].first_pfn * PG);
        r[i].NumberOfBytes.QuadPart = (LONGLONG)(W.ranges[i].page_count * PG);
    }
    r[W.range_count].BaseAddress.QuadPart = 0;
    r[W.range_count].NumberOfBytes.QuadPart = 0;
    return r;
}

NTSTATUS NTAPI MmCopyMemory(PVOID target, MM_COPY_ADDRESS source, SIZE_T bytes, ULONG flags, PSIZE_T done)
{
    irql_max(R_MmCopyMemory, APC_LEVEL);
    *done = 0;
    if (enter(R_MmCopyMemory))
        return STATUS_INSUFFICIENT_RESOURCES;
    uint8_t *dst = target;
    uint64_t addr = flags == MM_COPY_MEMORY_PHYSICAL ? (uint64_t)source.PhysicalAddress.QuadPart
                                                     : (uint64_t)(uintptr_t)source.VirtualAddress;
    if (flags != MM_COPY_MEMORY_PHYSICAL && flags != MM_COPY_MEMORY_VIRTUAL)
        return STATUS_INVALID_PARAMETER;
    SIZE_T left = bytes;
    while (left) {
        uint64_t pa = addr;
        if (flags == MM_COPY_MEMORY_VIRTUAL && !va_to_pa(addr, &pa))
            return (NTSTATUS)0xC0000141; /* STATUS_INVALID_ADDRESS */
        uint64_t pfn = pa / PG;
        if (!in_ram(pfn) || is_secure(pfn))
            return (NTSTATUS)0xC0000141;
        size_t n = PG - pa % PG;
        if (n > left)
            n = left;
        copy_ram(dst, pfn, pa % PG, n);
        dst += n;
        addr += n;
        left -= n;
        *done += n;
    }
    return STATUS_SUCCESS;
}

PHYSICAL_ADDRESS NTAPI MmGetPhysicalAddress(PVOID va)
{
    PHYSICAL_ADDRESS r;
    r.QuadPart = 0;
    if (enter(R_MmGetPhysicalAddress))
        return r;
    uint64_t pa;
    if (va_to_pa((uint64_t)(uintptr_t)va, &pa))
        r.QuadPart = (LONGLONG)pa;
    return r;
}

BOOLEAN NTAPI MmIsAddressValid(PVOID va)
{
    irql_max(R_MmIsAddressValid, DISPATCH_LEVEL);
    if (enter(R_MmIsAddressValid))
        return FALSE;
    uint64_t pa;
    return va_to_pa((uint64_t)(uintptr_t)va, &pa);
}

/* Reserved mappings: real pages, PROT_NONE while unmapped. */
PVOID NTAPI MmAllocateMappingAddress(SIZE_T bytes, ULONG tag)
{
    irql_max(R_MmAllocateMappingAddress, APC_LEVEL);
    if (enter(R_MmAllocateMappingAddress))
        return NULL;
    for (size_t i = 0; i < 16; i++) {
        rmap *m = &W.maps[i];
        if (m->used)
            continue;
        void *va = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (va == MAP_FAILED)
            return NULL;
        *m = (rmap){va, bytes, tag, true, false};
        __atomic_add_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
        return va;
    }
    return NULL;
}

static rmap *find_map(PVOID va, const char *who)
{
    for (size_t i = 0; i < 16; i++)
        if (W.maps[i].used && W.maps[i].va == va)
            return &W.maps[i];
    violation("%s: %p is no reserved mapping", who, va);
    return NULL;
}

void NTAPI MmFreeMappingAddress(PVOID va, ULONG tag)
{
    enter(R_MmFreeMappingAddress);
    irql_max(R_MmFreeMappingAddress, APC_LEVEL);
    rmap *m = find_map(va, "MmFreeMappingAddress");
    if (!m)
        return;
    if (m->tag != tag)
        violation("MmFreeMappingAddress: tag differs from the reservation's");
    if (m->mapped)
        violation("MmFreeMappingAddress: still mapped");
    munmap(m->va, m->bytes);
    m->used = false;
    __atomic_sub_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
}

PVOID NTAPI MmMapLockedPagesWithReservedMapping(PVOID va, ULONG tag, PMDL mdl, MEMORY_CACHING_TYPE cache)
{
    (void)cache;
    irql_max(R_MmMapLockedPagesWithReservedMapping, DISPATCH_LEVEL);
    if (enter(R_MmMapLockedPagesWithReservedMapping))
        return NULL;
    rmap *m = find_map(va, "MmMapLockedPagesWithReservedMapping");
    if (!m)
        return NULL;
    if (m->tag != tag)
        violation("MmMapLockedPagesWithReservedMapping: tag differs from the reservation's");
    if (m->mapped) {
        violation("MmMapLockedPagesWithReservedMapping: already mapped");
        return NULL;
    }
    if (!(mdl->MdlFlags & MDL_PAGES_LOCKED))
        violation("MmMapLockedPagesWithReservedMapping: MDL pages not locked");
    size_t pages = (mdl->ByteOffset + mdl->ByteCount + PG - 1) / PG;
    if (pages * PG > m->bytes) {
        violation("MmMapLockedPagesWithReservedMapping: MDL larger than the reservation");
        return NULL;
    }
    PPFN_NUMBER pfns = MmGetMdlPfnArray(mdl);
    for (size_t i = 0; i < pages; i++) {
        if (!in_ram(pfns[i]) || is_secure(pfns[i])) {
            violation("bug check 0x1A: page 0x%llx mapped is %s", (unsigned long long)pfns[i],
                      in_ram(pfns[i]) ? "one the OS does not let us read" : "not RAM");
            return NULL;
        }
    }
    mprotect(m->va, m->bytes, PROT_READ | PROT_WRITE);
    for (size_t i = 0; i < pages; i++)
        copy_ram(m->va + i * PG, pfns[i], 0, PG);
    m->mapped = true;
    return m->va + mdl->ByteOffset;
}

/* Other processors may hold the old translation: an IPI to each, which
 * it takes when below IPI_LEVEL (at its loop, or where it spins). */
static void flush_tlbs(void)
{
    int me = t_cpu;
    uint64_t want[STANDIN_MAX_CPUS];
    for (uint32_t q = 0; q < W.cfg.cpus; q++) {
        if ((int)q == me)
            continue;
        want[q] = __atomic_add_fetch(&W.cpu[q].flush_req, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_lock(&W.lock);
        pthread_cond_signal(&W.cpu[q].wake);
        pthread_mutex_unlock(&W.lock);
    }
    uint64_t t0 = now_ns();
    for (uint32_t q = 0; q < W.cfg.cpus; q++) {
        if ((int)q == me)
            continue;
        while (__atomic_load_n(&W.cpu[q].flush_ack, __ATOMIC_ACQUIRE) < want[q]) {
            if (now_ns() - t0 > 3000000000ull) {
                violation("TLB flush IPI not taken by processor %u in 3 s (IRQL %d)", q,
                          __atomic_load_n(&W.cpu[q].irql, __ATOMIC_ACQUIRE));
                break;
            }
            if (me >= 0)
                take_ipis(me);
            usleep(20);
        }
    }
}

void NTAPI MmUnmapReservedMapping(PVOID va, ULONG tag, PMDL mdl)
{
    (void)mdl;
    enter(R_MmUnmapReservedMapping);
    irql_max(R_MmUnmapReservedMapping, DISPATCH_LEVEL);
    rmap *m = find_map(va, "MmUnmapReservedMapping");
    if (!m)
        return;
    if (m->tag != tag)
        violation("MmUnmapReservedMapping: tag differs from the reservation's");
    if (!m->mapped) {
        violation("MmUnmapReservedMapping: not mapped");
        return;
    }
    memset(m->va, 0xCC, m->bytes);
    mprotect(m->va, m->bytes, PROT_NONE);
    m->mapped = false;
    flush_tlbs();
}

/* MDL pages come from the machine's free pages (their frame numbers);
 * their content is host memory of the MDL's own. */
static uint64_t seg_pfn(uint64_t index)
{
    for (size_t s = 0; s < W.seg_count; s++) {
        if (index < W.seg_pages[s])
            return W.seg_first[s] + index;
        index -= W.seg_pages[s];
    }
    return UINT64_MAX;
}

static uint64_t seg_index(uint64_t pfn)
{
    uint64_t base = 0;
    for (size_t s = 0; s < W.seg_count; s++) {
        if (pfn >= W.seg_first[s] && pfn - W.seg_first[s] < W.seg_pages[s])
            return base + pfn - W.seg_first[s];
        base += W.seg_pages[s];
    }
    abort();
}
typedef struct mdl_extra {
    uint8_t *host;
    size_t pages;
} mdl_extra;

PMDL NTAPI MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS low, PHYSICAL_ADDRESS high, PHYSICAL_ADDRESS skip, SIZE_T bytes,
                                   MEMORY_CACHING_TYPE cache, ULONG flags)
{
    (void)low;
    (void)high;
    (void)skip;
    (void)cache;
    (void)flags;
    irql_max(R_MmAllocatePagesForMdlEx, DISPATCH_LEVEL);
    if (enter(R_MmAllocatePagesForMdlEx))
        return NULL;
    size_t pages = (bytes + PG - 1) / PG;
    pthread_mutex_lock(&W.lock);
    size_t avail = 0;
    for (uint64_t i = 0; i < W.free_pages; i++)
        avail += !W.free_used[i];
    pthread_mutex_unlock(&W.lock);
    if (pages > avail)
        return NULL; /* MM_ALLOCATE_FULLY_REQUIRED: all or nothing */
    PMDL mdl = pool_get(sizeof(MDL) + pages * sizeof(PFN_NUMBER) + sizeof(mdl_extra));
    uint8_t *host = aligned_alloc(PG, pages * PG);
    if (!mdl || !host) {
        if (mdl)
            pool_put(mdl, "MmAllocatePagesForMdlEx");
        free(host);
        return NULL;
    }
    __atomic_add_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
    memset(mdl, 0, sizeof *mdl);
    mdl->ByteCount = (ULONG)(pages * PG);
    mdl->MdlFlags = MDL_PAGES_LOCKED;
    PPFN_NUMBER pfns = MmGetMdlPfnArray(mdl);
    pthread_mutex_lock(&W.lock);
    size_t k = 0;
    for (uint64_t i = 0; i < W.free_pages && k < pages; i++)
        if (!W.free_used[i]) {
            W.free_used[i] = 1;
            pfns[k++] = (PFN_NUMBER)seg_pfn(i);
        }
    pthread_mutex_unlock(&W.lock);
    mdl_extra *x = (mdl_extra *)(void *)(pfns + pages);
    x->host = host;
    x->pages = pages;
    memset(host, 0x5a, pages * PG);
    return mdl;
}

static mdl_extra *extra_of(PMDL mdl)
{
    size_t pages = (mdl->ByteCount + PG - 1) / PG;
    return (mdl_extra *)(void *)(MmGetMdlPfnArray(mdl) + pages);
}

void NTAPI MmFreePagesFromMdl(PMDL mdl)
{
    enter(R_MmFreePagesFromMdl);
    irql_max(R_MmFreePagesFromMdl, DISPATCH_LEVEL);
    mdl_extra *x = extra_of(mdl);
    if (!x->host) {
        violation("MmFreePagesFromMdl: pages already freed");
        return;
    }
    if (mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA)
        violation("MmFreePagesFromMdl: still mapped");
    PPFN_NUMBER pfns = MmGetMdlPfnArray(mdl);
    pthread_mutex_lock(&W.lock);
    for (size_t i = 0; i < x->pages; i++)
        W.free_used[seg_index(pfns[i])] = 0;
    pthread_mutex_unlock(&W.lock);
    free(x->host);
    x->host = NULL;
    __atomic_sub_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
}

PVOID NTAPI MmMapLockedPagesSpecifyCache(PMDL mdl, KPROCESSOR_MODE mode, MEMORY_CACHING_TYPE cache, PVOID base,
                                         ULONG bugcheck, ULONG priority)
{
    (void)cache;
    (void)base;
    irql_max(R_MmMapLockedPagesSpecifyCache, DISPATCH_LEVEL);
    if (mode != KernelMode || bugcheck)
        violation("MmMapLockedPagesSpecifyCache: a user-mode or bug-checking mapping");
    if (!(priority & MdlMappingNoExecute))
        violation("MmMapLockedPagesSpecifyCache: dump buffers mapped executable");
    if (enter(R_MmMapLockedPagesSpecifyCache))
        return NULL;
    mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    mdl->MappedSystemVa = extra_of(mdl)->host;
    return mdl->MappedSystemVa;
}

void NTAPI MmUnmapLockedPages(PVOID va, PMDL mdl)
{
    enter(R_MmUnmapLockedPages);
    irql_max(R_MmUnmapLockedPages, DISPATCH_LEVEL);
    if (!(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA) || mdl->MappedSystemVa != va)
        violation("MmUnmapLockedPages: not this MDL's mapping");
    mdl->MdlFlags &= ~MDL_MAPPED_TO_SYSTEM_VA;
    mdl->MappedSystemVa = NULL;
}

/* ---- system information ---- */

#define MOD_SIZE 0x128u

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint64_t free_pages_now(void)
{
    uint64_t used = 0;
    pthread_mutex_lock(&W.lock);
    for (uint64_t i = 0; i < W.free_pages; i++)
        used += W.free_used[i];
    pthread_mutex_unlock(&W.lock);
    return W.free_total > used ? W.free_total - used : 0;
}

NTSTATUS NTAPI ZwQuerySystemInformation(ULONG cls, PVOID buf, ULONG len, PULONG ret)
{
    irql_max(R_ZwQuerySystemInformation, PASSIVE_LEVEL);
    if (enter(R_ZwQuerySystemInformation))
        return STATUS_INSUFFICIENT_RESOURCES;
    uint8_t *b = buf;
    if (cls == 2) {
        const ULONG need = 0x158;
        if (ret)
            *ret = need;
        if (len < need)
            return STATUS_INFO_LENGTH_MISMATCH;
        memset(b, 0, need);
        put32(b + 0x2C, (uint32_t)free_pages_now());
        return STATUS_SUCCESS;
    }
    if (cls == 11) {
        struct {
            uint64_t base, size;
            const char *path;
        } mods[] = {
            {DIRECT_BASE + W.L.kernel_pfn * PG, W.L.kernel_pages * PG, "\\SystemRoot\\system32\\ntoskrnl.exe"},
            {DIRECT_BASE + W.L.hal_pfn * PG, W.L.hal_pages * PG, "\\SystemRoot\\system32\\HAL.dll"},
            {DIRECT_BASE + (W.other_pfn + 64) * PG, 0x10000, "\\SystemRoot\\system32\\drivers\\livedump.sys"},
        };
        const ULONG need = 8 + 3 * MOD_SIZE;
        if (ret)
            *ret = need;
        if (len < need)
            return STATUS_INFO_LENGTH_MISMATCH;
        memset(b, 0, need);
        put32(b, 3);
        for (int i = 0; i < 3; i++) {
            uint8_t *e = b + 8 + i * MOD_SIZE;
            put64(e + 0x10, mods[i].base);
            put32(e + 0x18, (uint32_t)mods[i].size);
            size_t l = strlen(mods[i].path);
            memcpy(e + 0x28, mods[i].path, l);
            const char *slash = strrchr(mods[i].path, '\\');
            uint16_t off = (uint16_t)(slash + 1 - mods[i].path);
            memcpy(e + 0x26, &off, 2);
        }
        return STATUS_SUCCESS;
    }
    return STATUS_NOT_SUPPORTED;
}

NTSTATUS NTAPI KeInitializeCrashDumpHeader(ULONG type, ULONG flags, PVOID buf, ULONG size, PULONG needed)
{
    if (enter(R_KeInitializeCrashDumpHeader))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (needed)
        *needed = 0x2000;
    if (type != 1)
        return STATUS_INVALID_PARAMETER_1;
    if (flags)
        return STATUS_INVALID_PARAMETER_2;
    if (size < 0x2000)
        return STATUS_INVALID_PARAMETER_4;
    uint8_t *h = buf;
    for (size_t i = 0; i < 0x2000; i += 4)
        memcpy(h + i, "PAGE", 4);
    memcpy(h + 4, "DU64", 4);
    put32(h + 0x8, 15);
    put32(h + 0xC, 26100);
    put64(h + 0x10, W.L.directory_table_base);
    put64(h + 0x18, 0xfffffa8000000000ull);
    put64(h + 0x20, W.L.module_list_va);
    put64(h + 0x28, DIRECT_BASE + W.L.kernel_pfn * PG + 0x1000);
    put32(h + 0x30, 0x8664);
    put32(h + 0x34, W.cfg.cpus);
    put64(h + 0x80, W.L.kdbg_va);
    return STATUS_SUCCESS;
}

static ULONG NTAPI capture_persistent(PCONTEXT ctx, PVOID thread, ULONG code, ULONG_PTR p1, ULONG_PTR p2,
                                      ULONG_PTR p3, ULONG_PTR p4, PVOID buffer)
{
    (void)ctx;
    (void)thread;
    (void)code;
    (void)p1;
    (void)p2;
    (void)p3;
    (void)p4;
    if (enter(R_KeCapturePersistentThreadState))
        return 0;
    uint8_t *b = buffer;
    memset(b, 0, 0x40000);
    memcpy(b, "PAGEDU64", 8);
    put32(b + 0xF98, 4); /* a triage dump */
    put32(b + 0x2000 + 0x70, 0x2080);
    put32(b + 0x2000 + 0x74, W.L.kdbg_size);
    memcpy(b + 0x2080, W.L.kdbg_decoded, W.L.kdbg_size);
    return 0x40000;
}

PVOID NTAPI MmGetSystemRoutineAddress(PUNICODE_STRING name)
{
    irql_max(R_MmGetSystemRoutineAddress, PASSIVE_LEVEL);
    if (enter(R_MmGetSystemRoutineAddress))
        return NULL;
    if (!W.cfg.no_persistent_state && name && name->Buffer && !wcscmp(name->Buffer, L"KeCapturePersistentThreadState"))
        return (PVOID)(uintptr_t)capture_persistent;
    return NULL;
}

/* ---- a processor's state ---- */

void NTAPI RtlCaptureContext(PCONTEXT c)
{
    enter(R_RtlCaptureContext);
    irql_max(R_RtlCaptureContext, DISPATCH_LEVEL);
    int p = t_cpu >= 0 ? t_cpu : 0;
    memset(c, 0, sizeof *c);
    c->ContextFlags = 0x10000F;
    c->MxCsr = 0x1f80;
    c->SegCs = 0x10;
    c->SegSs = 0x18;
    c->SegDs = c->SegEs = c->SegGs = 0x2b;
    c->SegFs = 0x53;
    c->EFlags = 0x202;
    c->Rax = 0xA000 + (ULONG64)p;
    c->Rbx = 0xB000 + (ULONG64)p;
    c->Rsp = STACK_WINDOW + (uint64_t)p * STACK_WINDOW_STRIDE + STACK_PAGES * PG - 0x100;
    c->Rip = DIRECT_BASE + W.L.kernel_pfn * PG + 0x2000 + 0x40 * (uint64_t)p;
}

void ldn_read_cpu_regs(ldn_cpu_regs *r)
{
    if (t_cpu < 0)
        violation("control registers read by a thread on no processor");
    int p = t_cpu >= 0 ? t_cpu : 0;
    memset(r, 0, sizeof *r);
    r->cr0 = 0x80050033ull;
    /* a system thread runs in the System process: its page directory */
    r->cr3 = t_is_proc ? W.L.cr3_pfn[p] * PG : W.L.pml4_pfn * PG;
    r->cr4 = 0x350ef8ull;
    r->cr8 = (uint64_t)t_irql;
    r->gdtr_base = 0xfffff80010000000ull + (uint64_t)p * 0x1000;
    r->gdtr_limit = 0x57;
    r->idtr_base = 0xfffff80010100000ull + (uint64_t)p * 0x1000;
    r->idtr_limit = 0xfff;
    r->tr = 0x40;
    r->cs = 0x10;
    r->ss = 0x18;
    r->ds = r->es = r->gs = 0x2b;
    r->fs = 0x53;
    r->gs_base = DIRECT_BASE + W.L.kpcr_pfn[p] * PG;
    r->mxcsr = 0x1f80;
}

void NTAPI IoGetStackLimits(PULONG_PTR low, PULONG_PTR high)
{
    enter(R_IoGetStackLimits); /* any IRQL (since Windows Server 2003 SP1) */
    int p = t_cpu >= 0 ? t_cpu : 0;
    *low = STACK_WINDOW + (uint64_t)p * STACK_WINDOW_STRIDE;
    *high = *low + STACK_PAGES * PG;
}

HANDLE NTAPI PsGetCurrentThreadId(void)
{
    if (enter(R_PsGetCurrentThreadId))
        return NULL;
    return (HANDLE)(uintptr_t)t_thread_id;
}

/* ---- fast mutex ---- */

void NTAPI ExInitializeFastMutex(PFAST_MUTEX m)
{
    enter(R_ExInitializeFastMutex);
    m->standin_lock = 0;
    m->OldIrql = 0;
}

void NTAPI ExAcquireFastMutex(PFAST_MUTEX m)
{
    enter(R_ExAcquireFastMutex);
    irql_max(R_ExAcquireFastMutex, APC_LEVEL);
    while (__atomic_exchange_n(&m->standin_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    m->OldIrql = (ULONG)t_irql;
    set_irql(APC_LEVEL);
}

void NTAPI ExReleaseFastMutex(PFAST_MUTEX m)
{
    enter(R_ExReleaseFastMutex);
    if (t_irql != APC_LEVEL)
        violation("ExReleaseFastMutex at IRQL %d", t_irql);
    set_irql((int)m->OldIrql);
    __atomic_store_n(&m->standin_lock, 0, __ATOMIC_RELEASE);
}

/* ---- handles: files and threads ---- */

#define FILE_MAGIC 0x656c6966u
#define THREAD_MAGIC 0x64726874u

typedef struct sfile {
    uint32_t magic;
    int fd;
} sfile;

typedef struct sthread {
    uint32_t magic;
    pthread_t t;
    PKSTART_ROUTINE start;
    PVOID ctx;
    int refs;        /* atomic */
    bool joined;
} sthread;

void *standin_file_handle(int fd)
{
    sfile *f = calloc(1, sizeof *f);
    f->magic = FILE_MAGIC;
    f->fd = fd;
    return f;
}

void standin_file_handle_free(void *h)
{
    free(h);
}

static sfile *as_file(HANDLE h, const char *who)
{
    sfile *f = h;
    if (!f || f->magic != FILE_MAGIC) {
        violation("%s: not a file handle", who);
        return NULL;
    }
    return f;
}

NTSTATUS NTAPI ZwWriteFile(HANDLE file, HANDLE event, PVOID apc, PVOID apc_ctx, PIO_STATUS_BLOCK iosb, PVOID buf,
                           ULONG len, PLARGE_INTEGER offset, PULONG key)
{
    (void)event;
    (void)apc;
    (void)apc_ctx;
    (void)key;
    irql_max(R_ZwWriteFile, PASSIVE_LEVEL);
    if (enter(R_ZwWriteFile))
        return STATUS_DISK_FULL;
    sfile *f = as_file(file, "ZwWriteFile");
    if (!f || !offset)
        return STATUS_INVALID_PARAMETER;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(f->fd, (uint8_t *)buf + done, len - done, (off_t)offset->QuadPart + (off_t)done);
        if (n <= 0)
            return STATUS_DISK_FULL;
        done += (size_t)n;
    }
    iosb->Status = STATUS_SUCCESS;
    iosb->Information = done;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ZwSetInformationFile(HANDLE file, PIO_STATUS_BLOCK iosb, PVOID info, ULONG len, int cls)
{
    irql_max(R_ZwSetInformationFile, PASSIVE_LEVEL);
    if (enter(R_ZwSetInformationFile))
        return STATUS_INSUFFICIENT_RESOURCES;
    sfile *f = as_file(file, "ZwSetInformationFile");
    if (!f || cls != FileEndOfFileInformation || len < sizeof(FILE_END_OF_FILE_INFORMATION))
        return STATUS_INVALID_PARAMETER;
    const FILE_END_OF_FILE_INFORMATION *e = info;
    if (ftruncate(f->fd, (off_t)e->EndOfFile.QuadPart) != 0)
        return STATUS_DISK_FULL;
    iosb->Status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ZwFlushBuffersFile(HANDLE file, PIO_STATUS_BLOCK iosb)
{
    irql_max(R_ZwFlushBuffersFile, PASSIVE_LEVEL);
    if (enter(R_ZwFlushBuffersFile))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (!as_file(file, "ZwFlushBuffersFile"))
        return STATUS_INVALID_PARAMETER;
    iosb->Status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

static void *thread_main(void *arg)
{
    sthread *t = arg;
    t_irql = PASSIVE_LEVEL;
    t_cpu = -1;
    t_is_proc = false;
    t_thread_id = 0x200;
    t->start(t->ctx);
    if (t_cpu >= 0 || t_irql != PASSIVE_LEVEL)
        violation("system thread ended at IRQL %d, on processor %d", t_irql, t_cpu);
    return NULL;
}

NTSTATUS NTAPI PsCreateSystemThread(PHANDLE thread, ULONG access, PVOID attributes, HANDLE process, PVOID client_id,
                                    PKSTART_ROUTINE start, PVOID context)
{
    (void)access;
    (void)process;
    (void)client_id;
    irql_max(R_PsCreateSystemThread, PASSIVE_LEVEL);
    const OBJECT_ATTRIBUTES *oa = attributes;
    if (!oa || !(oa->Attributes & OBJ_KERNEL_HANDLE))
        violation("PsCreateSystemThread without OBJ_KERNEL_HANDLE: the handle lands in the caller's process");
    if (enter(R_PsCreateSystemThread))
        return STATUS_INSUFFICIENT_RESOURCES;
    sthread *t = calloc(1, sizeof *t);
    t->magic = THREAD_MAGIC;
    t->start = start;
    t->ctx = context;
    t->refs = 1;
    if (pthread_create(&t->t, NULL, thread_main, t) != 0) {
        free(t);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    __atomic_add_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
    *thread = t;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI PsTerminateSystemThread(NTSTATUS status)
{
    (void)status;
    enter(R_PsTerminateSystemThread);
    if (t_cpu >= 0 || t_irql != PASSIVE_LEVEL)
        violation("PsTerminateSystemThread at IRQL %d, on processor %d", t_irql, t_cpu);
    pthread_exit(NULL);
}

static sthread *as_thread(PVOID h, const char *who)
{
    sthread *t = h;
    if (!t || t->magic != THREAD_MAGIC) {
        violation("%s: not a thread", who);
        return NULL;
    }
    return t;
}

static void join(sthread *t)
{
    if (!t->joined) {
        pthread_join(t->t, NULL);
        t->joined = true;
    }
}

static void unref(sthread *t)
{
    if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        join(t);
        t->magic = 0;
        free(t);
        __atomic_sub_fetch(&W.outstanding, 1, __ATOMIC_RELAXED);
    }
}

NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE h, ACCESS_MASK access, PVOID type, KPROCESSOR_MODE mode, PVOID *object,
                                         PVOID info)
{
    (void)access;
    (void)type;
    (void)mode;
    (void)info;
    irql_max(R_ObReferenceObjectByHandle, PASSIVE_LEVEL);
    if (enter(R_ObReferenceObjectByHandle))
        return STATUS_INSUFFICIENT_RESOURCES;
    sthread *t = as_thread(h, "ObReferenceObjectByHandle");
    if (!t)
        return STATUS_INVALID_PARAMETER;
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
    *object = t;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI KeWaitForSingleObject(PVOID object, int reason, KPROCESSOR_MODE mode, BOOLEAN alertable,
                                     PLARGE_INTEGER timeout)
{
    (void)reason;
    (void)mode;
    (void)alertable;
    enter(R_KeWaitForSingleObject);
    irql_max(R_KeWaitForSingleObject, timeout ? DISPATCH_LEVEL : APC_LEVEL);
    sthread *t = as_thread(object, "KeWaitForSingleObject");
    if (t)
        join(t);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ZwWaitForSingleObject(HANDLE h, BOOLEAN alertable, PLARGE_INTEGER timeout)
{
    (void)alertable;
    (void)timeout;
    enter(R_ZwWaitForSingleObject);
    irql_max(R_ZwWaitForSingleObject, PASSIVE_LEVEL);
    sthread *t = as_thread(h, "ZwWaitForSingleObject");
    if (t)
        join(t);
    return STATUS_SUCCESS;
}

void NTAPI ObDereferenceObject(PVOID object)
{
    enter(R_ObDereferenceObject);
    sthread *t = as_thread(object, "ObDereferenceObject");
    if (t)
        unref(t);
}

NTSTATUS NTAPI ZwClose(HANDLE h)
{
    enter(R_ZwClose);
    irql_max(R_ZwClose, PASSIVE_LEVEL);
    sthread *t = as_thread(h, "ZwClose");
    if (t)
        unref(t);
    return STATUS_SUCCESS;
}

/* ---- the processors ---- */

static void write64(uint64_t pfn, uint64_t off, uint64_t v)
{
    __atomic_store_n((uint64_t *)(void *)(ram(pfn) + off), v, __ATOMIC_RELAXED);
}

/* One step of processor p's workload: its probe, then a write elsewhere. */
static void work(int p)
{
    proc *c = &W.cpu[p];
    c->seq++;
    write64(W.L.probe_a_pfn, W.L.probe_a_offset + 8u * (uint64_t)p, c->seq);
    write64(W.L.stack_pfn[p] + W.L.stack_pages[p] - 1, W.L.probe_b_offset, c->seq);
    uint64_t page = W.other_pfn + 32 + (c->seq * 7 + (uint64_t)p * 131) % (W.other_pages - 64);
    write64(page, (c->seq % 500) * 8, c->seq ^ 0x5555);
}

static void *proc_main(void *arg)
{
    int p = (int)(intptr_t)arg;
    proc *c = &W.cpu[p];
    t_is_proc = true;
    t_thread_id = 0x1000 + 4u * (uint64_t)p;
    while (!__atomic_load_n(&W.stop, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&c->token);
        t_cpu = p;
        t_irql = PASSIVE_LEVEL;
        __atomic_store_n(&c->irql, 0, __ATOMIC_RELEASE);
        take_ipis(p);
        pthread_mutex_lock(&W.lock);
        bool queued = c->head != NULL;
        pthread_mutex_unlock(&W.lock);
        uint64_t stall = queued ? __atomic_exchange_n(&c->stall_ns, 0, __ATOMIC_ACQ_REL) : 0;
        if (stall)
            sleep_ns(stall); /* stuck with interrupts off: no DPC, no IPI */
        KDPC *d = pop_dpc(p);
        if (d) {
            t_in_dpc = true;
            set_irql(DISPATCH_LEVEL);
            d->DeferredRoutine(d, d->DeferredContext, d->SystemArgument1, d->SystemArgument2);
            if (t_irql != DISPATCH_LEVEL)
                violation("DPC returned at IRQL %d", t_irql);
            set_irql(PASSIVE_LEVEL);
            t_in_dpc = false;
            __atomic_store_n(&c->in_dpc, 0, __ATOMIC_RELEASE);
        } else if (W.cfg.workload && !__atomic_load_n(&W.paused, __ATOMIC_ACQUIRE)) {
            work(p);
        }
        t_cpu = -1;
        pthread_mutex_unlock(&c->token);
        if (!d) {
            pthread_mutex_lock(&W.lock);
            if (!c->head && !__atomic_load_n(&W.stop, __ATOMIC_ACQUIRE) &&
                __atomic_load_n(&c->flush_ack, __ATOMIC_ACQUIRE) == __atomic_load_n(&c->flush_req, __ATOMIC_ACQUIRE)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 200000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&c->wake, &W.lock, &ts);
            }
            pthread_mutex_unlock(&W.lock);
        }
    }
    return NULL;
}

/* ---- building the world ---- */

static bool find_kind(const ld_kind_range *k, size_t n, ld_page_kind kind, uint64_t *pfn, uint64_t *pages)
{
    for (size_t i = 0; i < n; i++)
        if (k[i].kind == (uint32_t)kind) {
            *pfn = k[i].first_pfn;
            *pages = k[i].page_count;
            return true;
        }
    return false;
}

static void zero_page(uint64_t pfn)
{
    memset(ram(pfn), 0, PG);
}

static void build_tables(uint64_t t0, uint64_t count)
{
    standin_layout *L = &W.L;
    uint64_t t[9];
    for (int i = 0; i < 9; i++) {
        t[i] = t0 + (uint64_t)i;
        zero_page(t[i]);
    }
    (void)count;
    const uint64_t P = 0x3; /* present, writable */
    write64(t[0], 8 * 256, t[1] << 12 | P);                 /* kernel half: PDPT A */
    write64(t[0], 8 * 0x1ED, t[0] << 12 | P);               /* the self-map */
    write64(t[0], 8 * 300, t[7] << 12 | P);                 /* PDPT B */
    write64(t[0], 8 * 257, 0xA0ull << 12 | P);              /* device memory: not RAM */
    write64(t[0], 8 * 10, t[8] << 12 | P);                  /* user half: not walked */
    write64(t[1], 0, t[2] << 12 | P);                       /* PD A */
    write64(t[1], 8, 0x40000ull << 12 | P | 0x80);          /* a 1 GiB page */
    for (int i = 0; i < 4; i++)
        write64(t[2], 8u * (uint64_t)i, t[3 + i] << 12 | P); /* four page tables */
    write64(t[2], 8 * 4, 0x200ull << 12 | P | 0x80);        /* a 2 MiB page */
    write64(t[7], 0, 0x80000ull << 12 | P | 0x80);          /* a 1 GiB page */
    L->pml4_pfn = t[0];
    L->table_count = 8;
    for (int i = 0; i < 8; i++)
        L->table_pfns[i] = t[i];
    L->directory_table_base = t[0] << 12 | 0x2; /* low bits: a PCID, masked by a reader */
}

static void build_kdbg(uint64_t pfn)
{
    standin_layout *L = &W.L;
    L->kdbg_size = sizeof L->kdbg_decoded;
    L->kdbg_va = DIRECT_BASE + pfn * PG + 0x400;
    L->kdbg_pa = pfn * PG + 0x400;
    uint8_t *d = L->kdbg_decoded;
    for (uint32_t i = 0; i < L->kdbg_size; i++)
        d[i] = (uint8_t)(i * 13 + 7);
    memset(d, 0, 0x10);
    memcpy(d + 0x10, "KDBG", 4);
    put32(d + 0x14, L->kdbg_size);
    put64(d + 0x18, DIRECT_BASE + L->kernel_pfn * PG);
    put64(d + 0x48, L->module_list_va);
    /* memory keeps it encoded: no "KDBG" to be found there */
    uint8_t *m = ram(pfn) + 0x400;
    for (uint32_t i = 0; i < L->kdbg_size; i++)
        m[i] = (uint8_t)(d[i] ^ 0xA5 ^ (uint8_t)(i >> 3));
}

static void build_modules(uint64_t m0, uint64_t pages)
{
    standin_layout *L = &W.L;
    (void)pages;
    uint64_t head = DIRECT_BASE + m0 * PG + 0x100;
    uint64_t e1 = DIRECT_BASE + (m0 + 1) * PG, e2 = DIRECT_BASE + (m0 + 2) * PG + 0x200,
             e3 = DIRECT_BASE + (m0 + 3) * PG + 0x40;
    write64(m0, 0x100, e1);
    write64(m0, 0x108, e3);
    write64(m0 + 1, 0, e2);
    write64(m0 + 2, 0x200, e3);
    write64(m0 + 3, 0x40, head);
    L->module_list_va = head;
    for (int i = 0; i < 4; i++)
        L->module_entry_pfns[i] = m0 + (uint64_t)i;
}

void standin_config_init(standin_config *c)
{
    memset(c, 0, sizeof *c);
    c->memory_bytes = 64ull << 20;
    c->cpus = 4;
    c->workload = true;
    c->clock_watchdog_ns = 187500000ull;
    c->dpc_watchdog_ns = 20000000000ull;
}

int standin_start(const standin_config *cfg)
{
    memset(&W, 0, sizeof W);
    W.cfg = *cfg;
    if (W.cfg.cpus < 2 || W.cfg.cpus > STANDIN_MAX_CPUS || W.cfg.leader >= W.cfg.cpus)
        return -1;
    pthread_mutex_init(&W.lock, NULL);
    ld_sim_config sc;
    ld_sim_config_init(&sc);
    sc.memory_bytes = W.cfg.memory_bytes;
    sc.cpus = W.cfg.cpus;
    sc.hot_set_bytes = 4ull << 20;
    sc.seed = 11;
    sc.secure_kernel = W.cfg.secure_kernel;
    if (ld_sim_create(&sc, &W.sim) != LD_STATUS_SUCCESS)
        return -1;
    ld_sim_pause(W.sim, true); /* its own vCPUs write nothing: ours do */
    const ld_hal *h = ld_sim_hal(W.sim);
    W.range_count = 8;
    if (h->mem_ranges(h->ctx, W.ranges, &W.range_count) != LD_STATUS_SUCCESS)
        return -1;
    W.max_pfn = W.ranges[W.range_count - 1].first_pfn + W.ranges[W.range_count - 1].page_count;
    ld_kind_range kinds[64];
    size_t nk = 64;
    if (h->mem_kinds(h->ctx, kinds, &nk) != LD_STATUS_SUCCESS)
        return -1;
    standin_layout *L = &W.L;
    uint64_t pages, dbg, mods, mods_pages, pcr, tables, tables_pages, stacks, stacks_pages;
    if (!find_kind(kinds, nk, LD_PAGE_KERNEL_IMAGE, &L->kernel_pfn, &L->kernel_pages) ||
        !find_kind(kinds, nk, LD_PAGE_HAL_IMAGE, &L->hal_pfn, &L->hal_pages) ||
        !find_kind(kinds, nk, LD_PAGE_DEBUGGER_DATA, &dbg, &pages) ||
        !find_kind(kinds, nk, LD_PAGE_LOADED_MODULES, &mods, &mods_pages) || mods_pages < 4 ||
        !find_kind(kinds, nk, LD_PAGE_SHARED_USER_DATA, &L->shared_data_pfn, &pages) ||
        !find_kind(kinds, nk, LD_PAGE_PROCESSOR_BLOCKS, &pcr, &pages) ||
        !find_kind(kinds, nk, LD_PAGE_PAGE_TABLES, &tables, &tables_pages) || tables_pages < 25 ||
        !find_kind(kinds, nk, LD_PAGE_KERNEL_STACKS, &stacks, &stacks_pages) ||
        !find_kind(kinds, nk, LD_PAGE_KERNEL_OTHER, &W.other_pfn, &W.other_pages))
        return -1;
    if (W.cfg.secure_kernel && !find_kind(kinds, nk, LD_PAGE_SECURE_KERNEL, &L->secure_pfn, &L->secure_pages))
        return -1;
    for (size_t i = 0; i < nk && W.seg_count < 39; i++) {
        if (kinds[i].kind != LD_PAGE_FREE && kinds[i].kind != LD_PAGE_ZERO)
            continue;
        W.free_total += kinds[i].page_count;
        W.seg_first[W.seg_count] = kinds[i].first_pfn;
        W.seg_pages[W.seg_count++] = kinds[i].page_count;
        W.free_pages += kinds[i].page_count;
    }
    /* free pages hold what they held last: stale bytes, not zeros */
    for (size_t g = 0; g < W.seg_count; g++)
        for (uint64_t i = 0; i < W.seg_pages[g]; i++)
            memset(ram(W.seg_first[g] + i), 0xF0 | (int)((W.seg_first[g] + i) & 0xF), PG);
    W.seg_first[W.seg_count] = W.max_pfn + 0x10000;
    W.seg_pages[W.seg_count++] = W.max_pfn; /* room for a dump of every page */
    W.free_pages += W.max_pfn;
    W.free_used = calloc(W.free_pages ? W.free_pages : 1, 1);
    build_tables(tables + 16, tables_pages - 16); /* clear of the KPCR windows */
    build_modules(mods, mods_pages);
    build_kdbg(dbg);
    L->probe_a_pfn = W.other_pfn;
    L->probe_a_offset = 0x800;
    L->probe_b_offset = 0x800;
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        L->kpcr_pfn[p] = pcr + p;
        W.stack_base_pfn[p] = stacks + 6ull * W.cfg.cpus + 16ull * p;
        L->stack_pfn[p] = W.stack_base_pfn[p] + 2; /* the run with the top page */
        L->stack_pages[p] = STACK_PAGES - 2;
        L->cr3_pfn[p] = W.other_pfn + 16 + p;
        write64(L->probe_a_pfn, L->probe_a_offset + 8ull * p, 0);
        write64(L->stack_pfn[p] + L->stack_pages[p] - 1, L->probe_b_offset, 0);
    }
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        pthread_mutex_init(&W.cpu[p].token, NULL);
        pthread_cond_init(&W.cpu[p].wake, NULL);
    }
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        if (pthread_create(&W.cpu[p].thread, NULL, proc_main, (void *)(intptr_t)p) != 0)
            return -1;
        W.cpu[p].started = true;
    }
    return 0;
}

void standin_stop(void)
{
    __atomic_store_n(&W.stop, 1, __ATOMIC_RELEASE);
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        pthread_mutex_lock(&W.lock);
        pthread_cond_signal(&W.cpu[p].wake);
        pthread_mutex_unlock(&W.lock);
    }
    for (uint32_t p = 0; p < W.cfg.cpus; p++)
        if (W.cpu[p].started)
            pthread_join(W.cpu[p].thread, NULL);
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        pthread_mutex_destroy(&W.cpu[p].token);
        pthread_cond_destroy(&W.cpu[p].wake);
    }
    for (size_t i = 0; i < 16; i++)
        if (W.maps[i].used)
            munmap(W.maps[i].va, W.maps[i].bytes);
    free(W.free_used);
    ld_sim_destroy(W.sim);
    pthread_mutex_destroy(&W.lock);
    W.sim = NULL;
}

ld_sim *standin_sim(void)
{
    return W.sim;
}

const standin_layout *standin_layout_get(void)
{
    return &W.L;
}

/* ---- faults and observation ---- */

const char *const *standin_routines(void)
{
    return names;
}

static int routine_id(const char *name)
{
    for (int i = 0; i < R_COUNT; i++)
        if (!strcmp(names[i], name))
            return i;
    fprintf(stderr, "standin: no routine %s\n", name);
    abort();
}

void standin_fault(const char *routine, uint64_t nth, bool repeat, uint64_t stall_ns)
{
    int id = routine_id(routine);
    fault *f = &W.faults[id];
    uint64_t now = __atomic_load_n(&W.calls[id], __ATOMIC_ACQUIRE);
    __atomic_store_n(&f->trigger, 0, __ATOMIC_RELEASE);
    f->repeat = repeat;
    f->stall_only = false;
    f->stall_ns = stall_ns;
    __atomic_store_n(&f->trigger, now + nth, __ATOMIC_RELEASE);
}

void standin_stall(const char *routine, uint64_t nth, uint64_t stall_ns)
{
    int id = routine_id(routine);
    fault *f = &W.faults[id];
    uint64_t now = __atomic_load_n(&W.calls[id], __ATOMIC_ACQUIRE);
    __atomic_store_n(&f->trigger, 0, __ATOMIC_RELEASE);
    f->repeat = false;
    f->stall_only = true;
    f->stall_ns = stall_ns;
    __atomic_store_n(&f->trigger, now + nth, __ATOMIC_RELEASE);
}

void standin_clear_faults(void)
{
    for (int i = 0; i < R_COUNT; i++)
        __atomic_store_n(&W.faults[i].trigger, 0, __ATOMIC_RELEASE);
}

uint64_t standin_calls(const char *routine)
{
    return __atomic_load_n(&W.calls[routine_id(routine)], __ATOMIC_ACQUIRE);
}

uint64_t standin_faults_fired(const char *routine)
{
    return __atomic_load_n(&W.fired[routine_id(routine)], __ATOMIC_ACQUIRE);
}

void standin_reset_calls(void)
{
    for (int i = 0; i < R_COUNT; i++) {
        __atomic_store_n(&W.calls[i], 0, __ATOMIC_RELEASE);
        __atomic_store_n(&W.fired[i], 0, __ATOMIC_RELEASE);
    }
}

void standin_stall_processor(uint32_t cpu, uint64_t ns)
{
    __atomic_store_n(&W.cpu[cpu].stall_ns, ns, __ATOMIC_RELEASE);
}

uint64_t standin_violations(void)
{
    return __atomic_load_n(&W.violations, __ATOMIC_ACQUIRE);
}

const char *standin_last_violation(void)
{
    return W.last_violation;
}

void standin_reset_violations(void)
{
    __atomic_store_n(&W.violations, 0, __ATOMIC_RELEASE);
    W.last_violation[0] = 0;
}

int64_t standin_outstanding(void)
{
    int64_t live = 0;
    for (size_t i = 0; i < 16; i++)
        live += W.maps[i].mapped;
    return __atomic_load_n(&W.outstanding, __ATOMIC_ACQUIRE) + live;
}

bool standin_corralled(void)
{
    if (dpcs_pending())
        return true;
    for (uint32_t p = 0; p < W.cfg.cpus; p++)
        if (__atomic_load_n(&W.cpu[p].held, __ATOMIC_ACQUIRE) || __atomic_load_n(&W.cpu[p].irql, __ATOMIC_ACQUIRE))
            return true;
    return false;
}

uint64_t standin_max_dispatch_ns(uint32_t cpu)
{
    return __atomic_load_n(&W.cpu[cpu].max_disp, __ATOMIC_RELAXED);
}

uint64_t standin_max_clock_masked_ns(uint32_t cpu)
{
    return __atomic_load_n(&W.cpu[cpu].max_clock, __ATOMIC_RELAXED);
}

void standin_reset_times(void)
{
    for (uint32_t p = 0; p < W.cfg.cpus; p++) {
        __atomic_store_n(&W.cpu[p].max_disp, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&W.cpu[p].max_clock, 0, __ATOMIC_RELAXED);
    }
}

void standin_pause(bool paused)
{
    __atomic_store_n(&W.paused, paused, __ATOMIC_RELEASE);
    /* a processor in the middle of a step finishes it under its token */
    for (uint32_t p = 0; paused && p < W.cfg.cpus; p++) {
        pthread_mutex_lock(&W.cpu[p].token);
        pthread_mutex_unlock(&W.cpu[p].token);
    }
}
