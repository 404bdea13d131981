/* Report names: "COMPONENT-YYYYMMDD-HHMMSS[-N].ext" (UTC), what a valid
 * component and extension are, and a report's path under the root. Pure
 * string work: no file is touched here. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "names.h"

bool ld_component_name_valid(const char *name)
{
    if (!name || !name[0])
        return false;
    size_t i = 0;
    for (; name[i]; i++) {
        char c = name[i];
        if (i >= LD_COMPONENT_MAX || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

bool ldr_ext_ok(const char *ext)
{
    if (!ext)
        return false;
    size_t i = 0;
    for (; ext[i]; i++)
        if (i >= 8 || !((ext[i] >= 'a' && ext[i] <= 'z') || (ext[i] >= '0' && ext[i] <= '9')))
            return false;
    return i > 0;
}

static bool digits(const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static int num(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

#define PARTIAL_SUFFIX ".partial"

/* "COMP-YYYYMMDD-HHMMSS[-N].ext" -> its parts; false for any other name.
 * The same with ".partial" (the file sink's temporary name): incomplete. */
bool ldr_parse_name(const char *full_name, ld_report_entry *e)
{
    char name[NAME_MAX + 1];
    size_t len = strlen(full_name), sl = strlen(PARTIAL_SUFFIX);
    if (len >= sizeof name)
        return false;
    memcpy(name, full_name, len + 1);
    e->incomplete = len > sl && !strcmp(name + len - sl, PARTIAL_SUFFIX);
    if (e->incomplete)
        name[len - sl] = 0;
    const char *dash = strchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) > LD_COMPONENT_MAX)
        return false;
    memcpy(e->component, name, (size_t)(dash - name));
    e->component[dash - name] = 0;
    if (!ld_component_name_valid(e->component))
        return false;
    const char *t = dash + 1;
    if (!digits(t, 8) || t[8] != '-' || !digits(t + 9, 6))
        return false;
    const char *p = t + 15;
    e->sequence = 0;
    if (*p == '-') {
        p++;
        const char *q = p;
        while (*q >= '0' && *q <= '9' && q - p < 6)
            q++;
        if (q == p || *q != '.' || *p == '0')
            return false;
        e->sequence = (uint32_t)num(p, (int)(q - p));
        p = q;
    }
    if (*p != '.' || !ldr_ext_ok(p + 1))
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = num(t, 4) - 1900;
    tm.tm_mon = num(t + 4, 2) - 1;
    tm.tm_mday = num(t + 6, 2);
    tm.tm_hour = num(t + 9, 2);
    tm.tm_min = num(t + 11, 2);
    tm.tm_sec = num(t + 13, 2);
    time_t when = timegm(&tm);
    if (when < 0)
        return false;
    e->time = (uint64_t)when;
    return true;
}

bool ldr_rel_valid(const char *rel, bool *full)
{
    ld_report_entry e;
    const char *slash = strchr(rel, '/');
    *full = !slash;
    if (!slash)
        return strlen(rel) < LDR_REL_MAX && ldr_parse_name(rel, &e) && !e.incomplete;
    size_t cl = (size_t)(slash - rel);
    return strlen(rel) < LDR_REL_MAX && cl <= LD_COMPONENT_MAX && !strchr(slash + 1, '/') &&
           ldr_parse_name(slash + 1, &e) && !e.incomplete && strlen(e.component) == cl &&
           !strncmp(rel, e.component, cl);
}

void ldr_dump_name(char *buf, size_t cap, const char *component, uint64_t when, uint32_t seq, const char *ext)
{
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (seq)
        snprintf(buf, cap, "%s-%s-%u.%s", component, stamp, seq, ext);
    else
        snprintf(buf, cap, "%s-%s.%s", component, stamp, ext);
}
