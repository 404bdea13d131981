/* Reader of 64-bit Windows kernel dumps (full and bitmap), for any writer's
 * files. Every number taken from the file is checked before it is used as
 * an offset, a count or an allocation size: the file is hostile until
 * proven otherwise. Offsets are in src/formats/dmp_layout.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/dmp.h"
#include "dmp_layout.h"
#include "errno_status.h"
#include "error.h"
#include "file_io.h"

#define PAGE LDF_DMP_PAGE_SIZE
/* PFNs whose byte address fits in 64 bits. */
#define PFN_LIMIT (UINT64_C(1) << 52)
#define UNSET_U32 0x45474150u /* "PAGE": a field Windows left unset */
#define MAX_BLOBS 65536u
/* Runs may use the 4 padding bytes up to the CONTEXT (some writers declare
 * 43 runs); no more fit. */
#define MAX_RUNS_READ ((LDF_DMP_OFF_CONTEXT - LDF_DMP_OFF_PHYSICAL_MEMORY - 16u) / 16u)

struct ld_dmp {
    int fd;               /* -1 for a memory image */
    const uint8_t *mem;
    uint64_t size;
    ld_dmp_info info;
    uint8_t header[LDF_DMP_HEADER_SIZE];
    char comment[LDF_DMP_COMMENT_SIZE + 1];
    ld_phys_range runs[MAX_RUNS_READ];
    uint64_t run_first_index[MAX_RUNS_READ]; /* pages stored before each run */
    bool full;
    /* bitmap dumps */
    uint64_t *bits;
    uint64_t nwords;
    uint64_t *rank;       /* set bits in words[0..w-1] */
    uint64_t present_pages_field;
    uint64_t bitmap_bits;
    /* secondary data */
    ld_dmp_blob *blobs;
    size_t blob_count;
    uint64_t blobs_end;   /* where the blob walk stopped */
    const char *blob_problem;
    /* livedump's contexts blob */
    bool has_cpu_blob;
    uint64_t cpu_records_offset;
    uint32_t cpu_record_size, capturing_cpu;
};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static unsigned popcount64(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

/* The first failure of an open, with the file offset it is about
 * (LD_ERROR_NO_OFFSET: none). */
#define fail(err, st, offset, ...) ldu_fail_full((err), (st), 0, 0, (offset), __VA_ARGS__)

/* Read len bytes at off; the caller has checked off + len <= size. */
static ld_status read_at(const ld_dmp *d, uint64_t off, void *buf, size_t len)
{
    if (off > d->size || len > d->size - off)
        return LD_STATUS_END_OF_FILE;
    if (d->mem) {
        memcpy(buf, d->mem + off, len);
        return LD_STATUS_SUCCESS;
    }
    return ldu_pread_all(d->fd, buf, len, off); /* END_OF_FILE: it shrank since open */
}

/* ---- the header ---- */

static void parse_fields(ld_dmp *d)
{
    const uint8_t *h = d->header;
    ld_dmp_info *in = &d->info;
    in->major_version = get32(h + LDF_DMP_OFF_MAJOR_VERSION);
    in->minor_version = get32(h + LDF_DMP_OFF_MINOR_VERSION);
    in->directory_table_base = get64(h + LDF_DMP_OFF_DIRECTORY_TABLE_BASE);
    in->pfn_database = get64(h + LDF_DMP_OFF_PFN_DATABASE);
    in->loaded_module_list = get64(h + LDF_DMP_OFF_LOADED_MODULE_LIST);
    in->active_process_list = get64(h + LDF_DMP_OFF_ACTIVE_PROCESS_LIST);
    in->machine_type = get32(h + LDF_DMP_OFF_MACHINE_TYPE);
    in->processor_count = get32(h + LDF_DMP_OFF_PROCESSOR_COUNT);
    in->bugcheck_code = get32(h + LDF_DMP_OFF_BUGCHECK_CODE);
    for (int i = 0; i < 4; i++)
        in->bugcheck_params[i] = get64(h + LDF_DMP_OFF_BUGCHECK_PARAMS + 8 * i);
    in->debugger_data_block = get64(h + LDF_DMP_OFF_DEBUGGER_DATA_BLOCK);
    in->required_dump_space = get64(h + LDF_DMP_OFF_REQUIRED_DUMP_SPACE);
    in->system_time = get64(h + LDF_DMP_OFF_SYSTEM_TIME);
    in->system_uptime = get64(h + LDF_DMP_OFF_SYSTEM_UPTIME);
    in->attributes = get32(h + LDF_DMP_OFF_ATTRIBUTES);
    in->secondary_data_state = get32(h + LDF_DMP_OFF_SECONDARY_DATA_STATE);
    /* The comment is ASCII and may not be terminated: keep printable
     * characters up to the first NUL. */
    size_t n = 0;
    for (; n < LDF_DMP_COMMENT_SIZE; n++) {
        uint8_t c = h[LDF_DMP_OFF_COMMENT + n];
        if (c == 0)
            break;
        d->comment[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    d->comment[n] = 0;
    in->comment = d->comment;
}

/* The physical memory runs. Returns false when they are unset or
 * malformed (the reason in *why). */
static bool parse_runs(ld_dmp *d, const char **why)
{
    const uint8_t *pm = d->header + LDF_DMP_OFF_PHYSICAL_MEMORY;
    uint32_t count = get32(pm);
    d->info.run_pages = get64(pm + 8);
    if (count == UNSET_U32) {
        *why = "the physical memory runs are unset";
        return false;
    }
    if (count > MAX_RUNS_READ) {
        *why = "NumberOfRuns exceeds what the header can hold";
        return false;
    }
    uint64_t stored = 0, end = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t base = get64(pm + 16 + 16 * i), pages = get64(pm + 24 + 16 * i);
        if (base >= PFN_LIMIT || pages > PFN_LIMIT - base) {
            *why = "a physical memory run lies beyond 2^52 pages";
            return false;
        }
        if (base < end) {
            *why = "physical memory runs are not ascending or overlap";
            return false;
        }
        d->runs[i] = (ld_phys_range){base, pages};
        d->run_first_index[i] = stored;
        stored += pages;
        end = base + pages;
    }
    d->info.runs = d->runs;
    d->info.run_count = count;
    return true;
}

static ld_status open_full(ld_dmp *d, ld_error *err)
{
    const char *why = "";
    if (!parse_runs(d, &why))
        return fail(err, LD_STATUS_FILE_CORRUPT, LDF_DMP_OFF_PHYSICAL_MEMORY, "full dump: %s", why);
    uint64_t pages = 0, limit = 0;
    for (size_t i = 0; i < d->info.run_count; i++) {
        pages += d->runs[i].page_count;
        limit = d->runs[i].first_pfn + d->runs[i].page_count;
    }
    uint64_t room = (d->size - LDF_DMP_HEADER_SIZE) / PAGE;
    if (pages > room)
        return fail(err, LD_STATUS_END_OF_FILE, d->size,
                    "file truncated: the runs promise %llu pages, the file holds %llu",
                    (unsigned long long)pages, (unsigned long long)room);
    d->full = true;
    d->info.page_count = pages;
    d->info.pfn_limit = limit;
    d->info.first_page_offset = LDF_DMP_HEADER_SIZE;
    return LD_STATUS_SUCCESS;
}

static ld_status open_bitmap(ld_dmp *d, ld_error *err)
{
    uint8_t bh[LDF_DMP_BMP_HEADER_SIZE];
    if (d->size < LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_HEADER_SIZE)
        return fail(err, LD_STATUS_END_OF_FILE, d->size, "file truncated inside the bitmap header");
    ld_status st = read_at(d, LDF_DMP_HEADER_SIZE, bh, sizeof bh);
    if (st != LD_STATUS_SUCCESS)
        return fail(err, st, LDF_DMP_HEADER_SIZE, "cannot read the bitmap header");
    if ((memcmp(bh, "SDMP", 4) && memcmp(bh, "FDMP", 4)) || memcmp(bh + LDF_DMP_BMP_OFF_VALID_DUMP, "DUMP", 4))
        return fail(err, LD_STATUS_FILE_CORRUPT, LDF_DMP_HEADER_SIZE,
                    "bitmap header signature is not SDMP/FDMP + DUMP");
    memcpy(d->info.bitmap_signature, bh, 4);
    d->info.bitmap_signature[4] = 0;
    uint64_t first = get64(bh + LDF_DMP_BMP_OFF_FIRST_PAGE);
    uint64_t nbits = get64(bh + LDF_DMP_BMP_OFF_BITMAP_BITS);
    d->bitmap_bits = nbits;
    d->present_pages_field = get64(bh + LDF_DMP_BMP_OFF_PRESENT_PAGES);
    d->info.bitmap_size = nbits;
    d->info.total_present_pages = d->present_pages_field;
    const uint64_t bitmap_at = LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_HEADER_SIZE;
    if (nbits > PFN_LIMIT)
        return fail(err, LD_STATUS_FILE_CORRUPT, bitmap_at - 8, "bitmap of %llu bits is too large",
                    (unsigned long long)nbits);
    uint64_t nbytes = (nbits + 7) / 8;
    if (first < bitmap_at || first - bitmap_at < nbytes)
        return fail(err, LD_STATUS_FILE_CORRUPT, bitmap_at - 0x18,
                    "first page offset 0x%llx overlaps the %llu-byte bitmap", (unsigned long long)first,
                    (unsigned long long)nbytes);
    if (first > d->size)
        return fail(err, LD_STATUS_END_OF_FILE, d->size, "file truncated before the first page (0x%llx)",
                    (unsigned long long)first);
    d->nwords = (nbits + 63) / 64;
    d->bits = calloc(d->nwords ? d->nwords : 1, sizeof *d->bits);
    d->rank = calloc(d->nwords ? d->nwords : 1, sizeof *d->rank);
    if (!d->bits || !d->rank)
        return fail(err, LD_STATUS_NO_MEMORY, LD_ERROR_NO_OFFSET, "out of memory for a %llu-bit bitmap",
                    (unsigned long long)nbits);
    /* Read in chunks; bytes past nbits/8 and bits past nbits stay zero. */
    uint8_t chunk[4096];
    for (uint64_t done = 0; done < nbytes;) {
        size_t n = (size_t)(nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk);
        st = read_at(d, bitmap_at + done, chunk, n);
        if (st != LD_STATUS_SUCCESS)
            return fail(err, st, bitmap_at + done, "cannot read the bitmap");
        for (size_t i = 0; i < n; i++)
            d->bits[(done + i) / 8] |= (uint64_t)chunk[i] << (8 * ((done + i) % 8));
        done += n;
    }
    if (nbits % 64)
        d->bits[d->nwords - 1] &= (UINT64_C(1) << (nbits % 64)) - 1;
    uint64_t count = 0, limit = 0;
    for (uint64_t w = 0; w < d->nwords; w++) {
        d->rank[w] = count;
        count += popcount64(d->bits[w]);
        if (d->bits[w])
            limit = w * 64 + 64 - (uint64_t)__builtin_clzll(d->bits[w]);
    }
    uint64_t room = (d->size - first) / PAGE;
    if (count > room)
        return fail(err, LD_STATUS_END_OF_FILE, d->size,
                    "file truncated: the bitmap names %llu pages, the file holds %llu",
                    (unsigned long long)count, (unsigned long long)room);
    const char *why;
    (void)parse_runs(d, &why); /* informative only in a bitmap dump */
    d->info.page_count = count;
    d->info.pfn_limit = limit;
    d->info.first_page_offset = first;
    return LD_STATUS_SUCCESS;
}

/* ---- secondary data ---- */

static const uint8_t cpu_guid[16] = LD_DMP_GUID_CPU_CONTEXTS;

static bool add_blob(ld_dmp *d, const ld_dmp_blob *b)
{
    if (d->blob_count >= MAX_BLOBS)
        return false;
    if ((d->blob_count & (d->blob_count - 1)) == 0) { /* grow at powers of two */
        size_t cap = d->blob_count ? d->blob_count * 2 : 4;
        ld_dmp_blob *nb = realloc(d->blobs, cap * sizeof *nb);
        if (!nb)
            return false;
        d->blobs = nb;
    }
    d->blobs[d->blob_count++] = *b;
    return true;
}

/* Walk DUMP_BLOB headers from the end of the pages. A malformed area does
 * not fail the open (the pages are the dump); verify reports it. */
static void parse_secondary(ld_dmp *d)
{
    uint64_t at = d->info.first_page_offset + d->info.page_count * PAGE;
    d->blobs_end = at;
    if (at == d->size)
        return;
    uint8_t fh[LDF_BLOB_FILE_HEADER_SIZE];
    if (d->size - at < sizeof fh || read_at(d, at, fh, sizeof fh) != LD_STATUS_SUCCESS ||
        memcmp(fh, "DumpBlob", 8)) {
        d->blob_problem = "data after the pages is not a DumpBlob area";
        return;
    }
    uint32_t fhsize = get32(fh + 8);
    if (fhsize < sizeof fh || fhsize > d->size - at) {
        d->blob_problem = "DumpBlob file header size is out of bounds";
        return;
    }
    at += fhsize;
    while (at < d->size) {
        uint8_t bh[LDF_BLOB_HEADER_SIZE];
        if (d->size - at < sizeof bh || read_at(d, at, bh, sizeof bh) != LD_STATUS_SUCCESS) {
            d->blob_problem = "a blob header runs past the end of the file";
            break;
        }
        uint64_t hsize = get32(bh), data = get32(bh + 0x14), pre = get32(bh + 0x18), post = get32(bh + 0x1C);
        uint64_t left = d->size - at;
        /* Each term is < 2^32, so the sums cannot overflow. */
        if (hsize < sizeof bh) {
            d->blob_problem = "a blob header gives a size below 0x20";
            break;
        }
        if (hsize + pre + data > left) {
            d->blob_problem = "a blob runs past the end of the file";
            break;
        }
        ld_dmp_blob b;
        memcpy(b.guid, bh + 4, 16);
        b.offset = at + hsize + pre;
        b.size = data;
        if (!add_blob(d, &b)) {
            d->blob_problem = "too many blobs";
            break;
        }
        at += hsize + pre + data;
        if (post > d->size - at) {
            d->blob_problem = "a blob's padding runs past the end of the file";
            break;
        }
        at += post;
    }
    d->blobs_end = at;
    d->info.blob_count = d->blob_count;
}

/* livedump's contexts blob, if there is a well-formed one. */
static void find_cpu_blob(ld_dmp *d)
{
    d->info.context_count = 1; /* the header's CONTEXT */
    for (size_t i = 0; i < d->blob_count; i++) {
        const ld_dmp_blob *b = &d->blobs[i];
        uint8_t h[LDF_CPUS_HEADER_SIZE];
        if (memcmp(b->guid, cpu_guid, 16) || b->size < sizeof h || read_at(d, b->offset, h, sizeof h))
            continue;
        uint64_t count = get32(h + 8), rsize = get32(h + 12);
        if (memcmp(h, "LDCX", 4) || get32(h + 4) != LDF_CPUS_VERSION || rsize < LDF_CPUS_RECORD_SIZE ||
            count == 0 || count * rsize > b->size - sizeof h)
            continue;
        d->has_cpu_blob = true;
        d->cpu_records_offset = b->offset + sizeof h;
        d->cpu_record_size = (uint32_t)rsize;
        d->capturing_cpu = get32(h + 16);
        d->info.context_count = (uint32_t)count;
        return;
    }
}

/* ---- open / close ---- */

static ld_status open_common(ld_dmp *d, ld_error *err)
{
    if (d->size < LDF_DMP_HEADER_SIZE)
        return fail(err, LD_STATUS_END_OF_FILE, d->size,
                    "file of %llu bytes is shorter than the 0x2000-byte dump header",
                    (unsigned long long)d->size);
    ld_status st = read_at(d, 0, d->header, LDF_DMP_HEADER_SIZE);
    if (st != LD_STATUS_SUCCESS)
        return fail(err, st, 0, "cannot read the dump header");
    if (memcmp(d->header + LDF_DMP_OFF_SIGNATURE, "PAGE", 4))
        return fail(err, LD_STATUS_FILE_CORRUPT, 0, "not a Windows kernel dump (no PAGE signature)");
    if (!memcmp(d->header + LDF_DMP_OFF_VALID_DUMP, "DUMP", 4))
        return fail(err, LD_STATUS_NOT_SUPPORTED, 4, "32-bit kernel dumps (PAGEDUMP) are not supported");
    if (memcmp(d->header + LDF_DMP_OFF_VALID_DUMP, "DU64", 4))
        return fail(err, LD_STATUS_FILE_CORRUPT, 4, "ValidDump is not DU64");
    d->info.file_bytes = d->size;
    d->info.dump_type = get32(d->header + LDF_DMP_OFF_DUMP_TYPE);
    parse_fields(d);
    switch (d->info.dump_type) {
    case LD_DMP_TYPE_FULL:
        st = open_full(d, err);
        break;
    case LD_DMP_TYPE_BITMAP_FULL:
    case LD_DMP_TYPE_BITMAP_KERNEL:
        st = open_bitmap(d, err);
        break;
    default:
        return fail(err, LD_STATUS_NOT_SUPPORTED, LDF_DMP_OFF_DUMP_TYPE,
                    "dump type %u is not supported (full 1 and bitmap 5/6 are)", d->info.dump_type);
    }
    if (st != LD_STATUS_SUCCESS)
        return st;
    ld_dmp_info *in = &d->info;
    in->header_bytes = in->first_page_offset;
    in->primary_bytes = in->page_count * PAGE;
    in->secondary_bytes = d->size - in->first_page_offset - in->primary_bytes;
    parse_secondary(d);
    find_cpu_blob(d);
    return LD_STATUS_SUCCESS;
}

static ld_status finish_open(ld_dmp *d, ld_dmp **out, ld_error *err)
{
    ld_status st = open_common(d, err);
    if (st != LD_STATUS_SUCCESS) {
        ld_dmp_close(d);
        return st;
    }
    *out = d;
    return LD_STATUS_SUCCESS;
}

static ld_status open_file(const char *path, ld_dmp **out, ld_error *err)
{
    if (!out || !path)
        return fail(err, LD_STATUS_INVALID_PARAMETER, LD_ERROR_NO_OFFSET, "no file or no result pointer");
    *out = NULL;
    /* A FIFO or device in its place neither hangs the open nor is read. */
    struct stat sb;
    int fd = ldu_open_regular(AT_FDCWD, path, O_RDONLY, 0, &sb);
    if (fd == -1) {
        int e = errno;
        return ldu_fail_os(err, ldu_errno_status(e), e, "cannot open: %s", strerror(e));
    }
    if (fd == LDU_NOT_REGULAR)
        return fail(err, LD_STATUS_INVALID_PARAMETER, LD_ERROR_NO_OFFSET, "not a regular file");
    ld_dmp *d = calloc(1, sizeof *d);
    if (!d) {
        close(fd);
        return fail(err, LD_STATUS_NO_MEMORY, LD_ERROR_NO_OFFSET, "out of memory");
    }
    d->fd = fd;
    d->size = (uint64_t)sb.st_size;
    return finish_open(d, out, err);
}

ld_status ld_dmp_open(const char *path, ld_dmp **out, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, open_file(path, out, err));
}

static ld_status open_memory(const void *data, uint64_t size, ld_dmp **out, ld_error *err)
{
    if (!out || (!data && size))
        return fail(err, LD_STATUS_INVALID_PARAMETER, LD_ERROR_NO_OFFSET, "no image or no result pointer");
    *out = NULL;
    ld_dmp *d = calloc(1, sizeof *d);
    if (!d)
        return fail(err, LD_STATUS_NO_MEMORY, LD_ERROR_NO_OFFSET, "out of memory");
    static const uint8_t empty[1];
    d->fd = -1;
    d->mem = data ? data : empty;
    d->size = size;
    return finish_open(d, out, err);
}

ld_status ld_dmp_open_memory(const void *data, uint64_t size, ld_dmp **out, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, open_memory(data, size, out, err));
}

