/*
 * The block cache on real folders: blocks round-trip and are told apart
 * by every part of their key, the least recently used go first and the
 * ceiling holds, corrupt or foreign blocks are dropped and never served,
 * the cache survives a restart in its order of use, refuses a second
 * opener, another format and a folder others can write to or own, and
 * keeps its totals under four threads; a pinned block's file keeps its
 * bytes, and is checked before it is first pinned.
 */
#include "backends/util/fdio.h"
#include "cache/blockcache.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/wait.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NS "gcs https://storage.googleapis.com/lake/"

static char base[512];
static unsigned char *big, *got;     /* BC_BLOCK_SIZE each */

static const char *dir(const char *name)
{
	static char p[4][1024];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", base, name);
	return p[i];
}

static struct bcache *open_ns(const char *name, uint64_t max,
			      uint64_t min_free, const char *ns)
{
	struct bcache_conf conf = { .dir = dir(name), .max_bytes = max,
				    .min_free_bytes = min_free, .ns = ns };
	struct bcache *c = NULL;
	char err[256] = "";
	int rc = bcache_open(&conf, &c, err, sizeof(err));
	CHECK_INT(rc, 0);
	if (rc)
		fprintf(stderr, "bcache_open %s: %s\n", name, err);
	return c;
}

static struct bcache *open_cache(const char *name, uint64_t max)
{
	return open_ns(name, max, 0, NS);
}

static void fill(unsigned char *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)((i * 31 + seed * 7919 + (i >> 8)) & 0xff);
}

static int put(struct bcache *c, const char *name, const char *ver,
	       uint64_t index, size_t len, unsigned seed)
{
	struct bcache_key k = { name, ver, index };
	fill(big, len, seed);
	return bcache_put(c, &k, big, len);
}

/* Get and compare with what put() stored: its length, or -errno; -EBADMSG
 * when other bytes came back. */
static ssize_t get(struct bcache *c, const char *name, const char *ver,
		   uint64_t index, unsigned seed)
{
	struct bcache_key k = { name, ver, index };
	ssize_t n = bcache_get(c, &k, got, BC_BLOCK_SIZE);
	if (n <= 0)
		return n;
	fill(big, (size_t)n, seed);
	return memcmp(big, got, (size_t)n) == 0 ? n : -EBADMSG;
}

static bool has(struct bcache *c, const char *name)
{
	struct bcache_key k = { name, "g1", 0 };
	return bcache_has(c, &k);
}

static struct bcache_stats stats(struct bcache *c)
{
	struct bcache_stats s;
	bcache_get_stats(c, &s);
	return s;
}

/* ---- looking at the folder ---- */

static uint64_t walk_bytes, walk_files;
static const char *walk_name;
static char walk_found[1024];

static bool is_block(const char *path, const struct stat *st)
{
	const char *slash = strrchr(path, '/');
	return S_ISREG(st->st_mode) && strlen(slash + 1) == 32;
}

static int sum_one(const char *path, const struct stat *st, int type,
		   struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	if (is_block(path, st)) {
		walk_bytes += (uint64_t)st->st_size;
		walk_files++;
	}
	return 0;
}

/* Bytes and number of the block files under name/v1. */
static uint64_t disk_bytes(const char *name, uint64_t *files)
{
	char p[1100];
	snprintf(p, sizeof(p), "%s/v1", dir(name));
	walk_bytes = walk_files = 0;
	nftw(p, sum_one, 16, FTW_PHYS);
	if (files)
		*files = walk_files;
	return walk_bytes;
}

/* The header layout of blockcache.c: u16 lengths of ns and name at 32
 * and 34, the strings from 38. */
static int find_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	unsigned char h[4096];
	uint16_t nsl, nl;
	(void)type;
	(void)ftw;
	if (!is_block(path, st))
		return 0;
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? pread(fd, h, sizeof(h), 0) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 38)
		return 0;
	memcpy(&nsl, h + 32, 2);
	memcpy(&nl, h + 34, 2);
	if (nl == strlen(walk_name) && 38 + nsl + nl <= n &&
	    memcmp(h + 38 + nsl, walk_name, nl) == 0) {
		snprintf(walk_found, sizeof(walk_found), "%s", path);
		return 1;
	}
	return 0;
}

/* The file holding the block of object name (any version, index). */
static const char *block_file(const char *cache, const char *name)
{
	char p[1100];
	snprintf(p, sizeof(p), "%s/v1", dir(cache));
	walk_name = name;
	walk_found[0] = '\0';
	nftw(p, find_one, 16, FTW_PHYS);
	return walk_found;
}

