/* The synthetic machine of synthetic_proc.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synthetic_proc.h"

#define PAGE_OFFSET 0xffff888000000000ull
#define TEXT_VA 0xffffffff81000000ull
#define NPH 4
#define NOTE_OFF 0x1000ull
#define DATA_A 0x10000ull
#define DATA_B (DATA_A + SYNTH_A_PAGES * SYNTH_PAGE)

static const char vmcoreinfo[] = "OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\n";

bool synth_is_ram(uint64_t pfn)
{
    return (pfn >= SYNTH_A_FIRST && pfn < SYNTH_A_FIRST + SYNTH_A_PAGES) ||
           (pfn >= SYNTH_B_FIRST && pfn < SYNTH_B_FIRST + SYNTH_B_PAGES);
}

void synth_page(uint64_t pfn, uint8_t *out)
{
    memset(out, 0, SYNTH_PAGE);
    if (pfn == 0x30 || pfn == 0x180) /* zero pages: classified LD_PAGE_ZERO */
        return;
    for (uint64_t i = 0; i < SYNTH_PAGE; i += 8) {
        uint64_t v = (pfn << 32) ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5a5a5a5a5a5a5aull;
        memcpy(out + i, &v, 8);
    }
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }

static void phdr(uint8_t *ph, uint32_t type, uint64_t off, uint64_t va, uint64_t pa, uint64_t size)
{
    put32(ph, type);
    put32(ph + 4, 7);
    put64(ph + 8, off);
    put64(ph + 16, va);
    put64(ph + 24, pa);
    put64(ph + 32, size);
    put64(ph + 40, size);
    put64(ph + 48, SYNTH_PAGE);
}

static size_t note(uint8_t *p, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
    uint32_t namesz = (uint32_t)strlen(name) + 1;
    put32(p, namesz);
    put32(p + 4, descsz);
    put32(p + 8, type);
    memcpy(p + 12, name, namesz);
    size_t d = 12 + ((namesz + 3) & ~3u);
    memcpy(p + d, desc, descsz);
    return d + ((descsz + 3) & ~3u);
}

static bool write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, data, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

static bool write_text(const char *path, const char *text)
{
    return write_file(path, text, strlen(text));
}

static bool build_kcore(const char *path)
{
    size_t size = DATA_B + SYNTH_B_PAGES * SYNTH_PAGE;
    uint8_t *e = calloc(1, size);
    if (!e)
        return false;
    memcpy(e, "\177ELF\2\1\1", 7);
    put16(e + 16, 4);  /* ET_CORE */
    put16(e + 18, 62); /* x86-64 */
    put32(e + 20, 1);
    put64(e + 32, 64);
    put16(e + 52, 64);
    put16(e + 54, 56);
    put16(e + 56, NPH);
    uint8_t prstatus[336] = {0};
    size_t n = note(e + NOTE_OFF, "CORE", 1, prstatus, sizeof prstatus);
    n += note(e + NOTE_OFF + n, "VMCOREINFO", 0, vmcoreinfo, sizeof vmcoreinfo - 1);
    uint8_t *ph = e + 64;
    phdr(ph, 4, NOTE_OFF, 0, 0, n);
    phdr(ph + 56, 1, DATA_B, TEXT_VA, SYNTH_IMAGE_FIRST * SYNTH_PAGE, SYNTH_IMAGE_PAGES * SYNTH_PAGE);
    phdr(ph + 112, 1, DATA_A, PAGE_OFFSET + SYNTH_A_FIRST * SYNTH_PAGE, SYNTH_A_FIRST * SYNTH_PAGE,
         SYNTH_A_PAGES * SYNTH_PAGE);
    phdr(ph + 168, 1, DATA_B, PAGE_OFFSET + SYNTH_B_FIRST * SYNTH_PAGE, SYNTH_B_FIRST * SYNTH_PAGE,
         SYNTH_B_PAGES * SYNTH_PAGE);
    for (uint64_t i = 0; i < SYNTH_A_PAGES; i++)
        synth_page(SYNTH_A_FIRST + i, e + DATA_A + i * SYNTH_PAGE);
    for (uint64_t i = 0; i < SYNTH_B_PAGES; i++)
        synth_page(SYNTH_B_FIRST + i, e + DATA_B + i * SYNTH_PAGE);
    bool ok = write_file(path, e, size);
    free(e);
    return ok;
}

