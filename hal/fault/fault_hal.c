/* The fault wrapper's HAL: every operation counts its call, obeys its rule
 * (fault_rules.c), and otherwise goes to the inner HAL unchanged. */
#include <stdlib.h>
#include <string.h>

#include "fault_internal.h"

#define INNER(f) ((f)->inner)

static ld_status ft_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_MEM_RANGES);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->mem_ranges(INNER(f)->ctx, ranges, count);
}

static ld_status ft_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_MEM_KINDS);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->mem_kinds(INNER(f)->ctx, runs, count);
}

static ld_status ft_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_MEM_READ);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->mem_read(INNER(f)->ctx, pfn, count, dst);
}

static ld_status ft_mem_status(void *ctx, uint64_t *available, uint64_t *total)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_MEM_STATUS);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->mem_status(INNER(f)->ctx, available, total);
}

static ld_status ft_dirty_start(void *ctx)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_DIRTY_START);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->dirty_start(INNER(f)->ctx);
}

static ld_status ft_dirty_fetch(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *dirty_count)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_DIRTY_FETCH);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->dirty_fetch(INNER(f)->ctx, bits, nbits, dirty_count);
}

static ld_status ft_dirty_stop(void *ctx)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_DIRTY_STOP);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->dirty_stop(INNER(f)->ctx);
}

static ld_status ft_pool_open(void *ctx, ld_pool pool)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_POOL_OPEN);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->pool_open(INNER(f)->ctx, pool);
}

static ld_status ft_pool_alloc(void *ctx, ld_pool pool, uint64_t bytes, void **mem)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_POOL_ALLOC);
    if (st != LD_STATUS_SUCCESS) {
        if (mem)
            *mem = NULL; /* as a pool that refuses says it */
        return st;
    }
    return INNER(f)->pool_alloc(INNER(f)->ctx, pool, bytes, mem);
}

/* A free cannot fail: a rule may only stall it. */
static void ft_pool_free(void *ctx, ld_pool pool, void *mem, uint64_t bytes)
{
    ld_fault_hal *f = ctx;
    (void)ldft_apply(f, LD_HAL_OP_POOL_FREE);
    INNER(f)->pool_free(INNER(f)->ctx, pool, mem, bytes);
}

static uint32_t ft_cpu_count(void *ctx)
{
    ld_fault_hal *f = ctx;
    if (ldft_apply(f, LD_HAL_OP_CPU_COUNT) != LD_STATUS_SUCCESS)
        return 0; /* the only failure a count can report */
    return INNER(f)->cpu_count(INNER(f)->ctx);
}

/* A failing quiesce stops nothing; a stall runs before the inner quiesce,
 * with the machine running. */
static ld_status ft_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *times)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_QUIESCE);
    if (st != LD_STATUS_SUCCESS) {
        if (times)
            memset(times, 0, sizeof *times);
        return st;
    }
    return INNER(f)->quiesce(INNER(f)->ctx, timeout_ns, fn, arg, times);
}

static ld_status ft_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_CPU_CONTEXT);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->cpu_context(INNER(f)->ctx, cpu, out);
}

static ld_status ft_hv_size(void *ctx, uint64_t *secondary_bytes)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_HV_SIZE);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->hv_size(INNER(f)->ctx, secondary_bytes);
}

static ld_status ft_hv_prepare(void *ctx)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_HV_PREPARE);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->hv_prepare(INNER(f)->ctx);
}

static ld_status ft_hv_collect(void *ctx, void *dst, uint64_t cap, uint64_t *len)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_HV_COLLECT);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->hv_collect(INNER(f)->ctx, dst, cap, len);
}

static ld_status ft_ipt_size(void *ctx, uint64_t *bytes)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_IPT_SIZE);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->ipt_size(INNER(f)->ctx, bytes);
}

static ld_status ft_ipt_collect(void *ctx, void *dst, uint64_t cap, uint64_t *len)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_IPT_COLLECT);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->ipt_collect(INNER(f)->ctx, dst, cap, len);
}

