/* The simulated machine: configuration, create/destroy, the HAL table,
 * buffer pools, memory status and the secondary data sources. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include "machine.h"

void ld_sim_config_init(ld_sim_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->version = LD_SIM_CONFIG_VERSION;
    cfg->memory_bytes = 512ull << 20;
    cfg->cpus = 2;
    cfg->hot_set_bytes = 64ull << 20;
}

/* ---- the host's memory ---- */

/* MemTotal and MemAvailable (what can be committed without swapping); from
 * sysinfo() where /proc/meminfo cannot be read. */
static void read_host_memory(uint64_t *total, uint64_t *avail)
{
    *total = *avail = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[128];
        unsigned long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemTotal: %llu kB", &v) == 1 && v < (UINT64_MAX >> 10))
                *total = (uint64_t)v << 10;
            else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1 && v < (UINT64_MAX >> 10))
                *avail = (uint64_t)v << 10;
        }
        fclose(f);
    }
    struct sysinfo si;
    if ((!*total || !*avail) && sysinfo(&si) == 0) {
        if (!*total)
            *total = (uint64_t)si.totalram * si.mem_unit;
        if (!*avail)
            *avail = (uint64_t)(si.freeram + si.bufferram) * si.mem_unit;
    }
}

/* What the host keeps for itself. */
static uint64_t host_reserve(uint64_t host_total)
{
    uint64_t r = host_total / 8;
    return r > LDS_HOST_RESERVE_MIN ? r : LDS_HOST_RESERVE_MIN;
}

/* The host's memory and what it has available now. `committed` is what this
 * machine has committed since it was built: an injected available figure
 * (the host before the machine) loses it; the OS's own figure already has. */
static void host_memory(const ld_sim_config *c, uint64_t committed, uint64_t *total, uint64_t *avail)
{
    uint64_t t = c->host_memory_bytes, a = c->host_available_bytes;
    if (!t || !a) {
        uint64_t os_total, os_avail;
        read_host_memory(&os_total, &os_avail);
        if (!t)
            t = os_total;
        if (!a)
            a = os_avail;
        else
            a = a > committed ? a - committed : 0;
    } else {
        a = a > committed ? a - committed : 0;
    }
    *total = t;
    *avail = a;
}

/* Bytes the machine may still commit on the host: available less the
 * host's reserve. */
static uint64_t host_budget(const ld_sim *sim)
{
    uint64_t pools = 0;
    for (int i = 0; i < LD_POOL_COUNT; i++)
        pools += __atomic_load_n(&sim->pool_used[i], __ATOMIC_RELAXED);
    uint64_t total, avail;
    host_memory(&sim->cfg, sim->footprint + pools, &total, &avail);
    uint64_t keep = host_reserve(total);
    return avail > keep ? avail - keep : 0;
}

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

#define MIB(x) ((uint64_t)(x) >> 20)

