/* Throttling: when the last full live dump was taken, by the system and by
 * each component (Windows' LastFullLiveReport), kept across restarts in
 * ROOT/.LastFullLiveReport, and the decision it implies.
 *
 * The file is text, replaced atomically, and ends with a checksum line:
 *   livedump-throttle 1
 *   system 1735787045
 *   component WATCHDOG 1735787045
 *   end 9f0c2b7d5e1a3c44          (FNV-1a 64 of everything before it)
 * Anything else (torn, edited, truncated) is corrupt: it is reported and
 * rebuilt from the full dumps present, whose names carry component and time.
 * Times in the future are clamped to now, so a bad clock cannot block dumps
 * for years. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/reports/files.h"
#include "src/reports/reports_internal.h"

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void state_path(const ld_reports *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", r->root, LDR_STATE_FILE);
}

uint64_t ldr_component_last(const ld_reports *r, const char *component)
{
    for (uint32_t i = 0; i < r->last_count; i++)
        if (!strcmp(r->last[i].component, component))
            return r->last[i].time;
    return 0;
}

static void set_last(ld_reports *r, const char *component, uint64_t when)
{
    for (uint32_t i = 0; i < r->last_count; i++)
        if (!strcmp(r->last[i].component, component)) {
            if (when > r->last[i].time)
                r->last[i].time = when;
            return;
        }
    uint32_t slot = r->last_count;
    if (slot == LDR_MAX_COMPONENTS) {
        /* Full: forget the component whose last dump is oldest. */
        slot = 0;
        for (uint32_t i = 1; i < r->last_count; i++)
            if (r->last[i].time < r->last[slot].time)
                slot = i;
    } else {
        r->last_count++;
    }
    snprintf(r->last[slot].component, sizeof r->last[slot].component, "%s", component);
    r->last[slot].time = when;
}

static ld_status state_save(const ld_reports *r)
{
    size_t cap = 64 + (size_t)r->last_count * (LD_COMPONENT_MAX + 40) + 64;
    char *buf = malloc(cap);
    if (!buf)
        return LD_STATUS_NO_MEMORY;
    size_t n = (size_t)snprintf(buf, cap, "livedump-throttle 1\nsystem %llu\n", (unsigned long long)r->system_last);
    for (uint32_t i = 0; i < r->last_count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "component %s %llu\n", r->last[i].component,
                              (unsigned long long)r->last[i].time);
    n += (size_t)snprintf(buf + n, cap - n, "end %016llx\n", (unsigned long long)fnv1a(buf, n));
    ld_status st = ldr_write_atomic_at(r->root_fd, LDR_STATE_FILE, buf, n);
    free(buf);
    return st;
}

static bool parse_time(const char *s, uint64_t *out)
{
    if (!*s || *s < '0' || *s > '9')
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

/* Parse the state file strictly into r; false with the reason in why. */
static bool parse_state(ld_reports *r, char *text, size_t len, char *why, size_t cap)
{
    char *end_line = NULL;
    for (char *p = text; p < text + len; p = strchr(p, '\n') + 1) {
        if (!strncmp(p, "end ", 4))
            end_line = p;
        if (!strchr(p, '\n'))
            break;
    }
    if (!end_line) {
        snprintf(why, cap, "no checksum line (truncated?)");
        return false;
    }
    char sum[32];
    snprintf(sum, sizeof sum, "end %016llx\n", (unsigned long long)fnv1a(text, (size_t)(end_line - text)));
    if (strcmp(end_line, sum) != 0) {
        snprintf(why, cap, "checksum mismatch");
        return false;
    }
    *end_line = 0;
    unsigned line = 0;
    bool header = false;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char comp[64];
        char tval[32];
        uint64_t t;
        if (line == 1) {
            header = !strcmp(l, "livedump-throttle 1");
            if (!header)
                break;
        } else if (sscanf(l, "system %31s", tval) == 1 && parse_time(tval, &t)) {
            r->system_last = t;
        } else if (sscanf(l, "component %63s %31s", comp, tval) == 2 && ld_component_name_valid(comp) &&
                   parse_time(tval, &t)) {
            set_last(r, comp, t);
        } else {
            snprintf(why, cap, "line %u not understood", line);
            return false;
        }
    }
    if (!header) {
        snprintf(why, cap, "not a livedump throttling state file");
        return false;
    }
    return true;
}

/* Rebuild from the full dumps in the root: their names say who and when. */
static ld_status rebuild(ld_reports *r)
{
    r->system_last = 0;
    r->last_count = 0;
    ld_report_entry *list;
    size_t n;
    ld_status st = ld_reports_list(r, &list, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (!list[i].full || list[i].incomplete)
            continue;
        if (list[i].time > r->system_last)
            r->system_last = list[i].time;
        set_last(r, list[i].component, list[i].time);
    }
    ld_reports_list_free(list);
    /* Read-only: the rebuilt state serves this open only. */
    return r->read_only ? LD_STATUS_SUCCESS : state_save(r);
}

