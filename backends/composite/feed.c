/*
 * feed.c - the change feed's thread and its rules (feed.h).
 *
 * One thread: pull, apply, flush the facts, acknowledge, tell the mount.
 * A failed pull is retried after a pause that doubles up to a ceiling;
 * an empty one after a short pause (a server that answers an empty pull
 * at once must not be asked in a tight loop).
 */
#include "backends/composite/feed.h"
#include "backends/gcs/pubsub.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 500
#define RETRY_MIN_MS 100         /* after a failed one, doubling ... */
#define RETRY_MAX_MS 5000        /* ... up to this */
#define ACK_TIMEOUT_MS 10000

struct feed {
	struct feed_conf conf;
	char *bucket, *prefix, *via;
	pthread_t th;
	pthread_mutex_t lock;        /* guards everything below */
	pthread_cond_t wake;         /* stop asked (monotonic clock) */
	bool stop;
	atomic_bool cancel;          /* aborts a pull in flight on stop */
	int64_t since_ns;            /* wall: facts from then on are covered */
	int64_t since_mono;          /* the same time, monotonic */
	int64_t last_ok_ns;          /* mono: end of the last good pull */
	bool drained;                /* the last good pull emptied it */
	int64_t newest_publish_ns;   /* wall: newest change applied */
	int last_err;
	struct feed_counts counts;
	uint64_t pulls, pull_failures, messages;
};

const char *feed_mount_name(const char *bucket, const char *prefix,
			    const struct gcs_change *c)
{
	size_t pl = strlen(prefix);
	if (c->kind == GCS_CHANGE_INVALID || !c->bucket || !c->name ||
	    strcmp(c->bucket, bucket) || strncmp(c->name, prefix, pl) ||
	    !c->name[pl])
		return NULL;
	return c->name + pl;
}

/* The fact a finalize with a payload says. */
static void finalize_fact(const struct gcs_change *c, int64_t now_ns,
			  struct source_fact *f)
{
	memset(f, 0, sizeof(*f));
	f->generation = c->generation;
	f->metageneration = c->info.metageneration;
	f->size = c->info.size;
	f->ctime_ns = c->info.mtime_ns;
	f->crc32c = c->info.crc32c;
	f->has_crc32c = c->info.has_crc32c;
	f->has_md5 = c->info.has_md5;
	memcpy(f->md5, c->info.md5, sizeof(f->md5));
	f->confirmed_ns = now_ns;
}

/* Apply one change to name; true when a fact changed. */
static bool apply_one(struct facts facts, const char *name,
		      const struct gcs_change *c, int64_t now_ns)
{
	struct source_fact old, f;
	bool known = facts.ops->get_source(facts.ctx, name, &old) == 0;
	uint64_t g = c->generation;

	switch (c->kind) {
	case GCS_CHANGE_FINALIZE:
	case GCS_CHANGE_METADATA:
		/* a tombstone of g or later, or g or later known: stale
		 * (a metadata update of the known generation confirms it) */
		if (known && (old.generation > g ||
			      (old.generation == g &&
			       (old.tombstone || c->kind == GCS_CHANGE_FINALIZE))))
			return false;
		if (c->has_info) {
			finalize_fact(c, now_ns, &f);
		} else if (known && !old.tombstone && old.generation == g) {
			f = old;                 /* confirmed again */
			f.confirmed_ns = now_ns;
		} else {
			/* a new generation whose size we were not told:
			 * what the map knew is gone, and, confirmed at no
			 * time, covered by nothing: the source is asked */
			f = (struct source_fact){ .tombstone = true,
						  .generation = g - 1 };
		}
		break;
	case GCS_CHANGE_DELETE:
	case GCS_CHANGE_ARCHIVE:
		if (c->overwritten_by > g) {
			/* replaced, not deleted: the name never stopped
			 * existing.  What the map knew is gone; the new
			 * generation's finalize (maybe not here yet) says the
			 * rest, and until then the source is asked. */
			g = c->overwritten_by - 1;
			if (known && (old.generation > g ||
				      (old.generation == g && old.tombstone)))
				return false;
			f = (struct source_fact){ .tombstone = true,
						  .generation = g };
			break;
		}
		if (known && (old.generation > g ||
			      (old.generation == g && old.tombstone)))
			return false;
		f = (struct source_fact){ .tombstone = true, .generation = g,
					  .confirmed_ns = now_ns };
		break;
	default:
		return false;
	}
	facts.ops->put_source(facts.ctx, name, &f);
	return true;
}

