/*
 * The read path over a store that records every request it gets (and can
 * be slowed or made to fail), with a real block cache: bytes are right,
 * reads in order grow a window of parallel multi-MiB requests, random
 * reads fetch only what they need, tails and small files take one
 * request, the memory budget holds, cached blocks replace requests, a new
 * version never meets old blocks, and a corrupt block is fetched again.
 */
#include "cache/readpath.h"
#include "cache/blockcache.h"
#include "backends/backend.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define MAXREQ 4096

/* ------------------------------------------------------- a recording store */

struct req { uint64_t off, len; };

static struct {
	pthread_mutex_t lock;
	struct req reqs[MAXREQ];
	unsigned nreq;
	unsigned inflight, max_inflight;
	unsigned delay_us;            /* per request */
	int fail_ahead_after;         /* fail requests past this many (-1: no) */
	int fail_err;
} st = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_ahead_after = -1 };

static unsigned char byte_at(uint64_t gen, uint64_t off)
{
	uint64_t x = (off / 8) * 0x9E3779B97F4A7C15ULL ^ gen * 0xC2B2AE3D27D4EB4FULL;
	return (unsigned char)(x >> ((off % 8) * 8));
}

static ssize_t fake_read(struct bobj *o, void *buf, size_t len, uint64_t off,
			 const struct deadline *dl)
{
	(void)dl;
	pthread_mutex_lock(&st.lock);
	unsigned n = st.nreq;
	if (st.nreq < MAXREQ)
		st.reqs[st.nreq++] = (struct req){ off, len };
	if (++st.inflight > st.max_inflight)
		st.max_inflight = st.inflight;
	unsigned delay = st.delay_us;
	int fail = st.fail_ahead_after >= 0 && (int)n >= st.fail_ahead_after
		   ? st.fail_err : 0;
	pthread_mutex_unlock(&st.lock);
	if (delay)
		usleep(delay);
	if (!fail) {
		uint64_t end = off + len > o->info.size ? o->info.size : off + len;
		for (uint64_t i = off; i < end; i++)
			((unsigned char *)buf)[i - off] = byte_at(o->info.generation, i);
		len = (size_t)(end - off);
	}
	pthread_mutex_lock(&st.lock);
	st.inflight--;
	pthread_mutex_unlock(&st.lock);
	return fail ? fail : (ssize_t)len;
}

static void fake_close(struct bobj *o)
{
	bobj_release(o);
	free(o);
}

static const struct backend_ops fake_ops = {
	.type = "fake", .read = fake_read, .close = fake_close,
};
static struct backend fake = { .ops = &fake_ops, .name = "fake",
			       .describe = "fake" };

static struct bobj *fake_open(const char *name, uint64_t size, uint64_t gen)
{
	struct bobj *o = xcalloc(1, sizeof(*o));
	bobj_init(o, &fake, name);
	o->info.size = size;
	o->info.generation = gen;
	return o;
}

static void reset(void)
{
	pthread_mutex_lock(&st.lock);
	st.nreq = 0;
	st.max_inflight = 0;
	st.delay_us = 0;
	st.fail_ahead_after = -1;
	pthread_mutex_unlock(&st.lock);
}

static unsigned nreq(void)
{
	pthread_mutex_lock(&st.lock);
	unsigned n = st.nreq;
	pthread_mutex_unlock(&st.lock);
	return n;
}

/* ------------------------------------------------------- helpers */

static char tmp[512];

static struct readpath *rp_new(struct bcache *bc, uint64_t mem, uint64_t ra)
{
	struct readpath_conf c = { .cache = bc, .memory_limit = mem,
				   .read_ahead_max = ra, .fetchers = 8,
				   .fetch_timeout_ms = 10000 };
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

/* Read [off, off+len) and check every byte against generation gen. */
static bool read_ok(struct rfile *f, uint64_t gen, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len);
	struct deadline dl = deadline_in_ms(10000);
	ssize_t n = rfile_read(f, buf, len, off, &dl);
	bool ok = n == (ssize_t)len;
	for (size_t i = 0; ok && i < len; i++)
		ok = buf[i] == byte_at(gen, off + i);
	if (!ok)
		fprintf(stderr, "read at %llu+%zu: n=%zd, bytes %s\n",
			(unsigned long long)off, len, n,
			n == (ssize_t)len ? "WRONG" : "-");
	free(buf);
	return ok;
}

/* ------------------------------------------------------- tests */

static void sequential_grows_parallel_window(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 96 * MiB + 12345;
	reset();
	st.delay_us = 2000;
	struct rfile *f = rfile_open(rp, fake_open("seq", size, 7));
	bool all = true;
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		all &= read_ok(f, 7, off, (size_t)(size - off < 128 * KiB ?
						   size - off : 128 * KiB));
	CHECK(all);
	unsigned n = nreq();
	/* 778 reads of 128 KiB; requests of up to 8 MiB, several at once */
	CHECK(n < 60);
	CHECK(st.max_inflight >= 2);
	unsigned big = 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		big += st.reqs[i].len >= 4 * MiB;
		total += st.reqs[i].len;
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
	struct rfile *f = rfile_open(rp, fake_open("rnd", size, 3));
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
		CHECK(st.reqs[i].len <= 2 * MiB);      /* no read-ahead */
	rfile_close(f);
	readpath_destroy(rp);
}

