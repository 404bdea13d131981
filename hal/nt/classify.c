/* Page kinds from what a driver can see, classified afresh at each capture
 * (PASSIVE_LEVEL, the machine running):
 *
 *   kernel image, HAL image  the first loaded module and hal.dll, from
 *                            ZwQuerySystemInformation(SystemModuleInformation);
 *                            each resident page's frame by MmGetPhysicalAddress
 *   page tables              a walk of the kernel half of the System
 *                            process's page tables (KeInitializeCrashDumpHeader's
 *                            DirectoryTableBase), read with MmCopyMemory;
 *                            the format is the processor's, not Windows'
 *   processor blocks         LDN_PRCB_SPAN bytes from each processor's KPCR
 *                            (its GS base, read on that processor)
 *   shared user data         KI_USER_SHARED_DATA
 *   debugger data            KdDebuggerDataBlock
 *   loaded modules           PsLoadedModuleList and its entries, read with
 *                            MmCopyMemory (a list that changes under us
 *                            gives a short walk, never a fault)
 *   secure kernel            every RAM page MmCopyMemory refuses: memory the
 *                            OS will not let us read (VTL1, the hypervisor's);
 *                            never selected, so never mapped while stopped
 *
 * Everything else is unknown (kept by full dumps as other kernel data): a
 * driver has no documented way to tell free, user or cache pages apart. */
#include "nt_internal.h"

/* Precedence when one page is claimed twice: the higher rank wins. An
 * unreadable page is never anything else. */
static const uint8_t rank_kind[] = {
    LD_PAGE_UNKNOWN,        LD_PAGE_PAGE_TABLES,     LD_PAGE_HAL_IMAGE,
    LD_PAGE_KERNEL_IMAGE,   LD_PAGE_PROCESSOR_BLOCKS, LD_PAGE_SHARED_USER_DATA,
    LD_PAGE_LOADED_MODULES, LD_PAGE_DEBUGGER_DATA,   LD_PAGE_SECURE_KERNEL,
};
#define RANKS (sizeof rank_kind / sizeof rank_kind[0])

static unsigned rank_of(ld_page_kind k)
{
    for (unsigned r = 0; r < RANKS; r++)
        if (rank_kind[r] == (uint8_t)k)
            return r;
    return 0;
}

/* One mark per page: pfn << 8 | rank, so sorting puts a page's claims
 * together with the winning one last. */
typedef struct marks {
    uint64_t *v;
    size_t n, cap;
    bool failed;
} marks;

static void mark(ldn *n, marks *m, uint64_t pfn, ld_page_kind kind)
{
    if (m->failed || !ldn_in_ram(n, pfn))
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        uint64_t *grown = ldn_alloc(cap * sizeof *grown);
        if (!grown) {
            m->failed = true;
            return;
        }
        if (m->n)
            memcpy(grown, m->v, m->n * sizeof *grown);
        ldn_free(m->v);
        m->v = grown;
        m->cap = cap;
    }
    m->v[m->n++] = pfn << 8 | rank_of(kind);
}

/* Every resident page of [va, va + bytes). */
static void mark_va(ldn *n, marks *m, uint64_t va, uint64_t bytes, ld_page_kind kind)
{
    if (!va || !bytes)
        return;
    uint64_t first = va & ~(uint64_t)(LDN_PAGE - 1), end = va + bytes;
    if (end < va)
        end = UINT64_MAX;
    for (uint64_t p = first; p < end && p >= first; p += LDN_PAGE) {
        if (!MmIsAddressValid((PVOID)(ULONG_PTR)p))
            continue;
        PHYSICAL_ADDRESS pa = MmGetPhysicalAddress((PVOID)(ULONG_PTR)p);
        if (pa.QuadPart)
            mark(n, m, (uint64_t)pa.QuadPart / LDN_PAGE, kind);
    }
}

