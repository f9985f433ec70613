/*
 * The version map on a real LMDB environment: facts round-trip, batches
 * are visible before they commit, the map survives close and kill -9,
 * refuses another source, and stays under its ceiling by evicting.
 */
#include "cache/vmap.h"
#include "backends/util/fdio.h"
#include "cache/vmap_records.h"
#include "backends/util/timeutil.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[512];

static const char *dir(const char *name)
{
	static char p[1024];
	snprintf(p, sizeof(p), "%s/%s", base, name);
	return p;
}

static struct source_fact source(uint64_t gen)
{
	struct source_fact f = { .generation = gen, .metageneration = 1,
				 .size = gen * 10, .ctime_ns = 1700000000LL,
				 .crc32c = 0xc99465aa, .has_crc32c = true,
				 .has_md5 = true, .confirmed_ns = 42 };
	f.md5[0] = 0xd4;
	return f;
}

static void roundtrip(void)
{
	struct vmap *m;
	char err[256];
	CHECK_INT(vmap_open(dir("rt"), "gcs http://x/lake/", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	struct source_fact s = source(7), got;
	char longname[1025];
	memset(longname, 'n', 1024);
	longname[1024] = '\0';

	CHECK_INT(f.ops->get_source(f.ctx, "a/b", &got), -ENOENT);
	f.ops->put_source(f.ctx, "a/b", &s);
	/* visible at once, before the batch commits */
	CHECK_INT(f.ops->get_source(f.ctx, "a/b", &got), 0);
	CHECK_INT(got.generation, 7);
	f.ops->put_source(f.ctx, longname, &s);          /* > 511-byte key */
	struct replica_fact r = { .state = REPLICA_HOLDS, .generation = 7,
				  .size = 70, .checked_ns = 5 };
	snprintf(r.etag, sizeof(r.etag), "d41d8cd98f00b204e9800998ecf8427e");
	f.ops->put_replica(f.ctx, "dc-east", "a/b", &r);
	vmap_flush(m);

	CHECK_INT(f.ops->get_source(f.ctx, longname, &got), 0);
	CHECK_INT(got.size, 70);
	CHECK(got.has_crc32c && got.crc32c == 0xc99465aa && got.md5[0] == 0xd4);
	CHECK(!got.tombstone);
	struct replica_fact rg;
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-east", "a/b", &rg), 0);
	CHECK_INT(rg.state, REPLICA_HOLDS);
	CHECK_STR(rg.etag, "d41d8cd98f00b204e9800998ecf8427e");
	/* replicas are told apart */
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-west", "a/b", &rg), -ENOENT);
	/* block sums, a record of their own */
	void *sums;
	size_t slen;
	f.ops->put_sums(f.ctx, "dc-east", "a/b", "SUMS", 4);
	CHECK_INT(f.ops->get_sums(f.ctx, "dc-east", "a/b", &sums, &slen), 0);
	CHECK(slen == 4 && !memcmp(sums, "SUMS", 4));
	free(sums);
	CHECK_INT(f.ops->get_sums(f.ctx, "dc-west", "a/b", &sums, &slen),
		  -ENOENT);
	/* a tombstone is a fact too */
	struct source_fact t = { .tombstone = true, .confirmed_ns = 9 };
	f.ops->put_source(f.ctx, "gone", &t);
	vmap_close(m);

	/* reopened: everything is there */
	CHECK_INT(vmap_open(dir("rt"), "gcs http://x/lake/", 64 << 20, &m, err,
			    sizeof(err)), 0);
	f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, "a/b", &got), 0);
	CHECK_INT(got.generation, 7);
	CHECK_INT(f.ops->get_source(f.ctx, "gone", &got), 0);
	CHECK(got.tombstone);
	struct vmap_stats st;
	vmap_get_stats(m, &st);
	CHECK_INT(st.objects, 3);      /* names: a/b, the long one, gone */
	CHECK_INT(st.replicas, 1);     /* records of block sums */
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-east", "a/b", &rg), 0);
	CHECK_STR(rg.etag, "d41d8cd98f00b204e9800998ecf8427e");
	CHECK_INT(f.ops->get_sums(f.ctx, "dc-east", "a/b", &sums, &slen), 0);
	free(sums);
	/* a fact put later joins the name's record, the others stay */
	r.generation = 6;
	f.ops->put_replica(f.ctx, "dc-west", "a/b", &r);
	vmap_flush(m);
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-west", "a/b", &rg), 0);
	CHECK_INT(rg.generation, 6);
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-east", "a/b", &rg), 0);
	CHECK_INT(rg.generation, 7);
	CHECK_INT(f.ops->get_source(f.ctx, "a/b", &got), 0);
	CHECK_INT(got.generation, 7);
	vmap_close(m);

	/* another source is refused, with a message naming both */
	CHECK_INT(vmap_open(dir("rt"), "gcs http://x/other/", 64 << 20, &m, err,
			    sizeof(err)), -EEXIST);
	CHECK(strstr(err, "http://x/lake/") && strstr(err, "http://x/other/"));
}

