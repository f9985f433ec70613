/*
 * gcs_media.h - what a media download's headers say of the version
 * served, so that one GET ?alt=media can open a file and read its tail
 * (gcs.c's open_tail) instead of a metadata GET and then a media GET.
 *
 * A media answer carries x-goog-generation, x-goog-metageneration,
 * x-goog-hash ("crc32c=<b64>,md5=<b64>", either may be missing),
 * x-goog-stored-content-length, Content-Range and Last-Modified.  It
 * carries no timeCreated, the mtime an object resource gives
 * (gcs_json.h); see gcs_media_info() for how it is found.  Input is
 * untrusted.  Pure functions; thread safe.
 */
#ifndef HYLAKE_GCS_MEDIA_H
#define HYLAKE_GCS_MEDIA_H

#include "backends/backend.h"

struct http_resp;

/*
 * Fill info from the headers of a 2xx media answer r (a 206 with
 * Content-Range, or a 200 of the whole object), as gcs_json_parse_object()
 * fills it from the object resource of that generation (a source's, not
 * a stamped replica's: a stamp is custom metadata, which media headers do
 * not carry).
 *
 * mtime_ns is that generation's timeCreated, which GCS writes with
 * millisecond precision from the generation (its creation time in
 * microseconds).  Media headers only say it when they agree: the object
 * was never updated (metageneration 1), so Last-Modified is its creation
 * second too, and that second is the generation's.  Otherwise mtime_ns is
 * 0: ask for the object resource.
 *
 * 0, or -EBADMSG when the headers are missing or malformed (no
 * generation, a size that Content-Range and x-goog-stored-content-length
 * disagree on, a hash that is not base64 of the right length).
 */
int gcs_media_info(const struct http_resp *r, struct obj_info *info);

#endif
