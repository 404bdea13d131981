/* Events: lookup in the generated table, building, and rendering of the
 * manifest's message and of a JSON line. Freestanding: no snprintf, so a
 * small text builder with snprintf's contract does the formatting. */
#include "src/core/event_build.h"
#include "src/core/events_table.h"

/* ---- lookup ---- */

size_t ld_event_desc_count(void)
{
    return ldi_event_desc_count;
}

const ld_event_desc *ld_event_desc_at(size_t index)
{
    return index < ldi_event_desc_count ? &ldi_event_descs[index] : 0;
}

const ld_event_desc *ld_event_desc_find(uint16_t id)
{
    size_t lo = 0, hi = ldi_event_desc_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ldi_event_descs[mid].id == id)
            return &ldi_event_descs[mid];
        if (ldi_event_descs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int field_index(const ld_event_desc *d, const char *name)
{
    if (!d || !name)
        return -1;
    for (uint32_t i = 0; i < d->field_count; i++)
        if (str_eq(d->fields[i].name, name))
            return (int)i;
    return -1;
}

static bool is_string(ld_field_type t)
{
    return t == LD_FIELD_ANSI_STRING || t == LD_FIELD_UNICODE_STRING;
}

/* ---- building ---- */

bool ldi_event_init(ld_event *ev, uint16_t id, uint64_t now_ns)
{
    memset(ev, 0, sizeof *ev);
    ev->id = id;
    ev->level = LD_LEVEL_INFO;
    ev->timestamp_ns = now_ns;
    ev->desc = ld_event_desc_find(id);
    if (!ev->desc)
        return false;
    ev->channel = ev->desc->channel;
    return true;
}

bool ldi_event_set_u64(ld_event *ev, const char *field, uint64_t value)
{
    int i = field_index(ev->desc, field);
    if (i < 0 || is_string(ev->desc->fields[i].type))
        return false;
    ev->values[i].set = true;
    ev->values[i].u = value;
    return true;
}

bool ldi_event_set_str(ld_event *ev, const char *field, const char *value)
{
    int i = field_index(ev->desc, field);
    if (i < 0 || !is_string(ev->desc->fields[i].type) || !value)
        return false;
    ev->values[i].set = true;
    ev->values[i].s = value;
    return true;
}

bool ldi_event_complete(const ld_event *ev)
{
    if (!ev->desc)
        return false;
    for (uint32_t i = 0; i < ev->desc->field_count; i++)
        if (!ev->values[i].set)
            return false;
    return true;
}

bool ld_event_get_u64(const ld_event *ev, const char *field, uint64_t *value)
{
    int i = ev ? field_index(ev->desc, field) : -1;
    if (i < 0 || !ev->values[i].set || is_string(ev->desc->fields[i].type))
        return false;
    if (value)
        *value = ev->values[i].u;
    return true;
}

const char *ld_event_get_str(const ld_event *ev, const char *field)
{
    int i = ev ? field_index(ev->desc, field) : -1;
    if (i < 0 || !ev->values[i].set || !is_string(ev->desc->fields[i].type))
        return 0;
    return ev->values[i].s;
}

const char *ld_channel_name(ld_channel channel)
{
    return channel == LD_CHANNEL_OPERATIONAL ? "Operational" : channel == LD_CHANNEL_ANALYTIC ? "Analytic" : "Unknown";
}

const char *ld_level_name(ld_level level)
{
    switch (level) {
    case LD_LEVEL_ERROR: return "Error";
    case LD_LEVEL_WARNING: return "Warning";
    case LD_LEVEL_INFO: return "Information";
    }
    return "Unknown";
}

/* ---- rendering ---- */

/* snprintf's contract: count everything, store what fits, keep a NUL.
 * With `json` set, every character goes out JSON-escaped. */
typedef struct text {
    char *buf;
    size_t cap, len;
    bool json;
} text;

static void raw_c(text *t, char c)
{
    if (t->len + 1 < t->cap)
        t->buf[t->len] = c;
    t->len++;
}

static void raw_s(text *t, const char *s)
{
    while (*s)
        raw_c(t, *s++);
}

static void put_c(text *t, char c)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char u = (unsigned char)c;
    if (!t->json) {
        raw_c(t, c);
    } else if (c == '"' || c == '\\') {
        raw_c(t, '\\');
        raw_c(t, c);
    } else if (c == '\n') {
        raw_s(t, "\\n");
    } else if (c == '\t') {
        raw_s(t, "\\t");
    } else if (c == '\r') {
        raw_s(t, "\\r");
    } else if (u < 0x20 || u == 0x7f) {
        raw_s(t, "\\u00");
        raw_c(t, hex[u >> 4]);
        raw_c(t, hex[u & 0xf]);
    } else {
        raw_c(t, c);
    }
}

