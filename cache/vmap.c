/*
 * vmap.c - the version map on LMDB.
 *
 * Databases of one environment:
 *   meta      "schema" -> u32 format version, "identity" -> the source
 *   objects   XXH3-128(name) (16 B)                    -> object record
 *   replicas  XXH3-64(replica) . XXH3-128(name) (24 B) -> replica record
 *   sums      the same key as replicas                  -> sums record
 *
 * Keys are hashes because names reach 1,024 bytes and LMDB keys stop at
 * 511; each record keeps the full name, and a record whose name differs
 * from the one asked for (a hash collision) counts as absent.
 *
 * The records (objects, replicas, sums) are drawn and coded in
 * vmap_records.c.
 *
 * Writes: put_*() appends to a pending batch; the writer thread commits a
 * batch every BATCH_MS (or at BATCH_MAX facts) in one transaction.  Gets
 * look at the pending and in-flight batches first, then the map.  The
 * pending batch is capped (PENDING_MAX facts, PENDING_BYTES_MAX bytes):
 * past it, facts are dropped and counted.  A batch that fails to commit
 * is counted as lost and freed; the writer goes on with the next.
 *
 * Eviction ("used" is refreshed when a record is written, and for records
 * read while older than an hour, piggybacked on the next batch - never a
 * write of its own): when the pages in use pass EVICT_AT of the ceiling,
 * the least recently used quarter of the records goes; when LMDB reports
 * the map full all the same, half goes and the batch is tried again.
 *
 * LMDB's return codes become errno in one place, mdb_code_errno().
 */
#include "cache/vmap.h"
#include "cache/vmap_records.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define SCHEMA 1
#define BATCH_MS 5
#define BATCH_MAX 512
#define PENDING_MAX 16384            /* facts waiting for the writer */
#define PENDING_BYTES_MAX (16 << 20) /* and their bytes */
#define TOUCH_MAX 1024
#define TOUCH_AGE_MIN 60          /* refresh "used" once an hour at most */
#define EVICT_AT 0.80
#define EVICT_SHARE 0.25
#define KEY_MAX 24
#define NDB 3

enum { DB_OBJECTS, DB_REPLICAS, DB_SUMS };

struct fact_write {
	int db;
	unsigned char key[KEY_MAX];
	size_t klen;
	void *val;
	size_t vlen;
};

struct batch {
	struct fact_write *w;
	size_t n, alloc;
};

struct touch {
	int db;
	unsigned char key[KEY_MAX];
	size_t klen;
};

struct vmap {
	MDB_env *env;
	MDB_dbi dbi[NDB];
	MDB_dbi meta;
	uint64_t map_size;
	pthread_t writer;
	pthread_mutex_t lock;      /* guards everything below */
	pthread_cond_t wake;       /* writer: work or stop */
	pthread_cond_t done;       /* flushers: a batch committed */
	struct batch pending, inflight;
	size_t pending_bytes;
	bool dropping;             /* the pending batch is full */
	struct touch touched[TOUCH_MAX];
	size_t ntouched;
	uint64_t put_seq, inflight_seq, committed_seq;
	bool stop;
	uint64_t commits, evicted, dropped, lost;
};

/*
 * The one map from an LMDB return code to errno.  LMDB returns either a
 * system errno (positive) or one of its own MDB_* codes.
 */
static int mdb_code_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_KEYEXIST: return -EEXIST;
	case MDB_MAP_FULL: return -ENOSPC;       /* the map is at its ceiling */
	case MDB_READERS_FULL:                   /* every reader slot is taken */
	case MDB_MAP_RESIZED: return -EAGAIN;
	case MDB_INVALID:                        /* not an LMDB file */
	case MDB_VERSION_MISMATCH:               /* made by another LMDB */
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE: return -EUCLEAN;  /* not the file we wrote */
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_BAD_VALSIZE:
	case MDB_BAD_DBI: return -EINVAL;
	default: return rc > 0 ? -rc : -EIO;    /* corrupted, panic, ... */
	}
}

static uint32_t now_minutes(void)
{
	return (uint32_t)(wall_ns() / (60 * NS_PER_SEC));
}

static void name_key(const char *name, unsigned char out[16])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(name, strlen(name)));
	memcpy(out, c.digest, 16);
}

