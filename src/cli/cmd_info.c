/* `livedump info FILE [--page ADDR] [--json]`: what a .dmp holds.
 * `livedump verify FILE`: re-read every page and check the file against
 * itself. Both use the library's reader (livedump/dmp.h). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "livedump/dmp.h"

static const char info_usage[] =
    "usage: livedump info FILE [--page ADDR] [--json]\n"
    "\n"
    "  Print a Windows kernel dump's header, bug check, runs, pages, secondary\n"
    "  blobs and processor contexts.\n"
    "  --page ADDR   also print the bytes of the physical page holding ADDR\n"
    "  --json        one JSON object instead of text\n";

static const char verify_usage[] =
    "usage: livedump verify FILE\n"
    "\n"
    "  Re-read every page of a Windows kernel dump and report inconsistencies\n"
    "  (bitmap vs page count vs file size, runs, secondary data). Exit status 0\n"
    "  when none is found, 1 otherwise.\n";

static void format_guid(const uint8_t g[16], char out[39])
{
    snprintf(out, 39, "{%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x}", g[3], g[2], g[1],
             g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

static const char *blob_name(const uint8_t g[16])
{
    static const uint8_t hv[16] = LD_DMP_GUID_HYPERVISOR, ipt[16] = LD_DMP_GUID_IPT,
                         cpus[16] = LD_DMP_GUID_CPU_CONTEXTS;
    if (!memcmp(g, hv, 16))
        return "hypervisor";
    if (!memcmp(g, ipt, 16))
        return "ipt";
    if (!memcmp(g, cpus, 16))
        return "cpu-contexts";
    return "";
}

static const char *type_name(uint32_t t)
{
    switch (t) {
    case LD_DMP_TYPE_FULL: return "full";
    case LD_DMP_TYPE_BITMAP_FULL: return "bitmap";
    case LD_DMP_TYPE_BITMAP_KERNEL: return "bitmap (kernel)";
    default: return "unknown";
    }
}

/* A bug check parameter that spells ASCII, read from its top byte down, as
 * Task Manager's "Taskmgr"; "" otherwise. */
static void param_text(uint64_t v, char out[9])
{
    size_t n = 0;
    out[0] = 0;
    if (!v)
        return;
    for (int i = 7; i >= 0; i--) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        if (c == 0 && n == 0)
            continue;
        if (c < 0x20 || c >= 0x7f) {
            out[0] = 0;
            return;
        }
        out[n++] = (char)c;
    }
    out[n] = 0;
}

static void format_time(uint64_t filetime, char *out, size_t cap)
{
    const uint64_t epoch_diff = 11644473600ull; /* 1601 -> 1970, seconds */
    uint64_t secs = filetime / 10000000u;
    if (!filetime || secs < epoch_diff) {
        snprintf(out, cap, "unknown");
        return;
    }
    time_t t = (time_t)(secs - epoch_diff);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, cap, "unknown");
}

static void print_context_text(const ld_cpu_context *c, bool capturing)
{
    printf("  cpu %-3u%s", c->cpu, capturing ? " (took the dump)" : "");
    if (c->valid & LD_CTX_GPRS)
        printf(" rip=0x%016" PRIx64 " rsp=0x%016" PRIx64 " rax=0x%016" PRIx64 " rflags=0x%" PRIx64, c->rip,
               c->gpr[LD_RSP], c->gpr[LD_RAX], c->rflags);
    if (c->valid & LD_CTX_CONTROL)
        printf(" cr3=0x%" PRIx64, c->cr3);
    if (c->valid & LD_CTX_SEGMENTS)
        printf(" cs=0x%x ss=0x%x", c->cs, c->ss);
    if (c->valid & LD_CTX_THREAD)
        printf(" thread=0x%" PRIx64, c->thread_id);
    if (!(c->valid & (LD_CTX_GPRS | LD_CTX_CONTROL)))
        printf(" (registers not captured)");
    printf("\n");
}

