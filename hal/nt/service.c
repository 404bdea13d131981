/* One capture for the driver: the request checked, a system thread that
 * opens the backend, runs the engine and writes the dump into the caller's
 * file at PASSIVE_LEVEL, every event packed for the caller, one capture at
 * a time machine-wide.
 *
 * Why a system thread: KeInitializeCrashDumpHeader records the page
 * directory of the current thread's process, which must be the System
 * process's (not the client's); and a capture that runs in no user
 * process cannot be suspended, attached or have user APCs delivered to
 * it. The dispatch routine waits for the thread, so the IOCTL is
 * synchronous and the driver cannot be unloaded while it runs (the
 * caller's handle holds the device). */
#include "nt_internal.h"
#include "livedump/engine.h"
#include "livedump/output.h"
#include "livedump/sys/sink.h"

static uint32_t busy; /* atomic: one live dump at a time, machine-wide */

bool ldn_service_busy(void)
{
    return __atomic_load_n(&busy, __ATOMIC_ACQUIRE) != 0;
}

static bool terminated(const char *s, size_t cap)
{
    for (size_t i = 0; i < cap; i++)
        if (!s[i])
            return true;
    return false;
}

ld_status ldn_request_check(const ld_nt_request *req)
{
    if (!req || req->version != LD_NT_REQUEST_VERSION || req->size != sizeof *req)
        return LD_STATUS_INVALID_PARAMETER;
    if (req->type > LD_DUMP_MINI || req->reserved)
        return LD_STATUS_INVALID_PARAMETER;
    if (req->add_pages & ~(uint32_t)(LD_ADD_USER_PAGES | LD_ADD_HV_PAGES | LD_ADD_HV_NONESSENTIAL_PAGES))
        return LD_STATUS_INVALID_PARAMETER;
    if (req->flags & ~(uint32_t)(LD_FLAG_ABORT_IF_MEMORY_PRESSURE | LD_FLAG_SELECTIVE_DUMP | LD_FLAG_USE_MIRRORING))
        return LD_STATUS_INVALID_PARAMETER; /* LD_FLAG_DEFER: the dump goes to the file */
    if (req->nt_flags & ~(uint32_t)(LD_NT_NO_KDBG_DECODE | LD_NT_NO_PROBE))
        return LD_STATUS_INVALID_PARAMETER;
    if (req->stop_budget_ns > LD_NT_STOP_BUDGET_MAX_NS)
        return LD_STATUS_INVALID_PARAMETER;
    if (!terminated(req->format, sizeof req->format) || !terminated(req->comment, sizeof req->comment))
        return LD_STATUS_INVALID_PARAMETER;
    if (req->format[0] && !ld_format_find(req->format))
        return LD_STATUS_INVALID_PARAMETER;
    return LD_STATUS_SUCCESS;
}

/* ---- events ---- */

/* Straight into dst: a first pass sizes the record (strings cut so one
 * record stays within LD_NT_EVENT_RECORD_MAX), the second writes it. No
 * copy on the stack: this runs in the kernel's small stack. */
size_t ldn_event_encode(const ld_event *ev, void *dst, size_t cap)
{
    const ld_event_desc *d = ev->desc;
    uint32_t fields = d ? d->field_count : 0;
    if (fields > LD_EVENT_MAX_FIELDS)
        return 0;
    size_t head = sizeof(ld_nt_event_record) + (size_t)fields * 8;
    size_t lens[LD_EVENT_MAX_FIELDS];
    size_t at = head;
    for (uint32_t i = 0; i < fields; i++) {
        lens[i] = 0;
        ld_field_type t = d->fields[i].type;
        if (!ev->values[i].set || (t != LD_FIELD_ANSI_STRING && t != LD_FIELD_UNICODE_STRING))
            continue;
        size_t len = ev->values[i].s ? strlen(ev->values[i].s) : 0;
        if (at + 1 > LD_NT_EVENT_RECORD_MAX - 7)
            return 0;
        if (len > LD_NT_EVENT_RECORD_MAX - 7 - at - 1)
            len = LD_NT_EVENT_RECORD_MAX - 7 - at - 1; /* a text longer than a record: cut */
        lens[i] = len;
        at += len + 1;
    }
    size_t end = (at + 7) & ~(size_t)7;
    if (end > cap)
        return 0;
    uint8_t *rec = dst;
    ld_nt_event_record h;
    memset(&h, 0, sizeof h);
    h.size = (uint16_t)end;
    h.id = ev->id;
    h.channel = (uint8_t)ev->channel;
    h.level = (uint8_t)ev->level;
    h.field_count = (uint8_t)fields;
    h.timestamp_ns = ev->timestamp_ns;
    at = head;
    for (uint32_t i = 0; i < fields; i++) {
        uint64_t v = 0;
        if (ev->values[i].set) {
            h.set_mask |= 1u << i;
            ld_field_type t = d->fields[i].type;
            if (t == LD_FIELD_ANSI_STRING || t == LD_FIELD_UNICODE_STRING) {
                if (lens[i])
                    memcpy(rec + at, ev->values[i].s, lens[i]);
                rec[at + lens[i]] = 0;
                v = at;
                at += lens[i] + 1;
            } else {
                v = ev->values[i].u;
            }
        }
        memcpy(rec + sizeof h + (size_t)i * 8, &v, 8);
    }
    memset(rec + at, 0, end - at);
    memcpy(rec, &h, sizeof h);
    return end;
}

