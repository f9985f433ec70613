/*
 * stack.c - create stores from configuration and probe them.
 */
#include "mount/stack.h"
#include "backends/backend.h"
#include "backends/store.h"
#include "backends/util/log.h"

#include <errno.h>
#include <stdio.h>
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
	b->ops->probe(b, &pr, &dl);
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
	b->ops->probe(b, &pr, &dl);
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
