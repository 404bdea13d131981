/* Physical memory for the NT backend.
 *
 * Ranges: MmGetPhysicalMemoryRanges (RAM only, as a .dmp header's runs).
 * Reads while the machine runs (PASSIVE_LEVEL): MmCopyMemory with
 * MM_COPY_MEMORY_PHYSICAL, which refuses what is not OS-managed RAM
 * instead of faulting. Reads while it is stopped (DISPATCH_LEVEL, where
 * MmCopyMemory is not allowed): a reserved mapping taken once at open
 * (MmAllocateMappingAddress), into which an MDL we fill with the pages'
 * frame numbers is mapped and unmapped batch by batch
 * (MmMapLockedPagesWithReservedMapping / MmUnmapReservedMapping, both
 * allowed up to DISPATCH_LEVEL). The unmap flushes the TLB of every
 * processor by IPI, which the parked processors take: they wait below
 * IPI_LEVEL (corral.c).
 *
 * Dump buffers: the system partition's pool only, pages from
 * MmAllocatePagesForMdlEx mapped non-executable. Their own pages are
 * read as zeros: a dump of its own buffers is the dump being made. */
#include "nt_internal.h"

#define BIT_TEST(b, i) (((b)[(i) / 64] >> ((i) % 64)) & 1u)

bool ldn_in_ram(const ldn *n, uint64_t pfn)
{
    return ld_range_find(n->ranges, n->range_count, sizeof *n->ranges, pfn) < n->range_count;
}

/* Ranges as pages: whole pages inside each, sorted, overlaps refused. */
static ld_status load_ranges(ldn *n)
{
    PPHYSICAL_MEMORY_RANGE r = MmGetPhysicalMemoryRanges();
    if (!r)
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    size_t count = 0;
    while (r[count].BaseAddress.QuadPart || r[count].NumberOfBytes.QuadPart)
        count++;
    ld_status st = LD_STATUS_SUCCESS;
    n->ranges = count ? ldn_alloc(count * sizeof *n->ranges) : NULL;
    if (!n->ranges)
        st = count ? LD_STATUS_NO_MEMORY : LD_STATUS_UNSUCCESSFUL;
    for (size_t i = 0; st == LD_STATUS_SUCCESS && i < count; i++) {
        uint64_t base = (uint64_t)r[i].BaseAddress.QuadPart, bytes = (uint64_t)r[i].NumberOfBytes.QuadPart;
        uint64_t first = (base + LDN_PAGE - 1) / LDN_PAGE;
        uint64_t end = base + bytes < base ? UINT64_MAX / LDN_PAGE : (base + bytes) / LDN_PAGE;
        if (end <= first)
            continue;
        /* insertion: a handful of entries */
        size_t at = n->range_count;
        while (at > 0 && n->ranges[at - 1].first_pfn > first) {
            n->ranges[at] = n->ranges[at - 1];
            at--;
        }
        n->ranges[at] = (ld_phys_range){first, end - first};
        n->range_count++;
    }
    ExFreePool(r);
    for (size_t i = 1; st == LD_STATUS_SUCCESS && i < n->range_count; i++)
        if (n->ranges[i - 1].first_pfn + n->ranges[i - 1].page_count > n->ranges[i].first_pfn)
            st = LD_STATUS_UNSUCCESSFUL; /* overlapping ranges: not a layout to trust */
    if (st == LD_STATUS_SUCCESS && !n->range_count)
        st = LD_STATUS_UNSUCCESSFUL;
    if (st != LD_STATUS_SUCCESS)
        return st;
    const ld_phys_range *last = &n->ranges[n->range_count - 1];
    n->max_pfn = last->first_pfn + last->page_count;
    for (size_t i = 0; i < n->range_count; i++)
        n->ram_pages += n->ranges[i].page_count;
    return LD_STATUS_SUCCESS;
}