static bool build_kpageflags(const char *path)
{
    uint64_t flags[SYNTH_MAX_PFN] = {0};
    flags[0x20] = 1ull << 10;               /* buddy: free */
    flags[0x21] = 1ull << 7;                /* slab */
    flags[0x22] = 1ull << 26;               /* page table */
    flags[0x23] = (1ull << 12) | (1ull << 5); /* anonymous on the LRU: user */
    flags[0x25] = 1ull << 5;                /* page cache */
    flags[0x1a0] = 1ull << 12;              /* user */
    return write_file(path, flags, sizeof flags);
}

static bool mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    return mkdir(tmp, 0700) == 0 || access(tmp, F_OK) == 0;
}

/* PROC/PID/task/TID/stat: state R, running on `cpu` (field 39). */
static bool fake_task(const char *proc, int pid, int cpu)
{
    char path[512], text[512] = "", fields[256] = "";
    snprintf(path, sizeof path, "%s/%d/task/%d", proc, pid, pid);
    if (!mkdirs(path))
        return false;
    for (int i = 4; i <= 38; i++)
        strcat(fields, "0 ");
    snprintf(text, sizeof text, "%d (task) R %s%d 0 0\n", pid, fields, cpu);
    strcat(path, "/stat");
    return write_text(path, text);
}

bool synth_proc_create(synth_proc *sp)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "/tmp/ld-synth-proc.XXXXXX");
    if (!mkdtemp(sp->dir))
        return false;
    snprintf(sp->kcore, sizeof sp->kcore, "%s/kcore", sp->dir);
    snprintf(sp->iomem, sizeof sp->iomem, "%s/iomem", sp->dir);
    snprintf(sp->kpageflags, sizeof sp->kpageflags, "%s/kpageflags", sp->dir);
    snprintf(sp->proc, sizeof sp->proc, "%s/proc", sp->dir);
    snprintf(sp->lockdown, sizeof sp->lockdown, "%s/lockdown", sp->dir);
    snprintf(sp->cgroup, sizeof sp->cgroup, "%s/cgroup/app", sp->dir);
    char path[512], text[1024];
    bool ok = build_kcore(sp->kcore) && build_kpageflags(sp->kpageflags) &&
              write_text(sp->iomem, "00000000-00000fff : Reserved\n"
                                    "00001000-0009ffff : System RAM\n"
                                    "000a0000-000fffff : PCI Bus 0000:00\n"
                                    "00100000-001fffff : System RAM\n"
                                    "  00100000-0010bfff : Kernel code\n"
                                    "  0010c000-0010ffff : Kernel data\n") &&
              write_text(sp->lockdown, "[none] integrity confidentiality\n") && mkdirs(sp->proc) &&
              fake_task(sp->proc, 100, 0) && fake_task(sp->proc, 200, 1) && mkdirs(sp->cgroup);
    /* self: a cgroup2 mount holding the stand-in cgroup; we live elsewhere */
    snprintf(path, sizeof path, "%s/self", sp->proc);
    ok = ok && mkdirs(path);
    snprintf(path, sizeof path, "%s/self/mountinfo", sp->proc);
    snprintf(text, sizeof text,
             "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
             "30 22 0:26 / %s/cgroup rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
             sp->dir);
    ok = ok && write_text(path, text);
    snprintf(path, sizeof path, "%s/self/cgroup", sp->proc);
    ok = ok && write_text(path, "0::/elsewhere\n");
    snprintf(path, sizeof path, "%s/cgroup.freeze", sp->cgroup);
    ok = ok && write_text(path, "0\n");
    snprintf(path, sizeof path, "%s/cgroup.events", sp->cgroup);
    ok = ok && write_text(path, "populated 1\nfrozen 1\n");
    if (!ok)
        synth_proc_destroy(sp);
    return ok;
}

void synth_proc_destroy(synth_proc *sp)
{
    if (!sp->dir[0])
        return;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sp->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", sp->dir);
    sp->dir[0] = 0;
}

void synth_proc_config(const synth_proc *sp, ld_linux_config *cfg)
{
    ld_linux_config_init(cfg);
    cfg->kcore_path = sp->kcore;
    cfg->iomem_path = sp->iomem;
    cfg->kpageflags_path = sp->kpageflags;
    cfg->proc_path = sp->proc;
    cfg->lockdown_path = sp->lockdown;
    cfg->freeze_cgroup = sp->cgroup;
    cfg->cpu_count = 2;
}

char synth_cgroup_freeze(const synth_proc *sp)
{
    char path[512], c = 0;
    snprintf(path, sizeof path, "%s/cgroup.freeze", sp->cgroup);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fread(&c, 1, 1, f) != 1)
        c = 0;
    fclose(f);
    return c;
}
