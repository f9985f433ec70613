/*
 * base64.c - base64 and base64url coding.
 */
#include "backends/util/base64.h"

#include <errno.h>
#include <string.h>

static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode(struct strbuf *out, const unsigned char *d, size_t len,
		   const char *alpha, bool pad)
{
	strbuf_grow(out, (len + 2) / 3 * 4);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;
		if (n > 1)
			v |= (uint32_t)d[i + 1] << 8;
		if (n > 2)
			v |= d[i + 2];
		strbuf_addch(out, alpha[(v >> 18) & 63]);
		strbuf_addch(out, alpha[(v >> 12) & 63]);
		if (n > 1)
			strbuf_addch(out, alpha[(v >> 6) & 63]);
		else if (pad)
			strbuf_addch(out, '=');
		if (n > 2)
			strbuf_addch(out, alpha[v & 63]);
		else if (pad)
			strbuf_addch(out, '=');
	}
}

void base64_encode(struct strbuf *out, const void *data, size_t len)
{
	encode(out, data, len, std_alpha, true);
}

void base64url_encode(struct strbuf *out, const void *data, size_t len)
{
	encode(out, data, len, url_alpha, false);
}

static int decode(struct strbuf *out, const char *s, size_t len,
		  const char *alpha)
{
	uint32_t v = 0;
	int bits = 0;

	while (len && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		const char *p = memchr(alpha, s[i], 64);
		if (!p || !s[i])
			return -EINVAL;
		v = (v << 6) | (uint32_t)(p - alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			strbuf_addch(out, (char)((v >> bits) & 0xff));
		}
	}
	/* leftover bits must be zero padding */
	if (bits && (v & ((1u << bits) - 1)))
		return -EINVAL;
	return 0;
}

int base64_decode(struct strbuf *out, const char *s, size_t len)
{
	return decode(out, s, len, std_alpha);
}

int base64url_decode(struct strbuf *out, const char *s, size_t len)
{
	return decode(out, s, len, url_alpha);
}

int base64_md5(const char *s, unsigned char md5[16])
{
	struct strbuf sb = STRBUF_INIT;
	int rc = base64_decode(&sb, s, strlen(s));
	if (rc == 0 && sb.len != 16)
		rc = -EINVAL;
	if (rc == 0)
		memcpy(md5, sb.buf, 16);
	strbuf_release(&sb);
	return rc;
}

int base64_crc32c(const char *s, uint32_t *crc)
{
	struct strbuf sb = STRBUF_INIT;
	int rc = base64_decode(&sb, s, strlen(s));
	if (rc == 0 && sb.len != 4)
		rc = -EINVAL;
	if (rc == 0) {
		const unsigned char *b = (const unsigned char *)sb.buf;
		*crc = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		       (uint32_t)b[2] << 8 | b[3];
	}
	strbuf_release(&sb);
	return rc;
}

void base64_crc32c_encode(struct strbuf *out, uint32_t crc)
{
	unsigned char b[4] = { (unsigned char)(crc >> 24),
			       (unsigned char)(crc >> 16),
			       (unsigned char)(crc >> 8), (unsigned char)crc };
	base64_encode(out, b, sizeof(b));
}
