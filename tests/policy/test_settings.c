/* The policy settings: Windows defaults, every setting valid and invalid,
 * settings files (errors name the line, all or nothing, unreadable files),
 * atomic saving, and what the settings do to an engine (events 271-273,
 * 113). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evlog.h"
#include "harness.h"
#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/policy.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/livedump-policy-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    ld_settings s;
    memset(&s, 0xff, sizeof s);
    ld_settings_init(&s);
    /* The Windows defaults (CrashControl, FullLiveKernelReports). */
    assert_int_equal(s.allow_live_dump, 1);
    assert_int_equal(s.system_throttle_hours, 120);
    assert_int_equal(s.component_throttle_hours, 168);
    assert_int_equal(s.full_live_reports_max, 1);
    assert_string_equal(s.live_kernel_reports_path, "/var/lib/livedump/LiveKernelReports");
    assert_string_equal(s.live_kernel_reports_path, "/var/lib/livedump/LiveKernelReports");
    assert_int_equal(s.always_keep_memory_dump, 0);
    assert_int_equal(s.delete_live_mini_dumps, 0);
    assert_int_equal(s.dump_file_size_mb, 0);
    assert_int_equal(s.dynamic_low_memory_threshold, 1);
    assert_int_equal(ld_settings_count(), 9);
    assert_null(ld_settings_info(9));
    /* Every listed setting reads back its documented default. */
    for (size_t i = 0; i < ld_settings_count(); i++) {
        const ld_setting_info *info = ld_settings_info(i);
        char v[LD_SETTINGS_PATH_MAX];
        assert_int_equal(ld_settings_get(&s, info->name, v, sizeof v), LD_STATUS_SUCCESS);
        assert_string_equal(v, info->default_value);
        assert_true(info->unit[0] && info->description[0]);
    }
}

typedef struct value_case {
    const char *key, *value;
    bool ok;
    const char *readback; /* when ok */
} value_case;

