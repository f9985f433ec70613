/*
 * gcs_json.h - the JSON documents of the GCS JSON API and OAuth, parsed
 * with jansson: object resources, listing pages, error bodies and token
 * responses.  Input is untrusted: a document missing a field the store
 * relies on is rejected with -EBADMSG, never half-used.
 *
 * GCS sends 64-bit numbers (generation, metageneration, size) as JSON
 * strings; md5Hash and crc32c are base64; timeCreated is RFC 3339.
 * Pure functions; thread safe.
 */
#ifndef HYLAKE_GCS_JSON_H
#define HYLAKE_GCS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

struct gcs_item {
	char *name;
	struct obj_info info;
	bool gzip;                    /* contentEncoding: gzip */
};

struct gcs_listing {
	struct gcs_item *items;
	size_t nitems;
	char **prefixes;
	size_t nprefixes;
	char *next_token;             /* NULL on the last page */
};

/*
 * One object resource.  On success item is filled (free item->name).
 *
 * stamp_key is NULL for the source.  A bucket that is a replica passes
 * the metadata key its copies are stamped with: info.generation is then
 * the stamped source generation (0 when none or malformed), info.etag the
 * bucket's own generation (what reads pin), and crc32c/md5 the ones GCS
 * computed for the copy's bytes.
 */
int gcs_json_parse_object(const char *text, size_t len, const char *stamp_key,
			  struct gcs_item *item);

/*
 * A rewrite response (objects.rewrite):
 *   {"kind":"storage#rewriteResponse","totalBytesRewritten":"N",
 *    "objectSize":"N","done":bool,"rewriteToken":"..","resource":{..}}
 * *done says whether the copy is complete: then item holds the new
 * object (free item->name); else *token gets the malloc'd token to send
 * with the next call.  -EBADMSG when malformed (done without a resource,
 * not done without a token).
 */
int gcs_json_parse_rewrite(const char *text, size_t len, bool *done,
			   char **token, struct gcs_item *item);

int gcs_json_parse_listing(const char *text, size_t len, const char *stamp_key,
			   struct gcs_listing *out);
void gcs_listing_release(struct gcs_listing *l);

/* {"error":{"code":N,"message":..,"errors":[{"reason":..}]}}.  0 when it
 * is such a document. */
int gcs_json_parse_error(const char *text, size_t len, char *reason,
			 size_t reasonlen, char *msg, size_t msglen);

/* {"access_token":..,"expires_in":N,...} (OAuth and the metadata
 * server); also {"error":..,"error_description":..}, returned as
 * -EACCES with msg filled.  On success *token is malloc'd and
 * *expires_in is N, at most GCS_TOKEN_LIFE_MAX_S: a server saying
 * years would have a revoked token kept forever.  N < 1 is -EBADMSG.
 * There is no floor above 1 s: a token is never used past the life its
 * issuer gave it (short-lived tokens are refreshed, not stretched). */
#define GCS_TOKEN_LIFE_MAX_S (24 * 3600)
int gcs_json_parse_token(const char *text, size_t len, char **token,
			 int64_t *expires_in, char *msg, size_t msglen);

/*
 * A Pub/Sub pull response whose messages are GCS change notifications
 * (PROTOCOLS.md 3.1 and 3.2):
 *   {"receivedMessages":[{"ackId":..,"message":{"data":<base64>,
 *     "attributes":{..},"messageId":..,"publishTime":<RFC 3339>}}]}
 * An empty response ({}) is a batch of none.  A message without an ackId,
 * messageId or publishTime fails the whole response with -EBADMSG (it
 * could not be acknowledged or its lag told).  A message that is not a
 * well-formed notification (no or unknown eventType, no bucketId or
 * objectId, a generation that is not a positive number, a JSON_API_V1
 * payload that is not the object resource it names) is kept with kind
 * GCS_CHANGE_INVALID: its consumer must ack it and treat the feed as
 * having a gap, since some change went unread.
 */
enum gcs_change_kind {
	GCS_CHANGE_INVALID = 0,
	GCS_CHANGE_FINALIZE,          /* a new object or generation */
	GCS_CHANGE_METADATA,          /* metadata of a generation changed */
	GCS_CHANGE_DELETE,            /* a generation is gone */
	GCS_CHANGE_ARCHIVE,           /* it became noncurrent (versioned) */
};

struct gcs_change {
	char *ack_id;                 /* never NULL */
	char *message_id;             /* never NULL */
	int64_t publish_ns;           /* wall clock */
	enum gcs_change_kind kind;
	/* the rest only for a valid kind */
	char *bucket;
	char *name;
	uint64_t generation;          /* objectGeneration */
	uint64_t overwrote;           /* overwroteGeneration, or 0 */
	uint64_t overwritten_by;      /* overwrittenByGeneration, or 0 */
	int64_t event_ns;             /* eventTime, or 0 */
	bool has_info;                /* a JSON_API_V1 payload was read */
	struct obj_info info;         /* its size, crc32c, metageneration */
};

struct gcs_changes {
	struct gcs_change *c;
	size_t n;
};

int gcs_json_parse_pull(const char *text, size_t len, struct gcs_changes *out);
void gcs_changes_release(struct gcs_changes *c);

#endif
