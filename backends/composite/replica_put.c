/*
 * replica_put.c - one version put on a replica, manifest first, then the
 * stamped copy (replica_put.h says why in that order).
 */
#include "backends/composite/replica_put.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUMS_PIECE (1u << 20)

struct deadline replica_put_deadline(int64_t timeout_ms, uint64_t bytes)
{
	return deadline_in_ms(timeout_ms + (int64_t)(bytes >> 14) / 1000);
}

/* The sidecar of name holding s, put on dst. */
static int put_manifest(struct backend *dst, const char *name,
			const struct blocksums *s, const char *tmpdir,
			int64_t timeout_ms)
{
	struct strbuf enc = STRBUF_INIT, side = STRBUF_INIT;
	struct obj_info stamp = { .generation = s->generation };
	int fd = tmpfile_in(tmpdir), rc;

	if (fd < 0) {
		log_warn("no temporary file in %s: %s", tmpdir,
			 strerror(errno));
		return -ENOSPC;
	}
	blocksums_encode(s, &enc);
	blocksums_sidecar(name, &side);
	stamp.size = enc.len;
	rc = pwrite_full(fd, enc.buf, enc.len, 0);
	if (rc == 0) {
		struct deadline dl = replica_put_deadline(timeout_ms, enc.len);
		rc = backend_put(dst, side.buf, fd, enc.len, &stamp, &dl);
	}
	close(fd);
	strbuf_release(&enc);
	strbuf_release(&side);
	return rc;
}

int replica_put_stamped(struct backend *dst, const char *name, int fd,
			const struct obj_info *v, const struct blocksums *s,
			const char *tmpdir, int64_t timeout_ms)
{
	int rc = put_manifest(dst, name, s, tmpdir, timeout_ms);
	if (rc == 0) {
		struct deadline dl = replica_put_deadline(timeout_ms, v->size);
		rc = backend_put(dst, name, fd, v->size, v, &dl);
	}
	return rc;
}

static ssize_t fd_piece(void *arg, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(*(int *)arg, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

int replica_sums_of_fd(int fd, const struct obj_info *v,
		       struct blocksums **out)
{
	return blocksums_read(v, SUMS_PIECE, fd_piece, &fd, out);
}
