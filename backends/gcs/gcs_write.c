/*
 * gcs_write.c - writes to GCS: resumable uploads and conditional removes
 * (PROTOCOLS.md 1.4, 1.5).  Content-Range values below write GCS's '*'
 * as <*>.
 *
 *   writer_open    nothing is sent; a buffer of one chunk
 *   writer_write   fills the buffer; a full chunk goes out when more
 *                  bytes come, into the session, which the first chunk
 *                  (or the commit) starts:
 *                    POST /upload/storage/v1/b/B/o?uploadType=resumable
 *                         &name=N[&ifGenerationMatch=G]   -> 200 Location
 *                    PUT <Location>  Content-Range: bytes S-E/<*>  -> 308
 *   writer_commit  the rest, with the total: the object appears now
 *                    PUT <Location>  Content-Range: bytes S-E/T  -> 200
 *                  (bytes <*>/0 for an empty object)
 *   writer_abort   DELETE <Location>  (GCS answers 499)
 *   remove         DELETE /storage/v1/b/B/o/N[?ifGenerationMatch=G]
 *   set_meta       PATCH /storage/v1/b/B/o/N?ifGenerationMatch=G
 *                        [&ifMetagenerationMatch=M]
 *                  {"metadata":{"k":"v","gone":null}}  -> 200 object
 *
 * Small objects go through a session too, at the cost of one request:
 * when the answer to the last PUT is lost, asking the session where it
 * stands says whether the object was made.  A single-request upload under
 * ifGenerationMatch=0 sent again would find its own object and answer
 * EEXIST: a commit file reported lost when it was won.
 *
 * Memory: one chunk (GCS_UPLOAD_CHUNK) per writer, holding the bytes the
 * session has not persisted yet.  A chunk PUT is sent once; when it fails
 * on the way (a transport error, 408, 429, 5xx) the session is asked what
 * it holds (an empty PUT with Content-Range: bytes <*>/<*>, or <*>/T at
 * the commit, answered by 308 and Range: bytes=0-N, or by 200 and the
 * object when it is complete) and the upload goes on from there, with
 * the HTTP engine's backoff, retry count and retry budget
 * (http_retry_wait).  (libcurl itself sends a request again, once, when
 * a kept-alive connection closes before any answer; into a session that
 * is harmless: bytes it holds already are not taken twice.)
 *
 * The object's answer is checked: its size and crc32c must be those of
 * the bytes written; an object that holds other bytes is removed again
 * (under its own generation) and the commit fails with -EIO.
 */
#include "backends/backend.h"
#include "backends/gcs/gcs.h"
#include "backends/gcs/gcs_json.h"
#include "backends/gcs/gcs_priv.h"
#include "backends/http/http.h"
#include "backends/util/crc32c.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/uri.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_URI_MAX 4096
#define OBJECT_MAX (16 << 20)    /* an object resource is a few KiB */

struct gcs_writer {
	struct bwriter base;
	char *session;            /* session URI; NULL until started */
	unsigned char *buf;       /* bytes [sent, sent + fill) */
	size_t fill;
	uint64_t sent;            /* bytes the session has persisted */
	uint32_t crc;             /* CRC32C of all bytes written */
	int err;                  /* the first failure; sticky */
};

static struct gcs_writer *to_writer(struct bwriter *w)
{
	return (struct gcs_writer *)w;
}

void gcs_add_pre(struct strbuf *url, const struct write_pre *pre)
{
	char gen[24];

	if (pre->kind == WRITE_PRE_NONE)
		return;
	snprintf(gen, sizeof(gen), "%" PRIu64,
		 pre->kind == WRITE_PRE_ABSENT ? 0 : pre->generation);
	gcs_add_param(url, "ifGenerationMatch", gen);
	if (pre->metageneration) {
		snprintf(gen, sizeof(gen), "%" PRIu64, pre->metageneration);
		gcs_add_param(url, "ifMetagenerationMatch", gen);
	}
}

