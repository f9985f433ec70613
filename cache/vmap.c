/*
 * vmap.c - the version map on LMDB.
 *
 * Databases of one environment:
 *   meta    "schema" -> u32 format version (3), "identity" -> the source,
 *           "secret" -> the hash keys (struct vmap_secret, 24 bytes),
 *           "replicas" -> the replicas' names, each ended by a NUL: the
 *           replica of id i is the i-th
 *   names   XXH3-128(name) (16 B)                     -> name record
 *   sums    replica id (1 B) . XXH3-128(name) (16 B)  -> sums record
 *
 * A name record holds every fact about the name: the source's version
 * and what each replica holds.  Records hold no names: keys are hashes
 * (names reach 1,024 bytes and LMDB keys stop at 511), and a record
 * carries a second hash of its name, the check; a record whose check is
 * not the name's (a key collision) counts as absent.  The records, and
 * why that never answers for another name, are in vmap_records.c.
 *
 * Replica ids: a replica's facts are kept under a one-byte id, given
 * when its first fact is put and written to meta in the batch that first
 * holds a fact of it, so ids last as long as the records that use them.
 * A map knows at most REPLICA_IDS replicas; facts of more are not kept.
 *
 * Format versions: meta's "schema" says which records the map holds.  A
 * map of another format (format 1 kept a record per fact, each with its
 * name, in "objects" and "replicas"; format 2 kept 64-bit replica ids and
 * times in ns) is emptied and started afresh when
 * opened: the map is a cache.  Its old databases are deleted, and the
 * file keeps its length; the pages they held are reused.
 *
 * Writes (the writer and eviction are in vmap_writer.c, the structures
 * they share in vmap_impl.h): put_*() appends a fact to a pending batch;
 * the writer thread commits a batch every BATCH_MS (or at BATCH_MAX
 * facts) in one transaction, in key order, reading each name's record
 * once, setting the batch's facts in it and writing it once.  Gets look
 * at the pending and in-flight batches first, then the map.  The pending
 * batch is capped (PENDING_MAX facts, PENDING_BYTES_MAX bytes): past it,
 * facts are dropped and counted.  A batch that fails to commit is
 * counted as lost and freed; the writer goes on with the next.
 *
 * Eviction ("used" is refreshed when a record is written, and for records
 * read while older than an hour, piggybacked on the next batch - never a
 * write of its own): when the pages in use pass EVICT_AT of the ceiling,
 * batches evict a little each, least recently used first among a sample,
 * until a quarter of the records has gone; when LMDB reports the map
 * full all the same, half goes and the batch is tried again.  A name's
 * facts go together, with its record.
 *
 * Gets take no lock: a reset read transaction kept per thread (rtxn_take).
 * The records of names looked up lately are kept in memory ahead of LMDB
 * (vmap_front.h: 64 Ki slots, 12 MiB at most), so a name opened again
 * costs no walk of the tree; the writer empties the slots of the names a
 * batch wrote once it is committed.
 *
 * LMDB's return codes become errno in one place, vmap_mdb_errno().
 */
#include "cache/vmap.h"
#include "cache/vmap_impl.h"
#include "cache/vmap_front.h"
#include "cache/vmap_records.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <endian.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>


/*
 * The one map from an LMDB return code to errno.  LMDB returns either a
 * system errno (positive) or one of its own MDB_* codes.
 */
int vmap_mdb_errno(int rc)
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


/* The key of replica rid's sums of the name of name key nkey. */
static void sums_key(uint8_t rid, const unsigned char nkey[NAME_KEY],
		     unsigned char out[KEY_MAX])
{
	out[0] = rid;
	memcpy(out + 1, nkey, NAME_KEY);
}

