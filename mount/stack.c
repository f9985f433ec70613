/*
 * stack.c - build a mount's stack from its configuration, bottom up:
 *
 *   stores (source, replicas) -> version map + router -> metadata cache
 *   block cache -> read path; staging       (fs/ sits on top of these)
 *
 * and create or probe single stores for `hylake check` and `replicate`.
 */
#include "mount/stack.h"
#include "backends/backend.h"
#include "cache/blockcache.h"
#include "cache/readpath.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/composite/metacache.h"
#include "backends/composite/router.h"
#include "backends/composite/trace.h"
#include "backends/util/strbuf.h"
#include "cache/vmap.h"
#include "fs/staging.h"
#include "mount/changes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stack_open_store(const struct store_conf *c, int64_t timeout_ms,
		     struct backend **out, char *err, size_t errlen)
{
	struct backend *b = NULL;
	struct probe_result pr;
	struct deadline dl = deadline_in_ms(timeout_ms);

	*out = NULL;
	int rc = store_create(c, &b, err, errlen);
	if (rc < 0)
		return rc;
	backend_probe(b, &pr, &dl);
	if (pr.err < 0) {
		snprintf(err, errlen, "%s (%s): %s", c->name, b->describe,
			 pr.message);
		backend_destroy(b);
		return pr.err;
	}
	log_info("store %s: %s, answered in %.1f ms", c->name, b->describe,
		 pr.latency_ms);
	*out = b;
	return 0;
}

char *stack_default_dir(const char *base, const struct store_conf *c)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/", base);
	const char *b = c->bucket ? c->bucket : "posix";
	for (; *b; b++)
		strbuf_addch(&sb, *b == '/' ? '_' : *b);
	return strbuf_detach(&sb, NULL);
}

/*
 * Put the metadata cache on top, when it has memory and something to keep.
 * The TTLs and why they keep each freshness mode's promise: metacache.h.
 */
static bool covered_by_router(void *router, const char *name, int64_t born)
{
	return router_covers(router, name, born);
}

static struct backend *wrap_metacache(const struct mount_conf *m,
				      bool changes, struct backend *router,
				      struct backend *top)
{
	int64_t attr = m->attr_timeout_ms < m->entry_timeout_ms
		       ? m->attr_timeout_ms : m->entry_timeout_ms;
	/* bounded:D keeps what it learnt for D; strict and lakehouse
	 * (whose listings are strict) for the kernel's own timeouts, and so
	 * does bounded with a change feed (the router answers its lookups
	 * from what the feed covers, and a stalled feed must not leave
	 * answers D old behind) */
	int64_t bound = m->freshness.kind == FRESH_BOUNDED && !changes
			? m->freshness.bound_ms : 0;
	struct metacache_conf mc = {
		.attr_ttl_ms = attr > bound ? attr : bound,
		.neg_ttl_ms = m->negative_timeout_ms,
		.list_ttl_ms = bound,
		.max_bytes = (size_t)m->metadata_cache_size,
		/* (a lookup the feed covers needs no page) */
		.lookup_pages = bound == 0 && !changes,
		/* with a feed, what it covers outlives the TTLs: the feed
		 * tells each change (metacache_forget_change) */
		.covered = changes && router ? covered_by_router : NULL,
		.covered_arg = router,
	};
	if (m->metadata_cache_size <= 0 ||
	    (mc.attr_ttl_ms <= 0 && mc.neg_ttl_ms <= 0))
		return top;
	return metacache_create(top, &mc);
}

/* With log_level=trace, b wrapped to log every call made to it (which
 * keeps b's name and description); b itself otherwise, at no cost. */
static struct backend *traced(struct backend *b)
{
	return log_level >= LOG_TRACE ? trace_create(b) : b;
}

/* The source, the replicas, and over them the version map and a router
 * (when there are replicas or stale serving): st->top. */
