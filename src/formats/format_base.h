/* What a built-in format may use: the format authors' header (the view of
 * a captured dump, the sink table), the three memory functions every C
 * environment has (declared here: a freestanding build has no <string.h>),
 * and little-endian field encoding: every on-disk format we write (Windows
 * .dmp, ELF64 LSB, ...) is little endian, and writing byte by byte keeps
 * the writers independent of the host's byte order and of alignment. */
#ifndef LDF_FORMAT_BASE_H
#define LDF_FORMAT_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/output.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define LDF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LDF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LDF_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void ldf_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void ldf_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ldf_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* v rounded up to a multiple of a (a power of two). */
static inline uint64_t ldf_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

#endif
