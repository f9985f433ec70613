/*
 * replica_put.h - putting one version of a source object on a replica
 * the way the replica contract reads it: the block manifest first, then
 * the copy stamped with the source generation and crc32c.
 *
 * Shared by the replicator (`hylake replicate`, which downloads the
 * version and builds its sums on the way) and a writable mount's
 * write-back (which has the bytes it just committed in a local file).
 * The manifest goes first: a mount uses a manifest only for the
 * generation it names, so one left without its copy misleads no one,
 * while a copy without its manifest would be unprovable.
 *
 * Thread safe; nothing is kept between calls.  Functions return 0 or a
 * negative errno.
 */
#ifndef HYLAKE_REPLICA_PUT_H
#define HYLAKE_REPLICA_PUT_H

#include <stdint.h>

#include "backends/backend.h"
#include "backends/composite/blocksums.h"

/* A deadline for moving bytes bytes: timeout_ms plus time in proportion
 * (at least 16 MiB/s). */
struct deadline replica_put_deadline(int64_t timeout_ms, uint64_t bytes);

/*
 * Put version v of name on dst: its block manifest s (a sidecar, written
 * through a temporary file in tmpdir), then the v->size bytes of fd from
 * offset 0, stamped with v.  Each put gets replica_put_deadline.  0, or
 * -ENOSPC (no temporary file), or dst's -errno.
 */
int replica_put_stamped(struct backend *dst, const char *name, int fd,
			const struct obj_info *v, const struct blocksums *s,
			const char *tmpdir, int64_t timeout_ms);

/*
 * Block sums of the v->size bytes of fd from offset 0, proven against
 * v (*out: caller frees).  -EBADMSG when they do not prove v (fewer
 * bytes, another crc32c, or v has none), or the read's -errno.
 */
int replica_sums_of_fd(int fd, const struct obj_info *v,
		       struct blocksums **out);

#endif
