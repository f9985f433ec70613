/*
 * The read path over a memory store in a fault wrapper that records every
 * request it gets (and can slow or fail them), with a real block cache:
 * bytes are right,
 * reads in order grow a window of parallel multi-MiB requests, random
 * reads fetch only what they need, tails and small files take one
 * request, the memory budget holds (read-ahead, every extent kept by
 * many files read at random, and a read goes on when all of it is in
 * use), cached blocks replace requests, a new
 * version never meets old blocks, and a corrupt block is fetched again.
 */
#include "cache/readpath.h"
#include "cache/blockcache.h"
#include "backends/backend.h"
#include "backends/composite/fault.h"
#include "backends/mem/mem.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"
#include "tests/unit/parquet_footer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define MAXREQ 4096

/* ------------------------------------------------------- the store */

/*
 * A memory store whose objects hold mem_pattern_byte(seed, off), behind
 * a fault wrapper that records every read request (and can slow them
 * down or fail them).  seed plays the part of a version's content.
 */
static struct backend *mstore, *store;
static struct fault_range log_[MAXREQ];

static unsigned char byte_at(uint64_t seed, uint64_t off)
{
	return mem_pattern_byte(seed, off);
}

/* Open the current version of name.  Called from reader threads too,
 * so a failure (which a memory store never has) aborts instead of
 * counting a CHECK. */
static struct bobj *store_open(const char *name)
{
	struct bobj *o = NULL;
	struct deadline dl = deadline_in_ms(5000);
	int rc = backend_open(store, name, &o, &dl);
	if (rc < 0) {
		fprintf(stderr, "open %s: %s\n", name, strerror(-rc));
		abort();
	}
	return o;
}

/* Put a new version of name (size bytes of seed's pattern), and open it. */
static struct bobj *put_open(const char *name, uint64_t size, uint64_t seed)
{
	if (mem_put_pattern(mstore, name, size, seed, NULL) < 0)
		abort();
	return store_open(name);
}

/* Every read request from now on waits us microseconds. */
static void delay_reads(unsigned us)
{
	fault_add(store, &(struct fault_rule){ .op = FAULT_READ,
		.action = FAULT_DELAY, .delay_us = us });
}

/* Read requests past the first `after` fail with err. */
static void fail_reads_after(unsigned after, int err)
{
	fault_add(store, &(struct fault_rule){ .op = FAULT_READ,
		.skip = after, .action = FAULT_FAIL, .err = err });
}

static void reset(void)
{
	fault_clear(store);
	fault_reset_counts(store);
}

static unsigned nreq(void)
{
	return fault_calls(store, FAULT_READ);
}

/* The requests so far, in order. */
static struct fault_range *reqs(void)
{
	fault_read_log(store, log_, MAXREQ);
	return log_;
}

static unsigned max_inflight(void)
{
	return fault_max_inflight(store, FAULT_READ);
}

/* ------------------------------------------------------- helpers */

static char tmp[512];

static struct readpath *rp_new(struct bcache *bc, uint64_t mem, uint64_t ra)
{
	struct readpath_conf c = { .cache = bc, .memory_limit = mem,
				   .read_ahead_max = ra, .fetchers = 8,
				   .fetch_timeout_ms = 10000,
				   .cache_first_read = true };
	return readpath_create(&c);
}

static struct bcache *cache_new(const char *sub, uint64_t max)
{
	char dir[600], err[256];
	struct bcache *bc = NULL;
	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	struct bcache_conf c = { .dir = dir, .max_bytes = max,
				 .min_free_bytes = 0, .ns = "fake" };
	CHECK_INT(bcache_open(&c, &bc, err, sizeof(err)), 0);
	return bc;
}

/* Read [off, off+len) and check every byte against the pattern of gen. */
/* Are the n bytes at p (n: what a read returned) the len bytes of the
 * pattern of gen at off?  what: the call, for the message. */
static bool bytes_ok(const char *what, const unsigned char *p, ssize_t n,
		     uint64_t gen, uint64_t off, size_t len)
{
	bool ok = n == (ssize_t)len && p;
	for (size_t i = 0; ok && i < len; i++)
		ok = p[i] == byte_at(gen, off + i);
	if (!ok)
		fprintf(stderr, "%s at %llu+%zu: n=%zd, bytes %s\n", what,
			(unsigned long long)off, len, n,
			n == (ssize_t)len ? "WRONG" : "-");
	return ok;
}

static bool read_ok(struct rfile *f, uint64_t gen, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len);
	struct deadline dl = deadline_in_ms(10000);
	bool ok = bytes_ok("read", buf, rfile_read(f, buf, len, off, &dl),
			   gen, off, len);
	free(buf);
	return ok;
}

/* The same through rfile_view; *copied: the view was a copy. */
static bool view_ok(struct rfile *f, uint64_t gen, uint64_t off, size_t len,
		    bool *copied)
{
	struct deadline dl = deadline_in_ms(10000);
	struct rview v;
	ssize_t n = rfile_view(f, off, len, &dl, &v);
	bool ok = bytes_ok("view", (const unsigned char *)v.data, n, gen, off,
			   len);
	*copied = v.own != NULL;
	rfile_view_release(f, &v);
	return ok;
}

/* How many of name's first n blocks (version of gen) the cache holds. */
static unsigned held(struct bcache *bc, const char *name, uint64_t gen,
		     uint64_t n)
{
	char version[32];
	unsigned k = 0;
	snprintf(version, sizeof(version), "g%llu", (unsigned long long)gen);
	for (uint64_t b = 0; b < n; b++) {
		struct bcache_key key = { name, version, b };
		k += bcache_has(bc, &key);
	}
	return k;
}

/* ------------------------------------------------------- tests */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * A Parquet file of ngroups row groups, group g the next per[g] of the
 * column chunks at chunks[] (n in all), its data the pattern of seed and
 * its footer real; put in the store as name.  Returns its size.
 */
static uint64_t put_parquet_groups(const char *name, uint64_t seed,
				   const struct spec *chunks, size_t n,
				   const size_t *per, size_t ngroups)
{
	struct strbuf w = STRBUF_INIT;
	put_footer(&w, chunks, per, ngroups);
	uint64_t data_end = (uint64_t)(chunks[n - 1].data + chunks[n - 1].size);
	uint64_t size = data_end + w.len + 8;
	unsigned char *b = malloc(size);
	for (uint64_t i = 0; i < data_end; i++)
		b[i] = byte_at(seed, i);
	memcpy(b + data_end, w.buf, w.len);
	uint32_t flen = (uint32_t)w.len;
	for (int i = 0; i < 4; i++)
		b[size - 8 + i] = (unsigned char)(flen >> (8 * i));
	memcpy(b + size - 4, "PAR1", 4);
	int64_t gen = mem_put(mstore, name, b, size, NULL);
	CHECK(gen > 0);
	free(b);
	strbuf_release(&w);
	return size;
}

/* The same, of one row group. */
static uint64_t put_parquet(const char *name, uint64_t seed,
			    const struct spec *chunks, size_t n)
{
	return put_parquet_groups(name, seed, chunks, n, &n, 1);
}

/* Open name with the last MiB read at open, as an open_tail would. */
static struct bobj *open_with_tail(const char *name, uint64_t size)
{
	struct bobj *o = store_open(name);
	struct deadline dl = deadline_in_ms(5000);
	o->tail = malloc(MiB);
	o->tail_len = MiB;
	CHECK_INT(bobj_read(o, o->tail, MiB, size - MiB, &dl), MiB);
	return o;
}

static bool reqs_end_by(uint64_t end)
{
	struct fault_range *r = reqs();
	for (unsigned i = 0; i < nreq(); i++)
		if (r[i].off + r[i].len > end)
			return false;
	return true;
}

/* The length of the request from off, or 0 when none began there.
 * Requests on the fetchers reach the store in any order. */
static uint64_t req_len_at(uint64_t off)
{
	struct fault_range *r = reqs();
	for (unsigned i = 0; i < nreq(); i++)
		if (r[i].off == off)
			return r[i].len;
	return 0;
}