/* Kernel memory read without the risk of a fault. */
static bool read_virtual(uint64_t va, void *dst, size_t len)
{
    MM_COPY_ADDRESS src;
    src.VirtualAddress = (PVOID)(ULONG_PTR)va;
    SIZE_T done = 0;
    NTSTATUS s = MmCopyMemory(dst, src, len, MM_COPY_MEMORY_VIRTUAL, &done);
    return NT_SUCCESS(s) && done == len;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- loaded modules: RTL_PROCESS_MODULES (class 11) ----
 * ULONG NumberOfModules, then 8-aligned entries of 0x128 bytes:
 * ImageBase at +0x10, ImageSize at +0x18, OffsetToFileName at +0x26,
 * FullPathName[256] at +0x28. */
#define MOD_FIRST 8u
#define MOD_SIZE 0x128u
#define MOD_BASE 0x10u
#define MOD_IMAGE_SIZE 0x18u
#define MOD_NAME_OFFSET 0x26u
#define MOD_PATH 0x28u
#define MOD_PATH_MAX 256u

static bool name_is(const uint8_t *path, uint16_t off, const char *want)
{
    if (off >= MOD_PATH_MAX)
        return false;
    const uint8_t *p = path + off;
    size_t i = 0;
    for (; want[i]; i++) {
        if (off + i >= MOD_PATH_MAX)
            return false;
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)want[i])
            return false;
    }
    return off + i >= MOD_PATH_MAX || p[i] == 0;
}

static void mark_modules(ldn *n, marks *m)
{
    ULONG need = 0;
    uint8_t probe[16];
    NTSTATUS s = ZwQuerySystemInformation(LDN_SYSTEM_MODULE_INFORMATION, probe, sizeof probe, &need);
    if (s != STATUS_INFO_LENGTH_MISMATCH && s != STATUS_BUFFER_TOO_SMALL && !NT_SUCCESS(s))
        return;
    if (need < MOD_FIRST || need > (64u << 20))
        return;
    need += 16 * MOD_SIZE; /* modules loaded meanwhile */
    uint8_t *buf = ldn_alloc(need);
    if (!buf)
        return;
    ULONG got = 0;
    s = ZwQuerySystemInformation(LDN_SYSTEM_MODULE_INFORMATION, buf, need, &got);
    if (NT_SUCCESS(s) && got >= MOD_FIRST && got <= need) {
        uint32_t count = get32(buf);
        if (count > (got - MOD_FIRST) / MOD_SIZE)
            count = (got - MOD_FIRST) / MOD_SIZE;
        n->stats.modules = count;
        bool hal_seen = false;
        for (uint32_t i = 0; i < count; i++) {
            const uint8_t *e = buf + MOD_FIRST + (size_t)i * MOD_SIZE;
            uint16_t off;
            memcpy(&off, e + MOD_NAME_OFFSET, 2);
            bool is_hal = name_is(e + MOD_PATH, off, "hal.dll");
            /* The kernel is always first in load order. */
            if (i == 0) {
                n->sys.kernel_base = get64(e + MOD_BASE);
                mark_va(n, m, get64(e + MOD_BASE), get32(e + MOD_IMAGE_SIZE), LD_PAGE_KERNEL_IMAGE);
            }
            else if (is_hal && !hal_seen)
                mark_va(n, m, get64(e + MOD_BASE), get32(e + MOD_IMAGE_SIZE), LD_PAGE_HAL_IMAGE);
            hal_seen |= is_hal && i;
        }
    }
    ldn_free(buf);
}

/* ---- the kernel's page tables ---- */

#define PTE_PRESENT 0x1ull
#define PTE_LARGE 0x80ull
#define PTE_PFN(e) (((e) >> 12) & 0xFFFFFFFFFFull)

static void walk_tables(ldn *n, marks *m, uint8_t *buf)
{
    uint64_t root = PTE_PFN(n->sys.directory_table_base);
    if (!root || !ldn_in_ram(n, root) || !ldn_read_phys(n, root * LDN_PAGE, buf, LDN_PAGE))
        return;
    uint8_t *pml4 = buf, *pdpt = buf + LDN_PAGE, *pd = buf + 2 * LDN_PAGE;
    uint64_t found = 1;
    mark(n, m, root, LD_PAGE_PAGE_TABLES);
    for (unsigned i = 256; i < 512; i++) { /* the kernel half */
        uint64_t e4 = get64(pml4 + 8 * i), p3 = PTE_PFN(e4);
        /* the self-map entry points back at the root */
        if (!(e4 & PTE_PRESENT) || p3 == root || !ldn_in_ram(n, p3))
            continue;
        mark(n, m, p3, LD_PAGE_PAGE_TABLES);
        found++;
        if (!ldn_read_phys(n, p3 * LDN_PAGE, pdpt, LDN_PAGE))
            continue;
        for (unsigned j = 0; j < 512; j++) {
            uint64_t e3 = get64(pdpt + 8 * j), p2 = PTE_PFN(e3);
            if (!(e3 & PTE_PRESENT) || (e3 & PTE_LARGE) || !ldn_in_ram(n, p2))
                continue; /* a 1 GiB page has no table below */
            mark(n, m, p2, LD_PAGE_PAGE_TABLES);
            found++;
            if (!ldn_read_phys(n, p2 * LDN_PAGE, pd, LDN_PAGE))
                continue;
            for (unsigned k = 0; k < 512; k++) {
                uint64_t e2 = get64(pd + 8 * k), p1 = PTE_PFN(e2);
                if (!(e2 & PTE_PRESENT) || (e2 & PTE_LARGE) || !ldn_in_ram(n, p1))
                    continue; /* a 2 MiB page has no table below */
                mark(n, m, p1, LD_PAGE_PAGE_TABLES);
                found++;
            }
        }
    }
    n->stats.page_table_pages = found;
}

