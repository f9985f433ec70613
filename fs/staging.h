/*
 * staging.h - the bounded local folder where files written out of order
 * (random writes, appends, truncates to a size) wait for their upload,
 * and what is done at start with those a stopped daemon left behind.
 *
 * A staged file holds the whole new content of one object.  It is
 * uploaded as one new generation (staged_upload) under the precondition
 * it was staged with, or not at all.  Beside it a small manifest says
 * what it is (name, precondition, and whether an upload had begun), so
 * staging_recover can decide at the next start: a file whose upload had
 * begun (close() or fsync() was waiting for it) is uploaded again under
 * its recorded precondition, once its bytes are checked against the
 * size and CRC32C recorded before that upload; anything else (a file
 * still open for writing, a precondition that no longer holds, bytes
 * that do not match) is reported: logged, moved to DIR/reported/, and
 * counted in the figures `hylake status` shows.  Nothing is forced.
 *
 * The folder may be shared by several mounts: each live staged file is
 * held under an exclusive flock(2), which the kernel drops when its
 * daemon dies, so a start never takes over another live mount's files.
 * The space limit counts this mount's staged bytes (their sizes).
 *
 * No FUSE here.
 *
 * Thread safety: struct staging may be used from any thread; one staged
 * file by one thread at a time (its wfile's lock).
 */
#ifndef HYLAKE_STAGING_H
#define HYLAKE_STAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backend.h"

struct staging;
struct staged;

struct staging_stats {
	uint64_t files;           /* staged files now */
	uint64_t bytes;           /* their sizes together */
	uint64_t limit;           /* staging_size */
	uint64_t reported;        /* files in DIR/reported/ */
	uint64_t recovered;       /* uploads finished at this start */
	uint64_t pending;         /* left to try again at the next start */
};

/*
 * Open (make) the folder dir, whose staged files together may hold at
 * most limit bytes, for the source whose identity is store (recorded in
 * each manifest: a start leaves other sources' files alone).  0, or
 * -errno with a message in err.
 */
int staging_open(const char *dir, uint64_t limit, const char *store,
		 struct staging **out, char *err, size_t errlen);

/* Free s.  Staged files must have been destroyed. */
void staging_destroy(struct staging *s);

const char *staging_dir(const struct staging *s);

void staging_get_stats(struct staging *s, struct staging_stats *out);

/*
 * Finish or report what stopped daemons left in the folder (see above),
 * writing to b, each file within timeout_ms.  Files held by a live
 * mount are left alone; a file whose upload fails for another reason
 * than its precondition (the store is unreachable) is kept for the next
 * start and logged.
 */
void staging_recover(struct staging *s, struct backend *b,
		     int64_t timeout_ms);

/*
 * A new, empty staged file for name under pre (copied).  0, -ENOSPC
 * when the folder's disk is full, or the -errno of making it.
 */
int staged_create(struct staging *s, const char *name,
		  const struct write_pre *pre, struct staged **out);

/*
 * Bring the first len bytes of o (the version the precondition names)
 * into the file, read through o's store.  0, -ENOSPC (over the limit;
 * nothing is kept), or the read's -errno.
 */
int staged_fill(struct staged *f, struct bobj *o, uint64_t len,
		const struct deadline *dl);

/* Write len bytes at off; the file grows as needed (a hole reads as
 * zeros).  0, or -ENOSPC when the limit (or the disk) has no room. */
int staged_write(struct staged *f, const void *buf, size_t len,
		 uint64_t off);

/* Read up to len bytes at off: the count (short at the end), or -errno. */
ssize_t staged_read(struct staged *f, void *buf, size_t len, uint64_t off);

/* Cut or extend (with zeros) to size.  0 or -ENOSPC. */
int staged_truncate(struct staged *f, uint64_t size);

uint64_t staged_size(const struct staged *f);

/*
 * Upload the whole file as one new generation of its name under its
 * precondition; *out gets the object's info.  The manifest says an upload
 * is under way until it ends.  After a good upload the precondition
 * becomes the new generation, so a later upload of the same file (more
 * writes, another fsync) replaces exactly that one.  0, or the store's
 * -errno (-EEXIST / -ESTALE: the precondition failed); nothing appears
 * on an error.
 */
int staged_upload(struct staged *f, struct backend *b, struct obj_info *out,
		  const struct deadline *dl);

/* The staged file's descriptor, to read its bytes (borrowed: valid
 * until staged_destroy; do not write through it). */
int staged_fd(const struct staged *f);

/*
 * Room for bytes that are not a staged file (a written file's local
 * copy, for write_back), counted against the limit like staged bytes:
 * 0, or -ENOSPC past it.  staging_give hands it back.  Such files are
 * made with tmpfile_in(staging_dir(s)): unnamed, they vanish with the
 * daemon and recovery never sees them.
 */
int staging_take(struct staging *s, uint64_t bytes);
void staging_give(struct staging *s, uint64_t bytes);

/* Remove the file and its manifest, give its space back. */
void staged_destroy(struct staged *f);

/* Free f but leave its file and manifest on disk, for staging_recover. */
void staged_keep(struct staged *f);

#endif
