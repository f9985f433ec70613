/*
 * s3.c - the S3 store.
 *
 * Every request is signed with SigV4 (x-amz-content-sha256:
 * UNSIGNED-PAYLOAD for bodiless requests) and sent through the HTTP
 * engine.  The URL's path and query are built by the same encoders the
 * signer uses, so the server sees exactly what was signed.
 *
 * stat() uses one ListObjectsV2 call (prefix = the name, delimiter '/'):
 * the listing shows both the object and a same-named folder, and carries
 * size, ETag and a millisecond LastModified.  open() pins the ETag with a
 * HEAD; read() sends it as If-Match, so an overwritten object answers
 * 412, which becomes ESTALE; the HTTP layer checks the rest of the
 * answer (the ETag it names, Content-Range, length).
 */
#include "backends/s3/s3.h"
#include "backends/s3/awscreds.h"
#include "backends/backend.h"
#include "backends/http/http.h"
#include "backends/s3/s3_xml.h"
#include "backends/s3/sigv4.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/util/parse.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "backends/util/uri.h"
#include "backends/util/base64.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define MAX_HEADERS 8

struct s3_backend {
	struct backend base;
	struct http_engine *http;
	char *base_url;       /* "http://127.0.0.1:7480" */
	char *host;           /* Host header value, as signed */
	char *bucket;
	char *prefix;         /* "" or "dir/" */
	char *region;
	char *generation_header;  /* "x-amz-meta-goog-generation" */
	unsigned page_size;
	struct aws_creds creds;
	atomic_uint_fast64_t hidden;   /* listed keys hidden: NUL in them */
};

struct s3_obj {
	struct bobj base;
	char quoted_etag[HY_ETAG_MAX + 2];
};

/* One request: what the prepare callback signs on every attempt. */
struct s3_call {
	struct s3_backend *s3;
	const char *method;
	struct strbuf path;                 /* unencoded "/bucket/key" */
	struct sigv4_pair params[8];
	size_t nparams;
	struct sigv4_pair headers[MAX_HEADERS];   /* extra signed headers */
	size_t nheaders;
	const void *upload;                       /* PUT body, borrowed */
	size_t upload_len;
};

static struct s3_backend *to_s3(struct backend *b)
{
	return (struct s3_backend *)b;
}

static void call_init(struct s3_call *c, struct s3_backend *s3,
		      const char *method, const char *key)
{
	memset(c, 0, sizeof(*c));
	c->s3 = s3;
	c->method = method;
	strbuf_init(&c->path);
	strbuf_addf(&c->path, "/%s", s3->bucket);
	if (key)
		strbuf_addf(&c->path, "/%s%s", s3->prefix, key);
}

static void call_param(struct s3_call *c, const char *name, const char *value)
{
	c->params[c->nparams].name = name;
	c->params[c->nparams].value = value;
	c->nparams++;
}

static void call_header(struct s3_call *c, const char *name, const char *value)
{
	c->headers[c->nheaders].name = name;
	c->headers[c->nheaders].value = value;
	c->nheaders++;
}

static void call_url(const struct s3_call *c, struct strbuf *url)
{
	strbuf_adds(url, c->s3->base_url);
	uri_encode_str(url, c->path.buf, true);
	if (c->nparams) {
		strbuf_addch(url, '?');
		sigv4_canonical_query(url, c->params, c->nparams);
	}
}

