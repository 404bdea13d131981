/* The vCPUs: one libuv thread each, running a memory-writing workload, a
 * register file, the consistency probe, and the corral.
 *
 * A vCPU's loop is: [safe point] step [safe point] step ... A step is
 * one hot-set write (none when idle), then the probe (A, B, rax); the
 * safe point is the only place it parks, so a parked vCPU has always
 * finished its whole step. The fast path of the safe point is one atomic
 * load of sim->attention; the slow path runs under sim->lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"

#define IDLE_TICK_NS 1000000u        /* an idle vCPU steps every ~1 ms */
#define THROTTLE_SLEEP_NS 200000u    /* a vCPU ahead of its rate sleeps this long */
#define MAX_BACKLOG_NS 10000000u     /* writes owed beyond 10 ms are dropped, not burst */
#define MAX_WAIT_SLICE_NS 100000000u /* keeps libuv's absolute-deadline arithmetic far from overflow */

typedef unsigned __int128 u128;

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (ns && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t kernel_va(uint64_t pfn)
{
    return LDS_KERNEL_VA_BASE + (pfn << LDS_PAGE_SHIFT);
}

static void store_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}

/* Under sim->lock. */
static void update_attention(ld_sim *sim)
{
    int want = sim->stopping || sim->paused || sim->corral_active;
    __atomic_store_n(&sim->attention, want, __ATOMIC_RELEASE);
}

static void wait_slice(uv_cond_t *cond, uv_mutex_t *lock, uint64_t ns)
{
    (void)uv_cond_timedwait(cond, lock, ns < MAX_WAIT_SLICE_NS ? ns : MAX_WAIT_SLICE_NS);
}

/* ---- one step ---- */