static void test_every_setting_valid_and_invalid(void **state)
{
    (void)state;
    static const value_case cases[] = {
        {"AllowLiveDump", "0", true, "0"}, {"allowlivedump", "1", true, "1"},
        {"AllowLiveDump", "2", false, 0}, {"AllowLiveDump", "yes", false, 0}, {"AllowLiveDump", "", false, 0},
        {"SystemThrottleThreshold", "0", true, "0"}, {"SystemThrottleThreshold", "24", true, "24"},
        {"SystemThrottleThreshold", "0x10", true, "16"}, {"SystemThrottleThreshold", "87600", true, "87600"},
        {"SystemThrottleThreshold", "87601", false, 0}, {"SystemThrottleThreshold", "-1", false, 0},
        {"SystemThrottleThreshold", "12h", false, 0}, {"SystemThrottleThreshold", "99999999999999999999", false, 0},
        {"ComponentThrottleThreshold", "0", true, "0"}, {"COMPONENTTHROTTLETHRESHOLD", "336", true, "336"},
        {"ComponentThrottleThreshold", "1.5", false, 0}, {"ComponentThrottleThreshold", "+1", false, 0},
        {"FullLiveReportsMax", "0", true, "0"}, {"FullLiveReportsMax", "10", true, "10"},
        {"FullLiveReportsMax", "101", false, 0}, {"FullLiveReportsMax", "ten", false, 0},
        {"LiveKernelReportsPath", "/srv/dumps", true, "/srv/dumps"},
        {"LiveKernelReportsPath", "relative/dir", false, 0}, {"LiveKernelReportsPath", "/srv/../etc", false, 0},
        {"LiveKernelReportsPath", "/srv/./x", false, 0}, {"LiveKernelReportsPath", "/srv/a\tb", false, 0},
        {"LiveKernelReportsPath", "", false, 0},
        {"AlwaysKeepMemoryDump", "1", true, "1"}, {"AlwaysKeepMemoryDump", "3", false, 0},
        {"DeleteLiveMiniDumps", "1", true, "1"}, {"DeleteLiveMiniDumps", "-0", false, 0},
        {"DumpFileSize", "0", true, "0"}, {"DumpFileSize", "2048", true, "2048"},
        {"DumpFileSize", "4194304", true, "4194304"}, {"DumpFileSize", "4194305", false, 0},
        {"DumpFileSize", "1G", false, 0},
        {"DynamicLowMemoryThreshold", "0", true, "0"}, {"DynamicLowMemoryThreshold", "on", false, 0},
        /* White space before or after a value: refused, whichever it is
         * (strtoull would skip a leading tab, newline, CR, VT or FF). */
        {"FullLiveReportsMax", " 5", false, 0}, {"FullLiveReportsMax", "\t5", false, 0},
        {"FullLiveReportsMax", "\n5", false, 0}, {"FullLiveReportsMax", "\r5", false, 0},
        {"FullLiveReportsMax", "\v5", false, 0}, {"FullLiveReportsMax", "\f5", false, 0},
        {"FullLiveReportsMax", "5 ", false, 0}, {"FullLiveReportsMax", "5\t", false, 0},
        {"FullLiveReportsMax", "5\n", false, 0}, {"AllowLiveDump", "\t0", false, 0},
        {"SystemThrottleThreshold", "\t0x10", false, 0}, {"DumpFileSize", "\v0", false, 0},
        {"LiveKernelReportsPath", "/srv/dumps ", false, 0}, {"LiveKernelReportsPath", " /srv/dumps", false, 0},
        {"LiveKernelReportsPath", "/srv/dumps\t", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const value_case *c = &cases[i];
        ld_settings s, before;
        ld_settings_init(&s);
        before = s;
        ld_error err;
        ld_status st = ld_settings_set(&s, c->key, c->value, &err);
        print_message("%s = '%s' -> %s %s\n", c->key, c->value, ld_status_name(st), err.message);
        if (c->ok) {
            assert_int_equal(st, LD_STATUS_SUCCESS);
            char v[LD_SETTINGS_PATH_MAX];
            assert_int_equal(ld_settings_get(&s, c->key, v, sizeof v), LD_STATUS_SUCCESS);
            assert_string_equal(v, c->readback);
        } else {
            assert_int_equal(st, LD_STATUS_INVALID_PARAMETER);
            /* The message names the setting, and nothing changed. */
            assert_true(strncasecmp(err.message, c->key, strlen(c->key)) == 0);
            assert_memory_equal(&s, &before, sizeof s);
        }
    }
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;
    assert_int_equal(ld_settings_set(&s, "AllowLiveDumps", "1", &err), LD_STATUS_NOT_FOUND);
    assert_non_null(strstr(err.message, "unknown setting 'AllowLiveDumps'"));
    char v[16];
    assert_int_equal(ld_settings_get(&s, "Nope", v, sizeof v), LD_STATUS_NOT_FOUND);
    /* The message names the rule, and shows a control character escaped. */
    assert_int_equal(ld_settings_set(&s, "FullLiveReportsMax", "\t5", &err), LD_STATUS_INVALID_PARAMETER);
    assert_string_equal(err.message, "FullLiveReportsMax: '\\t5' has white space before or after the value");
}

static void test_load_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/policy.conf", dir);
    write_file(path, "# live dump policy\n"
                     "\n"
                     "AllowLiveDump = 0\n"
                     "  SystemThrottleThreshold=0  \n"
                     "; Windows-style comment\n"
                     "ComponentThrottleThreshold = 0x30\r\n"
                     "FullLiveReportsMax = 3\n"
                     "LiveKernelReportsPath = /srv/live dumps\n"
                     "AlwaysKeepMemoryDump = 1\n"
                     "DeleteLiveMiniDumps = 1\n"
                     "DumpFileSize = 512\n"
                     "DynamicLowMemoryThreshold = 0\n");
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;
    assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_SUCCESS);
    assert_int_equal(s.allow_live_dump, 0);
    assert_int_equal(s.system_throttle_hours, 0);
    assert_int_equal(s.component_throttle_hours, 48);
    assert_int_equal(s.full_live_reports_max, 3);
    assert_string_equal(s.live_kernel_reports_path, "/srv/live dumps");
    assert_int_equal(s.always_keep_memory_dump, 1);
    assert_int_equal(s.delete_live_mini_dumps, 1);
    assert_int_equal(s.dump_file_size_mb, 512);
    assert_int_equal(s.dynamic_low_memory_threshold, 0);

    /* A file naming some keys changes only those. */
    write_file(path, "FullLiveReportsMax = 5\n");
    assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_SUCCESS);
    assert_int_equal(s.full_live_reports_max, 5);
    assert_int_equal(s.dump_file_size_mb, 512);
}

