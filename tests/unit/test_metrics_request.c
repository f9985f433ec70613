/* The metrics endpoint's request line: which status each head gets. */
#include "mount/metrics.h"
#include "tests/unit/check.h"

#include <stdbool.h>
#include <string.h>

static int status_of(const char *req, bool *head)
{
	return metrics_parse_request(req, strlen(req), head);
}

int main(void)
{
	bool head = true;

	CHECK_INT(status_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &head),
		  200);
	CHECK(!head);
	CHECK_INT(status_of("HEAD /metrics HTTP/1.0\r\n\r\n", &head), 200);
	CHECK(head);
	CHECK_INT(status_of("GET / HTTP/1.1\n\n", &head), 200);
	CHECK_INT(status_of("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", &head),
		  200);
	CHECK_INT(status_of("GET /metricsx HTTP/1.1\r\n\r\n", &head), 404);
	CHECK_INT(status_of("GET /metric HTTP/1.1\r\n\r\n", &head), 404);
	CHECK_INT(status_of("GET /?x HTTP/1.1\r\n\r\n", &head), 200);
	CHECK_INT(status_of("HEAD /x HTTP/1.1\r\n\r\n", &head), 404);
	CHECK(head);                   /* a HEAD's 404 carries no body */
	CHECK_INT(status_of("POST /metrics HTTP/1.1\r\n\r\n", &head), 405);
	CHECK(!head);
	CHECK_INT(status_of("get /metrics HTTP/1.1\r\n\r\n", &head), 405);

	/* not a request line */
	const char *bad[] = { "", "\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n",
			      "GET /metrics HTTP/1.1", "GET  /metrics HTTP/1.1\r\n",
			      " GET /metrics HTTP/1.1\r\n", "GET /metrics HTTP/2.0\r\n",
			      "GET /metrics HTTP/1.10\r\n", "GET /metrics HTTP/1.x\r\n",
			      "GET\t/metrics HTTP/1.1\r\n",
			      "GET /metrics HTTP/1.1 extra\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(status_of(bad[i], &head), 400);
	/* a NUL anywhere in the head */
	static const char nul[] = "GET /metrics HTTP/1.1\r\nHost: \0x\r\n\r\n";
	CHECK_INT(metrics_parse_request(nul, sizeof(nul) - 1, &head), 400);
	/* the length is what counts, not a terminator */
	CHECK_INT(metrics_parse_request("GET /metrics HTTP/1.1\r\n", 20, &head),
		  400);
	return check_summary();
}
