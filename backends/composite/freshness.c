/*
 * freshness.c - the rule each name's freshness follows (freshness.h):
 * [freshness] patterns, then the table formats' rules inside table roots
 * learnt from names seen, then the mount's default.
 */
#include "backends/composite/freshness.h"
#include "backends/util/hmap.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum table_format { TABLE_NONE, TABLE_DELTA, TABLE_HUDI, TABLE_ICEBERG };

struct root {
	struct hmap_node hn;
	struct lru_link use;
	enum table_format format;
	char path[];              /* "" for a table at the mount's root */
};

struct freshness {
	struct fresh_pattern *pat;
	size_t npat;
	struct fresh_setting def;
	pthread_mutex_t lock;     /* guards roots, lru */
	struct hmap roots;
	struct lru_link lru;
};

/* ------------------------------------------------------------ settings */

int fresh_setting_parse(const char *s, bool default_ok,
			struct fresh_setting *out, char *err, size_t errlen)
{
	int64_t ms;

	memset(out, 0, sizeof(*out));
	if (!strcmp(s, "strict")) {
		out->kind = FRESH_STRICT;
	} else if (!strcmp(s, "immutable")) {
		out->kind = FRESH_IMMUTABLE;
	} else if (default_ok && !strcmp(s, "lakehouse")) {
		out->kind = FRESH_LAKEHOUSE;
	} else if (!strncmp(s, "bounded:", 8) &&
		   duration_parse_ms(s + 8, &ms) == 0 && ms > 0) {
		out->kind = FRESH_BOUNDED;
		out->bound_ms = ms;
	} else {
		snprintf(err, errlen, "bad freshness '%s': expected strict, "
			 "bounded:DURATION (e.g. bounded:30s)%s", s, default_ok
			 ? ", immutable or lakehouse" : " or immutable");
		return -EINVAL;
	}
	return 0;
}

void fresh_setting_format(const struct fresh_setting *s, char *buf,
			  size_t len)
{
	char d[32];

	switch (s->kind) {
	case FRESH_BOUNDED:
		duration_format(s->bound_ms, d, sizeof(d));
		snprintf(buf, len, "bounded:%s", d);
		break;
	case FRESH_IMMUTABLE:
		snprintf(buf, len, "immutable");
		break;
	case FRESH_LAKEHOUSE:
		snprintf(buf, len, "lakehouse");
		break;
	default:
		snprintf(buf, len, "strict");
	}
}

/* ------------------------------------------------------- name shapes */

static bool digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !memcmp(s + n - m, suffix, m);
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* The last segment of path. */
static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Split name at its dots: up to max parts, *n gets the count. */
static size_t dot_parts(const char *name, const char **part, size_t *len,
			size_t max)
{
	size_t n = 0;
	for (const char *p = name; n < max; n++) {
		const char *d = strchr(p, '.');
		part[n] = p;
		len[n] = d ? (size_t)(d - p) : strlen(p);
		if (!d)
			return n + 1;
		p = d + 1;
	}
	return max + 1;           /* more than max */
}

static bool part_is(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(p, word, n);
}

/* A file directly in _delta_log/ that is written once: N.json,
 * N.checkpoint.parquet, N.checkpoint.A.B.parquet,
 * N.checkpoint.UUID.{json,parquet}, N.crc, A.B.compacted.json. */
static const char *delta_log_file(const char *f)
{
	const char *p[6];
	size_t l[6];
	size_t n = dot_parts(f, p, l, 5);

	if (n < 2 || !digits(p[0], l[0]))
		return NULL;
	if (n == 2 && part_is(p[1], l[1], "json"))
		return "delta commit";
	if (n == 2 && part_is(p[1], l[1], "crc"))
		return "delta version checksum";
	if (n >= 3 && part_is(p[1], l[1], "checkpoint") &&
	    (part_is(p[n - 1], l[n - 1], "parquet") ||
	     part_is(p[n - 1], l[n - 1], "json")) && n <= 5)
		return "delta checkpoint";
	if (n == 4 && digits(p[1], l[1]) && part_is(p[2], l[2], "compacted") &&
	    part_is(p[3], l[3], "json"))
		return "delta compacted log";
	return NULL;
}

static const char *delta_rule(const char *rel)
{
	if (starts_with(rel, "_delta_log/")) {
		const char *f = rel + strlen("_delta_log/");
		if (starts_with(f, "_sidecars/") && !strchr(f + 10, '/') &&
		    f[10] && f[10] != '.')
			return "delta checkpoint sidecar";
		if (starts_with(f, "_staged_commits/") &&
		    ends_with(f, ".json") && !strchr(f + 16, '/') &&
		    digits(f + 16, strcspn(f + 16, ".")))
			return "delta staged commit";
		if (strchr(f, '/'))
			return NULL;
		return delta_log_file(f);
	}
	const char *b = base_name(rel);
	if (b[0] == '.' || (b[0] == '_' && !starts_with(rel, "_change_data/")))
		return NULL;
	if (ends_with(b, ".parquet"))
		return "delta data file";
	if (starts_with(b, "deletion_vector_") && ends_with(b, ".bin"))
		return "delta deletion vector";
	return NULL;
}

