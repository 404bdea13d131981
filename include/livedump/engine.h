/* livedump: the live dump engine.
 *
 * Pipeline of one capture (docs/architecture.md):
 *   request -> policy gate -> sizing (quiesce, bitmap, estimate, buffers)
 *   -> capture pages (mirroring, quiesce, copy) -> format writer -> sink
 *
 * One engine drives one machine (one HAL) and runs one live dump at a time.
 * Ownership: ld_engine_create returns an engine the caller frees with
 * ld_engine_destroy (which also discards a deferred dump). Sinks passed to
 * capture/write calls are consumed: the engine always finishes or aborts
 * them. Names and GUIDs given to register calls are copied.
 */
#ifndef LIVEDUMP_ENGINE_H
#define LIVEDUMP_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "livedump/status.h"
#include "livedump/types.h"
#include "livedump/machine.h"
#include "livedump/events.h"
#include "livedump/output.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LD_BUGCHECK_LIVE_SYSTEM_DUMP 0x161u
/* Task Manager's bug check parameter 1: the ASCII of "Taskmgr". */
#define LD_BUGCHECK_PARAM_TASKMGR 0x005461736b6d6772ull

typedef enum ld_dump_type {
    LD_DUMP_FULL_KERNEL = 0,   /* full live kernel dump */
    LD_DUMP_KERNEL_STACKS = 1, /* processor states and all kernel thread stacks */
    LD_DUMP_MINI = 2           /* required data only */
} ld_dump_type;

/* Extra pages (Task Manager's "capture user / hypervisor pages"). */
#define LD_ADD_USER_PAGES             0x1u
#define LD_ADD_HV_PAGES               0x2u
#define LD_ADD_HV_NONESSENTIAL_PAGES  0x4u /* needs LD_ADD_HV_PAGES */

/* Capture flags. */
#define LD_FLAG_ABORT_IF_MEMORY_PRESSURE 0x1u
#define LD_FLAG_SELECTIVE_DUMP           0x2u /* leave the file cache out */
#define LD_FLAG_USE_MIRRORING            0x4u /* pre-copy while running */
#define LD_FLAG_DEFER                    0x8u /* keep the dump in memory for a later write */

/* 2 added `cancel`. The engine accepts 1 and 2. */
#define LD_CAPTURE_REQUEST_VERSION 2

typedef struct ld_capture_request {
    uint32_t version;              /* LD_CAPTURE_REQUEST_VERSION (ld_capture_request_init) */
    uint32_t bugcheck_code;        /* default LD_BUGCHECK_LIVE_SYSTEM_DUMP */
    uint64_t bugcheck_params[4];
    ld_dump_type type;
    uint32_t add_pages;            /* LD_ADD_* */
    uint32_t flags;                /* LD_FLAG_* ; default USE_MIRRORING */
    uint64_t corral_timeout_ns;    /* default 2 s */
    uint64_t mirror_budget_ns;     /* time limit of mirroring phase 1; default 2 s */
    uint32_t mirror_max_passes;    /* phase-1 passes at most; default 8 */
    const char *comment;           /* extra text for the dump's comment, may be NULL */
    ld_progress_fn progress;       /* may be NULL; may stop the work (types.h) */
    void *progress_arg;
    /* Version 2. May be NULL. A flag the engine polls between phases,
     * mirroring passes and runs of pages copied or written (never while the
     * machine is stopped: a quiesce under way finishes first); non-zero
     * stops the capture with LD_STATUS_CANCELLED. Set it from any thread or
     * a signal handler (a sig_atomic_t is an int); it must outlive the
     * call. Cancellation: event 2 carries STATUS_CANCELLED, the machine
     * runs, every buffer is freed, the sink is aborted (no file). */
    const volatile int *cancel;
} ld_capture_request;

LD_EXTERN void ld_capture_request_init(ld_capture_request *req);
/* Set type and add_pages from a DTrace lkd() option: 0x0 full kernel,
 * 0x1 user + kernel, 0x2 minidump, 0x4 hypervisor + kernel, 0x5 user +
 * kernel + hypervisor. Other values: LD_STATUS_INVALID_PARAMETER. */
LD_EXTERN ld_status ld_capture_request_from_lkd(ld_capture_request *req, uint32_t lkd_option);
LD_EXTERN const char *ld_dump_type_name(ld_dump_type type);

