/* Throttling: when the last full live dump was taken, by the system and by
 * each component (Windows' LastFullLiveReport), kept across restarts in
 * ROOT/.LastFullLiveReport with the order the reports landed in, and the
 * decision it implies.
 *
 * The file is text, replaced atomically, and ends with a checksum line:
 *   livedump-throttle 2
 *   next 4                                 (the place the next report takes)
 *   system 1735787045
 *   component WATCHDOG 1735787045
 *   report 2 WATCHDOG-20250102-030405.dmp  (place, path under the root)
 *   report 3 USBHUB3/USBHUB3-20250102-030405.dmp
 *   landing 1735790000 WATCHDOG WATCHDOG-20250102-035320.dmp
 *   end 9f0c2b7d5e1a3c44                   (FNV-1a 64 of everything before it)
 * "landing" is a full dump being written: saved before its capture starts,
 * so a dump that lands is counted even if nothing can be saved after it
 * (disk full); at load it counts if its file is there, else is forgotten.
 * Version 1 files (no order, no landing) are read and rewritten as 2.
 * Anything else (torn, edited, truncated) is corrupt: it is reported and
 * rebuilt from the dumps present, whose names carry component and time.
 *
 * The state is checked against the disk at each load: reports on disk it
 * does not list are added after the others (a full one counts for
 * throttling at the time in its name), reports gone are forgotten. A time
 * in the future (a clock set wrong, now or then) is clamped to now and the
 * clamp is saved, so it blocks full dumps for one threshold, not until
 * that date. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "known.h"
#include "listing.h"
#include "names.h"
#include "throttle.h"

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

/* A full dump taken at `when`: the system's and its component's last. */
static void count_full(ld_reports *r, const char *component, uint64_t when)
{
    if (when > r->system_last)
        r->system_last = when;
    set_last(r, component, when);
}

static void reset(ld_reports *r)
{
    r->system_last = 0;
    r->last_count = 0;
    r->known_count = 0;
    r->next_order = 1;
    memset(&r->landing, 0, sizeof r->landing);
}

ld_status ldr_state_save(ld_reports *r)
{
    size_t cap = 128 + (size_t)r->last_count * (LD_COMPONENT_MAX + 40) + (size_t)r->known_count * (LDR_REL_MAX + 32) +
                 LDR_REL_MAX + 96;
    char *buf = malloc(cap);
    if (!buf)
        return LD_STATUS_NO_MEMORY;
    size_t n = (size_t)snprintf(buf, cap, "livedump-throttle 2\nnext %llu\nsystem %llu\n",
                                (unsigned long long)r->next_order, (unsigned long long)r->system_last);
    for (uint32_t i = 0; i < r->last_count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "component %s %llu\n", r->last[i].component,
                              (unsigned long long)r->last[i].time);
    for (uint32_t i = 0; i < r->known_count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "report %llu %s\n", (unsigned long long)r->known[i].order,
                              r->known[i].rel);
    if (r->landing.active)
        n += (size_t)snprintf(buf + n, cap - n, "landing %llu %s %s\n", (unsigned long long)r->landing.time,
                              r->landing.component, r->landing.rel);
    n += (size_t)snprintf(buf + n, cap - n, "end %016llx\n", (unsigned long long)fnv1a(buf, n));
    ld_status st = ldr_write_atomic_at(r->root_fd, LDR_STATE_FILE, buf, n);
    free(buf);
    return st;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

/* Parse the state file strictly into r; false with the reason in why.
 * *version is the file's. */
static bool parse_state(ld_reports *r, char *text, size_t len, int *version, char *why, size_t cap)
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
    *version = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char comp[64], a[32], b[32], rel[LDR_REL_MAX + 16], extra;
        uint64_t t, o;
        bool full;
        bool ok = true;
        if (line == 1) {
            *version = !strcmp(l, "livedump-throttle 1") ? 1 : !strcmp(l, "livedump-throttle 2") ? 2 : 0;
            if (!*version)
                break;
        } else if (sscanf(l, "system %31s %c", a, &extra) == 1 && parse_u64(a, &t)) {
            r->system_last = t;
        } else if (sscanf(l, "component %63s %31s %c", comp, a, &extra) == 2 && ld_component_name_valid(comp) &&
                   parse_u64(a, &t)) {
            set_last(r, comp, t);
        } else if (*version < 2) {
            ok = false;
        } else if (sscanf(l, "next %31s %c", a, &extra) == 1 && parse_u64(a, &o) && o > 0) {
            if (o > r->next_order)
                r->next_order = o;
        } else if (sscanf(l, "report %31s %95s %c", a, rel, &extra) == 2 && parse_u64(a, &o) && o > 0 &&
                   ldr_rel_valid(rel, &full) && !ldr_find_known(r, rel)) {
            ok = ldr_set_known(r, rel, o) == LD_STATUS_SUCCESS;
        } else if (sscanf(l, "landing %31s %63s %95s %c", b, comp, rel, &extra) == 3 && parse_u64(b, &t) &&
                   ld_component_name_valid(comp) && ldr_rel_valid(rel, &full) && full && !r->landing.active) {
            r->landing.active = true;
            r->landing.time = t;
            /* Both checked above: a component name and a report's path fit. */
            snprintf(r->landing.component, sizeof r->landing.component, "%.*s", LD_COMPONENT_MAX, comp);
            snprintf(r->landing.rel, sizeof r->landing.rel, "%.*s", LDR_REL_MAX - 1, rel);
        } else {
            ok = false;
        }
        if (!ok) {
            snprintf(why, cap, "line %u not understood", line);
            return false;
        }
    }
    if (!*version) {
        snprintf(why, cap, "not a livedump throttling state file");
        return false;
    }
    return true;
}

