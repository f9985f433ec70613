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
int wrapper_copy(struct backend *b, const char *from, uint64_t from_generation,
		 const char *to, const struct write_pre *pre,
		 struct obj_info *out, const struct deadline *dl);
int wrapper_set_meta(struct backend *b, const char *name,
		     const struct write_pre *pre, const struct meta_kv *kv,
		     size_t n, struct obj_info *out,
		     const struct deadline *dl);

/*
 * A writer of b over a writer of another store (for stores that learn
 * from a write: the router records the new generation, the metadata
 * cache forgets the name).  Appends and abort pass to the inner writer;
 * b's writer_commit calls wrapped_writer_commit, then learns from its
 * answer.  wrapped_writer_new takes ownership of inner.
 */
struct wrapped_writer {
	struct bwriter base;      /* written: the inner writer's */
	struct bwriter *inner;    /* owned */
};

struct bwriter *wrapped_writer_new(struct backend *b, struct bwriter *inner);
/* Open a writer of store (the one b writes to) and wrap it as b's. */
int wrapped_writer_open(struct backend *b, struct backend *store,
			const char *name, const struct write_pre *pre,
			struct bwriter **out, const struct deadline *dl);
int wrapped_writer_write(struct bwriter *w, const void *buf, size_t len,
			 const struct deadline *dl);
/* Commit the inner writer; w is freed, whatever the answer. */
int wrapped_writer_commit(struct bwriter *w, struct obj_info *out,
			  const struct deadline *dl);
void wrapped_writer_abort(struct bwriter *w);

#endif
