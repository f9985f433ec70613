/*
 * projections.c - the columns scans of a table read (projections.h).
 *
 * A small table of the latest PROJECTION_TABLES scans and footers,
 * looked through whole under one lock: it is consulted once per handle
 * (and open) and written once per row group a handle reads and at its
 * close, never per read.
 */
#include "cache/projections.h"
#include "backends/util/strbuf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* A scan, or with ncols 0 (no scan has no columns) the table's footer. */
struct scan {
	uint64_t table;               /* XXH3 of the table's path; 0: free */
	uint32_t ncols, first;
	uint64_t used;                /* tick of the last use */
	uint64_t cols[PROJECTION_WORDS];
	uint64_t footer;              /* ncols 0: projections_footer */
};

struct projections {
	pthread_mutex_t lock;              /* guards tick and scan[] */
	uint64_t tick;
	struct scan scan[PROJECTION_TABLES];
};

struct projections *projections_create(void)
{
	struct projections *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void projections_destroy(struct projections *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Is the path component [s, e) a Hive partition folder (key=value)? */
static bool partition(const char *s, const char *e)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	return eq && eq > s && eq + 1 < e;
}

/* The hash of name's table: its folder less trailing partition folders. */
static uint64_t table_of(const char *name)
{
	const char *end = strrchr(name, '/');
	if (!end)
		end = name;
	while (end > name) {
		const char *s = end;
		while (s > name && s[-1] != '/')
			s--;
		if (!partition(s, end))
			break;
		end = s > name ? s - 1 : name;
	}
	uint64_t h = XXH3_64bits(name, (size_t)(end - name));
	return h ? h : 1;
}

/* The scan of this key, or NULL.  Lock held. */
static struct scan *find(struct projections *p, uint64_t table, uint32_t ncols,
			 uint32_t first)
{
	for (unsigned i = 0; i < PROJECTION_TABLES; i++) {
		struct scan *s = &p->scan[i];
		if (s->table == table && s->ncols == ncols && s->first == first)
			return s;
	}
	return NULL;
}

unsigned projections_seed(struct projections *p, const char *name,
			  uint32_t ncols, uint32_t first, uint64_t *cols)
{
	unsigned added = 0;
	uint64_t table = table_of(name);
	pthread_mutex_lock(&p->lock);
	struct scan *s = find(p, table, ncols, first);
	if (s) {
		s->used = ++p->tick;
		for (unsigned w = 0; w < PROJECTION_WORDS; w++) {
			added += (unsigned)__builtin_popcountll(s->cols[w] &
								~cols[w]);
			cols[w] |= s->cols[w];
		}
	}
	pthread_mutex_unlock(&p->lock);
	return added;
}

/* Are cols fewer of s's columns (a strict subset)?  Lock held. */
static bool fewer(const struct scan *s, const uint64_t *cols)
{
	bool less = false;
	for (unsigned w = 0; w < PROJECTION_WORDS; w++) {
		if (cols[w] & ~s->cols[w])
			return false;
		less |= cols[w] != s->cols[w];
	}
	return less;
}

/* The slot of this key, a free one or the least used taken for it when
 * there is none.  Lock held. */
static struct scan *slot(struct projections *p, uint64_t table, uint32_t ncols,
			 uint32_t first)
{
	struct scan *s = find(p, table, ncols, first);
	if (s)
		return s;
	s = &p->scan[0];
	for (unsigned i = 1; i < PROJECTION_TABLES && s->table; i++)
		if (!p->scan[i].table || p->scan[i].used < s->used)
			s = &p->scan[i];
	memset(s, 0, sizeof(*s));
	s->table = table;
	s->ncols = ncols;
	s->first = first;
	return s;
}

void projections_keep(struct projections *p, const char *name,
		      uint32_t ncols, uint32_t first, const uint64_t *cols,
		      bool whole)
{
	uint64_t table = table_of(name);
	pthread_mutex_lock(&p->lock);
	struct scan *s = find(p, table, ncols, first);
	if (!(s && !whole && fewer(s, cols))) {
		s = slot(p, table, ncols, first);
		s->used = ++p->tick;
		memcpy(s->cols, cols, sizeof(s->cols));
	}
	pthread_mutex_unlock(&p->lock);
}

uint64_t projections_footer(struct projections *p, const char *name)
{
	uint64_t table = table_of(name), bytes = 0;
	pthread_mutex_lock(&p->lock);
	struct scan *s = find(p, table, 0, 0);
	if (s) {
		s->used = ++p->tick;
		bytes = s->footer;
	}
	pthread_mutex_unlock(&p->lock);
	return bytes;
}

void projections_footer_keep(struct projections *p, const char *name,
			     uint64_t bytes)
{
	uint64_t table = table_of(name);
	pthread_mutex_lock(&p->lock);
	struct scan *s = slot(p, table, 0, 0);
	s->used = ++p->tick;
	if (bytes > s->footer)
		s->footer = bytes;
	pthread_mutex_unlock(&p->lock);
}
