/*
 * store.h - what it takes to build a store: its configuration, as read
 * from a [source] or [replica NAME] section, and the network limits shared
 * by every store of a mount.  Filled by mount/config.c; read by the store
 * constructors.  Plain data; the strings are owned by the struct and freed
 * by store_conf_release().
 */
#ifndef HYLAKE_STORE_H
#define HYLAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_type { STORE_NONE = 0, STORE_S3, STORE_POSIX, STORE_GCS };

/*
 * How a replica's bytes are checked before they are served (the block
 * sums of backends/composite/blocksums.h, proven against the source's
 * crc32c):
 *   VERIFY_WHOLE_FIRST  the copy's block manifest; a copy without one is
 *                       read whole once, on first use, to compute them
 *   VERIFY_BLOCKS       only copies with a block manifest are used
 *   VERIFY_TRUST        the stamp alone (unsafe: wrong bytes with a right
 *                       stamp are served)
 */
enum verify_mode { VERIFY_WHOLE_FIRST = 0, VERIFY_BLOCKS, VERIFY_TRUST };

struct net_conf {
	int64_t connect_timeout_ms;   /* TCP+TLS connect */
	int64_t request_timeout_ms;   /* one HTTP attempt, start to end */
	int64_t stall_timeout_ms;     /* abort when < stall_bytes/s this long */
	int64_t stall_bytes;
	int64_t retries;              /* extra attempts for idempotent calls */
	int64_t backoff_base_ms;
	int64_t backoff_max_ms;
};

struct store_conf {
	char *name;                   /* "source" or the replica's name */
	int line;                     /* config line of the section header */
	enum store_type type;
	char *endpoint;               /* s3, gcs */
	char *bucket;
	char *prefix;                 /* "" or ending in '/' */
	char *region;
	char *credentials;            /* s3: a credentials file; gcs: a key
	                                 file, "metadata" or "none" */
	char *metadata_endpoint;      /* gcs with credentials = metadata */
	char *profile;
	char *path;                   /* posix root */
	char *generation_key;         /* s3: x-amz-meta-KEY, posix: user.KEY
	                                 holds the stamped source generation */
	int64_t list_page_size;
	enum verify_mode verify;      /* replicas: how their bytes are checked */
	bool replica;                 /* a [replica NAME] section */
	bool writable;                /* the source of a read-write mount: the
	                                 store is built to write (GCS: a token
	                                 with a write scope; BACKEND_WRITE) */
	struct net_conf net;
};

const char *store_type_name(enum store_type t);
const char *verify_mode_name(enum verify_mode v);
void store_conf_release(struct store_conf *c);

/* Where replicas record the source's crc32c (base64, as GCS gives it). */
#define STORE_CRC32C_KEY "goog-crc32c"

struct backend;
/* Build the store a conf describes.  Returns 0 or -errno with err filled. */
int store_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen);

#endif
