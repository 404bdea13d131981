/* File helpers shared by the settings, the throttling state and the report
 * storage (user mode). Not exported. */
#ifndef LD_REPORTS_FILES_H
#define LD_REPORTS_FILES_H

#include <stddef.h>
#include <sys/stat.h>

#include "livedump/status.h"
#include "errno_status.h"

/* Open the folder that holds `path` (*name: its last component) by walking
 * from "/" (or the working folder for a relative path) one folder at a
 * time, O_NOFOLLOW, each checked as opened: a symlink, a folder owned by a
 * user other than root and us, or a folder writable by group or others
 * without the sticky bit is refused (LD_STATUS_ACCESS_DENIED), and err
 * (may be NULL) names it. -1 with *status on failure. */
int ldr_open_folder_of(const char *path, const char **name, ld_status *status, ld_error *err);
/* Replace `path` with `len` bytes, 0600, atomically: "<path>.tmp" written,
 * fsynced, renamed over path, directory fsynced. A crash leaves either the
 * old or the new file; the temporary file is removed on failure. The folder
 * is opened with ldr_open_folder_of. */
ld_status ldr_write_atomic(const char *path, const void *data, size_t len);
/* Read a whole small file (at most max bytes) into a NUL-terminated malloc
 * buffer. Refuses a symlink (also as a folder: ldr_open_folder_of). */
ld_status ldr_read_small(const char *path, size_t max, char **out, size_t *len);
/* The same, for `name` in the folder open as dfd. */
ld_status ldr_write_atomic_at(int dfd, const char *name, const void *data, size_t len);
ld_status ldr_read_small_at(int dfd, const char *name, size_t max, char **out, size_t *len);
/* The same, with the file read's fstat in *info (may be NULL): checks of
 * its owner and mode are then of the very file read. Not a regular file:
 * LD_STATUS_ACCESS_DENIED. */
ld_status ldr_read_small_st(const char *path, size_t max, char **out, size_t *len, struct stat *info);
ld_status ldr_read_small_at_st(int dfd, const char *name, size_t max, char **out, size_t *len, struct stat *info);

#endif