/* http_req.prepare: sign with the current time, add all headers. */
static int call_prepare(void *ctx, struct curl_slist **out)
{
	struct s3_call *c = ctx;
	struct s3_backend *s3 = c->s3;
	struct sigv4_pair h[MAX_HEADERS + 4];
	size_t n = 0;
	char date[32];
	struct strbuf auth = STRBUF_INIT, line = STRBUF_INIT;

	sigv4_amz_date(wall_ns(), date, sizeof(date));
	h[n++] = (struct sigv4_pair){ "host", s3->host };
	h[n++] = (struct sigv4_pair){ "x-amz-date", date };
	h[n++] = (struct sigv4_pair){ "x-amz-content-sha256",
				      SIGV4_UNSIGNED_PAYLOAD };
	if (s3->creds.session_token)
		h[n++] = (struct sigv4_pair){ "x-amz-security-token",
					      s3->creds.session_token };
	for (size_t i = 0; i < c->nheaders; i++)
		h[n++] = c->headers[i];

	struct sigv4_input in = {
		.method = c->method, .path = c->path.buf,
		.params = c->params, .nparams = c->nparams,
		.headers = h, .nheaders = n,
		.payload_hash = SIGV4_UNSIGNED_PAYLOAD, .amz_date = date,
		.region = s3->region, .service = "s3",
		.access_key = s3->creds.access_key,
		.secret_key = s3->creds.secret_key,
	};
	sigv4_authorization(&auth, &in);
	for (size_t i = 0; i < n; i++) {
		strbuf_reset(&line);
		strbuf_addf(&line, "%s: %s", h[i].name, h[i].value);
		*out = curl_slist_append(*out, line.buf);
	}
	strbuf_reset(&line);
	strbuf_addf(&line, "Authorization: %s", auth.buf);
	*out = curl_slist_append(*out, line.buf);
	OPENSSL_cleanse(line.buf, line.len);
	OPENSSL_cleanse(auth.buf, auth.len);
	strbuf_release(&line);
	strbuf_release(&auth);
	return *out ? 0 : -ENOMEM;
}

/*
 * Send a call.  Returns 0 for a 2xx response (that passed the checks of
 * range, if given), else -errno as http_do() gives it.  When code is
 * given it receives the S3 error code of an error status (e.g.
 * "NoSuchBucket").
 */
static int call_do(struct s3_call *c, void *buf, size_t buflen,
		   const struct http_range *range, struct strbuf *body,
		   const struct deadline *dl, struct http_resp *resp,
		   char *code, size_t codelen)
{
	struct strbuf url = STRBUF_INIT;
	char msg[256];
	int rc;

	call_url(c, &url);
	struct http_req req = {
		.method = c->method, .url = url.buf, .idempotent = true,
		.prepare = call_prepare, .prepare_ctx = c, .range = range,
		.buf = buf, .buf_len = buflen, .body = body,
		.body_max = 16 << 20, .dl = dl,
		.upload = c->upload, .upload_len = c->upload_len,
	};
	if (code && codelen)
		code[0] = '\0';
	rc = http_do(c->s3->http, &req, resp);
	if (rc < 0 && http_resp_error_status(resp)) {
		if (code)
			s3_xml_parse_error(resp->errbody.buf, resp->errbody.len,
					   code, codelen, msg, sizeof(msg));
		log_debug("s3 %s: %s %s -> HTTP %ld %s", c->s3->base.name,
			  c->method, c->path.buf, resp->status,
			  code ? code : "");
	} else if (rc < 0) {
		log_debug("s3 %s: %s %s -> %s (%s)", c->s3->base.name,
			  c->method, c->path.buf, strerror(-rc), resp->error);
	}
	strbuf_release(&url);
	return rc;
}

static void call_release(struct s3_call *c)
{
	strbuf_release(&c->path);
}

/* Fetch one ListObjectsV2 page of raw keys. */
static int list_page(struct s3_backend *s3, const char *prefix,
		     const char *delim, const char *token, const char *start_at,
		     unsigned max_keys, struct s3_xml_listing *out,
		     const struct deadline *dl, char *code, size_t codelen)
{
	struct s3_call c;
	struct strbuf full = STRBUF_INIT, body = STRBUF_INIT;
	struct http_resp resp;
	char maxk[16];
	int rc;

	strbuf_addf(&full, "%s%s", s3->prefix, prefix);
	snprintf(maxk, sizeof(maxk), "%u", max_keys);
	call_init(&c, s3, "GET", NULL);
	call_param(&c, "list-type", "2");
	call_param(&c, "prefix", full.buf);
	call_param(&c, "max-keys", maxk);
	call_param(&c, "encoding-type", "url");
	if (delim)
		call_param(&c, "delimiter", delim);
	if (token)
		call_param(&c, "continuation-token", token);
	struct strbuf after = STRBUF_INIT;
	if (start_at && *start_at && !token) {
		/* start-after is exclusive: start after the name less its
		 * last byte, which sorts just before the name */
		strbuf_addf(&after, "%s%.*s", s3->prefix,
			    (int)strlen(start_at) - 1, start_at);
		call_param(&c, "start-after", after.buf);
	}
	http_resp_init(&resp);
	rc = call_do(&c, NULL, 0, NULL, &body, dl, &resp, code, codelen);
	if (rc == 0) {
		rc = s3_xml_parse_listing(body.buf, body.len, out);
		if (rc < 0)
			log_warn("s3 %s: invalid listing response for '%s'",
				 s3->base.name, full.buf);
	}
	http_resp_release(&resp);
	call_release(&c);
	strbuf_release(&after);
	strbuf_release(&full);
	strbuf_release(&body);
	return rc;
}

