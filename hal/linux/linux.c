/* The Linux backend's HAL table, open/close, and the dirty-log emulation.
 *
 * Dirty log without a dirty log: user space cannot see which pages the
 * kernel writes, so the backend compares content instead. While the log
 * runs, every page mem_read copies gets a 64-bit checksum; dirty_fetch
 * re-reads every page that has one and reports those whose checksum
 * changed (and keeps the new one). The engine's mirroring works unchanged
 * on top: phase 0 copies every page (checksums taken), phase 1 fetches and
 * recopies what changed while that set shrinks, and the fetch inside the
 * quiesce gives the pages still changing at the end, which are copied once
 * more. Each fetch reads all of the dump's memory once.
 *
 * Limits (docs/linux.md): a page written and then restored to the same
 * content between two reads (ABA) is rightly seen as unchanged; a checksum
 * collision would hide a change (2^-64 per changed page); and since the
 * kernel keeps running, the last pass itself is not one instant. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backend.h"
#include "livedump/runtime.h"

const char *ld_linux_reason_name(ld_linux_reason r)
{
    static const char *const names[] = {"ok",        "no-kcore",  "not-permitted", "lockdown",
                                        "iomem-hidden", "bad-kcore", "bad-iomem",  "bad-config",
                                        "no-memory", "implausible-layout"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "invalid";
}

void ld_linux_config_init(ld_linux_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = LD_LINUX_CONFIG_VERSION;
    cfg->scan_zero_pages = true;
}

/* ---- checksums ---- */

static uint64_t rotl(uint64_t v, int r)
{
    return v << r | v >> (64 - r);
}

/* Four independent multiply-rotate lanes over 8-byte words: fast enough to
 * keep up with reads from /proc/kcore, and any changed word changes it. */
static uint64_t page_sum(const uint8_t *p, size_t n)
{
    const uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t h[4] = {k1, k2, ~k1, ~k2};
    for (size_t i = 0; i + 32 <= n; i += 32) {
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * l, 8);
            h[l] = rotl(h[l] ^ (w * k2), 31) * k1;
        }
    }
    uint64_t r = h[0] ^ rotl(h[1], 17) ^ rotl(h[2], 29) ^ rotl(h[3], 43);
    r ^= r >> 33;
    r *= k2;
    return r ^ (r >> 29);
}

/* The checksums and the tracked bitmap are indexed by a page's rank among
 * the RAM pages (rank_base[r] + offset in range r), not by pfn: RAM can sit
 * at high physical addresses, and the holes between must cost nothing. */
static bool is_tracked(const ld_linux *lx, uint64_t rank)
{
    return (lx->tracked[rank / 64] >> (rank % 64)) & 1;
}

/* The RAM range holding pfn, or range_count. */
static size_t range_of(const ld_linux *lx, uint64_t pfn)
{
    return ld_range_find(lx->ranges, lx->range_count, sizeof *lx->ranges, pfn);
}

/* ---- HAL operations ---- */

/* The HAL's two-call convention: the count when out is NULL, else the
 * `n` entries of `size` bytes copied if *count leaves room for them. */
static ld_status copy_out(void *out, size_t *count, const void *from, size_t n, size_t size)
{
    size_t room = *count;
    *count = n;
    if (!out)
        return LD_STATUS_SUCCESS;
    if (room < n)
        return LD_STATUS_BUFFER_TOO_SMALL;
    memcpy(out, from, n * size);
    return LD_STATUS_SUCCESS;
}

static ld_status ldl_mem_ranges(void *ctx, ld_phys_range *ranges, size_t *count)
{
    ld_linux *lx = ctx;
    return copy_out(ranges, count, lx->ranges, lx->range_count, sizeof *ranges);
}

/* Classified afresh when asked for the count (the start of a capture);
 * the second call copies that classification. */
static ld_status ldl_mem_kinds(void *ctx, ld_kind_range *runs, size_t *count)
{
    ld_linux *lx = ctx;
    if (!runs || !lx->kinds) {
        ld_status st = ldl_classify(lx);
        if (st != LD_STATUS_SUCCESS)
            return st;
    }
    return copy_out(runs, count, lx->kinds, lx->kind_count, sizeof *runs);
}

