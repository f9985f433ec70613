/*
 * http.h - the HTTP engine every network store sends its requests through.
 *
 * Every transfer of the process runs on one shared libcurl multi handle
 * (one connection cache, one event loop; reused easy handles are kept per
 * engine), with the configured connect, total and stall timeouts capped
 * by the caller's deadline, and retries with capped exponential backoff
 * and full jitter for idempotent requests only (transport failures, 408,
 * 429 and 5xx).  Retries are budgeted per engine (one engine per store):
 * see struct http_retry_budget.  A server's Retry-After is honoured as
 * the least wait before the next attempt; when it falls past the
 * deadline no retry is sent.  A transport timeout is not retried under a
 * deadline marked timeout_final (a replica's share: the router asks the
 * next store instead).
 *
 * HTTP statuses become errno values in exactly one place,
 * http_status_errno(), applied by http_do() itself: a call succeeds only
 * on a 2xx.  CURLcodes become errno in exactly one place inside http.c.
 * A ranged read of a pinned version (struct http_range) is checked in
 * exactly one place too, http_range_check(), so the stores cannot drift
 * on what a good answer to it is.
 *
 * Thread safety: an engine is shared; http_do() may be called from any
 * number of threads at once.  A request and its response belong to the
 * calling thread.
 */
#ifndef HYLAKE_HTTP_H
#define HYLAKE_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/store.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

struct curl_slist;
struct http_engine;
struct prom;

struct http_stats {
	atomic_uint_fast64_t requests;   /* attempts sent */
	atomic_uint_fast64_t retries;
	atomic_uint_fast64_t retries_denied;  /* budget spent or Retry-After
	                                         past the deadline */
	atomic_uint_fast64_t failures;   /* calls that ended in an error,
	                                    but for -ENOENT (a 404) and
	                                    -ECANCELED (cancelled by us) */
	atomic_uint_fast64_t bytes_in;   /* body bytes received */
};

/*
 * Whose error statuses a response carries.  http_status_errno() reads
 * them alike but for one documented case: an OAuth 2.0 token endpoint
 * answers a refused grant or client with 400 (RFC 6749 section 5.2,
 * "invalid_grant"), which means -EACCES there and a malformed request,
 * -EINVAL, everywhere else.
 */
enum http_api {
	HTTP_API_STORE = 0,          /* storage APIs (S3, GCS JSON): the default */
	HTTP_API_TOKEN,              /* token endpoints and the metadata server */
	/*
	 * A GCS resumable upload session (PROTOCOLS.md 1.5): 308 is
	 * "Resume Incomplete", an answer to use (the caller reads
	 * resp->status and the Range header), not a redirect; 404 and 410
	 * say the session has expired or was cancelled, so the bytes sent
	 * into it are lost: -EIO, not "no such object".  The session URI
	 * lets whoever holds it upload: its requests' URLs are not logged.
	 */
	HTTP_API_UPLOAD_SESSION,
};

/*
 * A ranged read of one pinned version of an object: bytes [off, off+len)
 * of an object of `size` bytes.  Set it with http_range_set().  A call
 * that carries one succeeds only when the body is exactly those bytes of
 * that version (see http_range_check()).
 */
struct http_range {
	uint64_t off;                /* first byte asked for */
	size_t len;                  /* bytes asked for: > 0, off+len <= size */
	uint64_t size;               /* the pinned version's size */
	/*
	 * A tail (http_range_set_tail()): the last len bytes of whatever
	 * version the server holds, or all of it when it is shorter; off
	 * and size are unknown until the answer (http_resp_range()).
	 */
	bool tail;
	/*
	 * The response header that names the version served ("etag",
	 * "x-goog-generation") and the pinned version as that header spells
	 * it; both borrowed.  A response that names another version fails
	 * with -ESTALE; one that names none passes.  NULL: not checked.
	 */
	const char *pin_header;
	const char *pin_value;
};

