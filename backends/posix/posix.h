/*
 * posix.h - the posix store: a directory tree (an NFS mount of a cluster,
 * or a local folder) served through the same interface as object stores.
 *
 * The version token is (device, inode, size, mtime) of the descriptor
 * held from open to close; a read that finds the file changed under it
 * fails with ESTALE.  Names are resolved beneath the root only (openat2
 * RESOLVE_BENEATH): nothing outside the configured path is reachable.
 */
#ifndef HYLAKE_POSIX_H
#define HYLAKE_POSIX_H

#include <stddef.h>

struct backend;
struct store_conf;

int posix_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen);

#endif
