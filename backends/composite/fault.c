/*
 * fault.c - the fault-injecting store (see fault.h).
 *
 * Every call first asks the rules for a verdict (under the lock, which
 * also counts the call), then waits out any delay, then fails or calls
 * the inner store, then spoils the answer as the verdict says.
 */
#include "backends/composite/fault.h"
#include "backends/composite/wrap.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOUNT (FAULT_ANY + 1)       /* per op, and all ops together */
#define DELAY_SLICE_NS (5 * NS_PER_MS) /* how often a delay looks up */

struct rule {
	struct fault_rule r;      /* r.name owned */
	unsigned seen;            /* matching calls */
	unsigned fired;
};

struct fault_store {
	struct wrapper w;
	uint64_t seed;
	pthread_mutex_t lock;     /* guards everything below */
	struct rule *rules;
	size_t nrules;
	unsigned calls[NCOUNT], inflight[NCOUNT], max_inflight[NCOUNT];
	struct fault_range log[FAULT_LOG_MAX];
	size_t nlog;
};

/* What the rules decided for one call. */
struct verdict {
	int err;
	uint64_t delay_us;
	bool corrupt, truncate, other;
	uint64_t other_gen;
	uint64_t draw;            /* from the seed: where to corrupt */
	unsigned page_max;        /* 0: the page the caller asked for */
};

static struct fault_store *to_fault(struct backend *b)
{
	return (struct fault_store *)b;
}

/* splitmix64: a well-mixed number from a counter. */
static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static bool action_fits(enum fault_action a, enum fault_op op)
{
	switch (a) {
	case FAULT_FAIL:
	case FAULT_DELAY:
		return true;
	case FAULT_CORRUPT:
	case FAULT_TRUNCATE:
		return op == FAULT_READ || op == FAULT_ANY;
	case FAULT_OTHER_VERSION:
		return op == FAULT_STAT || op == FAULT_OPEN ||
		       op == FAULT_OPEN_PINNED || op == FAULT_ANY;
	case FAULT_SHORT_PAGE:
		return op == FAULT_LIST || op == FAULT_ANY;
	}
	return false;
}

static bool rule_matches(const struct fault_rule *r, enum fault_op op,
			 const char *name)
{
	if ((r->op != FAULT_ANY && r->op != op) || !action_fits(r->action, op))
		return false;
	if (!r->name)
		return true;
	return r->prefix ? strncmp(name, r->name, strlen(r->name)) == 0
			 : strcmp(name, r->name) == 0;
}

/* Does rule i fire on this call?  Lock held. */
static bool rule_fires(struct fault_store *fs, size_t i)
{
	struct rule *ru = &fs->rules[i];
	ru->seen++;
	if (ru->seen <= ru->r.skip)
		return false;
	if (ru->r.times && ru->fired >= ru->r.times)
		return false;
	if (ru->r.percent && ru->r.percent < 100 &&
	    mix(fs->seed ^ mix(i) ^ ru->seen) % 100 >= ru->r.percent)
		return false;
	ru->fired++;
	return true;
}

static void note_call(struct fault_store *fs, enum fault_op op, int delta)
{
	enum fault_op ops[2] = { op, FAULT_ANY };
	for (int k = 0; k < 2; k++) {
		if (delta > 0) {
			fs->calls[ops[k]]++;
			if (++fs->inflight[ops[k]] > fs->max_inflight[ops[k]])
				fs->max_inflight[ops[k]] = fs->inflight[ops[k]];
		} else {
			fs->inflight[ops[k]]--;
		}
	}
}

