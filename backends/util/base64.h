/*
 * base64.h - base64 (RFC 4648 section 4) and base64url (section 5).
 *
 * Encoders append to a strbuf; base64url output has no padding (as JWTs
 * want).  Decoders accept padded or unpadded input and reject anything
 * else with -EINVAL.  Pure functions; thread safe.
 */
#ifndef HYLAKE_BASE64_H
#define HYLAKE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/util/strbuf.h"

void base64_encode(struct strbuf *out, const void *data, size_t len);
void base64url_encode(struct strbuf *out, const void *data, size_t len);

/* Decode into out (raw bytes).  0 or -EINVAL. */
int base64_decode(struct strbuf *out, const char *s, size_t len);
int base64url_decode(struct strbuf *out, const char *s, size_t len);

/* GCS hashes: md5Hash is base64 of 16 bytes; crc32c is base64 of the
 * 4-byte big-endian CRC32C.  0 or -EINVAL (wrong length, bad text). */
int base64_md5(const char *s, unsigned char md5[16]);
int base64_crc32c(const char *s, uint32_t *crc);
/* The inverse: a crc32c as GCS writes it (base64 of 4 big-endian bytes). */
void base64_crc32c_encode(struct strbuf *out, uint32_t crc);

#endif
