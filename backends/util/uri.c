/*
 * uri.c - percent-encoding.
 */
#include "backends/util/uri.h"

#include <errno.h>
#include <string.h>

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

void uri_encode(struct strbuf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	strbuf_grow(out, len * 3);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			out->buf[out->len++] = (char)c;
		} else {
			out->buf[out->len++] = '%';
			out->buf[out->len++] = hex[c >> 4];
			out->buf[out->len++] = hex[c & 15];
		}
	}
	out->buf[out->len] = '\0';
}

void uri_encode_str(struct strbuf *out, const char *s, bool keep_slash)
{
	uri_encode(out, s, strlen(s), keep_slash);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int uri_decode(struct strbuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			strbuf_addch(out, s[i]);
			continue;
		}
		if (i + 2 >= len)
			return -EINVAL;
		int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		strbuf_addch(out, (char)(hi << 4 | lo));
		i += 2;
	}
	return 0;
}
