/* The generated event table against the manifest TSV (parsed here, with
 * plain stdio, independently of tools/gen_events.py), and the rendering of
 * messages and JSON lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "livedump/livedump.h"
#include "event_build.h"

static const char *tsv_path;

static const char *type_name(ld_field_type t)
{
    switch (t) {
    case LD_FIELD_UINT32: return "UInt32";
    case LD_FIELD_UINT64: return "UInt64";
    case LD_FIELD_POINTER: return "Pointer";
    case LD_FIELD_BOOLEAN: return "Boolean";
    case LD_FIELD_ANSI_STRING: return "AnsiString";
    case LD_FIELD_UNICODE_STRING: return "UnicodeString";
    }
    return "?";
}

/* Split a line on tabs in place; returns the column count. */
static int split(char *line, char **cols, int max)
{
    int n = 0;
    cols[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == '\t') {
            *p = 0;
            cols[n++] = p + 1;
        }
    }
    return n;
}

static void test_table_matches_tsv(void **state)
{
    (void)state;
    FILE *f = fopen(tsv_path, "r");
    assert_non_null(f);
    char line[8192];
    assert_non_null(fgets(line, sizeof line, f));
    int events = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0])
            continue;
        char *cols[8];
        assert_int_equal(split(line, cols, 8), 6);
        int id = atoi(cols[0]);
        const ld_event_desc *d = ld_event_desc_find((uint16_t)id);
        if (!d)
            fail_msg("event %d missing from the table", id);
        assert_string_equal(ld_channel_name(d->channel), cols[1]);
        assert_string_equal(d->workflow, cols[2]);
        assert_string_equal(d->message, cols[3]);
        /* Fields, in order, with their types. */
        uint32_t nf = 0;
        char *fields = cols[4];
        for (char *item = strtok(fields, ","); item; item = strtok(NULL, ",")) {
            char *colon = strchr(item, ':');
            assert_non_null(colon);
            *colon = 0;
            assert_true(nf < d->field_count);
            assert_string_equal(d->fields[nf].name, item);
            assert_string_equal(type_name(d->fields[nf].type), colon + 1);
            nf++;
        }
        assert_int_equal(nf, d->field_count);
        events++;
    }
    fclose(f);
    assert_int_equal(events, 60);
    assert_int_equal(ld_event_desc_count(), 60);
    /* Sorted by id, all reachable by index. */
    for (size_t i = 1; i < ld_event_desc_count(); i++)
        assert_true(ld_event_desc_at(i - 1)->id < ld_event_desc_at(i)->id);
    assert_null(ld_event_desc_at(60));
    assert_null(ld_event_desc_find(0));
    assert_null(ld_event_desc_find(7));
    assert_null(ld_event_desc_find(65535));
}

/* Every field set: no placeholder is left, and values appear. */
static void test_render_every_event(void **state)
{
    (void)state;
    for (size_t i = 0; i < ld_event_desc_count(); i++) {
        const ld_event_desc *d = ld_event_desc_at(i);
        ld_event ev;
        assert_true(ldi_event_init(&ev, d->id, 77));
        assert_int_equal(ldi_event_complete(&ev), d->field_count == 0);
        for (uint32_t k = 0; k < d->field_count; k++) {
            if (d->fields[k].type == LD_FIELD_ANSI_STRING || d->fields[k].type == LD_FIELD_UNICODE_STRING) {
                assert_true(ldi_event_set_str(&ev, d->fields[k].name, "txt"));
                assert_false(ldi_event_set_u64(&ev, d->fields[k].name, 1));
            } else {
                assert_true(ldi_event_set_u64(&ev, d->fields[k].name, 4242));
                assert_false(ldi_event_set_str(&ev, d->fields[k].name, "x"));
            }
        }
        assert_true(ldi_event_complete(&ev));
        char msg[2048], json[4096];
        size_t n = ld_event_format_message(&ev, msg, sizeof msg);
        assert_int_equal(n, strlen(msg));
        if (strchr(msg, '{') || strchr(msg, '}'))
            fail_msg("event %u renders a placeholder: %s", d->id, msg);
        size_t j = ld_event_format_json(&ev, json, sizeof json);
        assert_int_equal(j, strlen(json));
        assert_true(j < sizeof json);
        assert_int_equal(json[0], '{');
        assert_int_equal(json[j - 1], '}');
    }
    ld_event ev;
    assert_false(ldi_event_init(&ev, 9999, 0));
    assert_true(ldi_event_init(&ev, 1, 0));
    assert_false(ldi_event_set_u64(&ev, "NoSuchField", 1));
}

