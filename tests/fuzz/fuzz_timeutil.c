/*
 * libFuzzer target: the timestamps servers send (RFC 3339 in GCS JSON
 * and S3 listings, HTTP dates in Last-Modified) and durations.  The
 * input is copied to a buffer of exactly its length plus the NUL, so a
 * parser reading past the end trips AddressSanitizer.
 */
#include "backends/util/timeutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t v;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	iso8601_parse_ns(s, &v);
	httpdate_parse_ns(s, &v);
	duration_parse_ms(s, &v);
	free(s);
	return 0;
}
