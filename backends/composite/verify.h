/*
 * verify.h - how the router checks a replica's bytes before serving them.
 *
 * A copy that the replica contract accepts as version V (its stamp) is
 * used only with block sums that prove V (blocksums_prove: they combine
 * to V's crc32c), from, in this order:
 *   1. the version map: sums proven earlier for (replica, name), kept
 *      through struct facts (the router asks it);
 *   2. the copy's block manifest, a sidecar the replicator writes beside
 *      it (verify_load_manifest);
 *   3. with verify = whole-first, the whole copy read once on its first
 *      use (verify_whole).
 * Every read from the copy is then widened to whole blocks and each
 * block checked (verify_read) before a byte is returned, so nothing that
 * differs from the source is served or cached.
 *
 * Thread safety: the functions touch only their arguments.
 */
#ifndef HYLAKE_VERIFY_H
#define HYLAKE_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backend.h"
#include "backends/composite/blocksums.h"

/*
 * The block manifest of name's copy on store rep, if it proves v.
 * 0 with *out (caller frees); -ENOENT when there is none, or it is not a
 * manifest, or it proves nothing about v; other -errno when rep fails.
 */
int verify_load_manifest(struct backend *rep, const char *name,
			 const struct obj_info *v, struct blocksums **out,
			 const struct deadline *dl);

/*
 * Read the whole copy through h (pinned to it) and compute its sums.
 * 0 with *out (caller frees) when they prove v; -EBADMSG when the bytes
 * are not v's; other -errno when a read fails.
 */
int verify_whole(struct bobj *h, const struct obj_info *v,
		 struct blocksums **out, const struct deadline *dl);

/*
 * Like verify_whole, with the whole copy already read into buf (n bytes):
 * the first read of a small file serves both.  0 with *out, or -EBADMSG.
 */
int verify_buffer(const void *buf, size_t n, const struct obj_info *v,
		  struct blocksums **out);

/*
 * Read up to len bytes at off through h, reading whole blocks and
 * checking each against s.  Returns the count (short only at the end of
 * the object), -EBADMSG when a block differs (*bad gets it), or -errno.
 */
ssize_t verify_read(struct bobj *h, const struct blocksums *s, void *buf,
		    size_t len, uint64_t off, const struct deadline *dl,
		    uint64_t *bad);

#endif