static void hot_write(ld_sim *sim, lds_vcpu *cpu)
{
    const lds_layout *l = &sim->layout;
    uint64_t x = lds_splitmix64(&cpu->rng);
    uint64_t pfn = lds_ram_pfn(l, l->hot_first_index + x % l->hot_pages);
    uint64_t offset = ((x >> 40) % (LDS_PAGE_SIZE / 64)) * 64;
    uint64_t *line = (uint64_t *)(lds_page_ptr(sim, pfn) + offset);
    for (int i = 0; i < 8; i++)
        __atomic_store_n(&line[i], x + (uint64_t)i * 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
    /* The data first, then the bit: whoever fetches the bit copies after. */
    lds_mark_dirty(sim, pfn);
    __atomic_add_fetch(&cpu->pages_written, 1, __ATOMIC_RELAXED);
    cpu->regs.cr2 = kernel_va(pfn) + offset;
}

static void evolve_registers(ld_sim *sim, lds_vcpu *cpu)
{
    static const uint8_t scratch[] = {LD_RCX, LD_RDX, LD_RBX, LD_RSI, LD_RDI, LD_R8,  LD_R9,
                                      LD_R10, LD_R11, LD_R12, LD_R13, LD_R14, LD_R15};
    const lds_layout *l = &sim->layout;
    ld_cpu_context *r = &cpu->regs;
    uint64_t x = lds_splitmix64(&cpu->rng);
    r->gpr[scratch[x % sizeof scratch]] = x;
    r->rip = kernel_va(l->kernel_image_pfn) + ((x >> 8) % (l->kernel_image_pages * LDS_PAGE_SIZE / 16)) * 16;
    r->gpr[LD_RSP] = r->stack_base - 8 * (1 + ((x >> 48) % 256));
    r->gpr[LD_RBP] = r->stack_base - 8;
}

/* A, then B, then rax: a dump of one instant sees all three equal. */
static void probe_step(ld_sim *sim, lds_vcpu *cpu)
{
    uint64_t v = ++cpu->seq;
    store_le64(lds_page_ptr(sim, cpu->probe_a_pfn) + cpu->probe_a_offset, v);
    lds_mark_dirty(sim, cpu->probe_a_pfn);
    store_le64(lds_page_ptr(sim, cpu->probe_b_pfn) + cpu->probe_b_offset, v);
    lds_mark_dirty(sim, cpu->probe_b_pfn);
    cpu->regs.gpr[LD_RAX] = v;
}

static void step(ld_sim *sim, lds_vcpu *cpu, bool write)
{
    if (write)
        hot_write(sim, cpu);
    evolve_registers(sim, cpu);
    probe_step(sim, cpu);
}

/* ---- the safe point ---- */

/* A vCPU that arrives late at the corral (ld_sim_set_corral_delay): it
 * waits out its delay unless the corral is called off first, as a
 * processor that keeps interrupts disabled for a while. Under sim->lock. */
static void delay_arrival(ld_sim *sim, uint64_t gen, uint64_t delay_ns)
{
    uint64_t start = uv_hrtime();
    uint64_t deadline = delay_ns > UINT64_MAX - start ? UINT64_MAX : start + delay_ns;
    while (!sim->stopping && sim->corral_active && sim->corral_gen == gen) {
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            break;
        wait_slice(&sim->wake, &sim->lock, deadline - now);
    }
}

/* Park while a corral, a pause or a stop asks for it. Returns true when
 * the machine is stopping. */
static bool safe_point(ld_sim *sim, lds_vcpu *cpu)
{
    uv_mutex_lock(&sim->lock);
    sim->at_safe_point++;
    uv_cond_broadcast(&sim->changed);
    for (;;) {
        if (sim->stopping)
            break;
        if (sim->corral_active && cpu->parked_gen != sim->corral_gen) {
            uint64_t gen = sim->corral_gen;
            if (cpu->corral_delay_ns && cpu->delayed_gen != gen) {
                cpu->delayed_gen = gen;
                delay_arrival(sim, gen, cpu->corral_delay_ns);
                continue;
            }
            cpu->published = cpu->regs;
            cpu->parked_gen = gen;
            sim->parked++;
            sim->last_parked_ns = uv_hrtime();
            uv_cond_broadcast(&sim->changed);
            while (sim->corral_active && sim->corral_gen == gen && !sim->stopping)
                uv_cond_wait(&sim->wake, &sim->lock);
            sim->parked--;
            uv_cond_broadcast(&sim->changed);
            continue;
        }
        if (sim->paused) {
            uv_cond_wait(&sim->wake, &sim->lock);
            continue;
        }
        break;
    }
    sim->at_safe_point--;
    bool stopping = sim->stopping;
    uv_mutex_unlock(&sim->lock);
    return stopping;
}

static void idle_wait(ld_sim *sim)
{
    uv_mutex_lock(&sim->lock);
    if (!sim->stopping && !sim->paused && !sim->corral_active)
        (void)uv_cond_timedwait(&sim->wake, &sim->lock, IDLE_TICK_NS);
    uv_mutex_unlock(&sim->lock);
}

/* The virtual clock runs with the machine: vCPU 0 advances it by the time
 * it ran, and the quiesce suspends it. */
static void advance_clock(ld_sim *sim, uint64_t *last)
{
    uint64_t now = uv_hrtime();
    if (__atomic_load_n(&sim->clock_running, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&sim->virtual_clock_ns, now - *last, __ATOMIC_RELAXED);
    *last = now;
}

static void vcpu_main(void *arg)
{
    lds_vcpu *cpu = arg;
    ld_sim *sim = cpu->sim;
    uint64_t rate = sim->cfg.dirty_rate;
    /* Rate accounting in byte-nanoseconds: every elapsed ns earns `rate`,
     * one page write costs page size * 1e9 * vCPUs (the rate is shared). */
    const u128 cost = (u128)LDS_PAGE_SIZE * 1000000000u * sim->cpu_count;
    u128 cap = (u128)rate * MAX_BACKLOG_NS;
    if (cap < cost)
        cap = cost;
    u128 budget = 0;
    uint64_t last = uv_hrtime(), clock_last = last;
    for (;;) {
        if (__atomic_load_n(&sim->attention, __ATOMIC_ACQUIRE)) {
            if (safe_point(sim, cpu))
                return;
            /* Time spent parked earns no writes. */
            last = clock_last = uv_hrtime();
            budget = 0;
        }
        if (cpu->index == 0)
            advance_clock(sim, &clock_last);
        if (rate == 0) {
            idle_wait(sim);
            if (!__atomic_load_n(&sim->attention, __ATOMIC_ACQUIRE))
                step(sim, cpu, false);
            continue;
        }
        uint64_t now = uv_hrtime();
        budget += (u128)(now - last) * rate;
        last = now;
        if (budget > cap)
            budget = cap;
        if (budget < cost) {
            sleep_ns(THROTTLE_SLEEP_NS);
            continue;
        }
        budget -= cost;
        step(sim, cpu, true);
    }
}

/* ---- start / stop ---- */

static void init_vcpu(ld_sim *sim, lds_vcpu *cpu, uint32_t index)
{
    const lds_layout *l = &sim->layout;
    cpu->sim = sim;
    cpu->index = index;
    cpu->rng = sim->cfg.seed ^ (0x5ca1ab1e00000000ull + index * 0x9e3779b97f4a7c15ull);
    cpu->stack_pfn = l->stacks_pfn + (uint64_t)index * LDS_STACK_PAGES;
    cpu->probe_a_pfn = l->probe_pfn;
    cpu->probe_a_offset = 8ull * index;
    cpu->probe_b_pfn = cpu->stack_pfn;
    cpu->probe_b_offset = 0;

    ld_cpu_context *r = &cpu->regs;
    memset(r, 0, sizeof *r);
    r->cpu = index;
    r->valid = LD_CTX_GPRS | LD_CTX_CONTROL | LD_CTX_SEGMENTS | LD_CTX_STACK_RANGE | LD_CTX_THREAD | LD_CTX_FLOAT;
    for (int i = 0; i < 16; i++)
        r->gpr[i] = lds_splitmix64(&cpu->rng);
    r->stack_limit = kernel_va(cpu->stack_pfn);
    r->stack_base = kernel_va(cpu->stack_pfn + LDS_STACK_PAGES);
    r->stack_base_pfn = cpu->stack_pfn;
    r->stack_pages = LDS_STACK_PAGES;
    r->rflags = 0x202; /* IF set */
    r->cr0 = 0x80050033ull; /* PG, WP, NE, ET, MP, PE */
    r->cr3 = (l->page_tables_pfn + index % l->page_tables_pages) << LDS_PAGE_SHIFT;
    r->cr4 = 0x350ef8ull;
    r->cs = 0x10;
    r->ss = 0x18;
    r->ds = r->es = r->gs = 0x2b;
    r->fs = 0x53;
    r->mxcsr = 0x1f80;
    r->gs_base = kernel_va(l->processor_blocks_pfn + index); /* the KPCR */
    r->thread_id = 0x100 + 4ull * index;
    evolve_registers(sim, cpu);

    /* The probe starts consistent: A == B == rax == 0 before any step. */
    cpu->seq = 0;
    r->gpr[LD_RAX] = 0;
    store_le64(lds_page_ptr(sim, cpu->probe_a_pfn) + cpu->probe_a_offset, 0);
    store_le64(lds_page_ptr(sim, cpu->probe_b_pfn) + cpu->probe_b_offset, 0);
    cpu->published = *r;
}

ld_status lds_vcpus_start(ld_sim *sim)
{
    sim->cpu_count = sim->cfg.cpus;
    sim->cpus = calloc(sim->cpu_count, sizeof *sim->cpus);
    if (!sim->cpus)
        return LD_STATUS_NO_MEMORY;
    if (uv_mutex_init(&sim->lock) != 0)
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    if (uv_cond_init(&sim->wake) != 0) {
        uv_mutex_destroy(&sim->lock);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    if (uv_cond_init(&sim->changed) != 0) {
        uv_cond_destroy(&sim->wake);
        uv_mutex_destroy(&sim->lock);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    sim->sync_ready = true;
    __atomic_store_n(&sim->interrupts_enabled, true, __ATOMIC_RELAXED);
    __atomic_store_n(&sim->clock_running, true, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < sim->cpu_count; i++)
        init_vcpu(sim, &sim->cpus[i], i);
    for (uint32_t i = 0; i < sim->cpu_count; i++) {
        lds_vcpu *cpu = &sim->cpus[i];
        if (uv_thread_create(&cpu->thread, vcpu_main, cpu) != 0)
            return LD_STATUS_INSUFFICIENT_RESOURCES; /* the caller stops the started ones */
        cpu->thread_started = true;
    }
    return LD_STATUS_SUCCESS;
}

void lds_vcpus_stop(ld_sim *sim)
{
    if (!sim->sync_ready)
        return;
    uv_mutex_lock(&sim->lock);
    sim->stopping = true;
    update_attention(sim);
    uv_cond_broadcast(&sim->wake);
    uv_mutex_unlock(&sim->lock);
    for (uint32_t i = 0; i < sim->cpu_count; i++)
        if (sim->cpus[i].thread_started)
            uv_thread_join(&sim->cpus[i].thread);
    uv_cond_destroy(&sim->changed);
    uv_cond_destroy(&sim->wake);
    uv_mutex_destroy(&sim->lock);
    sim->sync_ready = false;
}

/* ---- the corral ---- */

static ld_status corral(ld_sim *sim, uint64_t timeout_ns, ld_quiesce_times *times)
{
    uint64_t t0 = uv_hrtime();
    uint64_t deadline = timeout_ns > UINT64_MAX - t0 ? UINT64_MAX : t0 + timeout_ns;
    uv_mutex_lock(&sim->lock);
    sim->corral_gen++;
    sim->corral_active = true;
    update_attention(sim);
    uv_cond_broadcast(&sim->wake);
    while (sim->parked < sim->cpu_count && !sim->stopping) {
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            break;
        wait_slice(&sim->changed, &sim->lock, deadline - now);
    }
    ld_status st = LD_STATUS_SUCCESS;
    if (sim->parked == sim->cpu_count) {
        __atomic_store_n(&sim->corralled, true, __ATOMIC_RELEASE);
    } else {
        /* Too late: let the parked ones go, and return only when none is
         * left in the park, so the machine is running again. */
        st = LD_STATUS_TIMEOUT;
        sim->corral_active = false;
        update_attention(sim);
        uv_cond_broadcast(&sim->wake);
        while (sim->parked > 0)
            uv_cond_wait(&sim->changed, &sim->lock);
    }
    uv_mutex_unlock(&sim->lock);
    times->corral_ns = uv_hrtime() - t0;
    return st;
}

static void uncorral(ld_sim *sim, ld_quiesce_times *times)
{
    uint64_t t0 = uv_hrtime();
    uv_mutex_lock(&sim->lock);
    uint64_t release = uv_hrtime();
    times->stopped_ns = release > sim->last_parked_ns ? release - sim->last_parked_ns : 0;
    sim->corral_active = false;
    update_attention(sim);
    uv_cond_broadcast(&sim->wake);
    while (sim->parked > 0)
        uv_cond_wait(&sim->changed, &sim->lock);
    __atomic_store_n(&sim->corralled, false, __ATOMIC_RELEASE);
    uv_mutex_unlock(&sim->lock);
    times->uncorral_ns = uv_hrtime() - t0;
}

/* Supervisor state: the control registers of every parked vCPU. */
static void save_supervisor_state(ld_sim *sim)
{
    uv_mutex_lock(&sim->lock);
    for (uint32_t i = 0; i < sim->cpu_count; i++) {
        const ld_cpu_context *r = &sim->cpus[i].published;
        uint64_t *s = sim->saved_control[i];
        s[0] = r->cr0;
        s[1] = r->cr2;
        s[2] = r->cr3;
        s[3] = r->cr4;
        s[4] = r->cr8;
    }
    uv_mutex_unlock(&sim->lock);
}

static void restore_supervisor_state(ld_sim *sim)
{
    uv_mutex_lock(&sim->lock);
    for (uint32_t i = 0; i < sim->cpu_count; i++) {
        ld_cpu_context *r = &sim->cpus[i].published;
        const uint64_t *s = sim->saved_control[i];
        r->cr0 = s[0];
        r->cr2 = s[1];
        r->cr3 = s[2];
        r->cr4 = s[3];
        r->cr8 = s[4];
    }
    uv_mutex_unlock(&sim->lock);
}

static uint64_t since(uint64_t t0)
{
    return uv_hrtime() - t0;
}

ld_status lds_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    ld_sim *sim = ctx;
    ld_quiesce_times scratch;
    if (!times)
        times = &scratch;
    memset(times, 0, sizeof *times);
    if (!fn)
        return LD_STATUS_INVALID_PARAMETER;
    int idle = 0;
    if (!__atomic_compare_exchange_n(&sim->quiesce_busy, &idle, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return LD_STATUS_DEVICE_BUSY; /* one stop-the-world at a time, and none from inside one */

    ld_status st = corral(sim, timeout_ns, times);
    if (st == LD_STATUS_SUCCESS) {
        uint64_t t = uv_hrtime();
        __atomic_store_n(&sim->interrupts_enabled, false, __ATOMIC_RELEASE);
        times->disable_interrupts_ns = since(t);
        t = uv_hrtime();
        save_supervisor_state(sim);
        times->save_supervisor_state_ns = since(t);
        t = uv_hrtime();
        __atomic_store_n(&sim->clock_running, false, __ATOMIC_RELEASE);
        times->suspend_clock_timer_ns = since(t);

        st = fn(arg);

        t = uv_hrtime();
        __atomic_store_n(&sim->interrupts_enabled, true, __ATOMIC_RELEASE);
        times->enable_interrupts_ns = since(t);
        t = uv_hrtime();
        restore_supervisor_state(sim);
        times->restore_supervisor_state_ns = since(t);
        t = uv_hrtime();
        __atomic_store_n(&sim->clock_running, true, __ATOMIC_RELEASE);
        times->resume_clock_timer_ns = since(t);
        uncorral(sim, times);
    }
    __atomic_store_n(&sim->quiesce_busy, 0, __ATOMIC_RELEASE);
    return st;
}

uint32_t lds_cpu_count(void *ctx)
{
    ld_sim *sim = ctx;
    return sim->cpu_count;
}

ld_status lds_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out)
{
    ld_sim *sim = ctx;
    if (cpu >= sim->cpu_count || !out)
        return LD_STATUS_INVALID_PARAMETER;
    if (!__atomic_load_n(&sim->corralled, __ATOMIC_ACQUIRE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    uv_mutex_lock(&sim->lock);
    *out = sim->cpus[cpu].published;
    uv_mutex_unlock(&sim->lock);
    return LD_STATUS_SUCCESS;
}

/* ---- public observation and control ---- */

bool ld_sim_corralled(ld_sim *sim)
{
    return sim && __atomic_load_n(&sim->corralled, __ATOMIC_ACQUIRE);
}

uint64_t ld_sim_pages_written(ld_sim *sim)
{
    uint64_t total = 0;
    if (!sim)
        return 0;
    for (uint32_t i = 0; i < sim->cpu_count; i++)
        total += __atomic_load_n(&sim->cpus[i].pages_written, __ATOMIC_RELAXED);
    return total;
}

void ld_sim_pause(ld_sim *sim, bool paused)
{
    if (!sim)
        return;
    uv_mutex_lock(&sim->lock);
    sim->paused = paused;
    update_attention(sim);
    uv_cond_broadcast(&sim->wake);
    /* Return only once no vCPU is mid-step, so memory no longer changes. */
    while (paused && sim->at_safe_point < sim->cpu_count && !sim->stopping)
        uv_cond_wait(&sim->changed, &sim->lock);
    uv_mutex_unlock(&sim->lock);
}

ld_status ld_sim_probe_of(ld_sim *sim, uint32_t cpu, ld_sim_probe *out)
{
    if (!sim || !out || cpu >= sim->cpu_count)
        return LD_STATUS_INVALID_PARAMETER;
    const lds_vcpu *c = &sim->cpus[cpu];
    out->a_pfn = c->probe_a_pfn;
    out->a_offset = c->probe_a_offset;
    out->b_pfn = c->probe_b_pfn;
    out->b_offset = c->probe_b_offset;
    return LD_STATUS_SUCCESS;
}

ld_status ld_sim_set_corral_delay(ld_sim *sim, uint32_t cpu, uint64_t delay_ns)
{
    if (!sim || cpu >= sim->cpu_count)
        return LD_STATUS_INVALID_PARAMETER;
    uv_mutex_lock(&sim->lock);
    sim->cpus[cpu].corral_delay_ns = delay_ns;
    uv_mutex_unlock(&sim->lock);
    return LD_STATUS_SUCCESS;
}
