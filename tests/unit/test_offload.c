/*
 * test_offload.c - blocking calls on workers (backends/posix/offload.h):
 * a call that never returns costs its caller no more than its deadline,
 * later calls are not stuck behind it, the number stuck is bounded (then
 * calls fail at once), and a stuck call's memory is freed by its worker
 * when it finally returns (ASan would see a leak or a use after free).
 */
#include "backends/posix/offload.h"
#include "backends/util/strbuf.h"
#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int released;

struct tcall {
	struct offload_call oc;
	bool block;
	int *out;                 /* owned by the call */
};

static int tcall_fn(struct offload_call *oc)
{
	struct tcall *c = (struct tcall *)oc;
	if (c->block) {
		pthread_mutex_lock(&gate_lock);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_lock);
		pthread_mutex_unlock(&gate_lock);
	}
	*c->out = 42;             /* written after the caller left */
	return 7;
}

static void tcall_release(struct offload_call *oc)
{
	struct tcall *c = (struct tcall *)oc;
	free(c->out);
	free(c);
	atomic_fetch_add(&released, 1);
}

static struct tcall *tcall_new(bool block)
{
	struct tcall *c = xcalloc(1, sizeof(*c));
	c->oc.fn = tcall_fn;
	c->oc.release = tcall_release;
	c->block = block;
	c->out = xcalloc(1, sizeof(int));
	return c;
}

static int run_one(struct offload *ol, bool block, int64_t ms, int64_t *took)
{
	struct tcall *c = tcall_new(block);
	struct deadline dl = deadline_in_ms(ms);
	int64_t t0 = mono_ns();
	int rc = offload_run(ol, &c->oc, &dl);
	*took = (mono_ns() - t0) / NS_PER_MS;
	if (rc == 7)
		CHECK_INT(*c->out, 42);
	offload_call_put(&c->oc);
	return rc;
}

int main(void)
{
	struct offload *ol = offload_create(3);
	int64_t took;

	CHECK_INT(run_one(ol, false, 1000, &took), 7);

	/* Three calls hang: each caller leaves at its deadline. */
	for (int i = 0; i < 3; i++) {
		CHECK_INT(run_one(ol, true, 100, &took), -ETIMEDOUT);
		CHECK(took >= 90 && took < 1000);
	}
	CHECK_INT(offload_stuck(ol), 3);
	/* Bound reached: the next call fails at once, without a thread. */
	CHECK_INT(run_one(ol, false, 5000, &took), -ETIMEDOUT);
	CHECK(took < 100);

	/* The store answers again: stuck workers finish and free their calls. */
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_lock);
	for (int i = 0; i < 200 && offload_stuck(ol); i++)
		usleep(10000);
	CHECK_INT(offload_stuck(ol), 0);
	CHECK_INT(run_one(ol, false, 1000, &took), 7);

	/* A detached call runs without anyone waiting for it. */
	offload_detach(ol, &tcall_new(false)->oc);
	/* Every call, stuck ones too, freed once: a worker drops its
	 * reference just after marking its call done, so wait a little. */
	for (int i = 0; i < 200 && atomic_load(&released) < 7; i++)
		usleep(10000);
	CHECK_INT(atomic_load(&released), 7);

	offload_destroy(ol);
	usleep(50000);            /* idle workers leave and drop the pool */
	return check_summary();
}
