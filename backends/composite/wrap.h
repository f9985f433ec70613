/*
 * wrap.h - what a store that wraps one other store needs: the inner
 * store, handles that wrap the inner store's handles, and ops that just
 * pass a call through (fault.c and trace.c are built on it).
 *
 * A wrapper takes the inner store's name, capabilities and (unless told
 * otherwise) its description, so that it can stand in for it anywhere:
 * the router keys its facts by store name, and a mount's identity is its
 * source's description.
 *
 * Thread safety: as for any store; these helpers keep no state of their
 * own.
 */
#ifndef HYLAKE_WRAP_H
#define HYLAKE_WRAP_H

#include "backends/backend.h"

struct wrapper {
	struct backend base;
	struct backend *inner;    /* owned */
};

/* A handle of the wrapper over a handle of the inner store. */
struct wrapped_obj {
	struct bobj base;         /* info: the inner handle's, unless the
	                             wrapper changed it at open */
	struct bobj *inner;       /* owned */
};

/* Set up w over inner (takes ownership of inner).  describe NULL: the
 * inner store's. */
void wrapper_init(struct wrapper *w, const struct backend_ops *ops,
		  struct backend *inner, const char *describe);
/* Destroy the inner store and release w's fields (not w itself). */
void wrapper_release(struct wrapper *w);

static inline struct backend *wrapper_inner(struct backend *b)
{
	return ((struct wrapper *)b)->inner;
}

/* A handle of b wrapping inner (takes ownership of inner), with its
 * info.  Closed with wrapped_obj_close. */
struct bobj *wrapped_obj_new(struct backend *b, struct bobj *inner);
void wrapped_obj_close(struct bobj *o);

static inline struct bobj *wrapped_inner(struct bobj *o)
{
	return ((struct wrapped_obj *)o)->inner;
}

/* Ops that pass the call to the inner store unchanged. */
int wrapper_explain(struct backend *b, const char *name, const char *attr,
		    struct strbuf *out, const struct deadline *dl);
void wrapper_metrics(struct backend *b, struct prom *p);
int64_t wrapper_cache_ms(struct backend *b, const char *name);
/* Writes pass through as they are: the writer is the inner store's (its
 * ops are the inner store's, see struct bwriter). */
int wrapper_writer_open(struct backend *b, const char *name,
			const struct write_pre *pre, struct bwriter **out,
			const struct deadline *dl);
int wrapper_remove(struct backend *b, const char *name,
		   const struct write_pre *pre, const struct deadline *dl);

#endif
