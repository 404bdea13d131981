/* Test harness for engine tests: a simulated machine, an engine, an event
 * recorder, and a memory sink that keeps what a writer wrote. */
#ifndef LD_TEST_HARNESS_H
#define LD_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/livedump.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"
#include "livedump/fault.h"

#define REC_MAX 4096

typedef struct recorded_event {
    uint16_t id;
    ld_level level;
    bool complete; /* every field of the manifest was set */
    uint64_t status; /* NTStatus field, if any */
    bool has_status;
} recorded_event;

typedef struct recorder {
    recorded_event ev[REC_MAX];
    size_t count;
    uint64_t seen_complete[300]; /* per id: times seen with all fields set */
    uint64_t seen[300];
} recorder;

void recorder_fn(void *arg, const ld_event *ev);
size_t recorder_count(const recorder *r, uint16_t id);
/* Index of the first event id at or after `from`, or -1. */
long recorder_find(const recorder *r, uint16_t id, size_t from);

/* A sink into memory: a flat buffer grown to the highest offset written. */
typedef struct mem_sink {
    ld_sink sink;
    uint8_t *data;
    uint64_t size, cap;
    bool finished, aborted;
    uint64_t fail_after_bytes; /* 0: never fail; else fail with status once this many bytes were written */
    ld_status fail_status;
    uint64_t written;
} mem_sink;

/* The sink is not freed by finish/abort (the test owns it). */
void mem_sink_init(mem_sink *m);
void mem_sink_release(mem_sink *m);

/* The engine sees the machine through the fault wrapper (livedump/fault.h):
 * tests inject faults and count calls with h.fault, and harness_stop checks
 * with its counting platform that nothing leaked. */
typedef struct harness {
    ld_sim *sim;
    ld_fault_hal *fault; /* wraps ld_sim_hal(sim) */
    const ld_hal *hal;   /* the wrapper's table */
    ld_engine *engine;
    recorder *rec;
    int64_t allocs_before;
} harness;

void harness_config(ld_sim_config *cfg);
void harness_start(harness *h, const ld_sim_config *cfg, bool allow);
/* Destroys the engine, checks no platform allocation leaked (the fault
 * wrapper's count) and the machine is not corralled, then destroys the
 * wrapper and the machine. */
void harness_stop(harness *h);

#endif