void feed_apply(struct facts facts, const char *bucket, const char *prefix,
		const struct gcs_change *c, size_t n, int64_t now_ns,
		void (*changed)(void *arg, const char *name), void *arg,
		struct feed_counts *counts)
{
	for (size_t i = 0; i < n; i++) {
		if (c[i].kind == GCS_CHANGE_INVALID) {
			counts->gaps++;
			continue;
		}
		const char *name = feed_mount_name(bucket, prefix, &c[i]);
		if (!name) {
			counts->ignored++;
		} else if (apply_one(facts, name, &c[i], now_ns)) {
			counts->applied++;
			if (changed)
				changed(arg, name);
		} else {
			counts->stale++;
		}
	}
}

/* ------------------------------------------------ the subscription */

#define PUBSUB_IDLE_MS 50        /* after an empty pull: a server that
                                    answers one at once is not asked in
                                    a tight loop */

static const char *ps_name(void *ctx)
{
	return pubsub_name(ctx);
}

static int ps_pull(void *ctx, unsigned max, struct gcs_changes *out,
		   bool *drained, const struct deadline *dl, char *err,
		   size_t errlen)
{
	int rc = pubsub_pull(ctx, max, out, dl, err, errlen);
	*drained = rc == 0 && out->n < max;
	return rc;
}

static int ps_ack(void *ctx, const struct gcs_changes *ch,
		  const struct deadline *dl)
{
	return pubsub_ack(ctx, ch->c, ch->n, dl);
}

static const struct feed_source_ops pubsub_source = {
	.name = ps_name,
	.pull = ps_pull,
	.ack = ps_ack,
	.idle_ms = PUBSUB_IDLE_MS,
};

void feed_source_pubsub(struct pubsub *sub, struct feed_source *out)
{
	out->ops = &pubsub_source;
	out->ctx = sub;
}

/* ------------------------------------------------ the thread */

/* Sleep up to ms, or until stop is asked.  False when it was. */
static bool pause_ms(struct feed *f, int64_t ms)
{
	int64_t until = mono_ns() + ms * NS_PER_MS;
	struct timespec ts = { until / NS_PER_SEC, until % NS_PER_SEC };

	pthread_mutex_lock(&f->lock);
	while (!f->stop &&
	       pthread_cond_timedwait(&f->wake, &f->lock, &ts) != ETIMEDOUT)
		;
	bool go_on = !f->stop;
	pthread_mutex_unlock(&f->lock);
	return go_on;
}

static const char *src_name(const struct feed *f);

/* Apply a pulled batch, commit, acknowledge.  The changed names are
 * told after the acknowledgement: what they show is committed. */
