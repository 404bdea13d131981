/* The stop: every other processor parked in a DPC while this one (the
 * leader) runs the engine's callback.
 *
 * Why DPCs and not KeIpiGenericCall: an IPI worker runs at IPI_LEVEL,
 * where no kernel routine may be called, so the leader could not map a
 * page to copy it. With DPCs the leader stays at DISPATCH_LEVEL, where
 * MmMapLockedPagesWithReservedMapping and MmUnmapReservedMapping are
 * allowed. The DPCs are the documented KeInitializeDpc /
 * KeSetTargetProcessorDpcEx / KeInsertQueueDpc (KeGenericCallDpc does the
 * same but is not documented).
 *
 * The four steps of events 121/165, each carried out by every parked
 * processor and acknowledged, then timed by the leader:
 *   disable interrupts     raise to SYNCH_LEVEL: device interrupts held
 *   save supervisor state  registers (RtlCaptureContext was taken on arrival,
 *                          at DISPATCH_LEVEL where it is allowed), control
 *                          and descriptor registers, the current stack
 *   suspend clock timer    raise to CLOCK_LEVEL: clock interrupts held
 * and their inverses in reverse order. IPIs (IPI_LEVEL) still reach the
 * parked processors: the TLB flush of every unmap needs them.
 *
 * The budget: the stop ends by LD_NT_STOP_BUDGET_*: the leader waits for
 * the processors at most that long (a processor that does not come makes
 * it STATUS_TIMEOUT), every page read checks it (STATUS_IO_TIMEOUT once
 * spent), and a parked processor leaves by itself after
 * LDN_FAILSAFE_BUDGETS budgets whatever the leader does. On arrival each
 * processor reads its DPC watchdog (KeQueryDpcWatchdogInformation, only
 * meaningful inside a DPC): one with less than half of either allowance
 * left is not kept parked. The clock watchdog cannot be read: the budget
 * is its guard (docs/windows.md). */
#include "nt_internal.h"

