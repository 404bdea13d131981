/* The Linux backend on synthetic /proc files made by this test: a kcore
 * ELF with notes and direct-map, text and vmalloc segments, an iomem, a
 * kpageflags and a /proc tree. Then malformed and hostile variants, the
 * specific open errors, the checksum dirty log, the user-space freeze, and
 * a whole capture written as ELF and read back by a parser of the test's
 * own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../engine/harness.h"
#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/linux.h"
#include "livedump/runtime.h"

#define PAGE 4096ull
#define PAGE_OFFSET 0xffff888000000000ull
#define TEXT_VA 0xffffffff81000000ull

/* The synthetic machine: RAM pfns 1..0x9f (segment A) and 0x100..0x2ff
 * (segment B); iomem's System RAM cuts B short at 0x2f0. Kernel code at
 * pfns 0x100..0x10f. */
#define SEG_A_FIRST 0x1ull
#define SEG_A_PAGES 0x9full
#define SEG_B_FIRST 0x100ull
#define SEG_B_PAGES 0x200ull
#define RAM_B_END 0x2f0ull /* exclusive, from iomem */
#define IMAGE_FIRST 0x100ull
#define IMAGE_PAGES 0x10ull

static const char vmcoreinfo_text[] = "OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\n"
                                      "SYMBOL(swapper_pg_dir)=ffffffff8260a000\nSYMBOL(vmemmap)=ffffea0000000000\n";

static char dir[256];
static char kcore_path[300], iomem_path[300], kpf_path[300], proc_path[300], lockdown_path[300];

/* the flags each test pfn gets; others: 0 (kernel-other) */
typedef struct flag_page {
    uint64_t pfn, flags;
    ld_page_kind want;
} flag_page;

#define B(n) (1ull << (n))
static const flag_page flag_pages[] = {
    {0x20, B(10), LD_PAGE_FREE},                      /* buddy */
    {0x21, B(7), LD_PAGE_KERNEL_OTHER},               /* slab */
    {0x22, B(26), LD_PAGE_PAGE_TABLES},               /* page table */
    {0x23, B(12) | B(5), LD_PAGE_USER},               /* anonymous on LRU */
    {0x24, B(17), LD_PAGE_USER},                      /* hugetlb */
    {0x25, B(5), LD_PAGE_FILE_CACHE},                 /* page cache */
    {0x26, B(13), LD_PAGE_FILE_CACHE},                /* swap cache */
    {0x27, B(19), LD_PAGE_IO_SPACE},                  /* hwpoison: never read */
    {0x28, B(23), LD_PAGE_IO_SPACE},                  /* offline */
    {0x29, B(20), LD_PAGE_IO_SPACE},                  /* no struct page */
    {0x2a, B(32), LD_PAGE_KERNEL_OTHER},              /* reserved */
    {0x2b, B(24), LD_PAGE_KERNEL_OTHER},              /* the kernel's zero page flag: content is not zero */
    {0x105, B(10), LD_PAGE_KERNEL_IMAGE},             /* image wins over flags */
    {0x200, B(12), LD_PAGE_USER},
};
/* pages whose content is all zero */
static const uint64_t zero_pfns[] = {0x30, 0x31, 0x250};

static bool is_zero_pfn(uint64_t pfn)
{
    for (size_t i = 0; i < sizeof zero_pfns / sizeof zero_pfns[0]; i++)
        if (zero_pfns[i] == pfn)
            return true;
    return false;
}

static void page_pattern(uint64_t pfn, uint8_t *p)
{
    memset(p, 0, PAGE);
    if (is_zero_pfn(pfn))
        return;
    for (uint64_t i = 0; i < PAGE; i += 8) {
        uint64_t v = pfn * 0x1000193ull + i * 0x9e3779b1ull + 1;
        memcpy(p + i, &v, 8);
    }
}

/* ---- building the synthetic kcore ---- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

#define NPH 5
#define DATA_A 0x10000ull
#define DATA_B (DATA_A + SEG_A_PAGES * PAGE)
#define NOTE_OFF 0x1000ull
#define PH(i, field) (64 + 56 * (i) + (field)) /* program header i's field */

typedef struct kcore_image {
    uint8_t *data;
    size_t size;
} kcore_image;

static void set_phdr(uint8_t *ph, uint32_t type, uint64_t off, uint64_t va, uint64_t pa, uint64_t size)
{
    put32(ph, type);
    put32(ph + 4, 7);
    put64(ph + 8, off);
    put64(ph + 16, va);
    put64(ph + 24, pa);
    put64(ph + 32, size);
    put64(ph + 40, size);
    put64(ph + 48, PAGE);
}

static size_t add_note(uint8_t *p, const char *name, uint32_t type, const void *desc, uint32_t descsz)
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

static void build_kcore(kcore_image *k)
{
    k->size = DATA_B + SEG_B_PAGES * PAGE;
    k->data = calloc(1, k->size);
    assert_non_null(k->data);
    uint8_t *e = k->data;
    memcpy(e, "\177ELF\2\1\1", 7);
    put16(e + 16, 4);
    put16(e + 18, 62);
    put32(e + 20, 1);
    put64(e + 32, 64);
    put16(e + 52, 64);
    put16(e + 54, 56);
    put16(e + 56, NPH);
    /* notes as the kernel writes them: PRSTATUS (zeros), then VMCOREINFO */
    uint8_t prstatus[336] = {0};
    size_t n = add_note(e + NOTE_OFF, "CORE", 1, prstatus, sizeof prstatus);
    n += add_note(e + NOTE_OFF + n, "VMCOREINFO", 0, vmcoreinfo_text, sizeof vmcoreinfo_text - 1);
    uint8_t *ph = e + 64;
    set_phdr(ph, 4, NOTE_OFF, 0, 0, n);
    /* kernel text, mapped a second time by its image address */
    set_phdr(ph + 56, 1, DATA_B, TEXT_VA, IMAGE_FIRST * PAGE, IMAGE_PAGES * PAGE);
    /* vmalloc: no physical address */
    set_phdr(ph + 112, 1, DATA_A, 0xffffc90000000000ull, UINT64_MAX, PAGE);
    set_phdr(ph + 168, 1, DATA_A, PAGE_OFFSET + SEG_A_FIRST * PAGE, SEG_A_FIRST * PAGE, SEG_A_PAGES * PAGE);
    set_phdr(ph + 224, 1, DATA_B, PAGE_OFFSET + SEG_B_FIRST * PAGE, SEG_B_FIRST * PAGE, SEG_B_PAGES * PAGE);
    for (uint64_t i = 0; i < SEG_A_PAGES; i++)
        page_pattern(SEG_A_FIRST + i, e + DATA_A + i * PAGE);
    for (uint64_t i = 0; i < SEG_B_PAGES; i++)
        page_pattern(SEG_B_FIRST + i, e + DATA_B + i * PAGE);
}