static bool exists(const char *path)
{
	struct stat st;
	return *path && stat(path, &st) == 0;
}

static void set_mtime(const char *path, time_t ago)
{
	struct timespec ts[2] = { { time(NULL) - ago, 0 },
				  { time(NULL) - ago, 0 } };
	CHECK_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* The size of the file of a block of len bytes named like "blk-A". */
static uint64_t file_size(size_t len)
{
	struct bcache *c = open_cache("probe", 64 << 20);
	CHECK_INT(put(c, "blk-A", "g1", 0, len, 1), 0);
	uint64_t size = stats(c).bytes;
	bcache_close(c);
	CHECK_INT(size, 38 + strlen(NS) + 5 + 2 + len);
	return size;
}

/* ---- the tests ---- */

static void roundtrip(void)
{
	struct bcache *c = open_cache("rt", 64 << 20);
	char longname[1025];
	struct bcache_key k = { "x", "g1", 0 };

	memset(longname, 'n', 1024);
	longname[1024] = '\0';
	CHECK_INT(put(c, "full", "g1", 0, BC_BLOCK_SIZE, 1), 0);
	CHECK_INT(put(c, "short", "g1", 7, 1000, 2), 0);
	CHECK_INT(put(c, longname, "g1", 0, 1, 3), 0);
	CHECK_INT(get(c, "full", "g1", 0, 1), BC_BLOCK_SIZE);
	CHECK_INT(get(c, "short", "g1", 7, 2), 1000);
	CHECK_INT(get(c, longname, "g1", 0, 3), 1);
	/* every part of the key counts */
	CHECK_INT(get(c, "short", "g2", 7, 2), -ENOENT);
	CHECK_INT(get(c, "short", "g1", 6, 2), -ENOENT);
	CHECK_INT(get(c, "shorT", "g1", 7, 2), -ENOENT);
	CHECK(has(c, "full"));
	CHECK(!has(c, "nothing"));
	struct bcache_stats s = stats(c);
	CHECK_INT(s.hits, 3);
	CHECK_INT(s.misses, 3);
	CHECK_INT(s.puts, 3);
	CHECK_INT(s.blocks, 3);
	uint64_t files;
	CHECK_INT(disk_bytes("rt", &files), s.bytes);
	CHECK_INT(files, 3);
	/* what the API refuses */
	CHECK_INT(bcache_get(c, &k, got, BC_BLOCK_SIZE - 1), -EINVAL);
	CHECK_INT(bcache_put(c, &k, big, 0), -EINVAL);
	CHECK_INT(bcache_put(c, &k, big, BC_BLOCK_SIZE + 1), -EINVAL);
	k.version = "";
	CHECK_INT(bcache_put(c, &k, big, 10), -EINVAL);
	bcache_close(c);

	/* the same folder under another namespace holds none of these */
	c = open_ns("rt", 64 << 20, 0, "s3 http://127.0.0.1:9000/other/");
	CHECK_INT(stats(c).blocks, 3);
	CHECK(!has(c, "full"));
	CHECK_INT(get(c, "short", "g1", 7, 2), -ENOENT);
	bcache_close(c);
}

static void lru_order(void)
{
	uint64_t fsize = file_size(4000);
	struct bcache *c = open_cache("lru", 3 * fsize);

	CHECK_INT(put(c, "blk-A", "g1", 0, 4000, 1), 0);
	CHECK_INT(put(c, "blk-B", "g1", 0, 4000, 2), 0);
	CHECK_INT(put(c, "blk-C", "g1", 0, 4000, 3), 0);
	CHECK_INT(stats(c).evictions, 0);
	CHECK_INT(get(c, "blk-A", "g1", 0, 1), 4000);
	CHECK_INT(put(c, "blk-D", "g1", 0, 4000, 4), 0);
	CHECK(!has(c, "blk-B"));
	CHECK(has(c, "blk-A") && has(c, "blk-C") && has(c, "blk-D"));
	CHECK_INT(get(c, "blk-B", "g1", 0, 2), -ENOENT);
	CHECK_INT(get(c, "blk-C", "g1", 0, 3), 4000);
	struct bcache_stats s = stats(c);
	CHECK_INT(s.evictions, 1);
	CHECK_INT(s.blocks, 3);
	CHECK_INT(s.bytes, 3 * fsize);
	CHECK_INT(disk_bytes("lru", NULL), 3 * fsize);
	CHECK(!exists(block_file("lru", "blk-B")));
	/* a block larger than the whole ceiling is refused */
	CHECK_INT(put(c, "huge", "g1", 0, 3 * fsize, 5), -ENOSPC);
	CHECK_INT(stats(c).put_failures, 1);
	CHECK_INT(stats(c).blocks, 3);
	bcache_close(c);
}

static void ceiling(void)
{
	const uint64_t max = 64 << 10;
	struct bcache *c = open_cache("ceil", max);
	unsigned seed = 12345;
	bool under = true;
	char name[32];

	for (int i = 0; i < 2000; i++) {
		size_t len = 1 + (size_t)rand_r(&seed) % 8192;
		snprintf(name, sizeof(name), "obj-%d", i);
		CHECK_INT(put(c, name, "g1", (uint64_t)i, len, (unsigned)i), 0);
		if (stats(c).bytes > max)
			under = false;
		if (i % 100 == 0 && disk_bytes("ceil", NULL) > max)
			under = false;
	}
	CHECK(under);
	uint64_t files;
	struct bcache_stats s = stats(c);
	CHECK_INT(disk_bytes("ceil", &files), s.bytes);
	CHECK_INT(files, s.blocks);
	CHECK(s.evictions > 1000);
	CHECK_INT(s.evictions + s.blocks, 2000);
	CHECK(s.bytes > max / 2);
	CHECK(get(c, "obj-1999", "g1", 1999, 1999) > 0);
	CHECK_INT(get(c, "obj-0", "g1", 0, 0), -ENOENT);
	bcache_close(c);
}

static void corrupt(void)
{
	struct bcache *c = open_cache("bad", 64 << 20);
	char path[1024];
	int fd;

	/* a byte of the data */
	CHECK_INT(put(c, "flip", "g1", 0, 5000, 1), 0);
	snprintf(path, sizeof(path), "%s", block_file("bad", "flip"));
	CHECK(exists(path));
	fd = open(path, O_RDWR);
	unsigned char b;
	CHECK_INT(pread(fd, &b, 1, 4000), 1);
	b ^= 0x40;
	CHECK_INT(pwrite(fd, &b, 1, 4000), 1);
	close(fd);
	CHECK_INT(get(c, "flip", "g1", 0, 1), -ENOENT);
	struct bcache_stats s = stats(c);
	CHECK_INT(s.corrupt, 1);
	CHECK_INT(s.blocks, 0);
	CHECK_INT(s.bytes, 0);
	CHECK(!exists(path));
	CHECK(!has(c, "flip"));
	CHECK_INT(put(c, "flip", "g1", 0, 5000, 1), 0);
	CHECK_INT(get(c, "flip", "g1", 0, 1), 5000);

	/* truncated: in the data, then in the header */
	CHECK_INT(put(c, "cut", "g1", 0, 5000, 2), 0);
	snprintf(path, sizeof(path), "%s", block_file("bad", "cut"));
	CHECK_INT(truncate(path, 4000), 0);
	CHECK_INT(get(c, "cut", "g1", 0, 2), -ENOENT);
	CHECK_INT(stats(c).corrupt, 2);
	CHECK(!exists(path));
	CHECK_INT(put(c, "cut", "g1", 0, 5000, 2), 0);
	CHECK_INT(truncate(path, 20), 0);
	CHECK_INT(get(c, "cut", "g1", 0, 2), -ENOENT);
	CHECK_INT(stats(c).corrupt, 3);
	CHECK(!exists(path));

	/* too long: a byte appended */
	CHECK_INT(put(c, "long", "g1", 0, 100, 3), 0);
	snprintf(path, sizeof(path), "%s", block_file("bad", "long"));
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK_INT(write(fd, "x", 1), 1);
	close(fd);
	CHECK_INT(get(c, "long", "g1", 0, 3), -ENOENT);
	CHECK_INT(stats(c).corrupt, 4);

	/* another key's block at this key's path (as a hash collision would
	 * put it) is never served */
	char other[1024];
	CHECK_INT(put(c, "blk-M", "g1", 0, 300, 4), 0);
	CHECK_INT(put(c, "blk-T", "g1", 0, 300, 5), 0);
	snprintf(path, sizeof(path), "%s", block_file("bad", "blk-M"));
	snprintf(other, sizeof(other), "%s", block_file("bad", "blk-T"));
	CHECK_INT(rename(other, path), 0);
	CHECK_INT(get(c, "blk-M", "g1", 0, 4), -ENOENT);
	CHECK_INT(stats(c).corrupt, 5);
	CHECK(!exists(path));
	/* and a block whose file went missing is a plain miss */
	CHECK_INT(get(c, "blk-T", "g1", 0, 5), -ENOENT);
	s = stats(c);
	CHECK_INT(s.corrupt, 5);
	CHECK_INT(s.blocks, 1);                 /* "flip" */
	CHECK_INT(disk_bytes("bad", NULL), s.bytes);
	CHECK_INT(get(c, "flip", "g1", 0, 1), 5000);
	bcache_close(c);
}

static void restart(void)
{
	uint64_t fsize = file_size(4000);
	const char *names[] = { "blk-A", "blk-B", "blk-C", "blk-D" };
	const time_t ago[] = { 200, 400, 100, 300 };  /* B, D, A, C */
	struct bcache *c = open_cache("rs", 4 * fsize);
	char path[1100];

	for (int i = 0; i < 4; i++)
		CHECK_INT(put(c, names[i], "g1", 0, 4000, (unsigned)i), 0);
	bcache_close(c);
	for (int i = 0; i < 4; i++)
		set_mtime(block_file("rs", names[i]), ago[i]);
	/* leftovers of a crash: a temp file, a stray file */
	snprintf(path, sizeof(path), "%s/v1/tmp/0000000000000007", dir("rs"));
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/v1/00/stray", dir("rs"));
	close(open(path, O_CREAT | O_WRONLY, 0600));

	c = open_cache("rs", 4 * fsize);
	CHECK_INT(stats(c).blocks, 4);
	CHECK_INT(stats(c).bytes, 4 * fsize);
	CHECK(!exists(path));
	snprintf(path, sizeof(path), "%s/v1/tmp/0000000000000007", dir("rs"));
	CHECK(!exists(path));
	/* a hit on a block last used long ago refreshes its mtime */
	CHECK_INT(get(c, "blk-A", "g1", 0, 0), 4000);
	struct stat st;
	CHECK_INT(stat(block_file("rs", "blk-A"), &st), 0);
	CHECK(st.st_mtime >= time(NULL) - 5);
	/* order now B, D, C, A */
	CHECK_INT(put(c, "blk-E", "g1", 0, 4000, 4), 0);
	CHECK(!has(c, "blk-B") && has(c, "blk-D"));
	CHECK_INT(put(c, "blk-F", "g1", 0, 4000, 5), 0);
	CHECK(!has(c, "blk-D"));
	CHECK(has(c, "blk-A") && has(c, "blk-C") && has(c, "blk-E") &&
	      has(c, "blk-F"));
	bcache_close(c);

	/* a lower ceiling at open evicts the oldest down to it */
	set_mtime(block_file("rs", "blk-C"), 50);
	set_mtime(block_file("rs", "blk-A"), 40);
	set_mtime(block_file("rs", "blk-F"), 30);
	set_mtime(block_file("rs", "blk-E"), 20);
	c = open_cache("rs", 2 * fsize);
	struct bcache_stats s = stats(c);
	CHECK_INT(s.blocks, 2);
	CHECK_INT(s.evictions, 2);
	CHECK_INT(disk_bytes("rs", NULL), 2 * fsize);
	CHECK(has(c, "blk-E") && has(c, "blk-F"));
	CHECK_INT(get(c, "blk-E", "g1", 0, 4), 4000);
	CHECK_INT(get(c, "blk-F", "g1", 0, 5), 4000);
	bcache_close(c);
}

static void busy(void)
{
	struct bcache_conf conf = { .dir = dir("busy"), .max_bytes = 1 << 20,
				    .ns = NS };
	struct bcache *c = open_cache("busy", 1 << 20), *c2 = NULL;
	char err[256] = "";

	CHECK_INT(bcache_open(&conf, &c2, err, sizeof(err)), -EBUSY);
	CHECK(c2 == NULL);
	CHECK(strstr(err, dir("busy")) != NULL);
	CHECK(strstr(err, "in use") != NULL);
	bcache_close(c);
	CHECK_INT(bcache_open(&conf, &c2, err, sizeof(err)), 0);
	bcache_close(c2);

	/* a folder that cannot be made: under a regular file */
	char file[1100], sub[1200];
	snprintf(file, sizeof(file), "%s/a-file", base);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	snprintf(sub, sizeof(sub), "%s/cache/x", file);
	conf.dir = sub;
	err[0] = '\0';
	CHECK_INT(bcache_open(&conf, &c2, err, sizeof(err)), -ENOTDIR);
	CHECK(strstr(err, sub) != NULL);
	CHECK(strstr(err, strerror(ENOTDIR)) != NULL);
	/* and one whose parents are missing is made */
	conf.dir = dir("deep/er/cache");
	CHECK_INT(bcache_open(&conf, &c2, err, sizeof(err)), 0);
	bcache_close(c2);
}

/* An existing folder writable by group/other, or another user's, is
 * refused with a message that names it; a private one is used. */
static void dir_checks(void)
{
	struct bcache_conf conf = { .dir = dir("perm"), .max_bytes = 1 << 20,
				    .ns = NS };
	struct bcache *c = NULL;
	char err[256] = "";

	CHECK_INT(mkdir(conf.dir, 0700), 0);
	CHECK_INT(chmod(conf.dir, 0770), 0);
	CHECK_INT(bcache_open(&conf, &c, err, sizeof(err)), -EPERM);
	CHECK(c == NULL);
	CHECK(strstr(err, conf.dir) != NULL);
	CHECK(strstr(err, "writable by group/other") != NULL);
	CHECK_INT(chmod(conf.dir, 0702), 0);
	CHECK_INT(bcache_open(&conf, &c, err, sizeof(err)), -EPERM);
	CHECK(c == NULL);
	CHECK_INT(chmod(conf.dir, 0755), 0);    /* readable is fine */
	CHECK_INT(bcache_open(&conf, &c, err, sizeof(err)), 0);
	bcache_close(c);
	c = NULL;
	if (geteuid() == 0) {          /* only root can give a folder away */
		CHECK_INT(chown(conf.dir, 65534, 65534), 0);
		err[0] = '\0';
		CHECK_INT(bcache_open(&conf, &c, err, sizeof(err)), -EPERM);
		CHECK(c == NULL);
		CHECK(strstr(err, "owned by uid 65534") != NULL);
	} else {
		fprintf(stderr, "dir_checks: not root, owner check skipped\n");
	}
}

static void format_change(void)
{
	char path[1100], text[128];
	struct bcache *c = open_cache("fmt", 1 << 20);
	CHECK_INT(put(c, "blk-A", "g1", 0, 100, 1), 0);
	bcache_close(c);

	snprintf(path, sizeof(path), "%s/v1/FORMAT", dir("fmt"));
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	CHECK_STR(text, "hylake block cache 1 block_size=1048576\n");

	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "hylake block cache 0\n", 21) == 21);
	close(fd);
	c = open_cache("fmt", 1 << 20);
	CHECK_INT(stats(c).blocks, 0);
	CHECK(!has(c, "blk-A"));
	CHECK_INT(disk_bytes("fmt", NULL), 0);
	fd = open(path, O_RDONLY);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	CHECK_STR(text, "hylake block cache 1 block_size=1048576\n");
	CHECK_INT(put(c, "blk-A", "g1", 0, 100, 1), 0);
	bcache_close(c);
	/* the same format keeps its blocks */
	c = open_cache("fmt", 1 << 20);
	CHECK(has(c, "blk-A"));
	bcache_close(c);
}