struct http_req {
	const char *method;          /* "GET", "HEAD", ... */
	const char *url;             /* absolute, already encoded */
	bool idempotent;             /* may be retried */
	enum http_api api;           /* how error statuses read */
	/*
	 * A ranged read (borrowed), or NULL.  The caller sends the Range
	 * header itself (it may have to sign it; http_range_header() spells
	 * it) and passes buf with buf_len == range->len.
	 */
	const struct http_range *range;
	/*
	 * Called before each attempt to append headers (a signature that
	 * carries the current time must be fresh on every retry).  The list
	 * is freed by the engine after the attempt.  Returns 0 or -errno.
	 */
	int (*prepare)(void *ctx, struct curl_slist **headers);
	void *prepare_ctx;
	/* Fixed headers sent on every attempt (borrowed); may be NULL. */
	const struct curl_slist *static_headers;
	/*
	 * Where a 2xx body goes: into buf (at most buf_len bytes; a longer
	 * body fails the call with -EMSGSIZE), else appended to body (if
	 * set, up to body_max bytes).  Bodies of other statuses go to the
	 * response's errbody (first 64 KiB) so callers can parse errors.
	 */
	void *buf;
	size_t buf_len;
	struct strbuf *body;
	size_t body_max;
	/* Request body (POST/PUT), borrowed; NULL for none. */
	const void *upload;
	size_t upload_len;
	const struct deadline *dl;
	const atomic_bool *cancel;   /* optional: set to abort the transfer */
};

struct http_resp {
	long status;                 /* final HTTP status; 0 if none arrived */
	size_t body_len;             /* bytes stored for a 2xx response */
	struct strbuf headers;       /* "name: value\r\n" of the final response */
	struct strbuf errbody;       /* body of a non-2xx response */
	int attempts;
	char error[256];             /* transport error text, if any */
};

/*
 * A retry budget (a token bucket, as in gRPC and Finagle): every call
 * adds HTTP_RETRY_RATIO of a token, time adds HTTP_RETRY_PER_SEC a
 * second, up to HTTP_RETRY_BURST; each retry takes a whole token.  So in
 * a storm of 429/503 (or timeouts) the retries stay about a tenth of the
 * calls, plus a burst, instead of multiplying the load by 1 + retries.
 * Not thread safe by itself: the engine guards its own.  Pure functions
 * of their arguments (now_ns: monotonic), for tests.
 */
#define HTTP_RETRY_BURST 10.0
#define HTTP_RETRY_RATIO 0.1
#define HTTP_RETRY_PER_SEC 1.0
#define HTTP_RETRY_AFTER_MAX_S 3600   /* longer Retry-After values are cut */

struct http_retry_budget {
	double tokens;
	int64_t at_ns;               /* when time last added tokens */
};

void http_budget_init(struct http_retry_budget *b, int64_t now_ns);
/* A call is made: its share of a retry is earned. */
void http_budget_request(struct http_retry_budget *b, int64_t now_ns);
/* May a retry be sent?  Takes a token when it may. */
bool http_budget_take(struct http_retry_budget *b, int64_t now_ns);

/*
 * A Retry-After header value (RFC 9110 10.2.3): delta-seconds, or an
 * HTTP-date read against now_s (Unix seconds).  Returns the wait in ms
 * (0 for a date in the past; at most HTTP_RETRY_AFTER_MAX_S), or -1 when
 * the value is neither.
 */
int64_t http_retry_after_ms(const char *value, int64_t now_s);

struct http_engine *http_engine_create(const struct net_conf *nc);
void http_engine_destroy(struct http_engine *e);
const struct http_stats *http_engine_stats(const struct http_engine *e);
/* Add e's request counters to p, labelled store="<store>". */
void http_engine_metrics(const struct http_engine *e, const char *store,
			 struct prom *p);

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);

/*
 * Perform req, retrying as the header comment says.  Returns 0 only when
 * the final response is a 2xx (and, for a ranged read, passes
 * http_range_check()).  Otherwise a negative errno:
 *
 *  - no response could be had (resp->status is 0): -ETIMEDOUT (deadline
 *    or timeouts), -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET,
 *    -ECANCELED, -ENOMEM, -EINVAL, -EIO, -EMSGSIZE (a 2xx body longer
 *    than buf), or whatever req->prepare returned;
 *  - a non-2xx final status: http_status_errno(status, req->api), with
 *    resp->status and resp->errbody left for the caller to read the
 *    server's error document (an S3 Code, a GCS reason);
 *  - a ranged read: see http_range_check().
 *
 * resp is the caller's (http_resp_init() first); it describes the last
 * attempt.
 */
int http_do(struct http_engine *e, const struct http_req *req,
	    struct http_resp *resp);

/* True when the call ended on a non-2xx HTTP status: resp->errbody holds
 * the server's error document. */
bool http_resp_error_status(const struct http_resp *r);

/* Copy the value of header `name` (case-insensitive) into out.
 * Returns true when present. */
bool http_resp_header(const struct http_resp *r, const char *name,
		      char *out, size_t outlen);
/* The same for the nth (from 0) of the lines that carry header `name`,
 * for a header a server may send more than once (GCS's x-goog-hash). */
bool http_resp_header_nth(const struct http_resp *r, const char *name,
			  unsigned nth, char *out, size_t outlen);

