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

/* Create the store of c and probe it.  On failure returns -errno and
 * puts a one-line reason (no secrets) in err; *out is NULL. */
int stack_open_store(const struct store_conf *c, int64_t timeout_ms,
		     struct backend **out, char *err, size_t errlen);

/* `hylake check`: one line per store on out.  Returns the exit code:
 * 0 all reachable, 1 a store failed. */
int stack_check(const struct hy_config *cfg, FILE *out);

#endif
