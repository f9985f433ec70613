/*
 * RS256 JWTs: built, signed, and verified with OpenSSL against the public
 * half of a key made for the test.
 */
#include "backends/gcs/jwt.h"
#include "backends/gcs/gcs_auth.h"
#include "backends/util/base64.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = xstrndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

static json_t *decode_part(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	json_error_t e;
	CHECK_INT(base64url_decode(&sb, s, len), 0);
	json_t *j = json_loadb(sb.buf, sb.len, 0, &e);
	strbuf_release(&sb);
	return j;
}

static bool verify(EVP_PKEY *pub, const char *jwt)
{
	const char *dot2 = strrchr(jwt, '.');
	struct strbuf sig = STRBUF_INIT;
	if (base64url_decode(&sig, dot2 + 1, strlen(dot2 + 1)) < 0)
		return false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
		  EVP_DigestVerify(ctx, (unsigned char *)sig.buf, sig.len,
				   (const unsigned char *)jwt,
				   (size_t)(dot2 - jwt)) == 1;
	EVP_MD_CTX_free(ctx);
	strbuf_release(&sig);
	return ok;
}

/* Write a service-account key file with token_uri; returns its path. */
static const char *key_file(const char *pem, const char *token_uri)
{
	static char path[512];
	const char *base = getenv("HYLAKE_TEST_TMP");
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "type", "service_account",
				"client_email", "sa@p.iam.gserviceaccount.com",
				"private_key", pem, "token_uri", token_uri);
	snprintf(path, sizeof(path), "%s/sa-%d.json", base ? base : "/tmp",
		 (int)getpid());
	unlink(path);
	json_dump_file(doc, path, 0);
	chmod(path, 0600);
	json_decref(doc);
	return path;
}

/* The signed assertion goes to token_uri: https, or http to loopback
 * (the test server); anything else is refused when the key is read. */
static void token_uri(const char *pem)
{
	const char *refused[] = { "http://oauth.example.com/token",
				  "ftp://127.0.0.1/token", "file:///etc/passwd",
				  "gopher://x", "//oauth2.googleapis.com/token" };
	const char *allowed[] = { "https://oauth2.googleapis.com/token",
				  "http://127.0.0.1:4443/token",
				  "http://localhost/token" };
	struct gcs_auth *a;
	char err[512];

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		a = NULL;
		CHECK_INT(gcs_auth_create(key_file(pem, refused[i]), NULL, NULL,
					  &a, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "token_uri") != NULL);
		gcs_auth_destroy(a);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		a = NULL;
		CHECK_INT(gcs_auth_create(key_file(pem, allowed[i]), NULL, NULL,
					  &a, err, sizeof(err)), 0);
		gcs_auth_destroy(a);
	}
	unlink(key_file(pem, "https://x"));
}

int main(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	CHECK(pk != NULL);
	char *pem = pem_of(pk);
	struct jwt_key *key = NULL;
	char err[128];
	CHECK_INT(jwt_key_load(pem, &key, err, sizeof(err)), 0);

	struct strbuf jwt = STRBUF_INIT;
	CHECK_INT(jwt_service_account_assertion(key, "kid-1",
		"sa@p.iam.gserviceaccount.com",
		"https://www.googleapis.com/auth/devstorage.read_only",
		"https://oauth2.googleapis.com/token", 1700000000, 3600, &jwt), 0);

	/* three base64url parts, no padding */
	const char *d1 = strchr(jwt.buf, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
	CHECK(!strchr(jwt.buf, '=') && !strchr(jwt.buf, '+') &&
	      !strchr(jwt.buf, '/'));
	if (d1 && d2) {
		json_t *h = decode_part(jwt.buf, (size_t)(d1 - jwt.buf));
		json_t *c = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
		CHECK_STR(json_string_value(json_object_get(h, "alg")), "RS256");
		CHECK_STR(json_string_value(json_object_get(h, "typ")), "JWT");
		CHECK_STR(json_string_value(json_object_get(h, "kid")), "kid-1");
		CHECK_STR(json_string_value(json_object_get(c, "iss")),
			  "sa@p.iam.gserviceaccount.com");
		CHECK_STR(json_string_value(json_object_get(c, "aud")),
			  "https://oauth2.googleapis.com/token");
		CHECK_STR(json_string_value(json_object_get(c, "scope")),
			  "https://www.googleapis.com/auth/devstorage.read_only");
		CHECK_INT(json_integer_value(json_object_get(c, "iat")), 1700000000);
		CHECK_INT(json_integer_value(json_object_get(c, "exp")), 1700003600);
		json_decref(h);
		json_decref(c);
	}
	/* the signature verifies with the public key ... */
	CHECK(verify(pk, jwt.buf));
	/* ... and not once a claim is changed, or with another key */
	char *tampered = xstrdup(jwt.buf);
	tampered[(d1 - jwt.buf) + 5] ^= 1;
	CHECK(!verify(pk, tampered));
	free(tampered);
	EVP_PKEY *other = EVP_RSA_gen(2048);
	CHECK(!verify(other, jwt.buf));

	/* keys that cannot sign RS256 are refused with a message */
	struct jwt_key *bad = NULL;
	CHECK_INT(jwt_key_load("not a key", &bad, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "PEM") != NULL);
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	char *ecpem = pem_of(ec);
	CHECK_INT(jwt_key_load(ecpem, &bad, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "RSA") != NULL);

	token_uri(pem);

	free(ecpem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
	strbuf_release(&jwt);
	jwt_key_destroy(key);
	free(pem);
	EVP_PKEY_free(pk);
	return check_summary();
}