static const char *hudi_rule(const char *rel)
{
	static const char *const actions[] = { "commit", "deltacommit",
		"clean", "rollback", "savepoint", "compaction", "restore",
		"replacecommit", "indexing", "logcompaction", "cluster", NULL };

	if (starts_with(rel, ".hoodie/")) {
		const char *f = rel + strlen(".hoodie/");
		if (starts_with(f, "timeline/") && !strchr(f + 9, '/'))
			f += 9;                       /* Hudi 1.x layout */
		if (strchr(f, '/'))
			return NULL;  /* .temp, metadata, archives: strict */
		const char *p[4];
		size_t l[4];
		if (dot_parts(f, p, l, 3) != 2)   /* INSTANT.ACTION only */
			return NULL;
		/* 1.x: REQUESTED_COMPLETION, both digits */
		size_t us = strcspn(p[0], "_");
		bool instant = us < l[0]
			? digits(p[0], us) && digits(p[0] + us + 1, l[0] - us - 1)
			: digits(p[0], l[0]);
		for (size_t i = 0; instant && actions[i]; i++)
			if (part_is(p[1], l[1], actions[i]))
				return "hudi completed instant";
		return NULL;
	}
	const char *b = base_name(rel);
	if (starts_with(b, ".hoodie_partition_metadata"))
		return "hudi partition metadata";
	if (b[0] != '.' && ends_with(b, ".parquet"))
		return "hudi base file";
	return NULL;
}

static const char *iceberg_rule(const char *rel)
{
	if (starts_with(rel, "metadata/")) {
		const char *f = rel + strlen("metadata/");
		if (strchr(f, '/') || f[0] == '.')
			return NULL;
		if (ends_with(f, ".metadata.json"))
			return "iceberg table metadata";
		if (ends_with(f, ".avro"))
			return "iceberg manifest";
		return NULL;          /* version-hint.text and the rest */
	}
	if (starts_with(rel, "data/") && base_name(rel)[0] != '.' &&
	    rel[strlen(rel) - 1] != '/')
		return "iceberg data file";
	return NULL;
}

/* ------------------------------------------------------------- roots */

static uint64_t root_hash(const char *path, size_t n)
{
	return XXH3_64bits(path, n);
}

/* The root registered as path[0..n), or NULL.  Lock held. */
static struct root *root_find(struct freshness *f, const char *path, size_t n)
{
	for (struct hmap_node *h = hmap_first(&f->roots, root_hash(path, n)); h;
	     h = hmap_next(h)) {
		struct root *r = container_of(h, struct root, hn);
		if (strlen(r->path) == n && !memcmp(r->path, path, n))
			return r;
	}
	return NULL;
}

static void root_add(struct freshness *f, const char *path, size_t n,
		     enum table_format format)
{
	pthread_mutex_lock(&f->lock);
	struct root *r = root_find(f, path, n);
	if (r) {
		r->format = format;
		lru_touch(&f->lru, &r->use);
	} else {
		r = xcalloc(1, sizeof(*r) + n + 1);
		memcpy(r->path, path, n);
		r->format = format;
		hmap_add(&f->roots, &r->hn, root_hash(path, n));
		lru_push(&f->lru, &r->use);
		if (f->roots.count > FRESH_ROOTS_MAX) {
			struct lru_link *old = lru_oldest(&f->lru);
			struct root *o = container_of(old, struct root, use);
			hmap_remove(&f->roots, &o->hn);
			lru_unlink(old);
			free(o);
		}
	}
	pthread_mutex_unlock(&f->lock);
}

/* The root length (n: name[0..n) without the slash) of the nearest
 * registered table above name, and its format; TABLE_NONE if none. */
