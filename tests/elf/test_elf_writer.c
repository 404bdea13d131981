/* The ELF vmcore writer, round trip on the simulated machine.
 *
 * Each test captures a deferred dump, keeps its own copy of every captured
 * page, writes the dump as ELF into memory, and reads the file back with the
 * small ELF parser below — written from the ELF specification, sharing no
 * code or structure with the writer — so a reader that knows only the
 * format must find exactly the captured pages, at their physical addresses,
 * with the captured bytes. */
#include <stdlib.h>
#include <string.h>

#include "../engine/harness.h"

#define PAGE 4096u

/* ---- an independent little ELF64 reader ---- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

typedef struct phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz;
} phdr;

typedef struct note {
    char name[16];
    uint32_t type;
    const uint8_t *desc;
    uint32_t descsz;
} note;

typedef struct elf_file {
    const uint8_t *data;
    uint64_t size;
    uint64_t phnum;
    phdr *ph;
    note notes[64];
    size_t note_count;
} elf_file;

static void parse_elf(const uint8_t *data, uint64_t size, elf_file *f)
{
    memset(f, 0, sizeof *f);
    f->data = data;
    f->size = size;
    assert_true(size >= 64);
    assert_memory_equal(data, "\177ELF\2\1\1", 7);
    assert_int_equal(le16(data + 16), 4);  /* ET_CORE */
    assert_int_equal(le16(data + 18), 62); /* EM_X86_64 */
    assert_int_equal(le32(data + 20), 1);  /* EV_CURRENT */
    uint64_t phoff = le64(data + 32);
    assert_int_equal(le16(data + 54), 56);
    f->phnum = le16(data + 56);
    if (f->phnum == 0xffff) {
        /* PN_XNUM: the count is in section header 0's sh_info */
        uint64_t shoff = le64(data + 40);
        assert_int_equal(le16(data + 58), 64);
        assert_true(le16(data + 60) >= 1);
        assert_true(shoff + 64 <= size);
        f->phnum = le32(data + shoff + 44);
    }
    assert_true(phoff + f->phnum * 56 <= size);
    f->ph = calloc(f->phnum, sizeof *f->ph);
    assert_non_null(f->ph);
    for (uint64_t i = 0; i < f->phnum; i++) {
        const uint8_t *p = data + phoff + i * 56;
        f->ph[i] = (phdr){le32(p), le32(p + 4), le64(p + 8), le64(p + 16), le64(p + 24), le64(p + 32),
                          le64(p + 40)};
    }
    /* notes: 12-byte header, name and descriptor each padded to 4 */
    for (uint64_t i = 0; i < f->phnum; i++) {
        if (f->ph[i].type != 4)
            continue;
        uint64_t pos = f->ph[i].offset, end = pos + f->ph[i].filesz;
        assert_true(end <= size);
        while (pos + 12 <= end) {
            uint32_t namesz = le32(data + pos), descsz = le32(data + pos + 4);
            assert_true(f->note_count < 64);
            note *n = &f->notes[f->note_count++];
            n->type = le32(data + pos + 8);
            assert_true(namesz <= sizeof n->name);
            memcpy(n->name, data + pos + 12, namesz);
            uint64_t dpos = pos + 12 + ((namesz + 3u) & ~3u);
            n->desc = data + dpos;
            n->descsz = descsz;
            pos = dpos + ((descsz + 3ull) & ~3ull);
            assert_true(pos <= end);
        }
    }
}

/* The bytes at physical address pa, or NULL if no PT_LOAD holds them. */
static const uint8_t *elf_phys(const elf_file *f, uint64_t pa)
{
    for (uint64_t i = 0; i < f->phnum; i++) {
        const phdr *p = &f->ph[i];
        if (p->type == 1 && pa >= p->paddr && pa - p->paddr < p->filesz)
            return f->data + p->offset + (pa - p->paddr);
    }
    return NULL;
}

/* ---- the captured dump, copied before the writer frees it ---- */

typedef struct copy {
    uint64_t max_pfn;
    uint8_t *present;
    uint8_t *pages;
    uint64_t count;
    uint32_t cpus;
    ld_cpu_context ctx[8];
} copy;

static void copy_dump(const ld_dump *d, copy *c)
{
    const ld_dump_info *info = ld_dump_get_info(d);
    c->max_pfn = info->max_pfn;
    c->present = calloc(c->max_pfn, 1);
    c->pages = calloc(c->max_pfn, PAGE);
    c->count = 0;
    assert_true(c->present && c->pages);
    for (uint64_t pfn = ld_dump_next_page(d, 0); pfn != UINT64_MAX; pfn = ld_dump_next_page(d, pfn + 1)) {
        c->present[pfn] = 1;
        memcpy(c->pages + pfn * PAGE, ld_dump_page(d, pfn), PAGE);
        c->count++;
    }
    c->cpus = info->cpu_count;
    assert_true(c->cpus <= 8);
    memcpy(c->ctx, info->contexts, c->cpus * sizeof *c->ctx);
}

static void copy_free(copy *c)
{
    free(c->present);
    free(c->pages);
}

