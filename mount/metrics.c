/*
 * metrics.c - gather a mount's figures and export them (metrics.h).
 *
 * The exporter has two threads, each waiting in poll() with a stop pipe:
 * one rewrites the textfile on its own timer, one accepts connections on
 * the listening socket.  Each connection is served by a thread of its
 * own with non-blocking I/O and one deadline for the whole exchange
 * (SCRAPE_TIMEOUT_MS), so a client that sends a byte a second, or says
 * nothing, holds only its own thread and only until the deadline; at
 * most CONN_MAX are served at once and the ones over that get a 503.  A
 * scrape is a few KiB and costs no store request.
 */
#include "mount/metrics.h"
#include "backends/backend.h"
#include "backends/composite/feed.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"
#include "cache/blockcache.h"
#include "cache/readpath.h"
#include "cache/vmap.h"
#include "fs/staging.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define SCRAPE_TIMEOUT_MS 2000   /* a whole connection, read to write */
#define CONN_MAX 8               /* scrapes served at once; more get 503 */
#define REQUEST_MAX 8192

static void readpath_metrics(struct readpath *rp, uint64_t memory_limit,
			     struct prom *p)
{
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	prom_add(p, "hylake_reads_total", PROM_COUNTER,
		 "read requests served to applications", NULL, NULL,
		 (double)s.reads);
	prom_add(p, "hylake_read_bytes_total", PROM_COUNTER,
		 "bytes returned to applications", NULL, NULL,
		 (double)s.bytes);
	prom_add(p, "hylake_memory_hits_total", PROM_COUNTER,
		 "reads answered from read-ahead memory", NULL, NULL,
		 (double)s.mem_hits);
	prom_add(p, "hylake_cache_read_bytes_total", PROM_COUNTER,
		 "bytes read from the block cache instead of a store", NULL,
		 NULL, (double)s.cache_hit_bytes);
	prom_add(p, "hylake_fetches_total", PROM_COUNTER,
		 "ranged reads sent to the stores", NULL, NULL,
		 (double)s.fetches);
	prom_add(p, "hylake_fetched_bytes_total", PROM_COUNTER,
		 "bytes fetched from the stores", NULL, NULL,
		 (double)s.fetched_bytes);
	prom_add(p, "hylake_readahead_fetches_total", PROM_COUNTER,
		 "fetches made ahead of the reader", NULL, NULL,
		 (double)s.ahead_fetches);
	prom_add(p, "hylake_readahead_unused_total", PROM_COUNTER,
		 "read-ahead extents dropped unread", NULL, NULL,
		 (double)s.ahead_unused);
	prom_add(p, "hylake_readahead_memory_bytes", PROM_GAUGE,
		 "memory held by read-ahead buffers", NULL, NULL,
		 (double)s.mem_used);
	prom_add(p, "hylake_readahead_memory_peak_bytes", PROM_GAUGE,
		 "most memory read-ahead buffers have held", NULL, NULL,
		 (double)s.mem_peak);
	prom_add(p, "hylake_readahead_memory_limit_bytes", PROM_GAUGE,
		 "memory_limit: the read path's memory budget", NULL, NULL,
		 (double)memory_limit);
}

