/*
 * readpath.c - extents in memory, the block cache, read-ahead (readpath.h).
 *
 * Each open file keeps a short list of extents.  An extent is fetched
 * once, by the read that needs it (inline, under that read's deadline) or
 * by a fetcher thread (read-ahead, under its own deadline and cancelled
 * when the file is closed).  Readers that need an extent being fetched
 * wait for it; a failed read-ahead extent is dropped and fetched again by
 * the reader, whose own error is the one reported.
 *
 * Memory: every buffer, in an extent or on the free list, is charged to
 * one budget (mem_used against memory_limit).  A ready extent on a file's
 * list is also on the mount's list of kept extents, in order of last use
 * across all files.  A new buffer that would pass the limit is paid for
 * by unmapping free buffers, then by dropping kept extents oldest first
 * (only those no reader holds); a read that finds all of it in use is
 * given its buffer anyway (the overdraft) and the budget is trimmed back
 * when it ends.  Read-ahead not read yet (ahead_bytes) stays under
 * memory_limit less RESERVE, and read-ahead never drops it to make room.
 *
 * Dropping an extent of another file takes only the budget's lock, never
 * that file's: the budget claims the extent by moving its reference count
 * from 1 (the list's alone) to 0, takes its buffer and leaves the struct
 * on the file's list as a husk that ext_find passes over and the file
 * frees, under its own lock, when it next walks its list.  A reader takes
 * a reference only while the count is above 0, so no buffer is dropped
 * while someone copies from it.
 *
 * Locking: the file's lock guards its extent list, the read-ahead state
 * and every extent's state; reference counts are atomic (see above).
 * Bytes are copied out of an extent, and fetched into it, without the
 * lock: a reference keeps it.  The budget's lock (mem_lock) guards the
 * free list, the kept list and each extent's place on it, and comes after
 * a file's lock when both are held; so does the lock of the scans'
 * columns (projections.h), which is never held with mem_lock.
 */
#include "cache/readpath.h"
#include "cache/blockcache.h"
#include "cache/parquet.h"
#include "cache/projections.h"
#include "backends/backend.h"
#include "backends/util/log.h"
#include "backends/util/pool.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define BLK ((uint64_t)BC_BLOCK_SIZE)
#define CHUNK_BLOCKS ((unsigned)(READPATH_CHUNK_MAX / BLK))
#define WINDOW_START ((uint64_t)4 << 20)
#define NEAR ((uint64_t)2 << 20)       /* reordering a sequential read allows */
#define CHUNK_DIV 4                    /* requests in flight per window */
#define KEEP_BEHIND ((uint64_t)2 << 20)
#define KEEP_EXTENTS 8                 /* ready extents kept for re-reads */
#define MAX_AHEAD 16                   /* read-ahead fetches of one file */
#define SMALL_READ ((size_t)256 << 10)
#define FREE_MAX ((uint64_t)128 << 20)  /* buffers kept for reuse */
#define RESERVE ((uint64_t)48 << 20)   /* memory_limit left to the rest */
#define PAGE ((uint64_t)4096)           /* the kernel's reads start on one */
#define CHUNK_PEEK ((size_t)64 << 10)   /* a page header, read first */
#define PLAN_COLUMNS PROJECTION_COLUMNS /* columns plan_columns follows */
#define FOOTER_ROUND ((uint64_t)64 << 10)  /* a learnt tail, rounded up */
#define TAIL_SHARE 8          /* a file up to 8 tails long: tails whole */
_Static_assert(PLAN_COLUMNS / 64 == PROJECTION_WORDS, "a scan's bitmap");

struct extent;

struct readpath {
	struct readpath_conf conf;
	struct pool pool;
	pthread_mutex_t mem_lock;         /* the budget: guards free_bufs,
					     free_bytes, the kept list,
					     ahead_bytes and every change
					     of mem_used */
	void *free_bufs[CHUNK_BLOCKS + 1];   /* by size in blocks */
	uint64_t free_bytes;
	struct extent *kept_old, *kept_new;  /* kept extents, by last use */
	uint64_t ahead_bytes;             /* extents fetched ahead, unread */
	atomic_uint_fast64_t mem_used, mem_peak;   /* extents + free list */
	atomic_uint_fast64_t cache_hit_bytes;
	atomic_uint_fast64_t kernel_ra;   /* readpath_set_kernel_read_ahead */
	struct projections *scans;        /* what scans of a table read */
	atomic_uint_fast64_t reads, bytes, mem_hits, cache_hits, fetches,
		fetched_bytes, ahead_fetches, ahead_unused;
};

enum ext_state { EX_FETCHING, EX_READY, EX_FAILED };

struct extent {
	struct extent *next;
	uint64_t first;                   /* first block */
	unsigned nblocks;
	uint64_t off;                     /* first * BLK */
	size_t len;                       /* bytes of the object it holds */
	size_t skip;                      /* bytes [off, off + skip) of its
					     first block not fetched: a
					     read's head (ext_head); its
					     last block may end short, where
					     another's holds (ext_plan) */
	char *buf;                        /* nblocks * BLK bytes, laid out
					     from off */
	enum ext_state st;
	int err;
	atomic_int refs;                  /* the list, readers, its fetcher;
					     0: dropped by the budget */
	bool linked;
	bool from_cache;                  /* planned from the block cache */
	bool ahead, used, tail;
	bool planned;                     /* fetched ahead for a chunk of
					     row group `group` (plan_columns) */
	uint32_t group;
	size_t store_from;                /* bytes from here came from the
	                                     store: for the block cache */
	uint64_t tick;                    /* last use, for trimming */
	/* guarded by the budget's mem_lock: */
	struct extent *kept_prev, *kept_next;
	bool kept;                        /* on the kept list */
	bool seen;                        /* read since it was ready */
};

struct rfile {
	struct readpath *rp;
	struct bobj *o;
	char *version;                    /* block cache token; NULL: none */
	uint64_t size, nblocks;
	pthread_mutex_t lock;
	pthread_cond_t cv;                /* an extent left EX_FETCHING */
	struct extent *ext;
	uint64_t tick;
	uint64_t next_off;                /* where an in-order read goes next */
	unsigned seq;                     /* reads in order so far */
	uint64_t window;                  /* read-ahead window, bytes */
	uint64_t ra_end;                  /* read-ahead issued up to here */
	unsigned ahead_inflight;
	atomic_bool keep;                 /* rfile_keep: store every block */
	bool spliced;                     /* served from the block cache by
					     rfile_splice: read-ahead leaves
					     cached blocks to it */
	char *tail;                       /* bytes [tail_off, size) read at
					     open (struct bobj's tail), or
					     NULL; charged to the budget */
	uint64_t tail_off;
	bool columnar;                    /* a Parquet file, by its name */
	bool footed;                      /* read from its footer: a tail
					     is read at its open */
	uint64_t footer;                  /* how far into its last
					     READPATH_TAIL bytes it read
					     (projections.h) */
	atomic_bool offer_last;           /* its tail held part of its last
					     block: offered to the block
					     cache at its close, unless a
					     fetch of the block offered it
					     (one touch per handle) */
	bool layout_tried;
	struct parquet_layout *layout;    /* its column chunks, once its
					     footer was read; or NULL */
	uint64_t ra_limit;                /* with a layout: read-ahead stops
					     here, the end of the chunk the
					     reads in order are in */
	uint64_t columns[PLAN_COLUMNS / 64];  /* bit per column: its chunk
					     begun by this handle, or by the
					     last scan of the table */
	uint64_t begun[PLAN_COLUMNS / 64];    /* by this handle only */
	uint32_t first_column;            /* the column begun first, + 1 */
	uint32_t plan_group;              /* row group of the chunk begun
					     last, + 1; 0: none yet */
	int refs;                         /* the opener and fetch jobs */
	atomic_bool cancel;               /* set at close */
};

