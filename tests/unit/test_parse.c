/* Digits-only numbers from servers. */
#include "backends/util/parse.h"
#include "tests/unit/check.h"

#include <stdint.h>

int main(void)
{
	uint64_t v = 7;
	const char *p;

	CHECK(parse_u64_str("0", &v));                  CHECK_INT(v, 0);
	CHECK(parse_u64_str("1048576", &v));            CHECK_INT(v, 1048576);
	CHECK(parse_u64_str("18446744073709551615", &v));
	CHECK(v == UINT64_MAX);
	v = 7;
	/* everything strtoull() lets through and a server must not send */
	const char *bad[] = { "", " 1", "-1", " -1", "+1", "1 ", "0x10", "1e3",
			      "18446744073709551616", "99999999999999999999",
			      "\t5", "5\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!parse_u64_str(bad[i], &v));
		CHECK_INT(v, 7);                       /* untouched */
	}
	CHECK(!parse_u64_digits("1\0" "2", 3, &v));    /* a NUL is junk */
	CHECK(parse_u64_digits("123abc", 3, &v));      CHECK_INT(v, 123);

	p = "12-34";
	CHECK(parse_u64_prefix(&p, &v));               CHECK_INT(v, 12);
	CHECK_STR(p, "-34");
	CHECK(!parse_u64_prefix(&p, &v));              CHECK_STR(p, "-34");
	p = "99999999999999999999/1";
	CHECK(!parse_u64_prefix(&p, &v));
	CHECK_STR(p, "99999999999999999999/1");
	return check_summary();
}
