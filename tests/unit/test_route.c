/*
 * The router over memory stores, with the real version map (LMDB in a
 * temp dir) as its facts, and fault wrappers to make stores misbehave:
 * a failed replica read moves to the source at the same offset; an open
 * file keeps its version (old bytes or ESTALE, never the new ones); a
 * replica holding another version, or claiming to, is never read; a
 * corrupt whole-object read is caught.  Replica bytes are proven before
 * they are served: by the copy's block manifest, or by reading it whole
 * once; a copy with one wrong byte is never served and is marked bad.
 * A copy is verified whole by one reader while the others wait, and a
 * hedge waits for that read in proportion to the copy's size, and for
 * at least what the store it would ask takes.
 * And the fault store itself: counts, deadlines, determinism from its
 * seed.
 */
#include "backends/backend.h"
#include "backends/composite/blocksums.h"
#include "backends/composite/fault.h"
#include "backends/composite/freshness.h"
#include "backends/composite/router.h"
#include "backends/mem/mem.h"
#include "backends/util/crc32c.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "cache/vmap.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define SIZE (64 * 1024)
#define CHUNK 4096

static char tmp[512];
static struct deadline dl;
static struct freshness *fresh_strict;   /* every name strict */
static struct freshness *fresh_once;     /* every name written once */

/* A router over a source and one replica, each in a fault wrapper. */
struct rig {
	struct vmap *map;
	struct backend *router;
	struct backend *src, *rep;      /* the memory stores */
	struct backend *fsrc, *frep;    /* their fault wrappers */
};

/* A rig whose replica's bytes are checked as mode says.  The routing
 * tests use VERIFY_TRUST: what they count is where reads go, not how
 * bytes are proven (the verification tests below count that). */
static void rig_open_hedged(struct rig *g, const char *sub,
			    enum verify_mode mode, struct freshness *fresh,
			    int64_t hedge_pct)
{
	char dir[600], err[256];
	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	CHECK_INT(vmap_open(dir, "mem source", 64 << 20, &g->map, err,
			    sizeof(err)), 0);
	g->src = mem_create("source");
	g->rep = mem_create("dc-east");
	g->fsrc = fault_create(g->src, 1);
	g->frep = fault_create(g->rep, 2);
	struct router_conf rc = { .fresh = fresh, .serve_stale_ms = -1,
				  .replica_recheck_ms = 60000,
				  .verify = { mode },
				  .hedge_budget_pct = hedge_pct,
				  .hedge_threads = hedge_pct ? 2 : 0 };
	CHECK_INT(router_create(g->fsrc, &g->frep, 1, vmap_facts(g->map), &rc,
				&g->router), 0);
}

static void rig_open_fresh(struct rig *g, const char *sub,
			   enum verify_mode mode, struct freshness *fresh)
{
	rig_open_hedged(g, sub, mode, fresh, 0);
}

static void rig_open_mode(struct rig *g, const char *sub,
			  enum verify_mode mode)
{
	rig_open_fresh(g, sub, mode, fresh_strict);
}

static void rig_open(struct rig *g, const char *sub)
{
	rig_open_mode(g, sub, VERIFY_TRUST);
}

static void rig_close(struct rig *g)
{
	backend_destroy(g->router);
	vmap_close(g->map);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = mem_pattern_byte(seed, i);
}

/* Put data as the source's current version of name, and a copy stamped
 * with its generation (and crc32c) on the replica. */
static uint64_t publish(struct rig *g, const char *name,
			const unsigned char *data, bool replicate)
{
	int64_t gen = mem_put(g->src, name, data, SIZE, NULL);
	CHECK(gen > 0);
	struct obj_info stamp = { .generation = (uint64_t)gen,
				  .crc32c = crc32c_update(0, data, SIZE),
				  .has_crc32c = true };
	if (replicate)
		CHECK(mem_put(g->rep, name, data, SIZE, &stamp) > 0);
	return (uint64_t)gen;
}

/* Read CHUNK at off through h; true when it is data's bytes there. */
static bool chunk_is(struct bobj *h, uint64_t off, const unsigned char *data,
		     ssize_t *got)
{
	unsigned char buf[CHUNK];
	*got = bobj_read(h, buf, CHUNK, off, &dl);
	return *got == CHUNK && memcmp(buf, data + off, CHUNK) == 0;
}

static double metric(struct backend *b, const char *name)
{
	struct prom p;
	struct strbuf out = STRBUF_INIT;
	double v = -1;
	prom_init(&p);
	backend_metrics(b, &p);
	prom_render(&p, &out);
	const char *at = strstr(out.buf, name);
	while (at && (at[strlen(name)] != ' ' || at[-1] != '\n'))
		at = strstr(at + 1, name);
	if (at)
		v = strtod(at + strlen(name) + 1, NULL);
	strbuf_release(&out);
	prom_release(&p);
	return v;
}

/* (a) The replica's third read fails: that read, at its offset, and the
 * rest come from the source; the bytes are right throughout. */
static void failover_at_the_same_offset(void)
{
	static unsigned char data[SIZE];
	struct rig g;
	struct bobj *h;
	ssize_t n;

	rig_open(&g, "failover");
	fill(data, SIZE, 11);
	publish(&g, "t/f", data, true);
	int id = fault_add(g.frep, &(struct fault_rule){
		.op = FAULT_READ, .skip = 2, .times = 1,
		.action = FAULT_FAIL, .err = -EIO });
	CHECK(id >= 0);
	CHECK_INT(backend_open(g.router, "t/f", &h, &dl), 0);
	for (uint64_t off = 0; off < 4 * CHUNK; off += CHUNK) {
		CHECK(chunk_is(h, off, data, &n));
		CHECK_INT(n, CHUNK);
	}
	CHECK_INT(fault_fired(g.frep, id), 1);
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 3);
	struct fault_range r[8];
	CHECK_INT(fault_read_log(g.fsrc, r, 8), 2);  /* the failed one on */
	CHECK_INT(r[0].off, 2 * CHUNK);
	CHECK_INT(r[1].off, 3 * CHUNK);
	CHECK(metric(g.router, "hylake_failovers_total") == 1);
	CHECK(metric(g.router, "hylake_source_fallbacks_total") == 2);
	CHECK(metric(g.router, "hylake_router_reads_total") == 4);
	bobj_close(h);
	rig_close(&g);
}