static ld_status ldl_mem_read(void *ctx, uint64_t pfn, uint64_t count, void *dst)
{
    ld_linux *lx = ctx;
    if (pfn >= lx->max_pfn || count > lx->max_pfn - pfn)
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = ldl_read_pages(lx, pfn, count, dst);
    if (st == LD_STATUS_SUCCESS && lx->tracking) {
        const uint8_t *p = dst;
        /* pages outside RAM are never dumped: nothing to track */
        size_t r = range_of(lx, pfn);
        for (uint64_t i = 0; i < count; i++) {
            uint64_t f = pfn + i;
            if (r < lx->range_count && f - lx->ranges[r].first_pfn >= lx->ranges[r].page_count)
                r = range_of(lx, f);
            if (r >= lx->range_count)
                continue;
            uint64_t k = lx->rank_base[r] + (f - lx->ranges[r].first_pfn);
            lx->sums[k] = page_sum(p + i * lx->page_size, lx->page_size);
            lx->tracked[k / 64] |= 1ull << (k % 64);
        }
    }
    return st;
}

/* MemAvailable and MemTotal of a meminfo file, bytes (0 for one it lacks);
 * true when it has both. */
static bool read_meminfo(const char *path, uint64_t *available, uint64_t *total)
{
    *available = *total = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[256];
    unsigned long long v;
    bool a = false, t = false;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %llu kB", &v) == 1 && v < (UINT64_MAX >> 10)) {
            *available = (uint64_t)v << 10;
            a = true;
        } else if (sscanf(line, "MemTotal: %llu kB", &v) == 1 && v < (UINT64_MAX >> 10)) {
            *total = (uint64_t)v << 10;
            t = true;
        }
    }
    fclose(f);
    return a && t;
}

static ld_status ldl_mem_status(void *ctx, uint64_t *available, uint64_t *total)
{
    ld_linux *lx = ctx;
    uint64_t a, t;
    if (!read_meminfo(lx->meminfo_path, &a, &t))
        return LD_STATUS_NOT_SUPPORTED;
    *available = a;
    *total = t;
    return LD_STATUS_SUCCESS;
}

static ld_status ldl_dirty_start(void *ctx)
{
    ld_linux *lx = ctx;
    uint64_t pages = lx->stats.ram_pages;
    if (!lx->sums) {
        /* 8 bytes and a bit per RAM page; without them, no mirroring: said
         * in the stats (and by the engine's event), not only in the status */
        lx->sums = pages <= SIZE_MAX / sizeof *lx->sums ? malloc(pages * sizeof *lx->sums) : NULL;
        lx->tracked = malloc((pages + 63) / 64 * 8);
        lx->scratch = malloc((size_t)LDL_SCRATCH_PAGES * lx->page_size);
        if (!lx->sums || !lx->tracked || !lx->scratch) {
            free(lx->sums);
            free(lx->tracked);
            free(lx->scratch);
            lx->sums = lx->tracked = NULL;
            lx->scratch = NULL;
            lx->stats.dirty_log_error = LD_STATUS_NO_MEMORY;
            lx->stats.dirty_log_bytes_wanted = pages * sizeof *lx->sums + (pages + 63) / 64 * 8 +
                                               (uint64_t)LDL_SCRATCH_PAGES * lx->page_size;
            return LD_STATUS_NO_MEMORY;
        }
    }
    lx->stats.dirty_log_error = LD_STATUS_SUCCESS;
    lx->stats.dirty_log_bytes_wanted = 0;
    memset(lx->tracked, 0, (pages + 63) / 64 * 8);
    lx->tracking = true;
    lx->stats.dirty_fetches = 0;
    lx->stats.last_dirty_pages = 0;
    return LD_STATUS_SUCCESS;
}

/* Re-read every page that has a checksum; report those that changed. Runs
 * inside the quiesce too: it allocates nothing. */
