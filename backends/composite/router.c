/*
 * router.c - serve each read from the nearest store that holds the
 * pinned version.
 *
 *   open(name)   V = source's current version (strict), or a fact the
 *                source confirmed within the bound (bounded), or, with
 *                the source down, a fact within serve_stale
 *   read(off)    replicas in order:  known to hold V  -> read (pinned)
 *                                    known not to     -> skip, no request
 *                                    unknown          -> open (one HEAD),
 *                                                        judge, remember
 *                then the source; any failure moves on at the same offset
 *
 * Facts are written only when they say something new (another version,
 * another state) or when the stored one is old: never just to refresh a
 * timestamp on every request.
 *
 * Reading (candidates, their checks, hedging) is in router_read.c.
 */
#include "backends/composite/router_impl.h"
#include "backends/backend.h"
#include "backends/composite/feed.h"
#include "backends/composite/freshness.h"
#include "backends/composite/listed.h"
#include "backends/composite/wrap.h"
#include "backends/composite/health.h"
#include "backends/util/pool.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACT_REFRESH_NS (60 * NS_PER_SEC)
#define LISTED_NAMES (1u << 20)   /* names of folder listings kept */
#define IMMUTABLE_CACHE_MS (3600 * 1000)  /* kernel caches of such names */
#define LEARN_PAGE 256            /* names a first stat's listing learns */
#define LEARN_WAITS 4             /* pages in the air a first open waits for */

/*
 * One open of the source that concurrent opens of the same name share.
 * A flight is queued (not yet sent) or sent; per name there is at most
 * one of each.
 */
struct flight {
	struct flight *next;
	char *name;
	int waiters;              /* opens waiting for its answer */
	bool sent, done;
	int rc;
	struct obj_info info;
	pthread_cond_t cv;
};

static struct router *to_router(struct backend *b)
{
	return (struct router *)b;
}

static void info_to_fact(const struct obj_info *i, struct source_fact *f)
{
	memset(f, 0, sizeof(*f));
	f->generation = i->generation;
	f->metageneration = i->metageneration;
	f->size = i->size;
	f->ctime_ns = i->mtime_ns;
	f->crc32c = i->crc32c;
	f->has_crc32c = i->has_crc32c;
	f->has_md5 = i->has_md5;
	memcpy(f->md5, i->md5, 16);
	f->confirmed_ns = wall_ns();
}

static void fact_to_info(const struct source_fact *f, struct obj_info *i)
{
	memset(i, 0, sizeof(*i));
	i->generation = f->generation;
	i->metageneration = f->metageneration;
	i->size = f->size;
	i->mtime_ns = f->ctime_ns;
	i->crc32c = f->crc32c;
	i->has_crc32c = f->has_crc32c;
	i->has_md5 = f->has_md5;
	memcpy(i->md5, f->md5, 16);
	snprintf(i->etag, sizeof(i->etag), "%" PRIu64, f->generation);
}

/*
 * Remember what the source said, unless the map already knows it.  An
 * unchanged fact is written again only once its confirmation is half a
 * freshness bound old (bounded mode trusts it for the bound from that
 * time) or a minute old: a hot name costs at most one write per half
 * bound, never one per open.
 */
static void note_source(struct router *r, const char *name,
			const struct source_fact *f)
{
	struct source_fact old;
	struct fresh_rule rule;
	int64_t refresh = FACT_REFRESH_NS;
	freshness_of(r->conf.fresh, name, &rule);
	if (rule.kind == FRESH_BOUNDED &&
	    rule.bound_ms * NS_PER_MS / 2 < refresh)
		refresh = rule.bound_ms * NS_PER_MS / 2;
	if (r->facts.ops->get_source(r->facts.ctx, name, &old) == 0 &&
	    old.tombstone == f->tombstone && old.generation == f->generation &&
	    old.metageneration == f->metageneration &&
	    f->confirmed_ns >= old.confirmed_ns &&
	    f->confirmed_ns - old.confirmed_ns < refresh)
		return;
	r->facts.ops->put_source(r->facts.ctx, name, f);
}

/* The source showed folder ("name/") as a folder: a fact of no version. */
static void note_folder(struct router *r, const char *folder)
{
	struct source_fact d = { .confirmed_ns = wall_ns() };
	note_source(r, folder, &d);
}

/*
 * What the source answered to a question asked at asked_ns (wall clock),
 * unless the map learnt of name since (from the change feed, or another
 * answer): an answer that was on its way must not undo a newer fact.
 */
