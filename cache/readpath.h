/*
 * readpath.h - how the bytes of an open file reach the reader.
 *
 * Between the FUSE front end and the stores: a read is answered from
 * extents of the file held in memory, then from the block cache on disk,
 * then from the store.  An extent is a run of whole blocks (BC_BLOCK_SIZE)
 * fetched with one request; in a Parquet file whose chunks are known, its
 * first block may lack the head before the page its reader began on (a
 * chunk's start), unless the block cache is to keep the block.
 *
 * - Read-ahead: reads that follow each other (allowing for the reordering
 *   of the kernel's own read-ahead) grow a window, up to
 *   read_ahead_max, of extents fetched in parallel by a pool of fetchers,
 *   each extent one ranged GET of up to READPATH_CHUNK_MAX bytes.  A read
 *   far from the last one resets the window.
 * - Tails: a small read near the end of a file (a Parquet footer) fetches
 *   and keeps the whole tail (the last READPATH_TAIL bytes, block
 *   aligned) while the file is open and the budget allows.  Small files
 *   are fetched whole.  The open itself may have read the last bytes
 *   (readpath_open_tail): reads inside them cost nothing more.  How much
 *   a columnar file's open reads follows what its table's last handle
 *   read of its end before reading anywhere else (projections.h): a
 *   footer, not a fixed MiB that the query may not want (in files of up
 *   to 8 tails, the tail whole: the reads land there as often as
 *   anywhere).
 * - Parquet (*.parquet, once the footer is read): a read that begins a
 *   column chunk fetches the chunk whole, read-ahead stays inside the
 *   chunk, and the chunks of its row group whose columns the handle
 *   began before are fetched ahead beside it (a scan's projection), from
 *   the handle's first row group on with the columns the last scan of
 *   its table read (projections.h).
 *   A chunk longer than the kernel's read-ahead is fetched with two
 *   windows of it past its end: the kernel reads them as its reader
 *   finishes the chunk, in requests that also carry the reader's last
 *   pages, so fetched alone they would cost that reader a round trip.
 * - Memory: every extent held (read on demand, read ahead, a tail) and
 *   every buffer kept for reuse is paid for from one budget of
 *   memory_limit bytes shared by all open files.  When a new extent would
 *   pass it, kept extents that nobody is using are dropped, least
 *   recently read first, whichever file holds them.  Read-ahead not read
 *   yet holds at most memory_limit less 48 MiB (none below that), never
 *   drops read-ahead not read yet, and waits when it cannot fit.  A read
 *   that finds the whole budget in use (reads in progress, views held,
 *   blocks being written to the block cache) still gets its extent: the
 *   overdraft, at most one extent (up to READPATH_CHUNK_MAX) per read in
 *   progress or view held, given back when the read ends.  So what is
 *   held stays under memory_limit plus that.
 * - The block cache (may be NULL): a block fetched from a store is put
 *   there when it is fetched a second time (bcache_admit: a file read
 *   once costs its reader no disk writes), or the first time for a small
 *   file (READPATH_SMALL_WHOLE), with cache_first_read or for a handle
 *   told so (rfile_keep); a block found there is used instead of a
 *   request.  Keys
 *   carry the version pinned at open, so a new version never meets the
 *   blocks of an old one.  A read the cache holds whole can be handed out
 *   as its files instead of bytes (rfile_splice), for a reply that the
 *   kernel copies once; a file read that way leaves the cached blocks out
 *   of its read-ahead.
 *
 * A file's version is the handle's: its generation when known, else its
 * etag; a handle with neither is read without the block cache.
 *
 * Thread safety: one readpath per mount, shared; an rfile may be read
 * from several threads at once and is closed by one.
 */
#ifndef HYLAKE_READPATH_H
#define HYLAKE_READPATH_H

#include <stdint.h>
#include <sys/types.h>

#include "backends/util/timeutil.h"

#define READPATH_CHUNK_MAX ((uint64_t)8 << 20)    /* one request, at most */
#define READPATH_TAIL ((uint64_t)1 << 20)
#define READPATH_SMALL_WHOLE ((uint64_t)2 << 20)  /* fetched whole */

struct bcache;
struct bobj;
struct obj_info;
struct readpath;
struct rfile;

struct readpath_conf {
	struct bcache *cache;         /* borrowed; NULL: no block cache */
	uint64_t memory_limit;        /* bytes of extents, all files (above) */
	uint64_t read_ahead_max;      /* window of one file; 0: no read-ahead */
	unsigned fetchers;            /* threads fetching ahead */
	int64_t fetch_timeout_ms;     /* deadline of one read-ahead fetch */
	bool cache_first_read;        /* store every block fetched; false:
					 only those fetched again
					 (bcache_admit) */
};