static void parquet_chunks_are_read_whole_and_alone(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const struct spec chunks[] = {
		{ .data = 4, .dict = -1, .size = 3 * MiB - 4 },
		{ .data = 3 * MiB, .dict = -1, .size = 7 * MiB },
		{ .data = 10 * MiB, .dict = -1, .size = 3 * MiB / 2 },
		{ .data = 23 * MiB / 2, .dict = -1, .size = 37 * MiB / 2 },
		{ .data = 30 * MiB, .dict = -1, .size = 2 * MiB },
	};
	uint64_t size = put_parquet("t/part-0.parquet", 31, chunks, 5);
	struct bobj *o = open_with_tail("t/part-0.parquet", size);
	reset();
	struct rfile *f = rfile_open(rp, o);

	/* a page header at a chunk's start: the chunk, whole, at once */
	CHECK(read_ok(f, 31, 3 * MiB, 256));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].off, 3 * MiB);
	CHECK_INT(reqs()[0].len, 7 * MiB);
	for (uint64_t at = 3 * MiB + 256; at < 10 * MiB; at += 128 * KiB)
		CHECK(read_ok(f, 31, at, (size_t)min_u64(128 * KiB,
							 10 * MiB - at)));
	CHECK_INT(nreq(), 1);
	/* going on past its end (the kernel reading ahead) starts nothing:
	 * one block, not the next chunk whole */
	CHECK(read_ok(f, 31, 10 * MiB, 128 * KiB));
	CHECK_INT(nreq(), 2);
	CHECK_INT(reqs()[1].len, MiB);

	/* a long chunk read in order: read-ahead inside it, never past */
	reset();
	uint64_t c3 = 23 * MiB / 2, c3_end = 30 * MiB;
	CHECK(read_ok(f, 31, c3, 256));
	CHECK_INT(req_len_at(11 * MiB), 8 * MiB);     /* one request's most */
	for (uint64_t at = c3 + 256; at < c3_end; at += 512 * KiB)
		CHECK(read_ok(f, 31, at, (size_t)min_u64(512 * KiB,
							 c3_end - at)));
	usleep(100000);                  /* any read-ahead still in flight */
	CHECK(reqs_end_by(c3_end));

	/* a read into the middle of a chunk fetches what it asks: the
	 * rest of its block, from its page */
	reset();
	CHECK(read_ok(f, 31, 20 * MiB + MiB / 2, 4096));
	CHECK(read_ok(f, 31, MiB + 77, 4096));
	CHECK_INT(nreq(), 2);
	CHECK_INT(reqs()[0].off, 20 * MiB + MiB / 2);
	CHECK_INT(reqs()[0].len, MiB / 2);
	CHECK_INT(reqs()[1].len, MiB);
	rfile_close(f);

	/* no footer learnt (no tail, never read): blocks as they come */
	reset();
	f = rfile_open(rp, store_open("t/part-0.parquet"));
	CHECK(read_ok(f, 31, 3 * MiB, 256));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].len, MiB);
	rfile_close(f);
	readpath_destroy(rp);
}

/* Read chunk [off, end) as a Parquet reader does: its first page's
 * header, then the rest in 128 KiB reads. */
static bool chunk_read_ok(struct rfile *f, uint64_t seed, uint64_t off,
			  uint64_t end)
{
	bool ok = read_ok(f, seed, off, 256);
	for (uint64_t at = off + 256; ok && at < end; at += 128 * KiB)
		ok = read_ok(f, seed, at, (size_t)min_u64(128 * KiB, end - at));
	return ok;
}

/* Wait up to 2 s for n requests in all. */
static unsigned nreq_reaches(unsigned n)
{
	for (int i = 0; i < 200 && nreq() < n; i++)
		usleep(10000);
	return nreq();
}

/* The chunks of 3 row groups of 3 columns. */
static const struct spec three_by_three[] = {
	{ .data = 4, .dict = -1, .size = 2 * MiB - 4 },
	{ .data = 2 * MiB, .dict = -1, .size = 3 * MiB },
	{ .data = 5 * MiB, .dict = -1, .size = 2 * MiB },
	{ .data = 7 * MiB, .dict = -1, .size = 2 * MiB },
	{ .data = 9 * MiB, .dict = -1, .size = 3 * MiB },
	{ .data = 12 * MiB, .dict = -1, .size = 2 * MiB },
	{ .data = 14 * MiB, .dict = -1, .size = 2 * MiB },
	{ .data = 16 * MiB, .dict = -1, .size = 3 * MiB },
	{ .data = 19 * MiB, .dict = -1, .size = 2 * MiB },
};

/*
 * A scan that read columns 0 and 2 of row group 0 begins column 0 of
 * row group 1: column 2 of that group is fetched at once beside it, and
 * costs nothing more when read.  Column 1, never read, is never fetched.
 */
static void a_scans_columns_arrive_together(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const size_t per[] = { 3, 3, 3 };
	uint64_t size = put_parquet_groups("t/scan.parquet", 47, three_by_three,
					   9, per, 3);
	struct bobj *o = open_with_tail("t/scan.parquet", size);
	reset();
	struct rfile *f = rfile_open(rp, o);

	/* row group 0: each column's chunk, one request each */
	CHECK(chunk_read_ok(f, 47, 0, 2 * MiB));
	CHECK(chunk_read_ok(f, 47, 5 * MiB, 7 * MiB));
	CHECK_INT(nreq(), 2);

	/* row group 1: its column 2 comes with its column 0 */
	reset();
	CHECK(read_ok(f, 47, 7 * MiB, 256));
	CHECK_INT(nreq_reaches(2), 2);
	struct fault_range *r = reqs();
	bool c0 = false, c2 = false;
	for (unsigned i = 0; i < 2; i++) {
		c0 |= r[i].off == 7 * MiB && r[i].len == 2 * MiB;
		c2 |= r[i].off == 12 * MiB && r[i].len == 2 * MiB;
	}
	CHECK(c0 && c2);
	CHECK(chunk_read_ok(f, 47, 7 * MiB, 9 * MiB));
	CHECK(chunk_read_ok(f, 47, 12 * MiB, 14 * MiB));
	CHECK_INT(nreq(), 2);

	/* row group 2, begun at column 2 this time: column 0, before it in
	 * the file, comes with it, and neither reaches column 1 */
	reset();
	CHECK(read_ok(f, 47, 19 * MiB, 256));
	CHECK_INT(nreq_reaches(2), 2);
	CHECK(chunk_read_ok(f, 47, 14 * MiB, 16 * MiB));
	CHECK(chunk_read_ok(f, 47, 19 * MiB, 21 * MiB));
	usleep(50000);
	CHECK_INT(nreq(), 2);
	r = reqs();
	for (unsigned i = 0; i < nreq(); i++)
		CHECK(r[i].off + r[i].len <= 16 * MiB || r[i].off >= 19 * MiB);
	rfile_close(f);
	readpath_destroy(rp);
}

/* The requests a new handle of name sends for a first read at off (a
 * page header), once what it plans beside it had 50 ms to start. */
static unsigned first_read_requests(struct readpath *rp, const char *name,
				    uint64_t seed, uint64_t size, uint64_t off)
{
	struct rfile *f = rfile_open(rp, open_with_tail(name, size));
	reset();
	CHECK(read_ok(f, seed, off, 256));
	usleep(50000);
	unsigned n = nreq();
	rfile_close(f);
	return n;
}

/*
 * A handle of the next file of a table begins its first row group with
 * the columns the last scan of that table read: they come together from
 * the first group on, and the guess ends there.  Partition folders (k=v)
 * are of their table; a file of another table, or a scan that begins at
 * another column, guesses nothing.  A scan that read a row group through
 * replaces an earlier one's columns; a handle closed after fewer does not.
 */