static enum table_format table_of(struct freshness *f, const char *name,
				  size_t *n)
{
	enum table_format fmt = TABLE_NONE;

	pthread_mutex_lock(&f->lock);
	for (const char *s = name + strlen(name); s > name;) {
		while (s > name && *--s != '/')
			;
		size_t len = (size_t)(s - name);     /* "" when s == name */
		struct root *r = root_find(f, name, len);
		if (r) {
			fmt = r->format;
			*n = len;
			lru_touch(&f->lru, &r->use);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return fmt;
}

void freshness_saw(struct freshness *f, const char *name)
{
	static const struct { const char *seg; enum table_format fmt; } marks[] = {
		{ "_delta_log", TABLE_DELTA }, { ".hoodie", TABLE_HUDI },
	};
	const char *seg = name;

	while (*seg) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		size_t root = seg > name ? (size_t)(seg - name) - 1 : 0;
		for (size_t i = 0; i < 2; i++)
			if (part_is(seg, len, marks[i].seg)) {
				root_add(f, name, root, marks[i].fmt);
				return;
			}
		/* Iceberg: metadata/ holding Iceberg's own files */
		if (part_is(seg, len, "metadata") && end &&
		    !strchr(end + 1, '/') &&
		    (ends_with(end + 1, ".metadata.json") ||
		     !strcmp(end + 1, "version-hint.text") ||
		     (starts_with(end + 1, "snap-") &&
		      ends_with(end + 1, ".avro")))) {
			root_add(f, name, root, TABLE_ICEBERG);
			return;
		}
		if (!end)
			break;
		seg = end + 1;
	}
}

/* ------------------------------------------------------------- rules */

struct freshness *freshness_create(const struct fresh_pattern *patterns,
				   size_t n, struct fresh_setting def)
{
	struct freshness *f = xcalloc(1, sizeof(*f));

	f->pat = xcalloc(n ? n : 1, sizeof(*f->pat));
	for (size_t i = 0; i < n; i++) {
		f->pat[i].glob = xstrdup(patterns[i].glob);
		f->pat[i].s = patterns[i].s;
	}
	f->npat = n;
	f->def = def;
	pthread_mutex_init(&f->lock, NULL);
	hmap_init(&f->roots, 64);
	lru_init(&f->lru);
	return f;
}

void freshness_destroy(struct freshness *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->npat; i++)
		free(f->pat[i].glob);
	free(f->pat);
	for (struct lru_link *l; (l = lru_oldest(&f->lru));) {
		lru_unlink(l);
		free(container_of(l, struct root, use));
	}
	hmap_release(&f->roots);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

bool freshness_has_immutable(const struct freshness *f)
{
	if (f->def.kind == FRESH_LAKEHOUSE || f->def.kind == FRESH_IMMUTABLE)
		return true;
	for (size_t i = 0; i < f->npat; i++)
		if (f->pat[i].s.kind == FRESH_IMMUTABLE)
			return true;
	return false;
}

static void set_rule(struct fresh_rule *out, const struct fresh_setting *s,
		     const char *why)
{
	out->kind = s->kind == FRESH_LAKEHOUSE ? FRESH_STRICT : s->kind;
	out->bound_ms = s->bound_ms;
	snprintf(out->why, sizeof(out->why), "%s", why);
}

bool freshness_table_folder(struct freshness *f, const char *folder)
{
	size_t n = strlen(folder), root = 0;

	if (f->def.kind != FRESH_LAKEHOUSE || !n)
		return false;
	for (size_t i = 0; i < f->npat; i++)
		if (fnmatch(f->pat[i].glob, folder, 0) == 0)
			return false;            /* a pattern decides it */
	pthread_mutex_lock(&f->lock);
	bool is_root = root_find(f, folder, n) != NULL;
	pthread_mutex_unlock(&f->lock);
	return is_root || table_of(f, folder, &root) != TABLE_NONE;
}

void freshness_of(struct freshness *f, const char *name,
		  struct fresh_rule *out)
{
	char why[96];

	for (size_t i = 0; i < f->npat; i++)
		if (fnmatch(f->pat[i].glob, name, 0) == 0) {
			snprintf(why, sizeof(why), "pattern '%s'",
				 f->pat[i].glob);
			set_rule(out, &f->pat[i].s, why);
			return;
		}
	if (f->def.kind == FRESH_LAKEHOUSE) {
		size_t n = 0;
		const char *rule = NULL, *what = "table rules";
		enum table_format fmt = table_of(f, name, &n);
		const char *rel = name + n + (n ? 1 : 0);
		switch (fmt) {
		case TABLE_DELTA:
			rule = delta_rule(rel);
			what = "delta table: mutable or not the format's";
			break;
		case TABLE_HUDI:
			rule = hudi_rule(rel);
			what = "hudi table: mutable or not the format's";
			break;
		case TABLE_ICEBERG:
			rule = iceberg_rule(rel);
			what = "iceberg table: mutable or not the format's";
			break;
		default:
			what = "not in a table";
		}
		struct fresh_setting s = { .kind = rule ? FRESH_IMMUTABLE
							: FRESH_STRICT };
		snprintf(why, sizeof(why), "lakehouse: %s", rule ? rule : what);
		set_rule(out, &s, why);
		return;
	}
	set_rule(out, &f->def, "the mount's default");
}
