/* Report folders (src/reports/folders.c). */
#ifndef LD_REPORTS_FOLDERS_H
#define LD_REPORTS_FOLDERS_H

#include "storage.h"

/* A folder reports may live in, already open: a folder, ours, not
 * writable by group or others. err (may be NULL) says why not, about
 * `shown`. */
ld_status ldr_check_dir(int fd, const char *shown, ld_error *err);
/* Open `name` in the folder dfd as a folder, never through a symlink;
 * create it 0700 first when missing and `create`. -1 with errno (ELOOP for
 * a symlink). */
int ldr_open_dir_at(int dfd, const char *name, bool create);
/* Open the reports root by walking `path` one component at a time, none a
 * symlink; the last one created (0700) when missing and `create`, and
 * checked (ldr_check_dir). */
ld_status ldr_open_root(const char *path, bool create, int *out, ld_error *err);
/* The folder of a dump, open: the root for full dumps, ROOT/COMPONENT
 * (created 0700 when missing) else; *owned says whether to close it. */
ld_status ldr_dump_folder(ld_reports *r, const char *component, bool full, int *dfd, bool *owned);

#endif
