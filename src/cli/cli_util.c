/* livedump command line: parsing and printing shared by the commands. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "livedump/runtime.h"

/* "livedump: " and the message, the start of every error line. */
static void say(const char *fmt, va_list ap)
{
    fputs("livedump: ", stderr);
    vfprintf(stderr, fmt, ap);
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'livedump %s --help'.\n", cmd);
    else
        fputs("\nTry 'livedump --help'.\n", stderr);
}

void cli_status_error(ld_status st, const char *fmt, ...)
{
    int os = ld_os_error(st); /* before anything here can fail */
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    /* The OS error in words when the status came from one, then what the
     * NTSTATUS says: "Read-only file system (write-protected (read-only
     * file system), 0xC00000A2)" reads badly, so only the name then. */
    if (os)
        fprintf(stderr, ": %s (%s, 0x%08X)\n", strerror(os),
                ld_status_name(st) ? ld_status_name(st) : ld_status_describe(st), (unsigned)st);
    else
        fprintf(stderr, ": %s (0x%08X)\n", ld_status_describe(st), (unsigned)st);
}

int cli_once(const char *cmd, bool *seen, const char *opt)
{
    if (*seen) {
        cli_usage_error(cmd, "option '%s' is given twice: it takes one value", opt);
        return -1;
    }
    *seen = true;
    return 0;
}

/* Digits only from the first character: strtoull alone would skip leading
 * white space, take a sign (" -1" as 2^64 - 1) and read "0161" as octal. */