static void test_status_and_pointer_rendering(void **state)
{
    (void)state;
    ld_event ev;
    assert_true(ldi_event_init(&ev, 2, 0));
    assert_true(ldi_event_set_u64(&ev, "NTStatus", 0xC000007Fu));
    assert_true(ldi_event_set_u64(&ev, "BugcheckCode", 0x161));
    assert_true(ldi_event_set_u64(&ev, "BugCheckParameter1", 0x005461736b6d6772ull));
    assert_true(ldi_event_set_u64(&ev, "IOSpaceEnabled", 1));
    char msg[2048];
    ld_event_format_message(&ev, msg, sizeof msg);
    assert_non_null(strstr(msg, "NT Status: 0xC000007F."));
    assert_non_null(strstr(msg, "BugcheckCode: 353."));
    assert_non_null(strstr(msg, "BugcheckParameter1: 0x005461736B6D6772."));
    assert_non_null(strstr(msg, "IOSpaceEnabled: true."));
    /* Fields not set show as "-". */
    assert_non_null(strstr(msg, "SelectiveDump: -."));
    char json[4096];
    ld_event_format_json(&ev, json, sizeof json);
    assert_non_null(strstr(json, "\"NTStatus\":\"0xC000007F\""));
    assert_non_null(strstr(json, "\"BugcheckCode\":353"));
    assert_non_null(strstr(json, "\"BugCheckParameter1\":\"0x005461736B6D6772\""));
    assert_non_null(strstr(json, "\"IOSpaceEnabled\":true"));
    assert_null(strstr(json, "\"SelectiveDump\":")); /* unset fields are left out */
    assert_non_null(strstr(json, "\"channel\":\"Operational\""));
    assert_non_null(strstr(json, "\"level\":\"Information\""));
}

/* snprintf semantics at every buffer size. */
static void test_truncation(void **state)
{
    (void)state;
    ld_event ev;
    assert_true(ldi_event_init(&ev, 113, 5));
    const ld_event_desc *d = ev.desc;
    for (uint32_t k = 0; k < d->field_count; k++)
        assert_true(ldi_event_set_u64(&ev, d->fields[k].name, 1234567));
    char full[2048], part[2048];
    for (int mode = 0; mode < 2; mode++) {
        size_t (*fmt)(const ld_event *, char *, size_t) = mode ? ld_event_format_json : ld_event_format_message;
        size_t len = fmt(&ev, full, sizeof full);
        assert_int_equal(fmt(&ev, NULL, 0), len);
        for (size_t cap = 1; cap <= len + 1; cap++) {
            memset(part, 'Z', sizeof part);
            assert_int_equal(fmt(&ev, part, cap), len);
            size_t kept = cap - 1 < len ? cap - 1 : len;
            assert_int_equal(part[kept], 0);
            assert_memory_equal(part, full, kept);
            assert_int_equal(part[cap], 'Z'); /* nothing past cap */
        }
    }
}

static void test_json_escaping(void **state)
{
    (void)state;
    ld_event ev;
    assert_true(ldi_event_init(&ev, 110, 0));
    assert_true(ldi_event_set_str(&ev, "CallbackIdentifier", "a\"b\\c\n\x01z"));
    char json[1024], msg[512];
    ld_event_format_json(&ev, json, sizeof json);
    assert_non_null(strstr(json, "\"CallbackIdentifier\":\"a\\\"b\\\\c\\n\\u0001z\""));
    /* The message inside the JSON is escaped too. */
    assert_non_null(strstr(json, "\"message\":\"Sizing Workflow: RemovePages Callback a\\\"b\\\\c\\n\\u0001z started.\""));
    /* The plain message is not. */
    ld_event_format_message(&ev, msg, sizeof msg);
    assert_string_equal(msg, "Sizing Workflow: RemovePages Callback a\"b\\c\n\x01z started.");
    const char *s = ld_event_get_str(&ev, "CallbackIdentifier");
    assert_non_null(s);
    uint64_t v;
    assert_false(ld_event_get_u64(&ev, "CallbackIdentifier", &v));
}