/* Count the call and decide what goes wrong with it. */
static void judge(struct fault_store *fs, enum fault_op op, const char *name,
		  struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&fs->lock);
	note_call(fs, op, 1);
	for (size_t i = 0; i < fs->nrules; i++) {
		const struct fault_rule *r = &fs->rules[i].r;
		if (!rule_matches(r, op, name) || !rule_fires(fs, i))
			continue;
		switch (r->action) {
		case FAULT_FAIL:
			if (!v->err)
				v->err = r->err;
			break;
		case FAULT_DELAY:
			v->delay_us += r->delay_us;
			break;
		case FAULT_CORRUPT:
			v->corrupt = true;
			v->draw = mix(fs->seed ^ mix(i) ^ fs->rules[i].fired);
			break;
		case FAULT_TRUNCATE:
			v->truncate = true;
			break;
		case FAULT_OTHER_VERSION:
			v->other = true;
			v->other_gen = r->generation;
			break;
		case FAULT_SHORT_PAGE:
			if (!v->page_max || r->page_max < v->page_max)
				v->page_max = r->page_max;
			break;
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

static void done(struct fault_store *fs, enum fault_op op)
{
	pthread_mutex_lock(&fs->lock);
	note_call(fs, op, -1);
	pthread_mutex_unlock(&fs->lock);
}

/* Wait us microseconds, or less when the deadline comes first. */
static int pause_for(uint64_t us, const struct deadline *dl)
{
	int64_t end = mono_ns() + (int64_t)us * 1000;
	for (;;) {
		int64_t now = mono_ns(), until = end;
		if (dl->cancel && atomic_load(dl->cancel))
			return -ECANCELED;
		if (now >= end)
			return 0;
		if (dl->at && now >= dl->at)
			return -ETIMEDOUT;
		if (dl->at && dl->at < until)
			until = dl->at;
		if (until - now > DELAY_SLICE_NS)
			until = now + DELAY_SLICE_NS;
		struct timespec ts = { .tv_sec = (until - now) / NS_PER_SEC,
				       .tv_nsec = (until - now) % NS_PER_SEC };
		nanosleep(&ts, NULL);
	}
}

/* Delay, then the verdict's error (0: go ahead). */
static int before(const struct verdict *v, const struct deadline *dl)
{
	if (v->delay_us) {
		int rc = pause_for(v->delay_us, dl);
		if (rc < 0)
			return rc;
	}
	return v->err;
}

static void other_version(const struct verdict *v, struct obj_info *info)
{
	if (!v->other || info->is_dir)
		return;
	info->generation = v->other_gen ? v->other_gen : info->generation + 1;
	snprintf(info->etag, sizeof(info->etag), "other-%" PRIu64,
		 info->generation);
}

/* ------------------------------------------------------------ the seam */

static int fault_stat(struct backend *b, const char *name,
		      struct obj_info *out, const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_STAT, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = backend_stat(fs->w.inner, name, out, dl);
	if (rc == 0)
		other_version(&v, out);
	done(fs, FAULT_STAT);
	return rc;
}

static int fault_list(struct backend *b, const struct list_req *req,
		      list_cb cb, void *arg, char **next_token,
		      const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	*next_token = NULL;
	judge(fs, FAULT_LIST, req->prefix, &v);
	struct list_req r = *req;
	if (v.page_max && r.max_keys > v.page_max)
		r.max_keys = v.page_max;
	int rc = before(&v, dl);
	if (rc == 0)
		rc = backend_list(fs->w.inner, &r, cb, arg, next_token, dl);
	done(fs, FAULT_LIST);
	return rc;
}

/* Wrap a handle the inner store gave, as the verdict says. */
static struct bobj *wrap_handle(struct backend *b, struct bobj *h,
				const struct verdict *v)
{
	struct bobj *o = wrapped_obj_new(b, h);
	other_version(v, &o->info);
	return o;
}

static int fault_open(struct backend *b, const char *name, struct bobj **out,
		      const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	struct bobj *h;
	judge(fs, FAULT_OPEN, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = backend_open(fs->w.inner, name, &h, dl);
	if (rc == 0)
		*out = wrap_handle(b, h, &v);
	done(fs, FAULT_OPEN);
	return rc;
}

static int fault_open_pinned(struct backend *b, const char *name,
			     const struct obj_info *info, struct bobj **out)
{
	struct fault_store *fs = to_fault(b);
	struct deadline none = { 0 };
	struct verdict v;
	struct bobj *h;
	judge(fs, FAULT_OPEN_PINNED, name, &v);
	int rc = before(&v, &none);
	if (rc == 0)
		rc = backend_open_pinned(fs->w.inner, name, info, &h);
	if (rc == 0)
		*out = wrap_handle(b, h, &v);
	done(fs, FAULT_OPEN_PINNED);
	return rc;
}

static ssize_t fault_read(struct bobj *o, void *buf, size_t len,
			  uint64_t off, const struct deadline *dl)
{
	struct fault_store *fs = to_fault(o->b);
	struct verdict v;

	pthread_mutex_lock(&fs->lock);
	if (fs->nlog < FAULT_LOG_MAX)
		fs->log[fs->nlog++] = (struct fault_range){ off, len };
	pthread_mutex_unlock(&fs->lock);
	judge(fs, FAULT_READ, o->name, &v);
	ssize_t n = before(&v, dl);
	if (n == 0)
		n = bobj_read(wrapped_inner(o), buf, len, off, dl);
	if (n > 0 && v.corrupt)
		((unsigned char *)buf)[v.draw % (uint64_t)n] ^= 0xff;
	if (n > 0 && v.truncate)
		n /= 2;
	done(fs, FAULT_READ);
	return n;
}

static int fault_put(struct backend *b, const char *name, int fd,
		     uint64_t size, const struct obj_info *stamp,
		     const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_PUT, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = backend_put(fs->w.inner, name, fd, size, stamp, dl);
	done(fs, FAULT_PUT);
	return rc;
}

static int fault_writer_open(struct backend *b, const char *name,
			     const struct write_pre *pre, struct bwriter **out,
			     const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_WRITER_OPEN, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = wrapper_writer_open(b, name, pre, out, dl);
	done(fs, FAULT_WRITER_OPEN);
	return rc;
}

static int fault_remove(struct backend *b, const char *name,
			const struct write_pre *pre, const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_REMOVE, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = wrapper_remove(b, name, pre, dl);
	done(fs, FAULT_REMOVE);
	return rc;
}

static int fault_set_meta(struct backend *b, const char *name,
			  const struct write_pre *pre,
			  const struct meta_kv *kv, size_t n,
			  struct obj_info *out, const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_SET_META, name, &v);
	int rc = before(&v, dl);
	if (rc == 0)
		rc = wrapper_set_meta(b, name, pre, kv, n, out, dl);
	done(fs, FAULT_SET_META);
	return rc;
}

static void fault_probe(struct backend *b, struct probe_result *res,
			const struct deadline *dl)
{
	struct fault_store *fs = to_fault(b);
	struct verdict v;
	judge(fs, FAULT_PROBE, "", &v);
	int rc = before(&v, dl);
	if (rc == 0) {
		backend_probe(fs->w.inner, res, dl);
	} else {
		memset(res, 0, sizeof(*res));
		res->err = rc;
		snprintf(res->message, sizeof(res->message),
			 "fault injected: %s", strerror(-rc));
	}
	done(fs, FAULT_PROBE);
}

static void fault_destroy(struct backend *b)
{
	struct fault_store *fs = to_fault(b);
	fault_clear(b);
	pthread_mutex_destroy(&fs->lock);
	wrapper_release(&fs->w);
	free(fs);
}

static const struct backend_ops fault_ops = {
	.type = "fault",
	.stat = fault_stat,
	.list = fault_list,
	.open = fault_open,
	.read = fault_read,
	.open_pinned = fault_open_pinned,
	.close = wrapped_obj_close,
	.put = fault_put,
	.writer_open = fault_writer_open,
	.remove = fault_remove,
	.copy = wrapper_copy,
	.set_meta = fault_set_meta,
	.explain = wrapper_explain,
	.metrics = wrapper_metrics,
	.cache_ms = wrapper_cache_ms,
	.probe = fault_probe,
	.destroy = fault_destroy,
};

/* ------------------------------------------------------------ test API */

struct backend *fault_create(struct backend *inner, uint64_t seed)
{
	struct fault_store *fs = xcalloc(1, sizeof(*fs));
	struct strbuf desc = STRBUF_INIT;

	fs->seed = seed;
	pthread_mutex_init(&fs->lock, NULL);
	strbuf_addf(&desc, "fault over %s", inner->describe);
	wrapper_init(&fs->w, &fault_ops, inner, desc.buf);
	strbuf_release(&desc);
	return &fs->w.base;
}

int fault_add(struct backend *b, const struct fault_rule *r)
{
	struct fault_store *fs = to_fault(b);
	if (r->op > FAULT_ANY || !action_fits(r->action, r->op) ||
	    (r->action == FAULT_FAIL && r->err >= 0) ||
	    (r->action == FAULT_SHORT_PAGE && !r->page_max) || r->percent > 100)
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	fs->rules = xrealloc(fs->rules, (fs->nrules + 1) * sizeof(*fs->rules));
	struct rule *ru = &fs->rules[fs->nrules];
	*ru = (struct rule){ .r = *r };
	ru->r.name = r->name ? xstrdup(r->name) : NULL;
	int id = (int)fs->nrules++;
	pthread_mutex_unlock(&fs->lock);
	return id;
}

void fault_clear(struct backend *b)
{
	struct fault_store *fs = to_fault(b);
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->nrules; i++)
		free((char *)fs->rules[i].r.name);
	free(fs->rules);
	fs->rules = NULL;
	fs->nrules = 0;
	pthread_mutex_unlock(&fs->lock);
}

unsigned fault_fired(struct backend *b, int id)
{
	struct fault_store *fs = to_fault(b);
	pthread_mutex_lock(&fs->lock);
	unsigned n = id >= 0 && (size_t)id < fs->nrules ? fs->rules[id].fired
							: 0;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

/* One of the per-op counts, read under the lock. */
static unsigned count_of(struct backend *b, const unsigned *counts,
			 enum fault_op op)
{
	struct fault_store *fs = to_fault(b);
	pthread_mutex_lock(&fs->lock);
	unsigned n = op <= FAULT_ANY ? counts[op] : 0;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

unsigned fault_calls(struct backend *b, enum fault_op op)
{
	return count_of(b, to_fault(b)->calls, op);
}

unsigned fault_max_inflight(struct backend *b, enum fault_op op)
{
	return count_of(b, to_fault(b)->max_inflight, op);
}

size_t fault_read_log(struct backend *b, struct fault_range *out, size_t max)
{
	struct fault_store *fs = to_fault(b);
	pthread_mutex_lock(&fs->lock);
	size_t n = fs->nlog < max ? fs->nlog : max;
	memcpy(out, fs->log, n * sizeof(*out));
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fault_reset_counts(struct backend *b)
{
	struct fault_store *fs = to_fault(b);
	pthread_mutex_lock(&fs->lock);
	memset(fs->calls, 0, sizeof(fs->calls));
	memset(fs->max_inflight, 0, sizeof(fs->max_inflight));
	for (int i = 0; i < NCOUNT; i++)
		fs->max_inflight[i] = fs->inflight[i];
	fs->nlog = 0;
	pthread_mutex_unlock(&fs->lock);
}