static size_t replica_key(const char *replica, const char *name,
			  unsigned char out[KEY_MAX])
{
	XXH64_canonical_t c;
	XXH64_canonicalFromHash(&c, XXH3_64bits(replica, strlen(replica)));
	memcpy(out, c.digest, 8);
	name_key(name, out + 8);
	return KEY_MAX;
}

/* ---- batching ---- */

static void batch_add(struct batch *bt, const struct fact_write *w)
{
	if (bt->n == bt->alloc) {
		bt->alloc = bt->alloc ? bt->alloc * 2 : 64;
		bt->w = xrealloc(bt->w, bt->alloc * sizeof(*bt->w));
	}
	bt->w[bt->n++] = *w;
}

static void batch_clear(struct batch *bt)
{
	for (size_t i = 0; i < bt->n; i++)
		free(bt->w[i].val);
	bt->n = 0;
}

/* The newest pending or in-flight value for key; copied out.  Caller
 * holds the lock. */
static void *batch_find(struct vmap *m, int db, const unsigned char *key,
			size_t klen, size_t *vlen)
{
	const struct batch *bs[2] = { &m->pending, &m->inflight };
	for (int k = 0; k < 2; k++)
		for (size_t i = bs[k]->n; i-- > 0;) {
			const struct fact_write *w = &bs[k]->w[i];
			if (w->db == db && w->klen == klen &&
			    memcmp(w->key, key, klen) == 0) {
				void *v = xmalloc(w->vlen);
				memcpy(v, w->val, w->vlen);
				*vlen = w->vlen;
				return v;
			}
		}
	return NULL;
}

/* Queue a fact for the writer; takes ownership of val.  When the writer
 * cannot keep up and the pending batch is at its cap, the fact is dropped
 * and counted: the map is a cache, and a fact not kept costs a round trip
 * later, while an unbounded queue would cost the mount its memory. */
