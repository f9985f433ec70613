/*
 * backend.h - the one seam between the filesystem and the stores.
 *
 * A store (gcs, s3, posix, and the stores made of stores: the router and
 * the metadata cache) is a `const struct backend_ops` table plus private
 * state behind `struct backend`.  Names are
 * object names relative to the store's configured prefix ("a/b.parquet",
 * never a leading '/').  Every call takes a deadline and returns 0 (or a
 * byte count) or a negative errno; foreign codes (HTTP status, CURLcode)
 * are translated inside the store by the one function that owns them.
 *
 * Errors keep their meaning: ENOENT (no such object), EACCES (credentials
 * or permission), ESTALE (the pinned version is gone, or a write's
 * generation precondition failed), EEXIST (a put-if-absent found an
 * object), EROFS (a store not built to write), ETIMEDOUT (deadline
 * passed), ECONNREFUSED/EHOSTUNREACH (unreachable), EIO (anything else).
 *
 * Versions.  Every object has a version token taken when it is opened:
 * S3 - the ETag (sent as If-Match on every ranged GET); posix - device,
 * inode, size, mtime and ctime of the descriptor held since open; GCS - the
 * generation.  All reads through a struct bobj are pinned to the token in
 * its info; if the store no longer has that version the read fails with
 * -ESTALE, never returning bytes of another version.
 *
 * Thread safety: a struct backend is shared by all threads; its ops are
 * safe to call concurrently.  A struct bobj may be read from several
 * threads at once (FUSE does so) but is closed by exactly one.
 */
#ifndef HYLAKE_BACKEND_H
#define HYLAKE_BACKEND_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "backends/util/timeutil.h"
#include "backends/util/strbuf.h"

#define HY_ETAG_MAX 96

/* What a store knows about one object (or a folder, when is_dir). */
struct obj_info {
	bool is_dir;
	uint64_t size;
	int64_t mtime_ns;         /* creation time of this version */
	uint64_t generation;      /* GCS generation (or replica's recorded
	                             source generation); 0 when unknown */
	uint64_t metageneration;
	uint32_t crc32c;
	bool has_crc32c;
	bool has_md5;
	unsigned char md5[16];
	char etag[HY_ETAG_MAX];   /* version token text; "" when unknown */
};

/*
 * Copy an ETag (len bytes at src, surrounding quotes removed) into dst
 * (HY_ETAG_MAX bytes).  Returns false when it does not fit: a version
 * token is never truncated, since two truncated tokens could compare equal.
 */
bool etag_copy(char *dst, const char *src, size_t len);

/* True when a and b name the same version of an object. */
bool obj_info_same_version(const struct obj_info *a, const struct obj_info *b);

/* One entry of a listing page.  name is relative to the store root. */
struct list_entry {
	const char *name;         /* "dir/file" or, for a prefix, "dir/sub/" */
	bool is_prefix;           /* a common prefix (folder), info unused */
	struct obj_info info;
};

/* Called once per entry; return 0 to go on or a negative errno to stop. */
typedef int (*list_cb)(void *arg, const struct list_entry *e);

/* Parameters of one listing page. */
struct list_req {
	const char *prefix;       /* "" or "dir/" */
	const char *delimiter;    /* "/" or NULL (recursive) */
	const char *token;        /* NULL for the first page */
	unsigned max_keys;        /* 1..1000 */
	/*
	 * Optional, first page only, for stores with list_start_at: the
	 * page starts at this name (inclusive), skipping the names before
	 * it; a few names just before it may still come.  NULL: from the
	 * start of prefix.
	 */
	const char *start_at;
};

/* The result of `check`: one human-readable verdict per store. */
struct probe_result {
	int err;                  /* 0 or negative errno */
	double latency_ms;
	char message[512];        /* "ok" or what is wrong, no secrets */
};

struct backend;
struct bobj;
struct bwriter;
struct prom;