static void put_s(text *t, const char *s)
{
    while (*s)
        put_c(t, *s++);
}

static void put_dec(text *t, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put_c(t, tmp[--n]);
}

static void put_hex(text *t, uint64_t v, int digits)
{
    static const char hex[] = "0123456789ABCDEF";
    put_s(t, "0x");
    for (int i = digits - 1; i >= 0; i--)
        put_c(t, hex[(v >> (4 * i)) & 0xf]);
}

static size_t finish(text *t)
{
    if (t->cap)
        t->buf[t->len < t->cap ? t->len : t->cap - 1] = 0;
    return t->len;
}

/* NT status fields read as Windows prints them. */
static bool is_status_field(const ld_field_desc *f)
{
    return f->type == LD_FIELD_UINT32 && str_eq(f->name, "NTStatus");
}

static void put_value(text *t, const ld_field_desc *f, const ld_field_value *v)
{
    if (!v->set) {
        put_c(t, '-');
        return;
    }
    switch (f->type) {
    case LD_FIELD_UINT32:
        if (is_status_field(f))
            put_hex(t, v->u & 0xffffffffu, 8);
        else
            put_dec(t, v->u & 0xffffffffu);
        break;
    case LD_FIELD_UINT64: put_dec(t, v->u); break;
    case LD_FIELD_POINTER: put_hex(t, v->u, 16); break;
    case LD_FIELD_BOOLEAN: put_s(t, v->u ? "true" : "false"); break;
    default: put_s(t, v->s ? v->s : ""); break;
    }
}

/* The manifest message with each {Field} replaced by its value. */
static void render_message(text *t, const ld_event *ev)
{
    const char *m = ev->desc->message;
    while (*m) {
        if (*m == '{') {
            const char *end = m + 1;
            while (*end && *end != '}')
                end++;
            int idx = -1;
            for (uint32_t i = 0; i < ev->desc->field_count && idx < 0; i++) {
                const char *n = ev->desc->fields[i].name, *p = m + 1;
                while (p < end && *n && *n == *p) {
                    n++;
                    p++;
                }
                if (p == end && !*n)
                    idx = (int)i;
            }
            if (*end == '}' && idx >= 0) {
                put_value(t, &ev->desc->fields[idx], &ev->values[idx]);
                m = end + 1;
                continue;
            }
        }
        put_c(t, *m++);
    }
}

size_t ld_event_format_message(const ld_event *ev, char *buf, size_t cap)
{
    text t = {buf, cap, 0, false};
    if (ev && ev->desc)
        render_message(&t, ev);
    return finish(&t);
}

static void put_json_string(text *t, const char *s)
{
    raw_c(t, '"');
    t->json = true;
    put_s(t, s ? s : "");
    t->json = false;
    raw_c(t, '"');
}

size_t ld_event_format_json(const ld_event *ev, char *buf, size_t cap)
{
    text t = {buf, cap, 0, false};
    if (!ev || !ev->desc)
        return finish(&t);
    raw_s(&t, "{\"id\":");
    put_dec(&t, ev->id);
    raw_s(&t, ",\"channel\":");
    put_json_string(&t, ld_channel_name(ev->channel));
    raw_s(&t, ",\"level\":");
    put_json_string(&t, ld_level_name(ev->level));
    raw_s(&t, ",\"timestamp_ns\":");
    put_dec(&t, ev->timestamp_ns);
    raw_s(&t, ",\"message\":\"");
    t.json = true;
    render_message(&t, ev);
    t.json = false;
    raw_s(&t, "\",\"fields\":{");
    bool first = true;
    for (uint32_t i = 0; i < ev->desc->field_count; i++) {
        const ld_field_desc *f = &ev->desc->fields[i];
        const ld_field_value *v = &ev->values[i];
        if (!v->set)
            continue;
        if (!first)
            raw_c(&t, ',');
        first = false;
        put_json_string(&t, f->name);
        raw_c(&t, ':');
        bool quoted = f->type == LD_FIELD_POINTER || is_status_field(f);
        if (is_string(f->type)) {
            put_json_string(&t, v->s);
        } else {
            if (quoted)
                raw_c(&t, '"');
            put_value(&t, f, v);
            if (quoted)
                raw_c(&t, '"');
        }
    }
    raw_s(&t, "}}");
    return finish(&t);
}
