/* The simulated machine's physical memory map and page classification.
 *
 * Ranges follow a PC and hold RAM only: PFN 1 to 640 KiB, 1 MiB to the
 * MMIO hole at 3 GiB, the rest from 4 GiB (page 0 is the firmware's,
 * 640 KiB-1 MiB legacy device memory). Each page kind gets one contiguous
 * region of RAM, in a fixed order, so the classification is a short list of
 * runs, all inside the ranges. */
#include <string.h>

#include "machine.h"

typedef struct region {
    ld_page_kind kind;
    uint64_t pages;
} region;

uint64_t lds_ram_pfn(const lds_layout *l, uint64_t ram_index)
{
    if (ram_index < LDS_CONV_PAGES)
        return LDS_FIRST_RAM_PFN + ram_index;
    if (ram_index < l->low_ram_pages)
        return LDS_FIRST_RAM_PFN + LDS_LEGACY_IO_PAGES + ram_index;
    return LDS_HIGH_RAM_PFN + (ram_index - l->low_ram_pages);
}

bool lds_kind_has_content(uint32_t kind)
{
    return kind != LD_PAGE_FREE && kind != LD_PAGE_ZERO && kind != LD_PAGE_IO_SPACE && kind != LD_PAGE_UNKNOWN &&
           kind < LD_PAGE_KIND_COUNT;
}

static bool add_run(lds_layout *l, uint64_t pfn, uint64_t pages, ld_page_kind kind)
{
    if (pages == 0)
        return true;
    if (l->run_count > 0) {
        ld_kind_range *last = &l->runs[l->run_count - 1];
        if (last->kind == (uint32_t)kind && last->first_pfn + last->page_count == pfn) {
            last->page_count += pages;
            return true;
        }
    }
    if (l->run_count == LDS_MAX_RUNS)
        return false;
    l->runs[l->run_count++] = (ld_kind_range){pfn, pages, (uint32_t)kind};
    return true;
}

/* Emit the runs of RAM indexes [first, first + pages), split where the
 * RAM index to PFN mapping jumps (the legacy IO pages, the MMIO hole). */
static bool add_region_runs(lds_layout *l, uint64_t first, uint64_t pages, ld_page_kind kind)
{
    const uint64_t breaks[] = {LDS_CONV_PAGES, l->low_ram_pages};
    uint64_t at = first, end = first + pages;
    while (at < end) {
        uint64_t piece_end = end;
        for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++)
            if (breaks[i] > at && breaks[i] < piece_end)
                piece_end = breaks[i];
        if (!add_run(l, lds_ram_pfn(l, at), piece_end - at, kind))
            return false;
        at = piece_end;
    }
    return true;
}