/* Bytes that are not UTF-8 and control characters: each ill-formed
 * sequence becomes one U+FFFD (the "maximal subpart" rule, as Python's
 * bytes.decode("utf-8", "replace") does: tests/events/test_events_json.py
 * checks the same against Python), controls are escaped, well-formed
 * UTF-8 (é, an emoji) stays. */
static const char hostile[] =
    "ok\xff|\xc3\xa9|\xe2\x82|z\x01\x7f|\xc2\x85|\xed\xa0\x80|\xf4\x90\x80\x80|\xc0\xaf|\xf0\x9f\x98\x80|\xe0\x80|"
    "\"\\\n\x08\x1b";
static const char hostile_json[] =
    "\"ok\\ufffd|\xc3\xa9|\\ufffd|z\\u0001\\u007f|\\u0085|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd|"
    "\\ufffd\\ufffd|\xf0\x9f\x98\x80|\\ufffd\\ufffd|\\\"\\\\\\n\\u0008\\u001b\"";

static void test_json_string(void **state)
{
    (void)state;
    char out[512], part[512];
    size_t len = ld_json_string(hostile, out, sizeof out);
    assert_string_equal(out, hostile_json);
    assert_int_equal(len, strlen(hostile_json));
    assert_int_equal(ld_json_string(hostile, NULL, 0), len);
    for (size_t cap = 1; cap <= len + 1; cap++) {
        memset(part, 'Z', sizeof part);
        assert_int_equal(ld_json_string(hostile, part, cap), len);
        assert_int_equal(part[cap - 1], 0);
        assert_memory_equal(part, out, cap - 1);
        assert_int_equal(part[cap], 'Z');
    }
    assert_int_equal(ld_json_string(NULL, out, sizeof out), 2);
    assert_string_equal(out, "\"\"");
    /* A sequence cut by the end of the string. */
    ld_json_string("a\xf0\x9f\x98", out, sizeof out);
    assert_string_equal(out, "\"a\\ufffd\"");
}

/* The event JSON escapes string fields and the message that quotes them
 * the same way. */
static void test_json_event_hostile_strings(void **state)
{
    (void)state;
    char json[4096], want[1024];
    ld_event ev;
    assert_true(ldi_event_init(&ev, 110, 0));
    assert_true(ldi_event_set_str(&ev, "CallbackIdentifier", hostile));
    ld_event_format_json(&ev, json, sizeof json);
    snprintf(want, sizeof want, "\"CallbackIdentifier\":%s}", hostile_json);
    assert_non_null(strstr(json, want));
    /* the message: the hostile string between the template's words */
    snprintf(want, sizeof want, "\"message\":\"Sizing Workflow: RemovePages Callback %.*s started.\"",
             (int)strlen(hostile_json) - 2, hostile_json + 1);
    assert_non_null(strstr(json, want));
    assert_true(ldi_event_init(&ev, 6, 0));
    assert_true(ldi_event_set_str(&ev, "LiveDumpEventDescription", hostile));
    assert_true(ldi_event_set_str(&ev, "Parameter1Name", "\xff"));
    ld_event_format_json(&ev, json, sizeof json);
    snprintf(want, sizeof want, "\"LiveDumpEventDescription\":%s", hostile_json);
    assert_non_null(strstr(json, want));
    assert_non_null(strstr(json, "\"Parameter1Name\":\"\\ufffd\""));
    for (const char *p = json; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p != 0xff);
}

int main(int argc, char **argv)
{
    tsv_path = argc > 1 ? argv[1] : "data/kernel-livedump-events.tsv";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_tsv),
        cmocka_unit_test(test_render_every_event),
        cmocka_unit_test(test_status_and_pointer_rendering),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_json_event_hostile_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