static int build_stores(const struct hy_config *cfg, struct stack *st,
			char *err, size_t errlen)
{
	const struct mount_conf *m = &cfg->mount;
	struct backend *src, **reps = NULL;
	int rc;

	/* a writable mount's source is opened to write (a read-write
	 * token, BACKEND_WRITE); only GCS can check the preconditions */
	struct store_conf sc = cfg->source;
	const char *why = config_writable_error(cfg);
	if (why) {
		snprintf(err, errlen, "%s", why);
		return -EINVAL;
	}
	sc.writable = m->writable != 0;
	rc = stack_open_store(&sc, m->op_timeout_ms, &src, err, errlen);
	if (rc < 0)
		return rc;
	src = traced(src);
	st->source = st->top = src;
	st->identity = xstrdup(src->describe);
	/* A router and its version map pay off with replicas, with stale
	 * serving, and over GCS whenever some name can be immutable (its
	 * opens then ask nobody); stores without generations would gain
	 * nothing from the map. */
	bool remembers = cfg->source.type == STORE_GCS &&
			 (freshness_has_immutable(st->fresh) ||
			  cfg->changes.present);
	if (!cfg->nreplicas && m->serve_stale_ms < 0 && !remembers)
		return 0;
	reps = xcalloc(cfg->nreplicas + 1, sizeof(*reps));
	for (size_t i = 0; i < cfg->nreplicas; i++) {
		const struct store_conf *c = &cfg->replicas[i];
		struct probe_result pr;
		struct deadline dl = deadline_in_ms(m->op_timeout_ms);
		rc = store_create(c, &reps[i], err, errlen);
		if (rc < 0)
			goto out_destroy;
		backend_probe(reps[i], &pr, &dl);
		if (pr.err)
			log_warn("replica %s (%s) does not answer now: %s; reads "
				 "go elsewhere until it does", c->name,
				 reps[i]->describe, pr.message);
		reps[i] = traced(reps[i]);
	}
	char *dir = m->state_dir ? xstrdup(m->state_dir)
				 : stack_default_dir("/var/lib/hylake",
						     &cfg->source);
	rc = vmap_open(dir, st->identity, (uint64_t)m->map_size, &st->vmap,
		       err, errlen);
	free(dir);
	if (rc < 0 && !cfg->nreplicas && m->serve_stale_ms < 0 &&
	    !cfg->changes.present) {
		/* only a saving was at stake: go on without it */
		log_warn("%s; every open asks the source", err);
		free(reps);
		return 0;
	}
	if (rc < 0)
		goto out_destroy;
	struct router_conf rconf = {
		.fresh = st->fresh,
		.serve_stale_ms = m->serve_stale_ms,
		.replica_recheck_ms = m->replica_recheck_ms,
		.hedge_budget_pct = m->hedge_budget_pct,
		.hedge_threads = m->threads,
	};
	for (size_t i = 0; i < cfg->nreplicas && i < ROUTER_MAX_REPLICAS; i++)
		rconf.verify[i] = cfg->replicas[i].verify;
	if (cfg->changes.present) {
		struct backend *site = NULL;
		for (size_t i = 0; cfg->changes.journal && i < cfg->nreplicas;
		     i++)
			if (!strcmp(cfg->replicas[i].name, cfg->changes.journal))
				site = reps[i];
		rc = changes_start(&cfg->changes, &cfg->source,
				   vmap_facts(st->vmap), site, &st->changes,
				   err, errlen);
		if (rc < 0)
			goto out_close_vmap;
		rconf.feed = changes_feed(st->changes);
	}
	rc = router_create(src, reps, cfg->nreplicas, vmap_facts(st->vmap),
			   &rconf, &st->top);
	if (rc < 0) {
		snprintf(err, errlen, "too many replicas: at most %d",
			 ROUTER_MAX_REPLICAS);
		goto out_close_vmap;
	}
	st->router = st->top;
	st->top = traced(st->top);
	free(reps);
	return 0;

out_close_vmap:
	changes_stop(st->changes);
	st->changes = NULL;
	vmap_close(st->vmap);
	st->vmap = NULL;
out_destroy:
	for (size_t i = 0; i < cfg->nreplicas; i++)
		backend_destroy(reps[i]);
	free(reps);
	backend_destroy(src);
	st->source = st->top = NULL;
	return rc;
}

/*
 * The block cache, keyed by the source's identity (NULL when cache_size
 * is 0, or it cannot be had: reads go on uncached), and the read path
 * over it.  Says which in st->describe.
 */
