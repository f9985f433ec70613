/*
 * stack.c - create stores from configuration and probe them.
 */
#include "mount/stack.h"
#include "backends/backend.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/composite/metacache.h"
#include "backends/composite/router.h"
#include "backends/util/strbuf.h"
#include "cache/vmap.h"

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

/* The default state_dir: one folder per source bucket. */
static char *default_state_dir(const struct store_conf *src)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, "/var/lib/hylake/");
	const char *b = src->bucket ? src->bucket : "posix";
	for (; *b; b++)
		strbuf_addch(&sb, *b == '/' ? '_' : *b);
	return strbuf_detach(&sb, NULL);
}

/*
 * Put the metadata cache on top, when it has memory and something to keep.
 * The TTLs and why they keep each freshness mode's promise: metacache.h.
 */
static struct backend *wrap_metacache(const struct mount_conf *m,
				      struct backend *top)
{
	int64_t attr = m->attr_timeout_ms < m->entry_timeout_ms
		       ? m->attr_timeout_ms : m->entry_timeout_ms;
	struct metacache_conf mc = {
		.attr_ttl_ms = attr > m->freshness_ms ? attr : m->freshness_ms,
		.neg_ttl_ms = m->negative_timeout_ms,
		.list_ttl_ms = m->freshness_ms,      /* 0 when strict */
		.max_bytes = (size_t)m->metadata_cache_size,
		.lookup_pages = m->freshness_ms == 0,
	};
	if (m->metadata_cache_size <= 0 ||
	    (mc.attr_ttl_ms <= 0 && mc.neg_ttl_ms <= 0))
		return top;
	return metacache_create(top, &mc);
}

int stack_build(const struct hy_config *cfg, struct stack *st, char *err,
		size_t errlen)
{
	const struct mount_conf *m = &cfg->mount;
	struct backend *src, **reps = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = stack_open_store(&cfg->source, m->op_timeout_ms, &src, err, errlen);
	if (rc < 0)
		return rc;
	if (!cfg->nreplicas && m->serve_stale_ms < 0) {
		st->top = wrap_metacache(m, src);
		return 0;
	}
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
	}
	char *dir = m->state_dir ? xstrdup(m->state_dir)
				 : default_state_dir(&cfg->source);
	rc = vmap_open(dir, src->describe, (uint64_t)m->map_size, &st->vmap,
		       err, errlen);
	free(dir);
	if (rc < 0)
		goto out_destroy;
	struct router_conf rconf = {
		.bounded_ms = m->freshness_ms,
		.serve_stale_ms = m->serve_stale_ms,
		.replica_recheck_ms = m->replica_recheck_ms,
		.hedge_budget_pct = m->hedge_budget_pct,
		.hedge_threads = m->threads,
	};
	rc = router_create(src, reps, cfg->nreplicas, vmap_facts(st->vmap),
			   &rconf, &st->top);
	if (rc < 0) {
		snprintf(err, errlen, "too many replicas: at most %d",
			 ROUTER_MAX_REPLICAS);
		vmap_close(st->vmap);
		st->vmap = NULL;
		goto out_destroy;
	}
	free(reps);
	st->top = wrap_metacache(m, st->top);
	return 0;

out_destroy:
	for (size_t i = 0; i < cfg->nreplicas; i++)
		backend_destroy(reps[i]);
	free(reps);
	backend_destroy(src);
	return rc;
}

void stack_release(struct stack *st)
{
	backend_destroy(st->top);    /* a metadata cache destroys the store
	                                it wraps, a router its stores */
	vmap_close(st->vmap);
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