static void a_tables_scan_carries_to_its_next_file(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const size_t per[] = { 3, 3 };     /* the first 2 groups of 3 */
	const char *names[] = { "tb/a.parquet", "tb/date=2026-01-02/b.parquet",
				"other/c.parquet", "tb/d.parquet",
				"tb/e.parquet", "tb/f.parquet" };
	uint64_t size = 0;
	for (unsigned i = 0; i < 6; i++)
		size = put_parquet_groups(names[i], 61 + i, three_by_three,
					  6, per, 2);

	/* a scan of columns 0 and 2 of a's group 0, into group 1: the
	 * table knows them while a is still open.  (Each part waits for
	 * the fetches it planned, so that none lands in the next one's
	 * count.) */
	struct rfile *a = rfile_open(rp, open_with_tail(names[0], size));
	reset();
	CHECK(chunk_read_ok(a, 61, 0, 2 * MiB));
	CHECK(chunk_read_ok(a, 61, 5 * MiB, 7 * MiB));
	CHECK(read_ok(a, 61, 7 * MiB, 256));
	CHECK_INT(nreq_reaches(4), 4);      /* and column 2 of group 1 */

	/* b, in a partition of the same table: column 2 comes with 0 */
	struct rfile *f = rfile_open(rp, open_with_tail(names[1], size));
	reset();
	CHECK(read_ok(f, 62, 0, 256));
	CHECK_INT(nreq_reaches(2), 2);
	CHECK(chunk_read_ok(f, 62, 0, 2 * MiB));
	CHECK(chunk_read_ok(f, 62, 5 * MiB, 7 * MiB));
	CHECK_INT(nreq(), 2);
	rfile_close(f);
	rfile_close(a);

	/* another table, and this table begun at column 1: nothing known */
	CHECK_INT(first_read_requests(rp, names[2], 63, size, 0), 1);
	CHECK_INT(first_read_requests(rp, names[3], 64, size, 2 * MiB), 1);

	/* a handle that reads column 0 of group 0 alone and closes leaves
	 * the table's columns as they were: the next one guesses 2 too */
	f = rfile_open(rp, open_with_tail(names[3], size));
	reset();
	CHECK(chunk_read_ok(f, 64, 0, 2 * MiB));
	CHECK_INT(nreq_reaches(2), 2);
	rfile_close(f);

	/* a scan of column 0 alone: column 2 is guessed in its first row
	 * group only, and it replaces the scan of 0 and 2 */
	f = rfile_open(rp, open_with_tail(names[4], size));
	reset();
	CHECK(chunk_read_ok(f, 65, 0, 2 * MiB));
	CHECK_INT(nreq_reaches(2), 2);
	reset();
	CHECK(chunk_read_ok(f, 65, 7 * MiB, 9 * MiB));
	usleep(50000);
	CHECK_INT(nreq(), 1);
	rfile_close(f);
	CHECK_INT(first_read_requests(rp, names[5], 66, size, 0), 1);

	/* a file of one row group read by columns 0 and 1: its close tells */
	f = rfile_open(rp, open_with_tail(names[0], size));
	CHECK(chunk_read_ok(f, 61, 0, 2 * MiB));
	CHECK(chunk_read_ok(f, 61, 2 * MiB, 5 * MiB));
	rfile_close(f);
	f = rfile_open(rp, open_with_tail(names[5], size));
	reset();
	CHECK(read_ok(f, 66, 0, 256));
	CHECK_INT(nreq_reaches(2), 2);
	rfile_close(f);
	readpath_destroy(rp);
}

/*
 * With the kernel's read-ahead known (1 MiB), a chunk longer than it
 * comes with the two windows the kernel reads past its end, in the same
 * request; a shorter one comes alone.
 */
static void kernel_read_ahead_past_a_chunk_comes_with_it(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	readpath_set_kernel_read_ahead(rp, MiB);
	const struct spec chunks[] = {
		{ .data = 4, .dict = -1, .size = 3 * MiB - 4 },
		{ .data = 5 * MiB, .dict = -1, .size = MiB / 2 },
		{ .data = 6 * MiB, .dict = -1, .size = 10 * MiB },
	};
	uint64_t size = put_parquet("t/kra.parquet", 53, chunks, 3);
	struct bobj *o = open_with_tail("t/kra.parquet", size);
	reset();
	struct rfile *f = rfile_open(rp, o);
	CHECK(read_ok(f, 53, 0, 256));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].off, 0);
	CHECK_INT(reqs()[0].len, 5 * MiB);
	for (uint64_t at = 256; at < 5 * MiB; at += 128 * KiB)
		CHECK(read_ok(f, 53, at, (size_t)min_u64(128 * KiB,
							 5 * MiB - at)));
	CHECK_INT(nreq(), 1);
	CHECK(read_ok(f, 53, 5 * MiB, 256));
	CHECK_INT(nreq(), 2);
	CHECK_INT(reqs()[1].off, 5 * MiB);
	CHECK_INT(reqs()[1].len, MiB);
	rfile_close(f);
	readpath_destroy(rp);
}

/*
 * A small read that goes on from a chunk read through, from the page that
 * holds that chunk's end and the next one's start, is the rest of the
 * first (a piece of the kernel's read-ahead), not the next chunk's page
 * header: the next column is not fetched whole.  A small read from a
 * chunk's first byte still starts it.
 */
static void a_piece_past_a_chunks_end_starts_nothing(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const struct spec chunks[] = {
		{ .data = 4, .dict = -1, .size = MiB + 996 },
		{ .data = MiB + 1000, .dict = -1, .size = 8 * MiB },
		{ .data = 9 * MiB + 1000, .dict = -1, .size = 3 * MiB - 1000 },
		{ .data = 12 * MiB, .dict = -1, .size = 3 * MiB },
	};
	uint64_t size = put_parquet("t/piece.parquet", 61, chunks, 4);
	struct bobj *o = open_with_tail("t/piece.parquet", size);
	reset();
	struct rfile *f = rfile_open(rp, o);
	CHECK(read_ok(f, 61, 0, 256));                /* chunk 0, whole */
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].len, 2 * MiB);
	for (uint64_t at = 256; at < MiB; at += 128 * KiB)
		CHECK(read_ok(f, 61, at, (size_t)min_u64(128 * KiB, MiB - at)));
	/* the page of chunk 0's end, which chunk 1 begins in: held */
	CHECK(read_ok(f, 61, MiB, 4096));
	usleep(50000);                  /* read-ahead, if any, is sent */
	CHECK_INT(nreq(), 1);
	/* chunks 1 and 2 read through, then a small read from chunk 3's
	 * first byte, going on from the last one: its page header, the
	 * chunk whole at once */
	for (uint64_t at = MiB + 4096; at < 12 * MiB; at += 512 * KiB)
		CHECK(read_ok(f, 61, at, (size_t)min_u64(512 * KiB,
							 12 * MiB - at)));
	usleep(50000);
	reset();
	CHECK(read_ok(f, 61, 12 * MiB, 256));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].off, 12 * MiB);
	CHECK_INT(reqs()[0].len, 3 * MiB);
	rfile_close(f);
	readpath_destroy(rp);
}

/*
 * A handle that read all three columns of row group 0 (3 MiB each, so
 * that it lets each go once past it) begins group 1: the group's other
 * two columns come with the first, once; the chunks it begins next are
 * not fetched again.
 */
static void a_row_group_is_planned_once(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const struct spec chunks[] = {
		{ .data = 4, .dict = -1, .size = 3 * MiB - 4 },
		{ .data = 3 * MiB, .dict = -1, .size = 3 * MiB },
		{ .data = 6 * MiB, .dict = -1, .size = 3 * MiB },
		{ .data = 9 * MiB, .dict = -1, .size = 3 * MiB },
		{ .data = 12 * MiB, .dict = -1, .size = 3 * MiB },
		{ .data = 15 * MiB, .dict = -1, .size = 3 * MiB },
	};
	const size_t per[] = { 3, 3 };
	uint64_t size = put_parquet_groups("t/once.parquet", 59, chunks, 6,
					   per, 2);
	struct bobj *o = open_with_tail("t/once.parquet", size);
	struct rfile *f = rfile_open(rp, o);
	CHECK(chunk_read_ok(f, 59, 0, 3 * MiB));
	CHECK(chunk_read_ok(f, 59, 3 * MiB, 6 * MiB));
	CHECK(chunk_read_ok(f, 59, 6 * MiB, 9 * MiB));
	reset();
	CHECK(chunk_read_ok(f, 59, 9 * MiB, 12 * MiB));
	CHECK(chunk_read_ok(f, 59, 12 * MiB, 15 * MiB));
	CHECK(chunk_read_ok(f, 59, 15 * MiB, 18 * MiB));
	usleep(50000);                   /* any fetch still in flight */
	CHECK_INT(nreq(), 3);
	rfile_close(f);
	readpath_destroy(rp);
}

