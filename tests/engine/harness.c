#include <stdlib.h>
#include <string.h>

#include "harness.h"

void recorder_fn(void *arg, const ld_event *ev)
{
    recorder *r = arg;
    if (r->count >= REC_MAX)
        return;
    recorded_event *e = &r->ev[r->count++];
    e->id = ev->id;
    e->level = ev->level;
    e->complete = true;
    for (uint32_t i = 0; i < ev->desc->field_count; i++)
        if (!ev->values[i].set)
            e->complete = false;
    e->has_status = ld_event_get_u64(ev, "NTStatus", &e->status);
    if (ev->id < 300) {
        r->seen[ev->id]++;
        if (e->complete)
            r->seen_complete[ev->id]++;
    }
}

size_t recorder_count(const recorder *r, uint16_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        n += r->ev[i].id == id;
    return n;
}

long recorder_find(const recorder *r, uint16_t id, size_t from)
{
    for (size_t i = from; i < r->count; i++)
        if (r->ev[i].id == id)
            return (long)i;
    return -1;
}

static ld_status mem_write(ld_sink *s, uint64_t off, const void *buf, size_t len)
{
    mem_sink *m = s->ctx;
    if (m->fail_after_bytes && m->written + len > m->fail_after_bytes)
        return m->fail_status;
    if (off + len > m->cap) {
        uint64_t cap = m->cap ? m->cap : 1 << 20;
        while (cap < off + len)
            cap *= 2;
        uint8_t *d = realloc(m->data, cap);
        if (!d)
            return LD_STATUS_NO_MEMORY;
        memset(d + m->cap, 0, cap - m->cap);
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + off, buf, len);
    if (off + len > m->size)
        m->size = off + len;
    m->written += len;
    return LD_STATUS_SUCCESS;
}

static ld_status mem_finish(ld_sink *s, uint64_t size)
{
    mem_sink *m = s->ctx;
    if (size > m->size && mem_write(s, size - 1, "", 1) != LD_STATUS_SUCCESS)
        return LD_STATUS_NO_MEMORY;
    m->size = size;
    m->finished = true;
    return LD_STATUS_SUCCESS;
}

static void mem_abort(ld_sink *s)
{
    mem_sink *m = s->ctx;
    m->aborted = true;
}

void mem_sink_init(mem_sink *m)
{
    memset(m, 0, sizeof *m);
    m->sink.version = LD_SINK_VERSION;
    m->sink.ctx = m;
    m->sink.write = mem_write;
    m->sink.finish = mem_finish;
    m->sink.abort = mem_abort;
}

void mem_sink_release(mem_sink *m)
{
    free(m->data);
    m->data = NULL;
}

void harness_config(ld_sim_config *cfg)
{
    ld_sim_config_init(cfg);
    cfg->memory_bytes = 128ull << 20;
    cfg->cpus = 2;
    cfg->seed = 42;
    /* Room for every buffer: partial dumps are tested on purpose only. */
    cfg->pool_bytes[LD_POOL_SYSTEM_PARTITION] = 1ull << 30;
}

void harness_start(harness *h, const ld_sim_config *cfg, bool allow)
{
    memset(h, 0, sizeof *h);
    h->rec = calloc(1, sizeof *h->rec);
    assert_non_null(h->rec);
    assert_int_equal(ld_sim_create(cfg, &h->sim), LD_STATUS_SUCCESS);
    assert_int_equal(ld_fault_hal_create(ld_sim_hal(h->sim), NULL, &h->fault), LD_STATUS_SUCCESS);
    h->hal = ld_fault_hal_get(h->fault);
    h->allocs_before = ld_fault_outstanding_allocs(h->fault);
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.allow_live_dump = allow;
    opts.on_event = recorder_fn;
    opts.on_event_arg = h->rec;
    assert_int_equal(ld_engine_create(h->hal, &opts, &h->engine), LD_STATUS_SUCCESS);
}

void harness_stop(harness *h)
{
    ld_engine_destroy(h->engine);
    h->engine = NULL;
    assert_false(ld_sim_corralled(h->sim));
    assert_int_equal(ld_fault_outstanding_allocs(h->fault), h->allocs_before);
    for (int p = 0; p < LD_POOL_COUNT; p++)
        assert_int_equal(ld_sim_pool_used(h->sim, (ld_pool)p), 0);
    ld_fault_hal_destroy(h->fault);
    ld_sim_destroy(h->sim);
    free(h->rec);
}
