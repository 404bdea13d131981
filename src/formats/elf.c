/* ELF vmcore writer: the layout of a Linux /proc/vmcore, which crash, drgn,
 * libkdumpfile and makedumpfile read.
 *
 *   Elf64_Ehdr                          ET_CORE, EM_X86_64, little endian
 *   Elf64_Phdr[1 + runs]                PT_NOTE first, then one PT_LOAD per
 *                                       run of consecutive captured pages
 *   (Elf64_Shdr)                        only with >= 0xffff program headers:
 *                                       e_phnum = PN_XNUM, real count in sh_info
 *   notes                               NT_PRSTATUS per processor, in CPU
 *                                       order, then the kernel's VMCOREINFO
 *   page data                           from a page-aligned offset, runs in
 *                                       ascending physical order
 *
 * PT_LOAD: p_paddr = physical address, p_vaddr = direct-map address
 * (system.direct_map_base + paddr; when the base is unknown, p_vaddr =
 * p_paddr, as QEMU writes for a guest without paging), p_filesz = p_memsz.
 * Pages left out of the dump are in no segment, so a reader sees them as
 * absent, never as zeros.
 *
 * Everything is written in file order, each field explicitly little endian,
 * so the writer runs on any host and needs no allocation: the program
 * headers are produced in small batches by walking the dump's bitmap. */
#include "format_base.h"

#define ELF_EHDR_SIZE 64u
#define ELF_PHDR_SIZE 56u
#define ELF_SHDR_SIZE 64u
#define ELF_PN_XNUM 0xffffu
#define ELF_ET_CORE 4u
#define ELF_EM_X86_64 62u
#define ELF_PT_LOAD 1u
#define ELF_PT_NOTE 4u
#define ELF_PF_RWX 7u
#define ELF_NT_PRSTATUS 1u
#define ELF_NOTE_HEADER 12u

/* x86-64 struct elf_prstatus: 112 bytes of signal/pid/times, 27 registers
 * (user_regs_struct), pr_fpvalid and padding. */
#define PRSTATUS_SIZE 336u
#define PRSTATUS_PID 32u
#define PRSTATUS_REGS 112u

/* Program headers built per batch on the stack: small enough for a kernel
 * stack, large enough to keep the number of sink writes low. */
#define PHDR_BATCH 32u
#define DATA_MAX_RUN_PAGES 256u

/* PT_LOAD segments: runs of consecutive present pages, wherever their
 * copies lie. */
static uint64_t count_runs(const ld_dump *dump)
{
    uint64_t n = 0;
    ld_page_run r;
    for (uint64_t pfn = 0; ld_dump_next_run(dump, pfn, 0, LD_RUN_PRESENCE, &r); pfn = r.first_pfn + r.count)
        n++;
    return n;
}

static uint64_t note_size(uint64_t namesz, uint64_t descsz)
{
    return ELF_NOTE_HEADER + ldf_align_up(namesz, 4) + ldf_align_up(descsz, 4);
}

static bool has_vmcoreinfo(const ld_dump_info *info)
{
    /* The note's size is a u32; a larger text is not a kernel's. */
    return info->system.vmcoreinfo && info->system.vmcoreinfo_size &&
           info->system.vmcoreinfo_size <= 0xffffffffu - 3;
}

static uint64_t notes_size(const ld_dump_info *info)
{
    uint64_t n = (uint64_t)info->cpu_count * note_size(sizeof "CORE", PRSTATUS_SIZE);
    if (has_vmcoreinfo(info))
        n += note_size(sizeof "VMCOREINFO", info->system.vmcoreinfo_size);
    return n;
}

static ld_status write_note_header(ld_sink_cursor *o, const char *name, uint32_t namesz, uint32_t descsz,
                                   uint32_t type)
{
    uint8_t h[ELF_NOTE_HEADER + 12];
    memset(h, 0, sizeof h);
    ldf_put32(h, namesz);
    ldf_put32(h + 4, descsz);
    ldf_put32(h + 8, type);
    memcpy(h + ELF_NOTE_HEADER, name, namesz); /* names here are at most 11 bytes with NUL */
    return ld_sink_put(o, h, ELF_NOTE_HEADER + ldf_align_up(namesz, 4));
}

/* NT_PRSTATUS with what was captured: the task as pr_pid when known, the
 * registers only when they were really read; every other field zero. */