static void replace(void)
{
	struct bcache *c = open_cache("repl", 1 << 20);

	CHECK_INT(put(c, "blk-A", "g1", 0, 100, 1), 0);
	uint64_t small = stats(c).bytes;
	CHECK_INT(put(c, "blk-A", "g1", 0, 300, 2), 0);
	struct bcache_stats s = stats(c);
	CHECK_INT(s.blocks, 1);
	CHECK_INT(s.bytes, small + 200);
	CHECK_INT(s.puts, 2);
	CHECK_INT(s.evictions, 0);
	CHECK_INT(get(c, "blk-A", "g1", 0, 2), 300);
	uint64_t files;
	CHECK_INT(disk_bytes("repl", &files), small + 200);
	CHECK_INT(files, 1);
	bcache_close(c);
}

static void min_free(void)
{
	struct bcache *c = open_cache("free", 1 << 20);
	for (int i = 0; i < 3; i++)
		CHECK_INT(put(c, i ? "blk-B" : "blk-A", "g1", (uint64_t)i, 100,
			      1), 0);
	bcache_close(c);
	/* more free space wanted than any disk has: the cache gives way */
	c = open_ns("free", 1 << 20, UINT64_MAX / 4, NS);
	CHECK_INT(stats(c).blocks, 3);
	CHECK_INT(put(c, "blk-C", "g1", 0, 100, 1), -ENOSPC);
	struct bcache_stats s = stats(c);
	CHECK_INT(s.blocks, 0);
	CHECK_INT(s.evictions, 3);
	CHECK_INT(s.put_failures, 1);
	CHECK_INT(disk_bytes("free", NULL), 0);
	bcache_close(c);
}

