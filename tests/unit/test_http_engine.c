/*
 * The HTTP engine against a small HTTP/1.1 server on 127.0.0.1 run by the
 * test itself: many threads sharing the engine's transfer thread at once
 * (the suite runs this under ThreadSanitizer), curl kept to http and
 * https, and which answers count as store errors.
 *
 * The server answers GET /echo/X with body "/echo/X", GET /missing with
 * 404, GET /broken with 500, and closes each connection after one
 * response.
 */
#include "backends/http/http.h"
#include "backends/store.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define THREADS 8
#define PER_THREAD 25

static int lfd;
static int port;
static atomic_bool stopping;
static atomic_int connections;

static void answer(int fd)
{
	char req[4096], head[256], path[1024] = "";
	size_t len = 0;

	while (len < sizeof(req) - 1) {
		ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (sscanf(req, "GET %1023s ", path) != 1)
		return;
	int status = 200;
	const char *body = path;
	if (!strcmp(path, "/missing")) {
		status = 404;
		body = "no such key\n";
	} else if (!strcmp(path, "/broken")) {
		status = 500;
		body = "broken\n";
	}
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length:"
			  " %zu\r\nConnection: close\r\n\r\n", status,
			  strlen(body));
	(void)!send(fd, head, (size_t)hl, MSG_NOSIGNAL);
	(void)!send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void *server(void *arg)
{
	(void)arg;
	while (!atomic_load(&stopping)) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		atomic_fetch_add(&connections, 1);
		answer(fd);
		close(fd);
	}
	return NULL;
}

static void start_server(pthread_t *th)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
		perror("test server");
		_exit(1);
	}
	port = ntohs(a.sin_port);
	pthread_create(th, NULL, server, NULL);
}

/* GET url into body; returns http_do's answer. */
static int get(struct http_engine *e, const char *url, struct strbuf *body,
	       long *status)
{
	struct deadline dl = deadline_in_ms(10000);
	struct http_req req = { .method = "GET", .url = url,
				.idempotent = true, .body = body,
				.body_max = 1 << 20, .dl = &dl };
	struct http_resp resp;

	http_resp_init(&resp);
	int rc = http_do(e, &req, &resp);
	if (status)
		*status = resp.status;
	http_resp_release(&resp);
	return rc;
}

static struct http_engine *engine;
static atomic_int wrong;

static void *client(void *arg)
{
	int id = (int)(long)arg;
	char url[128], want[64];

	for (int i = 0; i < PER_THREAD; i++) {
		struct strbuf body = STRBUF_INIT;
		snprintf(want, sizeof(want), "/echo/%d-%d", id, i);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, want);
		if (get(engine, url, &body, NULL) != 0 || !body.buf ||
		    strcmp(body.buf, want))
			atomic_fetch_add(&wrong, 1);
		strbuf_release(&body);
	}
	return NULL;
}

/* Many threads at once through the one transfer thread: every body is
 * the one asked for. */
static void concurrent_requests(void)
{
	pthread_t th[THREADS];

	int before = atomic_load(&connections);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, client, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(atomic_load(&wrong), 0);
	CHECK_INT(atomic_load(&connections) - before, THREADS * PER_THREAD);
	CHECK_INT(atomic_load(&http_engine_stats(engine)->failures), 0);
}

/* Only http and https: no file read, no connection for another scheme. */
static void other_schemes_refused(void)
{
	struct strbuf body = STRBUF_INIT;
	char url[128];

	CHECK_INT(get(engine, "file:///etc/hostname", &body, NULL), -EINVAL);
	CHECK_INT(body.len, 0);
	int before = atomic_load(&connections);
	snprintf(url, sizeof(url), "ftp://127.0.0.1:%d/x", port);
	CHECK_INT(get(engine, url, &body, NULL), -EINVAL);
	snprintf(url, sizeof(url), "gopher://127.0.0.1:%d/x", port);
	CHECK_INT(get(engine, url, &body, NULL), -EINVAL);
	CHECK_INT(atomic_load(&connections), before);
	CHECK_INT(body.len, 0);
	strbuf_release(&body);
}

/* A 404 is an answer; a 500 after the retries is a store error. */
static void what_counts_as_an_error(void)
{
	struct strbuf body = STRBUF_INIT;
	const struct http_stats *st = http_engine_stats(engine);
	char url[128];
	long status = 0;

	uint64_t failures = atomic_load(&st->failures);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/missing", port);
	CHECK_INT(get(engine, url, &body, &status), -ENOENT);
	CHECK_INT(status, 404);
	CHECK_INT(atomic_load(&st->failures), failures);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/broken", port);
	CHECK(get(engine, url, &body, &status) < 0);
	CHECK_INT(status, 500);
	CHECK_INT(atomic_load(&st->failures), failures + 1);
	strbuf_release(&body);
}

int main(void)
{
	struct net_conf nc = { .connect_timeout_ms = 2000,
			       .request_timeout_ms = 10000,
			       .stall_timeout_ms = 0, .retries = 1,
			       .backoff_base_ms = 1, .backoff_max_ms = 5 };
	pthread_t th;

	start_server(&th);
	engine = http_engine_create(&nc);
	concurrent_requests();
	other_schemes_refused();
	what_counts_as_an_error();
	http_engine_destroy(engine);
	atomic_store(&stopping, true);
	pthread_join(th, NULL);
	close(lfd);
	return check_summary();
}