/* Give o the last n bytes of its version, as an open_tail would. */
static struct bobj *with_tail(struct bobj *o, uint64_t gen, size_t n)
{
	o->tail = malloc(n);
	o->tail_len = n;
	for (size_t i = 0; i < n; i++)
		((unsigned char *)o->tail)[i] =
			byte_at(gen, o->info.size - n + i);
	return o;
}

static void tail_read_at_open_answers_reads(void)
{
	struct bcache *bc = cache_new("bctail", 256 * MiB);
	struct readpath *rp = rp_new(bc, 512 * MiB, 64 * MiB);
	struct readpath_stats s;

	/* a footer inside the tail: no request */
	uint64_t size = 50 * MiB + 777;
	reset();
	struct rfile *f = rfile_open(rp, with_tail(put_open("t.parquet", size,
							   21), 21, MiB));
	CHECK(rfile_bobj(f)->tail == NULL);       /* the rfile took it */
	CHECK(read_ok(f, 21, size - 8, 8));
	CHECK(read_ok(f, 21, size - 48 * KiB, 48 * KiB));
	CHECK(read_ok(f, 21, size - MiB, MiB));
	CHECK_INT(nreq(), 0);
	CHECK(read_ok(f, 21, size - MiB - 10, 20));   /* across its start */
	CHECK(nreq() > 0);
	rfile_close(f);

	/* a small file whole: its blocks are kept and go to the cache */
	size = 1536 * KiB;
	reset();
	f = rfile_open(rp, with_tail(put_open("small.json", size, 22), 22,
				     (size_t)size));
	uint64_t gen = rfile_bobj(f)->info.generation;
	CHECK(read_ok(f, 22, 0, (size_t)size));
	CHECK(read_ok(f, 22, 1000 * KiB, 100 * KiB));
	CHECK_INT(nreq(), 0);
	rfile_close(f);
	usleep(50000);                        /* the store to the cache */
	CHECK_INT(held(bc, "small.json", gen, 2), 2);
	struct obj_info known = rfile_bobj(f = rfile_open(rp,
		store_open("small.json")))->info;
	CHECK_INT(readpath_open_tail(rp, "small.json", &known), 0);
	CHECK(read_ok(f, 22, 0, (size_t)size));  /* from the cache */
	CHECK_INT(nreq(), 0);
	rfile_close(f);
	known.generation++;                      /* another version */
	CHECK_INT(readpath_open_tail(rp, "small.json", &known),
		  READPATH_SMALL_WHOLE);
	known.size = 0;                          /* nothing known */
	CHECK_INT(readpath_open_tail(rp, "small.json", &known), 0);
	CHECK_INT(readpath_open_tail(rp, "x/Part-1.PARQUET", &known),
		  READPATH_TAIL);
	known.size = 3 * MiB;
	CHECK_INT(readpath_open_tail(rp, "x/part-1.csv", &known), 0);

	/* whole blocks at the end become an extent, the rest stays a tail */
	size = 5 * MiB + 100;
	reset();
	f = rfile_open(rp, with_tail(put_open("mixed.orc", size, 23), 23, MiB));
	CHECK(read_ok(f, 23, 5 * MiB, 100));
	CHECK(read_ok(f, 23, size - MiB, MiB));
	CHECK_INT(nreq(), 0);
	rfile_close(f);

	readpath_destroy(rp);
	bcache_close(bc);

	/* a tail is paid for from the budget while its file is open */
	rp = rp_new(NULL, 512 * MiB, 0);
	f = rfile_open(rp, with_tail(put_open("paid.parquet", 10 * MiB, 24),
				     24, 512 * KiB));
	readpath_get_stats(rp, &s);
	CHECK_INT(s.mem_used, 512 * KiB);
	CHECK(read_ok(f, 24, 10 * MiB - 4, 4));
	rfile_close(f);
	readpath_get_stats(rp, &s);
	CHECK_INT(s.mem_used, 0);
	readpath_destroy(rp);
}

/* The open of a footed file fetches as much of its end as its table's
 * handles read, the most of any. */
static void a_tables_footer_sizes_its_next_open(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	struct obj_info known = { .size = 50 * MiB };
	uint64_t size = 50 * MiB + 777;

	reset();
	CHECK_INT(readpath_open_tail(rp, "tbl/p=2/b.parquet", &known),
		  READPATH_TAIL);
	struct rfile *f = rfile_open(rp, with_tail(put_open(
		"tbl/p=1/a.parquet", size, 31), 31, MiB));
	CHECK(read_ok(f, 31, size - 8, 8));
	CHECK(read_ok(f, 31, size - 48 * KiB, 48 * KiB - 8));
	CHECK(read_ok(f, 31, 0, 4096));            /* away from its end */
	CHECK_INT(readpath_open_tail(rp, "tbl/p=2/b.parquet", &known),
		  READPATH_TAIL);                    /* told at its close */
	rfile_close(f);
	/* 48 KiB and a quarter more, in 64 KiB; of its table only */
	CHECK_INT(readpath_open_tail(rp, "tbl/p=2/b.parquet", &known),
		  64 * KiB);
	CHECK_INT(readpath_open_tail(rp, "tbl/b.orc", &known), 64 * KiB);
	CHECK_INT(readpath_open_tail(rp, "other/b.parquet", &known),
		  READPATH_TAIL);
	CHECK_INT(readpath_open_tail(rp, "tbl/b.csv", &known), 0);
	/* a file of up to 8 tails reads its tail whole */
	struct obj_info eight = { .size = 8 * READPATH_TAIL };
	CHECK_INT(readpath_open_tail(rp, "tbl/s.parquet", &eight),
		  READPATH_TAIL);
	eight.size++;
	CHECK_INT(readpath_open_tail(rp, "tbl/s.parquet", &eight), 64 * KiB);

	/* a chunk read in the tail counts as the footer does, wherever the
	 * handle read before; a handle that read less changes nothing */
	f = rfile_open(rp, with_tail(put_open("tbl/c.parquet", size, 32), 32,
				     64 * KiB));
	CHECK(read_ok(f, 32, MiB, 4096));
	CHECK(read_ok(f, 32, size - 100 * KiB, 4096));
	rfile_close(f);
	CHECK_INT(readpath_open_tail(rp, "tbl/x.parquet", &known), 128 * KiB);
	f = rfile_open(rp, with_tail(store_open("tbl/c.parquet"), 32,
				     64 * KiB));
	CHECK(read_ok(f, 32, size - 8, 8));
	rfile_close(f);
	CHECK_INT(readpath_open_tail(rp, "tbl/x.parquet", &known), 128 * KiB);

	/* a footer past the tail costs a request, and sizes the next */
	reset();
	f = rfile_open(rp, with_tail(put_open("tbl/d.parquet", size, 33), 33,
				     64 * KiB));
	CHECK(read_ok(f, 33, size - 8, 8));
	CHECK_INT(nreq(), 0);
	CHECK(read_ok(f, 33, size - 300 * KiB, 300 * KiB - 8));
	CHECK(nreq() > 0);
	rfile_close(f);
	CHECK_INT(readpath_open_tail(rp, "tbl/x.parquet", &known), 384 * KiB);
	f = rfile_open(rp, with_tail(store_open("tbl/d.parquet"), 33, MiB));
	CHECK(read_ok(f, 33, size - MiB, 4096));
	rfile_close(f);
	CHECK_INT(readpath_open_tail(rp, "tbl/x.parquet", &known),
		  READPATH_TAIL);                    /* never more */
	readpath_destroy(rp);

	/* With a block cache: a tail of part of the last block offers it,
	 * so the next open reads the end whole for the cache to keep, and
	 * the one after reads none. */
	struct bcache *bc = cache_new("bcfooter", 64 * MiB);
	struct readpath_conf c = { .cache = bc, .memory_limit = 512 * MiB,
				   .read_ahead_max = 64 * MiB, .fetchers = 8,
				   .fetch_timeout_ms = 10000 };
	rp = readpath_create(&c);
	size = 50 * MiB - 777;
	f = rfile_open(rp, with_tail(put_open("tbl/e.parquet", size, 34), 34,
				     64 * KiB));
	known = rfile_bobj(f)->info;
	CHECK(read_ok(f, 34, size - 8, 8));
	rfile_close(f);
	CHECK_INT(readpath_open_tail(rp, "tbl/e.parquet", &known),
		  READPATH_TAIL);
	struct obj_info other = rfile_bobj(f = rfile_open(rp, with_tail(
		put_open("tbl/f.parquet", size, 35), 35, 64 * KiB)))->info;
	rfile_close(f);
	/* another version of it, never offered: the table's footer */
	other.generation += 1000;
	CHECK_INT(readpath_open_tail(rp, "tbl/f.parquet", &other), 64 * KiB);
	f = rfile_open(rp, with_tail(store_open("tbl/e.parquet"), 34, MiB));
	CHECK(read_ok(f, 34, size - 8, 8));
	rfile_close(f);
	usleep(50000);                        /* the store to the cache */
	CHECK_INT(held(bc, "tbl/e.parquet", known.generation, 50), 1);
	CHECK_INT(readpath_open_tail(rp, "tbl/e.parquet", &known), 0);

	/* the last block's other bytes read through the same handle are
	 * no second touch: the file's first reader stores nothing */
	f = rfile_open(rp, with_tail(put_open("tbl/g.parquet", size, 36), 36,
				     64 * KiB));
	known = rfile_bobj(f)->info;
	CHECK(read_ok(f, 36, size - 8, 8));
	CHECK(read_ok(f, 36, 49 * MiB + 4096, 4096));
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, "tbl/g.parquet", known.generation, 50), 0);
	CHECK_INT(readpath_open_tail(rp, "tbl/g.parquet", &known),
		  READPATH_TAIL);                    /* but it was offered */
	readpath_destroy(rp);
	bcache_close(bc);
}

