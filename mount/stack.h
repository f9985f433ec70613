/*
 * stack.h - the one builder of what a mount serves from, from its
 * configuration: the stores, the version map and router over them, the
 * metadata cache on top, the block cache and read path under fs/, and a
 * writable mount's staging folder.  `hylake mount` builds all of it,
 * `hylake replicate` and `hylake check` the stores alone
 * (stack_open_store, stack_check); `hylake warm` and `explain` reach the
 * stack through a mount.
 *
 * Identities.  Everything a mount keeps on disk is keyed by the source's
 * identity (its type, endpoint, bucket and prefix: stack.identity), never
 * by how the stack above it is put together: the version map refuses a
 * map made for another source, and the block cache keeps blocks under
 * the same identity, so adding, removing or renaming a replica keeps
 * both; so does the staging folder's record of whose files it holds.
 * The default folders of all three derive from the source the same way
 * (stack_default_dir).
 */
#ifndef HYLAKE_STACK_H
#define HYLAKE_STACK_H

#include <stdio.h>

#include "mount/config.h"
#include "backends/util/strbuf.h"

struct backend;
struct bcache;
struct freshness;
struct mount_feed;
struct readpath;
struct staging;
struct vmap;

/* Everything a mount serves from; each pointer is owned by the stack. */
struct stack {
	char *identity;           /* the source's: keys the map and the cache */
	struct backend *top;      /* metadata cache, router, stores (owns them) */
	struct backend *source;   /* inside top: borrowed */
	struct backend *metacache;  /* inside top, or NULL: borrowed */
	struct backend *router;   /* inside top, or NULL: borrowed */
	struct vmap *vmap;        /* NULL without replicas or stale serving */
	struct mount_feed *changes;  /* [changes]: the change feed, or NULL */
	struct freshness *fresh;  /* the rule of every name (the router's) */
	struct bcache *bc;        /* NULL: no block cache (off, or unusable) */
	struct readpath *rp;
	struct staging *staging;  /* NULL: read-only, or staging_size 0 */
	struct strbuf describe;   /* one line for the log: what was built */
};

/*
 * Build the whole stack of cfg: the source (must answer), the replicas
 * (may be down: logged, kept), with replicas or serve_stale the version
 * map under state_dir and a router, the metadata cache, the block cache
 * (when it cannot be had, reads go on uncached: logged), the read
 * path, and for a writable mount the staging folder, after what a
 * stopped mount left there is finished or reported (staging_recover),
 * so a restart never leaves it half done.  Call after daemonizing.  0
 * or -errno with err filled; on failure nothing is left to release.
 * stack_release() wants every file of fs/ closed first.
 */
int stack_build(const struct hy_config *cfg, struct stack *st, char *err,
		size_t errlen);
void stack_release(struct stack *st);

/* Create the store of c and probe it.  On failure returns -errno and
 * puts a one-line reason (no secrets) in err; *out is NULL. */
int stack_open_store(const struct store_conf *c, int64_t timeout_ms,
		     struct backend **out, char *err, size_t errlen);

/* The default folder under base ("/var/lib/hylake") for the source of c:
 * one per bucket.  Caller frees. */
char *stack_default_dir(const char *base, const struct store_conf *c);

/* `hylake check`: one line per store on out.  Returns the exit code:
 * 0 all reachable, 1 a store failed. */
int stack_check(const struct hy_config *cfg, FILE *out);

#endif
