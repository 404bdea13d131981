/* livedump: the event stream of Microsoft-Windows-Kernel-LiveDump.
 *
 * The engine reports its progress as the events of the Windows provider,
 * with the same IDs, channels, field names, field types and messages. The
 * table behind these functions is generated at build time from
 * data/kernel-livedump-events.tsv.
 */
#ifndef LIVEDUMP_EVENTS_H
#define LIVEDUMP_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The provider, as its manifest registers it (name and ETW provider GUID).
 * Every event JSON line carries both. */
#define LD_EVENT_PROVIDER_NAME "Microsoft-Windows-Kernel-LiveDump"
#define LD_EVENT_PROVIDER_GUID "bef2aa8e-81cd-11e2-a7bb-5eac6188709b"

typedef enum ld_channel {
    LD_CHANNEL_OPERATIONAL = 1,
    LD_CHANNEL_ANALYTIC = 2
} ld_channel;

#define LD_CHANNEL_MASK_ALL 0x3u
#define LD_CHANNEL_BIT(ch) (1u << ((ch) - 1))

/* ETW levels. */
typedef enum ld_level {
    LD_LEVEL_ERROR = 2,
    LD_LEVEL_WARNING = 3,
    LD_LEVEL_INFO = 4
} ld_level;

typedef enum ld_field_type {
    LD_FIELD_UINT32 = 0,
    LD_FIELD_UINT64,
    LD_FIELD_POINTER,
    LD_FIELD_BOOLEAN,
    LD_FIELD_ANSI_STRING,
    LD_FIELD_UNICODE_STRING
} ld_field_type;

typedef struct ld_field_desc {
    const char *name;
    ld_field_type type;
} ld_field_desc;

typedef struct ld_event_desc {
    uint16_t id;
    ld_channel channel;
    const char *workflow;  /* capture-api, sizing, capture-pages, deferred-write, ... */
    const char *message;   /* template with {Field} placeholders */
    uint32_t field_count;
    const ld_field_desc *fields;
} ld_event_desc;

#define LD_EVENT_MAX_FIELDS 17

LD_EXTERN size_t ld_event_desc_count(void);
LD_EXTERN const ld_event_desc *ld_event_desc_at(size_t index);
LD_EXTERN const ld_event_desc *ld_event_desc_find(uint16_t id);

typedef struct ld_field_value {
    bool set;
    uint64_t u;      /* integer, pointer and boolean fields */
    const char *s;   /* string fields (NUL-terminated UTF-8) */
} ld_field_value;

/* One event. Valid only during the callback; copy what you keep. */
typedef struct ld_event {
    const ld_event_desc *desc;
    uint16_t id;
    ld_channel channel;
    ld_level level;
    uint64_t timestamp_ns;  /* platform monotonic time when it happened */
    ld_field_value values[LD_EVENT_MAX_FIELDS]; /* parallel to desc->fields */
} ld_event;

typedef void (*ld_event_fn)(void *arg, const ld_event *event);

/* Look up a field by name: false if the event has no such field or it was
 * not set. */
LD_EXTERN bool ld_event_get_u64(const ld_event *event, const char *field, uint64_t *value);
LD_EXTERN const char *ld_event_get_str(const ld_event *event, const char *field);

/* Render the manifest message with the values filled in, as snprintf does:
 * writes at most cap bytes (NUL included) and returns the length the full
 * text needs. NT status fields print as 0x%08X, pointers as 0x%016llX. */
LD_EXTERN size_t ld_event_format_message(const ld_event *event, char *buf, size_t cap);
/* One JSON object on one line (no newline), same convention:
 * {"provider_name":"Microsoft-Windows-Kernel-LiveDump",
 *  "provider_guid":"bef2aa8e-81cd-11e2-a7bb-5eac6188709b","id":4,
 *  "channel":"Operational","log_name":"Microsoft-Windows-Kernel-LiveDump/Operational",
 *  "level":"Information","timestamp_ns":...,"message":"...","fields":{...}}
 * The manifest's channel per event; the level is livedump's own (Error when
 * NTStatus is not 0, Warning for events 5 and 124, else Information): the
 * manifest's levels, tasks, opcodes and keywords are not known, so no task,
 * opcode or keyword is given. Always valid UTF-8 JSON: strings are escaped
 * as ld_json_string does. */
LD_EXTERN size_t ld_event_format_json(const ld_event *event, char *buf, size_t cap);

/* s (NULL: "") as a JSON string, quotes included, same convention: '"' and
 * '\\' escaped, control characters (U+0000-U+001F, U+007F-U+009F) as
 * \n, \t, \r or \u00XX, well-formed UTF-8 kept as it is, and each
 * ill-formed UTF-8 sequence (a stray byte, a truncated sequence, an
 * overlong form, a surrogate) replaced by U+FFFD, written \ufffd: the
 * result is valid UTF-8 JSON whatever the bytes. The escaper the event
 * JSON uses, for programs that write JSON next to it. */
LD_EXTERN size_t ld_json_string(const char *s, char *buf, size_t cap);

LD_EXTERN const char *ld_channel_name(ld_channel channel);
LD_EXTERN const char *ld_level_name(ld_level level);

#ifdef __cplusplus
}
#endif
#endif
