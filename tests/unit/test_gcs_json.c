/* GCS JSON API documents: objects, listing pages, errors, tokens. */
#include "backends/gcs/gcs_json.h"
#include "backends/util/base64.h"
#include "backends/util/strbuf.h"
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

/* base64 of s, for a payload */
static void b64(struct strbuf *out, const char *s)
{
	base64_encode(out, s, strlen(s));
}

static void pull(void)
{
	struct gcs_changes ch;
	struct strbuf doc = STRBUF_INIT, p1 = STRBUF_INIT, p2 = STRBUF_INIT;

	b64(&p1, "{\"name\":\"t/a\",\"generation\":\"17\",\"metageneration\":\"1\","
	    "\"size\":\"5\",\"crc32c\":\"AAAAAA==\"}");
	b64(&p2, "{\"name\":\"t/other\",\"generation\":\"18\",\"size\":\"5\"}");
	strbuf_addf(&doc, "{\"receivedMessages\":["
	    /* an overwrite: the new generation's FINALIZE ... */
	    "{\"ackId\":\"A1\",\"message\":{\"data\":\"%s\",\"messageId\":\"m1\","
	    "\"publishTime\":\"2026-12-06T09:00:00.123456789Z\",\"attributes\":{"
	    "\"eventType\":\"OBJECT_FINALIZE\",\"payloadFormat\":\"JSON_API_V1\","
	    "\"bucketId\":\"lake\",\"objectId\":\"t/a\",\"objectGeneration\":\"17\","
	    "\"overwroteGeneration\":\"16\",\"eventTime\":\"2026-12-06T09:00:00.1Z\","
	    "\"notificationConfig\":\"projects/_/buckets/lake/notificationConfigs/1\"}}},"
	    /* ... and the old one's DELETE */
	    "{\"ackId\":\"A2\",\"message\":{\"messageId\":\"m2\","
	    "\"publishTime\":\"2026-12-06T09:00:00Z\",\"attributes\":{"
	    "\"eventType\":\"OBJECT_DELETE\",\"payloadFormat\":\"NONE\","
	    "\"bucketId\":\"lake\",\"objectId\":\"t/a\",\"objectGeneration\":\"16\","
	    "\"overwrittenByGeneration\":\"17\"}}},"
	    /* a payload that names another object: invalid */
	    "{\"ackId\":\"A3\",\"message\":{\"data\":\"%s\",\"messageId\":\"m3\","
	    "\"publishTime\":\"2026-12-06T09:00:01Z\",\"attributes\":{"
	    "\"eventType\":\"OBJECT_FINALIZE\",\"payloadFormat\":\"JSON_API_V1\","
	    "\"bucketId\":\"lake\",\"objectId\":\"t/b\",\"objectGeneration\":\"18\"}}},"
	    /* not a notification at all */
	    "{\"ackId\":\"A4\",\"message\":{\"data\":\"aGk=\",\"messageId\":\"m4\","
	    "\"publishTime\":\"2026-12-06T09:00:02Z\"}},"
	    /* a generation that is not a number */
	    "{\"ackId\":\"A5\",\"message\":{\"messageId\":\"m5\","
	    "\"publishTime\":\"2026-12-06T09:00:02Z\",\"attributes\":{"
	    "\"eventType\":\"OBJECT_METADATA_UPDATE\",\"bucketId\":\"lake\","
	    "\"objectId\":\"t/c\",\"objectGeneration\":\" 7\"}}}"
	    "]}", p1.buf, p2.buf);
	CHECK_INT(gcs_json_parse_pull(doc.buf, doc.len, &ch), 0);
	CHECK_INT(ch.n, 5);
	if (ch.n == 5) {
		CHECK_STR(ch.c[0].ack_id, "A1");
		CHECK_INT(ch.c[0].kind, GCS_CHANGE_FINALIZE);
		CHECK_STR(ch.c[0].name, "t/a");
		CHECK_STR(ch.c[0].bucket, "lake");
		CHECK_INT(ch.c[0].generation, 17);
		CHECK_INT(ch.c[0].overwrote, 16);
		CHECK_INT(ch.c[0].publish_ns, 1796547600123456789LL);
		CHECK_INT(ch.c[0].event_ns, 1796547600100000000LL);
		CHECK(ch.c[0].has_info);
		CHECK_INT(ch.c[0].info.size, 5);
		CHECK_INT(ch.c[0].info.metageneration, 1);
		CHECK(ch.c[0].info.has_crc32c);
		CHECK_INT(ch.c[1].kind, GCS_CHANGE_DELETE);
		CHECK_INT(ch.c[1].generation, 16);
		CHECK_INT(ch.c[1].overwritten_by, 17);
		CHECK(!ch.c[1].has_info);
		for (int i = 2; i < 5; i++) {
			CHECK_INT(ch.c[i].kind, GCS_CHANGE_INVALID);
			CHECK(ch.c[i].name == NULL);
			CHECK(ch.c[i].ack_id != NULL);     /* still acked */
		}
	}
	gcs_changes_release(&ch);

	CHECK_INT(gcs_json_parse_pull("{}", 2, &ch), 0);
	CHECK_INT(ch.n, 0);
	gcs_changes_release(&ch);
	/* no ackId: the response cannot be acknowledged */
	static const char noack[] = "{\"receivedMessages\":[{\"message\":{"
		"\"messageId\":\"m\",\"publishTime\":\"2026-12-06T09:00:00Z\"}}]}";
	CHECK_INT(gcs_json_parse_pull(noack, sizeof(noack) - 1, &ch), -EBADMSG);
	CHECK_INT(ch.n, 0);
	CHECK_INT(gcs_json_parse_pull("[]", 2, &ch), -EBADMSG);
	CHECK_INT(gcs_json_parse_pull("{\"receivedMessages\":{}}", 22, &ch),
		  -EBADMSG);
	strbuf_release(&doc);
	strbuf_release(&p1);
	strbuf_release(&p2);
}

int main(void)
{
	object();
	pull();
	replica_stamp();
	listing();
	errors_and_tokens();
	return check_summary();
}