typedef struct bad_file {
    const char *text;
    const char *message; /* expected in the error, after "PATH:" */
} bad_file;

static void test_load_errors_name_the_line(void **state)
{
    (void)state;
    static const bad_file cases[] = {
        {"AllowLiveDump = 1\n\nFrobnicate = 1\n", ":3: unknown setting 'Frobnicate'"},
        {"# c\nSystemThrottleThreshold = soon\n", ":2: SystemThrottleThreshold: 'soon' is not a number"},
        {"AllowLiveDump 1\n", ":1: expected 'Key = value'"},
        {"FullLiveReportsMax = 2\nfulllivereportsmax = 3\n", ":2: FullLiveReportsMax is set twice"},
        {"LiveKernelReportsPath = dumps\n", ":1: LiveKernelReportsPath: 'dumps' is not an absolute path"},
        {"AllowLiveDump = 1\nDumpFileSize =\n", ":2: DumpFileSize: '' is not a number"},
    };
    char path[128];
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        ld_settings s, before;
        ld_settings_init(&s);
        before = s;
        ld_error err;
        assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_INVALID_PARAMETER);
        print_message("%s\n", err.message);
        assert_true(strncmp(err.message, path, strlen(path)) == 0);
        assert_non_null(strstr(err.message, cases[i].message));
        /* All or nothing: the good lines before the bad one did not apply. */
        assert_memory_equal(&s, &before, sizeof s);
    }
    /* Unreadable: missing, a symlink, a folder, binary. */
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;
    char p2[160];
    snprintf(p2, sizeof p2, "%s/missing.conf", dir);
    assert_int_equal(ld_settings_load(&s, p2, &err), LD_STATUS_NO_SUCH_FILE);
    assert_non_null(strstr(err.message, "missing.conf: cannot read"));
    write_file(path, "AllowLiveDump = 0\n");
    snprintf(p2, sizeof p2, "%s/link.conf", dir);
    assert_int_equal(symlink(path, p2), 0);
    assert_int_equal(ld_settings_load(&s, p2, &err), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(s.allow_live_dump, 1);
    assert_int_equal(ld_settings_load(&s, dir, &err), LD_STATUS_ACCESS_DENIED);
    FILE *f = fopen(path, "wb");
    fwrite("AllowLiveDump = 0\n\0\1", 1, 20, f);
    fclose(f);
    assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "not a text file"));
}

/* The policy decides what secrets are dumped: a file others could have
 * changed is refused, naming the file, and changes nothing. */
static void assert_policy_refused(const char *path, const char *why)
{
    ld_settings s, before;
    ld_settings_init(&s);
    before = s;
    ld_error err;
    assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_ACCESS_DENIED);
    print_message("%s\n", err.message);
    assert_true(strncmp(err.message, path, strlen(path)) == 0);
    assert_non_null(strstr(err.message, why));
    assert_memory_equal(&s, &before, sizeof s);
}

static void test_policy_file_owner_and_mode(void **state)
{
    (void)state;
    char path[128], link[128], fifo[128];
    snprintf(path, sizeof path, "%s/owned.conf", dir);
    write_file(path, "AllowLiveDump = 0\n");
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;
    /* Ours, readable by others: fine. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ld_settings_load(&s, path, &err), LD_STATUS_SUCCESS);
    assert_int_equal(s.allow_live_dump, 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_policy_refused(path, "writable by group or others");
    assert_int_equal(chmod(path, 0620), 0);
    assert_policy_refused(path, "writable by group or others");
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(link, sizeof link, "%s/owned-link.conf", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_policy_refused(link, "symlink");
    snprintf(fifo, sizeof fifo, "%s/owned-fifo.conf", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_policy_refused(fifo, "not a regular file");
    if (geteuid() == 0) {
        /* Owned by someone else, neither root nor us. */
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_policy_refused(path, "owned by another user");
    } else {
        print_message("not root: the foreign owner case is not run\n");
    }
}