struct late_read {
	struct rfile *f;
	uint64_t seed, off;
	size_t len;
	bool ok;
};

static void *late_reader(void *arg)
{
	struct late_read *a = arg;
	a->ok = read_ok(a->f, a->seed, a->off, a->len);
	return NULL;
}

/* A random read within a block two extents hold (a Parquet read's head
 * fetched after its tail) is viewed as a copy of both, and counts as one
 * read, not two in order: it starts no read-ahead. */
static void a_view_of_two_extents_is_one_read(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	const struct spec chunk[] = { { .data = 4, .dict = -1,
					.size = 19 * MiB } };
	const char *name = "t/refused.parquet";
	uint64_t size = put_parquet(name, 43, chunk, 1);

	reset();
	struct rfile *f = rfile_open(rp, open_with_tail(name, size));
	CHECK(read_ok(f, 43, 5 * MiB + 300 * KiB, 4096));
	CHECK(read_ok(f, 43, 15 * MiB, 4096));
	CHECK(read_ok(f, 43, 5 * MiB + 100 * KiB, 200 * KiB));
	CHECK(read_ok(f, 43, 12 * MiB, 4096));           /* each a jump */
	usleep(100000);
	unsigned before = nreq();
	bool copied = false;
	CHECK(view_ok(f, 43, 5 * MiB + 200 * KiB, 200 * KiB, &copied));
	CHECK(copied);                   /* two extents hold the block */
	usleep(100000);                  /* read-ahead, if any, is sent */
	CHECK_INT(nreq(), before);
	rfile_close(f);
	struct readpath_stats st;
	readpath_get_stats(rp, &st);
	CHECK_INT(st.ahead_fetches, 0);
	readpath_destroy(rp);
}

static void a_reads_head_is_left_out_until_the_cache_keeps_it(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 0);
	const struct spec chunk[] = { { .data = 4, .dict = -1,
					.size = 19 * MiB } };
	const char *name = "t/head.parquet";
	uint64_t size = put_parquet(name, 41, chunk, 1);

	/* no block cache: in a Parquet file whose chunks are known, a read
	 * from a block's middle fetches from its page to the block's end */
	reset();
	struct rfile *f = rfile_open(rp, open_with_tail(name, size));
	reset();
	CHECK(read_ok(f, 41, 5 * MiB + 300 * KiB + 77, 4096));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].off, 5 * MiB + 300 * KiB);
	CHECK_INT(reqs()[0].len, MiB - 300 * KiB);
	CHECK(read_ok(f, 41, 5 * MiB + 600 * KiB, 8192));
	CHECK_INT(nreq(), 1);                     /* held */
	/* its head, read later, is fetched then, up to where it is held */
	CHECK(read_ok(f, 41, 5 * MiB + 100 * KiB, 300 * KiB));
	CHECK_INT(nreq(), 2);
	CHECK_INT(reqs()[1].off, 5 * MiB + 100 * KiB);
	CHECK_INT(reqs()[1].len, 200 * KiB);
	/* a view across the two is a copy, of what they hold */
	struct deadline dl = deadline_in_ms(5000);
	struct rview v;
	bool copied = false;
	CHECK(view_ok(f, 41, 5 * MiB + 200 * KiB, 200 * KiB, &copied));
	CHECK(copied);
	CHECK(read_ok(f, 41, 5 * MiB + 200 * KiB, 200 * KiB));
	CHECK_INT(nreq(), 2);
	/* a read into a block held from its middle on fetches up to
	 * there: one request, no byte twice */
	CHECK(read_ok(f, 41, 7 * MiB + 512 * KiB, 4096));
	CHECK(read_ok(f, 41, 6 * MiB + 900 * KiB, 800 * KiB));
	CHECK_INT(nreq(), 4);
	CHECK_INT(reqs()[3].off, 6 * MiB + 900 * KiB);
	CHECK_INT(reqs()[3].len, MiB + 512 * KiB - 900 * KiB);
	CHECK_INT(rfile_view(f, 7 * MiB + 4096, 4096, &dl, &v), 4096);
	CHECK(v.data && (unsigned char)v.data[0] == byte_at(41, 7 * MiB + 4096));
	rfile_view_release(f, &v);
	CHECK_INT(nreq(), 4);
	rfile_close(f);

	/* without its chunks known, blocks whole */
	reset();
	f = rfile_open(rp, store_open(name));
	CHECK(read_ok(f, 41, 5 * MiB + 300 * KiB + 77, 4096));
	CHECK_INT(reqs()[0].off, 5 * MiB);
	CHECK_INT(reqs()[0].len, MiB);
	rfile_close(f);
	readpath_destroy(rp);

	/* With a block cache: a block's first touch leaves its head out,
	 * its second fetches it whole for the cache. */
	struct bcache *bc = cache_new("bchead", 64 * MiB);
	struct readpath_conf c = { .cache = bc, .memory_limit = 512 * MiB,
				   .fetchers = 8, .fetch_timeout_ms = 10000 };
	rp = readpath_create(&c);
	size = put_parquet(name, 42, chunk, 1);
	f = rfile_open(rp, open_with_tail(name, size));
	reset();
	uint64_t gen = rfile_bobj(f)->info.generation;
	CHECK(read_ok(f, 42, 5 * MiB + 300 * KiB, 4096));
	CHECK_INT(reqs()[0].len, MiB - 300 * KiB);
	rfile_close(f);
	usleep(50000);                        /* the store to the cache */
	CHECK_INT(held(bc, name, gen, 19), 0);
	f = rfile_open(rp, open_with_tail(name, size));
	reset();
	CHECK(read_ok(f, 42, 5 * MiB + 600 * KiB, 4096));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].off, 5 * MiB);
	CHECK_INT(reqs()[0].len, MiB);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, name, gen, 19), 1);

	/* a block offered by another reader while its head was left out
	 * is not kept: the cache holds whole blocks only */
	f = rfile_open(rp, open_with_tail(name, size));
	reset();
	delay_reads(200000);
	struct late_read a = { f, 42, 9 * MiB + 300 * KiB, 4096, false };
	pthread_t th;
	pthread_create(&th, NULL, late_reader, &a);
	usleep(100000);                       /* planned without its head */
	char version[32];
	snprintf(version, sizeof(version), "g%llu", (unsigned long long)gen);
	struct bcache_key k = { name, version, 9 };
	bcache_admit(bc, &k);
	pthread_join(th, NULL);
	CHECK(a.ok);
	CHECK_INT(reqs()[0].off, 9 * MiB + 300 * KiB);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, name, gen, 19), 1);
	reset();
	f = rfile_open(rp, store_open(name));
	CHECK(read_ok(f, 42, 9 * MiB, MiB));     /* whole, and right */
	rfile_close(f);

	/* nor is a block fetched up to where another extent holds it */
	f = rfile_open(rp, open_with_tail(name, size));
	reset();
	CHECK(read_ok(f, 42, 11 * MiB + 512 * KiB, 4096));
	usleep(50000);                        /* offered once */
	CHECK(read_ok(f, 42, 10 * MiB + 900 * KiB, 800 * KiB));
	CHECK_INT(nreq(), 2);
	CHECK_INT(reqs()[1].len, MiB + 512 * KiB - 900 * KiB);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, name, gen, 19), 2);   /* blocks 5 and 9 */
	f = rfile_open(rp, store_open(name));
	CHECK(read_ok(f, 42, 11 * MiB, MiB));
	rfile_close(f);
	readpath_destroy(rp);
	bcache_close(bc);
}

