/*
 * test_freshness.c - which rule each name follows: patterns first, then
 * the table formats' own rules inside recognised tables, then the
 * default.
 */
#include "backends/composite/freshness.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <string.h>

static struct freshness *lake;

/* The rule's kind for name, after the mount has seen `seen` (or not). */
static enum fresh_kind kind_of(struct freshness *f, const char *name)
{
	struct fresh_rule r;
	freshness_saw(f, name);
	freshness_of(f, name, &r);
	return r.kind;
}

static void delta(void)
{
	/* before anything shows the table, a data file is strict */
	CHECK_INT(kind_of(lake, "sales/part-00000.parquet"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "sales/_delta_log/00000000000000000000.json"),
		  FRESH_IMMUTABLE);
	/* now the table is known: its data files anywhere below */
	CHECK_INT(kind_of(lake, "sales/part-00000.parquet"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "sales/date=2024-01-01/part-1.snappy.parquet"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "sales/deletion_vector_3f2a.bin"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "sales/_change_data/cdc-0.parquet"),
		  FRESH_IMMUTABLE);
	const char *once[] = {
		"sales/_delta_log/00000000000000000010.checkpoint.parquet",
		"sales/_delta_log/00000000000000000010.checkpoint.0000000001."
		"0000000002.parquet",
		"sales/_delta_log/00000000000000000010.checkpoint."
		"80a083e8-7026-4e79-81be-64bd76c43a11.json",
		"sales/_delta_log/00000000000000000010.crc",
		"sales/_delta_log/00000000000000000004.00000000000000000006."
		"compacted.json",
		"sales/_delta_log/_sidecars/3a0d65cd-4056-49b8-937b-95f9e3ee90e5"
		".parquet",
		"sales/_delta_log/_staged_commits/00000000000000000011."
		"3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json",
	};
	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		CHECK_INT(kind_of(lake, once[i]), FRESH_IMMUTABLE);
	const char *mutable[] = {
		"sales/_delta_log/_last_checkpoint",
		"sales/_delta_log/.00000000000000000011.json.3f2a.tmp",
		"sales/_delta_log/00000000000000000011.json.tmp",
		"sales/.part-00000.parquet.crc",
		"sales/_SUCCESS",
		"sales/notes.txt",
		"elsewhere/part-00000.parquet",      /* not in a table */
	};
	for (size_t i = 0; i < sizeof(mutable) / sizeof(mutable[0]); i++)
		CHECK_INT(kind_of(lake, mutable[i]), FRESH_STRICT);
}