/* The id of replica, or -ENOENT when the map has none for it.  No lock. */
static int replica_find(struct vmap *m, const char *replica)
{
	unsigned n = atomic_load_explicit(&m->nreplicas, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (strcmp(m->replica[i], replica) == 0)
			return (int)i;
	return -ENOENT;
}

/* The id of replica, given now when it has none.  Returns it, or -ENOSPC
 * when the map knows REPLICA_IDS replicas already. */
static int replica_id(struct vmap *m, const char *replica)
{
	int id = replica_find(m, replica);

	if (id >= 0)
		return id;
	pthread_mutex_lock(&m->lock);
	id = replica_find(m, replica);
	unsigned n = atomic_load_explicit(&m->nreplicas, memory_order_relaxed);
	if (id < 0 && n < REPLICA_IDS) {
		m->replica[n] = xstrdup(replica);
		atomic_store_explicit(&m->nreplicas, n + 1,
				      memory_order_release);
		id = (int)n;
	} else if (id < 0) {
		id = -ENOSPC;
	}
	pthread_mutex_unlock(&m->lock);
	return id;
}

/* Write the replicas' names to meta when ids were given since they were
 * last written; inside a batch's transaction.  *kept: how many it holds
 * once the transaction commits.  Returns 0 or -errno. */
int vmap_keep_replicas(struct vmap *m, MDB_txn *txn, unsigned *kept)
{
	unsigned n = atomic_load_explicit(&m->nreplicas, memory_order_acquire);
	struct strbuf b = STRBUF_INIT;
	int rc;

	*kept = n;
	if (n == m->nreplicas_kept)
		return 0;
	for (unsigned i = 0; i < n; i++)
		strbuf_add(&b, m->replica[i], strlen(m->replica[i]) + 1);
	MDB_val k = { 8, "replicas" }, d = { b.len, b.buf };
	rc = vmap_mdb_errno(mdb_put(txn, m->meta, &k, &d, 0));
	strbuf_release(&b);
	return rc;
}

/* Read the replicas' names from meta value v[0..len).  Returns false when
 * they are malformed (a name empty or not ended, too many, one twice). */
static bool load_replicas(struct vmap *m, const char *v, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i < len; n++) {
		const char *end = memchr(v + i, '\0', len - i);
		if (!end || end == v + i || n == REPLICA_IDS)
			return false;
		m->replica[n] = xstrdup(v + i);
		atomic_store(&m->nreplicas, n + 1);
		if (replica_find(m, m->replica[n]) != (int)n)
			return false;
		i = (size_t)(end - v) + 1;
	}
	m->nreplicas_kept = n;
	return true;
}

static void free_replicas(struct vmap *m)
{
	unsigned n = atomic_load(&m->nreplicas);

	for (unsigned i = 0; i < n; i++) {
		free(m->replica[i]);
		m->replica[i] = NULL;
	}
	atomic_store(&m->nreplicas, 0);
	m->nreplicas_kept = 0;
}

/*
 * The order of keys in names and sums: memcmp's, the order they have
 * always been kept in, but eight bytes at a time.  Keys are hashes of 16
 * and 17 bytes, and a lookup compares a dozen of them: memcmp's call and
 * its general case cost more than the comparing.
 */
static int key_cmp(const MDB_val *a, const MDB_val *b)
{
	const unsigned char *x = a->mv_data, *y = b->mv_data;
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size, i;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t p, q;
		memcpy(&p, x + i, 8);
		memcpy(&q, y + i, 8);
		if (p != q)
			return be64toh(p) < be64toh(q) ? -1 : 1;
	}
	for (; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}



/* ---- batching ---- */

/* Where the index looks for w's key first.  Keys are hashes of names
 * (a sums key after its replica's byte). */
static size_t batch_home(const struct batch *bt, const struct fact_write *w)
{
	uint64_t h;
	memcpy(&h, w->key + (w->kind == PUT_SUMS), sizeof(h));
	return (size_t)(h ^ w->rid) & (bt->nindex - 1);
}

static void index_add(struct batch *bt, size_t i)
{
	size_t at = batch_home(bt, &bt->w[i]);
	while (bt->index[at])
		at = (at + 1) & (bt->nindex - 1);
	bt->index[at] = (uint32_t)i + 1;
}

static void batch_add(struct batch *bt, const struct fact_write *w)
{
	if (bt->n == bt->alloc) {
		bt->alloc = bt->alloc ? bt->alloc * 2 : 64;
		bt->w = xrealloc(bt->w, bt->alloc * sizeof(*bt->w));
	}
	if (2 * (bt->n + 1) > bt->nindex) {
		free(bt->index);
		bt->nindex = 4 * bt->alloc;
		bt->index = xcalloc(bt->nindex, sizeof(*bt->index));
		for (size_t i = 0; i < bt->n; i++)
			index_add(bt, i);
	}
	bt->w[bt->n] = *w;
	index_add(bt, bt->n++);
}

