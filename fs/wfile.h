/*
 * wfile.h - a file being written through the mount: the bytes an
 * application writes, streamed to the store's writer as they come, and
 * the object committed once.
 *
 * Writes must be sequential (each at the current end); the object
 * appears at wfile_commit as one new generation, under the precondition
 * the file was opened with, or not at all.  The first failure sticks:
 * later writes and the commit answer it, and nothing appears.
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

/*
 * Start writing name to b under pre (copied).  0, or the -errno of
 * backend_writer_open (-EROFS for a store not built to write).
 */
int wfile_open(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl,
	       struct wfile **out);

/*
 * Append len bytes that belong at offset off.  Returns len, or -ENOTSUP
 * when off is not the current end (only sequential writes for now; the
 * file is left as it was), or the store's -errno (the file is then
 * broken: see above).  After the commit: -EBADF, except that a write at
 * 0 after a good commit of an empty file starts a new upload, which will
 * replace that empty generation (the precondition), so that a shell's
 * `cmd > f` (open, dup, close the original: an empty commit) works.
 */
ssize_t wfile_write(struct wfile *f, const void *buf, size_t len,
		    uint64_t off, const struct deadline *dl);

/*
 * Commit: the object appears now, its info goes to *info (may be NULL).
 * The first call does it; later calls answer what it answered.
 * -EEXIST / -ESTALE: the precondition failed; -EIO, -ETIMEDOUT, ...: the
 * upload failed.  Nothing appears on any error.
 */
int wfile_commit(struct wfile *f, struct obj_info *info,
		 const struct deadline *dl);

/* Whether wfile_commit has been called (whatever it answered). */
bool wfile_ended(struct wfile *f);

/* What the file looks like now: its size so far (or, once committed,
 * the object's info). */
void wfile_info(struct wfile *f, struct obj_info *out);

/* Free f; an upload not committed is aborted (nothing appears). */
void wfile_destroy(struct wfile *f);

#endif