static void sequential_grows_parallel_window(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 96 * MiB + 12345;
	reset();
	delay_reads(2000);
	struct rfile *f = rfile_open(rp, put_open("seq", size, 7));
	bool all = true;
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		all &= read_ok(f, 7, off, (size_t)(size - off < 128 * KiB ?
						   size - off : 128 * KiB));
	CHECK(all);
	unsigned n = nreq();
	/* 778 reads of 128 KiB; requests of up to 8 MiB, several at once */
	CHECK(n < 60);
	CHECK(max_inflight() >= 2);
	unsigned big = 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		big += reqs()[i].len >= 4 * MiB;
		total += reqs()[i].len;
	}
	CHECK(big >= 8);
	CHECK(total <= size + 8 * MiB);    /* nothing fetched twice, ~ */
	rfile_close(f);
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	CHECK(s.ahead_fetches > 0);
	CHECK(s.mem_peak <= 512 * MiB);
	readpath_destroy(rp);
}

static void random_reads_fetch_what_they_need(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 200 * MiB;
	reset();
	struct rfile *f = rfile_open(rp, put_open("rnd", size, 3));
	unsigned seed = 42;
	bool all = true;
	for (int i = 0; i < 40; i++) {
		uint64_t off = ((uint64_t)rand_r(&seed) * 4096) % (size - MiB - 8 * MiB)
			       + 8 * MiB;     /* away from the tail */
		all &= read_ok(f, 3, off, 64 * KiB);
	}
	CHECK(all);
	unsigned n = nreq();
	if (n > 40)
		fprintf(stderr, "40 random reads: %u requests\n", n);
	CHECK(n <= 40);
	for (unsigned i = 0; i < n; i++)
		CHECK(reqs()[i].len <= 2 * MiB);      /* no read-ahead */
	rfile_close(f);
	readpath_destroy(rp);
}

static void in_order_then_jump_resets_the_window(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 300 * MiB;
	reset();
	struct rfile *f = rfile_open(rp, put_open("jump", size, 5));
	for (uint64_t off = 0; off < 16 * MiB; off += 128 * KiB)
		CHECK(read_ok(f, 5, off, 128 * KiB));
	usleep(100000);                  /* read-ahead lands */
	unsigned before = nreq();
	CHECK(read_ok(f, 5, 200 * MiB, 128 * KiB));
	CHECK(read_ok(f, 5, 100 * MiB, 128 * KiB));
	usleep(100000);
	/* a jump costs its own block, and starts no window */
	CHECK_INT(nreq() - before, 2);
	rfile_close(f);
	readpath_destroy(rp);
}

static void footer_reads_take_one_request(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 50 * MiB + 777;
	reset();
	struct rfile *f = rfile_open(rp, put_open("part.parquet", size, 9));
	CHECK(read_ok(f, 9, size - 8, 8));                /* magic + length */
	CHECK(read_ok(f, 9, size - 48 * KiB, 48 * KiB));  /* the footer */
	CHECK(read_ok(f, 9, size - 900 * KiB, 4 * KiB));
	CHECK_INT(nreq(), 1);
	CHECK(reqs()[0].off + reqs()[0].len == size);
	CHECK(reqs()[0].off <= size - MiB);
	/* the tail stays while the file is open, other reads come and go */
	for (int i = 0; i < 12; i++)
		CHECK(read_ok(f, 9, (uint64_t)i * 3 * MiB, 1024));
	unsigned n = nreq();
	CHECK(read_ok(f, 9, size - 48 * KiB, 48 * KiB));
	CHECK_INT(nreq(), n);
	rfile_close(f);

	reset();                                          /* a small file */
	f = rfile_open(rp, put_open("small", 1536 * KiB, 9));
	CHECK(read_ok(f, 9, 4096, 4096));
	CHECK(read_ok(f, 9, 1400 * KiB, 100 * KiB));
	CHECK_INT(nreq(), 1);
	CHECK_INT(reqs()[0].len, 1536 * KiB);
	rfile_close(f);
	readpath_destroy(rp);
}

struct reader_arg { struct readpath *rp; uint64_t gen; bool ok; };

static void *seq_reader(void *arg)
{
	struct reader_arg *a = arg;
	uint64_t size = 64 * MiB;
	char name[32];
	snprintf(name, sizeof(name), "par%llu", (unsigned long long)a->gen);
	struct rfile *f = rfile_open(a->rp, put_open(name, size, a->gen));
	a->ok = true;
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		a->ok &= read_ok(f, a->gen, off, 128 * KiB);
	rfile_close(f);
	return NULL;
}