static uint32_t load(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void inc(uint32_t *p)
{
    __atomic_add_fetch(p, 1, __ATOMIC_ACQ_REL);
}

static void dec(uint32_t *p)
{
    __atomic_sub_fetch(p, 1, __ATOMIC_ACQ_REL);
}

/* Percent of an allowance left; 100 when the watchdog is off. */
static uint32_t percent_left(ULONG limit, ULONG count)
{
    if (!limit)
        return 100;
    if (count >= limit)
        return 100;
    return (uint32_t)((uint64_t)count * 100 / limit);
}

/* The current stack's frames that are physically one run with its top
 * page (a kernel stack is virtually, not physically, contiguous). */
static void find_stack(ldn_cpu *c)
{
    ULONG_PTR low = 0, high = 0;
    IoGetStackLimits(&low, &high);
    c->stack_low = low;
    c->stack_high = high;
    c->stack_pfn = c->stack_pages = 0;
    if (high <= low || high - low > (64u << 20))
        return;
    uint64_t top = (high - 1) & ~(uint64_t)(LDN_PAGE - 1);
    PHYSICAL_ADDRESS pa = MmGetPhysicalAddress((PVOID)(ULONG_PTR)top);
    if (!pa.QuadPart)
        return;
    uint64_t pfn = (uint64_t)pa.QuadPart / LDN_PAGE, pages = 1;
    while (top - pages * LDN_PAGE >= (low & ~(uint64_t)(LDN_PAGE - 1)) && pages < 64) {
        PHYSICAL_ADDRESS below = MmGetPhysicalAddress((PVOID)(ULONG_PTR)(top - pages * LDN_PAGE));
        if ((uint64_t)below.QuadPart / LDN_PAGE != pfn - pages || !below.QuadPart)
            break;
        pages++;
    }
    c->stack_pfn = pfn - (pages - 1);
    c->stack_pages = pages;
}

/* What a processor records on arrival (DISPATCH_LEVEL). */
static void on_arrival(ldn_cpu *c)
{
    RtlCaptureContext(c->context);
    find_stack(c);
    c->thread_id = (uint64_t)(ULONG_PTR)PsGetCurrentThreadId();
}

static void save_state(ldn_cpu *c)
{
    ldn_read_cpu_regs(&c->regs);
    c->saved = true;
}

/* The parked processor's DPC. arg1 carries the stop's generation: a DPC
 * that runs late, after its stop was given up, leaves at once. */
static void NTAPI park(PKDPC dpc, PVOID context, PVOID arg1, PVOID arg2)
{
    (void)dpc;
    (void)arg2;
    ldn *n = context;
    uint32_t gen = (uint32_t)(ULONG_PTR)arg1;
    PROCESSOR_NUMBER pn;
    ULONG self = KeGetCurrentProcessorNumberEx(&pn);
    if (self >= n->cpus || load(&n->gen) != gen || load(&n->cmd) == LDN_CMD_RELEASE) {
        dec(&n->in_flight);
        return;
    }
    ldn_cpu *c = &n->cpu[self];
    KDPC_WATCHDOG_INFORMATION wd;
    memset(&wd, 0, sizeof wd);
    uint32_t pct = 100;
    if (NT_SUCCESS(KeQueryDpcWatchdogInformation(&wd))) {
        uint32_t a = percent_left(wd.DpcTimeLimit, wd.DpcTimeCount);
        uint32_t b = percent_left(wd.DpcWatchdogLimit, wd.DpcWatchdogCount);
        pct = a < b ? a : b;
    }
    c->dpc_percent = pct;
    on_arrival(c);
    uint64_t t0 = ldn_now_ns();
    inc(&n->arrived);

    KIRQL entry = KeGetCurrentIrql(), old;
    uint32_t done = LDN_CMD_PARK;
    for (;;) {
        uint32_t cmd = load(&n->cmd);
        if (load(&n->gen) != gen || cmd == LDN_CMD_RELEASE)
            break;
        if (ldn_now_ns() - t0 > n->failsafe_ns) {
            inc(&n->escaped); /* the leader is gone too long: leave, and say so */
            break;
        }
        if (cmd != done) {
            switch (cmd) {
            case LDN_CMD_DISABLE_INTERRUPTS:
                KeRaiseIrql(SYNCH_LEVEL, &old);
                break;
            case LDN_CMD_SAVE_STATE:
                save_state(c);
                break;
            case LDN_CMD_SUSPEND_CLOCK:
                KeRaiseIrql(CLOCK_LEVEL, &old);
                break;
            case LDN_CMD_RESUME_CLOCK:
                KeLowerIrql(SYNCH_LEVEL);
                break;
            case LDN_CMD_ENABLE_INTERRUPTS:
                KeLowerIrql(entry);
                break;
            default:
                break;
            }
            done = cmd;
            store(&c->acked, cmd);
        }
        YieldProcessor();
    }
    if (KeGetCurrentIrql() != entry)
        KeLowerIrql(entry);
    c->parked_ns = ldn_now_ns() - t0;
    inc(&n->departed);
    dec(&n->in_flight); /* the last touch of our state: unload waits for it */
}

ld_status ldn_corral_open(ldn *n)
{
    n->cpus = KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS);
    if (!n->cpus || n->cpus > 4096)
        return LD_STATUS_NOT_SUPPORTED;
    n->cpu = ldn_zalloc(n->cpus * sizeof *n->cpu);
    /* CONTEXT must be 16-byte aligned: one block, aligned by hand */
    n->context_mem = ldn_zalloc(n->cpus * sizeof(CONTEXT) + 16);
    if (!n->cpu || !n->context_mem)
        return LD_STATUS_NO_MEMORY;
    uint8_t *ctx = (uint8_t *)(((ULONG_PTR)n->context_mem + 15) & ~(ULONG_PTR)15);
    for (uint32_t i = 0; i < n->cpus; i++) {
        ldn_cpu *c = &n->cpu[i];
        c->context = (CONTEXT *)(void *)(ctx + (size_t)i * sizeof(CONTEXT));
        NTSTATUS s = KeGetProcessorNumberFromIndex(i, &c->number);
        if (!NT_SUCCESS(s))
            return ldn_status(s);
        KeInitializeDpc(&c->dpc, park, n);
        s = KeSetTargetProcessorDpcEx(&c->dpc, &c->number);
        if (!NT_SUCCESS(s))
            return ldn_status(s);
        KeSetImportanceDpc(&c->dpc, HighImportance);
    }
    n->stats.processors = n->cpus;
    return LD_STATUS_SUCCESS;
}

void ldn_corral_close(ldn *n)
{
    /* A DPC of a stop given up may still be queued or running, and even
     * one that has left our loop is still returning through our code:
     * wait until every queued DPC has returned before the memory (and
     * the driver's image) goes. */
    if (n->cpu)
        KeFlushQueuedDpcs();
    ldn_free(n->cpu);
    ldn_free(n->context_mem);
}

uint32_t ldn_cpu_count(void *ctx)
{
    return ((ldn *)ctx)->cpus;
}

ld_status ldn_stop_check(ldn *n)
{
    if (load(&n->escaped) || ldn_now_ns() > n->deadline_ns)
        return LD_STATUS_IO_TIMEOUT;
    return LD_STATUS_SUCCESS;
}

