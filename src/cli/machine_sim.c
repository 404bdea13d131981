/* `capture --machine sim`: the simulated machine and its options. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "livedump/sim.h"

typedef struct sim_state {
    ld_sim_config cfg;
    bool hot_set_given;
    bool seen_memory, seen_cpus, seen_rate, seen_seed; /* single-value options */
    ld_sim *sim;
} sim_state;

static void sim_init(void *state)
{
    sim_state *s = state;
    ld_sim_config_init(&s->cfg);
}

static int sim_option(void *state, const char *o, const char *v, bool *used)
{
    sim_state *s = state;
    uint64_t n;
    *used = true;
#define BAD(what) do { if (!v) return 1; /* the caller says it needs a value */ \
        cli_usage_error("capture", "invalid " what ": '%s'", v); return -1; } while (0)
    if (!strcmp(o, "--hypervisor")) {
        s->cfg.hypervisor = true;
        *used = false;
        return 1;
    }
#define ONCE(flag) do { if (v && cli_once("capture", &s->flag, o)) return -1; } while (0)
    if (!strcmp(o, "--memory")) {
        ONCE(seen_memory);
        if (cli_parse_size(v, &s->cfg.memory_bytes)) BAD("memory size");
        /* The machine's own limits, stated as they are. */
        if (s->cfg.memory_bytes < LD_SIM_MIN_MEMORY || s->cfg.memory_bytes > LD_SIM_MAX_MEMORY) {
            bool small = s->cfg.memory_bytes < LD_SIM_MIN_MEMORY;
            cli_usage_error("capture", "--memory %s: the simulated machine %s %lluM to %lluG)", v,
                            small ? "needs at least 64M of RAM (it takes" : "has at most 128G of RAM (it takes",
                            (unsigned long long)(LD_SIM_MIN_MEMORY >> 20), (unsigned long long)(LD_SIM_MAX_MEMORY >> 30));
            return -1;
        }
    } else if (!strcmp(o, "--cpus")) {
        ONCE(seen_cpus);
        if (cli_parse_u64(v, &n) || n == 0 || n > 64) BAD("CPU count (1 to 64)");
        s->cfg.cpus = (uint32_t)n;
    } else if (!strcmp(o, "--dirty-rate")) {
        ONCE(seen_rate);
        if (cli_parse_size(v, &s->cfg.dirty_rate)) BAD("dirty rate");
    } else if (!strcmp(o, "--hot-set")) {
        ONCE(hot_set_given);
        if (cli_parse_size(v, &s->cfg.hot_set_bytes)) BAD("hot set size");
    } else if (!strcmp(o, "--seed")) {
        ONCE(seen_seed);
        if (cli_parse_u64(v, &s->cfg.seed)) BAD("seed");
    } else {
        *used = false;
        return 0;
    }
#undef BAD
#undef ONCE
    return 1;
}

static int sim_open(void *state, const ld_hal **hal)
{
    sim_state *s = state;
    /* The default hot set (64 MiB) must fit in a small machine. */
    if (!s->hot_set_given && s->cfg.hot_set_bytes > s->cfg.memory_bytes / 4)
        s->cfg.hot_set_bytes = (s->cfg.memory_bytes / 4) & ~(uint64_t)4095;
    ld_status st = ld_sim_create(&s->cfg, &s->sim);
    if (!ld_ok(st)) {
        char why[256];
        if (ld_sim_config_check(&s->cfg, why, sizeof why) == st)
            fprintf(stderr, "livedump: %s\n", why);
        cli_status_error(st, "cannot build the simulated machine");
        return st == LD_STATUS_INVALID_PARAMETER ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
    }
    *hal = ld_sim_hal(s->sim);
    return CLI_EXIT_OK;
}

static void sim_close(void *state)
{
    sim_state *s = state;
    ld_sim_destroy(s->sim);
    s->sim = NULL;
}

const cli_machine cli_machine_sim = {
    .name = "sim",
    .help = "simulated machine (--machine sim):\n"
            "  --memory SIZE            RAM, 64M to 128G (default 512M; K, M, G suffixes); more than\n"
            "                           the host's is fine, only what is touched is committed, and\n"
            "                           dump buffers never take more than the host can give\n"
            "  --cpus N                 virtual CPUs (default 2)\n"
            "  --dirty-rate SIZE        bytes of pages dirtied per second (default 0)\n"
            "  --hot-set SIZE           region the workload writes (default 64M)\n"
            "  --hypervisor             the machine runs under a hypervisor\n"
            "  --seed N                 layout, content and workload seed\n",
    .state_size = sizeof(sim_state),
    .init = sim_init,
    .option = sim_option,
    .open = sim_open,
    .close = sim_close,
};