void ld_dmp_close(ld_dmp *d)
{
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    free(d->bits);
    free(d->rank);
    free(d->blobs);
    free(d);
}

const ld_dmp_info *ld_dmp_get_info(const ld_dmp *d)
{
    return d ? &d->info : NULL;
}

/* ---- pages ---- */

uint64_t ld_dmp_page_offset(const ld_dmp *d, uint64_t pfn)
{
    if (!d || pfn >= d->info.pfn_limit)
        return UINT64_MAX;
    uint64_t index;
    if (d->full) {
        size_t i = 0;
        while (i < d->info.run_count && pfn - d->runs[i].first_pfn >= d->runs[i].page_count)
            i++;
        if (i == d->info.run_count || pfn < d->runs[i].first_pfn)
            return UINT64_MAX;
        index = d->run_first_index[i] + (pfn - d->runs[i].first_pfn);
    } else {
        uint64_t w = pfn / 64, bit = UINT64_C(1) << (pfn % 64);
        if (!(d->bits[w] & bit))
            return UINT64_MAX;
        index = d->rank[w] + popcount64(d->bits[w] & (bit - 1));
    }
    return d->info.first_page_offset + index * PAGE;
}

bool ld_dmp_page_present(const ld_dmp *d, uint64_t pfn)
{
    return ld_dmp_page_offset(d, pfn) != UINT64_MAX;
}