/* Tell the parked processors to carry out `cmd` and wait until each has,
 * or the deadline. False: one did not answer in time. */
static bool step(ldn *n, uint32_t cmd, uint64_t deadline, uint64_t *took)
{
    uint64_t t0 = ldn_now_ns();
    store(&n->cmd, cmd);
    bool ok = true;
    for (uint32_t i = 0; i < n->cpus; i++) {
        if (i == n->leader)
            continue;
        while (load(&n->cpu[i].acked) != cmd) {
            if (ldn_now_ns() > deadline || load(&n->escaped)) {
                ok = false;
                break;
            }
            YieldProcessor();
        }
        if (!ok)
            break;
    }
    *took = ldn_now_ns() - t0;
    return ok;
}

/* Let every parked processor go and wait until each has left its loop
 * (or, for one that never arrived, its DPC is taken back or will leave
 * at once when it runs). */
static void release(ldn *n, uint64_t *took)
{
    uint64_t t0 = ldn_now_ns();
    store(&n->cmd, LDN_CMD_RELEASE);
    for (uint32_t i = 0; i < n->cpus; i++)
        if (i != n->leader && KeRemoveQueueDpc(&n->cpu[i].dpc))
            dec(&n->in_flight); /* never ran: taken back */
    /* Those that arrived leave their loop promptly; bounded anyway. */
    uint64_t limit = t0 + n->failsafe_ns;
    while (load(&n->departed) < load(&n->arrived) && ldn_now_ns() < limit)
        YieldProcessor();
    *took = ldn_now_ns() - t0;
}

ld_status ldn_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    ldn *n = ctx;
    if (!fn || !times)
        return LD_STATUS_INVALID_PARAMETER;
    memset(times, 0, sizeof *times);
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        return LD_STATUS_INVALID_DEVICE_STATE;
    if (KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS) != n->cpus)
        return LD_STATUS_INVALID_DEVICE_STATE; /* a processor came or went since open */
    /* DPCs of a stop given up earlier must have returned before reuse. */
    if (load(&n->in_flight))
        KeFlushQueuedDpcs();
    if (load(&n->in_flight))
        return LD_STATUS_DEVICE_BUSY;

    uint64_t budget = n->budget_ns;
    uint64_t wait = timeout_ns && timeout_ns < budget ? timeout_ns : budget;
    for (uint32_t i = 0; i < n->cpus; i++) {
        n->cpu[i].saved = false;
        n->cpu[i].parked_ns = 0;
        n->cpu[i].dpc_percent = 100;
        store(&n->cpu[i].acked, LDN_CMD_PARK);
    }
    store(&n->arrived, 0);
    store(&n->departed, 0);
    store(&n->escaped, 0);
    store(&n->cmd, LDN_CMD_PARK);
    uint32_t gen = load(&n->gen) + 1;
    store(&n->gen, gen);

    /* From here until the release this processor is not preempted. */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    PROCESSOR_NUMBER pn;
    n->leader = KeGetCurrentProcessorNumberEx(&pn);
    n->stats.leader = n->leader;
    uint64_t t0 = ldn_now_ns();
    n->deadline_ns = t0 + budget;
    uint32_t others = 0;
    for (uint32_t i = 0; i < n->cpus; i++) {
        if (i == n->leader)
            continue;
        inc(&n->in_flight);
        if (!KeInsertQueueDpc(&n->cpu[i].dpc, (PVOID)(ULONG_PTR)gen, NULL))
            dec(&n->in_flight); /* already queued: it cannot be ours now; it will not arrive */
        others++;
    }
    while (load(&n->arrived) < others && ldn_now_ns() - t0 < wait)
        YieldProcessor();
    uint64_t t1 = ldn_now_ns();
    times->corral_ns = t1 - t0;

    ld_status st = LD_STATUS_SUCCESS;
    uint64_t ignored;
    if (load(&n->arrived) < others) {
        st = LD_STATUS_TIMEOUT;
    } else {
        uint32_t least = 100;
        for (uint32_t i = 0; i < n->cpus; i++)
            if (i != n->leader && n->cpu[i].dpc_percent < least)
                least = n->cpu[i].dpc_percent;
        n->stats.dpc_allowance_percent = least;
        if (least < LDN_DPC_ALLOWANCE_MIN_PERCENT)
            st = LD_STATUS_IO_TIMEOUT; /* a processor near its DPC watchdog stays out */
    }
    uint32_t reached = LDN_CMD_PARK;
    if (st == LD_STATUS_SUCCESS) {
        if (step(n, LDN_CMD_DISABLE_INTERRUPTS, n->deadline_ns, &times->disable_interrupts_ns))
            reached = LDN_CMD_DISABLE_INTERRUPTS;
        else
            st = LD_STATUS_IO_TIMEOUT;
    }
    if (st == LD_STATUS_SUCCESS) {
        ldn_cpu *me = &n->cpu[n->leader];
        uint64_t s0 = ldn_now_ns();
        on_arrival(me);
        save_state(me);
        bool ok = step(n, LDN_CMD_SAVE_STATE, n->deadline_ns, &ignored);
        times->save_supervisor_state_ns = ldn_now_ns() - s0;
        if (ok)
            reached = LDN_CMD_SAVE_STATE;
        else
            st = LD_STATUS_IO_TIMEOUT;
    }
    if (st == LD_STATUS_SUCCESS) {
        if (step(n, LDN_CMD_SUSPEND_CLOCK, n->deadline_ns, &times->suspend_clock_timer_ns))
            reached = LDN_CMD_SUSPEND_CLOCK;
        else
            st = LD_STATUS_IO_TIMEOUT;
    }
    uint64_t t2 = ldn_now_ns();
    if (st == LD_STATUS_SUCCESS) {
        n->corralled = true;
        st = fn(arg);
        n->corralled = false;
        if (st == LD_STATUS_SUCCESS && load(&n->escaped))
            st = LD_STATUS_IO_TIMEOUT; /* someone left early: not one instant */
    }
    uint64_t t3 = ldn_now_ns();
    times->stopped_ns = t3 - (reached == LDN_CMD_SUSPEND_CLOCK ? t2 : t1);

    /* The inverse steps, as far as the forward ones went; bounded by the
     * failsafe (the parked processors restore their IRQL on leaving). */
    uint64_t until = t0 + n->failsafe_ns;
    bool ok = true;
    if (reached >= LDN_CMD_SUSPEND_CLOCK)
        ok = step(n, LDN_CMD_RESUME_CLOCK, until, &times->resume_clock_timer_ns);
    if (ok && reached >= LDN_CMD_SAVE_STATE)
        ok = step(n, LDN_CMD_RESTORE_STATE, until, &times->restore_supervisor_state_ns);
    if (ok && reached >= LDN_CMD_DISABLE_INTERRUPTS)
        ok = step(n, LDN_CMD_ENABLE_INTERRUPTS, until, &times->enable_interrupts_ns);
    release(n, &times->uncorral_ns);
    uint64_t longest = 0;
    for (uint32_t i = 0; i < n->cpus; i++)
        if (n->cpu[i].parked_ns > longest)
            longest = n->cpu[i].parked_ns;
    n->stats.max_parked_ns = longest;
    KeLowerIrql(old);
    return st;
}

