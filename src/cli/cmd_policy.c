/* `livedump policy show|set KEY VALUE|check`: read and change the policy
 * settings file (Windows value names and defaults, include/livedump/policy.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "livedump/policy.h"
#include "livedump/runtime.h"

static const char usage_text[] =
    "usage: livedump policy [--policy FILE] show\n"
    "       livedump policy [--policy FILE] set KEY VALUE\n"
    "       livedump policy [--policy FILE] check\n"
    "\n"
    "  --policy FILE   the settings file (default " CLI_DEFAULT_POLICY ")\n"
    "  show            every setting: value, default and unit\n"
    "  set KEY VALUE   change one setting; the file is replaced atomically (0600)\n"
    "  check           read the file; report the first bad line\n";

/* Load `path` into s; a missing file means the defaults. */
int cli_load_policy(const char *path, bool must_exist, ld_settings *s)
{
    ld_settings_init(s);
    ld_error err;
    ld_status st = ld_settings_load(s, path, &err);
    if (st == LD_STATUS_NO_SUCH_FILE && !must_exist)
        return CLI_EXIT_OK;
    if (!ld_ok(st)) {
        int os = err.os_error ? err.os_error : ld_os_error(st);
        if (os) /* the OS error in words, as cli_status_error says it */
            fprintf(stderr, "livedump: %s: %s (%s, 0x%08X)\n", err.message, strerror(os),
                    ld_status_name(st) ? ld_status_name(st) : ld_status_describe(st), (unsigned)st);
        else
            fprintf(stderr, "livedump: %s\n", err.message);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static int show(const char *path)
{
    ld_settings s;
    int rc = cli_load_policy(path, false, &s);
    if (rc)
        return rc;
    printf("# %s%s\n", path, access(path, F_OK) == 0 ? "" : " (absent: defaults)");
    for (size_t i = 0; i < ld_settings_count(); i++) {
        const ld_setting_info *info = ld_settings_info(i);
        char v[LD_SETTINGS_PATH_MAX];
        (void)ld_settings_get(&s, info->name, v, sizeof v);
        printf("%-27s = %-12s # %s; default %s (%s)\n", info->name, v, info->description, info->default_value,
               info->unit);
    }
    return CLI_EXIT_OK;
}

static int set(const char *path, const char *key, const char *value)
{
    ld_settings s;
    int rc = cli_load_policy(path, false, &s);
    if (rc)
        return rc;
    ld_error err;
    ld_status st = ld_settings_set(&s, key, value, &err);
    if (!ld_ok(st)) {
        cli_usage_error("policy", "%s", err.message);
        return CLI_EXIT_USAGE;
    }
    st = ld_settings_save(&s, path);
    if (!ld_ok(st)) {
        cli_status_error(st, "cannot write '%s'", path);
        return CLI_EXIT_FAILED;
    }
    char v[LD_SETTINGS_PATH_MAX];
    (void)ld_settings_get(&s, key, v, sizeof v);
    printf("%s: %s = %s\n", path, key, v);
    return CLI_EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
    const char *path = CLI_DEFAULT_POLICY;
    int i = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--policy")) {
            if (i + 1 >= argc) {
                cli_usage_error("policy", "option '--policy' needs a value");
                return CLI_EXIT_USAGE;
            }
            path = argv[++i];
        } else {
            break;
        }
    }
    const char *verb = i < argc ? argv[i] : NULL;
    int left = argc - i - 1;
    if (verb && !strcmp(verb, "show") && left == 0)
        return show(path);
    if (verb && !strcmp(verb, "set") && left == 2)
        return set(path, argv[i + 1], argv[i + 2]);
    if (verb && !strcmp(verb, "check") && left == 0) {
        ld_settings s;
        int rc = cli_load_policy(path, true, &s);
        if (rc == CLI_EXIT_OK)
            printf("%s: ok\n", path);
        return rc;
    }
    cli_usage_error("policy", verb ? "bad use of '%s' (show, set KEY VALUE or check)" : "policy needs show, set or check%s",
                    verb ? verb : "");
    return CLI_EXIT_USAGE;
}
