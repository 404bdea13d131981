/* The engine's private structures, shared by the files of the core that
 * implement one stage each: engine.c (API, state machine, events),
 * select.c (which pages a request keeps), sizing.c, capture.c, dump.c. */
#ifndef LD_CORE_ENGINE_INTERNAL_H
#define LD_CORE_ENGINE_INTERNAL_H

#include "src/core/base.h"
#include "src/core/bitmap.h"
#include "src/core/buffers.h"
#include "livedump/engine.h"

#define LDI_MAX_SUBSCRIBERS 8
#define LDI_MAX_REMOVE_PAGES 16
#define LDI_MAX_CALLOUTS 16
#define LDI_NAME_MAX 64
#define LDI_QUEUED_EVENTS 32
/* Slots kept back for required pages found only in the capture quiesce
 * (the stacks of threads that became current after sizing). */
#define LDI_SPARE_SLOTS_PER_CPU 16
#define LDI_COMMENT_MAX 256

/* The states of one live dump. Every change goes through ldi_transition,
 * which refuses a change the table does not allow. */
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

const char *ldi_state_name(ldi_state s);

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

/* A captured dump: everything a format writer needs. */
struct ld_dump {
    ld_dump_info info;
    const ld_hal *hal;
    ld_phys_range *ranges;
    ld_kind_range *kinds;       /* the classification read for this dump */
    size_t kind_count;
    ld_cpu_context *contexts;
    ldi_bitmap slots_map;       /* pages given a slot at allocation (ranked) */
    ldi_bitmap present;         /* pages in the dump: a subset of slots_map + spare */
    ldi_buffers buffers;
    uint64_t slot_pages;        /* slots used by slots_map; spares follow */
    uint64_t *spare_pfn;        /* PFN held by each spare slot */
    uint64_t spare_count, spare_cap;
    uint8_t *secondary;         /* one buffer for every blob */
    uint64_t secondary_cap, secondary_used;
    ld_blob *blobs;
    size_t blob_cap;
    char comment[LDI_COMMENT_MAX];
    ld_result result;           /* the capture's result, for deferred writes */
};

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
    const ld_platform *plat;
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
    /* State trace, for tests. */
    void (*state_hook)(void *arg, ldi_state from, ldi_state to);
    void *state_hook_arg;
};

/* engine.c */
bool ldi_transition(ld_engine *e, ldi_state to);
void ldi_emit(ld_engine *e, ld_event *ev);
ld_event *ldi_ev(ld_event *ev, ld_engine *e, uint16_t id);
void ldi_ev_u64(ld_event *ev, const char *field, uint64_t v);
void ldi_ev_str(ld_event *ev, const char *field, const char *s);
void ldi_emit_simple(ld_engine *e, uint16_t id);
void ldi_emit_status(ld_engine *e, uint16_t id, ld_status st);
void ldi_emit_generic(ld_engine *e, const char *text, const char *n1, uint64_t v1, const char *n2, uint64_t v2);
/* Event 6 with up to 8 named parameters (names NULL or "" = unused). */
void ldi_emit_generic_n(ld_engine *e, const char *text, const char *const *names, const uint64_t *values,
                        unsigned count);
void ldi_flush_events(ld_engine *e);
uint64_t ldi_now(const ld_engine *e);
static inline uint64_t ldi_ms(uint64_t ns) { return ns / 1000000u; }
void ldi_progress(const ldi_session *s, const char *phase, uint64_t done, uint64_t total);
void *ldi_zalloc(const ld_platform *p, size_t n);
void ldi_strlcpy(char *dst, const char *src, size_t cap);

/* select.c: which kinds a request keeps */
bool ldi_kind_required(ld_page_kind k);
bool ldi_kind_important(ld_page_kind k);
bool ldi_kind_selected(ld_page_kind k, const ld_capture_request *req, const ld_hal *hal);
ld_status ldi_validate_request(const ld_capture_request *req, const ld_hal *hal);

/* sizing.c: steps shared by both quiesces */
ld_status ldi_capture_contexts(ld_engine *e, ldi_session *s);
void ldi_mark_required(ld_engine *e, ldi_session *s);
void ldi_context_pages(ld_engine *e, ldi_session *s, void (*fn)(ldi_session *s, uint64_t pfn));
ld_status ldi_quiesce(ld_engine *e, ldi_session *s, uint16_t start_id, uint16_t corral_id,
                      uint16_t uncorral_id, uint16_t end_id, ld_quiesced_fn fn, void *arg,
                      ld_quiesce_times *times, uint64_t *wall_ns);

/* sizing.c / capture.c */
ld_status ldi_sizing(ld_engine *e, ldi_session *s);
/* format's bound of its own bytes (ld_format.overhead); NULL format: the
 * largest of the built-in formats. */
uint64_t ldi_format_overhead(const ld_format *format, const ld_dump_info *info, uint64_t pages);
ld_status ldi_capture_pages(ld_engine *e, ldi_session *s);
ld_status ldi_collect_secondary(ld_engine *e, ldi_session *s);

/* dump.c */
ld_dump *ldi_dump_new(const ld_hal *hal);
void ldi_dump_free(ld_dump *d);
void *ldi_dump_slot(ld_dump *d, uint64_t pfn); /* where pfn's copy goes, or NULL */
ld_status ldi_dump_spare(ld_dump *d, uint64_t pfn);
void ldi_dump_count_kinds(ld_dump *d, ld_result *res);

void ldi_session_free(ld_engine *e, ldi_session *s);

#endif
