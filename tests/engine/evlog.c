#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "evlog.h"

evlog *evlog_new(void)
{
    evlog *log = calloc(1, sizeof *log);
    assert_non_null(log);
    log->ev = calloc(EVLOG_MAX, sizeof *log->ev);
    assert_non_null(log->ev);
    return log;
}

void evlog_free(evlog *log)
{
    if (log)
        free(log->ev);
    free(log);
}

void evlog_clear(evlog *log)
{
    log->count = 0;
}

void evlog_fn(void *arg, const ld_event *ev)
{
    evlog *log = arg;
    if (log->count >= EVLOG_MAX)
        return;
    evlog_entry *e = &log->ev[log->count++];
    memset(e, 0, sizeof *e);
    e->id = ev->id;
    e->level = ev->level;
    e->desc = ev->desc;
    for (uint32_t i = 0; i < ev->desc->field_count && i < LD_EVENT_MAX_FIELDS; i++) {
        e->set[i] = ev->values[i].set;
        e->u[i] = ev->values[i].u;
        if (ev->values[i].s)
            snprintf(e->s[i], EVLOG_STR, "%s", ev->values[i].s);
    }
}

size_t evlog_count(const evlog *log, uint16_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < log->count; i++)
        n += log->ev[i].id == id;
    return n;
}

const evlog_entry *evlog_nth(const evlog *log, uint16_t id, size_t nth)
{
    for (size_t i = 0; i < log->count; i++)
        if (log->ev[i].id == id && nth-- == 0)
            return &log->ev[i];
    return NULL;
}

const evlog_entry *evlog_last(const evlog *log, uint16_t id)
{
    for (size_t i = log->count; i-- > 0;)
        if (log->ev[i].id == id)
            return &log->ev[i];
    return NULL;
}

long evlog_find(const evlog *log, uint16_t id, size_t from)
{
    for (size_t i = from; i < log->count; i++)
        if (log->ev[i].id == id)
            return (long)i;
    return -1;
}

static int field(const evlog_entry *e, const char *name)
{
    assert_non_null(e);
    for (uint32_t i = 0; i < e->desc->field_count; i++)
        if (!strcmp(e->desc->fields[i].name, name)) {
            if (!e->set[i])
                fail_msg("event %u: field %s not set", e->id, name);
            return (int)i;
        }
    fail_msg("event %u has no field %s", e->id, name);
    return -1;
}

uint64_t evlog_u64(const evlog_entry *e, const char *name)
{
    return e->u[field(e, name)];
}

const char *evlog_str(const evlog_entry *e, const char *name)
{
    return e->s[field(e, name)];
}

uint64_t evlog_param(const evlog_entry *e, const char *name)
{
    char n[32], v[32];
    for (int i = 1; i <= 8; i++) {
        snprintf(n, sizeof n, "Parameter%dName", i);
        snprintf(v, sizeof v, "Parameter%dValue", i);
        if (!strcmp(evlog_str(e, n), name))
            return evlog_u64(e, v);
    }
    fail_msg("event 6 '%s' has no parameter %s", evlog_str(e, "LiveDumpEventDescription"), name);
    return 0;
}
