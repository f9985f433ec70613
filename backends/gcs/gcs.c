/*
 * gcs.c - the GCS store over the JSON API.
 *
 *   stat   listing of prefix = name, delimiter '/' (backend_stat_by_listing)
 *   list   GET /storage/v1/b/B/o?prefix&delimiter&pageToken&maxResults&fields
 *   open   GET /storage/v1/b/B/o/NAME?fields=...       -> generation G
 *   read   GET /storage/v1/b/B/o/NAME?alt=media&generation=G  + Range
 *   open_tail  GET /storage/v1/b/B/o/NAME?alt=media  + Range: bytes=-N
 *          -> generation G and its last N bytes (gcs_media.h), in one
 *          round trip where open and read take two
 *   write, remove, set_meta: gcs_write.c
 *
 * A 404 on a pinned read means generation G is gone: ESTALE when the
 * name lives on at another generation, ENOENT when it is gone too.  The
 * HTTP layer checks the rest of a ranged answer (x-goog-generation,
 * Content-Range, length); this file adds the one check only GCS needs,
 * against decompressive transcoding.  A 401 drops the cached token and
 * tries once more with a fresh one.
 */
#include "backends/gcs/gcs.h"
#include "backends/backend.h"
#include "backends/gcs/gcs_auth.h"
#include "backends/gcs/gcs_json.h"
#include "backends/gcs/gcs_media.h"
#include "backends/gcs/gcs_priv.h"
#include "backends/http/http.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/uri.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJECT_FIELDS \
	"name,generation,metageneration,size,md5Hash,crc32c,timeCreated," \
	"contentEncoding"
#define REPLICA_FIELDS OBJECT_FIELDS ",metadata"

struct gcs_obj {
	struct bobj base;
	char *media_url;          /* pinned: ...?alt=media&generation=G */
	char pin[24];             /* G, this bucket's own generation, as
	                             x-goog-generation spells it */
};

void gcs_full_name(struct gcs_backend *g, const char *name,
		   struct strbuf *out)
{
	strbuf_addf(out, "%s%s", g->prefix, name);
}

void gcs_object_url(struct gcs_backend *g, const char *name,
		    struct strbuf *url)
{
	strbuf_addf(url, "%s/storage/v1/b/", g->base_url);
	uri_encode_str(url, g->bucket, false);
	strbuf_adds(url, "/o");
	if (name) {
		struct strbuf full = STRBUF_INIT;
		gcs_full_name(g, name, &full);
		strbuf_addch(url, '/');
		uri_encode(url, full.buf, full.len, false);   /* one segment */
		strbuf_release(&full);
	}
}

void gcs_add_param(struct strbuf *url, const char *name, const char *value)
{
	strbuf_addf(url, "%c%s=", strchr(url->buf, '?') ? '&' : '?', name);
	uri_encode_str(url, value, false);
}

int gcs_send(struct gcs_backend *g, struct http_req *req,
	     const struct curl_slist *extra, struct http_resp *resp,
	     char *reason, size_t reasonlen, char *msg, size_t msglen)
{
	int rc = gcs_auth_do(g->auth, g->http, req, extra, resp, reason,
			     reasonlen, msg, msglen);
	/* a session URI lets anyone who has it upload: never logged */
	const char *url = req->api == HTTP_API_UPLOAD_SESSION
			  ? "(upload session)" : req->url;
	if (rc < 0 && http_resp_error_status(resp))
		log_debug("gcs %s: %s %s -> HTTP %ld %s", g->base.name,
			  req->method, url, resp->status, reason);
	else if (rc < 0)
		log_debug("gcs %s: %s %s -> %s (%s)", g->base.name, req->method,
			  url, strerror(-rc), msg);
	return rc;
}

/*
 * Send a GET.  Returns 0 for a 2xx response (that passed the checks of
 * range, if given), else -errno as http_do() gives it or the auth
 * failure; reason/msg get the error document's first reason and message
 * (or the auth failure).
 */
