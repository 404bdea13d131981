/* The policy settings: Windows value names and defaults, parsing of values
 * and of "Key = value" files, atomic saving, and what they mean for an
 * engine. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livedump/policy.h"
#include "error.h"
#include "files.h"

typedef enum { NUM, BOOL01, PATH } kind;

typedef struct setting {
    ld_setting_info info;
    kind kind;
    uint32_t max;      /* numbers: the largest value accepted */
    size_t offset;     /* into ld_settings */
} setting;

#define AT(f) offsetof(ld_settings, f)
/* Thresholds up to ten years, a hundred reports, a 4 TiB file: beyond
 * these a value is a typo, not a policy. */
static const setting settings[] = {
    {{"AllowLiveDump", "0/1", "1", "0 refuses every live dump (events 271-273)"}, BOOL01, 1, AT(allow_live_dump)},
    {{"SystemThrottleThreshold", "hours", "120", "least time between two full live dumps of any component; 0 = no limit"},
     NUM, 87600, AT(system_throttle_hours)},
    {{"ComponentThrottleThreshold", "hours", "168", "least time between two full live dumps of one component; 0 = no limit"},
     NUM, 87600, AT(component_throttle_hours)},
    {{"FullLiveReportsMax", "count", "1", "full live dumps kept at once; 0 = full live dumps are not taken"},
     NUM, 100, AT(full_live_reports_max)},
    {{"LiveKernelReportsPath", "path", LD_DEFAULT_REPORTS_PATH, "the reports folder (absolute)"}, PATH, 0,
     AT(live_kernel_reports_path)},
    {{"AlwaysKeepMemoryDump", "0/1", "0", "1: retention never deletes a full dump"}, BOOL01, 1,
     AT(always_keep_memory_dump)},
    {{"DeleteLiveMiniDumps", "0/1", "0", "1: a component keeps only its newest small (mini, kernel-stacks) dump"},
     BOOL01, 1, AT(delete_live_mini_dumps)},
    {{"DumpFileSize", "MiB", "0", "most bytes one dump may write; 0 = no limit"}, NUM, 4u << 20, AT(dump_file_size_mb)},
    {{"DynamicLowMemoryThreshold", "0/1", "1", "1: keep max(64 MiB, RAM/32) free beyond the dump buffers"}, BOOL01, 1,
     AT(dynamic_low_memory_threshold)},
};
#define SETTING_COUNT (sizeof settings / sizeof settings[0])

size_t ld_settings_count(void)
{
    return SETTING_COUNT;
}

const ld_setting_info *ld_settings_info(size_t i)
{
    return i < SETTING_COUNT ? &settings[i].info : NULL;
}

static const setting *find(const char *key)
{
    for (size_t i = 0; key && i < SETTING_COUNT; i++)
        if (!strcasecmp(settings[i].info.name, key))
            return &settings[i];
    return NULL;
}

static uint32_t *num_field(ld_settings *s, const setting *d)
{
    return (uint32_t *)((char *)s + d->offset);
}

void ld_settings_init(ld_settings *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < SETTING_COUNT; i++)
        (void)ld_settings_set(s, settings[i].info.name, settings[i].info.default_value, NULL);
}

/* Decimal or 0x hex, the whole string, at most max. White space around a
 * value is refused before this (ld_settings_set). */
static bool parse_u32(const char *v, uint32_t max, uint32_t *out)
{
    if (!v || !*v || *v == '-' || *v == '+')
        return false;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) ? 16 : 10);
    if (errno || *end || n > max)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* Absolute, no control characters, no "." or ".." component: the folder
 * reports go to is what it says it is. */
static bool path_ok(const char *v, ld_error *err)
{
    size_t n = strlen(v);
    if (v[0] != '/') {
        ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "LiveKernelReportsPath: '%s' is not an absolute path", v);
        return false;
    }
    if (n >= LD_SETTINGS_PATH_MAX) {
        ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "LiveKernelReportsPath: longer than %d bytes",
                 LD_SETTINGS_PATH_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "LiveKernelReportsPath: control character in the path");
            return false;
        }
    for (const char *p = v; (p = strchr(p, '/')); p++) {
        if ((p[1] == '.' && (p[2] == '/' || !p[2])) || (p[1] == '.' && p[2] == '.' && (p[3] == '/' || !p[3]))) {
            ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "LiveKernelReportsPath: '.' or '..' in '%s'", v);
            return false;
        }
    }
    return true;
}