static ld_status ldl_dirty_fetch(void *ctx, uint64_t *bits, uint64_t nbits, uint64_t *dirty_count)
{
    ld_linux *lx = ctx;
    if (!lx->tracking)
        return LD_STATUS_INVALID_DEVICE_STATE;
    uint64_t changed = 0;
    for (size_t r = 0; r < lx->range_count; r++) {
        uint64_t base = lx->rank_base[r], cnt = lx->ranges[r].page_count, first = lx->ranges[r].first_pfn;
        for (uint64_t i = 0; i < cnt;) {
            uint64_t k = base + i;
            if (!(lx->tracked[k / 64] >> (k % 64))) {
                i += 64 - k % 64; /* the rest of this word is clear */
                continue;
            }
            if (!is_tracked(lx, k)) {
                i++;
                continue;
            }
            /* the run of tracked pages from here, within this range */
            uint64_t n = 1;
            while (i + n < cnt && n < LDL_SCRATCH_PAGES && is_tracked(lx, k + n))
                n++;
            ld_status st = ldl_read_pages(lx, first + i, n, lx->scratch);
            if (st != LD_STATUS_SUCCESS)
                return st;
            for (uint64_t j = 0; j < n; j++) {
                uint64_t s = page_sum(lx->scratch + j * lx->page_size, lx->page_size), pfn = first + i + j;
                if (s != lx->sums[k + j]) {
                    lx->sums[k + j] = s;
                    changed++;
                    if (pfn < nbits)
                        bits[pfn / 64] |= 1ull << (pfn % 64);
                }
            }
            i += n;
        }
    }
    lx->stats.dirty_fetches++;
    lx->stats.last_dirty_pages = changed;
    *dirty_count = changed;
    return LD_STATUS_SUCCESS;
}

static ld_status ldl_dirty_stop(void *ctx)
{
    ld_linux *lx = ctx;
    lx->tracking = false;
    return LD_STATUS_SUCCESS;
}

static uint32_t ldl_cpu_count(void *ctx)
{
    return ((ld_linux *)ctx)->cpus;
}

/* Only what user space knows: the task running on the CPU, when /proc
 * names exactly one. No register is ever invented. */
static ld_status ldl_cpu_context(void *ctx, uint32_t cpu, ld_cpu_context *out)
{
    ld_linux *lx = ctx;
    memset(out, 0, sizeof *out);
    out->cpu = cpu;
    if (cpu < lx->cpus && lx->tasks && lx->tasks[cpu].known) {
        out->valid = LD_CTX_THREAD;
        out->thread_id = lx->tasks[cpu].pid;
    }
    return LD_STATUS_SUCCESS;
}

/* "SYMBOL(_stext)=ffffffff81000000" -> value of KEY in VMCOREINFO, hex. */
static bool vmcoreinfo_value(const ld_linux *lx, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = lx->vmcoreinfo, *end = p ? p + lx->vmcoreinfo_size : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > klen && !memcmp(p, key, klen) && p[klen] == '=') {
            size_t n = (size_t)(le - p) - klen - 1;
            if (n >= cap)
                return false;
            memcpy(out, p + klen + 1, n);
            out[n] = 0;
            return true;
        }
        p = nl ? nl + 1 : end;
    }
    return false;
}

static ld_status ldl_system_info(void *ctx, ld_system_info *out)
{
    ld_linux *lx = ctx;
    memset(out, 0, sizeof *out);
#if defined(__x86_64__)
    out->machine_type = 0x8664;
#endif
    out->direct_map_base = lx->direct_map_base;
    out->kernel_base = lx->kernel_text_va;
    char v[32];
    if (vmcoreinfo_value(lx, "SYMBOL(vmemmap)", v, sizeof v))
        out->pfn_database = strtoull(v, NULL, 16);
    out->vmcoreinfo = lx->vmcoreinfo;
    out->vmcoreinfo_size = lx->vmcoreinfo_size;
    out->os_release = lx->os_release[0] ? lx->os_release : NULL;
    return LD_STATUS_SUCCESS;
}

/* ---- open / close ---- */

static char *dup_or(const char *s, const char *def)
{
    return strdup(s ? s : def);
}

