/*
 * vmap_impl.h - what the version map's files share (cache/vmap.c: open,
 * lookups and the facts interface; cache/vmap_writer.c: the writer,
 * batches into transactions, and eviction).  Not an interface: only
 * those two include it.
 */
#ifndef HYLAKE_VMAP_IMPL_H
#define HYLAKE_VMAP_IMPL_H

#include "cache/vmap.h"
#include "cache/vmap_records.h"
#include "backends/util/timeutil.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SCHEMA 3
#define BATCH_MS 5
#define BATCH_MAX 512
#define PENDING_MAX 16384            /* facts waiting for the writer */
#define PENDING_BYTES_MAX (16 << 20) /* and their bytes */
#define TOUCH_MAX 1024
#define TOUCH_AGE_MIN 60          /* refresh "used" once an hour at most */
#define EVICT_AT 0.80
#define EVICT_SHARE 0.25
#define EVICT_REGROW 0.05         /* pages grown since: lower the cap */
#define EVICT_STEP_MIN 8192       /* records a batch may evict, at least */
#define EVICT_SAMPLE 4            /* records looked at per record evicted */
#define NAME_KEY 16
#define KEY_MAX 17
#define REPLICA_IDS 255          /* replicas a map keeps facts of */
#define RTXN_POOL 64              /* threads that keep a read transaction */
#define FRONT_SLOTS_LOG2 16       /* names looked up lately: 12 MiB */
#define NDB 2
#define MAXDBS 6                  /* meta, names, sums; and format 1's */

enum { DB_NAMES, DB_SUMS };

/* What a put asks of the writer. */
enum fact_kind { PUT_SOURCE, PUT_REPLICA, PUT_SUMS };

struct fact_write {
	enum fact_kind kind;
	unsigned char key[KEY_MAX];   /* names: the name key; sums: KEY_MAX */
	uint64_t check;               /* the name's */
	uint8_t rid;                  /* PUT_REPLICA, PUT_SUMS: the replica */
	union {
		struct source_fact source;
		struct replica_fact replica;
	} f;
	void *val;                    /* PUT_SUMS: the record */
	size_t vlen;
};

/* Facts in the order put, and an index of them by key (open addressing:
 * each slot 0, or 1 + the place of a fact), so a get finds a name's fact
 * among thousands queued without reading them all. */
struct batch {
	struct fact_write *w;
	size_t n, alloc;
	uint32_t *index;
	size_t nindex;                /* a power of two, over 2 n */
};

struct touch {
	int db;
	unsigned char key[KEY_MAX];
	size_t klen;
};

/* Lookups of names, and those the front answered, of one thread slot:
 * one thread writes them, so no atomic read-modify-write (the last pair
 * is shared by threads without a slot). */
struct vmap_count {
	_Atomic uint64_t lookups, hits;
} __attribute__((aligned(64)));

struct vmap {
	MDB_env *env;
	MDB_dbi dbi[NDB];
	MDB_dbi meta;
	uint64_t map_size;
	struct vmap_secret secret; /* set at open, read-only after */
	/* replica ids: names are set before nreplicas counts them and never
	 * change after, so readers take no lock; added under the lock */
	char *replica[REPLICA_IDS];
	_Atomic unsigned nreplicas;
	unsigned nreplicas_kept;   /* the writer's: how many meta holds */
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
	/* eviction, the writer's alone (no lock): the entry counts it keeps
	 * between, the fill when they were set, where the sweep goes on */
	uint64_t evict_hi, evict_lo;
	double evict_fill;
	bool evicting;
	unsigned char sweep_key[NDB][KEY_MAX];
	size_t sweep_klen[NDB];
	_Atomic size_t nbatched;   /* pending.n + inflight.n, read unlocked */
	/* reset read transactions, one per thread slot: slot i is used by
	 * the thread holding it alone (thread_slot()), and by close */
	_Atomic(MDB_txn *) rtxn[RTXN_POOL];
	struct vfront *front;      /* name records looked up lately */
	struct vmap_count count[RTXN_POOL + 1];
};

static inline uint32_t now_minutes(void)
{
	return (uint32_t)(wall_ns() / (60 * NS_PER_SEC));
}

static inline int kind_db(enum fact_kind k)
{
	return k == PUT_SUMS ? DB_SUMS : DB_NAMES;
}

static inline size_t kind_klen(enum fact_kind k)
{
	return k == PUT_SUMS ? KEY_MAX : NAME_KEY;
}

/* vmap.c */
int vmap_mdb_errno(int rc);
int vmap_keep_replicas(struct vmap *m, MDB_txn *txn, unsigned *kept);
void vmap_batch_clear(struct batch *bt);

/* vmap_writer.c */
void *vmap_writer_main(void *arg);
double vmap_fill_ratio(struct vmap *m);

#endif
