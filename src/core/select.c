/* Which pages a request keeps: the policy from dump type and options to
 * page kinds (table in docs/architecture.md), and request validation. */
#include "select.h"

bool ldi_kind_required(ld_page_kind k)
{
    switch (k) {
    case LD_PAGE_KERNEL_IMAGE:
    case LD_PAGE_HAL_IMAGE:
    case LD_PAGE_SHARED_USER_DATA:
    case LD_PAGE_PROCESSOR_BLOCKS:
    case LD_PAGE_DEBUGGER_DATA:
    case LD_PAGE_LOADED_MODULES:
        return true;
    default:
        return false;
    }
}

bool ldi_kind_important(ld_page_kind k)
{
    return k == LD_PAGE_PAGE_TABLES || k == LD_PAGE_KERNEL_STACKS;
}

bool ldi_kind_selected(ld_page_kind k, const ld_capture_request *req, const ld_hal *hal)
{
    (void)hal;
    if (ldi_kind_required(k))
        return true;
    /* Kernel-stacks dumps keep page tables too: without them a debugger
     * cannot translate the stacks' virtual addresses. */
    if (req->type == LD_DUMP_KERNEL_STACKS)
        return ldi_kind_important(k);
    if (req->type != LD_DUMP_FULL_KERNEL)
        return false;
    switch (k) {
    case LD_PAGE_PAGE_TABLES:
    case LD_PAGE_KERNEL_STACKS:
    case LD_PAGE_KERNEL_OTHER:
    case LD_PAGE_UNKNOWN:
        return true;
    case LD_PAGE_FILE_CACHE:
        return !(req->flags & LD_FLAG_SELECTIVE_DUMP);
    case LD_PAGE_USER:
        return (req->add_pages & LD_ADD_USER_PAGES) != 0;
    case LD_PAGE_HV_ESSENTIAL:
        return (req->add_pages & LD_ADD_HV_PAGES) != 0;
    case LD_PAGE_HV_NONESSENTIAL:
        return (req->add_pages & LD_ADD_HV_PAGES) && (req->add_pages & LD_ADD_HV_NONESSENTIAL_PAGES);
    /* Secure-kernel memory is not readable from the normal kernel and holds
     * secrets; free and zero pages carry nothing; IO space is device memory
     * whose reads have side effects. */
    default:
        return false;
    }
}

ld_status ldi_validate_request(const ld_capture_request *req, const ld_hal *hal)
{
    if (req->version < 1 || req->version > LD_CAPTURE_REQUEST_VERSION)
        return LD_STATUS_INVALID_PARAMETER;
    if (req->type != LD_DUMP_FULL_KERNEL && req->type != LD_DUMP_KERNEL_STACKS && req->type != LD_DUMP_MINI)
        return LD_STATUS_INVALID_PARAMETER;
    if (req->add_pages & ~(LD_ADD_USER_PAGES | LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES))
        return LD_STATUS_INVALID_PARAMETER;
    /* Extra pages only make sense on top of a full kernel dump, and
     * non-essential hypervisor pages only with the hypervisor pages. */
    if (req->add_pages && req->type != LD_DUMP_FULL_KERNEL)
        return LD_STATUS_INVALID_PARAMETER;
    if ((req->add_pages & LD_ADD_HV_NONESSENTIAL_PAGES) && !(req->add_pages & LD_ADD_HV_PAGES))
        return LD_STATUS_INVALID_PARAMETER;
    if (req->flags & ~(LD_FLAG_ABORT_IF_MEMORY_PRESSURE | LD_FLAG_SELECTIVE_DUMP | LD_FLAG_USE_MIRRORING | LD_FLAG_DEFER))
        return LD_STATUS_INVALID_PARAMETER;
    if (req->corral_timeout_ns == 0)
        return LD_STATUS_INVALID_PARAMETER;
    (void)hal;
    return LD_STATUS_SUCCESS;
}

void ld_capture_request_init(ld_capture_request *req)
{
    memset(req, 0, sizeof *req);
    req->version = LD_CAPTURE_REQUEST_VERSION;
    req->bugcheck_code = LD_BUGCHECK_LIVE_SYSTEM_DUMP;
    req->type = LD_DUMP_FULL_KERNEL;
    req->flags = LD_FLAG_USE_MIRRORING;
    req->corral_timeout_ns = 2000000000ull;
    req->mirror_budget_ns = 2000000000ull;
    req->mirror_max_passes = 8;
}

ld_status ld_capture_request_from_lkd(ld_capture_request *req, uint32_t lkd_option)
{
    switch (lkd_option) {
    case 0x0: req->type = LD_DUMP_FULL_KERNEL; req->add_pages = 0; break;
    case 0x1: req->type = LD_DUMP_FULL_KERNEL; req->add_pages = LD_ADD_USER_PAGES; break;
    case 0x2: req->type = LD_DUMP_MINI; req->add_pages = 0; break;
    case 0x4: req->type = LD_DUMP_FULL_KERNEL; req->add_pages = LD_ADD_HV_PAGES; break;
    case 0x5: req->type = LD_DUMP_FULL_KERNEL; req->add_pages = LD_ADD_USER_PAGES | LD_ADD_HV_PAGES; break;
    default: return LD_STATUS_INVALID_PARAMETER;
    }
    return LD_STATUS_SUCCESS;
}

const char *ld_dump_type_name(ld_dump_type type)
{
    switch (type) {
    case LD_DUMP_FULL_KERNEL: return "full";
    case LD_DUMP_KERNEL_STACKS: return "kernel-stacks";
    case LD_DUMP_MINI: return "mini";
    }
    return "invalid";
}

const char *ld_page_kind_name(ld_page_kind kind)
{
    static const char *const names[LD_PAGE_KIND_COUNT] = {
        "unknown", "kernel-image", "hal-image", "page-tables", "kernel-stacks",
        "shared-user-data", "processor-blocks", "debugger-data", "loaded-modules",
        "kernel-other", "user", "hv-essential", "hv-nonessential", "secure-kernel",
        "file-cache", "free", "zero", "io-space",
    };
    return (unsigned)kind < LD_PAGE_KIND_COUNT ? names[kind] : "invalid";
}

const char *ld_hal_op_name(ld_hal_op op)
{
    static const char *const names[LD_HAL_OP_COUNT] = {
        "mem_ranges", "mem_kinds", "mem_read", "mem_status", "dirty_start", "dirty_fetch",
        "dirty_stop", "pool_open", "pool_alloc", "pool_free", "cpu_count", "quiesce",
        "cpu_context", "hv_size", "hv_prepare", "hv_collect", "ipt_size", "ipt_collect",
        "system_info", "platform_alloc",
    };
    return (unsigned)op < LD_HAL_OP_COUNT ? names[op] : "invalid";
}

bool ldi_kind_is_hv(uint32_t k)
{
    return k == LD_PAGE_HV_ESSENTIAL || k == LD_PAGE_HV_NONESSENTIAL;
}

uint64_t ldi_selected_of_kinds(const ldi_bitmap *select, const ld_dump *d, bool (*pick)(uint32_t kind))
{
    uint64_t n = 0;
    for (size_t i = 0; i < d->kind_count; i++)
        if (pick(d->kinds[i].kind))
            n += ldi_bitmap_count_range(select, d->kinds[i].first_pfn, d->kinds[i].page_count);
    return n;
}

uint64_t ldi_classified_of_kinds(const ld_dump *d, bool (*pick)(uint32_t kind))
{
    uint64_t n = 0;
    for (size_t i = 0; i < d->kind_count; i++)
        if (pick(d->kinds[i].kind))
            n += d->kinds[i].page_count;
    return n;
}
