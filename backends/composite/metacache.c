/*
 * metacache.c - stat answers and listing pages of a store, kept in memory
 * for a TTL (metacache.h says what is cached and why).
 *
 *   table   (kind, key) -> entry; util/hmap, doubled when full
 *   lru     every entry and page on one list in order of use; the
 *           oldest goes while the bytes charged exceed max_bytes
 *   entry   MC_STAT: key is the name; 0 + obj_info, or -ENOENT
 *           MC_PAGE: key is prefix \0 [d delim] \0 [t token] \0 max_keys;
 *           an immutable struct mc_page that a replay holds a reference
 *           to, so no lock is held while the caller's callback runs
 *           MC_HELD: files a listing page could not decide (a folder of
 *           their name may come on the next page), under the key of the
 *           next page's request, which decides them
 *
 * An answer's age counts from when the inner store was asked (born_ns),
 * and an entry is only replaced by the answer to a question asked no
 * earlier: a slow stat begun before an open found a new version cannot
 * put the old size back.  Entries removed under the lock are freed after
 * it is released (a "dead" list threaded through dead_next).
 */
#include "backends/composite/metacache.h"
#include "backends/backend.h"
#include "backends/composite/wrap.h"
#include "backends/listing.h"
#include "backends/util/hmap.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_ALLOC_OVERHEAD 16   /* malloc's header and rounding, per block */
#define MC_PAGE_SHARE 4        /* a page may take 1/4 of the budget */
#define MC_MIN_BUCKETS 64
#define MC_FILL_BATCH 64       /* entries inserted per lock hold */
#define MC_LOOKUP_PAGE 200     /* names a lookup's folder page asks for */
#define MC_COVER_MAX_MS (3600 * 1000)  /* a covered answer lives this long */
#define MC_CHANGED_MAX 4096    /* changed names remembered (a ring) */
#define MC_INFLIGHT_NS (120 * NS_PER_SEC)  /* a question may be pending
                                              this long at most */

enum mc_kind { MC_STAT, MC_PAGE, MC_HELD };

/* One listing page as the inner store gave it; immutable once built. */
struct mc_page {
	atomic_int refs;          /* the table's, and one per replay */
	struct list_entry *e;
	size_t n, alloc;
	char *next_token;         /* NULL after the last page */
};

struct mc_entry {
	struct hmap_node hn;             /* in the table */
	struct lru_link use;             /* order of use */
	struct mc_entry *dead_next;      /* on a list of entries to free */
	enum mc_kind kind;
	int64_t born_ns;                 /* when the inner store was asked */
	int64_t fresh_ns;                /* past this, only if covered */
	int64_t expires_ns;
	size_t bytes;                    /* charged to the budget */
	int rc;                          /* MC_STAT: 0 or -ENOENT */
	struct obj_info info;            /* MC_STAT with rc == 0 */
	struct mc_page *page;            /* MC_PAGE, MC_HELD */
	size_t keylen;
	char key[];                      /* keylen bytes, may hold NULs,
	                                    and a NUL after them */
};

/* A name the change feed changed, and when (metacache_forget_change). */
struct mc_changed {
	struct hmap_node hn;
	int64_t at;
	char *name;
};

struct metacache {
	struct backend base;             /* caps: the inner store's */
	struct backend *inner;
	struct metacache_conf conf;
	pthread_mutex_t lock;            /* guards everything below */
	struct hmap table;
	struct lru_link lru;
	size_t bytes;
	struct metacache_stats st;       /* counters; entries and bytes are
	                                    filled in by get_stats */
	int64_t forgot_ns;               /* answers to questions asked
	                                    before this are not kept */
	struct mc_changed changed[MC_CHANGED_MAX];  /* a ring */
	size_t changed_next;
	struct hmap changed_set;         /* the same, by name */
};

static struct metacache *to_mc(struct backend *b)
{
	return (struct metacache *)b;
}

static size_t charge(size_t n)
{
	return n + MC_ALLOC_OVERHEAD;
}

static uint64_t key_hash(enum mc_kind kind, const char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)kind;   /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---------------------------------------------------------- the table */

static void page_unref(struct mc_page *pg)
{
	if (!pg || atomic_fetch_sub(&pg->refs, 1) != 1)
		return;
	for (size_t i = 0; i < pg->n; i++)
		free((char *)pg->e[i].name);
	free(pg->e);
	free(pg->next_token);
	free(pg);
}

/* Free entries taken out of the table (lock not held). */
static void bury(struct mc_entry *dead)
{
	while (dead) {
		struct mc_entry *next = dead->dead_next;
		page_unref(dead->page);
		free(dead);
		dead = next;
	}
}

