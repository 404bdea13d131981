/* The events the Windows driver packs into its reply (livedump/nt.h),
 * rebuilt for the client. The buffer comes from the kernel, but is read
 * as if hostile all the same: every size, count and offset is checked
 * before it is used. Portable C: the Linux build tests it against the
 * driver's encoder run over the stand-in. */
#include <string.h>

#include "livedump/nt.h"

static ld_status one(const uint8_t *rec, size_t size, ld_event *ev)
{
    ld_nt_event_record h;
    memcpy(&h, rec, sizeof h);
    const ld_event_desc *d = ld_event_desc_find(h.id);
    if (!d || h.field_count != d->field_count || d->field_count > LD_EVENT_MAX_FIELDS)
        return LD_STATUS_FILE_CORRUPT;
    if (h.field_count < 32 && (h.set_mask >> h.field_count))
        return LD_STATUS_FILE_CORRUPT;
    size_t values = sizeof h + (size_t)h.field_count * 8;
    if (values > size)
        return LD_STATUS_FILE_CORRUPT;
    memset(ev, 0, sizeof *ev);
    ev->desc = d;
    ev->id = h.id;
    ev->channel = (ld_channel)h.channel;
    ev->level = (ld_level)h.level;
    ev->timestamp_ns = h.timestamp_ns;
    if (ev->channel != d->channel ||
        (ev->level != LD_LEVEL_ERROR && ev->level != LD_LEVEL_WARNING && ev->level != LD_LEVEL_INFO))
        return LD_STATUS_FILE_CORRUPT;
    for (uint32_t i = 0; i < h.field_count; i++) {
        if (!(h.set_mask >> i & 1))
            continue;
        uint64_t v;
        memcpy(&v, rec + sizeof h + (size_t)i * 8, 8);
        ev->values[i].set = true;
        ld_field_type t = d->fields[i].type;
        if (t == LD_FIELD_ANSI_STRING || t == LD_FIELD_UNICODE_STRING) {
            /* the text lies after the values, inside the record, terminated */
            if (v < values || v >= size || !memchr(rec + v, 0, size - (size_t)v))
                return LD_STATUS_FILE_CORRUPT;
            ev->values[i].s = (const char *)rec + v;
        } else {
            ev->values[i].u = v;
        }
    }
    return LD_STATUS_SUCCESS;
}

ld_status ld_nt_events_decode(const void *buf, size_t len, ld_event_fn fn, void *arg)
{
    if (!buf && len)
        return LD_STATUS_INVALID_PARAMETER;
    const uint8_t *p = buf;
    size_t at = 0;
    while (at < len) {
        if (len - at < sizeof(ld_nt_event_record))
            return LD_STATUS_FILE_CORRUPT;
        uint16_t size;
        memcpy(&size, p + at, sizeof size);
        if (size < sizeof(ld_nt_event_record) || size % 8 || size > LD_NT_EVENT_RECORD_MAX || size > len - at)
            return LD_STATUS_FILE_CORRUPT;
        ld_event ev;
        ld_status st = one(p + at, size, &ev);
        if (st != LD_STATUS_SUCCESS)
            return st;
        if (fn)
            fn(arg, &ev);
        at += size;
    }
    return LD_STATUS_SUCCESS;
}
