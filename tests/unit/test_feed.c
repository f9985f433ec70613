/* The change feed's rules: changes applied to a real version map, at
 * least once and in any order, never going back. */
#include "backends/composite/feed.h"
#include "backends/util/fdio.h"
#include "cache/vmap.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct gcs_change change(enum gcs_change_kind kind, const char *bucket,
				const char *name, uint64_t gen, uint64_t size)
{
	struct gcs_change c = { .ack_id = "a", .message_id = "m",
				.kind = kind, .bucket = (char *)bucket,
				.name = (char *)name, .generation = gen };
	if (size) {
		c.has_info = true;
		c.info.generation = gen;
		c.info.size = size;
		c.info.crc32c = (uint32_t)gen;
		c.info.has_crc32c = true;
	}
	return c;
}

static struct feed_counts counts;
static char told[4096];

static void changed(void *arg, const char *name)
{
	(void)arg;
	strncat(told, name, sizeof(told) - strlen(told) - 2);
	strcat(told, " ");
}

static void apply(struct facts facts, struct gcs_change c)
{
	feed_apply(facts, "lake", "tables/", &c, 1, 1000, changed, NULL,
		   &counts);
}

/* The map's fact of name: "G size S", "tomb G", or "none". */
static const char *fact(struct facts facts, const char *name)
{
	static char out[64];
	struct source_fact f;
	if (facts.ops->get_source(facts.ctx, name, &f) < 0)
		return "none";
	if (f.tombstone)
		snprintf(out, sizeof(out), "tomb %llu",
			 (unsigned long long)f.generation);
	else
		snprintf(out, sizeof(out), "%llu size %llu",
			 (unsigned long long)f.generation,
			 (unsigned long long)f.size);
	return out;
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	char dir[512], err[256];
	struct vmap *m;

	snprintf(dir, sizeof(dir), "%s/feed-test-%d", base ? base : "/tmp",
		 (int)getpid());
	CHECK_INT(vmap_open(dir, "gcs lake", 64 << 20, &m, err, sizeof(err)), 0);
	struct facts facts = vmap_facts(m);

	/* an overwrite: 17 replaces 16; the messages come in any order */
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 16, 4));
	CHECK_STR(fact(facts, "t/a"), "16 size 4");
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 17, 5));
	CHECK_STR(fact(facts, "t/a"), "17 size 5");
	apply(facts, change(GCS_CHANGE_DELETE, "lake", "tables/t/a", 16, 0));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 16, 4));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 17, 5));
	CHECK_STR(fact(facts, "t/a"), "17 size 5");
	CHECK_INT(counts.applied, 2);
	CHECK_INT(counts.stale, 3);
	/* a metadata update of the known generation confirms it again */
	apply(facts, change(GCS_CHANGE_METADATA, "lake", "tables/t/a", 17, 5));
	CHECK_INT(counts.applied, 3);
	CHECK_STR(fact(facts, "t/a"), "17 size 5");

	/* a delete, then a late duplicate of the finalize: stays deleted */
	apply(facts, change(GCS_CHANGE_DELETE, "lake", "tables/t/a", 17, 0));
	CHECK_STR(fact(facts, "t/a"), "tomb 17");
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 17, 5));
	apply(facts, change(GCS_CHANGE_METADATA, "lake", "tables/t/a", 17, 5));
	apply(facts, change(GCS_CHANGE_DELETE, "lake", "tables/t/a", 17, 0));
	CHECK_STR(fact(facts, "t/a"), "tomb 17");
	/* created again: a later generation */
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 30, 9));
	CHECK_STR(fact(facts, "t/a"), "30 size 9");

	/* an overwrite whose delete of the old generation comes first (the
	 * messages are not ordered): the name is not deleted meanwhile */
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/o", 40, 4));
	struct gcs_change del = change(GCS_CHANGE_DELETE, "lake", "tables/t/o", 40,
				       0);
	del.overwritten_by = 45;
	apply(facts, del);
	struct source_fact of;
	CHECK_INT(facts.ops->get_source(facts.ctx, "t/o", &of), 0);
	CHECK(of.tombstone && of.generation == 44 && of.confirmed_ns == 0);
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/o", 40, 4));
	CHECK_STR(fact(facts, "t/o"), "tomb 44");           /* no going back */
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/o", 45, 6));
	CHECK_STR(fact(facts, "t/o"), "45 size 6");
	apply(facts, del);                                   /* late: stale */
	CHECK_STR(fact(facts, "t/o"), "45 size 6");

	/* a delete of a name the map never knew: a later duplicate of its
	 * finalize does not bring it back */
	apply(facts, change(GCS_CHANGE_DELETE, "lake", "tables/t/b", 8, 0));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/b", 8, 3));
	CHECK_STR(fact(facts, "t/b"), "tomb 8");

	/* a finalize without its object resource: what the map knew goes,
	 * the source is asked */
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/t/a", 31, 0));
	CHECK_STR(fact(facts, "t/a"), "tomb 30");

	/* not the mount's: another bucket, outside the prefix, the prefix
	 * itself; and a message that is no notification */
	uint64_t applied = counts.applied;
	apply(facts, change(GCS_CHANGE_FINALIZE, "other", "tables/t/c", 5, 1));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tablesX/t/c", 5, 1));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "tables/", 5, 1));
	apply(facts, change(GCS_CHANGE_FINALIZE, "lake", "t/c", 5, 1));
	CHECK_INT(counts.ignored, 4);
	CHECK_STR(fact(facts, "t/c"), "none");
	CHECK_STR(fact(facts, "/t/c"), "none");
	struct gcs_change bad = { .ack_id = "x", .message_id = "y" };
	feed_apply(facts, "lake", "tables/", &bad, 1, 1000, changed, NULL,
		   &counts);
	CHECK_INT(counts.gaps, 1);
	CHECK_INT(counts.applied, applied);
	/* every change that changed a fact was told, by the mount's name */
	CHECK_STR(told, "t/a t/a t/a t/a t/a t/o t/o t/o t/b t/a ");

	vmap_close(m);
	CHECK_INT(remove_tree(dir), 0);
	return check_summary();
}