static void memory_budget_holds(void)
{
	uint64_t limit = 80 * MiB;        /* 32 MiB for read-ahead */
	struct readpath *rp = rp_new(NULL, limit, 64 * MiB);
	pthread_t th[6];
	struct reader_arg a[6];
	reset();
	delay_reads(3000);
	for (int i = 0; i < 6; i++) {
		a[i] = (struct reader_arg){ rp, 100 + (uint64_t)i, false };
		pthread_create(&th[i], NULL, seq_reader, &a[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		CHECK(a[i].ok);
	}
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	/* read-ahead stays inside the budget; reads themselves may add
	 * what they fetch (one extent each) */
	CHECK(s.mem_peak <= limit + 6 * 2 * MiB);
	CHECK(s.ahead_fetches > 0);
	readpath_destroy(rp);
}

/*
 * Many files open at once, read at random (plain reads, views, footers,
 * small files fetched whole) by a few threads under a small budget.
 * Every extent is charged, and kept ones are dropped oldest first across
 * files, so what is held stays within the limit plus one extent for each
 * read in progress (an overdraft that lets a read go on when everything
 * charged is in use).  Here an extent is at most 2 blocks: a read of up
 * to 256 KiB crosses at most one block boundary, a small file is 1.5 MiB
 * and a tail is its last block and the one before.
 */
#define RND_THREADS 4
#define RND_FILES 12                   /* per thread: 48 open files */
#define RND_READS 60                   /* per thread */
#define RND_LIMIT (8 * MiB)
#define RND_EXTENT_MAX (2 * MiB)

struct rnd_arg { struct readpath *rp; unsigned id; bool ok; };

/* One read of [off, off+len) through a view (when one block holds it)
 * or rfile_read, checked against the pattern. */
static bool view_or_read_ok(struct rfile *f, uint64_t seed, uint64_t off,
			    size_t len, bool view)
{
	if (!view || off / MiB != (off + len - 1) / MiB)
		return read_ok(f, seed, off, len);
	struct rview v;
	struct deadline dl = deadline_in_ms(10000);
	ssize_t n = rfile_view(f, off, len, &dl, &v);
	bool ok = n == (ssize_t)len;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)v.data[i] == byte_at(seed, off + i);
	if (!ok)
		fprintf(stderr, "view at %llu+%zu: n=%zd\n",
			(unsigned long long)off, len, n);
	rfile_view_release(f, &v);
	return ok;
}

/* A worker thread: no CHECK here (check.h is not thread safe). */
static void *random_reader(void *arg)
{
	struct rnd_arg *a = arg;
	struct rfile *f[RND_FILES];
	uint64_t size[RND_FILES], seed[RND_FILES];
	unsigned r = a->id * 7919 + 1;

	for (unsigned i = 0; i < RND_FILES; i++) {
		char name[32];
		seed[i] = 1000 + a->id * RND_FILES + i;
		size[i] = i % 4 == 0 ? 1536 * KiB : 3 * MiB + i * 4099;
		snprintf(name, sizeof(name), "many%llu",
			 (unsigned long long)seed[i]);
		f[i] = rfile_open(a->rp, put_open(name, size[i], seed[i]));
	}
	a->ok = true;
	for (int n = 0; n < RND_READS && a->ok; n++) {
		unsigned i = (unsigned)rand_r(&r) % RND_FILES;
		size_t len = (size_t)(4 * KiB) << (rand_r(&r) % 7);
		uint64_t off = (uint64_t)rand_r(&r) * 512 % (size[i] - len);
		if (rand_r(&r) % 8 == 0)
			off = size[i] - len;             /* a footer */
		a->ok = view_or_read_ok(f[i], seed[i], off, len,
					rand_r(&r) % 3 == 0);
	}
	for (unsigned i = 0; i < RND_FILES; i++)
		rfile_close(f[i]);
	return NULL;
}

static void many_files_at_random_stay_in_budget(void)
{
	struct readpath *rp = rp_new(NULL, RND_LIMIT, 64 * MiB);
	pthread_t th[RND_THREADS];
	struct rnd_arg a[RND_THREADS];
	reset();
	for (unsigned i = 0; i < RND_THREADS; i++) {
		a[i] = (struct rnd_arg){ rp, i, false };
		pthread_create(&th[i], NULL, random_reader, &a[i]);
	}
	for (unsigned i = 0; i < RND_THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(a[i].ok);
	}
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	if (s.mem_peak > RND_LIMIT + RND_THREADS * RND_EXTENT_MAX)
		fprintf(stderr, "%u files at random: peak %llu KiB, limit %llu KiB\n",
			RND_THREADS * RND_FILES,
			(unsigned long long)(s.mem_peak / KiB),
			(unsigned long long)(RND_LIMIT / KiB));
	CHECK(s.mem_peak <= RND_LIMIT + RND_THREADS * RND_EXTENT_MAX);
	CHECK(s.mem_used <= RND_LIMIT);       /* all closed: back under */
	CHECK_INT(s.reads, RND_THREADS * RND_READS);
	readpath_destroy(rp);
}

/*
 * Views (FUSE replies in flight) hold more than the whole budget: a read
 * still gets its extent (the overdraft), and once they are let go the
 * budget is back under its limit.
 */
static void a_read_goes_on_when_the_budget_is_held(void)
{
	uint64_t limit = 4 * MiB;
	struct readpath *rp = rp_new(NULL, limit, 64 * MiB);
	struct rfile *f[8];
	struct rview v[8];
	struct deadline dl = deadline_in_ms(10000);
	reset();
	for (int i = 0; i < 8; i++) {
		char name[32];
		snprintf(name, sizeof(name), "held%d", i);
		f[i] = rfile_open(rp, put_open(name, 8 * MiB, 200 + (uint64_t)i));
		CHECK_INT(rfile_view(f[i], 3 * MiB, 4096, &dl, &v[i]), 4096);
	}
	CHECK(read_ok(f[0], 200, 5 * MiB + 100, 200 * KiB));
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	CHECK(s.mem_peak <= 9 * MiB);         /* 8 views + the read, a block each */
	bool ok = true;
	for (int i = 0; i < 8; i++) {
		for (int k = 0; ok && k < 4096; k++)
			ok = (unsigned char)v[i].data[k] ==
			     byte_at(200 + (uint64_t)i, 3 * MiB + (uint64_t)k);
		rfile_view_release(f[i], &v[i]);
	}
	CHECK(ok);
	readpath_get_stats(rp, &s);
	CHECK(s.mem_used <= limit);
	for (int i = 0; i < 8; i++)
		rfile_close(f[i]);
	readpath_destroy(rp);
}

/* Read all of f (seed's pattern) in 128 KiB reads. */
static void read_whole(struct rfile *f, uint64_t seed, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		CHECK(read_ok(f, seed, off, 128 * KiB < size - off ? 128 * KiB
								  : size - off));
}

/*
 * The store keeps one version per name (as GCS does), so the corrupt
 * block is tested while the first version is current, before the new
 * version replaces it.
 */
static void block_cache_replaces_requests(void)
{
	struct bcache *bc = cache_new("bc1", 256 * MiB);
	struct readpath *rp = rp_new(bc, 512 * MiB, 64 * MiB);
	uint64_t size = 20 * MiB + 5;
	reset();
	struct rfile *f = rfile_open(rp, put_open("cached", size, 11));
	uint64_t gen = rfile_bobj(f)->info.generation;
	read_whole(f, 11, size);
	rfile_close(f);
	usleep(50000);
	CHECK(nreq() > 0);

	reset();                              /* same version: from disk */
	f = rfile_open(rp, store_open("cached"));
	read_whole(f, 11, size);
	rfile_close(f);
	CHECK_INT(nreq(), 0);
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	CHECK(s.cache_hits >= 21);

	/* a corrupt block on disk is dropped and fetched again */
	char version[32];
	snprintf(version, sizeof(version), "g%llu", (unsigned long long)gen);
	struct bcache_key k = { "cached", version, 3 };
	CHECK(bcache_has(bc, &k));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "for f in $(find %s/bc1 -type f -size +1000k); do "
		 "printf 'XXXX' | dd of=$f bs=1 seek=600000 conv=notrunc "
		 "status=none; done", tmp);
	CHECK_INT(system(cmd), 0);
	reset();
	f = rfile_open(rp, store_open("cached"));
	CHECK(read_ok(f, 11, 3 * MiB, 128 * KiB));
	CHECK(read_ok(f, 11, 3 * MiB + 512 * KiB, 128 * KiB));
	CHECK(nreq() >= 1);
	rfile_close(f);
	struct bcache_stats bs;
	bcache_get_stats(bc, &bs);
	CHECK(bs.corrupt >= 1);

	reset();                              /* new version: never old blocks */
	f = rfile_open(rp, put_open("cached", size, 12));
	CHECK(read_ok(f, 12, 0, 128 * KiB));
	CHECK(read_ok(f, 12, 10 * MiB, 128 * KiB));
	CHECK(nreq() >= 2);
	rfile_close(f);
	readpath_destroy(rp);
	bcache_close(bc);
}


/* Splice [off, off+len) and check the pieces' bytes against gen. */
static bool splice_ok(struct rfile *f, uint64_t gen, uint64_t off, size_t len)
{
	struct rsplice s;
	ssize_t n = rfile_splice(f, off, len, &s);
	bool ok = n == (ssize_t)len;
	uint64_t at = off;
	unsigned char *buf = malloc(BC_BLOCK_SIZE);
	for (unsigned i = 0; ok && i < s.n; i++) {
		ok = s.piece[i].len <= BC_BLOCK_SIZE &&
		     pread(s.piece[i].fd, buf, s.piece[i].len,
			   (off_t)s.piece[i].pos) == (ssize_t)s.piece[i].len;
		for (size_t j = 0; ok && j < s.piece[i].len; j++)
			ok = buf[j] == byte_at(gen, at + j);
		at += s.piece[i].len;
	}
	ok = ok && at == off + len;
	if (!ok)
		fprintf(stderr, "splice at %llu+%zu: n=%zd, %u pieces\n",
			(unsigned long long)off, len, n, s.n);
	free(buf);
	rfile_splice_release(&s);
	return ok;
}

