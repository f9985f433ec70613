/*
 * blocksums.h - the block manifest of a replica copy: the CRC-32C of
 * every 1 MiB block of one source version, whose combination is the
 * source's own whole-object CRC-32C.
 *
 * A replica's stamp says which version a copy claims to be; the block
 * sums let every byte read from it be checked before it is used, with a
 * chain of proof that ends at the source: the sums combine (without the
 * data) to the crc32c GCS keeps for the version, and each block read is
 * checked against its sum.  Sums come from the replicator (a sidecar
 * object beside the copy, blocksums_sidecar()) or from reading the whole
 * copy once (blocksums_builder).
 *
 * Sidecar layout (big-endian):
 *
 *    0  "HYBS"                  magic
 *    4  u32 format version      1
 *    8  u32 block size          1048576
 *   12  u64 source generation
 *   20  u64 size
 *   28  u32 crc32c of the whole version
 *   32  u32 nblocks             ceil(size / block size)
 *   36  u32 crc[nblocks]
 *    .  u32 crc32c of all bytes before it
 *
 * A struct blocksums is immutable once built and may be shared between
 * threads read-only.  Functions return 0 or a negative errno.
 */
#ifndef HYLAKE_BLOCKSUMS_H
#define HYLAKE_BLOCKSUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backend.h"
#include "backends/util/strbuf.h"

#define BLOCKSUMS_BLOCK ((uint64_t)1 << 20)
#define BLOCKSUMS_PREFIX ".hylake/blocks/"   /* sidecars, in the replica */

struct blocksums {
	uint64_t generation;      /* source generation the sums are of */
	uint64_t size;
	uint32_t crc32c;          /* the whole version's */
	uint32_t nblocks;
	uint32_t crc[];           /* nblocks */
};

/* Blocks of an object of size bytes. */
uint32_t blocksums_count(uint64_t size);

/* The sidecar's object name for name ("x/y" -> ".hylake/blocks/x/y"). */
void blocksums_sidecar(const char *name, struct strbuf *out);

/* Serialise s (layout above) onto out. */
void blocksums_encode(const struct blocksums *s, struct strbuf *out);

/* Parse a sidecar.  -EINVAL when it is not one (bad magic, version,
 * block size, length or self-check).  *out is malloc'd: caller frees. */
int blocksums_decode(const void *buf, size_t len, struct blocksums **out);

/*
 * Do the sums describe version v and prove its bytes?  True when the
 * generation and size are v's, v has a crc32c, and the block sums
 * combine to it.
 */
bool blocksums_prove(const struct blocksums *s, const struct obj_info *v);

/*
 * Check len bytes at buf, which are the object's bytes from off, against
 * the sums.  off must be block aligned and the bytes must end at a block
 * boundary or at the end of the object.  0, or -EBADMSG with *bad the
 * first block that differs; -EINVAL for a range the sums cannot check.
 */
int blocksums_check(const struct blocksums *s, uint64_t off, const void *buf,
		    size_t len, uint64_t *bad);

/* Sums computed while reading an object from start to end, in pieces of
 * any size. */
struct blocksums_builder {
	struct blocksums *s;      /* being filled; owned */
	uint64_t at;              /* bytes fed so far */
	uint32_t cur;             /* crc of the current block so far */
};

void blocksums_builder_init(struct blocksums_builder *b, uint64_t generation,
			    uint64_t size);
void blocksums_builder_feed(struct blocksums_builder *b, const void *buf,
			    size_t len);
/* After exactly size bytes: the sums (caller frees), with s->crc32c the
 * combination of the blocks.  NULL (and the builder released) when the
 * byte count is not size. */
struct blocksums *blocksums_builder_finish(struct blocksums_builder *b);
void blocksums_builder_release(struct blocksums_builder *b);

/* Reads up to len bytes at off of an object: the count, or -errno. */
typedef ssize_t (*blocksums_reader)(void *arg, void *buf, size_t len,
				    uint64_t off);

/*
 * The sums of version v, its bytes read from start to end through rd
 * (arg) in pieces of at most piece bytes, proven against v
 * (blocksums_prove): 0 with *out (caller frees); -EBADMSG when they do
 * not prove v (fewer bytes, another crc32c, or v has none); or rd's
 * -errno.
 */
int blocksums_read(const struct obj_info *v, size_t piece, blocksums_reader rd,
		   void *arg, struct blocksums **out);

#endif