struct fetch_job {
	struct job job;
	struct rfile *f;
	struct extent *e;
};

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* ------------------------------------------------------------ the budget */

/* A run of unmapped-to-be buffers, chained through their first words
 * (the second holds the size in blocks). */
static void chain_push(void **chain, void *b, unsigned nblocks)
{
	((void **)b)[0] = *chain;
	((uintptr_t *)b)[1] = nblocks;
	*chain = b;
}

static void chain_unmap(void *chain)
{
	while (chain) {
		void *next = ((void **)chain)[0];
		munmap(chain, ((uintptr_t *)chain)[1] * BLK);
		chain = next;
	}
}

#define HUGE_PAGE ((uint64_t)2 << 20)

/*
 * Fresh memory for a buffer of n bytes, aligned to a huge page and asked
 * to be backed by huge pages (transparent huge pages in "madvise" mode,
 * Debian's default).  A buffer's bytes are written once by a GET and then
 * replied from; with 4 KiB pages every page's first write is a fault, and
 * the FUSE reply pins each page on its own.  The cold sequential read of
 * the fast-reads bench spent a fifth of the daemon's CPU there; with huge
 * pages a 1 GiB read costs the daemon 0.9 s of CPU instead of 1.2 s.
 * Where huge pages are off, or none is free, the kernel falls back to
 * small pages and nothing else changes.
 */
static void *buf_map(uint64_t n)
{
	char *m = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return m;
	char *b = (char *)(((uintptr_t)m + HUGE_PAGE - 1) &
			   ~(uintptr_t)(HUGE_PAGE - 1));
	/* keep [b, b + n) only: the buffer is unmapped as n bytes at b */
	if (b > m)
		munmap(m, (size_t)(b - m));
	if (m + HUGE_PAGE > b)
		munmap(b + n, (size_t)(m + HUGE_PAGE - b));
	(void)madvise(b, n, MADV_HUGEPAGE);   /* advice: may be refused */
	return b;
}

/* Charge n bytes.  mem_lock held. */
static void mem_add_locked(struct readpath *rp, uint64_t n)
{
	uint64_t now = atomic_fetch_add(&rp->mem_used, n) + n;
	if (now > atomic_load(&rp->mem_peak))
		atomic_store(&rp->mem_peak, now);
}

static void kept_remove_locked(struct readpath *rp, struct extent *e)
{
	*(e->kept_prev ? &e->kept_prev->kept_next : &rp->kept_old) = e->kept_next;
	*(e->kept_next ? &e->kept_next->kept_prev : &rp->kept_new) = e->kept_prev;
	e->kept_prev = e->kept_next = NULL;
	e->kept = false;
}

static void kept_append_locked(struct readpath *rp, struct extent *e)
{
	e->kept_prev = rp->kept_new;
	e->kept_next = NULL;
	*(rp->kept_new ? &rp->kept_new->kept_next : &rp->kept_old) = e;
	rp->kept_new = e;
	e->kept = true;
}

/* e is ready on its file's list: the budget may drop it from now on. */
static void kept_add(struct readpath *rp, struct extent *e)
{
	pthread_mutex_lock(&rp->mem_lock);
	kept_append_locked(rp, e);
	pthread_mutex_unlock(&rp->mem_lock);
}

/* Read ahead and not read yet.  mem_lock held. */
static bool unread_locked(const struct extent *e)
{
	return e->ahead && !e->seen;
}

/* e was just read: it moves to the new end.  The caller holds a reference. */
static void kept_touch(struct readpath *rp, struct extent *e)
{
	pthread_mutex_lock(&rp->mem_lock);
	if (unread_locked(e))
		rp->ahead_bytes -= e->nblocks * BLK;
	e->seen = true;
	if (e->kept) {
		kept_remove_locked(rp, e);
		kept_append_locked(rp, e);
	}
	pthread_mutex_unlock(&rp->mem_lock);
}

static void kept_remove(struct readpath *rp, struct extent *e)
{
	pthread_mutex_lock(&rp->mem_lock);
	if (e->kept)
		kept_remove_locked(rp, e);
	pthread_mutex_unlock(&rp->mem_lock);
}

/*
 * Free one buffer for the budget: a free one, else the buffer of the
 * oldest kept extent that only its list holds (with spare_unread, not one
 * fetched ahead and never read).  Returns it, still charged, with its
 * size in *nblocks; NULL when nothing can go.  mem_lock held.
 */
static void *budget_take_locked(struct readpath *rp, bool spare_unread,
				unsigned *nblocks)
{
	for (unsigned i = 1; i <= CHUNK_BLOCKS; i++) {
		void *b = rp->free_bufs[i];
		if (b) {
			rp->free_bufs[i] = *(void **)b;
			rp->free_bytes -= i * BLK;
			*nblocks = i;
			return b;
		}
	}
	for (struct extent *e = rp->kept_old; e; e = e->kept_next) {
		int one = 1;
		if (spare_unread && unread_locked(e))
			continue;
		if (!atomic_compare_exchange_strong(&e->refs, &one, 0))
			continue;               /* a reader holds it */
		kept_remove_locked(rp, e);  /* a husk now: its file frees it */
		if (unread_locked(e)) {
			rp->ahead_bytes -= e->nblocks * BLK;
			atomic_fetch_add(&rp->ahead_unused, 1);
		}
		*nblocks = e->nblocks;
		return e->buf;
	}
	return NULL;
}

/* Bring the budget back under memory_limit after an overdraft. */
static void budget_trim(struct readpath *rp)
{
	void *gone = NULL, *b;
	unsigned nb;

	if (atomic_load(&rp->mem_used) <= rp->conf.memory_limit)
		return;
	pthread_mutex_lock(&rp->mem_lock);
	while (atomic_load(&rp->mem_used) > rp->conf.memory_limit &&
	       (b = budget_take_locked(rp, false, &nb))) {
		atomic_fetch_sub(&rp->mem_used, nb * BLK);
		chain_push(&gone, b, nb);
	}
	pthread_mutex_unlock(&rp->mem_lock);
	chain_unmap(gone);
}

/*
 * A buffer of nblocks blocks, charged to the budget: one from the free
 * list, else one freed by budget_take_locked (reused when its size is
 * right, else unmapped) until a new one fits under memory_limit.
 * Read-ahead gets NULL when its extents not read yet would pass
 * memory_limit less RESERVE, or when the rest does not fit; it never
 * drops such extents itself.  A read, when what is charged is all in
 * use, gets its buffer anyway: the overdraft, one extent per read in
 * progress.
 */