/* Start the upload session: w->session gets its URI. */
static int session_start(struct gcs_writer *w, const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(w->base.b);
	struct strbuf url = STRBUF_INIT, full = STRBUF_INIT;
	struct curl_slist *hdrs = NULL;
	struct http_resp resp;
	char loc[SESSION_URI_MAX], msg[256];
	size_t blen = strlen(g->base_url);

	strbuf_addf(&url, "%s/upload/storage/v1/b/", g->base_url);
	uri_encode_str(&url, g->bucket, false);
	strbuf_adds(&url, "/o?uploadType=resumable");
	gcs_full_name(g, w->base.name, &full);
	gcs_add_param(&url, "name", full.buf);
	gcs_add_pre(&url, &w->base.pre);
	hdrs = curl_slist_append(hdrs, "X-Upload-Content-Type: "
				 "application/octet-stream");
	hdrs = curl_slist_append(hdrs, "Content-Type:");   /* no body */
	/* creates nothing: a session started twice is one left to expire */
	struct http_req req = {
		.method = "POST", .url = url.buf, .idempotent = true,
		.upload = "", .upload_len = 0, .dl = dl,
	};
	http_resp_init(&resp);
	int rc = gcs_send(g, &req, hdrs, &resp, NULL, 0, msg, sizeof(msg));
	rc = write_pre_errno(&w->base.pre, rc);
	if (rc == 0) {
		/* the token goes to this URI: only to where it went already */
		if (!http_resp_header(&resp, "location", loc, sizeof(loc)) ||
		    strlen(loc) >= sizeof(loc) - 1 ||
		    strncmp(loc, g->base_url, blen) != 0 || loc[blen] != '/') {
			log_warn("gcs %s: upload of '%s': no usable session URI "
				 "in the answer", g->base.name, w->base.name);
			rc = -EIO;
		} else {
			w->session = xstrdup(loc);
		}
	} else if (rc != -EEXIST && rc != -ESTALE) {
		log_warn("gcs %s: cannot start the upload of '%s': %s (%s)",
			 g->base.name, w->base.name, strerror(-rc), msg);
	}
	http_resp_release(&resp);
	curl_slist_free_all(hdrs);
	strbuf_release(&url);
	strbuf_release(&full);
	return rc;
}

/*
 * One PUT into the session: the buffer at w->sent (query: nothing, asking
 * where the session stands), with the total when final.  A 2xx body goes
 * to body.  Returns 0 for a 2xx or a 308 (resp->status says which).
 */
static int session_put(struct gcs_writer *w, bool query, bool final,
		       struct strbuf *body, struct http_resp *resp,
		       const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(w->base.b);
	struct curl_slist *hdrs = NULL;
	char range[128], total[24] = "*";
	uint64_t end = w->sent + w->fill;

	if (final)
		snprintf(total, sizeof(total), "%" PRIu64, end);
	if (query || w->fill == 0)
		snprintf(range, sizeof(range), "Content-Range: bytes */%s",
			 total);
	else
		snprintf(range, sizeof(range), "Content-Range: bytes %" PRIu64
			 "-%" PRIu64 "/%s", w->sent, end - 1, total);
	hdrs = curl_slist_append(hdrs, range);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	/* a query may be repeated; bytes are sent once, then the session
	 * is asked (resume) */
	struct http_req req = {
		.method = "PUT", .url = w->session, .idempotent = query,
		.api = HTTP_API_UPLOAD_SESSION,
		.upload = query ? "" : (const char *)w->buf,
		.upload_len = query ? 0 : w->fill,
		.body = body, .body_max = OBJECT_MAX, .dl = dl,
	};
	int rc = gcs_send(g, &req, hdrs, resp, NULL, 0, NULL, 0);
	curl_slist_free_all(hdrs);
	return rc;
}

/*
 * A 308: the session holds bytes [0, N] (Range: bytes=0-N; none when the
 * header is absent).  Drop them from the buffer.  -EIO when the session
 * says it holds fewer bytes than it confirmed before, or more than were
 * sent.
 */
static int persisted(struct gcs_writer *w, const struct http_resp *resp)
{
	uint64_t have;

	if (http_session_persisted(resp, &have) < 0 || have < w->sent ||
	    have > w->sent + w->fill) {
		log_warn("gcs %s: upload of '%s': the session holds %" PRIu64
			 " bytes, expected %" PRIu64 "..%" PRIu64,
			 w->base.b->name, w->base.name, have, w->sent,
			 w->sent + w->fill);
		return -EIO;
	}
	size_t done = (size_t)(have - w->sent);
	memmove(w->buf, w->buf + done, w->fill - done);
	w->fill -= done;
	w->sent = have;
	return 0;
}

/*
 * Send the buffer into the session: all of it, ending the upload, when
 * final (the object resource goes to body), else until the session has
 * taken some of it.  After a transient failure the session is asked what
 * it holds and the rest follows; a PUT of bytes that the session takes
 * none of counts as a failure too.  Both within the engine's retry count
 * and budget.
 */