static ld_status write_prstatus(ld_sink_cursor *o, const ld_cpu_context *c)
{
    uint8_t d[PRSTATUS_SIZE];
    memset(d, 0, sizeof d);
    if (c->valid & LD_CTX_THREAD)
        ldf_put32(d + PRSTATUS_PID, (uint32_t)c->thread_id);
    uint8_t *r = d + PRSTATUS_REGS;
    if (c->valid & LD_CTX_GPRS) {
        /* user_regs_struct order: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8
         * rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss ... */
        static const uint8_t order[15] = {LD_R15, LD_R14, LD_R13, LD_R12, LD_RBP, LD_RBX, LD_R11, LD_R10,
                                          LD_R9,  LD_R8,  LD_RAX, LD_RCX, LD_RDX, LD_RSI, LD_RDI};
        for (int i = 0; i < 15; i++)
            ldf_put64(r + 8 * i, c->gpr[order[i]]);
        ldf_put64(r + 8 * 16, c->rip);
        ldf_put64(r + 8 * 18, c->rflags);
        ldf_put64(r + 8 * 19, c->gpr[LD_RSP]);
    }
    if (c->valid & LD_CTX_SEGMENTS) {
        ldf_put64(r + 8 * 17, c->cs);
        ldf_put64(r + 8 * 20, c->ss);
        ldf_put64(r + 8 * 21, c->fs_base);
        ldf_put64(r + 8 * 22, c->gs_base);
        ldf_put64(r + 8 * 23, c->ds);
        ldf_put64(r + 8 * 24, c->es);
        ldf_put64(r + 8 * 25, c->fs);
        ldf_put64(r + 8 * 26, c->gs);
    }
    ld_status st = write_note_header(o, "CORE", sizeof "CORE", PRSTATUS_SIZE, ELF_NT_PRSTATUS);
    if (st == LD_STATUS_SUCCESS)
        st = ld_sink_put(o, d, sizeof d);
    return st;
}

static ld_status write_notes(ld_sink_cursor *o, const ld_dump_info *info)
{
    ld_status st = LD_STATUS_SUCCESS;
    for (uint32_t i = 0; i < info->cpu_count && st == LD_STATUS_SUCCESS; i++)
        st = write_prstatus(o, &info->contexts[i]);
    if (st != LD_STATUS_SUCCESS || !has_vmcoreinfo(info))
        return st;
    /* Copied verbatim: makedumpfile and drgn parse the kernel's own text. */
    uint64_t n = info->system.vmcoreinfo_size;
    st = write_note_header(o, "VMCOREINFO", sizeof "VMCOREINFO", (uint32_t)n, 0);
    if (st == LD_STATUS_SUCCESS)
        st = ld_sink_put(o, info->system.vmcoreinfo, n);
    if (st == LD_STATUS_SUCCESS)
        st = ld_sink_put_zeros(o, ldf_align_up(n, 4) - n);
    return st;
}

static void fill_phdr(uint8_t *p, uint32_t type, uint64_t offset, uint64_t vaddr, uint64_t paddr,
                      uint64_t size, uint64_t align)
{
    memset(p, 0, ELF_PHDR_SIZE);
    ldf_put32(p, type);
    ldf_put32(p + 4, type == ELF_PT_LOAD ? ELF_PF_RWX : 0);
    ldf_put64(p + 8, offset);
    ldf_put64(p + 16, vaddr);
    ldf_put64(p + 24, paddr);
    ldf_put64(p + 32, size);
    ldf_put64(p + 40, size);
    ldf_put64(p + 48, align);
}

static ld_status write_ehdr(ld_sink_cursor *o, uint64_t phnum, uint64_t shoff)
{
    uint8_t h[ELF_EHDR_SIZE];
    memset(h, 0, sizeof h);
    h[0] = 0x7f;
    h[1] = 'E';
    h[2] = 'L';
    h[3] = 'F';
    h[4] = 2; /* ELFCLASS64 */
    h[5] = 1; /* ELFDATA2LSB */
    h[6] = 1; /* EV_CURRENT */
    ldf_put16(h + 16, ELF_ET_CORE);
    ldf_put16(h + 18, ELF_EM_X86_64);
    ldf_put32(h + 20, 1);               /* e_version: libkdumpfile requires EV_CURRENT */
    ldf_put64(h + 32, ELF_EHDR_SIZE);   /* e_phoff */
    ldf_put64(h + 40, shoff);
    ldf_put16(h + 52, ELF_EHDR_SIZE);
    ldf_put16(h + 54, ELF_PHDR_SIZE);
    ldf_put16(h + 56, (uint16_t)(phnum >= ELF_PN_XNUM ? ELF_PN_XNUM : phnum));
    ldf_put16(h + 58, shoff ? ELF_SHDR_SIZE : 0);
    ldf_put16(h + 60, shoff ? 1 : 0);
    return ld_sink_put(o, h, sizeof h);
}

