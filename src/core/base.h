/* What every core file may use: the freestanding headers and the three
 * memory functions every C environment (libc, the Windows kernel) has.
 * Declared here rather than taken from <string.h>, which a freestanding
 * build need not have. */
#ifndef LD_CORE_BASE_H
#define LD_CORE_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define LDI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LDI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LDI_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
