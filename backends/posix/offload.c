/*
 * offload.c - blocking calls on workers, waited for with a deadline
 * (offload.h).
 *
 * One queue per pool.  A worker takes the head call, runs it without the
 * lock, marks it done and wakes its waiter.  offload_run() starts a new
 * detached worker whenever no idle one is waiting, so a call never sits
 * in the queue behind a worker that the kernel holds; the only bound is
 * on workers whose caller has left (stuck), and reaching it fails new
 * calls at once.  Workers and the creator each hold a reference to the
 * pool, so a worker that comes back from a dead NFS server long after
 * the store was destroyed still finds its pool.
 */
#include "backends/posix/offload.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OFFLOAD_IDLE_NS (10 * NS_PER_SEC)   /* an idle worker leaves */
#define OFFLOAD_CANCEL_SLICE_NS (50 * NS_PER_MS)

struct offload {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* a call was queued, or stop (monotonic) */
	pthread_cond_t done;      /* a call finished (monotonic) */
	struct offload_call *head, *tail;   /* guarded by lock */
	unsigned idle;            /* workers waiting for a call; lock */
	unsigned queued;          /* calls no worker has taken; lock */
	unsigned stuck;           /* running calls nobody waits for; lock */
	unsigned max_stuck;       /* immutable */
	bool stop;                /* guarded by lock */
	atomic_int refs;          /* the creator and each worker */
};

static void offload_put(struct offload *ol)
{
	if (atomic_fetch_sub(&ol->refs, 1) != 1)
		return;
	pthread_cond_destroy(&ol->work);
	pthread_cond_destroy(&ol->done);
	pthread_mutex_destroy(&ol->lock);
	free(ol);
}

void offload_call_put(struct offload_call *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		c->release(c);
}

struct offload *offload_create(unsigned max_stuck)
{
	struct offload *ol = xcalloc(1, sizeof(*ol));
	pthread_mutex_init(&ol->lock, NULL);
	timeutil_cond_init(&ol->work);
	timeutil_cond_init(&ol->done);
	ol->max_stuck = max_stuck ? max_stuck : 1;
	atomic_init(&ol->refs, 1);
	return ol;
}

static struct timespec ts_of(int64_t ns)
{
	struct timespec ts = { ns / NS_PER_SEC, ns % NS_PER_SEC };
	return ts;
}

/* Take the next call, or NULL when the worker should leave.  lock held. */
static struct offload_call *next_call(struct offload *ol)
{
	int64_t until = mono_ns() + OFFLOAD_IDLE_NS;
	ol->idle++;
	while (!ol->head && !ol->stop) {
		struct timespec ts = ts_of(until);
		if (pthread_cond_timedwait(&ol->work, &ol->lock, &ts) ==
		    ETIMEDOUT && !ol->head)
			break;
	}
	ol->idle--;
	struct offload_call *c = ol->head;
	if (c && !ol->stop) {
		ol->queued--;
		ol->head = c->next;
		if (!ol->head)
			ol->tail = NULL;
		return c;
	}
	return NULL;
}

static void *offload_main(void *arg)
{
	struct offload *ol = arg;
	pthread_mutex_lock(&ol->lock);
	struct offload_call *c;
	while ((c = next_call(ol))) {
		pthread_mutex_unlock(&ol->lock);
		int rc = c->fn(c);
		pthread_mutex_lock(&ol->lock);
		c->rc = rc;
		c->done = true;
		if (c->abandoned)
			ol->stuck--;
		pthread_cond_broadcast(&ol->done);
		pthread_mutex_unlock(&ol->lock);
		offload_call_put(c);
		pthread_mutex_lock(&ol->lock);
	}
	pthread_mutex_unlock(&ol->lock);
	offload_put(ol);
	return NULL;
}

/* Queue c and make sure a worker will take it.  lock held.  False when
 * no thread could be started and none is idle. */
