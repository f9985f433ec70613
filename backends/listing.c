/*
 * listing.c - the listing rules (listing.h) over a run of entries.
 *
 *   store page --sort--> append --+--> v[head..n) --yield--> caller
 *                                 |        ^
 *                                 +--> held[]: files that a later name
 *                                      (or the end, or a direct "x/"
 *                                      question) decides
 *
 * A run is the entries not yet handed out, in byte order.  Each new name
 * is checked against the held files: in a sorted listing the held files
 * form a chain ("x", "x-1", "x-1.a", each a prefix of the next), so the
 * list is short.  The iterator yields from the front while the front is
 * decided; listing_settle() runs the same code over one page and reports
 * every entry at once.
 */
#include "backends/listing.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum item_state { ITEM_READY, ITEM_HELD, ITEM_HIDDEN };

struct item {
	struct list_entry e;      /* e.name is owned */
	enum item_state st;
	size_t src;               /* index in listing_settle()'s input */
};

struct run {
	bool sorted;              /* the store lists in byte order */
	bool hiding;              /* ... delimited by "/": a folder hides */
	struct item *v;
	size_t head, n, alloc;    /* v[head..n): not yet handed out */
	size_t *held;             /* indices in v of ITEM_HELD, ascending */
	size_t nheld, held_alloc;
	char *last_prefix;        /* the last prefix appended */
	uint64_t hidden;
};

static void run_init(struct run *r, const struct backend *b,
		     const char *delimiter)
{
	memset(r, 0, sizeof(*r));
	r->sorted = backend_has(b, BACKEND_LIST_SORTED);
	r->hiding = r->sorted && delimiter && !strcmp(delimiter, "/");
}

static void run_release(struct run *r)
{
	for (size_t i = r->head; i < r->n; i++)
		free((char *)r->v[i].e.name);
	free(r->v);
	free(r->held);
	free(r->last_prefix);
	memset(r, 0, sizeof(*r));
}

/* Forget handed-out entries, so v holds what is still to come. */
static void run_compact(struct run *r)
{
	if (r->head == 0)
		return;
	memmove(r->v, r->v + r->head, (r->n - r->head) * sizeof(*r->v));
	for (size_t k = 0; k < r->nheld; k++)
		r->held[k] -= r->head;
	r->n -= r->head;
	r->head = 0;
}

/* Decide held[k]: hidden by a folder of its name, or shown. */
static void run_decide(struct run *r, size_t k, bool hide)
{
	struct item *it = &r->v[r->held[k]];

	it->st = hide ? ITEM_HIDDEN : ITEM_READY;
	if (hide) {
		r->hidden++;
		log_debug("hiding object '%s': a folder of the same name "
			  "exists", it->e.name);
	}
	memmove(&r->held[k], &r->held[k + 1],
		(r->nheld - k - 1) * sizeof(*r->held));
	r->nheld--;
}

enum verdict { V_UNDECIDED, V_SHOWN, V_HIDDEN };

/* What name s, arriving after file h in byte order, says of h. */
static enum verdict verdict(const char *h, const char *s)
{
	size_t hl = strlen(h);

	if (strncmp(s, h, hl) != 0)
		return strcmp(s, h) > 0 ? V_SHOWN : V_UNDECIDED;
	if (s[hl] == '/')
		return V_HIDDEN;          /* "h/" or a name under it */
	return (unsigned char)s[hl] > '/' ? V_SHOWN : V_UNDECIDED;
}

/* Append *it (taking its name), applying the rules. */
static void run_append(struct run *r, struct item *it)
{
	for (size_t k = 0; k < r->nheld;) {
		enum verdict v = verdict(r->v[r->held[k]].e.name, it->e.name);
		if (v == V_UNDECIDED)
			k++;
		else
			run_decide(r, k, v == V_HIDDEN);
	}
	if (it->e.is_prefix) {
		if (r->last_prefix && !strcmp(r->last_prefix, it->e.name)) {
			free((char *)it->e.name);
			return;           /* repeated (it still decides) */
		}
		free(r->last_prefix);
		r->last_prefix = xstrdup(it->e.name);
	}
	it->st = r->hiding && !it->e.is_prefix ? ITEM_HELD : ITEM_READY;
	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 64;
		r->v = xrealloc(r->v, r->alloc * sizeof(*r->v));
	}
	if (it->st == ITEM_HELD) {
		if (r->nheld == r->held_alloc) {
			r->held_alloc = r->held_alloc ? r->held_alloc * 2 : 8;
			r->held = xrealloc(r->held,
					   r->held_alloc * sizeof(*r->held));
		}
		r->held[r->nheld++] = r->n;
	}
	r->v[r->n++] = *it;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->e.name,
		      ((const struct item *)b)->e.name);
}

/* Append a page's items (taking their names), merged into byte order
 * when the store lists sorted runs. */
static void run_add(struct run *r, struct item *pg, size_t n)
{
	if (r->sorted && n > 1)
		qsort(pg, n, sizeof(*pg), cmp_item);
	for (size_t i = 0; i < n; i++)
		run_append(r, &pg[i]);
}

/* No page follows: nothing can hide the held files any more. */
static void run_finish(struct run *r)
{
	while (r->nheld)
		run_decide(r, 0, false);
}

/* ------------------------------------------------- one page, collected */

struct page {
	struct item *v;
	size_t n, alloc;
	const char *prefix;       /* drop names outside it; NULL: keep all */
	const char *start_at;     /* drop names before it; NULL: keep all */
};

