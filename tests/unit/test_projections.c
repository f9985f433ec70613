/*
 * The columns scans of a table read (cache/projections.c): which names
 * are of one table, how scans are told apart, and which are kept.
 */
#include "cache/projections.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <string.h>

static void set(uint64_t *cols, unsigned c)
{
	cols[c / 64] |= (uint64_t)1 << (c % 64);
}

/* Keep columns {first, extra} for `kept` and ask for `asked`'s: how many
 * columns its seed adds to {first}. */
static unsigned carried(const char *kept, const char *asked)
{
	struct projections *p = projections_create();
	uint64_t cols[PROJECTION_WORDS] = { 0 };
	set(cols, 1);
	set(cols, 7);
	projections_keep(p, kept, 9, 1, cols, true);
	uint64_t got[PROJECTION_WORDS] = { 0 };
	set(got, 1);
	unsigned n = projections_seed(p, asked, 9, 1, got);
	projections_destroy(p);
	return n;
}

static void names_of_one_table(void)
{
	/* partition folders (k=v) at the end are of their table */
	CHECK_INT(carried("t/a.parquet", "t/b.parquet"), 1);
	CHECK_INT(carried("t/a.parquet", "t/k=1/b.parquet"), 1);
	CHECK_INT(carried("t/k=1/j=2/a.parquet", "t/k=3/b.parquet"), 1);
	CHECK_INT(carried("db/t/k=1/a.parquet", "db/t/b.parquet"), 1);
	/* the mount's root is one table */
	CHECK_INT(carried("a.parquet", "b.parquet"), 1);
	CHECK_INT(carried("k=1/a.parquet", "b.parquet"), 1);
	/* another folder, or one that is not k=v, is another table */
	CHECK_INT(carried("t/a.parquet", "u/b.parquet"), 0);
	CHECK_INT(carried("t/a.parquet", "t/u/b.parquet"), 0);
	CHECK_INT(carried("t/a.parquet", "t/=1/b.parquet"), 0);
	CHECK_INT(carried("t/a.parquet", "t/k=/b.parquet"), 0);
	CHECK_INT(carried("t/k=1/a.parquet", "tk=1/b.parquet"), 0);
}

static void scans_told_apart_and_replaced(void)
{
	struct projections *p = projections_create();
	uint64_t ab[PROJECTION_WORDS] = { 0 }, a[PROJECTION_WORDS] = { 0 };
	uint64_t got[PROJECTION_WORDS];
	set(ab, 0);
	set(ab, 1000);
	set(a, 0);

	projections_keep(p, "t/x.parquet", 3, 0, ab, true);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t/y.parquet", 4, 0, got), 0);  /* width */
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 1, got), 0);  /* first */
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 0, got), 2);
	CHECK(got[1000 / 64] >> (1000 % 64) & 1);
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 0, got), 0);  /* had */

	/* a close with fewer of the same leaves them; a group read replaces */
	projections_keep(p, "t/x.parquet", 3, 0, a, false);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 0, got), 2);
	projections_keep(p, "t/x.parquet", 3, 0, a, true);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 0, got), 1);
	/* a close with others than those replaces too */
	uint64_t b[PROJECTION_WORDS] = { 0 };
	set(b, 2);
	projections_keep(p, "t/x.parquet", 3, 0, b, false);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t/y.parquet", 3, 0, got), 1);
	CHECK(got[0] == 4);
	projections_destroy(p);
}

/* With more tables than slots, the least used ones go. */
static void the_least_used_go(void)
{
	struct projections *p = projections_create();
	uint64_t cols[PROJECTION_WORDS] = { 0 }, got[PROJECTION_WORDS];
	char name[64];
	set(cols, 5);
	for (unsigned i = 0; i < PROJECTION_TABLES; i++) {
		snprintf(name, sizeof(name), "t%u/a.parquet", i);
		projections_keep(p, name, 8, 0, cols, true);
	}
	memset(got, 0, sizeof(got));   /* table 0 used again: kept */
	CHECK_INT(projections_seed(p, "t0/b.parquet", 8, 0, got), 1);
	projections_keep(p, "new/a.parquet", 8, 0, cols, true);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t0/b.parquet", 8, 0, got), 1);
	memset(got, 0, sizeof(got));   /* table 1 was the least used */
	CHECK_INT(projections_seed(p, "t1/b.parquet", 8, 0, got), 0);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "t2/b.parquet", 8, 0, got), 1);
	memset(got, 0, sizeof(got));
	CHECK_INT(projections_seed(p, "new/b.parquet", 8, 0, got), 1);
	projections_destroy(p);
}

static void footers_beside_scans(void)
{
	struct projections *p = projections_create();
	uint64_t cols[PROJECTION_WORDS] = { 0 }, got[PROJECTION_WORDS] = { 0 };
	set(cols, 1);
	CHECK_INT(projections_footer(p, "t/a.parquet"), 0);
	projections_footer_keep(p, "t/d=1/a.parquet", 5000);
	projections_keep(p, "t/a.parquet", 8, 0, cols, true);
	CHECK_INT(projections_footer(p, "t/d=2/b.parquet"), 5000);
	CHECK_INT(projections_seed(p, "t/b.parquet", 8, 0, got), 1);
	projections_footer_keep(p, "t/b.parquet", 7000);   /* the most */
	CHECK_INT(projections_footer(p, "t/c.parquet"), 7000);
	projections_footer_keep(p, "t/b.parquet", 6000);
	CHECK_INT(projections_footer(p, "t/c.parquet"), 7000);
	CHECK_INT(projections_footer(p, "u/c.parquet"), 0);
	/* a footer takes a place as a scan does, and is read as a use */
	char name[64];
	for (unsigned i = 0; i < PROJECTION_TABLES - 2; i++) {
		snprintf(name, sizeof(name), "s%u/a.parquet", i);
		projections_keep(p, name, 8, 0, cols, true);
	}
	CHECK_INT(projections_footer(p, "t/c.parquet"), 7000);  /* used */
	projections_footer_keep(p, "new/a.parquet", 100);
	CHECK_INT(projections_footer(p, "t/c.parquet"), 7000);
	memset(got, 0, sizeof(got));   /* t's scan was the least used */
	CHECK_INT(projections_seed(p, "t/b.parquet", 8, 0, got), 0);
	CHECK_INT(projections_footer(p, "new/b.parquet"), 100);
	projections_destroy(p);
}

int main(void)
{
	names_of_one_table();
	scans_told_apart_and_replaced();
	the_least_used_go();
	footers_beside_scans();
	return check_summary();
}