static char *buf_get(struct readpath *rp, unsigned nblocks, bool ahead)
{
	uint64_t n = nblocks * BLK, limit = rp->conf.memory_limit;
	void *gone = NULL, *b = NULL, *d;
	unsigned nb;
	bool map = false;

	pthread_mutex_lock(&rp->mem_lock);
	if (ahead && rp->ahead_bytes + n + RESERVE > limit)
		goto out_unlock;
	b = rp->free_bufs[nblocks];
	if (b) {
		rp->free_bufs[nblocks] = *(void **)b;
		rp->free_bytes -= n;
	}
	while (!b && atomic_load(&rp->mem_used) + n > limit &&
	       (d = budget_take_locked(rp, ahead, &nb))) {
		if (nb == nblocks) {
			b = d;                  /* its charge carries over */
			break;
		}
		atomic_fetch_sub(&rp->mem_used, nb * BLK);
		chain_push(&gone, d, nb);
	}
	map = !b && (!ahead || atomic_load(&rp->mem_used) + n <= limit);
	if (map)
		mem_add_locked(rp, n);
	if (ahead && (b || map))
		rp->ahead_bytes += n;
out_unlock:
	pthread_mutex_unlock(&rp->mem_lock);
	chain_unmap(gone);
	if (!map)
		return b;
	b = buf_map(n);
	if (b == MAP_FAILED) {
		pthread_mutex_lock(&rp->mem_lock);
		atomic_fetch_sub(&rp->mem_used, n);
		if (ahead)
			rp->ahead_bytes -= n;
		pthread_mutex_unlock(&rp->mem_lock);
		return NULL;
	}
	return b;
}

/* Give back the buffer of e, which is being freed: kept for reuse while
 * the budget has room. */
static void buf_put(struct readpath *rp, struct extent *e)
{
	uint64_t n = e->nblocks * BLK;
	char *b = e->buf;
	pthread_mutex_lock(&rp->mem_lock);
	if (unread_locked(e))
		rp->ahead_bytes -= n;
	if (rp->free_bytes + n <= FREE_MAX &&
	    atomic_load(&rp->mem_used) <= rp->conf.memory_limit) {
		*(void **)b = rp->free_bufs[e->nblocks];
		rp->free_bufs[e->nblocks] = b;
		rp->free_bytes += n;
		b = NULL;
	} else {
		atomic_fetch_sub(&rp->mem_used, n);
	}
	pthread_mutex_unlock(&rp->mem_lock);
	if (b)
		munmap(b, n);
}

/* ------------------------------------------------------------ extents */

/* Dropped by the budget: a husk whose buffer is gone. */
static bool ext_dropped(struct extent *e)
{
	return atomic_load(&e->refs) == 0;
}

/* Take a reference to an extent on the list; false when it was dropped. */
static bool ext_tryget(struct extent *e)
{
	int r = atomic_load(&e->refs);
	while (r > 0)
		if (atomic_compare_exchange_weak(&e->refs, &r, r + 1))
			return true;
	return false;
}

static void ext_unref(struct rfile *f, struct extent *e)
{
	if (atomic_fetch_sub(&e->refs, 1) > 1)
		return;
	if (e->ahead && !e->used && e->st == EX_READY)
		atomic_fetch_add(&f->rp->ahead_unused, 1);
	buf_put(f->rp, e);
	free(e);
}

static void ext_unlink(struct rfile *f, struct extent *e)
{
	for (struct extent **pp = &f->ext; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			e->linked = false;
			kept_remove(f->rp, e);    /* the budget can claim it no more */
			if (ext_dropped(e))
				free(e);
			else
				ext_unref(f, e);  /* the list's reference */
			return;
		}
}

static struct extent *ext_find(struct rfile *f, uint64_t block)
{
	for (struct extent *e = f->ext; e; e = e->next)
		if (block >= e->first && block < e->first + e->nblocks &&
		    !ext_dropped(e))
			return e;
	return NULL;
}

/* The extent that holds the byte at pos: the newest of those on its
 * block whose bytes, fetched, begin by pos and end after it. */
static struct extent *ext_find_at(struct rfile *f, uint64_t pos)
{
	uint64_t block = pos / BLK;
	for (struct extent *e = f->ext; e; e = e->next)
		if (block >= e->first && block < e->first + e->nblocks &&
		    pos >= e->off + e->skip && pos < e->off + e->len &&
		    !ext_dropped(e))
			return e;
	return NULL;
}

/* Where, after pos, an extent's bytes begin that hold pos's block from
 * its middle on (ext_head): the first such, else the file's size. */
static uint64_t held_from(struct rfile *f, uint64_t pos)
{
	uint64_t b = pos / BLK, from = f->size;
	for (struct extent *e = f->ext; e; e = e->next)
		if (e->first == b && e->skip && e->off + e->skip > pos &&
		    !ext_dropped(e))
			from = min64(from, e->off + e->skip);
	return from;
}

static size_t block_len(const struct rfile *f, uint64_t block)
{
	return (size_t)min64(BLK, f->size - block * BLK);
}

static bool cached(struct rfile *f, uint64_t block)
{
	struct bcache_key k = { f->o->name, f->version, block };
	return f->version && f->rp->conf.cache && bcache_has(f->rp->conf.cache, &k);
}

/*
 * How much of the head of the block holding pos a fetch for pos may
 * leave out: in a Parquet file whose column chunks are known, the bytes
 * before pos's page, which are another chunk's (a query reads some
 * columns of a row group, and a chunk rarely starts on a block); unless
 * the block cache is to keep the block (whole blocks only, from a second
 * touch on; or every block, when told so).  Elsewhere a block's head is
 * as likely to be read next as its tail, and fetching it later costs a
 * request: a file read at random in small ranges fetched half again as
 * many.  Lock held.
 */
static size_t ext_head(struct rfile *f, uint64_t pos)
{
	uint64_t b = pos / BLK;
	size_t skip = (size_t)(pos / PAGE * PAGE - b * BLK);
	struct bcache *bc = f->version ? f->rp->conf.cache : NULL;

	if (!skip || !f->layout || f->size <= READPATH_SMALL_WHOLE)
		return 0;
	if (bc) {
		struct bcache_key k = { f->o->name, f->version, b };
		if (f->rp->conf.cache_first_read || atomic_load(&f->keep) ||
		    bcache_has(bc, &k) || bcache_would_admit(bc, &k))
			return 0;
	}
	return skip;
}

/* Does name end in suffix, ignoring case? */
static bool ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n >= k && !strcasecmp(name + n - k, suffix);
}

/* Are name's readers known to begin at its footer (readpath_open_tail)? */
static bool footed(const char *name)
{
	return ends_with(name, ".parquet") || ends_with(name, ".orc");
}

/*
 * Follow how far into a footed file's last READPATH_TAIL bytes its handle
 * reads, the footer and any column chunk there alike: its table's next
 * file's open fetches that much (rfile_close).  Lock held.
 */
static void footer_note(struct rfile *f, uint64_t off)
{
	if (f->footed && off + READPATH_TAIL >= f->size)
		f->footer = max64(f->footer, f->size - off);
}

/*
 * Learn where a Parquet file's column chunks lie from its footer, once:
 * buf holds the file's bytes [off, size), which may hold the footer.
 * A footer that does not parse leaves the file read as any other.
 * Lock held.
 */
static void layout_learn(struct rfile *f, const char *buf, uint64_t off)
{
	uint32_t flen;

	if (!f->columnar || f->layout_tried || f->size < off + PARQUET_TAIL)
		return;
	f->layout_tried = true;
	if (parquet_tail_len(buf + (f->size - off - PARQUET_TAIL), f->size,
			     &flen) < 0 || f->size - PARQUET_TAIL - flen < off)
		return;
	const char *footer = buf + (f->size - PARQUET_TAIL - flen - off);
	int rc = parquet_footer_parse(footer, flen, f->size, &f->layout);
	if (rc < 0)
		log_debug("'%s': footer not used (%s)", f->o->name,
			  strerror(-rc));
	else
		log_debug("'%s': %zu column chunks in %zu row groups",
			  f->o->name, f->layout->n_chunks, f->layout->n_groups);
}

