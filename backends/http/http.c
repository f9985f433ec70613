/*
 * http.c - the HTTP engine: pooled libcurl easy handles, timeouts bound
 * to deadlines, retries with capped exponential backoff and full jitter.
 *
 * Every transfer of the process runs on one shared libcurl multi handle,
 * driven by one thread (the transfer loop): the caller's thread hands its
 * easy handle over and sleeps until the transfer is done.  So all
 * requests, from readers and from read-ahead alike, share one connection
 * cache (a request finds a live keep-alive connection whichever thread
 * made it) and one event loop, however many threads wait on them.  The
 * loop starts with the first engine and stops with the last.
 * Nothing here logs headers: they carry signatures and tokens.
 *
 * A call's outcome is decided here too, once for every store: the final
 * status through http_status_errno(), and for a ranged read of a pinned
 * version the checks of http_range_check().
 */
#include "backends/http/http.h"
#include "backends/util/parse.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POOL_MAX 64
#define ERRBODY_MAX (64 * 1024)

struct http_engine {
	struct net_conf nc;
	pthread_mutex_t lock;            /* guards pool, npool, budget */
	CURL *pool[POOL_MAX];
	int npool;
	struct http_retry_budget budget;
	struct http_stats stats;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------- transfer loop */

#define LOOP_MAXCONNECTS 64           /* idle connections kept */

/* One transfer handed to the loop; lives on the waiting caller's stack. */
struct xfer {
	struct xfer *next;
	CURL *h;
	CURLcode rc;
	bool done;
	pthread_cond_t cv;
};

static struct {
	pthread_mutex_t lock;             /* guards all below but m's insides */
	CURLM *m;                         /* used by the loop thread only */
	pthread_t th;
	unsigned users;                   /* live engines */
	bool stop;
	struct xfer *queue;               /* waiting to be added to m */
} loop = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void xfer_finish(struct xfer *x, CURLcode rc)
{
	pthread_mutex_lock(&loop.lock);
	x->rc = rc;
	x->done = true;
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&loop.lock);
}

static void *loop_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&loop.lock);
		struct xfer *q = loop.queue;
		bool stop = loop.stop;
		loop.queue = NULL;
		pthread_mutex_unlock(&loop.lock);
		if (stop)
			break;           /* the last engine is gone: nothing runs */
		while (q) {
			struct xfer *next = q->next;
			curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
			if (curl_multi_add_handle(loop.m, q->h) != CURLM_OK)
				xfer_finish(q, CURLE_FAILED_INIT);
			q = next;
		}
		int running = 0, left;
		curl_multi_perform(loop.m, &running);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(loop.m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *h = msg->easy_handle;
			CURLcode rc = msg->data.result;
			struct xfer *x = NULL;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
			curl_multi_remove_handle(loop.m, h);
			xfer_finish(x, rc);
		}
		/* sleeps until a socket is ready, a timer of curl's is due,
		 * or a new transfer wakes it */
		curl_multi_poll(loop.m, NULL, 0, 1000, NULL);
	}
	return NULL;
}

static void loop_join(void)
{
	pthread_mutex_lock(&loop.lock);
	if (loop.users++ == 0) {
		loop.stop = false;
		loop.m = curl_multi_init();
		curl_multi_setopt(loop.m, CURLMOPT_MAXCONNECTS,
				  (long)LOOP_MAXCONNECTS);
		if (pthread_create(&loop.th, NULL, loop_main, NULL) != 0)
			abort();
	}
	pthread_mutex_unlock(&loop.lock);
}

static void loop_leave(void)
{
	pthread_mutex_lock(&loop.lock);
	bool last = --loop.users == 0;
	if (last)
		loop.stop = true;
	pthread_mutex_unlock(&loop.lock);
	if (!last)
		return;
	curl_multi_wakeup(loop.m);
	pthread_join(loop.th, NULL);
	curl_multi_cleanup(loop.m);
	loop.m = NULL;
}

/* Run h on the shared multi handle; returns when it is done. */
static CURLcode loop_perform(CURL *h)
{
	struct xfer x = { .h = h };
	pthread_cond_init(&x.cv, NULL);
	pthread_mutex_lock(&loop.lock);
	x.next = loop.queue;
	loop.queue = &x;
	pthread_mutex_unlock(&loop.lock);
	curl_multi_wakeup(loop.m);
	pthread_mutex_lock(&loop.lock);
	while (!x.done)
		pthread_cond_wait(&x.cv, &loop.lock);
	pthread_mutex_unlock(&loop.lock);
	pthread_cond_destroy(&x.cv);
	return x.rc;
}

