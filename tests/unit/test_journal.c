/* The site journal: its documents read back as written, malformed ones
 * refused, and a mount's reader over a store (the memory store) with a
 * real version map: batches in order, the site's holdings noted, a
 * missing batch a gap, and coverage only while the follower is drained
 * and recent. */
#include "backends/composite/feed.h"
#include "backends/util/fdio.h"
#include "backends/composite/journal.h"
#include "backends/mem/mem.h"
#include "backends/util/timeutil.h"
#include "cache/vmap.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct gcs_change change(enum gcs_change_kind kind, const char *name,
				uint64_t gen, uint64_t size)
{
	struct gcs_change c = { .ack_id = "", .message_id = "m1",
				.publish_ns = 1700000000123456789LL,
				.kind = kind, .bucket = "lake",
				.name = (char *)name, .generation = gen };
	if (size) {
		c.has_info = true;
		c.info.generation = gen;
		c.info.size = size;
		c.info.metageneration = 1;
		c.info.mtime_ns = 1700000000000000000LL;
		c.info.crc32c = 0xdeadbeef;
		c.info.has_crc32c = true;
		c.info.has_md5 = true;
		memset(c.info.md5, 0xab, 16);
	}
	return c;
}

static void test_documents(void)
{
	struct gcs_change c[3] = {
		change(GCS_CHANGE_FINALIZE, "t/a", 17, 5),
		change(GCS_CHANGE_DELETE, "t/a", 16, 0),
		{ .ack_id = "", .message_id = "m3" },          /* a gap */
	};
	c[1].overwritten_by = 17;
	struct journal_held held[3] = { { .holds = true, .size = 5,
					  .etag = "abc" } };
	struct journal_batch b = { .seq = 42, .written_ns = 99,
				   .ch = { c, 3 }, .held = held }, r;
	struct strbuf doc = STRBUF_INIT;

	journal_encode_batch(&b, &doc);
	CHECK_INT(journal_parse_batch(doc.buf, doc.len, &r), 0);
	CHECK_INT(r.seq, 42);
	CHECK_INT(r.written_ns, 99);
	CHECK_INT(r.ch.n, 3);
	CHECK_INT(r.ch.c[0].kind, GCS_CHANGE_FINALIZE);
	CHECK_STR(r.ch.c[0].name, "t/a");
	CHECK_STR(r.ch.c[0].bucket, "lake");
	CHECK_STR(r.ch.c[0].message_id, "m1");
	CHECK_INT(r.ch.c[0].publish_ns, 1700000000123456789LL);
	CHECK_INT(r.ch.c[0].generation, 17);
	CHECK(r.ch.c[0].has_info && r.ch.c[0].info.size == 5 &&
	      r.ch.c[0].info.crc32c == 0xdeadbeef && r.ch.c[0].info.has_md5 &&
	      r.ch.c[0].info.md5[15] == 0xab &&
	      r.ch.c[0].info.generation == 17);
	CHECK(r.held[0].holds && r.held[0].size == 5);
	CHECK_STR(r.held[0].etag, "abc");
	CHECK_INT(r.ch.c[1].kind, GCS_CHANGE_DELETE);
	CHECK_INT(r.ch.c[1].overwritten_by, 17);
	CHECK(!r.ch.c[1].has_info && !r.held[1].holds);
	CHECK_INT(r.ch.c[2].kind, GCS_CHANGE_INVALID);
	CHECK(r.ch.c[2].name == NULL && r.ch.c[2].ack_id != NULL);
	journal_batch_release(&r);
	strbuf_release(&doc);

	struct journal_head h = { .seq = 7, .drained_ns = 5, .written_ns = 6 },
			    rh;
	journal_encode_head(&h, &doc);
	CHECK_INT(journal_parse_head(doc.buf, doc.len, &rh), 0);
	CHECK(rh.seq == 7 && rh.drained_ns == 5 && rh.written_ns == 6);
	strbuf_release(&doc);

	/* what is refused, and what reads as a gap */
	static const char *const bad[] = {
		"", "[]", "{\"journal\":2,\"seq\":1,\"changes\":[]}",
		"{\"journal\":1,\"seq\":0,\"changes\":[]}",
		"{\"journal\":1,\"seq\":1}",
		"{\"journal\":1,\"seq\":1,\"changes\":[],\"seq\":2}",
		"{\"journal\":1,\"seq\":-1,\"changes\":[]}",
		/* a name with a NUL in it */
		("{\"journal\":1,\"seq\":1,\"changes\":[{\"kind\":\"delete\","
		 "\"bucket\":\"lake\",\"name\":\"x\\u0000y\",\"generation\":3}]}"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(journal_parse_batch(bad[i], strlen(bad[i]), &r),
			  -EBADMSG);
	CHECK_INT(journal_parse_head("{\"journal\":1,\"seq\":3}", 21, &rh),
		  -EBADMSG);
	static const char *const gaps =
		"{\"journal\":1,\"seq\":1,\"changes\":["
		"{\"kind\":\"finalize\",\"bucket\":\"lake\",\"name\":\"x\"},"
		"{\"kind\":\"rename\",\"bucket\":\"lake\",\"name\":\"x\","
		"\"generation\":3},"
		"{\"kind\":\"delete\",\"bucket\":\"lake\",\"name\":\"\","
		"\"generation\":3},"
		"{\"kind\":\"finalize\",\"bucket\":\"lake\",\"name\":\"x\","
		"\"generation\":3,\"object\":{\"size\":1,\"crc32c\":4294967296}},"
		"{\"kind\":\"delete\",\"bucket\":\"lake\",\"name\":\"x\","
		"\"generation\":3}]}";
	CHECK_INT(journal_parse_batch(gaps, strlen(gaps), &r), 0);
	CHECK_INT(r.ch.n, 5);
	for (size_t i = 0; i < 4; i++)
		CHECK_INT(r.ch.c[i].kind, GCS_CHANGE_INVALID);
	CHECK_INT(r.ch.c[4].kind, GCS_CHANGE_DELETE);
	journal_batch_release(&r);
}

/* Put a document into the site store, as the follower does. */
static void put_doc(struct backend *site, const char *name,
		    const struct strbuf *doc)
{
	struct deadline dl = deadline_in_ms(1000);
	CHECK_INT(journal_write(site, name, doc, "/tmp", &dl), 0);
}

static void put_batch(struct backend *site, uint64_t seq,
		      struct gcs_change *c, struct journal_held *h, size_t n,
		      int64_t drained_ns)
{
	struct journal_batch b = { .seq = seq, .ch = { c, n }, .held = h };
	struct journal_head head = { .seq = seq, .drained_ns = drained_ns };
	struct strbuf doc = STRBUF_INIT, name = STRBUF_INIT;

	journal_encode_batch(&b, &doc);
	journal_batch_name(seq, &name);
	put_doc(site, name.buf, &doc);
	strbuf_reset(&doc);
	journal_encode_head(&head, &doc);
	put_doc(site, JOURNAL_HEAD, &doc);
	strbuf_release(&doc);
	strbuf_release(&name);
}

static int pull(struct feed_source *src, struct gcs_changes *ch,
		bool *drained)
{
	struct deadline dl = deadline_in_ms(1000);
	char err[256];
	return src->ops->pull(src->ctx, 500, ch, drained, &dl, err,
			      sizeof(err));
}

static void test_reader(struct facts facts)
{
	struct backend *site = mem_create_writable("east");
	struct journal_reader *jr;
	struct feed_source src;
	struct gcs_changes ch;
	bool drained;

	/* no journal yet: an error that says so */
	journal_reader_create(site, "east", facts, "lake", "tables/", 3000,
			      &jr);
	journal_reader_source(jr, &src);
	CHECK_INT(pull(&src, &ch, &drained), -ENOENT);

	/* the reader starts at the head it finds: batch 1 came before */
	struct gcs_change c1 = change(GCS_CHANGE_FINALIZE, "tables/t/old", 5, 1);
	put_batch(site, 1, &c1, NULL, 1, wall_ns());
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 0 && drained);

	/* batch 2: a change the site holds; batch 3: one it does not */
	struct gcs_change c2 = change(GCS_CHANGE_FINALIZE, "tables/t/a", 17, 5);
	struct journal_held h2 = { .holds = true, .size = 5, .etag = "e17" };
	put_batch(site, 2, &c2, &h2, 1, wall_ns());
	struct gcs_change c3 = change(GCS_CHANGE_FINALIZE, "tables/t/b", 9, 3);
	put_batch(site, 3, &c3, NULL, 1, wall_ns());
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 1 && !drained);            /* batch 3 still waits */
	CHECK_STR(ch.c[0].name, "tables/t/a");
	gcs_changes_release(&ch);
	struct replica_fact rf;
	CHECK_INT(facts.ops->get_replica(facts.ctx, "east", "t/a", &rf), 0);
	CHECK(rf.state == REPLICA_HOLDS && rf.generation == 17 &&
	      rf.size == 5);
	CHECK_STR(rf.etag, "e17");
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 1 && drained);
	gcs_changes_release(&ch);
	CHECK_INT(facts.ops->get_replica(facts.ctx, "east", "t/b", &rf),
		  -ENOENT);

	/* an older holding never replaces a newer one */
	struct gcs_change c4 = change(GCS_CHANGE_FINALIZE, "tables/t/a", 16, 4);
	struct journal_held h4 = { .holds = true, .size = 4, .etag = "e16" };
	put_batch(site, 4, &c4, &h4, 1, wall_ns());
	CHECK_INT(pull(&src, &ch, &drained), 0);
	gcs_changes_release(&ch);
	CHECK_INT(facts.ops->get_replica(facts.ctx, "east", "t/a", &rf), 0);
	CHECK_STR(rf.etag, "e17");

	/* a gap the follower journaled (a reconcile starts with one) */
	struct gcs_change g5[2] = { { .ack_id = "", .message_id = "" },
				    change(GCS_CHANGE_FINALIZE, "tables/t/c",
					   4, 2) };
	struct journal_held h5[2] = { { .holds = false },
				      { .holds = true, .size = 2,
					.etag = "e4" } };
	put_batch(site, 5, g5, h5, 2, wall_ns());
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 2 && ch.c[0].kind == GCS_CHANGE_INVALID && drained);
	gcs_changes_release(&ch);
	CHECK_INT(facts.ops->get_replica(facts.ctx, "east", "t/c", &rf), 0);

	/* a batch that is missing: a gap, and the reader goes on */
	struct strbuf doc = STRBUF_INIT;
	struct journal_head head = { .seq = 7, .drained_ns = wall_ns() };
	struct gcs_change c6 = change(GCS_CHANGE_DELETE, "tables/t/b", 9, 0);
	put_batch(site, 7, &c6, NULL, 1, wall_ns());
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 1 && ch.c[0].kind == GCS_CHANGE_INVALID && !drained);
	gcs_changes_release(&ch);
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 1 && ch.c[0].kind == GCS_CHANGE_DELETE && drained);
	gcs_changes_release(&ch);

	/* a follower whose last drained pull is older than the stall time:
	 * nothing is covered */
	head.drained_ns = wall_ns() - 4 * NS_PER_SEC;
	journal_encode_head(&head, &doc);
	put_doc(site, JOURNAL_HEAD, &doc);
	CHECK_INT(pull(&src, &ch, &drained), 0);
	CHECK(ch.n == 0 && !drained);

	strbuf_release(&doc);
	journal_reader_destroy(jr);
	backend_destroy(site);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	char dir[512], err[256];
	struct vmap *m;

	test_documents();
	snprintf(dir, sizeof(dir), "%s/journal-test-%d", base ? base : "/tmp",
		 (int)getpid());
	CHECK_INT(vmap_open(dir, "gcs lake", 64 << 20, &m, err, sizeof(err)), 0);
	test_reader(vmap_facts(m));
	vmap_close(m);
	CHECK_INT(remove_tree(dir), 0);
	return check_summary();
}