static void print_context_json(const ld_cpu_context *c, bool capturing)
{
    printf("{\"cpu\":%u,\"capturing\":%s,\"valid\":%u", c->cpu, capturing ? "true" : "false", c->valid);
    if (c->valid & LD_CTX_GPRS) {
        static const char *const names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                              "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
        for (int i = 0; i < 16; i++)
            printf(",\"%s\":\"0x%" PRIx64 "\"", names[i], c->gpr[i]);
        printf(",\"rip\":\"0x%" PRIx64 "\",\"rflags\":\"0x%" PRIx64 "\"", c->rip, c->rflags);
    }
    if (c->valid & LD_CTX_CONTROL)
        printf(",\"cr0\":\"0x%" PRIx64 "\",\"cr3\":\"0x%" PRIx64 "\",\"cr4\":\"0x%" PRIx64 "\"", c->cr0, c->cr3, c->cr4);
    if (c->valid & LD_CTX_SEGMENTS)
        printf(",\"cs\":%u,\"ss\":%u,\"ds\":%u,\"es\":%u,\"fs\":%u,\"gs\":%u", c->cs, c->ss, c->ds, c->es, c->fs, c->gs);
    if (c->valid & LD_CTX_FLOAT)
        printf(",\"mxcsr\":\"0x%x\"", c->mxcsr);
    if (c->valid & LD_CTX_THREAD)
        printf(",\"thread\":\"0x%" PRIx64 "\"", c->thread_id);
    printf("}");
}

/* Calls fn for each run of consecutive present pages, in PFN order. */
static void present_ranges(const ld_dmp *d, void (*fn)(void *arg, uint64_t first, uint64_t count), void *arg)
{
    uint64_t first = ld_dmp_next_page(d, 0);
    while (first != UINT64_MAX) {
        uint64_t end = first + 1;
        while (ld_dmp_page_present(d, end))
            end++;
        fn(arg, first, end - first);
        first = ld_dmp_next_page(d, end);
    }
}

#define TEXT_RANGES_SHOWN 16

typedef struct range_printer {
    uint64_t shown, more, more_pages;
    bool json;
} range_printer;

static void print_range(void *arg, uint64_t first, uint64_t count)
{
    range_printer *rp = arg;
    if (rp->json) {
        printf("%s{\"first_pfn\":%" PRIu64 ",\"pages\":%" PRIu64 "}", rp->shown++ ? "," : "", first, count);
        return;
    }
    if (rp->shown < TEXT_RANGES_SHOWN) {
        rp->shown++;
        printf("  present       PFN 0x%" PRIx64 " - 0x%" PRIx64 " (%" PRIu64 " pages)\n", first, first + count, count);
    } else {
        rp->more++;
        rp->more_pages += count;
    }
}

