/* The .dmp header checked byte by byte at the absolute offsets of the
 * public DUMP_HEADER64 layout (the project's Windows .dmp fact sheet), written here
 * as literals on purpose: neither dmp_layout.h nor the reader is used, so a
 * wrong shared constant shows up as a failure instead of agreeing with
 * itself. */
#include <stdlib.h>
#include <string.h>

#include "../engine/harness.h"

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_header_offsets(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    req.bugcheck_code = 0x1234ABCDu;
    const uint64_t params[4] = {0x1111222233334444ull, 0x5555666677778888ull, 0x99990000AAAABBBBull,
                                0xCCCCDDDDEEEEFFFFull};
    memcpy(req.bugcheck_params, params, sizeof params);
    mem_sink m;
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_dmp(), &m.sink, &r), LD_STATUS_SUCCESS);
    const uint8_t *f = m.data;
    assert_true(m.size > 0x3000);

    /* DUMP_HEADER64 */
    assert_memory_equal(f + 0x000, "PAGE", 4);
    assert_memory_equal(f + 0x004, "DU64", 4);
    assert_int_equal(le(f + 0x030, 4), 0x8664);             /* MachineImageType */
    assert_int_equal(le(f + 0x034, 4), cfg.cpus);           /* NumberProcessors */
    assert_int_equal(le(f + 0x038, 4), 0x1234ABCDu);        /* BugCheckCode */
    assert_int_equal(le(f + 0x03C, 4), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(le(f + 0x040 + 8 * i, 8), params[i]); /* BugCheckParameter1..4 */
    /* PhysicalMemoryBlock: NumberOfRuns, NumberOfPages = the runs' sum */
    uint64_t runs = le(f + 0x088, 4), pages = 0;
    assert_true(runs >= 1 && runs <= 42);
    for (uint64_t i = 0; i < runs; i++)
        pages += le(f + 0x098 + 16 * i + 8, 8);
    assert_int_equal(le(f + 0x090, 8), pages);
    /* ContextRecord: ContextFlags (CONTEXT_AMD64 = 0x100000) at +0x30 */
    assert_true(le(f + 0x348 + 0x30, 4) & 0x100000u);
    /* Exception: a breakpoint */
    assert_int_equal(le(f + 0xF00, 4), 0x80000003u);
    assert_int_equal(le(f + 0xF98, 4), 5);                  /* DumpType: bitmap */
    assert_int_equal(le(f + 0xF9C, 4), 0);
    assert_int_equal(le(f + 0xFA0, 8), m.size);             /* RequiredDumpSpace */
    assert_true(memchr(f + 0xFB0, 0, 128) != NULL);         /* Comment, NUL-terminated */
    assert_int_equal(le(f + 0x103C, 4), 0);                 /* SecondaryDataState */
    /* Paddings are zero, not "PAGE" fill: 4 bytes after the run area, and
     * Unused1, KdSecondaryVersion, Unused[2]. */
    assert_int_equal(le(f + 0x344, 4), 0);
    assert_int_equal(le(f + 0x104C, 4), 0);
    assert_true(le(f + 0x1050, 4) & 0x10u);                 /* LiveDumpGeneratedDump */

    /* Bitmap header at 0x2000 */
    assert_true(!memcmp(f + 0x2000, "SDMP", 4) || !memcmp(f + 0x2000, "FDMP", 4));
    assert_memory_equal(f + 0x2004, "DUMP", 4);
    uint64_t first = le(f + 0x2020, 8), present = le(f + 0x2028, 8), bits = le(f + 0x2030, 8);
    assert_int_equal(present, r.pages);
    assert_int_equal(first, (0x2038 + bits / 8 + 0xFFF) & ~0xFFFull);
    uint64_t set = 0, highest = 0;
    for (uint64_t i = 0; i < bits; i++)
        if (f[0x2038 + i / 8] >> (i % 8) & 1) {
            set++;
            highest = i;
        }
    assert_int_equal(set, present);
    assert_true(bits >= highest + 1);

    /* Secondary data directly after the last page */
    const uint8_t *sec = f + first + present * 0x1000;
    assert_true(first + present * 0x1000 + 0x10 + 0x20 <= m.size);
    assert_memory_equal(sec, "DumpBlob", 8);
    assert_int_equal(le(sec + 0x8, 4), 0x10);
    assert_int_equal(le(sec + 0x10, 4), 0x20); /* the first DUMP_BLOB_HEADER's HeaderSize */

    mem_sink_release(&m);
    harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
