/* livedump: the Windows NT backend as its client sees it.
 *
 * On Windows the engine runs inside the kernel driver livedump.sys, over
 * the NT HAL (hal/nt/, docs/windows.md). A program asks it for a live dump
 * through one device and one IOCTL: a capture request goes in with the
 * handle of a file the caller created; the driver captures from a system
 * thread, writes the dump into that file at PASSIVE_LEVEL and answers with
 * the status, the result, the backend's own figures and every event the
 * capture raised (the records below). One live dump at a time machine-wide:
 * a second request while one runs gets LD_STATUS_DEVICE_BUSY.
 *
 * The structures cross the user/kernel boundary as they are: both sides are
 * x64 Windows code of the same ABI. Every one starts with its version and
 * its size, and the driver refuses what it does not know.
 */
#ifndef LIVEDUMP_NT_H
#define LIVEDUMP_NT_H

#include <stddef.h>
#include <stdint.h>

#include "livedump/export.h"
#include "livedump/status.h"
#include "livedump/events.h"
#include "livedump/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The device (kernel name; the Win32 name user mode opens). Its ACL lets
 * SYSTEM and Administrators in, nobody else. */
#define LD_NT_DEVICE_KERNEL_NAME L"\\Device\\LiveDump"
#define LD_NT_DEVICE_LINK_NAME   L"\\DosDevices\\LiveDump"
#define LD_NT_DEVICE_PATH        "\\\\.\\LiveDump"

/* CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED,
 * FILE_READ_DATA | FILE_WRITE_DATA): the handle must be open for both. */
#define LD_NT_IOCTL_CAPTURE 0x0022E000u

/* How long the machine may stay stopped (every other processor parked,
 * their clock interrupts held): by default, and at most. The clock and
 * DPC watchdogs of Windows set these, docs/windows.md says how. */
#define LD_NT_STOP_BUDGET_DEFAULT_NS 50000000ull  /* 50 ms */
#define LD_NT_STOP_BUDGET_MAX_NS     100000000ull /* 100 ms */

/* nt_flags of a request. */
#define LD_NT_NO_KDBG_DECODE 0x1u /* leave KdDebuggerDataBlock as memory holds it (encoded) */
#define LD_NT_NO_PROBE       0x2u /* do not probe every page with MmCopyMemory at classification */

#define LD_NT_REQUEST_VERSION 1

typedef struct ld_nt_request {
    uint32_t version;            /* LD_NT_REQUEST_VERSION */
    uint32_t size;               /* sizeof(ld_nt_request) */
    uint32_t type;               /* ld_dump_type */
    uint32_t add_pages;          /* LD_ADD_* */
    uint32_t flags;              /* LD_FLAG_* (not LD_FLAG_DEFER) */
    uint32_t bugcheck_code;      /* 0: LD_BUGCHECK_LIVE_SYSTEM_DUMP */
    uint64_t bugcheck_params[4];
    uint64_t corral_timeout_ns;  /* 0: the stop budget; never more than it */
    uint64_t stop_budget_ns;     /* 0: LD_NT_STOP_BUDGET_DEFAULT_NS; at most LD_NT_STOP_BUDGET_MAX_NS */
    uint32_t nt_flags;           /* LD_NT_* */
    uint32_t reserved;           /* 0 */
    uint64_t file;               /* HANDLE of a file open for writing, synchronous I/O
                                    (no FILE_FLAG_OVERLAPPED); the dump is written at offset 0 */
    char format[16];             /* "dmp" (default when empty), "raw" or "elf", NUL-terminated */
    char comment[64];            /* added to the dump's comment, NUL-terminated */
} ld_nt_request;

/* What the NT backend did, besides the engine's result. */
typedef struct ld_nt_stats {
    uint32_t processors;         /* processors of the machine */
    uint32_t leader;             /* the processor that ran the capture in the last stop */
    uint64_t stop_budget_ns;     /* the budget in force */
    uint64_t max_parked_ns;      /* longest a processor stayed parked (last stop) */
    uint32_t dpc_allowance_percent; /* least DPC watchdog allowance left, in percent, among the
                                       parked processors as they arrived (100: watchdog off) */
    uint32_t kdbg_decoded;       /* 1: the dump holds the decoded debugger data block */
    uint64_t unreadable_pages;   /* pages MmCopyMemory refused: kept out (kind secure-kernel) */
    uint64_t own_pages_zeroed;   /* pages of the dump's own buffers, written as zeros */
    uint64_t mapped_batches;     /* reserved-mapping batches while stopped */
    uint64_t page_table_pages;   /* kernel page-table pages found by the walk */
    uint32_t modules;            /* loaded modules seen (kernel, HAL, others) */
    uint32_t kdbg_status;        /* why it was not decoded (LD_STATUS_*), 0 when it was */
} ld_nt_stats;

#define LD_NT_REPLY_VERSION 1

/* The driver's answer; `event_bytes` bytes of event records follow it in
 * the output buffer (as many as fit: events_dropped says how many did not). */
typedef struct ld_nt_reply {
    uint32_t version;            /* LD_NT_REPLY_VERSION */
    uint32_t size;               /* sizeof(ld_nt_reply) */
    uint32_t status;             /* of the whole request */
    uint32_t event_bytes;
    uint32_t event_count;
    uint32_t events_dropped;
    ld_nt_stats stats;
    ld_result result;            /* result.deferred is always NULL */
} ld_nt_reply;

/* One event, as the driver packs it: a record of `size` bytes (a multiple
 * of 8), then field_count 64-bit values, parallel to the event's fields in
 * the table (ld_event_desc_find(id)); a string field's value is the offset,
 * from the record's start, of its NUL-terminated UTF-8 text, which lies in
 * the record. */
typedef struct ld_nt_event_record {
    uint16_t size;
    uint16_t id;
    uint8_t channel;
    uint8_t level;
    uint8_t field_count;
    uint8_t reserved;
    uint32_t set_mask;           /* bit i: field i was set */
    uint32_t reserved2;
    uint64_t timestamp_ns;
} ld_nt_event_record;

#define LD_NT_EVENT_RECORD_MAX 2048u /* bytes of one record, at most */

/* Call fn(arg, event) for each record of buf (len bytes), in order, with
 * the event rebuilt (strings point into buf). Every size, count and offset
 * is checked first: LD_STATUS_FILE_CORRUPT (nothing delivered past the bad
 * record) for anything that does not fit the table or the buffer. */
LD_EXTERN ld_status ld_nt_events_decode(const void *buf, size_t len, ld_event_fn fn, void *arg);

#if defined(_WIN32)
/* Windows user mode: ask the driver for a live dump into a new file at
 * `path`. The file is created as "<path>.partial" (never over an existing
 * file, readable by SYSTEM, Administrators and its creator only), the
 * driver writes it, and it gets its name only when the dump succeeded;
 * otherwise it is deleted. on_event (may be NULL) gets every event of the
 * capture, after it. reply (may be NULL) gets the driver's answer. Returns
 * the status of the capture, or why the driver could not be asked
 * (LD_STATUS_NO_SUCH_FILE: the driver is not loaded; LD_STATUS_ACCESS_DENIED:
 * not an administrator). */
LD_EXTERN ld_status ld_nt_capture(const ld_nt_request *req, const char *path, ld_event_fn on_event, void *arg,
                                  ld_nt_reply *reply);
#endif

#ifdef __cplusplus
}
#endif
#endif
