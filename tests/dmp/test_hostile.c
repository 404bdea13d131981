/* The reader against hostile files: a small dump (a few dozen pages from a
 * tiny machine, so every offset can be tried) truncated at every length,
 * and with header, bitmap and blob fields corrupted at random. The reader
 * must refuse with an error and a message, or open and then read only
 * within the file; ASan (tools/test.sh) turns any stray read into a crash.
 * A truncated file must never pass as whole: open fails or verify finds a
 * problem. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/livedump.h"
#include "livedump/runtime.h"
#include "livedump/dmp.h"

#define PAGE 4096u

/* ---- a tiny machine: two RAM ranges, 48 pages, two processors ---- */

static bool tiny_everything; /* every page dumpable: a full (type 1) dump */

static ld_status tiny_ranges(void *ctx, ld_phys_range *r, size_t *count)
{
    static const ld_phys_range ranges[] = {{0, 24}, {40, 24}};
    bool fits = r && *count >= 2;
    if (fits)
        memcpy(r, ranges, sizeof ranges);
    *count = 2;
    return fits || !r ? LD_STATUS_SUCCESS : LD_STATUS_BUFFER_TOO_SMALL;
}

static ld_status tiny_kinds(void *ctx, ld_kind_range *k, size_t *count)
{
    const ld_kind_range kinds[] = {
        {0, 6, LD_PAGE_KERNEL_IMAGE},
        {6, 1, LD_PAGE_DEBUGGER_DATA},
        {7, 2, LD_PAGE_PROCESSOR_BLOCKS},
        {9, 3, LD_PAGE_PAGE_TABLES},
        {12, 4, LD_PAGE_KERNEL_STACKS},
        {16, 8, tiny_everything ? LD_PAGE_KERNEL_OTHER : LD_PAGE_FREE},
        {40, 16, LD_PAGE_KERNEL_OTHER},
        {56, 8, LD_PAGE_USER},
    };
    size_t n = sizeof kinds / sizeof kinds[0];
    bool fits = k && *count >= n;
    if (fits)
        memcpy(k, kinds, sizeof kinds);
    *count = n;
    return fits || !k ? LD_STATUS_SUCCESS : LD_STATUS_BUFFER_TOO_SMALL;
}

static ld_status tiny_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    uint8_t *p = dst;
    for (uint64_t i = 0; i < count * PAGE; i++)
        p[i] = (uint8_t)((pfn + i / PAGE) * 31 + i * 7);
    return LD_STATUS_SUCCESS;
}

static uint32_t tiny_cpu_count(void *ctx)
{
    return 2;
}

static ld_status tiny_quiesce(void *ctx, uint64_t timeout_ns, ld_quiesced_fn fn, void *arg, ld_quiesce_times *t)
{
    memset(t, 0, sizeof *t);
    return fn(arg);
}

static ld_status tiny_context(void *ctx, uint32_t cpu, ld_cpu_context *c)
{
    memset(c, 0, sizeof *c);
    c->valid = LD_CTX_GPRS | LD_CTX_CONTROL | LD_CTX_SEGMENTS | LD_CTX_FLOAT | LD_CTX_STACK_RANGE;
    for (int i = 0; i < 16; i++)
        c->gpr[i] = 0x1000u * (cpu + 1) + (uint64_t)i;
    c->rip = 0xfffff80000001000ull + cpu;
    c->cr3 = (9 + cpu) * (uint64_t)PAGE;
    c->cs = 0x10;
    c->ss = 0x18;
    c->mxcsr = 0x1f80;
    c->stack_base_pfn = 12 + 2 * cpu;
    c->stack_pages = 2;
    return LD_STATUS_SUCCESS;
}

static ld_status blob_fn(void *arg, void *buf, uint64_t cap, uint64_t *len)
{
    static const char text[] = "a blob of 37 bytes, not a multiple 8";
    memcpy(buf, text, sizeof text);
    *len = sizeof text;
    return LD_STATUS_SUCCESS;
}