/*
 * The last block a reader beginning chunk c will ask for: the chunk's,
 * and for a chunk longer than the kernel's read-ahead, two windows of it
 * past the end (readpath.h), within the file.
 */
static uint64_t chunk_last(const struct rfile *f, const struct parquet_chunk *c)
{
	uint64_t ra = atomic_load_explicit(&f->rp->kernel_ra,
					   memory_order_relaxed);
	uint64_t end = c->off + c->len;
	if (ra && c->len > ra)
		end = min64(f->size, end + 2 * ra);
	return (end - 1) / BLK;
}

static struct extent *ahead_fetch(struct rfile *f, uint64_t b, uint64_t want,
				  size_t skip);

/* The columns of a row group of f (projections.h tells tables apart by it). */
static uint32_t table_width(const struct rfile *f)
{
	return f->layout->n_groups ? (uint32_t)f->layout->groups[0].n : 0;
}

/* Remember the columns this handle began as its table's scan's (whole:
 * it read a row group through).  Lock held. */
static void scan_keep(struct rfile *f, bool whole)
{
	if (f->first_column)
		projections_keep(f->rp->scans, f->o->name, table_width(f),
				 f->first_column - 1, f->begun, whole);
}

/*
 * A scan reads the same columns in each row group it takes (its query's
 * projection).  When this handle begins a row group (at chunk c), the
 * chunks of that group whose columns it began before are fetched ahead
 * as well (once: not again at its next chunks, which were), so that
 * they arrive together instead of one round trip after another.  Its
 * first chunk adds the columns the table's last scan that began there
 * read (projections.h); each row group it is done with, and its close,
 * tell the table what it read.  At most read_ahead_max bytes, none of
 * c's own blocks, up to c_last (its reader fetches them).
 * A wrong guess costs bytes, never the answer; what was fetched and not
 * read goes once the handle begins a chunk of another row group (trim).
 * Lock held.
 */
static void plan_columns(struct rfile *f, const struct parquet_chunk *c,
			 uint64_t c_last)
{
	const struct parquet_group *g = &f->layout->groups[c->group];
	uint64_t c_first = c->off / BLK;
	uint64_t room = f->rp->conf.read_ahead_max / BLK;

	if (!f->first_column) {    /* what the table's last scan read */
		f->first_column = c->column + 1;
		projections_seed(f->rp->scans, f->o->name, table_width(f),
				 c->column, f->columns);
	}
	if (c->column < PLAN_COLUMNS) {
		uint64_t bit = (uint64_t)1 << (c->column % 64);
		f->columns[c->column / 64] |= bit;
		f->begun[c->column / 64] |= bit;
	}
	if (f->plan_group == c->group + 1)
		return;            /* planned when the group was begun */
	if (f->plan_group) {       /* a row group read: the scan's columns, */
		scan_keep(f, true);
		/* and no more guesses of another scan's */
		memcpy(f->columns, f->begun, sizeof(f->columns));
	}
	f->plan_group = c->group + 1;
	for (size_t i = g->first; i < g->first + g->n; i++) {
		const struct parquet_chunk *d = &f->layout->chunks[i];
		if (d == c || d->column >= PLAN_COLUMNS ||
		    !(f->columns[d->column / 64] >> (d->column % 64) & 1))
			continue;
		uint64_t b = d->off / BLK, last = chunk_last(f, d);
		while (b <= last) {
			if (b >= c_first && b <= c_last) {
				b = c_last + 1;
				continue;
			}
			struct extent *e = ext_find(f, b);
			if (!e) {
				uint64_t want = min64(last - b + 1, room);
				if (b < c_first)
					want = min64(want, c_first - b);
				if (!want || f->ahead_inflight >= MAX_AHEAD ||
				    !(e = ahead_fetch(f, b, want, ext_head(f,
						max64(d->off, b * BLK)))))
					return;
				e->planned = true;
				e->group = c->group;
				room -= e->nblocks;
			}
			b = e->first + e->nblocks;
		}
	}
}

/*
 * A read that starts a Parquet column chunk reads it through: the reader
 * fetches the whole chunk (up to READPATH_CHUNK_MAX) and read-ahead stays
 * inside it (the next chunk in the file is another column, which the
 * query may not want).  A read starts a chunk when it begins on the
 * chunk's first page and is a jump from this handle's reads before, or a
 * small one from the chunk's first byte (a page header, read first); a
 * read that goes on from the last one starts nothing: the kernel's
 * read-ahead past a chunk's end, and a small piece of it from the page
 * that holds the end of the chunk before (the page cache splits its
 * reads where it already holds pages).
 * The kernel reads ahead through any handle of the file, so a guess can
 * be wrong either way: it costs bytes or a request, never the answer.
 * Returns the last block to fetch.  Lock held.
 */
static uint64_t chunk_start(struct rfile *f, uint64_t off, size_t len,
			    uint64_t last)
{
	if (!f->layout)
		return last;
	bool jump = off + PAGE < f->next_off || off > f->next_off + PAGE;
	const struct parquet_chunk *c = parquet_find(f->layout, off + PAGE - 1);
	if (c && off <= c->off && c->off - off < PAGE &&
	    (jump || (len <= CHUNK_PEEK && (off == c->off || !f->seq)))) {
		uint64_t c_last = chunk_last(f, c);
		f->ra_limit = min64(f->size, (c_last + 1) * BLK);
		plan_columns(f, c, c_last);
		return max64(last, c_last);
	}
	if (jump) {              /* into the middle of a chunk, or none */
		c = parquet_find(f->layout, off);
		f->ra_limit = c ? c->off + c->len : 0;
	}
	return last;
}

/*
 * A new extent from block first (less skip bytes of its head), at most
 * want blocks, stopping before a block some extent holds, or where an
 * extent holds a block from its middle on (ext_head), and where the block
 * cache stops (or starts) holding blocks.  NULL when no buffer can be had
 * (read-ahead only).
 */
static struct extent *ext_plan(struct rfile *f, uint64_t first, uint64_t want,
			       bool ahead, size_t skip)
{
	uint64_t limit = min64(min64(want, CHUNK_BLOCKS), f->nblocks - first);
	bool from_cache = cached(f, first);
	uint64_t end = from_cache ? f->size : held_from(f, first * BLK + skip);
	unsigned n = 1;
	while (end == f->size && n < limit &&
	       cached(f, first + n) == from_cache) {
		struct extent *h = ext_find(f, first + n);
		if (h && (from_cache || ext_find_at(f, (first + n) * BLK)))
			break;
		if (h)                  /* the block's head, up to h */
			end = held_from(f, (first + n) * BLK);
		n++;
	}
	if (first + n == f->nblocks)     /* rfile_close offers it no more */
		atomic_store(&f->offer_last, false);
	char *buf = buf_get(f->rp, n, ahead);
	if (!buf)
		return NULL;
	struct extent *e = xcalloc(1, sizeof(*e));
	e->first = first;
	e->nblocks = n;
	e->off = first * BLK;
	e->len = (size_t)min64(n * BLK, end - e->off);
	e->skip = from_cache ? 0 : skip;
	e->buf = buf;
	e->st = EX_FETCHING;
	atomic_init(&e->refs, 1);
	e->linked = true;
	e->from_cache = from_cache;
	e->ahead = ahead;
	e->next = f->ext;
	f->ext = e;
	return e;
}