/* Every captured page is in the file with its bytes; nothing else is. */
static void check_pages(const elf_file *f, const copy *c, uint64_t direct_map)
{
    uint64_t loads = 0, in_file = 0, prev_end = 0;
    for (uint64_t i = 0; i < f->phnum; i++) {
        const phdr *p = &f->ph[i];
        if (p->type == 4)
            assert_int_equal(i, 0); /* PT_NOTE first */
        if (p->type != 1)
            continue;
        loads++;
        assert_int_equal(p->filesz, p->memsz);
        assert_int_equal(p->filesz % PAGE, 0);
        assert_int_equal(p->paddr % PAGE, 0);
        assert_int_equal(p->offset % PAGE, 0);
        assert_true(p->filesz > 0);
        assert_true(p->offset + p->filesz <= f->size);
        assert_int_equal(p->vaddr, direct_map ? direct_map + p->paddr : p->paddr);
        /* ascending, not overlapping, not touching: one segment per run */
        if (loads > 1)
            assert_true(p->paddr > prev_end);
        prev_end = p->paddr + p->filesz;
        in_file += p->filesz / PAGE;
    }
    assert_int_equal(in_file, c->count);
    for (uint64_t pfn = 0; pfn < c->max_pfn; pfn++) {
        const uint8_t *b = elf_phys(f, pfn * PAGE);
        if (!c->present[pfn]) {
            assert_null(b);
            continue;
        }
        assert_non_null(b);
        assert_memory_equal(b, c->pages + pfn * PAGE, PAGE);
    }
}

static const note *find_note(const elf_file *f, const char *name, uint32_t type, size_t nth)
{
    for (size_t i = 0; i < f->note_count; i++)
        if (!strcmp(f->notes[i].name, name) && f->notes[i].type == type && nth-- == 0)
            return &f->notes[i];
    return NULL;
}

/* ---- a HAL that adds a VMCOREINFO text (the sim has none) ---- */

static ld_hal with_info;
static const ld_hal *sim_hal;
static const char *info_text;
static uint64_t info_direct_map;

static ld_status info_system_info(void *ctx, ld_system_info *out)
{
    ld_status st = sim_hal->system_info(ctx, out);
    out->vmcoreinfo = info_text;
    out->vmcoreinfo_size = info_text ? strlen(info_text) : 0;
    out->direct_map_base = info_direct_map;
    return st;
}

static ld_status remove_odd_pages(void *arg, ld_page_set *set)
{
    uint64_t max = *(uint64_t *)arg;
    for (uint64_t pfn = 1; pfn < max; pfn += 2)
        ld_page_set_remove(set, pfn, 1);
    return LD_STATUS_SUCCESS;
}

typedef struct round_trip {
    uint64_t memory;
    uint64_t dirty_rate;
    const char *vmcoreinfo;
    uint64_t direct_map;
    bool remove_odd;
    uint32_t add_pages;
} round_trip;

static void run_round_trip(const round_trip *rt, copy *c, mem_sink *m, elf_file *f)
{
    ld_sim_config cfg;
    harness_config(&cfg);
    cfg.memory_bytes = rt->memory;
    cfg.dirty_rate = rt->dirty_rate;
    ld_sim *sim;
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    sim_hal = ld_sim_hal(sim);
    with_info = *sim_hal;
    with_info.system_info = info_system_info;
    info_text = rt->vmcoreinfo;
    info_direct_map = rt->direct_map;
    ld_engine *e;
    assert_int_equal(ld_engine_create(&with_info, NULL, &e), LD_STATUS_SUCCESS);
    uint64_t max_pfn = rt->memory / PAGE + 1024;
    if (rt->remove_odd)
        assert_int_equal(ld_engine_add_remove_pages(e, "odd", remove_odd_pages, &max_pfn), LD_STATUS_SUCCESS);

    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    req.add_pages = rt->add_pages;
    assert_int_equal(ld_engine_capture(e, &req, NULL, NULL, NULL), LD_STATUS_SUCCESS);
    copy_dump(ld_engine_deferred(e), c);
    mem_sink_init(m);
    ld_result res;
    assert_int_equal(ld_engine_write_deferred(e, ld_format_find("elf"), &m->sink, &res), LD_STATUS_SUCCESS);
    assert_true(m->finished);
    assert_int_equal(res.file_bytes, m->size);
    assert_int_equal(res.primary_bytes, c->count * PAGE);
    ld_engine_destroy(e);
    ld_sim_destroy(sim);
    parse_elf(m->data, m->size, f);
}