/* What a capture (or deferred write) did. Durations in nanoseconds. */
typedef struct ld_result {
    ld_status status;
    uint32_t page_size;             /* of the machine: bytes of each page counted below */

    /* pages and bytes */
    uint64_t pages_by_kind[LD_PAGE_KIND_COUNT]; /* pages in the dump, by kind */
    uint64_t pages;                 /* pages in the dump */
    uint64_t pages_required;        /* of which required data */
    uint64_t pages_removed_by_callbacks;
    uint64_t pages_left_out;        /* selected but not captured: buffers ran out or the file
                                       size limit was reached (partial dump) */
    uint64_t pages_left_out_by_kind[LD_PAGE_KIND_COUNT];
    bool size_limit_reached;        /* some were left out to fit dump_file_size_limit (event 113) */
    uint64_t pages_estimated;       /* event 113 */
    uint64_t pages_allocated;
    uint64_t pool_pages[LD_POOL_COUNT];
    uint64_t header_bytes, primary_bytes, secondary_bytes, total_bytes, file_bytes;
    uint32_t blobs;                 /* secondary blobs included */
    bool hv_unavailable;            /* LD_ADD_HV_PAGES asked of a machine that runs no hypervisor
                                       (no LD_HAL_CAP_HYPERVISOR, no hypervisor pages): the dump
                                       holds none (event 6; the comment says "hv-unavailable") */

    /* memory pressure */
    uint64_t available_bytes, physical_bytes, low_memory_threshold;
    bool io_space_enabled;

    /* mirroring */
    bool mirrored;                  /* false: every page was copied in the final quiesce */
    bool machine_stopped;           /* the HAL really stops the machine (LD_HAL_CAP_QUIESCE);
                                       false: the quiesces only bracket the final copy and the
                                       machine kept running (e.g. Linux /proc/kcore), so the
                                       "stopped" durations below are of that bracket */
    uint32_t mirror_passes;         /* phase-1 passes */
    uint64_t mirror_phase0_pages;   /* pages copied while running, phase 0 */
    uint64_t mirror_phase1_pages;   /* pages recopied while running, phase 1 */
    uint64_t quiesce_copied_pages;  /* pages copied while stopped */

    /* durations of the sizing workflow */
    uint64_t sizing_mirror_ns;
    ld_quiesce_times sizing_quiesce;
    uint64_t sizing_stopped_ns;     /* wall time of its whole quiesce call */
    uint64_t populate_bitmap_ns, remove_cache_ns;
    uint64_t remove_pages_callbacks_ns;
    uint64_t estimation_ns, allocation_ns;

    /* durations of the capture-pages workflow */
    uint64_t mirror_phase0_ns, mirror_phase1_ns;
    ld_quiesce_times capture_quiesce;
    uint64_t capture_stopped_ns;    /* wall time of its whole quiesce call */
    uint64_t copy_ns;               /* copy of pages while stopped */
    uint64_t hv_collect_ns;
    uint64_t memory_capture_ns;     /* the whole capture-pages workflow */

    /* totals */
    uint64_t capture_ns;            /* request to captured data */
    uint64_t write_ns;              /* format writer + sink */

    /* A successful LD_FLAG_DEFER capture: the handle of the held dump, for
     * ld_engine_write_deferred_dump / ld_engine_discard_deferred_dump.
     * NULL otherwise. */
    const ld_dump *deferred;
} ld_result;

typedef struct ld_engine ld_engine;

/* Memory for the engine, when the embedder wants to give it (to account
 * for it, bound it, or take it from a pool of its own). */
typedef struct ld_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size); /* NULL on failure, never aborts */
    void (*free)(void *ctx, void *ptr);     /* free(ctx, NULL) must be harmless */
} ld_allocator;

/* 2 added `allocator`. The engine accepts 1 and 2. */
#define LD_ENGINE_OPTIONS_VERSION 2

