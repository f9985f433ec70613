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
 * A replica never holds a read for long: each attempt on one (its open
 * and its read) gets a share of what is left of the deadline (half at
 * most; ten times its p95, at least REPLICA_FLOOR_NS, once that is
 * known), a timeout within it is not retried there, failed opens count
 * against its health like failed reads, and a reader that has waited its
 * expected latency (p95, or HEDGE_COLD_NS before there is one) asks the
 * next store too: within the hedge budget, or at once when the replica
 * had a fault (no answer, reset, timeout) since its last good read.  A
 * replica overtaken that way has failed too; three failures in a row
 * open its breaker.  So a replica that swallows requests costs about one
 * share and a few expected latencies, not a timeout a file.
 */
#include "backends/composite/router.h"
#include "backends/backend.h"
#include "backends/composite/contract.h"
#include "backends/composite/freshness.h"
#include "backends/composite/listed.h"
#include "backends/composite/verify.h"
#include "backends/composite/health.h"
#include "backends/util/pool.h"
#include "backends/util/crc32c.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACT_REFRESH_NS (60 * NS_PER_SEC)
#define HEDGE_MIN_NS (2 * NS_PER_MS)   /* never hedge sooner than this */
#define HEDGE_BURST 10.0               /* hedges that may be saved up */
#define SLOWER(a, b) ((a) > 2 * (b) + 5.0)  /* ms: clearly slower */
#define LISTED_NAMES (1u << 20)   /* names of folder listings kept */
#define IMMUTABLE_CACHE_MS (3600 * 1000)  /* kernel caches of such names */
#define HEDGE_COLD_NS (250 * NS_PER_MS)  /* expected latency, unmeasured */
#define REPLICA_SHARE_PCT 50           /* of the time left, at most */
#define REPLICA_P95_MULT 10
#define REPLICA_FLOOR_NS (2 * NS_PER_SEC)
#define OPEN_WAIT_SLICE_NS (50 * NS_PER_MS)
#define NOT_HERE (-ENODATA)  /* the replica cannot serve V: skip, no fault */

struct router {
	struct backend base;
	struct backend *src;
	struct backend **rep;
	size_t nrep;
	struct facts facts;
	struct router_conf conf;
	struct store_health *health;   /* replicas in order, then the source */
	pthread_mutex_t hedge_lock;
	double hedge_tokens;      /* hedge budget: + budget% per read, -1 each */
	struct pool pool;         /* runs first requests of hedged reads */
	atomic_uint_fast64_t hedges, hedge_wins;
	atomic_uint_fast64_t reads;      /* router_read calls that returned bytes */
	atomic_uint_fast64_t fallbacks;  /* of which the source served */
	atomic_uint_fast64_t failovers;  /* a store failed; the read moved on */
	atomic_uint_fast64_t bad_copies; /* replica bytes that failed a check */
	struct listed *listed;    /* what folder listings showed */
	pthread_mutex_t flight_lock;
	struct flight *flights;   /* opens of the source in progress */
};

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

/* CAND_OPENING: one reader is opening it (unlocked); others wait on
 * router_obj.cv, no longer than their own share of their deadline. */
enum cand_state { CAND_UNTRIED, CAND_OPENING, CAND_OK, CAND_SKIP };

struct cand {
	enum cand_state st;
	struct bobj *h;           /* kept until close, even once skipped */
	/* How its bytes are checked: sums (set once, then immutable), or
	 * the whole copy at its first read (whole_first), or not at all
	 * (a trusted replica: neither). */
	struct blocksums *sums;
	bool whole_first;
};

struct router_obj {
	struct bobj base;         /* base.info is the pinned version V */
	struct router *r;
	atomic_int refs;          /* the opener, and hedged reads in flight */
	pthread_mutex_t lock;     /* guards cands, src_h */
	pthread_cond_t cv;        /* a candidate's open ended (monotonic) */
	struct cand *cands;       /* one per replica */
	struct bobj *src_h;
};

static struct router *to_router(struct backend *b)
{
	return (struct router *)b;
}

/* Errors that mean "the store is not answering", not "no such thing". */
static bool store_down(int rc)
{
	return rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ETIMEDOUT ||
	       rc == -ECONNRESET || rc == -EAGAIN || rc == -EIO;
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
	    f->confirmed_ns - old.confirmed_ns < refresh)
		return;
	r->facts.ops->put_source(r->facts.ctx, name, f);
}

