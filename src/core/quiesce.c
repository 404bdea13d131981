/* The steps shared by both quiesces: stop the machine through the HAL,
 * capture every processor's context, and mark the required data of that
 * instant. Events raised while stopped are queued and delivered after the
 * corral event, in order. */
#include "quiesce.h"
#include "emit.h"
#include "select.h"

static bool in_ranges(const ld_dump *d, uint64_t pfn)
{
    for (size_t i = 0; i < d->info.range_count; i++)
        if (pfn >= d->ranges[i].first_pfn && pfn - d->ranges[i].first_pfn < d->ranges[i].page_count)
            return true;
    return false;
}

static bool is_io_space(const ld_dump *d, uint64_t pfn)
{
    return ld_dump_page_kind(d, pfn) == LD_PAGE_IO_SPACE;
}

/* Each processor's current stack pages and page-directory (CR3) page that
 * are real RAM: required data whatever their kind. */
void ldi_context_pages(ld_engine *e, ldi_session *s, void (*fn)(ldi_session *s, uint64_t pfn))
{
    ld_dump *d = s->dump;
    uint32_t shift = (uint32_t)__builtin_ctz(e->hal->page_size);
    for (uint32_t i = 0; i < d->info.cpu_count; i++) {
        const ld_cpu_context *c = &d->contexts[i];
        uint64_t pages[65];
        int n = 0;
        if (c->valid & LD_CTX_STACK_RANGE)
            for (uint64_t p = 0; p < c->stack_pages && p < 64; p++)
                pages[n++] = c->stack_base_pfn + p;
        if (c->valid & LD_CTX_CONTROL)
            pages[n++] = (c->cr3 & ~0xfffull) >> shift;
        for (int k = 0; k < n; k++)
            if (pages[k] < d->info.max_pfn && in_ranges(d, pages[k]) && !is_io_space(d, pages[k]))
                fn(s, pages[k]);
    }
}

static void require_page(ldi_session *s, uint64_t pfn)
{
    ldi_bitmap_set(&s->required, pfn);
}

/* ---- work done while the machine is stopped (both quiesces) ---- */

ld_status ldi_capture_contexts(ld_engine *e, ldi_session *s)
{
    const ld_hal *hal = e->hal;
    ld_dump *d = s->dump;
    for (uint32_t i = 0; i < d->info.cpu_count; i++) {
        ld_cpu_context *c = &d->contexts[i];
        memset(c, 0, sizeof *c);
        c->cpu = i;
        if ((hal->caps & LD_HAL_CAP_CPU_CONTEXT) && hal->cpu_context) {
            ld_status st = hal->cpu_context(hal->ctx, i, c);
            if (st != LD_STATUS_SUCCESS)
                return st;
            c->cpu = i;
        }
    }
    if (e->plat->system_time)
        d->info.system_time = e->plat->system_time(e->plat->ctx);
    d->info.system_uptime = ldi_now(e) / 100u;
    return LD_STATUS_SUCCESS;
}

/* Required data: the required kinds, every processor's current stack and
 * its page directory (CR3) page. */
void ldi_mark_required(ld_engine *e, ldi_session *s)
{
    ld_dump *d = s->dump;
    ldi_bitmap_clear_all(&s->required);
    for (size_t i = 0; i < d->kind_count; i++)
        if (ldi_kind_required((ld_page_kind)d->kinds[i].kind))
            ldi_bitmap_set_range(&s->required, d->kinds[i].first_pfn, d->kinds[i].page_count);
    ldi_context_pages(e, s, require_page);
}

/* After a quiesce: the corral event, then the events raised while the
 * machine was stopped (queued, in order), then the uncorral event. */
static void emit_quiesce_steps(ld_engine *e, uint16_t corral_id, uint16_t uncorral_id, const ld_quiesce_times *t)
{
    ld_event ev;
    e->queue_events = false;
    ldi_ev(&ev, e, corral_id);
    ldi_ev_u64(&ev, "CorralDuration_ms", ldi_ms(t->corral_ns));
    ldi_ev_u64(&ev, "DisableInterruptsDuration_ms", ldi_ms(t->disable_interrupts_ns));
    ldi_ev_u64(&ev, "SaveSupervisorStateDuration_ms", ldi_ms(t->save_supervisor_state_ns));
    ldi_ev_u64(&ev, "SuspendClockTimerDuration_ms", ldi_ms(t->suspend_clock_timer_ns));
    ldi_emit(e, &ev);
    ldi_flush_events(e);
    ldi_ev(&ev, e, uncorral_id);
    ldi_ev_u64(&ev, "UncorralDuration_ms", ldi_ms(t->uncorral_ns));
    ldi_ev_u64(&ev, "EnableInterruptsDuration_ms", ldi_ms(t->enable_interrupts_ns));
    ldi_ev_u64(&ev, "RestoreSupervisorStateDuration_ms", ldi_ms(t->restore_supervisor_state_ns));
    ldi_ev_u64(&ev, "ResumeClockTimerDuration_ms", ldi_ms(t->resume_clock_timer_ns));
    ldi_emit(e, &ev);
}

/* Run fn with the machine stopped. Events raised inside are queued and
 * delivered after the corral event, in order. A corral that fails leaves
 * the machine running (the HAL guarantees it) and is reported. */
ld_status ldi_quiesce(ld_engine *e, ldi_session *s, uint16_t start_id, uint16_t corral_id,
                      uint16_t uncorral_id, uint16_t end_id, ld_quiesced_fn fn, void *arg,
                      ld_quiesce_times *times, uint64_t *wall_ns)
{
    ldi_emit_simple(e, start_id);
    memset(times, 0, sizeof *times);
    ldi_queue_events(e);
    uint64_t t0 = ldi_now(e);
    ld_status st = e->hal->quiesce(e->hal->ctx, s->req->corral_timeout_ns, fn, arg, times);
    *wall_ns = ldi_now(e) - t0;
    emit_quiesce_steps(e, corral_id, uncorral_id, times);
    if (st == LD_STATUS_TIMEOUT)
        ldi_emit_generic(e, "Processors did not reach the corral in time; the machine was resumed", "TimeoutNs",
                         s->req->corral_timeout_ns, "ProcessorCount", s->dump->info.cpu_count);
    ldi_emit_simple(e, end_id);
    return st;
}
