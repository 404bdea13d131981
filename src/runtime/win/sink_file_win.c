/* File sinks on Windows, the counterpart of sink_file.c and sink_fd.c:
 * the dump goes to "<path>.partial" (created new, never over a file,
 * readable by SYSTEM, Administrators and its owner only, never through a
 * reparse point), and gets its name only by a successful finish, after
 * FlushFileBuffers, by a rename that never replaces a file; abort deletes
 * it. While it is written the .partial is open without sharing: a live
 * writer's file cannot be opened, a crashed writer's leftover can, and is
 * removed by the next sink for the same name. Names are UTF-8. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <io.h>

#include "win_internal.h"
#include <sddl.h>
#include "livedump/runtime.h"
#include "livedump/sys/sink.h"
#include "temp_name.h"

ld_status ldu_win_status(DWORD err)
{
    switch (err) {
    case ERROR_SUCCESS: return LD_STATUS_SUCCESS;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: return LD_STATUS_NO_SUCH_FILE;
    case ERROR_ACCESS_DENIED: return LD_STATUS_ACCESS_DENIED;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return LD_STATUS_OBJECT_NAME_COLLISION;
    case ERROR_SHARING_VIOLATION:
    case ERROR_BUSY: return LD_STATUS_DEVICE_BUSY;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return LD_STATUS_DISK_FULL;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return LD_STATUS_NO_MEMORY;
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_NAME: return LD_STATUS_INVALID_PARAMETER;
    case ERROR_FILENAME_EXCED_RANGE: return LD_STATUS_NAME_TOO_LONG;
    case ERROR_WRITE_PROTECT: return LD_STATUS_MEDIA_WRITE_PROTECTED;
    case ERROR_DIRECTORY: return LD_STATUS_NOT_A_DIRECTORY;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_FUNCTION: return LD_STATUS_NOT_SUPPORTED;
    case ERROR_TOO_MANY_OPEN_FILES: return LD_STATUS_TOO_MANY_OPENED_FILES;
    case ERROR_OPERATION_ABORTED: return LD_STATUS_CANCELLED;
    default: return LD_STATUS_IO_DEVICE_ERROR;
    }
}

wchar_t *ldu_win_wide(const char *s, ld_status *st)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) {
        *st = LD_STATUS_INVALID_PARAMETER;
        return NULL;
    }
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (!w) {
        *st = LD_STATUS_NO_MEMORY;
        return NULL;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
    *st = LD_STATUS_SUCCESS;
    return w;
}

/* The folder part of path (with its separator) and the last component. */
static size_t folder_len(const char *path)
{
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] != '\\' && path[n - 1] != '/' && path[n - 1] != ':')
        n--;
    return n;
}

/* A leftover .partial of a crashed writer: removed; one a live writer
 * holds (no sharing): busy; a reparse point or a folder: not ours. */
static ld_status remove_stale(const wchar_t *tmp)
{
    HANDLE h = CreateFileW(tmp, DELETE | FILE_READ_ATTRIBUTES, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return e == ERROR_FILE_NOT_FOUND ? LD_STATUS_SUCCESS : ldu_win_status(e);
    }
    BY_HANDLE_FILE_INFORMATION info;
    ld_status st = LD_STATUS_OBJECT_NAME_COLLISION;
    if (GetFileInformationByHandle(h, &info) &&
        !(info.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY))) {
        FILE_DISPOSITION_INFO d = {TRUE};
        st = SetFileInformationByHandle(h, FileDispositionInfo, &d, sizeof d) ? LD_STATUS_SUCCESS
                                                                              : ldu_win_status(GetLastError());
    }
    CloseHandle(h);
    return st;
}

ld_status ldu_win_create_partial(const char *path, bool overlapped, HANDLE *out, wchar_t **final_w)
{
    *out = INVALID_HANDLE_VALUE;
    *final_w = NULL;
    if (!path || !path[0])
        return LD_STATUS_INVALID_PARAMETER;
    size_t dir = folder_len(path);
    const char *name = path + dir;
    if (!name[0])
        return LD_STATUS_INVALID_PARAMETER;
    char tmpname[LDU_WIN_NAME_MAX + 1];
    ld_status st = ld_sink_file_partial_name(name, tmpname, sizeof tmpname);
    if (st != LD_STATUS_SUCCESS)
        return st;
    size_t plen = dir + strlen(tmpname) + 1;
    char *partial = malloc(plen);
    if (!partial)
        return LD_STATUS_NO_MEMORY;
    snprintf(partial, plen, "%.*s%s", (int)dir, path, tmpname);
    wchar_t *fw = ldu_win_wide(path, &st);
    wchar_t *tw = fw ? ldu_win_wide(partial, &st) : NULL;
    free(partial);
    if (!tw) {
        free(fw);
        return st;
    }
    /* The final name must be free; the rename checks again. */
    if (GetFileAttributesW(fw) != INVALID_FILE_ATTRIBUTES)
        st = LD_STATUS_OBJECT_NAME_COLLISION;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (st == LD_STATUS_SUCCESS &&
        !ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)",
                                                              SDDL_REVISION_1, &sd, NULL))
        st = ldu_win_status(GetLastError());
    HANDLE h = INVALID_HANDLE_VALUE;
    for (int attempt = 0; st == LD_STATUS_SUCCESS; attempt++) {
        SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
        h = CreateFileW(tw, GENERIC_WRITE | DELETE | SYNCHRONIZE, 0, &sa, CREATE_NEW,
                        FILE_ATTRIBUTE_NORMAL | (overlapped ? FILE_FLAG_OVERLAPPED : 0), NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        DWORD e = GetLastError();
        st = ldu_win_status(e);
        if ((e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS) && attempt < 3)
            st = remove_stale(tw);
    }
    if (sd)
        LocalFree(sd);
    free(tw);
    if (st != LD_STATUS_SUCCESS) {
        free(fw);
        return st;
    }
    *out = h;
    *final_w = fw;
    return LD_STATUS_SUCCESS;
}