/* Fill e (no lock held).  0 or -errno. */
static int ext_fetch(struct rfile *f, struct extent *e,
		     const struct deadline *dl)
{
	struct readpath *rp = f->rp;
	struct bcache *bc = f->version ? rp->conf.cache : NULL;
	size_t done = e->skip;            /* never from the cache */

	if (e->from_cache) {
		for (unsigned i = 0; i < e->nblocks; i++, done += BLK) {
			struct bcache_key k = { f->o->name, f->version,
						e->first + i };
			ssize_t n = bcache_get(bc, &k, e->buf + done, BLK);
			if (n != (ssize_t)block_len(f, e->first + i))
				break;       /* gone or bad: fetch the rest */
			atomic_fetch_add(&rp->cache_hits, 1);
			atomic_fetch_add(&rp->cache_hit_bytes, (uint64_t)n);
		}
		if (done >= e->len) {
			e->store_from = e->len;
			return 0;
		}
	}
	size_t want = e->len - done;
	ssize_t n = bobj_read(f->o, e->buf + done, want, e->off + done, dl);
	atomic_fetch_add(&rp->fetches, 1);
	if (e->ahead)
		atomic_fetch_add(&rp->ahead_fetches, 1);
	if (n < 0)
		return (int)n;
	atomic_fetch_add(&rp->fetched_bytes, (uint64_t)n);
	if ((size_t)n != want) {
		log_warn("'%s': %zd bytes at %" PRIu64 " where %zu were due",
			 f->o->name, n, e->off + done, want);
		return -EIO;
	}
	e->store_from = done;
	return 0;
}

/* Put the blocks of e fetched from the store into the block cache.  No
 * lock held; the caller holds a reference to e. */
static void ext_store(struct rfile *f, struct extent *e)
{
	struct bcache *bc = f->version ? f->rp->conf.cache : NULL;
	/* a small file is stored at once: it is cheap to keep, and readers
	 * that open a file several times (DuckDB) read it again at once */
	bool all = f->rp->conf.cache_first_read || atomic_load(&f->keep) ||
		   f->size <= READPATH_SMALL_WHOLE;
	for (size_t at = e->store_from; bc && at < e->len;
	     at = (at / BLK + 1) * BLK) {
		uint64_t b = e->first + at / BLK;
		struct bcache_key k = { f->o->name, f->version, b };
		/* a block without its head or its end is a touch, not a
		 * block */
		if ((all || bcache_admit(bc, &k)) && at % BLK == 0 &&
		    at + block_len(f, b) <= e->len)
			bcache_put(bc, &k, e->buf + at, block_len(f, b));
	}
}

/* Record the outcome of e's fetch and wake its waiters.  Lock held. */
static void ext_done(struct rfile *f, struct extent *e, int rc)
{
	e->st = rc < 0 ? EX_FAILED : EX_READY;
	e->err = rc;
	if (rc < 0 && e->linked)
		ext_unlink(f, e);    /* nobody new may find a failed extent */
	else if (rc == 0 && e->linked)
		kept_add(f->rp, e);
	pthread_cond_broadcast(&f->cv);
}

/* ------------------------------------------------------------ files */

/* Give back the budget's share of f's tail. */
static void tail_drop(struct rfile *f)
{
	if (!f->tail)
		return;
	atomic_fetch_sub(&f->rp->mem_used, f->size - f->tail_off);
	free(f->tail);
	f->tail = NULL;
}

static void rfile_free(struct rfile *f)
{
	while (f->ext)
		ext_unlink(f, f->ext);
	tail_drop(f);
	parquet_layout_destroy(f->layout);
	bobj_close(f->o);
	free(f->version);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* Drop a reference; the caller holds the lock, which this releases. */
static void rfile_unref_unlock(struct rfile *f)
{
	bool last = --f->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (last)
		rfile_free(f);
}

static void fetch_job_run(struct job *j)
{
	struct fetch_job *fj = (struct fetch_job *)j;
	struct rfile *f = fj->f;
	struct extent *e = fj->e;
	struct deadline dl = deadline_in_ms(f->rp->conf.fetch_timeout_ms);
	free(fj);

	dl.cancel = &f->cancel;
	int rc = atomic_load(&f->cancel) ? -ECANCELED : ext_fetch(f, e, &dl);
	pthread_mutex_lock(&f->lock);
	if (rc < 0 && rc != -ECANCELED)
		log_debug("read-ahead of '%s' at %" PRIu64 ": %s", f->o->name,
			  e->off, strerror(-rc));
	ext_done(f, e, rc);
	f->ahead_inflight--;
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)          /* readers need not wait for the disk */
		ext_store(f, e);
	pthread_mutex_lock(&f->lock);
	ext_unref(f, e);
	rfile_unref_unlock(f);
}

/* A fetcher puts a demand fetch's blocks into the block cache, so the
 * reader that fetched them need not wait for the disk. */
static void store_job_run(struct job *j)
{
	struct fetch_job *sj = (struct fetch_job *)j;
	struct rfile *f = sj->f;
	struct extent *e = sj->e;
	free(sj);

	ext_store(f, e);
	pthread_mutex_lock(&f->lock);
	ext_unref(f, e);
	rfile_unref_unlock(f);
}

/*
 * Store e's fetched blocks in the block cache off the reader's path: on
 * a fetcher, or, when none is free, here (the lock is dropped meanwhile).
 * Lock held.
 */
static void store_later(struct rfile *f, struct extent *e)
{
	if (!f->version || !f->rp->conf.cache)
		return;
	struct fetch_job *sj = xcalloc(1, sizeof(*sj));
	sj->job.fn = store_job_run;
	sj->f = f;
	sj->e = e;
	atomic_fetch_add(&e->refs, 1);
	f->refs++;
	if (pool_try_submit(&f->rp->pool, &sj->job))
		return;
	free(sj);
	f->refs--;              /* e's reference is held across the store */
	pthread_mutex_unlock(&f->lock);
	ext_store(f, e);
	pthread_mutex_lock(&f->lock);
	ext_unref(f, e);
}

struct warm_job {
	struct job job;
	struct rfile *f;
	uint64_t first;
	unsigned n;
};

static void warm_job_run(struct job *j)
{
	struct warm_job *wj = (struct warm_job *)j;
	struct rfile *f = wj->f;

	for (unsigned i = 0; i < wj->n && !atomic_load(&f->cancel); i++) {
		struct bcache_key k = { f->o->name, f->version, wj->first + i };
		bcache_prefetch(f->rp->conf.cache, &k);
	}
	free(wj);
	pthread_mutex_lock(&f->lock);
	rfile_unref_unlock(f);
}

/*
 * Read-ahead of a file served by rfile_splice: the blocks the cache holds
 * from b on (at most chunk, short of target) are left to the spliced
 * replies, and a fetcher asks the kernel to read their files in the
 * meantime, so that the disk works ahead of the reader as it does for
 * extents.  Returns the block after them.  Lock held.
 */
static uint64_t warm_later(struct rfile *f, uint64_t b, uint64_t target,
			   uint64_t chunk)
{
	unsigned n = 1;
	while (n < chunk && (b + n) * BLK < target && !ext_find(f, b + n) &&
	       cached(f, b + n))
		n++;
	struct warm_job *wj = xcalloc(1, sizeof(*wj));
	wj->job.fn = warm_job_run;
	wj->f = f;
	wj->first = b;
	wj->n = n;
	f->refs++;
	if (!pool_try_submit(&f->rp->pool, &wj->job)) {
		free(wj);                 /* no fetcher free: the replies read */
		f->refs--;
	}
	return b + n;
}

