/*
 * sigv4.h - AWS Signature Version 4 (header form) for S3-compatible stores.
 *
 * The caller gives the request in raw form (unencoded path and query
 * parameters); the signer encodes and sorts them.  Use
 * sigv4_canonical_query() and uri_encode(path, keep_slash) to build the
 * URL too, so the bytes sent are exactly the bytes signed (servers reject
 * anything else with SignatureDoesNotMatch).
 *
 * Pure functions of their input; thread safe.  The secret key is used,
 * never copied into any output.
 */
#ifndef HYLAKE_SIGV4_H
#define HYLAKE_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "backends/util/strbuf.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_pair {
	const char *name;
	const char *value;
};

struct sigv4_input {
	const char *method;
	const char *path;                    /* unencoded, starts with '/' */
	const struct sigv4_pair *params;     /* unencoded query parameters */
	size_t nparams;
	const struct sigv4_pair *headers;    /* every header to sign, incl.
	                                        host, x-amz-date and
	                                        x-amz-content-sha256 */
	size_t nheaders;
	const char *payload_hash;            /* hex SHA-256 or UNSIGNED-PAYLOAD */
	const char *amz_date;                /* "20130524T000000Z" */
	const char *region;
	const char *service;                 /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* "a=1&b=x%2Fy": encoded, sorted by name then value. */
void sigv4_canonical_query(struct strbuf *out, const struct sigv4_pair *p,
			   size_t n);
/* The canonical request (exposed for tests). */
void sigv4_canonical_request(struct strbuf *out, const struct sigv4_input *in);
/* The string to sign (exposed for tests). */
void sigv4_string_to_sign(struct strbuf *out, const struct sigv4_input *in);
/* The value of the Authorization header. */
void sigv4_authorization(struct strbuf *out, const struct sigv4_input *in);
/* Format a wall-clock time as "YYYYMMDDTHHMMSSZ" (out >= 17 bytes). */
void sigv4_amz_date(int64_t wall_ns, char *out, size_t outlen);
/* Hex SHA-256 of data (out >= 65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char *out);

#endif
