/*
 * SigV4 against the worked examples in AWS's S3 documentation
 * ("Examples: Signature Calculations", header-based auth, 2013-05-24),
 * plus the encoding rules the examples do not cover.
 */
#include "backends/s3/sigv4.h"
#include "tests/unit/check.h"

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"

static void sign(const struct sigv4_input *in, const char *want_sig)
{
	struct strbuf auth = STRBUF_INIT;
	sigv4_authorization(&auth, in);
	const char *sig = strstr(auth.buf, "Signature=");
	CHECK(sig != NULL);
	if (sig)
		CHECK_STR(sig + 10, want_sig);
	strbuf_release(&auth);
}

static void get_object(void)
{
	struct sigv4_pair h[] = {
		{ "Host", HOST }, { "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DATE },
	};
	struct sigv4_input in = {
		.method = "GET", .path = "/test.txt", .headers = h,
		.nheaders = 4, .payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = DATE, .region = "us-east-1", .service = "s3",
		.access_key = AKID, .secret_key = SECRET,
	};
	struct strbuf cr = STRBUF_INIT, sts = STRBUF_INIT, auth = STRBUF_INIT;

	sigv4_canonical_request(&cr, &in);
	CHECK_STR(cr.buf,
		  "GET\n/test.txt\n\n"
		  "host:examplebucket.s3.amazonaws.com\n"
		  "range:bytes=0-9\n"
		  "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
		  "x-amz-date:20130524T000000Z\n\n"
		  "host;range;x-amz-content-sha256;x-amz-date\n"
		  SIGV4_EMPTY_SHA256);
	sigv4_string_to_sign(&sts, &in);
	CHECK_STR(sts.buf,
		  "AWS4-HMAC-SHA256\n20130524T000000Z\n"
		  "20130524/us-east-1/s3/aws4_request\n"
		  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	sigv4_authorization(&auth, &in);
	CHECK_STR(auth.buf,
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
		  "x-amz-content-sha256;x-amz-date, Signature="
		  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	strbuf_release(&cr);
	strbuf_release(&sts);
	strbuf_release(&auth);
}

static void put_object(void)
{
	struct sigv4_pair h[] = {
		{ "Host", HOST },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-date", DATE },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		{ "x-amz-content-sha256",
		  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" },
	};
	char body_hash[65];
	sigv4_sha256_hex("Welcome to Amazon S3.", 21, body_hash);
	CHECK_STR(body_hash,
		  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	struct sigv4_input in = {
		.method = "PUT", .path = "/test$file.text", .headers = h,
		.nheaders = 5, .payload_hash = body_hash, .amz_date = DATE,
		.region = "us-east-1", .service = "s3",
		.access_key = AKID, .secret_key = SECRET,
	};
	sign(&in, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void bucket_get(const struct sigv4_pair *params, size_t n,
		       const char *want)
{
	struct sigv4_pair h[] = {
		{ "Host", HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DATE },
	};
	struct sigv4_input in = {
		.method = "GET", .path = "/", .params = params, .nparams = n,
		.headers = h, .nheaders = 3, .payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = DATE, .region = "us-east-1", .service = "s3",
		.access_key = AKID, .secret_key = SECRET,
	};
	sign(&in, want);
}

static void lifecycle_and_list(void)
{
	struct sigv4_pair lifecycle[] = { { "lifecycle", "" } };
	bucket_get(lifecycle, 1,
		   "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	/* given out of order: the signer must sort */
	struct sigv4_pair list[] = { { "prefix", "J" }, { "max-keys", "2" } };
	bucket_get(list, 2,
		   "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void encoding(void)
{
	struct strbuf q = STRBUF_INIT;
	struct sigv4_pair p[] = {
		{ "prefix", "dir/a b+c~d" }, { "list-type", "2" },
		{ "continuation-token", "1==/x" }, { "delimiter", "/" },
	};
	sigv4_canonical_query(&q, p, 4);
	CHECK_STR(q.buf, "continuation-token=1%3D%3D%2Fx&delimiter=%2F&"
		  "list-type=2&prefix=dir%2Fa%20b%2Bc~d");
	strbuf_release(&q);

	/* Paths keep '/', encode everything else upper-case, UTF-8 bytewise. */
	struct sigv4_pair h[] = { { "host", "h" } };
	struct sigv4_input in = {
		.method = "HEAD", .path = "/b/données/été 2024.csv",
		.headers = h, .nheaders = 1,
		.payload_hash = SIGV4_UNSIGNED_PAYLOAD, .amz_date = DATE,
		.region = "r", .service = "s3", .access_key = "a",
		.secret_key = "s",
	};
	struct strbuf cr = STRBUF_INIT;
	sigv4_canonical_request(&cr, &in);
	CHECK(strncmp(cr.buf, "HEAD\n/b/donn%C3%A9es/%C3%A9t%C3%A9%202024.csv\n",
		      46) == 0);
	strbuf_release(&cr);

	/* Header values are trimmed and inner runs of spaces collapsed. */
	struct sigv4_pair h2[] = { { "X-Custom", "  a   b  " }, { "host", "h" } };
	in.headers = h2;
	in.nheaders = 2;
	in.path = "/";
	sigv4_canonical_request(&cr, &in);
	CHECK(strstr(cr.buf, "\nhost:h\nx-custom:a b\n\nhost;x-custom\n") != NULL);
	strbuf_release(&cr);

	char date[32];
	sigv4_amz_date(1369353600LL * 1000000000LL, date, sizeof(date));
	CHECK_STR(date, DATE);
}

int main(void)
{
	get_object();
	put_object();
	lifecycle_and_list();
	encoding();
	return check_summary();
}
