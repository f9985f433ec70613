/*
 * router_read.c - which store serves a read of a pinned version, and the
 * proof that a replica's bytes are that version's.
 *
 *   read(off)    replicas in order:  known to hold V  -> read (pinned)
 *                                    known not to     -> skip, no request
 *                                    unknown          -> open (one HEAD),
 *                                                        judge, remember
 *                then the source; any failure moves on at the same offset
 *
 * A replica copy holding V by its stamp is read only when something
 * proves its bytes: the block sums the map keeps for it, its block
 * manifest, or (verify = whole-first) one whole read at first use (by
 * one reader: the others wait for its sums); a block that fails its sum
 * marks the copy bad and the read moves on.
 *
 * A replica never holds a read for long: each attempt on one (its open
 * and its read) gets a share of what is left of the deadline (half at
 * most; ten times its p95, at least REPLICA_FLOOR_NS, once that is
 * known), a timeout within it is not retried there, failed opens count
 * against its health like failed reads, and a reader that has waited its
 * expected latency (p95, or HEDGE_COLD_NS before there is one; for a
 * read that verifies the whole copy, in proportion to its size; and at
 * least the next store's typical read, so that a hedge can win) asks the
 * next store too: within the hedge budget, or at once when the replica
 * had a fault (no answer, reset, timeout) since its last good read.  A
 * replica overtaken that way has failed too; three failures in a row
 * open its breaker.  So a replica that swallows requests costs about one
 * share and a few expected latencies, not a timeout a file.
 */
#include "backends/composite/router_impl.h"
#include "backends/composite/contract.h"
#include "backends/composite/verify.h"
#include "backends/util/crc32c.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEDGE_MIN_NS (2 * NS_PER_MS)   /* never hedge sooner than this */
#define HEDGE_BURST 10.0               /* hedges that may be saved up */
#define SLOWER(a, b) ((a) > 2 * (b) + 5.0)  /* ms: clearly slower */
#define HEDGE_COLD_NS (250 * NS_PER_MS)  /* expected latency, unmeasured */
#define REPLICA_SHARE_PCT 50           /* of the time left, at most */
#define REPLICA_P95_MULT 10
#define REPLICA_FLOOR_NS (2 * NS_PER_SEC)
#define OPEN_WAIT_SLICE_NS (50 * NS_PER_MS)
#define RANK_EVIDENCE_NS (5 * NS_PER_SEC)  /* a slower replica's, kept */
#define NOT_HERE (-ENODATA)  /* the replica cannot serve V: skip, no fault */

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
	/* so that explain says so, and the next opens ask again only
	 * after replica_recheck (a manifest may come with the next copy) */
	router_note_replica(r, i, o->base.name, REPLICA_UNPROVEN, &c->h->info);
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
		router_note_replica(r, i, o->base.name, REPLICA_ABSENT, NULL);
		return NULL;
	}
	if (rc < 0 && (rc == -ECANCELED ||
		       (dl->cancel && atomic_load(dl->cancel)))) {
		/* its reader no longer wants it (a hedge that lost): no
		 * word on the replica, which the next reader asks again (an
		 * open that answered all the same is judged below) */
		log_debug("replica %s: open of '%s' cancelled", rep->name,
			  o->base.name);
		c->st = CAND_UNTRIED;
		return NULL;
	}
	if (rc < 0) {
		log_info("replica %s: '%s' not available (%s)", rep->name,
			 o->base.name, strerror(-rc));
		if (router_store_down(rc))
			health_fail(&r->health[i]);
		return NULL;
	}
	uint64_t held;
	enum replica_state st = contract_judge(&h->info, v, &held);
	struct obj_info rec = h->info;
	rec.generation = held;              /* proven by stamp or by MD5 */
	router_note_replica(r, i, o->base.name, st, &rec);
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

/* Wait, o->lock held, for o->cv (or a slice of time): false when dl
 * has passed or is cancelled. */
static bool wait_cv(struct router_obj *o, const struct deadline *dl)
{
	int64_t now = mono_ns();
	if (now >= dl->at || (dl->cancel && atomic_load(dl->cancel)))
		return false;
	int64_t until = now + OPEN_WAIT_SLICE_NS < dl->at
			? now + OPEN_WAIT_SLICE_NS : dl->at;
	struct timespec ts = { until / NS_PER_SEC, until % NS_PER_SEC };
	pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	return true;
}

/* Wait, o->lock held, while candidate c is being opened: until dl passes
 * or is cancelled.  False when it gave up. */