/* ---- processor blocks: each processor's KPCR, read on that processor ---- */

static void mark_prcbs(ldn *n, marks *m)
{
    for (uint32_t i = 0; i < n->cpus; i++) {
        GROUP_AFFINITY want, prev;
        memset(&want, 0, sizeof want);
        memset(&prev, 0, sizeof prev);
        want.Group = n->cpu[i].number.Group;
        want.Mask = (KAFFINITY)1 << n->cpu[i].number.Number;
        KeSetSystemGroupAffinityThread(&want, &prev);
        ldn_cpu_regs r;
        ldn_read_cpu_regs(&r);
        KeRevertToUserGroupAffinityThread(&prev);
        mark_va(n, m, r.gs_base, LDN_PRCB_SPAN, LD_PAGE_PROCESSOR_BLOCKS);
    }
}

/* ---- the debugger's structures ---- */

#define KDBG_SIZE_FIELD 0x14u
#define KDBG_DEFAULT_BYTES 0x400u
#define LDR_ENTRY_BYTES 0x120u
#define LDR_MAX_ENTRIES 4096u

static void mark_debugger_data(ldn *n, marks *m)
{
    uint64_t kdbg = n->sys.debugger_data_block;
    if (kdbg) {
        uint32_t size = n->kdbg.valid ? n->kdbg.size : KDBG_DEFAULT_BYTES;
        mark_va(n, m, kdbg, size, LD_PAGE_DEBUGGER_DATA);
    }
    uint64_t head = n->sys.loaded_module_list;
    if (!head)
        return;
    mark_va(n, m, head, 16, LD_PAGE_LOADED_MODULES);
    uint64_t at = head;
    for (unsigned i = 0; i < LDR_MAX_ENTRIES; i++) {
        uint64_t next;
        if (!read_virtual(at, &next, sizeof next) || !next || next == head)
            break;
        mark_va(n, m, next, LDR_ENTRY_BYTES, LD_PAGE_LOADED_MODULES);
        at = next;
    }
}

/* ---- pages MmCopyMemory refuses ---- */

static void mark_unreadable(ldn *n, marks *m)
{
    uint64_t bad = 0, word;
    for (size_t r = 0; r < n->range_count; r++)
        for (uint64_t i = 0; i < n->ranges[r].page_count; i++) {
            uint64_t pfn = n->ranges[r].first_pfn + i;
            if (!ldn_read_phys(n, pfn * LDN_PAGE, &word, sizeof word)) {
                mark(n, m, pfn, LD_PAGE_SECURE_KERNEL);
                bad++;
            }
        }
    n->stats.unreadable_pages = bad;
}

/* ---- sort and merge ---- */