typedef struct sink_buf {
    ld_sink sink;
    uint8_t *data;
    uint64_t size;
} sink_buf;

static ld_status buf_write(ld_sink *s, uint64_t off, const void *p, size_t len)
{
    sink_buf *b = s->ctx;
    if (off + len > b->size) {
        b->data = realloc(b->data, off + len);
        memset(b->data + b->size, 0, off + len - b->size);
        b->size = off + len;
    }
    memcpy(b->data + off, p, len);
    return LD_STATUS_SUCCESS;
}

static ld_status buf_finish(ld_sink *s, uint64_t size)
{
    sink_buf *b = s->ctx;
    assert_int_equal(size, b->size);
    return LD_STATUS_SUCCESS;
}

static void buf_abort(ld_sink *s)
{
    (void)s;
}

/* A small dump of the tiny machine, in a malloc'd buffer. */
static uint8_t *tiny_dump(bool everything, uint64_t *size)
{
    tiny_everything = everything;
    ld_hal hal = {
        .version = LD_HAL_VERSION,
        .caps = LD_HAL_CAP_CPU_CONTEXT | LD_HAL_CAP_QUIESCE,
        .name = "tiny",
        .platform = ld_platform_default(),
        .page_size = PAGE,
        .mem_ranges = tiny_ranges,
        .mem_kinds = tiny_kinds,
        .mem_read = tiny_read,
        .cpu_count = tiny_cpu_count,
        .quiesce = tiny_quiesce,
        .cpu_context = tiny_context,
    };
    ld_engine *e;
    assert_int_equal(ld_engine_create(&hal, NULL, &e), LD_STATUS_SUCCESS);
    static const uint8_t guid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal(ld_engine_add_callout(e, "blob", guid, 64, blob_fn, NULL), LD_STATUS_SUCCESS);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.add_pages = everything ? LD_ADD_USER_PAGES : 0;
    req.bugcheck_params[0] = LD_BUGCHECK_PARAM_TASKMGR;
    sink_buf b = {{LD_SINK_VERSION, &b, buf_write, buf_finish, buf_abort}, NULL, 0};
    assert_int_equal(ld_engine_capture(e, &req, ld_format_dmp(), &b.sink, NULL), LD_STATUS_SUCCESS);
    ld_engine_destroy(e);
    *size = b.size;
    return b.data;
}

/* Everything a user of the reader can ask, so every path runs on the
 * hostile input. Returns the problems verify found. */
static uint64_t exercise(ld_dmp *r)
{
    const ld_dmp_info *in = ld_dmp_get_info(r);
    uint8_t page[PAGE];
    uint64_t pages = 0;
    for (uint64_t pfn = ld_dmp_next_page(r, 0); pfn != UINT64_MAX; pfn = ld_dmp_next_page(r, pfn + 1)) {
        ld_status st = ld_dmp_read_page(r, pfn, page);
        assert_true(st == LD_STATUS_SUCCESS || st == LD_STATUS_END_OF_FILE);
        assert_true(++pages <= in->page_count);
    }
    (void)ld_dmp_read_page(r, in->pfn_limit, page);
    (void)ld_dmp_read_page(r, UINT64_MAX, page);
    for (size_t i = 0; i < in->run_count; i++)
        (void)ld_dmp_page_present(r, in->runs[i].first_pfn + in->runs[i].page_count - 1);
    for (size_t i = 0; i < in->blob_count; i++) {
        ld_dmp_blob b;
        assert_int_equal(ld_dmp_get_blob(r, i, &b), LD_STATUS_SUCCESS);
        assert_true(b.offset <= in->file_bytes && b.size <= in->file_bytes - b.offset);
        uint8_t tail[16];
        if (b.size >= sizeof tail)
            assert_int_equal(ld_dmp_read_blob(r, i, b.size - sizeof tail, tail, sizeof tail), LD_STATUS_SUCCESS);
    }
    for (uint32_t i = 0; i < in->context_count && i < 4096; i++) {
        ld_cpu_context c;
        (void)ld_dmp_context(r, i, &c, NULL);
    }
    uint64_t problems = 0;
    assert_int_equal(ld_dmp_verify(r, NULL, NULL, &problems), LD_STATUS_SUCCESS);
    return problems;
}