/* ------------------------------------------------------- engines */

struct http_engine *http_engine_create(const struct net_conf *nc)
{
	pthread_once(&global_once, global_init);
	struct http_engine *e = xcalloc(1, sizeof(*e));
	e->nc = *nc;
	pthread_mutex_init(&e->lock, NULL);
	http_budget_init(&e->budget, mono_ns());
	loop_join();
	return e;
}

void http_engine_destroy(struct http_engine *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	pthread_mutex_destroy(&e->lock);
	free(e);
	loop_leave();
}

const struct http_stats *http_engine_stats(const struct http_engine *e)
{
	return &e->stats;
}

void http_engine_metrics(const struct http_engine *e, const char *store,
			 struct prom *p)
{
	const struct http_stats *s = &e->stats;
	prom_add(p, "hylake_store_requests_total", PROM_COUNTER,
		 "HTTP requests sent to the store (each attempt)", "store",
		 store, (double)atomic_load(&s->requests));
	prom_add(p, "hylake_store_retries_total", PROM_COUNTER,
		 "HTTP requests that were attempts after a failure", "store",
		 store, (double)atomic_load(&s->retries));
	prom_add(p, "hylake_store_request_errors_total", PROM_COUNTER,
		 "store calls that ended in an error after retries (not a 404, "
		 "nor a request hylake cancelled)", "store", store,
		 (double)atomic_load(&s->failures));
	prom_add(p, "hylake_store_retries_denied_total", PROM_COUNTER,
		 "retries not sent: the store's retry budget was spent, or its "
		 "Retry-After fell past the deadline", "store", store,
		 (double)atomic_load(&s->retries_denied));
	prom_add(p, "hylake_store_received_bytes_total", PROM_COUNTER,
		 "response body bytes received from the store", "store",
		 store, (double)atomic_load(&s->bytes_in));
}

static CURL *handle_get(struct http_engine *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->lock);
	if (e->npool)
		h = e->pool[--e->npool];
	pthread_mutex_unlock(&e->lock);
	if (!h)
		h = curl_easy_init();
	else
		curl_easy_reset(h);     /* connections live in the multi */
	return h;
}

static void handle_put(struct http_engine *e, CURL *h, bool healthy)
{
	pthread_mutex_lock(&e->lock);
	if (healthy && e->npool < POOL_MAX) {
		e->pool[e->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->lock);
	if (h)
		curl_easy_cleanup(h);
}

void http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof(*r));
	strbuf_init(&r->headers);
	strbuf_init(&r->errbody);
}

void http_resp_release(struct http_resp *r)
{
	strbuf_release(&r->headers);
	strbuf_release(&r->errbody);
}

int http_status_errno(long status, enum http_api api)
{
	if (status >= 200 && status < 300)
		return 0;
	if (api == HTTP_API_UPLOAD_SESSION) {
		switch (status) {
		case 308: return 0;          /* Resume Incomplete */
		case 404:
		case 410: return -EIO;       /* session expired or cancelled */
		}
	}
	switch (status) {
	case 400: return api == HTTP_API_TOKEN ? -EACCES   /* grant refused */
					       : -EINVAL;
	case 401:
	case 403: return -EACCES;
	case 404:
	case 410: return -ENOENT;
	case 405:
	case 501: return -ENOTSUP;
	case 408:
	case 504: return -ETIMEDOUT;
	case 409: return -EBUSY;
	case 412: return -ESTALE;    /* the pinned version is gone */
	case 416: return -ERANGE;    /* range starts past the end */
	case 429:
	case 503: return -EIO;       /* throttled, and still so after the
	                                retries: a hard error, not "try again" */
	default:  return -EIO;
	}
}

bool http_status_retryable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* The one map from CURLcode to errno. */
static int curl_code_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK: return 0;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK: return -ECANCELED;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING: return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return -EINVAL;
	default: return -EIO;
	}
}

static bool errno_retryable(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT ||
	       err == -ECONNRESET || err == -EIO || err == -EHOSTUNREACH;
}

