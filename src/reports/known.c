/* The reports the throttling state knows, each with its place in the
 * order reports landed: a table sorted by path, in memory (throttle.c
 * reads and saves it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "known.h"

/* r->known is kept sorted by path: listings look each report up. The
 * index where `rel` is or would go; *found says which. */
uint32_t ldr_known_slot(const ld_reports *r, const char *rel, bool *found)
{
    uint32_t lo = 0, hi = r->known_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->known[mid].rel, rel);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

ldr_known *ldr_find_known(const ld_reports *r, const char *rel)
{
    bool found;
    uint32_t i = ldr_known_slot(r, rel, &found);
    return found ? &r->known[i] : NULL;
}

uint64_t ldr_known_order(const ld_reports *r, const char *rel)
{
    const ldr_known *k = ldr_find_known(r, rel);
    return k ? k->order : 0;
}

/* Add or move `rel` to place `order`. */
ld_status ldr_set_known(ld_reports *r, const char *rel, uint64_t order)
{
    bool found;
    uint32_t i = ldr_known_slot(r, rel, &found);
    if (!found) {
        if (r->known_count == r->known_cap) {
            uint32_t nc = r->known_cap ? r->known_cap * 2 : 16;
            ldr_known *nv = realloc(r->known, nc * sizeof *nv);
            if (!nv)
                return LD_STATUS_NO_MEMORY;
            r->known = nv;
            r->known_cap = nc;
        }
        memmove(&r->known[i + 1], &r->known[i], (r->known_count - i) * sizeof r->known[0]);
        r->known_count++;
        snprintf(r->known[i].rel, sizeof r->known[i].rel, "%s", rel);
    }
    r->known[i].order = order;
    if (order >= r->next_order)
        r->next_order = order + 1;
    return LD_STATUS_SUCCESS;
}

void ldr_drop_known(ld_reports *r, uint32_t i)
{
    memmove(&r->known[i], &r->known[i + 1], (r->known_count - i - 1) * sizeof r->known[0]);
    r->known_count--;
}

void ldr_forget(ld_reports *r, const char *rel)
{
    bool found;
    uint32_t i = ldr_known_slot(r, rel, &found);
    if (found)
        ldr_drop_known(r, i);
}
