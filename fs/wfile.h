/*
 * wfile.h - a file being written through the mount: the bytes an
 * application writes, streamed to the store's writer as they come, and
 * the object committed once.
 *
 * A file written in order from its start is streamed: its first
 * WFILE_HEAD bytes are kept in memory, and past them everything goes to
 * the store's writer as it comes (memory bounded by the head and the
 * writer's chunk).  A file written out of order, read, truncated to
 * another size, or an existing file written into (no O_TRUNC, O_APPEND),
 * is staged instead (fs/staging.h): a local file holding its whole
 * content, for an existing file first its current version's bytes, read
 * through the store.  A streamed file moves to staging at its first
 * write out of order while all its bytes are still in the head; past
 * the head its streamed bytes cannot be had again, and such a write
 * answers -ENOTSUP (the file is left as it was).
 *
 * Either way the object appears at wfile_commit as one new generation,
 * under the precondition the file was opened with, or not at all.  The
 * first failure sticks: later writes and the commit answer it, and
 * nothing appears.  A staged file may be written again after a good
 * commit: the next commit replaces the generation it made.
 *
 * No FUSE here: fs.c maps requests onto these calls.
 *
 * Thread safety: every call locks the file; the kernel may send a
 * handle's requests from several threads.
 */
#ifndef HYLAKE_WFILE_H
#define HYLAKE_WFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backend.h"

struct wfile;
struct staging;

/* Bytes of a streamed file kept in memory before the store's writer
 * sees any (a write out of order within them moves it to staging). */
#define WFILE_HEAD (8u << 20)

/*
 * Told after each good commit that made a new generation (not of a file
 * never changed), under the file's lock: name, a descriptor holding the
 * committed bytes (info->size of them from offset 0; borrowed, for the
 * call only), or -1 when they were not kept, and the object's info.
 * For write_back: it must not fail the commit, and cannot.
 */
typedef void (*wfile_written_fn)(void *arg, const char *name, int fd,
				 const struct obj_info *info);

/* How a file is written (wfile_open_with). */
struct wfile_how {
	struct staging *staging;  /* where it may be staged; NULL: never
	                             (out-of-order writes: -ENOTSUP) */
	struct bobj *base;        /* an existing file written into: the
	                             version opened (pre names it); takes
	                             ownership.  Staged at its first change;
	                             read through until then.  Not uploaded
	                             again when never changed. */
	bool append;              /* O_APPEND: every write at the end */
	bool stage;               /* staged from the start (opened to read
	                             as well: O_RDWR) */
	/* Optional: told of each commit with its bytes (above).  A
	 * streamed file then keeps a local copy of what it streams, in an
	 * unnamed file in the staging folder counted against its limit;
	 * when it cannot (no staging folder, no room, a disk error), the
	 * copy is dropped with a log line and written gets fd -1: the
	 * application's writes never fail for it. */
	wfile_written_fn written;
	void *written_arg;
};

/*
 * Start writing name to b under pre (copied), streamed.  0, or the
 * -errno of backend_writer_open (-EROFS for a store not built to write).
 */
int wfile_open(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl,
	       struct wfile **out);

/* The same, as how says (NULL: as wfile_open).  Also -ENOTSUP when how
 * asks for staging and has no staging folder, or staged_create's -errno. */
int wfile_open_with(struct backend *b, const char *name,
		    const struct write_pre *pre, const struct wfile_how *how,
		    const struct deadline *dl, struct wfile **out);

/*
 * Write len bytes at offset off (at the end, with how.append).  Returns
 * len; -ENOSPC when staging has no room; -ENOTSUP for a write out of
 * order that cannot be staged (see above); or the store's -errno.  A
 * write refused breaks the file (see above): its object never appears
 * without the bytes refused, cut short.  After the commit of a
 * streamed file: -EBADF, except that a write at 0 after a good commit of
 * an empty file starts a new upload, which will replace that empty
 * generation (the precondition), so that a shell's `cmd > f` (open,
 * dup, close the original: an empty commit) works.
 */
ssize_t wfile_write(struct wfile *f, const void *buf, size_t len,
		    uint64_t off, const struct deadline *dl);

/*
 * Read up to len bytes at off of what the file holds now (read your own
 * writes): the count, short only at the end, or -errno; -ENOTSUP for a
 * streamed file past its head.
 */
ssize_t wfile_read(struct wfile *f, void *buf, size_t len, uint64_t off,
		   const struct deadline *dl);

/* Cut or extend the file to size (a size it has already is no change).
 * 0, -ENOSPC, -ENOTSUP (streamed past its head), or the first failure. */
int wfile_truncate(struct wfile *f, uint64_t size, const struct deadline *dl);

/*
 * Commit: the object appears now, its info goes to *info (may be NULL).
 * The first call does it; later calls answer what it answered.
 * -EEXIST / -ESTALE: the precondition failed; -EIO, -ETIMEDOUT, ...: the
 * upload failed.  Nothing appears on any error.
 */
int wfile_commit(struct wfile *f, struct obj_info *info,
		 const struct deadline *dl);

/*
 * Break f with err (< 0) unless it has ended: nothing of it will appear,
 * and its later calls answer err (a write lease lost: what was written
 * under it must not land).
 */
void wfile_break(struct wfile *f, int err);

/* Whether wfile_commit has been called (whatever it answered). */
bool wfile_ended(struct wfile *f);

/* What the file looks like now: its size so far (or, once committed,
 * the object's info). */
void wfile_info(struct wfile *f, struct obj_info *out);

/* Free f; an upload not committed is aborted (nothing appears). */
void wfile_destroy(struct wfile *f);

/* Free f as the mount ends without a close for it: as wfile_destroy,
 * except that a staged file changed since its last commit stays on disk
 * (its manifest says it was open), for the next start to report. */
void wfile_abandon(struct wfile *f);

#endif