/*
 * Capabilities of one instance (struct backend.caps): what a store does
 * depends on how it was built (a router lists in its source's order), so
 * they live on the instance, never in the shared const ops table.
 */
enum backend_cap {
	/*
	 * Listings are sorted, in this sense only: within a page the
	 * objects are in byte order of names and so are the prefixes, but
	 * the two runs may come one after the other (GCS: all objects, then
	 * all prefixes), so a page is not in byte order as a whole; across
	 * pages names only grow, except that a prefix may be sent again at
	 * the start of the next page.  Without it (posix: readdir order) no
	 * order is promised.  backends/listing.h turns either into entries
	 * in byte order with a folder hiding a file of its name.
	 */
	BACKEND_LIST_SORTED = 1u << 0,
	BACKEND_LIST_START_AT = 1u << 1,  /* list honours list_req.start_at */
	/*
	 * The instance was built to write (a GCS source store opened for a
	 * read-write mount: its token carries a write scope).  Without it
	 * the write ops answer -EROFS even where the store has them.
	 */
	BACKEND_WRITE = 1u << 2,
};

/*
 * Writes.  The lake is written in one place (GCS) and every write carries
 * a precondition, checked by the store atomically with the write (GCS:
 * ifGenerationMatch), so nothing is lost or silently overwritten:
 *
 *   WRITE_PRE_NONE        no condition: the write replaces whatever is
 *                         there (last writer wins)
 *   WRITE_PRE_ABSENT      no live object of that name (ifGenerationMatch=0:
 *                         put-if-absent, for O_EXCL and commit files)
 *   WRITE_PRE_GENERATION  the live object is generation `generation`
 *                         (an overwrite of, or a removal of, what was seen)
 *
 * When the condition does not hold the write fails, changing nothing:
 * -EEXIST for WRITE_PRE_ABSENT, -ESTALE for WRITE_PRE_GENERATION (the
 * object is now another generation, or gone).  write_pre_errno() is the
 * one place that says so.
 */
enum write_pre_kind {
	WRITE_PRE_NONE = 0,
	WRITE_PRE_ABSENT,
	WRITE_PRE_GENERATION,
};

struct write_pre {
	enum write_pre_kind kind;
	uint64_t generation;      /* WRITE_PRE_GENERATION: > 0 */
	/*
	 * WRITE_PRE_GENERATION only, optional: when > 0 the live object's
	 * metageneration must be this too (GCS: ifMetagenerationMatch), so
	 * a write replaces exactly the version and metadata update seen.
	 * A failure is -ESTALE, as for the generation.
	 */
	uint64_t metageneration;
};

/*
 * The error a write or removal under pre answers, from err as the store's
 * protocol layer gave it: a failed precondition arrives as -ESTALE (HTTP
 * 412) and means -EEXIST under WRITE_PRE_ABSENT.  Other errors unchanged.
 */
int write_pre_errno(const struct write_pre *pre, int err);

/* True when pre is well formed (a generation precondition names one). */
bool write_pre_valid(const struct write_pre *pre);

/* One custom metadata entry of an object (GCS: metadata{key: value}). */
struct meta_kv {
	const char *key;
	const char *value;        /* NULL: remove the key */
};

/*
 * The operations of one kind of store.  Tables are const and shared by
 * every instance.  Ops marked optional may be NULL; callers go through
 * the backend_*() wrappers below, which give each a default (so a store
 * made of stores passes them through without knowing which exist).
 */
struct backend_ops {
	const char *type;         /* "s3", "posix", "router", ... */

	/*
	 * Look a name up: a file (object) or a folder (prefix, marker or
	 * directory).  When both exist the folder wins.  -ENOENT when neither.
	 */
	int (*stat)(struct backend *b, const char *name, struct obj_info *out,
		    const struct deadline *dl);

	/*
	 * List one page.  Entries are delivered through cb; *next_token gets
	 * a malloc'd continuation token, or NULL after the last page.  A page
	 * may hold no entries and still carry a token.
	 */
	int (*list)(struct backend *b, const struct list_req *req, list_cb cb,
		    void *arg, char **next_token, const struct deadline *dl);

