/* Windows 64-bit kernel dump writer (.dmp, PAGEDU64).
 *
 * File: DUMP_HEADER64 (0x2000 bytes); for a bitmap dump (type 5) the bitmap
 * header and bitmap, zero padded to a page; the present pages in ascending
 * PFN order, packed; then the secondary data (DUMP_BLOB headers: callout,
 * hypervisor and IPT blobs, and livedump's blob with every processor's
 * context). A full dump (type 1) is written when every page of every
 * physical range is present and the ranges fit the header; otherwise the
 * bitmap form. Everything streams in file order through one scratch buffer;
 * pages go straight from the engine's buffers. docs/dmp-format.md says why
 * each field holds what it holds. */
#include "format_base.h"
#include "dmp_layout.h"
#include "livedump/dmp.h"

#define DMP_SCRATCH_SIZE LDF_DMP_HEADER_SIZE
#define DMP_MAX_RUN_PAGES 256u
#define STATUS_BREAKPOINT 0x80000003u
#define EXCEPTION_NONCONTINUABLE 0x1u

static const uint8_t cpu_contexts_guid[16] = LD_DMP_GUID_CPU_CONTEXTS;

/* What the writer decided before writing the first byte. */
typedef struct dmp_plan {
    bool full;                /* type 1, else type 5 */
    bool all_ram;             /* every page of every range present */
    uint64_t bitmap_bits;     /* bitmap dumps: multiple of 64 */
    uint64_t header_bytes;    /* up to the first page */
    uint64_t primary_bytes;
    uint64_t secondary_bytes;
    const ld_cpu_context *capturing; /* NULL if there are no contexts */
} dmp_plan;

static uint64_t blob_padded(uint64_t size)
{
    return ldf_align_up(size, LDF_BLOB_ALIGN);
}

static uint64_t cpu_blob_size(const ld_dump_info *info)
{
    return LDF_CPUS_HEADER_SIZE + (uint64_t)info->cpu_count * LDF_CPUS_RECORD_SIZE;
}

static uint64_t secondary_size(const ld_dump_info *info)
{
    uint64_t n = LDF_BLOB_FILE_HEADER_SIZE;
    for (size_t i = 0; i < info->blob_count; i++)
        n += LDF_BLOB_HEADER_SIZE + blob_padded(info->blobs[i].size);
    return n + LDF_BLOB_HEADER_SIZE + blob_padded(cpu_blob_size(info));
}

static ld_status make_plan(const ld_dump *dump, dmp_plan *plan)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    memset(plan, 0, sizeof *plan);
    if (info->page_size != LDF_DMP_PAGE_SIZE)
        return LD_STATUS_NOT_SUPPORTED;
    uint64_t ram = 0;
    bool all = info->range_count > 0;
    for (size_t i = 0; i < info->range_count; i++) {
        const ld_phys_range *r = &info->ranges[i];
        ram += r->page_count;
        if (ld_dump_count_pages(dump, r->first_pfn, r->page_count) != r->page_count)
            all = false;
    }
    plan->all_ram = all && ram == info->page_count;
    plan->full = plan->all_ram && info->range_count <= LDF_DMP_MAX_RUNS;
    /* Bits up to the highest PFN, rounded to 64: readers that walk the
     * bitmap by 64-bit words (or only whole ones) then see every page. */
    uint64_t last = ld_dump_last_page(dump);
    uint64_t limit = LDF_MAX(info->max_pfn, last == UINT64_MAX ? 0 : last + 1);
    plan->bitmap_bits = ldf_align_up(limit ? limit : 1, 64);
    plan->header_bytes = plan->full ? LDF_DMP_HEADER_SIZE
                                    : ldf_align_up(LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_HEADER_SIZE + plan->bitmap_bits / 8,
                                               LDF_DMP_PAGE_SIZE);
    plan->primary_bytes = info->page_count * LDF_DMP_PAGE_SIZE;
    plan->secondary_bytes = secondary_size(info);
    if (info->contexts && info->cpu_count)
        plan->capturing = &info->contexts[info->capturing_cpu < info->cpu_count ? info->capturing_cpu : 0];
    return LD_STATUS_SUCCESS;
}

/* An x64 CONTEXT from what the HAL captured; groups it did not capture stay
 * zero and their ContextFlags bit clear. The two MxCsr copies are equal
 * (readers reject the file otherwise). */