static void blocks_are_stored_when_read_again(void)
{
	struct bcache *bc = cache_new("bc-admit", 256 * MiB);
	struct readpath_conf c = { .cache = bc, .memory_limit = 512 * MiB,
				   .read_ahead_max = 64 * MiB, .fetchers = 8,
				   .fetch_timeout_ms = 10000 };
	struct readpath *rp = readpath_create(&c);
	uint64_t size = 6 * MiB + 5;
	struct bcache_stats st;

	reset();
	struct rfile *f = rfile_open(rp, put_open("twice", size, 41));
	uint64_t gen = rfile_bobj(f)->info.generation;
	read_whole(f, 41, size);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, "twice", gen, 7), 0);    /* read once: remembered */
	bcache_get_stats(bc, &st);
	CHECK_INT(st.first_touches, 7);
	CHECK_INT(st.puts, 0);

	f = rfile_open(rp, store_open("twice"));    /* again: stored */
	read_whole(f, 41, size);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, "twice", gen, 7), 7);

	reset();                                     /* and from disk now */
	f = rfile_open(rp, store_open("twice"));
	read_whole(f, 41, size);
	rfile_close(f);
	CHECK_INT(nreq(), 0);

	/* a small file is stored the first time (readers that open a file
	 * several times read it again at once) */
	f = rfile_open(rp, put_open("small-once", 2 * MiB, 43));
	gen = rfile_bobj(f)->info.generation;
	read_whole(f, 43, 2 * MiB);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, "small-once", gen, 2), 2);

	/* a handle told to keep what it reads stores it the first time */
	f = rfile_open(rp, put_open("kept", size, 42));
	gen = rfile_bobj(f)->info.generation;
	rfile_keep(f);
	read_whole(f, 42, size);
	rfile_close(f);
	usleep(50000);
	CHECK_INT(held(bc, "kept", gen, 7), 7);
	readpath_destroy(rp);
	bcache_close(bc);
}


/* Reads the block cache holds whole are handed out as file pieces with
 * exactly the object's bytes; others are left to rfile_read. */
static void cached_reads_splice(void)
{
	struct bcache *bc = cache_new("bc-splice", 256 * MiB);
	struct readpath *rp = rp_new(bc, 512 * MiB, 0);   /* no read-ahead */
	uint64_t size = 6 * MiB + 777;
	struct rsplice s;
	reset();
	struct rfile *f = rfile_open(rp, put_open("spliced", size, 21));
	CHECK_INT(rfile_splice(f, 0, 128 * KiB, &s), -ENOENT);   /* cold */
	CHECK_INT(s.n, 0);
	CHECK(read_ok(f, 21, 0, 4 * MiB));
	rfile_close(f);
	usleep(50000);                        /* the blocks are stored */

	reset();
	f = rfile_open(rp, store_open("spliced"));
	CHECK(splice_ok(f, 21, 0, 128 * KiB));
	CHECK(splice_ok(f, 21, MiB - 5, 10));              /* across blocks */
	CHECK(splice_ok(f, 21, 512 * KiB, 3 * MiB));
	CHECK_INT(rfile_splice(f, 3 * MiB, 2 * MiB, &s), -ENOENT); /* half */
	CHECK_INT(rfile_splice(f, 0, 9 * MiB, &s), -ENOENT);  /* 7 blocks, 3 not */
	CHECK_INT(nreq(), 0);
	CHECK(read_ok(f, 21, 4 * MiB, size - 4 * MiB));
	CHECK(nreq() >= 1);
	CHECK(splice_ok(f, 21, size - 100, 100));           /* the end */
	CHECK(splice_ok(f, 21, 0, (size_t)size));          /* all 7 */
	CHECK_INT(rfile_splice(f, size, 10, &s), 0);
	rfile_close(f);
	readpath_destroy(rp);

	/* in order, with read-ahead: the cached blocks are left to the
	 * spliced replies (warmed on the disk, never fetched or copied) */
	rp = rp_new(bc, 512 * MiB, 64 * MiB);
	reset();
	f = rfile_open(rp, store_open("spliced"));
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		CHECK(splice_ok(f, 21, off, (size_t)min_u64(128 * KiB, size - off)));
	rfile_close(f);
	usleep(50000);
	struct readpath_stats st;
	readpath_get_stats(rp, &st);
	CHECK_INT(nreq(), 0);
	CHECK_INT(st.fetches, 0);
	CHECK_INT(st.mem_used, 0);
	readpath_destroy(rp);
	bcache_close(bc);
}

static void failed_read_ahead_is_fetched_by_the_reader(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 40 * MiB;
	reset();
	fail_reads_after(2, -EIO);      /* requests 3.. fail */
	struct rfile *f = rfile_open(rp, put_open("flaky", size, 21));
	CHECK(read_ok(f, 21, 0, 128 * KiB));
	CHECK(read_ok(f, 21, 128 * KiB, 128 * KiB));
	fault_clear(store);             /* the store heals */
	bool all = true;
	for (uint64_t off = 256 * KiB; off < size; off += 128 * KiB)
		all &= read_ok(f, 21, off, 128 * KiB);
	CHECK(all);
	rfile_close(f);

	reset();                        /* a store that stays broken */
	fail_reads_after(0, -ESTALE);
	f = rfile_open(rp, put_open("gone", size, 22));
	char buf[4096];
	struct deadline dl = deadline_in_ms(5000);
	CHECK_INT(rfile_read(f, buf, sizeof(buf), 0, &dl), -ESTALE);
	rfile_close(f);
	reset();
	readpath_destroy(rp);
}

static void close_with_read_ahead_in_flight(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	reset();
	delay_reads(50000);
	for (int i = 0; i < 5; i++) {
		struct rfile *f = rfile_open(rp, put_open("busy", 64 * MiB, 1));
		CHECK(read_ok(f, 1, 0, 128 * KiB));
		CHECK(read_ok(f, 1, 128 * KiB, 128 * KiB));
		rfile_close(f);              /* read-ahead still running */
	}
	readpath_destroy(rp);            /* waits for it; nothing leaks */
	reset();
}

static void a_view_outlives_the_close(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	reset();
	struct rfile *f = rfile_open(rp, put_open("view", 3 * MiB, 4));
	struct rview v;
	struct deadline dl = deadline_in_ms(5000);
	CHECK_INT(rfile_view(f, MiB + 10, 4096, &dl, &v), 4096);
	bool ok = v.data != NULL;
	for (int i = 0; ok && i < 4096; i++)
		ok = (unsigned char)v.data[i] == byte_at(4, MiB + 10 + (uint64_t)i);
	CHECK(ok);
	CHECK_INT(rfile_view(f, MiB - 10, 100, &dl, &(struct rview){ 0 }), -EXDEV);
	rfile_close(f);                  /* the reply is still being sent */
	CHECK((unsigned char)v.data[4095] == byte_at(4, MiB + 10 + 4095));
	rfile_view_release(f, &v);       /* frees the file (ASan checks) */
	readpath_destroy(rp);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/readpath-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	mstore = mem_create("mem");
	store = fault_create(mstore, 1);
	sequential_grows_parallel_window();
	random_reads_fetch_what_they_need();
	in_order_then_jump_resets_the_window();
	footer_reads_take_one_request();
	tail_read_at_open_answers_reads();
	a_tables_footer_sizes_its_next_open();
	a_reads_head_is_left_out_until_the_cache_keeps_it();
	parquet_chunks_are_read_whole_and_alone();
	a_scans_columns_arrive_together();
	a_tables_scan_carries_to_its_next_file();
	kernel_read_ahead_past_a_chunk_comes_with_it();
	a_view_of_two_extents_is_one_read();
	a_piece_past_a_chunks_end_starts_nothing();
	a_row_group_is_planned_once();
	memory_budget_holds();
	many_files_at_random_stay_in_budget();
	a_read_goes_on_when_the_budget_is_held();
	block_cache_replaces_requests();
	blocks_are_stored_when_read_again();
	cached_reads_splice();
	failed_read_ahead_is_fetched_by_the_reader();
	close_with_read_ahead_in_flight();
	a_view_outlives_the_close();
	backend_destroy(store);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_summary();
}
