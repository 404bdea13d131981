/* Events: lookup in the generated table, building, and rendering of the
 * manifest's message and of a JSON line. Freestanding: no snprintf, so a
 * small text builder with snprintf's contract does the formatting. */
#include "event_build.h"
#include "events_table.h"

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
 * With `json` set, everything put goes out JSON-escaped (json_escape). */
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

static size_t str_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* The well-formed UTF-8 sequence at s (n bytes left): its length and code
 * point, or 0 with *bad = the length of its maximal ill-formed prefix
 * (Unicode's "maximal subpart", which one U+FFFD replaces). Overlongs,
 * surrogates and code points above U+10FFFF are ill-formed. */
static size_t utf8_sequence(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        v = v << 6 | (s[i] & 0x3Fu);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    return len;
}

/* The one JSON string escaper (events and ld_json_string): quote and
 * backslash escaped, control characters (C0, DEL, C1) as \u00XX or their
 * short forms, well-formed UTF-8 kept as it is, and each ill-formed
 * sequence replaced by U+FFFD, so the output is always valid UTF-8 JSON
 * whatever bytes a name or path holds. */
static void json_escape(text *t, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    while (n) {
        uint32_t cp = 0;
        size_t bad = 0, len = utf8_sequence(s, n, &cp, &bad);
        if (!len) {
            raw_s(t, "\\ufffd");
            s += bad;
            n -= bad;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            raw_c(t, '\\');
            raw_c(t, (char)cp);
        } else if (cp == '\n') {
            raw_s(t, "\\n");
        } else if (cp == '\t') {
            raw_s(t, "\\t");
        } else if (cp == '\r') {
            raw_s(t, "\\r");
        } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            raw_s(t, "\\u00");
            raw_c(t, hex[cp >> 4]);
            raw_c(t, hex[cp & 0xf]);
        } else {
            for (size_t i = 0; i < len; i++)
                raw_c(t, (char)s[i]);
        }
        s += len;
        n -= len;
    }
}

static void put_n(text *t, const char *s, size_t n)
{
    if (t->json) {
        json_escape(t, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        raw_c(t, s[i]);
}

static void put_c(text *t, char c)
{
    put_n(t, &c, 1);
}

static void put_s(text *t, const char *s)
{
    put_n(t, s, str_len(s));
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
        /* Literal text up to the next '{' in one piece, so escaping sees
         * whole UTF-8 sequences. */
        size_t lit = 1;
        while (m[lit] && m[lit] != '{')
            lit++;
        put_n(t, m, lit);
        m += lit;
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

size_t ld_json_string(const char *s, char *buf, size_t cap)
{
    text t = {buf, cap, 0, false};
    put_json_string(&t, s);
    return finish(&t);
}

size_t ld_event_format_json(const ld_event *ev, char *buf, size_t cap)
{
    text t = {buf, cap, 0, false};
    if (!ev || !ev->desc)
        return finish(&t);
    raw_s(&t, "{\"provider_name\":");
    put_json_string(&t, LD_EVENT_PROVIDER_NAME);
    raw_s(&t, ",\"provider_guid\":");
    put_json_string(&t, LD_EVENT_PROVIDER_GUID);
    raw_s(&t, ",\"id\":");
    put_dec(&t, ev->id);
    raw_s(&t, ",\"channel\":");
    put_json_string(&t, ld_channel_name(ev->channel));
    /* The channel's full name, as wevtutil and the Event Viewer know it. */
    raw_s(&t, ",\"log_name\":\"");
    t.json = true;
    put_s(&t, LD_EVENT_PROVIDER_NAME "/");
    put_s(&t, ld_channel_name(ev->channel));
    t.json = false;
    raw_c(&t, '"');
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