static void write_file(const char *path, const void *data, size_t n)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

static const char good_iomem[] =
    "00000000-00000fff : Reserved\n"
    "00001000-0009ffff : System RAM\n"
    "000a0000-000fffff : PCI Bus 0000:00\n"
    "00100000-002effff : System RAM\n"
    "  00100000-0010bfff : Kernel code\n"
    "  0010c000-0010efff : Kernel rodata\n"
    "  0010f000-0010f7ff : Kernel data\n"
    "  0010f800-0010ffff : Kernel bss\n"
    "fed00000-fed003ff : HPET 0\n";

static void write_kpageflags(void)
{
    uint64_t flags[0x300] = {0};
    for (size_t i = 0; i < sizeof flag_pages / sizeof flag_pages[0]; i++)
        flags[flag_pages[i].pfn] = flag_pages[i].flags;
    write_file(kpf_path, flags, sizeof flags);
}

static void mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    mkdir(tmp, 0700);
}

/* a /proc/PID/task/TID/stat with state and processor (field 39) */
static void fake_task(int pid, int tid, char state, int cpu)
{
    char path[512], text[512], fields[256] = "";
    snprintf(path, sizeof path, "%s/%d/task/%d", proc_path, pid, tid);
    mkdirs(path);
    /* fields 4..38 are 35 zeros */
    for (int i = 4; i <= 38; i++)
        strcat(fields, "0 ");
    snprintf(text, sizeof text, "%d (a) b) c) %c %s%d 0 0\n", tid, state, fields, cpu);
    strcat(path, "/stat");
    write_text(path, text);
}

/* The fake /proc's self: cgroup2 mounted at DIR+MNT (NULL: no cgroup2
 * mount at all, only v1 ones), our cgroup OURS (NULL: no v2 line). */
static void fake_self(const char *mnt, const char *ours)
{
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/self", proc_path);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/self/mountinfo", proc_path);
    if (mnt)
        snprintf(text, sizeof text,
                 "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                 "30 22 0:26 / %s%s rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
                 dir, mnt);
    else
        snprintf(text, sizeof text,
                 "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                 "31 22 0:27 / %s/cgroup/cpu rw,nosuid shared:5 - cgroup cgroup rw,cpu\n", dir);
    write_text(path, text);
    snprintf(path, sizeof path, "%s/self/cgroup", proc_path);
    snprintf(text, sizeof text, "4:cpu:/\n%s%s%s", ours ? "0::" : "", ours ? ours : "", ours ? "\n" : "");
    write_text(path, text);
}

static kcore_image image;

static uint64_t ldl_now_ns_test(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ld-kcore-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(kcore_path, sizeof kcore_path, "%s/kcore", dir);
    snprintf(iomem_path, sizeof iomem_path, "%s/iomem", dir);
    snprintf(kpf_path, sizeof kpf_path, "%s/kpageflags", dir);
    snprintf(proc_path, sizeof proc_path, "%s/proc", dir);
    snprintf(lockdown_path, sizeof lockdown_path, "%s/lockdown", dir);
    build_kcore(&image);
    write_file(kcore_path, image.data, image.size);
    write_text(iomem_path, good_iomem);
    write_kpageflags();
    write_text(lockdown_path, "[none] integrity confidentiality\n");
    mkdirs(proc_path);
    fake_task(100, 100, 'R', 1);
    fake_task(200, 200, 'S', 0);
    fake_task(300, 301, 'R', 0);
    fake_task(300, 302, 'R', 0); /* two runnable on CPU 0: /proc cannot tell */
    fake_self("/cgroup", "/elsewhere");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(image.data);
    return 0;
}

static void config(ld_linux_config *cfg)
{
    ld_linux_config_init(cfg);
    cfg->kcore_path = kcore_path;
    cfg->iomem_path = iomem_path;
    cfg->kpageflags_path = kpf_path;
    cfg->proc_path = proc_path;
    cfg->lockdown_path = lockdown_path;
    cfg->cpu_count = 2;
}

static ld_linux *open_ok(const ld_linux_config *cfg)
{
    ld_linux *lx = NULL;
    ld_error err;
    ld_status st = ld_linux_open(cfg, &lx, &err);
    if (st != LD_STATUS_SUCCESS)
        fail_msg("open failed: %s", err.message);
    return lx;
}

/* ---- tests ---- */

