/*
 * dirstream.c - streaming folder listings.
 *
 *   listing (byte order, a folder hides a file of its name, repeated
 *   folders dropped: backends/listing.h) --classify--> items[head..n)
 *
 * Classifying turns full names into one segment each: the folder's own
 * marker is skipped and names that cannot be paths are hidden and
 * counted.  items keeps the entries from the reader's position on, so
 * what the kernel takes back is replayed without asking the store.
 */
#include "fs/dirstream.h"
#include "fs/names.h"
#include "backends/listing.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dirstream {
	struct backend *b;
	char *prefix;              /* "" or "a/b/" */
	unsigned page_size;
	/* Delivered-or-ready entries: items[head..n) are replayable/ready;
	 * items[i] has position base + i. */
	struct dir_item *items;
	size_t n, alloc, head;
	uint64_t base;
	struct listing *l;         /* NULL before the first page */
	bool finished;
	uint64_t hidden;           /* unsafe names, and files hidden by
	                              listings since restarted */
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

/* One entry of the listing (a name under the prefix) as a dir_item. */
static void classify(struct dirstream *ds, const struct list_entry *e)
{
	const char *seg = e->name + strlen(ds->prefix);
	size_t slen = strlen(seg);

	if (e->is_prefix && slen && seg[slen - 1] == '/')
		slen--;
	if (!e->is_prefix && slen == 0)
		return;                    /* the folder's own marker */
	if (backend_name_reserved(e->name))
		return;                    /* hylake's own: not the lake's */
	if (!names_segment_ok(seg, slen)) {
		ds->hidden++;
		log_debug("hiding unsafe name '%s'", e->name);
		return;
	}
	struct dir_item it = { .name = xstrndup(seg, slen), .info = e->info };
	it.info.is_dir = e->is_prefix;
	push_item(ds, &it);
}

/* Take the next entry of the listing into items (or note the end). */
static int pull(struct dirstream *ds, const struct deadline *dl)
{
	const struct list_entry *e;

	if (!ds->l) {
		struct listing_conf conf = { .prefix = ds->prefix,
					     .delimiter = "/",
					     .page_size = ds->page_size };
		ds->l = listing_create(ds->b, &conf);
	}
	int rc = listing_next(ds->l, &e, dl);
	if (rc < 0)
		return rc;
	if (rc == 0)
		ds->finished = true;
	else
		classify(ds, e);
	return 0;
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
	ds->n = ds->head = 0;
	ds->base = 0;
	if (ds->l)
		ds->hidden += listing_hidden(ds->l);
	listing_destroy(ds->l);
	ds->l = NULL;
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
	while (ds->head == ds->n) {
		if (ds->finished)
			return 0;
		int rc = pull(ds, dl);
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

uint64_t dirstream_hidden(const struct dirstream *ds)
{
	return ds->hidden + (ds->l ? listing_hidden(ds->l) : 0);
}
