/* Durations and protocol timestamps. */
#include "backends/util/timeutil.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	int64_t ms, ns;
	char buf[32];

	CHECK_INT(duration_parse_ms("5s", &ms), 0);   CHECK_INT(ms, 5000);
	CHECK_INT(duration_parse_ms("250ms", &ms), 0); CHECK_INT(ms, 250);
	CHECK_INT(duration_parse_ms("2m", &ms), 0);   CHECK_INT(ms, 120000);
	CHECK_INT(duration_parse_ms("1h", &ms), 0);   CHECK_INT(ms, 3600000);
	CHECK_INT(duration_parse_ms("1.5s", &ms), 0); CHECK_INT(ms, 1500);
	CHECK_INT(duration_parse_ms("30", &ms), 0);   CHECK_INT(ms, 30000);
	CHECK_INT(duration_parse_ms(" 10 s ", &ms), 0); CHECK_INT(ms, 10000);
	CHECK_INT(duration_parse_ms("", &ms), -EINVAL);
	CHECK_INT(duration_parse_ms("s", &ms), -EINVAL);
	CHECK_INT(duration_parse_ms("-1s", &ms), -EINVAL);
	CHECK_INT(duration_parse_ms("5 fortnights", &ms), -EINVAL);
	CHECK_INT(duration_parse_ms("5sec", &ms), -EINVAL);

	duration_format(30000, buf, sizeof(buf));   CHECK_STR(buf, "30s");
	duration_format(1500, buf, sizeof(buf));    CHECK_STR(buf, "1500ms");
	duration_format(120000, buf, sizeof(buf));  CHECK_STR(buf, "2m");

	CHECK_INT(iso8601_parse_ns("1970-01-01T00:00:01Z", &ns), 0);
	CHECK_INT(ns, 1000000000LL);
	CHECK_INT(iso8601_parse_ns("2024-01-31T12:00:00.123Z", &ns), 0);
	CHECK_INT(ns, 1706702400123000000LL);
	CHECK_INT(iso8601_parse_ns("2024-01-31T13:00:00.5+01:00", &ns), 0);
	CHECK_INT(ns, 1706702400500000000LL);
	CHECK(iso8601_parse_ns("2024-01-31", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00Zjunk", &ns) < 0);
	/* The offset is exactly [+-]HH:MM: nothing shorter (the parser
	 * used to step 6 bytes past a short one), no signs or spaces in
	 * its fields, no hour past 23. */
	CHECK_INT(iso8601_parse_ns("2024-01-31T11:00:00-01:00", &ns), 0);
	CHECK_INT(ns, 1706702400000000000LL);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+1:2", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+-1:00", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+ 1: 2", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+0100", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+01:00x", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+24:00", &ns) < 0);
	CHECK(iso8601_parse_ns("2024-01-31T12:00:00+01:60", &ns) < 0);
	{
		/* a short offset at the very end of a heap buffer */
		char *heap = strdup("2024-01-31T12:00:00+1:2");
		CHECK(iso8601_parse_ns(heap, &ns) < 0);
		free(heap);
	}

	/* dates nanoseconds cannot hold: refused, not overflowed */
	CHECK_INT(iso8601_parse_ns("9999-12-31T23:59:59Z", &ns), -ERANGE);
	CHECK_INT(iso8601_parse_ns("0001-01-01T00:00:00Z", &ns), -ERANGE);
	CHECK_INT(iso8601_parse_ns("2261-12-31T23:59:59Z", &ns), 0);
	CHECK_INT(httpdate_parse_ns("Fri, 31 Dec 9999 23:59:59 GMT", &ns),
		  -ERANGE);

	CHECK_INT(httpdate_parse_ns("Wed, 21 Oct 2015 07:28:00 GMT", &ns), 0);
	CHECK_INT(ns, 1445412480LL * 1000000000LL);
	CHECK(httpdate_parse_ns("21/10/2015", &ns) < 0);
	/* the obsolete forms HTTP still allows (RFC 9110 5.6.7) */
	CHECK_INT(httpdate_parse_ns("Sunday, 06-Nov-94 08:49:37 GMT", &ns), 0);
	CHECK_INT(ns, 784111777LL * 1000000000LL);
	CHECK_INT(httpdate_parse_ns("Sun Nov  6 08:49:37 1994", &ns), 0);
	CHECK_INT(ns, 784111777LL * 1000000000LL);

	struct deadline d = deadline_in_ms(1000);
	CHECK(!deadline_expired(&d));
	CHECK(deadline_left_ms(&d) > 900);
	d = deadline_in_ms(-1);
	CHECK(deadline_expired(&d));
	return check_summary();
}