static void test_ranges_and_system_info(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    assert_int_equal(h->version, LD_HAL_VERSION);
    /* the kernel keeps running: never claim to stop the machine */
    assert_false(h->caps & LD_HAL_CAP_QUIESCE);
    ld_phys_range r[4];
    size_t n = 0;
    assert_int_equal(h->mem_ranges(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    n = 4;
    assert_int_equal(h->mem_ranges(h->ctx, r, &n), LD_STATUS_SUCCESS);
    assert_int_equal(r[0].first_pfn, SEG_A_FIRST);
    assert_int_equal(r[0].page_count, SEG_A_PAGES);
    /* segment B is cut to iomem's System RAM */
    assert_int_equal(r[1].first_pfn, SEG_B_FIRST);
    assert_int_equal(r[1].page_count, RAM_B_END - SEG_B_FIRST);

    ld_system_info si;
    assert_int_equal(h->system_info(h->ctx, &si), LD_STATUS_SUCCESS);
    assert_int_equal(si.direct_map_base, PAGE_OFFSET);
    assert_int_equal(si.kernel_base, TEXT_VA);
    assert_int_equal(si.vmcoreinfo_size, sizeof vmcoreinfo_text - 1);
    assert_memory_equal(si.vmcoreinfo, vmcoreinfo_text, sizeof vmcoreinfo_text - 1);
    assert_string_equal(si.os_release, "6.1.0-synthetic");
    assert_int_equal(si.pfn_database, 0xffffea0000000000ull);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.kcore_ram_segments, 2);
    assert_int_equal(st.ram_pages, SEG_A_PAGES + RAM_B_END - SEG_B_FIRST);
    ld_linux_close(lx);
}

static ld_page_kind kind_at(const ld_kind_range *k, size_t n, uint64_t pfn)
{
    for (size_t i = 0; i < n; i++)
        if (pfn >= k[i].first_pfn && pfn < k[i].first_pfn + k[i].page_count)
            return (ld_page_kind)k[i].kind;
    return LD_PAGE_KIND_COUNT;
}

static void test_page_kinds(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    size_t n = 0;
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    ld_kind_range *k = calloc(n, sizeof *k);
    assert_int_equal(h->mem_kinds(h->ctx, k, &n), LD_STATUS_SUCCESS);
    for (size_t i = 0; i < sizeof flag_pages / sizeof flag_pages[0]; i++) {
        print_message("pfn 0x%llx\n", (unsigned long long)flag_pages[i].pfn);
        assert_int_equal(kind_at(k, n, flag_pages[i].pfn), flag_pages[i].want);
    }
    for (uint64_t p = IMAGE_FIRST; p < IMAGE_FIRST + IMAGE_PAGES; p++)
        assert_int_equal(kind_at(k, n, p), LD_PAGE_KERNEL_IMAGE);
    assert_int_equal(kind_at(k, n, 0x30), LD_PAGE_ZERO);
    assert_int_equal(kind_at(k, n, 0x250), LD_PAGE_ZERO);
    assert_int_equal(kind_at(k, n, 0x40), LD_PAGE_KERNEL_OTHER);
    /* runs are ascending and inside the ranges */
    for (size_t i = 1; i < n; i++)
        assert_true(k[i].first_pfn >= k[i - 1].first_pfn + k[i - 1].page_count);
    assert_int_equal(kind_at(k, n, RAM_B_END), LD_PAGE_KIND_COUNT);
    free(k);
    ld_linux_close(lx);

    /* without the zero scan, zero pages keep their flags' kind */
    cfg.scan_zero_pages = false;
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    k = calloc(n, sizeof *k);
    assert_int_equal(h->mem_kinds(h->ctx, k, &n), LD_STATUS_SUCCESS);
    assert_int_equal(kind_at(k, n, 0x30), LD_PAGE_KERNEL_OTHER);
    free(k);
    ld_linux_close(lx);

    /* without kpageflags: everything but the image is other kernel data */
    cfg.kpageflags_path = "";
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    k = calloc(n, sizeof *k);
    assert_int_equal(h->mem_kinds(h->ctx, k, &n), LD_STATUS_SUCCESS);
    assert_int_equal(kind_at(k, n, 0x20), LD_PAGE_KERNEL_OTHER);
    assert_int_equal(kind_at(k, n, 0x105), LD_PAGE_KERNEL_IMAGE);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_false(st.kpageflags_used);
    free(k);
    ld_linux_close(lx);
}

static void test_reads_by_physical_address(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    uint8_t *buf = malloc(4 * PAGE), want[PAGE];
    assert_int_equal(h->mem_read(h->ctx, 0x9c, 3, buf), LD_STATUS_SUCCESS);
    for (int i = 0; i < 3; i++) {
        page_pattern(0x9c + (uint64_t)i, want);
        assert_memory_equal(buf + i * PAGE, want, PAGE);
    }
    assert_int_equal(h->mem_read(h->ctx, 0x2ee, 2, buf), LD_STATUS_SUCCESS);
    page_pattern(0x2ef, want);
    assert_memory_equal(buf + PAGE, want, PAGE);
    /* not RAM: refused, never read */
    assert_int_not_equal(h->mem_read(h->ctx, 0x9f, 2, buf), LD_STATUS_SUCCESS);
    assert_int_not_equal(h->mem_read(h->ctx, RAM_B_END, 1, buf), LD_STATUS_SUCCESS);
    assert_int_not_equal(h->mem_read(h->ctx, UINT64_MAX, 1, buf), LD_STATUS_SUCCESS);
    free(buf);
    ld_linux_close(lx);
}

static void poke_kcore(uint64_t file_off, uint8_t v)
{
    int fd = open(kcore_path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &v, 1, (off_t)file_off), 1);
    close(fd);
}

static void test_checksum_dirty_log(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    assert_true(h->caps & LD_HAL_CAP_DIRTY_LOG);
    uint64_t bits[0x300 / 64] = {0}, n = 99;
    uint8_t *buf = malloc(0x40 * PAGE);
    assert_int_equal(h->dirty_start(h->ctx), LD_STATUS_SUCCESS);
    /* nothing read yet: nothing tracked */
    assert_int_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 0);
    assert_int_equal(h->mem_read(h->ctx, 0x10, 0x40, buf), LD_STATUS_SUCCESS);
    assert_int_equal(h->mem_read(h->ctx, 0x120, 1, buf), LD_STATUS_SUCCESS);
    assert_int_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 0);
    /* change one byte of pfn 0x13 and of 0x120, and of 0x60 (never read) */
    poke_kcore(DATA_A + (0x13 - SEG_A_FIRST) * PAGE + 77, 0xAB);
    poke_kcore(DATA_B + (0x120 - SEG_B_FIRST) * PAGE + 4095, 0xCD);
    poke_kcore(DATA_A + (0x60 - SEG_A_FIRST) * PAGE, 0xEF);
    assert_int_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 2);
    for (uint64_t p = 0; p < 0x300; p++)
        assert_int_equal((bits[p / 64] >> (p % 64)) & 1, p == 0x13 || p == 0x120);
    /* reported once; unchanged since */
    memset(bits, 0, sizeof bits);
    assert_int_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 0);
    /* ABA: changed and restored between two fetches is not a change */
    uint8_t orig[PAGE];
    page_pattern(0x14, orig);
    poke_kcore(DATA_A + (0x14 - SEG_A_FIRST) * PAGE + 8, 0x11);
    poke_kcore(DATA_A + (0x14 - SEG_A_FIRST) * PAGE + 8, orig[8]);
    assert_int_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    assert_int_equal(n, 0);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.dirty_fetches, 5);
    assert_int_equal(h->dirty_stop(h->ctx), LD_STATUS_SUCCESS);
    assert_int_not_equal(h->dirty_fetch(h->ctx, bits, 0x300, &n), LD_STATUS_SUCCESS);
    ld_linux_close(lx);
    free(buf);
    write_file(kcore_path, image.data, image.size); /* restore */
}

/* ---- quiesce: processes really stopped, always continued ---- */

static char proc_state_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p ? p[2] : 0;
}

typedef struct quiesce_probe {
    int pid;
    char state_inside;
    ld_status ret;
    const ld_hal *hal;
    ld_cpu_context ctx[2];
} quiesce_probe;

static ld_status inside(void *arg)
{
    quiesce_probe *q = arg;
    q->state_inside = proc_state_of(q->pid);
    for (uint32_t c = 0; c < 2; c++)
        q->hal->cpu_context(q->hal->ctx, c, &q->ctx[c]);
    return q->ret;
}

static int thread_tid;