static void note_answer(struct router *r, const char *name,
			const struct source_fact *f, int64_t asked_ns)
{
	struct source_fact old;
	if (r->facts.ops->get_source(r->facts.ctx, name, &old) == 0 &&
	    old.confirmed_ns > asked_ns)
		return;
	note_source(r, name, f);
}

/* The source says name is gone (a 404, or a complete listing of its
 * folder without it), answering a question asked at asked_ns.  From now
 * on the map says so, and no store serves a copy of it. */
void router_note_gone(struct router *r, const char *name, int64_t asked_ns)
{
	struct source_fact gone = { .tombstone = true,
				    .confirmed_ns = wall_ns() };
	note_answer(r, name, &gone, asked_ns);
}

/* The version the map knew of name is not the source's any more (a read
 * pinned to it was refused): forget it, claiming nothing, not even a
 * deletion (the name may have been replaced).  Confirmed at no time, the
 * mark is trusted by no rule: the next open asks the source. */
void router_note_stale(struct router *r, const char *name)
{
	struct source_fact unknown = { .tombstone = true };
	note_source(r, name, &unknown);
}

void router_note_replica(struct router *r, size_t i, const char *name,
			 enum replica_state st, const struct obj_info *info)
{
	struct replica_fact f = { .state = st, .checked_ns = wall_ns() };
	if (info) {
		f.generation = info->generation;
		f.size = info->size;
		snprintf(f.etag, sizeof(f.etag), "%s", info->etag);
	}
	r->facts.ops->put_replica(r->facts.ctx, r->rep[i]->name, name, &f);
}

/*
 * How old a fact about name may be and still pin its version without
 * asking the source: 0 (strict: never; bounded with a change feed, which
 * feed_fact decides), the bound, or INT64_MAX
 * (immutable: any fact until the name is deleted), with the rule that
 * decided in *rule.  Learns table roots from the name first.
 */
static int64_t trust_ns(struct router *r, const char *name,
			struct fresh_rule *rule)
{
	freshness_saw(r->conf.fresh, name);
	freshness_of(r->conf.fresh, name, rule);
	switch (rule->kind) {
	case FRESH_IMMUTABLE:
		return INT64_MAX;
	case FRESH_BOUNDED:
		/* with a change feed, what it covers is trusted and nothing
		 * else: a stalled feed sends opens to the source (feed_fact) */
		return r->conf.feed ? 0 : rule->bound_ms * NS_PER_MS;
	default:
		return 0;
	}
}

/*
 * A known fact about a name, if the source confirmed it within max_ns.
 * A fact trusted for good (an immutable name) stops counting once a
 * listing of its folder made since no longer shows the name: it was
 * deleted, and the map says so from then on.
 */
static bool recent_fact(struct router *r, const char *name, int64_t max_ns,
			struct source_fact *f)
{
	if (r->facts.ops->get_source(r->facts.ctx, name, f) < 0)
		return false;
	if (max_ns != INT64_MAX)
		return wall_ns() - f->confirmed_ns <= max_ns;
	if (!f->tombstone && listed_lacks(r->listed, name, f->confirmed_ns)) {
		log_info("router: '%s' is no longer listed by the source: "
			 "deleted", name);
		router_note_gone(r, name, f->confirmed_ns);
		*f = (struct source_fact){ .tombstone = true,
					   .confirmed_ns = wall_ns() };
	}
	return true;
}

/*
 * A fact of a bounded name that the change feed covers: confirmed since
 * the feed has been following, with no change to it since (feed.h).
 * Such a fact is as good as a fresh answer, however old; while the feed
 * is stalled, none is, and opens ask the source.
 */
static bool feed_fact(struct router *r, const char *name,
		      const struct fresh_rule *rule, struct source_fact *f)
{
	return rule->kind == FRESH_BOUNDED && r->conf.feed &&
	       r->facts.ops->get_source(r->facts.ctx, name, f) == 0 &&
	       feed_covers(r->conf.feed, f->confirmed_ns);
}

bool router_covers(struct backend *b, const char *name, int64_t born_mono)
{
	struct router *r = to_router(b);
	struct fresh_rule rule;

	if (!r->conf.feed)
		return false;
	freshness_of(r->conf.fresh, name, &rule);
	return rule.kind == FRESH_BOUNDED &&
	       feed_covers_mono(r->conf.feed, born_mono);
}

/* Answer a stat from facts the source confirmed within max_ns: the folder
 * fact ("name/") first, since a folder wins over an object as in stat. */
