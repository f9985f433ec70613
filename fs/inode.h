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
 * lookup.  Returns the inode number: a new one when the path's inode is
 * read at another version (below).
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
 * Whether ino still stands for a name: false for an unknown number and
 * for an inode the name has left (below), whose version no longer
 * changes, so the store need not be asked of it.
 */
bool itable_named(struct itable *t, uint64_t ino);

/* Whether handles read ino through the kernel's pages now: its version
 * is held (below) until they close. */
bool itable_paged(struct itable *t, uint64_t ino);

/*
 * A rename: the inode of from (if the kernel knows one) takes the path
 * to and info, as the kernel moves its entry; an inode that had path to
 * loses it (the kernel drops that entry).  Returns the inode number, or 0.
 */
uint64_t itable_rename(struct itable *t, const char *from, const char *to,
		       const struct obj_info *info);

/*
 * One inode, one version while it is read through the kernel's pages.
 * The kernel keeps one size and one page cache per inode and cuts
 * page-cache reads at that size: two versions of other sizes behind one
 * inode would each be read cut at the other's size.  So while handles
 * read an inode's version through its pages, the inode stays that
 * version, and when the name moves on to another version it gets a new
 * inode, as a local file renamed over by another: the old inode is
 * detached from the name and keeps its version until the kernel forgets
 * it (a lookup answers the new inode at once; a kernel entry that still
 * names the old one expires with entry_timeout, and an open through it
 * is refused ESTALE, which makes the kernel look the name up again).
 */

/*
 * What the store says of ino's version now (a getattr with no handle).
 * ITABLE_SAME or ITABLE_CHANGED: info is stored and may be told.
 * ITABLE_FROZEN: ino stands for another version (*shown): handles read
 * it, or the name has left it; tell *shown, not info.
 */
enum itable_seen { ITABLE_SAME, ITABLE_CHANGED, ITABLE_FROZEN };
enum itable_seen itable_update(struct itable *t, uint64_t ino,
			       const struct obj_info *info,
			       struct obj_info *shown);

/*
 * An open of ino that found version v.  0, with *use: PAGES_KEEP when the
 * kernel's pages are v's, PAGES_DROP when they must be dropped (they
 * become v's), and *changed when the inode showed another version (its
 * attributes are stale).  -ESTALE: ino stands for another version (see
 * above); the open must be refused.  Each 0 pairs with
 * itable_close_pages() at release.
 */
enum page_use { PAGES_KEEP, PAGES_DROP };
int itable_open(struct itable *t, uint64_t ino, const struct obj_info *v,
		enum page_use *use, bool *changed);

void itable_close_pages(struct itable *t, uint64_t ino);

/* Number of live inodes (for tests and status). */
uint64_t itable_count(struct itable *t);

#endif