static void survives_kill9(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct vmap *m;
		char err[256];
		if (vmap_open(dir("k9"), "id", 64 << 20, &m, err, sizeof(err)))
			_exit(1);
		struct facts f = vmap_facts(m);
		for (int i = 0; i < 1000; i++) {
			char name[32];
			struct source_fact s = source((uint64_t)i + 1);
			snprintf(name, sizeof(name), "obj-%d", i);
			f.ops->put_source(f.ctx, name, &s);
		}
		vmap_flush(m);
		/* more facts in flight when the process dies */
		for (int i = 1000; i < 2000; i++) {
			char name[32];
			struct source_fact s = source((uint64_t)i + 1);
			snprintf(name, sizeof(name), "obj-%d", i);
			f.ops->put_source(f.ctx, name, &s);
		}
		raise(SIGKILL);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	struct vmap *m;
	char err[256];
	CHECK_INT(vmap_open(dir("k9"), "id", 64 << 20, &m, err, sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	int found = 0;
	for (int i = 0; i < 1000; i++) {
		char name[32];
		struct source_fact got;
		snprintf(name, sizeof(name), "obj-%d", i);
		if (f.ops->get_source(f.ctx, name, &got) == 0 &&
		    got.generation == (uint64_t)i + 1)
			found++;
	}
	CHECK_INT(found, 1000);       /* everything flushed before the kill */
	/* and the map still takes writes */
	struct source_fact s = source(99);
	f.ops->put_source(f.ctx, "after", &s);
	vmap_flush(m);
	vmap_close(m);
}

static void stays_under_ceiling(void)
{
	struct vmap *m;
	char err[256];
	const uint64_t ceiling = 1 << 20;             /* 1 MiB: ~6,000 records */
	CHECK_INT(vmap_open(dir("evict"), "id", ceiling, &m, err, sizeof(err)),
		  0);
	struct facts f = vmap_facts(m);
	char name[200];
	for (int i = 0; i < 30000; i++) {
		struct source_fact s = source((uint64_t)i + 1);
		snprintf(name, sizeof(name), "tables/t/part-%06d-%0100d.parquet",
			 i, i);
		f.ops->put_source(f.ctx, name, &s);
		if (i % 1000 == 999)
			vmap_flush(m);
	}
	vmap_flush(m);
	struct vmap_stats st;
	vmap_get_stats(m, &st);
	CHECK(st.evicted > 0);
	CHECK(st.objects > 0 && st.objects < 30000);
	CHECK(st.used_bytes <= ceiling);
	/* the newest facts survive eviction */
	struct source_fact got;
	snprintf(name, sizeof(name), "tables/t/part-%06d-%0100d.parquet", 29999,
		 29999);
	CHECK_INT(f.ops->get_source(f.ctx, name, &got), 0);
	vmap_close(m);
}

static void part_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "tables/t/part-%06d-%0100d.parquet", i, i);
}

/* Once the map has evicted, small batches must not evict again: the fill
 * is measured by the pages in use, not by the file's high-water mark
 * (which never falls, so every later batch used to drop a quarter). */
static void evicts_once_not_every_batch(void)
{
	struct vmap *m;
	struct vmap_stats st;
	char err[256], name[200];
	const uint64_t ceiling = 1 << 20;
	int i = 0;

	CHECK_INT(vmap_open(dir("evict-once"), "id", ceiling, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	do {                                   /* fill until the first eviction */
		for (int k = 0; k < 100; k++, i++) {
			struct source_fact s = source((uint64_t)i + 1);
			part_name(name, sizeof(name), i);
			f.ops->put_source(f.ctx, name, &s);
		}
		vmap_flush(m);
		vmap_get_stats(m, &st);
	} while (st.evicted == 0 && i < 100000);
	CHECK(st.evicted > 0);
	uint64_t after_first = st.objects, evicted = st.evicted;

	for (int b = 0; b < 12; b++, i++) {    /* a dozen one-fact batches */
		struct source_fact s = source((uint64_t)i + 1);
		part_name(name, sizeof(name), i);
		f.ops->put_source(f.ctx, name, &s);
		vmap_flush(m);
	}
	vmap_get_stats(m, &st);
	CHECK_INT(st.evicted, evicted);
	CHECK_INT(st.objects, after_first + 12);
	CHECK(st.used_bytes <= ceiling);
	vmap_close(m);
}

/* Files in d whose name starts with prefix. */
static int count_files(const char *d, const char *prefix)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return -1;
	while ((e = readdir(dp)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(dp);
	return n;
}

/* A map with n facts, closed. */
static void make_map(const char *d, int n)
{
	struct vmap *m;
	char err[256], name[200];

	CHECK_INT(vmap_open(d, "id", 64 << 20, &m, err, sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	for (int i = 0; i < n; i++) {
		struct source_fact s = source((uint64_t)i + 1);
		part_name(name, sizeof(name), i);
		f.ops->put_source(f.ctx, name, &s);
	}
	vmap_close(m);
}

/* Opens an empty map where the damaged one was, which is kept aside. */
static void check_fresh(const char *d)
{
	struct vmap *m;
	struct vmap_stats st;
	struct source_fact got, s = source(5);
	char err[256], name[200];

	CHECK_INT(vmap_open(d, "id", 64 << 20, &m, err, sizeof(err)), 0);
	CHECK_INT(count_files(d, "data.mdb.corrupt-"), 1);
	vmap_get_stats(m, &st);
	CHECK_INT(st.objects, 0);
	part_name(name, sizeof(name), 0);
	struct facts f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, name, &got), -ENOENT);
	f.ops->put_source(f.ctx, name, &s);     /* and it takes writes */
	vmap_flush(m);
	vmap_close(m);
	CHECK_INT(vmap_open(d, "id", 64 << 20, &m, err, sizeof(err)), 0);
	f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, name, &got), 0);
	CHECK_INT(got.generation, 5);
	vmap_close(m);
}

static void corrupt_map_is_moved_aside(void)
{
	char path[1100], d[1024];
	unsigned char junk[8192];
	int fd;

	/* meta pages scribbled over: not an LMDB file any more */
	snprintf(d, sizeof(d), "%s", dir("scribbled"));
	make_map(d, 100);
	snprintf(path, sizeof(path), "%s/data.mdb", d);
	memset(junk, 0xa5, sizeof(junk));
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, junk, sizeof(junk), 0) == sizeof(junk));
	close(fd);
	check_fresh(d);

	/* truncated to half: its last pages are gone */
	snprintf(d, sizeof(d), "%s", dir("truncated"));
	make_map(d, 3000);
	snprintf(path, sizeof(path), "%s/data.mdb", d);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size / 2) == 0);
	check_fresh(d);

	/* another source's map is a configuration error: refused, kept */
	struct vmap *m;
	char err[256];
	CHECK_INT(vmap_open(d, "other", 64 << 20, &m, err, sizeof(err)),
		  -EEXIST);
	CHECK_INT(count_files(d, "data.mdb.corrupt-"), 1);
}

