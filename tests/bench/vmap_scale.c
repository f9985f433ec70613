/*
 * vmap_scale.c - the version map (cache/vmap.c) at lake scale.
 *
 * Fills a map with N names like a lakehouse's (60-200 bytes: Parquet
 * parts under partition folders, Delta commits), each with the facts an
 * open leaves behind: the source's version and what each replica holds,
 * all through the facts interface the router uses.  Then it measures:
 *
 *   fill      facts written per second (one producer; puts and commits)
 *   size      data.mdb's length and the pages in use, per name
 *   lookups   get_source calls per second from 1..T threads, per core;
 *             and per second of the lookup threads' own CPU time, which
 *             other jobs on a shared machine do not move: each thread
 *             cycles through POOL names drawn from all N, and then
 *             through a hot set of --hot names (the files of the tables
 *             a node's queries read, opened again and again)
 *   open      the time of the lookups an open makes (get_source, then
 *             get_replica for each replica), p50/p99, at N names against
 *             a near-empty map
 *   LMDB      the same lookups as LMDB's own mdb_get, on the same file
 *             (keys sampled from its names database by a cursor), in a
 *             read transaction renewed per lookup as the map's are: what
 *             the B-tree walk itself costs, the baseline of the lookups
 *   eviction  the map reopened with a ceiling just above what it uses,
 *             more names put, while a reader times its open lookups:
 *             p99.9 and max, and whether the map stayed under the ceiling
 *
 * Not a test: it exits 0 whatever the figures.  Progress goes to stderr,
 * the table to stdout.  The maps live under --dir and are removed at the
 * end (unless --keep).
 */
#include "cache/vmap.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_LEN 256
#define POOL 262144               /* names each lookup thread cycles through */
#define CHUNK 8192                /* facts put between two flushes */
#define CHUNK_EVICT 1024          /* the same while evicting: batches of a
                                     few ms, as a mount makes them */
#define MAX_THREADS 16
#define SMALL_NAMES 1000
#define FILL_CEILING ((uint64_t)32 << 30)

static const char *replica_names[] = { "dc-east", "dc-west", "dc-north" };

struct opts {
	uint64_t entries;
	const char *dir;
	int replicas;
	int threads;
	double seconds;
	uint64_t evict_puts;
	uint64_t hot;
	int keep;
};

/* ---- names and facts, reproducible from an index ---- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A uuid made of mix(i) (unique per i: mix is a bijection) and more bits. */
static void uuid_of(uint64_t i, uint64_t salt, char out[37])
{
	uint64_t a = mix(i), b = mix(i ^ salt);
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012" PRIx64,
		 (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
		 (unsigned)a & 0xffff, (unsigned)(b >> 48),
		 b & (uint64_t)0xffffffffffff);
}

static void name_of(uint64_t i, char out[NAME_LEN])
{
	static const char *regions[] = { "us", "europe-west4", "asia-southeast1",
					 "northamerica-northeast2" };
	static const char *sources[] = { "clickstream", "payments",
					 "iot-telemetry-gateway" };
	uint64_t h = mix(i * 7 + 3);
	unsigned db = h % 40, tb = (h >> 8) % 400, mo = 1 + (h >> 20) % 12,
		 dy = 1 + (h >> 24) % 28, part = (h >> 32) % 2000;
	char u[37], v[37];

	uuid_of(i, 0x5bd1e995, u);
	switch (h % 10) {
	case 8:   /* a Delta commit: ~60 bytes */
		snprintf(out, NAME_LEN, "warehouse/db_%02u/table_%03u/_delta_log/"
			 "%020" PRIu64 ".json", db, tb, i);
		break;
	case 6:
	case 7:   /* more partition columns: 140-170 bytes */
		snprintf(out, NAME_LEN, "warehouse/db_%02u/table_%03u/region=%s/"
			 "date=2026-%02u-%02u/hour=%02u/part-%05u-%s.c000.zstd"
			 ".parquet", db, tb, regions[(h >> 40) % 4], mo, dy,
			 (unsigned)(h >> 44) % 24, part, u);
		break;
	case 9:   /* raw landing zone, two uuids: ~190 bytes */
		uuid_of(i, 0x2545f491, v);
		snprintf(out, NAME_LEN, "lake/raw/events/source=%s/ingest_date="
			 "2026-%02u-%02u/batch_%08x/part-%05u-%s-%s.c000.snappy"
			 ".parquet", sources[(h >> 40) % 3], mo, dy,
			 (unsigned)(h >> 16), part, u, v);
		break;
	default:  /* the common case: ~110 bytes */
		snprintf(out, NAME_LEN, "warehouse/db_%02u/table_%03u/date=2026-"
			 "%02u-%02u/part-%05u-%s.c000.snappy.parquet", db, tb,
			 mo, dy, part, u);
	}
}