/* White space as isspace() knows it in the C locale. */
static bool is_white(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* `v` for a message: control characters as C escapes, at most cap bytes. */
static void shown(const char *v, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *v && n + 5 < cap; v++) {
        unsigned char c = (unsigned char)*v;
        char e = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\v' ? 'v' : c == '\f' ? 'f' : 0;
        if (e) {
            buf[n++] = '\\';
            buf[n++] = e;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = 0;
}

static ld_status set_value(ld_settings *s, const char *key, const char *value, ld_error *err)
{
    if (!s || !key || !value)
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "missing setting name or value");
    const setting *d = find(key);
    if (!d)
        return ldu_fail(err, LD_STATUS_NOT_FOUND, "unknown setting '%s'", key);
    /* One rule for every white space character, before or after, numbers
     * and paths alike: strtoull would skip a leading tab or newline, and a
     * settings file trims what surrounds a value, so a path ending in a
     * space could not be read back as saved. */
    size_t len = strlen(value);
    if (len && (is_white(value[0]) || is_white(value[len - 1]))) {
        char v[96];
        shown(value, v, sizeof v);
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s: '%s' has white space before or after the value",
                        d->info.name, v);
    }
    if (d->kind == PATH) {
        if (!path_ok(value, err))
            return LD_STATUS_INVALID_PARAMETER;
        snprintf(s->live_kernel_reports_path, sizeof s->live_kernel_reports_path, "%s", value);
        return LD_STATUS_SUCCESS;
    }
    uint32_t n;
    if (!parse_u32(value, d->max, &n)) {
        if (d->kind == BOOL01)
            return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s: '%s' is not 0 or 1", d->info.name, value);
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s: '%s' is not a number from 0 to %u (%s)", d->info.name,
                        value, d->max, d->info.unit);
    }
    *num_field(s, d) = n;
    return LD_STATUS_SUCCESS;
}

ld_status ld_settings_set(ld_settings *s, const char *key, const char *value, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, set_value(s, key, value, err));
}

ld_status ld_settings_get(const ld_settings *s, const char *key, char *buf, size_t cap)
{
    const setting *d = find(key);
    if (!s || !d || !buf)
        return !d ? LD_STATUS_NOT_FOUND : LD_STATUS_INVALID_PARAMETER;
    if (d->kind == PATH)
        snprintf(buf, cap, "%s", s->live_kernel_reports_path);
    else
        snprintf(buf, cap, "%u", *num_field((ld_settings *)s, d));
    return LD_STATUS_SUCCESS;
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        p[--n] = 0;
    return p;
}