static void print_text(ld_dmp *d, const char *path)
{
    const ld_dmp_info *in = ld_dmp_get_info(d);
    printf("file            %s (%" PRIu64 " bytes; header|primary|secondary %" PRIu64 "|%" PRIu64 "|%" PRIu64 ")\n",
           path, in->file_bytes, in->header_bytes, in->primary_bytes, in->secondary_bytes);
    printf("dump type       %u (%s%s%s)\n", in->dump_type, type_name(in->dump_type),
           in->bitmap_signature[0] ? ", " : "", in->bitmap_signature);
    printf("bug check       0x%08X%s\n", in->bugcheck_code,
           in->bugcheck_code == LD_BUGCHECK_LIVE_SYSTEM_DUMP ? " (LIVE_SYSTEM_DUMP)" : "");
    for (int i = 0; i < 4; i++) {
        char text[9];
        param_text(in->bugcheck_params[i], text);
        printf("  parameter %d   0x%016" PRIx64 "%s%s%s\n", i + 1, in->bugcheck_params[i], text[0] ? " (\"" : "",
               text, text[0] ? "\")" : "");
    }
    printf("version         %u.%u, machine 0x%X, %u processors\n", in->major_version, in->minor_version,
           in->machine_type, in->processor_count);
    printf("kernel          DirectoryTableBase 0x%" PRIx64 "  KdDebuggerDataBlock 0x%" PRIx64 "\n",
           in->directory_table_base, in->debugger_data_block);
    printf("                PsLoadedModuleList 0x%" PRIx64 "  PsActiveProcessHead 0x%" PRIx64
           "  PfnDataBase 0x%" PRIx64 "\n",
           in->loaded_module_list, in->active_process_list, in->pfn_database);
    char when[64];
    format_time(in->system_time, when, sizeof when);
    printf("system time     %s, uptime %.3f s\n", when, (double)in->system_uptime / 1e7);
    printf("attributes      0x%X%s, required dump space %" PRIu64 " bytes\n", in->attributes,
           (in->attributes & 0x10) ? " (live dump)" : "", in->required_dump_space);
    printf("comment         \"%s\"\n", in->comment);
    if (in->runs) {
        printf("runs            %zu, %" PRIu64 " pages\n", in->run_count, in->run_pages);
        for (size_t i = 0; i < in->run_count; i++)
            printf("  run %-3zu       PFN 0x%" PRIx64 " - 0x%" PRIx64 " (%" PRIu64 " pages)\n", i, in->runs[i].first_pfn,
                   in->runs[i].first_pfn + in->runs[i].page_count, in->runs[i].page_count);
    } else {
        printf("runs            not set in the header\n");
    }
    /* The bitmap header's fields as written, under their own names; the
     * counts below are what the bitmap itself holds. */
    if (in->bitmap_signature[0])
        printf("bitmap header   %s: FirstPage 0x%" PRIx64 ", TotalPresentPages %" PRIu64 ", BitmapSize %" PRIu64 " bits\n",
               in->bitmap_signature, in->first_page_offset, in->total_present_pages, in->bitmap_size);
    printf("pages           %" PRIu64 " present (%" PRIu64 " MiB), first at offset 0x%" PRIx64, in->page_count,
           in->page_count >> 8, in->first_page_offset);
    if (in->pfn_limit)
        printf(", highest present PFN 0x%" PRIx64 "\n", in->pfn_limit - 1);
    else
        printf("\n");
    range_printer rp = {0, 0, 0, false};
    present_ranges(d, print_range, &rp);
    if (rp.more)
        printf("  present       ... %" PRIu64 " more ranges (%" PRIu64 " pages); --json lists all\n", rp.more,
               rp.more_pages);
    printf("secondary       %zu blobs\n", in->blob_count);
    for (size_t i = 0; i < in->blob_count; i++) {
        ld_dmp_blob b;
        if (!ld_ok(ld_dmp_get_blob(d, i, &b)))
            continue;
        char g[39];
        format_guid(b.guid, g);
        printf("  blob %-3zu      %s %" PRIu64 " bytes at 0x%" PRIx64 " %s\n", i, g, b.size, b.offset, blob_name(b.guid));
    }
    printf("contexts        %u\n", in->context_count);
    for (uint32_t i = 0; i < in->context_count; i++) {
        ld_cpu_context c;
        bool cap = false;
        if (ld_ok(ld_dmp_context(d, i, &c, &cap)))
            print_context_text(&c, cap);
    }
}