	/*
	 * Open an object and pin its current version.  On success *out is a
	 * handle whose info (bobj_info()) holds the version token.
	 */
	int (*open)(struct backend *b, const char *name, struct bobj **out,
		    const struct deadline *dl);

	/*
	 * Read up to len bytes at off from the pinned version.  Returns the
	 * number of bytes (short only at end of object) or a negative errno;
	 * -ESTALE if the version is gone.
	 */
	ssize_t (*read)(struct bobj *o, void *buf, size_t len, uint64_t off,
			const struct deadline *dl);

	/*
	 * Optional: open as open() does, and in the same request read the
	 * pinned version's last tail_len bytes (all of it when shorter)
	 * into the handle (struct bobj's tail).  For readers that go to
	 * the end of a file first (a Parquet footer) or read a small file
	 * whole: one round trip where open() and read() take two.  The
	 * default opens without a tail; a store that wraps another passes
	 * it through.
	 */
	int (*open_tail)(struct backend *b, const char *name, size_t tail_len,
			 struct bobj **out, const struct deadline *dl);

	/*
	 * Optional: a handle pinned to a version already known (from the
	 * version map), without a round trip.  Reads still verify it (If-Match,
	 * generation=), so a wrong belief costs an ESTALE, never wrong bytes.
	 * NULL for stores that must hold something open (posix); the
	 * default answers -ENOTSUP.
	 */
	int (*open_pinned)(struct backend *b, const char *name,
			   const struct obj_info *info, struct bobj **out);

	void (*close)(struct bobj *o);

	/*
	 * Optional (stores that can hold replicas): store a complete copy of
	 * name from the first size bytes of file fd, stamped with the source
	 * version it holds: stamp->generation, and stamp->crc32c when known.
	 * stamp->md5, when known, is sent so the store checks what it got.
	 * Atomic: readers see the previous copy or the whole new one with its
	 * stamp, never a mix and never an unstamped copy.  -EINVAL for a name
	 * the store cannot hold, -EFBIG when too large for one write.
	 * Default: -ENOTSUP.
	 */
	int (*put)(struct backend *b, const char *name, int fd, uint64_t size,
		   const struct obj_info *stamp, const struct deadline *dl);

	/*
	 * Optional: write an object.  A table with writer_open has the
	 * other three, unless its writer_open hands out another store's
	 * writers (a wrapper's: see struct bwriter).  writer_open starts
	 * one under precondition pre (copied); a store may make no request
	 * yet.  writer_write appends len bytes (sequential appends only: the
	 * bytes stream out with bounded memory, the object is not visible
	 * yet).  writer_commit ends the stream: the object appears now, as
	 * one new generation whose info (generation, size, crc32c, ...) goes
	 * to *out, or not at all.  writer_abort drops it; nothing appears.
	 *
	 * The precondition holds at the moment the object appears; a store
	 * may find it failed earlier (at open or at a write that starts the
	 * upload) and say so there.  A failed write leaves the writer broken:
	 * the later calls answer the same error, and only abort remains.
	 * commit and abort end the writer (freed, whatever they answer).
	 * Errors: -EEXIST/-ESTALE (pre failed, see enum write_pre_kind),
	 * -EINVAL (a name or pre the store cannot take), -EIO (the store
	 * lost bytes, or kept other bytes than were sent: the checksum it
	 * answers differs), -ETIMEDOUT, -EACCES, ...
	 * A writer belongs to one thread at a time.  Default: -ENOTSUP.
	 */
	int (*writer_open)(struct backend *b, const char *name,
			   const struct write_pre *pre, struct bwriter **out,
			   const struct deadline *dl);
	int (*writer_write)(struct bwriter *w, const void *buf, size_t len,
			    const struct deadline *dl);
	int (*writer_commit)(struct bwriter *w, struct obj_info *out,
			     const struct deadline *dl);
	void (*writer_abort)(struct bwriter *w);