static bool stat_from_facts(struct router *r, const char *name,
			    const char *folder, int64_t max_ns,
			    struct obj_info *out)
{
	struct source_fact f;
	if (recent_fact(r, folder, max_ns, &f) && !f.tombstone) {
		memset(out, 0, sizeof(*out));
		out->is_dir = true;
		return true;
	}
	if (recent_fact(r, name, max_ns, &f) && !f.tombstone && f.generation) {
		fact_to_info(&f, out);
		return true;
	}
	return false;
}

static void flight_free(struct flight *f)
{
	pthread_cond_destroy(&f->cv);
	free(f->name);
	free(f);
}

/* Wait for f's answer; frees f when the last waiter leaves.  Lock held. */
static int flight_wait(struct router *r, struct flight *f,
		       struct obj_info *info)
{
	f->waiters++;
	while (!f->done)
		pthread_cond_wait(&f->cv, &r->flight_lock);
	int rc = f->rc;
	if (info)
		*info = f->info;
	if (--f->waiters == 0)
		flight_free(f);
	return rc;
}

/* A new flight for name, on *list.  Lock held. */
static struct flight *flight_add(struct flight **list, const char *name)
{
	struct flight *f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	pthread_cond_init(&f->cv, NULL);
	f->next = *list;
	*list = f;
	return f;
}

/* f, on *list, has its answer (rc; info set by the caller): off the
 * list, its waiters woken, freed by the last to leave.  Lock not held. */
static void flight_land(struct router *r, struct flight **list,
			struct flight *f, int rc)
{
	pthread_mutex_lock(&r->flight_lock);
	for (struct flight **pp = list; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->rc = rc;
	f->done = true;
	pthread_cond_broadcast(&f->cv);
	bool last = f->waiters == 0;
	pthread_mutex_unlock(&r->flight_lock);
	if (last)
		flight_free(f);
}

struct list_learn {
	struct router *r;
	list_cb cb;
	void *arg;
	struct strbuf names;      /* the page's object names, NUL-separated */
	size_t n;
	int64_t began;            /* when the page was asked (wall clock) */
};

/* Each listed name teaches table roots, and a listed file whose rule is
 * immutable becomes a fact: its first open then asks nobody. */
static int list_learn_entry(void *arg, const struct list_entry *e)
{
	struct list_learn *l = arg;
	struct source_fact f, old;
	struct fresh_rule rule;

	if (trust_ns(l->r, e->name, &rule) == INT64_MAX && !e->is_prefix &&
	    e->info.generation &&
	    (l->r->facts.ops->get_source(l->r->facts.ctx, e->name, &old) < 0 ||
	     old.tombstone || old.generation != e->info.generation)) {
		info_to_fact(&e->info, &f);
		note_answer(l->r, e->name, &f, l->began);
	}
	if (!e->is_prefix) {
		strbuf_add(&l->names, e->name, strlen(e->name) + 1);
		l->n++;
	}
	return l->cb(l->arg, e);
}

struct learn_page {
	struct router *r;
	size_t files, stamped;    /* files listed; with a generation */
};

/* Only learn.  Folders on the page become facts too ("name/", as a
 * stat's answer makes them), so that a name that is also a folder is
 * not taken for a file (stat prefers the folder). */
static int list_learn_only(void *arg, const struct list_entry *e)
{
	struct learn_page *lp = arg;
	if (e->is_prefix) {
		note_folder(lp->r, e->name);
	} else {
		lp->files++;
		lp->stamped += e->info.generation != 0;
	}
	return 0;
}

/* A file fact for name that a listing taught, none of a folder of that
 * name (stat_from_facts prefers the folder): *out set, true. */
static bool learnt_file(struct router *r, const char *name,
			const char *folder, struct obj_info *out)
{
	struct obj_info got;
	if (!stat_from_facts(r, name, folder, INT64_MAX, &got) || got.is_dir)
		return false;
	*out = got;
	return true;
}

/*
 * A name the map trusts for good once known (an immutable file of a
 * table), not known yet: one page of its folder's listing, from the name
 * on, teaches it and the names after it, which a reader of the table
 * opens next (list_learn_entry).  One request for a whole folder of data
 * files instead of one a file, when their bytes come from a replica next
 * door.  Answers *out and returns true when a page showed name as a
 * file (and no folder of that name).  A name the map knows anything of
 * (deleted, or a version refused) is asked about as before.  A source
 * whose listings carry no generations (S3), or that refuses to list, is
 * not asked this way again.  Facts from a page are dated when it was
 * asked, so a slow page never undoes what the map learnt meanwhile.
 */
static bool learn_by_listing(struct router *r, const char *name,
			     struct obj_info *out, const struct deadline *dl)
{
	struct source_fact known;
	if (!r->nrep || !backend_has(r->src, BACKEND_LIST_START_AT) ||
	    atomic_load(&r->no_learn) ||
	    r->facts.ops->get_source(r->facts.ctx, name, &known) == 0)
		return false;       /* (a deleted or stale name: ask it) */
	struct strbuf folder = STRBUF_INIT;
	strbuf_addf(&folder, "%s/", name);
	const char *slash = strrchr(name, '/');
	char *prefix = xstrndup(name, slash ? (size_t)(slash - name) + 1 : 0);
	bool learnt = false;