static void put_fact(struct vmap *m, int db, const unsigned char *key,
		     size_t klen, void *val, size_t vlen)
{
	struct fact_write w = { .db = db, .klen = klen, .val = val,
				.vlen = vlen };
	bool first_drop = false;

	memcpy(w.key, key, klen);
	pthread_mutex_lock(&m->lock);
	if (m->pending.n >= PENDING_MAX ||
	    m->pending_bytes + vlen > PENDING_BYTES_MAX) {
		m->dropped++;
		first_drop = !m->dropping;
		m->dropping = true;
		pthread_mutex_unlock(&m->lock);
		free(val);
		if (first_drop)
			log_warn("version map: the writer is behind; dropping "
				 "facts until it catches up");
		return;
	}
	batch_add(&m->pending, &w);
	m->pending_bytes += vlen;
	m->put_seq++;
	if (m->pending.n == 1 || m->pending.n >= BATCH_MAX)
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

/* Remember that a record read from disk is old, so the next batch can
 * refresh its "used" while it writes anyway. */
static void note_touch(struct vmap *m, int db, const unsigned char *key,
		       size_t klen, uint32_t used)
{
	if (used + TOUCH_AGE_MIN > now_minutes())
		return;
	pthread_mutex_lock(&m->lock);
	if (m->ntouched < TOUCH_MAX) {
		struct touch *t = &m->touched[m->ntouched++];
		t->db = db;
		t->klen = klen;
		memcpy(t->key, key, klen);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Look a key up: batches first, then the map (a short read txn).
 * Returns 0 with *val (caller frees) and *vlen, or -errno: -ENOENT when
 * the key is absent. */
static int lookup(struct vmap *m, int db, const unsigned char *key,
		  size_t klen, void **val, size_t *vlen)
{
	pthread_mutex_lock(&m->lock);
	*val = batch_find(m, db, key, klen, vlen);
	pthread_mutex_unlock(&m->lock);
	if (*val)
		return 0;

	MDB_txn *txn;
	MDB_val k = { klen, (void *)key }, d;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn));
	if (rc < 0)
		return rc;
	rc = mdb_code_errno(mdb_get(txn, m->dbi[db], &k, &d));
	if (rc == 0) {
		*val = xmalloc(d.mv_size);
		memcpy(*val, d.mv_data, d.mv_size);
		*vlen = d.mv_size;
	}
	mdb_txn_abort(txn);
	if (rc == 0)
		note_touch(m, db, key, klen, vmap_records_used(*val, *vlen));
	return rc;
}

/* ---- the facts interface ---- */

static int f_get_source(void *ctx, const char *name, struct source_fact *out)
{
	unsigned char key[16];
	size_t len;
	void *v;
	name_key(name, key);
	int rc = lookup(ctx, DB_OBJECTS, key, 16, &v, &len);
	if (rc < 0)
		return -ENOENT;       /* facts.h: whatever the cause, unknown */
	rc = vmap_records_decode_object(v, len, name, out);
	free(v);
	return rc;
}

static void f_put_source(void *ctx, const char *name,
			 const struct source_fact *f)
{
	unsigned char key[16];
	size_t len;
	if (strlen(name) > UINT16_MAX)
		return;
	name_key(name, key);
	void *v = vmap_records_encode_object(name, f, now_minutes(), &len);
	put_fact(ctx, DB_OBJECTS, key, 16, v, len);
}

static int f_get_replica(void *ctx, const char *replica, const char *name,
			 struct replica_fact *out)
{
	unsigned char key[KEY_MAX];
	size_t len, klen = replica_key(replica, name, key);
	void *v;
	int rc = lookup(ctx, DB_REPLICAS, key, klen, &v, &len);
	if (rc < 0)
		return -ENOENT;       /* facts.h: whatever the cause, unknown */
	rc = vmap_records_decode_replica(v, len, name, out);
	free(v);
	return rc;
}

static void f_put_replica(void *ctx, const char *replica, const char *name,
			  const struct replica_fact *f)
{
	unsigned char key[KEY_MAX];
	size_t len, klen;
	if (strlen(name) > UINT16_MAX)
		return;
	klen = replica_key(replica, name, key);
	void *v = vmap_records_encode_replica(name, f, now_minutes(), &len);
	put_fact(ctx, DB_REPLICAS, key, klen, v, len);
}

static int f_get_sums(void *ctx, const char *replica, const char *name,
		      void **out, size_t *outlen)
{
	unsigned char key[KEY_MAX];
	size_t len, off, klen = replica_key(replica, name, key);
	unsigned char *v;

	*out = NULL;
	if (lookup(ctx, DB_SUMS, key, klen, (void **)&v, &len) < 0)
		return -ENOENT;
	if (vmap_records_decode_sums(v, len, name, &off) < 0) {
		free(v);
		return -ENOENT;
	}
	*outlen = len - off;
	memmove(v, v + off, *outlen);
	*out = v;
	return 0;
}

static void f_put_sums(void *ctx, const char *replica, const char *name,
		       const void *sums, size_t slen)
{
	unsigned char key[KEY_MAX];
	size_t len;

	if (strlen(name) > VMAP_RECORDS_NAME_MAX)
		return;
	size_t klen = replica_key(replica, name, key);
	void *v = vmap_records_encode_sums(name, sums, slen, now_minutes(), &len);
	put_fact(ctx, DB_SUMS, key, klen, v, len);
}

static void f_flush(void *ctx)
{
	vmap_flush(ctx);
}

static const struct facts_ops vmap_facts_ops = {
	.get_source = f_get_source,
	.put_source = f_put_source,
	.get_replica = f_get_replica,
	.put_replica = f_put_replica,
	.get_sums = f_get_sums,
	.put_sums = f_put_sums,
	.flush = f_flush,
};

struct facts vmap_facts(struct vmap *m)
{
	struct facts f = { &vmap_facts_ops, m };
	return f;
}

/* ---- the writer ---- */

/*
 * Pages that hold data now: the trees of every database (the free list's
 * own tree included) and the two meta pages.  Not me_last_pgno: that is
 * the file's high-water mark, which never falls, so after one eviction the
 * map would look full forever and every batch would evict again.  Pages
 * freed by an eviction are reused by later batches; a map that is full
 * all the same reports MDB_MAP_FULL, and write_batch() evicts and retries.
 * Returns 0 or -errno.
 */
static int pages_in_use(struct vmap *m, uint64_t *pages, unsigned *psize)
{
	MDB_dbi dbs[] = { 0 /* free list */, 1 /* main */, m->meta,
			  m->dbi[DB_OBJECTS], m->dbi[DB_REPLICAS],
			  m->dbi[DB_SUMS] };
	MDB_txn *txn;
	MDB_stat st;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn));

	if (rc < 0)
		return rc;
	*pages = 2;
	*psize = 0;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_code_errno(mdb_stat(txn, dbs[i], &st));
		if (rc < 0)
			break;
		*pages += st.ms_branch_pages + st.ms_leaf_pages +
			  st.ms_overflow_pages;
		*psize = st.ms_psize;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* The share of the ceiling in use; 0 when it cannot be told. */