/* (b) An open file keeps its version: old bytes while a store still has
 * them, then ESTALE; never the new bytes.  A replica stamped with another
 * generation is not read. */
static void open_file_keeps_its_version(void)
{
	static unsigned char a[SIZE], b[SIZE];
	struct rig g;
	struct bobj *h1, *h2;
	ssize_t n;

	rig_open(&g, "pinned");
	fill(a, SIZE, 21);
	fill(b, SIZE, 22);
	uint64_t g1 = publish(&g, "p/f", a, true);
	CHECK_INT(backend_open(g.router, "p/f", &h1, &dl), 0);
	CHECK_INT(h1->info.generation, g1);
	CHECK(chunk_is(h1, 0, a, &n));
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 1);

	/* the source moves on; the replica still holds g1 */
	uint64_t g2 = publish(&g, "p/f", b, false);
	CHECK(g2 > g1);
	CHECK(chunk_is(h1, CHUNK, a, &n));           /* old bytes */
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 2);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);

	/* a new open pins g2: the lagging replica is never read */
	CHECK_INT(backend_open(g.router, "p/f", &h2, &dl), 0);
	CHECK_INT(h2->info.generation, g2);
	CHECK(chunk_is(h2, 0, b, &n));
	CHECK(chunk_is(h2, 5 * CHUNK, b, &n));
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 2);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 2);

	/* the replica catches up: nobody holds g1 any more */
	struct obj_info stamp = { .generation = g2 };
	CHECK(mem_put(g.rep, "p/f", b, SIZE, &stamp) > 0);
	unsigned char buf[CHUNK];
	n = bobj_read(h1, buf, CHUNK, 2 * CHUNK, &dl);
	CHECK_INT(n, -ESTALE);
	CHECK(memcmp(buf, b + 2 * CHUNK, CHUNK) != 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 3);  /* it asked, at g1 */
	CHECK(chunk_is(h2, 2 * CHUNK, b, &n));
	bobj_close(h1);
	bobj_close(h2);
	rig_close(&g);
}

/* (c) A replica that says it holds another version is skipped. */
static void another_version_is_skipped(void)
{
	static unsigned char c[SIZE];
	struct rig g;
	struct bobj *h;
	ssize_t n;

	rig_open(&g, "other");
	fill(c, SIZE, 31);
	uint64_t gen = publish(&g, "v/f", c, true);
	int id = fault_add(g.frep, &(struct fault_rule){
		.op = FAULT_OPEN, .name = "v/", .prefix = true,
		.action = FAULT_OTHER_VERSION });
	CHECK_INT(backend_open(g.router, "v/f", &h, &dl), 0);
	CHECK(chunk_is(h, 0, c, &n));
	CHECK(chunk_is(h, CHUNK, c, &n));
	CHECK_INT(fault_fired(g.frep, id), 1);
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 2);
	struct strbuf sb = STRBUF_INIT, want = STRBUF_INIT;
	CHECK_INT(backend_explain(g.router, "v/f", "replicas", &sb, &dl), 0);
	strbuf_addf(&want, "dc-east=lagging:%llu source=current",
		    (unsigned long long)gen + 1);
	CHECK_STR(sb.buf, want.buf);
	strbuf_release(&sb);
	strbuf_release(&want);
	bobj_close(h);
	rig_close(&g);
}

/* (d) A whole-object read with a flipped byte fails the source's crc32c:
 * the replica is marked bad and the source's bytes are served. */
static void corrupt_whole_read_is_caught(void)
{
	static unsigned char d[SIZE], buf[SIZE];
	struct rig g;
	struct bobj *h;

	rig_open_mode(&g, "corrupt", VERIFY_WHOLE_FIRST);
	fill(d, SIZE, 41);
	publish(&g, "c/f", d, true);
	int id = fault_add(g.frep, &(struct fault_rule){
		.op = FAULT_READ, .action = FAULT_CORRUPT });
	CHECK_INT(backend_open(g.router, "c/f", &h, &dl), 0);
	CHECK_INT(bobj_read(h, buf, SIZE, 0, &dl), SIZE);
	CHECK(memcmp(buf, d, SIZE) == 0);
	CHECK_INT(fault_fired(g.frep, id), 1);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 1);
	struct strbuf sb = STRBUF_INIT;
	CHECK_INT(backend_explain(g.router, "c/f", "replicas", &sb, &dl), 0);
	CHECK_STR(sb.buf, "dc-east=bad source=current");
	strbuf_release(&sb);
	bobj_close(h);
	rig_close(&g);
}

#define BIG (6 * BLOCKSUMS_BLOCK + 12345)    /* 7 blocks, the last short */

/* Put data (BIG bytes) as the source's version of name, a stamped copy
 * of copy_bytes on the replica, and, when manifest, the block manifest a
 * replicator writes beside it (sums of data: the source's bytes). */