static void note_replica(struct router *r, size_t i, const char *name,
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
 * asking the source: 0 (strict: never), the bound, or INT64_MAX
 * (immutable: any fact until the name is deleted).  Learns table roots
 * from the name first.
 */
static int64_t trust_ns(struct router *r, const char *name)
{
	struct fresh_rule rule;

	freshness_saw(r->conf.fresh, name);
	freshness_of(r->conf.fresh, name, &rule);
	switch (rule.kind) {
	case FRESH_IMMUTABLE:
		return INT64_MAX;
	case FRESH_BOUNDED:
		return rule.bound_ms * NS_PER_MS;
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
		struct source_fact gone = { .tombstone = true,
					    .confirmed_ns = wall_ns() };
		log_info("router: '%s' is no longer listed by the source: "
			 "deleted", name);
		r->facts.ops->put_source(r->facts.ctx, name, &gone);
		*f = gone;
	}
	return true;
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
	int64_t trust = *name ? trust_ns(r, name) : 0;
	if (trust > 0 && stat_from_facts(r, name, folder.buf, trust, out)) {
		strbuf_release(&folder);
		return 0;
	}
	rc = backend_stat(r->src, name, out, dl);
	if (rc == 0 && *name) {
		/* Folders are facts too ("name/"), so that a path can still be
		 * walked while the source is down. */
		if (out->is_dir) {
			struct source_fact d = { .confirmed_ns = wall_ns() };
			note_source(r, folder.buf, &d);
		} else if (out->generation) {
			info_to_fact(out, &f);
			note_source(r, name, &f);
		}
	} else if (store_down(rc) && r->conf.serve_stale_ms >= 0 &&
		   stat_from_facts(r, name, folder.buf,
				   r->conf.serve_stale_ms * NS_PER_MS, out)) {
		rc = 0;
	}
	strbuf_release(&folder);
	return rc;
}

struct list_learn {
	struct router *r;
	list_cb cb;
	void *arg;
	struct strbuf names;      /* the page's object names, NUL-separated */
	size_t n;
};

/* Each listed name teaches table roots, and a listed file whose rule is
 * immutable becomes a fact: its first open then asks nobody. */
static int list_learn_entry(void *arg, const struct list_entry *e)
{
	struct list_learn *l = arg;
	struct source_fact f, old;

	if (trust_ns(l->r, e->name) == INT64_MAX && !e->is_prefix &&
	    e->info.generation &&
	    (l->r->facts.ops->get_source(l->r->facts.ctx, e->name, &old) < 0 ||
	     old.tombstone || old.generation != e->info.generation)) {
		info_to_fact(&e->info, &f);
		note_source(l->r, e->name, &f);
	}
	if (!e->is_prefix) {
		strbuf_add(&l->names, e->name, strlen(e->name) + 1);
		l->n++;
	}
	return l->cb(l->arg, e);
}

static int router_list(struct backend *b, const struct list_req *req,
		       list_cb cb, void *arg, char **next_token,
		       const struct deadline *dl)
{
	struct router *r = to_router(b);
	struct list_learn l = { r, cb, arg, STRBUF_INIT, 0 };
	int64_t began = wall_ns();

	freshness_saw(r->conf.fresh, req->prefix);
	int rc = backend_list(r->src, req, list_learn_entry, &l, next_token,
			      dl);
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

/*
 * Open name at the source; concurrent opens of one name share a request
 * (single flight) without weakening close-to-open: an open shares only a
 * request sent after it began.  So an open that finds one in the air
 * queues the next one, which every open arriving meanwhile shares; its
 * first opener sends it once the one in the air has landed.  The
 * followers pin the version it found without a request of their own.
 */
static int open_source_shared(struct router *r, const char *name,
			      struct bobj **h, const struct deadline *dl)
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
	f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	pthread_cond_init(&f->cv, NULL);
	f->next = r->flights;
	r->flights = f;
	if (sent)                /* its answer may predate this open */
		flight_wait(r, sent, NULL);
	f->sent = true;
	pthread_mutex_unlock(&r->flight_lock);

	rc = backend_open(r->src, name, h, dl);

	pthread_mutex_lock(&r->flight_lock);
	for (struct flight **pp = &r->flights; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->rc = rc;
	if (rc == 0)
		f->info = (*h)->info;
	f->done = true;
	pthread_cond_broadcast(&f->cv);
	bool last = f->waiters == 0;
	pthread_mutex_unlock(&r->flight_lock);
	if (last)
		flight_free(f);
	return rc;
}

/* Pick the version to pin: see the file comment. */
static int pin_version(struct router *r, const char *name,
		       struct obj_info *v, struct bobj **src_h,
		       const struct deadline *dl)
{
	struct source_fact f;
	*src_h = NULL;
	int64_t trust = trust_ns(r, name);
	if (trust > 0 && recent_fact(r, name, trust, &f) && !f.tombstone &&
	    f.generation) {
		fact_to_info(&f, v);
		return 0;
	}
	int rc = open_source_shared(r, name, src_h, dl);
	if (rc == 0) {
		*v = (*src_h)->info;
		info_to_fact(v, &f);
		note_source(r, name, &f);
		return 0;
	}
	if (rc == -ENOENT) {
		struct source_fact t = { .tombstone = true,
					 .confirmed_ns = wall_ns() };
		note_source(r, name, &t);
		return rc;
	}
	if (store_down(rc) && r->conf.serve_stale_ms >= 0 &&
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

static int router_open(struct backend *b, const char *name, struct bobj **out,
		       const struct deadline *dl)
{
	struct router *r = to_router(b);
	struct obj_info v;
	struct bobj *src_h;
	int rc = pin_version(r, name, &v, &src_h, dl);
	if (rc < 0)
		return rc;

	struct router_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, name);
	o->base.info = v;
	o->r = r;
	o->src_h = src_h;
	o->cands = xcalloc(r->nrep ? r->nrep : 1, sizeof(*o->cands));
	atomic_init(&o->refs, 1);
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = &o->base;
	return 0;
}

static bool holds_v(enum replica_state st, uint64_t gen,
		    const struct obj_info *v)
{
	return st == REPLICA_HOLDS && (gen == v->generation || gen == 0);
}

/* The block sums the map keeps for replica i's copy of name, if they
 * prove v; else NULL. */
static struct blocksums *known_sums(struct router *r, size_t i,
				    const char *name, const struct obj_info *v)
{
	struct blocksums *s = NULL;
	void *buf;
	size_t len;

	if (r->facts.ops->get_sums(r->facts.ctx, r->rep[i]->name, name, &buf,
				   &len) < 0)
		return NULL;
	if (blocksums_decode(buf, len, &s) < 0 || !blocksums_prove(s, v)) {
		free(s);
		s = NULL;
	}
	free(buf);
	return s;
}

/* Remember sums proven for replica i's copy of name. */
static void keep_sums(struct router *r, size_t i, const char *name,
		      const struct blocksums *s)
{
	struct strbuf enc = STRBUF_INIT;
	blocksums_encode(s, &enc);
	r->facts.ops->put_sums(r->facts.ctx, r->rep[i]->name, name, enc.buf,
			       enc.len);
	strbuf_release(&enc);
}

/*
 * Candidate i holds V by its stamp (c->h is pinned to the copy): settle
 * how its bytes will be proven, and return the handle, or NULL when
 * nothing can prove them.  c is the opener's own, not yet published.
 */
static struct bobj *cand_ready(struct router_obj *o, size_t i,
			       struct cand *c, const struct deadline *dl)
{
	struct router *r = o->r;
	struct backend *rep = r->rep[i];
	const struct obj_info *v = &o->base.info;
	enum verify_mode mode = r->conf.verify[i];

	c->st = CAND_OK;
	if (mode == VERIFY_TRUST)
		return c->h;
	c->sums = known_sums(r, i, o->base.name, v);
	if (c->sums)
		return c->h;
	if (v->has_crc32c &&
	    verify_load_manifest(rep, o->base.name, v, &c->sums, dl) == 0) {
		keep_sums(r, i, o->base.name, c->sums);
		return c->h;
	}
	if (mode == VERIFY_WHOLE_FIRST && v->has_crc32c) {
		c->whole_first = true;        /* proven by its first read */
		return c->h;
	}
	log_info("replica %s: nothing proves the bytes of '%s' (%s); not "
		 "using it", rep->name, o->base.name, v->has_crc32c
		 ? "no block manifest" : "the source gives no crc32c");
	c->st = CAND_SKIP;
	return NULL;
}

/*
 * Open candidate i into c (the opener's own copy, o->lock not held): a
 * pinned handle, or NULL to skip.  An open the store did not answer
 * counts against its health.
 */
static struct bobj *open_candidate(struct router_obj *o, size_t i,
				   struct cand *c, const struct deadline *dl)
{
	struct router *r = o->r;
	struct backend *rep = r->rep[i];
	const struct obj_info *v = &o->base.info;
	struct replica_fact rf;

	c->st = CAND_SKIP;
	bool known = r->facts.ops->get_replica(r->facts.ctx, rep->name,
					       o->base.name, &rf) == 0;
	if (known && rf.state == REPLICA_HOLDS && rf.generation == v->generation &&
	    rf.size == v->size && rf.etag[0]) {
		struct obj_info pin = { .size = rf.size,
					.generation = rf.generation };
		snprintf(pin.etag, sizeof(pin.etag), "%s", rf.etag);
		if (backend_open_pinned(rep, o->base.name, &pin, &c->h) == 0)
			return cand_ready(o, i, c, dl);
	}
	if (known && rf.state != REPLICA_UNKNOWN &&
	    !holds_v(rf.state, rf.generation, v) &&
	    wall_ns() - rf.checked_ns <= r->conf.replica_recheck_ms * NS_PER_MS)
		return NULL;        /* known to lag or lack it: no request */

	struct bobj *h;
	int rc = backend_open(rep, o->base.name, &h, dl);
	if (rc == -ENOENT) {
		note_replica(r, i, o->base.name, REPLICA_ABSENT, NULL);
		return NULL;
	}
	if (rc < 0) {
		log_info("replica %s: '%s' not available (%s)", rep->name,
			 o->base.name, strerror(-rc));
		if (store_down(rc))
			health_fail(&r->health[i]);
		return NULL;
	}
	uint64_t held;
	enum replica_state st = contract_judge(&h->info, v, &held);
	struct obj_info rec = h->info;
	rec.generation = held;              /* proven by stamp or by MD5 */
	note_replica(r, i, o->base.name, st, &rec);
	if (st == REPLICA_HOLDS && rec.generation == v->generation) {
		c->h = h;
		return cand_ready(o, i, c, dl);
	}
	if (st == REPLICA_BAD)
		log_warn("replica %s: '%s' is stamped generation %" PRIu64
			 " but its size or crc32c differ from the source's; "
			 "not serving it", rep->name, o->base.name,
			 h->info.generation);
	bobj_close(h);
	return NULL;
}

/* Wait, o->lock held, while candidate c is being opened: until dl passes
 * or is cancelled.  False when it gave up. */
static bool wait_open(struct router_obj *o, const struct cand *c,
		      const struct deadline *dl)
{
	while (c->st == CAND_OPENING) {
		int64_t now = mono_ns();
		if (now >= dl->at || (dl->cancel && atomic_load(dl->cancel)))
			return false;
		int64_t until = now + OPEN_WAIT_SLICE_NS < dl->at
				? now + OPEN_WAIT_SLICE_NS : dl->at;
		struct timespec ts = { until / NS_PER_SEC, until % NS_PER_SEC };
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	return true;
}

/*
 * Decide candidate i: a pinned handle, or NULL to skip it.  The first
 * reader to need it opens it without o->lock (an open is a HEAD, maybe a
 * manifest GET, and a replica that swallows them must not hold the
 * file's other readers: the source among them); the others wait for
 * that open within their own deadline.
 */
static struct bobj *candidate(struct router_obj *o, size_t i,
			      const struct deadline *dl)
{
	struct cand *c = &o->cands[i];
	struct bobj *h;

	pthread_mutex_lock(&o->lock);
	if (!wait_open(o, c, dl)) {
		pthread_mutex_unlock(&o->lock);
		return NULL;
	}
	if (c->st != CAND_UNTRIED) {
		h = c->st == CAND_OK ? c->h : NULL;
		pthread_mutex_unlock(&o->lock);
		return h;
	}
	c->st = CAND_OPENING;
	pthread_mutex_unlock(&o->lock);

	struct cand mine = { .st = CAND_UNTRIED };
	h = open_candidate(o, i, &mine, dl);

	pthread_mutex_lock(&o->lock);
	*c = mine;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->lock);
	return h;
}

/* A source handle pinned to V.  o->lock held. */
static int source_handle(struct router_obj *o, const struct deadline *dl)
{
	struct router *r = o->r;
	const struct obj_info *v = &o->base.info;

	if (o->src_h)
		return 0;
	int rc = -ENOTSUP;
	if (v->generation)
		rc = backend_open_pinned(r->src, o->base.name, v, &o->src_h);
	if (rc != -ENOTSUP)
		return rc;
	struct bobj *h;
	rc = backend_open(r->src, o->base.name, &h, dl);
	if (rc < 0)
		return rc;
	if (!obj_info_same_version(&h->info, v)) {
		bobj_close(h);
		return -ESTALE;
	}
	o->src_h = h;
	return 0;
}

/* Whole-object reads can be checked against the source's crc32c. */
static bool whole_and_wrong(const struct obj_info *v, const void *buf,
			    ssize_t n, uint64_t off)
{
	return off == 0 && n > 0 && (uint64_t)n == v->size && v->has_crc32c &&
	       crc32c_update(0, buf, (size_t)n) != v->crc32c;
}

/* ------------------------------------------------------------ reading */

static void obj_unref(struct router_obj *o)
{
	if (atomic_fetch_sub(&o->refs, 1) != 1)
		return;
	for (size_t i = 0; i < o->r->nrep; i++) {
		if (o->cands[i].h)
			bobj_close(o->cands[i].h);
		free(o->cands[i].sums);
	}
	if (o->src_h)
		bobj_close(o->src_h);
	free(o->cands);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->lock);
	bobj_release(&o->base);
	free(o);
}

/* Where a read goes: replica idx's handle, or the source's (idx < 0). */
struct target {
	struct bobj *h;
	int idx;
};

/*
 * A read from replica t, its bytes proven: through the copy's sums, or,
 * at the first read of a copy to be verified whole, by reading it whole
 * (served from the same bytes when the read asks for all of them).
 * -EBADMSG when the bytes are not V's.
 */
static ssize_t read_replica(struct router_obj *o, const struct target *t,
			    void *buf, size_t len, uint64_t off,
			    const struct deadline *dl)
{
	struct router *r = o->r;
	struct cand *c = &o->cands[t->idx];
	const struct obj_info *v = &o->base.info;
	struct blocksums *s = NULL;
	uint64_t bad = 0;
	ssize_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	const struct blocksums *sums = c->sums;
	bool whole = c->whole_first;
	pthread_mutex_unlock(&o->lock);
	if (!sums && !whole)
		return bobj_read(t->h, buf, len, off, dl);     /* trusted */
	if (!sums) {
		if (off == 0 && len >= v->size) {
			n = bobj_read(t->h, buf, len, 0, dl);
			if (n < 0)
				return n;
			rc = verify_buffer(buf, (size_t)n, v, &s);
		} else {
			rc = verify_whole(t->h, v, &s, dl);
		}
		if (rc < 0) {
			if (rc == -EBADMSG)
				log_warn("replica %s: the bytes of '%s' do not "
					 "match generation %" PRIu64 "'s crc32c",
					 r->rep[t->idx]->name, o->base.name,
					 v->generation);
			free(s);
			return rc;
		}
		keep_sums(r, (size_t)t->idx, o->base.name, s);
		pthread_mutex_lock(&o->lock);
		if (!c->sums) {
			c->sums = s;
			s = NULL;
		}
		c->whole_first = false;
		sums = c->sums;
		pthread_mutex_unlock(&o->lock);
		free(s);
		if (off == 0 && len >= v->size)
			return n;             /* the bytes just proven */
	}
	n = verify_read(t->h, sums, buf, len, off, dl, &bad);
	if (n == -EBADMSG)
		log_warn("replica %s: block %" PRIu64 " of '%s' differs from "
			 "its sum (generation %" PRIu64 ")",
			 r->rep[t->idx]->name, bad, o->base.name,
			 v->generation);
	return n;
}

static struct store_health *health_of(struct router *r, int idx)
{
	return &r->health[idx < 0 ? r->nrep : (size_t)idx];
}

static const char *store_name(struct router *r, int idx)
{
	return idx < 0 ? r->src->name : r->rep[idx]->name;
}

/*
 * Replica i's share of dl: at most REPLICA_SHARE_PCT of what is left, so
 * that the next store, the source last, still has time; once its p95 is
 * known, REPLICA_P95_MULT times that (at least REPLICA_FLOOR_NS) unless
 * the attempt reads a whole copy to verify it.  A timeout within it is
 * final: the next store is asked instead.
 */
static struct deadline replica_share(struct router *r, size_t i,
				     const struct deadline *dl, bool whole)
{
	struct deadline d = *dl;
	int64_t now = mono_ns();
	int64_t share = dl->at > now
			? (dl->at - now) / 100 * REPLICA_SHARE_PCT : 0;
	int64_t p95 = health_p95_ns(&r->health[i]);

	if (p95 && !whole) {
		int64_t want = p95 * REPLICA_P95_MULT;
		if (want < REPLICA_FLOOR_NS)
			want = REPLICA_FLOOR_NS;
		if (want < share)
			share = want;
	}
	d.at = now + share;
	d.timeout_final = true;
	return d;
}

/* Will replica i's next read of o read the whole copy to verify it? */
static bool whole_pending(struct router_obj *o, int i)
{
	pthread_mutex_lock(&o->lock);
	bool w = o->cands[i].whole_first;
	pthread_mutex_unlock(&o->lock);
	return w;
}

/*
 * One read from one store, timed into its health.  A replica target not
 * opened yet (t->h NULL) is opened first; NOT_HERE when it cannot serve.
 */
static ssize_t read_on(struct router_obj *o, struct target *t,
		       void *buf, size_t len, uint64_t off,
		       const struct deadline *dl)
{
	struct router *r = o->r;
	struct deadline share;

	if (t->idx >= 0) {
		if (!t->h) {
			share = replica_share(r, (size_t)t->idx, dl, false);
			t->h = candidate(o, (size_t)t->idx, &share);
			if (!t->h)
				return NOT_HERE;
		}
		share = replica_share(r, (size_t)t->idx, dl,
				      whole_pending(o, t->idx));
		dl = &share;
	}
	int64_t t0 = mono_ns();
	ssize_t n = t->idx < 0 ? bobj_read(t->h, buf, len, off, dl)
			       : read_replica(o, t, buf, len, off, dl);
	if (n >= 0)
		health_ok(health_of(r, t->idx), mono_ns() - t0, (uint64_t)n);
	else if (store_down((int)n))
		health_fail(health_of(r, t->idx));
	return n;
}

/*
 * The replicas in the order to try them: configured order (site
 * affinity), except that a replica whose breaker is open goes last and
 * one clearly slower than a later one (EWMA) goes behind it.  The source
 * (-1) always comes last.  Returns the count.
 */
static size_t rank(struct router *r, int *order)
{
	struct { int idx; bool blocked; double ms; } k[ROUTER_MAX_REPLICAS];
	size_t n = r->nrep;

	for (size_t i = 0; i < n; i++) {
		struct health_view v;
		health_view(&r->health[i], &v);
		k[i].idx = (int)i;
		k[i].blocked = v.open;
		k[i].ms = v.ewma_ms;
	}
	for (size_t i = 1; i < n; i++) {          /* stable insertion sort */
		for (size_t j = i; j > 0; j--) {
			bool swap;
			if (k[j].blocked != k[j - 1].blocked)
				swap = !k[j].blocked;
			else
				swap = k[j].ms >= 0 && k[j - 1].ms >= 0 &&
				       SLOWER(k[j - 1].ms, k[j].ms);
			if (!swap)
				break;
			__typeof__(k[0]) t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	}
	for (size_t i = 0; i < n; i++)
		order[i] = k[i].idx;
	order[n] = -1;
	return n + 1;
}

/* The next store in order, from *pos on, that may serve V. */
static bool next_target(struct router_obj *o, const int *order, size_t n,
			size_t *pos, struct target *t, const struct deadline *dl,
			ssize_t *err)
{
	struct router *r = o->r;
	while (*pos < n) {
		int i = order[(*pos)++];
		struct bobj *h;
		if (i < 0) {
			pthread_mutex_lock(&o->lock);
			int rc = source_handle(o, dl);
			h = o->src_h;
			pthread_mutex_unlock(&o->lock);
			if (rc < 0) {
				*err = rc;
				return false;
			}
		} else {
			if (health_blocked(&r->health[i], mono_ns()))
				continue;       /* its breaker is open */
			/* not yet opened: the read opens it (read_on) */
			pthread_mutex_lock(&o->lock);
			enum cand_state st = o->cands[i].st;
			h = st == CAND_OK ? o->cands[i].h : NULL;
			pthread_mutex_unlock(&o->lock);
			if (st == CAND_SKIP)
				continue;
		}
		t->h = h;
		t->idx = i;
		return true;
	}
	return false;
}

/* Spend budget on a hedge, if there is a whole one. */
static bool take_hedge_token(struct router *r)
{
	pthread_mutex_lock(&r->hedge_lock);
	bool ok = r->hedge_tokens >= 1.0;
	if (ok)
		r->hedge_tokens -= 1.0;
	pthread_mutex_unlock(&r->hedge_lock);
	return ok;
}

static bool hedge_allowed(struct router *r)
{
	pthread_mutex_lock(&r->hedge_lock);
	r->hedge_tokens += (double)r->conf.hedge_budget_pct / 100.0;
	if (r->hedge_tokens > HEDGE_BURST)
		r->hedge_tokens = HEDGE_BURST;
	bool ok = r->hedge_tokens >= 1.0;
	pthread_mutex_unlock(&r->hedge_lock);
	return ok;
}

/* The first request of a hedged read, run by a pool worker into its own
 * buffer (the reader may have returned with the hedge's bytes by the time
 * it ends). */
struct hedge {
	struct job job;
	struct router_obj *o;     /* a reference */
	struct target t;
	void *buf;
	size_t len;
	uint64_t off;
	struct deadline dl;       /* .cancel = &cancel */
	atomic_bool cancel;       /* the hedge answered: stop */
	atomic_bool hedge_cancel; /* this one answered: stop the hedge */
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done;
	ssize_t n;
};

static void hedge_unref(struct hedge *hg)
{
	if (atomic_fetch_sub(&hg->refs, 1) != 1)
		return;
	obj_unref(hg->o);
	free(hg->buf);
	pthread_cond_destroy(&hg->cv);
	pthread_mutex_destroy(&hg->lock);
	free(hg);
}

static void first_request(struct job *j)
{
	struct hedge *hg = (struct hedge *)j;
	ssize_t n = read_on(hg->o, &hg->t, hg->buf, hg->len, hg->off,
			    &hg->dl);
	if (n >= 0)
		atomic_store(&hg->hedge_cancel, true);
	pthread_mutex_lock(&hg->lock);
	hg->n = n;
	hg->done = true;
	pthread_cond_signal(&hg->cv);
	pthread_mutex_unlock(&hg->lock);
	hedge_unref(hg);
}

/* Wait for the first request (until ns, or for good when 0). */
static bool first_done(struct hedge *hg, int64_t wait_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t at = (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec + wait_ns;
	ts.tv_sec = at / NS_PER_SEC;
	ts.tv_nsec = at % NS_PER_SEC;
	pthread_mutex_lock(&hg->lock);
	while (!hg->done) {
		if (!wait_ns)
			pthread_cond_wait(&hg->cv, &hg->lock);
		else if (pthread_cond_timedwait(&hg->cv, &hg->lock, &ts) ==
			 ETIMEDOUT)
			break;
	}
	bool done = hg->done;
	pthread_mutex_unlock(&hg->lock);
	return done;
}

/* Has the first request not ended yet? */
static bool first_pending(struct hedge *hg)
{
	pthread_mutex_lock(&hg->lock);
	bool p = !hg->done;
	pthread_mutex_unlock(&hg->lock);
	return p;
}

static ssize_t first_result(struct hedge *hg, void *buf)
{
	first_done(hg, 0);
	ssize_t n = hg->n;
	if (n > 0)
		memcpy(buf, hg->buf, (size_t)n);
	hedge_unref(hg);
	return n;
}

/*
 * How long a read of replica t may take before the next store is asked
 * too: its p95 (three round trips of it when it must be opened first),
 * or HEDGE_COLD_NS while it has too few reads to tell.
 */
static int64_t expected_ns(struct router *r, const struct target *t)
{
	int64_t p95 = health_p95_ns(health_of(r, t->idx));
	if (!p95)
		return HEDGE_COLD_NS;
	p95 *= t->h ? 1 : 3;
	return p95 > HEDGE_MIN_NS ? p95 : HEDGE_MIN_NS;
}

/*
 * Read from replica t; if that takes longer than its expected latency,
 * ask the next store in order as well: within the hedge budget, or
 * without spending it when t has had a fault since its last good read
 * (then waiting on it is no longer a bet on a slow store but on a dead
 * one).
 * The first good answer wins and the other request is cancelled; a
 * replica overtaken before it answered counts as failed.  *served gets
 * the store that answered.
 */
static ssize_t hedged_read(struct router_obj *o, struct target *t,
			   const int *order, size_t n, size_t pos, void *buf,
			   size_t len, uint64_t off, const struct deadline *dl,
			   int *served)
{
	struct router *r = o->r;

	*served = t->idx;
	if (t->idx < 0 || !r->conf.hedge_budget_pct)
		return read_on(o, t, buf, len, off, dl);
	bool suspect = health_suspect(health_of(r, t->idx));
	if (!hedge_allowed(r) && !suspect)
		return read_on(o, t, buf, len, off, dl);
	int64_t wait = expected_ns(r, t);

	struct hedge *hg = xcalloc(1, sizeof(*hg));
	hg->o = o;
	hg->t = *t;
	hg->buf = xmalloc(len ? len : 1);
	hg->len = len;
	hg->off = off;
	hg->dl = *dl;
	hg->dl.cancel = &hg->cancel;
	atomic_init(&hg->refs, 2);
	pthread_mutex_init(&hg->lock, NULL);
	pthread_cond_init(&hg->cv, NULL);
	hg->job.fn = first_request;
	atomic_fetch_add(&o->refs, 1);
	if (!pool_try_submit(&r->pool, &hg->job)) {
		atomic_store(&hg->refs, 1);
		hedge_unref(hg);
		return read_on(o, t, buf, len, off, dl);
	}
	if (first_done(hg, wait))
		return first_result(hg, buf);

	struct target t2;
	ssize_t err;
	suspect = suspect || health_suspect(health_of(r, t->idx));
	if ((!suspect && !take_hedge_token(r)) ||
	    !next_target(o, order, n, &pos, &t2, dl, &err))
		return first_result(hg, buf);
	atomic_fetch_add(&r->hedges, 1);
	log_debug("router: '%s' at %" PRIu64 ": %s is past its expected "
		  "latency (%.1f ms)%s; asking %s too", o->base.name, off,
		  store_name(r, t->idx), (double)wait / 1e6,
		  suspect ? " and failed lately" : "", store_name(r, t2.idx));
	struct deadline hdl = *dl;
	hdl.cancel = &hg->hedge_cancel;
	ssize_t n2 = read_on(o, &t2, buf, len, off, &hdl);
	if (n2 >= 0) {
		if (first_pending(hg))   /* overtaken before it answered */
			health_overtaken(health_of(r, t->idx));
		atomic_store(&hg->cancel, true);
		atomic_fetch_add(&r->hedge_wins, 1);
		hedge_unref(hg);
		*served = t2.idx;
		return n2;
	}
	return first_result(hg, buf);    /* the hedge failed or lost */
}

static ssize_t router_read(struct bobj *ob, void *buf, size_t len,
			   uint64_t off, const struct deadline *dl)
{
	struct router_obj *o = (struct router_obj *)ob;
	struct router *r = o->r;
	int order[ROUTER_MAX_REPLICAS + 1];
	size_t n = rank(r, order), pos = 0;
	struct target t;
	ssize_t got, err = -EIO;

	while (next_target(o, order, n, &pos, &t, dl, &err)) {
		int who;
		got = hedged_read(o, &t, order, n, pos, buf, len, off, dl, &who);
		if (got == NOT_HERE)
			continue;              /* nothing there proves V */
		if (got >= 0 && !whole_and_wrong(&ob->info, buf, got, off)) {
			atomic_fetch_add(&r->reads, 1);
			if (who < 0)
				atomic_fetch_add(&r->fallbacks, 1);
			return got;
		}
		if (who < 0) {                 /* the source: nothing after it */
			if (got == -ESTALE || got == -ENOENT) {
				/* the version is gone: what the map says of
				 * the name is stale (an immutable name was
				 * deleted, or rewritten after all) */
				struct source_fact gone = {
					.tombstone = true,
					.confirmed_ns = wall_ns() };
				r->facts.ops->put_source(r->facts.ctx,
							 ob->name, &gone);
			}
			if (got >= 0) {
				log_err("source: '%s' generation %" PRIu64
					" fails its own crc32c", ob->name,
					ob->info.generation);
				got = -EIO;
			}
			return got;
		}
		if (got >= 0 || got == -EBADMSG) {
			log_warn("replica %s: '%s' fails the crc32c check; "
				 "marked bad, reading on from the next store",
				 r->rep[who]->name, ob->name);
			pthread_mutex_lock(&o->lock);
			struct bobj *ch = o->cands[who].h;
			pthread_mutex_unlock(&o->lock);
			note_replica(r, (size_t)who, ob->name, REPLICA_BAD,
				     ch ? &ch->info : NULL);
			atomic_fetch_add(&r->bad_copies, 1);
			got = -EIO;
		} else {
			log_info("replica %s: read of '%s' at %" PRIu64 " failed "
				 "(%s); trying the next store", r->rep[who]->name,
				 ob->name, off, strerror((int)-got));
			if (got == -ESTALE)   /* it changed: learn it again */
				note_replica(r, (size_t)who, ob->name,
					     REPLICA_UNKNOWN, NULL);
		}
		pthread_mutex_lock(&o->lock);
		o->cands[who].st = CAND_SKIP;
		pthread_mutex_unlock(&o->lock);
		atomic_fetch_add(&r->failovers, 1);
		err = got;
		if (who != t.idx)     /* the hedge's store failed: retry t */
			pos = 0;
	}
	return err;
}

static void router_close(struct bobj *ob)
{
	obj_unref((struct router_obj *)ob);
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
		freshness_saw(r->conf.fresh, name);
		freshness_of(r->conf.fresh, name, &rule);
		struct fresh_setting s = { rule.kind, rule.bound_ms };
		fresh_setting_format(&s, text, sizeof(text));
		strbuf_addf(out, "%s (%s)", text, rule.why);
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
		 * succeeds). */
		int order[ROUTER_MAX_REPLICAS + 1];
		size_t n = rank(r, order);
		const char *who = r->src->name;
		for (size_t k = 0; k + 1 < n && known; k++) {
			size_t i = (size_t)order[k];
			if (!health_failing(&r->health[i]) &&
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

/* An immutable name changes only by deletion, which an open (it always
 * reaches the router) still learns: the kernel may keep its entry and
 * attributes for an hour. */
static int64_t router_cache_ms(struct backend *b, const char *name)
{
	return trust_ns(to_router(b), name) == INT64_MAX ? IMMUTABLE_CACHE_MS
							 : -1;
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

static void router_metrics(struct backend *b, struct prom *p)
{
	struct router *r = to_router(b);

	for (size_t i = 0; i < r->nrep; i++)
		store_metrics(r->rep[i], &r->health[i], p);
	store_metrics(r->src, &r->health[r->nrep], p);
	prom_add(p, "hylake_router_reads_total", PROM_COUNTER,
		 "reads of file bytes answered by some store", NULL, NULL,
		 (double)atomic_load(&r->reads));
	prom_add(p, "hylake_source_fallbacks_total", PROM_COUNTER,
		 "reads the source served because no replica could (lagging, "
		 "absent, down or wrong)", NULL, NULL,
		 (double)atomic_load(&r->fallbacks));
	prom_add(p, "hylake_replica_bad_copies_total", PROM_COUNTER,
		 "replica copies whose bytes failed a check against the "
		 "source's crc32c (never served)", NULL, NULL,
		 (double)atomic_load(&r->bad_copies));
	prom_add(p, "hylake_failovers_total", PROM_COUNTER,
		 "reads that moved to the next store after one failed",
		 NULL, NULL, (double)atomic_load(&r->failovers));
	prom_add(p, "hylake_hedged_reads_total", PROM_COUNTER,
		 "slow reads also sent to the next store", NULL, NULL,
		 (double)atomic_load(&r->hedges));
	prom_add(p, "hylake_hedge_wins_total", PROM_COUNTER,
		 "hedged reads the second store answered first", NULL, NULL,
		 (double)atomic_load(&r->hedge_wins));
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
	.read = router_read,
	.close = router_close,
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