static double fill_ratio(struct vmap *m)
{
	uint64_t pages;
	unsigned psize;

	if (pages_in_use(m, &pages, &psize) < 0)
		return 0;
	return (double)pages * psize / (double)m->map_size;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Commit an evicting transaction (which it ends) and count what went.
 * Returns 0 or -errno. */
static int commit_eviction(struct vmap *m, MDB_txn *txn, uint64_t n,
			   const char *which)
{
	int rc = mdb_code_errno(mdb_txn_commit(txn));

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->evicted += n;
	pthread_mutex_unlock(&m->lock);
	log_info("version map: evicted %llu entries, %s (ceiling %llu MiB)",
		 (unsigned long long)n, which,
		 (unsigned long long)(m->map_size >> 20));
	return 0;
}

/* Drop the least recently used share of all records.  One transaction.
 * Returns 0 or -errno. */
static int evict(struct vmap *m, double share)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, d;
	uint32_t *used = NULL;
	size_t n = 0, alloc = 0;
	uint64_t dropped = 0;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	for (int db = 0; db < NDB; db++) {
		rc = mdb_code_errno(mdb_cursor_open(txn, m->dbi[db], &cur));
		if (rc < 0)
			goto out_abort_txn;
		for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &d, op) == 0;
		     op = MDB_NEXT) {
			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 4096;
				used = xrealloc(used, alloc * sizeof(*used));
			}
			used[n++] = vmap_records_used(d.mv_data, d.mv_size);
		}
		mdb_cursor_close(cur);
	}
	if (n == 0)
		goto out_abort_txn;
	qsort(used, n, sizeof(*used), cmp_u32);
	uint64_t target = (uint64_t)((double)n * share) + 1;
	uint32_t cutoff = used[target < n ? target - 1 : n - 1];
	for (int db = 0; db < NDB && dropped < target; db++) {
		rc = mdb_code_errno(mdb_cursor_open(txn, m->dbi[db], &cur));
		if (rc < 0)
			goto out_abort_txn;
		int op = MDB_FIRST;
		while (rc == 0 && dropped < target &&
		       mdb_cursor_get(cur, &k, &d, op) == 0) {
			op = MDB_NEXT;
			if (vmap_records_used(d.mv_data, d.mv_size) <= cutoff) {
				rc = mdb_code_errno(mdb_cursor_del(cur, 0));
				dropped++;
			}
		}
		mdb_cursor_close(cur);
		if (rc < 0)              /* the map full: the txn is spoilt */
			goto out_abort_txn;
	}
	free(used);
	return commit_eviction(m, txn, dropped, "least recently used");

out_abort_txn:
	mdb_txn_abort(txn);
	free(used);
	return rc;
}

/* Rewrite "used" of touched records; inside the batch's transaction.
 * Returns 0 or -errno: a failed put (the map full) spoils the transaction,
 * and the caller must see it as such, not as a failed commit later. */
static int refresh_touched(struct vmap *m, MDB_txn *txn,
			   const struct touch *t, size_t n)
{
	uint32_t now = now_minutes();
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		MDB_val k = { t[i].klen, (void *)t[i].key }, d;
		if (mdb_get(txn, m->dbi[t[i].db], &k, &d) != 0 || d.mv_size < 8)
			continue;
		void *copy = xmalloc(d.mv_size);
		memcpy(copy, d.mv_data, d.mv_size);
		vmap_records_set_used(copy, d.mv_size, now);
		d.mv_data = copy;
		rc = mdb_code_errno(mdb_put(txn, m->dbi[t[i].db], &k, &d, 0));
		free(copy);
	}
	return rc;
}

/* Write a batch in one transaction.  Returns 0 or -errno (-ENOSPC: the
 * map is full). */