/*
 * A listed key (decoded by the parser) as a store-relative name: the
 * store prefix stripped.  NULL (the entry is skipped) for keys outside
 * the prefix.
 */
static const char *relative_key(const struct s3_backend *s3, const char *key)
{
	size_t plen = strlen(s3->prefix);
	return strncmp(key, s3->prefix, plen) == 0 ? key + plen : NULL;
}

/* Count keys the parser hid (a NUL byte in them), like the unsafe
 * names fs/ hides, and say so. */
static void note_hidden(struct s3_backend *s3, const struct s3_xml_listing *l,
			const char *prefix)
{
	if (!l->hidden)
		return;
	atomic_fetch_add(&s3->hidden, l->hidden);
	log_info("s3 %s: '%s': %llu name(s) with a NUL byte hidden",
		 s3->base.name, prefix, (unsigned long long)l->hidden);
}

static void entry_info(const struct s3_xml_entry *x, struct obj_info *info)
{
	memset(info, 0, sizeof(*info));
	info->is_dir = x->is_prefix;
	info->size = x->size;
	info->mtime_ns = x->mtime_ns;
	memcpy(info->etag, x->etag, sizeof(info->etag));
}

static int s3_list(struct backend *b, const struct list_req *req, list_cb cb,
		   void *arg, char **next_token, const struct deadline *dl)
{
	struct s3_backend *s3 = to_s3(b);
	struct s3_xml_listing l;
	int rc;

	*next_token = NULL;
	rc = list_page(s3, req->prefix, req->delimiter, req->token,
		       req->start_at,
		       req->max_keys ? req->max_keys : s3->page_size, &l, dl,
		       NULL, 0);
	if (rc < 0)
		return rc;
	note_hidden(s3, &l, req->prefix);
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		const char *name = relative_key(s3, l.entries[i].key);
		if (!name)
			continue;
		struct list_entry e = { .name = name,
					.is_prefix = l.entries[i].is_prefix };
		entry_info(&l.entries[i], &e.info);
		rc = cb(arg, &e);
	}
	if (rc == 0 && l.truncated) {
		*next_token = l.next_token;
		l.next_token = NULL;
	}
	s3_xml_listing_release(&l);
	return rc;
}

static int s3_stat(struct backend *b, const char *name, struct obj_info *out,
		   const struct deadline *dl)
{
	return backend_stat_by_listing(b, name, out, dl);
}

/* Fill info from HEAD/GET response headers.  -EBADMSG if incomplete.
 * A stamped source generation and crc32c (replicas) are taken along;
 * a malformed stamp counts as none. */
static int info_from_headers(const struct s3_backend *s3,
			     const struct http_resp *r, struct obj_info *info)
{
	char v[256];

	memset(info, 0, sizeof(*info));
	uint64_t off;
	if (r->status == 206 ? !http_resp_range(r, &off, &info->size)
	    : !http_resp_header(r, "content-length", v, sizeof(v)) ||
	      !parse_u64_str(v, &info->size))
		return -EBADMSG;
	if (!http_resp_header(r, "etag", v, sizeof(v)) || !v[0] ||
	    !etag_copy(info->etag, v, strlen(v)))
		return -EBADMSG;
	if (http_resp_header(r, "last-modified", v, sizeof(v)))
		httpdate_parse_ns(v, &info->mtime_ns);
	uint64_t g;
	if (http_resp_header(r, s3->generation_header, v, sizeof(v)) &&
	    parse_u64_str(v, &g))
		info->generation = g;
	if (http_resp_header(r, "x-amz-meta-" STORE_CRC32C_KEY, v, sizeof(v)))
		info->has_crc32c = base64_crc32c(v, &info->crc32c) == 0;
	return 0;
}

