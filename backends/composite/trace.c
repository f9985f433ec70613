/*
 * trace.c - the tracing store (see trace.h).  Each op times the inner
 * call and logs one line after it:
 *
 *   trace dc-east: read 'a/b.parquet' 1048576+131072 -> 131072 (812 us)
 */
#include "backends/composite/trace.h"
#include "backends/composite/wrap.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t us_since(int64_t t0)
{
	return (mono_ns() - t0) / 1000;
}

/* "ok", or the error's name. */
static const char *outcome(long long rc)
{
	return rc < 0 ? strerror((int)-rc) : "ok";
}

static int trace_stat(struct backend *b, const char *name,
		      struct obj_info *out, const struct deadline *dl)
{
	int64_t t0 = mono_ns();
	int rc = backend_stat(wrapper_inner(b), name, out, dl);
	log_trace("trace %s: stat '%s' -> %s%s size=%" PRIu64 " gen=%" PRIu64
		  " (%" PRId64 " us)", b->name, name, outcome(rc),
		  rc == 0 && out->is_dir ? " folder" : "",
		  rc == 0 ? out->size : 0, rc == 0 ? out->generation : 0,
		  us_since(t0));
	return rc;
}

struct counted {
	list_cb cb;
	void *arg;
	unsigned n;
};

static int count_entry(void *arg, const struct list_entry *e)
{
	struct counted *c = arg;
	c->n++;
	return c->cb(c->arg, e);
}

static int trace_list(struct backend *b, const struct list_req *req,
		      list_cb cb, void *arg, char **next_token,
		      const struct deadline *dl)
{
	struct counted c = { cb, arg, 0 };
	int64_t t0 = mono_ns();
	int rc = backend_list(wrapper_inner(b), req, count_entry, &c,
			      next_token, dl);
	log_trace("trace %s: list '%s'%s%s%s%s max=%u -> %s, %u entries%s "
		  "(%" PRId64 " us)", b->name, req->prefix,
		  req->delimiter ? "" : " recursive",
		  req->token ? " (next page)" : "",
		  req->start_at ? " from " : "",
		  req->start_at ? req->start_at : "", req->max_keys,
		  outcome(rc), c.n, rc == 0 && *next_token ? ", more" : "",
		  us_since(t0));
	return rc;
}

/* One line per open; an open asked for its tail (open_tail) says how
 * much was asked and how much came. */
static void log_open(struct backend *b, const char *op, const char *name,
		     int rc, struct bobj *h, size_t tail_len, int64_t t0)
{
	char tail[64] = "";
	if (tail_len)
		snprintf(tail, sizeof(tail), " tail=%zu/%zu",
			 rc == 0 ? h->tail_len : 0, tail_len);
	log_trace("trace %s: %s '%s' -> %s size=%" PRIu64 " gen=%" PRIu64
		  " etag=%s%s (%" PRId64 " us)", b->name, op, name, outcome(rc),
		  rc == 0 ? h->info.size : 0, rc == 0 ? h->info.generation : 0,
		  rc == 0 ? h->info.etag : "-", tail, us_since(t0));
}

static int trace_open_tail(struct backend *b, const char *name,
			   size_t tail_len, struct bobj **out,
			   const struct deadline *dl)
{
	struct bobj *h = NULL;
	int64_t t0 = mono_ns();
	int rc = backend_open_tail(wrapper_inner(b), name, tail_len, &h, dl);
	log_open(b, "open", name, rc, h, tail_len, t0);
	if (rc == 0)
		*out = wrapped_obj_new(b, h);
	return rc;
}

static int trace_open(struct backend *b, const char *name, struct bobj **out,
		      const struct deadline *dl)
{
	return trace_open_tail(b, name, 0, out, dl);
}

static int trace_open_pinned(struct backend *b, const char *name,
			     const struct obj_info *info, struct bobj **out)
{
	struct bobj *h = NULL;
	int64_t t0 = mono_ns();
	int rc = backend_open_pinned(wrapper_inner(b), name, info, &h);
	log_open(b, "open_pinned", name, rc, h, 0, t0);
	if (rc == 0)
		*out = wrapped_obj_new(b, h);
	return rc;
}

static ssize_t trace_read(struct bobj *o, void *buf, size_t len,
			  uint64_t off, const struct deadline *dl)
{
	int64_t t0 = mono_ns();
	ssize_t n = bobj_read(wrapped_inner(o), buf, len, off, dl);
	if (n >= 0)
		log_trace("trace %s: read '%s' %" PRIu64 "+%zu -> %zd (%" PRId64
			  " us)", o->b->name, o->name, off, len, n,
			  us_since(t0));
	else
		log_trace("trace %s: read '%s' %" PRIu64 "+%zu -> %s (%" PRId64
			  " us)", o->b->name, o->name, off, len,
			  outcome(n), us_since(t0));
	return n;
}

static void trace_close(struct bobj *o)
{
	log_trace("trace %s: close '%s'", o->b->name, o->name);
	wrapped_obj_close(o);
}

