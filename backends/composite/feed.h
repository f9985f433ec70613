/*
 * feed.h - the change feed: GCS changes, followed from a Pub/Sub
 * subscription or from a site's journal of it (journal.h), kept in the
 * version map so that opens need not ask GCS.
 *
 * A thread pulls the subscription, applies each change to the facts
 * (the source's view of a name), waits until the facts are committed,
 * and only then acknowledges the messages; then it tells the mount which
 * names changed (so the kernel and the metadata cache drop what they
 * keep of them).  A change not applied is not acknowledged, and comes
 * again.
 *
 * Applying, at least once and in any order (PROTOCOLS.md 3.2):
 *   FINALIZE g           the name is generation g (with the size and
 *                        crc32c of the payload when it has one)
 *   METADATA_UPDATE g    generation g is confirmed again
 *   DELETE g, ARCHIVE g  generation g is gone: a tombstone of g; when
 *                        the message says a generation h replaced it, the
 *                        name still exists: what the map knew is dropped
 *                        (a tombstone of h - 1 that covers nothing) and the
 *                        finalize of h, or the source, says the rest
 * A change never goes back: a finalize is not applied when the map knows
 * generation g or a later one, or a tombstone of g or later; a delete of
 * g not when it knows a later generation.  A message that is not a
 * well-formed notification is a gap (some change went unread).  Changes
 * of other buckets, and of names outside the source's prefix, are
 * acknowledged and ignored.
 *
 * Coverage, what the router asks (feed_covers): while the feed is
 * healthy, a fact confirmed at or after `since` is current but for the
 * changes still on their way.  The feed is healthy while its last good
 * pull ended within stall_ms and found the subscription drained (fewer
 * messages than it asked for), and it is `since` the first pull of this
 * process, or the last gap.  Changes published while the mount was not
 * running are delivered when it starts (the subscription keeps them), but
 * facts confirmed before then are not covered: they are confirmed again
 * as their freshness rule says.
 *
 * Thread safety: feed_covers and feed_metrics may be called from any
 * thread.
 */
#ifndef HYLAKE_FEED_H
#define HYLAKE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/facts.h"
#include "backends/gcs/gcs_json.h"

struct feed;
struct prom;
struct pubsub;

/*
 * Where changes come from: the subscription itself (feed_source_pubsub),
 * or a site's journal that one follower keeps from it (journal.h).
 */
struct feed_source_ops {
	const char *(*name)(void *ctx);   /* for messages */
	/*
	 * Up to max changes into *out (released by the feed).  *drained:
	 * nothing was left waiting, so every change published before the
	 * pull is now delivered.  0 (maybe with no change), or -errno with
	 * err filled.
	 */
	int (*pull)(void *ctx, unsigned max, struct gcs_changes *out,
		    bool *drained, const struct deadline *dl, char *err,
		    size_t errlen);
	/* Applied and committed: they need not come again.  < 0: they
	 * will (applying twice is harmless). */
	int (*ack)(void *ctx, const struct gcs_changes *ch,
		   const struct deadline *dl);
	/* Optional: the source's own figures. */
	void (*metrics)(void *ctx, struct prom *p);
	int64_t idle_ms;                  /* pause after an empty pull */
};

struct feed_source {
	const struct feed_source_ops *ops;
	void *ctx;
};

/* The subscription as a source (sub borrowed). */
void feed_source_pubsub(struct pubsub *sub, struct feed_source *out);

struct feed_conf {
	struct feed_source src;       /* borrowed; outlives the feed */
	struct facts facts;           /* borrowed */
	const char *bucket;           /* the source's bucket */
	const char *prefix;           /* the source's prefix ("" or "p/") */
	int64_t stall_ms;             /* see coverage above; > 0 */
	unsigned batch;               /* messages per pull; 0: 500 */
	const char *via;              /* how it is followed, for status:
	                                 "subscription", "journal of SITE" */
	/* Called by the feed's thread with each changed name (the mount's
	 * name, prefix cut), removed when the change deleted it (not an
	 * overwrite's delete); may be NULL. */
	void (*changed)(void *arg, const char *name, bool removed);
	void *changed_arg;
};

/* What applying one batch did (for tests and counters). */
struct feed_counts {
	uint64_t applied;             /* changes that changed a fact */
	uint64_t stale;               /* older than what the map knows */
	uint64_t ignored;             /* another bucket, outside the prefix */
	uint64_t gaps;                /* messages that were not notifications */
};

/* Start following (the thread starts at once).  conf is copied. */
int feed_start(const struct feed_conf *conf, struct feed **out);
/* Stop the thread (a pull in flight is cancelled) and free. */
void feed_stop(struct feed *f);

/* Is a fact the source confirmed at confirmed_ns (wall clock) current,
 * but for changes on their way?  False whenever the feed is unhealthy. */
bool feed_covers(struct feed *f, int64_t confirmed_ns);

/* The same for an answer the source gave to a question asked at
 * born_mono (monotonic clock), as the metadata cache keeps them. */
bool feed_covers_mono(struct feed *f, int64_t born_mono);

/* The feed's figures: lag, time since the last good pull, counters. */
void feed_metrics(struct feed *f, struct prom *p);

/*
 * Apply changes c[0..n) to facts, as the feed does (the rules above),
 * adding to *counts; the mount's name of each change that changed a
 * fact goes to changed (if set).  now_ns: wall clock, the facts'
 * confirmed_ns.  Exposed for tests.
 */
void feed_apply(struct facts facts, const char *bucket, const char *prefix,
		const struct gcs_change *c, size_t n, int64_t now_ns,
		void (*changed)(void *arg, const char *name), void *arg,
		struct feed_counts *counts);

/* The mount's name of change c (prefix cut), or NULL when it is of
 * another bucket or outside the prefix. */
const char *feed_mount_name(const char *bucket, const char *prefix,
			    const struct gcs_change *c);

#endif