	/*
	 * Optional: remove name under pre (WRITE_PRE_ABSENT is -EINVAL).
	 * -ENOENT when there is no such object; -ESTALE when it is another
	 * generation than pre names.  Default: -ENOTSUP.
	 */
	int (*remove)(struct backend *b, const char *name,
		      const struct write_pre *pre, const struct deadline *dl);

	/*
	 * Optional: copy generation from_generation (> 0) of object from to
	 * a new object to, inside the store, under pre (on to), checked by
	 * the store atomically with the copy (GCS: a rewrite with
	 * sourceGeneration and ifGenerationMatch), so the copy is of exactly
	 * the version seen and never overwrites what pre does not name.  The
	 * new object's info goes to *out.  -ENOENT when from is not (or no
	 * longer) that generation; -EEXIST/-ESTALE when pre failed (see enum
	 * write_pre_kind); -EINVAL for a name the store cannot take.
	 * Default: -ENOTSUP.
	 */
	int (*copy)(struct backend *b, const char *from, uint64_t from_generation,
		    const char *to, const struct write_pre *pre,
		    struct obj_info *out, const struct deadline *dl);

	/*
	 * Optional: update the custom metadata of the live object name (the
	 * n entries of kv; other keys are kept) under pre, which must be
	 * WRITE_PRE_GENERATION (and may name a metageneration), checked by
	 * the store atomically with the update (GCS: objects.patch with
	 * ifGenerationMatch and ifMetagenerationMatch).  The bytes and the
	 * generation stay; the metageneration grows by one, and the
	 * object's info, with it, goes to *out.  This is how a lease is
	 * renewed without a new generation (backends/composite/lease.h).
	 * -ENOENT when there is no such object; -ESTALE when pre failed.
	 * Default: -ENOTSUP.
	 */
	int (*set_meta)(struct backend *b, const char *name,
			const struct write_pre *pre, const struct meta_kv *kv,
			size_t n, struct obj_info *out,
			const struct deadline *dl);

	/*
	 * Optional: explain how a name is served, for the user.hylake.*
	 * extended attributes: attr is "source" (the store that would serve
	 * the next read), "generation" or "replicas" (one "name=state" per
	 * store).  Appends the value to out.  0, -ENODATA, or -errno.
	 * Default: -ENOTSUP (the caller answers from what it knows).
	 */
	int (*explain)(struct backend *b, const char *name, const char *attr,
		       struct strbuf *out, const struct deadline *dl);

	/*
	 * Optional: add this store's figures to p (status and metrics),
	 * labelled store="<name>"; a store made of stores adds those of its
	 * stores too.  Thread safe.  Default: nothing.
	 */
	void (*metrics)(struct backend *b, struct prom *p);

	/*
	 * Optional: how long the kernel may cache name's entry and
	 * attributes, in ms, when that is longer than the mount's
	 * timeouts (a name whose version never changes but by deletion;
	 * a folder is asked about as "name/"); -1 (the default): the
	 * mount's timeouts.
	 */
	int64_t (*cache_ms)(struct backend *b, const char *name);

	/* Contact the store: reachable, bucket found, credentials accepted. */
	void (*probe)(struct backend *b, struct probe_result *res,
		      const struct deadline *dl);

	void (*destroy)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	char *name;               /* "source", "dc-east", ... */
	char *describe;           /* "s3 http://host:port/bucket/prefix" */
	unsigned caps;            /* enum backend_cap bits; immutable */
};

/* Common head of every store's open-object handle. */
struct bobj {
	struct backend *b;
	char *name;
	struct obj_info info;     /* pinned at open; immutable after */
	/* Bytes [info.size - tail_len, info.size) of the pinned version,
	 * read at open (open_tail), or NULL.  Owned; bobj_take_tail()
	 * hands them on, bobj_release() frees them. */
	char *tail;
	size_t tail_len;
};