/* Why /proc/kcore could not be opened, as specifically as we can tell. */
static ld_status kcore_open_error(const char *path, const char *lockdown_path, int e, ld_error *err)
{
    ld_status st = ldu_errno_status(e);
    if (e == ENOENT)
        return ldl_fail_os(err, LD_LINUX_NO_KCORE, st, e,
                           "%s does not exist: this kernel was built without /proc/kcore (CONFIG_PROC_KCORE)", path);
    if (st == LD_STATUS_ACCESS_DENIED) {
        char buf[128] = "";
        int fd = open(lockdown_path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = 0;
            close(fd);
        }
        if (strstr(buf, "[integrity]") || strstr(buf, "[confidentiality]"))
            return ldl_fail_os(err, LD_LINUX_LOCKDOWN, st, e, "%s: refused by kernel lockdown (%s says %.*s)", path,
                               lockdown_path, (int)strcspn(buf, "\n"), buf);
        return ldl_fail_os(err, LD_LINUX_NOT_PERMITTED, st, e, "%s: %s: reading it needs root (CAP_SYS_RAWIO)",
                           path, strerror(e));
    }
    return ldl_fail_os(err, LD_LINUX_BAD_KCORE, st, e, "%s: %s", path, strerror(e));
}

/* RAM = kcore's direct-map segments cut to iomem's System RAM ranges. */
static ld_status build_ranges(ld_linux *lx, ld_error *err)
{
    uint64_t ps = lx->page_size;
    lx->ranges = calloc(lx->seg_count + lx->iomem.ram_count, sizeof *lx->ranges);
    if (!lx->ranges)
        return ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    size_t n = 0;
    for (size_t s = 0; s < lx->seg_count; s++) {
        const ldl_segment *g = &lx->segs[s];
        for (size_t r = 0; r < lx->iomem.ram_count; r++) {
            uint64_t a, b;
            ldl_whole_pages(lx->iomem.ram[r].start, lx->iomem.ram[r].last, ps, &a, &b);
            if (a < g->first_pfn)
                a = g->first_pfn;
            if (b > g->first_pfn + g->page_count)
                b = g->first_pfn + g->page_count;
            if (a >= b)
                continue;
            if (n && lx->ranges[n - 1].first_pfn + lx->ranges[n - 1].page_count == a)
                lx->ranges[n - 1].page_count += b - a;
            else if (n && lx->ranges[n - 1].first_pfn + lx->ranges[n - 1].page_count > a)
                return ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT,
                                "/proc/iomem: System RAM ranges overlap or are out of order");
            else
                lx->ranges[n++] = (ld_phys_range){a, b - a};
        }
    }
    if (!n)
        return ldl_fail(err, LD_LINUX_BAD_IOMEM, LD_STATUS_FILE_CORRUPT,
                        "no page is both in a /proc/kcore RAM segment and in /proc/iomem's System RAM");
    lx->range_count = n;
    lx->rank_base = calloc(n, sizeof *lx->rank_base);
    if (!lx->rank_base)
        return ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    for (size_t i = 1; i < n; i++)
        lx->rank_base[i] = lx->rank_base[i - 1] + lx->ranges[i - 1].page_count;
    lx->max_pfn = lx->ranges[n - 1].first_pfn + lx->ranges[n - 1].page_count;
    lx->stats.ram_pages = 0;
    for (size_t i = 0; i < n; i++)
        lx->stats.ram_pages += lx->ranges[i].page_count;
    return LD_STATUS_SUCCESS;
}

/* Every RAM page is scanned at each capture and costs 8 bytes and a bit of
 * checksum log: a layout claiming far more RAM than the machine has (a
 * hostile or broken kcore and iomem that agree) would spin for hours on
 * pages that do not exist. The machine's RAM is MemTotal of the meminfo
 * file and, for the system's own, sysinfo()'s total as well (a container's
 * /proc/meminfo may show only its limit). MemTotal leaves out what the
 * kernel reserved at boot (its image, the page array, crash kernel), hence
 * the slack: a quarter more and 4 GiB. Nothing known: no bound. */
#define LDL_RAM_SLACK (4ull << 30)