static int s3_open_pinned(struct backend *b, const char *name,
			  const struct obj_info *info, struct bobj **out)
{
	if (!info->etag[0])
		return -EINVAL;
	struct s3_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, name);
	o->base.info = *info;
	snprintf(o->quoted_etag, sizeof(o->quoted_etag), "\"%s\"", info->etag);
	*out = &o->base;
	return 0;
}

static int s3_open(struct backend *b, const char *name, struct bobj **out,
		   const struct deadline *dl)
{
	struct s3_backend *s3 = to_s3(b);
	struct s3_call c;
	struct http_resp resp;
	struct obj_info info;
	int rc;

	call_init(&c, s3, "HEAD", name);
	http_resp_init(&resp);
	rc = call_do(&c, NULL, 0, NULL, NULL, dl, &resp, NULL, 0);
	if (rc == 0)
		rc = info_from_headers(s3, &resp, &info);
	http_resp_release(&resp);
	call_release(&c);
	if (rc < 0)
		return rc == -EBADMSG ? -EIO : rc;

	return s3_open_pinned(b, name, &info, out);
}

/* One GET of the last tail_len bytes names the version it comes from. */
static int s3_open_tail(struct backend *b, const char *name, size_t tail_len,
			struct bobj **out, const struct deadline *dl)
{
	struct s3_backend *s3 = to_s3(b);
	struct http_range r;
	struct s3_call c;
	struct http_resp resp;
	struct obj_info info;
	char range[64];
	char *buf = xmalloc(tail_len);
	size_t got = 0;

	http_range_set_tail(&r, tail_len);
	http_range_header(&r, range, sizeof(range));
	call_init(&c, s3, "GET", name);
	call_header(&c, "range", range);
	http_resp_init(&resp);
	int rc = call_do(&c, buf, tail_len, &r, NULL, dl, &resp, NULL, 0);
	if (rc == 0) {
		rc = info_from_headers(s3, &resp, &info);
		got = resp.body_len;
	}
	http_resp_release(&resp);
	call_release(&c);
	if (rc == -ERANGE) {              /* an empty object */
		free(buf);
		return s3_open(b, name, out, dl);
	}
	if (rc == 0)
		rc = s3_open_pinned(b, name, &info, out);
	if (rc < 0) {
		free(buf);
		return rc == -EBADMSG ? -EIO : rc;
	}
	(*out)->tail = got < tail_len ? xrealloc(buf, got ? got : 1) : buf;
	(*out)->tail_len = got;
	return 0;
}

static ssize_t s3_read(struct bobj *ob, void *buf, size_t len, uint64_t off,
		       const struct deadline *dl)
{
	struct s3_obj *o = (struct s3_obj *)ob;
	struct s3_backend *s3 = to_s3(ob->b);
	struct http_range r;
	struct s3_call c;
	struct http_resp resp;
	char range[64];
	int rc;

	if (!http_range_set(&r, off, len, ob->info.size))
		return 0;
	/* If-Match makes a replaced object answer 412; the ETag the answer
	 * names must be the pinned one all the same. */
	r.pin_header = "etag";
	r.pin_value = o->quoted_etag;
	http_range_header(&r, range, sizeof(range));
	call_init(&c, s3, "GET", ob->name);
	call_header(&c, "range", range);
	call_header(&c, "if-match", o->quoted_etag);
	http_resp_init(&resp);
	rc = call_do(&c, buf, r.len, &r, NULL, dl, &resp, NULL, 0);
	if (rc == -EIO)
		log_warn("s3 %s: unexpected response to GET %s %s (HTTP %ld)",
			 s3->base.name, ob->name, range, resp.status);
	http_resp_release(&resp);
	call_release(&c);
	return rc < 0 ? rc : (ssize_t)r.len;
}