static int push(struct gcs_writer *w, bool final, struct strbuf *body,
		const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(w->base.b);
	bool query = false;
	int rc, tries = 0;

	if (!w->session && (rc = session_start(w, dl)) < 0)
		return rc;
	for (;;) {
		struct http_resp resp;
		uint64_t before = w->sent;
		bool was_query = query, retry;

		http_resp_init(&resp);
		rc = session_put(w, query, final, body, &resp, dl);
		query = false;
		if (rc == 0 && resp.status != 308) {
			/* complete: right only when the total was sent */
			http_resp_release(&resp);
			return final ? 0 : -EIO;
		}
		if (rc == 0)
			rc = persisted(w, &resp);
		if (rc == 0 && !final && w->fill < GCS_UPLOAD_CHUNK) {
			http_resp_release(&resp);
			return 0;
		}
		if (rc == 0) {
			retry = !was_query && w->sent == before;
			if (retry)
				rc = -EIO;     /* took none of it */
		} else {
			retry = query = http_transient(rc, &resp);
		}
		if (retry) {
			int wait = http_retry_wait(g->http, &resp, ++tries, dl);
			if (wait == -ETIMEDOUT)
				rc = wait;
			retry = wait == 0;
		}
		http_resp_release(&resp);
		if (rc < 0 && !retry)
			return write_pre_errno(&w->base.pre, rc);
	}
}

int gcs_writer_open(struct backend *b, const char *name,
		    const struct write_pre *pre, struct bwriter **out,
		    const struct deadline *dl)
{
	(void)dl;
	if (!*name)
		return -EINVAL;
	struct gcs_writer *w = xcalloc(1, sizeof(*w));
	bwriter_init(&w->base, b, name, pre);
	w->buf = xmalloc(GCS_UPLOAD_CHUNK);
	*out = &w->base;
	return 0;
}

int gcs_writer_write(struct bwriter *wb, const void *buf, size_t len,
		     const struct deadline *dl)
{
	struct gcs_writer *w = to_writer(wb);
	const unsigned char *p = buf;

	while (len && !w->err) {
		/* a full chunk goes only when more bytes follow it, so that
		 * the last PUT always carries data */
		if (w->fill == GCS_UPLOAD_CHUNK) {
			int rc = push(w, false, NULL, dl);
			if (rc < 0) {
				w->err = rc;
				break;
			}
		}
		size_t n = GCS_UPLOAD_CHUNK - w->fill;
		if (n > len)
			n = len;
		memcpy(w->buf + w->fill, p, n);
		w->crc = crc32c_update(w->crc, p, n);
		w->fill += n;
		w->base.written += n;
		p += n;
		len -= n;
	}
	return w->err;
}

static void writer_free(struct gcs_writer *w)
{
	free(w->session);
	free(w->buf);
	bwriter_release(&w->base);
	free(w);
}

/* The object the session made holds other bytes than were written:
 * take it away again, that generation only. */
static void remove_corrupt(struct gcs_writer *w, const struct obj_info *got,
			   const struct deadline *dl)
{
	struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
				 .generation = got->generation };
	log_err("gcs %s: upload of '%s' made generation %" PRIu64 " with "
		  "size %" PRIu64 " crc32c %08x%s; written: %" PRIu64 " bytes, "
		  "crc32c %08x; removing it", w->base.b->name, w->base.name,
		  got->generation, got->size, got->crc32c,
		  got->has_crc32c ? "" : " (none)", w->base.written, w->crc);
	int rc = gcs_remove(w->base.b, w->base.name, &pre, dl);
	if (rc < 0)
		log_err("gcs %s: cannot remove generation %" PRIu64 " of "
			  "'%s': %s", w->base.b->name, got->generation,
			  w->base.name, strerror(-rc));
}

int gcs_writer_commit(struct bwriter *wb, struct obj_info *out,
		      const struct deadline *dl)
{
	struct gcs_writer *w = to_writer(wb);
	struct gcs_backend *g = to_gcs(wb->b);
	struct strbuf body = STRBUF_INIT;
	struct gcs_item item;
	int rc = w->err;

	if (rc == 0)
		rc = push(w, true, &body, dl);
	if (rc == 0 &&
	    gcs_json_parse_object(body.buf, body.len, NULL, &item) < 0) {
		log_warn("gcs %s: upload of '%s': invalid object resource in "
			 "the answer", g->base.name, wb->name);
		rc = -EIO;
	}
	if (rc == 0) {
		free(item.name);
		if (item.info.size != wb->written || !item.info.has_crc32c ||
		    item.info.crc32c != w->crc) {
			remove_corrupt(w, &item.info, dl);
			rc = -EIO;
		} else {
			*out = item.info;
		}
	}
	strbuf_release(&body);
	if (rc < 0 && w->session) {
		gcs_writer_abort(wb);   /* frees w */
		return rc;
	}
	writer_free(w);
	return rc;
}