ld_status ldu_win_rename(HANDLE h, const wchar_t *final_w)
{
    size_t len = wcslen(final_w);
    size_t bytes = sizeof(FILE_RENAME_INFO) + (len + 1) * sizeof(wchar_t);
    FILE_RENAME_INFO *r = calloc(1, bytes);
    if (!r)
        return LD_STATUS_NO_MEMORY;
    r->ReplaceIfExists = FALSE; /* never over another file */
    r->RootDirectory = NULL;
    r->FileNameLength = (DWORD)(len * sizeof(wchar_t));
    memcpy(r->FileName, final_w, (len + 1) * sizeof(wchar_t));
    ld_status st = SetFileInformationByHandle(h, FileRenameInfo, r, (DWORD)bytes) ? LD_STATUS_SUCCESS
                                                                                  : ldu_win_status(GetLastError());
    free(r);
    return st;
}

void ldu_win_delete(HANDLE h)
{
    FILE_DISPOSITION_INFO d = {TRUE};
    (void)SetFileInformationByHandle(h, FileDispositionInfo, &d, sizeof d);
}

/* ---- the sinks ---- */

typedef struct win_sink {
    ld_sink sink;
    HANDLE h;
    wchar_t *final_w; /* NULL: a descriptor sink (the caller's file) */
} win_sink;

static void release(win_sink *s)
{
    if (s->final_w && s->h != INVALID_HANDLE_VALUE)
        CloseHandle(s->h);
    free(s->final_w);
    free(s);
}

static ld_status win_write(ld_sink *sink, uint64_t offset, const void *buf, size_t len)
{
    win_sink *s = sink->ctx;
    const uint8_t *p = buf;
    while (len) {
        DWORD want = len > 0x40000000u ? 0x40000000u : (DWORD)len, done = 0;
        OVERLAPPED ov;
        memset(&ov, 0, sizeof ov);
        ov.Offset = (DWORD)offset;
        ov.OffsetHigh = (DWORD)(offset >> 32);
        if (!WriteFile(s->h, p, want, &done, &ov))
            return ldu_win_status(GetLastError());
        if (!done)
            return LD_STATUS_DISK_FULL;
        p += done;
        len -= done;
        offset += done;
    }
    return LD_STATUS_SUCCESS;
}

static ld_status set_size(HANDLE h, uint64_t size)
{
    FILE_END_OF_FILE_INFO eof;
    eof.EndOfFile.QuadPart = (LONGLONG)size;
    return SetFileInformationByHandle(h, FileEndOfFileInfo, &eof, sizeof eof) ? LD_STATUS_SUCCESS
                                                                              : ldu_win_status(GetLastError());
}

static ld_status win_finish(ld_sink *sink, uint64_t size)
{
    win_sink *s = sink->ctx;
    ld_status st = set_size(s->h, size);
    if (st == LD_STATUS_SUCCESS && !FlushFileBuffers(s->h))
        st = ldu_win_status(GetLastError());
    if (st == LD_STATUS_SUCCESS && s->final_w)
        st = ldu_win_rename(s->h, s->final_w);
    if (st != LD_STATUS_SUCCESS && s->final_w)
        ldu_win_delete(s->h);
    release(s);
    return st;
}

static void win_abort(ld_sink *sink)
{
    win_sink *s = sink->ctx;
    if (s->final_w)
        ldu_win_delete(s->h);
    release(s);
}

static ld_status make_sink(HANDLE h, wchar_t *final_w, ld_sink **out)
{
    win_sink *s = calloc(1, sizeof *s);
    if (!s)
        return LD_STATUS_NO_MEMORY;
    s->h = h;
    s->final_w = final_w;
    s->sink.version = LD_SINK_VERSION;
    s->sink.ctx = s;
    s->sink.write = win_write;
    s->sink.finish = win_finish;
    s->sink.abort = win_abort;
    *out = &s->sink;
    return LD_STATUS_SUCCESS;
}

ld_status ld_sink_file_partial_name(const char *name, char *out, size_t cap)
{
    return ldu_temp_name(name, ".partial", out, cap);
}

ld_status ld_sink_file_open(const char *path, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    HANDLE h;
    wchar_t *fw;
    ld_status st = ldu_win_create_partial(path, false, &h, &fw);
    if (st != LD_STATUS_SUCCESS)
        return st;
    st = make_sink(h, fw, out);
    if (st != LD_STATUS_SUCCESS) {
        ldu_win_delete(h);
        CloseHandle(h);
        free(fw);
    }
    return st;
}

/* Folders as descriptors are a POSIX idea; Windows programs give paths. */
ld_status ld_sink_file_openat(int dirfd, const char *name, ld_sink **out)
{
    (void)dirfd;
    (void)name;
    if (out)
        *out = NULL;
    return LD_STATUS_NOT_SUPPORTED;
}

/* The caller's CRT descriptor; positioned writes, truncated and flushed
 * at finish, never closed. */
ld_status ld_sink_fd_open(int fd, ld_sink **out)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE)
        return LD_STATUS_INVALID_PARAMETER;
    return make_sink(h, NULL, out);
}