static void source_of(uint64_t i, int64_t now, struct source_fact *f)
{
	uint64_t h = mix(i ^ 0xfeed);
	memset(f, 0, sizeof(*f));
	f->generation = 1760000000000000ULL + (h % 100000000000ULL);
	f->metageneration = 1;
	f->size = (1 << 20) + h % (512ULL << 20);
	f->ctime_ns = (int64_t)f->generation * 1000;
	f->crc32c = (uint32_t)h;
	f->has_crc32c = true;
	f->has_md5 = true;
	for (int k = 0; k < 16; k++)
		f->md5[k] = (unsigned char)(mix(h + k) >> 7);
	f->confirmed_ns = now;
}

/* What replica r holds: the first holds the current version, the others
 * mostly do, some lag. */
static void replica_of(uint64_t i, int r, const struct source_fact *s,
		       int64_t now, struct replica_fact *f)
{
	uint64_t h = mix(i ^ (0xabcULL << r));
	memset(f, 0, sizeof(*f));
	f->state = REPLICA_HOLDS;
	f->generation = s->generation - (r && h % 10 == 0 ? 1000 : 0);
	f->size = s->size;
	f->checked_ns = now;
	/* an S3 ETag: the quoted hex md5 of a single-part upload */
	snprintf(f->etag, sizeof(f->etag), "\"%016" PRIx64 "%016" PRIx64 "\"",
		 mix(h), mix(h + 1));
}

/* ---- helpers ---- */