	/* One page of a folder at a time: a burst of cold opens in it (the
	 * tasks of one scan) waits for the pages in the air, and lists
	 * only for a name none of them showed. */
	struct flight *f;
	pthread_mutex_lock(&r->flight_lock);
	for (int waits = 0; waits < LEARN_WAITS; waits++) {
		for (f = r->learns; f && strcmp(f->name, prefix); f = f->next)
			;
		if (!f)
			break;
		flight_wait(r, f, NULL);
		pthread_mutex_unlock(&r->flight_lock);
		learnt = learnt_file(r, name, folder.buf, out);
		pthread_mutex_lock(&r->flight_lock);
		if (learnt)
			break;
	}
	if (learnt) {
		pthread_mutex_unlock(&r->flight_lock);
		free(prefix);
		strbuf_release(&folder);
		return true;
	}
	f = flight_add(&r->learns, prefix);
	pthread_mutex_unlock(&r->flight_lock);

	struct list_req req = { .prefix = prefix, .delimiter = "/",
				.max_keys = LEARN_PAGE, .start_at = name };
	struct learn_page lp = { r, 0, 0 };
	struct list_learn l = { r, list_learn_only, &lp, STRBUF_INIT, 0,
				wall_ns() };
	char *next = NULL;
	int rc = backend_list(r->src, &req, list_learn_entry, &l, &next, dl);
	free(next);
	free(prefix);
	strbuf_release(&l.names);
	flight_land(r, &r->learns, f, rc);
	if ((rc == 0 && lp.files && !lp.stamped) || rc == -EACCES ||
	    rc == -EPERM || rc == -ENOTSUP) {
		log_info("router: the source's listings %s; first opens ask "
			 "it one name at a time", rc ? strerror(-rc)
			 : "carry no generations");
		atomic_store(&r->no_learn, true);
	}
	learnt = rc == 0 && learnt_file(r, name, folder.buf, out);
	strbuf_release(&folder);
	return learnt;
}

/* The source answered a request begun at mono began: its time is a
 * floor on what a hedge to it takes (router_read.c). */
static void source_answered(struct router *r, int64_t began)
{
	health_answered(&r->health[r->nrep], mono_ns() - began);
}

static int router_stat(struct backend *b, const char *name,
		       struct obj_info *out, const struct deadline *dl)
{
	struct router *r = to_router(b);
	struct source_fact f;
	struct strbuf folder = STRBUF_INIT;
	int rc;

