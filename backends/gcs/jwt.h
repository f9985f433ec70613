/*
 * jwt.h - RS256-signed JSON Web Tokens (RFC 7519), as Google's OAuth
 * token endpoint expects for service-account assertions.
 *
 *   JWT = b64url(header) "." b64url(claims) "." b64url(RSASSA-PKCS1-v1_5
 *         SHA-256 signature over the first two parts)
 *
 * A struct jwt_key holds a private key; it is immutable after loading and
 * may be used from several threads at once.  Nothing here logs.
 */
#ifndef HYLAKE_JWT_H
#define HYLAKE_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "backends/util/strbuf.h"

struct jwt_key;

/* Load an RSA private key from PEM text (PKCS#8 or PKCS#1).
 * 0 or -EINVAL with err filled (never quoting the key). */
int jwt_key_load(const char *pem, struct jwt_key **out, char *err,
		 size_t errlen);
void jwt_key_destroy(struct jwt_key *k);

/* Append the JWT of header and claims (JSON texts) to out.  0 or -errno. */
int jwt_sign(const struct jwt_key *k, const char *header_json,
	     const char *claims_json, struct strbuf *out);

/*
 * The assertion a service account sends to its token endpoint: header
 * {"alg":"RS256","typ":"JWT"[,"kid":kid]}, claims {iss, scope, aud, iat,
 * exp = iat + lifetime}.  kid may be NULL.
 */
int jwt_service_account_assertion(const struct jwt_key *k, const char *kid,
				  const char *iss, const char *scope,
				  const char *aud, int64_t iat,
				  int64_t lifetime_s, struct strbuf *out);

#endif
