/* Which pages a request keeps: from dump type and options to page kinds
 * (the table in docs/architecture.md), and request validation. */
#ifndef LDI_SELECT_H
#define LDI_SELECT_H

#include "base.h"
#include "bitmap.h"
#include "dump.h"
#include "livedump/engine.h"
#include "livedump/sys/hal.h"

bool ldi_kind_required(ld_page_kind k);
bool ldi_kind_important(ld_page_kind k);
bool ldi_kind_selected(ld_page_kind k, const ld_capture_request *req, const ld_hal *hal);
/* Hypervisor pages (essential or not). */
bool ldi_kind_is_hv(uint32_t k);
/* Pages of `select` whose kind `pick` accepts. */
uint64_t ldi_selected_of_kinds(const ldi_bitmap *select, const ld_dump *d, bool (*pick)(uint32_t kind));
/* Pages of the machine's classification (not a selection) `pick` accepts. */
uint64_t ldi_classified_of_kinds(const ld_dump *d, bool (*pick)(uint32_t kind));
ld_status ldi_validate_request(const ld_capture_request *req, const ld_hal *hal);

#endif
