/* livedump: report storage and throttling, laid out as Windows lays out
 * LiveKernelReports (user mode).
 *
 *   ROOT/                                  0700, created by livedump
 *     WATCHDOG-20250102-030405.dmp         full live dumps, in the root
 *     .LastFullLiveReport                  throttling state (0600)
 *     .LastFullLiveReport.lock             flock held from admission to record (0600)
 *     USBHUB3/                             one folder (0700) per component
 *       USBHUB3-20250102-030405.dmp        its smaller dumps (kernel-stacks, mini)
 *
 * File names carry the component and the UTC time of the dump, and never
 * replace a file: a second dump in the same second gets "-1", "-2", ...
 * Dump files are 0600, written under a temporary name and renamed once
 * complete and flushed (ld_sink_file_openat). The root is opened by
 * walking its path one component at a time with O_NOFOLLOW: a symlink
 * anywhere in the path is refused. A root or component folder not owned by
 * this user or writable by others is refused. Every later operation is
 * relative to the folders opened, so a folder swapped for a symlink after
 * the open is never followed. Component names are 1 to 16 characters of A-Z, a-z, 0-9, '_'.
 *
 * Throttling: the time of the last full dump, of the system and of each
 * component (Windows' LastFullLiveReport), is kept in ROOT/.LastFullLiveReport,
 * replaced atomically (temporary file, fsync, rename) and checked when read:
 * a corrupt file is reported and rebuilt from the dumps present. A full dump
 * sooner than SystemThrottleThreshold / ComponentThrottleThreshold hours
 * after the last is refused with LD_STATUS_THROTTLED and event 6 naming the
 * threshold and the time the next one is allowed.
 *
 * A dump is kept if and only if it is counted: before a full dump is
 * captured (and before a held one is written) the state is saved with a
 * landing record naming it; if that cannot be saved (disk full) no dump is
 * taken (LD_STATUS_DISK_FULL, the call's ld_error says so, event 6). Once the
 * dump has its name, a failure to save the state again changes nothing: the
 * landing record counts the dump at every load that finds its file, and is
 * forgotten by one that does not. At each load the state is checked against
 * the disk: a report it does not list is added (a full one counts for
 * throttling at the time in its name), one gone is forgotten. A time later
 * than now (a clock that was ahead, or set back since) is clamped to now and
 * saved so: it holds full dumps back one threshold, not until that date.
 *
 * Order: the state also keeps the order in which reports landed; listing
 * and retention go by it, never by the time in the names, and retention
 * never deletes the report that just landed. A small dump is added to the
 * order when it lands if the lock is free, else at the next load (its
 * retention then runs at the next landing).
 * Processes sharing a root are serialized by the lock: each reads the
 * state again under it, so only one of two racing full dumps is admitted.
 *
 * Throttling and deferred captures: throttling spaces the captures (when
 * the machine is stopped and copied), not the writes. A full capture
 * admitted with LD_FLAG_DEFER counts as taken at its capture time while it
 * is held: another full capture within SystemThrottleThreshold (any
 * component) or ComponentThrottleThreshold (the same one) is refused with
 * LD_STATUS_THROTTLED and event 6, even before the engine's max_deferred
 * limit would refuse it (then event 6 alone, no capture starts). When the
 * held dump lands (ld_reports_write_deferred) its file name and
 * LastFullLiveReport carry that capture time. A held dump that is discarded
 * (or lost with the process) never landed: it stops counting and nothing is
 * recorded, so discarding does not lock a component out.
 */
#ifndef LIVEDUMP_REPORTS_H
#define LIVEDUMP_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/engine.h"
#include "livedump/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LD_COMPONENT_MAX 16

/* Wall-clock time in seconds since 1970-01-01 UTC. Injectable, so
 * throttling across restarts is tested without waiting days. */
typedef uint64_t (*ld_clock_fn)(void *arg);

#define LD_REPORTS_OPTIONS_VERSION 1

typedef struct ld_reports_options {
    uint32_t version;              /* LD_REPORTS_OPTIONS_VERSION (ld_reports_options_init) */
    const char *root;              /* NULL: settings->live_kernel_reports_path */
    const ld_settings *settings;   /* copied; NULL: the defaults */
    ld_clock_fn clock;             /* NULL: the system clock */
    void *clock_arg;
    uint32_t flags;                /* LD_REPORTS_* */
} ld_reports_options;

/* Open to look only (listing, admission): nothing is created or written,
 * so it works on a read-only file system and by a mere reader. A missing
 * root is LD_STATUS_NO_SUCH_FILE; a corrupt throttling state is rebuilt in
 * memory only. Capture, deferred writes and prune are LD_STATUS_ACCESS_DENIED. */
#define LD_REPORTS_READ_ONLY 0x1u

typedef struct ld_reports ld_reports;

LD_EXTERN void ld_reports_options_init(ld_reports_options *opts);
/* Open (creating the root folder 0700 if missing, unless
 * LD_REPORTS_READ_ONLY) and read the throttling state. Options of another
 * version than LD_REPORTS_OPTIONS_VERSION, or unknown flags:
 * LD_STATUS_INVALID_PARAMETER. err (may be NULL) says why it failed
 * (livedump/status.h). */
