/* The report storage object: options, open (the root, the state read under
 * the lock) and close, and what it says about itself. The work is done by
 * the files below it: names, folders, known (landing order), listing,
 * lock, throttle (the state and admission), retention, capture. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "folders.h"
#include "lock.h"
#include "throttle.h"

static uint64_t system_clock(void *arg)
{
    (void)arg;
    return (uint64_t)time(NULL);
}

void ld_reports_options_init(ld_reports_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->version = LD_REPORTS_OPTIONS_VERSION;
}

static ld_status open_storage(const ld_reports_options *opts, ld_reports **out, ld_error *err)
{
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (!opts)
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "no options");
    if (opts->version != LD_REPORTS_OPTIONS_VERSION)
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "options of version %u; this library knows version %u",
                        opts->version, LD_REPORTS_OPTIONS_VERSION);
    if (opts->flags & ~LD_REPORTS_READ_ONLY)
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "unknown flags 0x%x in the options",
                        opts->flags & ~LD_REPORTS_READ_ONLY);
    ld_reports *r = calloc(1, sizeof *r);
    if (!r)
        return LD_STATUS_NO_MEMORY;
    r->root_fd = -1;
    r->read_only = (opts->flags & LD_REPORTS_READ_ONLY) != 0;
    if (opts->settings)
        r->settings = *opts->settings;
    else
        ld_settings_init(&r->settings);
    r->clock = opts->clock ? opts->clock : system_clock;
    r->clock_arg = opts->clock_arg;
    const char *root = opts->root ? opts->root : r->settings.live_kernel_reports_path;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    bool bad = n == 0 || n >= sizeof r->root;
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)root[i] < 0x20;
    if (bad) {
        free(r);
        return ldu_fail(err, LD_STATUS_INVALID_PARAMETER, "reports folder: empty, too long or with control characters");
    }
    memcpy(r->root, root, n);
    r->root[n] = 0;
    ld_status st = ldr_open_root(r->root, !r->read_only, &r->root_fd, err);
    int lock = -1;
    /* A rebuild writes the state: not while another process records. */
    if (st == LD_STATUS_SUCCESS && !r->read_only) {
        st = ldr_lock(r, &lock);
        if (st != LD_STATUS_SUCCESS)
            ldu_fail(err, st, "%s/%s: cannot lock: %s", r->root, LDR_LOCK_FILE, ld_status_describe(st));
    }
    if (st == LD_STATUS_SUCCESS) {
        st = ldr_state_load(r);
        if (st != LD_STATUS_SUCCESS)
            ldu_fail(err, st, "%s/%s: cannot read the throttling state: %s", r->root, LDR_STATE_FILE,
                     ld_status_describe(st));
    }
    ldr_unlock(lock);
    if (st != LD_STATUS_SUCCESS) {
        ld_reports_close(r);
        return st;
    }
    *out = r;
    return LD_STATUS_SUCCESS;
}

ld_status ld_reports_open(const ld_reports_options *opts, ld_reports **out, ld_error *err)
{
    ld_error_clear(err);
    return ldu_error_end(err, open_storage(opts, out, err));
}

void ld_reports_close(ld_reports *r)
{
    if (r && r->root_fd >= 0)
        close(r->root_fd);
    if (r)
        free(r->known);
    free(r);
}

const char *ld_reports_root(const ld_reports *r)
{
    return r ? r->root : NULL;
}

const char *ld_reports_state_problem(const ld_reports *r)
{
    return r && r->state_problem[0] ? r->state_problem : NULL;
}

