/* base64, base64url and the GCS hash fields. */
#include "backends/util/base64.h"
#include "backends/util/crc32c.h"
#include "tests/unit/check.h"

#include <errno.h>

static void roundtrip(const char *plain, const char *b64, const char *b64url)
{
	struct strbuf sb = STRBUF_INIT;
	base64_encode(&sb, plain, strlen(plain));
	CHECK_STR(sb.buf, b64);
	strbuf_reset(&sb);
	base64url_encode(&sb, plain, strlen(plain));
	CHECK_STR(sb.buf, b64url);
	strbuf_reset(&sb);
	CHECK_INT(base64_decode(&sb, b64, strlen(b64)), 0);
	CHECK_STR(sb.buf, plain);
	strbuf_reset(&sb);
	CHECK_INT(base64url_decode(&sb, b64url, strlen(b64url)), 0);
	CHECK_STR(sb.buf, plain);
	strbuf_release(&sb);
}

int main(void)
{
	/* RFC 4648 section 10 test vectors */
	roundtrip("", "", "");
	roundtrip("f", "Zg==", "Zg");
	roundtrip("fo", "Zm8=", "Zm8");
	roundtrip("foo", "Zm9v", "Zm9v");
	roundtrip("foob", "Zm9vYg==", "Zm9vYg");
	roundtrip("fooba", "Zm9vYmE=", "Zm9vYmE");
	roundtrip("foobar", "Zm9vYmFy", "Zm9vYmFy");
	roundtrip("\xfb\xff", "+/8=", "-_8");

	struct strbuf sb = STRBUF_INIT;
	CHECK_INT(base64_decode(&sb, "Zm9v!", 5), -EINVAL);
	CHECK_INT(base64_decode(&sb, "Z", 1), -EINVAL);
	CHECK_INT(base64_decode(&sb, "-_8", 3), -EINVAL);   /* url alphabet */
	CHECK_INT(base64_decode(&sb, "Zh==", 4), -EINVAL);  /* stray bits */
	strbuf_release(&sb);

	/* GCS: crc32c of "hello world" is 0xc99465aa -> "yZRlqg==";
	 * md5Hash of "" is d41d8cd98f00b204e9800998ecf8427e. */
	uint32_t crc = 0;
	CHECK_INT(base64_crc32c("yZRlqg==", &crc), 0);
	CHECK_INT(crc, 0xc99465aaU);
	CHECK_INT(base64_crc32c("yZRlqgA=", &crc), -EINVAL);   /* 5 bytes */
	struct strbuf enc = STRBUF_INIT;
	base64_crc32c_encode(&enc, crc32c_update(0, "hello world", 11));
	CHECK_STR(enc.buf, "yZRlqg==");
	strbuf_release(&enc);
	unsigned char md5[16];
	CHECK_INT(base64_md5("1B2M2Y8AsgTpgAmY7PhCfg==", md5), 0);
	CHECK(md5[0] == 0xd4 && md5[1] == 0x1d && md5[15] == 0x7e);
	CHECK_INT(base64_md5("1B2M2Y8A", md5), -EINVAL);

	/* CRC-32C check value (RFC 3720 / the Castagnoli catalogue) */
	CHECK_INT(crc32c_update(0, "123456789", 9), 0xE3069283U);
	CHECK_INT(crc32c_update(0, "hello world", 11), 0xc99465aaU);
	CHECK_INT(crc32c_update(0, "", 0), 0);
	/* pieces give the CRC of the whole, whatever the split */
	char big[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = (char)(i * 7);
	uint32_t whole = crc32c_update(0, big, sizeof(big));
	for (size_t cut = 0; cut <= 1000; cut += 37)
		CHECK_INT(crc32c_update(crc32c_update(0, big, cut), big + cut,
					1000 - cut), whole);
	/* 32 zero bytes: RFC 3720 B.4 */
	char zeros[32] = { 0 };
	CHECK_INT(crc32c_update(0, zeros, 32), 0x8A9136AAU);
	return check_summary();
}
