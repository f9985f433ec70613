/*
 * uri.h - percent-encoding for object names in URLs and signatures.
 *
 * Unreserved characters (RFC 3986: A-Z a-z 0-9 - . _ ~) pass through;
 * every other byte becomes %XX with upper-case hex, as SigV4 requires.
 */
#ifndef HYLAKE_URI_H
#define HYLAKE_URI_H

#include <stdbool.h>
#include "backends/util/strbuf.h"

/* Append s[0..len) encoded; '/' is kept when keep_slash. */
void uri_encode(struct strbuf *out, const char *s, size_t len, bool keep_slash);
void uri_encode_str(struct strbuf *out, const char *s, bool keep_slash);
/* Decode %XX escapes (and nothing else) into out.  -EINVAL on a bad escape. */
int uri_decode(struct strbuf *out, const char *s, size_t len);

#endif