ld_status ld_sim_config_check(const ld_sim_config *cfg, char *why, size_t cap)
{
    say(why, cap, "ok");
    if (!cfg) {
        say(why, cap, "no configuration");
        return LD_STATUS_INVALID_PARAMETER;
    }
    if (cfg->version != LD_SIM_CONFIG_VERSION) {
        say(why, cap, "configuration version %" PRIu32 ": this library knows version %u (ld_sim_config_init sets it)",
            cfg->version, LD_SIM_CONFIG_VERSION);
        return LD_STATUS_INVALID_PARAMETER;
    }
    uint64_t mem = cfg->memory_bytes & ~(uint64_t)(LDS_PAGE_SIZE - 1);
    if (mem < LDS_MIN_MEMORY || mem > LDS_MAX_MEMORY) {
        say(why, cap, "memory of %" PRIu64 " MiB is out of the simulated machine's range: %" PRIu64 " MiB to %" PRIu64
                      " GiB", MIB(cfg->memory_bytes), MIB(LDS_MIN_MEMORY), (uint64_t)(LDS_MAX_MEMORY >> 30));
        return LD_STATUS_INVALID_PARAMETER;
    }
    if (cfg->cpus < 1 || cfg->cpus > LDS_MAX_CPUS) {
        say(why, cap, "%" PRIu32 " CPUs: the simulated machine has 1 to %u", cfg->cpus, LDS_MAX_CPUS);
        return LD_STATUS_INVALID_PARAMETER;
    }
    if (cfg->hot_set_bytes == 0 || cfg->hot_set_bytes > mem / 2) {
        say(why, cap, "a hot set of %" PRIu64 " MiB: it must be more than 0 and at most half the memory (%" PRIu64
                      " MiB)", MIB(cfg->hot_set_bytes), MIB(mem / 2));
        return LD_STATUS_INVALID_PARAMETER;
    }
    lds_layout l;
    uint64_t hot_pages = (cfg->hot_set_bytes + LDS_PAGE_SIZE - 1) / LDS_PAGE_SIZE;
    if (!lds_layout_build(&l, mem, cfg->cpus, hot_pages, cfg->hypervisor, cfg->secure_kernel)) {
        say(why, cap, "%" PRIu64 " MiB with %" PRIu32 " CPUs cannot be laid out", MIB(mem), cfg->cpus);
        return LD_STATUS_INVALID_PARAMETER;
    }
    uint64_t total, avail, need = lds_footprint(&l);
    host_memory(cfg, 0, &total, &avail);
    uint64_t keep = host_reserve(total);
    if (need > (avail > keep ? avail - keep : 0)) {
        say(why, cap, "this host cannot back the simulated machine: it commits %" PRIu64 " MiB, the host has %" PRIu64
                      " MiB available and keeps %" PRIu64 " MiB for itself", MIB(need), MIB(avail), MIB(keep));
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    return LD_STATUS_SUCCESS;
}

/* ---- memory status and pools ---- */

/* What the machine has free: the free and zero pages. */
static uint64_t free_bytes(const ld_sim *sim)
{
    const lds_layout *l = &sim->layout;
    return (l->kind_pages[LD_PAGE_FREE] + l->kind_pages[LD_PAGE_ZERO]) * LDS_PAGE_SIZE;
}

static ld_status sim_mem_status(void *ctx, uint64_t *available, uint64_t *total)
{
    ld_sim *sim = ctx;
    if (!available || !total)
        return LD_STATUS_INVALID_PARAMETER;
    uint64_t held = __atomic_load_n(&sim->pool_used[LD_POOL_SYSTEM_PARTITION], __ATOMIC_RELAXED);
    uint64_t avail = free_bytes(sim);
    avail = avail > held ? avail - held : 0;
    /* Buffers come from the host: never more than it can give. */
    uint64_t host = host_budget(sim);
    *available = sim->cfg.available_bytes ? sim->cfg.available_bytes : avail < host ? avail : host;
    *total = sim->cfg.memory_bytes;
    return LD_STATUS_SUCCESS;
}

/* Capacity of a pool; 0: the pool does not exist. The system pool without
 * a configured capacity takes from the machine's free memory. */
static uint64_t pool_capacity(const ld_sim *sim, ld_pool pool)
{
    uint64_t cap = sim->cfg.pool_bytes[pool];
    if (cap == 0 && pool == LD_POOL_SYSTEM_PARTITION)
        return free_bytes(sim);
    return cap;
}

static ld_status sim_pool_open(void *ctx, ld_pool pool)
{
    ld_sim *sim = ctx;
    if ((unsigned)pool >= LD_POOL_COUNT)
        return LD_STATUS_INVALID_PARAMETER;
    return pool_capacity(sim, pool) ? LD_STATUS_SUCCESS : LD_STATUS_NOT_SUPPORTED;
}

static ld_status sim_pool_alloc(void *ctx, ld_pool pool, uint64_t bytes, void **mem)
{
    ld_sim *sim = ctx;
    ld_status st = LD_STATUS_SUCCESS;
    if (!mem)
        return LD_STATUS_INVALID_PARAMETER;
    *mem = NULL;
    if ((unsigned)pool >= LD_POOL_COUNT || bytes == 0 || bytes % LDS_PAGE_SIZE || (size_t)bytes != bytes)
        return LD_STATUS_INVALID_PARAMETER;
    uint64_t cap = pool_capacity(sim, pool);
    if (cap == 0)
        return LD_STATUS_NOT_SUPPORTED;

    uv_mutex_lock(&sim->pool_lock);
    /* Pool memory is committed on the host: never beyond what it can give,
     * whatever the simulated machine has free. */
    if (sim->pool_used[pool] > cap || bytes > cap - sim->pool_used[pool] || bytes > host_budget(sim)) {
        st = LD_STATUS_INSUFFICIENT_RESOURCES;
    } else if (sim->pool_alloc_count == sim->pool_alloc_cap) {
        size_t ncap = sim->pool_alloc_cap ? sim->pool_alloc_cap * 2 : 64;
        lds_pool_alloc *grown = realloc(sim->pool_allocs, ncap * sizeof *grown);
        if (!grown) {
            st = LD_STATUS_INSUFFICIENT_RESOURCES;
        } else {
            sim->pool_allocs = grown;
            sim->pool_alloc_cap = ncap;
        }
    }
    if (st == LD_STATUS_SUCCESS) {
        void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            st = LD_STATUS_INSUFFICIENT_RESOURCES;
        } else {
            lds_populate(p, bytes); /* the engine fills every slot it asks for */
            sim->pool_allocs[sim->pool_alloc_count++] = (lds_pool_alloc){p, bytes, (uint32_t)pool};
            __atomic_store_n(&sim->pool_used[pool], sim->pool_used[pool] + bytes, __ATOMIC_RELAXED);
            *mem = p;
        }
    }
    uv_mutex_unlock(&sim->pool_lock);
    return st;
}