static uint64_t publish_big(struct rig *g, const char *name,
			    const unsigned char *data,
			    const unsigned char *copy_bytes, bool manifest)
{
	int64_t gen = mem_put(g->src, name, data, BIG, NULL);
	struct obj_info stamp = { .generation = (uint64_t)gen,
				  .crc32c = crc32c_update(0, data, BIG),
				  .has_crc32c = true };
	CHECK(mem_put(g->rep, name, copy_bytes, BIG, &stamp) > 0);
	if (manifest) {
		struct blocksums_builder b;
		struct strbuf side = STRBUF_INIT, enc = STRBUF_INIT;
		blocksums_builder_init(&b, (uint64_t)gen, BIG);
		blocksums_builder_feed(&b, data, BIG);
		struct blocksums *s = blocksums_builder_finish(&b);
		blocksums_encode(s, &enc);
		blocksums_sidecar(name, &side);
		CHECK(mem_put(g->rep, side.buf, enc.buf, enc.len, &stamp) > 0);
		free(s);
		strbuf_release(&side);
		strbuf_release(&enc);
	}
	return (uint64_t)gen;
}

/* n reads of random lengths at random offsets: how many bytes differ
 * from data.  Reads cover unaligned starts and ends, and the tail. */
static long wrong_bytes(struct bobj *h, const unsigned char *data, int n,
			unsigned seed)
{
	static unsigned char buf[3 * BLOCKSUMS_BLOCK];
	long wrong = 0;

	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		uint64_t off = (seed >> 4) % BIG;
		seed = seed * 1103515245u + 12345u;
		size_t len = 1 + (seed >> 4) % sizeof(buf);
		ssize_t got = bobj_read(h, buf, len, off, &dl);
		size_t want = off + len > BIG ? (size_t)(BIG - off) : len;
		if (got != (ssize_t)want) {
			wrong += (long)want;
			continue;
		}
		for (size_t k = 0; k < want; k++)
			wrong += buf[k] != data[off + k];
	}
	return wrong;
}

static unsigned char big_a[BIG], big_bad[BIG];

/* (e) A copy stamped right, with one byte wrong: ranged reads at random
 * never return it, whether the copy has a manifest or is verified whole;
 * the copy is marked bad and the source serves from then on. */
static void wrong_byte_never_served(void)
{
	for (int manifest = 0; manifest < 2; manifest++) {
		struct rig g;
		struct bobj *h;
		rig_open_mode(&g, manifest ? "flip-m" : "flip-w",
			      VERIFY_WHOLE_FIRST);
		fill(big_a, BIG, 51);
		memcpy(big_bad, big_a, BIG);
		big_bad[4 * BLOCKSUMS_BLOCK + 777] ^= 0x01;
		publish_big(&g, "w/f", big_a, big_bad, manifest);
		CHECK_INT(backend_open(g.router, "w/f", &h, &dl), 0);
		CHECK_INT(wrong_bytes(h, big_a, 200, 5), 0);
		CHECK(metric(g.router, "hylake_replica_bad_copies_total") >= 1);
		struct strbuf sb = STRBUF_INIT;
		CHECK_INT(backend_explain(g.router, "w/f", "replicas", &sb,
					  &dl), 0);
		CHECK_STR(sb.buf, "dc-east=bad source=current");
		strbuf_release(&sb);
		bobj_close(h);
		/* a new open skips the bad copy without reading it */
		fault_reset_counts(g.frep);
		CHECK_INT(backend_open(g.router, "w/f", &h, &dl), 0);
		CHECK_INT(wrong_bytes(h, big_a, 20, 9), 0);
		CHECK_INT(fault_calls(g.frep, FAULT_READ), 0);
		bobj_close(h);
		rig_close(&g);
	}
}

/* (f) A good copy with a manifest: every read comes from the replica
 * (whole blocks, checked), nothing from the source, no whole-copy read;
 * a bad block met mid-file moves that read to the source at the same
 * offset and the bytes stay right. */
static void manifest_proves_ranged_reads(void)
{
	struct rig g;
	struct bobj *h;
	unsigned char buf[1000];

	rig_open_mode(&g, "manifest", VERIFY_BLOCKS);
	fill(big_a, BIG, 61);
	publish_big(&g, "m/f", big_a, big_a, true);
	CHECK_INT(backend_open(g.router, "m/f", &h, &dl), 0);
	CHECK_INT(wrong_bytes(h, big_a, 50, 3), 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	struct fault_range r[64];
	int nr = fault_read_log(g.frep, r, 64);
	CHECK(nr > 1);
	for (int i = 1; i < nr; i++)      /* [0]: the manifest itself */
		CHECK(r[i].off % BLOCKSUMS_BLOCK == 0 &&
		      r[i].len <= 4 * BLOCKSUMS_BLOCK);
	/* the replica starts returning a wrong byte in every read */
	int id = fault_add(g.frep, &(struct fault_rule){
		.op = FAULT_READ, .name = "m/f", .action = FAULT_CORRUPT });
	uint64_t off = 3 * BLOCKSUMS_BLOCK + 100;
	CHECK_INT(bobj_read(h, buf, sizeof(buf), off, &dl), sizeof(buf));
	CHECK(memcmp(buf, big_a + off, sizeof(buf)) == 0);
	CHECK_INT(fault_fired(g.frep, id), 1);
	struct fault_range sr[4];
	CHECK_INT(fault_read_log(g.fsrc, sr, 4), 1);
	CHECK_INT(sr[0].off, off);               /* the same offset */
	CHECK(metric(g.router, "hylake_failovers_total") == 1);
	bobj_close(h);
	rig_close(&g);
}

/* (g) verify = blocks uses no copy without a manifest, and a manifest of
 * another generation proves nothing; whole-first reads such a copy whole
 * once, and later opens use the sums it proved without reading it again. */
static void what_proves_a_copy(void)
{
	struct rig g;
	struct bobj *h;

	rig_open_mode(&g, "blocks", VERIFY_BLOCKS);
	fill(big_a, BIG, 71);
	publish_big(&g, "b/f", big_a, big_a, false);
	CHECK_INT(backend_open(g.router, "b/f", &h, &dl), 0);
	CHECK_INT(wrong_bytes(h, big_a, 10, 1), 0);
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 0);
	CHECK(fault_calls(g.fsrc, FAULT_READ) > 0);
	bobj_close(h);
	rig_close(&g);
	/* a manifest, but of an older generation: still nothing */
	rig_open_mode(&g, "blocks-old", VERIFY_BLOCKS);
	publish_big(&g, "b/f", big_a, big_a, true);
	fill(big_bad, BIG, 72);
	int64_t g2 = mem_put(g.src, "b/f", big_bad, BIG, NULL);
	struct obj_info stamp = { .generation = (uint64_t)g2,
				  .crc32c = crc32c_update(0, big_bad, BIG),
				  .has_crc32c = true };
	CHECK(mem_put(g.rep, "b/f", big_bad, BIG, &stamp) > 0);
	CHECK_INT(backend_open(g.router, "b/f", &h, &dl), 0);
	CHECK_INT(wrong_bytes(h, big_bad, 10, 2), 0);
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 1);   /* the manifest */
	bobj_close(h);
	rig_close(&g);

	rig_open_mode(&g, "whole", VERIFY_WHOLE_FIRST);
	fill(big_a, BIG, 73);
	publish_big(&g, "h/f", big_a, big_a, false);
	CHECK_INT(backend_open(g.router, "h/f", &h, &dl), 0);
	CHECK_INT(wrong_bytes(h, big_a, 10, 4), 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	struct fault_range r[4];
	CHECK(fault_read_log(g.frep, r, 4) >= 1);
	CHECK_INT(r[0].off, 0);                  /* the whole copy, first */
	bobj_close(h);
	fault_reset_counts(g.frep);
	CHECK_INT(backend_open(g.router, "h/f", &h, &dl), 0);
	CHECK_INT(wrong_bytes(h, big_a, 5, 6), 0);
	CHECK_INT(fault_calls(g.frep, FAULT_READ), 5);   /* no whole read */
	bobj_close(h);
	rig_close(&g);
}

