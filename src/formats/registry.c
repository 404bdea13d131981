/* The built-in formats: by name, by a file's extension, and the bound of
 * their own bytes that the engine's sizing needs. */
#include "format_base.h"
#include "registry.h"

static const ld_format *builtin(size_t i)
{
    switch (i) {
    case 0: return ld_format_raw();
    case 1: return ld_format_dmp();
    case 2: return ld_format_elf();
    default: return 0;
    }
}

const ld_format *ld_format_at(size_t index)
{
    return builtin(index);
}

static bool same_name(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && b[i] && a[i] == b[i])
        i++;
    return a[i] == 0 && b[i] == 0;
}

const ld_format *ld_format_find(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; builtin(i); i++)
        if (same_name(name, builtin(i)->name))
            return builtin(i);
    return 0;
}

const ld_format *ld_format_for_path(const char *path)
{
    if (!path)
        return 0;
    const char *dot = 0;
    for (const char *p = path; *p; p++) {
        if (*p == '.')
            dot = p;
        else if (*p == '/' || *p == '\\')
            dot = 0;
    }
    return dot ? ld_format_find(dot + 1) : 0;
}

const char *ld_format_name(const ld_format *format)
{
    return format && format->name ? format->name : "";
}

uint64_t ldf_format_overhead(const ld_format *format, const ld_dump_info *info, uint64_t pages)
{
    if (format)
        return format->version >= 2 && format->overhead ? format->overhead(info, pages) : 0;
    uint64_t worst = 0;
    for (size_t i = 0; builtin(i); i++)
        worst = LDF_MAX(worst, builtin(i)->overhead(info, pages));
    return worst;
}