ld_status ldn_memory_open(ldn *n)
{
    ld_status st = load_ranges(n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    n->map_va = MmAllocateMappingAddress((SIZE_T)LDN_MAP_PAGES * LDN_PAGE, LDN_TAG);
    n->map_mdl = ldn_zalloc(sizeof(MDL) + LDN_MAP_PAGES * sizeof(PFN_NUMBER));
    n->table = ldn_alloc(LDN_PAGE);
    if (!n->map_va || !n->map_mdl || !n->table)
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    return LD_STATUS_SUCCESS;
}

static void pool_release(ldn *n, size_t i)
{
    ldn_pool_entry *a = &n->pools[i];
    if (n->own) {
        PPFN_NUMBER pfns = MmGetMdlPfnArray(a->mdl);
        for (uint64_t k = 0; k < a->bytes / LDN_PAGE; k++)
            if (pfns[k] < n->max_pfn)
                n->own[pfns[k] / 64] &= ~(1ull << (pfns[k] % 64));
    }
    MmUnmapLockedPages(a->va, a->mdl);
    MmFreePagesFromMdl(a->mdl);
    ExFreePool(a->mdl);
    n->pools[i] = n->pools[--n->pool_count];
}

void ldn_memory_close(ldn *n)
{
    /* Buffers the engine never gave back go with the backend. */
    while (n->pool_count)
        pool_release(n, n->pool_count - 1);
    ldn_free(n->pools);
    if (n->map_va)
        MmFreeMappingAddress(n->map_va, LDN_TAG);
    ldn_free(n->map_mdl);
    ldn_free(n->table);
    ldn_free(n->own);
    ldn_free(n->ranges);
}

ld_status ldn_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    ldn *n = ctx;
    if (!count)
        return LD_STATUS_INVALID_PARAMETER;
    if (!ranges) {
        *count = n->range_count;
        return LD_STATUS_SUCCESS;
    }
    if (*count < n->range_count) {
        *count = n->range_count;
        return LD_STATUS_BUFFER_TOO_SMALL;
    }
    memcpy(ranges, n->ranges, n->range_count * sizeof *ranges);
    *count = n->range_count;
    return LD_STATUS_SUCCESS;
}

bool ldn_read_phys(ldn *n, uint64_t pa, void *dst, size_t len)
{
    (void)n;
    MM_COPY_ADDRESS src;
    src.PhysicalAddress.QuadPart = (LONGLONG)pa;
    SIZE_T done = 0;
    NTSTATUS s = MmCopyMemory(dst, src, len, MM_COPY_MEMORY_PHYSICAL, &done);
    return NT_SUCCESS(s) && done == len;
}

/* The decoded debugger data block over its bytes in a copied page: the
 * dump holds what Windows' own dumps hold, memory keeps its encoding. */
static void patch_kdbg(const ldn *n, uint64_t pfn, uint8_t *page)
{
    const ldn_kdbg *k = &n->kdbg;
    if (!k->valid)
        return;
    if (k->pa[0] / LDN_PAGE == pfn) {
        uint32_t off = (uint32_t)(k->pa[0] % LDN_PAGE);
        memcpy(page + off, k->bytes, k->first_bytes);
    }
    if (k->size > k->first_bytes && k->pa[1] / LDN_PAGE == pfn)
        memcpy(page, k->bytes + k->first_bytes, k->size - k->first_bytes);
}

static bool is_own(const ldn *n, uint64_t pfn)
{
    return n->own && pfn < n->max_pfn && BIT_TEST(n->own, pfn);
}

/* Running: MmCopyMemory page by page (it refuses, rather than faults on,
 * a page that is not OS-managed RAM). */