static bool enqueue(struct offload *ol, struct offload_call *c)
{
	if (ol->queued >= ol->idle) {   /* every idle worker is spoken for */
		pthread_attr_t a;
		pthread_t t;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		atomic_fetch_add(&ol->refs, 1);
		int e = pthread_create(&t, &a, offload_main, ol);
		pthread_attr_destroy(&a);
		if (e) {
			atomic_fetch_sub(&ol->refs, 1);
			log_warn("posix: cannot start a worker: %s", strerror(e));
			return false;
		}
	}
	ol->queued++;
	c->next = NULL;
	if (ol->tail)
		ol->tail->next = c;
	else
		ol->head = c;
	ol->tail = c;
	pthread_cond_signal(&ol->work);
	return true;
}

/* Take c out of the queue if no worker has it yet.  lock held. */
static bool unqueue(struct offload *ol, struct offload_call *c)
{
	for (struct offload_call **pp = &ol->head; *pp; pp = &(*pp)->next) {
		if (*pp != c)
			continue;
		*pp = c->next;
		ol->queued--;
		if (ol->tail == c) {
			ol->tail = NULL;
			for (struct offload_call *q = ol->head; q; q = q->next)
				ol->tail = q;
		}
		return true;
	}
	return false;
}

int offload_run(struct offload *ol, struct offload_call *c,
		const struct deadline *dl)
{
	c->ol = ol;
	c->done = c->abandoned = false;
	atomic_init(&c->refs, 1);

	pthread_mutex_lock(&ol->lock);
	if (ol->stop) {
		pthread_mutex_unlock(&ol->lock);
		return -ESHUTDOWN;
	}
	if (ol->stuck >= ol->max_stuck) {
		pthread_mutex_unlock(&ol->lock);
		return -ETIMEDOUT;   /* the store is not answering: fail fast */
	}
	atomic_fetch_add(&c->refs, 1);      /* the worker's */
	if (!enqueue(ol, c)) {
		atomic_fetch_sub(&c->refs, 1);
		pthread_mutex_unlock(&ol->lock);
		return -EAGAIN;
	}
	int rc = 0;
	while (!c->done) {
		int64_t now = mono_ns(), until = dl->at;
		if (dl->cancel && atomic_load(dl->cancel)) {
			rc = -ECANCELED;
			break;
		}
		if (now >= dl->at) {
			rc = -ETIMEDOUT;
			break;
		}
		if (dl->cancel && now + OFFLOAD_CANCEL_SLICE_NS < until)
			until = now + OFFLOAD_CANCEL_SLICE_NS;
		struct timespec ts = ts_of(until);
		pthread_cond_timedwait(&ol->done, &ol->lock, &ts);
	}
	if (c->done) {
		rc = c->rc;
	} else if (unqueue(ol, c)) {
		atomic_fetch_sub(&c->refs, 1);  /* never reached a worker */
	} else {
		c->abandoned = true;
		ol->stuck++;
	}
	pthread_mutex_unlock(&ol->lock);
	return rc;
}

void offload_detach(struct offload *ol, struct offload_call *c)
{
	c->ol = ol;
	c->done = false;
	c->abandoned = true;
	atomic_init(&c->refs, 1);           /* the worker's only */
	pthread_mutex_lock(&ol->lock);
	bool queued = !ol->stop && enqueue(ol, c);
	if (queued)
		ol->stuck++;
	pthread_mutex_unlock(&ol->lock);
	if (!queued) {
		/* No worker: run it here rather than leak what it closes. */
		c->fn(c);
		offload_call_put(c);
	}
}

unsigned offload_stuck(struct offload *ol)
{
	pthread_mutex_lock(&ol->lock);
	unsigned n = ol->stuck;
	pthread_mutex_unlock(&ol->lock);
	return n;
}

void offload_destroy(struct offload *ol)
{
	pthread_mutex_lock(&ol->lock);
	ol->stop = true;
	/* Calls still queued never ran and never will. */
	struct offload_call *c = ol->head;
	ol->head = ol->tail = NULL;
	ol->queued = 0;
	pthread_cond_broadcast(&ol->work);
	pthread_mutex_unlock(&ol->lock);
	while (c) {
		struct offload_call *next = c->next;
		offload_call_put(c);
		c = next;
	}
	offload_put(ol);
}
