/*
 * metacache.h - a store made of a store: answers stat and list from
 * memory when it can and passes everything else to the store it wraps.
 *
 *   stat(name)   a cached answer younger than its TTL is returned as is:
 *                found (attr_ttl) or -ENOENT (neg_ttl).  Otherwise the
 *                inner store is asked and 0 or -ENOENT is remembered;
 *                other errors never are.
 *   list(req)    a page is cached under (prefix, delimiter, token,
 *                max_keys) for list_ttl and replayed with the same
 *                entries and the same next token.  Every entry of a
 *                listing fetched from the inner store (delimiter "/")
 *                also fills the stat cache for its full name ("d/" is a
 *                folder "d"), so `ls -l` followed by a lookup of each
 *                entry asks nothing more.  What a page fills follows the
 *                listing rules of backends/listing.h (listing_settle):
 *                a folder wins over a file of its name as in stat, and a
 *                file whose "name/" could still come on a later page of
 *                a sorted listing is kept aside (charged to the budget,
 *                under the key of the next page's request) until the
 *                request for that page, from any caller, decides it.
 *                Replayed pages are passed on exactly as the inner store
 *                gave them (its order, repeats and all): the cache never
 *                reorders or filters a page, only the stat fill does.
 *   open(name)   always passed to the inner store, which pins the
 *                version as the freshness mode says (strict: asks the
 *                source, close-to-open).  A new version seen at open
 *                replaces the cached attributes at once; -ENOENT drops
 *                them (and is remembered when neg_ttl > 0).
 *   the rest     passed through: handles are the inner store's own, so
 *                reads and closes never come here.
 *
 * The wrapper is invisible except for speed: it reports the inner store's
 * name, describe and capabilities, and passes the optional ops through
 * (where the inner store lacks one, the default answer comes back).
 *
 * Memory: entries and listing pages share one LRU under max_bytes (struct
 * sizes, names, tokens and an allowance per allocation are counted).  A
 * page larger than a quarter of max_bytes is neither cached nor used to
 * fill the stat cache, so streaming a folder of any size stays within the
 * budget (plus the copy of the one page each listing in progress is
 * reading), and one page never flushes the rest of the cache.
 *
 * TTLs (what mount/stack.c sets, and why it is consistent):
 *   attr_ttl = min(attr_timeout, entry_timeout).  A lookup answer tells
 *     both that the name exists (the kernel keeps that entry_timeout) and
 *     its attributes (attr_timeout), so a cached answer is never older
 *     than what the kernel itself may show: entry_timeout=0 still means
 *     "every lookup sees deletions", attr_timeout=0 "every stat sees the
 *     current size".  Strict freshness is untouched: opens always confirm
 *     with the source, and a new version found there refreshes the cache.
 *   neg_ttl = negative_timeout (the kernel's own negative entry time).
 *     Never lengthened by the freshness bound: a name about to be created
 *     (the next commit file of a table) must show up as soon as asked.
 *   list_ttl = 0 in strict mode: the kernel never caches folder contents,
 *     so before this cache every opendir saw a fresh listing, and a new
 *     object is expected in the next `ls`.  Entries still fill the stat
 *     cache.
 *   bounded:D  attr_ttl = max(the above, D) and list_ttl = D.  The mount
 *     then promises metadata at most D old (the router already answers
 *     stat from facts the source confirmed within D), so attributes and
 *     listings may be that old too.
 *
 * Thread safety: every op may be called from any thread; one mutex guards
 * the table and is never held while the inner store or a caller's list
 * callback runs.  Concurrent misses of one name each ask the inner store.
 */
#ifndef HYLAKE_METACACHE_H
#define HYLAKE_METACACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;

struct metacache_conf {
	int64_t attr_ttl_ms;      /* stat answers that found something, and
	                             entries learned from listings; 0: off */
	int64_t neg_ttl_ms;       /* stat answers -ENOENT; 0: off */
	int64_t list_ttl_ms;      /* listing pages; 0: off */
	size_t max_bytes;         /* ceiling for everything cached; 0: off */
	/*
	 * A lookup memory cannot answer lists a page of its folder from the
	 * name on (stores with list_start_at), and keeps what the page says
	 * of the names after it: a burst of lookups in one folder costs a
	 * page per MC_LOOKUP_PAGE names instead of a request each.  For
	 * strict freshness, where every lookup asks the store anyway; a
	 * failed page falls back to asking about the name alone.
	 */
	bool lookup_pages;
	/*
	 * Optional, with a change feed: is a stat answer about name, to a
	 * question asked at born (monotonic), still current because the
	 * feed would have told of a change since (router_covers)?  Such an
	 * answer outlives its TTL (up to an hour) while covered; the feed
	 * tells each change through metacache_forget_change.
	 */
	bool (*covered)(void *arg, const char *name, int64_t born);
	void *covered_arg;
};

/*
 * Wrap inner.  Takes ownership of inner (metacache's destroy destroys it).
 * conf is copied.  Never fails (allocation failure aborts).
 */
struct backend *metacache_create(struct backend *inner,
				 const struct metacache_conf *conf);

struct metacache_stats {
	uint64_t hits;            /* stat answered from a positive entry */
	uint64_t misses;          /* stat asked the inner store */
	uint64_t neg_hits;        /* stat answered -ENOENT from memory */
	uint64_t list_hits;       /* pages replayed from memory */
	uint64_t list_misses;     /* pages asked of the inner store */
	uint64_t evictions;       /* entries and pages dropped for the budget */
	uint64_t entries;         /* entries and pages held now */
	uint64_t bytes;           /* memory charged now (<= max_bytes) */
};

/*
 * The change feed says name changed (removed: it was deleted): what is
 * cached of it goes, and so does what is cached of its folders (a
 * deletion may have emptied them; a new name makes a folder of each),
 * but for folders known to exist when it did not remove anything.
 * Answers to questions about these names asked before now are not kept
 * when they come later.
 */
void metacache_forget_change(struct backend *b, const char *name,
			     bool removed);

/* Counters of b, which must come from metacache_create() (the builder
 * of the stack knows which store that is).  Thread safe. */
void metacache_get_stats(struct backend *b, struct metacache_stats *out);

#endif
