/*
 * The router over memory stores, with the real version map (LMDB in a
 * temp dir) as its facts, and fault wrappers to make stores misbehave:
 * a failed replica read moves to the source at the same offset; an open
 * file keeps its version (old bytes or ESTALE, never the new ones); a
 * replica holding another version, or claiming to, is never read; a
 * corrupt whole-object read is caught.  And the fault store itself:
 * counts, deadlines, determinism from its seed.
 */
#include "backends/backend.h"
#include "backends/composite/fault.h"
#include "backends/composite/router.h"
#include "backends/mem/mem.h"
#include "backends/util/crc32c.h"
#include "backends/util/prom.h"
#include "backends/util/strbuf.h"
#include "cache/vmap.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define SIZE (64 * 1024)
#define CHUNK 4096

static char tmp[512];
static struct deadline dl;

/* A router over a source and one replica, each in a fault wrapper. */
struct rig {
	struct vmap *map;
	struct backend *router;
	struct backend *src, *rep;      /* the memory stores */
	struct backend *fsrc, *frep;    /* their fault wrappers */
};

static void rig_open(struct rig *g, const char *sub)
{
	char dir[600], err[256];
	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	CHECK_INT(vmap_open(dir, "mem source", 64 << 20, &g->map, err,
			    sizeof(err)), 0);
	g->src = mem_create("source");
	g->rep = mem_create("dc-east");
	g->fsrc = fault_create(g->src, 1);
	g->frep = fault_create(g->rep, 2);
	struct router_conf rc = { .bounded_ms = 0, .serve_stale_ms = -1,
				  .replica_recheck_ms = 60000 };
	CHECK_INT(router_create(g->fsrc, &g->frep, 1, vmap_facts(g->map), &rc,
				&g->router), 0);
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

	rig_open(&g, "corrupt");
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
	/* rules that cannot fire are refused */
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_STAT,
		.action = FAULT_CORRUPT }), -EINVAL);
	CHECK_INT(fault_add(f, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_FAIL }), -EINVAL);
	backend_destroy(f);
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
	failover_at_the_same_offset();
	open_file_keeps_its_version();
	another_version_is_skipped();
	corrupt_whole_read_is_caught();
	fault_store_basics();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_summary();
}