/* Which of 64 reads a 30% rule fails, as a bit mask. */
static uint64_t pattern_of(uint64_t seed)
{
	struct backend *m = mem_create("m"), *f = fault_create(m, seed);
	struct bobj *h;
	char buf[4];
	uint64_t mask = 0;

	mem_put(m, "x", "abcd", 4, NULL);
	CHECK(fault_add(f, &(struct fault_rule){ .op = FAULT_READ,
		.percent = 30, .action = FAULT_FAIL, .err = -EIO }) >= 0);
	CHECK_INT(backend_open(f, "x", &h, &dl), 0);
	for (int i = 0; i < 64; i++)
		if (bobj_read(h, buf, 4, 0, &dl) == -EIO)
			mask |= 1ULL << i;
	bobj_close(h);
	backend_destroy(f);
	return mask;
}

static int count_entry(void *arg, const struct list_entry *e)
{
	(void)e;
	++*(int *)arg;
	return 0;
}

/* Entries of one page of the whole store, asking for 1000, from *tok
 * (NULL: the start), which is freed; the next token goes to *tok. */
static int list_count(struct backend *b, char **tok)
{
	struct list_req req = { .prefix = "", .max_keys = 1000, .token = *tok };
	char *next = NULL;
	int n = 0;
	int rc = backend_list(b, &req, count_entry, &n, &next, &dl);
	free(*tok);
	*tok = next;
	return rc < 0 ? rc : n;
}

static void fault_store_basics(void)
{
	struct backend *m = mem_create("m"), *f = fault_create(m, 1);
	struct obj_info i;
	struct bobj *h;
	char buf[8];

	/* the same seed, the same faults; another seed, others */
	uint64_t p7 = pattern_of(7);
	CHECK(p7 == pattern_of(7));
	CHECK(p7 != pattern_of(8));
	CHECK(__builtin_popcountll(p7) > 5 && __builtin_popcountll(p7) < 40);

	mem_put(m, "x", "abcdefgh", 8, NULL);
	CHECK_STR(f->name, "m");                 /* stands in for m */
	CHECK(f->caps == m->caps);
	CHECK_INT(backend_open(f, "x", &h, &dl), 0);
	/* a delay longer than the deadline ends at the deadline */
	fault_add(f, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_DELAY, .delay_us = 5000000 });
	struct deadline soon = deadline_in_ms(50);
	int64_t t0 = mono_ns();
	CHECK_INT(bobj_read(h, buf, 8, 0, &soon), -ETIMEDOUT);
	CHECK(mono_ns() - t0 < 2 * NS_PER_SEC);
	fault_clear(f);
	CHECK_INT(bobj_read(h, buf, 8, 0, &dl), 8);
	/* the second read of "x" only, truncated */
	fault_add(f, &(struct fault_rule){ .op = FAULT_READ, .name = "x",
		.skip = 1, .times = 1, .action = FAULT_TRUNCATE });
	CHECK_INT(bobj_read(h, buf, 8, 0, &dl), 8);
	CHECK_INT(bobj_read(h, buf, 8, 0, &dl), 4);
	CHECK_INT(bobj_read(h, buf, 8, 0, &dl), 8);
	bobj_close(h);
	/* by name: "y" fails without reaching the store (no ENOENT) */
	fault_add(f, &(struct fault_rule){ .op = FAULT_STAT, .name = "y",
		.action = FAULT_FAIL, .err = -EACCES });
	fault_reset_counts(f);
	CHECK_INT(backend_stat(f, "x", &i, &dl), 0);
	CHECK_INT(backend_stat(f, "y", &i, &dl), -EACCES);
	CHECK_INT(fault_calls(f, FAULT_STAT), 2);
	CHECK_INT(fault_calls(f, FAULT_READ), 0);
	CHECK_INT(fault_calls(f, FAULT_ANY), 2);
	fault_add(f, &(struct fault_rule){ .op = FAULT_STAT,
		.action = FAULT_OTHER_VERSION, .generation = 99 });
	CHECK_INT(backend_stat(f, "x", &i, &dl), 0);
	CHECK_INT(i.generation, 99);
	/* short pages: the shortest rule that fires wins; the rest of the
	 * listing comes on the next page */
	mem_put(m, "x2", "ab", 2, NULL);
	mem_put(m, "x3", "ab", 2, NULL);
	fault_add(f, &(struct fault_rule){ .op = FAULT_LIST, .times = 1,
		.action = FAULT_SHORT_PAGE, .page_max = 2 });
	fault_add(f, &(struct fault_rule){ .op = FAULT_LIST, .times = 1,
		.action = FAULT_SHORT_PAGE, .page_max = 1 });
	char *tok = NULL;
	CHECK_INT(list_count(f, &tok), 1);
	CHECK(tok != NULL);
	CHECK_INT(list_count(f, &tok), 2);
	CHECK(tok == NULL);
	/* rules that cannot fire are refused */
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_LIST,
		.action = FAULT_SHORT_PAGE }), -EINVAL);
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_SHORT_PAGE, .page_max = 1 }), -EINVAL);
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_STAT,
		.action = FAULT_CORRUPT }), -EINVAL);
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_FAIL }), -EINVAL);
	backend_destroy(f);
}