static void put_context(uint8_t *p, const ld_cpu_context *c)
{
    memset(p, 0, LDF_CTX_SIZE);
    if (!c)
        return;
    uint32_t flags = LDF_CTX_AMD64;
    if (c->valid & LD_CTX_GPRS) {
        flags |= LDF_CTX_CONTROL | LDF_CTX_INTEGER;
        for (int i = 0; i < 16; i++)
            ldf_put64(p + LDF_CTX_OFF_RAX + 8 * i, c->gpr[i]);
        ldf_put64(p + LDF_CTX_OFF_RIP, c->rip);
        ldf_put32(p + LDF_CTX_OFF_EFLAGS, (uint32_t)c->rflags);
    }
    if (c->valid & LD_CTX_SEGMENTS) {
        flags |= LDF_CTX_SEGMENTS;
        const uint16_t segs[6] = {c->cs, c->ds, c->es, c->fs, c->gs, c->ss};
        for (int i = 0; i < 6; i++)
            ldf_put16(p + LDF_CTX_OFF_SEGCS + 2 * i, segs[i]);
    }
    if (c->valid & LD_CTX_FLOAT) {
        flags |= LDF_CTX_FLOATING_POINT;
        ldf_put32(p + LDF_CTX_OFF_MXCSR, c->mxcsr);
        ldf_put32(p + LDF_CTX_OFF_FLTSAVE_MXCSR, c->mxcsr);
    }
    ldf_put32(p + LDF_CTX_OFF_FLAGS, flags);
}