static void *tid_thread(void *arg)
{
    (void)arg;
    __atomic_store_n(&thread_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
    while (__atomic_load_n(&thread_tid, __ATOMIC_ACQUIRE))
        usleep(1000);
    return NULL;
}

static void test_quiesce_stops_and_always_continues(void **state)
{
    (void)state;
    int child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    ld_linux_config cfg;
    config(&cfg);
    cfg.stop_pids = &child;
    cfg.stop_pid_count = 1;
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    ld_quiesce_times t;
    quiesce_probe q = {child, 0, LD_STATUS_SUCCESS, h, {{0}}};
    assert_int_equal(h->quiesce(h->ctx, 2000000000ull, inside, &q, &t), LD_STATUS_SUCCESS);
    assert_int_equal(q.state_inside, 'T');
    assert_int_not_equal(proc_state_of(child), 'T');
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.last_frozen_tasks, 1);
    assert_true(st.last_freeze_ns > 0);
    /* what /proc (the fake one here) says runs on each CPU: CPU 1 runs
     * 100; CPU 0 has two runnable tasks, so it stays unknown */
    assert_int_equal(q.ctx[1].valid, LD_CTX_THREAD);
    assert_int_equal(q.ctx[1].thread_id, 100);
    assert_int_equal(q.ctx[0].valid, 0);
    /* the callback fails: still continued */
    q.ret = LD_STATUS_IO_DEVICE_ERROR;
    assert_int_equal(h->quiesce(h->ctx, 2000000000ull, inside, &q, &t), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(q.state_inside, 'T');
    assert_int_not_equal(proc_state_of(child), 'T');
    /* stopped by someone else before: left stopped, theirs to continue */
    kill(child, SIGSTOP);
    for (int i = 0; i < 1000 && proc_state_of(child) != 'T'; i++)
        usleep(1000);
    q.ret = LD_STATUS_SUCCESS;
    assert_int_equal(h->quiesce(h->ctx, 2000000000ull, inside, &q, &t), LD_STATUS_SUCCESS);
    assert_int_equal(proc_state_of(child), 'T');
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.last_frozen_tasks, 0);
    ld_linux_close(lx);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    /* a process that is gone: the quiesce fails, the callback never runs */
    cfg.stop_pids = &child;
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    q.state_inside = 0;
    q.ret = LD_STATUS_SUCCESS;
    assert_int_equal(h->quiesce(h->ctx, 100000000ull, inside, &q, &t), LD_STATUS_NOT_FOUND);
    assert_int_equal(q.state_inside, 0);
    ld_linux_close(lx);

    /* the capturing process itself cannot be stopped: not its pid, and not
     * any of its threads either */
    int self = getpid();
    cfg.stop_pids = &self;
    ld_linux *bad = NULL;
    ld_error err;
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_CONFIG);
    assert_null(bad);
    thread_tid = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tid_thread, NULL), 0);
    while (!__atomic_load_n(&thread_tid, __ATOMIC_ACQUIRE))
        usleep(1000);
    int tid = thread_tid;
    assert_int_not_equal(tid, self);
    cfg.stop_pids = &tid;
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_CONFIG);
    assert_null(bad);
    __atomic_store_n(&thread_tid, 0, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
}

/* ---- quiesce: a cgroup v2 freeze, always thawed ----
 * A stand-in cgroup directory: cgroup.freeze is a plain file, and
 * cgroup.events says frozen 1 (a cgroup that freezes) or frozen 0 (one that
 * never does within the timeout). The thaw must write 0 on every path. */

static void fake_cgroup(const char *cg, bool freezes)
{
    char path[512];
    mkdirs(cg);
    snprintf(path, sizeof path, "%s/cgroup.freeze", cg);
    write_text(path, "0\n");
    snprintf(path, sizeof path, "%s/cgroup.events", cg);
    write_text(path, freezes ? "populated 1\nfrozen 1\n" : "populated 1\nfrozen 0\n");
}

static char freeze_value(const char *cg)
{
    char path[512], c = 0;
    snprintf(path, sizeof path, "%s/cgroup.freeze", cg);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(&c, 1, 1, f), 1);
    fclose(f);
    return c;
}

static const char *probe_cg;
static char freeze_seen;

static ld_status note_freeze(void *arg)
{
    (void)arg;
    freeze_seen = freeze_value(probe_cg);
    return LD_STATUS_IO_DEVICE_ERROR;
}

