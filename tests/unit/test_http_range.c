/* The one check of a ranged read of a pinned version. */
#include "backends/http/http.h"
#include "tests/unit/check.h"

#include <errno.h>

/* A response as http_do() leaves it: status, body length, headers. */
static void answer(struct http_resp *r, long status, size_t body_len,
		   const char *headers)
{
	strbuf_reset(&r->headers);
	strbuf_adds(&r->headers, "HTTP/1.1 200 x\r\n");
	strbuf_adds(&r->headers, headers);
	r->status = status;
	r->body_len = body_len;
}

/* Bytes [10, 20) of a 100-byte object pinned at generation 7. */
static void middle(struct http_range *rg)
{
	CHECK(http_range_set(rg, 10, 10, 100));
	rg->pin_header = "x-goog-generation";
	rg->pin_value = "7";
}

static void test_set(void)
{
	struct http_range rg;
	char h[64];

	CHECK(!http_range_set(&rg, 100, 10, 100));   /* at the end */
	CHECK(!http_range_set(&rg, 150, 10, 100));   /* past it */
	CHECK(!http_range_set(&rg, 0, 0, 100));      /* nothing asked */
	CHECK(!http_range_set(&rg, 0, 10, 0));       /* empty object */
	CHECK(http_range_set(&rg, 95, 10, 100));     /* cut at the end */
	CHECK_INT(rg.off, 95);
	CHECK_INT(rg.len, 5);
	CHECK_INT(rg.size, 100);
	CHECK(rg.pin_header == NULL);
	http_range_header(&rg, h, sizeof(h));
	CHECK_STR(h, "bytes=95-99");
	CHECK(http_range_set(&rg, 0, 1, 1));
	http_range_header(&rg, h, sizeof(h));
	CHECK_STR(h, "bytes=0-0");
}

