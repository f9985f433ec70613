/*
 * listed.c - complete folder listings, as sets of name hashes (listed.h).
 *
 *   partial   listings in progress, found by the next token they await
 *   done      folder -> { began, sorted XXH3-64 hashes of its names },
 *             in a table and a list in order of completion
 */
#include "backends/composite/listed.h"
#include "backends/util/hmap.h"
#include "backends/util/strbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define PARTIAL_MAX 64            /* listings in progress kept */

struct names {
	uint64_t *h;
	size_t n, alloc;
};

struct partial {
	struct partial *next;
	char *folder;
	char *await;              /* the next token its next page is asked by */
	int64_t began_ns;
	struct names names;
};

struct done {
	struct hmap_node hn;
	struct lru_link use;
	char *folder;
	int64_t began_ns;
	struct names names;       /* sorted */
};

struct listed {
	pthread_mutex_t lock;     /* guards everything below */
	struct partial *partial;
	size_t npartial;
	struct hmap done;
	struct lru_link lru;
	size_t names, max_names;
};

static uint64_t hash_of(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct listed *listed_create(size_t max_names)
{
	struct listed *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	hmap_init(&l->done, 64);
	lru_init(&l->lru);
	l->max_names = max_names;
	return l;
}

static void partial_free(struct partial *p)
{
	free(p->folder);
	free(p->await);
	free(p->names.h);
	free(p);
}

static void done_drop(struct listed *l, struct done *d)
{
	hmap_remove(&l->done, &d->hn);
	lru_unlink(&d->use);
	l->names -= d->names.n;
	free(d->folder);
	free(d->names.h);
	free(d);
}

void listed_destroy(struct listed *l)
{
	if (!l)
		return;
	while (l->partial) {
		struct partial *p = l->partial;
		l->partial = p->next;
		partial_free(p);
	}
	for (struct lru_link *u; (u = lru_oldest(&l->lru));)
		done_drop(l, container_of(u, struct done, use));
	hmap_release(&l->done);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static struct done *done_find(struct listed *l, const char *folder)
{
	for (struct hmap_node *n = hmap_first(&l->done, hash_of(folder)); n;
	     n = hmap_next(n)) {
		struct done *d = container_of(n, struct done, hn);
		if (!strcmp(d->folder, folder))
			return d;
	}
	return NULL;
}

/* The listing p is complete: it replaces what was known of its folder.
 * Lock held; takes p. */
static void complete(struct listed *l, struct partial *p)
{
	struct done *old = done_find(l, p->folder);
	if (old)
		done_drop(l, old);
	if (p->names.n > l->max_names) {
		partial_free(p);
		return;
	}
	struct done *d = xcalloc(1, sizeof(*d));
	d->folder = p->folder;
	d->began_ns = p->began_ns;
	d->names = p->names;
	if (d->names.n)
		qsort(d->names.h, d->names.n, sizeof(uint64_t), cmp_u64);
	p->folder = NULL;
	p->names.h = NULL;
	partial_free(p);
	hmap_add(&l->done, &d->hn, hash_of(d->folder));
	lru_push(&l->lru, &d->use);
	l->names += d->names.n;
	for (struct lru_link *u; l->names > l->max_names &&
	     (u = lru_oldest(&l->lru));)
		done_drop(l, container_of(u, struct done, use));
}

void listed_page(struct listed *l, const char *folder, const char *token,
		 const char *next, const char *const *names, size_t n,
		 int64_t began_ns)
{
	struct partial *p = NULL, **pp;

	pthread_mutex_lock(&l->lock);
	if (!token) {
		p = xcalloc(1, sizeof(*p));
		p->folder = xstrdup(folder);
		p->began_ns = began_ns;
	} else {
		for (pp = &l->partial; *pp; pp = &(*pp)->next)
			if (!strcmp((*pp)->await, token) &&
			    !strcmp((*pp)->folder, folder)) {
				p = *pp;
				*pp = p->next;
				l->npartial--;
				break;
			}
	}
	if (!p)
		goto out_unlock;      /* not seen from its first page */
	for (size_t i = 0; i < n; i++) {
		if (p->names.n == p->names.alloc) {
			p->names.alloc = p->names.alloc ? 2 * p->names.alloc
							: 64;
			p->names.h = xrealloc(p->names.h, p->names.alloc *
					      sizeof(uint64_t));
		}
		p->names.h[p->names.n++] = hash_of(names[i]);
	}
	if (!next) {
		complete(l, p);
		goto out_unlock;
	}
	free(p->await);
	p->await = xstrdup(next);
	p->next = l->partial;
	l->partial = p;
	if (++l->npartial > PARTIAL_MAX) {     /* drop the oldest */
		for (pp = &l->partial; (*pp)->next; pp = &(*pp)->next)
			;
		partial_free(*pp);
		*pp = NULL;
		l->npartial--;
	}
out_unlock:
	pthread_mutex_unlock(&l->lock);
}

bool listed_lacks(struct listed *l, const char *name, int64_t since_ns)
{
	const char *slash = strrchr(name, '/');
	struct strbuf folder = STRBUF_INIT;
	bool lacks = false;

	if (slash)
		strbuf_add(&folder, name, (size_t)(slash - name) + 1);
	uint64_t h = hash_of(name);
	pthread_mutex_lock(&l->lock);
	struct done *d = done_find(l, folder.buf);
	if (d && d->began_ns > since_ns)
		lacks = !d->names.n || !bsearch(&h, d->names.h, d->names.n,
						sizeof(uint64_t), cmp_u64);
	pthread_mutex_unlock(&l->lock);
	strbuf_release(&folder);
	return lacks;
}