/* ---- the sink: positioned ZwWriteFile into the caller's file ---- */

typedef struct file_sink {
    ld_sink sink;
    HANDLE file;
} file_sink;

#define WRITE_CHUNK (1u << 30)

static ld_status fs_write(ld_sink *s, uint64_t offset, const void *buf, size_t len)
{
    file_sink *f = s->ctx;
    const uint8_t *p = buf;
    while (len) {
        ULONG n = len > WRITE_CHUNK ? WRITE_CHUNK : (ULONG)len;
        IO_STATUS_BLOCK iosb;
        memset(&iosb, 0, sizeof iosb);
        LARGE_INTEGER at;
        at.QuadPart = (LONGLONG)offset;
        NTSTATUS st = ZwWriteFile(f->file, NULL, NULL, NULL, &iosb, (PVOID)p, n, &at, NULL);
        if (!NT_SUCCESS(st))
            return ldn_status(st);
        if (iosb.Information != n)
            return LD_STATUS_DISK_FULL;
        p += n;
        offset += n;
        len -= n;
    }
    return LD_STATUS_SUCCESS;
}

static ld_status set_size(HANDLE file, uint64_t size)
{
    IO_STATUS_BLOCK iosb;
    FILE_END_OF_FILE_INFORMATION eof;
    memset(&iosb, 0, sizeof iosb);
    eof.EndOfFile.QuadPart = (LONGLONG)size;
    NTSTATUS st = ZwSetInformationFile(file, &iosb, &eof, sizeof eof, FileEndOfFileInformation);
    return NT_SUCCESS(st) ? LD_STATUS_SUCCESS : ldn_status(st);
}

static ld_status fs_finish(ld_sink *s, uint64_t size)
{
    file_sink *f = s->ctx;
    ld_status st = set_size(f->file, size);
    if (st == LD_STATUS_SUCCESS) {
        IO_STATUS_BLOCK iosb;
        memset(&iosb, 0, sizeof iosb);
        NTSTATUS ns = ZwFlushBuffersFile(f->file, &iosb);
        if (!NT_SUCCESS(ns))
            st = ldn_status(ns);
    }
    if (st != LD_STATUS_SUCCESS)
        (void)set_size(f->file, 0);
    return st;
}

/* Nothing half-written stays: the file is emptied (the client deletes it). */
static void fs_abort(ld_sink *s)
{
    file_sink *f = s->ctx;
    (void)set_size(f->file, 0);
}

/* ---- the job ---- */

typedef struct job {
    ld_nt_request req;
    ldn_config cfg;
    HANDLE file;
    file_sink sink;
    uint8_t *events;
    size_t event_cap, event_len;
    uint32_t event_count, events_dropped;
    ld_nt_reply reply;
} job;

static void on_event(void *arg, const ld_event *ev)
{
    job *j = arg;
    size_t n = ldn_event_encode(ev, j->events + j->event_len, j->event_cap - j->event_len);
    if (!n) {
        j->events_dropped++;
        return;
    }
    j->event_len += n;
    j->event_count++;
}

