/* livedump: the policy settings, with the names and defaults of Windows'
 * CrashControl and FullLiveKernelReports registry values (user mode).
 *
 * A settings object starts with the defaults (ld_settings_init), takes
 * values by name (ld_settings_set, the API and `livedump policy set`) or
 * from a plain "Key = value" file (ld_settings_load), and configures an
 * engine (ld_settings_engine_options / ld_settings_apply) and the report
 * storage (reports.h). Value names are matched case-insensitively, as the
 * registry does. The table of settings, defaults and units is in README.md.
 */
#ifndef LIVEDUMP_POLICY_H
#define LIVEDUMP_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "livedump/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LD_SETTINGS_PATH_MAX 1024
/* Where reports go by default (Windows: %SystemRoot%\LiveKernelReports). */
#define LD_DEFAULT_REPORTS_PATH "/var/lib/livedump/LiveKernelReports"

typedef struct ld_settings {
    uint32_t allow_live_dump;              /* AllowLiveDump: 1 (default) or 0 = refuse every capture */
    uint32_t system_throttle_hours;        /* SystemThrottleThreshold: hours between full dumps, any component; 120 */
    uint32_t component_throttle_hours;     /* ComponentThrottleThreshold: hours per component; 168 */
    uint32_t full_live_reports_max;        /* FullLiveReportsMax: full dumps kept at once; 1; 0 = none taken */
    char live_kernel_reports_path[LD_SETTINGS_PATH_MAX]; /* LiveKernelReportsPath: absolute */
    uint32_t always_keep_memory_dump;      /* AlwaysKeepMemoryDump: 1 = retention deletes nothing; 0 */
    uint32_t delete_live_mini_dumps;       /* DeleteLiveMiniDumps: 1 = a component keeps only its newest small dump; 0 */
    uint32_t dump_file_size_mb;            /* DumpFileSize: MiB a dump may write, 0 (default) = no limit */
    uint32_t dynamic_low_memory_threshold; /* DynamicLowMemoryThreshold: 1 (default) or 0 */
} ld_settings;

/* One setting, for listings: its value name, unit, default, description. */
typedef struct ld_setting_info {
    const char *name;
    const char *unit;          /* "hours", "MiB", "0/1", "count", "path" */
    const char *default_value;
    const char *description;
} ld_setting_info;

LD_EXTERN void ld_settings_init(ld_settings *settings);
LD_EXTERN size_t ld_settings_count(void);
LD_EXTERN const ld_setting_info *ld_settings_info(size_t index);

/* Set `key` from its text form (decimal or 0x hex for numbers; no white
 * space before or after, whichever character it is). A bad key
 * or value: LD_STATUS_INVALID_PARAMETER (LD_STATUS_NOT_FOUND for an unknown
 * key), the settings unchanged, and `err` (may be NULL, livedump/status.h)
 * says why. */
LD_EXTERN ld_status ld_settings_set(ld_settings *settings, const char *key, const char *value, ld_error *err);
/* ld_settings_set, then, when engine is not NULL, the outcome on that
 * engine: applied (ld_settings_apply: events 271 "Set" and 272 with
 * success) or, for a bad key or value, events 271 "Set" and 272 with the
 * failing NTStatus and the engine unchanged. Returns the status of the set,
 * else that of applying it. */
LD_EXTERN ld_status ld_settings_change(ld_settings *settings, ld_engine *engine, const char *key, const char *value,
                                      ld_error *err);
/* The text form of `key` (snprintf convention on buf). */
LD_EXTERN ld_status ld_settings_get(const ld_settings *settings, const char *key, char *buf, size_t cap);

/* Read a settings file: "Key = value" lines, '#' or ';' comments, blank
 * lines. Keys not named keep their current value. All or nothing: on any
 * error the settings are unchanged and `err` (may be NULL) names the file
 * and the line ("conf:3: unknown setting 'Foo'"). An unreadable file:
 * LD_STATUS_NO_SUCH_FILE or LD_STATUS_ACCESS_DENIED. Refused with
 * LD_STATUS_ACCESS_DENIED, as others could have changed it: a symlink, not
 * a regular file, writable by group or others, or owned by a user other
 * than root and us; and the same for every folder of its path, walked from
 * "/" (or from the working folder for a relative path): a symlink
 * anywhere, a folder owned by another user than root and us, or writable
 * by group or others, is refused. A sticky folder (as /tmp) may be
 * writable by all: others cannot rename or remove our file there. A value
 * with white space before or after it is refused (ld_settings_set). */
LD_EXTERN ld_status ld_settings_load(ld_settings *settings, const char *path, ld_error *err);
/* Write every setting to `path` (0600), atomically: a temporary file,
 * fsync, rename. Its folders are checked as ld_settings_load checks them. */
LD_EXTERN ld_status ld_settings_save(const ld_settings *settings, const char *path);

/* The engine options these settings imply (allow_live_dump,
 * dump_file_size_limit, dynamic_low_memory_threshold); others untouched. */
LD_EXTERN void ld_settings_engine_options(const ld_settings *settings, ld_engine_options *opts);
/* Apply to a running engine: the limits, and AllowLiveDump through
 * ld_engine_set_allow_live_dump (events 271 "Set" and 272). Limits refused
 * while a capture runs: LD_STATUS_DEVICE_BUSY, also in event 272. */
LD_EXTERN ld_status ld_settings_apply(const ld_settings *settings, ld_engine *engine);

#ifdef __cplusplus
}
#endif
#endif
