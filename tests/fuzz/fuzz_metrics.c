/*
 * libFuzzer target: the metrics endpoint's request head
 * (metrics_parse_request), which anyone who can reach metrics_listen may
 * send.  The status is one of the four the endpoint answers with, and a
 * 200 is given only to a GET or HEAD of /metrics or /.
 */
#include "mount/metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes on the heap: a read past the end trips ASan */
	char *req = malloc(size ? size : 1);
	bool head = false;

	if (!req)
		return 0;
	memcpy(req, data, size);
	int status = metrics_parse_request(req, size, &head);
	switch (status) {
	case 200:
		if (!(size > 4 && !memcmp(req, "GET /", 5)) &&
		    !(size > 5 && !memcmp(req, "HEAD /", 6)))
			abort();
		if (head != (req[0] == 'H'))
			abort();
		break;
	case 400:
		if (head)
			abort();
		break;
	case 404:
	case 405:
		break;
	default:
		abort();
	}
	free(req);
	return 0;
}