static void expect_refusal(ld_status st, const ld_error *err)
{
    assert_true(st == LD_STATUS_END_OF_FILE || st == LD_STATUS_FILE_CORRUPT || st == LD_STATUS_NOT_SUPPORTED);
    assert_true(err->message[0] != 0);
}

/* Open the first len bytes. exact: from a buffer of exactly len bytes, so
 * ASan sees a read past the end (copying costs len, so only for some). */
static void try_truncated(const uint8_t *file, uint64_t len, bool exact, uint64_t *refused)
{
    uint8_t *copy = NULL;
    const uint8_t *data = file;
    if (exact) {
        copy = malloc(len ? len : 1);
        memcpy(copy, file, len);
        data = copy;
    }
    ld_dmp *r = NULL;
    ld_error err;
    ld_status st = ld_dmp_open_memory(data, len, &r, &err);
    if (st == LD_STATUS_SUCCESS) {
        if (exercise(r) == 0)
            fail_msg("truncated at %llu bytes, yet open and verify found nothing wrong", (unsigned long long)len);
        ld_dmp_close(r);
    } else {
        expect_refusal(st, &err);
        assert_null(r);
        (*refused)++;
    }
    free(copy);
}

static void truncate_everywhere(bool everything)
{
    uint64_t size;
    uint8_t *file = tiny_dump(everything, &size);
    ld_dmp *r;
    assert_int_equal(ld_dmp_open_memory(file, size, &r, NULL), LD_STATUS_SUCCESS);
    const ld_dmp_info *in = ld_dmp_get_info(r);
    assert_int_equal(in->dump_type, everything ? LD_DMP_TYPE_FULL : LD_DMP_TYPE_BITMAP_FULL);
    assert_int_equal(exercise(r), 0);
    uint64_t pages_end = in->first_page_offset + in->primary_bytes;
    assert_true(in->blob_count == 2 && pages_end < size);
    ld_dmp_close(r);
    uint64_t refused = 0;
    for (uint64_t len = 0; len < size; len++) {
        /* Exact-size copies where the parser works: the headers, the
         * secondary data, and around every page boundary. */
        bool exact = len <= 0x5000 || len + PAGE >= pages_end || len % PAGE < 2 ||
                     len % PAGE > PAGE - 2;
        try_truncated(file, len, exact, &refused);
    }
    print_message("file %llu bytes, %llu truncations refused\n", (unsigned long long)size, (unsigned long long)refused);
    /* Everything cut inside the header or the pages is refused. */
    assert_true(refused >= pages_end);
    free(file);
}

static void test_truncated_bitmap_dump(void **state)
{
    (void)state;
    truncate_everywhere(false);
}

static void test_truncated_full_dump(void **state)
{
    (void)state;
    truncate_everywhere(true);
}

/* ---- random corruption ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Offsets of the fields a reader interprets. */
static const uint32_t header_fields[] = {
    0x000, 0x004, 0x030, 0x034, 0x088, 0x08C, 0x090, 0x098, 0x0A0, 0x0A8, 0x0B0, 0x0B8, 0x0C0,
    0x348 + 0x30, 0x348 + 0x34, 0x348 + 0x118, 0xF98, 0xFA0, 0xFB0, 0x102F, 0x1050,
    0x2000, 0x2004, 0x2020, 0x2024, 0x2028, 0x2030, 0x2034, 0x2038,
};