static void bcache_metrics(struct bcache *bc, uint64_t limit,
			   struct prom *p)
{
	struct bcache_stats s;
	if (!bc)
		memset(&s, 0, sizeof(s));
	else
		bcache_get_stats(bc, &s);
	prom_add(p, "hylake_cache_enabled", PROM_GAUGE,
		 "1 when the block cache on local disk is in use", NULL, NULL,
		 bc ? 1 : 0);
	prom_add(p, "hylake_cache_hits_total", PROM_COUNTER,
		 "blocks read from the block cache", NULL, NULL,
		 (double)s.hits);
	prom_add(p, "hylake_cache_misses_total", PROM_COUNTER,
		 "blocks the block cache listed but could not give back "
		 "(gone or corrupt)", NULL, NULL, (double)s.misses);
	prom_add(p, "hylake_cache_stored_blocks_total", PROM_COUNTER,
		 "blocks written into the block cache", NULL, NULL,
		 (double)s.puts);
	prom_add(p, "hylake_cache_first_touches_total", PROM_COUNTER,
		 "blocks read once and only remembered, not stored (a block "
		 "is stored when it is read again; cache_first_read)", NULL,
		 NULL, (double)s.first_touches);
	prom_add(p, "hylake_cache_put_failures_total", PROM_COUNTER,
		 "blocks the block cache could not keep (disk full, I/O "
		 "error); the read was served all the same", NULL, NULL,
		 (double)s.put_failures);
	prom_add(p, "hylake_cache_corrupt_blocks_total", PROM_COUNTER,
		 "blocks dropped because their checksum failed", NULL, NULL,
		 (double)s.corrupt);
	prom_add(p, "hylake_cache_evictions_total", PROM_COUNTER,
		 "blocks evicted to stay under the ceiling", NULL, NULL,
		 (double)s.evictions);
	prom_add(p, "hylake_cache_bytes", PROM_GAUGE,
		 "bytes held in the block cache", NULL, NULL,
		 (double)s.bytes);
	prom_add(p, "hylake_cache_limit_bytes", PROM_GAUGE,
		 "cache_size: the block cache's ceiling", NULL, NULL,
		 bc ? (double)limit : 0);
}

static void vmap_metrics(struct vmap *m, struct prom *p)
{
	struct vmap_stats s;
	vmap_get_stats(m, &s);
	prom_add(p, "hylake_vmap_names", PROM_GAUGE,
		 "names the version map holds facts of", NULL, NULL,
		 (double)s.objects);
	prom_add(p, "hylake_vmap_bytes", PROM_GAUGE,
		 "bytes of the version map's pages in use", NULL, NULL,
		 (double)s.used_bytes);
	prom_add(p, "hylake_vmap_limit_bytes", PROM_GAUGE,
		 "map_size: the version map's ceiling", NULL, NULL,
		 (double)s.map_size);
	prom_add(p, "hylake_vmap_lookups_total", PROM_COUNTER,
		 "facts of names asked of the version map", NULL, NULL,
		 (double)s.lookups);
	prom_add(p, "hylake_vmap_memory_hits_total", PROM_COUNTER,
		 "of those, answered from the records of names looked up "
		 "lately, held in memory", NULL, NULL, (double)s.front_hits);
	prom_add(p, "hylake_vmap_commits_total", PROM_COUNTER,
		 "batches of facts written", NULL, NULL, (double)s.commits);
	prom_add(p, "hylake_vmap_evicted_total", PROM_COUNTER,
		 "names evicted to stay under map_size", NULL, NULL,
		 (double)s.evicted);
	prom_add(p, "hylake_vmap_dropped_facts_total", PROM_COUNTER,
		 "facts not kept because the writer was behind (each costs a "
		 "round trip later)", NULL, NULL, (double)s.dropped);
	prom_add(p, "hylake_vmap_lost_facts_total", PROM_COUNTER,
		 "facts not kept because a batch failed to commit (see the "
		 "log)", NULL, NULL, (double)s.lost);
}

static void staging_metrics(struct staging *s, struct prom *p)
{
	struct staging_stats st;
	staging_get_stats(s, &st);
	prom_add(p, "hylake_staged_files", PROM_GAUGE,
		 "files staged for upload now (written out of order)", NULL,
		 NULL, (double)st.files);
	prom_add(p, "hylake_staged_bytes", PROM_GAUGE,
		 "bytes those files hold", NULL, NULL, (double)st.bytes);
	prom_add(p, "hylake_staging_limit_bytes", PROM_GAUGE,
		 "staging_size: what staged files may hold together", NULL,
		 NULL, (double)st.limit);
	prom_add(p, "hylake_staged_reported", PROM_GAUGE,
		 "staged files left by a stopped mount and not uploaded "
		 "(in STAGING_DIR/reported)", NULL, NULL, (double)st.reported);
	prom_add(p, "hylake_staged_recovered_total", PROM_COUNTER,
		 "uploads of staged files finished at this start", NULL,
		 NULL, (double)st.recovered);
	prom_add(p, "hylake_staged_pending", PROM_GAUGE,
		 "staged files whose upload failed at this start, kept for "
		 "the next", NULL, NULL, (double)st.pending);
}

