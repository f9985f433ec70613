/*
 * replicate.h - `hylake replicate`, the reference replicator.
 */
#ifndef HYLAKE_REPLICATE_H
#define HYLAKE_REPLICATE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "mount/config.h"

/* argv holds the arguments after "replicate".  Returns the exit code. */
int replicate_main(int argc, char **argv);

/* ------------------------------------------------ shared with --follow */

#define REPLICATE_CHUNK (8u << 20)   /* bytes per ranged read of the source */

struct copy_env {
	struct backend *src, *dst;
	const char *src_bucket;      /* the source's bucket (GCS), or NULL */
	const char *tmpdir;          /* downloads on their way */
	int64_t op_timeout_ms;
};

enum replicate_verdict { V_COPY, V_CURRENT, V_NEWER, V_FAILED };

/*
 * What dst holds of generation v of name, judged by the replica
 * contract: current, newer, to copy, or failed to say (*why says why,
 * or what is wrong with the copy).  held (may be NULL) gets the copy's
 * info when there is one.
 */
enum replicate_verdict replicate_look(const struct copy_env *e,
				      const char *name,
				      const struct obj_info *v,
				      struct obj_info *held,
				      const char **why);

/*
 * Copy generation v of name from src to dst: downloaded (buf holds
 * REPLICATE_CHUNK bytes), checked against v's crc32c, the block manifest
 * put, then the copy stamped with v.  0, or -ESTALE/-ENOENT (the
 * generation is gone from the source), -EBADMSG (bytes do not match),
 * -EINVAL (dst cannot hold the name), -EFBIG, -ENOSPC (no temporary
 * file), -EIO, ...
 */
int replicate_copy(const struct copy_env *e, const char *name,
		   const struct obj_info *v, char *buf);

/* What replicate_copy's rc means, for a message. */
void replicate_copy_error(int rc, struct strbuf *out);

/*
 * Told, from the workers, what dst holds of each object listed: held is
 * its copy's info when it holds generation v now (current, or just
 * copied), else NULL.
 */
typedef void (*replicate_note)(void *arg, const char *name,
			       const struct obj_info *v,
			       const struct obj_info *held);

struct replicate_counts {
	uint64_t checked, copied, current, failed;
};

/* Replicate every object of e->src to e->dst with jobs workers, telling
 * note (may be NULL) of each: the objects a listing of the source shows,
 * or those of report, a Storage Insights inventory report (CSV) of the
 * source's bucket, when not NULL.  0, or the listing's -errno. */
int replicate_run(const struct copy_env *e, const char *report, long jobs,
		  replicate_note note, void *arg,
		  struct replicate_counts *out);

/* `hylake replicate CONFIG --to SITE --follow`: see follow.c. */
int follow_main(const struct hy_config *cfg, const struct store_conf *site,
		const char *tmpdir, int64_t heartbeat_ms, bool reconcile,
		const char *seed);

#endif
