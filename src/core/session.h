/* The engine's state and one capture's working state: data only. Every
 * stage of the workflow (sizing.c, allocate.c, capture.c, ...) reads them;
 * no function is declared here, so including this header ties no file to
 * another's code. */
#ifndef LDI_SESSION_H
#define LDI_SESSION_H

#include "base.h"
#include "bitmap.h"
#include "dump.h"
#include "livedump/engine.h"
#include "livedump/sys/hal.h"

#define LDI_MAX_SUBSCRIBERS 8
#define LDI_MAX_REMOVE_PAGES 16
#define LDI_MAX_CALLOUTS 16
#define LDI_NAME_MAX 64
#define LDI_QUEUED_EVENTS 32
/* Slots kept back for required pages found only in the capture quiesce
 * (the stacks of threads that became current after sizing). */
#define LDI_SPARE_SLOTS_PER_CPU 16

/* The states of one live dump (state.c holds the table of what may follow
 * what). */
typedef enum ldi_state {
    LDI_IDLE = 0,
    LDI_STARTED,           /* request accepted, policy checked */
    LDI_SIZING_MIRROR,     /* dirty log started, layout read */
    LDI_SIZING_QUIESCED,   /* stopped: contexts, required, bitmap */
    LDI_SIZING_CALLBACKS,  /* RemovePages callbacks */
    LDI_SIZING_ESTIMATE,   /* estimate + memory pressure */
    LDI_SIZING_ALLOCATE,   /* dump buffers */
    LDI_CAPTURE_PHASE0,    /* copy every page while running */
    LDI_CAPTURE_PHASE1,    /* recopy dirtied pages while running */
    LDI_CAPTURE_QUIESCED,  /* stopped: final copy */
    LDI_CAPTURE_SECONDARY, /* callouts */
    LDI_WRITING,           /* format writer + sink */
    LDI_HELD,              /* deferred data held in memory */
    LDI_STATE_COUNT
} ldi_state;

typedef struct ldi_remove_pages {
    char name[LDI_NAME_MAX];
    ld_remove_pages_fn fn;
    void *arg;
} ldi_remove_pages;

typedef struct ldi_callout {
    char name[LDI_NAME_MAX];
    uint8_t guid[16];
    uint64_t max_bytes;
    ld_callout_fn fn;
    void *arg;
} ldi_callout;

typedef struct ldi_subscriber {
    ld_event_fn fn;
    void *arg;
    uint32_t mask;
} ldi_subscriber;

/* The per-capture working state. */
typedef struct ldi_session {
    const ld_capture_request *req;
    ld_dump *dump;
    ld_result *res;
    ldi_bitmap select;   /* what the dump type keeps, from the kinds */
    ldi_bitmap required; /* required data, always kept */
    ldi_bitmap dirty;    /* dirty log fetch buffer */
    bool mirroring;      /* dirty log running */
    bool hv, ipt, io_space;
    uint64_t hv_secondary_bytes, ipt_bytes;
    uint64_t callout_bytes;
    bool callouts_fit;
    ld_status fail_in_quiesce; /* why the quiesce callback failed */
    ld_status stop;            /* why the work stops early (a cancel, a progress that said no) */
    uint64_t size_limit;       /* the engine's dump file size limit for this capture */
    const ld_format *format;   /* NULL for a deferred capture */
    bool know_memory;          /* the HAL's mem_status answered */
    uint64_t mem_available;    /* its available bytes */
    uint64_t mem_reserve;      /* what the low-memory threshold keeps for the system */
    bool dynamic_threshold;
    uint64_t t_start;
    uint64_t mirror_start_ns;
    uint64_t mirror_bytes;
} ldi_session;

struct ld_engine {
    const ld_hal *hal;
    /* What the engine uses: the HAL's platform for time and locks, memory
     * from the embedder's allocator when it gave one (engine options).
     * plat points at `platform`. */
    const ld_platform *plat;
    ld_platform platform;
    ld_allocator allocator;
    void *lock;
    ldi_state state;
    bool allow;
    uint32_t max_deferred;
    /* Deferred dumps, oldest first; the state is LDI_HELD while any is
     * held and no capture or write runs. */
    ld_dump *held[LD_MAX_DEFERRED];
    uint32_t held_count;
    uint64_t size_limit;        /* dump file size limit in bytes, 0 = none */
    bool dynamic_threshold;     /* dynamic low-memory threshold switch */
    ld_admit_fn admit;          /* admission hook, may be NULL */
    void *admit_arg;
    ldi_subscriber subs[LDI_MAX_SUBSCRIBERS];
    ldi_remove_pages remove_pages[LDI_MAX_REMOVE_PAGES];
    uint32_t remove_pages_count;
    ldi_callout callouts[LDI_MAX_CALLOUTS];
    uint32_t callout_count;
    /* Events raised while the machine is stopped wait here: no callback
     * runs while processors are corralled. */
    bool queue_events;
    ld_event queue[LDI_QUEUED_EVENTS];
    uint32_t queued;
    uint32_t dropped_events;
    /* ld_engine_cancel: set atomically (from any thread or a signal
     * handler), cleared when a capture or write claims the engine. */
    int cancel;
    /* State trace, for tests. */
    void (*state_hook)(void *arg, ldi_state from, ldi_state to);
    void *state_hook_arg;
};

static inline uint64_t ldi_now(const ld_engine *e)
{
    return e->plat->now_ns(e->plat->ctx);
}

/* Whether the capture must stop now: the engine's cancel, the request's
 * cancel flag (version 2), or an earlier stop. The first reason is kept in
 * s->stop. Never asked while the machine is stopped. */
static inline ld_status ldi_check_stop(ld_engine *e, ldi_session *s)
{
    if (s->stop == LD_STATUS_SUCCESS &&
        (__atomic_load_n(&e->cancel, __ATOMIC_ACQUIRE) ||
         (s->req->version >= 2 && s->req->cancel && *s->req->cancel)))
        s->stop = LD_STATUS_CANCELLED;
    return s->stop;
}

/* Progress to the request's callback, which may stop the work. */
static inline ld_status ldi_progress(ldi_session *s, const char *phase, uint64_t done, uint64_t total)
{
    if (s->stop == LD_STATUS_SUCCESS && s->req->progress) {
        ld_status st = s->req->progress(s->req->progress_arg, phase, done, total);
        if (st != LD_STATUS_SUCCESS)
            s->stop = st;
    }
    return s->stop;
}

#endif