static void build_header(uint8_t *h, const ld_dump *dump, const dmp_plan *plan)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    const ld_system_info *sys = &info->system;
    const ld_cpu_context *cap = plan->capturing;

    /* Windows fills the header with "PAGE" first: fields nobody sets (and
     * that livedump cannot know, such as ProductType) read as that. */
    for (uint32_t i = 0; i < LDF_DMP_HEADER_SIZE; i += 4)
        memcpy(h + i, "PAGE", 4);
    memcpy(h + LDF_DMP_OFF_VALID_DUMP, "DU64", 4);
    ldf_put32(h + LDF_DMP_OFF_MAJOR_VERSION, sys->os_major ? sys->os_major : 0xF);
    ldf_put32(h + LDF_DMP_OFF_MINOR_VERSION, sys->os_minor);
    /* The address-space root of the processor that took the dump. */
    uint64_t dtb = cap && (cap->valid & LD_CTX_CONTROL) ? cap->cr3 : sys->directory_table_base;
    ldf_put64(h + LDF_DMP_OFF_DIRECTORY_TABLE_BASE, dtb);
    ldf_put64(h + LDF_DMP_OFF_PFN_DATABASE, sys->pfn_database);
    ldf_put64(h + LDF_DMP_OFF_LOADED_MODULE_LIST, sys->loaded_module_list);
    ldf_put64(h + LDF_DMP_OFF_ACTIVE_PROCESS_LIST, sys->active_process_list);
    /* The CONTEXT below is x64, so that is the machine when the HAL does
     * not say. */
    ldf_put32(h + LDF_DMP_OFF_MACHINE_TYPE, sys->machine_type ? sys->machine_type : 0x8664u);
    ldf_put32(h + LDF_DMP_OFF_PROCESSOR_COUNT, info->cpu_count);
    ldf_put32(h + LDF_DMP_OFF_BUGCHECK_CODE, info->bugcheck_code);
    ldf_put32(h + LDF_DMP_OFF_BUGCHECK_CODE + 4, 0);
    for (int i = 0; i < 4; i++)
        ldf_put64(h + LDF_DMP_OFF_BUGCHECK_PARAMS + 8 * i, info->bugcheck_params[i]);
    memset(h + LDF_DMP_OFF_VERSION_USER, 0, 32);
    ldf_put64(h + LDF_DMP_OFF_DEBUGGER_DATA_BLOCK, sys->debugger_data_block);

    /* Physical memory runs: the machine's RAM ranges when they fit (a
     * bitmap dump of a machine with more keeps the "PAGE" fill there, as
     * Windows' own bitmap dumps do). */
    uint8_t *pm = h + LDF_DMP_OFF_PHYSICAL_MEMORY;
    if (info->range_count <= LDF_DMP_MAX_RUNS) {
        uint64_t pages = 0;
        memset(pm, 0, 16 + 16 * info->range_count);
        ldf_put32(pm, (uint32_t)info->range_count);
        for (size_t i = 0; i < info->range_count; i++) {
            ldf_put64(pm + 16 + 16 * i, info->ranges[i].first_pfn);
            ldf_put64(pm + 24 + 16 * i, info->ranges[i].page_count);
            pages += info->ranges[i].page_count;
        }
        ldf_put64(pm + 8, pages);
    }
    /* Paddings are zero whatever the run area holds (as QEMU writes them). */
    ldf_put32(h + LDF_DMP_OFF_RUNS_PADDING, 0);

    put_context(h + LDF_DMP_OFF_CONTEXT, cap);

    /* No exception happened: Windows records a bug check as a breakpoint
     * at the bug-checking processor's instruction pointer. */
    uint8_t *ex = h + LDF_DMP_OFF_EXCEPTION;
    memset(ex, 0, 0x98);
    ldf_put32(ex, STATUS_BREAKPOINT);
    ldf_put32(ex + 4, EXCEPTION_NONCONTINUABLE);
    ldf_put64(ex + 16, cap && (cap->valid & LD_CTX_GPRS) ? cap->rip : 0);

    ldf_put32(h + LDF_DMP_OFF_DUMP_TYPE, plan->full ? LDF_DMP_DUMP_TYPE_FULL : LDF_DMP_DUMP_TYPE_BITMAP_FULL);
    ldf_put32(h + LDF_DMP_OFF_DUMP_TYPE + 4, 0);
    ldf_put64(h + LDF_DMP_OFF_REQUIRED_DUMP_SPACE, plan->header_bytes + plan->primary_bytes + plan->secondary_bytes);
    ldf_put64(h + LDF_DMP_OFF_SYSTEM_TIME, info->system_time);
    uint8_t *comment = h + LDF_DMP_OFF_COMMENT;
    memset(comment, 0, LDF_DMP_COMMENT_SIZE);
    for (uint32_t i = 0; info->comment && info->comment[i] && i + 1 < LDF_DMP_COMMENT_SIZE; i++)
        comment[i] = (uint8_t)info->comment[i];
    ldf_put64(h + LDF_DMP_OFF_SYSTEM_UPTIME, info->system_uptime);
    ldf_put32(h + LDF_DMP_OFF_MINIDUMP_FIELDS, 0);
    ldf_put32(h + LDF_DMP_OFF_SECONDARY_DATA_STATE, LD_STATUS_SUCCESS);
    /* ProductType, SuiteMask and WriterStatus stay "PAGE" (unknown); the
     * unused bytes and KdSecondaryVersion after them are zero. */
    ldf_put32(h + LDF_DMP_OFF_UNUSED1, 0);
    ldf_put32(h + LDF_DMP_OFF_ATTRIBUTES, LDF_DMP_ATTR_LIVE_DUMP);
}

/* Bitmap header, the bitmap (LSB first: bit n = PFN n), zeros up to the
 * first page. */
static ld_status write_bitmap(ld_sink_cursor *o, uint8_t *scratch, const ld_dump *dump, const dmp_plan *plan)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    memset(scratch, 0, LDF_DMP_BMP_HEADER_SIZE);
    memcpy(scratch + LDF_DMP_BMP_OFF_SIGNATURE, plan->all_ram ? "FDMP" : "SDMP", 4);
    memcpy(scratch + LDF_DMP_BMP_OFF_VALID_DUMP, "DUMP", 4);
    ldf_put64(scratch + LDF_DMP_BMP_OFF_FIRST_PAGE, plan->header_bytes);
    ldf_put64(scratch + LDF_DMP_BMP_OFF_PRESENT_PAGES, info->page_count);
    ldf_put64(scratch + LDF_DMP_BMP_OFF_BITMAP_BITS, plan->bitmap_bits);
    uint64_t fill = LDF_DMP_BMP_HEADER_SIZE;
    for (uint64_t w = 0; w < plan->bitmap_bits / 64; w++) {
        if (fill + 8 > DMP_SCRATCH_SIZE) {
            ld_status st = ld_sink_put(o, scratch, fill);
            if (st != LD_STATUS_SUCCESS)
                return st;
            fill = 0;
        }
        uint64_t word;
        ld_dump_bitmap_words(dump, w, &word, 1);
        ldf_put64(scratch + fill, word);
        fill += 8;
    }
    ld_status st = ld_sink_put(o, scratch, fill);
    if (st != LD_STATUS_SUCCESS)
        return st;
    return ld_sink_put_zeros(o, plan->header_bytes - o->offset);
}

