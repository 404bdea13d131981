/* What the Windows runtime's files share: UTF-8 names as UTF-16, the
 * security descriptor of a dump file, creating "<path>.partial" safely,
 * and Win32 errors as ld_status. */
#ifndef LDU_RUNTIME_WIN_INTERNAL_H
#define LDU_RUNTIME_WIN_INTERNAL_H

#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
#include <stdbool.h>

#include "livedump/status.h"

/* A file name component, in bytes, at most (what temp_name.c takes as
 * NAME_MAX on Windows). */
#define LDU_WIN_NAME_MAX 255

/* The Win32 error as the NTSTATUS livedump uses for the same condition. */
ld_status ldu_win_status(DWORD err);

/* A UTF-8 string as a new UTF-16 one (free with free()); NULL when it is
 * not valid UTF-8 or memory ran out (*st says which). */
wchar_t *ldu_win_wide(const char *s, ld_status *st);

/* Create `path` + ".partial" for writing (CREATE_NEW: never over a file),
 * readable by SYSTEM, Administrators and its owner only, with DELETE
 * access (to rename or delete it) and no sharing (so a live writer's file
 * is told from a crashed one's leftover: the leftover can be opened, and
 * is removed; the live one cannot). `overlapped` false gives synchronous
 * I/O, as the driver needs. The final name must not exist. On success
 * *final_w gets `path` in UTF-16 (free()). */
ld_status ldu_win_create_partial(const char *path, bool overlapped, HANDLE *out, wchar_t **final_w);

/* Give the open file its final name (never replacing one), or delete it. */
ld_status ldu_win_rename(HANDLE h, const wchar_t *final_w);
void ldu_win_delete(HANDLE h);

#endif