/*
 * Common head of every store's writer.  Its ops are those of b, the
 * store that opened it: a store that wraps another passes the inner
 * store's writer on as it is.
 */
struct bwriter {
	struct backend *b;
	char *name;
	struct write_pre pre;
	uint64_t written;         /* bytes appended so far */
};

/*
 * stat() for object stores whose listings are sorted (S3, GCS): the
 * listing of prefix = name, delimiter '/' (through backends/listing.h)
 * shows both the object "name" and a folder "name/", with the object's
 * metadata.  Follows empty pages that carry a token.  The folder wins
 * when both exist.  When many names sort between "name" and "name/"
 * ("name-1", "name.txt", ...), asks whether "name/" exists with a
 * one-key listing (backend_prefix_exists) instead of reading them all.
 * 0, -ENOENT, or the listing's -errno.
 */
int backend_stat_by_listing(struct backend *b, const char *name,
			    struct obj_info *out, const struct deadline *dl);

/* Does any name start with prefix?  1, 0 or -errno.  Follows empty pages. */
int backend_prefix_exists(struct backend *b, const char *prefix,
			  const struct deadline *dl);

/* Shared by the stores: fill the common fields of a new backend/bobj. */
void backend_init(struct backend *b, const struct backend_ops *ops,
		  const char *name, const char *describe, unsigned caps);
void backend_release(struct backend *b);
void bobj_init(struct bobj *o, struct backend *b, const char *name);
void bobj_release(struct bobj *o);
/* Move from's tail to to (a handle of the same version that wraps it). */
void bobj_take_tail(struct bobj *to, struct bobj *from);
void bwriter_init(struct bwriter *w, struct backend *b, const char *name,
		  const struct write_pre *pre);
void bwriter_release(struct bwriter *w);

/*
 * Names under HY_RESERVED_PREFIX belong to hylake itself (block
 * manifests, the site journal, leases): mounts do not show them,
 * `hylake replicate` does not copy them, and no path can name them.
 */
#define HY_RESERVED_PREFIX ".hylake/"

/* True for ".hylake" and the names under it (a folder's "x/" too). */
static inline bool backend_name_reserved(const char *name)
{
	return !strncmp(name, HY_RESERVED_PREFIX,
			sizeof(HY_RESERVED_PREFIX) - 1) ||
	       !strcmp(name, ".hylake");
}

/* Convenience wrappers that read well at call sites. */
static inline int backend_stat(struct backend *b, const char *name,
			       struct obj_info *out, const struct deadline *dl)
{
	return b->ops->stat(b, name, out, dl);
}

static inline int backend_list(struct backend *b, const struct list_req *req,
			       list_cb cb, void *arg, char **next_token,
			       const struct deadline *dl)
{
	return b->ops->list(b, req, cb, arg, next_token, dl);
}

static inline int backend_open(struct backend *b, const char *name,
			       struct bobj **out, const struct deadline *dl)
{
	return b->ops->open(b, name, out, dl);
}

static inline int backend_open_tail(struct backend *b, const char *name,
				    size_t tail_len, struct bobj **out,
				    const struct deadline *dl)
{
	if (!b->ops->open_tail || !tail_len)
		return b->ops->open(b, name, out, dl);
	return b->ops->open_tail(b, name, tail_len, out, dl);
}

static inline ssize_t bobj_read(struct bobj *o, void *buf, size_t len,
				uint64_t off, const struct deadline *dl)
{
	return o->b->ops->read(o, buf, len, off, dl);
}

static inline void bobj_close(struct bobj *o)
{
	o->b->ops->close(o);
}

static inline bool backend_has(const struct backend *b, unsigned cap)
{
	return (b->caps & cap) == cap;
}

static inline int backend_open_pinned(struct backend *b, const char *name,
				      const struct obj_info *info,
				      struct bobj **out)
{
	if (!b->ops->open_pinned)
		return -ENOTSUP;
	return b->ops->open_pinned(b, name, info, out);
}

