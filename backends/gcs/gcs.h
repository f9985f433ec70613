/*
 * gcs.h - the GCS store (JSON API).
 *
 * Metadata and listings from /storage/v1 with fields= partial responses;
 * media with alt=media, generation=G (pinned at open) and Range, and
 * Accept-Encoding: gzip so gzip-stored objects come as stored bytes.
 * The version token is the generation.  Authentication: gcs_auth.h.
 */
#ifndef HYLAKE_GCS_H
#define HYLAKE_GCS_H

#include <stddef.h>

struct backend;
struct store_conf;

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"

/*
 * Writes (struct backend_ops writer_*, remove) need a store built with
 * store_conf.writable: resumable uploads whose chunks are this size (a
 * multiple of the 256 KiB GCS requires), the memory each open writer
 * holds; preconditions as ifGenerationMatch.  See gcs_write.c.
 */
#define GCS_UPLOAD_CHUNK (8u << 20)

int gcs_create(const struct store_conf *c, struct backend **out,
	       char *err, size_t errlen);

#endif
