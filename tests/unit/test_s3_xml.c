/* ListObjectsV2 and error documents, including hostile ones. */
#include "backends/s3/s3_xml.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>

static const char page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>lake</Name><Prefix>t/</Prefix><KeyCount>3</KeyCount>"
	"<MaxKeys>3</MaxKeys><Delimiter>/</Delimiter>"
	"<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
	"<Contents><Key>t/a%20b.csv</Key>"
	"<LastModified>2024-01-31T12:00:00.250Z</LastModified>"
	"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
	"<Size>1048576</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>t/z</Key><LastModified>2024-01-31T12:00:01.000Z"
	"</LastModified><ETag>\"e-2\"</ETag><Size>0</Size></Contents>"
	"<CommonPrefixes><Prefix>t/sub/</Prefix></CommonPrefixes>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
	"</NextContinuationToken></ListBucketResult>";

static void listing(void)
{
	struct s3_xml_listing l;
	CHECK_INT(s3_xml_parse_listing(page, sizeof(page) - 1, &l), 0);
	CHECK_INT(l.n, 3);
	CHECK(l.truncated);
	CHECK(l.url_encoded);
	CHECK_STR(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	if (l.n == 3) {
		CHECK_STR(l.entries[0].key, "t/a b.csv");     /* decoded */
		CHECK(!l.entries[0].is_prefix);
		CHECK_INT(l.entries[0].size, 1048576);
		CHECK_STR(l.entries[0].etag, "9b2cf535f27731c974343645a3985328");
		CHECK_INT(l.entries[0].mtime_ns, 1706702400250000000LL);
		CHECK_STR(l.entries[1].etag, "e-2");
		CHECK_STR(l.entries[2].key, "t/sub/");
		CHECK(l.entries[2].is_prefix);
	}
	s3_xml_listing_release(&l);
}

static void last_page_and_empty(void)
{
	static const char last[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>k</Key><Size>5</Size><ETag>\"x\"</ETag>"
		"<LastModified>2024-01-01T00:00:00Z</LastModified></Contents>"
		"</ListBucketResult>";
	struct s3_xml_listing l;
	CHECK_INT(s3_xml_parse_listing(last, sizeof(last) - 1, &l), 0);
	CHECK(!l.truncated);
	CHECK(l.next_token == NULL);
	CHECK(!l.url_encoded);
	CHECK_INT(l.n, 1);
	s3_xml_listing_release(&l);

	/* An empty page that still says there is more. */
	static const char empty[] =
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>abc</NextContinuationToken>"
		"</ListBucketResult>";
	CHECK_INT(s3_xml_parse_listing(empty, sizeof(empty) - 1, &l), 0);
	CHECK_INT(l.n, 0);
	CHECK_STR(l.next_token, "abc");
	s3_xml_listing_release(&l);
}

static void hostile(void)
{
	struct s3_xml_listing l;
	const char *bad[] = {
		"<ListBucketResult><Contents><Key>a</Key>",       /* truncated */
		"not xml at all",
		"<ListBucketResult><Contents><Size>12x</Size><Key>a</Key>"
		"</Contents></ListBucketResult>",                 /* bad size */
		"<ListBucketResult><Contents><Size>1</Size></Contents>"
		"</ListBucketResult>",                            /* no key */
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"</ListBucketResult>",                 /* more, but no token */
		"<ListBucketResult><Contents><Key>a</Key><LastModified>yesterday"
		"</LastModified></Contents></ListBucketResult>",
		/* sizes are digits only: strtoull took " -1" as 2^64-1 */
		"<ListBucketResult><Contents><Key>a</Key><Size> -1</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>+5</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size> 5</Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size></Size>"
		"</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key>"
		"<Size>18446744073709551616</Size></Contents></ListBucketResult>",
		/* a URL-encoded key with a broken escape */
		"<ListBucketResult><EncodingType>url</EncodingType><Contents>"
		"<Key>a%2</Key></Contents></ListBucketResult>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(s3_xml_parse_listing(bad[i], strlen(bad[i]), &l),
			  -EBADMSG);
		CHECK(l.entries == NULL && l.n == 0);
	}
	/* A key longer than any real one must not be accepted. */
	struct strbuf big = STRBUF_INIT;
	strbuf_adds(&big, "<ListBucketResult><Contents><Key>");
	for (int i = 0; i < 10000; i++)
		strbuf_addch(&big, 'k');
	strbuf_adds(&big, "</Key></Contents></ListBucketResult>");
	CHECK_INT(s3_xml_parse_listing(big.buf, big.len, &l), -EBADMSG);
	strbuf_release(&big);
	/* An ETag too long to be a version token. */
	strbuf_adds(&big, "<ListBucketResult><Contents><Key>a</Key><ETag>");
	for (int i = 0; i < 200; i++)
		strbuf_addch(&big, 'e');
	strbuf_adds(&big, "</ETag></Contents></ListBucketResult>");
	CHECK_INT(s3_xml_parse_listing(big.buf, big.len, &l), -EBADMSG);
	strbuf_release(&big);
	/* Entity expansion bombs are refused by expat. */
	static const char bomb[] =
		"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
		"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
		"<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
		"<ListBucketResult><Contents><Key>&d;&d;&d;</Key></Contents>"
		"</ListBucketResult>";
	CHECK_INT(s3_xml_parse_listing(bomb, sizeof(bomb) - 1, &l), -EBADMSG);
}

/*
 * With encoding-type=url a key may hold %00.  Cut at the NUL, "d/a%00b"
 * became a phantom "d/a" carrying the other object's size (or a
 * duplicate of a real "d/a").  Such names are hidden and counted, in
 * whatever order EncodingType comes.
 */
static void nul_in_keys(void)
{
	static const char *const pages[] = {
		"<ListBucketResult><EncodingType>url</EncodingType>"
		"<Contents><Key>d/a</Key><Size>3</Size></Contents>"
		"<Contents><Key>d/a%00b</Key><Size>777</Size></Contents>"
		"<Contents><Key>d/%00</Key><Size>5</Size></Contents>"
		"<CommonPrefixes><Prefix>d/x%00y/</Prefix></CommonPrefixes>"
		"<CommonPrefixes><Prefix>d/s%2Fq/</Prefix></CommonPrefixes>"
		"</ListBucketResult>",
		"<ListBucketResult>"
		"<Contents><Key>d/a</Key><Size>3</Size></Contents>"
		"<Contents><Key>d/a%00b</Key><Size>777</Size></Contents>"
		"<Contents><Key>d/%00</Key><Size>5</Size></Contents>"
		"<CommonPrefixes><Prefix>d/x%00y/</Prefix></CommonPrefixes>"
		"<CommonPrefixes><Prefix>d/s%2Fq/</Prefix></CommonPrefixes>"
		"<EncodingType>url</EncodingType></ListBucketResult>",
	};
	for (size_t i = 0; i < 2; i++) {
		struct s3_xml_listing l;
		CHECK_INT(s3_xml_parse_listing(pages[i], strlen(pages[i]), &l),
			  0);
		CHECK_INT(l.n, 2);
		CHECK_INT(l.hidden, 3);
		if (l.n == 2) {
			CHECK_STR(l.entries[0].key, "d/a");
			CHECK_INT(l.entries[0].size, 3);
			CHECK_STR(l.entries[1].key, "d/s/q/");
			CHECK(l.entries[1].is_prefix);
		}
		s3_xml_listing_release(&l);
	}
	/* Not URL-encoded: "%00" is three plain characters. */
	static const char plain[] =
		"<ListBucketResult><Contents><Key>d/a%00b</Key><Size>1</Size>"
		"</Contents></ListBucketResult>";
	struct s3_xml_listing l;
	CHECK_INT(s3_xml_parse_listing(plain, sizeof(plain) - 1, &l), 0);
	CHECK_INT(l.n, 1);
	CHECK_INT(l.hidden, 0);
	if (l.n == 1)
		CHECK_STR(l.entries[0].key, "d/a%00b");
	s3_xml_listing_release(&l);
}

static void errors(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>"
		"<Code>SignatureDoesNotMatch</Code><Message>The request "
		"signature we calculated does not match</Message>"
		"<RequestId>x</RequestId></Error>";
	char code[64], msg[128];
	CHECK_INT(s3_xml_parse_error(doc, sizeof(doc) - 1, code, sizeof(code),
				     msg, sizeof(msg)), 0);
	CHECK_STR(code, "SignatureDoesNotMatch");
	CHECK(strncmp(msg, "The request signature", 21) == 0);
	CHECK_INT(s3_xml_parse_error("", 0, code, sizeof(code), msg,
				     sizeof(msg)), -ENOENT);
	CHECK_STR(code, "");
	CHECK(s3_xml_parse_error("<html>oops", 10, code, sizeof(code), msg,
				 sizeof(msg)) < 0);
}

int main(void)
{
	listing();
	last_page_and_empty();
	hostile();
	nul_in_keys();
	errors();
	return check_summary();
}
