/*
 * router.h - a store made of stores: the source of truth plus replicas.
 *
 * The source decides names, existence and the current version.  Opening
 * a name pins a version V as the name's freshness rule says
 * (freshness.h): strict asks the source; bounded trusts a fact the source
 * confirmed within the bound; immutable (files table formats write once)
 * trusts any fact of the name until it is deleted.  Reads
 * go to the first replica (in configured order) that provably holds V
 * (the replica contract), and fall over, at the same offset, to the next
 * one and finally to the source when a store fails or holds something
 * else.  A copy of another version is never served.
 *
 * Ranking and hedging: replicas are tried in configured order, except
 * that one whose circuit breaker is open goes last and one clearly slower
 * (EWMA) than a later one goes behind it.  A read that waits past its
 * store's p95 latency is also sent to the next store, within a budget
 * (a share of reads), and the first good answer wins.
 *
 * The replica contract: a copy counts as generation G when its stamped
 * source generation is G (and its stamped crc32c, if any, is V's), or,
 * with no stamp, when size and MD5 (single-part ETag vs md5Hash) match.
 * A stamp is a claim, not a proof: unless a replica is configured to be
 * trusted, its bytes are checked block by block against sums that prove
 * V's crc32c (verify.h) before they are returned, and a copy whose bytes
 * differ is marked bad and the read moves on at the same offset.
 * Whole-object reads from any store are checked against V's crc32c.
 *
 * What the router learns it keeps through struct facts (the version map).
 * Thread safe like every store.
 */
#ifndef HYLAKE_ROUTER_H
#define HYLAKE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/facts.h"
#include "backends/store.h"

struct backend;

#define ROUTER_MAX_REPLICAS 16

struct feed;
struct freshness;

struct router_conf {
	/* How fresh each name's version must be at open (borrowed; must
	 * outlive the router): strict names ask the source, bounded ones
	 * trust a fact confirmed within their bound, immutable ones any
	 * fact that is not a tombstone. */
	struct freshness *fresh;
	int64_t serve_stale_ms;      /* < 0: off; else how old a known version
	                                may be when the source is down */
	int64_t replica_recheck_ms;  /* trust "absent"/"lagging" this long */
	int64_t hedge_budget_pct;    /* share of reads that may be hedged */
	int64_t hedge_threads;       /* workers running first requests */
	enum verify_mode verify[ROUTER_MAX_REPLICAS];  /* per replica */
	/* The change feed (borrowed; may be NULL): while it covers a fact
	 * of a bounded name, the fact is trusted past the bound, until a
	 * change arrives (feed.h). */
	struct feed *feed;
};

/* The router takes ownership of source and replicas; facts is borrowed
 * and must outlive it.  Returns 0, or -E2BIG past ROUTER_MAX_REPLICAS. */
int router_create(struct backend *source, struct backend **replicas,
		  size_t nreplicas, struct facts facts,
		  const struct router_conf *conf, struct backend **out);

/*
 * Is an answer about name that the source gave to a question asked at
 * born_mono (monotonic) still current?  True only for a bounded name
 * while the change feed covers that time: a change since would have
 * been told.  For the metadata cache over the router.  b must come from
 * router_create().  Thread safe.
 */
bool router_covers(struct backend *b, const char *name, int64_t born_mono);

/*
 * Write-back: version v of name was just committed to the source, and
 * the v->size bytes of fd (from offset 0) are its bytes.  Put them on
 * the replica called replica, as the replicator would (replica_put.h:
 * block manifest, then the copy stamped with v), and remember that the
 * replica holds v, with its block sums and the copy's etag, so that the
 * next open of name reads it there with no further request.  Call only
 * after the commit succeeded: a copy must never claim a generation the
 * source does not have.  tmpdir holds the manifest on its way.
 *
 * 0; -ENOENT (no replica of that name), -EBADMSG (the bytes do not
 * combine to v's crc32c: nothing put), -ENOSPC, or the replica's
 * -errno.  Either way counted in the router's figures.  b must come
 * from router_create().  Thread safe.
 */
int router_write_back(struct backend *b, const char *replica,
		      const char *name, int fd, const struct obj_info *v,
		      const char *tmpdir, int64_t timeout_ms);

/* Count a write-back that could not even be tried (no local copy of the
 * bytes was kept).  b must come from router_create(). */
void router_write_back_skipped(struct backend *b);

#endif