static int gcs_get(struct gcs_backend *g, const char *url,
		   const struct curl_slist *extra, void *buf, size_t buflen,
		   const struct http_range *range, struct strbuf *body,
		   const struct deadline *dl, struct http_resp *resp,
		   char *reason, size_t reasonlen, char *msg, size_t msglen)
{
	struct http_req req = {
		.method = "GET", .url = url, .idempotent = true,
		.range = range, .buf = buf, .buf_len = buflen, .body = body,
		.body_max = 16 << 20, .dl = dl,
	};
	return gcs_send(g, &req, extra, resp, reason, reasonlen, msg, msglen);
}

/* Fetch one listing page. */
static int list_page(struct gcs_backend *g, const struct list_req *lr,
		     struct gcs_listing *out, const struct deadline *dl,
		     char *reason, size_t reasonlen, char *msg, size_t msglen)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT, full = STRBUF_INIT;
	struct strbuf fields = STRBUF_INIT;
	struct http_resp resp;
	char maxr[16];
	int rc;

	gcs_full_name(g, lr->prefix, &full);
	snprintf(maxr, sizeof(maxr), "%u",
		 lr->max_keys ? lr->max_keys : g->page_size);
	gcs_object_url(g, NULL, &url);
	gcs_add_param(&url, "prefix", full.buf);
	if (lr->delimiter)
		gcs_add_param(&url, "delimiter", lr->delimiter);
	gcs_add_param(&url, "maxResults", maxr);
	if (lr->token)
		gcs_add_param(&url, "pageToken", lr->token);
	struct strbuf start = STRBUF_INIT;
	if (lr->start_at && *lr->start_at && !lr->token) {
		gcs_full_name(g, lr->start_at, &start);
		gcs_add_param(&url, "startOffset", start.buf);
	}
	strbuf_release(&start);
	strbuf_addf(&fields, "items(%s),prefixes,nextPageToken", g->fields);
	gcs_add_param(&url, "fields", fields.buf);
	http_resp_init(&resp);
	rc = gcs_get(g, url.buf, NULL, NULL, 0, NULL, &body, dl, &resp, reason,
		     reasonlen, msg, msglen);
	if (rc == 0) {
		rc = gcs_json_parse_listing(body.buf, body.len, g->stamp_key,
					    out);
		if (rc < 0)
			log_warn("gcs %s: invalid listing response for '%s'",
				 g->base.name, full.buf);
	}
	http_resp_release(&resp);
	strbuf_release(&url);
	strbuf_release(&body);
	strbuf_release(&full);
	strbuf_release(&fields);
	return rc;
}

static int gcs_list(struct backend *b, const struct list_req *req, list_cb cb,
		    void *arg, char **next_token, const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	size_t plen = strlen(g->prefix);
	struct gcs_listing l;
	int rc;

	*next_token = NULL;
	rc = list_page(g, req, &l, dl, NULL, 0, NULL, 0);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < l.nitems && rc == 0; i++) {
		if (strncmp(l.items[i].name, g->prefix, plen) != 0)
			continue;
		struct list_entry e = { .name = l.items[i].name + plen,
					.info = l.items[i].info };
		rc = cb(arg, &e);
	}
	for (size_t i = 0; i < l.nprefixes && rc == 0; i++) {
		if (strncmp(l.prefixes[i], g->prefix, plen) != 0)
			continue;
		struct list_entry e = { .name = l.prefixes[i] + plen,
					.is_prefix = true };
		e.info.is_dir = true;
		rc = cb(arg, &e);
	}
	if (rc == 0) {
		*next_token = l.next_token;
		l.next_token = NULL;
	}
	gcs_listing_release(&l);
	return rc;
}

static int gcs_stat(struct backend *b, const char *name, struct obj_info *out,
		    const struct deadline *dl)
{
	return backend_stat_by_listing(b, name, out, dl);
}

int gcs_get_meta(struct gcs_backend *g, const char *name,
		 struct gcs_item *item, const struct deadline *dl)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct http_resp resp;
	int rc;

	gcs_object_url(g, name, &url);
	gcs_add_param(&url, "fields", g->fields);
	http_resp_init(&resp);
	rc = gcs_get(g, url.buf, NULL, NULL, 0, NULL, &body, dl, &resp, NULL, 0,
		     NULL, 0);
	if (rc == 0 && gcs_json_parse_object(body.buf, body.len, g->stamp_key,
					    item) < 0) {
		log_warn("gcs %s: invalid object resource for '%s'",
			 g->base.name, name);
		rc = -EIO;
	}
	http_resp_release(&resp);
	strbuf_release(&url);
	strbuf_release(&body);
	return rc;
}