uint64_t ld_dmp_next_page(const ld_dmp *d, uint64_t pfn)
{
    if (!d || pfn >= d->info.pfn_limit)
        return UINT64_MAX;
    if (d->full) {
        for (size_t i = 0; i < d->info.run_count; i++) {
            const ld_phys_range *r = &d->runs[i];
            if (r->page_count && pfn < r->first_pfn + r->page_count)
                return pfn > r->first_pfn ? pfn : r->first_pfn;
        }
        return UINT64_MAX;
    }
    uint64_t w = pfn / 64;
    uint64_t word = d->bits[w] & (~UINT64_C(0) << (pfn % 64));
    while (!word) {
        if (++w >= d->nwords)
            return UINT64_MAX;
        word = d->bits[w];
    }
    return w * 64 + (uint64_t)__builtin_ctzll(word);
}

ld_status ld_dmp_read_page(ld_dmp *d, uint64_t pfn, void *buf)
{
    if (!d || !buf)
        return LD_STATUS_INVALID_PARAMETER;
    uint64_t off = ld_dmp_page_offset(d, pfn);
    if (off == UINT64_MAX)
        return LD_STATUS_NOT_FOUND;
    return read_at(d, off, buf, PAGE);
}

/* ---- blobs and contexts ---- */

ld_status ld_dmp_get_blob(const ld_dmp *d, size_t index, ld_dmp_blob *out)
{
    if (!d || !out)
        return LD_STATUS_INVALID_PARAMETER;
    if (index >= d->blob_count)
        return LD_STATUS_NOT_FOUND;
    *out = d->blobs[index];
    return LD_STATUS_SUCCESS;
}