/* The largest object one PUT may carry (S3's limit). */
#define S3_MAX_PUT (5ULL << 30)

/* One PUT carries the bytes and their stamp: they land together or not
 * at all.  Content-MD5 makes the store refuse bytes that changed on the
 * way. */
static int s3_put(struct backend *b, const char *name, int fd, uint64_t size,
		  const struct obj_info *stamp, const struct deadline *dl)
{
	struct s3_backend *s3 = to_s3(b);
	struct strbuf crc = STRBUF_INIT, md5 = STRBUF_INIT;
	struct s3_call c;
	struct http_resp resp;
	char gen[32], code[64];
	void *map = NULL;
	int rc;

	if (!*name || name[strlen(name) - 1] == '/')
		return -EINVAL;
	if (size > S3_MAX_PUT)
		return -EFBIG;
	if (size) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			return -errno;
		madvise(map, size, MADV_SEQUENTIAL);
	}
	snprintf(gen, sizeof(gen), "%" PRIu64, stamp->generation);
	call_init(&c, s3, "PUT", name);
	call_header(&c, s3->generation_header, gen);
	call_header(&c, "content-type", "application/octet-stream");
	if (stamp->has_crc32c) {
		base64_crc32c_encode(&crc, stamp->crc32c);
		call_header(&c, "x-amz-meta-" STORE_CRC32C_KEY, crc.buf);
	}
	if (stamp->has_md5) {
		base64_encode(&md5, stamp->md5, 16);
		call_header(&c, "content-md5", md5.buf);
	}
	c.upload = size ? map : "";
	c.upload_len = (size_t)size;
	http_resp_init(&resp);
	rc = call_do(&c, NULL, 0, NULL, NULL, dl, &resp, code,
		     sizeof(code));
	if (rc < 0)
		log_warn("s3 %s: PUT %s failed: %s%s%s", s3->base.name, name,
			 strerror(-rc), code[0] ? ", " : "", code);
	http_resp_release(&resp);
	call_release(&c);
	strbuf_release(&crc);
	strbuf_release(&md5);
	if (map)
		munmap(map, size);
	return rc;
}

static void s3_close(struct bobj *ob)
{
	bobj_release(ob);
	free(ob);
}

static void s3_probe(struct backend *b, struct probe_result *res,
		     const struct deadline *dl)
{
	struct s3_backend *s3 = to_s3(b);
	struct s3_xml_listing l;
	char code[64];
	int64_t t0 = mono_ns();

	memset(res, 0, sizeof(*res));
	res->err = list_page(s3, "", "/", NULL, NULL, 1, &l, dl, code,
			     sizeof(code));
	res->latency_ms = (double)(mono_ns() - t0) / 1e6;
	if (res->err == 0) {
		s3_xml_listing_release(&l);
		snprintf(res->message, sizeof(res->message), "reachable, bucket "
			 "found, credentials accepted");
		return;
	}
	const char *m;
	switch (res->err) {
	case -ECONNREFUSED: m = "unreachable: connection refused"; break;
	case -EHOSTUNREACH: m = "unreachable: cannot resolve host"; break;
	case -ETIMEDOUT: m = "unreachable: timed out"; break;
	case -ECONNRESET: m = "unreachable: connection reset"; break;
	default: m = NULL;
	}
	if (m)
		snprintf(res->message, sizeof(res->message), "%s", m);
	else if (!strcmp(code, "SignatureDoesNotMatch"))
		snprintf(res->message, sizeof(res->message),
			 "credentials rejected: the secret key does not match "
			 "(SignatureDoesNotMatch)");
	else if (!strcmp(code, "InvalidAccessKeyId"))
		snprintf(res->message, sizeof(res->message),
			 "credentials rejected: unknown access key "
			 "(InvalidAccessKeyId)");
	else if (!strcmp(code, "NoSuchBucket"))
		snprintf(res->message, sizeof(res->message),
			 "bucket not found: '%s' (NoSuchBucket)", s3->bucket);
	else if (res->err == -EACCES)
		snprintf(res->message, sizeof(res->message),
			 "access denied listing bucket '%s' (%s)", s3->bucket,
			 code[0] ? code : "HTTP 403");
	else
		snprintf(res->message, sizeof(res->message), "error: %s%s%s%s",
			 strerror(-res->err), code[0] ? " (" : "", code,
			 code[0] ? ")" : "");
}

