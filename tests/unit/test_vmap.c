/*
 * The version map on a real LMDB environment: facts round-trip, batches
 * are visible before they commit, the map survives close and kill -9,
 * refuses another source, and stays under its ceiling by evicting.
 */
#include "cache/vmap.h"
#include "cache/vmap_records.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
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
				 .confirmed_ns = 42 };
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
	CHECK_INT(st.objects, 3);
	CHECK_INT(st.replicas, 1);
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

/* The records alone (vmap_records.c): every truncation, another name or
 * another format reads as absent, never past the record. */
static void records_reject_damage(void)
{
	struct source_fact f = { .generation = 5, .size = 9, .has_crc32c = true,
				 .crc32c = 0xabcd }, g;
	struct replica_fact r = { .state = REPLICA_BAD, .generation = 5 }, q;
	size_t n, off;
	unsigned char *b;

	snprintf(r.etag, sizeof(r.etag), "\"e1\"");
	b = vmap_records_encode_object("a/b", &f, 42, &n);
	CHECK_INT(vmap_records_decode_object(b, n, "a/b", &g), 0);
	CHECK(g.generation == 5 && g.has_crc32c && g.crc32c == 0xabcd);
	CHECK_INT(vmap_records_used(b, n), 42);
	vmap_records_set_used(b, n, 43);
	CHECK_INT(vmap_records_used(b, n), 43);
	for (size_t cut = 0; cut < n; cut++)
		CHECK_INT(vmap_records_decode_object(b, cut, "a/b", &g), -ENOENT);
	CHECK_INT(vmap_records_decode_object(b, n, "a/c", &g), -ENOENT);
	b[0] = 2;
	CHECK_INT(vmap_records_decode_object(b, n, "a/b", &g), -ENOENT);
	free(b);

	b = vmap_records_encode_replica("a/b", &r, 1, &n);
	CHECK_INT(vmap_records_decode_replica(b, n, "a/b", &q), 0);
	CHECK_STR(q.etag, "\"e1\"");
	CHECK(q.state == REPLICA_BAD);
	for (size_t cut = 0; cut < n; cut++)
		CHECK_INT(vmap_records_decode_replica(b, cut, "a/b", &q), -ENOENT);
	free(b);

	b = vmap_records_encode_sums("a/b", "SUMS", 4, 1, &n);
	CHECK_INT(vmap_records_decode_sums(b, n, "a/b", &off), 0);
	CHECK(n - off == 4 && !memcmp(b + off, "SUMS", 4));
	CHECK_INT(vmap_records_decode_sums(b, off - 1, "a/b", &off), -ENOENT);
	CHECK_INT(vmap_records_decode_sums(b, n, "a/bc", &off), -ENOENT);
	free(b);
	CHECK_INT(vmap_records_used((const unsigned char *)"", 0), 0);
}

int main(void)
{
	const char *t = getenv("HYLAKE_TEST_TMP");
	snprintf(base, sizeof(base), "%s/vmap-test-%d", t ? t : "/tmp",
		 (int)getpid());
	mkdir(base, 0700);
	records_reject_damage();
	roundtrip();
	survives_kill9();
	stays_under_ceiling();
	evicts_once_not_every_batch();
	corrupt_map_is_moved_aside();
	pending_is_bounded();
	failed_commit_does_not_wedge();
	return check_summary();
}
