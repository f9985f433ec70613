/*
 * prom.c - Prometheus text exposition of gathered figures (prom.h).
 *
 * A family keeps its rendered sample lines in one buffer; rendering
 * writes HELP, TYPE and the lines of each family in turn.  Integral
 * values are printed without a fraction so counters read exactly.
 */
#include "backends/util/prom.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prom_family {
	char *name;
	const char *help;            /* static strings */
	enum prom_type type;
	struct strbuf lines;
};

void prom_init(struct prom *p)
{
	memset(p, 0, sizeof(*p));
}

void prom_release(struct prom *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->fam[i].name);
		strbuf_release(&p->fam[i].lines);
	}
	free(p->fam);
	memset(p, 0, sizeof(*p));
}

static struct prom_family *family(struct prom *p, const char *name,
				  enum prom_type type, const char *help)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->fam[i].name, name))
			return &p->fam[i];
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? 2 * p->alloc : 32;
		p->fam = xrealloc(p->fam, p->alloc * sizeof(*p->fam));
	}
	struct prom_family *f = &p->fam[p->n++];
	f->name = xstrdup(name);
	f->help = help;
	f->type = type;
	strbuf_init(&f->lines);
	return f;
}

/* Label values escape backslash, double quote and newline. */
static void add_label_value(struct strbuf *sb, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addch(sb, '\\');
		if (*v == '\n') {
			strbuf_adds(sb, "\\n");
			continue;
		}
		strbuf_addch(sb, *v);
	}
}

static void add_value(struct strbuf *sb, double v)
{
	if (v != v)
		strbuf_adds(sb, "NaN");
	else if (v > -9.007199254740992e15 && v < 9.007199254740992e15 &&
		 v == (double)(int64_t)v)
		strbuf_addf(sb, "%.0f", v);
	else if (v > -1e15 && v < 1e15)
		strbuf_addf(sb, "%.6f", v);   /* times: microseconds kept */
	else
		strbuf_addf(sb, "%.9g", v);
}

void prom_add(struct prom *p, const char *name, enum prom_type type,
	      const char *help, const char *label, const char *label_value,
	      double value)
{
	struct prom_family *f = family(p, name, type, help);
	strbuf_adds(&f->lines, name);
	if (label) {
		strbuf_addf(&f->lines, "{%s=\"", label);
		add_label_value(&f->lines, label_value ? label_value : "");
		strbuf_adds(&f->lines, "\"}");
	}
	strbuf_addch(&f->lines, ' ');
	add_value(&f->lines, value);
	strbuf_addch(&f->lines, '\n');
}

void prom_render(const struct prom *p, struct strbuf *out)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct prom_family *f = &p->fam[i];
		strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name,
			    f->help, f->name,
			    f->type == PROM_COUNTER ? "counter" : "gauge");
		strbuf_add(out, f->lines.buf, f->lines.len);
	}
}