static int commit_batch(struct vmap *m, const struct batch *bt,
			const struct touch *t, size_t nt)
{
	MDB_txn *txn;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, 0, &txn));
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < bt->n && rc == 0; i++) {
		const struct fact_write *w = &bt->w[i];
		MDB_val k = { w->klen, (void *)w->key }, d = { w->vlen, w->val };
		rc = mdb_code_errno(mdb_put(txn, m->dbi[w->db], &k, &d, 0));
	}
	if (rc == 0)
		rc = refresh_touched(m, txn, t, nt);
	if (rc == 0)
		return mdb_code_errno(mdb_txn_commit(txn));
	mdb_txn_abort(txn);
	return rc;
}

/* Empty both record databases: the last resort when not even an eviction
 * fits in the map (deleting scattered records copies most of the tree,
 * dropping it only lists its pages as free).  Returns 0 or -errno. */
static int evict_all(struct vmap *m)
{
	MDB_txn *txn;
	uint64_t n = 0;
	MDB_stat st;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	for (int db = 0; db < NDB && rc == 0; db++) {
		if (mdb_stat(txn, m->dbi[db], &st) == 0)
			n += st.ms_entries;
		rc = mdb_code_errno(mdb_drop(txn, m->dbi[db], 0));
	}
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return commit_eviction(m, txn, n, "all (no smaller eviction fits)");
}

/* Commit one small write (the schema, unchanged).  LMDB hands the pages a
 * transaction frees to the transaction after next, so this lets the batch
 * that follows an eviction reuse what the eviction freed. */
static int advance_txn(struct vmap *m)
{
	uint32_t schema = SCHEMA;
	MDB_val k = { 6, "schema" }, d = { 4, &schema };
	MDB_txn *txn;
	int rc = mdb_code_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	rc = mdb_code_errno(mdb_put(txn, m->meta, &k, &d, 0));
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_code_errno(mdb_txn_commit(txn));
}

/* The map is full: evict half, or everything when that does not fit, and
 * make the freed pages usable by the next transaction. */
static void make_room(struct vmap *m)
{
	if (evict(m, 2 * EVICT_SHARE) < 0)
		evict_all(m);
	advance_txn(m);
}

/* Write a batch, making room when the map is full.  Returns 0 or -errno
 * (the batch is not kept). */
static int write_batch(struct vmap *m, const struct batch *bt,
		       const struct touch *t, size_t nt)
{
	if (fill_ratio(m) > EVICT_AT)
		evict(m, EVICT_SHARE);
	int rc = commit_batch(m, bt, t, nt);
	if (rc == -ENOSPC) {
		make_room(m);
		rc = commit_batch(m, bt, t, nt);
	}
	return rc;
}

/* The one writer.  A failed batch is counted and freed like a committed
 * one, so flushers are released and memory is not held; the warning is
 * logged when batches start failing and a notice when they commit again,
 * not once per batch. */
static void *writer_main(void *arg)
{
	struct vmap *m = arg;
	struct touch t[TOUCH_MAX];
	bool failing = false;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->pending.n && !m->stop)
			pthread_cond_wait(&m->wake, &m->lock);
		if (!m->pending.n && m->stop)
			break;
		if (!m->stop && m->pending.n < BATCH_MAX) {
			/* let a few milliseconds of facts gather */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += BATCH_MS * NS_PER_MS;
			if (ts.tv_nsec >= NS_PER_SEC) {
				ts.tv_sec++;
				ts.tv_nsec -= NS_PER_SEC;
			}
			pthread_cond_timedwait(&m->wake, &m->lock, &ts);
		}
		struct batch swap = m->inflight;
		m->inflight = m->pending;
		m->pending = swap;
		m->inflight_seq = m->put_seq;
		m->pending_bytes = 0;
		m->dropping = false;
		size_t nt = m->ntouched;
		memcpy(t, m->touched, nt * sizeof(*t));
		m->ntouched = 0;
		pthread_mutex_unlock(&m->lock);

		int rc = write_batch(m, &m->inflight, t, nt);
		if (rc < 0 && !failing)
			log_warn("version map: %zu facts not kept: %s; facts are "
				 "lost until a batch commits", m->inflight.n,
				 strerror(-rc));
		else if (rc == 0 && failing)
			log_notice("version map: batches commit again");
		failing = rc < 0;

		pthread_mutex_lock(&m->lock);
		if (rc < 0)
			m->lost += m->inflight.n;
		else
			m->commits++;
		batch_clear(&m->inflight);
		m->committed_seq = m->inflight_seq;
		pthread_cond_broadcast(&m->done);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