void metrics_gather(const struct metrics_src *src, struct strbuf *out)
{
	struct prom p;

	prom_init(&p);
	prom_add(&p, "hylake_build_info", PROM_GAUGE,
		 "the running version (value 1)", "version", HYLAKE_VERSION,
		 1);
	prom_add(&p, "hylake_start_time_seconds", PROM_GAUGE,
		 "when the mount started, seconds since the epoch", NULL,
		 NULL, (double)(src->start_wall_ns / NS_PER_MS) / 1e3);
	backend_metrics(src->top, &p);
	readpath_metrics(src->rp, src->memory_limit, &p);
	bcache_metrics(src->bc, src->cache_limit, &p);
	if (src->feed)
		feed_metrics(src->feed, &p);
	if (src->staging)
		staging_metrics(src->staging, &p);
	if (src->vmap)
		vmap_metrics(src->vmap, &p);
	prom_render(&p, out);
	prom_release(&p);
}

void metrics_fs_callback(void *arg, struct strbuf *out)
{
	metrics_gather(arg, out);
}

/* ------------------------------------------------------------ export */

struct metrics_exporter {
	const struct metrics_src *src;
	int listen_fd;               /* -1: no endpoint */
	char *file;                  /* NULL: no textfile */
	int64_t interval_ms;
	int stop_pipe[2];            /* readable once metrics_stop is called */
	pthread_t listen_th, file_th;
	bool listen_started, file_started;
	pthread_mutex_t lock;
	pthread_cond_t idle;         /* signalled when conns drops */
	unsigned conns;              /* under lock: connection threads alive */
};

/* One scrape in its own thread; everything it does ends by deadline. */
struct conn {
	struct metrics_exporter *x;
	int fd;
	int64_t deadline;            /* mono_ns */
};

/* "host:port" or "[v6]:port" into a bound, listening socket. */
static int listen_on(const char *spec, int *out, char *err, size_t errlen)
{
	char *host = xstrdup(spec), *port = strrchr(host, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int fd = -1, rc;

	if (!port || port == host || !port[1]) {
		snprintf(err, errlen, "metrics_listen '%s': expected HOST:PORT, "
			 "e.g. 127.0.0.1:9464", spec);
		free(host);
		return -EINVAL;
	}
	*port++ = '\0';
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	rc = getaddrinfo(h, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "metrics_listen '%s': %s", spec,
			 gai_strerror(rc));
		free(host);
		return -EINVAL;
	}
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
		    listen(fd, 16) == 0) {
			rc = 0;
			break;
		}
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	free(host);
	if (rc < 0) {
		snprintf(err, errlen, "metrics_listen '%s': %s", spec,
			 strerror(-rc));
		return rc;
	}
	*out = fd;
	return 0;
}

/* Wait until fd is ready for ev, the connection's deadline passes
 * (-ETIMEDOUT) or the exporter stops (-ECANCELED). */
