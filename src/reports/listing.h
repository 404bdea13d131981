/* Listing (src/reports/listing.c). */
#ifndef LD_REPORTS_LISTING_H
#define LD_REPORTS_LISTING_H

#include "storage.h"

/* (ld_reports_list and ld_reports_list_free, livedump/reports.h, are this
 * file's.) */

#endif