	strbuf_addf(&folder, "%s/", name);
	/* A name whose rule trusts what the source last said (bounded
	 * within its bound, immutable for good) needs no round trip. */
	struct fresh_rule rule;
	int64_t trust = *name ? trust_ns(r, name, &rule) : 0;
	if (trust > 0 && stat_from_facts(r, name, folder.buf, trust, out)) {
		strbuf_release(&folder);
		return 0;
	}
	if (trust == INT64_MAX && learn_by_listing(r, name, out, dl)) {
		strbuf_release(&folder);
		return 0;
	}
	/* (a covered tombstone is asked about: a folder of the name may
	 * exist, and folders have no changes of their own) */
	if (*name && feed_fact(r, name, &rule, &f) && !f.tombstone &&
	    f.generation) {
		fact_to_info(&f, out);
		strbuf_release(&folder);
		return 0;
	}
	int64_t asked = wall_ns(), began = mono_ns();
	rc = backend_stat(r->src, name, out, dl);
	if (rc == 0)
		source_answered(r, began);
	if (rc == 0 && *name) {
		/* Folders are facts too ("name/"), so that a path can still be
		 * walked while the source is down. */
		if (out->is_dir) {
			note_folder(r, folder.buf);
		} else if (out->generation) {
			info_to_fact(out, &f);
			note_answer(r, name, &f, asked);
		}
	} else if (router_store_down(rc) && r->conf.serve_stale_ms >= 0 &&
		   stat_from_facts(r, name, folder.buf,
				   r->conf.serve_stale_ms * NS_PER_MS, out)) {
		rc = 0;
	}
	strbuf_release(&folder);
	return rc;
}

static int router_list(struct backend *b, const struct list_req *req,
		       list_cb cb, void *arg, char **next_token,
		       const struct deadline *dl)
{
	struct router *r = to_router(b);
	int64_t began = wall_ns();
	struct list_learn l = { r, cb, arg, STRBUF_INIT, 0, began };

	freshness_saw(r->conf.fresh, req->prefix);
	int64_t t0 = mono_ns();
	int rc = backend_list(r->src, req, list_learn_entry, &l, next_token,
			      dl);
	if (rc == 0)
		source_answered(r, t0);
	/* a whole folder's listing teaches what it no longer holds */
	if (rc == 0 && req->delimiter && !strcmp(req->delimiter, "/") &&
	    !req->start_at) {
		const char **names = xcalloc(l.n + 1, sizeof(*names));
		const char *p = l.names.buf;
		for (size_t i = 0; i < l.n; p += strlen(p) + 1)
			names[i++] = p;
		listed_page(r->listed, req->prefix, req->token, *next_token,
			    names, l.n, began);
		free(names);
	}
	strbuf_release(&l.names);
	return rc;
}

/*
 * Open name at the source; concurrent opens of one name share a request
 * (single flight) without weakening close-to-open: an open shares only a
 * request sent after it began.  So an open that finds one in the air
 * queues the next one, which every open arriving meanwhile shares; its
 * first opener sends it once the one in the air has landed.  The
 * followers pin the version it found without a request of their own.
 */
static int open_source_shared(struct router *r, const char *name,
			      size_t tail_len, struct bobj **h,
			      const struct deadline *dl)
{
	struct flight *f, *sent = NULL, *queued = NULL;
	struct obj_info info;
	int rc;

	pthread_mutex_lock(&r->flight_lock);
	for (f = r->flights; f; f = f->next)
		if (!strcmp(f->name, name)) {
			if (f->sent)
				sent = f;
			else
				queued = f;
		}
	if (queued) {                            /* share the next one */
		rc = flight_wait(r, queued, &info);
		pthread_mutex_unlock(&r->flight_lock);
		if (rc < 0)
			return rc;
		rc = backend_open_pinned(r->src, name, &info, h);
		if (rc != -ENOTSUP)
			return rc;
		return backend_open(r->src, name, h, dl);
	}
	f = flight_add(&r->flights, name);
	if (sent)                /* its answer may predate this open */
		flight_wait(r, sent, NULL);
	f->sent = true;
	pthread_mutex_unlock(&r->flight_lock);

	int64_t began = mono_ns();
	rc = backend_open_tail(r->src, name, tail_len, h, dl);

	if (rc == 0) {
		source_answered(r, began);
		f->info = (*h)->info;
	}
	flight_land(r, &r->flights, f, rc);
	return rc;
}

/* Pick the version to pin: see the file comment.  A source asked is
 * asked for the last tail_len bytes too (struct bobj's tail) when it
 * serves every read: when there is no replica. */
static int pin_version(struct router *r, const char *name, size_t tail_len,
		       struct obj_info *v, struct bobj **src_h,
		       const struct deadline *dl)
{
	struct source_fact f;
	struct fresh_rule rule;
	*src_h = NULL;
	int64_t trust = trust_ns(r, name, &rule);
	if (trust > 0 && recent_fact(r, name, trust, &f) && !f.tombstone &&
	    f.generation) {
		fact_to_info(&f, v);
		return 0;
	}
	if (feed_fact(r, name, &rule, &f)) {
		if (f.tombstone)
			return -ENOENT;       /* the feed told of its deletion */
		if (f.generation) {
			fact_to_info(&f, v);
			return 0;
		}
	}
	if (trust == INT64_MAX && learn_by_listing(r, name, v, dl))
		return 0;
	/* With replicas the bytes are theirs to serve: a tail from the
	 * source would cross the WAN for bytes a replica next door holds. */
	if (r->nrep)
		tail_len = 0;
	int64_t asked = wall_ns();
	int rc = open_source_shared(r, name, tail_len, src_h, dl);
	if (rc == 0) {
		*v = (*src_h)->info;
		info_to_fact(v, &f);
		note_answer(r, name, &f, asked);
		return 0;
	}
	if (rc == -ENOENT) {
		router_note_gone(r, name, asked);
		return rc;
	}
	if (router_store_down(rc) && r->conf.serve_stale_ms >= 0 &&
	    recent_fact(r, name, r->conf.serve_stale_ms * NS_PER_MS, &f) &&
	    !f.tombstone && f.generation) {
		log_notice("source down (%s): serving '%s' at its last known "
			   "generation %" PRIu64, strerror(-rc), name,
			   f.generation);
		fact_to_info(&f, v);
		return 0;
	}
	return rc;
}

static int router_open_tail(struct backend *b, const char *name,
			    size_t tail_len, struct bobj **out,
			    const struct deadline *dl)
{
	struct router *r = to_router(b);
	struct obj_info v;
	struct bobj *src_h;
	int rc = pin_version(r, name, tail_len, &v, &src_h, dl);
	if (rc < 0)
		return rc;

	struct router_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, name);
	o->base.info = v;
	o->r = r;
	o->src_h = src_h;
	if (src_h)               /* the bytes of the version pinned */
		bobj_take_tail(&o->base, src_h);
	o->cands = xcalloc(r->nrep ? r->nrep : 1, sizeof(*o->cands));
	atomic_init(&o->refs, 1);
	pthread_mutex_init(&o->lock, NULL);
	timeutil_cond_init(&o->cv);
	*out = &o->base;
	return 0;
}

