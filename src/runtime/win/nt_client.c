/* The client of livedump.sys: one call that asks the driver for a live
 * dump into a new file (livedump/nt.h). The file is created here, under
 * the caller's own rights, as "<path>.partial" with synchronous I/O (the
 * driver writes it with ZwWriteFile from its system thread), and named
 * only when the driver says the dump is complete; otherwise it is
 * deleted. The driver answers after the capture: its events arrive then,
 * in order. */
#include <stdlib.h>
#include <string.h>

#include "win_internal.h"
#include "livedump/nt.h"

#define REPLY_BYTES (sizeof(ld_nt_reply) + (1u << 20))

static ld_status open_device(HANDLE *out)
{
    *out = CreateFileA(LD_NT_DEVICE_PATH, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (*out != INVALID_HANDLE_VALUE)
        return LD_STATUS_SUCCESS;
    DWORD e = GetLastError();
    /* no device: the driver is not loaded (sc start livedump) */
    return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? LD_STATUS_NO_SUCH_FILE : ldu_win_status(e);
}

ld_status ld_nt_capture(const ld_nt_request *req, const char *path, ld_event_fn on_event, void *arg,
                        ld_nt_reply *reply)
{
    if (reply)
        memset(reply, 0, sizeof *reply);
    if (!req || !path || req->version != LD_NT_REQUEST_VERSION || req->size != sizeof *req)
        return LD_STATUS_INVALID_PARAMETER;
    HANDLE dev;
    ld_status st = open_device(&dev);
    if (st != LD_STATUS_SUCCESS)
        return st;
    HANDLE file = INVALID_HANDLE_VALUE;
    wchar_t *final_w = NULL;
    st = ldu_win_create_partial(path, false, &file, &final_w);
    uint8_t *out = st == LD_STATUS_SUCCESS ? malloc(REPLY_BYTES) : NULL;
    if (st == LD_STATUS_SUCCESS && !out)
        st = LD_STATUS_NO_MEMORY;
    ld_nt_reply r;
    memset(&r, 0, sizeof r);
    if (st == LD_STATUS_SUCCESS) {
        ld_nt_request q = *req;
        q.file = (uint64_t)(uintptr_t)file;
        DWORD got = 0;
        if (!DeviceIoControl(dev, LD_NT_IOCTL_CAPTURE, &q, sizeof q, out, (DWORD)REPLY_BYTES, &got, NULL))
            st = ldu_win_status(GetLastError());
        else if (got < sizeof r)
            st = LD_STATUS_FILE_CORRUPT;
        if (st == LD_STATUS_SUCCESS) {
            memcpy(&r, out, sizeof r);
            if (r.version != LD_NT_REPLY_VERSION || r.size != sizeof r || r.event_bytes > got - sizeof r)
                st = LD_STATUS_FILE_CORRUPT; /* a driver of another version */
            else
                st = r.status;
        }
        if (r.version == LD_NT_REPLY_VERSION && r.size == sizeof r && r.event_bytes <= got - sizeof r && on_event) {
            ld_status es = ld_nt_events_decode(out + sizeof r, r.event_bytes, on_event, arg);
            if (es != LD_STATUS_SUCCESS && st == LD_STATUS_SUCCESS)
                st = es;
        }
    }
    if (file != INVALID_HANDLE_VALUE) {
        /* named only when complete */
        if (st == LD_STATUS_SUCCESS)
            st = ldu_win_rename(file, final_w);
        if (st != LD_STATUS_SUCCESS)
            ldu_win_delete(file);
        CloseHandle(file);
    }
    if (reply)
        *reply = r;
    free(final_w);
    free(out);
    CloseHandle(dev);
    return st;
}