/*
 * The one map from HTTP status to errno: 0 for 2xx and only for 2xx
 * (and for a 308 of HTTP_API_UPLOAD_SESSION);
 * 401/403 -EACCES, 404/410 -ENOENT (-EIO for HTTP_API_UPLOAD_SESSION),
 * 412 -ESTALE (a precondition on the pinned version or generation
 * failed; backend.h's write_pre_errno() says -EEXIST where the
 * precondition was "no such object"), 416 -ERANGE, 408/504 -ETIMEDOUT,
 * 429/503 -EIO (the store is throttling still, after the retries: not a
 * "try again" to hand to an application), 409 -EBUSY, 405/501 -ENOTSUP,
 * 400 -EINVAL (-EACCES for HTTP_API_TOKEN, see enum http_api), anything
 * else -EIO.
 */
int http_status_errno(long status, enum http_api api);

/*
 * Would http_do() retry a call that ended so (err and resp as it left
 * them)?  A transport failure (no status) or a 408, 429 or 5xx.
 */
bool http_transient(int err, const struct http_resp *resp);

/*
 * For a caller that retries by itself (a resumable upload resumes from
 * what the server has instead of resending the same request): before
 * retry n (1, 2, ...) after resp, wait as http_do() waits between its
 * attempts: capped exponential backoff with full jitter, Retry-After as
 * a floor, a token of the engine's retry budget, at most the engine's
 * configured retries.  Returns 0 after the wait, or -ETIMEDOUT (dl has
 * passed or would during the wait) or -EAGAIN (no retry left in the
 * budget or in the count) without waiting.
 */
int http_retry_wait(struct http_engine *e, const struct http_resp *resp,
		    int n, const struct deadline *dl);

/*
 * May a secret (a bearer token, a signed assertion) be sent to url?
 * True for https://, and for http:// to a loopback host (127.0.0.0/8,
 * ::1, localhost): test servers and emulators on this machine.  False
 * for every other scheme or host, and for what does not parse.
 */
bool http_url_private(const char *url);
bool http_status_retryable(long status);

/*
 * Aim r at bytes [off, off+len) of an object of `size` bytes, cut at its
 * end; the pin is cleared.  Returns false when no byte is left to read
 * (off >= size or len == 0): the read is done, and r must not be sent.
 */
bool http_range_set(struct http_range *r, uint64_t off, size_t len,
		    uint64_t size);

/*
 * Aim r at the last len bytes (len > 0) of an object whose size is not
 * known yet, or the whole of it when shorter: the answer itself tells
 * the size and the version, so one request both looks the object up and
 * reads its end (a Parquet footer, a small file whole).
 */
void http_range_set_tail(struct http_range *r, size_t len);

/* Spell r's Range header value, "bytes=<first>-<last>" or, for a tail,
 * "bytes=-<len>", into out. */
void http_range_header(const struct http_range *r, char *out, size_t outlen);

/*
 * Judge the outcome of a ranged read of a pinned version; err is what
 * the call came to before the range was looked at (0 for a 2xx).
 * http_do() applies it to every call that carries a range; it is pure.
 * Returns 0 when resp holds exactly the bytes asked for, else:
 *
 *  -ESTALE  the response names another version (r->pin_header), or the
 *           server found the range unsatisfiable (err -ERANGE, a 416):
 *           the pinned size says it exists, so the object has changed
 *           (for a tail, a 416 stays -ERANGE: the object is empty);
 *  -EIO     the body is not exactly the bytes asked for: a status other
 *           than 206 or 200, a missing, malformed or different
 *           Content-Range ("bytes <first>-<last>/<size>"), a 200 for
 *           less than the whole object, a body of another length, or a
 *           body longer than asked (err -EMSGSIZE: the range was
 *           ignored);
 *  err      any other failure, unchanged.
 */
int http_range_check(const struct http_range *r, const struct http_resp *resp,
		     int err);

/*
 * Where the body of a 2xx answer lies in the whole object: *off, and the
 * object's *size (from Content-Range for a 206, from the body for a
 * 200).  false when the answer does not say it consistently.  For a
 * tail, http_range_check() has established that it does.
 */
bool http_resp_range(const struct http_resp *resp, uint64_t *off,
		     uint64_t *size);

/*
 * What a resumable upload session holds, from its 308 answer: "Range:
 * bytes=0-N" gives *have = N + 1; no Range header, nothing yet (0).
 * -EBADMSG for a Range header that says anything else (another first
 * byte, junk, N + 1 past UINT64_MAX).  Pure.
 */
int http_session_persisted(const struct http_resp *resp, uint64_t *have);

#endif