static ld_status read_running(ldn *n, uint64_t pfn, uint64_t count, uint8_t *dst)
{
    for (uint64_t i = 0; i < count; i++) {
        uint8_t *page = dst + i * LDN_PAGE;
        if (is_own(n, pfn + i)) {
            memset(page, 0, LDN_PAGE);
            n->stats.own_pages_zeroed++;
            continue;
        }
        MM_COPY_ADDRESS src;
        src.PhysicalAddress.QuadPart = (LONGLONG)((pfn + i) * LDN_PAGE);
        SIZE_T done = 0;
        NTSTATUS s = MmCopyMemory(page, src, LDN_PAGE, MM_COPY_MEMORY_PHYSICAL, &done);
        if (!NT_SUCCESS(s))
            return ldn_status(s);
        if (done != LDN_PAGE)
            return LD_STATUS_PARTIAL_COPY;
        patch_kdbg(n, pfn + i, page);
    }
    return LD_STATUS_SUCCESS;
}

/* Stopped: batches of consecutive pages through the reserved mapping,
 * with the budget checked before each. */
static ld_status read_stopped(ldn *n, uint64_t pfn, uint64_t count, uint8_t *dst)
{
    PMDL mdl = n->map_mdl;
    uint64_t i = 0;
    while (i < count) {
        ld_status st = ldn_stop_check(n);
        if (st != LD_STATUS_SUCCESS)
            return st;
        if (is_own(n, pfn + i)) {
            memset(dst + i * LDN_PAGE, 0, LDN_PAGE);
            n->stats.own_pages_zeroed++;
            i++;
            continue;
        }
        uint64_t k = 0;
        while (i + k < count && k < LDN_MAP_PAGES && !is_own(n, pfn + i + k))
            k++;
        MmInitializeMdl(mdl, NULL, (SIZE_T)(k * LDN_PAGE));
        PPFN_NUMBER pfns = MmGetMdlPfnArray(mdl);
        for (uint64_t j = 0; j < k; j++)
            pfns[j] = (PFN_NUMBER)(pfn + i + j);
        mdl->MdlFlags |= MDL_PAGES_LOCKED;
        void *va = MmMapLockedPagesWithReservedMapping(n->map_va, LDN_TAG, mdl, MmCached);
        if (!va)
            return LD_STATUS_INSUFFICIENT_RESOURCES;
        memcpy(dst + i * LDN_PAGE, va, (size_t)(k * LDN_PAGE));
        MmUnmapReservedMapping(n->map_va, LDN_TAG, mdl);
        n->stats.mapped_batches++;
        for (uint64_t j = 0; j < k; j++)
            patch_kdbg(n, pfn + i + j, dst + (i + j) * LDN_PAGE);
        i += k;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ldn_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    ldn *n = ctx;
    if (!dst || !count || pfn >= n->max_pfn || count > n->max_pfn - pfn)
        return LD_STATUS_INVALID_PARAMETER;
    /* Never map or copy what is not RAM (device memory, holes). */
    size_t r = ld_range_find(n->ranges, n->range_count, sizeof *n->ranges, pfn);
    if (r == n->range_count || pfn + count > n->ranges[r].first_pfn + n->ranges[r].page_count)
        return LD_STATUS_INVALID_PARAMETER;
    return n->corralled ? read_stopped(n, pfn, count, dst) : read_running(n, pfn, count, dst);
}

/* ---- memory status: total = the ranges; available = the performance
 * information's AvailablePages (class 2, at +0x2C; phnt). ---- */

#define PERF_INFO_BYTES 0x400u
#define PERF_AVAILABLE_PAGES 0x2Cu

ld_status ldn_mem_status(void *ctx, uint64_t *available, uint64_t *total)
{
    ldn *n = ctx;
    if (!available || !total)
        return LD_STATUS_INVALID_PARAMETER;
    uint8_t *buf = ldn_zalloc(PERF_INFO_BYTES);
    if (!buf)
        return LD_STATUS_NO_MEMORY;
    ULONG got = 0;
    NTSTATUS s = ZwQuerySystemInformation(LDN_SYSTEM_PERFORMANCE_INFORMATION, buf, PERF_INFO_BYTES, &got);
    ld_status st = LD_STATUS_SUCCESS;
    if (!NT_SUCCESS(s))
        st = ldn_status(s);
    else if (got < PERF_AVAILABLE_PAGES + 4)
        st = LD_STATUS_NOT_SUPPORTED;
    if (st == LD_STATUS_SUCCESS) {
        uint32_t pages;
        memcpy(&pages, buf + PERF_AVAILABLE_PAGES, 4);
        *available = (uint64_t)pages * LDN_PAGE;
        *total = n->ram_pages * LDN_PAGE;
    }
    ldn_free(buf);
    return st;
}

/* ---- the dump buffers ---- */

ld_status ldn_pool_open(void *ctx, ld_pool pool)
{
    (void)ctx;
    /* No hypervisor partition of our own, and no IO-space memory for
     * buffers: only the system partition's pool exists here. */
    return pool == LD_POOL_SYSTEM_PARTITION ? LD_STATUS_SUCCESS : LD_STATUS_NOT_SUPPORTED;
}

ld_status ldn_pool_alloc(void *ctx, ld_pool pool, uint64_t bytes, void **mem)
{
    ldn *n = ctx;
    if (!mem)
        return LD_STATUS_INVALID_PARAMETER;
    *mem = NULL;
    if (pool != LD_POOL_SYSTEM_PARTITION)
        return LD_STATUS_NOT_SUPPORTED;
    if (!bytes || bytes % LDN_PAGE || bytes > 0xFFFFF000ull) /* MmAllocatePagesForMdlEx: < 4 GiB a call */
        return LD_STATUS_INVALID_PARAMETER;
    if (!n->own) {
        n->own = ldn_zalloc((size_t)((n->max_pfn + 63) / 64 * 8));
        if (!n->own)
            return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    if (n->pool_count == n->pool_cap) {
        size_t cap = n->pool_cap ? n->pool_cap * 2 : 64;
        ldn_pool_entry *grown = ldn_alloc(cap * sizeof *grown);
        if (!grown)
            return LD_STATUS_INSUFFICIENT_RESOURCES;
        if (n->pool_count)
            memcpy(grown, n->pools, n->pool_count * sizeof *grown);
        ldn_free(n->pools);
        n->pools = grown;
        n->pool_cap = cap;
    }
    PHYSICAL_ADDRESS low, high, skip;
    low.QuadPart = 0;
    high.QuadPart = (LONGLONG)~0ull >> 1;
    skip.QuadPart = 0;
    /* Fully required: a short MDL would be an allocation we must undo. */
    PMDL mdl = MmAllocatePagesForMdlEx(low, high, skip, (SIZE_T)bytes, MmCached, MM_ALLOCATE_FULLY_REQUIRED);
    if (!mdl)
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    if (MmGetMdlByteCount(mdl) < bytes) {
        MmFreePagesFromMdl(mdl);
        ExFreePool(mdl);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    void *va = MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE,
                                            HighPagePriority | MdlMappingNoExecute);
    if (!va) {
        MmFreePagesFromMdl(mdl);
        ExFreePool(mdl);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    PPFN_NUMBER pfns = MmGetMdlPfnArray(mdl);
    for (uint64_t k = 0; k < bytes / LDN_PAGE; k++)
        if (pfns[k] < n->max_pfn)
            n->own[pfns[k] / 64] |= 1ull << (pfns[k] % 64);
    n->pools[n->pool_count++] = (ldn_pool_entry){va, mdl, bytes};
    *mem = va;
    return LD_STATUS_SUCCESS;
}

void ldn_pool_free(void *ctx, ld_pool pool, void *mem, uint64_t bytes)
{
    ldn *n = ctx;
    (void)pool;
    for (size_t i = 0; mem && i < n->pool_count; i++) {
        if (n->pools[i].va == mem && n->pools[i].bytes == bytes) {
            pool_release(n, i);
            return;
        }
    }
}