static void in_order_then_jump_resets_the_window(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 300 * MiB;
	reset();
	struct rfile *f = rfile_open(rp, fake_open("jump", size, 5));
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
	struct rfile *f = rfile_open(rp, fake_open("part.parquet", size, 9));
	CHECK(read_ok(f, 9, size - 8, 8));                /* magic + length */
	CHECK(read_ok(f, 9, size - 48 * KiB, 48 * KiB));  /* the footer */
	CHECK(read_ok(f, 9, size - 900 * KiB, 4 * KiB));
	CHECK_INT(nreq(), 1);
	CHECK(st.reqs[0].off + st.reqs[0].len == size);
	CHECK(st.reqs[0].off <= size - MiB);
	/* the tail stays while the file is open, other reads come and go */
	for (int i = 0; i < 12; i++)
		CHECK(read_ok(f, 9, (uint64_t)i * 3 * MiB, 1024));
	unsigned n = nreq();
	CHECK(read_ok(f, 9, size - 48 * KiB, 48 * KiB));
	CHECK_INT(nreq(), n);
	rfile_close(f);

	reset();                                          /* a small file */
	f = rfile_open(rp, fake_open("small", 1536 * KiB, 9));
	CHECK(read_ok(f, 9, 4096, 4096));
	CHECK(read_ok(f, 9, 1400 * KiB, 100 * KiB));
	CHECK_INT(nreq(), 1);
	CHECK_INT(st.reqs[0].len, 1536 * KiB);
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
	struct rfile *f = rfile_open(a->rp, fake_open(name, size, a->gen));
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
	st.delay_us = 3000;
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

static void block_cache_replaces_requests(void)
{
	struct bcache *bc = cache_new("bc1", 256 * MiB);
	struct readpath *rp = rp_new(bc, 512 * MiB, 64 * MiB);
	uint64_t size = 20 * MiB + 5;
	reset();
	struct rfile *f = rfile_open(rp, fake_open("cached", size, 11));
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		CHECK(read_ok(f, 11, off, 128 * KiB < size - off ? 128 * KiB
								 : size - off));
	rfile_close(f);
	usleep(50000);
	CHECK(nreq() > 0);

	reset();                              /* same version: from disk */
	f = rfile_open(rp, fake_open("cached", size, 11));
	for (uint64_t off = 0; off < size; off += 128 * KiB)
		CHECK(read_ok(f, 11, off, 128 * KiB < size - off ? 128 * KiB
								 : size - off));
	rfile_close(f);
	CHECK_INT(nreq(), 0);
	struct readpath_stats s;
	readpath_get_stats(rp, &s);
	CHECK(s.cache_hits >= 21);

	reset();                              /* new version: never old blocks */
	f = rfile_open(rp, fake_open("cached", size, 12));
	CHECK(read_ok(f, 12, 0, 128 * KiB));
	CHECK(read_ok(f, 12, 10 * MiB, 128 * KiB));
	CHECK(nreq() >= 2);
	rfile_close(f);

	/* a corrupt block on disk is dropped and fetched again */
	struct bcache_key k = { "cached", "g11", 3 };
	CHECK(bcache_has(bc, &k));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "for f in $(find %s/bc1 -type f -size +1000k); do "
		 "printf 'XXXX' | dd of=$f bs=1 seek=600000 conv=notrunc "
		 "status=none; done", tmp);
	CHECK_INT(system(cmd), 0);
	reset();
	f = rfile_open(rp, fake_open("cached", size, 11));
	CHECK(read_ok(f, 11, 3 * MiB, 128 * KiB));
	CHECK(read_ok(f, 11, 3 * MiB + 512 * KiB, 128 * KiB));
	CHECK(nreq() >= 1);
	rfile_close(f);
	struct bcache_stats bs;
	bcache_get_stats(bc, &bs);
	CHECK(bs.corrupt >= 1);
	readpath_destroy(rp);
	bcache_close(bc);
}

static void failed_read_ahead_is_fetched_by_the_reader(void)
{
	struct readpath *rp = rp_new(NULL, 512 * MiB, 64 * MiB);
	uint64_t size = 40 * MiB;
	reset();
	st.fail_ahead_after = 2;        /* requests 3.. fail */
	st.fail_err = -EIO;
	struct rfile *f = rfile_open(rp, fake_open("flaky", size, 21));
	CHECK(read_ok(f, 21, 0, 128 * KiB));
	CHECK(read_ok(f, 21, 128 * KiB, 128 * KiB));
	pthread_mutex_lock(&st.lock);
	st.fail_ahead_after = -1;       /* the store heals */
	pthread_mutex_unlock(&st.lock);
	bool all = true;
	for (uint64_t off = 256 * KiB; off < size; off += 128 * KiB)
		all &= read_ok(f, 21, off, 128 * KiB);
	CHECK(all);
	rfile_close(f);

	reset();                        /* a store that stays broken */
	st.fail_ahead_after = 0;
	st.fail_err = -ESTALE;
	f = rfile_open(rp, fake_open("gone", size, 22));
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
	st.delay_us = 50000;
	for (int i = 0; i < 5; i++) {
		struct rfile *f = rfile_open(rp, fake_open("busy", 64 * MiB, 1));
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
	struct rfile *f = rfile_open(rp, fake_open("view", 3 * MiB, 4));
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
	sequential_grows_parallel_window();
	random_reads_fetch_what_they_need();
	in_order_then_jump_resets_the_window();
	footer_reads_take_one_request();
	memory_budget_holds();
	block_cache_replaces_requests();
	failed_read_ahead_is_fetched_by_the_reader();
	close_with_read_ahead_in_flight();
	a_view_outlives_the_close();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_summary();
}
