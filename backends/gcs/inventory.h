/*
 * inventory.h - a Storage Insights inventory report of a GCS bucket (CSV
 * with its header row), read as the objects it lists: a whole bucket's
 * names, generations, sizes and checksums without listing the bucket.
 *
 * Columns are found by the header's names (any order, any others
 * ignored): name, generation and size are needed; bucket, crc32c and
 * md5Hash (base64, as GCS writes them), metageneration and timeCreated
 * (RFC 3339) are used when present.  A row of another bucket, outside
 * prefix, with a timeDeleted (a noncurrent or deleted generation), or
 * with a field that does not parse is skipped (and counted): the report
 * is outside input.  Fields are separated by commas and may be quoted.
 */
#ifndef HYLAKE_INVENTORY_H
#define HYLAKE_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

struct inventory_counts {
	uint64_t rows;                /* data rows read */
	uint64_t objects;             /* given to the callback */
	uint64_t skipped;             /* another bucket, outside the prefix,
	                                 deleted, or malformed */
};

/*
 * Parse len bytes of a report at once (for tests and the fuzzer), or a
 * whole file with inventory_read_fd.  cb gets each object's name (prefix
 * cut) and info; a negative return stops the parse with it.  0, -EBADMSG
 * (no header naming name, generation and size; or not CSV) with err
 * filled, or cb's error.
 */
int inventory_parse(const char *text, size_t len, const char *bucket,
		    const char *prefix, list_cb cb, void *arg,
		    struct inventory_counts *counts, char *err, size_t errlen);
int inventory_read_fd(int fd, const char *bucket, const char *prefix,
		      list_cb cb, void *arg, struct inventory_counts *counts,
		      char *err, size_t errlen);

#endif
