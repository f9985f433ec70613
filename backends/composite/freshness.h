/*
 * freshness.h - how fresh the version of a name must be when it is
 * opened: the rules of freshness = lakehouse, [freshness] patterns, and
 * the mount's default.
 *
 * Each name gets one rule:
 *   strict      the source confirms the version at open (close-to-open
 *               consistency equal to GCS's own)
 *   bounded:D   a version the source confirmed within D is trusted
 *   immutable   once a generation is known it stays valid until the name
 *               is deleted: opening it asks nobody
 * chosen, first match wins, from:
 *   1. the [freshness] patterns of the configuration (fnmatch(3) globs
 *      over the whole name; '*' also matches '/');
 *   2. with the default lakehouse: the table formats' own rules, inside a
 *      table the mount recognises (below);
 *   3. the mount's default (lakehouse means strict for everything the
 *      table rules leave).
 *
 * Tables.  A folder is a table root when a name below it shows one: a
 * `_delta_log/` segment (Delta), `.hoodie/` (Hudi), or `metadata/` holding
 * Iceberg's own files (`*.metadata.json`, `version-hint.text`,
 * `snap-*.avro`).  Names under a root follow the format's rules:
 *   Delta    immutable: commits `_delta_log/N.json`, checkpoints (classic,
 *            multi-part, V2), `N.crc`, compacted logs, `_sidecars/`,
 *            `_staged_commits/`, data files (`*.parquet`, deletion
 *            vectors) outside `_delta_log/`; strict: `_last_checkpoint`
 *            and anything else
 *   Hudi     immutable: completed instants in `.hoodie/` (no .requested or
 *            .inflight), base files (`*.parquet`), partition metadata;
 *            strict: `hoodie.properties`, `.temp/` markers, requested and
 *            inflight instants, the metadata table, log files
 *   Iceberg  immutable: `metadata/` table metadata (`.metadata.json`),
 *            manifest lists and manifests (`.avro` in `metadata/`), files under `data/`; strict:
 *            `version-hint.text` and anything else
 * Roots are learnt from the names the mount sees (freshness_saw), kept in
 * memory (at most FRESH_ROOTS_MAX, oldest forgotten first: a forgotten
 * root makes its names strict until it is seen again, which costs round
 * trips, never freshness).
 *
 * Thread safety: freshness_of and freshness_saw may be called from any
 * thread (one internal mutex).
 */
#ifndef HYLAKE_FRESHNESS_H
#define HYLAKE_FRESHNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRESH_ROOTS_MAX 65536

enum fresh_kind {
	FRESH_STRICT,
	FRESH_BOUNDED,
	FRESH_IMMUTABLE,
	FRESH_LAKEHOUSE,          /* a default only: table rules, else strict */
};

struct fresh_setting {
	enum fresh_kind kind;
	int64_t bound_ms;         /* FRESH_BOUNDED */
};

/* One [freshness] line: a glob and what it says. */
struct fresh_pattern {
	char *glob;
	struct fresh_setting s;
};

/* The rule that decided a name, for explain. */
struct fresh_rule {
	enum fresh_kind kind;     /* never FRESH_LAKEHOUSE */
	int64_t bound_ms;
	char why[96];             /* "pattern 'raw/...'", "delta commit" */
};

/* Parse "strict", "bounded:DURATION", "immutable" or (default_ok)
 * "lakehouse".  0, or -EINVAL with a message in err. */
int fresh_setting_parse(const char *s, bool default_ok,
			struct fresh_setting *out, char *err, size_t errlen);

/* Text for s ("strict", "bounded:30s", "immutable", "lakehouse"). */
void fresh_setting_format(const struct fresh_setting *s, char *buf,
			  size_t len);

struct freshness;

/* Rules from patterns (copied) and the default.  Never fails. */
struct freshness *freshness_create(const struct fresh_pattern *patterns,
				   size_t n, struct fresh_setting def);
void freshness_destroy(struct freshness *f);

/* The rule for name (relative to the mount's root). */
void freshness_of(struct freshness *f, const char *name,
		  struct fresh_rule *out);

/* Learn the table roots name shows (a path seen in a lookup, an open or
 * a listing; a folder name may end in '/'). */
void freshness_saw(struct freshness *f, const char *name);

/*
 * Is folder (no trailing '/') a recognised table's root or a folder in
 * one (its log folder, a partition), under lakehouse freshness with no
 * pattern naming it?  Such folders exist as long as their table: the
 * kernel may keep their entries long (their listings stay strict).
 */
bool freshness_table_folder(struct freshness *f, const char *folder);

/* Does anything ever make a name immutable (the default is lakehouse, or
 * a pattern says immutable)? */
bool freshness_has_immutable(const struct freshness *f);

#endif