/* A replica whose opens time out: three of them open its breaker, so
 * later files do not ask it; and one that swallows an open gets only its
 * share of the deadline, so the source still answers within it. */
static void swallowing_replica_is_bounded(void)
{
	static unsigned char data[SIZE];
	char name[32];
	struct rig g;
	struct bobj *h;
	ssize_t n;

	rig_open(&g, "swallow");
	fill(data, SIZE, 21);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "t/s%d", i);
		publish(&g, name, data, true);
	}
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_OPEN,
		.action = FAULT_FAIL, .err = -ETIMEDOUT }) >= 0);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "t/s%d", i);
		CHECK_INT(backend_open(g.router, name, &h, &dl), 0);
		CHECK(chunk_is(h, 0, data, &n));
		bobj_close(h);
	}
	CHECK_INT(fault_calls(g.frep, FAULT_OPEN), 3);   /* then the breaker */

	fault_clear(g.frep);
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_OPEN,
		.action = FAULT_DELAY, .delay_us = 30 * 1000 * 1000 }) >= 0);
	sleep(2);                                  /* the cooldown ends */
	struct deadline short_dl = deadline_in_ms(1000);
	CHECK_INT(backend_open(g.router, "t/s5", &h, &short_dl), 0);
	unsigned char buf[CHUNK];
	int64_t t0 = mono_ns();
	CHECK_INT(bobj_read(h, buf, CHUNK, CHUNK, &short_dl), CHUNK);
	CHECK(mono_ns() - t0 < 800 * NS_PER_MS);   /* its share: half */
	CHECK(memcmp(buf, data + CHUNK, CHUNK) == 0);
	bobj_close(h);
	rig_close(&g);
}

/*
 * (h1) With hedging on, a first read that verifies a whole copy is waited
 * for as a read of the whole copy, not hedged to the source at a ranged
 * read's latency (the hedge would cancel it, and the next read start
 * over): 20 ms per replica read (far more than an open of a copy takes,
 * even under a sanitizer), then a copy whose whole read takes 200 ms.
 */
static void a_whole_verification_is_not_hedged_away(void)
{
	struct rig g;
	struct bobj *h;
	unsigned char buf[CHUNK];
	/* its own: the whole run may take longer than dl under a sanitizer */
	struct deadline d = deadline_in_ms(10000);

	rig_open_hedged(&g, "hedge-whole", VERIFY_WHOLE_FIRST, fresh_strict,
			100);
	fill(big_a, BIG, 81);
	publish_big(&g, "t/timed", big_a, big_a, false);
	publish_big(&g, "t/slow", big_a, big_a, false);
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/timed", .action = FAULT_DELAY,
		.delay_us = 20 * 1000 }) >= 0);
	CHECK_INT(backend_open(g.router, "t/timed", &h, &d), 0);
	for (int i = 0; i < 20; i++) {    /* its p95: 20 ms and a little */
		uint64_t off = (uint64_t)(i % 7) * CHUNK;
		CHECK_INT(bobj_read(h, buf, CHUNK, off, &d), CHUNK);
		CHECK(memcmp(buf, big_a + off, CHUNK) == 0);
	}
	bobj_close(h);
	fault_reset_counts(g.fsrc);
	double hedges = metric(g.router, "hylake_hedged_reads_total");
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/slow", .times = 1, .action = FAULT_DELAY,
		.delay_us = 200 * 1000 }) >= 0);
	CHECK_INT(backend_open(g.router, "t/slow", &h, &d), 0);
	CHECK_INT(bobj_read(h, buf, CHUNK, 3 * CHUNK, &d), CHUNK);
	CHECK(memcmp(buf, big_a + 3 * CHUNK, CHUNK) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	CHECK(metric(g.router, "hylake_hedged_reads_total") == hedges);
	bobj_close(h);
	rig_close(&g);
}

struct reader {
	pthread_t t;
	struct bobj *h;
	uint64_t off;
	bool right;
};

static void *read_one(void *arg)
{
	struct reader *rd = arg;
	unsigned char buf[CHUNK];
	struct deadline d = deadline_in_ms(10000);
	rd->right = bobj_read(rd->h, buf, CHUNK, rd->off, &d) == CHUNK &&
		    memcmp(buf, big_a + rd->off, CHUNK) == 0;
	return NULL;
}

