/* Deferred dump data in one process: capture a live dump into memory
 * (LD_FLAG_DEFER), decide, then write it or discard it.
 *
 *   deferred_capture write FILE     capture, then write to FILE (raw)
 *   deferred_capture discard        capture, then discard
 *
 * An agent does this when it must capture at the moment of a problem but
 * can only decide later whether, and where, to keep the dump: if the write
 * fails (disk full), the dump is still held and can go elsewhere. The
 * engine owns a held dump until it is written or discarded; destroying the
 * engine discards it, so nothing leaks at exit. */
#include <stdio.h>
#include <string.h>

#include "livedump/livedump.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"

static void print_event(void *arg, const ld_event *ev)
{
    (void)arg;
    char msg[512];
    ld_event_format_message(ev, msg, sizeof msg);
    printf("  event %3u: %s\n", ev->id, msg);
}

int main(int argc, char **argv)
{
    bool write = argc == 3 && !strcmp(argv[1], "write");
    if (!write && !(argc == 2 && !strcmp(argv[1], "discard"))) {
        fprintf(stderr, "usage: deferred_capture write FILE | deferred_capture discard\n");
        return 2;
    }
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 128ull << 20;
    ld_sim *sim;
    ld_status st = ld_sim_create(&cfg, &sim);
    if (!ld_ok(st))
        return 1;
    ld_engine_options opts;
    ld_engine_options_init(&opts);
    opts.on_event = print_event;
    opts.on_event_mask = LD_CHANNEL_BIT(LD_CHANNEL_OPERATIONAL);
    ld_engine *engine;
    st = ld_engine_create(ld_sim_hal(sim), &opts, &engine);
    if (ld_ok(st)) {
        ld_capture_request req;
        ld_capture_request_init(&req);
        req.flags |= LD_FLAG_DEFER;
        ld_result res;
        printf("capture (deferred):\n");
        st = ld_engine_capture(engine, &req, NULL, NULL, &res);
        if (ld_ok(st)) {
            printf("held: %llu pages, handle %p\n", (unsigned long long)res.pages, (const void *)res.deferred);
            if (write) {
                ld_sink *sink;
                st = ld_sink_file_open(argv[2], &sink);
                if (ld_ok(st)) {
                    printf("write to %s:\n", argv[2]);
                    st = ld_engine_write_deferred_dump(engine, res.deferred, ld_format_raw(), sink, &res);
                }
            } else {
                printf("discard:\n");
                st = ld_engine_discard_deferred_dump(engine, res.deferred);
            }
        }
        /* Whatever happened, destroy discards a dump still held. */
        ld_engine_destroy(engine);
    }
    ld_sim_destroy(sim);
    printf("%s (0x%08X)\n", ld_status_name(st) ? ld_status_name(st) : "?", st);
    return ld_ok(st) ? 0 : 1;
}