ld_status ldr_state_load(ld_reports *r)
{
    char path[LD_SETTINGS_PATH_MAX + 32];
    state_path(r, path, sizeof path);
    char *text;
    size_t len;
    r->state_problem[0] = 0;
    r->system_last = 0;
    r->last_count = 0;
    ld_status st = ldr_read_small_at(r->root_fd, LDR_STATE_FILE, 1 << 20, &text, &len);
    if (st == LD_STATUS_NO_SUCH_FILE) {
        /* First use, or the file was deleted: the dumps present still
         * count, so an administrator cannot reset throttling by accident. */
        return rebuild(r);
    }
    char why[160];
    if (st != LD_STATUS_SUCCESS) {
        snprintf(why, sizeof why, "unreadable: %s", ld_status_describe(st));
    } else if (memchr(text, 0, len)) {
        snprintf(why, sizeof why, "binary content");
        st = LD_STATUS_FILE_CORRUPT;
    } else if (!parse_state(r, text, len, why, sizeof why)) {
        st = LD_STATUS_FILE_CORRUPT;
    }
    free(text);
    if (st != LD_STATUS_SUCCESS) {
        if ((size_t)snprintf(r->state_problem, sizeof r->state_problem, "%s: %s; rebuilt from the dumps present", path,
                             why) >= sizeof r->state_problem)
            snprintf(r->state_problem, sizeof r->state_problem, "%s: %s; rebuilt from the dumps present",
                     LDR_STATE_FILE, why);
        /* A symlink or non-file in its place is removed, not followed. */
        if (!r->read_only)
            (void)unlinkat(r->root_fd, LDR_STATE_FILE, 0);
        r->system_last = 0;
        r->last_count = 0;
        return rebuild(r);
    }
    uint64_t now = ldr_now(r);
    if (r->system_last > now)
        r->system_last = now;
    for (uint32_t i = 0; i < r->last_count; i++)
        if (r->last[i].time > now)
            r->last[i].time = now;
    return LD_STATUS_SUCCESS;
}

ld_status ldr_state_reload(ld_reports *r)
{
    char problem[sizeof r->state_problem];
    memcpy(problem, r->state_problem, sizeof problem);
    bool noted = r->state_problem_noted;
    ld_status st = ldr_state_load(r);
    if (!r->state_problem[0]) {
        memcpy(r->state_problem, problem, sizeof problem);
        r->state_problem_noted = noted;
    } else {
        r->state_problem_noted = false; /* a new problem: tell it */
    }
    return st;
}

ld_status ldr_lock(ld_reports *r, int *out)
{
    *out = -1;
    /* O_NONBLOCK: a FIFO planted here must not hang the open; it is then
     * refused as not a file. */
    int fd = openat(r->root_fd, LDR_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return ldi_errno_status(errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return LD_STATUS_ACCESS_DENIED;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        ld_status s = ldi_errno_status(errno);
        close(fd);
        return s;
    }
    *out = fd;
    return LD_STATUS_SUCCESS;
}

void ldr_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

ld_status ldr_state_record(ld_reports *r, const char *component, uint64_t when)
{
    if (when > r->system_last)
        r->system_last = when;
    set_last(r, component, when);
    return state_save(r);
}

static void param(ld_admission *why, int i, const char *name, uint64_t value)
{
    snprintf(why->param_name[i], sizeof why->param_name[i], "%s", name);
    why->param_value[i] = value;
}

ld_status ld_reports_admit(ld_reports *r, const char *component, ld_dump_type type, ld_admission *why)
{
    ld_admission local;
    if (!why)
        why = &local;
    memset(why, 0, sizeof *why);
    if (!r || !ld_component_name_valid(component))
        return LD_STATUS_INVALID_PARAMETER;
    if (type != LD_DUMP_FULL_KERNEL)
        return LD_STATUS_SUCCESS;
    const ld_settings *s = &r->settings;
    if (s->full_live_reports_max == 0) {
        snprintf(why->description, sizeof why->description,
                 "Full live dumps are disabled by policy (FullLiveReportsMax = 0)");
        param(why, 0, "FullLiveReportsMax", 0);
        return LD_STATUS_ACCESS_DENIED;
    }
    /* A held full deferred dump counts as taken at its capture time: two
     * deferred captures back to back are as throttled as two written ones. */
    uint64_t sys_last = r->system_last, comp_last = ldr_component_last(r, component);
    bool sys_held = false, comp_held = false;
    for (uint32_t i = 0; i < r->held_count; i++) {
        const ldr_held *h = &r->held[i];
        if (!h->full)
            continue;
        if (h->time >= sys_last) {
            sys_last = h->time;
            sys_held = true;
        }
        if (!strcmp(h->component, component) && h->time >= comp_last) {
            comp_last = h->time;
            comp_held = true;
        }
    }
    uint64_t now = ldr_now(r);
    uint64_t sys_next = s->system_throttle_hours && sys_last ? sys_last + (uint64_t)s->system_throttle_hours * 3600 : 0;
    uint64_t comp_next = s->component_throttle_hours && comp_last
                             ? comp_last + (uint64_t)s->component_throttle_hours * 3600
                             : 0;
    if (now >= sys_next && now >= comp_next)
        return LD_STATUS_SUCCESS;
    /* Name the threshold that holds the dump back the longest: its time is
     * when the next dump is really allowed. */
    bool by_component = comp_next > sys_next;
    snprintf(why->description, sizeof why->description, "Live dump throttled by %s for component %s%s",
             by_component ? "ComponentThrottleThreshold" : "SystemThrottleThreshold", component,
             (by_component ? comp_held : sys_held) ? " (a full deferred dump is held)" : "");
    param(why, 0, by_component ? "ComponentThrottleThresholdHours" : "SystemThrottleThresholdHours",
          by_component ? s->component_throttle_hours : s->system_throttle_hours);
    param(why, 1, "LastFullLiveReportUnixTime", by_component ? comp_last : sys_last);
    param(why, 2, "NextDumpAllowedUnixTime", by_component ? comp_next : sys_next);
    param(why, 3, "NowUnixTime", now);
    return LD_STATUS_THROTTLED;
}