/*
 * Fetch up to want blocks from b (ext_plan) on a fetcher, ahead of the
 * reader.  The extent, or NULL when the budget or the fetchers have no
 * room now.  Lock held.
 */
static struct extent *ahead_fetch(struct rfile *f, uint64_t b, uint64_t want,
				  size_t skip)
{
	struct extent *e = ext_plan(f, b, want, true, skip);
	if (!e)
		return NULL;
	struct fetch_job *fj = xcalloc(1, sizeof(*fj));
	fj->job.fn = fetch_job_run;
	fj->f = f;
	fj->e = e;
	atomic_fetch_add(&e->refs, 1);
	f->refs++;
	f->ahead_inflight++;
	if (!pool_try_submit(&f->rp->pool, &fj->job)) {
		free(fj);
		atomic_fetch_sub(&e->refs, 1);
		f->refs--;
		f->ahead_inflight--;
		ext_unlink(f, e);
		return NULL;
	}
	return e;
}

/* Issue read-ahead up to the window.  Lock held. */
static void read_ahead(struct rfile *f)
{
	/* chunks grow with the window: a few in flight at once */
	uint64_t chunk = max64(1, min64(CHUNK_BLOCKS, f->window / CHUNK_DIV / BLK));
	uint64_t pos = max64(f->ra_end, f->next_off / BLK * BLK);
	/* refill when half the window is left, in whole chunks: a window
	 * topped up by every read would be topped up one block at a time */
	if (pos >= f->size || pos > f->next_off + f->window / 2)
		return;
	uint64_t target = min64(f->size, f->next_off + f->window);
	if (f->layout)          /* see chunk_start */
		target = min64(target, max64(f->ra_limit, f->next_off));

	while (pos < target && f->ahead_inflight < MAX_AHEAD &&
	       !atomic_load(&f->cancel)) {
		uint64_t b = pos / BLK;
		struct extent *e = ext_find(f, b);
		if (e) {
			pos = (e->first + e->nblocks) * BLK;
			continue;
		}
		if (f->spliced && cached(f, b)) {
			pos = warm_later(f, b, target, chunk) * BLK;
			continue;
		}
		uint64_t want = chunk;
		if (f->layout)          /* not past the chunk read */
			want = min64(want, (target - pos + BLK - 1) / BLK);
		e = ahead_fetch(f, b, want, 0);
		if (!e)
			break;
		pos = (e->first + e->nblocks) * BLK;
	}
	f->ra_end = pos;
}

/* Follow the access pattern; returns true when reads go in order.  Lock held. */
static void note_access(struct rfile *f, uint64_t off, size_t len)
{
	uint64_t end = off + len;
	bool near = off + NEAR >= f->next_off && off <= f->next_off + NEAR;

	if (near) {
		f->seq++;
		f->next_off = max64(f->next_off, end);
		if (f->seq >= 2 && f->rp->conf.read_ahead_max)
			f->window = min64(f->rp->conf.read_ahead_max,
					  max64(WINDOW_START, f->window * 2));
	} else {
		f->seq = 1;
		f->window = 0;
		f->next_off = end;
		f->ra_end = 0;
	}
}

/* Let go of extents a reader in order has left behind, and old ones. */
static void trim(struct rfile *f)
{
	unsigned kept = 0;
	struct extent *oldest;

	for (struct extent *e = f->ext, *nx; e; e = nx) {
		nx = e->next;
		if (ext_dropped(e)) {
			ext_unlink(f, e);       /* the budget took its buffer */
			continue;
		}
		if (e->st != EX_READY || e->tail)
			continue;
		if (e->planned && !e->used && e->group + 1 == f->plan_group)
			continue;       /* for the row group being read */
		if (f->seq >= 2 ? e->off + e->len + KEEP_BEHIND <= f->next_off
				: e->ahead && !e->used)
			ext_unlink(f, e);   /* left behind, or ahead of a
					       reader that went elsewhere */
		else if (e->used)
			kept++;
	}
	while (kept > KEEP_EXTENTS) {
		oldest = NULL;
		for (struct extent *e = f->ext; e; e = e->next)
			if (e->st == EX_READY && !e->tail && e->used &&
			    (!oldest || e->tick < oldest->tick))
				oldest = e;
		if (!oldest)
			break;
		ext_unlink(f, oldest);
		kept--;
	}
}

/* Wait for e to leave EX_FETCHING.  0 or -ETIMEDOUT.  Lock held. */
static int ext_wait(struct rfile *f, struct extent *e,
		    const struct deadline *dl)
{
	while (e->st == EX_FETCHING) {
		struct timespec ts;
		int64_t left = deadline_left_ms(dl);
		if (left <= 0)
			return -ETIMEDOUT;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + min64((uint64_t)left, 1000) * NS_PER_MS;
		ts.tv_sec += ns / NS_PER_SEC;
		ts.tv_nsec = ns % NS_PER_SEC;
		pthread_cond_timedwait(&f->cv, &f->lock, &ts);
	}
	return 0;
}

/*
 * The extent holding block b, fetched (inline) when none does.  Returns it
 * with a reference, or NULL with *err set.  Lock held (dropped while
 * fetching).
 */
static struct extent *ext_get(struct rfile *f, uint64_t pos, uint64_t last,
			      bool small_tail, const struct deadline *dl,
			      int *err)
{
	uint64_t b = pos / BLK;
	for (int tries = 0; tries < 4; tries++) {
		struct extent *e = ext_find_at(f, pos);
		if (e && !ext_tryget(e)) {
			ext_unlink(f, e);       /* dropped meanwhile: not a try */
			tries--;
			continue;
		}
		if (e) {
			if (ext_wait(f, e, dl) < 0) {
				ext_unref(f, e);
				*err = -ETIMEDOUT;
				return NULL;
			}
			if (e->st == EX_READY) {
				atomic_fetch_add(&f->rp->mem_hits, 1);
				return e;
			}
			ext_unref(f, e);      /* read-ahead failed: fetch it here */
			continue;
		}
		/* From b, or from further back (a small file is fetched
		 * whole, a tail from READPATH_TAIL before the end) as far as
		 * nothing holds the blocks and they agree on being cached. */
		bool whole = f->size <= READPATH_SMALL_WHOLE;
		uint64_t from = b, first = b, want;
		if (whole)
			from = 0;
		else if (small_tail)
			from = min64(b, (f->size - READPATH_TAIL) / BLK);
		while (first > from && !ext_find(f, first - 1) &&
		       cached(f, first - 1) == cached(f, b))
			first--;
		want = (whole || small_tail ? f->nblocks : last + 1) - first;
		e = ext_plan(f, first, want, false,
			     first == b && !whole && !small_tail ?
			     ext_head(f, pos) : 0);
		if (!e) {
			*err = -ENOMEM;
			return NULL;
		}
		e->tail = small_tail && atomic_load(&f->rp->mem_used) <
					f->rp->conf.memory_limit / 2;
		atomic_fetch_add(&e->refs, 1);
		pthread_mutex_unlock(&f->lock);
		int rc = ext_fetch(f, e, dl);
		pthread_mutex_lock(&f->lock);
		ext_done(f, e, rc);
		if (rc < 0) {
			ext_unref(f, e);
			*err = rc;
			return NULL;
		}
		store_later(f, e);
		if (e->off + e->len == f->size)
			layout_learn(f, e->buf + e->skip, e->off + e->skip);
		if (pos < e->off + e->skip || pos >= e->off + e->len) {
			ext_unref(f, e);      /* planned short of pos: go on */
			continue;
		}
		return e;
	}
	*err = -EIO;
	return NULL;
}

