/* An event log for tests that assert fields: keeps a copy of every event
 * with its values (strings copied), so a test can check what a field said
 * after the call that raised it returned. */
#ifndef LD_TEST_EVLOG_H
#define LD_TEST_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/events.h"

#define EVLOG_MAX 2048
#define EVLOG_STR 200

typedef struct evlog_entry {
    uint16_t id;
    ld_level level;
    const ld_event_desc *desc;
    uint64_t u[LD_EVENT_MAX_FIELDS];
    char s[LD_EVENT_MAX_FIELDS][EVLOG_STR];
    bool set[LD_EVENT_MAX_FIELDS];
} evlog_entry;

typedef struct evlog {
    evlog_entry *ev;
    size_t count;
} evlog;

evlog *evlog_new(void);
void evlog_free(evlog *log);
void evlog_clear(evlog *log);
/* ld_event_fn with an evlog as arg. */
void evlog_fn(void *arg, const ld_event *ev);
size_t evlog_count(const evlog *log, uint16_t id);
/* The nth (0-based) event `id`, or NULL. */
const evlog_entry *evlog_nth(const evlog *log, uint16_t id, size_t nth);
/* The last event `id`, or NULL. */
const evlog_entry *evlog_last(const evlog *log, uint16_t id);
/* A field of an entry; the test fails if it is absent or unset. */
uint64_t evlog_u64(const evlog_entry *e, const char *field);
const char *evlog_str(const evlog_entry *e, const char *field);
/* Event 6: the value of the parameter named `name`; the test fails if no
 * ParameterNName says `name`. */
uint64_t evlog_param(const evlog_entry *e, const char *name);
/* Index of the first `id` at or after from, or -1. */
long evlog_find(const evlog *log, uint16_t id, size_t from);

#endif