static int gcs_open_pinned(struct backend *b, const char *name,
			   const struct obj_info *info, struct bobj **out);

static int gcs_open(struct backend *b, const char *name, struct bobj **out,
		    const struct deadline *dl)
{
	struct gcs_item item;
	int rc = gcs_get_meta(to_gcs(b), name, &item, dl);
	if (rc < 0)
		return rc;
	free(item.name);
	return gcs_open_pinned(b, name, &item.info, out);
}

static int gcs_open_pinned(struct backend *b, const char *name,
			   const struct obj_info *info, struct bobj **out)
{
	struct gcs_backend *g = to_gcs(b);
	/* A replica's generation is the stamp; reads pin its own (etag). */
	uint64_t pin = info->generation;
	if (g->stamp_key && !parse_u64_str(info->etag, &pin))
		return -EINVAL;
	if (!pin)
		return -EINVAL;
	struct gcs_obj *o = xcalloc(1, sizeof(*o));
	struct strbuf url = STRBUF_INIT;
	bobj_init(&o->base, b, name);
	o->base.info = *info;
	snprintf(o->pin, sizeof(o->pin), "%" PRIu64, pin);
	gcs_object_url(g, name, &url);
	gcs_add_param(&url, "alt", "media");
	gcs_add_param(&url, "generation", o->pin);
	o->media_url = strbuf_detach(&url, NULL);
	*out = &o->base;
	return 0;
}

/* After a 404 at generation G: gone (ENOENT) or replaced (ESTALE)? */
static int gone_or_replaced(struct gcs_backend *g, const char *name,
			    const struct deadline *dl)
{
	struct gcs_item item;
	int rc = gcs_get_meta(g, name, &item, dl);
	if (rc == 0) {
		free(item.name);
		return -ESTALE;
	}
	return rc;
}

/* Decompressive transcoding: GCS stored the object gzip-encoded but
 * served it decoded, so the body is other bytes than stored. */
static bool transcoded(const struct http_resp *r)
{
	char v[32];

	if (!http_resp_header(r, "x-goog-stored-content-encoding", v, sizeof(v)) ||
	    strcmp(v, "gzip") != 0)
		return false;
	return !http_resp_header(r, "content-encoding", v, sizeof(v)) ||
	       strcmp(v, "gzip") != 0;
}

/* The Range header of r and Accept-Encoding: gzip, so that an object
 * stored gzip-encoded is served as stored (see transcoded()). */
static struct curl_slist *media_headers(const struct http_range *r)
{
	struct curl_slist *extra = NULL;
	char range[80], value[64];

	http_range_header(r, value, sizeof(value));
	snprintf(range, sizeof(range), "Range: %s", value);
	extra = curl_slist_append(extra, range);
	return curl_slist_append(extra, "Accept-Encoding: gzip");
}

static ssize_t gcs_read(struct bobj *ob, void *buf, size_t len, uint64_t off,
			const struct deadline *dl)
{
	struct gcs_obj *o = (struct gcs_obj *)ob;
	struct gcs_backend *g = to_gcs(ob->b);
	struct curl_slist *extra;
	struct http_range r;
	struct http_resp resp;
	int rc;

	if (!http_range_set(&r, off, len, ob->info.size))
		return 0;
	r.pin_header = "x-goog-generation";
	r.pin_value = o->pin;
	extra = media_headers(&r);
	http_resp_init(&resp);
	rc = gcs_get(g, o->media_url, extra, buf, r.len, &r, NULL, dl, &resp,
		     NULL, 0, NULL, 0);
	if (rc == 0 && transcoded(&resp))
		rc = -EIO;
	else if (rc == -ENOENT)
		rc = gone_or_replaced(g, ob->name, dl);
	if (rc == -EIO)
		log_warn("gcs %s: unexpected response to ranged read of %s at "
			 "generation %" PRIu64 " (HTTP %ld)", g->base.name,
			 ob->name, ob->info.generation, resp.status);
	http_resp_release(&resp);
	curl_slist_free_all(extra);
	return rc < 0 ? rc : (ssize_t)r.len;
}