ld_status ldn_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out)
{
    ldn *n = ctx;
    if (!out || cpu >= n->cpus)
        return LD_STATUS_INVALID_PARAMETER;
    memset(out, 0, sizeof *out);
    out->cpu = cpu;
    const ldn_cpu *c = &n->cpu[cpu];
    if (!n->corralled || !c->saved)
        return LD_STATUS_SUCCESS; /* nothing captured: valid == 0 */
    const CONTEXT *x = c->context;
    const uint64_t gpr[16] = {x->Rax, x->Rcx, x->Rdx, x->Rbx, x->Rsp, x->Rbp, x->Rsi, x->Rdi,
                              x->R8,  x->R9,  x->R10, x->R11, x->R12, x->R13, x->R14, x->R15};
    memcpy(out->gpr, gpr, sizeof gpr);
    out->rip = x->Rip;
    out->rflags = x->EFlags;
    out->cr0 = c->regs.cr0;
    out->cr2 = c->regs.cr2;
    out->cr3 = c->regs.cr3;
    out->cr4 = c->regs.cr4;
    out->cr8 = c->regs.cr8;
    out->cs = x->SegCs;
    out->ds = x->SegDs;
    out->es = x->SegEs;
    out->fs = x->SegFs;
    out->gs = x->SegGs;
    out->ss = x->SegSs;
    out->mxcsr = x->MxCsr;
    out->fs_base = c->regs.fs_base;
    out->gs_base = c->regs.gs_base;
    out->thread_id = c->thread_id;
    out->valid = LD_CTX_GPRS | LD_CTX_CONTROL | LD_CTX_SEGMENTS | LD_CTX_THREAD | LD_CTX_FLOAT;
    if (c->stack_high > c->stack_low) {
        out->stack_base = c->stack_high;
        out->stack_limit = c->stack_low;
        out->stack_base_pfn = c->stack_pfn;
        out->stack_pages = c->stack_pages;
        out->valid |= LD_CTX_STACK_RANGE;
    }
    return LD_STATUS_SUCCESS;
}