static void take(struct feed *f, struct gcs_changes *ch)
{
	struct feed_counts counts = { 0 };
	int64_t newest = 0;

	bool gap = false;
	for (size_t i = 0; i < ch->n; i++) {
		if (ch->c[i].publish_ns > newest)
			newest = ch->c[i].publish_ns;
		gap |= ch->c[i].kind == GCS_CHANGE_INVALID;
	}
	/* A gap: what was known before is not covered any more; what this
	 * batch says, gap or not, is (it is applied at or after since). */
	if (gap) {
		pthread_mutex_lock(&f->lock);
		f->since_ns = wall_ns();
		f->since_mono = mono_ns();
		pthread_mutex_unlock(&f->lock);
	}
	feed_apply(f->conf.facts, f->bucket, f->prefix, ch->c, ch->n,
		   wall_ns(), NULL, NULL, &counts);
	if (f->conf.facts.ops->flush)
		f->conf.facts.ops->flush(f->conf.facts.ctx);
	struct deadline dl = deadline_in_ms(ACK_TIMEOUT_MS);
	dl.cancel = &f->cancel;
	if (ch->n && f->conf.src.ops->ack(f->conf.src.ctx, ch, &dl) < 0)
		log_info("feed: %zu changes applied, their acknowledgement "
			 "failed: they come again (applying them twice is "
			 "harmless)", ch->n);
	pthread_mutex_lock(&f->lock);
	f->counts.applied += counts.applied;
	f->counts.stale += counts.stale;
	f->counts.ignored += counts.ignored;
	f->counts.gaps += counts.gaps;
	if (newest > f->newest_publish_ns)
		f->newest_publish_ns = newest;
	pthread_mutex_unlock(&f->lock);
	if (counts.gaps)
		log_warn("feed %s: %" PRIu64 " messages were not change "
			 "notifications; facts from before now are confirmed "
			 "again", src_name(f), counts.gaps);
	if (!f->conf.changed)
		return;
	for (size_t i = 0; i < ch->n; i++) {
		if (ch->c[i].kind == GCS_CHANGE_INVALID)
			continue;
		const struct gcs_change *c = &ch->c[i];
		const char *name = feed_mount_name(f->bucket, f->prefix, c);
		bool removed = (c->kind == GCS_CHANGE_DELETE ||
				c->kind == GCS_CHANGE_ARCHIVE) &&
			       c->overwritten_by <= c->generation;
		if (name)
			f->conf.changed(f->conf.changed_arg, name, removed);
	}
}

static const char *src_name(const struct feed *f)
{
	return f->conf.src.ops->name(f->conf.src.ctx);
}

static void *feed_thread(void *arg)
{
	struct feed *f = arg;
	int64_t retry_ms = RETRY_MIN_MS;
	unsigned batch = f->conf.batch ? f->conf.batch : DEFAULT_BATCH;
	char err[300];

	for (;;) {
		struct gcs_changes ch;
		/* a pull held by the server ends well within the stall time */
		struct deadline dl = deadline_in_ms(f->conf.stall_ms / 2 > 1000
						    ? f->conf.stall_ms / 2 : 1000);
		dl.cancel = &f->cancel;
		bool drained = false;
		int rc = f->conf.src.ops->pull(f->conf.src.ctx, batch, &ch,
					       &drained, &dl, err, sizeof(err));
		pthread_mutex_lock(&f->lock);
		bool stop = f->stop;
		f->pulls++;
		if (rc == 0) {
			f->last_ok_ns = mono_ns();
			f->drained = drained;
			f->messages += ch.n;
		} else {
			f->pull_failures++;
		}
		bool news = rc != f->last_err;
		f->last_err = rc;
		pthread_mutex_unlock(&f->lock);
		if (stop) {
			if (rc == 0)
				gcs_changes_release(&ch);
			break;
		}
		if (rc < 0) {
			if (news)
				log_warn("feed %s: %s", src_name(f), err);
			if (!pause_ms(f, retry_ms))
				break;
			retry_ms = retry_ms * 2 < RETRY_MAX_MS ? retry_ms * 2
							       : RETRY_MAX_MS;
			continue;
		}
		if (news)
			log_notice("feed %s: following", src_name(f));
		retry_ms = RETRY_MIN_MS;
		size_t got = ch.n;
		take(f, &ch);
		gcs_changes_release(&ch);
		if (!got && !pause_ms(f, f->conf.src.ops->idle_ms))
			break;
	}
	return NULL;
}