/* Empty the batch.  Its index keeps the size a burst gave it, so a small
 * batch clears only its own entries (each is found from its home, the
 * holes left behind do not matter: every entry goes). */
void vmap_batch_clear(struct batch *bt)
{
	bool each = bt->n * 8 < bt->nindex;
	for (size_t i = 0; i < bt->n; i++) {
		free(bt->w[i].val);
		if (!each)
			continue;
		size_t at = batch_home(bt, &bt->w[i]);
		while (bt->index[at] != i + 1)
			at = (at + 1) & (bt->nindex - 1);
		bt->index[at] = 0;
	}
	if (bt->n && !each)
		memset(bt->index, 0, bt->nindex * sizeof(*bt->index));
	bt->n = 0;
}

static void batch_free(struct batch *bt)
{
	vmap_batch_clear(bt);
	free(bt->w);
	free(bt->index);
}

/* The newest pending or in-flight fact like q (kind, key, check and
 * replica).  Caller holds the lock; the fact stays the batch's. */
static const struct fact_write *batch_find(struct vmap *m,
					   const struct fact_write *q)
{
	const struct batch *bs[2] = { &m->pending, &m->inflight };
	size_t klen = kind_klen(q->kind);

	for (int k = 0; k < 2; k++) {
		const struct batch *bt = bs[k];
		const struct fact_write *newest = NULL;
		if (!bt->n)
			continue;
		for (size_t at = batch_home(bt, q); bt->index[at];
		     at = (at + 1) & (bt->nindex - 1)) {
			const struct fact_write *w = &bt->w[bt->index[at] - 1];
			if (w->kind == q->kind && w->check == q->check &&
			    w->rid == q->rid &&
			    memcmp(w->key, q->key, klen) == 0 &&
			    (!newest || w > newest))
				newest = w;
		}
		if (newest)
			return newest;
	}
	return NULL;
}

/* Queue a fact for the writer; takes ownership of w->val.  When the
 * writer cannot keep up and the pending batch is at its cap, the fact is
 * dropped and counted: the map is a cache, and a fact not kept costs a
 * round trip later, while an unbounded queue would cost the mount its
 * memory. */
static void put_fact(struct vmap *m, const struct fact_write *w)
{
	size_t bytes = sizeof(*w) + w->vlen;
	bool first_drop = false;

	pthread_mutex_lock(&m->lock);
	if (m->pending.n >= PENDING_MAX ||
	    m->pending_bytes + bytes > PENDING_BYTES_MAX) {
		m->dropped++;
		first_drop = !m->dropping;
		m->dropping = true;
		pthread_mutex_unlock(&m->lock);
		free(w->val);
		if (first_drop)
			log_warn("version map: the writer is behind; dropping "
				 "facts until it catches up");
		return;
	}
	batch_add(&m->pending, w);
	atomic_store(&m->nbatched, m->pending.n + m->inflight.n);
	m->pending_bytes += bytes;
	m->put_seq++;
	if (m->pending.n == 1 || m->pending.n >= BATCH_MAX)
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

/* Whether a record last used at minute used is old enough for a touch.
 * The coarse clock is enough for minutes and costs no system call. */
static bool touch_due(uint32_t used)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return used != UINT32_MAX &&
	       used + TOUCH_AGE_MIN <= (uint32_t)(ts.tv_sec / 60);
}

/* Remember that a record read is old, so the next batch can refresh its
 * "used" while it writes anyway (never a write of its own). */
static void note_touch(struct vmap *m, int db, const unsigned char *key,
		       size_t klen)
{
	pthread_mutex_lock(&m->lock);
	if (m->ntouched < TOUCH_MAX) {
		struct touch *t = &m->touched[m->ntouched++];
		t->db = db;
		t->klen = klen;
		memcpy(t->key, key, klen);
	}
	pthread_mutex_unlock(&m->lock);
}

/*
 * Thread slots: each live thread that looks up holds one of RTXN_POOL,
 * given back when it ends, so slot i of every map's pool is one thread's
 * alone and taking its transaction needs no atomic exchange (whose full
 * barrier cost a lookup a tenth of its time).  A thread that ends leaves
 * its transaction in the slot for the next holder (MDB_NOTLS: any thread
 * may use it); the slot's mutex orders the two.  Past RTXN_POOL threads
 * at once, a thread has no slot and begins a transaction per lookup.
 */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static bool slot_held[RTXN_POOL];          /* guarded by slot_lock */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static _Thread_local int my_slot = -1;     /* -2: none was free */

