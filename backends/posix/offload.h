/*
 * offload.h - run a blocking file-system call on a worker thread and wait
 * for it no longer than a deadline.
 *
 * A posix store is usually an NFS mount, and a hard-mounted NFS whose
 * server is gone blocks open, stat, getxattr, read and readdir forever:
 * no timeout reaches into the kernel.  So the posix store never makes
 * such a call on the caller's thread.  It hands the call to a worker and
 * waits with the caller's deadline; when the deadline passes the caller
 * gets -ETIMEDOUT and leaves, and the worker finishes on its own whenever
 * the kernel lets it go.
 *
 * Ownership.  A call is reference counted: one reference for the caller,
 * one for the worker.  Whatever the worker touches must belong to the
 * call (copies of the inputs, buffers it allocates, descriptors it holds
 * a reference to), never to the caller's stack or buffers, since the
 * caller may have gone.  The last reference runs call->release, which
 * frees the call and anything the caller did not take out of it.
 *
 * Bounds.  A call whose caller gave up is "stuck".  At most max_stuck
 * calls may be stuck at once; beyond that offload_run() fails at once
 * with -ETIMEDOUT rather than parking yet another thread on a dead store.
 * Other workers are started on demand (one per call in flight, so no
 * call ever waits behind a stuck one) and leave after a while idle.
 *
 * Thread safety: all functions are safe to call from any thread.
 */
#ifndef HYLAKE_OFFLOAD_H
#define HYLAKE_OFFLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "backends/util/timeutil.h"

struct offload;

struct offload_call {
	/* Set by the caller before offload_run(). */
	int (*fn)(struct offload_call *c);     /* runs on a worker */
	void (*release)(struct offload_call *c); /* frees c: last reference */

	/* Private to offload.c. */
	struct offload_call *next;
	struct offload *ol;
	atomic_int refs;
	bool done;                /* guarded by ol->lock */
	bool abandoned;           /* guarded by ol->lock */
	int rc;                   /* fn's result, valid once done */
};

/* A pool for one store.  NULL on allocation failure never happens
 * (xcalloc aborts).  max_stuck >= 1. */
struct offload *offload_create(unsigned max_stuck);
/*
 * Stop taking calls and drop the creator's reference.  Idle workers
 * leave; a stuck worker keeps the pool alive until its call returns, then
 * frees it.  Never blocks.
 */
void offload_destroy(struct offload *ol);

/*
 * Run c->fn on a worker and wait until it returns or dl passes (or
 * dl->cancel is set).  Returns fn's result, -ETIMEDOUT when dl passed
 * (or too many calls are stuck already), -ECANCELED when cancelled,
 * -ESHUTDOWN after offload_destroy().  In every case the caller must
 * then drop its reference with offload_call_put(c), after taking what it
 * wants out of c (only when the result is fn's).
 */
int offload_run(struct offload *ol, struct offload_call *c,
		const struct deadline *dl);

/*
 * Run c->fn on a worker and do not wait for it (closing a descriptor:
 * an NFS close can block too).  Takes ownership of c.  Never blocks; c is
 * released without running when the pool is stopped.
 */
void offload_detach(struct offload *ol, struct offload_call *c);

/* Drop the caller's reference; the last one runs c->release(c). */
void offload_call_put(struct offload_call *c);

/* Calls whose caller gave up and whose worker has not returned yet. */
unsigned offload_stuck(struct offload *ol);

#endif
