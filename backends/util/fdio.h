/*
 * fdio.h - whole writes to file descriptors, and folders made whole
 * and removed whole.
 */
#ifndef HYLAKE_FDIO_H
#define HYLAKE_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Write all len bytes at off, across short writes and EINTR.
 * 0 or -errno (-EIO when the file takes nothing). */
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* mkdir -p: make path and any missing parents, mode 0700.  0 (also when
 * it exists) or -errno. */
int mkdir_p(const char *path);

/* rm -r: remove path and all below it, not following links.  0 (also
 * when it is not there) or -errno. */
int remove_tree(const char *path);

/* A file with no name in folder dir, open for reading and writing (gone
 * when closed).  A descriptor, or -1 with errno set. */
int tmpfile_in(const char *dir);

#endif