typedef struct ld_engine_options {
    uint32_t version;           /* LD_ENGINE_OPTIONS_VERSION */
    bool allow_live_dump;       /* policy AllowLiveDump; default true */
    uint32_t max_deferred;      /* deferred dumps held at once; default 1, at most
                                   LD_MAX_DEFERRED; 0 refuses LD_FLAG_DEFER */
    /* A first subscriber, so the policy events raised by create (271, 273)
     * are seen. May be NULL. */
    ld_event_fn on_event;
    void *on_event_arg;
    uint32_t on_event_mask;     /* LD_CHANNEL_BIT mask; default all */
    /* Policy DumpFileSize, in bytes; 0 (default) = no limit. Sizing leaves
     * the lowest-priority pages out so the estimated dump fits (event 113
     * DumpFileSizeLimitReached = 1), counting the format's own headers
     * (ld_format.overhead; for a deferred capture, whose format is not known
     * yet, the largest bound of the built-in formats). A write that still
     * goes past it ends with LD_STATUS_DISK_FULL. Bytes written count,
     * sparse holes do not. */
    uint64_t dump_file_size_limit;
    /* The dynamic low-memory threshold (default true): estimated dump
     * buffers + max(64 MiB, physical / 32). False: the buffers alone. */
    bool dynamic_low_memory_threshold;
    /* Version 2: where the engine's memory comes from — its own state, the
     * bitmaps, the dump's tables, and the page buffers when the HAL has no
     * pools of its own. NULL (default): the HAL's platform allocator. The
     * engine allocates nothing while the machine is stopped, so any
     * allocator will do; it must outlive the engine and every dump it
     * holds. Copied at create. */
    const ld_allocator *allocator;
} ld_engine_options;

#define LD_MAX_DEFERRED 8

LD_EXTERN void ld_engine_options_init(ld_engine_options *opts);

/* opts may be NULL for the defaults; options of another version than
 * LD_ENGINE_OPTIONS_VERSION are LD_STATUS_INVALID_PARAMETER. The HAL must
 * outlive the engine. */
LD_EXTERN ld_status ld_engine_create(const ld_hal *hal, const ld_engine_options *opts,
                                     ld_engine **out);
LD_EXTERN void ld_engine_destroy(ld_engine *engine);

/* Events: fn gets every event of the channels in mask (LD_CHANNEL_BIT), on
 * the capturing thread. Events raised while the machine is stopped are
 * delivered after it resumes. Up to 8 subscribers. */
LD_EXTERN ld_status ld_engine_subscribe(ld_engine *engine, uint32_t channel_mask,
                                        ld_event_fn fn, void *arg);
LD_EXTERN ld_status ld_engine_unsubscribe(ld_engine *engine, ld_event_fn fn, void *arg);

/* RemovePages callbacks run in the sizing workflow; they may remove pages
 * from the dump with ld_page_set_remove. Required pages stay regardless.
 * A failing callback is logged (event 112) and the dump goes on. */
typedef struct ld_page_set ld_page_set;
LD_EXTERN void ld_page_set_remove(ld_page_set *set, uint64_t first_pfn, uint64_t count);
LD_EXTERN bool ld_page_set_contains(const ld_page_set *set, uint64_t pfn);
typedef ld_status (*ld_remove_pages_fn)(void *arg, ld_page_set *set);
LD_EXTERN ld_status ld_engine_add_remove_pages(ld_engine *engine, const char *name,
                                               ld_remove_pages_fn fn, void *arg);

/* Secondary-data callouts add a tagged blob of at most max_bytes
 * (1..LD_CALLOUT_MAX_BYTES: the .dmp blob header's DataSize is 32 bits and
 * the blob is padded to 8 bytes; larger is LD_STATUS_INVALID_PARAMETER). They are
 * asked during sizing (event 125) and filled after the capture (169); a
 * failing one is left out and the dump goes on. */
#define LD_CALLOUT_MAX_BYTES 0xFFFFFFF0ull
typedef ld_status (*ld_callout_fn)(void *arg, void *buf, uint64_t cap, uint64_t *len);
LD_EXTERN ld_status ld_engine_add_callout(ld_engine *engine, const char *name,
                                          const uint8_t guid[16], uint64_t max_bytes,
                                          ld_callout_fn fn, void *arg);

/* Policy: AllowLiveDump (event 272). While 0, captures fail with
 * LD_STATUS_ACCESS_DENIED. */
LD_EXTERN ld_status ld_engine_set_allow_live_dump(ld_engine *engine, bool allow);
/* Policy: a change that failed (a bad value, an unknown setting, ...):
 * events 271 "Set" and 272 with the AllowLiveDump still in force and
 * `failure` as NTStatus. The settings layer (ld_settings_change) calls it;
 * failure must not be LD_STATUS_SUCCESS. */
LD_EXTERN ld_status ld_engine_report_policy_failure(ld_engine *engine, ld_status failure);
/* Policy: the dump file size limit in bytes (0 = none) and the dynamic
 * low-memory threshold switch, as in ld_engine_options. Refused
 * (LD_STATUS_DEVICE_BUSY) while a capture runs. */
LD_EXTERN ld_status ld_engine_set_limits(ld_engine *engine, uint64_t dump_file_size_limit,
                                         bool dynamic_low_memory_threshold);