static int router_open(struct backend *b, const char *name, struct bobj **out,
		       const struct deadline *dl)
{
	return router_open_tail(b, name, 0, out, dl);
}

/* One word for what replica i holds of name, against version v. */
static const char *replica_word(struct router *r, size_t i, const char *name,
				const struct source_fact *v, uint64_t *gen)
{
	struct replica_fact rf;
	*gen = 0;
	if (r->facts.ops->get_replica(r->facts.ctx, r->rep[i]->name, name,
				      &rf) < 0)
		return "unknown";
	switch (rf.state) {
	case REPLICA_ABSENT: return "absent";
	case REPLICA_UNPROVEN: return "unproven";
	case REPLICA_BAD: return "bad";
	case REPLICA_HOLDS:
		if (v && rf.generation == v->generation)
			return "current";
		*gen = rf.generation;
		return "lagging";
	default: return "unknown";
	}
}

static int router_explain(struct backend *b, const char *name,
			  const char *attr, struct strbuf *out,
			  const struct deadline *dl)
{
	struct router *r = to_router(b);
	struct source_fact v;
	uint64_t gen;

	if (!strcmp(attr, "freshness")) {
		struct fresh_rule rule;
		char text[32];
		trust_ns(r, name, &rule);
		struct fresh_setting s = { rule.kind, rule.bound_ms };
		fresh_setting_format(&s, text, sizeof(text));
		strbuf_addf(out, "%s (%s)", text, rule.why);
		if (rule.kind == FRESH_BOUNDED && r->conf.feed)
			strbuf_adds(out, feed_fact(r, name, &rule, &v)
				    ? "; current by the change feed"
				    : "; not covered by the change feed (stalled, "
				      "or learnt before it): asking the source");
		return 0;
	}
	bool known = r->facts.ops->get_source(r->facts.ctx, name, &v) == 0 &&
		     !v.tombstone && v.generation;

	if (!known) {
		/* Ask the source once; the answer becomes a fact. */
		struct obj_info info;
		int rc = router_stat(b, name, &info, dl);
		if (rc < 0)
			return rc;
		if (info.is_dir)
			return -ENODATA;
		info_to_fact(&info, &v);
		known = v.generation != 0;
	}
	if (!strcmp(attr, "generation")) {
		if (!known)
			return -ENODATA;
		strbuf_addf(out, "%" PRIu64, v.generation);
	} else if (!strcmp(attr, "replicas")) {
		for (size_t i = 0; i < r->nrep; i++) {
			const char *w = replica_word(r, i, name,
						     known ? &v : NULL, &gen);
			if (health_failing(&r->health[i])) {
				w = "down";
				gen = 0;
			}
			strbuf_addf(out, "%s=%s", r->rep[i]->name, w);
			if (gen)
				strbuf_addf(out, ":%" PRIu64, gen);
			strbuf_addch(out, ' ');
		}
		strbuf_addf(out, "%s=current", r->src->name);
	} else if (!strcmp(attr, "source")) {
		/* The first store, in the order reads try them, that holds
		 * the version and is not failing (a store whose breaker
		 * has let a trial read through is still down until one
		 * succeeds), nor failed since its last good read (a read
		 * sent to such a store also goes to the next one at once). */
		int order[ROUTER_MAX_REPLICAS + 1];
		size_t n = router_rank(r, order);
		const char *who = r->src->name;
		for (size_t k = 0; k + 1 < n && known; k++) {
			size_t i = (size_t)order[k];
			if (!health_failing(&r->health[i]) &&
			    !health_suspect(&r->health[i]) &&
			    !strcmp(replica_word(r, i, name, &v, &gen),
				    "current")) {
				who = r->rep[i]->name;
				break;
			}
		}
		strbuf_adds(out, who);
	} else {
		return -ENODATA;
	}
	return 0;
}