static void page_push(struct page *p, const struct list_entry *e, size_t src)
{
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 64;
		p->v = xrealloc(p->v, p->alloc * sizeof(*p->v));
	}
	struct item *it = &p->v[p->n++];
	it->e = *e;
	it->e.name = xstrdup(e->name);
	it->st = ITEM_READY;
	it->src = src;
}

static void page_release(struct page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free((char *)p->v[i].e.name);
	free(p->v);
	p->v = NULL;
	p->n = p->alloc = 0;
}

static int page_collect(void *arg, const struct list_entry *e)
{
	struct page *p = arg;

	if (p->prefix && strncmp(e->name, p->prefix, strlen(p->prefix)))
		return 0;                 /* not in this folder */
	if (p->start_at && strcmp(e->name, p->start_at) < 0)
		return 0;                 /* before where we start */
	page_push(p, e, p->n);
	return 0;
}

/* ----------------------------------------------------------- iterator */

struct listing {
	struct backend *b;
	char *prefix, *delimiter, *start_at;
	unsigned page_size, hold_max;
	struct run r;
	char *token;              /* the next page; NULL before the first */
	bool finished;            /* the last page is in the run */
	bool taken;               /* v[head] was handed out last call */
};

struct listing *listing_create(struct backend *b,
			       const struct listing_conf *conf)
{
	struct listing *l = xcalloc(1, sizeof(*l));

	l->b = b;
	l->prefix = xstrdup(conf->prefix ? conf->prefix : "");
	l->delimiter = conf->delimiter ? xstrdup(conf->delimiter) : NULL;
	l->start_at = conf->start_at ? xstrdup(conf->start_at) : NULL;
	l->page_size = conf->page_size;
	l->hold_max = conf->hold_max ? conf->hold_max : LISTING_HOLD_DEFAULT;
	run_init(&l->r, b, l->delimiter);
	return l;
}

void listing_destroy(struct listing *l)
{
	if (!l)
		return;
	run_release(&l->r);
	free(l->token);
	free(l->prefix);
	free(l->delimiter);
	free(l->start_at);
	free(l);
}

uint64_t listing_hidden(const struct listing *l)
{
	return l->r.hidden;
}

/* Fetch the next page into the run.  On error nothing changes. */
static int fetch_page(struct listing *l, const struct deadline *dl)
{
	struct page pg = { .prefix = l->prefix, .start_at = l->start_at };
	bool first = !l->token;
	struct list_req req = {
		.prefix = l->prefix, .delimiter = l->delimiter,
		.token = l->token, .max_keys = l->page_size,
		.start_at = first && backend_has(l->b, BACKEND_LIST_START_AT)
				? l->start_at : NULL,
	};
	char *next = NULL;
	int rc = backend_list(l->b, &req, page_collect, &pg, &next, dl);

	if (rc < 0) {
		page_release(&pg);
		free(next);
		return rc;
	}
	run_compact(&l->r);
	run_add(&l->r, pg.v, pg.n);
	free(pg.v);                   /* the names now belong to the run */
	free(l->token);
	l->token = next;
	if (!next) {
		l->finished = true;
		run_finish(&l->r);
	}
	return 0;
}

/* The held file at the front has too much behind it: ask for "x/". */
static int settle_front(struct listing *l, const struct deadline *dl)
{
	struct run *r = &l->r;
	struct strbuf dir = STRBUF_INIT;

	strbuf_addf(&dir, "%s/", r->v[r->held[0]].e.name);
	int rc = backend_prefix_exists(l->b, dir.buf, dl);
	strbuf_release(&dir);
	if (rc < 0)
		return rc;
	run_decide(r, 0, rc == 1);
	return 0;
}

int listing_next(struct listing *l, const struct list_entry **e,
		 const struct deadline *dl)
{
	struct run *r = &l->r;

	if (l->taken) {
		free((char *)r->v[r->head++].e.name);
		l->taken = false;
	}
	for (;;) {
		while (r->head < r->n && r->v[r->head].st == ITEM_HIDDEN)
			free((char *)r->v[r->head++].e.name);
		if (r->head < r->n && r->v[r->head].st == ITEM_READY) {
			*e = &r->v[r->head].e;
			l->taken = true;
			return 1;
		}
		if (r->head == r->n && l->finished)
			return 0;
		int rc;
		/* The front is a held file (held[0]), or nothing is left. */
		if (r->head < r->n && r->n - r->head > l->hold_max)
			rc = settle_front(l, dl);
		else
			rc = fetch_page(l, dl);
		if (rc < 0)
			return rc;
	}
}

/* ----------------------------------------------------- pages handed in */

int listing_settle(struct backend *b, const struct list_entry *held,
		   size_t nheld, const struct list_entry *page, size_t npage,
		   bool last, listing_settle_cb cb, void *arg)
{
	struct page pg = { 0 };
	struct run r;
	int rc = 0;

	for (size_t i = 0; i < nheld; i++)
		page_push(&pg, &held[i], i);
	for (size_t i = 0; i < npage; i++)
		page_push(&pg, &page[i], nheld + i);
	run_init(&r, b, "/");
	run_add(&r, pg.v, pg.n);
	free(pg.v);
	if (last)
		run_finish(&r);
	for (size_t i = 0; i < r.n && rc == 0; i++)
		if (r.v[i].st != ITEM_HIDDEN)
			rc = cb(arg, &r.v[i].e, r.v[i].src,
				r.v[i].st == ITEM_HELD);
	run_release(&r);
	return rc;
}
