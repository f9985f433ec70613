/*
 * metrics.h - a mount's figures for `hylake status` and Prometheus.
 *
 * metrics_gather() renders every layer's figures (stores, router, caches,
 * read path) in the Prometheus text format; the same text is
 *   - the user.hylake.metrics attribute of the mount's root folder, which
 *     `hylake status` reads (any user who can see the mount may ask),
 *   - served at http://HOST:PORT/metrics when metrics_listen is set,
 *   - rewritten atomically into metrics_file every metrics_interval, for
 *     node_exporter's textfile collector.
 *
 * The sources are borrowed and must outlive the exporter.  Gathering is
 * thread safe (each layer guards its own counters).
 */
#ifndef HYLAKE_METRICS_H
#define HYLAKE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;
struct bcache;
struct feed;
struct staging;
struct readpath;
struct vmap;
struct strbuf;

struct metrics_src {
	struct backend *top;         /* the stack's top store */
	struct readpath *rp;
	struct bcache *bc;           /* may be NULL: no block cache */
	uint64_t cache_limit;        /* cache_size, bytes */
	uint64_t memory_limit;       /* read-ahead budget, bytes */
	const char *mountpoint;
	int64_t start_wall_ns;
	struct feed *feed;           /* may be NULL: no change feed */
	struct staging *staging;     /* may be NULL: no staging folder */
	struct vmap *vmap;           /* may be NULL: no version map */
};

/* Append the Prometheus text of every figure to out. */
void metrics_gather(const struct metrics_src *src, struct strbuf *out);

/* fs_conf.metrics callback: arg is a struct metrics_src. */
void metrics_fs_callback(void *arg, struct strbuf *out);

struct metrics_exporter;

/*
 * Start what the configuration asks for: an HTTP listener on listen
 * ("127.0.0.1:9464", "[::1]:9464"; NULL: none) and a textfile writer
 * (file; NULL: none) every interval_ms.  *out is NULL when neither is
 * asked for.  0, or -errno with a message in err (address in use, bad
 * address, folder of the file missing).
 */
int metrics_start(const struct metrics_src *src, const char *listen,
		  const char *file, int64_t interval_ms,
		  struct metrics_exporter **out, char *err, size_t errlen);

/*
 * The status a request head gets (req[0..len), as read from the socket):
 * 200 for "GET /metrics HTTP/1.x" or "GET / ..." (a query is ignored),
 * with *head set for HEAD; 405 for any other method; 404 for any other
 * target; 400 for a request line that is not METHOD SP TARGET SP
 * HTTP/1.x followed by a line end, or a head holding a NUL.
 */
int metrics_parse_request(const char *req, size_t len, bool *head);

/* Stop, write the file one last time, free.  NULL is fine. */
void metrics_stop(struct metrics_exporter *x);

#endif