/* ---- threads ---- */

#define NKEYS 64
#define KEYLEN(i) ((size_t)1 + ((size_t)(i) * 977) % 8000)

struct worker {
	struct bcache *c;
	unsigned seed;
	atomic_bool *stop;
	uint64_t gets, bad, put_errors;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char *data = malloc(8192), *buf = malloc(BC_BLOCK_SIZE);
	char name[32];

	while (!atomic_load(w->stop)) {
		unsigned i = (unsigned)rand_r(&w->seed) % NKEYS;
		int op = rand_r(&w->seed) % 10;
		struct bcache_key k = { name, "g1", i };
		snprintf(name, sizeof(name), "obj-%u", i);
		fill(data, KEYLEN(i), i);
		if (op < 4) {
			if (bcache_put(w->c, &k, data, KEYLEN(i)) != 0)
				w->put_errors++;
		} else if (op < 9) {
			ssize_t n = bcache_get(w->c, &k, buf, BC_BLOCK_SIZE);
			w->gets++;
			if (n != -ENOENT && (n != (ssize_t)KEYLEN(i) ||
					     memcmp(buf, data, KEYLEN(i))))
				w->bad++;
		} else if (rand_r(&w->seed) % 2) {
			struct bcache_pin p;
			w->gets++;
			if (bcache_pin(w->c, &k, &p) == 0 &&
			    (p.len != KEYLEN(i) ||
			     pread(p.fd, buf, p.len, (off_t)p.pos) != p.len ||
			     memcmp(buf, data, KEYLEN(i))))
				w->bad++;
			bcache_unpin(&p);
		} else {
			bcache_has(w->c, &k);
		}
	}
	free(data);
	free(buf);
	return NULL;
}