static bool wait_open(struct router_obj *o, const struct cand *c,
		      const struct deadline *dl)
{
	while (c->st == CAND_OPENING)
		if (!wait_cv(o, dl))
			return false;
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
	atomic_bool *whole;       /* if set: told when the read verifies a
				   * whole copy (or waits for that) */
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

	/* one reader verifies a copy; the others wait for its sums, and
	 * skip the copy when they cannot wait that long (no fault of the
	 * replica's: it is being read) or it proved bad */
	pthread_mutex_lock(&o->lock);
	while (!c->sums && c->whole_first && c->verifying)
		if (!wait_cv(o, dl)) {
			pthread_mutex_unlock(&o->lock);
			return NOT_HERE;
		}
	if (c->st == CAND_SKIP) {
		pthread_mutex_unlock(&o->lock);
		return NOT_HERE;
	}
	const struct blocksums *sums = c->sums;
	bool whole = c->whole_first;
	if (!sums && whole)
		c->verifying = true;
	pthread_mutex_unlock(&o->lock);
	if (!sums && !whole)
		return bobj_read(t->h, buf, len, off, dl);     /* trusted */
	if (!sums) {
		if (off == 0 && len >= v->size) {
			n = bobj_read(t->h, buf, len, 0, dl);
			rc = n < 0 ? (int)n
				   : verify_buffer(buf, (size_t)n, v, &s);
		} else {
			rc = verify_whole(t->h, v, &s, dl);
		}
		pthread_mutex_lock(&o->lock);
		c->verifying = false;
		if (rc == 0) {
			c->sums = s;            /* the one verifier's */
			sums = s;
			s = NULL;
			c->whole_first = false;
		} else if (rc == -EBADMSG) {
			c->st = CAND_SKIP;    /* its waiters read on elsewhere */
		}
		pthread_cond_broadcast(&o->cv);
		pthread_mutex_unlock(&o->lock);
		if (rc < 0) {
			if (rc == -EBADMSG)
				log_warn("replica %s: the bytes of '%s' do not "
					 "match generation %" PRIu64 "'s crc32c",
					 r->rep[t->idx]->name, o->base.name,
					 v->generation);
			free(s);
			return rc;
		}
		keep_sums(r, (size_t)t->idx, o->base.name, sums);
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
	bool whole = false;

	if (t->idx >= 0) {
		if (!t->h) {
			share = replica_share(r, (size_t)t->idx, dl, false);
			t->h = candidate(o, (size_t)t->idx, &share);
			if (!t->h)
				return NOT_HERE;
		}
		whole = whole_pending(o, t->idx);
		if (whole && t->whole)
			atomic_store(t->whole, true);
		share = replica_share(r, (size_t)t->idx, dl, whole);
		dl = &share;
	}
	int64_t t0 = mono_ns();
	ssize_t n = t->idx < 0 ? bobj_read(t->h, buf, len, off, dl)
			       : read_replica(o, t, buf, len, off, dl);
	/* a read that verified the whole copy first is no sample of the
	 * store's latency: timed, it would rank the store behind for a
	 * while, and the reads would go back and forth */
	if (n >= 0)
		health_ok(health_of(r, t->idx), whole ? -1 : mono_ns() - t0,
			  (uint64_t)n);
	else if (router_store_down((int)n))
		health_fail(health_of(r, t->idx));
	return n;
}

/*
 * The replicas in the order to try them: configured order (site
 * affinity), except that a replica whose breaker is open goes last and
 * one clearly slower than a later one (EWMA) goes behind it, on evidence
 * of the last RANK_EVIDENCE_NS: a replica put behind gets no reads while
 * the next one holds the versions, so its latency is never measured
 * again, and one slow spell would keep it behind for good.  Once its
 * evidence is that old it gets its place back, and its next reads
 * measure it.  The source (-1) always comes last.  Returns the count.
 */
size_t router_rank(struct router *r, int *order)
{
	struct { int idx; bool blocked, recent; double ms; }
		k[ROUTER_MAX_REPLICAS];
	size_t n = r->nrep;
	int64_t now = mono_ns();

	for (size_t i = 0; i < n; i++) {
		struct health_view v;
		health_view(&r->health[i], &v);
		k[i].idx = (int)i;
		k[i].blocked = v.open;
		k[i].ms = v.ewma_ms;
		k[i].recent = v.timed_ns && now - v.timed_ns <= RANK_EVIDENCE_NS;
	}
	for (size_t i = 1; i < n; i++) {          /* stable insertion sort */
		for (size_t j = i; j > 0; j--) {
			bool swap;
			if (k[j].blocked != k[j - 1].blocked)
				swap = !k[j].blocked;
			else
				swap = k[j].ms >= 0 && k[j - 1].ms >= 0 &&
				       k[j - 1].recent &&
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

/* Is replica i out of the running for o: its breaker open, or its copy
 * known not to serve?  Its handle, when opened, goes to *h. */
static bool replica_passed(struct router_obj *o, int i, struct bobj **h)
{
	if (health_blocked(&o->r->health[i], mono_ns()))
		return true;
	pthread_mutex_lock(&o->lock);
	enum cand_state st = o->cands[i].st;
	*h = st == CAND_OK ? o->cands[i].h : NULL;
	pthread_mutex_unlock(&o->lock);
	return st == CAND_SKIP;
}

/* The next store in order, from *pos on, that may serve V. */
static bool next_target(struct router_obj *o, const int *order, size_t n,
			size_t *pos, struct target *t, const struct deadline *dl,
			ssize_t *err)
{
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
		} else if (replica_passed(o, i, &h)) {
			continue;
		}
		/* a replica not yet opened: the read opens it (read_on) */
		*t = (struct target){ .h = h, .idx = i };
		return true;
	}
	return false;
}

/*
 * How long a hedge to the store next_target would take from pos needs to
 * answer: that store's typical read (health_typical_ns), twice that when
 * it must be opened first; 0 when nothing is known of it (or there is
 * none).  Opens nothing.
 */
static int64_t hedge_reach_ns(struct router_obj *o, const int *order,
			      size_t n, size_t pos)
{
	for (; pos < n; pos++) {
		int i = order[pos];
		struct bobj *h;
		if (i < 0) {
			pthread_mutex_lock(&o->lock);
			h = o->src_h;
			pthread_mutex_unlock(&o->lock);
		} else if (replica_passed(o, i, &h)) {
			continue;
		}
		int64_t t = health_typical_ns(health_of(o->r, i));
		return h ? t : 2 * t;
	}
	return 0;
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
	atomic_bool whole;        /* it verifies a whole copy (t.whole) */
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
 * How long the first request of hg may take when it verifies a whole
 * copy: it reads the copy's size, not len, so that many times its
 * expected latency, and never less than an unmeasured read's.  0 when
 * it verifies nothing (or is not known to yet: its open is slow).
 */
static int64_t whole_wait_ns(struct router_obj *o, struct hedge *hg,
			     size_t len, int64_t expected)
{
	if (!atomic_load(&hg->whole))
		return 0;
	double reads = (double)o->base.info.size / (double)(len ? len : 1);
	int64_t ns = reads > 1.0 ? (int64_t)((double)expected * reads) : expected;
	return ns > HEDGE_COLD_NS ? ns : HEDGE_COLD_NS;
}

/*
 * Read from replica t; if that takes longer than its expected latency
 * (and than the next store's typical read, unless t failed lately), ask
 * the next store in order as well: within the hedge budget, or
 * without spending it when t has had a fault since its last good read
 * (then waiting on it is no longer a bet on a slow store but on a dead
 * one).  A first read that verifies the whole copy is waited for in
 * proportion to the copy's size.
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
	int64_t wait = expected_ns(r, t), reach = 0;
	struct hedge *hg = xcalloc(1, sizeof(*hg));
	hg->o = o;
	hg->t = *t;
	hg->t.whole = &hg->whole;
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
	/* A hedge wins only when the first store takes longer than its
	 * wait and the next store's own time together: past the first's
	 * expected latency alone, a replica next door usually answers
	 * before a source 30 ms away could, and the hedge only costs a WAN
	 * request.  So wait the next store's typical read too, unless the
	 * first has failed lately (then it is as likely dead as slow).
	 * Looked up only now: a read that answers in time pays nothing. */
	if (!suspect) {
		reach = hedge_reach_ns(o, order, n, pos);
		if (reach > wait) {
			if (first_done(hg, reach - wait))
				return first_result(hg, buf);
			wait = reach;
		}
	}
	/* the copy's verification (known once it is opened) is worth its
	 * time: a hedge would cancel it, and the next read would start over */
	int64_t more = whole_wait_ns(o, hg, len, wait) - wait;
	if (more > 0 && first_done(hg, more))
		return first_result(hg, buf);

	struct target t2;
	ssize_t err;
	suspect = suspect || health_suspect(health_of(r, t->idx));
	if ((!suspect && !take_hedge_token(r)) ||
	    !next_target(o, order, n, &pos, &t2, dl, &err))
		return first_result(hg, buf);
	atomic_fetch_add(&r->hedges, 1);
	log_debug("router: '%s' at %" PRIu64 ": %s is past its expected "
		  "latency (%.1f ms; %s's own: %.1f ms)%s; asking %s too",
		  o->base.name, off, store_name(r, t->idx), (double)wait / 1e6,
		  store_name(r, t2.idx), (double)reach / 1e6,
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

ssize_t router_read(struct bobj *ob, void *buf, size_t len,
			   uint64_t off, const struct deadline *dl)
{
	struct router_obj *o = (struct router_obj *)ob;
	struct router *r = o->r;
	int order[ROUTER_MAX_REPLICAS + 1];
	size_t n = router_rank(r, order), pos = 0;
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
			/* the version is gone: what the map says of the
			 * name is stale (an immutable name was deleted, or
			 * rewritten after all); which, the next open asks */
			if (got == -ESTALE || got == -ENOENT)
				router_note_stale(r, ob->name);
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
			router_note_replica(r, (size_t)who, ob->name, REPLICA_BAD,
				     ch ? &ch->info : NULL);
			atomic_fetch_add(&r->bad_copies, 1);
			got = -EIO;
		} else {
			log_info("replica %s: read of '%s' at %" PRIu64 " failed "
				 "(%s); trying the next store", r->rep[who]->name,
				 ob->name, off, strerror((int)-got));
			if (got == -ESTALE)   /* it changed: learn it again */
				router_note_replica(r, (size_t)who, ob->name,
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

void router_close(struct bobj *ob)
{
	obj_unref((struct router_obj *)ob);
}
