/*
 * dirstream.c - streaming folder listings.
 *
 *   store page --sort--> classify --+--> folders ----------------> items
 *                                   +--> objects --> held --------^
 *
 * Sorted stores list "x", then "x!..".."x.." names, then "x/": an object
 * "x" is held back until a later name shows whether "x/" exists.  A name
 * greater than "x/" means no folder (release x); "x/" itself means the
 * folder wins (drop x).  If too many names pile up, the oldest is settled
 * with a one-key listing of "x/".
 */
#include "fs/dirstream.h"
#include "fs/names.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HELD_MAX 64

struct dirstream {
	struct backend *b;
	char *prefix;              /* "" or "a/b/" */
	unsigned page_size;
	/* Delivered-or-ready entries: items[head..n) are replayable/ready;
	 * items[i] has position base + i. */
	struct dir_item *items;
	size_t n, alloc, head;
	uint64_t base;
	/* Objects that may yet turn out to be folders, in arrival order. */
	struct dir_item held[HELD_MAX];
	size_t nheld;
	char *token;               /* next page; NULL before first / at end */
	char *last_folder;         /* the greatest folder delivered so far */
	bool finished;
	uint64_t hidden;
	const struct deadline *dl; /* of the call in progress */
};

static void item_free(struct dir_item *it)
{
	free(it->name);
	it->name = NULL;
}

static void push_item(struct dirstream *ds, struct dir_item *it)
{
	if (ds->n == ds->alloc) {
		ds->alloc = ds->alloc ? ds->alloc * 2 : 256;
		ds->items = xrealloc(ds->items, ds->alloc * sizeof(*ds->items));
	}
	ds->items[ds->n++] = *it;
}

/* Is there a folder "seg/" under the prefix?  On error assume there is
 * none (the object stays visible). */
static bool folder_exists(struct dirstream *ds, const char *seg)
{
	struct strbuf p = STRBUF_INIT;
	strbuf_addf(&p, "%s%s/", ds->prefix, seg);
	int rc = backend_prefix_exists(ds->b, p.buf, ds->dl);
	strbuf_release(&p);
	return rc == 1;
}

static void release_held(struct dirstream *ds, size_t i)
{
	push_item(ds, &ds->held[i]);
	memmove(&ds->held[i], &ds->held[i + 1],
		(ds->nheld - i - 1) * sizeof(ds->held[0]));
	ds->nheld--;
}

static void drop_held(struct dirstream *ds, size_t i)
{
	log_debug("hiding object '%s%s': a folder of the same name exists",
		  ds->prefix, ds->held[i].name);
	ds->hidden++;
	item_free(&ds->held[i]);
	memmove(&ds->held[i], &ds->held[i + 1],
		(ds->nheld - i - 1) * sizeof(ds->held[0]));
	ds->nheld--;
}

/* A new sorted name arrived: settle held objects it decides. */
static void settle_held(struct dirstream *ds, const char *seg, bool is_folder)
{
	size_t slen = strlen(seg);
	for (size_t i = 0; i < ds->nheld;) {
		const char *h = ds->held[i].name;
		size_t hlen = strlen(h);
		int c = strncmp(seg, h, hlen < slen ? hlen : slen);
		if (is_folder && slen == hlen && c == 0) {
			drop_held(ds, i);          /* "x/" exists: folder wins */
			continue;
		}
		/* seg > h + "/" in byte order?  Then h has no folder. */
		bool after;
		if (c != 0)
			after = c > 0;
		else if (slen <= hlen)
			after = false;
		else
			after = (unsigned char)seg[hlen] > '/';
		if (after)
			release_held(ds, i);
		else
			i++;
	}
}

static int on_entry(void *arg, const struct list_entry *e)
{
	struct dirstream *ds = arg;
	size_t plen = strlen(ds->prefix);
	const char *seg = e->name + plen;
	size_t slen = strlen(seg);

	if (strncmp(e->name, ds->prefix, plen) != 0)
		return 0;                  /* not ours: ignore */
	if (e->is_prefix && slen && seg[slen - 1] == '/')
		slen--;
	if (!e->is_prefix && slen == 0)
		return 0;                  /* the folder's own marker */
	if (!names_segment_ok(seg, slen)) {
		ds->hidden++;
		log_debug("hiding unsafe name '%s'", e->name);
		return 0;
	}
	/* A page boundary inside a folder's names can make a store send
	 * that folder again on the next page (GCS does); sorted names mean
	 * the repeat can only be the last folder delivered. */
	if (e->is_prefix && ds->last_folder &&
	    strlen(ds->last_folder) == slen &&
	    memcmp(ds->last_folder, seg, slen) == 0)
		return 0;
	struct dir_item it = { .name = xstrndup(seg, slen), .info = e->info };
	it.info.is_dir = e->is_prefix;
	if (it.info.is_dir) {
		free(ds->last_folder);
		ds->last_folder = xstrdup(it.name);
	}
	if (backend_has(ds->b, BACKEND_LIST_SORTED))
		settle_held(ds, it.name, it.info.is_dir);
	if (!backend_has(ds->b, BACKEND_LIST_SORTED) || it.info.is_dir) {
		push_item(ds, &it);
		return 0;
	}
	if (ds->nheld == HELD_MAX) {
		/* Settle the oldest directly rather than hold without bound. */
		if (folder_exists(ds, ds->held[0].name))
			drop_held(ds, 0);
		else
			release_held(ds, 0);
	}
	ds->held[ds->nheld++] = it;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name,
		      ((const struct list_entry *)b)->name);
}

