/* GCS JSON API documents: objects, listing pages, errors, tokens. */
#include "backends/gcs/gcs_json.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>

#define OBJ(name, gen, size) \
	"{\"name\":\"" name "\",\"generation\":\"" gen "\"," \
	"\"metageneration\":\"2\",\"size\":\"" size "\"," \
	"\"md5Hash\":\"1B2M2Y8AsgTpgAmY7PhCfg==\",\"crc32c\":\"yZRlqg==\"," \
	"\"timeCreated\":\"2024-01-31T12:00:00.123Z\"}"

static void object(void)
{
	struct gcs_item it;
	static const char doc[] = OBJ("t/a b.parquet", "1706702400123456",
				      "5368709120");
	CHECK_INT(gcs_json_parse_object(doc, sizeof(doc) - 1, NULL, &it), 0);
	CHECK_STR(it.name, "t/a b.parquet");
	CHECK_INT(it.info.generation, 1706702400123456LL);
	CHECK_INT(it.info.metageneration, 2);
	CHECK_INT(it.info.size, 5368709120LL);       /* > 32 bits, a string */
	CHECK(it.info.has_crc32c && it.info.crc32c == 0xc99465aaU);
	CHECK(it.info.has_md5 && it.info.md5[0] == 0xd4);
	CHECK_INT(it.info.mtime_ns, 1706702400123000000LL);
	CHECK_STR(it.info.etag, "1706702400123456");
	CHECK(!it.gzip);
	free(it.name);

	static const char gz[] = "{\"name\":\"z\",\"generation\":\"7\","
		"\"size\":\"10\",\"contentEncoding\":\"gzip\"}";
	CHECK_INT(gcs_json_parse_object(gz, sizeof(gz) - 1, NULL, &it), 0);
	CHECK(it.gzip);
	CHECK(!it.info.has_md5);                     /* composite: no md5 */
	free(it.name);

	const char *bad[] = {
		"{\"name\":\"a\",\"size\":\"1\"}",                  /* no gen */
		"{\"name\":\"a\",\"generation\":\"x1\",\"size\":\"1\"}",
		"{\"name\":\"a\",\"generation\":\"1\",\"size\":\"-1\"}",
		("{\"name\":\"a\",\"generation\":\"1\",\"size\":\"1\","
		 "\"crc32c\":\"!!\"}"),
		"{\"generation\":\"1\",\"size\":\"1\"}",            /* no name */
		"[1,2]", "{", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(gcs_json_parse_object(bad[i], strlen(bad[i]), NULL, &it),
			  -EBADMSG);
}

/* A bucket used as a replica: the stamp is the generation, the bucket's
 * own generation is only the token reads pin. */
static void replica_stamp(void)
{
	struct gcs_item it;
	static const char doc[] = "{\"name\":\"a\",\"generation\":\"900\","
		"\"metageneration\":\"3\",\"size\":\"4\","
		"\"metadata\":{\"goog-generation\":\"1699\"}}";
	CHECK_INT(gcs_json_parse_object(doc, sizeof(doc) - 1, "goog-generation",
					&it), 0);
	CHECK_INT(it.info.generation, 1699);
	CHECK_INT(it.info.metageneration, 0);
	CHECK_STR(it.info.etag, "900");
	free(it.name);
	/* Read as the source, the same document is generation 900. */
	CHECK_INT(gcs_json_parse_object(doc, sizeof(doc) - 1, NULL, &it), 0);
	CHECK_INT(it.info.generation, 900);
	free(it.name);
	/* Another key, no metadata, or a malformed stamp: nothing stamped. */
	const char *keys[] = { "other-key" };
	CHECK_INT(gcs_json_parse_object(doc, sizeof(doc) - 1, keys[0], &it), 0);
	CHECK_INT(it.info.generation, 0);
	free(it.name);
	const char *unstamped[] = {
		"{\"name\":\"a\",\"generation\":\"9\",\"size\":\"4\"}",
		("{\"name\":\"a\",\"generation\":\"9\",\"size\":\"4\","
		 "\"metadata\":{\"goog-generation\":\"-5\"}}"),
		("{\"name\":\"a\",\"generation\":\"9\",\"size\":\"4\","
		 "\"metadata\":{\"goog-generation\":\"12x\"}}"),
		("{\"name\":\"a\",\"generation\":\"9\",\"size\":\"4\","
		 "\"metadata\":{\"goog-generation\":1699}}"),
		("{\"name\":\"a\",\"generation\":\"9\",\"size\":\"4\","
		 "\"metadata\":{\"goog-generation\":\" 1699\"}}"),
	};
	for (size_t i = 0; i < sizeof(unstamped) / sizeof(unstamped[0]); i++) {
		CHECK_INT(gcs_json_parse_object(unstamped[i], strlen(unstamped[i]),
						"goog-generation", &it), 0);
		CHECK_INT(it.info.generation, 0);
		CHECK_STR(it.info.etag, "9");
		free(it.name);
	}
}

static void listing(void)
{
	struct gcs_listing l;
	static const char page[] = "{\"kind\":\"storage#objects\","
		"\"prefixes\":[\"t/sub/\",\"t/z/\"],\"items\":["
		OBJ("t/a", "1", "3") "," OBJ("t/b", "2", "0") "],"
		"\"nextPageToken\":\"CgN0L2I=\"}";
	CHECK_INT(gcs_json_parse_listing(page, sizeof(page) - 1, NULL, &l), 0);
	CHECK_INT(l.nitems, 2);
	CHECK_INT(l.nprefixes, 2);
	CHECK_STR(l.items[1].name, "t/b");
	CHECK_STR(l.prefixes[0], "t/sub/");
	CHECK_STR(l.next_token, "CgN0L2I=");
	gcs_listing_release(&l);

	/* an empty page that still carries a token */
	static const char empty[] = "{\"kind\":\"storage#objects\","
				    "\"nextPageToken\":\"abc\"}";
	CHECK_INT(gcs_json_parse_listing(empty, sizeof(empty) - 1, NULL, &l), 0);
	CHECK_INT(l.nitems + l.nprefixes, 0);
	CHECK_STR(l.next_token, "abc");
	gcs_listing_release(&l);

	/* the last page: no token */
	static const char last[] = "{\"kind\":\"storage#objects\"}";
	CHECK_INT(gcs_json_parse_listing(last, sizeof(last) - 1, NULL, &l), 0);
	CHECK(l.next_token == NULL);
	gcs_listing_release(&l);

	const char *bad[] = {
		"{\"items\":{}}", "{\"prefixes\":[1]}",
		"{\"nextPageToken\":5}", "{\"items\":[{\"name\":\"a\"}]}",
		"{\"items\":[], \"items\":[]}",              /* duplicate key */
		/* numbers are digits only: strtoull took " 5", "+5" */
		"{\"items\":[" OBJ("a", "1", " 5") "]}",
		"{\"items\":[" OBJ("a", "1", "+5") "]}",
		"{\"items\":[" OBJ("a", "1", "5 ") "]}",
		"{\"items\":[" OBJ("a", " 1", "5") "]}",
		"{\"items\":[" OBJ("a", "1", "18446744073709551616") "]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(gcs_json_parse_listing(bad[i], strlen(bad[i]), NULL, &l),
			  -EBADMSG);
		CHECK(l.items == NULL && l.prefixes == NULL);
	}
}

