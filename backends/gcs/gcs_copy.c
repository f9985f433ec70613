/*
 * gcs_copy.c - server-side copies in GCS (objects.rewrite), under
 * preconditions on both ends:
 *
 *   POST /storage/v1/b/B/o/FROM/rewriteTo/b/B/o/TO
 *        ?sourceGeneration=G&ifSourceGenerationMatch=G
 *        [&ifGenerationMatch=0|G2][&rewriteToken=T]        (no body)
 *     -> 200 {"kind":"storage#rewriteResponse","done":false,
 *             "rewriteToken":T,"totalBytesRewritten":..,"objectSize":..}
 *        (call again with T, until)
 *     -> 200 {..."done":true,"resource":{the new object}}
 *
 * sourceGeneration pins the bytes to the version seen (another one is a
 * 404); the destination's ifGenerationMatch is checked when the new
 * object appears, atomically with it: put-if-absent (0) or an overwrite
 * of the generation seen.  Nothing appears before "done".
 *
 * A rewrite is sent again after a transient failure (the HTTP engine's
 * backoff).  Under ifGenerationMatch=0 a rewrite whose answer was lost
 * and that is sent again finds its own object (412): when the object
 * then holds the bytes of the source, as size and crc32c say, the copy
 * is taken as made (whoever made it, the name holds what was asked).
 */
#include "backends/backend.h"
#include "backends/gcs/gcs_json.h"
#include "backends/gcs/gcs_priv.h"
#include "backends/http/http.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/uri.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRITE_ANSWER_MAX (16 << 20)   /* a response is a few KiB */
#define REWRITE_CALLS_MAX 100000        /* a token loop that never ends */

/* The URL of one rewrite call. */
static void rewrite_url(struct gcs_backend *g, const char *from, uint64_t gen,
			const char *to, const struct write_pre *pre,
			const char *token, struct strbuf *url)
{
	struct strbuf full = STRBUF_INIT;
	char num[24];

	gcs_object_url(g, from, url);
	strbuf_adds(url, "/rewriteTo/b/");
	uri_encode_str(url, g->bucket, false);
	strbuf_adds(url, "/o/");
	gcs_full_name(g, to, &full);
	uri_encode(url, full.buf, full.len, false);   /* one segment */
	strbuf_release(&full);
	snprintf(num, sizeof(num), "%" PRIu64, gen);
	gcs_add_param(url, "sourceGeneration", num);
	gcs_add_param(url, "ifSourceGenerationMatch", num);
	gcs_add_pre(url, pre);
	if (token)
		gcs_add_param(url, "rewriteToken", token);
}

/* One call: 0 with *done, and then the new object in item, else the
 * token for the next call in *token. */
static int rewrite_call(struct gcs_backend *g, const char *from, uint64_t gen,
			const char *to, const struct write_pre *pre,
			char **token, bool *done, struct gcs_item *item,
			int *attempts, const struct deadline *dl)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct curl_slist *hdrs = NULL;
	struct http_resp resp;
	char msg[256] = "";

	rewrite_url(g, from, gen, to, pre, *token, &url);
	hdrs = curl_slist_append(hdrs, "Content-Type:");   /* no body */
	/* conditional on both ends: sent again, it copies nothing else */
	struct http_req req = {
		.method = "POST", .url = url.buf, .idempotent = true,
		.upload = "", .upload_len = 0, .body = &body,
		.body_max = REWRITE_ANSWER_MAX, .dl = dl,
	};
	http_resp_init(&resp);
	int rc = gcs_send(g, &req, hdrs, &resp, NULL, 0, msg, sizeof(msg));
	*attempts += resp.attempts;
	free(*token);
	*token = NULL;
	if (rc == 0 &&
	    gcs_json_parse_rewrite(body.buf ? body.buf : "", body.len, done,
				   token, item) < 0) {
		log_warn("gcs %s: copy of '%s' to '%s': invalid rewrite "
			 "response", g->base.name, from, to);
		rc = -EIO;
	}
	if (rc < 0 && rc != -ENOENT && rc != -ESTALE)
		log_warn("gcs %s: cannot copy '%s' to '%s': %s (%s)",
			 g->base.name, from, to, strerror(-rc), msg);
	http_resp_release(&resp);
	curl_slist_free_all(hdrs);
	strbuf_release(&url);
	strbuf_release(&body);
	return rc;
}

/* After a rewrite sent more than once found to taken: does it hold the
 * bytes of from (still generation gen)?  Then *out is its info. */
static bool made_by_us(struct gcs_backend *g, const char *from, uint64_t gen,
		       const char *to, struct obj_info *out,
		       const struct deadline *dl)
{
	struct gcs_item src, dst;
	bool same = false;

	if (gcs_get_meta(g, from, &src, dl) < 0)
		return false;
	if (gcs_get_meta(g, to, &dst, dl) == 0) {
		same = src.info.generation == gen &&
		       src.info.has_crc32c && dst.info.has_crc32c &&
		       src.info.crc32c == dst.info.crc32c &&
		       src.info.size == dst.info.size;
		if (same)
			*out = dst.info;
		free(dst.name);
	}
	free(src.name);
	return same;
}

int gcs_copy(struct backend *b, const char *from, uint64_t from_generation,
	     const char *to, const struct write_pre *pre, struct obj_info *out,
	     const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	struct gcs_item item;
	char *token = NULL;
	bool done = false;
	int rc, attempts = 0, calls = 0;

	if (!*from || !*to)
		return -EINVAL;
	do {
		if (++calls > REWRITE_CALLS_MAX) {
			rc = -EIO;
			break;
		}
		rc = rewrite_call(g, from, from_generation, to, pre, &token,
				  &done, &item, &attempts, dl);
	} while (rc == 0 && !done);
	free(token);
	if (rc == 0) {
		*out = item.info;
		free(item.name);
		return 0;
	}
	rc = write_pre_errno(pre, rc);
	if (rc == -EEXIST && attempts > calls &&
	    made_by_us(g, from, from_generation, to, out, dl))
		rc = 0;
	return rc;
}