struct readpath_stats {
	uint64_t reads;               /* rfile_read calls */
	uint64_t bytes;               /* bytes returned */
	uint64_t mem_hits;            /* extents found in memory */
	uint64_t cache_hits;          /* blocks read from the block cache */
	uint64_t cache_hit_bytes;     /* their bytes */
	uint64_t fetches;             /* requests to the store */
	uint64_t fetched_bytes;
	uint64_t ahead_fetches;       /* of which read-ahead */
	uint64_t ahead_unused;        /* read-ahead extents dropped unread */
	uint64_t mem_used, mem_peak;  /* bytes of extents held and of
					 buffers kept for reuse */
};

struct readpath *readpath_create(const struct readpath_conf *conf);
/* Waits for the fetchers; every rfile must be closed before. */
void readpath_destroy(struct readpath *rp);

/* The kernel's read-ahead of the mount's files, in bytes (0: not known),
 * once mounted: what it asks past the end of a Parquet chunk is fetched
 * with the chunk (see Parquet above). */
void readpath_set_kernel_read_ahead(struct readpath *rp, uint64_t bytes);
void readpath_get_stats(struct readpath *rp, struct readpath_stats *out);

/*
 * How much of name's end to read at its open (backend_open_tail), so
 * that the open and the reader's first read share one round trip: a
 * file known to be small (known: what the mount last learnt of it; size
 * 0 when nothing) whole, as its first read would fetch it
 * (READPATH_SMALL_WHOLE); a columnar file, whose readers start at its
 * footer (*.parquet, *.orc), what its table's last handle read of its
 * end before it read elsewhere, a quarter more and rounded up to 64 KiB,
 * or the tail its first read would fetch (READPATH_TAIL) when that is
 * not known or when the block cache would keep the last block (it was
 * offered before: then whole blocks are read, for the cache); else 0.
 * Also 0 when the block cache holds the last block of the known version:
 * the open asks only for the version then.
 */
size_t readpath_open_tail(struct readpath *rp, const char *name,
			  const struct obj_info *known);

/* Serve the open handle o (the rfile owns it from now on).  A tail read
 * at open (o->tail) answers the reads that fall in it, and the whole
 * blocks it holds go to the block cache as fetched ones do. */
struct rfile *rfile_open(struct readpath *rp, struct bobj *o);

/* The handle (its info is the pinned version). */
struct bobj *rfile_bobj(struct rfile *f);

/* Store every block this handle fetches in the block cache, read once
 * or not (`hylake warm`). */
void rfile_keep(struct rfile *f);

/*
 * Read len bytes at off.  Returns len, less only at the end of the
 * object, or a negative errno (-ESTALE: the version is gone).
 */
ssize_t rfile_read(struct rfile *f, void *buf, size_t len, uint64_t off,
		   const struct deadline *dl);

/*
 * Read without a copy: when one block holds [off, off+len), v->data
 * points at the bytes (held in memory, with the file, until
 * rfile_view_release, which may come after rfile_close) and the
 * count is returned; -EXDEV when the range crosses a block boundary or
 * lies in the tail read at open (use rfile_read), else as rfile_read.
 * Where two extents hold the block's bytes (its head was fetched after
 * its tail), v->data points at a copy, freed by rfile_view_release.
 */
struct rview {
	const char *data;
	void *hold;
	void *own;                    /* a copy, or NULL */
};
ssize_t rfile_view(struct rfile *f, uint64_t off, size_t len,
		   const struct deadline *dl, struct rview *v);
void rfile_view_release(struct rfile *f, struct rview *v);

/*
 * Read without touching the bytes: when the block cache holds every block
 * of [off, off+len) (at most RFILE_SPLICE_BLOCKS of them) and each passes
 * its checks (bcache_pin), s gets one piece per block: an open file and
 * the range of it that holds the piece's bytes, for splice(2).  The bytes
 * under each fd stay exact until rfile_splice_release closes it, whatever
 * the cache does meanwhile.  Returns the count (len, less only at the end
 * of the object), or -ENOENT when some block is not there (nothing is held:
 * use rfile_view or rfile_read).  The access counts for read-ahead as a
 * read does, and a file served this way reads ahead only the blocks the
 * cache does not hold.
 */
#define RFILE_SPLICE_BLOCKS 8
struct rsplice {
	unsigned n;
	struct rpiece {
		int fd;
		uint64_t pos;
		size_t len;
	} piece[RFILE_SPLICE_BLOCKS];
};
ssize_t rfile_splice(struct rfile *f, uint64_t off, size_t len,
		     struct rsplice *s);
void rfile_splice_release(struct rsplice *s);

/* Close: read-ahead in flight is cancelled; returns at once. */
void rfile_close(struct rfile *f);

#endif