/* Its folders too: a symlink anywhere in the path, a folder writable by
 * group or others (unless sticky, as /tmp), a folder owned by another
 * user. Saving is refused the same way, and writes nothing. */
static void test_policy_folders(void **state)
{
    (void)state;
    char real[128], link[128], p[256], open_dir[128], sticky[128], deep[128], target[256];
    snprintf(real, sizeof real, "%s/real", dir);
    assert_int_equal(mkdir(real, 0700), 0);
    snprintf(p, sizeof p, "%s/policy.conf", real);
    write_file(p, "AllowLiveDump = 0\n");
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;
    assert_int_equal(ld_settings_load(&s, p, &err), LD_STATUS_SUCCESS);
    assert_int_equal(s.allow_live_dump, 0);

    /* The folder is a symlink to that good folder. */
    snprintf(link, sizeof link, "%s/linked", dir);
    assert_int_equal(symlink(real, link), 0);
    snprintf(p, sizeof p, "%s/policy.conf", link);
    assert_policy_refused(p, "symlink in the path");
    /* A symlink higher up: DIR/up -> DIR, then DIR/up/real/policy.conf. */
    snprintf(deep, sizeof deep, "%s/up", dir);
    assert_int_equal(symlink(dir, deep), 0);
    snprintf(p, sizeof p, "%s/real/policy.conf", deep);
    assert_policy_refused(p, "symlink in the path");
    ld_settings_init(&s);
    assert_int_equal(ld_settings_save(&s, p), LD_STATUS_ACCESS_DENIED);
    snprintf(target, sizeof target, "%s/policy.conf", real);
    ld_settings check;
    ld_settings_init(&check);
    assert_int_equal(ld_settings_load(&check, target, &err), LD_STATUS_SUCCESS);
    assert_int_equal(check.allow_live_dump, 0); /* the save did not go through the symlink */

    /* A folder others may write: refused, also as a folder above. */
    snprintf(open_dir, sizeof open_dir, "%s/open", dir);
    assert_int_equal(mkdir(open_dir, 0700), 0);
    snprintf(p, sizeof p, "%s/policy.conf", open_dir);
    write_file(p, "AllowLiveDump = 0\n");
    assert_int_equal(chmod(open_dir, 0777), 0);
    assert_policy_refused(p, "folder writable by group or others");
    assert_int_equal(chmod(open_dir, 0770), 0);
    assert_policy_refused(p, "mode 770");
    ld_settings_init(&s);
    assert_int_equal(ld_settings_save(&s, p), LD_STATUS_ACCESS_DENIED);
    char below[192];
    snprintf(below, sizeof below, "%s/sub", open_dir);
    assert_int_equal(mkdir(below, 0700), 0);
    snprintf(p, sizeof p, "%s/policy.conf", below);
    write_file(p, "AllowLiveDump = 0\n");
    assert_policy_refused(p, "folder writable by group or others");
    assert_int_equal(chmod(open_dir, 0755), 0);
    assert_int_equal(ld_settings_load(&s, p, &err), LD_STATUS_SUCCESS);

    /* Sticky and writable by all, as /tmp: others cannot replace our file,
     * and a file of theirs fails the owner check. Accepted. */
    snprintf(sticky, sizeof sticky, "%s/sticky", dir);
    assert_int_equal(mkdir(sticky, 0700), 0);
    assert_int_equal(chmod(sticky, 01777), 0);
    snprintf(p, sizeof p, "%s/policy.conf", sticky);
    write_file(p, "AllowLiveDump = 0\n");
    assert_int_equal(chmod(p, 0600), 0);
    ld_settings_init(&s);
    assert_int_equal(ld_settings_load(&s, p, &err), LD_STATUS_SUCCESS);
    assert_int_equal(s.allow_live_dump, 0);

    if (geteuid() == 0) {
        /* A folder owned by someone else, neither root nor us. */
        assert_int_equal(chown(real, 65534, 65534), 0);
        snprintf(p, sizeof p, "%s/policy.conf", real);
        assert_policy_refused(p, "folder owned by another user");
        assert_int_equal(chown(real, 0, 0), 0);
    } else {
        print_message("not root: the foreign folder owner case is not run\n");
    }
}