static void print_json(ld_dmp *d, const char *path)
{
    const ld_dmp_info *in = ld_dmp_get_info(d);
    printf("{\"file\":");
    cli_json_string(path);
    printf(",\"file_bytes\":%" PRIu64 ",\"header_bytes\":%" PRIu64 ",\"primary_bytes\":%" PRIu64
           ",\"secondary_bytes\":%" PRIu64,
           in->file_bytes, in->header_bytes, in->primary_bytes, in->secondary_bytes);
    printf(",\"dump_type\":%u,\"bitmap_signature\":\"%s\",\"bugcheck_code\":\"0x%X\",\"bugcheck_parameters\":[",
           in->dump_type, in->bitmap_signature, in->bugcheck_code);
    for (int i = 0; i < 4; i++)
        printf("%s\"0x%" PRIx64 "\"", i ? "," : "", in->bugcheck_params[i]);
    printf("],\"major_version\":%u,\"minor_version\":%u,\"machine_type\":\"0x%X\",\"processors\":%u", in->major_version,
           in->minor_version, in->machine_type, in->processor_count);
    printf(",\"directory_table_base\":\"0x%" PRIx64 "\",\"pfn_database\":\"0x%" PRIx64
           "\",\"loaded_module_list\":\"0x%" PRIx64 "\",\"active_process_list\":\"0x%" PRIx64
           "\",\"debugger_data_block\":\"0x%" PRIx64 "\"",
           in->directory_table_base, in->pfn_database, in->loaded_module_list, in->active_process_list,
           in->debugger_data_block);
    printf(",\"system_time\":%" PRIu64 ",\"system_uptime\":%" PRIu64 ",\"attributes\":%u,\"required_dump_space\":%" PRIu64
           ",\"comment\":",
           in->system_time, in->system_uptime, in->attributes, in->required_dump_space);
    cli_json_string(in->comment);
    printf(",\"runs\":[");
    for (size_t i = 0; in->runs && i < in->run_count; i++)
        printf("%s{\"first_pfn\":%" PRIu64 ",\"pages\":%" PRIu64 "}", i ? "," : "", in->runs[i].first_pfn,
               in->runs[i].page_count);
    if (in->runs)
        printf("],\"number_of_pages\":%" PRIu64, in->run_pages);
    else
        printf("],\"number_of_pages\":null");
    if (in->bitmap_signature[0])
        printf(",\"bitmap_header\":{\"signature\":\"%s\",\"first_page\":%" PRIu64 ",\"total_present_pages\":%" PRIu64
               ",\"bitmap_size\":%" PRIu64 "}",
               in->bitmap_signature, in->first_page_offset, in->total_present_pages, in->bitmap_size);
    else
        printf(",\"bitmap_header\":null");
    printf(",\"pages\":%" PRIu64 ",\"first_page_offset\":%" PRIu64, in->page_count, in->first_page_offset);
    if (in->pfn_limit)
        printf(",\"highest_present_pfn\":%" PRIu64 ",\"present\":[", in->pfn_limit - 1);
    else
        printf(",\"highest_present_pfn\":null,\"present\":[");
    range_printer rp = {0, 0, 0, true};
    present_ranges(d, print_range, &rp);
    printf("],\"blobs\":[");
    for (size_t i = 0; i < in->blob_count; i++) {
        ld_dmp_blob b;
        char g[39];
        if (!ld_ok(ld_dmp_get_blob(d, i, &b)))
            continue;
        format_guid(b.guid, g);
        printf("%s{\"guid\":\"%s\",\"name\":\"%s\",\"offset\":%" PRIu64 ",\"size\":%" PRIu64 "}", i ? "," : "", g,
               blob_name(b.guid), b.offset, b.size);
    }
    printf("],\"contexts\":[");
    for (uint32_t i = 0; i < in->context_count; i++) {
        ld_cpu_context c;
        bool cap = false;
        if (!ld_ok(ld_dmp_context(d, i, &c, &cap)))
            continue;
        if (i)
            printf(",");
        print_context_json(&c, cap);
    }
    printf("]");
}

/* The page holding physical address addr: hex + ASCII, or its JSON field. */
static int print_page(ld_dmp *d, uint64_t addr, bool json)
{
    uint64_t pfn = addr / 4096;
    uint8_t page[4096];
    ld_status st = ld_dmp_read_page(d, pfn, page);
    if (st == LD_STATUS_NOT_FOUND) {
        if (json)
            printf(",\"page\":{\"address\":\"0x%" PRIx64 "\",\"present\":false}", pfn * 4096);
        else
            printf("page 0x%" PRIx64 ": not in the dump\n", pfn * 4096);
        return CLI_EXIT_FAILED;
    }
    if (!ld_ok(st)) {
        /* The caller closes the JSON object, as on every other path. */
        cli_status_error(st, "cannot read page 0x%" PRIx64, pfn * 4096);
        return CLI_EXIT_FAILED;
    }
    if (json) {
        printf(",\"page\":{\"address\":\"0x%" PRIx64 "\",\"present\":true,\"hex\":\"", pfn * 4096);
        for (size_t i = 0; i < sizeof page; i++)
            printf("%02x", page[i]);
        printf("\"}");
        return CLI_EXIT_OK;
    }
    printf("page 0x%" PRIx64 " (file offset 0x%" PRIx64 "):\n", pfn * 4096, ld_dmp_page_offset(d, pfn));
    for (size_t line = 0; line < sizeof page; line += 16) {
        printf("%016" PRIx64 " ", pfn * 4096 + line);
        for (size_t i = 0; i < 16; i++)
            printf("%s%02x", i == 8 ? "  " : " ", page[line + i]);
        printf("  |");
        for (size_t i = 0; i < 16; i++)
            putchar(page[line + i] >= 0x20 && page[line + i] < 0x7f ? page[line + i] : '.');
        printf("|\n");
    }
    return CLI_EXIT_OK;
}