static ld_status ft_system_info(void *ctx, ld_system_info *out)
{
    ld_fault_hal *f = ctx;
    ld_status st = ldft_apply(f, LD_HAL_OP_SYSTEM_INFO);
    return st != LD_STATUS_SUCCESS ? st : INNER(f)->system_info(INNER(f)->ctx, out);
}

/* The wrapper's table: the inner one's shape, every present operation
 * replaced by its forwarder, those of hidden capabilities dropped. */
static void build_hal(ld_fault_hal *f, uint32_t hide)
{
    const ld_hal *in = f->inner;
    ld_hal *h = &f->hal;
    memset(h, 0, sizeof *h);
    h->version = in->version;
    h->caps = in->caps & ~hide;
    h->name = in->name;
    h->ctx = f;
    h->platform = &f->platform;
    h->page_size = in->page_size;
#define FORWARD(field, fn) h->field = in->field ? fn : NULL
    FORWARD(mem_ranges, ft_mem_ranges);
    FORWARD(mem_kinds, ft_mem_kinds);
    FORWARD(mem_read, ft_mem_read);
    FORWARD(cpu_count, ft_cpu_count);
    FORWARD(quiesce, ft_quiesce);
    if (!(hide & LD_HAL_CAP_MEM_STATUS))
        FORWARD(mem_status, ft_mem_status);
    if (!(hide & LD_HAL_CAP_DIRTY_LOG)) {
        FORWARD(dirty_start, ft_dirty_start);
        FORWARD(dirty_fetch, ft_dirty_fetch);
        FORWARD(dirty_stop, ft_dirty_stop);
    }
    if (!(hide & LD_HAL_CAP_POOLS)) {
        FORWARD(pool_open, ft_pool_open);
        FORWARD(pool_alloc, ft_pool_alloc);
        FORWARD(pool_free, ft_pool_free);
    }
    if (!(hide & LD_HAL_CAP_CPU_CONTEXT))
        FORWARD(cpu_context, ft_cpu_context);
    if (!(hide & LD_HAL_CAP_HYPERVISOR)) {
        FORWARD(hv_size, ft_hv_size);
        FORWARD(hv_prepare, ft_hv_prepare);
        FORWARD(hv_collect, ft_hv_collect);
    }
    if (!(hide & LD_HAL_CAP_IPT)) {
        FORWARD(ipt_size, ft_ipt_size);
        FORWARD(ipt_collect, ft_ipt_collect);
    }
    /* A version 1 table ends before system_info: never read past it. */
    if (in->version >= 2 && !(hide & LD_HAL_CAP_SYSTEM_INFO))
        FORWARD(system_info, ft_system_info);
#undef FORWARD
}

void ld_fault_config_init(ld_fault_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->version = LD_FAULT_CONFIG_VERSION;
}

ld_status ld_fault_hal_create(const ld_hal *inner, const ld_fault_config *cfg, ld_fault_hal **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    ld_fault_config defaults;
    if (!cfg) {
        ld_fault_config_init(&defaults);
        cfg = &defaults;
    }
    if (cfg->version != LD_FAULT_CONFIG_VERSION || !inner || inner->version < 1 ||
        inner->version > LD_HAL_VERSION || !inner->platform || inner->platform->version != LD_PLATFORM_VERSION)
        return LD_STATUS_INVALID_PARAMETER;
    ld_fault_hal *f = calloc(1, sizeof *f);
    if (!f)
        return LD_STATUS_NO_MEMORY;
    f->inner = inner;
    ldft_platform_init(f);
    build_hal(f, cfg->hide_caps);
    *out = f;
    return LD_STATUS_SUCCESS;
}

const ld_hal *ld_fault_hal_get(ld_fault_hal *f)
{
    return f ? &f->hal : NULL;
}

void ld_fault_hal_destroy(ld_fault_hal *f)
{
    free(f);
}