/* Frees only what pool_alloc gave out (same pool, same size): anything
 * else is ignored rather than unmapping a stranger's memory. */
static void sim_pool_free(void *ctx, ld_pool pool, void *mem, uint64_t bytes)
{
    ld_sim *sim = ctx;
    if (!mem)
        return;
    uv_mutex_lock(&sim->pool_lock);
    for (size_t i = sim->pool_alloc_count; i-- > 0;) {
        lds_pool_alloc *a = &sim->pool_allocs[i];
        if (a->mem != mem)
            continue;
        if (a->bytes == bytes && a->pool == (uint32_t)pool) {
            munmap(a->mem, (size_t)a->bytes);
            __atomic_store_n(&sim->pool_used[pool], sim->pool_used[pool] - bytes, __ATOMIC_RELAXED);
            *a = sim->pool_allocs[--sim->pool_alloc_count];
        }
        break;
    }
    uv_mutex_unlock(&sim->pool_lock);
}

uint64_t ld_sim_pool_used(ld_sim *sim, ld_pool pool)
{
    if (!sim || (unsigned)pool >= LD_POOL_COUNT)
        return 0;
    return __atomic_load_n(&sim->pool_used[pool], __ATOMIC_RELAXED);
}

/* ---- secondary data ---- */

#define HV_SALT 0x4856000000000000ull  /* "HV" */
#define IPT_SALT 0x4950540000000000ull /* "IPT" */

static ld_status sim_hv_size(void *ctx, uint64_t *secondary_bytes)
{
    (void)ctx;
    if (!secondary_bytes)
        return LD_STATUS_INVALID_PARAMETER;
    *secondary_bytes = LDS_HV_BYTES;
    return LD_STATUS_SUCCESS;
}

static ld_status sim_hv_prepare(void *ctx)
{
    ld_sim *sim = ctx;
    __atomic_store_n(&sim->hv_prepared, true, __ATOMIC_RELEASE);
    return LD_STATUS_SUCCESS;
}

/* Secondary data is collected only with the machine stopped, as the
 * hypervisor and the trace units would need. */