static ld_status run(job *j)
{
    ldn *n = NULL;
    ld_status st = ldn_open(&j->cfg, &n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.max_deferred = 0; /* the dump always goes to the file */
    opts.on_event = on_event;
    opts.on_event_arg = j;
    ld_engine *engine = NULL;
    st = ld_engine_create(ldn_hal(n), &opts, &engine);
    if (st == LD_STATUS_SUCCESS) {
        const ld_nt_request *r = &j->req;
        ld_capture_request req;
        ld_capture_request_init(&req);
        req.type = (ld_dump_type)r->type;
        req.add_pages = r->add_pages;
        req.flags = r->flags;
        if (r->bugcheck_code)
            req.bugcheck_code = r->bugcheck_code;
        memcpy(req.bugcheck_params, r->bugcheck_params, sizeof req.bugcheck_params);
        req.corral_timeout_ns = r->corral_timeout_ns ? r->corral_timeout_ns : n->budget_ns;
        req.comment = r->comment[0] ? r->comment : NULL;
        const ld_format *fmt = ld_format_find(r->format[0] ? r->format : "dmp");
        j->sink.sink.version = LD_SINK_VERSION;
        j->sink.sink.ctx = &j->sink;
        j->sink.sink.write = fs_write;
        j->sink.sink.finish = fs_finish;
        j->sink.sink.abort = fs_abort;
        j->sink.file = j->file;
        st = ld_engine_capture(engine, &req, fmt, &j->sink.sink, &j->reply.result);
        j->reply.result.deferred = NULL;
        ld_engine_destroy(engine);
    }
    ldn_get_stats(n, &j->reply.stats);
    ldn_close(n);
    return st;
}

static void NTAPI job_main(PVOID arg)
{
    job *j = arg;
    j->reply.status = run(j);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

ld_status ldn_service_capture(const ld_nt_request *req, HANDLE file, void *out, size_t cap, size_t *out_len,
                              const ldn_config *cfg)
{
    if (out_len)
        *out_len = 0;
    if (!out || cap < sizeof(ld_nt_reply) || !out_len)
        return LD_STATUS_BUFFER_TOO_SMALL;
    ld_status st = ldn_request_check(req);
    if (st != LD_STATUS_SUCCESS)
        return st;
    if (!file)
        return LD_STATUS_INVALID_PARAMETER;
    uint32_t idle = 0;
    if (!__atomic_compare_exchange_n(&busy, &idle, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return LD_STATUS_DEVICE_BUSY;
    job *j = ldn_zalloc(sizeof *j);
    size_t ecap = cap - sizeof(ld_nt_reply);
    if (ecap > (1u << 20))
        ecap = 1u << 20;
    uint8_t *events = ecap ? ldn_alloc(ecap) : NULL;
    if (!j || (ecap && !events)) {
        ldn_free(j);
        ldn_free(events);
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        return LD_STATUS_INSUFFICIENT_RESOURCES;
    }
    j->req = *req;
    if (cfg) {
        j->cfg = *cfg;
    } else {
        j->cfg.stop_budget_ns = req->stop_budget_ns;
        j->cfg.nt_flags = req->nt_flags;
    }
    j->file = file;
    j->events = events;
    j->event_cap = ecap;
    j->reply.version = LD_NT_REPLY_VERSION;
    j->reply.size = sizeof j->reply;
    j->reply.status = LD_STATUS_UNSUCCESSFUL;

    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    HANDLE thread = NULL;
    NTSTATUS s = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, &oa, NULL, NULL, job_main, j);
    PVOID object = NULL;
    if (NT_SUCCESS(s)) {
        s = ObReferenceObjectByHandle(thread, SYNCHRONIZE, NULL, KernelMode, &object, NULL);
        if (!NT_SUCCESS(s)) {
            /* cannot wait on it by object: the handle still can be waited on */
            (void)ZwWaitForSingleObject(thread, FALSE, NULL);
            s = STATUS_SUCCESS;
        } else {
            (void)KeWaitForSingleObject(object, Executive, KernelMode, FALSE, NULL);
            ObDereferenceObject(object);
        }
        ZwClose(thread);
        st = j->reply.status;
    } else {
        st = ldn_status(s);
        j->reply.status = st;
    }
    j->reply.event_bytes = (uint32_t)j->event_len;
    j->reply.event_count = j->event_count;
    j->reply.events_dropped = j->events_dropped;
    memcpy(out, &j->reply, sizeof j->reply);
    if (j->event_len)
        memcpy((uint8_t *)out + sizeof j->reply, j->events, j->event_len);
    *out_len = sizeof j->reply + j->event_len;
    ldn_free(events);
    ldn_free(j);
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    return st;
}
