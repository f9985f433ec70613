/*
 * vmap_writer.c - the version map's one writer: batches of facts become
 * transactions, and the map is kept under its ceiling by eviction (the
 * design is at the top of vmap.c).
 */
#include "cache/vmap_impl.h"
#include "cache/vmap_front.h"
#include "backends/util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
			  m->dbi[DB_NAMES], m->dbi[DB_SUMS] };
	MDB_txn *txn;
	MDB_stat st;
	int rc = vmap_mdb_errno(mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn));

	if (rc < 0)
		return rc;
	*pages = 2;
	*psize = 0;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = vmap_mdb_errno(mdb_stat(txn, dbs[i], &st));
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
double vmap_fill_ratio(struct vmap *m)
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
	int rc = vmap_mdb_errno(mdb_txn_commit(txn));

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
	int rc = vmap_mdb_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	for (int db = 0; db < NDB; db++) {
		rc = vmap_mdb_errno(mdb_cursor_open(txn, m->dbi[db], &cur));
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
		rc = vmap_mdb_errno(mdb_cursor_open(txn, m->dbi[db], &cur));
		if (rc < 0)
			goto out_abort_txn;
		int op = MDB_FIRST;
		while (rc == 0 && dropped < target &&
		       mdb_cursor_get(cur, &k, &d, op) == 0) {
			op = MDB_NEXT;
			if (vmap_records_used(d.mv_data, d.mv_size) <= cutoff) {
				rc = vmap_mdb_errno(mdb_cursor_del(cur, 0));
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

/*
 * The sweep of database db: records in key order from where the last one
 * stopped, around to the first again.  Keys are hashes, so any stretch of
 * it is a random sample of the names.  Returns 0 with *k, *d, or
 * MDB_NOTFOUND when the database is empty.
 */
static int sweep_first(struct vmap *m, MDB_cursor *cur, int db, MDB_val *k,
		       MDB_val *d)
{
	*k = (MDB_val){ m->sweep_klen[db], m->sweep_key[db] };
	if (k->mv_size && mdb_cursor_get(cur, k, d, MDB_SET_RANGE) == 0)
		return 0;
	return mdb_cursor_get(cur, k, d, MDB_FIRST);
}

static int sweep_next(MDB_cursor *cur, MDB_val *k, MDB_val *d)
{
	if (mdb_cursor_get(cur, k, d, MDB_NEXT) == 0)
		return 0;
	return mdb_cursor_get(cur, k, d, MDB_FIRST);
}

/*
 * Evict up to want records of database db, least recently used first
 * among a sample of EVICT_SAMPLE times as many from its sweep (sampled
 * LRU: no scan of the whole map, and a batch's transaction stays short).
 * Inside the batch's transaction.  Returns the number evicted, or -errno
 * (the transaction is spoilt).
 */
static int64_t evict_some(struct vmap *m, MDB_txn *txn, int db, uint64_t want)
{
	size_t cap = (size_t)want * EVICT_SAMPLE, n = 0;
	uint32_t *used, cutoff;
	MDB_cursor *cur;
	MDB_val k, d;
	int rc;
	int64_t dropped = 0;

	if (!want)
		return 0;
	rc = mdb_cursor_open(txn, m->dbi[db], &cur);
	if (rc)
		return vmap_mdb_errno(rc);
	used = xmalloc(cap * sizeof(*used));
	for (rc = sweep_first(m, cur, db, &k, &d); rc == 0 && n < cap;
	     rc = sweep_next(cur, &k, &d))
		used[n++] = vmap_records_used(d.mv_data, d.mv_size);
	if (n == 0)
		goto out_close_cursor;
	qsort(used, n, sizeof(*used), cmp_u32);
	cutoff = used[(want < n ? want : n) - 1];
	for (rc = sweep_first(m, cur, db, &k, &d);
	     rc == 0 && n > 0 && (uint64_t)dropped < want;
	     rc = sweep_next(cur, &k, &d), n--) {
		if (vmap_records_used(d.mv_data, d.mv_size) > cutoff)
			continue;
		rc = mdb_cursor_del(cur, 0);
		if (rc) {               /* the map full: the txn is spoilt */
			dropped = vmap_mdb_errno(rc);
			goto out_close_cursor;
		}
		dropped++;
	}
	/* go on from here next time */
	m->sweep_klen[db] = 0;
	if (mdb_cursor_get(cur, &k, &d, MDB_GET_CURRENT) == 0 &&
	    k.mv_size <= KEY_MAX) {
		memcpy(m->sweep_key[db], k.mv_data, k.mv_size);
		m->sweep_klen[db] = k.mv_size;
	}
out_close_cursor:
	mdb_cursor_close(cur);
	free(used);
	return dropped;
}

/*
 * Keep the map under its ceiling, a little at each batch.  Deleting
 * records leaves room in their pages rather than freeing pages, so the
 * pages in use hardly fall after an eviction: the fill says when the map
 * is near its ceiling, and the entry count how much to keep.  When the
 * pages pass EVICT_AT (or grow EVICT_REGROW more since), the count of
 * that moment becomes the high mark and EVICT_SHARE less the low one;
 * from the high mark, batches evict down to the low one, each at most
 * twice its own facts or EVICT_STEP_MIN, from each database in its
 * share of the entries, and new records fill the room.
 * Returns the number evicted, or -errno (the transaction is spoilt).
 */
static int64_t evict_for_batch(struct vmap *m, MDB_txn *txn, size_t nfacts)
{
	uint64_t entries = 0, in_db[NDB] = { 0 };
	MDB_stat st;

	for (int db = 0; db < NDB; db++)
		if (mdb_stat(txn, m->dbi[db], &st) == 0) {
			in_db[db] = st.ms_entries;
			entries += st.ms_entries;
		}
	double fill = vmap_fill_ratio(m);
	if (fill > EVICT_AT &&
	    (!m->evict_hi || fill > m->evict_fill + EVICT_REGROW)) {
		m->evict_hi = entries;
		m->evict_lo = (uint64_t)((double)entries * (1 - EVICT_SHARE));
		m->evict_fill = fill;
		m->evicting = true;
		log_info("version map: %.0f%% of the ceiling (%llu MiB) in use; "
			 "keeping %llu to %llu entries", fill * 100,
			 (unsigned long long)(m->map_size >> 20),
			 (unsigned long long)m->evict_lo,
			 (unsigned long long)m->evict_hi);
	} else if (m->evict_hi && entries > m->evict_hi) {
		m->evicting = true;
	}
	if (!m->evicting)
		return 0;
	if (entries <= m->evict_lo) {
		m->evicting = false;
		return 0;
	}
	uint64_t want = entries - m->evict_lo, step = 2 * (uint64_t)nfacts;
	if (step < EVICT_STEP_MIN)
		step = EVICT_STEP_MIN;
	if (want > step)
		want = step;
	int64_t dropped = 0;        /* from each database its share */
	for (int db = 0; db < NDB; db++) {
		uint64_t share = (uint64_t)((double)want * (double)in_db[db] /
					    (double)entries + 0.5);
		int64_t n = evict_some(m, txn, db, share);
		if (n < 0)
			return n;
		dropped += n;
	}
	return dropped;
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
		rc = vmap_mdb_errno(mdb_put(txn, m->dbi[t[i].db], &k, &d, 0));
		free(copy);
	}
	return rc;
}

static int cmp_write(const void *a, const void *b)
{
	const struct fact_write *x = *(const struct fact_write *const *)a;
	const struct fact_write *y = *(const struct fact_write *const *)b;
	int dx = kind_db(x->kind), dy = kind_db(y->kind), c;

	if (dx != dy)
		return dx - dy;
	c = memcmp(x->key, y->key, kind_klen(x->kind));
	if (c)
		return c;
	return x < y ? -1 : x > y;    /* the batch's order: the last put wins */
}

/*
 * Write the facts w[0..n) about one name key, in put order: the record is
 * read once, the facts set in it, and it is written once.  A record of
 * another check (another name with this key), or one that does not
 * decode, is replaced.  Returns 0 or -errno (the transaction is spoilt).
 */
static int write_name(struct vmap *m, MDB_txn *txn,
		      struct fact_write *const *w, size_t n, uint32_t now)
{
	struct vmap_entry *e = xmalloc(sizeof(*e));
	MDB_val k = { NAME_KEY, (void *)w[0]->key }, d;
	uint64_t check = w[0]->check;
	size_t len;
	int rc;

	if (mdb_get(txn, m->dbi[DB_NAMES], &k, &d) != 0 ||
	    vmap_records_decode(d.mv_data, d.mv_size, check, e) < 0)
		memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		if (w[i]->check != check) {
			memset(e, 0, sizeof(*e));
			check = w[i]->check;
		}
		if (w[i]->kind == PUT_SOURCE) {
			e->has_source = true;
			e->source = w[i]->f.source;
		} else {
			/* a fact about one replica too many is not kept */
			(void)vmap_records_entry_set_replica(e, w[i]->rid,
							     &w[i]->f.replica);
		}
	}
	d.mv_data = vmap_records_encode(e, check, now, &len);
	d.mv_size = len;
	rc = vmap_mdb_errno(mdb_put(txn, m->dbi[DB_NAMES], &k, &d, 0));
	free(d.mv_data);
	free(e);
	return rc;
}

/* Write the batch's facts in key order (neighbouring keys share pages),
 * each name's record once.  Returns 0 or -errno. */
static int write_facts(struct vmap *m, MDB_txn *txn, const struct batch *bt)
{
	struct fact_write **w = xmalloc((bt->n ? bt->n : 1) * sizeof(*w));
	uint32_t now = now_minutes();
	int rc = 0;

	for (size_t i = 0; i < bt->n; i++)
		w[i] = &bt->w[i];
	qsort(w, bt->n, sizeof(*w), cmp_write);
	for (size_t i = 0, j; i < bt->n && rc == 0; i = j) {
		for (j = i + 1; j < bt->n &&
		     kind_db(w[j]->kind) == kind_db(w[i]->kind) &&
		     !memcmp(w[i]->key, w[j]->key, kind_klen(w[i]->kind)); j++)
			;
		if (w[i]->kind != PUT_SUMS) {
			rc = write_name(m, txn, w + i, j - i, now);
			continue;
		}
		/* sums: whole records; the last put of the key is the one */
		MDB_val k = { KEY_MAX, w[j - 1]->key },
			d = { w[j - 1]->vlen, w[j - 1]->val };
		rc = vmap_mdb_errno(mdb_put(txn, m->dbi[DB_SUMS], &k, &d, 0));
	}
	free(w);
	return rc;
}

/* Write a batch in one transaction.  Returns 0 or -errno (-ENOSPC: the
 * map is full). */
static int commit_batch(struct vmap *m, const struct batch *bt,
			const struct touch *t, size_t nt)
{
	MDB_txn *txn;
	int rc = vmap_mdb_errno(mdb_txn_begin(m->env, NULL, 0, &txn));
	if (rc < 0)
		return rc;
	/* evict first, so that this batch's own records are never taken */
	int64_t evicted = evict_for_batch(m, txn, bt->n);
	unsigned kept = m->nreplicas_kept;
	if (evicted < 0)
		rc = (int)evicted;
	if (rc == 0)
		rc = vmap_keep_replicas(m, txn, &kept);
	if (rc == 0)
		rc = write_facts(m, txn, bt);
	if (rc == 0)
		rc = refresh_touched(m, txn, t, nt);
	if (rc == 0)
		rc = vmap_mdb_errno(mdb_txn_commit(txn));
	else
		mdb_txn_abort(txn);
	if (rc == 0)
		m->nreplicas_kept = kept;
	if (rc == 0 && evicted > 0) {
		pthread_mutex_lock(&m->lock);
		m->evicted += (uint64_t)evicted;
		pthread_mutex_unlock(&m->lock);
		log_debug("version map: evicted %lld entries, least recently "
			  "used of a sample", (long long)evicted);
	}
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
	int rc = vmap_mdb_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	for (int db = 0; db < NDB && rc == 0; db++) {
		if (mdb_stat(txn, m->dbi[db], &st) == 0)
			n += st.ms_entries;
		rc = vmap_mdb_errno(mdb_drop(txn, m->dbi[db], 0));
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
	int rc = vmap_mdb_errno(mdb_txn_begin(m->env, NULL, 0, &txn));

	if (rc < 0)
		return rc;
	rc = vmap_mdb_errno(mdb_put(txn, m->meta, &k, &d, 0));
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return vmap_mdb_errno(mdb_txn_commit(txn));
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
	int rc = commit_batch(m, bt, t, nt);
	if (rc == -ENOSPC) {
		make_room(m);
		rc = commit_batch(m, bt, t, nt);
	}
	return rc;
}

/* The names of a batch just written have new records: their slots in the
 * front go, before the batch's facts leave the batches (vmap_front.h).
 * After a failed commit too: harmless, and one rule. */
static void forget_written(struct vmap *m, const struct batch *bt)
{
	for (size_t i = 0; i < bt->n; i++)
		if (kind_db(bt->w[i].kind) == DB_NAMES)
			vfront_forget(m->front, bt->w[i].key);
}

/* The one writer.  A failed batch is counted and freed like a committed
 * one, so flushers are released and memory is not held; the warning is
 * logged when batches start failing and a notice when they commit again,
 * not once per batch. */
void *vmap_writer_main(void *arg)
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
		forget_written(m, &m->inflight);
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
		vmap_batch_clear(&m->inflight);
		atomic_store(&m->nbatched, m->pending.n);
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