/* The entry for key, or NULL.  Lock held. */
static struct mc_entry *find(struct metacache *mc, enum mc_kind kind,
			     const char *key, size_t len, uint64_t h)
{
	for (struct hmap_node *n = hmap_first(&mc->table, h); n;
	     n = hmap_next(n)) {
		struct mc_entry *e = container_of(n, struct mc_entry, hn);
		if (e->kind == kind && e->keylen == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
	}
	return NULL;
}

/* Take e out of the table onto *dead.  Lock held. */
static void unlink_entry(struct metacache *mc, struct mc_entry *e,
			 struct mc_entry **dead)
{
	hmap_remove(&mc->table, &e->hn);
	lru_unlink(&e->use);
	mc->bytes -= e->bytes;
	e->dead_next = *dead;
	*dead = e;
}

static struct mc_entry *oldest(struct metacache *mc)
{
	struct lru_link *l = lru_oldest(&mc->lru);
	return l ? container_of(l, struct mc_entry, use) : NULL;
}

/* Drop least recently used entries until the budget holds.  Lock held. */
static void evict(struct metacache *mc, struct mc_entry **dead)
{
	struct mc_entry *e;

	while (mc->bytes > mc->conf.max_bytes && (e = oldest(mc))) {
		unlink_entry(mc, e, dead);
		mc->st.evictions++;
	}
}

/* When the feed last said name changed (0: not lately).  Lock held. */
static int64_t changed_at(struct metacache *mc, const char *name)
{
	uint64_t h = key_hash(MC_STAT, name, strlen(name));
	for (struct hmap_node *n = hmap_first(&mc->changed_set, h); n;
	     n = hmap_next(n)) {
		struct mc_changed *c = container_of(n, struct mc_changed, hn);
		if (!strcmp(c->name, name))
			return c->at;
	}
	return 0;
}

/* Remember that name changed at now.  Lock held. */
static void note_changed(struct metacache *mc, const char *name, int64_t now)
{
	uint64_t h = key_hash(MC_STAT, name, strlen(name));
	for (struct hmap_node *n = hmap_first(&mc->changed_set, h); n;
	     n = hmap_next(n)) {
		struct mc_changed *c = container_of(n, struct mc_changed, hn);
		if (!strcmp(c->name, name)) {
			c->at = now;
			return;
		}
	}
	struct mc_changed *c = &mc->changed[mc->changed_next];
	mc->changed_next = (mc->changed_next + 1) % MC_CHANGED_MAX;
	if (c->name) {
		/* a change this recent may still have a question pending:
		 * drop every answer to a question asked before it */
		if (now - c->at < MC_INFLIGHT_NS && c->at > mc->forgot_ns)
			mc->forgot_ns = c->at;
		hmap_remove(&mc->changed_set, &c->hn);
		free(c->name);
	}
	c->name = xstrdup(name);
	c->at = now;
	hmap_add(&mc->changed_set, &c->hn, h);
}

/*
 * Put ne in the table, replacing what is there unless that answers a
 * later question (then ne is dropped).  Lock held; ne belongs to the
 * table or to *dead afterwards.
 */
static void insert_locked(struct metacache *mc, struct mc_entry *ne,
			  struct mc_entry **dead)
{
	uint64_t h = ne->hn.hash;          /* set by entry_new */
	struct mc_entry *old = find(mc, ne->kind, ne->key, ne->keylen, h);
	if ((old && old->born_ns > ne->born_ns) ||
	    ne->born_ns < mc->forgot_ns || ne->bytes > mc->conf.max_bytes ||
	    (ne->kind == MC_STAT && ne->born_ns < changed_at(mc, ne->key))) {
		ne->dead_next = *dead;
		*dead = ne;
		return;
	}
	if (old)
		unlink_entry(mc, old, dead);
	size_t nbuckets = mc->table.nbuckets;
	hmap_add(&mc->table, &ne->hn, h);
	/* the table's own memory is charged too */
	mc->bytes += (mc->table.nbuckets - nbuckets) *
		     sizeof(*mc->table.buckets);
	lru_push(&mc->lru, &ne->use);
	mc->bytes += ne->bytes;
	evict(mc, dead);
}

/* The live entry for key, now the most recently used; an expired one is
 * taken out.  Lock held. */
static struct mc_entry *lookup_locked(struct metacache *mc, enum mc_kind kind,
				      const char *key, size_t len,
				      struct mc_entry **dead)
{
	struct mc_entry *e = find(mc, kind, key, len, key_hash(kind, key, len));

	if (!e)
		return NULL;
	int64_t now = mono_ns();
	if (now >= e->expires_ns || e->born_ns < mc->forgot_ns ||
	    (now >= e->fresh_ns &&
	     (kind != MC_STAT || !mc->conf.covered ||
	      !mc->conf.covered(mc->conf.covered_arg, e->key, e->born_ns)))) {
		unlink_entry(mc, e, dead);
		return NULL;
	}
	lru_touch(&mc->lru, &e->use);
	return e;
}

static struct mc_entry *entry_new(enum mc_kind kind, const char *key,
				  size_t len, int64_t born, int64_t ttl_ms)
{
	struct mc_entry *e = xcalloc(1, sizeof(*e) + len + 1);
	e->kind = kind;
	memcpy(e->key, key, len);
	e->keylen = len;
	e->hn.hash = key_hash(kind, key, len);
	e->born_ns = born;
	e->expires_ns = e->fresh_ns = born + ttl_ms * NS_PER_MS;
	e->bytes = charge(sizeof(*e) + len + 1);
	return e;
}

/* A stat entry for name, or NULL when rc is not cached (TTL 0). */
static struct mc_entry *stat_entry(struct metacache *mc, const char *name,
				   int rc, const struct obj_info *info,
				   int64_t born)
{
	int64_t ttl = rc == 0 ? mc->conf.attr_ttl_ms : mc->conf.neg_ttl_ms;
	if ((ttl <= 0 && !mc->conf.covered) || !mc->conf.max_bytes)
		return NULL;
	struct mc_entry *e = entry_new(MC_STAT, name, strlen(name), born,
				       ttl > 0 ? ttl : 0);
	if (mc->conf.covered && ttl < MC_COVER_MAX_MS)
		e->expires_ns = born + MC_COVER_MAX_MS * NS_PER_MS;
	e->rc = rc;
	if (rc == 0)
		e->info = *info;
	return e;
}

/* Insert entries (NULLs skipped) a batch per lock hold, in order. */
static void insert_all(struct metacache *mc, struct mc_entry **v, size_t n)
{
	for (size_t i = 0; i < n;) {
		struct mc_entry *dead = NULL;
		pthread_mutex_lock(&mc->lock);
		for (size_t end = i + MC_FILL_BATCH; i < n && i < end; i++)
			if (v[i])
				insert_locked(mc, v[i], &dead);
		pthread_mutex_unlock(&mc->lock);
		bury(dead);
	}
}

static void remember_stat(struct metacache *mc, const char *name, int rc,
			  const struct obj_info *info, int64_t born)
{
	struct mc_entry *e = stat_entry(mc, name, rc, info, born);
	insert_all(mc, &e, 1);
}

/* ----------------------------------------------------------------- stat */

static int stat_by_page(struct metacache *mc, const char *name,
			struct obj_info *out, const struct deadline *dl);

static int mc_stat(struct backend *b, const char *name, struct obj_info *out,
		   const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	struct mc_entry *dead = NULL;
	int rc = 1;                      /* 1: not in memory */

	pthread_mutex_lock(&mc->lock);
	const struct mc_entry *e = lookup_locked(mc, MC_STAT, name,
						 strlen(name), &dead);
	if (e) {
		rc = e->rc;
		if (rc == 0) {
			*out = e->info;
			mc->st.hits++;
		} else {
			mc->st.neg_hits++;
		}
	} else {
		mc->st.misses++;
	}
	pthread_mutex_unlock(&mc->lock);
	bury(dead);
	if (rc <= 0)
		return rc;
	if (mc->conf.lookup_pages && backend_has(&mc->base, BACKEND_LIST_START_AT) && *name) {
		rc = stat_by_page(mc, name, out, dl);
		if (rc <= 0)
			return rc;
	}

	int64_t born = mono_ns();
	rc = backend_stat(mc->inner, name, out, dl);
	if (rc == 0 || rc == -ENOENT)
		remember_stat(mc, name, rc, out, born);
	return rc;
}

/* ----------------------------------------------------------------- list */

static void page_key(const struct list_req *req, struct strbuf *k)
{
	strbuf_adds(k, req->prefix ? req->prefix : "");
	strbuf_addch(k, '\0');
	if (req->delimiter) {
		strbuf_addch(k, 'd');
		strbuf_adds(k, req->delimiter);
	}
	strbuf_addch(k, '\0');
	if (req->token) {
		strbuf_addch(k, 't');
		strbuf_adds(k, req->token);
	}
	strbuf_addch(k, '\0');
	strbuf_addf(k, "%u", req->max_keys);
}

static int replay(const struct mc_page *pg, list_cb cb, void *arg,
		  char **next_token)
{
	*next_token = NULL;
	for (size_t i = 0; i < pg->n; i++) {
		int rc = cb(arg, &pg->e[i]);
		if (rc < 0)
			return rc;
	}
	if (pg->next_token)
		*next_token = xstrdup(pg->next_token);
	return 0;
}

/* Passes a page from the inner store to the caller, keeping a copy while
 * it fits in cap bytes. */
struct tee {
	list_cb cb;
	void *arg;
	struct mc_page *pg;       /* the copy; NULL when not kept */
	size_t bytes, cap;
	const char *max;          /* the greatest name in the copy */
};

static struct mc_page *page_new(void)
{
	struct mc_page *pg = xcalloc(1, sizeof(*pg));
	atomic_init(&pg->refs, 1);
	return pg;
}

/* Copy e, name and all, to the end of pg; returns the copy's name. */
static const char *page_add(struct mc_page *pg, const struct list_entry *e)
{
	if (pg->n == pg->alloc) {
		pg->alloc = pg->alloc ? pg->alloc * 2 : 64;
		pg->e = xrealloc(pg->e, pg->alloc * sizeof(*pg->e));
	}
	struct list_entry *c = &pg->e[pg->n++];
	*c = *e;
	c->name = xstrdup(e->name);
	return c->name;
}

static int tee_entry(void *arg, const struct list_entry *e)
{
	struct tee *t = arg;
	int rc = t->cb(t->arg, e);

	if (rc < 0 || !t->pg)
		return rc;
	t->bytes += sizeof(*e) + charge(strlen(e->name) + 1);
	if (t->bytes > t->cap) {
		page_unref(t->pg);        /* too big to keep */
		t->pg = NULL;
		t->max = NULL;
		return rc;
	}
	const char *name = page_add(t->pg, e);
	if (!t->max || strcmp(name, t->max) > 0)
		t->max = name;
	return rc;
}

/* Keep pg in the table under (kind, key) for ttl_ms.  Takes the caller's
 * reference. */
static void remember_page(struct metacache *mc, enum mc_kind kind,
			  const struct strbuf *key, struct mc_page *pg,
			  int64_t born, int64_t ttl_ms)
{
	struct mc_entry *e = entry_new(kind, key->buf, key->len, born, ttl_ms);

	if (pg->n < pg->alloc) {
		pg->e = xrealloc(pg->e, pg->n * sizeof(*pg->e));
		pg->alloc = pg->n;
	}
	e->page = pg;
	e->bytes += charge(sizeof(*pg)) + charge(pg->n * sizeof(*pg->e));
	if (pg->next_token)
		e->bytes += charge(strlen(pg->next_token) + 1);
	for (size_t i = 0; i < pg->n; i++)
		e->bytes += charge(strlen(pg->e[i].name) + 1);
	insert_all(mc, &e, 1);
}

/* The stat entry a listing entry stands for, or NULL. */
static struct mc_entry *entry_of(struct metacache *mc,
				 const struct list_entry *le, int64_t born)
{
	size_t len = strlen(le->name);
	struct obj_info info = le->info;

	if (le->is_prefix) {
		if (len < 2 || le->name[len - 1] != '/')
			return NULL;
		info.is_dir = true;
		char *name = xstrndup(le->name, len - 1);
		struct mc_entry *e = stat_entry(mc, name, 0, &info, born);
		free(name);
		return e;
	}
	if (!len || le->name[len - 1] == '/')
		return NULL;              /* a folder's marker: not a file */
	info.is_dir = false;
	return stat_entry(mc, le->name, 0, &info, born);
}

/* What a page teaches the stat cache: entries, and undecided files. */
struct fill {
	struct metacache *mc;
	struct mc_entry **v;
	size_t n;
	size_t nold;              /* entries before this are earlier files */
	int64_t born, held_born;  /* when this page and those were listed */
	struct mc_page *held;     /* files the next page must decide */
};

static int fill_entry(void *arg, const struct list_entry *le, size_t idx,
		      bool undecided)
{
	struct fill *f = arg;

	if (undecided) {
		if (!f->held)
			f->held = page_new();
		page_add(f->held, le);
		return 0;
	}
	f->v[f->n++] = entry_of(f->mc, le,
				idx < f->nold ? f->held_born : f->born);
	return 0;
}

/*
 * The entries of pg (after the files old, an earlier page left
 * undecided) that the listing rules decide go to the stat cache; a file
 * a folder of its name hides is not among them.  Files only a later page
 * can decide end up in f->held.
 */
static void fill_page(struct metacache *mc, struct fill *f,
		      const struct mc_page *old, const struct mc_page *pg,
		      bool last)
{
	f->mc = mc;
	f->nold = old ? old->n : 0;
	f->v = xcalloc(f->nold + pg->n + 1, sizeof(*f->v));
	listing_settle(mc->inner, old ? old->e : NULL, f->nold, pg->e, pg->n,
		       last, fill_entry, f);
	insert_all(mc, f->v, f->n);
	free(f->v);
}

/* Files an earlier page left undecided, waiting under the key of this
 * page's request (MC_HELD).  *born gets when they were listed. */
static struct mc_page *take_held(struct metacache *mc,
				 const struct strbuf *key, int64_t *born)
{
	struct mc_entry *dead = NULL;
	struct mc_page *pg = NULL;

	pthread_mutex_lock(&mc->lock);
	struct mc_entry *e = lookup_locked(mc, MC_HELD, key->buf, key->len,
					   &dead);
	if (e) {
		pg = e->page;
		e->page = NULL;
		*born = e->born_ns;
		unlink_entry(mc, e, &dead);
	}
	pthread_mutex_unlock(&mc->lock);
	bury(dead);
	return pg;
}

/*
 * Fill the stat cache from a page of a "/"-delimited listing.  Files this
 * page cannot decide wait for the next page (MC_HELD under the key of its
 * request); the ones the previous page left are decided here.
 */
static void fill_stats(struct metacache *mc, const struct list_req *req,
		       const struct strbuf *key, const struct tee *t,
		       const char *next_token, int64_t born)
{
	struct fill f = { .born = born, .held_born = born };
	struct mc_page *old = req->token ? take_held(mc, key, &f.held_born)
					 : NULL;

	fill_page(mc, &f, old, t->pg, !next_token);
	page_unref(old);
	if (f.held) {
		struct list_req next = *req;
		struct strbuf nkey = STRBUF_INIT;
		next.token = next_token;
		page_key(&next, &nkey);
		remember_page(mc, MC_HELD, &nkey, f.held, f.held_born,
			      mc->conf.attr_ttl_ms);
		strbuf_release(&nkey);
	}
}

static int ignore_entry(void *arg, const struct list_entry *e)
{
	(void)arg;
	(void)e;
	return 0;
}

/*
 * A lookup that memory cannot answer, in a store whose pages come in name
 * order and can start at a name: one page of name's folder from name on
 * answers it, and what the page says of the names after it is kept, so
 * the rest of a burst of lookups in one folder (a query engine opening
 * the files of a table in order) is answered from memory.  The page
 * decides name when it reaches past "name/" (a folder of that name would
 * be on it) or is the folder's last.  1: it cannot decide (ask the store
 * about name alone); else 0 with *out, or -errno.
 */
static int stat_by_page(struct metacache *mc, const char *name,
			struct obj_info *out, const struct deadline *dl)
{
	const char *slash = strrchr(name, '/');
	char *prefix = xstrndup(name, slash ? (size_t)(slash - name) + 1 : 0);
	struct list_req req = { .prefix = prefix, .delimiter = "/",
				.max_keys = MC_LOOKUP_PAGE, .start_at = name };
	struct tee t = { .cb = ignore_entry,
			 .cap = mc->conf.max_bytes / MC_PAGE_SHARE };
	char *next = NULL;
	int rc;

	if (!t.cap || mc->conf.attr_ttl_ms <= 0) {
		free(prefix);
		return 1;                 /* nothing the page says would stay */
	}
	t.pg = page_new();
	int64_t born = mono_ns();
	rc = backend_list(mc->inner, &req, tee_entry, &t, &next, dl);
	free(prefix);
	if (rc < 0 || !t.pg) {      /* the store's own stat may know more
	                               (a router serving while its source
	                               is down) or say what is wrong */
		page_unref(t.pg);
		free(next);
		return 1;
	}
	struct fill f = { .born = born, .held_born = born };
	fill_page(mc, &f, NULL, t.pg, !next);
	page_unref(f.held);        /* undecided: their own lookups decide */

	struct strbuf dir = STRBUF_INIT;
	strbuf_addf(&dir, "%s/", name);
	bool decided = !next || (t.max && strcmp(t.max, dir.buf) >= 0);
	strbuf_release(&dir);
	page_unref(t.pg);
	free(next);

	struct mc_entry *dead = NULL;
	rc = 1;
	pthread_mutex_lock(&mc->lock);
	const struct mc_entry *e = lookup_locked(mc, MC_STAT, name,
						 strlen(name), &dead);
	if (e && e->rc == 0) {
		*out = e->info;
		rc = 0;
	}
	pthread_mutex_unlock(&mc->lock);
	bury(dead);
	if (rc == 1 && decided) {
		rc = -ENOENT;
		remember_stat(mc, name, rc, NULL, born);
	}
	return rc;
}

/* Ask the inner store for a page; keep what the TTLs ask for. */
static int fetch(struct metacache *mc, const struct list_req *req,
		 const struct strbuf *key, list_cb cb, void *arg,
		 char **next_token, const struct deadline *dl)
{
	bool fill = mc->conf.attr_ttl_ms > 0 && req->delimiter &&
		    !strcmp(req->delimiter, "/");
	bool keep = mc->conf.list_ttl_ms > 0;
	struct tee t = { .cb = cb, .arg = arg,
			 .cap = mc->conf.max_bytes / MC_PAGE_SHARE };

	pthread_mutex_lock(&mc->lock);
	mc->st.list_misses++;
	pthread_mutex_unlock(&mc->lock);
	if ((fill || keep) && t.cap)
		t.pg = page_new();
	int64_t born = mono_ns();
	int rc = backend_list(mc->inner, req, tee_entry, &t, next_token, dl);
	if (rc < 0 || !t.pg) {
		if (rc == 0 && t.cap && (fill || keep))
			log_debug("metacache: a page of '%s' is too large to "
				  "keep (over %zu bytes)", req->prefix, t.cap);
		page_unref(t.pg);
		return rc;
	}
	if (fill)
		fill_stats(mc, req, key, &t, *next_token, born);
	if (keep) {
		if (*next_token)
			t.pg->next_token = xstrdup(*next_token);
		remember_page(mc, MC_PAGE, key, t.pg, born,
			      mc->conf.list_ttl_ms);
	} else {
		page_unref(t.pg);
	}
	return rc;
}

static int mc_list(struct backend *b, const struct list_req *req, list_cb cb,
		   void *arg, char **next_token, const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	struct strbuf key = STRBUF_INIT;
	struct mc_page *pg = NULL;
	int rc;

	page_key(req, &key);
	if (mc->conf.list_ttl_ms > 0) {
		struct mc_entry *dead = NULL;
		pthread_mutex_lock(&mc->lock);
		const struct mc_entry *e = lookup_locked(mc, MC_PAGE, key.buf,
							 key.len, &dead);
		if (e) {
			pg = e->page;
			atomic_fetch_add(&pg->refs, 1);
			mc->st.list_hits++;
		}
		pthread_mutex_unlock(&mc->lock);
		bury(dead);
	}
	if (pg) {
		rc = replay(pg, cb, arg, next_token);
		page_unref(pg);
	} else {
		rc = fetch(mc, req, &key, cb, arg, next_token, dl);
	}
	strbuf_release(&key);
	return rc;
}

/* ----------------------------------------------------------------- open */

static struct mc_entry *find_stat(struct metacache *mc, const char *name)
{
	size_t len = strlen(name);
	return find(mc, MC_STAT, name, len, key_hash(MC_STAT, name, len));
}

/* Nothing learnt from a question asked before now is answered from
 * memory any more, nor kept when its answer comes later.  Entries go as
 * they are next looked up (or evicted). */
static void forget_all(struct metacache *mc)
{
	pthread_mutex_lock(&mc->lock);
	mc->forgot_ns = mono_ns();
	pthread_mutex_unlock(&mc->lock);
}

void metacache_forget_change(struct backend *b, const char *name,
			     bool removed)
{
	struct metacache *mc = to_mc(b);
	struct mc_entry *dead = NULL;
	char *up = xstrdup(name);

	pthread_mutex_lock(&mc->lock);
	int64_t now = mono_ns();
	for (char *slash = up + strlen(up);; slash = strrchr(up, '/')) {
		*slash = '\0';                 /* name, then each folder */
		struct mc_entry *e = find_stat(mc, up);
		bool keep = slash != up + strlen(name) && !removed && e &&
			    e->rc == 0 && e->info.is_dir;
		if (e && !keep)
			unlink_entry(mc, e, &dead);
		note_changed(mc, up, now);
		if (!strchr(up, '/'))
			break;
	}
	pthread_mutex_unlock(&mc->lock);
	free(up);
	bury(dead);
}

/* Drop what is cached about name, unless it answers a later question. */
static void forget(struct metacache *mc, const char *name, int64_t born)
{
	struct mc_entry *dead = NULL;
	pthread_mutex_lock(&mc->lock);
	struct mc_entry *e = find_stat(mc, name);
	if (e && e->born_ns <= born)
		unlink_entry(mc, e, &dead);
	pthread_mutex_unlock(&mc->lock);
	bury(dead);
}

/*
 * What an open teaches: a new version replaces a cached file's attributes
 * (until the entry's own expiry: under a bounded router an open may have
 * asked nobody, so it never makes an entry live longer); -ENOENT replaces
 * any answer.  A cached folder stays (it wins over a file of its name),
 * and a name not cached is left to stat: the open cannot tell whether a
 * folder of that name exists.
 */
static void note_open(struct metacache *mc, const char *name, int rc,
		      const struct obj_info *info, int64_t born)
{
	struct mc_entry *dead = NULL;

	if (rc == -ENOENT && mc->conf.neg_ttl_ms > 0)
		remember_stat(mc, name, rc, NULL, born);
	if (rc == -ENOENT && mc->conf.neg_ttl_ms <= 0)
		forget(mc, name, born);
	if (rc < 0 || info->is_dir)
		return;
	pthread_mutex_lock(&mc->lock);
	struct mc_entry *e = find_stat(mc, name);
	if (e && e->born_ns <= born) {
		if (e->rc < 0) {
			unlink_entry(mc, e, &dead);
		} else if (!e->info.is_dir &&
			   !obj_info_same_version(&e->info, info)) {
			e->info = *info;
			e->born_ns = born;    /* orders later answers; the
			                         entry lives no longer */
		}
	}
	pthread_mutex_unlock(&mc->lock);
	bury(dead);
}

static int mc_open_tail(struct backend *b, const char *name, size_t tail_len,
			struct bobj **out, const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	int64_t born = mono_ns();
	int rc = backend_open_tail(mc->inner, name, tail_len, out, dl);

	note_open(mc, name, rc, rc == 0 ? &(*out)->info : NULL, born);
	return rc;
}

static int mc_open(struct backend *b, const char *name, struct bobj **out,
		   const struct deadline *dl)
{
	return mc_open_tail(b, name, 0, out, dl);
}

/* ------------------------------------------------- passed straight on */

/* Handles come from the inner store (o->b is the inner store), so reads
 * and closes dispatch there directly; these only complete the table. */
static ssize_t mc_read(struct bobj *o, void *buf, size_t len, uint64_t off,
		       const struct deadline *dl)
{
	return bobj_read(o, buf, len, off, dl);
}

static void mc_close(struct bobj *o)
{
	bobj_close(o);
}

static int mc_open_pinned(struct backend *b, const char *name,
			  const struct obj_info *info, struct bobj **out)
{
	struct backend *in = to_mc(b)->inner;
	return backend_open_pinned(in, name, info, out);
}

static int mc_put(struct backend *b, const char *name, int fd, uint64_t size,
		  const struct obj_info *stamp, const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	struct backend *in = mc->inner;
	int rc = backend_put(in, name, fd, size, stamp, dl);

	/* What is cached about name may be wrong now. */
	forget(mc, name, mono_ns());
	return rc;
}

/*
 * A write changed name (or may have: a failed precondition says the
 * store holds something else than was thought); a marker "dir/" changes
 * what "dir" is.  Cached listing pages
 * may lack or show it too; they are kept only under a bounded freshness
 * (list_ttl_ms), where a write drops them all: a writer must see its own
 * file listed.
 */
static void forget_written(struct metacache *mc, const char *name)
{
	size_t n = strlen(name);
	forget(mc, name, mono_ns());
	if (n > 1 && name[n - 1] == '/') {
		/* a folder's marker: what is cached of the folder too */
		char *folder = xstrndup(name, n - 1);
		forget(mc, folder, mono_ns());
		free(folder);
	}
	if (mc->conf.list_ttl_ms > 0)
		forget_all(mc);
}

static int mc_writer_open(struct backend *b, const char *name,
			  const struct write_pre *pre, struct bwriter **out,
			  const struct deadline *dl)
{
	return wrapped_writer_open(b, to_mc(b)->inner, name, pre, out, dl);
}

static int mc_writer_commit(struct bwriter *w, struct obj_info *out,
			    const struct deadline *dl)
{
	struct metacache *mc = to_mc(w->b);
	char *name = xstrdup(w->name);
	int rc = wrapped_writer_commit(w, out, dl);
	forget_written(mc, name);
	free(name);
	return rc;
}

static int mc_remove(struct backend *b, const char *name,
		     const struct write_pre *pre, const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	int rc = backend_remove(mc->inner, name, pre, dl);
	forget_written(mc, name);
	/* it may take the folders above it along (one that held nothing
	 * else and had no marker) */
	metacache_forget_change(b, name, true);
	return rc;
}

static int mc_copy(struct backend *b, const char *from,
		   uint64_t from_generation, const char *to,
		   const struct write_pre *pre, struct obj_info *out,
		   const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	int rc = backend_copy(mc->inner, from, from_generation, to, pre, out,
			      dl);
	forget_written(mc, to);
	if (rc == -ENOENT)
		forget(mc, from, mono_ns());
	return rc;
}

/* Only the metageneration changes; what is cached of name goes, so a
 * stat after it sees the new one. */
static int mc_set_meta(struct backend *b, const char *name,
		       const struct write_pre *pre, const struct meta_kv *kv,
		       size_t n, struct obj_info *out,
		       const struct deadline *dl)
{
	struct metacache *mc = to_mc(b);
	int rc = backend_set_meta(mc->inner, name, pre, kv, n, out, dl);
	forget(mc, name, mono_ns());
	return rc;
}

static int mc_explain(struct backend *b, const char *name, const char *attr,
		      struct strbuf *out, const struct deadline *dl)
{
	struct backend *in = to_mc(b)->inner;
	return backend_explain(in, name, attr, out, dl);
}

static int64_t mc_cache_ms(struct backend *b, const char *name)
{
	return backend_cache_ms(to_mc(b)->inner, name);
}

static void mc_probe(struct backend *b, struct probe_result *res,
		     const struct deadline *dl)
{
	struct backend *in = to_mc(b)->inner;
	backend_probe(in, res, dl);
}

static void mc_metrics(struct backend *b, struct prom *p)
{
	struct backend *in = to_mc(b)->inner;
	struct metacache_stats st;

	backend_metrics(in, p);
	metacache_get_stats(b, &st);
	prom_add(p, "hylake_metadata_cache_hits_total", PROM_COUNTER,
		 "lookups and listing pages answered from memory", NULL, NULL,
		 (double)(st.hits + st.neg_hits + st.list_hits));
	prom_add(p, "hylake_metadata_cache_misses_total", PROM_COUNTER,
		 "lookups and listing pages asked of the stores", NULL, NULL,
		 (double)(st.misses + st.list_misses));
	prom_add(p, "hylake_metadata_cache_entries", PROM_GAUGE,
		 "attributes and listing pages held", NULL, NULL,
		 (double)st.entries);
	prom_add(p, "hylake_metadata_cache_bytes", PROM_GAUGE,
		 "memory held by the metadata cache", NULL, NULL,
		 (double)st.bytes);
}

static void mc_destroy(struct backend *b)
{
	struct metacache *mc = to_mc(b);
	struct mc_entry *dead = NULL;
	const struct metacache_stats *st = &mc->st;

	log_info("metadata cache: stat %" PRIu64 " hits, %" PRIu64 " not-found "
		 "hits, %" PRIu64 " misses; listing pages %" PRIu64 " hits, %"
		 PRIu64 " misses; %" PRIu64 " evictions", st->hits,
		 st->neg_hits, st->misses, st->list_hits, st->list_misses,
		 st->evictions);
	for (struct mc_entry *e; (e = oldest(mc));)
		unlink_entry(mc, e, &dead);
	bury(dead);
	hmap_release(&mc->table);
	for (size_t i = 0; i < MC_CHANGED_MAX; i++)
		free(mc->changed[i].name);
	hmap_release(&mc->changed_set);
	pthread_mutex_destroy(&mc->lock);
	backend_destroy(mc->inner);
	backend_release(b);
	free(mc);
}

static const struct backend_ops mc_ops = {
	.type = "metacache",
	.stat = mc_stat,
	.list = mc_list,
	.open = mc_open,
	.open_tail = mc_open_tail,
	.read = mc_read,
	.open_pinned = mc_open_pinned,
	.close = mc_close,
	.put = mc_put,
	.writer_open = mc_writer_open,
	.writer_write = wrapped_writer_write,
	.writer_commit = mc_writer_commit,
	.writer_abort = wrapped_writer_abort,
	.remove = mc_remove,
	.copy = mc_copy,
	.set_meta = mc_set_meta,
	.explain = mc_explain,
	.probe = mc_probe,
	.metrics = mc_metrics,
	.cache_ms = mc_cache_ms,
	.destroy = mc_destroy,
};

static void ttl_text(int64_t ms, char *buf, size_t len)
{
	if (ms > 0)
		duration_format(ms, buf, len);
	else
		snprintf(buf, len, "off");
}

struct backend *metacache_create(struct backend *inner,
				 const struct metacache_conf *conf)
{
	struct metacache *mc = xcalloc(1, sizeof(*mc));
	char a[32], n[32], l[32];

	mc->inner = inner;
	mc->conf = *conf;
	pthread_mutex_init(&mc->lock, NULL);
	hmap_init(&mc->table, MC_MIN_BUCKETS);
	hmap_init(&mc->changed_set, MC_MIN_BUCKETS);
	lru_init(&mc->lru);
	mc->bytes = charge(mc->table.nbuckets * sizeof(*mc->table.buckets));
	backend_init(&mc->base, &mc_ops, inner->name, inner->describe,
		     inner->caps);
	ttl_text(conf->attr_ttl_ms, a, sizeof(a));
	ttl_text(conf->neg_ttl_ms, n, sizeof(n));
	ttl_text(conf->list_ttl_ms, l, sizeof(l));
	log_info("metadata cache: attributes %s, not-found %s, listings %s; "
		 "at most %zu KiB", a, n, l, conf->max_bytes >> 10);
	return &mc->base;
}

void metacache_get_stats(struct backend *b, struct metacache_stats *out)
{
	struct metacache *mc = to_mc(b);
	pthread_mutex_lock(&mc->lock);
	*out = mc->st;
	out->entries = mc->table.count;
	out->bytes = mc->bytes;
	pthread_mutex_unlock(&mc->lock);
}