static void s3_metrics(struct backend *b, struct prom *p)
{
	struct s3_backend *s3 = to_s3(b);
	http_engine_metrics(s3->http, b->name, p);
	prom_add(p, "hylake_store_hidden_names_total", PROM_COUNTER,
		 "Listed names hidden by the store: they hold a NUL byte",
		 "store", b->name, (double)atomic_load(&s3->hidden));
}

static void s3_destroy(struct backend *b)
{
	struct s3_backend *s3 = to_s3(b);
	http_engine_destroy(s3->http);
	awscreds_release(&s3->creds);
	free(s3->base_url);
	free(s3->host);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->region);
	free(s3->generation_header);
	backend_release(b);
	free(s3);
}

static const struct backend_ops s3_ops = {
	.type = "s3",
	.stat = s3_stat,
	.list = s3_list,
	.open = s3_open,
	.read = s3_read,
	.open_tail = s3_open_tail,
	.open_pinned = s3_open_pinned,
	.close = s3_close,
	.put = s3_put,
	.probe = s3_probe,
	.metrics = s3_metrics,
	.destroy = s3_destroy,
};

/* Split the endpoint into the base URL and the Host header value. */
static int parse_endpoint(const char *endpoint, char **base, char **host,
			  char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *hostname = NULL, *port = NULL, *path = NULL;
	int rc = 0;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &hostname, 0) != CURLUE_OK) {
		snprintf(err, errlen, "endpoint '%s' is not a URL", endpoint);
		rc = -EINVAL;
		goto out_free_parts;
	}
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(err, errlen, "endpoint '%s': scheme must be http or "
			 "https", endpoint);
		rc = -EINVAL;
		goto out_free_parts;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	if (path && strcmp(path, "/") != 0) {
		snprintf(err, errlen, "endpoint '%s': a path after the host is "
			 "not supported", endpoint);
		rc = -EINVAL;
		goto out_free_parts;
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, hostname);
	if (port)
		strbuf_addf(&sb, ":%s", port);
	*host = strbuf_detach(&sb, NULL);
	strbuf_addf(&sb, "%s://%s", scheme, *host);
	*base = strbuf_detach(&sb, NULL);
out_free_parts:
	curl_free(scheme);
	curl_free(hostname);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

int s3_create(const struct store_conf *c, struct backend **out,
	      char *err, size_t errlen)
{
	struct s3_backend *s3 = xcalloc(1, sizeof(*s3));
	struct strbuf desc = STRBUF_INIT;
	int rc;

	rc = parse_endpoint(c->endpoint, &s3->base_url, &s3->host, err, errlen);
	if (rc < 0)
		goto out_free;
	rc = awscreds_load(c->credentials, c->profile, &s3->creds, err, errlen);
	if (rc < 0)
		goto out_free;
	s3->bucket = xstrdup(c->bucket);
	s3->prefix = xstrdup(c->prefix ? c->prefix : "");
	s3->region = xstrdup(c->region && *c->region ? c->region : "us-east-1");
	strbuf_addf(&desc, "x-amz-meta-%s", c->generation_key && *c->generation_key
		    ? c->generation_key : "goog-generation");
	for (char *p = desc.buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	s3->generation_header = strbuf_detach(&desc, NULL);
	s3->page_size = (unsigned)c->list_page_size;
	s3->http = http_engine_create(&c->net);
	strbuf_addf(&desc, "s3 %s/%s/%s", s3->base_url, s3->bucket, s3->prefix);
	backend_init(&s3->base, &s3_ops, c->name, desc.buf,
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT);
	strbuf_release(&desc);
	*out = &s3->base;
	return 0;

out_free:
	free(s3->base_url);
	free(s3->host);
	free(s3);
	return rc;
}