bool lds_layout_build(lds_layout *l, uint64_t memory_bytes, uint32_t cpus, uint64_t hot_pages,
                          bool hypervisor, bool secure_kernel)
{
    memset(l, 0, sizeof *l);
    uint64_t r = memory_bytes / LDS_PAGE_SIZE;
    if (memory_bytes < LDS_MIN_MEMORY || memory_bytes > LDS_MAX_MEMORY || cpus == 0 ||
        cpus > LDS_MAX_CPUS || hot_pages == 0)
        return false;
    l->ram_pages = r;
    /* Every PFN below the hole but page 0 and the legacy IO window. */
    uint64_t low_max = LDS_MMIO_HOLE_PFN - LDS_FIRST_RAM_PFN - LDS_LEGACY_IO_PAGES;
    l->low_ram_pages = r < low_max ? r : low_max;
    l->low_end_pfn = LDS_FIRST_RAM_PFN + LDS_LEGACY_IO_PAGES + l->low_ram_pages;
    l->high_pages = r - l->low_ram_pages;
    l->ranges[0] = (ld_phys_range){LDS_FIRST_RAM_PFN, LDS_CONV_PAGES};
    l->ranges[1] = (ld_phys_range){LDS_LEGACY_IO_PFN + LDS_LEGACY_IO_PAGES, l->low_ram_pages - LDS_CONV_PAGES};
    l->range_count = 2;
    if (l->high_pages)
        l->ranges[l->range_count++] = (ld_phys_range){LDS_HIGH_RAM_PFN, l->high_pages};
    l->max_pfn = l->high_pages ? LDS_HIGH_RAM_PFN + l->high_pages : l->low_end_pfn;

    /* Conventional memory below 640 KiB is free, as after boot; the kernel
     * loads at 1 MiB. Kernel-other, file cache and user are adjacent so the
     * hot set (which spills from one into the next) is one span. */
    region regions[] = {
        {LD_PAGE_FREE, LDS_CONV_PAGES},
        {LD_PAGE_KERNEL_IMAGE, (8u << 20) / LDS_PAGE_SIZE},
        {LD_PAGE_HAL_IMAGE, (1u << 20) / LDS_PAGE_SIZE},
        {LD_PAGE_DEBUGGER_DATA, 1},
        {LD_PAGE_LOADED_MODULES, 4},
        {LD_PAGE_SHARED_USER_DATA, 1},
        {LD_PAGE_PROCESSOR_BLOCKS, cpus},
        {LD_PAGE_PAGE_TABLES, r / 64},
        {LD_PAGE_KERNEL_STACKS, ((uint64_t)cpus + LDS_OTHER_STACKS) * LDS_STACK_PAGES},
        {LD_PAGE_HV_ESSENTIAL, hypervisor ? r / 64 : 0},
        {LD_PAGE_HV_NONESSENTIAL, hypervisor ? r / 64 : 0},
        {LD_PAGE_SECURE_KERNEL, secure_kernel ? r / 128 : 0},
        {LD_PAGE_KERNEL_OTHER, r / 8 + 1}, /* + the probe page */
        {LD_PAGE_FILE_CACHE, r / 8},
        {LD_PAGE_USER, r / 4},
        {LD_PAGE_ZERO, r / 16},
        {LD_PAGE_FREE, 0}, /* the rest */
    };
    size_t nregions = sizeof regions / sizeof regions[0];
    uint64_t used = 0;
    for (size_t i = 0; i + 1 < nregions; i++)
        used += regions[i].pages;
    if (used >= r)
        return false;
    regions[nregions - 1].pages = r - used;

    uint64_t at = 0;
    for (size_t i = 0; i < nregions; i++) {
        region *g = &regions[i];
        uint64_t pfn = lds_ram_pfn(l, at);
        switch (g->kind) {
        case LD_PAGE_KERNEL_IMAGE:
            l->kernel_image_pfn = pfn;
            l->kernel_image_pages = g->pages;
            break;
        case LD_PAGE_PROCESSOR_BLOCKS:
            l->processor_blocks_pfn = pfn;
            break;
        case LD_PAGE_PAGE_TABLES:
            l->page_tables_pfn = pfn;
            l->page_tables_pages = g->pages;
            break;
        case LD_PAGE_KERNEL_STACKS:
            l->stacks_pfn = pfn;
            l->stacks_pages = g->pages;
            break;
        case LD_PAGE_KERNEL_OTHER:
            l->probe_pfn = pfn;
            l->hot_first_index = at + 1;
            break;
        default:
            break;
        }
        if (!add_region_runs(l, at, g->pages, g->kind))
            return false;
        l->kind_pages[g->kind] += g->pages;
        if (lds_kind_has_content(g->kind))
            l->content_pages += g->pages;
        at += g->pages;
    }

    /* The hot set fills kernel-other (after the probe page), then spills
     * into the file cache and user pages that follow it. */
    uint64_t hot_capacity = l->kind_pages[LD_PAGE_KERNEL_OTHER] - 1 + l->kind_pages[LD_PAGE_FILE_CACHE] +
                            l->kind_pages[LD_PAGE_USER];
    l->hot_pages = hot_pages < hot_capacity ? hot_pages : hot_capacity;

    /* The fixed regions must not straddle the MMIO hole (see
     * LDS_MAX_MEMORY): a stack is read as contiguous frames. */
    return l->stacks_pfn + l->stacks_pages <= l->low_end_pfn;
}

uint64_t lds_footprint(const lds_layout *l)
{
    uint64_t meta = l->max_pfn / 8 + l->max_pfn / LDS_CHUNK_PAGES; /* dirty log, chunk states */
    uint64_t content = l->content_pages * LDS_PAGE_SIZE;
    if (content <= LDS_EAGER_CONTENT_MAX)
        return content + meta;
    /* The chunks the vCPUs write (see lds_memory_init): at most two
     * partial chunks at each end of the probe, the stacks and the two
     * pieces of the hot set. */
    uint64_t pages = l->hot_pages + l->stacks_pages + 1 + 8ull * LDS_CHUNK_PAGES;
    return pages * LDS_PAGE_SIZE + meta;
}

int lds_range_of(const lds_layout *l, uint64_t pfn, uint64_t count)
{
    if (count == 0 || pfn + count < pfn)
        return -1;
    size_t i = ld_range_find(l->ranges, l->range_count, sizeof *l->ranges, pfn);
    if (i == l->range_count || count > l->ranges[i].page_count - (pfn - l->ranges[i].first_pfn))
        return -1;
    return (int)i;
}

ld_page_kind lds_kind_of(const lds_layout *l, uint64_t pfn)
{
    size_t i = ld_range_find(l->runs, l->run_count, sizeof *l->runs, pfn);
    return i < l->run_count ? (ld_page_kind)l->runs[i].kind : LD_PAGE_UNKNOWN;
}

/* The two-call convention of mem_ranges and mem_kinds. */
static ld_status copy_table(const void *table, size_t n, size_t elem, void *out, size_t *count)
{
    if (!count)
        return LD_STATUS_INVALID_PARAMETER;
    if (!out) {
        *count = n;
        return LD_STATUS_SUCCESS;
    }
    if (*count < n) {
        *count = n;
        return LD_STATUS_BUFFER_TOO_SMALL;
    }
    memcpy(out, table, n * elem);
    *count = n;
    return LD_STATUS_SUCCESS;
}

ld_status lds_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    ld_sim *sim = ctx;
    return copy_table(sim->layout.ranges, sim->layout.range_count, sizeof *ranges, ranges, count);
}

ld_status lds_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    ld_sim *sim = ctx;
    return copy_table(sim->layout.runs, sim->layout.run_count, sizeof *runs, runs, count);
}