void gcs_writer_abort(struct bwriter *wb)
{
	struct gcs_writer *w = to_writer(wb);
	struct gcs_backend *g = to_gcs(wb->b);

	if (w->session) {
		struct deadline dl = deadline_in_ms(g->request_timeout_ms);
		struct http_req req = {
			.method = "DELETE", .url = w->session,
			.idempotent = true, .api = HTTP_API_UPLOAD_SESSION,
			.dl = &dl,
		};
		struct http_resp resp;
		http_resp_init(&resp);
		/* GCS answers 499; a session left over expires in a week */
		gcs_send(g, &req, NULL, &resp, NULL, 0, NULL, 0);
		http_resp_release(&resp);
	}
	writer_free(w);
}

int gcs_remove(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	struct strbuf url = STRBUF_INIT;
	struct http_resp resp;
	char msg[256];

	gcs_object_url(g, name, &url);
	gcs_add_pre(&url, pre);
	/* conditional: sent again, it removes nothing else */
	struct http_req req = {
		.method = "DELETE", .url = url.buf,
		.idempotent = pre->kind == WRITE_PRE_GENERATION, .dl = dl,
	};
	http_resp_init(&resp);
	int rc = gcs_send(g, &req, NULL, &resp, NULL, 0, msg, sizeof(msg));
	/* an answer lost, then 404: that generation is gone, as asked */
	if (rc == -ENOENT && resp.attempts > 1 &&
	    pre->kind == WRITE_PRE_GENERATION)
		rc = 0;
	rc = write_pre_errno(pre, rc);
	if (rc < 0 && rc != -ENOENT && rc != -ESTALE)
		log_warn("gcs %s: cannot remove '%s': %s (%s)", g->base.name,
			 name, strerror(-rc), msg);
	http_resp_release(&resp);
	strbuf_release(&url);
	return rc;
}

/* {"metadata":{...}}: the body of a metadata update. */
static char *meta_patch_doc(const struct meta_kv *kv, size_t n)
{
	json_t *md = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(md, kv[i].key, kv[i].value ?
				    json_string(kv[i].value) : json_null());
	json_t *doc = json_pack("{s:o}", "metadata", md);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

int gcs_set_meta(struct backend *b, const char *name,
		 const struct write_pre *pre, const struct meta_kv *kv,
		 size_t n, struct obj_info *out, const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct curl_slist *hdrs = NULL;
	struct http_resp resp;
	struct gcs_item item;
	char msg[256] = "";
	char *doc = meta_patch_doc(kv, n);

	gcs_object_url(g, name, &url);
	gcs_add_pre(&url, pre);
	gcs_add_param(&url, "fields", g->fields);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	/* under a metageneration, sent again it changes nothing (412) */
	struct http_req req = {
		.method = "PATCH", .url = url.buf,
		.idempotent = pre->metageneration > 0,
		.upload = doc, .upload_len = strlen(doc), .body = &body,
		.body_max = 1 << 20, .dl = dl,
	};
	http_resp_init(&resp);
	int rc = gcs_send(g, &req, hdrs, &resp, NULL, 0, msg, sizeof(msg));
	if (rc == 0 && gcs_json_parse_object(body.buf ? body.buf : "",
					     body.len, g->stamp_key,
					     &item) < 0) {
		log_warn("gcs %s: metadata of '%s': invalid object resource "
			 "in the answer", g->base.name, name);
		rc = -EIO;
	}
	if (rc == 0) {
		*out = item.info;
		free(item.name);
	} else if (rc != -ENOENT && rc != -ESTALE) {
		log_warn("gcs %s: cannot update the metadata of '%s': %s (%s)",
			 g->base.name, name, strerror(-rc), msg);
	}
	http_resp_release(&resp);
	curl_slist_free_all(hdrs);
	strbuf_release(&url);
	strbuf_release(&body);
	free(doc);
	return rc;
}
