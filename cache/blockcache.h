/*
 * blockcache.h - the block cache on local disk.
 *
 * Fixed-size blocks of object bytes, keyed by (namespace, name, version
 * token, block index): a new version of an object has a new token, so it
 * can never be answered from an old version's blocks.  Each block is one
 * file holding a header (the full key, the length and an xxHash of the
 * bytes) and the bytes; a block read back is served only if its key
 * matches exactly and its checksum holds, otherwise it is dropped and the
 * caller fetches the bytes again.
 *
 * The cache stays under its ceiling (max_bytes) and leaves min_free_bytes
 * free on its disk by evicting the least recently used blocks.  It
 * survives restarts: blocks found on disk at open are reused, in the
 * order of their last use.  One mount uses a folder at a time (a lock
 * file); a second opener gets -EBUSY.
 *
 * Everything here is best effort for the caller: a failed put or a
 * corrupt block costs a fetch, never an error to the reader.
 *
 * Thread safety: all calls may be made from any number of threads.
 */
#ifndef HYLAKE_BLOCKCACHE_H
#define HYLAKE_BLOCKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BC_BLOCK_SIZE ((size_t)1 << 20)     /* bytes per block */

struct bcache;

struct bcache_conf {
	const char *dir;          /* created if missing (mode 0700) */
	uint64_t max_bytes;       /* ceiling, headers included */
	uint64_t min_free_bytes;  /* keep at least this free on the disk */
	const char *ns;           /* namespace, e.g. the source's describe
	                             string: mounts of different buckets
	                             sharing a folder never mix blocks */
};

struct bcache_key {
	const char *name;         /* object name */
	const char *version;      /* version token ("g1700000000000001", an
	                             etag, ...); never empty */
	uint64_t index;           /* block index: offset / BC_BLOCK_SIZE */
};

struct bcache_stats {
	uint64_t hits, misses;    /* gets answered with bytes / -ENOENT
	                             (corrupt blocks are misses too) */
	uint64_t corrupt;         /* blocks dropped: bad header or checksum */
	uint64_t puts, put_failures;  /* blocks stored / puts that stored
	                                 nothing (-EINVAL not counted) */
	uint64_t evictions;
	uint64_t bytes, blocks;   /* held now */
	uint64_t first_touches;   /* bcache_admit: offers only remembered */
};

/*
 * Open (or create) the cache in conf->dir and index the blocks already
 * there.  0, or -errno with a message in err: -EBUSY when another live
 * process holds the folder, -EPERM when the folder is owned by another
 * user or writable by group/other, -EACCES/-ENOTDIR/... when it cannot be
 * made.
 */
int bcache_open(const struct bcache_conf *conf, struct bcache **out,
		char *err, size_t errlen);
void bcache_close(struct bcache *c);

/*
 * Copy block k into buf (buflen >= BC_BLOCK_SIZE).  Returns its length
 * (1..BC_BLOCK_SIZE; only an object's last block is short), or -ENOENT
 * when the cache does not hold it (a block that fails its checks is
 * removed and counted as corrupt, then reported as -ENOENT).  -EINVAL
 * when buflen is short or k could never be stored (see bcache_put).
 * Only the block's length of buf is written.
 */
ssize_t bcache_get(struct bcache *c, const struct bcache_key *k, void *buf,
		   size_t buflen);

/*
 * Block k held open, for a caller that hands its bytes on without reading
 * them (splice(2) into the FUSE device): fd is a file whose bytes
 * [pos, pos + len) are exactly the block's, and stay so while fd is open
 * even when the block is evicted or replaced meanwhile (block files are
 * never written in place).  The header's key is checked on every pin; the
 * data's checksum once per file in this process: when this process wrote
 * the file or has checked it since, it is not read again (see the top of
 * blockcache.c for what that trusts).
 */
struct bcache_pin {
	int fd;                   /* -1 when not pinned */
	uint64_t pos;             /* where the data begins in the file */
	uint32_t len;             /* the block's length (as bcache_get) */
};

/*
 * Pin block k into *pin.  0, -ENOENT as bcache_get (a block that fails its
 * checks is dropped), -EINVAL for a key that could never be stored.
 * Counts a hit or a miss as bcache_get does.  The caller owns pin->fd and
 * gives it back with bcache_unpin.
 */
int bcache_pin(struct bcache *c, const struct bcache_key *k,
	       struct bcache_pin *pin);
void bcache_unpin(struct bcache_pin *pin);

/* Ask the kernel to read block k's file ahead of a pin (WILLNEED); no
 * check, no count, no change to the order of use.  Best effort. */
void bcache_prefetch(struct bcache *c, const struct bcache_key *k);

/* True when block k is indexed (no read, no check). */
bool bcache_has(struct bcache *c, const struct bcache_key *k);

/*
 * Store block k (len bytes, 1..BC_BLOCK_SIZE).  Atomic: a reader sees no
 * block or the whole one.  Evicts least recently used blocks to make
 * room.  0 or -errno (-ENOSPC when no room can be made); callers go on
 * without caching.  -EINVAL for len out of range, an empty version, or a
 * name or version longer than 65,535 bytes.  Putting a key that is there
 * replaces its block.
 */
int bcache_put(struct bcache *c, const struct bcache_key *k, const void *buf,
	       size_t len);

/*
 * Admission on second touch: should block k, just fetched, be stored?
 * True when it was offered before (the data is read again) or is held
 * already; the first offer is only remembered, so a file read once
 * costs its reader no writes to the disk.  The memory is a fixed table
 * of BC_ADMIT_SLOTS fingerprints of keys, the latest offer taking its
 * slot: a block offered again within about that many other blocks is
 * admitted.  Thread safe, lock free, approximate by design.
 */
#define BC_ADMIT_SLOTS ((size_t)1 << 18)     /* 2 MiB; 256 GiB of blocks */
bool bcache_admit(struct bcache *c, const struct bcache_key *k);

/* What bcache_admit would answer now, without offering k: a reader that
 * wants only part of a block asks whether fetching it whole would get it
 * kept. */
bool bcache_would_admit(struct bcache *c, const struct bcache_key *k);

void bcache_get_stats(struct bcache *c, struct bcache_stats *out);

#endif