static void test_cgroup_freeze_always_thawed(void **state)
{
    (void)state;
    char cg[400];
    snprintf(cg, sizeof cg, "%s/cgroup/app", dir);
    probe_cg = cg;
    ld_linux_config cfg;
    config(&cfg);
    cfg.freeze_cgroup = cg;

    /* it freezes: the callback runs frozen; it fails, and still thawed */
    fake_cgroup(cg, true);
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    ld_quiesce_times t;
    freeze_seen = 0;
    assert_int_equal(h->quiesce(h->ctx, 1000000000ull, note_freeze, NULL, &t), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(freeze_seen, '1');
    assert_int_equal(freeze_value(cg), '0');
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_true(st.last_cgroup_frozen);
    ld_linux_close(lx);

    /* it never freezes: a timeout, the callback never runs, thawed */
    fake_cgroup(cg, false);
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    freeze_seen = 0;
    assert_int_equal(h->quiesce(h->ctx, 20000000ull, note_freeze, NULL, &t), LD_STATUS_TIMEOUT);
    assert_int_equal(freeze_seen, 0);
    assert_int_equal(freeze_value(cg), '0');
    /* a whole capture fails cleanly the same way */
    ld_engine *e;
    assert_int_equal(ld_engine_create(h, NULL, &e), LD_STATUS_SUCCESS);
    mem_sink m;
    mem_sink_init(&m);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.corral_timeout_ns = 20000000ull;
    assert_int_equal(ld_engine_capture(e, &req, ld_format_elf(), &m.sink, NULL), LD_STATUS_TIMEOUT);
    assert_true(m.aborted);
    assert_int_equal(freeze_value(cg), '0');
    mem_sink_release(&m);
    ld_engine_destroy(e);
    ld_linux_close(lx);

    /* frozen already by someone else (an admin): we wait for it, run the
     * callback, and neither freeze nor thaw it: the file is never written */
    fake_cgroup(cg, true);
    char fpath[512];
    snprintf(fpath, sizeof fpath, "%s/cgroup.freeze", cg);
    write_text(fpath, "1\n");
    struct stat before, after;
    assert_int_equal(stat(fpath, &before), 0);
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    freeze_seen = 0;
    assert_int_equal(h->quiesce(h->ctx, 1000000000ull, note_freeze, NULL, &t), LD_STATUS_IO_DEVICE_ERROR);
    assert_int_equal(freeze_seen, '1');
    assert_int_equal(freeze_value(cg), '1');
    assert_int_equal(stat(fpath, &after), 0);
    assert_true(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    ld_linux_get_stats(lx, &st);
    assert_true(st.last_cgroup_frozen);
    assert_true(st.last_cgroup_frozen_by_other);
    assert_int_equal(st.last_freeze_ns, 0);
    ld_linux_close(lx);

    /* it cannot be frozen (no cgroup.freeze any more: not a cgroup v2
     * one): the errno map names why, and the callback never runs */
    fake_cgroup(cg, true);
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    assert_int_equal(unlink(fpath), 0);
    freeze_seen = 0;
    assert_int_equal(h->quiesce(h->ctx, 1000000000ull, note_freeze, NULL, &t), LD_STATUS_NO_SUCH_FILE);
    assert_int_equal(freeze_seen, 0);
    ld_linux_get_stats(lx, &st);
    assert_false(st.last_cgroup_frozen);
    ld_linux_close(lx);
    fake_cgroup(cg, true);

    ld_error err;
    ld_linux *bad = NULL;
    /* it holds us (our cgroup is below it), found from the mount in
     * mountinfo, not from an assumed /sys/fs/cgroup */
    fake_self("/cgroup", "/app/sub");
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_CONFIG);
    assert_non_null(strstr(err.message, "holds the capturing process"));
    /* the same through a cgroup2 mount one level up: now it is /cgroup/app */
    fake_self("", "/cgroup/app");
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "holds the capturing process"));
    fake_self("", "/cgroup/application"); /* a sibling with a longer name */
    lx = open_ok(&cfg);
    ld_linux_close(lx);
    /* a hybrid layout: only v1 hierarchies hold it, cannot tell: refused */
    fake_self(NULL, "/");
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "cannot be told"));
    /* no v2 line for us: cannot tell either */
    fake_self("/cgroup", NULL);
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "cannot tell"));
    assert_null(bad);
    /* we moved into it after open: the quiesce refuses before freezing */
    fake_self("/cgroup", "/elsewhere");
    lx = open_ok(&cfg);
    h = ld_linux_hal(lx);
    fake_self("/cgroup", "/app");
    freeze_seen = 0;
    assert_int_equal(h->quiesce(h->ctx, 1000000000ull, note_freeze, NULL, &t), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(freeze_seen, 0);
    assert_int_equal(freeze_value(cg), '0');
    ld_linux_close(lx);
    fake_self("/cgroup", "/elsewhere");

    /* not a cgroup directory at all */
    snprintf(cg, sizeof cg, "%s/not-a-cgroup", dir);
    mkdirs(cg);
    cfg.freeze_cgroup = cg;
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_CONFIG);
    assert_null(bad);
}

/* ---- quiesce: the capture killed while they are frozen ----
 * A child captures with a callback that never returns; killed with
 * SIGKILL there, its watchdog must thaw the cgroup and continue the
 * process it stopped. */

static int inside_pipe[2];

