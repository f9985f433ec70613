/*
 * wrap.c - helpers for stores that wrap one other store (see wrap.h).
 */
#include "backends/composite/wrap.h"
#include "backends/util/strbuf.h"

#include <stdlib.h>

void wrapper_init(struct wrapper *w, const struct backend_ops *ops,
		  struct backend *inner, const char *describe)
{
	w->inner = inner;
	backend_init(&w->base, ops, inner->name,
		     describe ? describe : inner->describe, inner->caps);
}

void wrapper_release(struct wrapper *w)
{
	backend_destroy(w->inner);
	backend_release(&w->base);
}

struct bobj *wrapped_obj_new(struct backend *b, struct bobj *inner)
{
	struct wrapped_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, inner->name);
	o->base.info = inner->info;
	bobj_take_tail(&o->base, inner);
	o->inner = inner;
	return &o->base;
}

void wrapped_obj_close(struct bobj *ob)
{
	struct wrapped_obj *o = (struct wrapped_obj *)ob;
	bobj_close(o->inner);
	bobj_release(ob);
	free(o);
}

int wrapper_explain(struct backend *b, const char *name, const char *attr,
		    struct strbuf *out, const struct deadline *dl)
{
	return backend_explain(wrapper_inner(b), name, attr, out, dl);
}

int64_t wrapper_cache_ms(struct backend *b, const char *name)
{
	return backend_cache_ms(wrapper_inner(b), name);
}

void wrapper_metrics(struct backend *b, struct prom *p)
{
	backend_metrics(wrapper_inner(b), p);
}

int wrapper_writer_open(struct backend *b, const char *name,
			const struct write_pre *pre, struct bwriter **out,
			const struct deadline *dl)
{
	return backend_writer_open(wrapper_inner(b), name, pre, out, dl);
}

int wrapper_remove(struct backend *b, const char *name,
		   const struct write_pre *pre, const struct deadline *dl)
{
	return backend_remove(wrapper_inner(b), name, pre, dl);
}

int wrapper_copy(struct backend *b, const char *from, uint64_t from_generation,
		 const char *to, const struct write_pre *pre,
		 struct obj_info *out, const struct deadline *dl)
{
	return backend_copy(wrapper_inner(b), from, from_generation, to, pre,
			    out, dl);
}

int wrapper_set_meta(struct backend *b, const char *name,
		     const struct write_pre *pre, const struct meta_kv *kv,
		     size_t n, struct obj_info *out,
		     const struct deadline *dl)
{
	return backend_set_meta(wrapper_inner(b), name, pre, kv, n, out, dl);
}

struct bwriter *wrapped_writer_new(struct backend *b, struct bwriter *inner)
{
	struct wrapped_writer *w = xcalloc(1, sizeof(*w));
	bwriter_init(&w->base, b, inner->name, &inner->pre);
	w->base.written = inner->written;
	w->inner = inner;
	return &w->base;
}

int wrapped_writer_open(struct backend *b, struct backend *store,
			const char *name, const struct write_pre *pre,
			struct bwriter **out, const struct deadline *dl)
{
	struct bwriter *inner;
	int rc = backend_writer_open(store, name, pre, &inner, dl);
	if (rc < 0)
		return rc;
	*out = wrapped_writer_new(b, inner);
	return 0;
}

int wrapped_writer_write(struct bwriter *bw, const void *buf, size_t len,
			 const struct deadline *dl)
{
	struct wrapped_writer *w = (struct wrapped_writer *)bw;
	int rc = bwriter_write(w->inner, buf, len, dl);
	w->base.written = w->inner->written;
	return rc;
}

int wrapped_writer_commit(struct bwriter *bw, struct obj_info *out,
			  const struct deadline *dl)
{
	struct wrapped_writer *w = (struct wrapped_writer *)bw;
	int rc = bwriter_commit(w->inner, out, dl);
	bwriter_release(&w->base);
	free(w);
	return rc;
}

void wrapped_writer_abort(struct bwriter *bw)
{
	struct wrapped_writer *w = (struct wrapped_writer *)bw;
	bwriter_abort(w->inner);
	bwriter_release(&w->base);
	free(w);
}