static ld_dmp *open_or_report(const char *path)
{
    ld_dmp *d = NULL;
    ld_error err;
    ld_status st = ld_dmp_open(path, &d, &err);
    if (!ld_ok(st)) {
        fprintf(stderr, "livedump: %s: %s", path, err.message);
        if (err.offset != LD_ERROR_NO_OFFSET)
            fprintf(stderr, " (at offset 0x%" PRIx64 ")", err.offset);
        fprintf(stderr, ": %s (0x%08X)\n", ld_status_describe(st), (unsigned)st);
        return NULL;
    }
    return d;
}

/* An argument of `cmd` that is no option it knows: an unknown option, or
 * its one FILE (*path). False, said, when it is neither. */
static bool file_argument(const char *cmd, const char *arg, const char **path)
{
    if (arg[0] == '-' && arg[1]) {
        cli_usage_error(cmd, "unknown option '%s'", arg);
        return false;
    }
    if (*path) {
        cli_usage_error(cmd, "%s takes one FILE", cmd);
        return false;
    }
    *path = arg;
    return true;
}

/* The dump file `cmd` was given, open; NULL when it was given none (said)
 * or it cannot be opened (said); *rc is the exit code then. */
static ld_dmp *open_file_argument(const char *cmd, const char *path, int *rc)
{
    *rc = CLI_EXIT_USAGE;
    if (!path) {
        cli_usage_error(cmd, "%s needs a FILE", cmd);
        return NULL;
    }
    *rc = CLI_EXIT_FAILED;
    return open_or_report(path);
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, want_page = false;
    uint64_t addr = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(info_usage, stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--page")) {
            if (i + 1 >= argc) {
                cli_usage_error("info", "option '--page' needs a value");
                return CLI_EXIT_USAGE;
            }
            if (cli_parse_u64(argv[++i], &addr)) {
                cli_usage_error("info", "invalid physical address: '%s'", argv[i]);
                return CLI_EXIT_USAGE;
            }
            want_page = true;
        } else if (!file_argument("info", argv[i], &path)) {
            return CLI_EXIT_USAGE;
        }
    }
    int rc;
    ld_dmp *d = open_file_argument("info", path, &rc);
    if (!d)
        return rc;
    rc = CLI_EXIT_OK;
    if (json) {
        print_json(d, path);
        if (want_page)
            rc = print_page(d, addr, true);
        printf("}\n");
    } else {
        print_text(d, path);
        if (want_page)
            rc = print_page(d, addr, false);
    }
    ld_dmp_close(d);
    return rc;
}

static void report_problem(void *arg, uint64_t offset, const char *message)
{
    const char *path = arg;
    printf("%s: at 0x%" PRIx64 ": %s\n", path, offset, message);
}

int cmd_verify(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(verify_usage, stdout);
            return CLI_EXIT_OK;
        } else if (!file_argument("verify", argv[i], &path)) {
            return CLI_EXIT_USAGE;
        }
    }
    int rc;
    ld_dmp *d = open_file_argument("verify", path, &rc);
    if (!d)
        return rc;
    uint64_t problems = 0;
    ld_status st = ld_dmp_verify(d, report_problem, (void *)path, &problems);
    const ld_dmp_info *in = ld_dmp_get_info(d);
    rc = CLI_EXIT_OK;
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot verify '%s'", path);
        rc = CLI_EXIT_FAILED;
    } else if (problems) {
        printf("%s: %" PRIu64 " problem%s found\n", path, problems, problems == 1 ? "" : "s");
        rc = CLI_EXIT_FAILED;
    } else {
        printf("%s: ok: %" PRIu64 " pages re-read, %zu secondary blobs, sizes consistent\n", path, in->page_count,
               in->blob_count);
    }
    ld_dmp_close(d);
    return rc;
}