void vmap_flush(struct vmap *m)
{
	pthread_mutex_lock(&m->lock);
	uint64_t target = m->put_seq;
	pthread_cond_signal(&m->wake);
	while (m->committed_seq < target)
		pthread_cond_wait(&m->done, &m->lock);
	pthread_mutex_unlock(&m->lock);
}

/* Open the databases; check or write schema and identity. */
static int open_dbs(struct vmap *m, const char *identity, char *err,
		    size_t errlen)
{
	MDB_txn *txn;
	MDB_val k, d;
	uint32_t schema = SCHEMA;
	int rc = mdb_txn_begin(m->env, NULL, 0, &txn);

	if (rc)
		goto out_mdb_error;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &m->meta)) ||
	    (rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &m->dbi[DB_OBJECTS])) ||
	    (rc = mdb_dbi_open(txn, "replicas", MDB_CREATE,
			       &m->dbi[DB_REPLICAS])) ||
	    (rc = mdb_dbi_open(txn, "sums", MDB_CREATE, &m->dbi[DB_SUMS])))
		goto out_abort_txn;
	k.mv_data = "schema";
	k.mv_size = 6;
	rc = mdb_get(txn, m->meta, &k, &d);
	bool fresh = mdb_code_errno(rc) == -ENOENT;
	if (!fresh && (rc || d.mv_size != 4 || memcmp(d.mv_data, &schema, 4))) {
		/* Another format: the map is a cache, start it again. */
		log_notice("version map: unknown format, starting afresh");
		mdb_drop(txn, m->dbi[DB_OBJECTS], 0);
		mdb_drop(txn, m->dbi[DB_REPLICAS], 0);
		mdb_drop(txn, m->dbi[DB_SUMS], 0);
		mdb_drop(txn, m->meta, 0);
		fresh = true;
	}
	k.mv_data = "identity";
	k.mv_size = 8;
	if (fresh) {
		MDB_val sk = { 6, "schema" }, sv = { 4, &schema };
		MDB_val iv = { strlen(identity), (void *)identity };
		if ((rc = mdb_put(txn, m->meta, &sk, &sv, 0)) ||
		    (rc = mdb_put(txn, m->meta, &k, &iv, 0)))
			goto out_abort_txn;
	} else if (mdb_get(txn, m->meta, &k, &d) != 0) {
		MDB_val iv = { strlen(identity), (void *)identity };
		if ((rc = mdb_put(txn, m->meta, &k, &iv, 0)))
			goto out_abort_txn;
	} else if (d.mv_size != strlen(identity) ||
		   memcmp(d.mv_data, identity, d.mv_size) != 0) {
		snprintf(err, errlen, "the version map in this state_dir belongs "
			 "to another source (%.*s), not %s: use another "
			 "state_dir", (int)(d.mv_size < 200 ? d.mv_size : 200),
			 (const char *)d.mv_data, identity);
		mdb_txn_abort(txn);
		return -EEXIST;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto out_mdb_error;
	return 0;

out_abort_txn:
	mdb_txn_abort(txn);
out_mdb_error:
	snprintf(err, errlen, "version map: %s", mdb_strerror(rc));
	return mdb_code_errno(rc);
}

/* -EUCLEAN when the file is shorter than its own last page says: LMDB
 * would map the missing pages and the first read of one would SIGBUS. */