static void errors_and_tokens(void)
{
	char reason[64], msg[128];
	static const char e[] = "{\"error\":{\"code\":404,\"message\":\"No such "
		"object: lake/x\",\"errors\":[{\"message\":\"No such object\","
		"\"domain\":\"global\",\"reason\":\"notFound\"}]}}";
	CHECK_INT(gcs_json_parse_error(e, sizeof(e) - 1, reason, sizeof(reason),
				       msg, sizeof(msg)), 0);
	CHECK_STR(reason, "notFound");
	CHECK_STR(msg, "No such object: lake/x");
	CHECK_INT(gcs_json_parse_error("<html>", 6, reason, sizeof(reason), msg,
				       sizeof(msg)), -ENOENT);

	char *tok;
	int64_t exp;
	static const char t[] = "{\"access_token\":\"ya29.abc\","
				"\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	CHECK_INT(gcs_json_parse_token(t, sizeof(t) - 1, &tok, &exp, msg,
				       sizeof(msg)), 0);
	CHECK_STR(tok, "ya29.abc");
	CHECK_INT(exp, 3599);
	free(tok);
	static const char g[] = "{\"error\":\"invalid_grant\","
				"\"error_description\":\"Invalid JWT Signature.\"}";
	CHECK_INT(gcs_json_parse_token(g, sizeof(g) - 1, &tok, &exp, msg,
				       sizeof(msg)), -EACCES);
	CHECK_STR(msg, "invalid_grant: Invalid JWT Signature.");
	CHECK(tok == NULL);
	CHECK_INT(gcs_json_parse_token("{\"access_token\":\"x\"}", 20, &tok,
				       &exp, msg, sizeof(msg)), -EBADMSG);
	/* The lifetime is at most 24 h: a token said to last years would
	 * never be fetched again.  A short one is honoured, never stretched
	 * past what its issuer said; none at all is no answer. */
	static const char brief[] = "{\"access_token\":\"x\",\"expires_in\":1}";
	CHECK_INT(gcs_json_parse_token(brief, sizeof(brief) - 1, &tok, &exp, msg,
				       sizeof(msg)), 0);
	CHECK_INT(exp, 1);
	free(tok);
	static const char none[] = "{\"access_token\":\"x\",\"expires_in\":0}";
	CHECK_INT(gcs_json_parse_token(none, sizeof(none) - 1, &tok, &exp, msg,
				       sizeof(msg)), -EBADMSG);
	static const char ages[] = "{\"access_token\":\"x\","
				   "\"expires_in\":9000000000000}";
	CHECK_INT(gcs_json_parse_token(ages, sizeof(ages) - 1, &tok, &exp, msg,
				       sizeof(msg)), 0);
	CHECK_INT(exp, 86400);
	free(tok);
}

int main(void)
{
	object();
	replica_stamp();
	listing();
	errors_and_tokens();
	return check_summary();
}