/* The block cache's token of a version: its generation when known, else
 * its etag; NULL (malloc'd otherwise) when it has neither. */
static char *version_token(const struct obj_info *info)
{
	struct strbuf sb = STRBUF_INIT;
	if (info->generation)
		strbuf_addf(&sb, "g%" PRIu64, info->generation);
	else if (info->etag[0])
		strbuf_addf(&sb, "e%s", info->etag);
	else
		return NULL;
	return strbuf_detach(&sb, NULL);
}

/*
 * Take the tail read at open (o->tail).  The whole blocks it holds
 * become an extent like any fetched one (kept, and put in the block
 * cache); the bytes before the first of them stay as they are, for
 * reads that fall inside the tail (a Parquet footer).  Lock held.
 */
static void tail_take(struct rfile *f, struct bobj *o)
{
	struct readpath *rp = f->rp;
	uint64_t n = o->tail_len;

	if (!o->tail || !n || n > f->size)
		return;
	uint64_t off = f->size - n;
	layout_learn(f, o->tail, off);
	uint64_t first = (off + BLK - 1) / BLK;
	struct extent *e = NULL;
	if (first < f->nblocks && !cached(f, first))
		e = ext_plan(f, first, f->nblocks - first, false, 0);
	else if (first >= f->nblocks && f->version && rp->conf.cache)
		/* part of the last block: offered at the close, so that the
		 * file's next open reads it whole (readpath_open_tail); not
		 * now, or a read of the block's other bytes through this
		 * handle would be its second touch */
		atomic_store(&f->offer_last, true);
	if (e) {
		memcpy(e->buf, o->tail + (e->off - off), e->len);
		e->store_from = 0;
		atomic_fetch_add(&e->refs, 1);
		ext_done(f, e, 0);
		store_later(f, e);
		ext_unref(f, e);
		if (e->off == off && e->off + e->len == f->size)
			return;          /* the extent holds it all */
	}
	pthread_mutex_lock(&rp->mem_lock);
	bool room = atomic_load(&rp->mem_used) + n <= rp->conf.memory_limit / 2;
	if (room)
		mem_add_locked(rp, n);
	pthread_mutex_unlock(&rp->mem_lock);
	if (!room)
		return;
	f->tail = o->tail;
	f->tail_off = off;
	o->tail = NULL;
	o->tail_len = 0;
}

struct rfile *rfile_open(struct readpath *rp, struct bobj *o)
{
	struct rfile *f = xcalloc(1, sizeof(*f));

	f->rp = rp;
	f->o = o;
	f->size = o->info.size;
	f->nblocks = (f->size + BLK - 1) / BLK;
	f->version = version_token(&o->info);
	f->columnar = ends_with(o->name, ".parquet");
	f->footed = footed(o->name);
	pthread_mutex_init(&f->lock, NULL);
	timeutil_cond_init(&f->cv);
	f->refs = 1;
	atomic_init(&f->cancel, false);
	pthread_mutex_lock(&f->lock);
	tail_take(f, o);
	pthread_mutex_unlock(&f->lock);
	budget_trim(rp);
	free(o->tail);            /* what was not taken */
	o->tail = NULL;
	o->tail_len = 0;
	return f;
}

size_t readpath_open_tail(struct readpath *rp, const char *name,
			  const struct obj_info *known)
{
	size_t want = 0;
	bool small = known->size && known->size <= READPATH_SMALL_WHOLE;
	if (small)
		want = (size_t)READPATH_SMALL_WHOLE;
	else if (footed(name))
		want = (size_t)READPATH_TAIL;
	char *version = want && rp->conf.cache && known->size
			? version_token(known) : NULL;
	struct bcache_key k = { name, version, (known->size - 1) / BLK };
	if (version && bcache_has(rp->conf.cache, &k))
		want = 0;
	else if (want && !small && known->size > TAIL_SHARE * READPATH_TAIL &&
		 !(version && (rp->conf.cache_first_read ||
			       bcache_would_admit(rp->conf.cache, &k)))) {
		/* as far into its end as its table's handles read, with
		 * room for a larger footer: a tail read whole at the open
		 * costs less than a request for a chunk there later; its
		 * last block, when the block cache would keep it, whole
		 * (tail_take); a file whose tail is a large share of it,
		 * whole tail: its reads land there as often as anywhere */
		uint64_t footer = projections_footer(rp->scans, name);
		if (footer)
			want = (size_t)min64(READPATH_TAIL,
				(footer + footer / 4 + FOOTER_ROUND - 1) /
				FOOTER_ROUND * FOOTER_ROUND);
	}
	free(version);
	return want;
}

struct bobj *rfile_bobj(struct rfile *f)
{
	return f->o;
}

void rfile_keep(struct rfile *f)
{
	atomic_store(&f->keep, true);
}

/*
 * Copy [off, off+len) into buf from the extents that hold it, fetching
 * what none holds, for a read noted already (note_access).  Lock held
 * (let go during each copy).  Returns the bytes copied: fewer than len
 * when a fetch failed (*err).
 */
static size_t copy_out(struct rfile *f, char *buf, size_t len, uint64_t off,
		       uint64_t last, bool small_tail,
		       const struct deadline *dl, int *err)
{
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		struct extent *e = ext_get(f, pos, last, small_tail, dl, err);
		if (!e)
			break;
		e->used = true;
		e->tick = ++f->tick;
		kept_touch(f->rp, e);
		size_t n = (size_t)min64(len - done, e->off + e->len - pos);
		pthread_mutex_unlock(&f->lock);
		memcpy(buf + done, e->buf + (pos - e->off), n);
		pthread_mutex_lock(&f->lock);
		ext_unref(f, e);
		done += n;
	}
	return done;
}

/*
 * The end of a read copy_out served: read ahead as the reader asks, let
 * go of what it left behind, and unlock.  Returns len, or the error when
 * fewer than len bytes (done) were copied.
 */
static ssize_t copy_end(struct rfile *f, size_t done, size_t len, int err)
{
	struct readpath *rp = f->rp;

	if (f->seq >= 2 && f->window)
		read_ahead(f);
	trim(f);
	pthread_mutex_unlock(&f->lock);
	budget_trim(rp);
	if (done < len)
		return err ? err : -EIO;
	atomic_fetch_add(&rp->reads, 1);
	atomic_fetch_add(&rp->bytes, len);
	return (ssize_t)len;
}

ssize_t rfile_read(struct rfile *f, void *buf, size_t len, uint64_t off,
		   const struct deadline *dl)
{
	struct readpath *rp = f->rp;
	int err = 0;

	if (off >= f->size || len == 0)
		return 0;
	len = (size_t)min64(len, f->size - off);
	if (f->tail && off >= f->tail_off) {     /* read at open */
		pthread_mutex_lock(&f->lock);
		footer_note(f, off);
		pthread_mutex_unlock(&f->lock);
		memcpy(buf, f->tail + (off - f->tail_off), len);
		atomic_fetch_add(&rp->mem_hits, 1);
		atomic_fetch_add(&rp->reads, 1);
		atomic_fetch_add(&rp->bytes, len);
		return (ssize_t)len;
	}
	uint64_t last = (off + len - 1) / BLK;
	bool small_tail = len <= SMALL_READ &&
			  off + READPATH_TAIL >= f->size;

	pthread_mutex_lock(&f->lock);
	last = chunk_start(f, off, len, last);
	note_access(f, off, len);
	footer_note(f, off);
	if (f->seq >= 2 && f->window)
		read_ahead(f);
	size_t done = copy_out(f, buf, len, off, last, small_tail, dl, &err);
	return copy_end(f, done, len, err);
}

