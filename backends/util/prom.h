/*
 * prom.h - figures gathered for status and metrics, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Each layer adds its samples to one struct prom; samples of one metric
 * family are grouped under a single HELP and TYPE line when rendered,
 * whatever order they were added in.  Names follow Prometheus
 * conventions: hylake_ prefix, base units (seconds, bytes) in the name,
 * counters end in _total.
 *
 *   struct prom p;
 *   prom_init(&p);
 *   prom_add(&p, "hylake_store_requests_total", PROM_COUNTER,
 *            "HTTP requests sent", "store", "dc-east", 42);
 *   prom_render(&p, &out);
 *   prom_release(&p);
 *
 * Not thread safe: one struct prom belongs to the thread gathering it.
 */
#ifndef HYLAKE_PROM_H
#define HYLAKE_PROM_H

#include <stddef.h>

#include "backends/util/strbuf.h"

enum prom_type { PROM_COUNTER, PROM_GAUGE };

struct prom_family;

struct prom {
	struct prom_family *fam;     /* in the order first seen */
	size_t n, alloc;
};

void prom_init(struct prom *p);
void prom_release(struct prom *p);

/*
 * Add one sample of family name.  label/value: one label pair, or NULL
 * for none (the value is escaped as the format asks).  help and type are
 * taken from the first sample of a family.
 */
void prom_add(struct prom *p, const char *name, enum prom_type type,
	      const char *help, const char *label, const char *label_value,
	      double value);

/* Append the exposition text of every family to out. */
void prom_render(const struct prom *p, struct strbuf *out);

#endif