/*
 * The version that one media GET of the live object served, from its
 * headers.  Where they do not say the creation time (gcs_media.h), or
 * not the version at all, the object resource does: a second request,
 * and the tail is kept when the live generation is still the one
 * served.  1 when the tail belongs to *info's version, 0 when not, or
 * -errno.
 */
static int served_version(struct gcs_backend *g, const char *name,
			  const struct http_resp *resp, struct obj_info *info,
			  const struct deadline *dl)
{
	static atomic_bool warned;
	uint64_t served = 0;

	if (gcs_media_info(resp, info) < 0) {
		if (!atomic_exchange(&warned, true))
			log_warn("gcs %s: a media answer ('%s') does not say "
				 "its version; opens ask for the metadata too",
				 g->base.name, name);
	} else if (info->mtime_ns) {
		return 1;
	} else {
		served = info->generation;
	}
	struct gcs_item item;
	int rc = gcs_get_meta(g, name, &item, dl);
	if (rc < 0)
		return rc;
	free(item.name);
	*info = item.info;
	return served && info->generation == served;
}

/* One media GET of the last tail_len bytes names the generation they
 * come from.  A replica's version is a stamp in its custom metadata,
 * which a media answer does not carry: it opens as open() does. */
static int gcs_open_tail(struct backend *b, const char *name, size_t tail_len,
			 struct bobj **out, const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	struct strbuf url = STRBUF_INIT;
	struct http_range r;
	struct http_resp resp;
	struct obj_info info;

	if (g->stamp_key)
		return gcs_open(b, name, out, dl);
	http_range_set_tail(&r, tail_len);
	struct curl_slist *extra = media_headers(&r);
	gcs_object_url(g, name, &url);
	gcs_add_param(&url, "alt", "media");
	char *buf = xmalloc(tail_len);
	http_resp_init(&resp);
	int rc = gcs_get(g, url.buf, extra, buf, tail_len, &r, NULL, dl, &resp,
			 NULL, 0, NULL, 0);
	size_t got = resp.body_len;
	bool plain = rc == -ERANGE ||          /* an empty object */
		     ((rc == 0 || rc == -EIO) && transcoded(&resp));
	if (rc == 0 && !plain)
		rc = served_version(g, name, &resp, &info, dl);
	http_resp_release(&resp);
	curl_slist_free_all(extra);
	strbuf_release(&url);
	if (plain) {
		free(buf);
		return gcs_open(b, name, out, dl);
	}
	if (rc >= 0) {
		bool has_tail = rc == 1;
		rc = gcs_open_pinned(b, name, &info, out);
		if (rc == 0 && has_tail) {
			(*out)->tail = got < tail_len ? xrealloc(buf, got ? got : 1)
						      : buf;
			(*out)->tail_len = got;
			return 0;
		}
	}
	free(buf);
	return rc;
}

static void gcs_close(struct bobj *ob)
{
	struct gcs_obj *o = (struct gcs_obj *)ob;
	free(o->media_url);
	bobj_release(ob);
	free(o);
}

static void gcs_probe(struct backend *b, struct probe_result *res,
		      const struct deadline *dl)
{
	struct gcs_backend *g = to_gcs(b);
	struct list_req lr = { .prefix = "", .delimiter = "/", .max_keys = 1 };
	struct gcs_listing l;
	char reason[64], msg[256];
	int64_t t0 = mono_ns();

	memset(res, 0, sizeof(*res));
	res->err = list_page(g, &lr, &l, dl, reason, sizeof(reason), msg,
			     sizeof(msg));
	res->latency_ms = (double)(mono_ns() - t0) / 1e6;
	switch (res->err) {
	case 0:
		gcs_listing_release(&l);
		snprintf(res->message, sizeof(res->message), "reachable, bucket "
			 "found, credentials accepted");
		break;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ETIMEDOUT:
	case -ECONNRESET:
		if (strstr(msg, "unreachable"))
			snprintf(res->message, sizeof(res->message), "%s", msg);
		else
			snprintf(res->message, sizeof(res->message),
				 "unreachable: %s", msg[0] ? msg
							   : strerror(-res->err));
		break;
	case -EACCES:
		if (strstr(msg, "credentials rejected"))
			snprintf(res->message, sizeof(res->message), "%s", msg);
		else if (!strcmp(reason, "forbidden"))
			snprintf(res->message, sizeof(res->message), "access "
				 "denied to bucket '%s' (%s)", g->bucket, msg);
		else
			snprintf(res->message, sizeof(res->message),
				 "credentials rejected (%s%s%s)",
				 reason[0] ? reason : "HTTP 401/403",
				 msg[0] ? ": " : "", msg);
		break;
	case -ENOENT:
		snprintf(res->message, sizeof(res->message), "bucket not found: "
			 "'%s' (%s)", g->bucket, reason[0] ? reason : "404");
		break;
	default:
		snprintf(res->message, sizeof(res->message), "error: %s%s%s",
			 strerror(-res->err), msg[0] ? ": " : "", msg);
	}
}

