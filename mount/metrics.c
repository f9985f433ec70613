/*
 * metrics.c - gather a mount's figures and export them (metrics.h).
 *
 * The exporter is one thread: it waits in poll() on the listening socket
 * and a stop pipe, with a timeout that falls due when the textfile is to
 * be rewritten.  Scrapes are served one at a time with short socket
 * timeouts, so a client that connects and says nothing cannot hold it
 * for long; a scrape is a few KiB and costs no store request.
 */
#include "mount/metrics.h"
#include "backends/backend.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"
#include "cache/blockcache.h"
#include "cache/readpath.h"

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
#include <sys/time.h>
#include <unistd.h>

#define SCRAPE_TIMEOUT_MS 2000
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
	int stop_pipe[2];
	pthread_t th;
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

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, int status, const char *reason,
		    const char *type, const char *body, size_t len,
		    bool head)
{
	struct strbuf r = STRBUF_INIT;
	strbuf_addf(&r, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    status, reason, type, len);
	if (!head)
		strbuf_add(&r, body, len);
	send_all(fd, r.buf, r.len);
	strbuf_release(&r);
}

/* Serve one connection: GET|HEAD /metrics, or an error status. */
static void serve_one(struct metrics_exporter *x, int fd)
{
	struct timeval tv = { SCRAPE_TIMEOUT_MS / 1000,
			      (SCRAPE_TIMEOUT_MS % 1000) * 1000 };
	char req[REQUEST_MAX + 1];
	size_t len = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < REQUEST_MAX) {          /* up to the end of the head */
		ssize_t n = recv(fd, req + len, REQUEST_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	char method[16] = "", target[256] = "";
	if (sscanf(req, "%15s %255s", method, target) != 2) {
		respond(fd, 400, "Bad Request", "text/plain", "bad request\n",
			12, false);
		return;
	}
	bool head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		respond(fd, 405, "Method Not Allowed", "text/plain",
			"GET /metrics\n", 13, false);
		return;
	}
	char *q = strchr(target, '?');
	if (q)
		*q = '\0';
	if (strcmp(target, "/metrics") && strcmp(target, "/")) {
		respond(fd, 404, "Not Found", "text/plain",
			"try /metrics\n", 13, head);
		return;
	}
	struct strbuf body = STRBUF_INIT;
	metrics_gather(x->src, &body);
	respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		body.buf ? body.buf : "", body.len, head);
	strbuf_release(&body);
}

/* Write the textfile: a temporary file in the same folder, then rename,
 * so a collector never reads half of it. */
static void write_file(struct metrics_exporter *x)
{
	struct strbuf tmp = STRBUF_INIT, body = STRBUF_INIT;
	strbuf_addf(&tmp, "%s.%d.tmp", x->file, (int)getpid());
	metrics_gather(x->src, &body);
	int fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -errno : pwrite_full(fd, body.buf, body.len, 0);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp.buf, x->file) < 0)
		rc = -errno;
	if (rc < 0) {
		log_warn("metrics_file %s: %s", x->file, strerror(-rc));
		unlink(tmp.buf);
	}
	strbuf_release(&tmp);
	strbuf_release(&body);
}

static void *exporter_thread(void *arg)
{
	struct metrics_exporter *x = arg;
	int64_t next = mono_ns();

	for (;;) {
		if (x->file && mono_ns() >= next) {
			write_file(x);
			next = mono_ns() + x->interval_ms * NS_PER_MS;
		}
		struct pollfd pf[2] = { { x->stop_pipe[0], POLLIN, 0 },
					{ x->listen_fd, POLLIN, 0 } };
		int timeout = -1;
		if (x->file) {
			int64_t left = (next - mono_ns()) / NS_PER_MS;
			timeout = left < 0 ? 0 : (int)left;
		}
		int n = poll(pf, x->listen_fd >= 0 ? 2 : 1, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pf[0].revents)
			break;
		if (pf[1].revents & POLLIN) {
			int c = accept4(x->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				serve_one(x, c);
				close(c);
			}
		}
	}
	if (x->file)
		write_file(x);        /* the last figures, at unmount */
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
	pthread_create(&x->th, NULL, exporter_thread, x);
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
	pthread_join(x->th, NULL);
	close(x->stop_pipe[0]);
	close(x->stop_pipe[1]);
	if (x->listen_fd >= 0)
		close(x->listen_fd);
	free(x->file);
	free(x);
}
