/* Small helpers shared by the simulated-machine tests. */
#ifndef LD_SIM_TEST_H
#define LD_SIM_TEST_H

#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/runtime.h"
#include "livedump/sim.h"

#define PAGE 4096u

static inline uint64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static inline uint64_t le64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Wait (up to `ms`) until the workload has written more than `than` pages. */
static inline bool wait_written_more(ld_sim *sim, uint64_t than, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        if (ld_sim_pages_written(sim) > than)
            return true;
        sleep_ms(1);
    }
    return ld_sim_pages_written(sim) > than;
}

/* The machine's ranges and kinds, in arrays the caller frees. */
static inline void get_layout(const ld_hal *hal, ld_phys_range **ranges, size_t *nr, ld_kind_range **kinds, size_t *nk)
{
    assert_int_equal(hal->mem_ranges(hal->ctx, NULL, nr), LD_STATUS_SUCCESS);
    *ranges = calloc(*nr, sizeof **ranges);
    assert_non_null(*ranges);
    assert_int_equal(hal->mem_ranges(hal->ctx, *ranges, nr), LD_STATUS_SUCCESS);
    assert_int_equal(hal->mem_kinds(hal->ctx, NULL, nk), LD_STATUS_SUCCESS);
    *kinds = calloc(*nk, sizeof **kinds);
    assert_non_null(*kinds);
    assert_int_equal(hal->mem_kinds(hal->ctx, *kinds, nk), LD_STATUS_SUCCESS);
}

static inline const ld_kind_range *find_kind(const ld_kind_range *kinds, size_t nk, ld_page_kind kind)
{
    for (size_t i = 0; i < nk; i++)
        if (kinds[i].kind == (uint32_t)kind)
            return &kinds[i];
    return NULL;
}

static inline uint64_t max_pfn_of(const ld_phys_range *ranges, size_t nr)
{
    return ranges[nr - 1].first_pfn + ranges[nr - 1].page_count;
}

#endif