static uint64_t interesting(uint64_t size)
{
    const uint64_t values[] = {0, 1, 2, 5, 6, 42, 43, 44, 0x7fffffff, 0x80000000, 0xffffffff,
                               0x45474150, 0x4547415045474150ull, UINT64_MAX, UINT64_MAX / 2, size, size / PAGE,
                               size + 1, 0x1000, 0x2000, 0x2038, 0x3000, 1ull << 52, (1ull << 52) - 1};
    uint64_t pick = rng() % (sizeof values / sizeof values[0] + 4);
    return pick < sizeof values / sizeof values[0] ? values[pick] : rng() >> (rng() % 64);
}

static void corrupt_randomly(bool everything)
{
    uint64_t size;
    uint8_t *file = tiny_dump(everything, &size);
    ld_dmp *r;
    assert_int_equal(ld_dmp_open_memory(file, size, &r, NULL), LD_STATUS_SUCCESS);
    uint64_t pages_end = ld_dmp_get_info(r)->first_page_offset + ld_dmp_get_info(r)->primary_bytes;
    ld_dmp_close(r);
    uint8_t *work = malloc(size);
    rng_state = everything ? 7 : 11;
    uint64_t opened = 0, refused = 0;
    /* Edits go to the first 0x4000 bytes or after the pages; restoring
     * those two areas is cheaper than copying the whole file each time. */
    uint64_t head = size < 0x4000 ? size : 0x4000;
    memcpy(work, file, size);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(work, file, head);
        memcpy(work + pages_end, file + pages_end, size - pages_end);
        int edits = 1 + (int)(rng() % 4);
        for (int k = 0; k < edits; k++) {
            uint64_t off;
            uint64_t where = rng() % 4;
            if (where == 0)
                off = header_fields[rng() % (sizeof header_fields / sizeof header_fields[0])];
            else if (where == 1)
                off = rng() % (pages_end < 0x4000 ? pages_end : 0x4000);
            else
                off = pages_end + rng() % (size - pages_end); /* the secondary data */
            uint64_t v = interesting(size);
            unsigned width = 1u << (rng() % 4);
            for (unsigned b = 0; b < width && off + b < size; b++)
                work[off + b] = (uint8_t)(v >> (8 * b));
        }
        ld_error err;
        ld_status st = ld_dmp_open_memory(work, size, &r, &err);
        if (st == LD_STATUS_SUCCESS) {
            (void)exercise(r);
            ld_dmp_close(r);
            opened++;
        } else {
            expect_refusal(st, &err);
            refused++;
        }
    }
    print_message("corruptions: %llu opened, %llu refused\n", (unsigned long long)opened, (unsigned long long)refused);
    /* Both outcomes happened: the corruption reached the checks. */
    assert_true(opened > 100 && refused > 100);
    free(work);
    free(file);
}

static void test_corrupt_bitmap_dump(void **state)
{
    (void)state;
    corrupt_randomly(false);
}

static void test_corrupt_full_dump(void **state)
{
    (void)state;
    corrupt_randomly(true);
}

/* Not a dump at all, and the 32-bit format, get a clear refusal. */
static void test_not_a_dump(void **state)
{
    (void)state;
    uint8_t junk[0x3000];
    memset(junk, 'x', sizeof junk);
    ld_dmp *r = (ld_dmp *)1;
    ld_error err;
    assert_int_equal(ld_dmp_open_memory(junk, sizeof junk, &r, &err), LD_STATUS_FILE_CORRUPT);
    assert_null(r);
    assert_non_null(strstr(err.message, "PAGE"));
    memcpy(junk, "PAGEDUMP", 8);
    assert_int_equal(ld_dmp_open_memory(junk, sizeof junk, &r, &err), LD_STATUS_NOT_SUPPORTED);
    assert_int_equal(ld_dmp_open_memory(NULL, 0, &r, &err), LD_STATUS_END_OF_FILE);
    assert_int_equal(ld_dmp_open("/nonexistent/x.dmp", &r, &err), LD_STATUS_NO_SUCH_FILE);
    assert_int_equal(ld_dmp_open("/", &r, &err), LD_STATUS_INVALID_PARAMETER);
    /* a FIFO with no writer: refused at once, not a wait in open (the
     * alarm kills the test if it hangs) */
    char fifo[] = "/tmp/ld-dmp-fifo.XXXXXX";
    assert_non_null(mkdtemp(fifo));
    char path[64];
    snprintf(path, sizeof path, "%s/f", fifo);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_int_equal(ld_dmp_open(path, &r, &err), LD_STATUS_INVALID_PARAMETER);
    alarm(0);
    assert_null(r);
    assert_non_null(strstr(err.message, "not a regular file"));
    unlink(path);
    rmdir(fifo);
}

