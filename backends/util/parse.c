/*
 * parse.c - digits-only numbers (parse.h).
 */
#include "backends/util/parse.h"

#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Fold the digits of s[0..len) into *v; false on overflow. */
static bool fold(const char *s, size_t len, uint64_t *v)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (acc > (UINT64_MAX - d) / 10)
			return false;
		acc = acc * 10 + d;
	}
	*v = acc;
	return true;
}

bool parse_u64_digits(const char *s, size_t len, uint64_t *out)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return fold(s, len, out);
}

bool parse_u64_str(const char *s, uint64_t *out)
{
	return parse_u64_digits(s, strlen(s), out);
}

bool parse_u64_prefix(const char **p, uint64_t *out)
{
	const char *s = *p;
	size_t n = 0;

	while (is_digit(s[n]))
		n++;
	if (n == 0 || !fold(s, n, out))
		return false;
	*p = s + n;
	return true;
}