static ld_status load_file(ld_settings *s, const char *path, ld_error *err)
{
    if (!s || !path)
        return LD_STATUS_INVALID_PARAMETER;
    char *text;
    size_t len;
    struct stat info;
    /* Its folders too: a policy reached through a symlink, or in a folder
     * others may write, could be swapped for theirs. */
    const char *name;
    ld_status st;
    ld_error why;
    ld_error_clear(&why);
    int dfd = ldr_open_folder_of(path, &name, &st, &why);
    if (dfd < 0) {
        if (st == LD_STATUS_ACCESS_DENIED)
            return ldu_fail_os(err, st, why.os_error, "%s: %s", path, why.message);
        return ldu_fail_os(err, st, why.os_error, "%s: cannot read: %s (%s)", path, ld_status_describe(st),
                           why.message);
    }
    st = ldr_read_small_at_st(dfd, name, 1 << 20, &text, &len, &info);
    if (st == LD_STATUS_ACCESS_DENIED) {
        /* Say why: the read refuses symlinks and non-files. */
        struct stat ls;
        if (fstatat(dfd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode)) {
            close(dfd);
            return ldu_fail(err, st, "%s: refusing a policy file that is a symlink", path);
        }
        if (fstatat(dfd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(ls.st_mode)) {
            close(dfd);
            return ldu_fail(err, st, "%s: refusing a policy file that is not a regular file", path);
        }
    }
    close(dfd);
    if (st != LD_STATUS_SUCCESS)
        return ldu_fail(err, st, "%s: cannot read: %s", path, ld_status_describe(st));
    /* The policy decides whether and how memory (secrets) is dumped: only
     * root or we may own it, and no one else may be able to change it. */
    if (info.st_mode & 022) {
        free(text);
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED,
                        "%s: refusing a policy file writable by group or others (mode %03o)", path,
                        (unsigned)(info.st_mode & 0777));
    }
    if (info.st_uid != 0 && info.st_uid != geteuid()) {
        free(text);
        return ldu_fail(err, LD_STATUS_ACCESS_DENIED, "%s: refusing a policy file owned by another user (uid %u)",
                        path, (unsigned)info.st_uid);
    }
    /* Parse into a copy: a file with an error changes nothing. */
    ld_settings next = *s;
    bool seen[SETTING_COUNT] = {0};
    unsigned line = 0;
    st = LD_STATUS_SUCCESS;
    if (memchr(text, 0, len))
        st = ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s: not a text file", path);
    for (char *p = text; st == LD_STATUS_SUCCESS && p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        line++;
        char *l = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*l || *l == '#' || *l == ';')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            st = ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s:%u: expected 'Key = value', got '%s'", path, line, l);
            break;
        }
        *eq = 0;
        char *key = trim(l), *value = trim(eq + 1);
        const setting *d = find(key);
        if (d && seen[d - settings]) {
            st = ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s:%u: %s is set twice", path, line, d->info.name);
            break;
        }
        ld_error bad;
        ld_error_clear(&bad);
        if (set_value(&next, key, value, &bad) != LD_STATUS_SUCCESS) {
            st = ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "%s:%u: %s", path, line, bad.message);
            break;
        }
        seen[d - settings] = true;
    }
    free(text);
    if (st == LD_STATUS_SUCCESS)
        *s = next;
    return st;
}

ld_status ld_settings_load(ld_settings *s, const char *path, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, load_file(s, path, err));
}

ld_status ld_settings_save(const ld_settings *s, const char *path)
{
    if (!s || !path)
        return LD_STATUS_INVALID_PARAMETER;
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "# livedump policy settings (livedump policy show lists them)\n");
    for (size_t i = 0; i < SETTING_COUNT && n < sizeof buf; i++) {
        char v[LD_SETTINGS_PATH_MAX];
        (void)ld_settings_get(s, settings[i].info.name, v, sizeof v);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s = %s\n", settings[i].info.name, v);
    }
    if (n >= sizeof buf)
        return LD_STATUS_BUFFER_TOO_SMALL;
    return ldr_write_atomic(path, buf, n);
}

static uint64_t size_limit_bytes(const ld_settings *s)
{
    return (uint64_t)s->dump_file_size_mb << 20;
}

void ld_settings_engine_options(const ld_settings *s, ld_engine_options *opts)
{
    opts->allow_live_dump = s->allow_live_dump != 0;
    opts->dump_file_size_limit = size_limit_bytes(s);
    opts->dynamic_low_memory_threshold = s->dynamic_low_memory_threshold != 0;
}

ld_status ld_settings_apply(const ld_settings *s, ld_engine *engine)
{
    if (!s || !engine)
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = ld_engine_set_limits(engine, size_limit_bytes(s), s->dynamic_low_memory_threshold != 0);
    if (st != LD_STATUS_SUCCESS) {
        (void)ld_engine_report_policy_failure(engine, st);
        return st;
    }
    return ld_engine_set_allow_live_dump(engine, s->allow_live_dump != 0);
}

ld_status ld_settings_change(ld_settings *s, ld_engine *engine, const char *key, const char *value, ld_error *err)
{
    ld_status st = ld_settings_set(s, key, value, err);
    if (engine && st != LD_STATUS_SUCCESS)
        (void)ld_engine_report_policy_failure(engine, st);
    else if (engine)
        st = ld_settings_apply(s, engine);
    return ldu_error_end(err, st);
}