static int conn_wait(const struct conn *c, short ev)
{
	for (;;) {
		int64_t left = (c->deadline - mono_ns()) / NS_PER_MS;
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pf[2] = { { c->fd, ev, 0 },
					{ c->x->stop_pipe[0], POLLIN, 0 } };
		int n = poll(pf, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (pf[1].revents)
			return -ECANCELED;
		return 0;
	}
}

static void send_all(const struct conn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn_wait(c, POLLOUT) < 0)
				return;
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void respond(const struct conn *c, int status, const char *reason,
		    const char *type, const char *body, size_t len,
		    bool head)
{
	struct strbuf r = STRBUF_INIT;
	strbuf_addf(&r, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    status, reason, type, len);
	if (!head)
		strbuf_add(&r, body, len);
	send_all(c, r.buf, r.len);
	strbuf_release(&r);
}

/* Read up to the end of the request head, all by the deadline. */
static int read_head(const struct conn *c, char *req, size_t *lenp)
{
	size_t len = 0;

	while (len < REQUEST_MAX) {
		ssize_t n = recv(c->fd, req + len, REQUEST_MAX - len,
				 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = conn_wait(c, POLLIN);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	*lenp = len;
	return 0;
}

/* The token of req[*i..len) up to the next space: its length, 0 when
 * there is none.  *i ends on the space (or len). */
static size_t request_token(const char *req, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len && req[*i] != ' ' && req[*i] != '\r' &&
	       req[*i] != '\n')
		(*i)++;
	return *i - start;
}

int metrics_parse_request(const char *req, size_t len, bool *head)
{
	size_t i = 0, m, t, v;
	const char *method, *target, *version;

	*head = false;
	if (memchr(req, '\0', len))
		return 400;
	method = req;
	m = request_token(req, len, &i);
	if (m == 0 || i >= len || req[i++] != ' ')
		return 400;
	target = req + i;
	t = request_token(req, len, &i);
	if (t == 0 || i >= len || req[i++] != ' ')
		return 400;
	version = req + i;
	v = request_token(req, len, &i);
	if (v != 8 || memcmp(version, "HTTP/1.", 7) || version[7] < '0' ||
	    version[7] > '9' || i >= len || (req[i] != '\r' && req[i] != '\n'))
		return 400;
	if (m == 4 && !memcmp(method, "HEAD", 4))
		*head = true;
	else if (m != 3 || memcmp(method, "GET", 3))
		return 405;
	const char *q = memchr(target, '?', t);
	if (q)
		t = (size_t)(q - target);
	if ((t == 8 && !memcmp(target, "/metrics", 8)) ||
	    (t == 1 && target[0] == '/'))
		return 200;
	return 404;
}

/* Serve one connection: GET|HEAD /metrics, or an error status. */
static void serve_one(const struct conn *c)
{
	char req[REQUEST_MAX + 1];
	size_t len = 0;
	bool head = false;

	if (read_head(c, req, &len) < 0)
		return;
	switch (metrics_parse_request(req, len, &head)) {
	case 200:
		break;
	case 405:
		respond(c, 405, "Method Not Allowed", "text/plain",
			"GET /metrics\n", 13, false);
		return;
	case 404:
		respond(c, 404, "Not Found", "text/plain",
			"try /metrics\n", 13, head);
		return;
	default:
		respond(c, 400, "Bad Request", "text/plain", "bad request\n",
			12, false);
		return;
	}
	struct strbuf body = STRBUF_INIT;
	metrics_gather(c->x->src, &body);
	respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		body.buf ? body.buf : "", body.len, head);
	strbuf_release(&body);
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct metrics_exporter *x = c->x;

	serve_one(c);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&x->lock);    /* the last touch of x */
	x->conns--;
	pthread_cond_broadcast(&x->idle);
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

/* Hand a new connection to a thread of its own, or turn it away with a
 * 503 (without waiting on it) when CONN_MAX are being served. */
static void conn_start(struct metrics_exporter *x, int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
		"Content-Length: 0\r\nConnection: close\r\n\r\n";
	pthread_attr_t attr;
	pthread_t th;
	bool ok;

	pthread_mutex_lock(&x->lock);
	ok = x->conns < CONN_MAX;
	if (ok)
		x->conns++;
	pthread_mutex_unlock(&x->lock);
	if (!ok) {
		(void)!send(fd, busy, sizeof(busy) - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	c->x = x;
	c->fd = fd;
	c->deadline = mono_ns() + SCRAPE_TIMEOUT_MS * NS_PER_MS;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&th, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	if (rc) {
		log_warn("metrics_listen: no thread for a scrape: %s",
			 strerror(rc));
		close(fd);
		free(c);
		pthread_mutex_lock(&x->lock);
		x->conns--;
		pthread_cond_broadcast(&x->idle);
		pthread_mutex_unlock(&x->lock);
	}
}

/* Write the textfile: a new file in the same folder, made by mkstemp so
 * no one can have put a file or a link at its name first, then rename,
 * so a collector never reads half of it. */
static void write_file(struct metrics_exporter *x)
{
	struct strbuf tmp = STRBUF_INIT, body = STRBUF_INIT;
	strbuf_addf(&tmp, "%s.XXXXXX", x->file);
	metrics_gather(x->src, &body);
	int fd = mkostemp(tmp.buf, O_CLOEXEC);
	int rc = fd < 0 ? -errno : 0;
	if (rc == 0 && fchmod(fd, 0644) < 0)     /* for node_exporter */
		rc = -errno;
	if (rc == 0)
		rc = pwrite_full(fd, body.buf, body.len, 0);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp.buf, x->file) < 0)
		rc = -errno;
	if (rc < 0) {
		log_warn("metrics_file %s: %s", x->file, strerror(-rc));
		if (fd >= 0)
			unlink(tmp.buf);
	}
	strbuf_release(&tmp);
	strbuf_release(&body);
}

/* The textfile on its own timer: no scrape can delay it. */
static void *file_thread(void *arg)
{
	struct metrics_exporter *x = arg;
	int64_t next = mono_ns();

	for (;;) {
		int64_t now = mono_ns();
		if (now >= next) {
			write_file(x);
			next += x->interval_ms * NS_PER_MS;
			if (next <= mono_ns())     /* fell behind: no burst */
				next = mono_ns() + x->interval_ms * NS_PER_MS;
		}
		int64_t left = (next - mono_ns()) / NS_PER_MS;
		struct pollfd pf = { x->stop_pipe[0], POLLIN, 0 };
		int n = poll(&pf, 1, left < 0 ? 0 : (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0)
			break;
	}
	write_file(x);                /* the last figures, at unmount */
	return NULL;
}

/* Accept, and hand each connection to conn_start. */
static void *listen_thread(void *arg)
{
	struct metrics_exporter *x = arg;

	for (;;) {
		struct pollfd pf[2] = { { x->stop_pipe[0], POLLIN, 0 },
					{ x->listen_fd, POLLIN, 0 } };
		int n = poll(pf, 2, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pf[0].revents)
			break;
		if (pf[1].revents & POLLIN) {
			int c = accept4(x->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				conn_start(x, c);
		}
	}
	return NULL;
}

int metrics_start(const struct metrics_src *src, const char *listen,
		  const char *file, int64_t interval_ms,
		  struct metrics_exporter **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!listen && !file)
		return 0;
	struct metrics_exporter *x = xcalloc(1, sizeof(*x));
	x->src = src;
	x->listen_fd = -1;
	x->interval_ms = interval_ms;
	if (listen) {
		int rc = listen_on(listen, &x->listen_fd, err, errlen);
		if (rc < 0) {
			free(x);
			return rc;
		}
	}
	if (pipe2(x->stop_pipe, O_CLOEXEC) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "metrics: pipe: %s", strerror(-rc));
		if (x->listen_fd >= 0)
			close(x->listen_fd);
		free(x);
		return rc;
	}
	x->file = file ? xstrdup(file) : NULL;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->idle, NULL);
	if (x->listen_fd >= 0)
		x->listen_started = !pthread_create(&x->listen_th, NULL,
						    listen_thread, x);
	if (x->file)
		x->file_started = !pthread_create(&x->file_th, NULL,
						  file_thread, x);
	if ((x->listen_fd >= 0 && !x->listen_started) ||
	    (x->file && !x->file_started)) {
		snprintf(err, errlen, "metrics: cannot start a thread");
		metrics_stop(x);
		return -EAGAIN;
	}
	*out = x;
	return 0;
}

void metrics_stop(struct metrics_exporter *x)
{
	if (!x)
		return;
	char c = 'x';
	while (write(x->stop_pipe[1], &c, 1) < 0 && errno == EINTR)
		;
	if (x->listen_started)
		pthread_join(x->listen_th, NULL);
	if (x->file_started)
		pthread_join(x->file_th, NULL);
	pthread_mutex_lock(&x->lock);  /* scrapes see the pipe and end */
	while (x->conns)
		pthread_cond_wait(&x->idle, &x->lock);
	pthread_mutex_unlock(&x->lock);
	pthread_cond_destroy(&x->idle);
	pthread_mutex_destroy(&x->lock);
	close(x->stop_pipe[0]);
	close(x->stop_pipe[1]);
	if (x->listen_fd >= 0)
		close(x->listen_fd);
	free(x->file);
	free(x);
}