/* Admission: a hook asked after the AllowLiveDump gate of every capture,
 * before any work. It returns LD_STATUS_SUCCESS to let the capture go on,
 * or the status that refuses it (LD_STATUS_THROTTLED, ...) and fills `why`,
 * which the engine reports as event 6 before event 2. The report storage
 * (reports.h) uses it for throttling; it runs on the capturing thread and
 * must not call the engine. */
#define LD_ADMISSION_PARAMS 4
typedef struct ld_admission {
    char description[192];
    char param_name[LD_ADMISSION_PARAMS][48]; /* "" = unused */
    uint64_t param_value[LD_ADMISSION_PARAMS];
} ld_admission;
typedef ld_status (*ld_admit_fn)(void *arg, const ld_capture_request *req, ld_admission *why);
/* fn NULL removes the hook. Refused (LD_STATUS_DEVICE_BUSY) while a capture runs. */
LD_EXTERN ld_status ld_engine_set_admission(ld_engine *engine, ld_admit_fn fn, void *arg);

/* Take a live dump. With LD_FLAG_DEFER the data stays in the engine (format
 * and sink must be NULL) for ld_engine_write_deferred or
 * ld_engine_discard_deferred; result->deferred is its handle. Otherwise it
 * is written with `format` to `sink` (consumed) and freed. result may be
 * NULL. Returns result->status. While a capture runs, or while max_deferred
 * dumps are held (one, by default), LD_STATUS_DEVICE_BUSY.
 *
 * Ownership of deferred dumps: the engine owns them until they are written
 * or discarded; ld_engine_destroy discards what is still held, so a process
 * that exits through destroy leaks nothing. Handles are invalid after that. */
LD_EXTERN ld_status ld_engine_capture(ld_engine *engine, const ld_capture_request *req,
                                      const ld_format *format, ld_sink *sink,
                                      ld_result *result);

/* Stop the capture or deferred write running on this engine now, as a
 * request's cancel flag does (LD_STATUS_CANCELLED). Only an atomic store:
 * safe from any thread and from a signal handler. A cancel with nothing
 * running is forgotten when the next capture or write starts. */
LD_EXTERN void ld_engine_cancel(ld_engine *engine);

/* Write the oldest held dump (events 201-204). On success it is freed; on
 * failure (disk full, ...) it stays held, so it can be written elsewhere.
 * LD_STATUS_INVALID_DEVICE_STATE if none is held. */
LD_EXTERN ld_status ld_engine_write_deferred(ld_engine *engine, const ld_format *format,
                                             ld_sink *sink, ld_result *result);
/* Free the oldest held dump (events 251-252). LD_STATUS_INVALID_DEVICE_STATE
 * if none is held. */
LD_EXTERN ld_status ld_engine_discard_deferred(ld_engine *engine);
/* The same for the held dump `handle` (result->deferred of its capture);
 * LD_STATUS_INVALID_DEVICE_STATE if it is not held (any more). */
LD_EXTERN ld_status ld_engine_write_deferred_dump(ld_engine *engine, const ld_dump *handle,
                                                  const ld_format *format, ld_sink *sink,
                                                  ld_result *result);
/* The same with progress: the write reports phase "write" to progress
 * (may be NULL), as a capture does through its request's progress; a
 * progress that returns anything but success stops the write with that
 * status (the dump stays held), as ld_engine_cancel does. */
LD_EXTERN ld_status ld_engine_write_deferred_ex(ld_engine *engine, const ld_dump *handle,
                                                const ld_format *format, ld_sink *sink,
                                                ld_progress_fn progress, void *progress_arg,
                                                ld_result *result);
LD_EXTERN ld_status ld_engine_discard_deferred_dump(ld_engine *engine, const ld_dump *handle);
/* The oldest held dump, or NULL. Valid until it is written or discarded. */
LD_EXTERN const ld_dump *ld_engine_deferred(const ld_engine *engine);
/* How many dumps are held. */
LD_EXTERN uint32_t ld_engine_deferred_count(const ld_engine *engine);
/* True if `handle` is held now (a handle once written or discarded is not,
 * and must not be dereferenced). */
LD_EXTERN bool ld_engine_holds(const ld_engine *engine, const ld_dump *handle);

/* Report something in the event stream as event 6 (generic): what a
 * layer above the engine did, e.g. the report storage deleting a dump by
 * retention or rebuilding a corrupt throttling state. */
LD_EXTERN ld_status ld_engine_note(ld_engine *engine, const ld_admission *note);

#ifdef __cplusplus
}
#endif
#endif
