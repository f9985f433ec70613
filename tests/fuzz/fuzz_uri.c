/*
 * libFuzzer target: percent-decoding (uri_decode), which reads object
 * names back out of S3 listings (encoding-type=url) and continuation
 * markers.  The input is decoded as it is; and whatever decodes must
 * survive encode-then-decode unchanged, as must the raw input itself
 * (names go out through uri_encode and come back through uri_decode).
 */
#include "backends/util/uri.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* encode s[0..len), decode it again: it must come back byte for byte */
static void round_trip(const char *s, size_t len, bool keep_slash)
{
	struct strbuf enc = STRBUF_INIT, dec = STRBUF_INIT;

	uri_encode(&enc, s, len, keep_slash);
	if (uri_decode(&dec, enc.buf, enc.len) != 0 || dec.len != len ||
	    memcmp(dec.buf, s, len) != 0)
		abort();
	strbuf_release(&enc);
	strbuf_release(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes on the heap: a read past the end trips ASan */
	char *s = malloc(size ? size : 1);
	struct strbuf dec = STRBUF_INIT;

	if (!s)
		return 0;
	memcpy(s, data, size);
	if (uri_decode(&dec, s, size) == 0) {
		if (dec.len > size)      /* decoding never lengthens */
			abort();
		round_trip(dec.buf, dec.len, false);
		round_trip(dec.buf, dec.len, true);
	}
	round_trip(s, size, size & 1);
	strbuf_release(&dec);
	free(s);
	return 0;
}