static void test_save_round_trip(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/saved.conf", dir);
    ld_settings a, b;
    ld_settings_init(&a);
    assert_int_equal(ld_settings_set(&a, "ComponentThrottleThreshold", "7", NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_set(&a, "LiveKernelReportsPath", "/srv/x", NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_save(&a, path), LD_STATUS_SUCCESS);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    ld_settings_init(&b);
    ld_error err;
    assert_int_equal(ld_settings_load(&b, path, &err), LD_STATUS_SUCCESS);
    assert_memory_equal(&a, &b, sizeof a);
    /* Saving again replaces the file (same name, new content). */
    assert_int_equal(ld_settings_set(&a, "AllowLiveDump", "0", NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_save(&a, path), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_load(&b, path, &err), LD_STATUS_SUCCESS);
    assert_int_equal(b.allow_live_dump, 0);
}

/* The settings drive an engine: AllowLiveDump 0 at creation is event 273
 * and refuses captures; applying 1 is 271 "Set" + 272; DumpFileSize is the
 * limit event 113 reports. */
static void test_settings_drive_the_engine(void **state)
{
    (void)state;
    ld_settings s;
    ld_settings_init(&s);
    assert_int_equal(ld_settings_set(&s, "AllowLiveDump", "0", NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_set(&s, "DumpFileSize", "48", NULL), LD_STATUS_SUCCESS);
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    ld_engine_destroy(h.engine);
    evlog *log = evlog_new();
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    ld_settings_engine_options(&s, &opts);
    opts.on_event = evlog_fn;
    opts.on_event_arg = log;
    assert_int_equal(ld_engine_create(h.hal, &opts, &h.engine), LD_STATUS_SUCCESS);
    assert_string_equal(evlog_str(evlog_nth(log, 271, 0), "OperationType"), "Query");
    assert_int_equal(evlog_u64(evlog_nth(log, 273, 0), "PolicyValue"), 0);
    ld_capture_request req;
    ld_capture_request_init(&req);
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(evlog_u64(evlog_last(log, 2), "NTStatus"), LD_STATUS_ACCESS_DENIED);
    mem_sink_release(&m);

    assert_int_equal(ld_settings_set(&s, "AllowLiveDump", "1", NULL), LD_STATUS_SUCCESS);
    assert_int_equal(ld_settings_apply(&s, h.engine), LD_STATUS_SUCCESS);
    assert_string_equal(evlog_str(evlog_last(log, 271), "OperationType"), "Set");
    const evlog_entry *e272 = evlog_last(log, 272);
    assert_int_equal(evlog_u64(e272, "PolicyValue"), 1);
    assert_int_equal(evlog_u64(e272, "NTStatus"), LD_STATUS_SUCCESS);
    mem_sink_init(&m);
    ld_result r;
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, &r), LD_STATUS_SUCCESS);
    const evlog_entry *e113 = evlog_last(log, 113);
    assert_int_equal(evlog_u64(e113, "LimitDumpFileSize"), 1);
    assert_int_equal(evlog_u64(e113, "DumpFileSizeLimitInBytes"), 48ull << 20);
    assert_true(m.written <= 48ull << 20);
    mem_sink_release(&m);
    harness_stop(&h);
    evlog_free(log);
}

/* A change through ld_settings_change raises 271 "Set" and 272 whether it
 * worked or not: a bad value or an unknown key is 272 with the failing
 * NTSTATUS and the AllowLiveDump still in force, and changes nothing. */
typedef struct busy_probe {
    ld_settings *settings;
    ld_engine *engine;
    ld_status status;
    bool tried;
} busy_probe;

static ld_status apply_while_capturing(void *arg, const char *phase, uint64_t done, uint64_t total)
{
    (void)phase;
    (void)done;
    (void)total;
    busy_probe *p = arg;
    if (!p->tried) {
        p->tried = true;
        p->status = ld_settings_apply(p->settings, p->engine);
    }
    return LD_STATUS_SUCCESS;
}

static void test_change_events(void **state)
{
    (void)state;
    ld_sim_config cfg;
    harness_config(&cfg);
    harness h;
    harness_start(&h, &cfg, true);
    evlog *log = evlog_new();
    assert_int_equal(ld_engine_subscribe(h.engine, LD_CHANNEL_MASK_ALL, evlog_fn, log), LD_STATUS_SUCCESS);
    ld_settings s;
    ld_settings_init(&s);
    ld_error err;

    assert_int_equal(ld_settings_change(&s, h.engine, "AllowLiveDump", "7", &err),
                     LD_STATUS_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "not 0 or 1"));
    assert_int_equal(s.allow_live_dump, 1);
    assert_string_equal(evlog_str(evlog_last(log, 271), "OperationType"), "Set");
    assert_int_equal(evlog_u64(evlog_last(log, 272), "PolicyValue"), 1);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "NTStatus"), LD_STATUS_INVALID_PARAMETER);

    assert_int_equal(ld_settings_change(&s, h.engine, "AllowLiveDumps", "0", &err), LD_STATUS_NOT_FOUND);
    assert_non_null(strstr(err.message, "unknown setting 'AllowLiveDumps'"));
    assert_int_equal(evlog_u64(evlog_last(log, 272), "PolicyValue"), 1);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "NTStatus"), LD_STATUS_NOT_FOUND);
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.type = LD_DUMP_MINI;
    mem_sink m;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);

    assert_int_equal(ld_settings_change(&s, h.engine, "AllowLiveDump", "0", &err), LD_STATUS_SUCCESS);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "PolicyValue"), 0);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "NTStatus"), LD_STATUS_SUCCESS);
    /* A failure now reports the 0 in force. */
    assert_int_equal(ld_settings_change(&s, h.engine, "DumpFileSize", "-1", &err),
                     LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "PolicyValue"), 0);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "NTStatus"), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(s.dump_file_size_mb, 0);
    assert_int_equal(evlog_count(log, 272), 4);
    assert_int_equal(evlog_count(log, 271), 4);

    /* Without an engine: the error only, no event. */
    assert_int_equal(ld_settings_change(&s, NULL, "Foo", "1", &err), LD_STATUS_NOT_FOUND);
    assert_int_equal(evlog_count(log, 272), 4);
    /* A success is not a failure to report. */
    assert_int_equal(ld_engine_report_policy_failure(h.engine, LD_STATUS_SUCCESS), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(evlog_count(log, 272), 4);

    /* Limits cannot change under a running capture: 272 says busy. */
    assert_int_equal(ld_settings_change(&s, h.engine, "AllowLiveDump", "1", &err), LD_STATUS_SUCCESS);
    busy_probe probe = {&s, h.engine, LD_STATUS_SUCCESS, false};
    req.progress = apply_while_capturing;
    req.progress_arg = &probe;
    mem_sink_init(&m);
    assert_int_equal(ld_engine_capture(h.engine, &req, ld_format_raw(), &m.sink, NULL), LD_STATUS_SUCCESS);
    mem_sink_release(&m);
    assert_true(probe.tried);
    assert_int_equal(probe.status, LD_STATUS_DEVICE_BUSY);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "NTStatus"), LD_STATUS_DEVICE_BUSY);
    assert_int_equal(evlog_u64(evlog_last(log, 272), "PolicyValue"), 1);
    harness_stop(&h);
    evlog_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_setting_valid_and_invalid),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_errors_name_the_line),
        cmocka_unit_test(test_policy_file_owner_and_mode),
        cmocka_unit_test(test_policy_folders),
        cmocka_unit_test(test_save_round_trip),
        cmocka_unit_test(test_settings_drive_the_engine),
        cmocka_unit_test(test_change_events),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
