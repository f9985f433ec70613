/*
 * pool.c - worker threads that take a job only when one is free (pool.h).
 */
#include "backends/util/pool.h"
#include "backends/util/strbuf.h"

#include <stdlib.h>
#include <string.h>

static void *pool_main(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->lock);
		if (!p->head)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->fn(j);
		pthread_mutex_lock(&p->lock);
		p->idle++;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void pool_start(struct pool *p, unsigned n)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->th = xcalloc(n ? n : 1, sizeof(*p->th));
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&p->th[p->nthreads], NULL, pool_main, p) == 0)
			p->nthreads++;
	p->idle = p->nthreads;
}

bool pool_try_submit(struct pool *p, struct job *j)
{
	pthread_mutex_lock(&p->lock);
	if (!p->idle || p->stop) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	p->idle--;
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	return true;
}

void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
}