static ld_status check_ram_plausible(ld_linux *lx, const char *kcore, const char *iomem, bool own_meminfo,
                                     ld_error *err)
{
    uint64_t avail, total;
    (void)read_meminfo(lx->meminfo_path, &avail, &total);
    uint64_t machine = total;
    struct sysinfo si;
    if (own_meminfo && sysinfo(&si) == 0 && si.mem_unit &&
        (uint64_t)si.totalram <= UINT64_MAX / si.mem_unit && (uint64_t)si.totalram * si.mem_unit > machine)
        machine = (uint64_t)si.totalram * si.mem_unit;
    if (!machine)
        return LD_STATUS_SUCCESS;
    /* in pages, so that nothing can wrap */
    uint64_t ps = lx->page_size, m = machine / ps;
    uint64_t limit = m + m / 4 + LDL_RAM_SLACK / ps;
    if (lx->stats.ram_pages <= limit)
        return LD_STATUS_SUCCESS;
    return ldl_fail(err, LD_LINUX_IMPLAUSIBLE_LAYOUT, LD_STATUS_FILE_CORRUPT,
                    "%s and %s give %llu MiB of RAM, but this machine has %llu MiB (%s%s): "
                    "refusing a layout that cannot be real",
                    kcore, iomem, (unsigned long long)(lx->stats.ram_pages / (1048576 / ps)),
                    (unsigned long long)(machine >> 20), total ? "MemTotal in " : "sysinfo",
                    total ? lx->meminfo_path : "");
}