static ld_status block_forever(void *arg)
{
    (void)arg;
    char c = 'i';
    if (write(inside_pipe[1], &c, 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

static void test_killed_while_frozen_thaws(void **state)
{
    (void)state;
    char cg[400];
    snprintf(cg, sizeof cg, "%s/cgroup/app", dir);
    fake_cgroup(cg, true);
    int victim = fork();
    assert_true(victim >= 0);
    if (victim == 0) {
        /* left stopped if the test fails: then it must not hold the runner's output open */
        close(1);
        close(2);
        for (;;)
            pause();
    }
    assert_int_equal(pipe(inside_pipe), 0);
    int capt = fork();
    assert_true(capt >= 0);
    if (capt == 0) {
        close(inside_pipe[0]);
        ld_linux_config cfg;
        config(&cfg);
        cfg.freeze_cgroup = cg;
        cfg.stop_pids = &victim;
        cfg.stop_pid_count = 1;
        ld_linux *lx;
        ld_error err;
        if (ld_linux_open(&cfg, &lx, &err) != LD_STATUS_SUCCESS)
            _exit(2);
        const ld_hal *h = ld_linux_hal(lx);
        ld_quiesce_times t;
        h->quiesce(h->ctx, 2000000000ull, block_forever, NULL, &t);
        _exit(4);
    }
    close(inside_pipe[1]);
    char c = 0;
    assert_int_equal(read(inside_pipe[0], &c, 1), 1); /* EOF: the child failed before the freeze */
    close(inside_pipe[0]);
    assert_int_equal(freeze_value(cg), '1');
    assert_int_equal(proc_state_of(victim), 'T');
    kill(capt, SIGKILL);
    int ws;
    assert_int_equal(waitpid(capt, &ws, 0), capt);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    for (int i = 0; i < 5000 && (freeze_value(cg) != '0' || proc_state_of(victim) == 'T'); i++)
        usleep(1000);
    assert_int_equal(freeze_value(cg), '0');
    assert_int_not_equal(proc_state_of(victim), 'T');
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
}

/* ---- FIFOs instead of files: an error at once, not a hang in open ---- */

static void test_fifo_refused(void **state)
{
    (void)state;
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *bad = (ld_linux *)1;
    ld_error err;
    alarm(10); /* a hang kills the test */
    cfg.kcore_path = fifo;
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_KCORE);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_null(bad);
    config(&cfg);
    cfg.iomem_path = fifo;
    assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.reason, LD_LINUX_BAD_IOMEM);
    assert_non_null(strstr(err.message, "not a regular file"));
    /* kpageflags: optional, so classification simply goes without it */
    config(&cfg);
    cfg.kpageflags_path = fifo;
    ld_linux *lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    size_t n = 0;
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_false(st.kpageflags_used);
    ld_linux_close(lx);
    alarm(0);
    unlink(fifo);
}

/* ---- specific open errors ---- */

static void expect_open_error(const ld_linux_config *cfg, ld_status want_st, ld_linux_reason want)
{
    ld_linux *lx = (ld_linux *)1;
    ld_error err;
    ld_status st = ld_linux_open(cfg, &lx, &err);
    print_message("  -> %s: %s\n", ld_linux_reason_name(err.reason), err.message);
    assert_int_equal(st, want_st);
    assert_int_equal(err.reason, want);
    assert_null(lx);
    assert_true(strlen(err.message) > 10);
}

static void test_open_errors(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    char path[400];
    snprintf(path, sizeof path, "%s/no-such-kcore", dir);
    cfg.kcore_path = path;
    expect_open_error(&cfg, LD_STATUS_NO_SUCH_FILE, LD_LINUX_NO_KCORE);

    config(&cfg);
    snprintf(path, sizeof path, "%s/iomem-zero", dir);
    write_text(path, "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"
                     "  00000000-00000000 : Kernel code\n");
    cfg.iomem_path = path;
    expect_open_error(&cfg, LD_STATUS_ACCESS_DENIED, LD_LINUX_IOMEM_HIDDEN);

    const char *bad_iomem[] = {
        "00001000-0009ffff : Reserved\n",                /* no System RAM */
        "00001000-0009ffff System RAM\n",                /* no " : " */
        "0009ffff-00001000 : System RAM\n",              /* end before start */
        "1234567890abcdef0-1 : System RAM\n",            /* 17 hex digits */
        "zz-10 : System RAM\n",
        "00400000-004fffff : System RAM\n",              /* no overlap with kcore */
    };
    for (size_t i = 0; i < sizeof bad_iomem / sizeof bad_iomem[0]; i++) {
        write_text(path, bad_iomem[i]);
        expect_open_error(&cfg, LD_STATUS_FILE_CORRUPT, LD_LINUX_BAD_IOMEM);
    }

    /* an open that fails gets the status of its errno, the one map of
     * every layer (here ENOTDIR: a path through a file) */
    char through_file[460];
    snprintf(through_file, sizeof through_file, "%s/iomem", iomem_path);
    cfg.iomem_path = through_file;
    expect_open_error(&cfg, LD_STATUS_NOT_A_DIRECTORY, LD_LINUX_BAD_IOMEM);
    assert_int_equal(ld_os_error(LD_STATUS_NOT_A_DIRECTORY), ENOTDIR);
    config(&cfg);
    snprintf(through_file, sizeof through_file, "%s/kcore", kcore_path);
    cfg.kcore_path = through_file;
    expect_open_error(&cfg, LD_STATUS_NOT_A_DIRECTORY, LD_LINUX_BAD_KCORE);

    /* Permission: as root every mode bit is bypassed, so a child drops to
     * nobody; a lockdown file saying [integrity] turns the EPERM into
     * "lockdown". (Not root: skipped, the files are ours.) */
    if (getuid() != 0) {
        print_message("not root: permission and lockdown cases skipped\n");
        return;
    }
    config(&cfg);
    char locked[400];
    snprintf(locked, sizeof locked, "%s/lockdown-integrity", dir);
    write_text(locked, "none [integrity] confidentiality\n");
    assert_int_equal(chmod(locked, 0644), 0);
    assert_int_equal(chmod(dir, 0711), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        ld_linux *lx = NULL;
        ld_error err;
        if (ld_linux_open(&cfg, &lx, &err) != LD_STATUS_ACCESS_DENIED || err.reason != LD_LINUX_NOT_PERMITTED)
            _exit(11);
        cfg.lockdown_path = locked;
        if (ld_linux_open(&cfg, &lx, &err) != LD_STATUS_ACCESS_DENIED || err.reason != LD_LINUX_LOCKDOWN)
            _exit(12);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Range arithmetic near the top of the address space never wraps: a
 * System RAM range ending at the last byte, whose start rounded up to a
 * page would be 2^64, holds no whole page (it once wrapped to 0 and made
 * every kcore page RAM). */
static void test_iomem_no_wraparound(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    char path[400];
    snprintf(path, sizeof path, "%s/iomem-wrap", dir);
    cfg.iomem_path = path;
    write_text(path, "00000000-00000fff : Reserved\n"
                     "fffffffffffff001-ffffffffffffffff : System RAM\n");
    ld_linux *lx = (ld_linux *)1;
    ld_error err;
    assert_int_equal(ld_linux_open(&cfg, &lx, &err), LD_STATUS_FILE_CORRUPT);
    print_message("  -> %s\n", err.message);
    assert_int_equal(err.reason, LD_LINUX_BAD_IOMEM);
    assert_non_null(strstr(err.message, "no page is both"));
    assert_null(lx);

    /* the same range after real ones: it adds nothing, and the real ranges
     * stay as they were (no overlap invented by a wrapped range) */
    char text[1024];
    snprintf(text, sizeof text, "%s%s", good_iomem, "fffffffffffff001-ffffffffffffffff : System RAM\n"
                                                    "  fffffffffffff001-ffffffffffffffff : Kernel code\n");
    write_text(path, text);
    lx = open_ok(&cfg);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.ram_pages, SEG_A_PAGES + RAM_B_END - SEG_B_FIRST);
    const ld_hal *h = ld_linux_hal(lx);
    size_t n = 0;
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    ld_kind_range *k = calloc(n, sizeof *k);
    assert_int_equal(h->mem_kinds(h->ctx, k, &n), LD_STATUS_SUCCESS);
    assert_int_equal(kind_at(k, n, 0x40), LD_PAGE_KERNEL_OTHER); /* not taken for the kernel image */
    free(k);
    ld_linux_close(lx);

    /* a range to the very end of the address space: its last page counts */
    write_text(path, "00000000-ffffffffffffffff : System RAM\n");
    lx = open_ok(&cfg);
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.ram_pages, SEG_A_PAGES + SEG_B_PAGES);
    ld_linux_close(lx);

    /* a partial page at each end is not RAM */
    write_text(path, "00001001-0009ffff : System RAM\n00100000-002eeffe : System RAM\n");
    lx = open_ok(&cfg);
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.ram_pages, (SEG_A_PAGES - 1) + (RAM_B_END - 2 - SEG_B_FIRST));
    ld_linux_close(lx);
}

/* A layout claiming more RAM than anything real is refused at open, fast,
 * with its own reason, instead of classifying billions of pages that do
 * not exist: past the end of the kcore file, or (the file big enough,
 * sparse) more than the machine's MemTotal. */
static ld_status progress_note(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    uint64_t *last = arg;
    assert_string_equal(phase, "classify");
    assert_true(done <= total);
    assert_true(done >= last[0]);
    last[0] = done;
    last[1] = total;
    last[2]++;
    return LD_STATUS_SUCCESS;
}