/* A table at the mount's root: everything in the mount is in it. */
static void root_table(void)
{
	struct freshness *f = freshness_create(NULL, 0, (struct fresh_setting){
						       .kind = FRESH_LAKEHOUSE });
	CHECK_INT(kind_of(f, "part-9.parquet"), FRESH_STRICT);
	CHECK_INT(kind_of(f, "_delta_log/00000000000000000001.json"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(f, "part-9.parquet"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(f, "_delta_log/_last_checkpoint"), FRESH_STRICT);
	freshness_destroy(f);
}

static void hudi_and_iceberg(void)
{
	CHECK_INT(kind_of(lake, "h/.hoodie/hoodie.properties"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "h/.hoodie/20240101120000000.commit"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "h/.hoodie/20240101120000000.commit.requested"),
		  FRESH_STRICT);
	CHECK_INT(kind_of(lake, "h/.hoodie/20240101120000000.deltacommit."
			  "inflight"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "h/.hoodie/timeline/20240101120000000_"
			  "20240101120001000.replacecommit"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "h/.hoodie/.temp/20240101/p/f.marker.CREATE"),
		  FRESH_STRICT);
	CHECK_INT(kind_of(lake, "h/2024/01/01/f1-0_0-1-1_20240101120000000"
			  ".parquet"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "h/2024/01/01/.hoodie_partition_metadata"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "h/2024/01/01/.f1-0_20240101.log.1_0-1-1"),
		  FRESH_STRICT);

	CHECK_INT(kind_of(lake, "i/data/00000-0-a.parquet"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "i/metadata/version-hint.text"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "i/metadata/v3.metadata.json"),
		  FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "i/metadata/snap-1-1-a.avro"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "i/metadata/a-m0.avro"), FRESH_IMMUTABLE);
	CHECK_INT(kind_of(lake, "i/data/00000-0-a.parquet"), FRESH_IMMUTABLE);
	/* a folder called metadata that is not Iceberg's */
	CHECK_INT(kind_of(lake, "docs/metadata/readme.json"), FRESH_STRICT);
	CHECK_INT(kind_of(lake, "docs/data/x.parquet"), FRESH_STRICT);
}

static void patterns_and_defaults(void)
{
	struct fresh_pattern pat[] = {
		{ "sales/_delta_log/_last_checkpoint", { FRESH_BOUNDED, 5000 } },
		{ "raw/*", { FRESH_IMMUTABLE, 0 } },
		{ "sales/*.parquet", { FRESH_STRICT, 0 } },
	};
	struct freshness *f = freshness_create(pat, 3, (struct fresh_setting){
						       .kind = FRESH_LAKEHOUSE });
	struct fresh_rule r;

	freshness_saw(f, "sales/_delta_log/00000000000000000000.json");
	freshness_of(f, "sales/_delta_log/_last_checkpoint", &r);
	CHECK_INT(r.kind, FRESH_BOUNDED);
	CHECK_INT(r.bound_ms, 5000);
	CHECK(strstr(r.why, "pattern") != NULL);
	freshness_of(f, "raw/a/b/c.csv", &r);           /* '*' crosses '/' */
	CHECK_INT(r.kind, FRESH_IMMUTABLE);
	freshness_of(f, "sales/part-1.parquet", &r);    /* first match wins */
	CHECK_INT(r.kind, FRESH_STRICT);
	freshness_of(f, "sales/_delta_log/00000000000000000001.json", &r);
	CHECK_INT(r.kind, FRESH_IMMUTABLE);
	CHECK_STR(r.why, "lakehouse: delta commit");
	freshness_destroy(f);

	f = freshness_create(NULL, 0, (struct fresh_setting){
				     .kind = FRESH_BOUNDED, .bound_ms = 30000 });
	freshness_of(f, "sales/_delta_log/00000000000000000001.json", &r);
	CHECK_INT(r.kind, FRESH_BOUNDED);               /* no table rules */
	CHECK(!freshness_has_immutable(f));
	freshness_destroy(f);

	struct fresh_setting s;
	char err[128], text[32];
	CHECK_INT(fresh_setting_parse("bounded:30s", false, &s, err,
				      sizeof(err)), 0);
	CHECK_INT(s.bound_ms, 30000);
	fresh_setting_format(&s, text, sizeof(text));
	CHECK_STR(text, "bounded:30s");
	CHECK_INT(fresh_setting_parse("lakehouse", false, &s, err,
				      sizeof(err)), -EINVAL);
	CHECK_INT(fresh_setting_parse("lakehouse", true, &s, err,
				      sizeof(err)), 0);
	CHECK_INT(fresh_setting_parse("bounded:0s", true, &s, err,
				      sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad freshness") != NULL);
}

/* A table's folders (its root, log, partitions) last as long as it. */
static void table_folders(void)
{
	struct fresh_pattern pat[] = { { "wh/scratch/*", { FRESH_STRICT, 0 } } };
	struct freshness *f = freshness_create(pat, 1, (struct fresh_setting){
						       .kind = FRESH_LAKEHOUSE });

	CHECK(!freshness_table_folder(f, "wh/sales"));      /* not seen yet */
	freshness_saw(f, "wh/sales/_delta_log/00000000000000000000.json");
	CHECK(freshness_table_folder(f, "wh/sales"));
	CHECK(freshness_table_folder(f, "wh/sales/_delta_log"));
	CHECK(freshness_table_folder(f, "wh/sales/date=2026-12-06"));
	CHECK(!freshness_table_folder(f, "wh"));            /* above it */
	CHECK(!freshness_table_folder(f, "wh/sal"));
	CHECK(!freshness_table_folder(f, "other"));
	CHECK(!freshness_table_folder(f, ""));
	freshness_saw(f, "wh/scratch/t/_delta_log/00000000000000000000.json");
	CHECK(!freshness_table_folder(f, "wh/scratch/t"));  /* a pattern's */
	freshness_destroy(f);

	f = freshness_create(NULL, 0, (struct fresh_setting){
				     .kind = FRESH_STRICT });
	freshness_saw(f, "sales/_delta_log/00000000000000000000.json");
	CHECK(!freshness_table_folder(f, "sales"));         /* strict mount */
	freshness_destroy(f);
}

int main(void)
{
	lake = freshness_create(NULL, 0, (struct fresh_setting){
					.kind = FRESH_LAKEHOUSE });
	CHECK(freshness_has_immutable(lake));
	delta();
	hudi_and_iceberg();
	freshness_destroy(lake);
	root_table();
	patterns_and_defaults();
	table_folders();
	return check_summary();
}