/* Pin every key once, in order: threads started together meet on the
 * same unchecked blocks. */
static void *pin_all(void *arg)
{
	struct worker *w = arg;
	unsigned char *data = malloc(8192), *buf = malloc(8192);
	char name[32];

	for (unsigned i = 0; i < NKEYS; i++) {
		struct bcache_key k = { name, "g1", i };
		struct bcache_pin p;
		snprintf(name, sizeof(name), "obj-%u", i);
		fill(data, KEYLEN(i), i);
		if (bcache_pin(w->c, &k, &p) < 0)
			continue;
		w->gets++;
		if (p.len != KEYLEN(i) ||
		    pread(p.fd, buf, p.len, (off_t)p.pos) != p.len ||
		    memcmp(buf, data, KEYLEN(i)))
			w->bad++;
		bcache_unpin(&p);
	}
	free(data);
	free(buf);
	return NULL;
}

static void threads(void)
{
	const uint64_t max = 100 << 10;      /* about a third of the keys */
	struct bcache *c = open_cache("mt", max);
	struct worker w[4];
	pthread_t th[4];
	atomic_bool stop = false;
	uint64_t gets = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ c, (unsigned)i * 7 + 1, &stop, 0, 0, 0 };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	struct timespec half = { 0, 500 * 1000 * 1000 };
	nanosleep(&half, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(w[i].bad, 0);
		CHECK_INT(w[i].put_errors, 0);
		gets += w[i].gets;
	}
	struct bcache_stats s = stats(c);
	uint64_t files;
	CHECK(gets > 100);
	CHECK_INT(s.hits + s.misses, gets);
	CHECK(s.hits > 0 && s.evictions > 0);
	CHECK_INT(s.corrupt, 0);
	CHECK(s.bytes <= max);
	CHECK_INT(disk_bytes("mt", &files), s.bytes);
	CHECK_INT(files, s.blocks);
	bcache_close(c);

	/* and the folder reopens to the same totals, its blocks unchecked:
	 * four threads pin them all at once, right */
	c = open_cache("mt", max);
	CHECK_INT(stats(c).bytes, s.bytes);
	CHECK_INT(stats(c).blocks, s.blocks);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ c, 0, &stop, 0, 0, 0 };
		pthread_create(&th[i], NULL, pin_all, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(w[i].bad, 0);
		CHECK_INT(w[i].gets, s.blocks);
	}
	CHECK_INT(stats(c).corrupt, 0);
	bcache_close(c);
}

