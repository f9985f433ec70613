/*
 * follow.c - `hylake replicate CONFIG --to SITE --follow`: the site's
 * follower.  One process per site reads the bucket's change
 * notifications from the subscription of [changes], copies each new
 * generation to the site, and keeps the site's journal
 * (backends/composite/journal.h), which every mount of the site follows
 * with local reads (`journal = SITE` in [changes]).
 *
 *   pull (up to BATCH)  ->  per change: finalize -> copy generation G to
 *                           the site unless it holds G (stamped, with its
 *                           block manifest), and note what it holds
 *                       ->  batch seq+1 written to the site
 *                       ->  head moved to seq+1        (mounts see it)
 *                       ->  messages acknowledged      (never before)
 *   nothing new for a heartbeat: the head is written again, with the
 *   time of the last pull that found the subscription drained
 *
 * Killed anywhere, nothing is lost: unacknowledged messages come again.
 * Nothing is journaled twice: at start the follower reads the newest
 * batch and drops messages it already holds (by message id), and keeps
 * the ids of recent batches for redeliveries; a change the journal has
 * in an older batch and comes again much later is applied by the mounts
 * once only anyway (a change never goes back, feed.h).
 *
 * Two followers of one site: a lease (backends/composite/lease.h), an
 * object in the source bucket (LEASE_PREFIX + site).  A follower that
 * does not hold it watches it, and takes it over once it has not been
 * renewed for the lease's time.  A holder that could not renew for two
 * thirds of that time stops writing, so the two never write together
 * (given clocks that run at about the same rate).
 */
#include "mount/replicate.h"
#include "mount/changes.h"
#include "mount/stack.h"
#include "backends/composite/feed.h"
#include "backends/composite/lease.h"
#include "backends/composite/journal.h"
#include "backends/gcs/gcs_auth.h"
#include "backends/gcs/pubsub.h"
#include "backends/http/http.h"
#include "backends/util/hmap.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define BATCH 500                 /* messages per pull */
#define RECENT_MAX 8192           /* message ids remembered */
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000
#define LEASE_PREFIX ".hylake/leases/journal-"
#define RECONCILE_BATCH 1000      /* objects per batch of a reconcile */
#define RECONCILE_JOBS 4
#define COPY_JOBS 8               /* a batch's copies made at once */
#define RETENTION_NS (7 * 24 * 3600 * NS_PER_SEC)  /* Pub/Sub's default
                                                     message retention */

static atomic_bool stopping;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stopping, true);
}

struct follower {
	const struct hy_config *cfg;
	struct copy_env env;
	const char *site;
	int64_t heartbeat_ms, lease_ms;
	char *bucket, *prefix;
	struct pubsub *sub;

	bool reconcile;               /* asked for (--reconcile) */
	const char *seed;             /* --seed: an inventory report */
	bool started;                 /* the first batch of work is done */

	/* the journal */
	uint64_t seq;
	int64_t drained_ns;           /* of the last head written */
	int64_t head_written_mono;
	struct recent {               /* ring of journaled message ids */
		struct hmap_node node;
		char *id;
	} recent[RECENT_MAX];
	size_t recent_next;
	struct hmap recent_set;       /* the same ids, to look up */

	/* the lease */
	char *lease_name;
	struct lease_mgr *leases;
	struct lease *lease;          /* NULL while not the writer */

	pthread_mutex_t count_lock;   /* guards the copy counts */
	uint64_t copied, current, failed, batches, dups;
};

/* ------------------------------------------------------------- recent */

static bool recent_has(struct follower *f, const char *id)
{
	uint64_t h = XXH3_64bits(id, strlen(id));
	for (struct hmap_node *n = hmap_first(&f->recent_set, h); *id && n;
	     n = hmap_next(n))
		if (!strcmp(container_of(n, struct recent, node)->id, id))
			return true;
	return false;
}

static void recent_add(struct follower *f, const char *id)
{
	if (!*id || recent_has(f, id))
		return;
	struct recent *r = &f->recent[f->recent_next];
	if (r->id) {
		hmap_remove(&f->recent_set, &r->node);
		free(r->id);
	}
	r->id = xstrdup(id);
	hmap_add(&f->recent_set, &r->node, XXH3_64bits(id, strlen(id)));
	f->recent_next = (f->recent_next + 1) % RECENT_MAX;
}