static ld_status open_backend(const ld_linux_config *cfg, ld_linux **out, ld_error *err)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    ld_linux_config defaults;
    if (!cfg) {
        ld_linux_config_init(&defaults);
        cfg = &defaults;
    }
    if (cfg->version != 1 && cfg->version != LD_LINUX_CONFIG_VERSION)
        return ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER, "unknown config version %u",
                        cfg->version);
    ld_linux *lx = calloc(1, sizeof *lx);
    if (!lx)
        return ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    lx->kcore_fd = lx->kpageflags_fd = -1;
    long ps = sysconf(_SC_PAGESIZE);
    lx->page_size = ps > 0 ? (uint32_t)ps : 4096;
    lx->page_shift = (uint32_t)__builtin_ctz(lx->page_size);
    lx->scan_zero = cfg->scan_zero_pages;
    if (cfg->version >= 2) { /* a version 1 struct ends before these */
        lx->progress = cfg->progress;
        lx->progress_arg = cfg->progress_arg;
    }
    const char *kcore = cfg->kcore_path ? cfg->kcore_path : "/proc/kcore";
    const char *lockdown = cfg->lockdown_path ? cfg->lockdown_path : "/sys/kernel/security/lockdown";
    const char *iomem = cfg->iomem_path ? cfg->iomem_path : "/proc/iomem";
    lx->meminfo_path = dup_or(cfg->meminfo_path, "/proc/meminfo");
    lx->proc_path = dup_or(cfg->proc_path, "/proc");
    lx->freeze_cgroup = cfg->freeze_cgroup ? strdup(cfg->freeze_cgroup) : NULL;
    ld_status st = LD_STATUS_SUCCESS;
    if (!lx->meminfo_path || !lx->proc_path || (cfg->freeze_cgroup && !lx->freeze_cgroup))
        st = ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    if (st == LD_STATUS_SUCCESS && cfg->stop_pid_count) {
        if (!cfg->stop_pids || cfg->stop_pid_count > 4096) {
            st = ldl_fail(err, LD_LINUX_BAD_CONFIG, LD_STATUS_INVALID_PARAMETER, "bad list of processes to stop");
        } else if (!(lx->stop_pids = malloc(cfg->stop_pid_count * sizeof *lx->stop_pids)) ||
                   !(lx->we_stopped = calloc(cfg->stop_pid_count, sizeof *lx->we_stopped))) {
            st = ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
        } else {
            memcpy(lx->stop_pids, cfg->stop_pids, cfg->stop_pid_count * sizeof *lx->stop_pids);
            lx->stop_pid_count = cfg->stop_pid_count;
        }
    }
    if (st == LD_STATUS_SUCCESS)
        st = ldl_check_freeze_config(lx, err);
    if (st == LD_STATUS_SUCCESS) {
        lx->kcore_fd = ldl_open_file(kcore);
        if (lx->kcore_fd == LDU_NOT_REGULAR)
            st = ldl_fail(err, LD_LINUX_BAD_KCORE, LD_STATUS_INVALID_PARAMETER,
                          "%s: not a regular file (a FIFO or device?): /proc/kcore is one", kcore);
        else if (lx->kcore_fd < 0)
            st = kcore_open_error(kcore, lockdown, errno, err);
    }
    if (st == LD_STATUS_SUCCESS)
        st = ldl_kcore_parse(lx, kcore, err);
    if (st == LD_STATUS_SUCCESS)
        st = ldl_iomem_parse(iomem, &lx->iomem, err);
    if (st == LD_STATUS_SUCCESS)
        st = build_ranges(lx, err);
    if (st == LD_STATUS_SUCCESS)
        st = check_ram_plausible(lx, kcore, iomem, !cfg->meminfo_path, err);
    if (st == LD_STATUS_SUCCESS) {
        const char *kpf = cfg->kpageflags_path ? cfg->kpageflags_path : "/proc/kpageflags";
        int kfd = *kpf ? ldl_open_file(kpf) : -1;
        lx->kpageflags_fd = kfd >= 0 ? kfd : -1; /* absent or not a file: classify without flags */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        lx->cpus = cfg->cpu_count ? cfg->cpu_count : (n > 0 && n <= 4096 ? (uint32_t)n : 1);
        lx->tasks = calloc(lx->cpus, sizeof *lx->tasks);
        if (!lx->tasks)
            st = ldl_fail(err, LD_LINUX_NO_MEMORY, LD_STATUS_NO_MEMORY, "out of memory");
    }
    if (st != LD_STATUS_SUCCESS) {
        ld_linux_close(lx);
        return st;
    }
    char rel[sizeof lx->os_release];
    struct utsname u;
    if (vmcoreinfo_value(lx, "OSRELEASE", rel, sizeof rel))
        memcpy(lx->os_release, rel, sizeof rel);
    else if (!cfg->kcore_path && uname(&u) == 0)
        snprintf(lx->os_release, sizeof lx->os_release, "%s", u.release);

    ld_hal *h = &lx->hal;
    h->version = LD_HAL_VERSION;
    h->caps = LD_HAL_CAP_DIRTY_LOG | LD_HAL_CAP_CPU_CONTEXT | LD_HAL_CAP_MEM_STATUS | LD_HAL_CAP_SYSTEM_INFO;
    h->name = "kcore";
    h->ctx = lx;
    h->platform = ld_platform_default();
    h->page_size = lx->page_size;
    h->mem_ranges = ldl_mem_ranges;
    h->mem_kinds = ldl_mem_kinds;
    h->mem_read = ldl_mem_read;
    h->mem_status = ldl_mem_status;
    h->dirty_start = ldl_dirty_start;
    h->dirty_fetch = ldl_dirty_fetch;
    h->dirty_stop = ldl_dirty_stop;
    h->cpu_count = ldl_cpu_count;
    h->quiesce = ldl_quiesce;
    h->cpu_context = ldl_cpu_context;
    h->system_info = ldl_system_info;
    *out = lx;
    return LD_STATUS_SUCCESS;
}

ld_status ld_linux_open(const ld_linux_config *cfg, ld_linux **out, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, open_backend(cfg, out, err));
}

const ld_hal *ld_linux_hal(ld_linux *lx)
{
    return lx ? &lx->hal : NULL;
}

void ld_linux_get_stats(const ld_linux *lx, ld_linux_stats *out)
{
    if (lx)
        *out = lx->stats;
    else
        memset(out, 0, sizeof *out);
}

void ld_linux_close(ld_linux *lx)
{
    if (!lx)
        return;
    if (lx->kcore_fd >= 0)
        close(lx->kcore_fd);
    if (lx->kpageflags_fd >= 0)
        close(lx->kpageflags_fd);
    free(lx->meminfo_path);
    free(lx->proc_path);
    free(lx->freeze_cgroup);
    free(lx->stop_pids);
    free(lx->we_stopped);
    free(lx->segs);
    free(lx->ranges);
    free(lx->rank_base);
    ldl_iomem_free(&lx->iomem);
    free(lx->vmcoreinfo);
    free(lx->kinds);
    free(lx->sums);
    free(lx->tracked);
    free(lx->scratch);
    free(lx->tasks);
    free(lx);
}
