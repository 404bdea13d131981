/* The NT backend's HAL table, open and close. One backend serves one
 * capture (the driver opens it for each request, from its system thread
 * at PASSIVE_LEVEL), so what it learns of the machine is of that instant.
 *
 * No dirty log: the only one a driver could keep without the hypervisor
 * is a checksum per page (as the Linux backend does), and its last fetch,
 * inside the stop, re-reads every page of the dump, which costs what
 * copying them does. So every page is copied while the machine is
 * stopped, and the stop budget bounds how large a dump can be. */
#include "nt_internal.h"

const ld_hal *ldn_hal(ldn *n)
{
    return n ? &n->hal : NULL;
}

void ldn_get_stats(const ldn *n, ld_nt_stats *out)
{
    if (n)
        *out = n->stats;
    else
        memset(out, 0, sizeof *out);
}

void ldn_close(ldn *n)
{
    if (!n)
        return;
    ldn_corral_close(n);
    ldn_memory_close(n);
    ldn_sysinfo_close(n);
    ldn_free(n->kinds);
    ldn_free(n);
}

ld_status ldn_open(const ldn_config *cfg, ldn **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        return LD_STATUS_INVALID_DEVICE_STATE;
    ldn *n = ldn_zalloc(sizeof *n);
    if (!n)
        return LD_STATUS_NO_MEMORY;
    if (cfg)
        n->cfg = *cfg;
    uint64_t cap = n->cfg.stop_budget_cap_ns ? n->cfg.stop_budget_cap_ns : LD_NT_STOP_BUDGET_MAX_NS;
    n->budget_ns = n->cfg.stop_budget_ns ? n->cfg.stop_budget_ns : LD_NT_STOP_BUDGET_DEFAULT_NS;
    if (n->budget_ns > cap)
        n->budget_ns = cap;
    n->failsafe_ns = n->budget_ns * LDN_FAILSAFE_BUDGETS;
    n->stats.stop_budget_ns = n->budget_ns;
    n->stats.dpc_allowance_percent = 100;
    ldn_platform_init(&n->platform);
    ld_status st = ldn_corral_open(n);
    if (st == LD_STATUS_SUCCESS)
        st = ldn_memory_open(n);
    if (st != LD_STATUS_SUCCESS) {
        ldn_close(n);
        return st;
    }
    ld_hal *h = &n->hal;
    h->version = LD_HAL_VERSION;
    h->caps = LD_HAL_CAP_CPU_CONTEXT | LD_HAL_CAP_QUIESCE | LD_HAL_CAP_POOLS | LD_HAL_CAP_MEM_STATUS |
              LD_HAL_CAP_SYSTEM_INFO;
    h->name = "nt";
    h->ctx = n;
    h->platform = &n->platform;
    h->page_size = LDN_PAGE;
    h->mem_ranges = ldn_mem_ranges;
    h->mem_kinds = ldn_mem_kinds;
    h->mem_read = ldn_mem_read;
    h->mem_status = ldn_mem_status;
    h->pool_open = ldn_pool_open;
    h->pool_alloc = ldn_pool_alloc;
    h->pool_free = ldn_pool_free;
    h->cpu_count = ldn_cpu_count;
    h->quiesce = ldn_quiesce;
    h->cpu_context = ldn_cpu_context;
    h->system_info = ldn_system_info;
    *out = n;
    return LD_STATUS_SUCCESS;
}