bool http_transient(int err, const struct http_resp *resp)
{
	if (resp->status)
		return http_status_retryable(resp->status);
	return errno_retryable(err);
}

/* State of one attempt, seen by the curl callbacks. */
struct attempt {
	const struct http_req *req;
	struct http_resp *resp;
	struct http_engine *e;
	CURL *h;
	long status;                 /* known once the first body byte comes */
	bool overflow;
};

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * n;
	/* A new status line starts a new header block (e.g. after 100). */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		strbuf_reset(&a->resp->headers);
	strbuf_add(&a->resp->headers, data, len);
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	struct http_resp *r = a->resp;
	const struct http_req *req = a->req;
	size_t len = size * n;

	if (!a->status)
		curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &a->status);
	atomic_fetch_add(&a->e->stats.bytes_in, len);
	if (a->status < 200 || a->status >= 300) {
		size_t room = ERRBODY_MAX - r->errbody.len;
		strbuf_add(&r->errbody, data, len < room ? len : room);
		return len;
	}
	if (req->buf) {
		if (r->body_len + len > req->buf_len) {
			a->overflow = true;
			return 0;       /* aborts with CURLE_WRITE_ERROR */
		}
		memcpy((char *)req->buf + r->body_len, data, len);
	} else if (req->body) {
		if (req->body_max && r->body_len + len > req->body_max) {
			a->overflow = true;
			return 0;
		}
		strbuf_add(req->body, data, len);
	}
	r->body_len += len;
	return len;
}