LD_EXTERN ld_status ld_reports_open(const ld_reports_options *opts, ld_reports **out, ld_error *err);
LD_EXTERN void ld_reports_close(ld_reports *reports);
LD_EXTERN const char *ld_reports_root(const ld_reports *reports);
/* Non-NULL when opening found the throttling state missing a checksum,
 * unreadable or otherwise corrupt and rebuilt it: what was wrong. Not an
 * error (the open succeeded, the state is sound again) but a note for the
 * administrator. The first ld_reports_capture / ld_reports_write_deferred
 * also reports it as event 6 (ThrottleStateRebuilt = 1). */
LD_EXTERN const char *ld_reports_state_problem(const ld_reports *reports);

LD_EXTERN bool ld_component_name_valid(const char *name);

/* Would a dump of `type` for `component` be taken now? LD_STATUS_SUCCESS,
 * LD_STATUS_THROTTLED or LD_STATUS_ACCESS_DENIED (FullLiveReportsMax 0),
 * with `why` (may be NULL) filled for event 6. Only full dumps are
 * throttled. */
LD_EXTERN ld_status ld_reports_admit(ld_reports *reports, const char *component, ld_dump_type type,
                                     ld_admission *why);

/* Take a dump for `component` into the reports: admission (throttling) as
 * the engine's gate, then the file in its place, then the throttling state
 * and retention. format NULL: .dmp (ld_format_dmp), as Windows writes live
 * kernel reports. With LD_FLAG_DEFER in req nothing is written (format is
 * not used): write it later with ld_reports_write_deferred. path (may be
 * NULL) receives the file's name. err (may be NULL) holds the status, and
 * when the storage itself failed rather than the capture, what it could
 * not do and what became of the dump, e.g. "cannot save the throttling
 * state ...: disk full; no dump was taken". */
LD_EXTERN ld_status ld_reports_capture(ld_reports *reports, ld_engine *engine, const char *component,
                                       const ld_capture_request *req, const ld_format *format, ld_result *result,
                                       char *path, size_t path_cap, ld_error *err);
/* Progress of the writes ld_reports_write_deferred makes (NULL: none). A
 * capture's own progress comes from its request. */
LD_EXTERN void ld_reports_set_progress(ld_reports *reports, ld_progress_fn progress, void *arg);

/* Asked before a capture or deferred write starts and before each write to
 * its file: true stops it (a signal arrived). The file is then removed,
 * nothing is recorded, and the call returns LD_STATUS_CANCELLED (a capture
 * under way runs to its end first: the engine has no cancel call yet; its
 * dump is not written). NULL: never. */
typedef bool (*ld_reports_cancel_fn)(void *arg);
LD_EXTERN void ld_reports_set_cancel(ld_reports *reports, ld_reports_cancel_fn cancelled, void *arg);

/* Write a held dump (handle from result->deferred, NULL = the oldest) as a
 * report of `component` (format NULL: .dmp). On failure (disk full, ...) the dump stays held.
 * A dump captured through ld_reports_capture lands under its capture time
 * and must be written as the component it was captured for
 * (LD_STATUS_INVALID_PARAMETER otherwise); a full dump captured directly
 * with the engine is admitted (throttled) now, event 6 if refused. err as
 * for ld_reports_capture. */
LD_EXTERN ld_status ld_reports_write_deferred(ld_reports *reports, ld_engine *engine, const char *component,
                                              const ld_dump *handle, const ld_format *format, ld_result *result,
                                              char *path, size_t path_cap, ld_error *err);

/* Discard a held dump (NULL = the oldest), events 251/252: it stops
 * counting for throttling. Discarding through the engine directly has the
 * same effect from the next ld_reports_capture / ld_reports_write_deferred. */
LD_EXTERN ld_status ld_reports_discard_deferred(ld_reports *reports, ld_engine *engine, const ld_dump *handle);

typedef struct ld_report_entry {
    char path[LD_SETTINGS_PATH_MAX + 64];
    char component[LD_COMPONENT_MAX + 1];
    bool full;                /* in the root: a full live dump */
    uint64_t time;            /* from the name: seconds since 1970 UTC */
    uint32_t sequence;        /* the "-N" of a same-second name, else 0 */
    uint64_t order;           /* its place in the order reports landed (1, 2, ...), kept in
                                 the throttling state; 0: not known there yet */
    uint64_t bytes;           /* space on disk */
    bool incomplete;          /* "NAME.partial": being written, or left by a writer that
                                 crashed; never counted as a dump */
} ld_report_entry;

/* Every report, oldest first (full and small), and the incomplete ones
 * (.partial files; symlinks and other non-files are never listed). Free
 * with ld_reports_list_free. Oldest first is the order they landed (the
 * `order` kept with the throttling state), never the time in their names,
 * which a wrong clock or a rename can make lie; reports the state does not
 * know yet come last, by name. */
LD_EXTERN ld_status ld_reports_list(ld_reports *reports, ld_report_entry **entries, size_t *count);
LD_EXTERN void ld_reports_list_free(ld_report_entry *entries);
/* Apply the retention rules now: full dumps beyond FullLiveReportsMax,
 * oldest first (none with AlwaysKeepMemoryDump), and with
 * DeleteLiveMiniDumps all but the newest small dump of each component,
 * in the order ld_reports_list gives. When a dump lands the same rules run,
 * and never delete that dump.
 * Incomplete reports are removed too, but only those no live writer holds
 * (the file sink keeps an exclusive flock on its .partial file; prune
 * removes one only while it holds that lock, and never through a symlink).
 * deleted (may be NULL) counts the files removed. */
LD_EXTERN ld_status ld_reports_prune(ld_reports *reports, uint32_t *deleted);

#ifdef __cplusplus
}
#endif
#endif