/* ---- verify: each inconsistency it looks for is found ---- */

typedef struct messages {
    char text[4096];
    size_t len;
} messages;

static void collect(void *arg, uint64_t offset, const char *message)
{
    messages *m = arg;
    int n = snprintf(m->text + m->len, sizeof m->text - m->len, "%s\n", message);
    if (n > 0 && (size_t)n < sizeof m->text - m->len)
        m->len += (size_t)n;
}

/* Open a copy with one u64 changed by delta at off (or extra bytes
 * appended), verify, and expect a message containing `want`. */
static void expect_problem(const uint8_t *file, uint64_t size, uint64_t off, uint64_t delta, uint64_t extra,
                           const char *want)
{
    uint8_t *copy = calloc(1, size + extra);
    memcpy(copy, file, size);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | copy[off + (uint64_t)i];
    v += delta;
    for (int i = 0; i < 8; i++)
        copy[off + (uint64_t)i] = (uint8_t)(v >> (8 * i));
    ld_dmp *r;
    ld_error err;
    assert_int_equal(ld_dmp_open_memory(copy, size + extra, &r, &err), LD_STATUS_SUCCESS);
    messages m = {{0}, 0};
    uint64_t problems = 0;
    assert_int_equal(ld_dmp_verify(r, collect, &m, &problems), LD_STATUS_SUCCESS);
    if (problems == 0 || !strstr(m.text, want))
        fail_msg("expected a problem '%s', got %llu: %s", want, (unsigned long long)problems, m.text);
    ld_dmp_close(r);
    free(copy);
}

static void test_verify_finds_each_problem(void **state)
{
    (void)state;
    uint64_t size;
    uint8_t *bitmap = tiny_dump(false, &size);
    expect_problem(bitmap, size, 0x2028, 1, 0, "bitmap header counts");
    expect_problem(bitmap, size, 0x348 + 0x34, 1, 0, "MxCsr");
    expect_problem(bitmap, size, 0xFA0, 4096, 0, "RequiredDumpSpace");
    expect_problem(bitmap, size, 0xFA0, 0, 0x20, "a blob header gives a size below 0x20");
    expect_problem(bitmap, size, 0x30, 1, 0, "MachineImageType");
    /* The tiny machine's 64-bit bitmap ends at 0x2040, its first page is at
     * 0x3000: a stray byte in between, and one just before the page. */
    expect_problem(bitmap, size, 0x2040, 0x1, 0, "non-zero bytes between the end of the bitmap and the first page (first at 0x2040)");
    expect_problem(bitmap, size, 0x2FF8, 0x100000000000000ull, 0, "1 non-zero bytes between the end of the bitmap and the first page (first at 0x2fff)");
    free(bitmap);
    uint8_t *full = tiny_dump(true, &size);
    expect_problem(full, size, 0x90, 1, 0, "NumberOfPages");
    expect_problem(full, size, 0xFA0, 0, 8, "blob header runs past the end");
    free(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_a_dump),
        cmocka_unit_test(test_verify_finds_each_problem),
        cmocka_unit_test(test_truncated_bitmap_dump),
        cmocka_unit_test(test_truncated_full_dump),
        cmocka_unit_test(test_corrupt_bitmap_dump),
        cmocka_unit_test(test_corrupt_full_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