/* Pin block name and compare the pinned file's bytes with what put()
 * stored: its length, or -errno; -EBADMSG when other bytes are there.  The
 * pin is kept in *keep when keep is not NULL, else given back. */
static ssize_t pin_check(struct bcache *c, const char *name, unsigned seed,
			 struct bcache_pin *keep)
{
	struct bcache_key k = { name, "g1", 0 };
	struct bcache_pin p;
	int rc = bcache_pin(c, &k, &p);
	if (rc < 0) {
		CHECK_INT(p.fd, -1);
		return rc;
	}
	ssize_t n = pread(p.fd, got, p.len, (off_t)p.pos);
	CHECK_INT(n, p.len);
	fill(big, p.len, seed);
	n = memcmp(big, got, p.len) == 0 ? (ssize_t)p.len : -EBADMSG;
	if (keep)
		*keep = p;
	else
		bcache_unpin(&p);
	return n;
}

/* Flip a byte of the data of block name's file: in place, or in a copy
 * renamed over it (a new file at the path). */
static void flip(const char *cache, const char *name, bool new_file)
{
	char path[1100], tmp[1200];
	snprintf(path, sizeof(path), "%s", block_file(cache, name));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (new_file) {
		int in = open(path, O_RDONLY), out = open(tmp, O_CREAT | O_WRONLY, 0600);
		ssize_t n = read(in, got, BC_BLOCK_SIZE);
		CHECK(n > 100);
		CHECK_INT(write(out, got, (size_t)n), n);
		close(in);
		close(out);
	}
	int fd = open(new_file ? tmp : path, O_RDWR);
	unsigned char b;
	struct stat st;
	CHECK_INT(fstat(fd, &st), 0);
	CHECK_INT(pread(fd, &b, 1, st.st_size - 10), 1);
	b ^= 0x40;
	CHECK_INT(pwrite(fd, &b, 1, st.st_size - 10), 1);
	close(fd);
	if (new_file)
		CHECK_INT(rename(tmp, path), 0);
}

