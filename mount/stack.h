/*
 * stack.h - build the stores a configuration describes and check that
 * they answer.  Used by `hylake mount` (source only, for now) and by
 * `hylake check` (every store).
 */
#ifndef HYLAKE_STACK_H
#define HYLAKE_STACK_H

#include <stdio.h>

#include "mount/config.h"

struct backend;
struct vmap;

/* What a mount serves from: the top store, and what it owns. */
struct stack {
	struct backend *top;      /* the source, or a router over it */
	struct vmap *vmap;        /* NULL without replicas or stale serving */
};

/*
 * Build the stack of cfg: the source (must answer), the replicas (may be
 * down: logged, kept), and with replicas or serve_stale, the version map
 * under state_dir and a router.  Call after daemonizing.  0 or -errno
 * with err filled.
 */
int stack_build(const struct hy_config *cfg, struct stack *st, char *err,
		size_t errlen);
void stack_release(struct stack *st);

/* Create the store of c and probe it.  On failure returns -errno and
 * puts a one-line reason (no secrets) in err; *out is NULL. */
int stack_open_store(const struct store_conf *c, int64_t timeout_ms,
		     struct backend **out, char *err, size_t errlen);

/* `hylake check`: one line per store on out.  Returns the exit code:
 * 0 all reachable, 1 a store failed. */
int stack_check(const struct hy_config *cfg, FILE *out);

#endif