static int trace_put(struct backend *b, const char *name, int fd,
		     uint64_t size, const struct obj_info *stamp,
		     const struct deadline *dl)
{
	int64_t t0 = mono_ns();
	int rc = backend_put(wrapper_inner(b), name, fd, size, stamp, dl);
	log_trace("trace %s: put '%s' size=%" PRIu64 " stamp=%" PRIu64
		  " -> %s (%" PRId64 " us)", b->name, name, size,
		  stamp->generation, outcome(rc), us_since(t0));
	return rc;
}

/* A write's precondition as the trace shows it. */
static const char *pre_text(const struct write_pre *pre, char *buf,
			    size_t len)
{
	if (pre->kind == WRITE_PRE_ABSENT)
		return "absent";
	if (pre->kind == WRITE_PRE_NONE)
		return "none";
	snprintf(buf, len, "gen=%" PRIu64, pre->generation);
	return buf;
}

/* The writer is the inner store's (see struct bwriter): its writes and
 * commit are not traced, its opening is. */
static int trace_writer_open(struct backend *b, const char *name,
			     const struct write_pre *pre, struct bwriter **out,
			     const struct deadline *dl)
{
	char buf[32];
	int64_t t0 = mono_ns();
	int rc = wrapper_writer_open(b, name, pre, out, dl);
	log_trace("trace %s: writer_open '%s' %s -> %s (%" PRId64 " us)",
		  b->name, name, pre_text(pre, buf, sizeof(buf)), outcome(rc),
		  us_since(t0));
	return rc;
}

static int trace_remove(struct backend *b, const char *name,
			const struct write_pre *pre, const struct deadline *dl)
{
	char buf[32];
	int64_t t0 = mono_ns();
	int rc = wrapper_remove(b, name, pre, dl);
	log_trace("trace %s: remove '%s' %s -> %s (%" PRId64 " us)", b->name,
		  name, pre_text(pre, buf, sizeof(buf)), outcome(rc),
		  us_since(t0));
	return rc;
}

static int trace_copy(struct backend *b, const char *from,
		      uint64_t from_generation, const char *to,
		      const struct write_pre *pre, struct obj_info *out,
		      const struct deadline *dl)
{
	char buf[32];
	int64_t t0 = mono_ns();
	int rc = wrapper_copy(b, from, from_generation, to, pre, out, dl);
	log_trace("trace %s: copy '%s' gen=%" PRIu64 " to '%s' %s -> %s (%"
		  PRId64 " us)", b->name, from, from_generation, to,
		  pre_text(pre, buf, sizeof(buf)), outcome(rc), us_since(t0));
	return rc;
}

static int trace_set_meta(struct backend *b, const char *name,
			  const struct write_pre *pre,
			  const struct meta_kv *kv, size_t n,
			  struct obj_info *out, const struct deadline *dl)
{
	char buf[32];
	int64_t t0 = mono_ns();
	int rc = wrapper_set_meta(b, name, pre, kv, n, out, dl);
	log_trace("trace %s: set_meta '%s' %s mg=%" PRIu64 " -> %s (%" PRId64
		  " us)", b->name, name, pre_text(pre, buf, sizeof(buf)),
		  pre->metageneration, outcome(rc), us_since(t0));
	return rc;
}

static int trace_explain(struct backend *b, const char *name,
			 const char *attr, struct strbuf *out,
			 const struct deadline *dl)
{
	int64_t t0 = mono_ns();
	int rc = backend_explain(wrapper_inner(b), name, attr, out, dl);
	log_trace("trace %s: explain '%s' %s -> %s (%" PRId64 " us)", b->name,
		  name, attr, outcome(rc), us_since(t0));
	return rc;
}

static void trace_probe(struct backend *b, struct probe_result *res,
			const struct deadline *dl)
{
	int64_t t0 = mono_ns();
	backend_probe(wrapper_inner(b), res, dl);
	log_trace("trace %s: probe -> %s (%" PRId64 " us)", b->name,
		  outcome(res->err), us_since(t0));
}

static void trace_destroy(struct backend *b)
{
	wrapper_release((struct wrapper *)b);
	free(b);
}

static const struct backend_ops trace_ops = {
	.type = "trace",
	.stat = trace_stat,
	.list = trace_list,
	.open = trace_open,
	.open_tail = trace_open_tail,
	.read = trace_read,
	.open_pinned = trace_open_pinned,
	.close = trace_close,
	.put = trace_put,
	.writer_open = trace_writer_open,
	.remove = trace_remove,
	.copy = trace_copy,
	.set_meta = trace_set_meta,
	.explain = trace_explain,
	.metrics = wrapper_metrics,
	.cache_ms = wrapper_cache_ms,
	.probe = trace_probe,
	.destroy = trace_destroy,
};

struct backend *trace_create(struct backend *inner)
{
	struct wrapper *w = xcalloc(1, sizeof(*w));
	wrapper_init(w, &trace_ops, inner, NULL);
	return &w->base;
}
