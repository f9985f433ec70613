/*
 * mem.h - a store in memory, faithful to the seam (backend.h), for tests.
 *
 * It behaves like a GCS bucket: every object version gets a generation
 * from one counter per store (monotonic, never 0), names are flat and
 * folders exist only as the '/'-separated prefixes of names, listings
 * come sorted in pages with opaque tokens and honour start_at, and an
 * open handle is pinned to the version it found: once that version is
 * replaced or deleted, reads through the handle fail with -ESTALE.
 *
 * It can also act as a replica: an object put with a stamp reports the
 * stamp's source generation (and crc32c, when the stamp has one) in its
 * obj_info, as the s3 and posix stores do; its own version is then only
 * in the etag.  Unstamped objects report their own generation, with
 * crc32c and md5 of their bytes, as GCS does.
 *
 * Every object's etag is its own generation in decimal: the version
 * token open_pinned() checks.  Caps: BACKEND_LIST_SORTED |
 * BACKEND_LIST_START_AT.
 *
 * Thread safety: one mutex guards the store; reads copy bytes outside it
 * (versions are immutable and reference counted), so they run in
 * parallel.  The setup calls below may be made while other threads use
 * the store.
 */
#ifndef HYLAKE_MEM_H
#define HYLAKE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/* An empty store named name ("source", "dc-east").  Never fails. */
struct backend *mem_create(const char *name);

/*
 * The same, built to write (BACKEND_WRITE), like a GCS source of a
 * writable mount: a writer gathers its bytes in memory and the version
 * appears at commit if its precondition holds then (-EEXIST, -ESTALE
 * as GCS answers); remove checks its precondition the same way.  A
 * store made with mem_create has the ops too, and answers -EROFS.
 */
struct backend *mem_create_writable(const char *name);

/*
 * Store a new version of name holding a copy of the len bytes at data.
 * stamp (borrowed, may be NULL) makes it a replica's copy: its
 * generation, crc32c (has_crc32c) and mtime_ns (when not 0) are what
 * obj_info reports.  Returns the version's own generation (> 0), or
 * -EINVAL for a name the store cannot hold ("", a leading '/').
 */
int64_t mem_put(struct backend *b, const char *name, const void *data,
		size_t len, const struct obj_info *stamp);

/*
 * Like mem_put, for large objects that are never held in memory: byte i
 * of the object is mem_pattern_byte(seed, i).  Such versions carry no
 * crc32c or md5 of their own (a stamp may still give a crc32c).
 */
int64_t mem_put_pattern(struct backend *b, const char *name, uint64_t size,
			uint64_t seed, const struct obj_info *stamp);

/* The byte at off of a pattern object made with seed. */
unsigned char mem_pattern_byte(uint64_t seed, uint64_t off);

/* Delete name: 0, or -ENOENT. */
int mem_delete(struct backend *b, const char *name);

/* The current generation of name (its own, not a stamp's), or -ENOENT. */
int64_t mem_generation(struct backend *b, const char *name);

#endif