/* Start readers of CHUNK at 1..4 * CHUNK of h, expecting big_a's bytes,
 * and join them; the whole reads of the replica (the copy's length). */
static int read_together(struct rig *g, struct bobj *h)
{
	struct reader rd[4];
	struct fault_range r[64];
	int whole = 0;

	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){ .h = h, .off = (uint64_t)(i + 1) * CHUNK };
		CHECK_INT(pthread_create(&rd[i].t, NULL, read_one, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(rd[i].t, NULL);
		CHECK(rd[i].right);
	}
	size_t n = fault_read_log(g->frep, r, 64);
	for (size_t i = 0; i < n; i++)
		whole += r[i].off == 0 && r[i].len == BIG;
	return whole;
}

/* (h2) Readers that come while a copy is being verified whole wait for
 * that verification's sums: the copy is read whole once, not once each;
 * and when it proves bad, they read on from the source without reading
 * it again. */
static void a_copy_is_verified_once(void)
{
	struct rig g;
	struct bobj *h;

	rig_open_mode(&g, "verify-once", VERIFY_WHOLE_FIRST);
	fill(big_a, BIG, 83);
	publish_big(&g, "t/once", big_a, big_a, false);
	fill(big_bad, BIG, 83);
	big_bad[BIG / 2] ^= 1;
	publish_big(&g, "t/bad", big_a, big_bad, false);
	struct fault_rule slow = { .op = FAULT_READ, .times = 1,
				   .action = FAULT_DELAY,
				   .delay_us = 100 * 1000 };
	slow.name = "t/once";
	CHECK(fault_add(g.frep, &slow) >= 0);
	slow.name = "t/bad";
	CHECK(fault_add(g.frep, &slow) >= 0);

	CHECK_INT(backend_open(g.router, "t/once", &h, &dl), 0);
	CHECK_INT(read_together(&g, h), 1);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	bobj_close(h);

	fault_reset_counts(g.frep);
	CHECK_INT(backend_open(g.router, "t/bad", &h, &dl), 0);
	CHECK_INT(read_together(&g, h), 1);
	CHECK(fault_calls(g.fsrc, FAULT_READ) >= 4);
	bobj_close(h);
	rig_close(&g);
}

/* (h3) A first read that verifies a small copy whole, overtaken by a hedge
 * and cancelled, leaves the copy to be verified by the next read: that
 * one is not kept waiting for a verification that will never end. */
static void a_cancelled_verification_is_no_verification(void)
{
	static unsigned char data[SIZE];
	unsigned char buf[SIZE];
	struct deadline d = deadline_in_ms(10000);
	struct rig g;
	struct bobj *h;

	rig_open_hedged(&g, "verify-cancel", VERIFY_WHOLE_FIRST, fresh_strict,
			100);
	fill(data, SIZE, 85);
	publish(&g, "t/small", data, true);
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/small", .times = 1, .action = FAULT_DELAY,
		.delay_us = 5 * 1000 * 1000 }) >= 0);
	CHECK_INT(backend_open(g.router, "t/small", &h, &d), 0);
	/* unmeasured: the source is asked too after HEDGE_COLD_NS */
	CHECK_INT(bobj_read(h, buf, SIZE, 0, &d), SIZE);
	CHECK(memcmp(buf, data, SIZE) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 1);
	int64_t t0 = mono_ns();
	CHECK_INT(bobj_read(h, buf, SIZE, 0, &d), SIZE);
	CHECK(memcmp(buf, data, SIZE) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 1);     /* the replica's */
	CHECK(mono_ns() - t0 < 200 * NS_PER_MS);
	bobj_close(h);
	rig_close(&g);
}

/*
 * (h4) A hedge waits for what the next store takes: with a source whose
 * reads take 100 ms, and names written once (a second open asks the
 * source nothing, so a hedge must open it too: twice that), a replica
 * read past its own p95 but within 200 ms is not hedged, and no source
 * read is sent; one that takes a second is, and is served by the source
 * long before the replica answers.
 */
static void a_hedge_waits_for_what_the_source_takes(void)
{
	static unsigned char data[SIZE];
	unsigned char buf[CHUNK];
	struct deadline d = deadline_in_ms(20000);
	struct rig g;
	struct bobj *h;

	rig_open_hedged(&g, "hedge-reach", VERIFY_TRUST, fresh_once, 100);
	fill(data, SIZE, 87);
	publish(&g, "t/far", data, false);
	publish(&g, "t/near", data, true);
	CHECK(fault_add(g.fsrc, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_DELAY, .delay_us = 100 * 1000 }) >= 0);
	CHECK_INT(backend_open(g.router, "t/far", &h, &d), 0);
	for (uint64_t i = 0; i < 16; i++) {       /* the source, measured */
		CHECK_INT(bobj_read(h, buf, CHUNK, i * CHUNK, &d), CHUNK);
		CHECK(memcmp(buf, data + i * CHUNK, CHUNK) == 0);
	}
	bobj_close(h);
	CHECK_INT(backend_open(g.router, "t/near", &h, &d), 0);
	for (uint64_t i = 0; i < 20; i++) {  /* the replica: a few ms at most */
		CHECK_INT(bobj_read(h, buf, CHUNK, i % 16 * CHUNK, &d), CHUNK);
		CHECK(memcmp(buf, data + i % 16 * CHUNK, CHUNK) == 0);
	}
	bobj_close(h);
	fault_reset_counts(g.fsrc);
	double hedges = metric(g.router, "hylake_hedged_reads_total");

	CHECK_INT(backend_open(g.router, "t/near", &h, &d), 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN), 0);
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/near", .times = 1, .action = FAULT_DELAY,
		.delay_us = 140 * 1000 }) >= 0);
	CHECK_INT(bobj_read(h, buf, CHUNK, 2 * CHUNK, &d), CHUNK);
	CHECK(memcmp(buf, data + 2 * CHUNK, CHUNK) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	CHECK(metric(g.router, "hylake_hedged_reads_total") == hedges);

	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/near", .times = 1, .action = FAULT_DELAY,
		.delay_us = 1000 * 1000 }) >= 0);
	int64_t t0 = mono_ns();
	CHECK_INT(bobj_read(h, buf, CHUNK, 3 * CHUNK, &d), CHUNK);
	CHECK(mono_ns() - t0 < 700 * NS_PER_MS);
	CHECK(memcmp(buf, data + 3 * CHUNK, CHUNK) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 1);
	CHECK(metric(g.router, "hylake_hedged_reads_total") == hedges + 1);
	bobj_close(h);
	rig_close(&g);
}