ld_status ld_dmp_read_blob(ld_dmp *d, size_t index, uint64_t offset, void *buf, size_t len)
{
    if (!d || (!buf && len))
        return LD_STATUS_INVALID_PARAMETER;
    if (index >= d->blob_count)
        return LD_STATUS_NOT_FOUND;
    const ld_dmp_blob *b = &d->blobs[index];
    if (offset > b->size || len > b->size - offset)
        return LD_STATUS_END_OF_FILE;
    return read_at(d, b->offset + offset, buf, len);
}

/* An x64 CONTEXT into ld_cpu_context: only the groups its flags name. */
static void parse_context(const uint8_t *p, ld_cpu_context *c)
{
    uint32_t flags = get32(p + LDF_CTX_OFF_FLAGS);
    if ((flags & (LDF_CTX_CONTROL | LDF_CTX_INTEGER)) == (LDF_CTX_CONTROL | LDF_CTX_INTEGER)) {
        c->valid |= LD_CTX_GPRS;
        for (int i = 0; i < 16; i++)
            c->gpr[i] = get64(p + LDF_CTX_OFF_RAX + 8 * i);
        c->rip = get64(p + LDF_CTX_OFF_RIP);
        c->rflags = get32(p + LDF_CTX_OFF_EFLAGS);
    }
    if (flags & LDF_CTX_SEGMENTS) {
        c->valid |= LD_CTX_SEGMENTS;
        uint16_t *segs[6] = {&c->cs, &c->ds, &c->es, &c->fs, &c->gs, &c->ss};
        for (int i = 0; i < 6; i++)
            *segs[i] = get16(p + LDF_CTX_OFF_SEGCS + 2 * i);
    }
    if (flags & LDF_CTX_FLOATING_POINT) {
        c->valid |= LD_CTX_FLOAT;
        c->mxcsr = get32(p + LDF_CTX_OFF_MXCSR);
    }
}

