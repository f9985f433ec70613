/*
 * libFuzzer target: base64 and base64url decoding - GCS md5Hash and
 * crc32c fields, service-account keys, JWT pieces.  What decodes must
 * be canonical: encoding it again gives the input back (up to '='
 * padding), and raw bytes survive encode-then-decode.
 */
#include "backends/util/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t unpadded(const char *s, size_t len)
{
	while (len && s[len - 1] == '=')
		len--;
	return len;
}

static void check(int (*dec)(struct strbuf *, const char *, size_t),
		  void (*enc)(struct strbuf *, const void *, size_t),
		  const char *s, size_t size)
{
	struct strbuf d = STRBUF_INIT, e = STRBUF_INIT, again = STRBUF_INIT;

	if (dec(&d, s, size) == 0) {
		enc(&e, d.buf, d.len);
		size_t n = unpadded(s, size);
		if (unpadded(e.buf, e.len) != n || memcmp(e.buf, s, n) != 0)
			abort();         /* two spellings of the same bytes */
	}
	strbuf_reset(&e);
	enc(&e, s, size);              /* the input as raw bytes */
	if (dec(&again, e.buf, e.len) != 0 || again.len != size ||
	    memcmp(again.buf, s, size) != 0)
		abort();
	strbuf_release(&d);
	strbuf_release(&e);
	strbuf_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	unsigned char md5[16];
	uint32_t crc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check(base64_decode, base64_encode, s, size);
	check(base64url_decode, base64url_encode, s, size);
	(void)base64_md5(s, md5);
	if (base64_crc32c(s, &crc) == 0) {
		struct strbuf e = STRBUF_INIT;
		base64_crc32c_encode(&e, crc);
		if (unpadded(e.buf, e.len) != unpadded(s, strlen(s)))
			abort();
		strbuf_release(&e);
	}
	free(s);
	return 0;
}
