/* Print every event of the table as a JSON line (ld_event_format_json),
 * each field set: integers to 4242, strings to argv[1]'s bytes. Its output
 * is checked by test_events_json.py against the manifest TSV.
 *   print-events STRING */
#include <stdio.h>
#include <stdlib.h>

#include "livedump/livedump.h"
#include "event_build.h"

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < ld_event_desc_count(); i++) {
        const ld_event_desc *d = ld_event_desc_at(i);
        ld_event ev;
        if (!ldi_event_init(&ev, d->id, 77))
            return 1;
        for (uint32_t k = 0; k < d->field_count; k++) {
            const ld_field_desc *f = &d->fields[k];
            bool set = f->type == LD_FIELD_ANSI_STRING || f->type == LD_FIELD_UNICODE_STRING
                           ? ldi_event_set_str(&ev, f->name, text)
                           : ldi_event_set_u64(&ev, f->name, 4242);
            if (!set)
                return 1;
        }
        size_t n = ld_event_format_json(&ev, NULL, 0);
        char *buf = malloc(n + 1);
        if (!buf)
            return 1;
        ld_event_format_json(&ev, buf, n + 1);
        printf("%s\n", buf);
        free(buf);
    }
    return 0;
}