ld_status ld_dmp_context(ld_dmp *d, uint32_t index, ld_cpu_context *out, bool *capturing)
{
    if (!d || !out)
        return LD_STATUS_INVALID_PARAMETER;
    if (index >= d->info.context_count)
        return LD_STATUS_NOT_FOUND;
    memset(out, 0, sizeof *out);
    if (!d->has_cpu_blob) {
        parse_context(d->header + LDF_DMP_OFF_CONTEXT, out);
        if (capturing)
            *capturing = true;
        return LD_STATUS_SUCCESS;
    }
    uint8_t rec[LDF_CPUS_RECORD_SIZE];
    ld_status st = read_at(d, d->cpu_records_offset + (uint64_t)index * d->cpu_record_size, rec, sizeof rec);
    if (st != LD_STATUS_SUCCESS)
        return st;
    parse_context(rec + LDF_CPUS_OFF_CONTEXT, out);
    out->cpu = get32(rec + LDF_CPUS_OFF_CPU);
    /* The record's mask also names what the CONTEXT cannot hold. */
    uint32_t valid = get32(rec + LDF_CPUS_OFF_VALID);
    out->valid |= valid & (LD_CTX_CONTROL | LD_CTX_STACK_RANGE | LD_CTX_THREAD);
    uint64_t *control[5] = {&out->cr0, &out->cr2, &out->cr3, &out->cr4, &out->cr8};
    for (int i = 0; i < 5; i++)
        *control[i] = get64(rec + LDF_CPUS_OFF_CR0 + 8 * i);
    uint64_t *more[7] = {&out->fs_base, &out->gs_base, &out->stack_base, &out->stack_limit,
                         &out->stack_base_pfn, &out->stack_pages, &out->thread_id};
    for (int i = 0; i < 7; i++)
        *more[i] = get64(rec + LDF_CPUS_OFF_FS_BASE + 8 * i);
    if (capturing)
        *capturing = index == d->capturing_cpu;
    return LD_STATUS_SUCCESS;
}

