/*
 * health.h - how one store has been doing: read latency (an EWMA and a
 * p95 over recent reads), and a circuit breaker that stops sending reads
 * to a store that keeps failing.
 *
 * Breaker: HEALTH_TRIP consecutive failures open it for a cooldown (1 s,
 * doubling up to 30 s while failures go on); after the cooldown reads are
 * let through again, and the first success closes it.  A failure is a
 * read or an open (HEAD) the store did not answer properly (refused,
 * reset, timed out: a fault), or a read overtaken by a hedge to another
 * store before it answered.  Only a read that returns bytes counts as a
 * success: a store that answers HEADs but never delivers a body is still
 * failing.
 *
 * The router ranks replicas and times its hedges with these figures, and
 * status/metrics report them.  Thread safe.
 */
#ifndef HYLAKE_HEALTH_H
#define HYLAKE_HEALTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HEALTH_RING 128          /* recent read latencies kept for p95 */
#define HEALTH_MIN_SAMPLES 16    /* below this, no ranking or hedging */
#define HEALTH_TRIP 3            /* consecutive failures that open it */

struct store_health {
	pthread_mutex_t lock;
	double ewma_ms;
	uint32_t ring_us[HEALTH_RING];
	unsigned ring_n, ring_pos;
	int64_t p95_ns;              /* recomputed every 16 samples */
	int64_t fastest_ns;          /* of any answer; 0: none yet */
	int64_t timed_ns;            /* monotonic, of the last timed read */
	int failures;                /* consecutive, of either kind */
	int faults;                  /* consecutive faults (not overtakes) */
	int64_t open_until_ns;       /* monotonic; 0 when closed */
	int64_t cooldown_ms;
	/* Counters, for status and metrics. */
	uint64_t reads, errors, bytes, trips;
};

/* A copy of the figures at one moment. */
struct health_view {
	double ewma_ms;              /* < 0: too few samples */
	double p95_ms;               /* < 0: too few samples */
	int64_t timed_ns;            /* monotonic, of the last timed read;
					0: none */
	bool open;                   /* the breaker keeps reads away */
	uint64_t reads, errors, bytes, trips;
};

void health_init(struct store_health *h);
void health_destroy(struct store_health *h);

/* A read that returned bytes, and how long it took; took_ns < 0: a read
 * whose time says nothing of the store's latency (it also verified a
 * whole copy), counted but not timed. */
void health_ok(struct store_health *h, int64_t took_ns, uint64_t bytes);
/* A read or open that failed because the store did not answer properly
 * (see above). */
void health_fail(struct store_health *h);
/* A read another store answered first, before this one did.  It counts
 * toward the breaker but does not make the store suspect: a slow store
 * loses hedges without being down. */
void health_overtaken(struct store_health *h);

/* Is the breaker open (reads should go elsewhere) at monotonic now? */
bool health_blocked(struct store_health *h, int64_t now_ns);
/* Has the store failed HEALTH_TRIP times in a row, with no success
 * since?  True while the breaker is open and also once its cooldown has
 * passed but no trial read has succeeded yet: the store is down as far
 * as anyone knows. */
bool health_failing(struct store_health *h);
/* Has the store had a fault since its last good read?  (One is enough:
 * the router then stops waiting on it past its expected latency without
 * spending the hedge budget.) */
bool health_suspect(struct store_health *h);
/* p95 of recent reads, ns; 0 when too few samples. */
int64_t health_p95_ns(struct store_health *h);
/* A request of another kind (a stat, an open, a listing) the store
 * answered, and its time: the fastest answer is a floor on what any
 * request to it takes, a read too. */
void health_answered(struct store_health *h, int64_t took_ns);
/* What a read of the store typically takes as far as known, ns: the
 * EWMA of its reads, and never less than its fastest answer; 0 when
 * neither is known. */
int64_t health_typical_ns(struct store_health *h);

void health_view(struct store_health *h, struct health_view *out);

struct prom;
/* Add h's figures to p, labelled store="<store>". */
void health_metrics(struct store_health *h, const char *store,
		    struct prom *p);

#endif
