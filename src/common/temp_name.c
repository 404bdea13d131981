/* Temporary names within NAME_MAX (src/common/temp_name.h). */
#include "temp_name.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

ld_status ldu_temp_name(const char *name, const char *suffix, char *out, size_t cap)
{
    if (!name || !suffix || !out || !name[0] || strchr(name, '/'))
        return LD_STATUS_INVALID_PARAMETER;
    size_t len = strlen(name), sl = strlen(suffix);
    if (len > NAME_MAX)
        return LD_STATUS_NAME_TOO_LONG;
    if (sl + 18 > NAME_MAX)
        return LD_STATUS_INVALID_PARAMETER;
    if (len + sl <= NAME_MAX) {
        if (len + sl + 1 > cap)
            return LD_STATUS_BUFFER_TOO_SMALL;
        memcpy(out, name, len);
        memcpy(out + len, suffix, sl + 1);
        return LD_STATUS_SUCCESS;
    }
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 0x100000001b3ull;
    size_t keep = NAME_MAX - sl - 17;
    while (keep > 0 && ((uint8_t)name[keep] & 0xC0) == 0x80)
        keep--; /* name[keep] would begin the cut-off part inside a character */
    if (keep + 17 + sl + 1 > cap)
        return LD_STATUS_BUFFER_TOO_SMALL;
    snprintf(out, cap, "%.*s~%016llx%s", (int)keep, name, (unsigned long long)h, suffix);
    return LD_STATUS_SUCCESS;
}