static int on_progress(void *arg, curl_off_t dltot, curl_off_t dlnow,
		       curl_off_t ultot, curl_off_t ulnow)
{
	struct attempt *a = arg;
	(void)dltot; (void)dlnow; (void)ultot; (void)ulnow;
	const atomic_bool *c = a->req->cancel ? a->req->cancel
			       : a->req->dl ? a->req->dl->cancel : NULL;
	return c && atomic_load(c) ? 1 : 0;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Free a request's header list, overwriting each line first: it holds
 * a copy of Authorization (a bearer token or a signature). */
static void headers_free(struct curl_slist *headers)
{
	for (struct curl_slist *s = headers; s; s = s->next)
		OPENSSL_cleanse(s->data, strlen(s->data));
	curl_slist_free_all(headers);
}

/* One attempt.  Returns 0 with resp->status set, or -errno. */
static int attempt_once(struct http_engine *e, const struct http_req *req,
			struct http_resp *resp)
{
	const struct net_conf *nc = &e->nc;
	int64_t left = deadline_left_ms(req->dl);
	if (left <= 0)
		return -ETIMEDOUT;

	struct curl_slist *headers = NULL;
	for (const struct curl_slist *s = req->static_headers; s; s = s->next)
		headers = curl_slist_append(headers, s->data);
	if (req->prepare) {
		int rc = req->prepare(req->prepare_ctx, &headers);
		if (rc < 0) {
			headers_free(headers);
			return rc;
		}
	}
	/* Never let curl add "Expect: 100-continue" or decode bodies. */
	headers = curl_slist_append(headers, "Expect:");

	CURL *h = handle_get(e);
	if (!h) {
		headers_free(headers);
		return -ENOMEM;
	}
	struct attempt a = { .req = req, .resp = resp, .e = e, .h = h };
	char errbuf[CURL_ERROR_SIZE] = "";

	strbuf_reset(&resp->headers);
	strbuf_reset(&resp->errbody);
	resp->body_len = 0;
	resp->status = 0;
	if (req->body)
		strbuf_reset(req->body);

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (req->upload) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->upload);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->upload_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* http(s) only, redirects too (none are followed today): never
	 * file://, ftp:// or what a server's Location could name */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);   /* keep "./" in keys */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)min64(nc->connect_timeout_ms, left));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
			 (long)min64(nc->request_timeout_ms, left));
	if (nc->stall_timeout_ms > 0) {
		long secs = (long)((nc->stall_timeout_ms + 999) / 1000);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)nc->stall_bytes);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &a);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS,
			 req->cancel || (req->dl && req->dl->cancel) ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hylake/" HYLAKE_VERSION);

	atomic_fetch_add(&e->stats.requests, 1);
	CURLcode rc = loop_perform(h);
	int err = 0;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	} else if (a.overflow) {
		err = -EMSGSIZE;
	} else {
		err = curl_code_errno(rc);
		snprintf(resp->error, sizeof(resp->error), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	/* curl keeps a pointer to errbuf and headers: detach before return. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	handle_put(e, h, rc == CURLE_OK || a.overflow);
	headers_free(headers);
	return err;
}

/* ------------------------------------------------------- retry policy */

void http_budget_init(struct http_retry_budget *b, int64_t now_ns)
{
	b->tokens = HTTP_RETRY_BURST;
	b->at_ns = now_ns;
}

/* Add what time has earned since the last look, up to the burst. */
static void budget_refill(struct http_retry_budget *b, int64_t now_ns)
{
	if (now_ns > b->at_ns) {
		b->tokens += (double)(now_ns - b->at_ns) / NS_PER_SEC *
			     HTTP_RETRY_PER_SEC;
		b->at_ns = now_ns;
	}
	if (b->tokens > HTTP_RETRY_BURST)
		b->tokens = HTTP_RETRY_BURST;
}

void http_budget_request(struct http_retry_budget *b, int64_t now_ns)
{
	b->tokens += HTTP_RETRY_RATIO;
	budget_refill(b, now_ns);
}

bool http_budget_take(struct http_retry_budget *b, int64_t now_ns)
{
	budget_refill(b, now_ns);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

int64_t http_retry_after_ms(const char *value, int64_t now_s)
{
	const char *p = value;
	uint64_t secs;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		if (!parse_u64_prefix(&p, &secs))
			return (int64_t)HTTP_RETRY_AFTER_MAX_S * 1000;  /* huge */
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return -1;
	} else {
		int64_t at_ns;
		if (httpdate_parse_ns(p, &at_ns) < 0)
			return -1;
		int64_t at = at_ns / NS_PER_SEC;
		secs = at > now_s ? (uint64_t)(at - now_s) : 0;
	}
	if (secs > HTTP_RETRY_AFTER_MAX_S)
		secs = HTTP_RETRY_AFTER_MAX_S;
	return (int64_t)secs * 1000;
}

/* Full jitter: a random time in [0, min(max, base * 2^n)). */
static int64_t backoff_ms(const struct net_conf *nc, int attempt)
{
	int64_t cap = nc->backoff_base_ms;
	for (int i = 0; i < attempt && cap < nc->backoff_max_ms; i++)
		cap *= 2;
	cap = min64(cap, nc->backoff_max_ms);
	return cap > 0 ? (int64_t)arc4random_uniform((uint32_t)cap) : 0;
}

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { ms / 1000, (ms % 1000) * NS_PER_MS };
	nanosleep(&ts, NULL);
}

/*
 * How long to wait before retry n, or -1 when it is not to be sent: the
 * server asked for more time (Retry-After) than the deadline has left,
 * or the engine's retry budget is spent.  A Retry-After is honoured as a
 * floor under the jittered backoff.
 */
static int64_t retry_wait_ms(struct http_engine *e, const struct deadline *dl,
			     const struct http_resp *resp, int n)
{
	int64_t wait = backoff_ms(&e->nc, n);
	char v[128];

	if (resp->status &&
	    http_resp_header(resp, "retry-after", v, sizeof(v))) {
		int64_t ra = http_retry_after_ms(v, wall_ns() / NS_PER_SEC);
		if (ra > wait)
			wait = ra;
	}
	if (dl && wait >= deadline_left_ms(dl))
		return -1;
	pthread_mutex_lock(&e->lock);
	bool ok = http_budget_take(&e->budget, mono_ns());
	pthread_mutex_unlock(&e->lock);
	return ok ? wait : -1;
}

/* Wait before retry n: 0, or -EAGAIN (not to be sent) or -ETIMEDOUT. */
static int retry_pause(struct http_engine *e, const struct deadline *dl,
		       const struct http_resp *resp, int n)
{
	int64_t wait = retry_wait_ms(e, dl, resp, n);
	if (wait < 0) {
		atomic_fetch_add(&e->stats.retries_denied, 1);
		return -EAGAIN;
	}
	atomic_fetch_add(&e->stats.retries, 1);
	sleep_ms(min64(wait, deadline_left_ms(dl)));
	return deadline_expired(dl) ? -ETIMEDOUT : 0;
}

int http_retry_wait(struct http_engine *e, const struct http_resp *resp,
		    int n, const struct deadline *dl)
{
	if (n > (int)e->nc.retries)
		return -EAGAIN;
	return retry_pause(e, dl, resp, n);
}

/*
 * Send req until a response that is not worth retrying arrives.  Returns
 * 0 with resp->status set (any status), or the -errno of the last attempt
 * that had no response.  Each call adds to the engine's retry budget and
 * each retry spends from it, so in a storm of 429/503 the retries stay a
 * small share of the requests.
 */
static int exchange(struct http_engine *e, const struct http_req *req,
		    struct http_resp *resp)
{
	int max_attempts = req->idempotent ? 1 + (int)e->nc.retries : 1;
	int err = 0;

	pthread_mutex_lock(&e->lock);
	http_budget_request(&e->budget, mono_ns());
	pthread_mutex_unlock(&e->lock);
	for (int n = 0; n < max_attempts; n++) {
		if (n > 0) {
			int rc = retry_pause(e, req->dl, resp, n);
			if (rc == -ETIMEDOUT)
				err = rc;
			if (rc < 0)
				break;
			/* an upload session's URI is a credential */
			log_debug("retry %d of %s %s (%s)", n, req->method,
				  req->api == HTTP_API_UPLOAD_SESSION
				  ? "(upload session)" : req->url,
				  err ? strerror(-err) : "status");
		}
		if (req->dl && req->dl->cancel && atomic_load(req->dl->cancel)) {
			err = -ECANCELED;
			break;
		}
		resp->attempts = n + 1;
		resp->error[0] = '\0';
		err = attempt_once(e, req, resp);
		if (err == 0 && !http_status_retryable(resp->status))
			return 0;
		if (err == -ECANCELED || err == -EMSGSIZE || err == -ENOMEM ||
		    err == -EINVAL)
			break;
		if (err && !errno_retryable(err))
			break;
		/* a replica's share: another store is asked instead */
		if (err == -ETIMEDOUT && req->dl && req->dl->timeout_final)
			break;
	}
	return err;
}

int http_do(struct http_engine *e, const struct http_req *req,
	    struct http_resp *resp)
{
	if (req->range && (!req->buf || req->buf_len != req->range->len))
		return -EINVAL;
	int err = exchange(e, req, resp);
	if (err == 0)
		err = http_status_errno(resp->status, req->api);
	if (req->range)
		err = http_range_check(req->range, resp, err);
	/* a 404 is an answer (a replica lacks the name), and a request
	 * hylake itself cancelled (the other store of a hedged read won)
	 * failed nothing: neither is a store error */
	if (err && err != -ENOENT && err != -ECANCELED)
		atomic_fetch_add(&e->stats.failures, 1);
	return err;
}

bool http_resp_error_status(const struct http_resp *r)
{
	return r->status != 0 && (r->status < 200 || r->status >= 300);
}

/* ------------------------------------------------------- ranged reads */

/* 127.0.0.0/8, ::1 ("[::1]" as curl gives it) or localhost. */
static bool host_is_loopback(const char *host)
{
	unsigned char a[16];
	char v6[64];
	size_t len = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (len < 2 || host[0] != '[' || host[len - 1] != ']' ||
	    len - 2 >= sizeof(v6))
		return false;
	memcpy(v6, host + 1, len - 2);
	v6[len - 2] = '\0';
	return inet_pton(AF_INET6, v6, a) == 1 &&
	       IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a);
}