/* ------------------------------------------------------------- writes */

/*
 * The lake is written in one place: writes go to the source only, and
 * what they answer becomes a fact at once, so this node reads its own
 * write (the replicas learn of it from the replicator).  A failed
 * precondition says the map's version of the name may be wrong: it is
 * forgotten, and the next open asks the source.
 */
static int router_writer_open(struct backend *b, const char *name,
			      const struct write_pre *pre, struct bwriter **out,
			      const struct deadline *dl)
{
	return wrapped_writer_open(b, to_router(b)->src, name, pre, out, dl);
}

static void note_write(struct router *r, const char *name, int rc,
		       const struct obj_info *info, int64_t asked_ns)
{
	struct source_fact f;
	if (rc == 0 && info) {
		info_to_fact(info, &f);
		note_answer(r, name, &f, asked_ns);
	} else if (!info && (rc == 0 || rc == -ENOENT)) {
		/* a removal: the name is gone, by this or another hand */
		router_note_gone(r, name, asked_ns);
	} else if (rc == -ESTALE || rc == -EEXIST) {
		router_note_stale(r, name);
	}
}

static int router_writer_commit(struct bwriter *w, struct obj_info *out,
				const struct deadline *dl)
{
	struct router *r = to_router(w->b);
	char *name = xstrdup(w->name);
	int64_t asked = wall_ns();
	int rc = wrapped_writer_commit(w, out, dl);
	note_write(r, name, rc, out, asked);
	free(name);
	return rc;
}

static int router_remove(struct backend *b, const char *name,
			 const struct write_pre *pre, const struct deadline *dl)
{
	struct router *r = to_router(b);
	int64_t asked = wall_ns();
	int rc = backend_remove(r->src, name, pre, dl);
	note_write(r, name, rc, NULL, asked);
	return rc;
}

/* A copy makes a new generation of to, as an upload does. */
static int router_copy(struct backend *b, const char *from,
		       uint64_t from_generation, const char *to,
		       const struct write_pre *pre, struct obj_info *out,
		       const struct deadline *dl)
{
	struct router *r = to_router(b);
	int64_t asked = wall_ns();
	int rc = backend_copy(r->src, from, from_generation, to, pre, out, dl);
	note_write(r, to, rc, out, asked);
	if (rc == -ENOENT)
		router_note_stale(r, from);
	return rc;
}

/* A metadata update keeps the generation: nothing for the map to learn. */
static int router_set_meta(struct backend *b, const char *name,
			   const struct write_pre *pre,
			   const struct meta_kv *kv, size_t n,
			   struct obj_info *out, const struct deadline *dl)
{
	return backend_set_meta(to_router(b)->src, name, pre, kv, n, out, dl);
}

/* An immutable name changes only by deletion, which an open (it always
 * reaches the router) still learns: the kernel may keep its entry and
 * attributes for an hour.  So may it a table's folders ("name/"): they
 * last as long as the table, and what they hold is listed afresh. */
static int64_t router_cache_ms(struct backend *b, const char *name)
{
	struct router *r = to_router(b);
	struct fresh_rule rule;
	size_t n = strlen(name);

	if (n && name[n - 1] == '/') {
		char *folder = xstrndup(name, n - 1);
		bool table = freshness_table_folder(r->conf.fresh, folder);
		free(folder);
		return table ? IMMUTABLE_CACHE_MS : -1;
	}
	return trust_ns(r, name, &rule) == INT64_MAX ? IMMUTABLE_CACHE_MS : -1;
}

static void router_probe(struct backend *b, struct probe_result *res,
			 const struct deadline *dl)
{
	struct router *r = to_router(b);
	backend_probe(r->src, res, dl);
}

static void store_metrics(struct backend *s, struct store_health *h,
			  struct prom *p)
{
	backend_metrics(s, p);
	health_metrics(h, s->name, p);
}

