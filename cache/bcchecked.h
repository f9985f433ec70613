/*
 * bcchecked.h - the block cache's record of checked block files, kept
 * from a clean close to the next open.
 *
 * The block cache checks a block file's data once per process (see
 * blockcache.c).  At a clean close it makes every block file durable and
 * then writes this record: which files it had checked, each named by the
 * hash of its key, its inode, size and ctime.  The next open takes the
 * record (reads it and removes it, durably, before anything else is
 * written) and trusts a file found with the same four values: any write
 * to it, a replacement or a touch since would have changed its ctime.  A
 * process that dies leaves no record, so after a crash every block is
 * checked again at its first use.
 *
 * File <dir>/CHECKED, format 1 (native byte order):
 *
 *    0  u8[8] magic "HYCHK001"    8  u64  count n
 *   16  n records of 48 bytes:
 *         u64 hash high, u64 hash low, u64 inode, u64 size,
 *         i64 ctime seconds, i64 ctime nanoseconds
 *   16 + 48n  u64  XXH3-64 of all the bytes before it
 *
 * Anything else (a short or long file, another magic, a bad checksum)
 * is an empty record: it costs checks, never trust.
 *
 * Thread safety: none needed; the cache calls these at open and close.
 */
#ifndef HYLAKE_BCCHECKED_H
#define HYLAKE_BCCHECKED_H

#include <stddef.h>
#include <stdint.h>

struct bcchecked_rec {
	uint64_t high, low;       /* the XXH3-128 naming the block file */
	uint64_t ino, size;
	int64_t ctime_s, ctime_ns;
};

struct bcchecked {
	struct bcchecked_rec *r;  /* sorted by (high, low) once parsed */
	size_t n, alloc;
};

#define BCCHECKED_INIT { NULL, 0, 0 }

/* Parse len bytes of a record file into out (emptied first).  0, or
 * -EINVAL when it is not one (out is left empty). */
int bcchecked_parse(const void *buf, size_t len, struct bcchecked *out);

/* Read dir_fd/CHECKED into out and remove it; 0 once its removal is
 * durable (fsync of the folder), else -errno with out left empty.  No
 * file: 0, out empty. */
int bcchecked_take(int dir_fd, struct bcchecked *out);

/* Add a record (any order). */
void bcchecked_add(struct bcchecked *s, const struct bcchecked_rec *r);

/* Write s as dir_fd/CHECKED (through tmp/CHECKED, fsynced, renamed, the
 * folder fsynced).  0 or -errno. */
int bcchecked_save(int dir_fd, const struct bcchecked *s);

/* The record of hash (high, low) in a parsed s, or NULL. */
const struct bcchecked_rec *bcchecked_find(const struct bcchecked *s,
					   uint64_t high, uint64_t low);

void bcchecked_release(struct bcchecked *s);

#endif
