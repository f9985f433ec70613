/*
 * s3.h - the S3 store: path-style addressing, SigV4 header signing,
 * ListObjectsV2, HEAD, and ranged GETs pinned with If-Match.
 *
 * One instance per S3-compatible cluster; the two on-prem clusters are two
 * instances of this store.  Store-relative names are mapped onto keys by
 * prepending the configured prefix.
 */
#ifndef HYLAKE_S3_H
#define HYLAKE_S3_H

#include <stddef.h>

struct backend;
struct store_conf;

/* Build an S3 store (loads and checks the credentials file).
 * Returns 0 or -errno with err filled. */
int s3_create(const struct store_conf *c, struct backend **out,
	      char *err, size_t errlen);

#endif
