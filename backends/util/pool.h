/*
 * pool.h - a few worker threads that take a job only when one is free.
 *
 * pool_try_submit() either hands the job to an idle worker at once or
 * refuses it; a job never waits in a queue behind others, so the caller
 * can always fall back to doing the work itself.  The router runs the
 * first request of a hedged read here, so the reader can move on to a
 * second store while the first one dawdles.
 *
 * Thread safe.  A zeroed struct pool that was never started has th NULL.
 */
#ifndef HYLAKE_POOL_H
#define HYLAKE_POOL_H

#include <pthread.h>
#include <stdbool.h>

struct job {
	struct job *next;
	void (*fn)(struct job *j);    /* runs on a worker; may free j */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned idle;            /* workers not reserved by a job */
	unsigned nthreads;
	bool stop;
	pthread_t *th;
};

void pool_start(struct pool *p, unsigned n);
/* Run j on a worker now, or return false when none is free. */
bool pool_try_submit(struct pool *p, struct job *j);
/* Let the workers finish what they run, then join them. */
void pool_stop(struct pool *p);

#endif