static void sift_down(uint64_t *v, size_t start, size_t end)
{
    size_t root = start;
    while (2 * root + 1 < end) {
        size_t child = 2 * root + 1;
        if (child + 1 < end && v[child] < v[child + 1])
            child++;
        if (v[root] >= v[child])
            return;
        uint64_t t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

/* Heapsort: in place, no recursion, no allocation. */
static void sort_marks(uint64_t *v, size_t count)
{
    for (size_t i = count / 2; i-- > 0;)
        sift_down(v, i, count);
    for (size_t end = count; end > 1; end--) {
        uint64_t t = v[0];
        v[0] = v[end - 1];
        v[end - 1] = t;
        sift_down(v, 0, end - 1);
    }
}

/* The claims as runs of one kind (sorted, disjoint), then every RAM page
 * they leave out as explicit unknown runs: the engine selects what the
 * runs name (hal.h calls pages in no run unknown, but a full dump takes
 * only pages some run lists). Two passes: count, then fill. */
static size_t special_runs(const marks *m, ld_kind_range *out)
{
    size_t runs = 0;
    uint64_t last_pfn = 0;
    uint32_t last_kind = LD_PAGE_UNKNOWN;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t pfn = m->v[i] >> 8;
        if (i + 1 < m->n && (m->v[i + 1] >> 8) == pfn)
            continue; /* a higher-ranked claim follows */
        uint32_t kind = rank_kind[(m->v[i] & 0xff) % RANKS];
        if (runs && pfn == last_pfn + 1 && kind == last_kind) {
            if (out)
                out[runs - 1].page_count++;
        } else {
            if (out)
                out[runs] = (ld_kind_range){pfn, 1, kind};
            runs++;
        }
        last_pfn = pfn;
        last_kind = kind;
    }
    return runs;
}

static size_t with_gaps(const ldn *n, const ld_kind_range *sp, size_t count, ld_kind_range *out)
{
    size_t runs = 0, k = 0;
    for (size_t r = 0; r < n->range_count; r++) {
        uint64_t at = n->ranges[r].first_pfn, end = at + n->ranges[r].page_count;
        while (at < end) {
            while (k < count && sp[k].first_pfn + sp[k].page_count <= at)
                k++;
            uint64_t next = k < count && sp[k].first_pfn < end ? sp[k].first_pfn : end;
            if (next > at) { /* a gap: unknown */
                if (out)
                    out[runs] = (ld_kind_range){at, next - at, LD_PAGE_UNKNOWN};
                runs++;
                at = next;
                continue;
            }
            /* marks are pages of RAM: a run never crosses a range's end */
            uint64_t stop = sp[k].first_pfn + sp[k].page_count;
            if (stop > end)
                stop = end;
            if (out)
                out[runs] = (ld_kind_range){at, stop - at, sp[k].kind};
            runs++;
            at = stop;
        }
    }
    return runs;
}

static ld_status build_runs(ldn *n, marks *m)
{
    sort_marks(m->v, m->n);
    size_t count = special_runs(m, NULL);
    ld_kind_range *sp = ldn_alloc((count ? count : 1) * sizeof *sp);
    if (!sp)
        return LD_STATUS_NO_MEMORY;
    special_runs(m, sp);
    size_t total = with_gaps(n, sp, count, NULL);
    ldn_free(n->kinds);
    n->kind_count = 0;
    n->kinds = ldn_alloc((total ? total : 1) * sizeof *n->kinds);
    if (!n->kinds) {
        ldn_free(sp);
        return LD_STATUS_NO_MEMORY;
    }
    n->kind_count = with_gaps(n, sp, count, n->kinds);
    ldn_free(sp);
    return LD_STATUS_SUCCESS;
}

static ld_status classify(ldn *n)
{
    ld_status st = ldn_sysinfo_refresh(n); /* the header's addresses, the decoded KDBG */
    if (st != LD_STATUS_SUCCESS)
        return st;
    marks m = {NULL, 0, 0, false};
    uint8_t *tables = ldn_alloc(3 * LDN_PAGE);
    if (!tables)
        return LD_STATUS_NO_MEMORY;
    n->stats.page_table_pages = 0;
    n->stats.unreadable_pages = 0;
    mark_modules(n, &m);
    walk_tables(n, &m, tables);
    mark_prcbs(n, &m);
    mark_va(n, &m, KI_USER_SHARED_DATA, LDN_PAGE, LD_PAGE_SHARED_USER_DATA);
    mark_debugger_data(n, &m);
    if (!(n->cfg.nt_flags & LD_NT_NO_PROBE))
        mark_unreadable(n, &m);
    ldn_free(tables);
    st = m.failed ? LD_STATUS_NO_MEMORY : build_runs(n, &m);
    ldn_free(m.v);
    return st;
}

ld_status ldn_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    ldn *n = ctx;
    if (!count)
        return LD_STATUS_INVALID_PARAMETER;
    if (!runs || !n->kinds) {
        ld_status st = classify(n);
        if (st != LD_STATUS_SUCCESS)
            return st;
    }
    if (!runs) {
        *count = n->kind_count;
        return LD_STATUS_SUCCESS;
    }
    if (*count < n->kind_count) {
        *count = n->kind_count;
        return LD_STATUS_BUFFER_TOO_SMALL;
    }
    memcpy(runs, n->kinds, n->kind_count * sizeof *runs);
    *count = n->kind_count;
    return LD_STATUS_SUCCESS;
}
