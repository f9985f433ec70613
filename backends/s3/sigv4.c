/*
 * sigv4.c - AWS Signature Version 4 signing with OpenSSL.
 *
 *   canonical request = method \n uri \n query \n headers \n signed \n hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n date \n scope \n hex(sha256(cr))
 *   signing key       = HMAC chain "AWS4"+secret -> day -> region -> service
 *                       -> "aws4_request"
 */
#include "backends/s3/sigv4.h"
#include "backends/util/uri.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	hex(md, sizeof(md), out);
}

void sigv4_amz_date(int64_t wall_ns, char *out, size_t outlen)
{
	time_t t = (time_t)(wall_ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y%m%dT%H%M%SZ", &tm);
}

struct enc_pair {
	char *name;
	char *value;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

void sigv4_canonical_query(struct strbuf *out, const struct sigv4_pair *p,
			   size_t n)
{
	struct enc_pair *e = xcalloc(n ? n : 1, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		struct strbuf sb = STRBUF_INIT;
		uri_encode_str(&sb, p[i].name, false);
		e[i].name = strbuf_detach(&sb, NULL);
		uri_encode_str(&sb, p[i].value ? p[i].value : "", false);
		e[i].value = strbuf_detach(&sb, NULL);
	}
	qsort(e, n, sizeof(*e), cmp_pair);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addch(out, '&');
		strbuf_addf(out, "%s=%s", e[i].name, e[i].value);
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
}

struct canon_header {
	char *name;    /* lower case */
	char *value;   /* trimmed, inner runs of spaces collapsed */
};

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct canon_header *)a)->name,
		      ((const struct canon_header *)b)->name);
}

static char *canon_value(const char *v)
{
	struct strbuf sb = STRBUF_INIT;
	bool space = false;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space && sb.len)
			strbuf_addch(&sb, ' ');
		space = false;
		strbuf_addch(&sb, *v);
	}
	return strbuf_detach(&sb, NULL);
}

/* Appends canonical headers and fills signed (the ';'-joined names). */
static void canonical_headers(struct strbuf *out, struct strbuf *signed_names,
			      const struct sigv4_input *in)
{
	size_t n = in->nheaders;
	struct canon_header *h = xcalloc(n ? n : 1, sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		h[i].name = xstrdup(in->headers[i].name);
		for (char *c = h[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		h[i].value = canon_value(in->headers[i].value);
	}
	qsort(h, n, sizeof(*h), cmp_header);
	for (size_t i = 0; i < n; i++) {
		strbuf_addf(out, "%s:%s\n", h[i].name, h[i].value);
		if (i)
			strbuf_addch(signed_names, ';');
		strbuf_adds(signed_names, h[i].name);
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static void canonical_request(struct strbuf *out, struct strbuf *signed_names,
			      const struct sigv4_input *in)
{
	strbuf_addf(out, "%s\n", in->method);
	uri_encode_str(out, in->path, true);
	strbuf_addch(out, '\n');
	sigv4_canonical_query(out, in->params, in->nparams);
	strbuf_addch(out, '\n');
	canonical_headers(out, signed_names, in);
	strbuf_addch(out, '\n');
	strbuf_addf(out, "%s\n%s", signed_names->buf, in->payload_hash);
}

void sigv4_canonical_request(struct strbuf *out, const struct sigv4_input *in)
{
	struct strbuf names = STRBUF_INIT;
	canonical_request(out, &names, in);
	strbuf_release(&names);
}

static void scope(struct strbuf *out, const struct sigv4_input *in)
{
	strbuf_add(out, in->amz_date, 8);
	strbuf_addf(out, "/%s/%s/aws4_request", in->region, in->service);
}

static void string_to_sign(struct strbuf *out, struct strbuf *signed_names,
			   const struct sigv4_input *in)
{
	struct strbuf cr = STRBUF_INIT;
	char crhash[65];

	canonical_request(&cr, signed_names, in);
	sigv4_sha256_hex(cr.buf, cr.len, crhash);
	strbuf_release(&cr);
	strbuf_addf(out, "AWS4-HMAC-SHA256\n%s\n", in->amz_date);
	scope(out, in);
	strbuf_addf(out, "\n%s", crhash);
}

void sigv4_string_to_sign(struct strbuf *out, const struct sigv4_input *in)
{
	struct strbuf names = STRBUF_INIT;
	string_to_sign(out, &names, in);
	strbuf_release(&names);
}

static void hmac(const void *key, size_t klen, const char *msg,
		 unsigned char out[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	     strlen(msg), out, &len);
}

void sigv4_authorization(struct strbuf *out, const struct sigv4_input *in)
{
	struct strbuf sts = STRBUF_INIT, names = STRBUF_INIT, k = STRBUF_INIT;
	unsigned char key[32], sig[32];
	char day[9], sighex[65];

	string_to_sign(&sts, &names, in);
	memcpy(day, in->amz_date, 8);
	day[8] = '\0';
	strbuf_addf(&k, "AWS4%s", in->secret_key);
	hmac(k.buf, k.len, day, key);
	hmac(key, 32, in->region, key);
	hmac(key, 32, in->service, key);
	hmac(key, 32, "aws4_request", key);
	hmac(key, 32, sts.buf, sig);
	hex(sig, 32, sighex);

	strbuf_addf(out, "AWS4-HMAC-SHA256 Credential=%s/", in->access_key);
	scope(out, in);
	strbuf_addf(out, ", SignedHeaders=%s, Signature=%s", names.buf, sighex);

	/* Scrub the derived key material. */
	OPENSSL_cleanse(k.buf, k.len);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(sighex, sizeof(sighex));
	strbuf_release(&k);
	strbuf_release(&sts);
	strbuf_release(&names);
}