static void gcs_metrics(struct backend *b, struct prom *p)
{
	http_engine_metrics(to_gcs(b)->http, b->name, p);
}

static void gcs_destroy(struct backend *b)
{
	struct gcs_backend *g = to_gcs(b);
	gcs_auth_destroy(g->auth);
	http_engine_destroy(g->http);
	free(g->base_url);
	free(g->bucket);
	free(g->prefix);
	free(g->stamp_key);
	backend_release(b);
	free(g);
}

static const struct backend_ops gcs_ops = {
	.type = "gcs",
	.stat = gcs_stat,
	.list = gcs_list,
	.open = gcs_open,
	.read = gcs_read,
	.open_tail = gcs_open_tail,
	.open_pinned = gcs_open_pinned,
	.close = gcs_close,
	.writer_open = gcs_writer_open,
	.writer_write = gcs_writer_write,
	.writer_commit = gcs_writer_commit,
	.writer_abort = gcs_writer_abort,
	.remove = gcs_remove,
	.copy = gcs_copy,
	.set_meta = gcs_set_meta,
	.probe = gcs_probe,
	.metrics = gcs_metrics,
	.destroy = gcs_destroy,
};

int gcs_create(const struct store_conf *c, struct backend **out,
	       char *err, size_t errlen)
{
	struct gcs_backend *g = xcalloc(1, sizeof(*g));
	const char *ep = c->endpoint && *c->endpoint ? c->endpoint
						     : GCS_DEFAULT_ENDPOINT;
	size_t eplen = strlen(ep);
	struct strbuf desc = STRBUF_INIT;

	if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) {
		snprintf(err, errlen, "endpoint '%s': scheme must be http or "
			 "https", ep);
		free(g);
		return -EINVAL;
	}
	while (eplen && ep[eplen - 1] == '/')
		eplen--;
	/* a source opened to write asks for a token that may; a read-only
	 * store never holds one */
	bool writable = c->writable && !c->replica;
	g->http = http_engine_create(&c->net);
	int rc = gcs_auth_create_scoped(c->credentials, c->metadata_endpoint,
					writable ? GCS_SCOPE_READ_WRITE
						 : GCS_SCOPE_READ_ONLY,
					g->http, &g->auth, err, errlen);
	if (rc < 0) {
		http_engine_destroy(g->http);
		free(g);
		return rc;
	}
	g->base_url = xstrndup(ep, eplen);
	g->bucket = xstrdup(c->bucket);
	g->prefix = xstrdup(c->prefix ? c->prefix : "");
	g->page_size = (unsigned)c->list_page_size;
	g->request_timeout_ms = c->net.request_timeout_ms;
	g->fields = OBJECT_FIELDS;
	if (c->replica) {
		g->stamp_key = xstrdup(c->generation_key && *c->generation_key
				       ? c->generation_key : "goog-generation");
		g->fields = REPLICA_FIELDS;
	}
	strbuf_addf(&desc, "gcs %s/%s/%s", g->base_url, g->bucket, g->prefix);
	backend_init(&g->base, &gcs_ops, c->name, desc.buf,
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT |
		     (writable ? BACKEND_WRITE : 0));
	strbuf_release(&desc);
	*out = &g->base;
	return 0;
}