/* The router's own counters: name, help, and where each is kept. */
static const struct {
	const char *name, *help;
	size_t at;                /* offsetof(struct router, counter) */
} router_counters[] = {
	{ "hylake_router_reads_total",
	  "reads of file bytes answered by some store",
	  offsetof(struct router, reads) },
	{ "hylake_source_fallbacks_total",
	  "reads the source served because no replica could (lagging, "
	  "absent, down or wrong)", offsetof(struct router, fallbacks) },
	{ "hylake_replica_bad_copies_total",
	  "replica copies whose bytes failed a check against the source's "
	  "crc32c (never served)", offsetof(struct router, bad_copies) },
	{ "hylake_failovers_total",
	  "reads that moved to the next store after one failed",
	  offsetof(struct router, failovers) },
	{ "hylake_hedged_reads_total",
	  "slow reads also sent to the next store",
	  offsetof(struct router, hedges) },
	{ "hylake_hedge_wins_total",
	  "hedged reads the second store answered first",
	  offsetof(struct router, hedge_wins) },
	{ "hylake_write_backs_total",
	  "files written through the mount also put on the write_back "
	  "replica, stamped with their new generation",
	  offsetof(struct router, write_backs) },
	{ "hylake_write_back_failures_total",
	  "write-backs that failed or were skipped (the object is in the "
	  "source all the same; the replicator brings it)",
	  offsetof(struct router, write_back_fails) },
};

static void router_metrics(struct backend *b, struct prom *p)
{
	struct router *r = to_router(b);

	for (size_t i = 0; i < r->nrep; i++)
		store_metrics(r->rep[i], &r->health[i], p);
	store_metrics(r->src, &r->health[r->nrep], p);
	for (size_t i = 0; i < sizeof(router_counters) / sizeof(router_counters[0]); i++) {
		atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)
			((char *)r + router_counters[i].at);
		prom_add(p, router_counters[i].name, PROM_COUNTER,
			 router_counters[i].help, NULL, NULL,
			 (double)atomic_load(c));
	}
}

static void router_destroy(struct backend *b)
{
	struct router *r = to_router(b);
	if (r->pool.th)
		pool_stop(&r->pool);
	backend_destroy(r->src);
	for (size_t i = 0; i < r->nrep; i++)
		backend_destroy(r->rep[i]);
	for (size_t i = 0; i <= r->nrep; i++)
		health_destroy(&r->health[i]);
	free(r->health);
	listed_destroy(r->listed);
	pthread_mutex_destroy(&r->hedge_lock);
	pthread_mutex_destroy(&r->flight_lock);
	free(r->rep);
	backend_release(b);
	free(r);
}

static const struct backend_ops router_ops = {
	.type = "router",
	.stat = router_stat,
	.list = router_list,
	.open = router_open,
	.open_tail = router_open_tail,
	.read = router_read,
	.close = router_close,
	.writer_open = router_writer_open,
	.writer_write = wrapped_writer_write,
	.writer_commit = router_writer_commit,
	.writer_abort = wrapped_writer_abort,
	.remove = router_remove,
	.copy = router_copy,
	.set_meta = router_set_meta,
	.explain = router_explain,
	.probe = router_probe,
	.metrics = router_metrics,
	.cache_ms = router_cache_ms,
	.destroy = router_destroy,
};

int router_create(struct backend *source, struct backend **replicas,
		  size_t nreplicas, struct facts facts,
		  const struct router_conf *conf, struct backend **out)
{
	if (nreplicas > ROUTER_MAX_REPLICAS)
		return -E2BIG;
	struct router *r = xcalloc(1, sizeof(*r));
	struct strbuf desc = STRBUF_INIT;

	r->src = source;
	r->nrep = nreplicas;
	r->rep = xcalloc(nreplicas ? nreplicas : 1, sizeof(*r->rep));
	if (nreplicas)
		memcpy(r->rep, replicas, nreplicas * sizeof(*r->rep));
	r->facts = facts;
	r->conf = *conf;
	r->health = xcalloc(nreplicas + 1, sizeof(*r->health));
	for (size_t i = 0; i <= nreplicas; i++)
		health_init(&r->health[i]);
	pthread_mutex_init(&r->hedge_lock, NULL);
	pthread_mutex_init(&r->flight_lock, NULL);
	r->hedge_tokens = 1.0;
	r->listed = listed_create(LISTED_NAMES);
	if (nreplicas && conf->hedge_budget_pct > 0)
		pool_start(&r->pool, conf->hedge_threads > 0
			   ? (unsigned)conf->hedge_threads : 4);
	strbuf_adds(&desc, source->describe);
	for (size_t i = 0; i < nreplicas; i++)
		strbuf_addf(&desc, " + %s (%s)", replicas[i]->name,
			    replicas[i]->describe);
	/* Listings come from the source: so do their capabilities. */
	backend_init(&r->base, &router_ops, "router", desc.buf, source->caps);
	strbuf_release(&desc);
	*out = &r->base;
	return 0;
}