static struct deadline op_dl(const struct follower *f)
{
	return deadline_in_ms(f->cfg->mount.op_timeout_ms);
}

/* Where the journal stands: its head, and the ids of its newest batch. */
static int load_journal(struct follower *f)
{
	struct deadline dl = op_dl(f);
	struct strbuf doc;
	struct journal_head h;
	int rc = journal_read(f->env.dst, JOURNAL_HEAD, &doc, &dl);

	if (rc == -ENOENT) {
		f->seq = 0;
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = journal_parse_head(doc.buf, doc.len, &h);
	strbuf_release(&doc);
	if (rc < 0) {
		fprintf(stderr, "hylake replicate: %s on %s is not a journal "
			"head; move it away to start a new journal\n",
			JOURNAL_HEAD, f->site);
		return rc;
	}
	f->seq = h.seq;
	f->drained_ns = h.drained_ns;
	if (!h.seq)
		return 0;
	struct strbuf name = STRBUF_INIT;
	struct journal_batch b;
	journal_batch_name(h.seq, &name);
	dl = op_dl(f);
	rc = journal_read(f->env.dst, name.buf, &doc, &dl);
	strbuf_release(&name);
	if (rc == 0) {
		if (journal_parse_batch(doc.buf, doc.len, &b) == 0) {
			for (size_t i = 0; i < b.ch.n; i++)
				recent_add(f, b.ch.c[i].message_id);
			journal_batch_release(&b);
		}
		strbuf_release(&doc);
	}
	return rc == -ENOENT ? 0 : rc;
}

/* ------------------------------------------------------------- lease */

/*
 * Hold the lease, or try to take it: true while this follower may write.
 * Cheap while held (the lease module renews it on its own thread); a
 * lease lost, or not renewed in time, is let go, and taken again like
 * any other follower's once it is free or expired.
 */
static bool lease_hold(struct follower *f)
{
	if (f->lease) {
		if (lease_check(f->lease) == 0)
			return true;
		log_warn("lost the lease %s (taken over, or not renewed in "
			 "time): not writing the journal", f->lease_name);
		lease_release(f->lease);
		f->lease = NULL;
		return false;
	}
	int rc = lease_try(f->leases, f->lease_name, &f->lease);
	if (rc < 0) {
		if (rc != -EWOULDBLOCK)
			log_warn("cannot take the lease %s: %s", f->lease_name,
				 strerror(-rc));
		return false;
	}
	log_notice("holding the lease %s: following for site %s",
		   f->lease_name, f->site);
	/* another follower may have written since this one last looked */
	if (load_journal(f) < 0) {
		lease_release(f->lease);
		f->lease = NULL;
	}
	return f->lease != NULL;
}

/* ------------------------------------------------------------- batches */

/* Copy c's generation to the site unless it holds it (buf: REPLICATE_CHUNK
 * bytes); *h says what the site holds then.  Counts under f->count_lock. */
static void replicate_change(struct follower *f, const struct gcs_change *c,
			     const char *name, struct journal_held *h,
			     char *buf)
{
	struct obj_info held;
	const char *why = "";
	struct obj_info v = c->info;
	uint64_t *count = NULL;

	memset(h, 0, sizeof(*h));
	v.generation = c->generation;
	size_t len = strlen(name);
	if (!len || name[len - 1] == '/')
		return;                          /* a folder marker */
	enum replicate_verdict vd = replicate_look(&f->env, name, &v, &held,
						   &why);
	if (vd == V_COPY) {
		int rc = replicate_copy(&f->env, name, &v, buf);
		if (rc < 0) {
			struct strbuf msg = STRBUF_INIT;
			replicate_copy_error(rc, &msg);
			log_warn("%s (generation %" PRIu64 "): not copied: %s",
				 name, c->generation, msg.buf);
			strbuf_release(&msg);
			if (rc != -ESTALE && rc != -ENOENT && rc != -EINVAL)
				count = &f->failed;
		} else {
			count = &f->copied;
			vd = replicate_look(&f->env, name, &v, &held, &why);
		}
	} else if (vd == V_CURRENT) {
		count = &f->current;
	}
	if (vd == V_CURRENT) {
		h->holds = true;
		h->size = held.size;
		snprintf(h->etag, sizeof(h->etag), "%s", held.etag);
	}
	if (count) {
		pthread_mutex_lock(&f->count_lock);
		(*count)++;
		pthread_mutex_unlock(&f->count_lock);
	}
}

/* A batch's copies, shared by COPY_JOBS threads. */
struct copies {
	struct follower *f;
	struct journal_batch *b;
	size_t *todo;                 /* indexes into b */
	size_t n;
	atomic_size_t next;
};

static void *copier(void *arg)
{
	struct copies *cp = arg;
	char *buf = xmalloc(REPLICATE_CHUNK);

	for (size_t k; (k = atomic_fetch_add(&cp->next, 1)) < cp->n;) {
		size_t i = cp->todo[k];
		const struct gcs_change *c = &cp->b->ch.c[i];
		replicate_change(cp->f, c,
				 feed_mount_name(cp->f->bucket, cp->f->prefix,
						 c),
				 &cp->b->held[i], buf);
	}
	free(buf);
	return NULL;
}

/*
 * Copy the new generations of batch b to the site, COPY_JOBS at a time:
 * each name's newest in the batch only (an older one is replaced
 * already; copying it could only race the newer one).
 */
static void copy_batch(struct follower *f, struct journal_batch *b)
{
	struct copies cp = { .f = f, .b = b };
	pthread_t th[COPY_JOBS];
	size_t nth = 0;

	cp.todo = xcalloc(b->ch.n + 1, sizeof(*cp.todo));
	for (size_t i = 0; i < b->ch.n; i++) {
		const struct gcs_change *c = &b->ch.c[i];
		if (c->kind != GCS_CHANGE_FINALIZE || !c->has_info)
			continue;
		bool newer = false;
		for (size_t j = 0; j < b->ch.n && !newer; j++)
			newer = j != i && b->ch.c[j].kind != GCS_CHANGE_INVALID &&
				!strcmp(b->ch.c[j].name, c->name) &&
				b->ch.c[j].generation > c->generation;
		if (!newer)
			cp.todo[cp.n++] = i;
	}
	atomic_init(&cp.next, 0);
	while (nth < COPY_JOBS && nth < cp.n &&
	       pthread_create(&th[nth], NULL, copier, &cp) == 0)
		nth++;
	if (!nth)
		copier(&cp);
	for (size_t t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	free(cp.todo);
}

/* Write batch seq+1 of ch[keep], then the head: 0 or -errno. */
/* Write the head naming batch seq, with its heartbeat: 0 or -errno. */
static int write_head(struct follower *f, uint64_t seq, int64_t drained_ns)
{
	struct strbuf doc = STRBUF_INIT;
	struct journal_head h = { .seq = seq, .drained_ns = drained_ns,
				  .written_ns = wall_ns() };
	struct deadline dl = op_dl(f);

	journal_encode_head(&h, &doc);
	int rc = journal_write(f->env.dst, JOURNAL_HEAD, &doc, f->env.tmpdir,
			       &dl);
	strbuf_release(&doc);
	if (rc == 0) {
		f->seq = seq;
		f->drained_ns = drained_ns;
		f->head_written_mono = mono_ns();
	}
	return rc;
}

/* Write batch seq+1, then the head that names it: 0 or -errno. */
static int append(struct follower *f, struct journal_batch *b,
		  int64_t drained_ns)
{
	struct strbuf doc = STRBUF_INIT, name = STRBUF_INIT;
	struct deadline dl = op_dl(f);
	int rc;

	b->seq = f->seq + 1;
	b->written_ns = wall_ns();
	journal_encode_batch(b, &doc);
	journal_batch_name(b->seq, &name);
	rc = journal_write(f->env.dst, name.buf, &doc, f->env.tmpdir, &dl);
	strbuf_release(&doc);
	strbuf_release(&name);
	if (rc == 0)
		rc = write_head(f, b->seq, drained_ns);
	if (rc == 0)
		f->batches++;
	return rc;
}

/*
 * Journal what ch says (copying to the site first), then acknowledge.
 * 0, or -errno when the journal could not be written (nothing is
 * acknowledged: it all comes again).
 */
static int take(struct follower *f, struct gcs_changes *ch, bool drained,
		int64_t pulled_ns)
{
	struct journal_batch b = { 0 };
	size_t n = 0;
	int rc = 0;

	b.ch.c = xcalloc(ch->n + 1, sizeof(*b.ch.c));
	b.held = xcalloc(ch->n + 1, sizeof(*b.held));
	for (size_t i = 0; i < ch->n; i++) {
		const struct gcs_change *c = &ch->c[i];
		if (recent_has(f, c->message_id)) {
			f->dups++;
			continue;
		}
		if (c->kind != GCS_CHANGE_INVALID) {
			const char *name = feed_mount_name(f->bucket, f->prefix,
							   c);
			if (!name || backend_name_reserved(name))
				continue;        /* not this source's, or hylake's
				                    own (the lease) */
		}
		b.ch.c[n++] = *c;                /* borrowed */
	}
	b.ch.n = n;
	copy_batch(f, &b);
	int64_t drained_ns = drained ? pulled_ns : f->drained_ns;
	if (n && lease_hold(f))
		rc = append(f, &b, drained_ns);
	else if (n)
		rc = -EAGAIN;                    /* no longer the writer */
	else if (drained && mono_ns() - f->head_written_mono >=
			    f->heartbeat_ms * NS_PER_MS / 2)
		rc = write_head(f, f->seq, drained_ns);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			recent_add(f, b.ch.c[i].message_id);
		struct deadline dl = op_dl(f);
		if (pubsub_ack(f->sub, ch->c, ch->n, &dl) < 0)
			log_info("%zu messages journaled, their "
				 "acknowledgement failed: they come again "
				 "and are dropped then", ch->n);
	}
	free(b.ch.c);
	free(b.held);
	return rc;
}

/* ------------------------------------------------------------- reconcile */

struct recon {
	struct follower *f;
	pthread_mutex_t lock;
	struct journal_batch b;       /* RECONCILE_BATCH changes at most */
	int rc;
	uint64_t noted;
};

/* Journal what r holds (lock held); the first batch starts with a gap. */
static void recon_flush(struct recon *r)
{
	if (!r->b.ch.n || r->rc < 0)
		return;
	if (!lease_hold(r->f))
		r->rc = -EAGAIN;
	else
		r->rc = append(r->f, &r->b, r->f->drained_ns);
	for (size_t i = 0; i < r->b.ch.n; i++) {
		free(r->b.ch.c[i].name);
		free(r->b.ch.c[i].bucket);
		free(r->b.ch.c[i].message_id);
		free(r->b.ch.c[i].ack_id);
	}
	memset(r->b.ch.c, 0, RECONCILE_BATCH * sizeof(*r->b.ch.c));
	memset(r->b.held, 0, RECONCILE_BATCH * sizeof(*r->b.held));
	r->b.ch.n = 0;
}

static void recon_add(struct recon *r, enum gcs_change_kind kind,
		      const char *name, const struct obj_info *v,
		      const struct obj_info *held)
{
	struct gcs_change *c = &r->b.ch.c[r->b.ch.n];
	struct journal_held *h = &r->b.held[r->b.ch.n];
	struct strbuf full = STRBUF_INIT;

	c->ack_id = xstrdup("");
	c->message_id = xstrdup("");
	c->publish_ns = wall_ns();
	c->kind = kind;
	if (kind != GCS_CHANGE_INVALID) {
		strbuf_addf(&full, "%s%s", r->f->prefix, name);
		c->name = strbuf_detach(&full, NULL);
		c->bucket = xstrdup(r->f->bucket);
		c->generation = v->generation;
		c->has_info = true;
		c->info = *v;
	}
	if (held) {
		h->holds = true;
		h->size = held->size;
		snprintf(h->etag, sizeof(h->etag), "%s", held->etag);
	}
	if (++r->b.ch.n == RECONCILE_BATCH)
		recon_flush(r);
}

static void recon_note(void *arg, const char *name, const struct obj_info *v,
		       const struct obj_info *held)
{
	struct recon *r = arg;
	size_t len = strlen(name);

	if (!len || name[len - 1] == '/' || !v->generation ||
	    !strncmp(name, ".hylake/", 8))
		return;
	pthread_mutex_lock(&r->lock);
	recon_add(r, GCS_CHANGE_FINALIZE, name, v, held);
	r->noted++;
	pthread_mutex_unlock(&r->lock);
}

/*
 * Reconcile by listing: what the journal may have missed (a new journal,
 * one older than the subscription keeps messages, or asked for) is
 * learnt from a listing of the source.  A gap first, so mounts stop
 * trusting what they knew (a deletion may be among what was missed),
 * then each object as the listing shows it, after copying it to the site
 * if the site lacks it.  The subscription keeps what happens meanwhile;
 * it comes after, and a change never goes back.
 */
static int reconcile(struct follower *f)
{
	struct recon r = { .f = f };
	struct replicate_counts counts;
	int64_t t0 = mono_ns();

	pthread_mutex_init(&r.lock, NULL);
	r.b.ch.c = xcalloc(RECONCILE_BATCH + 1, sizeof(*r.b.ch.c));
	r.b.held = xcalloc(RECONCILE_BATCH + 1, sizeof(*r.b.held));
	log_notice("reconciling site %s with the source by %s", f->site,
		   f->seed ? "its inventory report" : "listing it");
	recon_add(&r, GCS_CHANGE_INVALID, NULL, NULL, NULL);
	int rc = replicate_run(&f->env, f->seed, RECONCILE_JOBS, recon_note,
			       &r, &counts);
	pthread_mutex_lock(&r.lock);
	recon_flush(&r);
	if (rc == 0)
		rc = r.rc;
	pthread_mutex_unlock(&r.lock);
	free(r.b.ch.c);
	free(r.b.held);
	pthread_mutex_destroy(&r.lock);
	f->copied += counts.copied;
	f->current += counts.current;
	f->failed += counts.failed;
	if (rc < 0)
		log_warn("reconciling site %s failed: %s; trying again",
			 f->site, strerror(-rc));
	else
		log_notice("reconciled site %s: %" PRIu64 " objects listed, %"
			   PRIu64 " copied, %" PRIu64 " current, %" PRIu64
			   " failed, in %.1f s", f->site, r.noted, counts.copied,
			   counts.current, counts.failed,
			   (double)(mono_ns() - t0) / 1e9);
	return rc;
}

/* Sleep ms, or less when stopping. */
static void nap(int64_t ms)
{
	for (int64_t end = mono_ns() + ms * NS_PER_MS;
	     !atomic_load(&stopping) && mono_ns() < end;)
		usleep(20 * 1000);
}

static void follow_loop(struct follower *f)
{
	int64_t retry_ms = RETRY_MIN_MS;
	int last_err = 1;
	char err[300];

	while (!atomic_load(&stopping)) {
		if (!lease_hold(f)) {
			nap(f->lease_ms / 4 > 50 ? f->lease_ms / 4 : 50);
			continue;
		}
		if (!f->started) {
			/* the journal as this follower finds it: new, or
			 * older than the subscription keeps messages */
			if ((f->reconcile || !f->seq ||
			     wall_ns() - f->drained_ns > RETENTION_NS) &&
			    reconcile(f) < 0) {
				nap(RETRY_MAX_MS);
				continue;
			}
			f->started = true;
		}
		struct gcs_changes ch;
		int64_t wait = f->heartbeat_ms > 1000 ? f->heartbeat_ms : 1000;
		struct deadline dl = deadline_in_ms(wait);
		dl.cancel = &stopping;
		int64_t pulled_ns = wall_ns();
		int rc = pubsub_pull(f->sub, BATCH, &ch, &dl, err, sizeof(err));
		if (rc == 0) {
			bool drained = ch.n < BATCH;
			rc = take(f, &ch, drained, pulled_ns);
			gcs_changes_release(&ch);
			if (rc < 0 && rc != -EAGAIN)
				snprintf(err, sizeof(err), "writing the journal "
					 "on %s: %s", f->site, strerror(-rc));
		}
		if (rc == 0 && last_err)
			log_notice("following %s for site %s (journal at batch "
				   "%" PRIu64 ")", pubsub_name(f->sub), f->site,
				   f->seq);
		if (rc < 0 && rc != -EAGAIN && !atomic_load(&stopping)) {
			if (rc != last_err)
				log_warn("%s", err);
			nap(retry_ms);
			retry_ms = retry_ms * 2 < RETRY_MAX_MS ? retry_ms * 2
							       : RETRY_MAX_MS;
		} else {
			retry_ms = RETRY_MIN_MS;
		}
		last_err = rc;
	}
}

int follow_main(const struct hy_config *cfg, const struct store_conf *site,
		const char *tmpdir, int64_t heartbeat_ms, bool reconcile,
		const char *seed)
{
	struct follower f = { .cfg = cfg, .site = site->name,
			      .reconcile = reconcile || seed, .seed = seed,
			      .env.src_bucket = cfg->source.bucket,
			      .heartbeat_ms = heartbeat_ms,
			      .env.tmpdir = tmpdir,
			      .env.op_timeout_ms = cfg->mount.op_timeout_ms };
	struct http_engine *http = NULL;
	struct gcs_auth *auth = NULL;
	struct strbuf s = STRBUF_INIT;
	char err[512];
	int status = 2;

	if (!cfg->changes.present || !cfg->changes.subscription) {
		fprintf(stderr, "hylake replicate --follow: %s has no "
			"subscription in [changes] to follow\n", cfg->path);
		return 2;
	}
	/* a lease lives as long as three missed heartbeats, at least 3 s */
	f.lease_ms = heartbeat_ms * 3 > 3000 ? heartbeat_ms * 3 : 3000;
	struct store_conf sc = cfg->source;
	sc.writable = true;                   /* the lease is written */
	if (stack_open_store(&sc, cfg->mount.op_timeout_ms, &f.env.src, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "hylake replicate: source %s\n", err);
		return 2;
	}
	if (stack_open_store(site, cfg->mount.op_timeout_ms, &f.env.dst, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "hylake replicate: replica %s\n", err);
		goto out_src;
	}
	if (!f.env.dst->ops->put) {
		fprintf(stderr, "hylake replicate: replica %s is of type %s, "
			"which cannot be written\n", site->name,
			f.env.dst->ops->type);
		goto out_dst;
	}
	http = http_engine_create(&cfg->changes.net);
	if (changes_subscribe(&cfg->changes, http, &auth, &f.sub, err,
			      sizeof(err)) < 0) {
		fprintf(stderr, "hylake replicate: [changes]: %s\n", err);
		goto out_sub;
	}
	f.bucket = cfg->source.bucket;
	f.prefix = cfg->source.prefix ? cfg->source.prefix : "";
	pthread_mutex_init(&f.count_lock, NULL);
	hmap_init(&f.recent_set, RECENT_MAX);
	strbuf_addf(&s, "%s%s", LEASE_PREFIX, site->name);
	f.lease_name = strbuf_detach(&s, NULL);
	strbuf_addf(&s, "follower of site %s", site->name);
	struct strbuf who = STRBUF_INIT;
	lease_holder_id(s.buf, &who);
	strbuf_release(&s);
	struct lease_conf lc = { .store = f.env.src, .holder = who.buf,
				 .ttl_ms = f.lease_ms,
				 .op_timeout_ms = cfg->mount.op_timeout_ms };
	int lerr = 0;
	f.leases = lease_mgr_create(&lc, &lerr);
	strbuf_release(&who);
	if (!f.leases) {
		fprintf(stderr, "hylake replicate: lease: %s\n",
			strerror(-lerr));
		goto out_lease;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_notice("follower of site %s: waiting for the lease %s",
		   site->name, f.lease_name);
	follow_loop(&f);
	printf("followed for site %s: journal at batch %" PRIu64 ", %" PRIu64
	       " batches written, %" PRIu64 " copied, %" PRIu64 " current, %"
	       PRIu64 " failed, %" PRIu64 " duplicates dropped\n", site->name,
	       f.seq, f.batches, f.copied, f.current, f.failed, f.dups);
	fflush(stdout);
	status = f.failed ? 1 : 0;

	lease_release(f.lease);               /* let a standby take over now */
	lease_mgr_destroy(f.leases);
out_lease:
	for (size_t i = 0; i < RECENT_MAX; i++)
		free(f.recent[i].id);
	hmap_release(&f.recent_set);
	free(f.lease_name);
	pthread_mutex_destroy(&f.count_lock);
out_sub:
	pubsub_destroy(f.sub);
	gcs_auth_destroy(auth);
	http_engine_destroy(http);
out_dst:
	backend_destroy(f.env.dst);
out_src:
	backend_destroy(f.env.src);
	return status;
}