static void build_read_path(const struct hy_config *cfg, struct stack *st)
{
	const struct mount_conf *m = &cfg->mount;
	char err[512];

	if (m->cache_size <= 0) {
		strbuf_adds(&st->describe, "no block cache");
	} else {
		char *dir = m->cache_dir ? xstrdup(m->cache_dir)
					 : stack_default_dir("/var/cache/hylake",
							     &cfg->source);
		struct bcache_conf bconf = {
			.dir = dir,
			.max_bytes = (uint64_t)m->cache_size,
			.min_free_bytes = (uint64_t)m->cache_min_free,
			.ns = st->identity,
		};
		if (bcache_open(&bconf, &st->bc, err, sizeof(err)) < 0) {
			log_warn("block cache off: %s", err);
			strbuf_addf(&st->describe, "no block cache (%s)", err);
			st->bc = NULL;
		} else {
			strbuf_addf(&st->describe, "block cache %s (%lld MiB)",
				    dir, (long long)(m->cache_size >> 20));
		}
		free(dir);
	}
	struct readpath_conf rpc = {
		.cache = st->bc,
		.memory_limit = (uint64_t)m->memory_limit,
		.read_ahead_max = (uint64_t)m->read_ahead,
		.fetchers = (unsigned)m->threads,
		.fetch_timeout_ms = m->op_timeout_ms,
		.cache_first_read = m->cache_first_read,
	};
	st->rp = readpath_create(&rpc);
}

/* A writable mount's staging folder (none when read-only or with
 * staging_size 0), recovered, keyed by the source's identity. */
static int build_staging(const struct hy_config *cfg, struct stack *st,
			 char *err, size_t errlen)
{
	const struct mount_conf *m = &cfg->mount;
	if (!m->writable || m->staging_size <= 0)
		return 0;
	struct strbuf dir = STRBUF_INIT;
	if (m->staging_dir) {
		strbuf_adds(&dir, m->staging_dir);
	} else {
		char *state = m->state_dir ? xstrdup(m->state_dir)
			: stack_default_dir("/var/lib/hylake", &cfg->source);
		strbuf_addf(&dir, "%s/staging", state);
		free(state);
	}
	int rc = staging_open(dir.buf, (uint64_t)m->staging_size,
			      st->identity, &st->staging, err, errlen);
	strbuf_release(&dir);
	if (rc == 0)
		staging_recover(st->staging, st->top, m->op_timeout_ms);
	return rc;
}

int stack_build(const struct hy_config *cfg, struct stack *st, char *err,
		size_t errlen)
{
	memset(st, 0, sizeof(*st));
	strbuf_init(&st->describe);
	st->fresh = freshness_create(cfg->fresh, cfg->nfresh,
				     cfg->mount.freshness);
	int rc = build_stores(cfg, st, err, errlen);
	if (rc < 0) {
		stack_release(st);
		return rc;
	}
	struct backend *top = wrap_metacache(&cfg->mount, cfg->changes.present,
					     st->router,
					     st->top);
	if (top != st->top)
		st->metacache = top;
	if (st->changes && st->metacache)
		changes_set_metacache(st->changes, st->metacache);
	st->top = top;
	build_read_path(cfg, st);
	rc = build_staging(cfg, st, err, errlen);
	if (rc < 0)
		stack_release(st);
	return rc;
}

void stack_release(struct stack *st)
{
	staging_destroy(st->staging);  /* every file is closed by now */
	readpath_destroy(st->rp);
	changes_stop(st->changes);   /* it tells the metadata cache and
	                                writes the map */
	bcache_close(st->bc);
	backend_destroy(st->top);    /* a metadata cache destroys the store
	                                it wraps, a router its stores */
	vmap_close(st->vmap);
	freshness_destroy(st->fresh);
	free(st->identity);
	strbuf_release(&st->describe);
	memset(st, 0, sizeof(*st));
}

static int check_one(const struct store_conf *c, int64_t timeout_ms,
		     FILE *out)
{
	struct backend *b = NULL;
	struct probe_result pr;
	char err[512];
	struct deadline dl = deadline_in_ms(timeout_ms);

	int rc = store_create(c, &b, err, sizeof(err));
	if (rc < 0) {
		fprintf(out, "%-12s %-6s FAILED  %s\n", c->name,
			store_type_name(c->type), err);
		return 1;
	}
	backend_probe(b, &pr, &dl);
	if (pr.err == 0)
		fprintf(out, "%-12s %-6s %s  ok  %.1f ms  (%s)\n", c->name,
			b->ops->type, b->describe + strlen(b->ops->type) + 1,
			pr.latency_ms, pr.message);
	else
		fprintf(out, "%-12s %-6s %s  FAILED  %s\n", c->name,
			b->ops->type, b->describe + strlen(b->ops->type) + 1,
			pr.message);
	backend_destroy(b);
	return pr.err == 0 ? 0 : 1;
}

int stack_check(const struct hy_config *cfg, FILE *out)
{
	int64_t t = cfg->mount.op_timeout_ms;
	int status = check_one(&cfg->source, t, out);
	for (size_t i = 0; i < cfg->nreplicas; i++)
		status |= check_one(&cfg->replicas[i], t, out);
	return status;
}