static inline int backend_put(struct backend *b, const char *name, int fd,
			      uint64_t size, const struct obj_info *stamp,
			      const struct deadline *dl)
{
	if (!b->ops->put)
		return -ENOTSUP;
	return b->ops->put(b, name, fd, size, stamp, dl);
}

/*
 * The write ops (see struct backend_ops): -ENOTSUP for a store that has
 * none, -EROFS for an instance not built to write (BACKEND_WRITE), and
 * -EINVAL for a malformed pre, before the store is asked.
 */
static inline int backend_writer_open(struct backend *b, const char *name,
				      const struct write_pre *pre,
				      struct bwriter **out,
				      const struct deadline *dl)
{
	if (!b->ops->writer_open)
		return -ENOTSUP;
	if (!backend_has(b, BACKEND_WRITE))
		return -EROFS;
	if (!write_pre_valid(pre))
		return -EINVAL;
	return b->ops->writer_open(b, name, pre, out, dl);
}

static inline int bwriter_write(struct bwriter *w, const void *buf,
				size_t len, const struct deadline *dl)
{
	return w->b->ops->writer_write(w, buf, len, dl);
}

static inline int bwriter_commit(struct bwriter *w, struct obj_info *out,
				 const struct deadline *dl)
{
	return w->b->ops->writer_commit(w, out, dl);
}

static inline void bwriter_abort(struct bwriter *w)
{
	if (w)
		w->b->ops->writer_abort(w);
}

static inline int backend_remove(struct backend *b, const char *name,
				 const struct write_pre *pre,
				 const struct deadline *dl)
{
	if (!b->ops->remove)
		return -ENOTSUP;
	if (!backend_has(b, BACKEND_WRITE))
		return -EROFS;
	if (!write_pre_valid(pre) || pre->kind == WRITE_PRE_ABSENT)
		return -EINVAL;
	return b->ops->remove(b, name, pre, dl);
}

static inline int backend_copy(struct backend *b, const char *from,
			       uint64_t from_generation, const char *to,
			       const struct write_pre *pre, struct obj_info *out,
			       const struct deadline *dl)
{
	if (!b->ops->copy)
		return -ENOTSUP;
	if (!backend_has(b, BACKEND_WRITE))
		return -EROFS;
	if (!write_pre_valid(pre) || !from_generation)
		return -EINVAL;
	return b->ops->copy(b, from, from_generation, to, pre, out, dl);
}

static inline int backend_set_meta(struct backend *b, const char *name,
				   const struct write_pre *pre,
				   const struct meta_kv *kv, size_t n,
				   struct obj_info *out,
				   const struct deadline *dl)
{
	if (!b->ops->set_meta)
		return -ENOTSUP;
	if (!backend_has(b, BACKEND_WRITE))
		return -EROFS;
	if (!write_pre_valid(pre) || pre->kind != WRITE_PRE_GENERATION)
		return -EINVAL;
	return b->ops->set_meta(b, name, pre, kv, n, out, dl);
}

static inline int backend_explain(struct backend *b, const char *name,
				  const char *attr, struct strbuf *out,
				  const struct deadline *dl)
{
	if (!b->ops->explain)
		return -ENOTSUP;
	return b->ops->explain(b, name, attr, out, dl);
}

static inline void backend_metrics(struct backend *b, struct prom *p)
{
	if (b->ops->metrics)
		b->ops->metrics(b, p);
}

static inline int64_t backend_cache_ms(struct backend *b, const char *name)
{
	return b->ops->cache_ms ? b->ops->cache_ms(b, name) : -1;
}

static inline void backend_probe(struct backend *b, struct probe_result *res,
				 const struct deadline *dl)
{
	b->ops->probe(b, res, dl);
}

static inline void backend_destroy(struct backend *b)
{
	if (b)
		b->ops->destroy(b);
}

#endif