static ld_status check_collect(ld_sim *sim, const void *dst, uint64_t cap, const uint64_t *len)
{
    if (!len || (!dst && cap))
        return LD_STATUS_INVALID_PARAMETER;
    if (!__atomic_load_n(&sim->corralled, __ATOMIC_ACQUIRE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    return LD_STATUS_SUCCESS;
}

static ld_status sim_hv_collect(void *ctx, void *dst, uint64_t cap, uint64_t *len)
{
    ld_sim *sim = ctx;
    ld_status st = check_collect(sim, dst, cap, len);
    if (st != LD_STATUS_SUCCESS)
        return st;
    if (!__atomic_load_n(&sim->hv_prepared, __ATOMIC_ACQUIRE))
        return LD_STATUS_INVALID_DEVICE_STATE;
    uint64_t n = cap < LDS_HV_BYTES ? cap : LDS_HV_BYTES;
    lds_fill_bytes(sim->cfg.seed, HV_SALT, dst, n);
    *len = n;
    return LD_STATUS_SUCCESS;
}

static ld_status sim_ipt_size(void *ctx, uint64_t *bytes)
{
    ld_sim *sim = ctx;
    if (!bytes)
        return LD_STATUS_INVALID_PARAMETER;
    *bytes = (uint64_t)LDS_IPT_BYTES_PER_CPU * sim->cpu_count;
    return LD_STATUS_SUCCESS;
}

static ld_status sim_ipt_collect(void *ctx, void *dst, uint64_t cap, uint64_t *len)
{
    ld_sim *sim = ctx;
    ld_status st = check_collect(sim, dst, cap, len);
    if (st != LD_STATUS_SUCCESS)
        return st;
    /* One trace buffer per vCPU, back to back. */
    uint64_t done = 0;
    for (uint32_t i = 0; i < sim->cpu_count && done < cap; i++) {
        uint64_t n = cap - done < LDS_IPT_BYTES_PER_CPU ? cap - done : LDS_IPT_BYTES_PER_CPU;
        lds_fill_bytes(sim->cfg.seed, IPT_SALT + i, (uint8_t *)dst + done, n);
        done += n;
    }
    *len = done;
    return LD_STATUS_SUCCESS;
}

/* ---- what the machine says of itself ---- */

/* Virtual address of the first page of a kind, in the sim's direct map. */
static uint64_t kind_va(const ld_sim *sim, ld_page_kind kind)
{
    const lds_layout *l = &sim->layout;
    for (size_t i = 0; i < l->run_count; i++)
        if (l->runs[i].kind == (uint32_t)kind)
            return LDS_KERNEL_VA_BASE + (l->runs[i].first_pfn << LDS_PAGE_SHIFT);
    return 0;
}

/* A Windows Server 2025 x64 machine (build 26100), with the addresses of
 * its required regions; it keeps no PFN database or process list. */
static ld_status sim_system_info(void *ctx, ld_system_info *out)
{
    ld_sim *sim = ctx;
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    memset(out, 0, sizeof *out);
    out->machine_type = 0x8664;
    out->os_major = 15;
    out->os_minor = 26100;
    out->kernel_base = LDS_KERNEL_VA_BASE + (sim->layout.kernel_image_pfn << LDS_PAGE_SHIFT);
    out->directory_table_base = sim->layout.page_tables_pfn << LDS_PAGE_SHIFT;
    out->loaded_module_list = kind_va(sim, LD_PAGE_LOADED_MODULES);
    out->debugger_data_block = kind_va(sim, LD_PAGE_DEBUGGER_DATA);
    out->direct_map_base = LDS_KERNEL_VA_BASE;
    out->os_release = "livedump-sim";
    return LD_STATUS_SUCCESS;
}

/* ---- create / destroy ---- */

static void build_hal(ld_sim *sim)
{
    const ld_sim_config *c = &sim->cfg;
    ld_hal *h = &sim->hal;
    memset(h, 0, sizeof *h);
    h->version = LD_HAL_VERSION;
    h->caps = LD_HAL_CAP_CPU_CONTEXT | LD_HAL_CAP_QUIESCE | LD_HAL_CAP_POOLS | LD_HAL_CAP_MEM_STATUS |
              LD_HAL_CAP_SYSTEM_INFO;
    h->name = "sim";
    h->ctx = sim;
    h->platform = ld_platform_default();
    h->page_size = LDS_PAGE_SIZE;
    h->mem_ranges = lds_mem_ranges;
    h->mem_kinds = lds_mem_kinds;
    h->mem_read = lds_mem_read;
    h->mem_status = sim_mem_status;
    if (!c->no_dirty_log) {
        h->caps |= LD_HAL_CAP_DIRTY_LOG;
        h->dirty_start = lds_dirty_start;
        h->dirty_fetch = lds_dirty_fetch;
        h->dirty_stop = lds_dirty_stop;
    }
    h->pool_open = sim_pool_open;
    h->pool_alloc = sim_pool_alloc;
    h->pool_free = sim_pool_free;
    h->cpu_count = lds_cpu_count;
    h->quiesce = lds_quiesce;
    h->cpu_context = lds_cpu_context;
    if (c->hypervisor) {
        h->caps |= LD_HAL_CAP_HYPERVISOR;
        h->hv_size = sim_hv_size;
        h->hv_prepare = sim_hv_prepare;
        h->hv_collect = sim_hv_collect;
    }
    if (c->ipt) {
        h->caps |= LD_HAL_CAP_IPT;
        h->ipt_size = sim_ipt_size;
        h->ipt_collect = sim_ipt_collect;
    }
    if (c->secure_kernel)
        h->caps |= LD_HAL_CAP_SECURE_KERNEL;
    h->system_info = sim_system_info;
}

void ld_sim_destroy(ld_sim *sim)
{
    if (!sim)
        return;
    lds_vcpus_stop(sim);
    free(sim->cpus);
    /* Pool memory the caller never gave back goes with the machine. */
    for (size_t i = 0; i < sim->pool_alloc_count; i++)
        munmap(sim->pool_allocs[i].mem, (size_t)sim->pool_allocs[i].bytes);
    free(sim->pool_allocs);
    if (sim->pool_lock_ready)
        uv_mutex_destroy(&sim->pool_lock);
    lds_memory_release(sim);
    free(sim);
}

ld_status ld_sim_create(const ld_sim_config *cfg, ld_sim **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!cfg)
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = ld_sim_config_check(cfg, NULL, 0);
    if (st != LD_STATUS_SUCCESS)
        return st;
    ld_sim_config c = *cfg;
    c.memory_bytes &= ~(uint64_t)(LDS_PAGE_SIZE - 1);
    uint64_t hot_pages = (c.hot_set_bytes + LDS_PAGE_SIZE - 1) / LDS_PAGE_SIZE;

    ld_sim *sim = calloc(1, sizeof *sim);
    if (!sim)
        return LD_STATUS_NO_MEMORY;
    sim->cfg = c;
    if (!lds_layout_build(&sim->layout, c.memory_bytes, c.cpus, hot_pages, c.hypervisor, c.secure_kernel)) {
        free(sim);
        return LD_STATUS_INVALID_PARAMETER;
    }
    sim->footprint = lds_footprint(&sim->layout);
    build_hal(sim);
    if (uv_mutex_init(&sim->pool_lock) != 0)
        st = LD_STATUS_INSUFFICIENT_RESOURCES;
    else
        sim->pool_lock_ready = true;
    if (st == LD_STATUS_SUCCESS)
        st = lds_memory_init(sim);
    if (st == LD_STATUS_SUCCESS)
        st = lds_vcpus_start(sim);
    if (st != LD_STATUS_SUCCESS) {
        ld_sim_destroy(sim);
        return st;
    }
    *out = sim;
    return LD_STATUS_SUCCESS;
}

const ld_hal *ld_sim_hal(ld_sim *sim)
{
    return sim ? &sim->hal : NULL;
}

const void *ld_sim_page(ld_sim *sim, uint64_t pfn)
{
    if (!sim)
        return NULL;
    uint8_t *p = lds_page_ptr(sim, pfn);
    if (p)
        lds_materialize(sim, pfn, 1);
    return p;
}