static double secs_since(int64_t t0)
{
	return (double)(mono_ns() - t0) / 1e9;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct lat {
	uint32_t *ns;
	size_t n, alloc;
};

static void lat_add(struct lat *l, int64_t ns)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 65536;
		l->ns = realloc(l->ns, l->alloc * sizeof(*l->ns));
		if (!l->ns)
			abort();
	}
	l->ns[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Percentile p (0..100) in microseconds, of sorted samples. */
static double pct_us(const struct lat *l, double p)
{
	if (!l->n)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
	return l->ns[k] / 1e3;
}

static uint64_t file_size(const char *dir)
{
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static struct vmap *open_map(const char *dir, uint64_t map_size)
{
	char err[512];
	struct vmap *m;
	int rc = vmap_open(dir, "gcs:bench/lake", map_size, &m, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "vmap_scale: %s\n", err);
		exit(1);
	}
	return m;
}

/* ---- fill ---- */

struct fill_result {
	double secs;
	uint64_t facts;
	double max_flush_ms;      /* the longest wait for one chunk's commit */
};

/* Put the facts of names [from, to); flush every chunk facts. */
static void fill(struct vmap *m, uint64_t from, uint64_t to, int replicas,
		 uint64_t chunk, struct fill_result *res)
{
	struct facts fx = vmap_facts(m);
	char name[NAME_LEN];
	struct source_fact s;
	struct replica_fact rf;
	uint64_t queued = 0;
	int64_t t0 = mono_ns(), now = wall_ns();

	memset(res, 0, sizeof(*res));
	for (uint64_t i = from; i < to; i++) {
		name_of(i, name);
		source_of(i, now, &s);
		fx.ops->put_source(fx.ctx, name, &s);
		for (int r = 0; r < replicas; r++) {
			replica_of(i, r, &s, now, &rf);
			fx.ops->put_replica(fx.ctx, replica_names[r], name, &rf);
		}
		queued += 1 + (uint64_t)replicas;
		res->facts += 1 + (uint64_t)replicas;
		if (queued >= chunk || i + 1 == to) {
			int64_t f0 = mono_ns();
			vmap_flush(m);
			double ms = (double)(mono_ns() - f0) / 1e6;
			if (ms > res->max_flush_ms)
				res->max_flush_ms = ms;
			queued = 0;
		}
		if ((i - from) % 1000000 == 999999)
			fprintf(stderr, "  %" PRIu64 "M names, %.0f s\n",
				(i - from + 1) / 1000000, secs_since(t0));
	}
	res->secs = secs_since(t0);
}

/* ---- lookups ---- */

/* LMDB's own lookups: the map's file opened read-only, and keys drawn
 * from it. */
struct raw {
	MDB_env *env;
	MDB_dbi dbi;
	unsigned char *keys;      /* n keys of klen[k] bytes, RAW_KEY apart */
	size_t *klen;
	size_t n;                 /* POOL, or fewer in a smaller map */
};

#define RAW_KEY 64

struct reader {
	struct vmap *m;
	struct raw *raw;          /* not NULL: mdb_get of raw's keys instead */
	uint64_t entries;
	int replicas;
	int open_path;            /* time each open's lookups */
	unsigned seed;
	char *names;              /* POOL names of NAME_LEN */
	atomic_int *stop;
	uint64_t done, found;
	double cpu_secs;          /* the thread's CPU time in its last run */
	struct lat lat;
	pthread_t th;
};

static void pool_fill(struct reader *rd)
{
	rd->names = malloc((size_t)POOL * NAME_LEN);
	if (!rd->names)
		abort();
	uint64_t x = mix(rd->seed);
	for (size_t k = 0; k < POOL; k++) {
		x = mix(x);
		name_of(x % rd->entries, rd->names + k * NAME_LEN);
	}
}

/* mdb_get of the pool's keys, each in a read transaction renewed for it. */
static void raw_lookups(struct reader *rd)
{
	struct raw *raw = rd->raw;
	MDB_txn *txn;

	if (mdb_txn_begin(raw->env, NULL, MDB_RDONLY, &txn))
		abort();
	mdb_txn_reset(txn);
	for (size_t k = 0; !atomic_load_explicit(rd->stop, memory_order_relaxed);
	     k = (k + 1) % raw->n) {
		MDB_val key = { raw->klen[k], raw->keys + k * RAW_KEY }, d;
		if (mdb_txn_renew(txn))
			abort();
		if (mdb_get(txn, raw->dbi, &key, &d) == 0)
			rd->found++;
		mdb_txn_reset(txn);
		rd->done++;
	}
	mdb_txn_abort(txn);
}

/* get_source of the pool's names (and get_replica, timed, on the open
 * path), through the map. */
static void map_lookups(struct reader *rd)
{
	struct facts fx = vmap_facts(rd->m);
	struct source_fact s;
	struct replica_fact rf;

	for (size_t k = 0; !atomic_load_explicit(rd->stop, memory_order_relaxed);
	     k = (k + 1) % POOL) {
		const char *name = rd->names + k * NAME_LEN;
		int64_t t0 = rd->open_path ? mono_ns() : 0;
		if (fx.ops->get_source(fx.ctx, name, &s) == 0)
			rd->found++;
		if (rd->open_path) {
			for (int r = 0; r < rd->replicas; r++)
				fx.ops->get_replica(fx.ctx, replica_names[r],
						    name, &rf);
			lat_add(&rd->lat, mono_ns() - t0);
		}
		rd->done++;
	}
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct timespec c0, c1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	if (rd->raw)
		raw_lookups(rd);
	else
		map_lookups(rd);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	rd->cpu_secs = (double)(c1.tv_sec - c0.tv_sec) +
		       (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	return NULL;
}

/* Run n readers for secs; they keep their pools between runs. */
static void run_readers(struct reader *rd, int n, double secs)
{
	atomic_int stop = 0;
	for (int t = 0; t < n; t++) {
		rd[t].stop = &stop;
		rd[t].done = rd[t].found = 0;
		rd[t].lat.n = 0;
		if (pthread_create(&rd[t].th, NULL, reader_main, &rd[t]))
			abort();
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, 1);
	for (int t = 0; t < n; t++) {
		pthread_join(rd[t].th, NULL);
		if (rd[t].lat.n)
			qsort(rd[t].lat.ns, rd[t].lat.n, sizeof(uint32_t),
			      cmp_u32);
	}
}

static void readers_init(struct reader *rd, int n, struct vmap *m,
			 uint64_t entries, int replicas)
{
	for (int t = 0; t < n; t++) {
		memset(&rd[t], 0, sizeof(rd[t]));
		rd[t].m = m;
		rd[t].entries = entries;
		rd[t].replicas = replicas;
		rd[t].seed = 1000u + (unsigned)t;
		pool_fill(&rd[t]);
	}
}

static void readers_release(struct reader *rd, int n)
{
	for (int t = 0; t < n; t++) {
		free(rd[t].names);
		free(rd[t].lat.ns);
	}
}

struct rates {
	double rate[MAX_THREADS + 1];      /* lookups/s with n threads */
	double cpu_rate[MAX_THREADS + 1];  /* per second of their CPU time */
};

/* Lookups from 1..threads readers, o->seconds each, after a warm-up. */
static void measure_lookups(struct reader *rd, const struct opts *o,
			    struct rates *r)
{
	run_readers(rd, 1, 0.5);
	for (int n = 1; n <= o->threads; n++) {
		uint64_t done = 0, found = 0;
		double cpu = 0;
		run_readers(rd, n, o->seconds);
		for (int t = 0; t < n; t++) {
			done += rd[t].done;
			found += rd[t].found;
			cpu += rd[t].cpu_secs;
		}
		r->rate[n] = (double)done / o->seconds;
		r->cpu_rate[n] = cpu > 0 ? (double)done / cpu : 0;
		if (found != done)
			fprintf(stderr, "  %" PRIu64 " of %" PRIu64 " lookups "
				"missed\n", done - found, done);
	}
}

/* base: LMDB's own rates for the same names, or NULL; raw: these are
 * LMDB's own. */
static void print_rates(const char *what, const struct rates *r,
			const struct rates *base, bool raw,
			const struct opts *o, long ncpu)
{
	for (int n = 1; n <= o->threads; n++) {
		printf("| %s/s, %s, %d thread%s | %.0f (%.0f per core; "
		       "%.0f per CPU-second)", raw ? "mdb_get" : "get_source",
		       what, n, n > 1 ? "s" : " ", r->rate[n],
		       r->rate[n] / (double)(n < ncpu ? n : ncpu),
		       r->cpu_rate[n]);
		if (base && base->cpu_rate[n] > 0)
			printf(" %.2fx LMDB's own per CPU-second;",
			       r->cpu_rate[n] / base->cpu_rate[n]);
		printf("%s |\n", raw ? "" : " target >= 1000000 per core");
	}
}

/* Open the map in dir read-only as LMDB alone, and draw POOL keys of its
 * names database (all of them when it holds fewer), evenly at random
 * (reservoir sampling over a cursor). */
static void raw_open(const char *dir, struct raw *raw)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t seen = 0, x = mix(77);

	raw->keys = calloc(POOL, RAW_KEY);
	raw->klen = calloc(POOL, sizeof(*raw->klen));
	if (!raw->keys || !raw->klen || mdb_env_create(&raw->env) ||
	    mdb_env_set_maxdbs(raw->env, 16) ||
	    mdb_env_set_maxreaders(raw->env, 512) ||
	    mdb_env_set_mapsize(raw->env, FILL_CEILING) ||
	    mdb_env_open(raw->env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD,
			 0600) ||
	    mdb_txn_begin(raw->env, NULL, MDB_RDONLY, &txn) ||
	    mdb_dbi_open(txn, "names", 0, &raw->dbi) ||
	    mdb_cursor_open(txn, raw->dbi, &c)) {
		fprintf(stderr, "vmap_scale: %s: not opened as LMDB\n", dir);
		exit(1);
	}
	for (int rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint64_t at = seen++;
		if (at >= POOL) {
			x = mix(x);
			at = x % seen;
		}
		if (at < POOL && k.mv_size <= RAW_KEY) {
			memcpy(raw->keys + at * RAW_KEY, k.mv_data, k.mv_size);
			raw->klen[at] = k.mv_size;
		}
	}
	mdb_cursor_close(c);
	raw->n = seen < POOL ? (size_t)seen : POOL;
	if (!raw->n || mdb_txn_commit(txn)) {          /* which keeps the dbi open */
		fprintf(stderr, "vmap_scale: %s: not read\n", dir);
		exit(1);
	}
}

static void raw_close(struct raw *raw)
{
	mdb_env_close(raw->env);
	free(raw->keys);
	free(raw->klen);
}

/* ---- the run ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: vmap_scale [--entries N] [--dir DIR] [--replicas R]\n"
		"                  [--threads T] [--seconds S] [--evict-puts N] [--hot H]\n"
		"                  [--keep]\n"
		"  --entries N     names in the map (default 10000000)\n"
		"  --dir DIR       where the maps are made (default /tmp)\n"
		"  --replicas R    replica facts per name, 0-3 (default 2)\n"
		"  --threads T     lookup threads, 1..T (default: cores)\n"
		"  --seconds S     each lookup measurement (default 3)\n"
		"  --evict-puts N  names put while eviction runs (default N/5)\n"
		"  --hot H         names of the hot set (default 10000)\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	o->entries = 10000000;
	o->dir = "/tmp";
	o->replicas = 2;
	o->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	o->seconds = 3;
	o->evict_puts = 0;
	o->hot = 10000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--keep")) {
			o->keep = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--entries"))
			o->entries = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--dir"))
			o->dir = v;
		else if (!strcmp(a, "--replicas"))
			o->replicas = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--threads"))
			o->threads = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--seconds"))
			o->seconds = strtod(v, NULL);
		else if (!strcmp(a, "--evict-puts"))
			o->evict_puts = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--hot"))
			o->hot = strtoull(v, NULL, 10);
		else
			usage();
	}
	if (o->entries < 1 || o->replicas < 0 || o->replicas > 3 ||
	    o->threads < 1 || o->threads > MAX_THREADS || o->seconds <= 0 ||
	    o->hot < 1)
		usage();
	if (!o->evict_puts)
		o->evict_puts = o->entries / 5 ? o->entries / 5 : 1;
}

static void print_open(const char *what, const struct reader *rd)
{
	printf("| open lookups, %-24s | p50 %.2f us, p99 %.2f us, p99.9 %.2f us, "
	       "max %.0f us (%zu opens) |\n", what, pct_us(&rd->lat, 50),
	       pct_us(&rd->lat, 99), pct_us(&rd->lat, 99.9),
	       pct_us(&rd->lat, 100), rd->lat.n);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	char big[4096], small[4096];
	struct vmap_stats st;
	struct fill_result fr, er;
	struct reader rd[MAX_THREADS], sr;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	parse(argc, argv, &o);
	log_level = getenv("VMAP_SCALE_LOG") ? LOG_DEBUG : LOG_WARNING;
	snprintf(big, sizeof(big), "%s/vmap_scale.%d", o.dir, (int)getpid());
	snprintf(small, sizeof(small), "%s/vmap_scale.%d.small", o.dir,
		 (int)getpid());

	/* fill */
	fprintf(stderr, "filling %" PRIu64 " names into %s\n", o.entries, big);
	struct vmap *m = open_map(big, FILL_CEILING);
	fill(m, 0, o.entries, o.replicas, CHUNK, &fr);
	vmap_get_stats(m, &st);
	vmap_close(m);
	uint64_t fsize = file_size(big), used = st.used_bytes;
	uint64_t dropped = st.dropped, lost = st.lost;

	/* lookups, after a reopen (as after a restart) */
	fprintf(stderr, "lookups\n");
	m = open_map(big, FILL_CEILING);
	readers_init(rd, o.threads, m, o.entries, o.replicas);
	struct rates all, hot;
	measure_lookups(rd, &o, &all);
	rd[0].open_path = 1;
	run_readers(rd, 1, o.seconds);
	rd[0].open_path = 0;
	/* the hot set: names 0..hot-1, drawn into each thread's pool */
	struct reader hr[MAX_THREADS];
	readers_init(hr, o.threads, m, o.hot < o.entries ? o.hot : o.entries,
		     o.replicas);
	measure_lookups(hr, &o, &hot);
	readers_release(hr, o.threads);
	vmap_close(m);

	/* the same lookups as LMDB's own */
	fprintf(stderr, "LMDB's own lookups\n");
	struct raw raw;
	struct rates base;
	struct reader raw_rd[MAX_THREADS];
	raw_open(big, &raw);
	memset(raw_rd, 0, sizeof(raw_rd));
	for (int t = 0; t < o.threads; t++)
		raw_rd[t].raw = &raw;
	measure_lookups(raw_rd, &o, &base);
	raw_close(&raw);

	/* the same open lookups in a near-empty map */
	m = open_map(small, FILL_CEILING);
	fill(m, 0, SMALL_NAMES, o.replicas, CHUNK, &er);
	readers_init(&sr, 1, m, SMALL_NAMES, o.replicas);
	sr.open_path = 1;
	run_readers(&sr, 1, o.seconds);
	vmap_close(m);
	if (!o.keep)
		remove_tree(small);

	/* eviction: a ceiling just above what the map uses, then more names */
	fprintf(stderr, "eviction\n");
	uint64_t ceiling = ((uint64_t)((double)used / 0.82) + (1 << 20) - 1) &
			   ~(uint64_t)((1 << 20) - 1);
	m = open_map(big, ceiling);
	struct reader *er_rd = &rd[o.threads > 1 ? 1 : 0];
	er_rd->m = m;
	er_rd->open_path = 1;
	atomic_int stop = 0;
	er_rd->stop = &stop;
	er_rd->done = er_rd->found = 0;
	er_rd->lat.n = 0;
	if (pthread_create(&er_rd->th, NULL, reader_main, er_rd))
		abort();
	fill(m, o.entries, o.entries + o.evict_puts, o.replicas, CHUNK_EVICT,
	     &er);
	atomic_store(&stop, 1);
	pthread_join(er_rd->th, NULL);
	if (er_rd->lat.n)
		qsort(er_rd->lat.ns, er_rd->lat.n, sizeof(uint32_t), cmp_u32);
	struct vmap_stats es;
	vmap_get_stats(m, &es);
	vmap_close(m);
	uint64_t efsize = file_size(big);
	if (!o.keep)
		remove_tree(big);

	/* the table */
	printf("\n$");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n%ld cores; %" PRIu64 " names, %d replica facts each "
	       "(%" PRIu64 " facts)\n\n", ncpu, o.entries, o.replicas, fr.facts);
	printf("| figure | value |\n|---|---|\n");
	printf("| fill: facts written/s (one producer) | %.0f (%.1f s; "
	       "longest flush %.0f ms; dropped %" PRIu64 ", lost %" PRIu64
	       ") |\n", (double)fr.facts / fr.secs, fr.secs, fr.max_flush_ms,
	       dropped, lost);
	printf("| data.mdb size | %.3f GiB (%.0f B/name; pages in use "
	       "%.3f GiB) target <= 2 GiB at 10M |\n", (double)fsize / (1 << 30),
	       (double)fsize / (double)o.entries, (double)used / (1 << 30));
	char what[64];
	snprintf(what, sizeof(what), "pools of %d of all names", POOL);
	print_rates(what, &all, &base, false, &o, ncpu);
	print_rates(what, &base, NULL, true, &o, ncpu);
	snprintf(what, sizeof(what), "hot set of %" PRIu64 " names", o.hot);
	print_rates(what, &hot, NULL, false, &o, ncpu);
	snprintf(what, sizeof(what), "%" PRIu64 " names", o.entries);
	print_open(what, &rd[0]);
	snprintf(what, sizeof(what), "%d names", SMALL_NAMES);
	print_open(what, &sr);
	printf("| eviction: ceiling | %.3f GiB; after %" PRIu64 " more names: "
	       "pages in use %.3f GiB, data.mdb %.3f GiB |\n",
	       (double)ceiling / (1 << 30), o.evict_puts,
	       (double)es.used_bytes / (1 << 30), (double)efsize / (1 << 30));
	printf("| eviction: entries evicted | %" PRIu64 " (objects left %"
	       PRIu64 "; dropped %" PRIu64 ", lost %" PRIu64 ") |\n",
	       es.evicted, es.objects, es.dropped - 0, es.lost);
	printf("| eviction: facts written/s | %.0f (longest flush %.0f ms) |\n",
	       (double)er.facts / er.secs, er.max_flush_ms);
	print_open("reader during eviction", er_rd);
	printf("| (reader hits during eviction) | %.1f%% of %" PRIu64 " |\n",
	       er_rd->done ? 100.0 * (double)er_rd->found / (double)er_rd->done
			   : 0, er_rd->done);
	readers_release(rd, o.threads);
	readers_release(&sr, 1);
	return 0;
}