static int check_length(struct vmap *m)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat sb;
	int fd;

	if (mdb_env_get_fd(m->env, &fd) || fstat(fd, &sb) < 0 ||
	    mdb_env_info(m->env, &info) || mdb_env_stat(m->env, &st))
		return 0;                /* cannot tell; the reads will */
	if ((uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
		return -EUCLEAN;
	return 0;
}

/* Create and open the environment and its databases.  Returns 0, or
 * -errno with err filled and m->env closed; -EUCLEAN when the file is
 * corrupt, truncated or not LMDB's, -EEXIST when it is another source's. */
static int env_open(struct vmap *m, const char *dir, const char *identity,
		    char *err, size_t errlen)
{
	int rc, dead;

	if ((rc = mdb_env_create(&m->env)) ||
	    (rc = mdb_env_set_maxdbs(m->env, 4)) ||
	    (rc = mdb_env_set_maxreaders(m->env, 512)) ||
	    (rc = mdb_env_set_mapsize(m->env, m->map_size)) ||
	    (rc = mdb_env_open(m->env, dir, MDB_NOTLS | MDB_NORDAHEAD |
			       MDB_NOMETASYNC, 0600))) {
		snprintf(err, errlen, "version map in %s: %s", dir,
			 mdb_strerror(rc));
		rc = mdb_code_errno(rc);
		goto out_close_env;
	}
	mdb_reader_check(m->env, &dead);
	rc = check_length(m);
	if (rc < 0) {
		snprintf(err, errlen, "version map in %s: the file is truncated",
			 dir);
		goto out_close_env;
	}
	rc = open_dbs(m, identity, err, errlen);
	if (rc < 0)
		goto out_close_env;
	return 0;

out_close_env:
	if (m->env)
		mdb_env_close(m->env);
	m->env = NULL;
	return rc;
}

/* Rename dir/<file> to dir/<file>.corrupt-<seconds>.  Returns 0 or -errno
 * (a file that is not there is fine). */
static int move_aside(const char *dir, const char *file, int64_t secs)
{
	char from[4096], to[4096];

	if ((size_t)snprintf(from, sizeof(from), "%s/%s", dir, file) >=
	    sizeof(from) ||
	    (size_t)snprintf(to, sizeof(to), "%s/%s.corrupt-%lld", dir, file,
			     (long long)secs) >= sizeof(to))
		return -ENAMETOOLONG;
	if (rename(from, to) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* The map file is unusable: keep it aside for a post-mortem (the map is a
 * cache, nothing in it is needed) and start an empty one. */
static int reopen_fresh(struct vmap *m, const char *dir, const char *identity,
			char *err, size_t errlen)
{
	int64_t secs = wall_ns() / NS_PER_SEC;
	int rc;

	log_warn("%s; moving it aside as data.mdb.corrupt-%lld and starting "
		 "an empty map", err, (long long)secs);
	if ((rc = move_aside(dir, "data.mdb", secs)) < 0 ||
	    (rc = move_aside(dir, "lock.mdb", secs)) < 0) {
		snprintf(err, errlen, "version map in %s is unusable and cannot "
			 "be moved aside: %s", dir, strerror(-rc));
		return rc;
	}
	return env_open(m, dir, identity, err, errlen);
}

int vmap_open(const char *dir, const char *identity, uint64_t map_size,
	      struct vmap **out, char *err, size_t errlen)
{
	struct vmap *m = xcalloc(1, sizeof(*m));
	int rc;

	rc = mkdir_p(dir);
	if (rc < 0) {
		snprintf(err, errlen, "state_dir %s: %s", dir, strerror(-rc));
		goto out_free;
	}
	m->map_size = map_size;
	rc = env_open(m, dir, identity, err, errlen);
	if (rc == -EUCLEAN)
		rc = reopen_fresh(m, dir, identity, err, errlen);
	if (rc < 0)
		goto out_free;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->done, NULL);
	rc = -pthread_create(&m->writer, NULL, writer_main, m);
	if (rc < 0) {
		snprintf(err, errlen, "version map writer: %s", strerror(-rc));
		goto out_destroy_lock;
	}
	*out = m;
	return 0;

out_destroy_lock:
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->done);
	mdb_env_close(m->env);
out_free:
	free(m);
	return rc;
}

void vmap_close(struct vmap *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->writer, NULL);
	batch_clear(&m->pending);
	batch_clear(&m->inflight);
	free(m->pending.w);
	free(m->inflight.w);
	mdb_env_sync(m->env, 1);
	mdb_env_close(m->env);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->done);
	free(m);
}

void vmap_get_stats(struct vmap *m, struct vmap_stats *st)
{
	MDB_txn *txn;
	MDB_stat s;

	memset(st, 0, sizeof(*st));
	if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_stat(txn, m->dbi[DB_OBJECTS], &s) == 0)
			st->objects = s.ms_entries;
		if (mdb_stat(txn, m->dbi[DB_REPLICAS], &s) == 0)
			st->replicas = s.ms_entries;
		mdb_txn_abort(txn);
	}
	pthread_mutex_lock(&m->lock);
	st->commits = m->commits;
	st->evicted = m->evicted;
	st->dropped = m->dropped;
	st->lost = m->lost;
	pthread_mutex_unlock(&m->lock);
	st->map_size = m->map_size;
	st->used_bytes = (uint64_t)(fill_ratio(m) * (double)m->map_size);
}