/* ---- verify ---- */

typedef struct verify_state {
    ld_dmp_problem_fn fn;
    void *arg;
    uint64_t problems;
} verify_state;

static void problem(verify_state *v, uint64_t offset, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(verify_state *v, uint64_t offset, const char *fmt, ...)
{
    v->problems++;
    if (!v->fn)
        return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->fn(v->arg, offset, msg);
}

static bool in_runs(const ld_dmp *d, uint64_t pfn)
{
    for (size_t i = 0; i < d->info.run_count; i++)
        if (pfn >= d->runs[i].first_pfn && pfn - d->runs[i].first_pfn < d->runs[i].page_count)
            return true;
    return false;
}

/* Between the last bit of the bitmap and the first page everything is zero
 * (the bits past BitmapSize in its last byte, then the padding): a reader
 * that takes the bitmap in whole words or pages would see anything else as
 * pages. */
static ld_status check_bitmap_gap(ld_dmp *d, verify_state *v)
{
    const uint64_t bitmap_at = LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_HEADER_SIZE;
    uint64_t at = bitmap_at + d->bitmap_bits / 8, end = d->info.first_page_offset;
    uint64_t nonzero = 0, first_bad = 0;
    uint8_t chunk[4096];
    if (d->bitmap_bits % 8) {
        /* open checked that the bitmap's bytes end before the first page */
        ld_status st = read_at(d, at, chunk, 1);
        if (st != LD_STATUS_SUCCESS)
            return st;
        if (chunk[0] >> (d->bitmap_bits % 8)) {
            nonzero++;
            first_bad = at;
        }
        at++;
    }
    while (at < end) {
        size_t n = (size_t)(end - at < sizeof chunk ? end - at : sizeof chunk);
        ld_status st = read_at(d, at, chunk, n);
        if (st != LD_STATUS_SUCCESS)
            return st;
        for (size_t i = 0; i < n; i++) {
            if (chunk[i] && !nonzero++)
                first_bad = at + i;
        }
        at += n;
    }
    if (nonzero)
        problem(v, first_bad, "%llu non-zero bytes between the end of the bitmap and the first page (first at 0x%llx)",
                (unsigned long long)nonzero, (unsigned long long)first_bad);
    return LD_STATUS_SUCCESS;
}

ld_status ld_dmp_verify(ld_dmp *d, ld_dmp_problem_fn fn, void *arg, uint64_t *problems)
{
    if (!d)
        return LD_STATUS_INVALID_PARAMETER;
    verify_state v = {fn, arg, 0};
    const ld_dmp_info *in = &d->info;
    const uint8_t *ctx = d->header + LDF_DMP_OFF_CONTEXT;
    if (in->machine_type != 0x8664 && in->machine_type != 0xAA64)
        problem(&v, LDF_DMP_OFF_MACHINE_TYPE, "MachineImageType 0x%x is neither x64 nor ARM64", in->machine_type);
    if (get32(ctx + LDF_CTX_OFF_MXCSR) != get32(ctx + LDF_CTX_OFF_FLTSAVE_MXCSR))
        problem(&v, LDF_DMP_OFF_CONTEXT + LDF_CTX_OFF_MXCSR, "CONTEXT.MxCsr 0x%x differs from FltSave.MxCsr 0x%x",
                get32(ctx + LDF_CTX_OFF_MXCSR), get32(ctx + LDF_CTX_OFF_FLTSAVE_MXCSR));
    if (in->required_dump_space != in->file_bytes)
        problem(&v, LDF_DMP_OFF_REQUIRED_DUMP_SPACE, "RequiredDumpSpace is %llu bytes, the file %llu",
                (unsigned long long)in->required_dump_space, (unsigned long long)in->file_bytes);
    if (d->full) {
        if (in->run_pages != in->page_count)
            problem(&v, LDF_DMP_OFF_PHYSICAL_MEMORY + 8, "NumberOfPages is %llu, the runs hold %llu",
                    (unsigned long long)in->run_pages, (unsigned long long)in->page_count);
    } else {
        if (d->present_pages_field != in->page_count)
            problem(&v, LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_OFF_PRESENT_PAGES,
                    "bitmap header counts %llu pages, the bitmap has %llu",
                    (unsigned long long)d->present_pages_field, (unsigned long long)in->page_count);
        if (in->first_page_offset % PAGE)
            problem(&v, LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_OFF_FIRST_PAGE, "first page offset 0x%llx is not page aligned",
                    (unsigned long long)in->first_page_offset);
        if (d->bitmap_bits % 64)
            problem(&v, LDF_DMP_HEADER_SIZE + LDF_DMP_BMP_OFF_BITMAP_BITS,
                    "bitmap size %llu is not a multiple of 64 bits (some readers drop the last pages)",
                    (unsigned long long)d->bitmap_bits);
        ld_status st = check_bitmap_gap(d, &v);
        if (st != LD_STATUS_SUCCESS) {
            if (problems)
                *problems = v.problems;
            return st;
        }
    }
    /* Re-read every page: a short read or I/O error is a problem too. */
    uint8_t page[PAGE];
    uint64_t seen = 0, outside = 0;
    for (uint64_t pfn = ld_dmp_next_page(d, 0); pfn != UINT64_MAX; pfn = ld_dmp_next_page(d, pfn + 1)) {
        ld_status st = ld_dmp_read_page(d, pfn, page);
        if (st != LD_STATUS_SUCCESS) {
            problem(&v, ld_dmp_page_offset(d, pfn), "page 0x%llx cannot be read", (unsigned long long)pfn);
            break;
        }
        if (!d->full && in->run_count && !in_runs(d, pfn))
            outside++;
        seen++;
    }
    if (seen != in->page_count)
        problem(&v, in->first_page_offset, "%llu pages read, %llu expected", (unsigned long long)seen,
                (unsigned long long)in->page_count);
    if (outside)
        problem(&v, LDF_DMP_OFF_PHYSICAL_MEMORY, "%llu present pages lie outside the physical memory runs",
                (unsigned long long)outside);
    if (d->has_cpu_blob && in->context_count != in->processor_count)
        problem(&v, d->cpu_records_offset, "%u processor contexts for %u processors", in->context_count,
                in->processor_count);
    if (d->blob_problem)
        problem(&v, d->blobs_end, "%s", d->blob_problem);
    else if (d->blobs_end != in->file_bytes)
        problem(&v, d->blobs_end, "%llu bytes after the secondary data",
                (unsigned long long)(in->file_bytes - d->blobs_end));
    if (problems)
        *problems = v.problems;
    return LD_STATUS_SUCCESS;
}