static bool starts_with_digit(const char *s)
{
    return s && *s >= '0' && *s <= '9';
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!starts_with_digit(s))
        return -1;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    if (!starts_with_digit(s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'B')
            end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (*end)
            return -1;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Format with fn (snprintf's contract) into a stack buffer, or a heap one
 * when it needs more, and print it. false when memory ran out. */
static bool print_formatted(size_t (*fn)(const void *what, char *buf, size_t cap), const void *what)
{
    char small[2048];
    size_t n = fn(what, small, sizeof small);
    if (n < sizeof small) {
        fputs(small, stdout);
        return true;
    }
    char *big = malloc(n + 1);
    if (!big)
        return false;
    fn(what, big, n + 1);
    fputs(big, stdout);
    free(big);
    return true;
}

static size_t json_string_fn(const void *what, char *buf, size_t cap)
{
    return ld_json_string(what, buf, cap);
}

static size_t event_json_fn(const void *what, char *buf, size_t cap)
{
    return ld_event_format_json(what, buf, cap);
}

void cli_json_string(const char *s)
{
    /* Out of memory: an empty string keeps the document valid. */
    if (!print_formatted(json_string_fn, s))
        fputs("\"\"", stdout);
}

void cli_output_init(cli_output *o)
{
    o->events = CLI_EVENTS_TEXT;
    o->progress_tty = isatty(STDERR_FILENO) != 0;
    o->progress_shown = false;
}

int cli_parse_events_mode(const char *v, cli_events_mode *out)
{
    if (!strcmp(v, "text"))
        *out = CLI_EVENTS_TEXT;
    else if (!strcmp(v, "json"))
        *out = CLI_EVENTS_JSON;
    else if (!strcmp(v, "none"))
        *out = CLI_EVENTS_NONE;
    else
        return -1;
    return 0;
}

void cli_progress_clear(cli_output *o)
{
    if (o->progress_shown) {
        fputs("\r\033[K", stderr);
        o->progress_shown = false;
    }
}

void cli_on_event(void *arg, const ld_event *ev)
{
    cli_output *o = arg;
    o->events_seen++;
    char buf[2048];
    cli_progress_clear(o);
    if (o->events == CLI_EVENTS_JSON) {
        /* Never a line cut at the buffer's size: that would not parse. */
        if (print_formatted(event_json_fn, ev))
            putchar('\n');
        else
            fprintf(stderr, "livedump: event %u not printed: out of memory\n", ev->id);
    } else if (o->events == CLI_EVENTS_TEXT) {
        ld_event_format_message(ev, buf, sizeof buf);
        printf("[%3u %-11s %-11s] %s", ev->id, ld_channel_name(ev->channel), ld_level_name(ev->level), buf);
        /* The generic event's message says nothing by itself: show what it carries. */
        const char *what = ld_event_get_str(ev, "LiveDumpEventDescription");
        if (what) {
            printf(" %s.", what);
            for (int i = 1; i <= 8; i++) {
                char name[32], value[32];
                uint64_t v;
                snprintf(name, sizeof name, "Parameter%dName", i);
                snprintf(value, sizeof value, "Parameter%dValue", i);
                const char *n = ld_event_get_str(ev, name);
                if (n && *n && ld_event_get_u64(ev, value, &v))
                    printf(" %s=%" PRIu64, n, v);
            }
        }
        printf("\n");
    }
    fflush(stdout);
}

ld_status cli_on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    cli_output *o = arg;
    if (!o->progress_tty || total == 0)
        return LD_STATUS_SUCCESS;
    fprintf(stderr, "\r\033[K%-7s %3u%% (%" PRIu64 " / %" PRIu64 " pages)", phase,
            (unsigned)(done * 100 / total), done, total);
    o->progress_shown = done < total;
    if (!o->progress_shown)
        fputs("\r\033[K", stderr);
    fflush(stderr);
    return LD_STATUS_SUCCESS;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void cli_print_summary(const ld_result *r, const char *path)
{
    uint32_t page_size = r->page_size;
    printf("\nlivedump: %s (%s)\n", ld_ok(r->status) ? "dump written" : "capture failed",
           ld_status_name(r->status) ? ld_status_name(r->status) : "unknown status");
    if (!ld_ok(r->status))
        return;
    printf("  file            %s (%" PRIu64 " bytes, header|primary|secondary %" PRIu64 "|%" PRIu64 "|%" PRIu64 ")\n",
           path, r->file_bytes, r->header_bytes, r->primary_bytes, r->secondary_bytes);
    printf("  pages           %" PRIu64 " (%" PRIu64 " MiB), required %" PRIu64 ", left out %" PRIu64 "\n", r->pages,
           r->pages * page_size >> 20, r->pages_required, r->pages_left_out);
    printf("  by kind        ");
    int shown = 0;
    for (int k = 0; k < LD_PAGE_KIND_COUNT; k++) {
        if (!r->pages_by_kind[k])
            continue;
        printf("%s %s %" PRIu64, shown++ % 4 == 0 && shown > 1 ? "\n                 " : "",
               ld_page_kind_name((ld_page_kind)k), r->pages_by_kind[k]);
    }
    printf("\n");
    printf("  mirroring       %s: phase 0 %" PRIu64 " pages in %.1f ms, phase 1 %u passes %" PRIu64 " pages in %.1f ms\n",
           r->mirrored ? "on" : (r->machine_stopped ? "off (pages copied while stopped)" : "off (pages copied in the final pass)"), r->mirror_phase0_pages, ms(r->mirror_phase0_ns),
           r->mirror_passes, r->mirror_phase1_pages, ms(r->mirror_phase1_ns));
    if (r->machine_stopped)
        printf("  machine stopped sizing %.3f ms, capture %.3f ms (corral %.3f ms, %" PRIu64 " pages copied stopped)\n",
               ms(r->sizing_stopped_ns), ms(r->capture_stopped_ns), ms(r->capture_quiesce.corral_ns),
               r->quiesce_copied_pages);
    else
        printf("  machine         not stopped (kernel kept running); final pass %.3f ms, %" PRIu64 " pages copied in it\n",
               ms(r->capture_stopped_ns), r->quiesce_copied_pages);
    printf("  durations       capture %.1f ms, write %.1f ms\n", ms(r->capture_ns), ms(r->write_ns));
}
