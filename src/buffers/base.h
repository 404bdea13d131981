/* What every freestanding file of the engine may use (src/buffers,
 * src/core): the freestanding headers, the three memory functions every C
 * environment (libc, the Windows kernel) has, and a few helpers. The memory
 * functions are declared here rather than taken from <string.h>, which a
 * freestanding build need not have. */
#ifndef LDI_BASE_H
#define LDI_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/sys/platform.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define LDI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LDI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LDI_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Platform memory, zeroed; NULL on failure. */
static inline void *ldi_zalloc(const ld_platform *p, size_t n)
{
    void *m = p->alloc(p->ctx, n);
    if (m)
        memset(m, 0, n);
    return m;
}

/* Copy at most cap - 1 bytes of src (NULL: "") and terminate. */
static inline void ldi_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    if (cap == 0)
        return;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

static inline uint64_t ldi_ms(uint64_t ns)
{
    return ns / 1000000u;
}

#endif
