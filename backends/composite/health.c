/*
 * health.c - per-store latency, circuit breaker and their figures (see
 * health.h).
 */
#include "backends/composite/health.h"
#include "backends/util/prom.h"
#include "backends/util/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define EWMA_ALPHA 0.2
#define COOLDOWN_MIN_MS 1000
#define COOLDOWN_MAX_MS 30000

void health_init(struct store_health *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->cooldown_ms = COOLDOWN_MIN_MS;
}

void health_destroy(struct store_health *h)
{
	pthread_mutex_destroy(&h->lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* h->lock held. */
static void update_p95(struct store_health *h)
{
	uint32_t v[HEALTH_RING];
	memcpy(v, h->ring_us, h->ring_n * sizeof(v[0]));
	qsort(v, h->ring_n, sizeof(v[0]), cmp_u32);
	h->p95_ns = (int64_t)v[(h->ring_n * 95) / 100] * 1000;
}

/* h->lock held. */
static void note_fastest(struct store_health *h, int64_t took_ns)
{
	if (took_ns > 0 && (!h->fastest_ns || took_ns < h->fastest_ns))
		h->fastest_ns = took_ns;
}

void health_ok(struct store_health *h, int64_t took_ns, uint64_t bytes)
{
	double ms = (double)took_ns / 1e6;
	uint64_t us = (uint64_t)took_ns / 1000;
	pthread_mutex_lock(&h->lock);
	if (took_ns >= 0) {
		h->ewma_ms = h->ring_n ? (1 - EWMA_ALPHA) * h->ewma_ms +
					 EWMA_ALPHA * ms : ms;
		h->ring_us[h->ring_pos] = us > UINT32_MAX ? UINT32_MAX
							  : (uint32_t)us;
		h->ring_pos = (h->ring_pos + 1) % HEALTH_RING;
		note_fastest(h, took_ns);
		h->timed_ns = mono_ns();
		if (h->ring_n < HEALTH_RING)
			h->ring_n++;
	}
	h->reads++;
	h->bytes += bytes;
	if (h->ring_n >= HEALTH_MIN_SAMPLES &&
	    (h->reads % 16 == 0 || !h->p95_ns))
		update_p95(h);
	h->failures = 0;
	h->faults = 0;
	h->open_until_ns = 0;
	h->cooldown_ms = COOLDOWN_MIN_MS;
	pthread_mutex_unlock(&h->lock);
}

/* One more failure in a row; opens the breaker at HEALTH_TRIP.  h->lock
 * held. */
static void failed(struct store_health *h)
{
	if (++h->failures >= HEALTH_TRIP) {
		int64_t now = mono_ns();
		if (h->open_until_ns <= now) {   /* (re)open: a new trip */
			h->open_until_ns = now + h->cooldown_ms * NS_PER_MS;
			h->trips++;
			h->cooldown_ms = h->cooldown_ms * 2 > COOLDOWN_MAX_MS
					 ? COOLDOWN_MAX_MS : h->cooldown_ms * 2;
		}
	}
}

void health_fail(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	h->errors++;
	h->faults++;
	failed(h);
	pthread_mutex_unlock(&h->lock);
}

void health_overtaken(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	failed(h);
	pthread_mutex_unlock(&h->lock);
}

bool health_blocked(struct store_health *h, int64_t now_ns)
{
	pthread_mutex_lock(&h->lock);
	bool b = h->open_until_ns > now_ns;
	pthread_mutex_unlock(&h->lock);
	return b;
}

bool health_failing(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	bool f = h->failures >= HEALTH_TRIP;
	pthread_mutex_unlock(&h->lock);
	return f;
}

bool health_suspect(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	bool f = h->faults > 0;
	pthread_mutex_unlock(&h->lock);
	return f;
}

int64_t health_p95_ns(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	int64_t p = h->ring_n >= HEALTH_MIN_SAMPLES ? h->p95_ns : 0;
	pthread_mutex_unlock(&h->lock);
	return p;
}

void health_answered(struct store_health *h, int64_t took_ns)
{
	pthread_mutex_lock(&h->lock);
	note_fastest(h, took_ns);
	pthread_mutex_unlock(&h->lock);
}

int64_t health_typical_ns(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	int64_t t = h->ring_n >= HEALTH_MIN_SAMPLES
		    ? (int64_t)(h->ewma_ms * 1e6) : 0;
	if (t < h->fastest_ns)
		t = h->fastest_ns;
	pthread_mutex_unlock(&h->lock);
	return t;
}

void health_view(struct store_health *h, struct health_view *out)
{
	int64_t now = mono_ns();
	pthread_mutex_lock(&h->lock);
	bool enough = h->ring_n >= HEALTH_MIN_SAMPLES;
	out->ewma_ms = enough ? h->ewma_ms : -1;
	out->p95_ms = enough ? (double)h->p95_ns / 1e6 : -1;
	out->timed_ns = h->timed_ns;
	out->open = h->open_until_ns > now;
	out->reads = h->reads;
	out->errors = h->errors;
	out->bytes = h->bytes;
	out->trips = h->trips;
	pthread_mutex_unlock(&h->lock);
}

void health_metrics(struct store_health *h, const char *store,
		    struct prom *p)
{
	const char *n = store;
	struct health_view v;

	health_view(h, &v);
	prom_add(p, "hylake_store_reads_total", PROM_COUNTER,
		 "reads of file bytes the store answered", "store", n,
		 (double)v.reads);
	prom_add(p, "hylake_store_read_errors_total", PROM_COUNTER,
		 "reads of file bytes that failed at the store (no answer, "
		 "reset, timeout)", "store", n, (double)v.errors);
	prom_add(p, "hylake_store_read_bytes_total", PROM_COUNTER,
		 "file bytes the store served", "store", n, (double)v.bytes);
	prom_add(p, "hylake_store_read_latency_ewma_seconds", PROM_GAUGE,
		 "moving average of the store's read latency (NaN: too few "
		 "reads yet)", "store", n, v.ewma_ms < 0 ? 0.0 / 0.0
						      : v.ewma_ms / 1e3);
	prom_add(p, "hylake_store_read_latency_p95_seconds", PROM_GAUGE,
		 "95th percentile of the store's recent read latencies (NaN: "
		 "too few reads yet)", "store", n,
		 v.p95_ms < 0 ? 0.0 / 0.0 : v.p95_ms / 1e3);
	prom_add(p, "hylake_store_breaker_open", PROM_GAUGE,
		 "1 while the circuit breaker keeps reads away from the store",
		 "store", n, v.open ? 1 : 0);
	prom_add(p, "hylake_store_breaker_trips_total", PROM_COUNTER,
		 "times the circuit breaker opened", "store", n,
		 (double)v.trips);
}