ssize_t rfile_view(struct rfile *f, uint64_t off, size_t len,
		   const struct deadline *dl, struct rview *v)
{
	struct readpath *rp = f->rp;
	int err = 0;

	v->data = NULL;
	v->hold = NULL;
	v->own = NULL;
	if (off >= f->size || len == 0)
		return 0;
	len = (size_t)min64(len, f->size - off);
	uint64_t b = off / BLK;
	if ((off + len - 1) / BLK != b || (f->tail && off >= f->tail_off))
		return -EXDEV;            /* rfile_read copies */
	bool small_tail = len <= SMALL_READ &&
			  off + READPATH_TAIL >= f->size;

	pthread_mutex_lock(&f->lock);
	uint64_t last = chunk_start(f, off, len, b);
	note_access(f, off, len);
	footer_note(f, off);
	if (f->seq >= 2 && f->window)
		read_ahead(f);
	struct extent *e = ext_get(f, off, last, small_tail, dl, &err);
	if (e && off + len > e->off + e->len) {
		/* another extent holds the rest: a copy, under the note made
		 * above (a second would count a random read as one in order) */
		ext_unref(f, e);
		char *copy = xmalloc(len);
		size_t done = copy_out(f, copy, len, off, last, small_tail,
				       dl, &err);
		ssize_t n = copy_end(f, done, len, err);
		if (n < 0)
			free(copy);
		else
			v->data = v->own = copy;
		return n;
	}
	if (e) {
		e->used = true;
		e->tick = ++f->tick;
		kept_touch(rp, e);
		f->refs++;      /* the reply may outlive the handle's release */
		if (f->seq >= 2 && f->window)
			read_ahead(f);
	}
	trim(f);
	pthread_mutex_unlock(&f->lock);
	budget_trim(rp);
	if (!e)
		return err ? err : -EIO;
	v->data = e->buf + (off - e->off);
	v->hold = e;
	atomic_fetch_add(&rp->reads, 1);
	atomic_fetch_add(&rp->bytes, len);
	return (ssize_t)len;
}

void rfile_view_release(struct rfile *f, struct rview *v)
{
	free(v->own);
	v->own = NULL;
	if (!v->hold)
		return;
	struct readpath *rp = f->rp;
	pthread_mutex_lock(&f->lock);
	ext_unref(f, v->hold);
	v->hold = NULL;
	v->data = NULL;
	rfile_unref_unlock(f);
	budget_trim(rp);      /* the view's extent may have been an overdraft */
}

ssize_t rfile_splice(struct rfile *f, uint64_t off, size_t len,
		     struct rsplice *s)
{
	struct readpath *rp = f->rp;
	struct bcache *bc = f->version ? rp->conf.cache : NULL;

	s->n = 0;
	if (off >= f->size || len == 0)
		return 0;
	len = (size_t)min64(len, f->size - off);
	uint64_t first = off / BLK, last = (off + len - 1) / BLK;
	if (!bc || last - first >= RFILE_SPLICE_BLOCKS)
		return -ENOENT;
	for (uint64_t b = first; b <= last; b++)
		if (!cached(f, b))
			return -ENOENT;
	for (uint64_t b = first; b <= last; b++) {
		struct bcache_key k = { f->o->name, f->version, b };
		struct bcache_pin pin;
		if (bcache_pin(bc, &k, &pin) < 0)
			goto out_release;
		struct rpiece *p = &s->piece[s->n++];
		p->fd = pin.fd;
		if (pin.len != block_len(f, b))
			goto out_release;     /* not this object's block */
		uint64_t from = max64(off, b * BLK);
		uint64_t to = min64(off + len, b * BLK + pin.len);
		p->pos = pin.pos + (from - b * BLK);
		p->len = (size_t)(to - from);
		atomic_fetch_add(&rp->cache_hits, 1);
		atomic_fetch_add(&rp->cache_hit_bytes, p->len);
	}
	pthread_mutex_lock(&f->lock);
	f->spliced = true;
	note_access(f, off, len);
	footer_note(f, off);
	if (f->seq >= 2 && f->window)
		read_ahead(f);
	trim(f);
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&rp->reads, 1);
	atomic_fetch_add(&rp->bytes, len);
	return (ssize_t)len;

out_release:
	rfile_splice_release(s);
	return -ENOENT;
}

void rfile_splice_release(struct rsplice *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->piece[i].fd >= 0)
			close(s->piece[i].fd);
	s->n = 0;
}

void rfile_close(struct rfile *f)
{
	pthread_mutex_lock(&f->lock);
	scan_keep(f, false);
	if (f->footer)
		projections_footer_keep(f->rp->scans, f->o->name, f->footer);
	if (atomic_exchange(&f->offer_last, false)) {
		struct bcache_key k = { f->o->name, f->version,
					f->nblocks - 1 };
		bcache_admit(f->rp->conf.cache, &k);
	}
	atomic_store(&f->cancel, true);
	rfile_unref_unlock(f);
}

/* ------------------------------------------------------------ the mount */

struct readpath *readpath_create(const struct readpath_conf *conf)
{
	struct readpath *rp = xcalloc(1, sizeof(*rp));
	rp->conf = *conf;
	if (!rp->conf.fetch_timeout_ms)
		rp->conf.fetch_timeout_ms = 60000;
	pthread_mutex_init(&rp->mem_lock, NULL);
	rp->scans = projections_create();
	pool_start(&rp->pool, rp->conf.read_ahead_max && conf->fetchers ?
			      conf->fetchers : 0);
	return rp;
}

void readpath_destroy(struct readpath *rp)
{
	if (!rp)
		return;
	pool_stop(&rp->pool);
	for (unsigned i = 0; i <= CHUNK_BLOCKS; i++)
		while (rp->free_bufs[i]) {
			void *b = rp->free_bufs[i];
			rp->free_bufs[i] = *(void **)b;
			munmap(b, i * BLK);
		}
	pthread_mutex_destroy(&rp->mem_lock);
	projections_destroy(rp->scans);
	free(rp);
}

void readpath_set_kernel_read_ahead(struct readpath *rp, uint64_t bytes)
{
	atomic_store(&rp->kernel_ra, bytes);
}

void readpath_get_stats(struct readpath *rp, struct readpath_stats *out)
{
	out->reads = atomic_load(&rp->reads);
	out->bytes = atomic_load(&rp->bytes);
	out->mem_hits = atomic_load(&rp->mem_hits);
	out->cache_hits = atomic_load(&rp->cache_hits);
	out->cache_hit_bytes = atomic_load(&rp->cache_hit_bytes);
	out->fetches = atomic_load(&rp->fetches);
	out->fetched_bytes = atomic_load(&rp->fetched_bytes);
	out->ahead_fetches = atomic_load(&rp->ahead_fetches);
	out->ahead_unused = atomic_load(&rp->ahead_unused);
	out->mem_used = atomic_load(&rp->mem_used);
	out->mem_peak = atomic_load(&rp->mem_peak);
}
