/* Take a live dump of a simulated machine into a file: the smallest
 * program that embeds livedump. Build: cc dump_sim.c $(pkg-config --cflags
 * --libs livedump). Run: ./dump_sim [FILE] (default sim.dmp; the extension
 * picks the format: .dmp, .elf, .raw). */
#include <stdio.h>

#include <livedump/livedump.h>

static void print_event(void *arg, const ld_event *ev)
{
    char text[512];
    ld_event_format_message(ev, text, sizeof text);
    printf("event %u: %s\n", ev->id, text);
    (void)arg;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "sim.dmp";
    ld_sim_config cfg;
    ld_sim_config_init(&cfg); /* 512 MiB, 2 vCPUs */
    ld_sim *sim;
    ld_status st = ld_sim_create(&cfg, &sim);
    if (!ld_ok(st)) {
        fprintf(stderr, "simulated machine: %s\n", ld_status_name(st));
        return 1;
    }
    ld_engine *engine;
    st = ld_engine_create(ld_sim_hal(sim), NULL, &engine);
    if (ld_ok(st)) {
        ld_engine_subscribe(engine, LD_CHANNEL_BIT(LD_CHANNEL_OPERATIONAL), print_event, NULL);
        ld_capture_request req;
        ld_capture_request_init(&req); /* full kernel dump, bug check 0x161, mirroring */
        ld_result res;
        st = ld_capture_to_path(engine, &req, path, NULL, &res);
        if (ld_ok(st))
            printf("%s: %llu pages, machine stopped %.3f ms\n", path, (unsigned long long)res.pages,
                   res.capture_stopped_ns / 1e6);
        ld_engine_destroy(engine);
    }
    ld_sim_destroy(sim);
    if (!ld_ok(st))
        fprintf(stderr, "%s: %s (0x%08X)\n", path, ld_status_name(st), (unsigned)st);
    return ld_ok(st) ? 0 : 1;
}