/* Collect a page, sort it (stores give objects and folders as two sorted
 * runs), then classify in order. */
struct page {
	struct list_entry *e;
	size_t n, alloc;
};

static int collect(void *arg, const struct list_entry *e)
{
	struct page *p = arg;
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 256;
		p->e = xrealloc(p->e, p->alloc * sizeof(*p->e));
	}
	p->e[p->n] = *e;
	p->e[p->n].name = xstrdup(e->name);
	p->n++;
	return 0;
}

static int fetch_page(struct dirstream *ds)
{
	struct page pg = { 0 };
	char *next = NULL;
	struct list_req req = { .prefix = ds->prefix, .delimiter = "/",
				.token = ds->token,
				.max_keys = ds->page_size };
	int rc = backend_list(ds->b, &req, collect, &pg, &next, ds->dl);
	if (rc == 0) {
		if (backend_has(ds->b, BACKEND_LIST_SORTED) && pg.n > 1)   /* pg.e is NULL at 0 */
			qsort(pg.e, pg.n, sizeof(*pg.e), cmp_name);
		for (size_t i = 0; i < pg.n; i++)
			on_entry(ds, &pg.e[i]);
		free(ds->token);
		ds->token = next;
		if (!next) {
			ds->finished = true;
			while (ds->nheld)
				release_held(ds, 0);
		}
	}
	for (size_t i = 0; i < pg.n; i++)
		free((char *)pg.e[i].name);
	free(pg.e);
	return rc;
}

struct dirstream *dirstream_create(struct backend *b, const char *dir,
				   unsigned page_size)
{
	struct dirstream *ds = xcalloc(1, sizeof(*ds));
	struct strbuf p = STRBUF_INIT;

	ds->b = b;
	if (*dir)
		strbuf_addf(&p, "%s/", dir);
	ds->prefix = strbuf_detach(&p, NULL);
	ds->page_size = page_size;
	return ds;
}

static void reset(struct dirstream *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		item_free(&ds->items[i]);
	for (size_t i = 0; i < ds->nheld; i++)
		item_free(&ds->held[i]);
	ds->n = ds->head = ds->nheld = 0;
	ds->base = 0;
	free(ds->token);
	ds->token = NULL;
	free(ds->last_folder);
	ds->last_folder = NULL;
	ds->finished = false;
}

void dirstream_destroy(struct dirstream *ds)
{
	if (!ds)
		return;
	reset(ds);
	free(ds->items);
	free(ds->prefix);
	free(ds);
}

/* Forget items before head, so memory holds one page at a time. */
static void compact(struct dirstream *ds)
{
	if (ds->head == 0)
		return;
	for (size_t i = 0; i < ds->head; i++)
		item_free(&ds->items[i]);
	memmove(ds->items, ds->items + ds->head,
		(ds->n - ds->head) * sizeof(*ds->items));
	ds->n -= ds->head;
	ds->base += ds->head;
	ds->head = 0;
}

int dirstream_peek(struct dirstream *ds, const struct dir_item **item,
		   const struct deadline *dl)
{
	ds->dl = dl;
	while (ds->head == ds->n) {
		if (ds->finished)
			return 0;
		int rc = fetch_page(ds);
		if (rc < 0)
			return rc;
	}
	*item = &ds->items[ds->head];
	return 1;
}

void dirstream_next(struct dirstream *ds)
{
	if (ds->head < ds->n)
		ds->head++;
}

uint64_t dirstream_pos(const struct dirstream *ds)
{
	return ds->base + ds->head;
}

int dirstream_seek(struct dirstream *ds, uint64_t pos,
		   const struct deadline *dl)
{
	if (pos < ds->base)
		reset(ds);                   /* before what we kept: restart */
	ds->head = (size_t)(pos - ds->base) < ds->n ? (size_t)(pos - ds->base)
						     : ds->n;
	compact(ds);
	/* Skip forward past entries never delivered (rare). */
	while (dirstream_pos(ds) < pos) {
		const struct dir_item *it;
		int rc = dirstream_peek(ds, &it, dl);
		if (rc <= 0)
			return rc;
		dirstream_next(ds);
		compact(ds);
	}
	return 0;
}

uint64_t dirstream_hidden(const struct dirstream *ds) { return ds->hidden; }