static void test_206(void)
{
	struct http_range rg;
	struct http_resp r;

	http_resp_init(&r);
	middle(&rg);
	answer(&r, 206, 10, "Content-Range: bytes 10-19/100\r\n"
	       "x-goog-generation: 7\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	/* no version named: passes */
	answer(&r, 206, 10, "Content-Range: bytes 10-19/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	/* another version named: stale, whatever else is right */
	answer(&r, 206, 10, "Content-Range: bytes 10-19/100\r\n"
	       "x-goog-generation: 8\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -ESTALE);
	answer(&r, 206, 3, "x-goog-generation: 70\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -ESTALE);
	/* wrong start, end, total */
	answer(&r, 206, 10, "Content-Range: bytes 11-20/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: bytes 10-20/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: bytes 10-19/101\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: bytes 10-19/*\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* malformed or missing Content-Range */
	answer(&r, 206, 10, "Content-Range: bytes 19-10/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: bytes -10-19/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: bytes 10-19/100x\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "Content-Range: items 10-19/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 10, "");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* a short body, even under a right Content-Range */
	answer(&r, 206, 9, "Content-Range: bytes 10-19/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* another 2xx is no answer to a ranged read */
	answer(&r, 204, 10, "Content-Range: bytes 10-19/100\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	http_resp_release(&r);
}

static void test_200(void)
{
	struct http_range rg;
	struct http_resp r;

	http_resp_init(&r);
	/* 200 for part of the object: the range was ignored */
	middle(&rg);
	answer(&r, 200, 10, "");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	CHECK(http_range_set(&rg, 0, 10, 100));
	answer(&r, 200, 10, "");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* 200 for the whole object is the answer */
	CHECK(http_range_set(&rg, 0, 4096, 100));
	rg.pin_header = "etag";
	rg.pin_value = "\"abc\"";
	answer(&r, 200, 100, "ETag: \"abc\"\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	answer(&r, 200, 99, "ETag: \"abc\"\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 200, 100, "ETag: \"abd\"\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -ESTALE);
	http_resp_release(&r);
}

static void test_failures(void)
{
	struct http_range rg;
	struct http_resp r;

	http_resp_init(&r);
	middle(&rg);
	/* 416 (-ERANGE): the pinned size says the range exists */
	answer(&r, 416, 0, "Content-Range: bytes */5\r\n");
	CHECK_INT(http_range_check(&rg, &r, -ERANGE), -ESTALE);
	/* a 2xx body longer than asked: the range was ignored */
	answer(&r, 0, 0, "");
	CHECK_INT(http_range_check(&rg, &r, -EMSGSIZE), -EIO);
	/* the rest pass unchanged */
	answer(&r, 412, 0, "");
	CHECK_INT(http_range_check(&rg, &r, -ESTALE), -ESTALE);
	answer(&r, 404, 0, "x-goog-generation: 8\r\n");
	CHECK_INT(http_range_check(&rg, &r, -ENOENT), -ENOENT);
	answer(&r, 0, 0, "");
	CHECK_INT(http_range_check(&rg, &r, -ETIMEDOUT), -ETIMEDOUT);
	CHECK_INT(http_range_check(&rg, &r, -EACCES), -EACCES);
	http_resp_release(&r);
}

/* A resumable upload session's 308: what it holds. */
static void test_session_persisted(void)
{
	static const struct { const char *headers; int rc; uint64_t have; } t[] = {
		{ "", 0, 0 },                                  /* nothing yet */
		{ "Range: bytes=0-0\r\n", 0, 1 },
		{ "range: bytes=0-262143\r\n", 0, 262144 },
		{ "Range: bytes=0-18446744073709551614\r\n", 0, UINT64_MAX },
		{ "Range: bytes=0-18446744073709551615\r\n", -EBADMSG, 0 },
		{ "Range: bytes=1-5\r\n", -EBADMSG, 0 },
		{ "Range: bytes=0-\r\n", -EBADMSG, 0 },
		{ "Range: bytes=0-5x\r\n", -EBADMSG, 0 },
		{ "Range: bytes 0-5\r\n", -EBADMSG, 0 },
		{ "Range: bytes=0--5\r\n", -EBADMSG, 0 },
	};
	struct http_resp r;
	uint64_t have;

	http_resp_init(&r);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		answer(&r, 308, 0, t[i].headers);
		have = 7;
		CHECK_INT(http_session_persisted(&r, &have), t[i].rc);
		CHECK(have == t[i].have);
	}
	http_resp_release(&r);
}

/* The last bytes of an object whose size the answer tells. */
static void test_tail(void)
{
	struct http_range rg;
	struct http_resp r;
	uint64_t off, size;
	char h[64];

	http_resp_init(&r);
	http_range_set_tail(&rg, 64);
	http_range_header(&rg, h, sizeof(h));
	CHECK_STR(h, "bytes=-64");

	/* the last 64 of 1000 */
	answer(&r, 206, 64, "Content-Range: bytes 936-999/1000\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	CHECK(http_resp_range(&r, &off, &size));
	CHECK_INT(off, 936);
	CHECK_INT(size, 1000);
	/* an object shorter than asked: all of it, as 206 or as 200 */
	answer(&r, 206, 10, "Content-Range: bytes 0-9/10\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	answer(&r, 200, 10, "");
	CHECK_INT(http_range_check(&rg, &r, 0), 0);
	CHECK(http_resp_range(&r, &off, &size));
	CHECK_INT(off, 0);
	CHECK_INT(size, 10);

	/* not the end of the object */
	answer(&r, 206, 64, "Content-Range: bytes 900-963/1000\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* fewer bytes than the object has past them */
	answer(&r, 206, 32, "Content-Range: bytes 968-999/1000\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* a body that does not match its Content-Range */
	answer(&r, 206, 63, "Content-Range: bytes 936-999/1000\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* no Content-Range, or one past the total */
	answer(&r, 206, 64, "");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	answer(&r, 206, 64, "Content-Range: bytes 936-999/999\r\n");
	CHECK_INT(http_range_check(&rg, &r, 0), -EIO);
	/* a whole object longer than asked: the range was ignored */
	answer(&r, 200, 64, "");
	CHECK_INT(http_range_check(&rg, &r, -EMSGSIZE), -EIO);
	/* an empty object answers 416: said as it is, not as a change */
	CHECK_INT(http_range_check(&rg, &r, -ERANGE), -ERANGE);
	CHECK_INT(http_range_check(&rg, &r, -ENOENT), -ENOENT);
	http_resp_release(&r);
}

int main(void)
{
	test_tail();
	test_set();
	test_206();
	test_200();
	test_failures();
	test_session_persisted();
	return check_summary();
}