/* Pins: the bytes of a pinned file stay those of the block while it is
 * evicted and replaced; a block from a previous process is checked at its
 * first pin, and so is a new file put at its path behind the cache's back;
 * another key's block at the path is never pinned. */
static void pins(void)
{
	uint64_t fsize = file_size(5000);
	struct bcache *c = open_cache("pin", 2 * fsize);
	struct bcache_pin held;

	CHECK_INT(put(c, "blk-A", "g1", 0, 5000, 1), 0);
	CHECK_INT(pin_check(c, "blk-A", 1, NULL), 5000);
	CHECK_INT(pin_check(c, "blk-Z", 1, NULL), -ENOENT);
	CHECK_INT(pin_check(c, "blk-A", 1, &held), 5000);
	/* evicted by two other blocks, then put again with other bytes */
	CHECK_INT(put(c, "blk-B", "g1", 0, 5000, 2), 0);
	CHECK_INT(put(c, "blk-C", "g1", 0, 5000, 3), 0);
	CHECK(!has(c, "blk-A"));
	CHECK_INT(put(c, "blk-A", "g1", 0, 5000, 9), 0);
	CHECK_INT(pread(held.fd, got, held.len, (off_t)held.pos), 5000);
	fill(big, 5000, 1);
	CHECK(memcmp(big, got, 5000) == 0);
	bcache_unpin(&held);
	CHECK_INT(held.fd, -1);
	CHECK_INT(pin_check(c, "blk-A", 9, NULL), 5000);

	/* a new file at the path, behind the cache's back: checked */
	flip("pin", "blk-A", true);
	CHECK_INT(pin_check(c, "blk-A", 9, NULL), -ENOENT);
	CHECK_INT(stats(c).corrupt, 1);
	CHECK(!has(c, "blk-A"));

	/* after a restart every block is checked at its first pin */
	CHECK_INT(put(c, "blk-A", "g1", 0, 5000, 1), 0);
	bcache_close(c);
	flip("pin", "blk-A", false);
	c = open_cache("pin", 2 * fsize);
	CHECK_INT(pin_check(c, "blk-C", 3, NULL), 5000);
	CHECK_INT(pin_check(c, "blk-A", 1, NULL), -ENOENT);
	CHECK_INT(stats(c).corrupt, 1);
	CHECK(!has(c, "blk-A"));

	/* the key in the header is compared on every pin, checked or not */
	CHECK_INT(put(c, "blk-M", "g1", 0, 300, 4), 0);
	CHECK_INT(pin_check(c, "blk-M", 4, NULL), 300);
	CHECK_INT(pin_check(c, "blk-C", 3, NULL), 5000);
	char path[1100], other[1100];
	snprintf(path, sizeof(path), "%s", block_file("pin", "blk-M"));
	snprintf(other, sizeof(other), "%s", block_file("pin", "blk-C"));
	CHECK_INT(rename(other, path), 0);
	CHECK_INT(pin_check(c, "blk-M", 4, NULL), -ENOENT);
	CHECK_INT(stats(c).corrupt, 2);
	struct bcache_key k = { "blk-M", "", 0 };
	CHECK_INT(bcache_pin(c, &k, &held), -EINVAL);
	bcache_close(c);
}

