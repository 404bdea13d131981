/* livedump: user-mode runtime (libc + libuv): the default platform and sinks.
 * Not available to kernel-mode builds of the core. */
#ifndef LIVEDUMP_RUNTIME_H
#define LIVEDUMP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/types.h"
#include "livedump/output.h"
#include "livedump/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* malloc/free, uv_hrtime, wall clock and uv_mutex_t. A static table. */
LD_EXTERN const ld_platform *ld_platform_default(void);

/* A sink writing to a new file at `path`, created 0600 with O_EXCL and
 * O_NOFOLLOW. Bytes go to "<path>.partial" (also 0600, also exclusive; a
 * shorter name when that exceeds NAME_MAX, ld_sink_file_partial_name) and
 * the file is renamed to `path` only by a successful finish, after fsync;
 * abort (or a failed finish) unlinks it. So no half-written dump ever has
 * the final name. On a file system without hard links (vfat, exFAT, some
 * SMB and FUSE) the name is given by renameat2(RENAME_NOREPLACE); where that
 * is missing too, finish refuses with LD_STATUS_NOT_SUPPORTED rather than
 * risk replacing a file. While open, the sink holds an exclusive flock on the
 * .partial file, so ld_reports_prune tells a live write from a crashed
 * one's leftover. A leftover "<path>.partial" (our own regular file no live
 * writer holds) is removed and replaced; one a live writer holds gives
 * LD_STATUS_DEVICE_BUSY, a symlink or another user's file in its place
 * LD_STATUS_OBJECT_NAME_COLLISION. ENOSPC and EFBIG map to LD_STATUS_DISK_FULL. The sink is
 * freed by finish or abort. */
LD_EXTERN ld_status ld_sink_file_open(const char *path, ld_sink **out);
/* The same, for `name` (one component, no '/') in the folder open as dirfd:
 * every operation is relative to (a duplicate of) that descriptor, so the
 * folder cannot be swapped for a symlink under the sink. */
LD_EXTERN ld_status ld_sink_file_openat(int dirfd, const char *name, ld_sink **out);
/* The temporary name the file sinks use for the file named `name` (one
 * component): "<name>.partial", or when that would exceed NAME_MAX, the
 * longest prefix of name that fits, '~', 16 hex digits of a hash of name,
 * and ".partial" — the same at every run, so a crashed writer's leftover is
 * found again. LD_STATUS_NAME_TOO_LONG for a name over NAME_MAX,
 * LD_STATUS_BUFFER_TOO_SMALL when out (cap bytes; NAME_MAX + 1 is enough)
 * cannot hold it. */
LD_EXTERN ld_status ld_sink_file_partial_name(const char *name, char *out, size_t cap);

/* A sink writing to a descriptor the caller opened and still owns (never
 * closed by the sink). A regular file takes positioned writes from its
 * current offset on; a pipe, socket or O_APPEND file takes writes only in
 * file order (the .dmp and ELF writers' order; the raw writer's holes make
 * it fail there with LD_STATUS_INVALID_PARAMETER). finish truncates a
 * (non-append) regular file to the dump's size and fsyncs it; abort cannot
 * unwrite what was written. The
 * sink is freed by finish or abort. */
LD_EXTERN ld_status ld_sink_fd_open(int fd, ld_sink **out);

/* A sink that asks check(arg, ...) before every write and the finish of
 * `inner` (any sink: a file, a descriptor, your own) and fails the call
 * with check's status when it says no — a caller's cancellation, a quota.
 * The new sink owns inner: its finish or abort frees both. On failure
 * (LD_STATUS_NO_MEMORY) inner is left as it was. */
LD_EXTERN ld_status ld_sink_filter_open(ld_sink *inner, ld_sink_check_fn check, void *arg, ld_sink **out);

/* ---- the one call: a live dump into a file ---- */

#define LD_FILE_OPTIONS_VERSION 1

typedef struct ld_file_options {
    uint32_t version;         /* LD_FILE_OPTIONS_VERSION */
    /* NULL (default): the format the path's extension names (x.dmp, x.elf,
     * x.raw: ld_format_for_path), raw for any other name. */
    const ld_format *format;
    /* Optional: asked before every write and before the file gets its name
     * (a caller's cancellation: LD_STATUS_CANCELLED, say); with a deferred
     * request also between the capture and the write. */
    ld_sink_check_fn check;
    void *check_arg;
} ld_file_options;

LD_EXTERN void ld_file_options_init(ld_file_options *opts);

/* Take a live dump of the engine's machine into a new file at `path`,
 * created as ld_sink_file_open creates it (0600, never over an existing
 * file, under its name only once complete). opts NULL: the defaults. A
 * request with LD_FLAG_DEFER is captured into memory first and then
 * written (the held dump is discarded if the check stops the work; a write
 * that fails otherwise, a full disk, leaves it held: result->deferred). Returns the status of
 * the capture, or of creating the file (then the engine did not run:
 * result->status is that status and no event was raised). */
LD_EXTERN ld_status ld_capture_to_path(ld_engine *engine, const ld_capture_request *req, const char *path,
                                       const ld_file_options *opts, ld_result *result);

/* The OS error (errno) behind `status`, when `status` is what the last
 * file operation of the runtime, report storage, settings, dump reader or
 * Linux backend that failed in this thread got from it; 0 otherwise. For
 * messages: strerror(ld_os_error(st)) says in words what the NTSTATUS
 * names (e.g. EROFS behind LD_STATUS_MEDIA_WRITE_PROTECTED). */
LD_EXTERN int ld_os_error(ld_status status);

/* ---- one live dump at a time per machine ----
 * A real machine (the running kernel through kcore; later the NT backend, a
 * capture service) takes one live dump at a time, as Windows enforces with
 * a busy flag: whoever dumps it holds its machine lock, an exclusive flock
 * on "DIR/NAME.lock". The kernel drops a flock when its holder exits,
 * however it exits (SIGKILL, crash), so no lock outlives its holder; the
 * file stays (it holds the last holder's process id) and is never removed.
 * A simulated machine belongs to its process and needs no lock.
 *
 * dir: NULL for ld_machine_lock_dir(NULL). The folder is created 0700 when
 * missing and must be a real directory (not a symlink), owned by the caller
 * or root, that no one else may write. The file is created 0600, never
 * through a symlink, and must be the caller's regular file with one link.
 * name: 1 to 32 of A-Z a-z 0-9 _ - . (not starting with '.'), e.g. "kcore".
 * wait: false fails with LD_STATUS_DEVICE_BUSY while another holds it; true
 * blocks until it is free.
 * Errors: LD_STATUS_INVALID_PARAMETER (name), LD_STATUS_ACCESS_DENIED (the
 * folder is unsafe or cannot be created: dumping a real machine needs
 * root), LD_STATUS_OBJECT_NAME_COLLISION (a symlink, another user's file or
 * anything but a regular file at the lock's name). */
#define LD_MACHINE_LOCK_DIR "/run/livedump"
typedef struct ld_machine_lock ld_machine_lock;
LD_EXTERN ld_status ld_machine_lock_acquire(const char *dir, const char *name, bool wait, ld_machine_lock **out);
/* Release and free (NULL: nothing). */
LD_EXTERN void ld_machine_lock_release(ld_machine_lock *lock);
/* The folder the locks go to: dir if not NULL or empty, else
 * $LIVEDUMP_LOCK_DIR if set and not empty (tests), else
 * LD_MACHINE_LOCK_DIR. */
LD_EXTERN const char *ld_machine_lock_dir(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
