/*
 * jwt.c - RS256 JWT signing with OpenSSL's EVP interface.
 */
#include "backends/gcs/jwt.h"
#include "backends/util/base64.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jwt_key {
	EVP_PKEY *pkey;
};

int jwt_key_load(const char *pem, struct jwt_key **out, char *err,
		 size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return -ENOMEM;
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pkey) {
		snprintf(err, errlen, "private_key is not a PEM private key");
		return -EINVAL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		snprintf(err, errlen, "private_key is not an RSA key (RS256 "
			 "needs one)");
		return -EINVAL;
	}
	struct jwt_key *k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	*out = k;
	return 0;
}

void jwt_key_destroy(struct jwt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int jwt_sign(const struct jwt_key *k, const char *header_json,
	     const char *claims_json, struct strbuf *out)
{
	struct strbuf input = STRBUF_INIT;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc = -EIO;

	base64url_encode(&input, header_json, strlen(header_json));
	strbuf_addch(&input, '.');
	base64url_encode(&input, claims_json, strlen(claims_json));

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		goto out_release_input;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *)input.buf,
			   input.len) != 1)
		goto out_free_ctx;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input.buf,
			   input.len) != 1)
		goto out_free_sig;
	strbuf_add(out, input.buf, input.len);
	strbuf_addch(out, '.');
	base64url_encode(out, sig, siglen);
	rc = 0;
out_free_sig:
	if (sig)
		OPENSSL_cleanse(sig, siglen);   /* with the claims, a credential */
	free(sig);
out_free_ctx:
	EVP_MD_CTX_free(ctx);
out_release_input:
	strbuf_release(&input);
	return rc;
}

int jwt_service_account_assertion(const struct jwt_key *k, const char *kid,
				  const char *iss, const char *scope,
				  const char *aud, int64_t iat,
				  int64_t lifetime_s, struct strbuf *out)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", iss,
				   "scope", scope, "aud", aud,
				   "iat", (json_int_t)iat,
				   "exp", (json_int_t)(iat + lifetime_s));
	char *h = NULL, *c = NULL;
	int rc = -ENOMEM;

	if (!hdr || !claims)
		goto out_decref;
	if (kid && *kid)
		json_object_set_new(hdr, "kid", json_string(kid));
	h = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	c = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (h && c)
		rc = jwt_sign(k, h, c, out);
	free(h);
	free(c);
out_decref:
	json_decref(hdr);
	json_decref(claims);
	return rc;
}