static void test_full_dump_round_trip(void **state)
{
    (void)state;
    /* odd length: the descriptor needs padding, which must not enter it */
    static const char text[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff8260a000\nX=1\n";
    round_trip rt = {.memory = 128ull << 20, .vmcoreinfo = text, .direct_map = 0xffff888000000000ull};
    copy c;
    mem_sink m;
    elf_file f;
    run_round_trip(&rt, &c, &m, &f);
    check_pages(&f, &c, rt.direct_map);

    /* one NT_PRSTATUS per CPU, then VMCOREINFO verbatim */
    assert_int_equal(f.note_count, c.cpus + 1);
    for (uint32_t i = 0; i < c.cpus; i++) {
        assert_string_equal(f.notes[i].name, "CORE");
        assert_int_equal(f.notes[i].type, 1);
        assert_int_equal(f.notes[i].descsz, 336);
    }
    const note *vi = find_note(&f, "VMCOREINFO", 0, 0);
    assert_non_null(vi);
    assert_int_equal(vi->descsz, strlen(text));
    assert_memory_equal(vi->desc, text, strlen(text));
    assert_ptr_equal(vi, &f.notes[c.cpus]);
    /* PT_NOTE's size covers exactly the notes */
    assert_int_equal(f.ph[0].type, 4);
    assert_int_equal(f.ph[0].filesz, c.cpus * (12 + 8 + 336) + 12 + 12 + ((sizeof text - 1 + 3) & ~3u));

    free(f.ph);
    mem_sink_release(&m);
    copy_free(&c);
}

/* The sim's vCPUs keep writing; the probe (A page, B page, rax) shows the
 * file holds one instant: the registers in NT_PRSTATUS agree with the
 * memory in the PT_LOADs. */
static void test_registers_match_memory(void **state)
{
    (void)state;
    round_trip rt = {.memory = 128ull << 20, .dirty_rate = 64ull << 20};
    copy c;
    mem_sink m;
    elf_file f;
    run_round_trip(&rt, &c, &m, &f);
    check_pages(&f, &c, 0);
    assert_null(find_note(&f, "VMCOREINFO", 0, 0));

    ld_sim_config cfg;
    harness_config(&cfg);
    ld_sim *sim; /* same seed and size: same probe addresses */
    assert_int_equal(ld_sim_create(&cfg, &sim), LD_STATUS_SUCCESS);
    for (uint32_t cpu = 0; cpu < c.cpus; cpu++) {
        const note *n = find_note(&f, "CORE", 1, cpu);
        assert_non_null(n);
        assert_true(c.ctx[cpu].valid & LD_CTX_GPRS);
        uint64_t rax = le64(n->desc + 112 + 10 * 8);
        uint64_t rip = le64(n->desc + 112 + 16 * 8);
        uint64_t rsp = le64(n->desc + 112 + 19 * 8);
        assert_int_equal(rax, c.ctx[cpu].gpr[LD_RAX]);
        assert_int_equal(rip, c.ctx[cpu].rip);
        assert_int_equal(rsp, c.ctx[cpu].gpr[LD_RSP]);
        ld_sim_probe p;
        assert_int_equal(ld_sim_probe_of(sim, cpu, &p), LD_STATUS_SUCCESS);
        const uint8_t *a = elf_phys(&f, p.a_pfn * PAGE);
        const uint8_t *b = elf_phys(&f, p.b_pfn * PAGE);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(le64(a + p.a_offset), rax);
        assert_int_equal(le64(b + p.b_offset), rax);
    }
    ld_sim_destroy(sim);
    free(f.ph);
    mem_sink_release(&m);
    copy_free(&c);
}

/* Removing every other page gives more than 0xffff runs: the count moves to
 * section header 0 (PN_XNUM), as in Linux and QEMU. */
static void test_many_segments_use_pn_xnum(void **state)
{
    (void)state;
    round_trip rt = {.memory = 1ull << 30, .remove_odd = true, .add_pages = LD_ADD_USER_PAGES};
    copy c;
    mem_sink m;
    elf_file f;
    run_round_trip(&rt, &c, &m, &f);
    assert_int_equal(le16(m.data + 56), 0xffff);
    assert_true(f.phnum > 0xffff);
    check_pages(&f, &c, 0);
    free(f.ph);
    mem_sink_release(&m);
    copy_free(&c);
}

/* A sink that fails part-way: the capture reports the sink's status and the
 * sink is aborted, never finished. */
static void test_sink_failure_is_reported(void **state)
{
    (void)state;
    harness h;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness_start(&h, &cfg, true);
    uint64_t fails_at[] = {10, 100, 5000, 3u << 20};
    for (size_t i = 0; i < sizeof fails_at / sizeof fails_at[0]; i++) {
        mem_sink m;
        mem_sink_init(&m);
        m.fail_after_bytes = fails_at[i];
        m.fail_status = LD_STATUS_DISK_FULL;
        ld_capture_request req;
        ld_capture_request_init(&req);
        assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_elf(), &m.sink, NULL), LD_STATUS_DISK_FULL);
        assert_true(m.aborted);
        assert_false(m.finished);
        mem_sink_release(&m);
    }
    harness_stop(&h);
}

static void test_format_names(void **state)
{
    (void)state;
    assert_ptr_equal(ld_format_find("elf"), ld_format_elf());
    assert_string_equal(ld_format_elf()->name, "elf");
    assert_ptr_equal(ld_format_find("raw"), ld_format_raw());
    assert_null(ld_format_find("el"));
    assert_null(ld_format_find("elf2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_full_dump_round_trip),
        cmocka_unit_test(test_registers_match_memory),
        cmocka_unit_test(test_many_segments_use_pn_xnum),
        cmocka_unit_test(test_sink_failure_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