static void test_implausible_layout(void **state)
{
    (void)state;
    const uint64_t huge = 16ull << 40, big = 1ull << 40;
    char kpath[400], ipath[400], mpath[400], text[512];
    snprintf(kpath, sizeof kpath, "%s/kcore-huge", dir);
    snprintf(ipath, sizeof ipath, "%s/iomem-huge", dir);
    snprintf(mpath, sizeof mpath, "%s/meminfo", dir);
    ld_linux_config cfg;
    config(&cfg);
    cfg.kcore_path = kpath;
    cfg.iomem_path = ipath;
    cfg.meminfo_path = mpath;
    cfg.scan_zero_pages = false;
    write_text(mpath, "MemTotal:        1048576 kB\nMemFree:          524288 kB\nMemAvailable:     786432 kB\n");
    uint8_t *copy = malloc(image.size);
    memcpy(copy, image.data, image.size);

    /* segment B claims 16 TiB, iomem agrees, the file is 3 MiB */
    put64(copy + PH(4, 32), huge);
    put64(copy + PH(4, 40), huge);
    write_file(kpath, copy, image.size);
    snprintf(text, sizeof text, "00001000-0009ffff : System RAM\n%08llx-%llx : System RAM\n",
             (unsigned long long)(SEG_B_FIRST * PAGE), (unsigned long long)(SEG_B_FIRST * PAGE + huge - 1));
    write_text(ipath, text);
    ld_linux *lx = (ld_linux *)1;
    ld_error err;
    uint64_t t0 = ldl_now_ns_test();
    assert_int_equal(ld_linux_open(&cfg, &lx, &err), LD_STATUS_FILE_CORRUPT);
    print_message("  -> %s: %s\n", ld_linux_reason_name(err.reason), err.message);
    assert_int_equal(err.reason, LD_LINUX_BAD_KCORE);
    assert_non_null(strstr(err.message, "past the end of the file"));
    assert_null(lx);

    /* 1 TiB in a sparse file that holds it: more than MemTotal (1 GiB) */
    put64(copy + PH(4, 32), big);
    put64(copy + PH(4, 40), big);
    write_file(kpath, copy, image.size);
    assert_int_equal(truncate(kpath, (off_t)(DATA_B + big)), 0);
    snprintf(text, sizeof text, "00001000-0009ffff : System RAM\n%08llx-%llx : System RAM\n",
             (unsigned long long)(SEG_B_FIRST * PAGE), (unsigned long long)(SEG_B_FIRST * PAGE + big - 1));
    write_text(ipath, text);
    lx = (ld_linux *)1;
    assert_int_equal(ld_linux_open(&cfg, &lx, &err), LD_STATUS_FILE_CORRUPT);
    print_message("  -> %s: %s\n", ld_linux_reason_name(err.reason), err.message);
    assert_int_equal(err.reason, LD_LINUX_IMPLAUSIBLE_LAYOUT);
    assert_string_equal(ld_linux_reason_name(err.reason), "implausible-layout");
    assert_non_null(strstr(err.message, "MemTotal"));
    assert_null(lx);
    /* both refusals came at once, not after a scan */
    assert_true(ldl_now_ns_test() - t0 < 2000000000ull);

    /* the bound is the machine's: with 2 TiB of MemTotal the same layout opens */
    write_text(mpath, "MemTotal:     2147483648 kB\nMemAvailable: 2147483648 kB\n");
    lx = open_ok(&cfg);
    ld_linux_stats st;
    ld_linux_get_stats(lx, &st);
    assert_int_equal(st.ram_pages, (0xa0 - 1) + big / PAGE);
    ld_linux_close(lx);
    assert_int_equal(unlink(kpath), 0);
    free(copy);

    /* classification reports its progress, up to every RAM page */
    config(&cfg);
    uint64_t seen[3] = {0, 0, 0};
    cfg.progress = progress_note;
    cfg.progress_arg = seen;
    lx = open_ok(&cfg);
    const ld_hal *h = ld_linux_hal(lx);
    size_t n = 0;
    assert_int_equal(h->mem_kinds(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
    ld_linux_get_stats(lx, &st);
    assert_true(seen[2] >= 1);
    assert_int_equal(seen[0], st.ram_pages);
    assert_int_equal(seen[1], st.ram_pages);
    ld_linux_close(lx);
    /* a version 1 config (before progress) is still accepted */
    config(&cfg);
    cfg.version = 1;
    lx = open_ok(&cfg);
    ld_linux_close(lx);
    /* one this library does not know is refused, before any file is read */
    config(&cfg);
    assert_int_equal(cfg.version, LD_LINUX_CONFIG_VERSION);
    const uint32_t unknown[] = {0, LD_LINUX_CONFIG_VERSION + 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cfg.version = unknown[i];
        cfg.kcore_path = "/nonexistent/kcore";
        ld_linux *bad = (ld_linux *)1;
        assert_int_equal(ld_linux_open(&cfg, &bad, &err), LD_STATUS_INVALID_PARAMETER);
        assert_null(bad);
        assert_int_equal(err.reason, LD_LINUX_BAD_CONFIG);
        assert_non_null(strstr(err.message, "version"));
    }
}

/* Every header field is checked: each mutation gives a clear error, never
 * a crash or a read out of bounds (the ASan build runs this too). */
typedef struct mutation {
    const char *what;
    uint64_t offset;
    uint64_t value;
    int width;
} mutation;

static void test_malformed_kcore(void **state)
{
    (void)state;
    const mutation muts[] = {
        {"magic", 0, 0x7e, 1},
        {"class 32", 4, 1, 1},
        {"big endian", 5, 2, 1},
        {"not a core", 16, 2, 2},
        {"phentsize", 54, 32, 2},
        {"no program headers", 56, 0, 2},
        {"phoff past the end", 32, 1ull << 40, 8},
        {"phoff inside the ELF header", 32, 8, 8},
        {"PN_XNUM without a section", 56, 0xffff, 2},
        {"note larger than the limit", PH(0, 32), 1ull << 30, 8},
        {"note offset past the end", PH(0, 8), 1ull << 40, 8},
        {"note namesz huge", NOTE_OFF, 0xfffffff0u, 4},
        {"note descsz huge", NOTE_OFF + 4, 0xfffffff0u, 4},
        {"RAM offset overflows", PH(3, 8), UINT64_MAX - 10, 8},
        {"RAM size overflows", PH(3, 32), UINT64_MAX - 4096, 8},
        {"RAM vaddr below paddr", PH(3, 16), 0x1000, 8},
        {"RAM segments overlap", PH(4, 24), 0x50000, 8},
    };
    char path[400];
    snprintf(path, sizeof path, "%s/kcore-bad", dir);
    ld_linux_config cfg;
    config(&cfg);
    cfg.kcore_path = path;
    uint8_t *copy = malloc(image.size);
    for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
        memcpy(copy, image.data, image.size);
        const mutation *m = &muts[i];
        if (m->width == 1)
            copy[m->offset] = (uint8_t)m->value;
        else if (m->width == 2)
            put16(copy + m->offset, (uint16_t)m->value);
        else if (m->width == 4)
            put32(copy + m->offset, (uint32_t)m->value);
        else
            put64(copy + m->offset, m->value);
        if (!strcmp(m->what, "RAM segments overlap")) /* keep B's vaddr consistent with its new paddr */
            put64(copy + PH(4, 16), PAGE_OFFSET + 0x50000);
        write_file(path, copy, image.size);
        print_message("%s\n", m->what);
        ld_linux *lx = NULL;
        ld_error err;
        ld_status st = ld_linux_open(&cfg, &lx, &err);
        print_message("  -> %s\n", err.message);
        assert_int_not_equal(st, LD_STATUS_SUCCESS);
        assert_null(lx);
        assert_true(err.reason == LD_LINUX_BAD_KCORE);
    }
    /* old kernels: every PT_LOAD has p_paddr 0 */
    memcpy(copy, image.data, image.size);
    for (int i = 1; i < NPH; i++)
        put64(copy + PH(i, 24), 0);
    write_file(path, copy, image.size);
    ld_linux *lx = NULL;
    ld_error err;
    assert_int_equal(ld_linux_open(&cfg, &lx, &err), LD_STATUS_FILE_CORRUPT);
    assert_non_null(strstr(err.message, "4.11"));
    /* truncated anywhere in its headers */
    for (size_t cut = 0; cut < 400; cut += 7) {
        write_file(path, image.data, cut);
        assert_int_not_equal(ld_linux_open(&cfg, &lx, &err), LD_STATUS_SUCCESS);
        assert_null(lx);
    }
    /* random damage to the headers and notes: an error or a sane backend */
    srand(1234);
    for (int round = 0; round < 300; round++) {
        memcpy(copy, image.data, image.size);
        for (int k = 0; k < 4; k++) {
            size_t at = (size_t)rand() % (NOTE_OFF + 0x200);
            copy[at] = (uint8_t)rand();
        }
        write_file(path, copy, image.size);
        if (ld_linux_open(&cfg, &lx, &err) == LD_STATUS_SUCCESS) {
            const ld_hal *h = ld_linux_hal(lx);
            size_t n = 0;
            assert_int_equal(h->mem_ranges(h->ctx, NULL, &n), LD_STATUS_SUCCESS);
            assert_true(n >= 1);
            ld_linux_close(lx);
        } else {
            assert_null(lx);
        }
    }
    free(copy);
}

/* ---- a whole capture, written as ELF and read back ---- */

static void test_capture_to_elf(void **state)
{
    (void)state;
    ld_linux_config cfg;
    config(&cfg);
    ld_linux *lx = open_ok(&cfg);
    ld_engine *e;
    assert_int_equal(ld_engine_create(ld_linux_hal(lx), NULL, &e), LD_STATUS_SUCCESS);
    mem_sink m;
    mem_sink_init(&m);
    ld_capture_request req;
    ld_capture_request_init(&req);
    ld_result res;
    assert_int_equal(ld_engine_capture(e, &req, ld_format_elf(), &m.sink, &res), LD_STATUS_SUCCESS);
    assert_true(res.mirrored);
    assert_true(res.mirror_passes >= 1);
    assert_int_equal(res.quiesce_copied_pages, 0); /* nothing changed */
    ld_engine_destroy(e);

    const uint8_t *d = m.data;
    assert_memory_equal(d, "\177ELF", 4);
    assert_int_equal(le16(d + 16), 4);
    uint64_t phoff = le64(d + 32), phnum = le16(d + 56);
    /* notes: 2 PRSTATUS (pr_pid = the task of CPU 1), then VMCOREINFO */
    const uint8_t *ph = d + phoff;
    assert_int_equal(le32(ph), 4);
    const uint8_t *nt = d + le64(ph + 8);
    assert_int_equal(le32(nt + 8), 1);
    assert_int_equal(le32(nt + 20 + 32), 0);                  /* CPU 0: unknown */
    assert_int_equal(le32(nt + 356 + 20 + 32), 100);          /* CPU 1: task 100 */
    assert_int_equal(le64(nt + 356 + 20 + 112 + 16 * 8), 0);  /* no rip invented */
    const uint8_t *vi = nt + 2 * 356;
    assert_int_equal(le32(vi), 11);
    assert_int_equal(le32(vi + 4), sizeof vmcoreinfo_text - 1);
    assert_memory_equal(vi + 12, "VMCOREINFO", 11);
    assert_memory_equal(vi + 24, vmcoreinfo_text, sizeof vmcoreinfo_text - 1);

    /* every PT_LOAD page equals the synthetic RAM; the kept set follows
     * the kinds of a full dump without user pages */
    bool in_dump[0x300] = {false};
    for (uint64_t i = 1; i < phnum; i++) {
        const uint8_t *p = ph + 56 * i;
        assert_int_equal(le32(p), 1);
        uint64_t off = le64(p + 8), va = le64(p + 16), pa = le64(p + 24), sz = le64(p + 32);
        assert_int_equal(va, PAGE_OFFSET + pa);
        for (uint64_t q = 0; q < sz / PAGE; q++) {
            uint8_t want[PAGE];
            uint64_t pfn = pa / PAGE + q;
            assert_true(pfn < 0x300);
            page_pattern(pfn, want);
            assert_memory_equal(d + off + q * PAGE, want, PAGE);
            in_dump[pfn] = true;
        }
    }
    for (size_t i = 0; i < sizeof flag_pages / sizeof flag_pages[0]; i++) {
        ld_page_kind k = flag_pages[i].want;
        bool kept = k == LD_PAGE_KERNEL_IMAGE || k == LD_PAGE_KERNEL_OTHER || k == LD_PAGE_PAGE_TABLES ||
                    k == LD_PAGE_FILE_CACHE;
        print_message("pfn 0x%llx kept %d\n", (unsigned long long)flag_pages[i].pfn, kept);
        assert_int_equal(in_dump[flag_pages[i].pfn], kept);
    }
    for (size_t i = 0; i < sizeof zero_pfns / sizeof zero_pfns[0]; i++)
        assert_false(in_dump[zero_pfns[i]]);
    assert_true(in_dump[0x40]);
    assert_false(in_dump[0x0]);
    assert_false(in_dump[RAM_B_END]);
    mem_sink_release(&m);
    ld_linux_close(lx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_and_system_info),
        cmocka_unit_test(test_page_kinds),
        cmocka_unit_test(test_reads_by_physical_address),
        cmocka_unit_test(test_checksum_dirty_log),
        cmocka_unit_test(test_quiesce_stops_and_always_continues),
        cmocka_unit_test(test_cgroup_freeze_always_thawed),
        cmocka_unit_test(test_killed_while_frozen_thaws),
        cmocka_unit_test(test_fifo_refused),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_iomem_no_wraparound),
        cmocka_unit_test(test_implausible_layout),
        cmocka_unit_test(test_malformed_kcore),
        cmocka_unit_test(test_capture_to_elf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
