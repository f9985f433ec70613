/*
 * vmap.h - the version map: facts about the source and the replicas,
 * kept in LMDB under a mount's state_dir (implements backends/facts.h).
 *
 * One environment per mount, opened once after daemonizing (never carried
 * across fork()), read by many threads with short read transactions and
 * written by one writer thread that batches facts every few milliseconds.
 * A fact put is visible to gets at once (from the pending batch) and is
 * on disk after the next batch commits; a crash may lose the last batch,
 * never the file.  When the writer falls behind, puts past a cap on the
 * pending batch are dropped (counted in vmap_stats.dropped); a batch that
 * fails to commit is dropped too (vmap_stats.lost).  The map is a cache: entries least recently used are
 * evicted before the map reaches its size ceiling.
 *
 * The map records which source it belongs to (identity: store type,
 * endpoint, bucket, prefix) and refuses to be used for another one.
 *
 * Thread safety: every function may be called from any thread, except
 * vmap_close(), which must be the last call.
 */
#ifndef HYLAKE_VMAP_H
#define HYLAKE_VMAP_H

#include <stddef.h>
#include <stdint.h>

#include "backends/facts.h"

struct vmap;

struct vmap_stats {
	uint64_t objects;        /* names on disk (a record each, with every
	                            fact about the name) */
	uint64_t replicas;       /* records of block sums on disk */
	uint64_t commits;        /* batches written */
	uint64_t evicted;        /* entries dropped to stay under the ceiling */
	uint64_t dropped;        /* facts not queued: the writer was behind */
	uint64_t lost;           /* facts queued but not kept: commit failed */
	uint64_t map_size;       /* the ceiling, bytes */
	uint64_t used_bytes;     /* pages in use, bytes */
	uint64_t lookups;        /* facts of names asked for */
	uint64_t front_hits;     /* of those, answered from the records
	                            held in memory (vmap_front.h) */
};

/*
 * Open (creating dir and the map if needed).  identity names the source
 * the map is for.  A map file that is corrupt, truncated, not LMDB's or
 * from another LMDB version is renamed to data.mdb.corrupt-<epoch seconds>
 * (lock.mdb likewise), with a warning, and an empty map is opened: the map
 * is a cache.  A map of another format version (its records laid out
 * otherwise, as format 1's were) is emptied in place and started again,
 * with a notice.  Returns 0 or -errno with err filled: -EEXIST when the map
 * belongs to another source (a configuration error: nothing is moved),
 * -EUCLEAN when even the fresh map is unusable, another -errno when the
 * directory or the file cannot be used.
 */
int vmap_open(const char *dir, const char *identity, uint64_t map_size,
	      struct vmap **out, char *err, size_t errlen);

/* Commit what is pending, stop the writer, close the environment. */
void vmap_close(struct vmap *m);

/* Wait until every fact put before this call is committed, or dropped:
 * a failed commit releases the waiters too. */
void vmap_flush(struct vmap *m);

/* The facts interface over this map (valid until vmap_close). */
struct facts vmap_facts(struct vmap *m);

void vmap_get_stats(struct vmap *m, struct vmap_stats *st);

#endif