/* A child that, told to, takes the map's write lock and holds it until
 * its pipe closes: the writer then cannot commit. */
static pid_t lock_holder(const char *d, int *go, int *held)
{
	int to_child[2], from_child[2];
	char c;

	if (pipe(to_child) < 0 || pipe(from_child) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		close(to_child[1]);
		close(from_child[0]);
		if (read(to_child[0], &c, 1) != 1 || mdb_env_create(&env) ||
		    mdb_env_set_maxdbs(env, 4) ||
		    mdb_env_open(env, d, MDB_NOTLS, 0600) ||
		    mdb_txn_begin(env, NULL, 0, &txn))
			_exit(1);
		if (write(from_child[1], "l", 1) != 1)
			_exit(1);
		while (read(to_child[0], &c, 1) > 0)
			;
		mdb_txn_abort(txn);
		mdb_env_close(env);
		_exit(0);
	}
	close(to_child[0]);
	close(from_child[1]);
	*go = to_child[1];
	*held = from_child[0];
	return pid;
}

/* A writer that cannot keep up drops facts past the cap, counted, and
 * goes on once it can commit again. */
static void pending_is_bounded(void)
{
	struct vmap *m;
	struct vmap_stats st;
	struct source_fact got, s = source(3);
	char err[256], name[200], c;
	const int n = 40000;
	int go = -1, held = -1, status;
	pid_t pid = lock_holder(dir("pending"), &go, &held);

	CHECK(pid > 0);
	CHECK_INT(vmap_open(dir("pending"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	CHECK(write(go, "g", 1) == 1 && read(held, &c, 1) == 1);
	struct facts f = vmap_facts(m);
	for (int i = 0; i < n; i++) {
		part_name(name, sizeof(name), i);
		f.ops->put_source(f.ctx, name, &s);
	}
	vmap_get_stats(m, &st);
	CHECK(st.dropped >= (uint64_t)n - 2 * 16384 && st.dropped < (uint64_t)n);
	close(go);                          /* the child lets go */
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(held);
	vmap_flush(m);
	part_name(name, sizeof(name), 0);   /* queued before the cap: kept */
	CHECK_INT(f.ops->get_source(f.ctx, name, &got), 0);
	part_name(name, sizeof(name), n - 1);   /* past it: dropped */
	CHECK_INT(f.ops->get_source(f.ctx, name, &got), -ENOENT);
	f.ops->put_source(f.ctx, "after", &s);  /* and the writer goes on */
	vmap_flush(m);
	vmap_get_stats(m, &st);
	CHECK_INT(st.lost, 0);
	/* batches far smaller than the burst's index clear only their own
	 * entries: a batch of one after one of ten, in the same struct,
	 * must not find the ten's facts */
	for (int round = 1; round <= 4; round++) {
		uint64_t newest = 0;
		for (int k = 0; k < (round <= 2 ? 10 : 1); k++) {
			newest = (uint64_t)(round * 100 + k);
			struct source_fact v = source(newest);
			f.ops->put_source(f.ctx, "burst/after", &v);
		}
		CHECK_INT(f.ops->get_source(f.ctx, "burst/after", &got), 0);
		CHECK_INT(got.generation, newest);
		vmap_flush(m);
	}
	vmap_close(m);
	CHECK_INT(vmap_open(dir("pending"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, "after", &got), 0);
	vmap_close(m);
}

/* Batches that fail to commit (the file may not grow: EFBIG) are counted
 * as lost and release vmap_flush(); the writer commits again once it can.
 * In a child, so the file size limit stays there. */
static void failed_commit_does_not_wedge(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct vmap *m;
		struct vmap_stats st;
		struct source_fact got, s = source(4);
		struct rlimit was = { 0 }, lim;
		struct stat sb;
		char err[256], name[200], path[1100];

		signal(SIGXFSZ, SIG_IGN);
		CHECK_INT(vmap_open(dir("efbig"), "id", 64 << 20, &m, err,
				    sizeof(err)), 0);
		struct facts f = vmap_facts(m);
		f.ops->put_source(f.ctx, "before", &s);
		vmap_flush(m);
		snprintf(path, sizeof(path), "%s/data.mdb", dir("efbig"));
		CHECK(stat(path, &sb) == 0 && getrlimit(RLIMIT_FSIZE, &was) == 0);
		lim = was;
		lim.rlim_cur = (rlim_t)sb.st_size;
		CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
		for (int i = 0; i < 3000; i++) {
			part_name(name, sizeof(name), i);
			f.ops->put_source(f.ctx, name, &s);
		}
		vmap_flush(m);                  /* returns: not wedged */
		vmap_get_stats(m, &st);
		CHECK(st.lost > 0);
		CHECK(setrlimit(RLIMIT_FSIZE, &was) == 0);
		f.ops->put_source(f.ctx, "after", &s);
		vmap_flush(m);
		vmap_get_stats(m, &st);
		uint64_t lost = st.lost;
		vmap_close(m);
		CHECK_INT(vmap_open(dir("efbig"), "id", 64 << 20, &m, err,
				    sizeof(err)), 0);
		f = vmap_facts(m);
		CHECK_INT(f.ops->get_source(f.ctx, "before", &got), 0);
		CHECK_INT(f.ops->get_source(f.ctx, "after", &got), 0);
		CHECK(lost <= 3000);
		vmap_close(m);
		_exit(check_summary());
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Replicas get ids of their own, which last across a reopen; a map keeps
 * the facts of 255 replicas, and of more simply does not. */
static void replica_ids(void)
{
	struct vmap *m;
	char err[256], rep[32], name[32];
	struct replica_fact r = { .state = REPLICA_HOLDS }, g;
	void *sums;
	size_t slen;

	for (int pass = 0; pass < 2; pass++) {
		CHECK_INT(vmap_open(dir("ids"), "gcs http://x/lake/", 64 << 20,
				    &m, err, sizeof(err)), 0);
		struct facts f = vmap_facts(m);
		if (pass == 0) {
			for (int i = 0; i < 300; i++) {
				snprintf(rep, sizeof(rep), "site-%d", i);
				snprintf(name, sizeof(name), "n/%d", i % 7);
				r.generation = (uint64_t)i + 1;
				f.ops->put_replica(f.ctx, rep, name, &r);
				f.ops->put_sums(f.ctx, rep, name, rep,
						strlen(rep));
				if (i % 50 == 0)
					vmap_flush(m);  /* ids over batches */
			}
			vmap_flush(m);
		}
		for (int i = 0; i < 300; i++) {
			snprintf(rep, sizeof(rep), "site-%d", i);
			snprintf(name, sizeof(name), "n/%d", i % 7);
			int got = f.ops->get_replica(f.ctx, rep, name, &g);
			int sgot = f.ops->get_sums(f.ctx, rep, name, &sums,
						   &slen);
			if (i >= 255) {
				CHECK_INT(got, -ENOENT);
				CHECK_INT(sgot, -ENOENT);
				continue;
			}
			/* a record holds 16 replicas: the later ones of a
			 * name beyond that are not kept */
			if (i / 7 >= VMAP_RECORDS_REPLICAS_MAX) {
				CHECK_INT(got, -ENOENT);
			} else {
				CHECK_INT(got, 0);
				CHECK_INT(g.generation, i + 1);
			}
			CHECK_INT(sgot, 0);
			CHECK(slen == strlen(rep) && !memcmp(sums, rep, slen));
			free(sums);
		}
		vmap_close(m);
	}
}

/* The map compares keys its own way, in memcmp's order: a map made by it
 * reads back through LMDB's own comparison, every key in its place. */
static void keys_in_memcmp_order(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, d, prev = { 0, NULL }, g;
	size_t n = 0;

	make_map(dir("order"), 2000);
	bool opened = mdb_env_create(&env) == 0 &&
		      mdb_env_set_maxdbs(env, 6) == 0 &&
		      mdb_env_open(env, dir("order"), MDB_RDONLY, 0600) == 0 &&
		      mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
		      mdb_dbi_open(txn, "names", 0, &dbi) == 0 &&
		      mdb_cursor_open(txn, dbi, &cur) == 0;
	CHECK(opened);
	if (!opened)
		return;
	for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &d, op) == 0;
	     op = MDB_NEXT, n++) {
		CHECK(!prev.mv_data || memcmp(prev.mv_data, k.mv_data, 16) < 0);
		CHECK(mdb_get(txn, dbi, &k, &g) == 0 && g.mv_data == d.mv_data);
		prev = k;
	}
	CHECK_INT(n, 2000);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

struct looker {
	struct vmap *m;
	int misses;
	pthread_t th;
};

static void *looker_main(void *arg)
{
	struct looker *l = arg;
	struct facts f = vmap_facts(l->m);
	struct source_fact got;
	struct replica_fact rg;
	char name[200];

	for (int i = 0; i < 3000; i++) {
		part_name(name, sizeof(name), i % 500);
		if (f.ops->get_source(f.ctx, name, &got) < 0 ||
		    got.generation != (uint64_t)(i % 500) + 1)
			l->misses++;
		f.ops->get_replica(f.ctx, "dc-east", name, &rg);
	}
	return NULL;
}

/* Lookups from many threads while the writer commits, in rounds of
 * threads that end, so each round takes over the transactions the last
 * one left in its thread slots (run under ThreadSanitizer by tests/run). */
static void concurrent_lookups(void)
{
	struct vmap *m;
	char err[256], name[200];
	struct looker l[4];
	struct replica_fact r = { .state = REPLICA_HOLDS };

	make_map(dir("conc"), 500);
	CHECK_INT(vmap_open(dir("conc"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	for (int round = 0; round < 3; round++) {
		for (int t = 0; t < 4; t++) {
			l[t] = (struct looker){ .m = m };
			CHECK_INT(pthread_create(&l[t].th, NULL, looker_main,
						 &l[t]), 0);
		}
		for (int i = 0; i < 500; i++) {
			part_name(name, sizeof(name), i);
			r.generation = (uint64_t)round;
			f.ops->put_replica(f.ctx, "dc-east", name, &r);
		}
		for (int t = 0; t < 4; t++) {
			pthread_join(l[t].th, NULL);
			CHECK_INT(l[t].misses, 0);
		}
	}
	vmap_close(m);
}

/* Lookups are counted, and those the records held in memory answered:
 * the first lookup of a committed name reads LMDB, the next ones not. */
static void lookups_are_counted(void)
{
	struct vmap *m;
	struct vmap_stats st;
	char err[256];
	struct source_fact s = source(5), got;

	CHECK_INT(vmap_open(dir("counted"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	f.ops->put_source(f.ctx, "counted/a", &s);
	vmap_flush(m);
	for (int i = 0; i < 3; i++)
		CHECK_INT(f.ops->get_source(f.ctx, "counted/a", &got), 0);
	CHECK_INT(f.ops->get_source(f.ctx, "counted/none", &got), -ENOENT);
	vmap_get_stats(m, &st);
	CHECK_INT(st.lookups, 4);
	CHECK_INT(st.front_hits, 2);
	vmap_close(m);
}

/* Set "used" of every name record in the map in d to used (as if last
 * read long ago); or put the oldest record's into *oldest.  The count of
 * records. */
static int record_used(const char *d, bool set, uint32_t used,
		       uint32_t *oldest)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int n = 0;

	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 6) ||
	    mdb_env_open(env, d, set ? 0 : MDB_RDONLY, 0600))
		return -1;
	if (mdb_txn_begin(env, NULL, set ? 0 : MDB_RDONLY, &txn) ||
	    mdb_dbi_open(txn, "names", 0, &dbi) ||
	    mdb_cursor_open(txn, dbi, &cur)) {
		mdb_env_close(env);
		return -1;
	}
	for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
	     op = MDB_NEXT, n++) {
		if (!set) {
			uint32_t u = vmap_records_used(v.mv_data, v.mv_size);
			if (n == 0 || u < *oldest)
				*oldest = u;
			continue;
		}
		unsigned char copy[512];
		memcpy(copy, v.mv_data, v.mv_size);
		vmap_records_set_used(copy, v.mv_size, used);
		v.mv_data = copy;
		mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	}
	mdb_cursor_close(cur);
	if (set)
		mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

/* A record last used long ago is touched when read, and kept in memory
 * as touched: the next lookups are answered from memory, not from LMDB
 * (each touching it again), and the touch reaches the map with the next
 * batch. */
static void an_old_record_is_touched_once(void)
{
	struct vmap *m;
	struct vmap_stats st;
	char err[256];
	struct source_fact s = source(8), got;
	uint32_t used = 0;

	CHECK_INT(vmap_open(dir("old"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	f.ops->put_source(f.ctx, "old/a", &s);
	vmap_close(m);
	CHECK_INT(record_used(dir("old"), true, 1000, NULL), 1);

	CHECK_INT(vmap_open(dir("old"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	f = vmap_facts(m);
	for (int i = 0; i < 4; i++) {
		CHECK_INT(f.ops->get_source(f.ctx, "old/a", &got), 0);
		CHECK_INT(got.generation, 8);
	}
	vmap_get_stats(m, &st);
	CHECK_INT(st.lookups, 4);
	CHECK_INT(st.front_hits, 3);
	f.ops->put_source(f.ctx, "old/b", &s);   /* a batch carries it */
	vmap_close(m);
	CHECK_INT(record_used(dir("old"), false, 0, &used), 2);
	CHECK(used > 1000 + 60);                 /* old/a's was touched */
}

/* Thousands of facts queued at once, of the same names over and over:
 * a get finds each name's newest, as the batches' index grows. */
static void queued_facts_newest_first(void)
{
	struct vmap *m;
	char err[256], name[200];
	struct source_fact got;
	struct replica_fact rg;

	CHECK_INT(vmap_open(dir("queued"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	int older = 0;
	for (uint64_t round = 1; round <= 3; round++) {
		for (int i = 0; i < 1500; i++) {
			struct source_fact s = source(round * 10000 + (uint64_t)i);
			struct source_fact before = source(round);
			struct replica_fact r = { .state = REPLICA_HOLDS,
						  .generation = round };
			part_name(name, sizeof(name), i);
			/* an older fact first, mostly in the same batch */
			f.ops->put_source(f.ctx, name, &before);
			f.ops->put_source(f.ctx, name, &s);
			f.ops->put_replica(f.ctx, "dc-east", name, &r);
		}
		for (int i = 0; i < 1500; i++) {
			part_name(name, sizeof(name), i);
			if (f.ops->get_source(f.ctx, name, &got) < 0 ||
			    got.generation != round * 10000 + (uint64_t)i ||
			    f.ops->get_replica(f.ctx, "dc-east", name, &rg) < 0 ||
			    rg.generation != round)
				older++;
		}
	}
	CHECK_INT(older, 0);
	CHECK_INT(f.ops->get_source(f.ctx, "never/put", &got), -ENOENT);
	CHECK_INT(f.ops->get_replica(f.ctx, "dc-west", "never/put", &rg),
		  -ENOENT);
	vmap_close(m);
}

#define FRESH_NAMES 8
#define FRESH_PUTS 6000
#define FRESH_READERS 3

struct fresh {
	struct vmap *m;
	_Atomic uint64_t put[FRESH_NAMES];   /* the newest generation put */
	atomic_int done;
};

struct fresh_reader {
	struct fresh *fr;
	unsigned seed;
	int older;                           /* gets older than a put */
	uint64_t gets;
	pthread_t th;
};

static void fresh_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "warehouse/hot/part-%05d.parquet", i);
}

static void *fresh_reader_main(void *arg)
{
	struct fresh_reader *r = arg;
	struct facts f = vmap_facts(r->fr->m);
	struct source_fact got;
	struct replica_fact rg;
	char name[200];
	unsigned x = r->seed;

	while (!atomic_load(&r->fr->done)) {
		x = x * 1103515245u + 12345u;
		int i = (int)((x >> 16) % FRESH_NAMES);
		fresh_name(name, sizeof(name), i);
		/* another fact of the name first: its lookup may read the
		 * record while a newer source fact is still queued */
		if (x & 0x100)
			f.ops->get_replica(f.ctx, "dc-east", name, &rg);
		uint64_t want = atomic_load(&r->fr->put[i]);
		if (f.ops->get_source(f.ctx, name, &got) < 0 ? want > 0
		    : got.generation < want)
			r->older++;
		r->gets++;
	}
	return NULL;
}

/* A few names looked up again and again (so their records are kept in
 * front of LMDB) while a writer puts newer facts of them and commits:
 * a get never answers older than a put that returned before it began,
 * even when a lookup of another fact of the name read its record while
 * the put was queued. */
static void hot_names_are_never_older(void)
{
	struct vmap *m;
	char err[256], name[200];
	static struct fresh fr;
	struct fresh_reader r[FRESH_READERS];

	CHECK_INT(vmap_open(dir("fresh"), "id", 64 << 20, &m, err,
			    sizeof(err)), 0);
	struct facts f = vmap_facts(m);
	fr.m = m;
	for (int i = 0; i < FRESH_NAMES; i++) {
		struct replica_fact rf = { .state = REPLICA_HOLDS };
		fresh_name(name, sizeof(name), i);
		f.ops->put_replica(f.ctx, "dc-east", name, &rf);
	}
	vmap_flush(m);
	for (int t = 0; t < FRESH_READERS; t++) {
		r[t] = (struct fresh_reader){ .fr = &fr, .seed = 7u + (unsigned)t };
		CHECK_INT(pthread_create(&r[t].th, NULL, fresh_reader_main,
					 &r[t]), 0);
	}
	for (uint64_t g = 1; g <= FRESH_PUTS; g++) {
		int i = (int)(g % FRESH_NAMES);
		struct source_fact s = source(g);
		fresh_name(name, sizeof(name), i);
		f.ops->put_source(f.ctx, name, &s);
		atomic_store(&fr.put[i], g);
		if (g % 64 == 0) {
			vmap_flush(m);       /* the batches empty: gets go to
						the front and the map */
			usleep(200);
		}
	}
	atomic_store(&fr.done, 1);
	uint64_t gets = 0;
	for (int t = 0; t < FRESH_READERS; t++) {
		pthread_join(r[t].th, NULL);
		CHECK_INT(r[t].older, 0);
		gets += r[t].gets;
	}
	CHECK(gets > 0);
	vmap_close(m);
}

static const struct vmap_secret secret = { 1, 2, 3 };

static struct vmap_entry full_entry(void)
{
	static const char *etags[] = {
		"d41d8cd98f00b204e9800998ecf8427e",     /* an MD5: 16 bytes */
		"\"0123456789abcdef0123456789abcdef\"", /* quoted */
		"D41D8CD98F00B204E9800998ECF8427E",     /* upper case: text */
		"",
		"\"e1-3\"",
	};
	struct vmap_entry e = { .has_source = true };

	e.source = source(1760000000123456ULL);
	e.source.ctime_ns = 1760000000123000000LL;   /* generation * 1000 - */
	e.source.has_md5 = true;
	e.source.confirmed_ns = 1770000000999000000LL;  /* whole ms: kept */
	for (int i = 0; i < 5; i++) {
		struct replica_fact r = {
			.state = (enum replica_state)(i % 5),
			.generation = e.source.generation - (uint64_t)i,
			.size = e.source.size + (uint64_t)i * 3,
			.checked_ns = e.source.confirmed_ns -
				      i * 1000007 * NS_PER_MS };
		snprintf(r.etag, sizeof(r.etag), "%s", etags[i]);
		CHECK_INT(vmap_records_entry_set_replica(&e, (uint8_t)(100 + i),
							 &r), 0);
	}
	memset(e.rep[4].etag, 'x', HY_ETAG_MAX - 1);    /* the longest text */
	e.rep[4].etag[HY_ETAG_MAX - 1] = '\0';
	return e;
}

static bool same_replica(const struct replica_fact *a,
			 const struct replica_fact *b)
{
	return a->state == b->state && a->generation == b->generation &&
	       a->size == b->size && a->checked_ns == b->checked_ns &&
	       strcmp(a->etag, b->etag) == 0;
}

/* A name record round-trips every fact, and is small: an MD5 etag takes
 * 16 bytes, times are differences. */
static void records_round_trip(void)
{
	struct vmap_entry e = full_entry(), g;
	struct source_fact s;
	struct replica_fact r;
	size_t n;
	unsigned char *b = vmap_records_encode(&e, 77, 42, &n);

	CHECK_INT(vmap_records_decode(b, n, 77, &g), 0);
	CHECK(g.has_source && !memcmp(&g.source, &e.source, sizeof(s)));
	CHECK_INT(g.nrep, 5);
	for (unsigned i = 0; i < 5; i++)
		CHECK(g.rid[i] == e.rid[i] && same_replica(&g.rep[i], &e.rep[i]));
	CHECK_INT(vmap_records_decode_source(b, n, 77, &s), 0);
	CHECK(!memcmp(&s, &e.source, sizeof(s)));
	CHECK_INT(vmap_records_decode_replica(b, n, 77, 101, &r), 0);
	CHECK_STR(r.etag, "\"0123456789abcdef0123456789abcdef\"");
	CHECK_INT(vmap_records_decode_replica(b, n, 77, 99, &r), -ENOENT);
	CHECK_INT(vmap_records_used(b, n), 42);
	vmap_records_set_used(b, n, 43);
	CHECK_INT(vmap_records_used(b, n), 43);
	free(b);

	/* the common name: source and two replicas holding it, MD5 etags */
	struct vmap_entry c = { .has_source = true, .source = e.source };
	for (int i = 0; i < 2; i++) {
		struct replica_fact h = { .state = REPLICA_HOLDS,
					  .generation = e.source.generation,
					  .size = e.source.size,
					  .checked_ns = e.source.confirmed_ns +
							5 * NS_PER_MS };
		snprintf(h.etag, sizeof(h.etag), "\"%s\"", "d41d8cd98f00b204e9800998ecf8427e");
		vmap_records_entry_set_replica(&c, (uint8_t)(7 + i), &h);
	}
	b = vmap_records_encode(&c, 77, 42, &n);
	CHECK(n <= 112);
	free(b);

	/* a tombstone; replica facts with no source fact */
	struct vmap_entry t = { .has_source = true,
				.source = { .tombstone = true, .confirmed_ns = -9 } };
	b = vmap_records_encode(&t, 5, 1, &n);
	CHECK_INT(vmap_records_decode_source(b, n, 5, &s), 0);
	CHECK(s.tombstone && s.confirmed_ns == -9);
	free(b);
	struct vmap_entry o = { 0 };
	vmap_records_entry_set_replica(&o, 9, &e.rep[2]);
	b = vmap_records_encode(&o, 5, 1, &n);
	CHECK_INT(vmap_records_decode_source(b, n, 5, &s), -ENOENT);
	CHECK_INT(vmap_records_decode_replica(b, n, 5, 9, &r), 0);
	CHECK(same_replica(&r, &e.rep[2]));
	free(b);

	/* a record holds so many replicas, and says so */
	struct vmap_entry f = { 0 };
	for (unsigned i = 0; i < VMAP_RECORDS_REPLICAS_MAX; i++)
		CHECK_INT(vmap_records_entry_set_replica(&f, (uint8_t)i,
							 &e.rep[0]), 0);
	CHECK_INT(vmap_records_entry_set_replica(&f, 99, &e.rep[0]), -ENOSPC);
	CHECK_INT(vmap_records_entry_set_replica(&f, 3, &e.rep[1]), 0);

	/* names: keys and checks differ, replicas' ids too */
	unsigned char k1[16], k2[16];
	uint64_t c1, c2;
	vmap_records_name_hash(&secret, "a/b", k1, &c1);
	vmap_records_name_hash(&secret, "a/c", k2, &c2);
	CHECK(memcmp(k1, k2, 16) != 0 && c1 != c2);
	struct vmap_secret other = secret;
	other.k1++;
	vmap_records_name_hash(&other, "a/b", k2, &c2);
	CHECK(c1 != c2);              /* another map, another check */
}

/* Times come back exactly as they were put, however far out: facts are
 * ordered by them (a question's time against an answer's, a fact's
 * against when the change feed began to follow). */
static void records_keep_times(void)
{
	static const int64_t t[] = { 1770000000999999999LL, 1770000000000000001LL,
				     1770000000000000000LL, 1, 0, -1,
				     -1770000000000000001LL, INT64_MIN,
				     INT64_MAX };
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (size_t j = 0; j < sizeof(t) / sizeof(t[0]); j++) {
			struct vmap_entry e = { .has_source = true }, g;
			struct replica_fact r = { .state = REPLICA_HOLDS,
						  .checked_ns = t[j] };
			size_t n;
			e.source.confirmed_ns = t[i];
			CHECK_INT(vmap_records_entry_set_replica(&e, 1, &r), 0);
			unsigned char *b = vmap_records_encode(&e, 5, 1, &n);
			CHECK_INT(vmap_records_decode(b, n, 5, &g), 0);
			free(b);
			CHECK_INT(g.source.confirmed_ns, t[i]);
			CHECK_INT(g.rep[0].checked_ns, t[j]);
		}
}

/* Every truncation, a byte more, another check (another name under the
 * same key: a collision), another format or garbage reads as absent,
 * never past the record. */
static void records_reject_damage(void)
{
	struct vmap_entry e = full_entry(), g;
	struct source_fact s;
	struct replica_fact r;
	size_t n, off;
	unsigned char *b = vmap_records_encode(&e, 77, 42, &n), *big;

	for (size_t cut = 0; cut < n; cut++) {
		CHECK_INT(vmap_records_decode(b, cut, 77, &g), -ENOENT);
		CHECK_INT(vmap_records_decode_source(b, cut, 77, &s), -ENOENT);
		CHECK_INT(vmap_records_decode_replica(b, cut, 77, 100, &r),
			  -ENOENT);
	}
	big = malloc(n + 1);
	memcpy(big, b, n);
	big[n] = 0;
	CHECK_INT(vmap_records_decode(big, n + 1, 77, &g), -ENOENT);
	free(big);
	/* the collision: the same key holds the record of another check */
	CHECK_INT(vmap_records_decode(b, n, 78, &g), -ENOENT);
	CHECK_INT(vmap_records_decode_source(b, n, 78, &s), -ENOENT);
	CHECK_INT(vmap_records_decode_replica(b, n, 78, 100, &r), -ENOENT);
	b[0] = 1;                                      /* format 1 */
	CHECK_INT(vmap_records_decode(b, n, 77, &g), -ENOENT);
	b[0] = 2;                                      /* format 2 */
	CHECK_INT(vmap_records_decode(b, n, 77, &g), -ENOENT);
	b[0] = 3;
	b[1] |= 0x20;                                  /* an unknown flag */
	CHECK_INT(vmap_records_decode(b, n, 77, &g), -ENOENT);
	b[1] &= (unsigned char)~0x20;
	CHECK_INT(vmap_records_decode(b, n, 77, &g), 0);
	/* garbage: every byte flipped in turn decodes to a fact or nothing,
	 * and no flip of the check is taken */
	for (size_t i = 0; i < n; i++) {
		b[i] ^= 0xff;
		int rc = vmap_records_decode(b, n, 77, &g);
		CHECK(rc == 0 || rc == -ENOENT);
		if (i >= 6 && i < 14)
			CHECK_INT(rc, -ENOENT);
		b[i] ^= 0xff;
	}
	free(b);

	/* a replica counted twice, a state past the last */
	struct vmap_entry d = { 0 };
	vmap_records_entry_set_replica(&d, 1, &e.rep[3]);
	vmap_records_entry_set_replica(&d, 2, &e.rep[3]);
	b = vmap_records_encode(&d, 5, 1, &n);
	CHECK_INT(vmap_records_decode(b, n, 5, &g), 0);
	size_t second = 14 + 1 + (n - 15) / 2;     /* the two are alike */
	uint64_t one = 1;
	memcpy(b + second, &one, 8);
	CHECK_INT(vmap_records_decode(b, n, 5, &g), -ENOENT);
	b[15 + 8] = REPLICA_BAD + 1;
	CHECK_INT(vmap_records_decode(b, n, 5, &g), -ENOENT);
	free(b);

	/* sums */
	b = vmap_records_encode_sums(77, "SUMS", 4, 1, &n);
	CHECK_INT(vmap_records_decode_sums(b, n, 77, &off), 0);
	CHECK(n - off == 4 && !memcmp(b + off, "SUMS", 4));
	CHECK_INT(vmap_records_decode_sums(b, off - 1, 77, &off), -ENOENT);
	CHECK_INT(vmap_records_decode_sums(b, n, 78, &off), -ENOENT);
	CHECK_INT(vmap_records_decode(b, n, 77, &g), -ENOENT);
	free(b);
	CHECK_INT(vmap_records_used((const unsigned char *)"", 0), 0);
}

/* Raw LMDB on a closed map: its secret, and the record under key. */
static MDB_env *raw_open(const char *d, MDB_txn **txn, MDB_dbi *meta,
			 MDB_dbi *names)
{
	MDB_env *env;
	CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 6) == 0 &&
	      mdb_env_open(env, d, 0, 0600) == 0 &&
	      mdb_txn_begin(env, NULL, 0, txn) == 0 &&
	      mdb_dbi_open(*txn, "meta", 0, meta) == 0 &&
	      mdb_dbi_open(*txn, "names", 0, names) == 0);
	return env;
}

/* A key collision on disk: name A's key holds name B's record.  A reads
 * as unknown (never B's facts), and a fact put for A replaces it. */
static void collision_is_not_found(void)
{
	struct vmap *m;
	struct vmap_secret sec;
	struct source_fact got, sb = source(11), sa = source(22);
	char err[256];
	unsigned char ka[16], kb[16];
	uint64_t ca, cb;
	MDB_txn *txn;
	MDB_dbi meta, names;
	MDB_val k, d;

	CHECK_INT(vmap_open(dir("coll"), "id", 64 << 20, &m, err, sizeof(err)),
		  0);
	struct facts f = vmap_facts(m);
	f.ops->put_source(f.ctx, "b", &sb);
	vmap_close(m);

	MDB_env *env = raw_open(dir("coll"), &txn, &meta, &names);
	k = (MDB_val){ 6, "secret" };
	CHECK(mdb_get(txn, meta, &k, &d) == 0 && d.mv_size == sizeof(sec));
	memcpy(&sec, d.mv_data, sizeof(sec));
	vmap_records_name_hash(&sec, "a", ka, &ca);
	vmap_records_name_hash(&sec, "b", kb, &cb);
	k = (MDB_val){ 16, kb };
	CHECK(mdb_get(txn, names, &k, &d) == 0);
	CHECK_INT(vmap_records_decode_source(d.mv_data, d.mv_size, cb, &got), 0);
	k = (MDB_val){ 16, ka };
	CHECK(mdb_put(txn, names, &k, &d, 0) == 0);   /* B's record at A's key */
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);

	CHECK_INT(vmap_open(dir("coll"), "id", 64 << 20, &m, err, sizeof(err)),
		  0);
	f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, "a", &got), -ENOENT);
	CHECK_INT(f.ops->get_source(f.ctx, "b", &got), 0);
	CHECK_INT(got.generation, 11);
	f.ops->put_source(f.ctx, "a", &sa);
	vmap_flush(m);
	CHECK_INT(f.ops->get_source(f.ctx, "a", &got), 0);
	CHECK_INT(got.generation, 22);
	vmap_close(m);
}

/* A map of format 1 (a record per fact, in "objects" and "replicas") is
 * emptied and started again, and its old databases are deleted. */
static void old_format_starts_afresh(void)
{
	struct vmap *m;
	struct vmap_stats st;
	struct source_fact got, s = source(3);
	char err[256];
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi meta = 0, objects = 0, dbi = 0;
	uint32_t one = 1;

	make_map(dir("v1"), 10);
	bool opened = mdb_env_create(&env) == 0 &&
		      mdb_env_set_maxdbs(env, 6) == 0 &&
		      mdb_env_open(env, dir("v1"), 0, 0600) == 0 &&
		      mdb_txn_begin(env, NULL, 0, &txn) == 0 &&
		      mdb_dbi_open(txn, "meta", 0, &meta) == 0 &&
		      mdb_dbi_open(txn, "objects", MDB_CREATE, &objects) == 0;
	CHECK(opened);
	if (!opened)
		return;
	MDB_val k = { 6, "schema" }, d = { 4, &one };
	CHECK(mdb_put(txn, meta, &k, &d, 0) == 0);
	k = (MDB_val){ 3, "key" };
	d = (MDB_val){ 5, "value" };
	CHECK(mdb_put(txn, objects, &k, &d, 0) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);

	CHECK_INT(vmap_open(dir("v1"), "id", 64 << 20, &m, err, sizeof(err)),
		  0);
	vmap_get_stats(m, &st);
	CHECK_INT(st.objects, 0);
	struct facts f = vmap_facts(m);
	f.ops->put_source(f.ctx, "new", &s);
	vmap_close(m);
	CHECK_INT(count_files(dir("v1"), "data.mdb.corrupt-"), 0);

	CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 6) == 0 &&
	      mdb_env_open(env, dir("v1"), 0, 0600) == 0 &&
	      mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
	CHECK_INT(mdb_dbi_open(txn, "objects", 0, &dbi), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	CHECK_INT(vmap_open(dir("v1"), "id", 64 << 20, &m, err, sizeof(err)),
		  0);
	f = vmap_facts(m);
	CHECK_INT(f.ops->get_source(f.ctx, "new", &got), 0);
	vmap_close(m);
}

int main(void)
{
	const char *t = getenv("HYLAKE_TEST_TMP");
	snprintf(base, sizeof(base), "%s/vmap-test-%d", t ? t : "/tmp",
		 (int)getpid());
	mkdir(base, 0700);
	records_round_trip();
	records_keep_times();
	replica_ids();
	keys_in_memcmp_order();
	concurrent_lookups();
	lookups_are_counted();
	an_old_record_is_touched_once();
	queued_facts_newest_first();
	hot_names_are_never_older();
	records_reject_damage();
	roundtrip();
	collision_is_not_found();
	old_format_starts_afresh();
	survives_kill9();
	stays_under_ceiling();
	evicts_once_not_every_batch();
	corrupt_map_is_moved_aside();
	pending_is_bounded();
	failed_commit_does_not_wedge();
	CHECK_INT(remove_tree(base), 0);
	return check_summary();
}