/* ---- checked against the disk ---- */

ld_status ldr_reconcile(ld_reports *r, const char *skip, bool *changed)
{
    if (changed)
        *changed = false;
    ld_report_entry *list;
    size_t n;
    ld_status st = ld_reports_list(r, &list, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    bool any = false;
    /* Forget what is gone (retention, or deleted by hand: throttling keeps
     * its times, which are apart). The listing found each known report
     * present: count those it gave a place. */
    size_t present = 0;
    for (size_t j = 0; j < n; j++)
        present += list[j].order != 0;
    if (present != r->known_count) {
        char *seen = calloc(r->known_count ? r->known_count : 1, 1);
        if (!seen) {
            ld_reports_list_free(list);
            return LD_STATUS_NO_MEMORY;
        }
        for (size_t j = 0; j < n; j++) {
            bool found;
            uint32_t i = ldr_known_slot(r, list[j].path + strlen(r->root) + 1, &found);
            if (list[j].order && found)
                seen[i] = 1;
        }
        for (uint32_t i = r->known_count; i-- > 0;)
            if (!seen[i])
                ldr_drop_known(r, i);
        free(seen);
        any = true;
    }
    /* The unknown come last in the listing, in name order: add them so. */
    uint64_t now = ldr_now(r);
    for (size_t j = 0; j < n && st == LD_STATUS_SUCCESS; j++) {
        const ld_report_entry *x = &list[j];
        const char *rel = x->path + strlen(r->root) + 1;
        if (x->incomplete || x->order || (skip && !strcmp(rel, skip)))
            continue;
        st = ldr_set_known(r, rel, r->next_order);
        if (x->full)
            count_full(r, x->component, x->time < now ? x->time : now);
        any = true;
    }
    ld_reports_list_free(list);
    if (changed)
        *changed = any;
    return st;
}

/* Note what was wrong with the state, if nothing was noted yet. */
static void problem(ld_reports *r, const char *fmt, const char *detail)
{
    if (r->state_problem[0])
        return;
    char path[LD_SETTINGS_PATH_MAX + 32];
    state_path(r, path, sizeof path);
    char what[200];
    snprintf(what, sizeof what, fmt, detail);
    if ((size_t)snprintf(r->state_problem, sizeof r->state_problem, "%s: %s", path, what) >= sizeof r->state_problem)
        snprintf(r->state_problem, sizeof r->state_problem, "%s: %s", LDR_STATE_FILE, what);
}

ld_status ldr_state_load(ld_reports *r)
{
    char *text;
    size_t len;
    r->state_problem[0] = 0;
    reset(r);
    ld_status st = ldr_read_small_at(r->root_fd, LDR_STATE_FILE, 8 << 20, &text, &len);
    int version = 0;
    bool dirty = true;
    if (st == LD_STATUS_NO_SUCH_FILE) {
        /* First use, or the file was deleted: the dumps present still
         * count, so an administrator cannot reset throttling by accident. */
        st = LD_STATUS_SUCCESS;
    } else {
        char why[160];
        if (st != LD_STATUS_SUCCESS) {
            snprintf(why, sizeof why, "unreadable: %s", ld_status_describe(st));
        } else if (memchr(text, 0, len)) {
            snprintf(why, sizeof why, "binary content");
            st = LD_STATUS_FILE_CORRUPT;
        } else if (!parse_state(r, text, len, &version, why, sizeof why)) {
            st = LD_STATUS_FILE_CORRUPT;
        }
        free(text);
        if (st != LD_STATUS_SUCCESS) {
            problem(r, "%s; rebuilt from the dumps present", why);
            /* A symlink or non-file in its place is removed, not followed. */
            if (!r->read_only)
                (void)unlinkat(r->root_fd, LDR_STATE_FILE, 0);
            reset(r);
            version = 0;
            st = LD_STATUS_SUCCESS;
        } else {
            dirty = version != 2;
        }
    }
    /* A time in the future (the clock was ahead, or was set back since)
     * becomes now, and is saved so: it blocks for one threshold, no more. */
    uint64_t now = ldr_now(r);
    uint64_t latest = r->system_last;
    for (uint32_t i = 0; i < r->last_count; i++)
        if (r->last[i].time > latest)
            latest = r->last[i].time;
    if (r->landing.active && r->landing.time > latest)
        latest = r->landing.time;
    if (latest > now) {
        char detail[64];
        snprintf(detail, sizeof detail, "%llu", (unsigned long long)latest);
        problem(r, "a time in the future (%s) clamped to now", detail);
        if (r->system_last > now)
            r->system_last = now;
        for (uint32_t i = 0; i < r->last_count; i++)
            if (r->last[i].time > now)
                r->last[i].time = now;
        if (r->landing.time > now)
            r->landing.time = now;
        dirty = true;
    }
    /* A landing whose file is there landed; else it never did. */
    if (r->landing.active) {
        struct stat sb;
        if (fstatat(r->root_fd, r->landing.rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
            count_full(r, r->landing.component, r->landing.time);
            st = ldr_set_known(r, r->landing.rel, r->next_order);
        }
        memset(&r->landing, 0, sizeof r->landing);
        dirty = true;
    }
    /* Reports on disk the state does not list: a version 2 state that
     * misses a full dump did not count it (a state restored, a dump copied
     * or renamed in): say so. */
    uint64_t sys_before = r->system_last;
    bool changed = false;
    if (st == LD_STATUS_SUCCESS)
        st = ldr_reconcile(r, NULL, &changed);
    if (changed) {
        dirty = true;
        if (version == 2 && r->system_last != sys_before)
            problem(r, "%s; rebuilt from the dumps present", "a full dump on disk was not counted");
    }
    if (st == LD_STATUS_SUCCESS && dirty && !r->read_only)
        (void)ldr_state_save(r); /* tried again at the next change */
    return st;
}

ld_status ldr_state_reload(ld_reports *r)
{
    char problem_was[sizeof r->state_problem];
    memcpy(problem_was, r->state_problem, sizeof problem_was);
    bool noted = r->state_problem_noted;
    ld_status st = ldr_state_load(r);
    if (!r->state_problem[0]) {
        memcpy(r->state_problem, problem_was, sizeof problem_was);
        r->state_problem_noted = noted;
    } else {
        r->state_problem_noted = false; /* a new problem: tell it */
    }
    return st;
}

ld_status ldr_record(ld_reports *r, const char *rel, const char *component, bool full, uint64_t when)
{
    if (full) {
        count_full(r, component, when);
        memset(&r->landing, 0, sizeof r->landing);
    }
    return ldr_set_known(r, rel, r->next_order);
}

ld_status ldr_landing_begin(ld_reports *r, const char *component, uint64_t when, const char *rel)
{
    r->landing.active = true;
    r->landing.time = when;
    snprintf(r->landing.component, sizeof r->landing.component, "%s", component);
    snprintf(r->landing.rel, sizeof r->landing.rel, "%s", rel);
    ld_status st = ldr_state_save(r);
    if (st != LD_STATUS_SUCCESS)
        memset(&r->landing, 0, sizeof r->landing);
    return st;
}

void ldr_landing_cancel(ld_reports *r)
{
    if (!r->landing.active)
        return;
    memset(&r->landing, 0, sizeof r->landing);
    (void)ldr_state_save(r);
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