bool http_url_private(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (!u)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		ok = strcmp(scheme, "https") == 0 ||
		     (strcmp(scheme, "http") == 0 && host_is_loopback(host));
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

bool http_range_set(struct http_range *r, uint64_t off, size_t len,
		    uint64_t size)
{
	memset(r, 0, sizeof(*r));
	if (off >= size || len == 0)
		return false;
	if (len > size - off)
		len = (size_t)(size - off);
	r->off = off;
	r->len = len;
	r->size = size;
	return true;
}

void http_range_set_tail(struct http_range *r, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->len = len;
	r->tail = true;
}

void http_range_header(const struct http_range *r, char *out, size_t outlen)
{
	if (r->tail)
		snprintf(out, outlen, "bytes=-%zu", r->len);
	else
		snprintf(out, outlen, "bytes=%" PRIu64 "-%" PRIu64, r->off,
			 r->off + r->len - 1);
}

/* resp's Content-Range "bytes <first>-<last>/<total>", when well formed. */
static bool content_range(const struct http_resp *resp, uint64_t *first,
			  uint64_t *last, uint64_t *total)
{
	char v[128];
	const char *p = v;

	/* a value that fills v may have been cut: refuse it */
	if (!http_resp_header(resp, "content-range", v, sizeof(v)) ||
	    strlen(v) >= sizeof(v) - 1 || strncasecmp(p, "bytes ", 6) != 0)
		return false;
	p += 6;
	return parse_u64_prefix(&p, first) && *p++ == '-' &&
	       parse_u64_prefix(&p, last) && *p++ == '/' &&
	       parse_u64_prefix(&p, total) && *p == '\0' &&
	       *last >= *first && *last < *total;
}

bool http_resp_range(const struct http_resp *resp, uint64_t *off,
		     uint64_t *size)
{
	uint64_t first, last, total;

	if (resp->status == 200) {
		*off = 0;
		*size = resp->body_len;
		return true;
	}
	if (resp->status != 206 || !content_range(resp, &first, &last, &total) ||
	    last - first + 1 != resp->body_len)
		return false;
	*off = first;
	*size = total;
	return true;
}

/* A tail's answer: the object's last min(len, size) bytes. */
static int tail_check(const struct http_range *r, const struct http_resp *resp,
		      int err)
{
	uint64_t off, size;

	if (err == -EMSGSIZE)
		return -EIO;     /* more bytes than asked: range ignored */
	if (err)
		return err;      /* a 416 (-ERANGE): an empty object */
	if (!http_resp_range(resp, &off, &size) || off + resp->body_len != size)
		return -EIO;
	return resp->body_len == (size < r->len ? size : r->len) ? 0 : -EIO;
}

int http_range_check(const struct http_range *r, const struct http_resp *resp,
		     int err)
{
	char v[256];
	uint64_t first, last, total;

	if (r->tail)
		return tail_check(r, resp, err);
	if (err == -ERANGE)
		return -ESTALE;  /* 416, yet the pinned size says it exists */
	if (err == -EMSGSIZE)
		return -EIO;     /* more bytes than asked: range ignored */
	if (err)
		return err;
	if (r->pin_header && r->pin_value &&
	    http_resp_header(resp, r->pin_header, v, sizeof(v)) &&
	    strcmp(v, r->pin_value) != 0)
		return -ESTALE;
	if (resp->body_len != r->len)
		return -EIO;
	if (resp->status == 200)
		return r->off == 0 && r->len == r->size ? 0 : -EIO;
	if (resp->status != 206 || !content_range(resp, &first, &last, &total))
		return -EIO;
	return first == r->off && last - first + 1 == r->len &&
	       total == r->size ? 0 : -EIO;
}

int http_session_persisted(const struct http_resp *resp, uint64_t *have)
{
	char v[128];
	const char *p = v;
	uint64_t first, last;

	*have = 0;
	if (!http_resp_header(resp, "range", v, sizeof(v)))
		return 0;
	/* a value that fills v may have been cut: refuse it */
	if (strlen(v) >= sizeof(v) - 1 || strncmp(p, "bytes=", 6) != 0)
		return -EBADMSG;
	p += 6;
	if (!parse_u64_prefix(&p, &first) || first != 0 || *p++ != '-' ||
	    !parse_u64_prefix(&p, &last) || *p || last == UINT64_MAX)
		return -EBADMSG;
	*have = last + 1;
	return 0;
}

bool http_resp_header(const struct http_resp *r, const char *name,
		      char *out, size_t outlen)
{
	return http_resp_header_nth(r, name, 0, out, outlen);
}

bool http_resp_header_nth(const struct http_resp *r, const char *name,
			  unsigned nth, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = r->headers.buf;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		const char *end = eol ? eol : p + strlen(p);
		if ((size_t)(end - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0 && nth-- == 0) {
			const char *v = p + nlen + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = end;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t vlen = (size_t)(ve - v);
			if (outlen) {
				if (vlen >= outlen)
					vlen = outlen - 1;
				memcpy(out, v, vlen);
				out[vlen] = '\0';
			}
			return true;
		}
		p = eol ? eol + 2 : NULL;
	}
	return false;
}