/* Bytes this process has read so far (read(2) and friends). */
static uint64_t rchar(void)
{
	char line[128];
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/io", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %" SCNu64, &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* Whether pinning block name hashes its data (reads over half of it). */
static bool pin_reads(struct bcache *c, const char *name, unsigned seed)
{
	struct bcache_key k = { name, "g1", 0 };
	struct bcache_pin p;
	uint64_t before = rchar();
	CHECK_INT(bcache_pin(c, &k, &p), 0);
	bool read = rchar() - before > BC_BLOCK_SIZE / 2;
	CHECK_INT(pin_check(c, name, seed, NULL), BC_BLOCK_SIZE);
	bcache_unpin(&p);
	return read;
}

/* The record of checked files: a clean close lets the next open trust
 * what it checked; a process that dies leaves nothing to trust; a record
 * that is not one is ignored. */
static void checked_record(void)
{
	struct bcache *c = open_cache("rec", 64 << 20);
	CHECK_INT(put(c, "blk-A", "g1", 0, BC_BLOCK_SIZE, 1), 0);
	CHECK_INT(put(c, "blk-B", "g1", 0, BC_BLOCK_SIZE, 2), 0);
	CHECK(!pin_reads(c, "blk-A", 1));          /* it wrote them */
	bcache_close(c);

	c = open_cache("rec", 64 << 20);
	CHECK(!pin_reads(c, "blk-A", 1));          /* recorded at close */
	CHECK(!pin_reads(c, "blk-B", 2));
	bcache_close(c);
	c = open_cache("rec", 64 << 20);
	bcache_close(c);        /* the close records what was checked ... */
	char path[1100];
	snprintf(path, sizeof(path), "%s/v1/CHECKED", dir("rec"));
	CHECK(exists(path));
	/* ... and an open that dies takes the record with it */
	int status;
	pid_t pid = fork();
	if (pid == 0) {
		struct bcache *d;
		struct bcache_conf conf = { .dir = dir("rec"), .max_bytes = 64 << 20,
					    .ns = NS };
		char err[128];
		_exit(bcache_open(&conf, &d, err, sizeof(err)) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!exists(path));
	c = open_cache("rec", 64 << 20);
	CHECK(pin_reads(c, "blk-A", 1));
	CHECK(!pin_reads(c, "blk-A", 1));          /* once per process */
	bcache_close(c);

	/* a record that is not one is ignored */
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "HYCHK001garbage-garbage-garbage!", 32), 32);
	close(fd);
	c = open_cache("rec", 64 << 20);
	CHECK(pin_reads(c, "blk-B", 2));
	bcache_close(c);
}

/* Two caches in one process, in two folders, do not meet. */
static void two_caches(void)
{
	struct bcache *a = open_cache("two-a", 1 << 20);
	struct bcache *b = open_cache("two-b", 1 << 20);
	CHECK_INT(put(a, "blk-A", "g1", 0, 100, 1), 0);
	CHECK(has(a, "blk-A"));
	CHECK(!has(b, "blk-A"));
	CHECK_INT(stats(b).blocks, 0);
	bcache_close(a);
	bcache_close(b);
}

int main(void)
{
	const char *t = getenv("HYLAKE_TEST_TMP");
	snprintf(base, sizeof(base), "%s/bcache-test-%d", t ? t : "/tmp",
		 (int)getpid());
	mkdir(base, 0700);
	big = malloc(BC_BLOCK_SIZE + 1);
	got = malloc(BC_BLOCK_SIZE);
	roundtrip();
	lru_order();
	ceiling();
	corrupt();
	restart();
	busy();
	dir_checks();
	format_change();
	replace();
	min_free();
	threads();
	two_caches();
	pins();
	checked_record();
	free(big);
	free(got);
	CHECK_INT(remove_tree(base), 0);
	return check_summary();
}
