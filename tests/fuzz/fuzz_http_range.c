/*
 * libFuzzer target: the one check of a ranged read (http_range_check),
 * response-header lookup, an upload session's Range
 * (http_session_persisted) and the version a GCS media answer names
 * (gcs_media_info), on a synthetic response.  Input:
 *
 *   off(8) len(4) size(8) status(2) body_len(4) | header text ...
 *
 * (little-endian; short inputs are zero-filled).  The header text is
 * what curl would have stored: "Name: value\r\n" lines, or anything.
 */
#include "backends/gcs/gcs_media.h"
#include "backends/http/http.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take(const uint8_t **p, size_t *left, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = *left ? **p : 0;
		if (*left) {
			(*p)++;
			(*left)--;
		}
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 206, 304, 412, 416, 500 };
	const uint8_t *p = data;
	size_t left = size;
	struct http_range rg;
	struct http_resp resp;
	char v[64];

	uint64_t off = take(&p, &left, 8) % 4096;
	size_t len = (size_t)(take(&p, &left, 4) % 4096);
	uint64_t osize = take(&p, &left, 8);
	long status = statuses[take(&p, &left, 2) % 6];
	size_t body_len = (size_t)(take(&p, &left, 4) % 8192);

	http_resp_init(&resp);
	strbuf_add(&resp.headers, (const char *)p, left);
	resp.status = status;
	resp.body_len = body_len;
	http_resp_header(&resp, "content-range", v, sizeof(v));
	http_resp_header(&resp, "etag", v, 1);
	/* an upload session's Range: a count only when it parsed, and a
	 * header that is there counts at least its first byte */
	uint64_t have = 1;
	int prc = http_session_persisted(&resp, &have);
	if ((prc < 0 && have != 0) ||
	    (prc == 0 && have == 0 && http_resp_header(&resp, "range", v, 1)))
		__builtin_trap();
	if (http_range_set(&rg, off, len, osize)) {
		rg.pin_header = "x-goog-generation";
		rg.pin_value = "1700000000000001";
		int rc = http_range_check(&rg, &resp, 0);
		/* a pass means exactly the bytes asked for */
		if (rc == 0 && (resp.body_len != rg.len ||
				(status != 200 && status != 206)))
			__builtin_trap();
		if (rc == 0 && status == 200 &&
		    (rg.off != 0 || rg.len != rg.size))
			__builtin_trap();
		http_range_check(&rg, &resp, -ERANGE);
		http_range_check(&rg, &resp, -EMSGSIZE);
	}
	/* a version it names is a whole one */
	struct obj_info info;
	if (gcs_media_info(&resp, &info) == 0 &&
	    (!info.generation || info.mtime_ns < 0 ||
	     strnlen(info.etag, sizeof(info.etag)) >= sizeof(info.etag)))
		__builtin_trap();
	http_resp_release(&resp);
	return 0;
}