/*
 * (h5) A source never read yet is known by its other answers: with opens
 * of the source taking 200 ms, a replica read that takes 100 ms (far
 * past its p95) is not hedged; a read could not come back from there
 * sooner than an open does.
 */
static void a_hedge_knows_the_source_by_its_opens(void)
{
	static unsigned char data[SIZE];
	unsigned char buf[CHUNK];
	struct deadline d = deadline_in_ms(20000);
	struct rig g;
	struct bobj *h;

	rig_open_hedged(&g, "hedge-floor", VERIFY_TRUST, fresh_strict, 100);
	fill(data, SIZE, 89);
	publish(&g, "t/near", data, true);
	CHECK(fault_add(g.fsrc, &(struct fault_rule){ .op = FAULT_OPEN,
		.action = FAULT_DELAY, .delay_us = 200 * 1000 }) >= 0);
	CHECK_INT(backend_open(g.router, "t/near", &h, &d), 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN), 1);
	for (uint64_t i = 0; i < 20; i++) {  /* the replica: a few ms at most */
		CHECK_INT(bobj_read(h, buf, CHUNK, i % 16 * CHUNK, &d), CHUNK);
		CHECK(memcmp(buf, data + i % 16 * CHUNK, CHUNK) == 0);
	}
	CHECK(fault_add(g.frep, &(struct fault_rule){ .op = FAULT_READ,
		.name = "t/near", .times = 1, .action = FAULT_DELAY,
		.delay_us = 100 * 1000 }) >= 0);
	CHECK_INT(bobj_read(h, buf, CHUNK, 5 * CHUNK, &d), CHUNK);
	CHECK(memcmp(buf, data + 5 * CHUNK, CHUNK) == 0);
	CHECK_INT(fault_calls(g.fsrc, FAULT_READ), 0);
	CHECK(metric(g.router, "hylake_hedged_reads_total") == 0);
	bobj_close(h);
	rig_close(&g);
}

/*
 * (h6) A replica put behind a later one for being clearly slower gets its
 * place back once that evidence is RANK_EVIDENCE_NS (5 s) old: while the
 * later one holds the versions, no read would measure it again.
 */
static void a_slower_replica_is_measured_again(void)
{
	static unsigned char data[SIZE];
	unsigned char buf[CHUNK];
	struct deadline d = deadline_in_ms(30000);
	char dir[600], err[256];
	struct vmap *map;
	struct backend *router, *h_src = mem_create("source");
	struct backend *rep[2] = { mem_create("near"), mem_create("far") };
	struct backend *frep[2] = { fault_create(rep[0], 3),
				    fault_create(rep[1], 4) };
	struct bobj *h;

	snprintf(dir, sizeof(dir), "%s/rank-again", tmp);
	CHECK_INT(vmap_open(dir, "mem source", 64 << 20, &map, err,
			    sizeof(err)), 0);
	struct router_conf rc = { .fresh = fresh_strict, .serve_stale_ms = -1,
				  .replica_recheck_ms = 60000,
				  .verify = { VERIFY_TRUST } };
	CHECK_INT(router_create(h_src, frep, 2, vmap_facts(map), &rc, &router),
		  0);
	fill(data, SIZE, 91);
	int64_t gen = mem_put(h_src, "t/both", data, SIZE, NULL);
	CHECK(gen > 0);
	struct obj_info stamp = { .generation = (uint64_t)gen };
	CHECK(mem_put(rep[0], "t/both", data, SIZE, &stamp) > 0);
	CHECK(mem_put(rep[1], "t/both", data, SIZE, &stamp) > 0);
	gen = mem_put(h_src, "t/far", data, SIZE, NULL);
	stamp.generation = (uint64_t)gen;
	CHECK(mem_put(rep[1], "t/far", data, SIZE, &stamp) > 0);

	/* far measured (near lacks t/far), then near measured slow */
	CHECK_INT(backend_open(router, "t/far", &h, &d), 0);
	for (uint64_t i = 0; i < 20; i++)
		CHECK_INT(bobj_read(h, buf, CHUNK, i % 16 * CHUNK, &d), CHUNK);
	bobj_close(h);
	CHECK(fault_add(frep[0], &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_DELAY, .delay_us = 30 * 1000 }) >= 0);
	CHECK_INT(backend_open(router, "t/both", &h, &d), 0);
	for (uint64_t i = 0; i < 20; i++)
		CHECK_INT(bobj_read(h, buf, CHUNK, i % 16 * CHUNK, &d), CHUNK);
	fault_clear(frep[0]);
	/* near is behind: the next read goes to far */
	fault_reset_counts(frep[0]);
	fault_reset_counts(frep[1]);
	CHECK_INT(bobj_read(h, buf, CHUNK, 0, &d), CHUNK);
	CHECK(memcmp(buf, data, CHUNK) == 0);
	CHECK_INT(fault_calls(frep[0], FAULT_READ), 0);
	CHECK_INT(fault_calls(frep[1], FAULT_READ), 1);
	/* five seconds on, near is first again, and serves */
	sleep(6);
	CHECK_INT(bobj_read(h, buf, CHUNK, CHUNK, &d), CHUNK);
	CHECK(memcmp(buf, data + CHUNK, CHUNK) == 0);
	CHECK_INT(fault_calls(frep[0], FAULT_READ), 1);
	CHECK_INT(fault_calls(frep[1], FAULT_READ), 1);
	bobj_close(h);
	backend_destroy(router);
	vmap_close(map);
}