static ld_status elf_write(const ld_dump *dump, ld_sink *sink, ld_progress_fn progress, void *progress_arg,
                           ld_write_stats *stats)
{
    const ld_dump_info *info = ld_dump_get_info(dump);
    uint64_t ps = info->page_size;
    memset(stats, 0, sizeof *stats);
    if (!ps || (ps & (ps - 1)))
        return LD_STATUS_INVALID_PARAMETER;

    uint64_t runs = count_runs(dump);
    uint64_t phnum = 1 + runs;
    if (phnum > 0xffffffffu)
        return LD_STATUS_NOT_SUPPORTED; /* sh_info is 32 bits */
    bool xnum = phnum >= ELF_PN_XNUM;
    uint64_t shoff = xnum ? ELF_EHDR_SIZE + phnum * ELF_PHDR_SIZE : 0;
    uint64_t notes_off = ELF_EHDR_SIZE + phnum * ELF_PHDR_SIZE + (xnum ? ELF_SHDR_SIZE : 0);
    uint64_t notes_len = notes_size(info);
    uint64_t data_off = ldf_align_up(notes_off + notes_len, ps);
    uint64_t direct_map = info->system.direct_map_base;

    ld_sink_cursor o = {sink, 0};
    ld_status st = write_ehdr(&o, phnum, shoff);
    if (st != LD_STATUS_SUCCESS)
        return st;

    uint8_t batch[PHDR_BATCH * ELF_PHDR_SIZE];
    uint32_t in_batch = 1;
    fill_phdr(batch, ELF_PT_NOTE, notes_off, 0, 0, notes_len, 0);
    uint64_t file_pos = data_off;
    ld_page_run r;
    for (uint64_t pfn = 0; ld_dump_next_run(dump, pfn, 0, LD_RUN_PRESENCE, &r); pfn = r.first_pfn + r.count) {
        uint64_t paddr = r.first_pfn * ps;
        uint64_t vaddr = direct_map ? direct_map + paddr : paddr;
        fill_phdr(batch + in_batch * ELF_PHDR_SIZE, ELF_PT_LOAD, file_pos, vaddr, paddr, r.count * ps, 0);
        file_pos += r.count * ps;
        if (++in_batch == PHDR_BATCH) {
            if ((st = ld_sink_put(&o, batch, in_batch * ELF_PHDR_SIZE)) != LD_STATUS_SUCCESS)
                return st;
            in_batch = 0;
        }
    }
    if ((st = ld_sink_put(&o, batch, in_batch * ELF_PHDR_SIZE)) != LD_STATUS_SUCCESS)
        return st;
    if (xnum) {
        uint8_t sh[ELF_SHDR_SIZE];
        memset(sh, 0, sizeof sh);
        ldf_put32(sh + 44, (uint32_t)phnum); /* sh_info holds the real e_phnum */
        if ((st = ld_sink_put(&o, sh, sizeof sh)) != LD_STATUS_SUCCESS)
            return st;
    }
    if ((st = write_notes(&o, info)) != LD_STATUS_SUCCESS)
        return st;
    if ((st = ld_sink_put_zeros(&o, data_off - o.offset)) != LD_STATUS_SUCCESS)
        return st;
    stats->header_bytes = data_off;

    /* Page data, in the order of the program headers. Pages whose copies
     * are adjacent in memory go out in one write. */
    uint64_t done = 0, total = info->page_count;
    for (uint64_t pfn = 0; ld_dump_next_run(dump, pfn, DATA_MAX_RUN_PAGES, LD_RUN_DATA, &r); pfn = r.first_pfn + r.count) {
        if (!r.data)
            return LD_STATUS_INVALID_DEVICE_STATE; /* present without a copy: the dump changed */
        if ((st = ld_sink_put(&o, r.data, r.count * ps)) != LD_STATUS_SUCCESS)
            return st;
        stats->primary_bytes += r.count * ps;
        done += r.count;
        if (progress && (done % 4096 < r.count || done == total) &&
            (st = progress(progress_arg, "write", done, total)) != LD_STATUS_SUCCESS)
            return st; /* the caller said stop */
    }
    if (o.offset != file_pos)
        return LD_STATUS_INVALID_DEVICE_STATE; /* the dump changed under the writer */
    stats->file_bytes = o.offset;
    return LD_STATUS_SUCCESS;
}

/* Headers, notes and the padding to the page data. Every page may be a run
 * of its own (a trimmed selection is fragmented), so one program header per
 * page bounds them. */
static uint64_t elf_overhead(const ld_dump_info *info, uint64_t pages)
{
    uint64_t ps = info->page_size ? info->page_size : 1;
    return ELF_EHDR_SIZE + (1 + pages) * ELF_PHDR_SIZE + ELF_SHDR_SIZE + notes_size(info) + ps;
}

static const ld_format elf_format = {
    .version = LD_FORMAT_VERSION,
    .name = "elf",
    .write = elf_write,
    .overhead = elf_overhead,
};

const ld_format *ld_format_elf(void)
{
    return &elf_format;
}