static void slot_release(void *p)
{
	pthread_mutex_lock(&slot_lock);
	slot_held[(uintptr_t)p - 1] = false;
	pthread_mutex_unlock(&slot_lock);
}

static void slot_key_make(void)
{
	if (pthread_key_create(&slot_key, slot_release))
		abort();               /* no keys left: a bug elsewhere */
}

/* This thread's slot, or -1 when it has none. */
static int thread_slot(void)
{
	if (my_slot != -1)
		return my_slot < 0 ? -1 : my_slot;
	pthread_once(&slot_once, slot_key_make);
	pthread_mutex_lock(&slot_lock);
	for (int i = 0; i < RTXN_POOL && my_slot < 0; i++)
		if (!slot_held[i]) {
			slot_held[i] = true;
			my_slot = i;
		}
	pthread_mutex_unlock(&slot_lock);
	if (my_slot < 0) {
		my_slot = -2;
		return -1;
	}
	pthread_setspecific(slot_key, (void *)(uintptr_t)(my_slot + 1));
	return my_slot;
}

/*
 * A read transaction: the one kept in this thread's slot, renewed (a
 * reset transaction keeps its reader slot, so renewing it takes no
 * lock, where beginning one takes the reader table's mutex), or a new
 * one.  Returns 0 or -errno.
 */
static int rtxn_take(struct vmap *m, MDB_txn **txn, int *slot)
{
	*slot = thread_slot();
	if (*slot >= 0) {
		MDB_txn *t = atomic_load_explicit(&m->rtxn[*slot],
						  memory_order_acquire);
		if (t && mdb_txn_renew(t) == 0) {
			*txn = t;
			return 0;
		}
		if (t)
			mdb_txn_abort(t);
		atomic_store_explicit(&m->rtxn[*slot], NULL,
				      memory_order_relaxed);
	}
	return vmap_mdb_errno(mdb_txn_begin(m->env, NULL, MDB_RDONLY, txn));
}

/* End a read transaction: reset and kept in this thread's slot, or
 * aborted when it has none. */
static void rtxn_give(struct vmap *m, MDB_txn *txn, int slot)
{
	if (slot < 0) {
		mdb_txn_abort(txn);
		return;
	}
	mdb_txn_reset(txn);
	atomic_store_explicit(&m->rtxn[slot], txn, memory_order_release);
}

/* What a lookup does with what it finds: a fact still in a batch (under
 * the lock), or the record on disk (while its bytes are still the
 * map's).  Each returns 0 or -ENOENT. */
struct taker {
	int (*pending)(const struct fact_write *w, void *arg);
	int (*record)(const unsigned char *v, size_t len,
		      const struct fact_write *q, void *arg);
};

/* Add one to a count: a slot's has one writer and needs no atomic
 * read-modify-write, the shared one does. */