/*
 * (i) Every name written once: a first open learns its folder from one
 * listing page from that name on, so the names after it open with no
 * request to the source, and are read from the replica.  A name the
 * page does not show is asked about as before, and once known to be
 * gone, with no listing.
 */
static void first_open_learns_the_folder(void)
{
	struct rig g;
	unsigned char data[5][SIZE];
	char name[32];
	ssize_t got;

	rig_open_fresh(&g, "learn", VERIFY_TRUST, fresh_once);
	for (int i = 0; i < 5; i++) {
		fill(data[i], SIZE, 40 + (unsigned)i);
		snprintf(name, sizeof(name), "t/part-%d", i);
		publish(&g, name, data[i], true);
	}
	fault_reset_counts(g.fsrc);
	fault_reset_counts(g.frep);
	for (int i = 1; i < 5; i++) {
		struct bobj *h = NULL;
		snprintf(name, sizeof(name), "t/part-%d", i);
		CHECK_INT(backend_open(g.router, name, &h, &dl), 0);
		CHECK(h && chunk_is(h, 0, data[i], &got));
		if (h)
			bobj_close(h);
	}
	CHECK_INT(fault_calls(g.fsrc, FAULT_LIST), 1);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN) +
		  fault_calls(g.fsrc, FAULT_STAT) +
		  fault_calls(g.fsrc, FAULT_READ), 0);
	CHECK(fault_calls(g.frep, FAULT_READ) >= 4);

	/* one before them: a page of its own */
	struct bobj *h = NULL;
	CHECK_INT(backend_open(g.router, "t/part-0", &h, &dl), 0);
	CHECK(h && chunk_is(h, 0, data[0], &got));
	if (h)
		bobj_close(h);
	CHECK_INT(fault_calls(g.fsrc, FAULT_LIST), 2);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN) + fault_calls(g.fsrc, FAULT_STAT), 0);

	/* a name the page does not show is asked about as before */
	h = NULL;
	CHECK_INT(backend_open(g.router, "t/part-3x", &h, &dl), -ENOENT);
	CHECK_INT(fault_calls(g.fsrc, FAULT_LIST), 3);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN), 1);
	/* and, known to be gone, is asked about without a listing */
	CHECK_INT(backend_open(g.router, "t/part-3x", &h, &dl), -ENOENT);
	CHECK_INT(fault_calls(g.fsrc, FAULT_LIST), 3);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN), 2);
	rig_close(&g);
}

struct opener {
	struct backend *router;
	const char *name;
	int rc;
};

static void *open_one(void *arg)
{
	struct opener *o = arg;
	struct bobj *h = NULL;
	o->rc = backend_open(o->router, o->name, &h, &dl);
	if (h)
		bobj_close(h);
	return NULL;
}

/*
 * (j) Cold opens of several names in one folder at once, the source's
 * listing slow: the folder is listed once, the others wait for that
 * page, and none asks the source about its name.
 */
static void a_burst_of_first_opens_lists_once(void)
{
	struct rig g;
	unsigned char data[SIZE];
	const char *names[] = { "b/part-1", "b/part-2", "b/part-3" };
	struct opener op[3];
	pthread_t th[3];

	dl = deadline_in_ms(10000);       /* the slow page fits in it */
	rig_open_fresh(&g, "burst", VERIFY_TRUST, fresh_once);
	fill(data, SIZE, 77);
	for (int i = 0; i < 3; i++)
		publish(&g, names[i], data, true);
	fault_reset_counts(g.fsrc);
	CHECK(fault_add(g.fsrc, &(struct fault_rule){
		.op = FAULT_LIST, .action = FAULT_DELAY,
		.delay_us = 300000 }) >= 0);
	for (int i = 0; i < 3; i++) {
		op[i] = (struct opener){ g.router, names[i], 1 };
		CHECK_INT(pthread_create(&th[i], NULL, open_one, &op[i]), 0);
		usleep(50000);          /* the first page is in the air */
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(op[i].rc, 0);
	}
	CHECK_INT(fault_calls(g.fsrc, FAULT_LIST), 1);
	CHECK_INT(fault_calls(g.fsrc, FAULT_OPEN) + fault_calls(g.fsrc, FAULT_STAT), 0);
	fault_clear(g.fsrc);
	rig_close(&g);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/route-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	dl = deadline_in_ms(10000);
	fresh_strict = freshness_create(NULL, 0, (struct fresh_setting){
						.kind = FRESH_STRICT });
	fresh_once = freshness_create(NULL, 0, (struct fresh_setting){
						.kind = FRESH_IMMUTABLE });
	failover_at_the_same_offset();
	wrong_byte_never_served();
	manifest_proves_ranged_reads();
	what_proves_a_copy();
	open_file_keeps_its_version();
	another_version_is_skipped();
	corrupt_whole_read_is_caught();
	fault_store_basics();
	swallowing_replica_is_bounded();
	a_whole_verification_is_not_hedged_away();
	a_copy_is_verified_once();
	a_cancelled_verification_is_no_verification();
	a_hedge_waits_for_what_the_source_takes();
	a_hedge_knows_the_source_by_its_opens();
	a_slower_replica_is_measured_again();
	first_open_learns_the_folder();
	a_burst_of_first_opens_lists_once();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	freshness_destroy(fresh_strict);
	freshness_destroy(fresh_once);
	return check_summary();
}
