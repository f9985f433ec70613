/*
 * http.h - the HTTP engine every network store sends its requests through.
 *
 * Every transfer of the process runs on one shared libcurl multi handle
 * (one connection cache, one event loop; reused easy handles are kept per
 * engine), with the configured connect, total and stall timeouts capped
 * by the caller's deadline, and retries with capped exponential backoff
 * and full jitter for idempotent requests only (transport failures, 408,
 * 429 and 5xx).
 *
 * HTTP statuses become errno values in exactly one place,
 * http_status_errno(); CURLcodes in exactly one place inside http.c.
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
	atomic_uint_fast64_t failures;   /* calls that ended in an error */
	atomic_uint_fast64_t bytes_in;   /* body bytes received */
};

struct http_req {
	const char *method;          /* "GET", "HEAD", ... */
	const char *url;             /* absolute, already encoded */
	bool idempotent;             /* may be retried */
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
	long status;                 /* final HTTP status; 0 if none */
	size_t body_len;             /* bytes stored for a 2xx response */
	struct strbuf headers;       /* "name: value\r\n" of the final response */
	struct strbuf errbody;       /* body of a non-2xx response */
	int attempts;
	char error[256];             /* transport error text, if any */
};

struct http_engine *http_engine_create(const struct net_conf *nc);
void http_engine_destroy(struct http_engine *e);
const struct http_stats *http_engine_stats(const struct http_engine *e);
/* Add e's request counters to p, labelled store="<store>". */
void http_engine_metrics(const struct http_engine *e, const char *store,
			 struct prom *p);

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);

/*
 * Perform req.  Returns 0 when an HTTP response arrived (check
 * resp->status; after retries it may be an error status), or a negative
 * errno when no response could be had: -ETIMEDOUT (deadline or timeouts),
 * -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET, -ECANCELED, -EMSGSIZE, -EIO.
 */
int http_do(struct http_engine *e, const struct http_req *req,
	    struct http_resp *resp);

/* Copy the value of header `name` (case-insensitive) into out.
 * Returns true when present. */
bool http_resp_header(const struct http_resp *r, const char *name,
		      char *out, size_t outlen);

/* The one map from HTTP status to errno (0 for 2xx). */
int http_status_errno(long status);
bool http_status_retryable(long status);

#endif
