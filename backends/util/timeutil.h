/*
 * timeutil.h - clocks, deadlines, durations and the timestamp formats of
 * the object-store protocols.  All functions are thread safe.
 */
#ifndef HYLAKE_TIMEUTIL_H
#define HYLAKE_TIMEUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL

int64_t mono_ns(void);          /* CLOCK_MONOTONIC */
/* A condition variable whose timed waits read CLOCK_MONOTONIC (as
 * mono_ns), so a change of the wall clock cannot stretch them. */
void timeutil_cond_init(pthread_cond_t *cv);
int64_t wall_ns(void);          /* CLOCK_REALTIME */

/*
 * A deadline is an absolute point on the monotonic clock.  Every backend
 * call takes one; at == 0 would mean "none", which the code never uses.
 */
/*
 * When an operation must be over: a monotonic instant, and optionally a
 * flag that, once set, ends it early (a hedged read whose twin answered
 * first).  Network calls give up with -ECANCELED when it is set.
 */
struct deadline {
	int64_t at;
	const atomic_bool *cancel;   /* NULL: never cancelled */
	/* A transport timeout is not retried within this deadline: the
	 * caller has another store to ask (a replica's share of a read). */
	bool timeout_final;
};

struct deadline deadline_in_ms(int64_t ms);
int64_t deadline_left_ms(const struct deadline *d);   /* <= 0: expired */
bool deadline_expired(const struct deadline *d);

/*
 * Parse a duration: "250ms", "5s", "2m", "1h", "1d"; a bare number means
 * seconds.  Stores milliseconds.  Returns 0 or -EINVAL.
 */
int duration_parse_ms(const char *s, int64_t *out_ms);
/* Format milliseconds as the shortest exact unit ("1500ms", "30s", "2m"). */
void duration_format(int64_t ms, char *buf, size_t len);

/* "2024-01-31T12:00:00.123Z" (RFC 3339 / ISO 8601, UTC or offset).
 * Both parsers return 0, -EINVAL, or -ERANGE for a date that
 * nanoseconds in an int64_t cannot hold (before 1678, after 2261). */
int iso8601_parse_ns(const char *s, int64_t *out_ns);
/* "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 7231 IMF-fixdate). */
int httpdate_parse_ns(const char *s, int64_t *out_ns);

#endif