/* Present pages in ascending PFN order; a run whose copies are adjacent in
 * the engine's buffers goes out in one write. */
static ld_status write_pages(ld_sink_cursor *o, const ld_dump *dump, ld_progress_fn progress, void *progress_arg)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    uint64_t done = 0, total = info->page_count;
    ld_page_run r;
    for (uint64_t pfn = 0; ld_dump_next_run(dump, pfn, DMP_MAX_RUN_PAGES, LD_RUN_DATA, &r); pfn = r.first_pfn + r.count) {
        if (!r.data)
            return LD_STATUS_INVALID_DEVICE_STATE;
        ld_status st = ld_sink_put(o, r.data, r.count * LDF_DMP_PAGE_SIZE);
        if (st != LD_STATUS_SUCCESS)
            return st;
        done += r.count;
        if (progress && (done % 4096 < r.count || done == total) &&
            (st = progress(progress_arg, "write", done, total)) != LD_STATUS_SUCCESS)
            return st; /* the caller said stop */
    }
    return done == total ? LD_STATUS_SUCCESS : LD_STATUS_INVALID_DEVICE_STATE;
}

static ld_status write_blob_header(ld_sink_cursor *o, uint8_t *scratch, const uint8_t guid[16], uint64_t size)
{
    memset(scratch, 0, LDF_BLOB_HEADER_SIZE);
    ldf_put32(scratch, LDF_BLOB_HEADER_SIZE);
    memcpy(scratch + 4, guid, 16);
    ldf_put32(scratch + 0x14, (uint32_t)size);
    ldf_put32(scratch + 0x18, 0);
    ldf_put32(scratch + 0x1C, (uint32_t)(blob_padded(size) - size));
    return ld_sink_put(o, scratch, LDF_BLOB_HEADER_SIZE);
}

static void put_cpu_record(uint8_t *p, const ld_cpu_context *c)
{
    memset(p, 0, LDF_CPUS_RECORD_SIZE);
    ldf_put32(p + LDF_CPUS_OFF_CPU, c->cpu);
    ldf_put32(p + LDF_CPUS_OFF_VALID, c->valid);
    const uint64_t control[5] = {c->cr0, c->cr2, c->cr3, c->cr4, c->cr8};
    for (int i = 0; i < 5; i++)
        ldf_put64(p + LDF_CPUS_OFF_CR0 + 8 * i, control[i]);
    const uint64_t more[7] = {c->fs_base, c->gs_base, c->stack_base, c->stack_limit,
                              c->stack_base_pfn, c->stack_pages, c->thread_id};
    for (int i = 0; i < 7; i++)
        ldf_put64(p + LDF_CPUS_OFF_FS_BASE + 8 * i, more[i]);
    put_context(p + LDF_CPUS_OFF_CONTEXT, c);
}

/* DUMP_BLOB_FILE_HEADER, each blob (header, data, zero pad to 8 bytes),
 * and last livedump's blob of every processor's context. */
static ld_status write_secondary(ld_sink_cursor *o, uint8_t *scratch, const ld_dump *dump)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    static const uint8_t zeros[LDF_BLOB_ALIGN];
    memcpy(scratch, "DumpBlob", 8);
    ldf_put32(scratch + 8, LDF_BLOB_FILE_HEADER_SIZE);
    ldf_put32(scratch + 12, info->system.os_minor);
    ld_status st = ld_sink_put(o, scratch, LDF_BLOB_FILE_HEADER_SIZE);
    for (size_t i = 0; st == LD_STATUS_SUCCESS && i < info->blob_count; i++) {
        const ld_blob *b = &info->blobs[i];
        st = write_blob_header(o, scratch, b->guid, b->size);
        if (st == LD_STATUS_SUCCESS)
            st = ld_sink_put(o, b->data, b->size);
        if (st == LD_STATUS_SUCCESS)
            st = ld_sink_put(o, zeros, blob_padded(b->size) - b->size);
    }
    if (st != LD_STATUS_SUCCESS)
        return st;
    uint64_t size = cpu_blob_size(info);
    st = write_blob_header(o, scratch, cpu_contexts_guid, size);
    if (st != LD_STATUS_SUCCESS)
        return st;
    memset(scratch, 0, LDF_CPUS_HEADER_SIZE);
    memcpy(scratch, "LDCX", 4);
    ldf_put32(scratch + 4, LDF_CPUS_VERSION);
    ldf_put32(scratch + 8, info->cpu_count);
    ldf_put32(scratch + 12, LDF_CPUS_RECORD_SIZE);
    ldf_put32(scratch + 16, info->capturing_cpu);
    st = ld_sink_put(o, scratch, LDF_CPUS_HEADER_SIZE);
    for (uint32_t i = 0; st == LD_STATUS_SUCCESS && i < info->cpu_count; i++) {
        put_cpu_record(scratch, &info->contexts[i]);
        st = ld_sink_put(o, scratch, LDF_CPUS_RECORD_SIZE);
    }
    if (st == LD_STATUS_SUCCESS)
        st = ld_sink_put(o, zeros, blob_padded(size) - size);
    return st;
}

