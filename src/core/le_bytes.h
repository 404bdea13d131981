/* Little-endian field encoding for the format writers: every on-disk
 * format we write (Windows .dmp, ELF64 LSB) is little endian, and writing
 * byte by byte keeps the writers independent of the host's byte order and
 * of alignment. */
#ifndef LD_CORE_LE_BYTES_H
#define LD_CORE_LE_BYTES_H

#include "src/core/base.h"

static inline void ldi_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void ldi_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ldi_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* v rounded up to a multiple of a (a power of two). */
static inline uint64_t ldi_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

#endif
