/*
 * inode.h - the table of inodes the kernel knows.
 *
 * Each inode stands for one path ("" is the root, FUSE_ROOT_ID) and holds
 * what the store last said about it.  Inode numbers are never reused in
 * a mount.  The kernel's lookup count decides lifetime: an inode lives
 * from its first lookup until forget() brings the count back to zero (the
 * root lives forever).  If a path changes between file and folder it gets
 * a new inode (the kernel cannot change an inode's type).
 *
 * Thread safety: all functions lock the table; struct inode is private,
 * callers copy out what they need.
 */
#ifndef HYLAKE_INODE_H
#define HYLAKE_INODE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"

#define INODE_ROOT 1

struct itable;

struct itable *itable_create(void);
void itable_destroy(struct itable *t);

/*
 * Find or create the inode of path, store info in it and add one kernel
 * lookup.  Returns the inode number.
 */
uint64_t itable_lookup(struct itable *t, const char *path,
		       const struct obj_info *info);

/* The inode number of path, or 0 when the kernel knows none; adds no
 * lookup. */
uint64_t itable_find(struct itable *t, const char *path);

/* Drop n kernel lookups; the inode goes away at zero. */
void itable_forget(struct itable *t, uint64_t ino, uint64_t n);

/*
 * Copy out an inode's path (malloc'd, caller frees) and info.  Returns
 * 0 or -ENOENT for an unknown number.  Either output may be NULL.
 */
int itable_get(struct itable *t, uint64_t ino, char **path,
	       struct obj_info *info);

/*
 * A rename: the inode of from (if the kernel knows one) takes the path
 * to and info, as the kernel moves its entry; an inode that had path to
 * loses it (the kernel drops that entry).  Returns the inode number, or 0.
 */
uint64_t itable_rename(struct itable *t, const char *from, const char *to,
		       const struct obj_info *info);

/*
 * Replace an inode's info.  Returns true when the version changed (the
 * old info named another version of the same file).
 */
bool itable_update(struct itable *t, uint64_t ino, const struct obj_info *info);

/*
 * The kernel's page cache of a file holds the bytes of one version: that
 * of the open handles that use it.  An open of version v:
 * PAGES_KEEP - the pages are v's: keep them;
 * PAGES_DROP - no handle uses the pages: drop them, they become v's;
 * PAGES_BYPASS - handles of another version use the pages: this one must
 *   not (direct I/O), or each could read the other's bytes.
 * Every KEEP or DROP open is paired with itable_close_pages() at release.
 */
enum page_use { PAGES_KEEP, PAGES_DROP, PAGES_BYPASS };
enum page_use itable_open_pages(struct itable *t, uint64_t ino,
				const struct obj_info *v);
/*
 * Would attributes of version v mislead the kernel for ino?  True while
 * some handle reads ino through the kernel's pages at a version of another
 * size: the kernel cuts those reads at the size it was last told, so
 * attributes of v must be told as stale at once (its next read past them
 * asks again, through its own handle).
 */
bool itable_pages_differ(struct itable *t, uint64_t ino,
			 const struct obj_info *v);

void itable_close_pages(struct itable *t, uint64_t ino);

/* Number of live inodes (for tests and status). */
uint64_t itable_count(struct itable *t);

#endif
