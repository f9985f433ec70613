/* What a GCS media answer's headers say of the version served
 * (gcs_media_info), against the object resource of that generation. */
#include "backends/gcs/gcs_json.h"
#include "backends/gcs/gcs_media.h"
#include "backends/http/http.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GEN "1706702400123456"            /* 2024-01-31T12:00:00.123456Z */
#define LM "Wed, 31 Jan 2024 12:00:00 GMT"
#define CRC "crc32c=yZRlqg=="
#define MD5 "md5=1B2M2Y8AsgTpgAmY7PhCfg=="

static const char resource[] =
	"{\"name\":\"t/a.parquet\",\"generation\":\"" GEN "\","
	"\"metageneration\":\"1\",\"size\":\"5368709120\","
	"\"md5Hash\":\"1B2M2Y8AsgTpgAmY7PhCfg==\",\"crc32c\":\"yZRlqg==\","
	"\"timeCreated\":\"2024-01-31T12:00:00.123Z\"}";

/* gcs_media_info of an answer of status with a body of body_len bytes. */
static int answer(long status, size_t body_len, const char *headers,
		  struct obj_info *info)
{
	struct http_resp r;
	http_resp_init(&r);
	r.status = status;
	r.body_len = body_len;
	strbuf_adds(&r.headers, headers);
	int rc = gcs_media_info(&r, info);
	http_resp_release(&r);
	return rc;
}

/* A 206 of the last 1000 bytes of the 5 GiB object, with extra headers. */
static int info_of(const char *headers, struct obj_info *info)
{
	struct strbuf h = STRBUF_INIT;
	strbuf_adds(&h, "Content-Range: bytes 5368708120-5368709119/"
		    "5368709120\r\n");
	strbuf_adds(&h, headers);
	int rc = answer(206, 1000, h.buf, info);
	strbuf_release(&h);
	return rc;
}

#define BASE "x-goog-generation: " GEN "\r\nx-goog-metageneration: 1\r\n" \
	"x-goog-stored-content-length: 5368709120\r\nLast-Modified: " LM "\r\n"

/* The same obj_info as the object resource gives, hashes in one line or
 * one line each. */
static void same_as_resource(void)
{
	struct gcs_item it;
	struct obj_info info;

	CHECK_INT(gcs_json_parse_object(resource, sizeof(resource) - 1, NULL,
					&it), 0);
	free(it.name);
	CHECK_INT(info_of(BASE "x-goog-hash: " CRC "," MD5 "\r\n", &info), 0);
	CHECK(memcmp(&info, &it.info, sizeof(info)) == 0);
	CHECK_INT(info.mtime_ns, 1706702400123000000LL);
	CHECK_STR(info.etag, GEN);
	CHECK_INT(info_of(BASE "X-Goog-Hash: " MD5 "\r\nX-Goog-Hash: " CRC
			  "\r\n", &info), 0);
	CHECK(memcmp(&info, &it.info, sizeof(info)) == 0);
	CHECK_INT(info_of(BASE "x-goog-hash: " CRC ", " MD5 ",sha1=xx\r\n",
			  &info), 0);
	CHECK(memcmp(&info, &it.info, sizeof(info)) == 0);
	/* a composite object: no md5, as the resource has none */
	CHECK_INT(info_of(BASE "x-goog-hash: " CRC "\r\n", &info), 0);
	CHECK(info.has_crc32c && !info.has_md5);
	/* a whole object in a 200 */
	CHECK_INT(answer(200, 12, "x-goog-generation: 7\r\nx-goog-hash: " CRC
			 "\r\n", &info), 0);
	CHECK_INT(info.size, 12);
	CHECK_INT(info.generation, 7);
	CHECK_STR(info.etag, "7");
}

/* Only an object never updated has its creation second as Last-Modified. */
static void creation_time(void)
{
	struct obj_info info;

	CHECK_INT(info_of("x-goog-generation: " GEN "\r\n"
			  "x-goog-metageneration: 2\r\nLast-Modified: " LM
			  "\r\n", &info), 0);
	CHECK_INT(info.mtime_ns, 0);
	CHECK_INT(info.metageneration, 2);
	CHECK_INT(info_of("x-goog-generation: " GEN "\r\n"
			  "x-goog-metageneration: 1\r\nLast-Modified: "
			  "Wed, 31 Jan 2024 12:00:01 GMT\r\n", &info), 0);
	CHECK_INT(info.mtime_ns, 0);
	CHECK_INT(info_of("x-goog-generation: " GEN "\r\n"
			  "x-goog-metageneration: 1\r\n", &info), 0);
	CHECK_INT(info.mtime_ns, 0);
	CHECK_INT(info_of("x-goog-generation: " GEN "\r\n"
			  "Last-Modified: " LM "\r\n", &info), 0);
	CHECK_INT(info.mtime_ns, 0);
	/* a generation that is no time of this era */
	CHECK_INT(info_of("x-goog-generation: 18446744073709551615\r\n"
			  "x-goog-metageneration: 1\r\n"
			  "Last-Modified: " LM "\r\n", &info), 0);
	CHECK_INT(info.mtime_ns, 0);
}

static void malformed(void)
{
	struct obj_info info;
	const char *bad[] = {
		"",                                            /* no generation */
		"x-goog-generation: 0\r\n",
		"x-goog-generation: 12x\r\n",
		"x-goog-generation: 1\r\nx-goog-stored-content-length: 999\r\n",
		"x-goog-generation: 1\r\nx-goog-metageneration: -1\r\n",
		"x-goog-generation: 1\r\nx-goog-hash: crc32c=abc\r\n",
		"x-goog-generation: 1\r\nx-goog-hash: md5=" "yZRlqg==\r\n",
		"x-goog-generation: 1\r\nx-goog-hash: " CRC "," CRC "\r\n",
		"x-goog-generation: 1\r\nx-goog-hash: " CRC "\r\n"
			"x-goog-hash: " CRC "\r\n",
		"x-goog-generation: 1\r\nx-goog-hash: crc32c="
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(info_of(bad[i], &info), -EBADMSG);

	/* a body that Content-Range does not describe */
	CHECK_INT(answer(206, 10, "x-goog-generation: 1\r\n"
			 "Content-Range: bytes 0-4/5\r\n", &info), -EBADMSG);
}

int main(void)
{
	same_as_resource();
	creation_time();
	malformed();
	return check_summary();
}