static ld_status dmp_write(const ld_dump *dump, ld_sink *sink, ld_progress_fn progress, void *progress_arg,
                           ld_write_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    const ld_dump_info *info = ld_dump_get_info(dump);
    if (!info || (info->cpu_count && !info->contexts) || info->blob_count > 0x10000)
        return LD_STATUS_INVALID_PARAMETER;
    for (size_t i = 0; i < info->blob_count; i++)
        if (info->blobs[i].size > LDF_BLOB_MAX_DATA) /* DataSize is a u32 */
            return LD_STATUS_NOT_SUPPORTED;
    dmp_plan plan;
    ld_status st = make_plan(dump, &plan);
    if (st != LD_STATUS_SUCCESS)
        return st;
    uint8_t *scratch = ld_dump_alloc_memory(dump, DMP_SCRATCH_SIZE);
    if (!scratch)
        return LD_STATUS_NO_MEMORY;
    ld_sink_cursor o = {sink, 0};
    build_header(scratch, dump, &plan);
    st = ld_sink_put(&o, scratch, LDF_DMP_HEADER_SIZE);
    if (st == LD_STATUS_SUCCESS && !plan.full)
        st = write_bitmap(&o, scratch, dump, &plan);
    if (st == LD_STATUS_SUCCESS)
        st = write_pages(&o, dump, progress, progress_arg);
    if (st == LD_STATUS_SUCCESS)
        st = write_secondary(&o, scratch, dump);
    ld_dump_free_memory(dump, scratch);
    if (st != LD_STATUS_SUCCESS)
        return st;
    stats->header_bytes = plan.header_bytes;
    stats->primary_bytes = plan.primary_bytes;
    stats->secondary_bytes = plan.secondary_bytes;
    stats->file_bytes = o.offset;
    /* The plan and the bytes written must agree, or the header lied. */
    return o.offset == plan.header_bytes + plan.primary_bytes + plan.secondary_bytes ? LD_STATUS_SUCCESS
                                                                                 : LD_STATUS_INVALID_DEVICE_STATE;
}

/* Everything but the page data, the blob data and the processor contexts:
 * the header, bitmap header and bitmap padded to a page, the blob headers
 * with their padding, and the whole processor-context blob (its records are
 * larger than the contexts the engine counts). Independent of `pages`: the
 * bitmap covers every PFN whatever is present. */
static uint64_t dmp_overhead(const ld_dump_info *info, uint64_t pages)
{
    (void)pages;
    uint64_t bits = ldf_align_up(info->max_pfn ? info->max_pfn : 1, 64);
    uint64_t n = ldf_align_up(LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_HEADER_SIZE + bits / 8, LDF_DMP_PAGE_SIZE);
    n += LDF_BLOB_FILE_HEADER_SIZE + (uint64_t)info->blob_count * (LDF_BLOB_HEADER_SIZE + LDF_BLOB_ALIGN - 1);
    return n + LDF_BLOB_HEADER_SIZE + blob_padded(cpu_blob_size(info));
}

static const ld_format dmp_format = {
    .version = LD_FORMAT_VERSION,
    .name = "dmp",
    .write = dmp_write,
    .overhead = dmp_overhead,
};

const ld_format *ld_format_dmp(void)
{
    return &dmp_format;
}
