/*
 * dirstream.h - one folder's entries, streamed page by page from a store.
 *
 * Turns a store's listing (backends/listing.h: byte order for sorted
 * stores, an object that is also a folder ("x" and "x/") shown once, as
 * the folder, repeated folders dropped) into directory entries: one
 * segment name each, with unsafe names dropped and counted and a folder
 * marker skipped.  At most one listing page plus the names the listing
 * holds back (LISTING_HOLD_DEFAULT) is in memory at any time, so a folder
 * of millions of entries costs as much as one of a thousand.
 *
 * Positions: the n-th entry delivered (0-based) has position n.  Entries
 * from the current position on stay replayable until dirstream_seek() is
 * called with a later position, so a reader that takes back the tail of
 * a batch (the kernel does) costs nothing.  Seeking before the oldest
 * kept entry restarts the listing.
 *
 * Not thread safe: one dirstream per open directory handle, used under
 * the handle's lock.
 */
#ifndef HYLAKE_DIRSTREAM_H
#define HYLAKE_DIRSTREAM_H

#include <stdint.h>

#include "backends/backend.h"

struct dirstream;

struct dir_item {
	char *name;               /* one path segment */
	struct obj_info info;     /* is_dir set for folders */
};

/* dir is "" for the root or "a/b" (no trailing slash). */
struct dirstream *dirstream_create(struct backend *b, const char *dir,
				   unsigned page_size);
void dirstream_destroy(struct dirstream *ds);

/*
 * Move to position pos, forgetting kept entries before it.  Returns 0 or
 * -errno (the listing had to restart and failed).
 */
int dirstream_seek(struct dirstream *ds, uint64_t pos,
		   const struct deadline *dl);

/*
 * The entry at the current position: 1 with *item set (valid until the
 * next seek), 0 at the end, or -errno.  Fetches a page when needed.
 */
int dirstream_peek(struct dirstream *ds, const struct dir_item **item,
		   const struct deadline *dl);
/* Step past the entry peek returned. */
void dirstream_next(struct dirstream *ds);
uint64_t dirstream_pos(const struct dirstream *ds);

/* Names hidden so far (unsafe, or objects shadowed by a folder). */
uint64_t dirstream_hidden(const struct dirstream *ds);

#endif