static void count_one(_Atomic uint64_t *c, bool shared)
{
	if (shared)
		atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
	else
		atomic_store_explicit(c, atomic_load_explicit(
			c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Count a lookup of a name in this thread's slot. */
static void count_lookup(struct vmap *m, bool hit)
{
	int slot = thread_slot();
	struct vmap_count *c = &m->count[slot < 0 ? RTXN_POOL : slot];
	count_one(&c->lookups, slot < 0);
	if (hit)
		count_one(&c->hits, slot < 0);
}

/* Keep the name record v, read with ticket, in the front.  A record due
 * a touch is kept as it will be once the touch is written (used now), so
 * that its hits do not touch it again: only its "used" differs from the
 * map's, and no fact. */
static void front_keep(struct vmap *m, const unsigned char *key,
		       uint64_t ticket, const unsigned char *v, size_t len,
		       bool due)
{
	unsigned char copy[VFRONT_VAL_MAX];

	if (!ticket || len > VFRONT_VAL_MAX)
		return;
	if (due) {
		memcpy(copy, v, len);
		vmap_records_set_used(copy, len, now_minutes());
		v = copy;
	}
	vfront_fill(m->front, key, ticket, v, len);
}

/* A name record found in the front: its fact, and a touch when the copy
 * has been kept for an hour (the copy then says used now). */
static int front_record(struct vmap *m, const struct fact_write *q,
			uint64_t ticket, const unsigned char *v, size_t len,
			const struct taker *take, void *arg)
{
	int rc = take->record(v, len, q, arg);
	if (rc == 0 && touch_due(vmap_records_used(v, len))) {
		note_touch(m, DB_NAMES, q->key, NAME_KEY);
		front_keep(m, q->key, ticket, v, len, true);
	}
	return rc;
}

/*
 * Look the fact like q up: batches first, then the front for names, then
 * the map (a short read txn).  The batches are looked at only when they
 * hold something: a get in a thread that put a fact sees it, since the
 * count is raised before put_fact() returns.  The front's ticket is taken
 * before the batches are looked at (vmap_front.h).  Returns the taker's
 * result, or -errno: -ENOENT when the key is absent.
 */
static int lookup(struct vmap *m, const struct fact_write *q,
		  const struct taker *take, void *arg)
{
	int db = kind_db(q->kind);
	size_t klen = kind_klen(q->kind);
	uint64_t ticket = db == DB_NAMES ? vfront_ticket(m->front, q->key) : 0;

	if (atomic_load_explicit(&m->nbatched, memory_order_acquire)) {
		int rc = 1;
		pthread_mutex_lock(&m->lock);
		const struct fact_write *w = batch_find(m, q);
		if (w)
			rc = take->pending(w, arg);
		pthread_mutex_unlock(&m->lock);
		if (rc <= 0) {
			if (db == DB_NAMES)
				count_lookup(m, false);
			return rc;
		}
	}
	if (db == DB_NAMES) {
		unsigned char v[VFRONT_VAL_MAX];
		size_t len = vfront_get(m->front, q->key, v);
		count_lookup(m, len != 0);
		if (len)
			return front_record(m, q, ticket, v, len, take, arg);
	}

	MDB_txn *txn;
	int slot;
	MDB_val k = { klen, (void *)q->key }, d;
	bool due = false;
	int rc = rtxn_take(m, &txn, &slot);
	if (rc < 0)
		return rc;
	rc = vmap_mdb_errno(mdb_get(txn, m->dbi[db], &k, &d));
	if (rc == 0) {
		due = touch_due(vmap_records_used(d.mv_data, d.mv_size));
		front_keep(m, q->key, ticket, d.mv_data, d.mv_size, due);
		rc = take->record(d.mv_data, d.mv_size, q, arg);
	}
	rtxn_give(m, txn, slot);
	if (rc == 0 && due)
		note_touch(m, db, q->key, klen);
	return rc;
}

/* ---- the facts interface ---- */

/* The fact like w of name (of replica, when not NULL): its key and check,
 * and the replica's id, given now when put and the replica has none.
 * Returns 0, or -ENOENT (get) or -ENOSPC (put) when the replica has no
 * id: then nothing is known of it, or kept. */
static int name_fact(struct vmap *m, enum fact_kind kind, bool put,
		     const char *replica, const char *name,
		     struct fact_write *w)
{
	unsigned char nkey[NAME_KEY];

	memset(w, 0, sizeof(*w));
	w->kind = kind;
	if (replica) {
		int id = put ? replica_id(m, replica) : replica_find(m, replica);
		if (id < 0)
			return id;
		w->rid = (uint8_t)id;
	}
	vmap_records_name_hash(&m->secret, name, nkey, &w->check);
	if (kind == PUT_SUMS)
		sums_key(w->rid, nkey, w->key);
	else
		memcpy(w->key, nkey, NAME_KEY);
	return 0;
}

static int pending_source(const struct fact_write *w, void *arg)
{
	*(struct source_fact *)arg = w->f.source;
	return 0;
}

static int record_source(const unsigned char *v, size_t len,
			 const struct fact_write *q, void *arg)
{
	return vmap_records_decode_source(v, len, q->check, arg);
}

static int f_get_source(void *ctx, const char *name, struct source_fact *out)
{
	static const struct taker take = { pending_source, record_source };
	struct fact_write q;

	name_fact(ctx, PUT_SOURCE, false, NULL, name, &q);
	if (lookup(ctx, &q, &take, out) < 0)
		return -ENOENT;       /* facts.h: whatever the cause, unknown */
	return 0;
}

static void f_put_source(void *ctx, const char *name,
			 const struct source_fact *f)
{
	struct fact_write w;

	name_fact(ctx, PUT_SOURCE, true, NULL, name, &w);
	w.f.source = *f;
	put_fact(ctx, &w);
}

static int pending_replica(const struct fact_write *w, void *arg)
{
	*(struct replica_fact *)arg = w->f.replica;
	return 0;
}

static int record_replica(const unsigned char *v, size_t len,
			  const struct fact_write *q, void *arg)
{
	return vmap_records_decode_replica(v, len, q->check, q->rid, arg);
}

static int f_get_replica(void *ctx, const char *replica, const char *name,
			 struct replica_fact *out)
{
	static const struct taker take = { pending_replica, record_replica };
	struct fact_write q;

	if (name_fact(ctx, PUT_REPLICA, false, replica, name, &q) < 0 ||
	    lookup(ctx, &q, &take, out) < 0)
		return -ENOENT;       /* facts.h: whatever the cause, unknown */
	return 0;
}

static void f_put_replica(void *ctx, const char *replica, const char *name,
			  const struct replica_fact *f)
{
	struct fact_write w;

	if (name_fact(ctx, PUT_REPLICA, true, replica, name, &w) < 0)
		return;               /* facts.h: not kept */
	w.f.replica = *f;
	put_fact(ctx, &w);
}

struct take_sums {
	void *out;                /* the manifest, copied */
	size_t len;
};

static int record_sums(const unsigned char *v, size_t len,
		       const struct fact_write *q, void *arg)
{
	struct take_sums *t = arg;
	size_t off;

	if (vmap_records_decode_sums(v, len, q->check, &off) < 0)
		return -ENOENT;
	t->len = len - off;
	t->out = xmalloc(t->len ? t->len : 1);
	memcpy(t->out, v + off, t->len);
	return 0;
}

static int pending_sums(const struct fact_write *w, void *arg)
{
	return record_sums(w->val, w->vlen, w, arg);
}

static int f_get_sums(void *ctx, const char *replica, const char *name,
		      void **out, size_t *outlen)
{
	static const struct taker take = { pending_sums, record_sums };
	struct take_sums t = { NULL, 0 };
	struct fact_write q;

	*out = NULL;
	if (name_fact(ctx, PUT_SUMS, false, replica, name, &q) < 0)
		return -ENOENT;
	if (lookup(ctx, &q, &take, &t) < 0)
		return -ENOENT;
	*out = t.out;
	*outlen = t.len;
	return 0;
}

static void f_put_sums(void *ctx, const char *replica, const char *name,
		       const void *sums, size_t slen)
{
	struct fact_write w;

	if (name_fact(ctx, PUT_SUMS, true, replica, name, &w) < 0)
		return;               /* facts.h: not kept */
	w.val = vmap_records_encode_sums(w.check, sums, slen, now_minutes(),
					 &w.vlen);
	put_fact(ctx, &w);
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


/* The hash keys of a map in the making, from the kernel's random pool.
 * Returns 0 or -errno. */
static int make_secret(struct vmap_secret *s)
{
	errno = 0;
	if (getrandom(s, sizeof(*s), 0) != (ssize_t)sizeof(*s))
		return errno ? -errno : -EIO;
	return 0;
}

/* Empty a map of another format: its records, its meta, and format 1's
 * databases, deleted.  Returns an MDB_* code. */
static int start_afresh(struct vmap *m, MDB_txn *txn)
{
	static const char *const old[] = { "objects", "replicas" };
	MDB_dbi dbi;
	int rc;

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++)
		if (mdb_dbi_open(txn, old[i], 0, &dbi) == 0 &&
		    (rc = mdb_drop(txn, dbi, 1)))
			return rc;
	for (int db = 0; db < NDB; db++)
		if ((rc = mdb_drop(txn, m->dbi[db], 0)))
			return rc;
	return mdb_drop(txn, m->meta, 0);
}

/* Open the databases; check or write schema, secret and identity. */
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
	    (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &m->dbi[DB_NAMES])) ||
	    (rc = mdb_dbi_open(txn, "sums", MDB_CREATE, &m->dbi[DB_SUMS])) ||
	    (rc = mdb_set_compare(txn, m->dbi[DB_NAMES], key_cmp)) ||
	    (rc = mdb_set_compare(txn, m->dbi[DB_SUMS], key_cmp)))
		goto out_abort_txn;
	k.mv_data = "schema";
	k.mv_size = 6;
	rc = mdb_get(txn, m->meta, &k, &d);
	bool fresh = vmap_mdb_errno(rc) == -ENOENT;
	bool known = !fresh && !rc && d.mv_size == 4 &&
		     !memcmp(d.mv_data, &schema, 4);
	k.mv_data = "secret";
	k.mv_size = 6;
	if (known && !mdb_get(txn, m->meta, &k, &d) &&
	    d.mv_size == sizeof(m->secret))
		memcpy(&m->secret, d.mv_data, sizeof(m->secret));
	else
		known = false;
	k.mv_data = "replicas";
	k.mv_size = 8;
	if (known && !mdb_get(txn, m->meta, &k, &d) &&
	    !load_replicas(m, d.mv_data, d.mv_size))
		known = false;         /* ids unknown: the records are lost */
	if (!known)
		free_replicas(m);
	if (!fresh && !known) {
		/* Another format: the map is a cache, start it again. */
		log_notice("version map: another format than %u, starting "
			   "afresh", SCHEMA);
		if ((rc = start_afresh(m, txn)))
			goto out_abort_txn;
		fresh = true;
	}
	if (fresh) {
		MDB_val sk = { 6, "secret" }, sv = { sizeof(m->secret),
						     &m->secret };
		int err_rand = make_secret(&m->secret);
		if (err_rand < 0) {
			snprintf(err, errlen, "version map: no random keys: %s",
				 strerror(-err_rand));
			mdb_txn_abort(txn);
			return err_rand;
		}
		if ((rc = mdb_put(txn, m->meta, &sk, &sv, 0)))
			goto out_abort_txn;
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
	return vmap_mdb_errno(rc);
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
	    (rc = mdb_env_set_maxdbs(m->env, MAXDBS)) ||
	    (rc = mdb_env_set_maxreaders(m->env, 512)) ||
	    (rc = mdb_env_set_mapsize(m->env, m->map_size)) ||
	    (rc = mdb_env_open(m->env, dir, MDB_NOTLS | MDB_NORDAHEAD |
			       MDB_NOMETASYNC, 0600))) {
		snprintf(err, errlen, "version map in %s: %s", dir,
			 mdb_strerror(rc));
		rc = vmap_mdb_errno(rc);
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
	free_replicas(m);
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
	m->front = vfront_create(FRONT_SLOTS_LOG2);
	if (!m->front) {
		rc = -ENOMEM;
		snprintf(err, errlen, "version map: %s", strerror(-rc));
		goto out_free;
	}
	rc = env_open(m, dir, identity, err, errlen);
	if (rc == -EUCLEAN)
		rc = reopen_fresh(m, dir, identity, err, errlen);
	if (rc < 0)
		goto out_free;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->done, NULL);
	rc = -pthread_create(&m->writer, NULL, vmap_writer_main, m);
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
	vfront_destroy(m->front);
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
	for (unsigned i = 0; i < RTXN_POOL; i++) {
		MDB_txn *t = atomic_exchange(&m->rtxn[i], NULL);
		if (t)
			mdb_txn_abort(t);
	}
	batch_free(&m->pending);
	batch_free(&m->inflight);
	free_replicas(m);
	mdb_env_sync(m->env, 1);
	mdb_env_close(m->env);
	vfront_destroy(m->front);
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
		if (mdb_stat(txn, m->dbi[DB_NAMES], &s) == 0)
			st->objects = s.ms_entries;
		if (mdb_stat(txn, m->dbi[DB_SUMS], &s) == 0)
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
	st->used_bytes = (uint64_t)(vmap_fill_ratio(m) * (double)m->map_size);
	for (unsigned i = 0; i <= RTXN_POOL; i++) {
		st->lookups += atomic_load_explicit(&m->count[i].lookups,
						    memory_order_relaxed);
		st->front_hits += atomic_load_explicit(&m->count[i].hits,
						       memory_order_relaxed);
	}
}
