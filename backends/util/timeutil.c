/*
 * timeutil.c - clocks, deadlines, durations, protocol timestamps.
 */
#include "backends/util/timeutil.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

void timeutil_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

struct deadline deadline_in_ms(int64_t ms)
{
	struct deadline d = { .at = mono_ns() + ms * NS_PER_MS };
	return d;
}

int64_t deadline_left_ms(const struct deadline *d)
{
	return (d->at - mono_ns()) / NS_PER_MS;
}

bool deadline_expired(const struct deadline *d)
{
	return mono_ns() >= d->at;
}

int duration_parse_ms(const char *s, int64_t *out_ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	size_t ulen = strlen(end);
	while (ulen && isspace((unsigned char)end[ulen - 1]))
		ulen--;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].unit) == ulen &&
		    strncmp(end, units[i].unit, ulen) == 0) {
			double ms = v * (double)units[i].ms;
			if (ms > 1e15)
				return -ERANGE;
			*out_ms = (int64_t)(ms + 0.5);
			return 0;
		}
	}
	return -EINVAL;
}

void duration_format(int64_t ms, char *buf, size_t len)
{
	if (ms % 3600000 == 0 && ms)
		snprintf(buf, len, "%" PRId64 "h", ms / 3600000);
	else if (ms % 60000 == 0 && ms)
		snprintf(buf, len, "%" PRId64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRId64 "ms", ms);
}

/*
 * sec seconds plus frac_ns (< 1 s) since the epoch as nanoseconds.
 * Nanoseconds in an int64_t reach 1677..2262; a server's date outside
 * that (year 9999, say) is -ERANGE, never a signed overflow.
 */
static int seconds_to_ns(int64_t sec, int64_t frac_ns, int64_t *out_ns)
{
	const int64_t lim = INT64_MAX / NS_PER_SEC - 1;
	if (sec > lim || sec < -lim)
		return -ERANGE;
	*out_ns = sec * NS_PER_SEC + frac_ns;
	return 0;
}

/* Are p[0] and p[1] digits?  p[1] is read only when p[0] is one. */
static bool two_digits(const char *p)
{
	return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]);
}

int iso8601_parse_ns(const char *s, int64_t *out_ns)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	int64_t frac_ns = 0;
	if (*p == '.') {
		int64_t scale = NS_PER_SEC / 10;
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			frac_ns += (*p - '0') * scale;
	}
	int64_t offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		/* exactly "[+-]HH:MM"; each byte is checked before the next
		 * is read, so a short string ends the test at its NUL */
		if (!two_digits(p + 1) || p[3] != ':' || !two_digits(p + 4))
			return -EINVAL;
		int hh = (p[1] - '0') * 10 + (p[2] - '0');
		int mm = (p[4] - '0') * 10 + (p[5] - '0');
		if (hh > 23 || mm > 59)
			return -EINVAL;
		offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	return seconds_to_ns((int64_t)timegm(&tm) - offset, frac_ns, out_ns);
}

int httpdate_parse_ns(const char *s, int64_t *out_ns)
{
	/* curl's parser: every HTTP date form, whatever the locale */
	time_t t = curl_getdate(s, NULL);
	if (t == (time_t)-1)
		return -EINVAL;
	return seconds_to_ns((int64_t)t, 0, out_ns);
}