int feed_start(const struct feed_conf *conf, struct feed **out)
{
	if (!conf->src.ops || conf->stall_ms <= 0 || !conf->bucket)
		return -EINVAL;
	struct feed *f = xcalloc(1, sizeof(*f));

	f->conf = *conf;
	f->bucket = xstrdup(conf->bucket);
	f->prefix = xstrdup(conf->prefix ? conf->prefix : "");
	f->via = xstrdup(conf->via ? conf->via : "subscription");
	f->since_ns = wall_ns();
	f->since_mono = mono_ns();
	f->last_ok_ns = INT64_MIN / 2;
	pthread_mutex_init(&f->lock, NULL);
	timeutil_cond_init(&f->wake);
	atomic_init(&f->cancel, false);
	int rc = pthread_create(&f->th, NULL, feed_thread, f);
	if (rc) {
		feed_stop(f);
		return -rc;
	}
	*out = f;
	return 0;
}

void feed_stop(struct feed *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
	atomic_store(&f->cancel, true);
	if (f->th)
		pthread_join(f->th, NULL);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f->bucket);
	free(f->prefix);
	free(f->via);
	free(f);
}

/* Healthy, and t (wall clock, or monotonic when mono) since the feed
 * has been following without a gap. */
static bool covers(struct feed *f, int64_t t, bool mono)
{
	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	bool ok = f->drained &&
		  mono_ns() - f->last_ok_ns <= f->conf.stall_ms * NS_PER_MS &&
		  t >= (mono ? f->since_mono : f->since_ns);
	pthread_mutex_unlock(&f->lock);
	return ok;
}

bool feed_covers(struct feed *f, int64_t confirmed_ns)
{
	return covers(f, confirmed_ns, false);
}

bool feed_covers_mono(struct feed *f, int64_t born_mono)
{
	return covers(f, born_mono, true);
}

void feed_metrics(struct feed *f, struct prom *p)
{
	pthread_mutex_lock(&f->lock);
	struct feed_counts c = f->counts;
	int64_t last_ok = f->last_ok_ns, newest = f->newest_publish_ns;
	uint64_t pulls = f->pulls, failures = f->pull_failures;
	uint64_t messages = f->messages;
	bool drained = f->drained;
	pthread_mutex_unlock(&f->lock);

	int64_t now = mono_ns();
	bool healthy = drained &&
		       now - last_ok <= f->conf.stall_ms * NS_PER_MS;
	prom_add(p, "hylake_feed_healthy", PROM_GAUGE,
		 "1 while the change feed covers the version map", NULL, NULL,
		 healthy ? 1 : 0);
	prom_add(p, "hylake_feed_info", PROM_GAUGE,
		 "how the change feed is followed: the subscription itself "
		 "(subscription) or a site's journal", "via", f->via, 1);
	if (f->conf.src.ops->metrics)
		f->conf.src.ops->metrics(f->conf.src.ctx, p);
	if (last_ok > INT64_MIN / 2)
		prom_add(p, "hylake_feed_last_pull_age_seconds", PROM_GAUGE,
			 "time since the last good pull of the subscription",
			 NULL, NULL, (double)(now - last_ok) / 1e9);
	if (newest)
		prom_add(p, "hylake_feed_lag_seconds", PROM_GAUGE,
			 "now minus the publish time of the newest change "
			 "applied", NULL, NULL,
			 (double)(wall_ns() - newest) / 1e9);
	prom_add(p, "hylake_feed_pulls_total", PROM_COUNTER,
		 "pulls of the subscription", NULL, NULL, (double)pulls);
	prom_add(p, "hylake_feed_pull_failures_total", PROM_COUNTER,
		 "pulls that failed", NULL, NULL, (double)failures);
	prom_add(p, "hylake_feed_messages_total", PROM_COUNTER,
		 "messages received", NULL, NULL, (double)messages);
	prom_add(p, "hylake_feed_applied_total", PROM_COUNTER,
		 "changes that changed the version map", NULL, NULL,
		 (double)c.applied);
	prom_add(p, "hylake_feed_stale_total", PROM_COUNTER,
		 "changes older than what the map knew (duplicates, "
		 "reordering)", NULL, NULL, (double)c.stale);
	prom_add(p, "hylake_feed_gaps_total", PROM_COUNTER,
		 "messages that were not change notifications", NULL, NULL,
		 (double)c.gaps);
}
