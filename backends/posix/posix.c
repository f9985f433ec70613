/*
 * posix.c - the posix store.
 *
 * Listings read one directory with readdir; the continuation token is the
 * telldir() cookie of the next entry, so a huge directory is paged without
 * ever being held in memory.  Entries come in directory order (not
 * sorted); a name is either a file or a folder, never both.
 *
 * No file-system call runs on the caller's thread.  An NFS mount whose
 * server is gone blocks openat2, fgetxattr, pread, readdir and even close
 * forever, past any deadline, so each op packs its syscalls into one
 * struct px_call and runs it on a worker (offload.h), waiting only as long
 * as the caller's deadline.  A call owns all it touches: copies of the
 * name and inputs, its own read buffer, a reference to the shared root
 * (struct px_root) and to the open descriptor (struct px_file).  A worker
 * that comes back after its caller left frees them; when too many are
 * stuck the store answers -ETIMEDOUT at once, which the router counts
 * against its health.
 */
#include "backends/posix/posix.h"
#include "backends/backend.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/base64.h"
#include "backends/util/fdio.h"
#include "backends/posix/offload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <stdatomic.h>
#include <unistd.h>

/* Calls stuck on a dead server before the store fails fast. */
#define PX_MAX_STUCK 8

/* What workers need of the store; outlives it while a worker is stuck. */
struct px_root {
	atomic_int refs;          /* the store and each call */
	int rootfd;
	char *root;
	char *generation_xattr;   /* "user.goog-generation" */
};

struct posix_backend {
	struct backend base;
	struct px_root *rt;
	struct offload *ol;
	unsigned page_size;
};

/* A descriptor shared by a handle and the reads in flight on it; the
 * last reference closes it (on a worker: see posix_close). */
struct px_file {
	atomic_int refs;
	int fd;
};

struct posix_obj {
	struct bobj base;
	struct px_file *f;
	struct stat st;         /* as seen at open */
};

static struct posix_backend *to_px(struct backend *b)
{
	return (struct posix_backend *)b;
}

static void root_put(struct px_root *rt)
{
	if (atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	close(rt->rootfd);
	free(rt->root);
	free(rt->generation_xattr);
	free(rt);
}

static void file_put(struct px_file *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	close(f->fd);
	free(f);
}

/* Open name beneath the root; never follows a path outside it. */
static int open_beneath(const struct px_root *rt, const char *name, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	const char *path = *name ? name : ".";
	int fd = (int)syscall(SYS_openat2, rt->rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

static void info_from_stat(const struct stat *st, struct obj_info *info)
{
	memset(info, 0, sizeof(*info));
	info->is_dir = S_ISDIR(st->st_mode);
	info->size = info->is_dir ? 0 : (uint64_t)st->st_size;
	info->mtime_ns = (int64_t)st->st_mtim.tv_sec * NS_PER_SEC +
			 st->st_mtim.tv_nsec;
	/* The version token.  ctime is in it because mtime can be set
	 * back (rsync --inplace -t rewrites a file keeping size and
	 * mtime) and ctime cannot; the block cache keys blocks by this
	 * token, so a rewritten file never meets its old blocks. */
	int64_t ctime_ns = (int64_t)st->st_ctim.tv_sec * NS_PER_SEC +
			   st->st_ctim.tv_nsec;
	snprintf(info->etag, sizeof(info->etag),
		 "%" PRIx64 ":%" PRIx64 ":%" PRIx64 ":%" PRIx64 ":%" PRIx64,
		 (uint64_t)st->st_dev, (uint64_t)st->st_ino,
		 (uint64_t)st->st_size, (uint64_t)info->mtime_ns,
		 (uint64_t)ctime_ns);
}

/* The source generation and crc32c a replicator stamped on the file. */
static void read_stamp(const struct px_root *rt, int fd, struct obj_info *info)
{
	char v[64];
	ssize_t n = fgetxattr(fd, rt->generation_xattr, v, sizeof(v) - 1);
	uint64_t g;
	if (n > 0 && parse_u64_digits(v, (size_t)n, &g))
		info->generation = g;
	n = fgetxattr(fd, "user." STORE_CRC32C_KEY, v, sizeof(v) - 1);
	if (n > 0) {
		v[n] = '\0';
		info->has_crc32c = base64_crc32c(v, &info->crc32c) == 0;
	}
}

/* Has the file behind fd changed since it was seen as st? */
static bool changed(int fd, const struct stat *was)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return true;
	return st.st_size != was->st_size ||
	       st.st_mtim.tv_sec != was->st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != was->st_mtim.tv_nsec ||
	       st.st_ctim.tv_sec != was->st_ctim.tv_sec ||
	       st.st_ctim.tv_nsec != was->st_ctim.tv_nsec;
}

/* ---- calls: what runs on a worker ---- */

enum px_op { PX_STAT, PX_OPEN, PX_READ, PX_LIST, PX_PUT, PX_PROBE, PX_CLOSE };

/* One listing entry gathered by a worker, replayed to the caller's cb. */
struct px_entry {
	char *name;
	bool is_prefix;
	struct obj_info info;
};

/*
 * One op's syscalls with everything they touch.  Inputs are set by the
 * caller before offload_run(); outputs are read by the caller only when
 * the call returned fn's result; release frees what is left in it.
 */
struct px_call {
	struct offload_call oc;   /* first: the worker sees only this */
	enum px_op op;
	struct px_root *rt;       /* a reference */
	char *name;               /* stat/open/put: the name; list: the dir */
	/* open: out; stat: out (as info); read: the handle's */
	int fd;
	struct stat st;
	struct obj_info info;
	/* read */
	struct px_file *f;        /* a reference */
	char *buf;
	size_t len;
	uint64_t off;
	ssize_t got;
	/* list */
	char *filter, *token, *next_token;
	unsigned max;
	struct px_entry *ents;
	size_t nents, alloc;
	/* put: fd is a dup of the caller's, stamp a copy */
	uint64_t size;
	/* probe */
	char message[256];
};

static int px_do_open(struct px_call *c)
{
	int fd = open_beneath(c->rt, c->name, c->op == PX_STAT ?
			      O_PATH | O_NOFOLLOW : O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd == -ELOOP ? -ENOENT : fd;
	int rc = fstat(fd, &c->st) < 0 ? -errno : 0;
	if (rc == 0 && !S_ISDIR(c->st.st_mode) && !S_ISREG(c->st.st_mode))
		rc = -ENOENT;   /* devices, sockets, symlinks: not objects */
	if (rc == 0 && c->op == PX_OPEN && !S_ISREG(c->st.st_mode))
		rc = -EISDIR;
	if (rc == 0) {
		info_from_stat(&c->st, &c->info);
		if (c->op == PX_OPEN)
			read_stamp(c->rt, fd, &c->info);
	}
	if (rc < 0 || c->op == PX_STAT)
		close(fd);
	else
		c->fd = fd;
	return rc;
}

static int px_do_read(struct px_call *c)
{
	int fd = c->f->fd;
	size_t got = 0;

	if (changed(fd, &c->st))
		return -ESTALE;
	while (got < c->len) {
		ssize_t n = pread(fd, c->buf + got, c->len - got,
				  (off_t)(c->off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* A writer that slipped in during the pread would mix versions. */
	if (changed(fd, &c->st))
		return -ESTALE;
	c->got = (ssize_t)got;
	return 0;
}

static void list_add(struct px_call *c, const char *name, bool is_prefix,
		     const struct stat *st)
{
	if (c->nents == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 64;
		c->ents = xrealloc(c->ents, c->alloc * sizeof(*c->ents));
	}
	struct px_entry *e = &c->ents[c->nents++];
	e->name = xstrdup(name);
	e->is_prefix = is_prefix;
	info_from_stat(st, &e->info);
}

static int px_do_list(struct px_call *c)
{
	struct strbuf name = STRBUF_INIT;
	size_t flen = strlen(c->filter);
	int rc = 0;

	int fd = open_beneath(c->rt, c->name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOTDIR ? -ENOENT : (fd == -ENOENT ? 0 : fd);
	DIR *d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (c->token) {
		char *end;
		long pos = strtol(c->token, &end, 10);
		if (*end) {
			rc = -EINVAL;
			goto out_closedir;
		}
		seekdir(d, pos);
	}
	for (;;) {
		if (c->nents >= c->max) {
			char tok[32];
			snprintf(tok, sizeof(tok), "%ld", telldir(d));
			c->next_token = xstrdup(tok);
			break;
		}
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			rc = errno ? -errno : 0;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (strncmp(de->d_name, c->filter, flen) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* vanished since readdir */
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			continue;
		strbuf_reset(&name);
		strbuf_addf(&name, "%s%s%s", c->name, de->d_name,
			    S_ISDIR(st.st_mode) ? "/" : "");
		list_add(c, name.buf, S_ISDIR(st.st_mode), &st);
	}
out_closedir:
	closedir(d);
	strbuf_release(&name);
	return rc;
}

/*
 * Open (creating as needed) the folder that holds name, one component at
 * a time beneath the root, never following a link.  *base gets the last
 * component.  -EINVAL for names that are no path (empty or "." / ".."
 * segments, a trailing '/').
 */
static int open_parent(const struct px_root *rt, const char *name,
		       const char **base)
{
	int dfd = dup(rt->rootfd);
	const char *p = name;
	char seg[NAME_MAX + 1];

	if (dfd < 0)
		return -errno;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(dfd);
			return -EINVAL;
		}
		if (!slash) {
			*base = p;
			return dfd;
		}
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (mkdirat(dfd, seg, 0755) < 0 && errno != EEXIST) {
			int e = -errno;
			close(dfd);
			return e;
		}
		int next = openat(dfd, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW |
				  O_CLOEXEC);
		int e = -errno;
		close(dfd);
		if (next < 0)
			return e == -ELOOP ? -ENOTDIR : e;
		dfd = next;
		p = slash + 1;
	}
}

/* Copy size bytes of in (from offset 0) to out. */
static int copy_bytes(int in, int out, uint64_t size)
{
	loff_t ioff = 0, ooff = 0;        /* equal: both files from byte 0 */
	while ((uint64_t)ioff < size) {
		ssize_t n = copy_file_range(in, &ioff, out, &ooff,
					    (size_t)(size - (uint64_t)ioff), 0);
		if (n > 0)
			continue;
		if (n == 0)
			return -EIO;           /* the source file is shorter */
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -errno;
		char buf[1 << 16];           /* no copy_file_range here */
		ssize_t r = pread(in, buf, sizeof(buf), ioff);
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		int rc = pwrite_full(out, buf, (size_t)r, (uint64_t)ooff);
		if (rc < 0)
			return rc;
		ioff += r;
		ooff += r;
	}
	return 0;
}

/* A temp file beside the copy, stamped, synced, then renamed over it:
 * readers see the old file or the whole stamped new one. */
static int px_do_put(struct px_call *c)
{
	const struct obj_info *stamp = &c->info;
	struct strbuf tmp = STRBUF_INIT, crc = STRBUF_INIT;
	const char *base = NULL;
	char gen[32];
	unsigned char rnd[6];
	int rc = 0;

	int dfd = open_parent(c->rt, c->name, &base);
	if (dfd < 0)
		return dfd;
	if (getentropy(rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	strbuf_addf(&tmp, ".%.200s.hylake-", base);
	for (size_t i = 0; i < sizeof(rnd); i++)
		strbuf_addf(&tmp, "%02x", rnd[i]);
	int tfd = openat(dfd, tmp.buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			 O_CLOEXEC, 0644);
	if (tfd < 0) {
		rc = -errno;
		goto out;
	}
	snprintf(gen, sizeof(gen), "%" PRIu64, stamp->generation);
	rc = copy_bytes(c->fd, tfd, c->size);
	if (rc == 0 && fsetxattr(tfd, c->rt->generation_xattr, gen, strlen(gen),
				 0) < 0)
		rc = -errno;
	if (rc == 0 && stamp->has_crc32c) {
		base64_crc32c_encode(&crc, stamp->crc32c);
		if (fsetxattr(tfd, "user." STORE_CRC32C_KEY, crc.buf, crc.len,
			      0) < 0)
			rc = -errno;
	}
	if (rc == 0 && fsync(tfd) < 0)
		rc = -errno;
	if (close(tfd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dfd, tmp.buf, dfd, base) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(dfd, tmp.buf, 0);
out:
	close(dfd);
	strbuf_release(&tmp);
	strbuf_release(&crc);
	return rc;
}

static int px_do_probe(struct px_call *c)
{
	struct stat st;
	int fd = open_beneath(c->rt, "", O_RDONLY | O_DIRECTORY);
	int rc = fd;
	if (fd >= 0)
		rc = fstat(fd, &st) == 0 && access(c->rt->root, R_OK | X_OK) == 0
		     ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static int px_call_fn(struct offload_call *oc)
{
	struct px_call *c = (struct px_call *)oc;
	switch (c->op) {
	case PX_STAT:
	case PX_OPEN:
		return px_do_open(c);
	case PX_READ:
		return px_do_read(c);
	case PX_LIST:
		return px_do_list(c);
	case PX_PUT:
		return px_do_put(c);
	case PX_PROBE:
		return px_do_probe(c);
	case PX_CLOSE:
		file_put(c->f);     /* maybe the last: close(2) here */
		c->f = NULL;
		return 0;
	}
	return -EINVAL;
}

/* The last reference: free what nobody took out of the call. */
static void px_call_release(struct offload_call *oc)
{
	struct px_call *c = (struct px_call *)oc;
	if (c->fd >= 0)
		close(c->fd);
	if (c->f)
		file_put(c->f);
	for (size_t i = 0; i < c->nents; i++)
		free(c->ents[i].name);
	free(c->ents);
	free(c->buf);
	free(c->name);
	free(c->filter);
	free(c->token);
	free(c->next_token);
	root_put(c->rt);
	free(c);
}

static struct px_call *px_call_new(struct posix_backend *px, enum px_op op,
				   const char *name)
{
	struct px_call *c = xcalloc(1, sizeof(*c));
	c->oc.fn = px_call_fn;
	c->oc.release = px_call_release;
	c->op = op;
	c->fd = -1;
	c->rt = px->rt;
	atomic_fetch_add(&px->rt->refs, 1);
	c->name = xstrdup(name ? name : "");
	return c;
}

/* Run c within dl.  The result; c is the caller's to read until it calls
 * offload_call_put(&c->oc). */
static int px_run(struct posix_backend *px, struct px_call *c,
		  const struct deadline *dl)
{
	int rc = offload_run(px->ol, &c->oc, dl);
	if (rc == -ETIMEDOUT && !deadline_expired(dl))
		log_debug("posix %s: %u calls stuck, not waiting for another",
			  px->base.name, offload_stuck(px->ol));
	else if (rc == -ETIMEDOUT)
		log_info("posix %s: no answer within the deadline (%s)",
			 px->base.name, c->name);
	return rc;
}

/* ---- the ops: build a call, wait for it, copy its results out ---- */

static int posix_stat(struct backend *b, const char *name,
		      struct obj_info *out, const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	struct px_call *c = px_call_new(px, PX_STAT, name);
	int rc = px_run(px, c, dl);
	if (rc == 0)
		*out = c->info;
	offload_call_put(&c->oc);
	return rc;
}

static int posix_list(struct backend *b, const struct list_req *req,
		      list_cb cb, void *arg, char **next_token,
		      const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	const char *slash = strrchr(req->prefix, '/');
	size_t dlen = slash ? (size_t)(slash - req->prefix) + 1 : 0;

	*next_token = NULL;
	if (!req->delimiter || strcmp(req->delimiter, "/") != 0)
		return -ENOTSUP;    /* recursive listings: not needed yet */
	struct px_call *c = px_call_new(px, PX_LIST, NULL);
	free(c->name);
	c->name = xstrndup(req->prefix, dlen);
	c->filter = xstrdup(req->prefix + dlen);
	c->token = req->token ? xstrdup(req->token) : NULL;
	c->max = req->max_keys ? req->max_keys : px->page_size;
	int rc = px_run(px, c, dl);
	/* Replay what the worker saw; an error (or a worker still stuck)
	 * delivers nothing. */
	if (rc == 0) {
		for (size_t i = 0; i < c->nents; i++) {
			struct list_entry e = { .name = c->ents[i].name,
						.is_prefix = c->ents[i].is_prefix,
						.info = c->ents[i].info };
			int crc = cb(arg, &e);
			if (crc < 0) {
				rc = crc;
				break;
			}
		}
	}
	if (rc == 0) {
		*next_token = c->next_token;
		c->next_token = NULL;
	}
	offload_call_put(&c->oc);
	return rc;
}

static int posix_open(struct backend *b, const char *name, struct bobj **out,
		      const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	struct px_call *c = px_call_new(px, PX_OPEN, name);
	int rc = px_run(px, c, dl);
	if (rc == 0) {
		struct posix_obj *o = xcalloc(1, sizeof(*o));
		bobj_init(&o->base, b, name);
		o->base.info = c->info;
		o->f = xcalloc(1, sizeof(*o->f));
		atomic_init(&o->f->refs, 1);
		o->f->fd = c->fd;
		c->fd = -1;         /* taken */
		o->st = c->st;
		*out = &o->base;
	}
	offload_call_put(&c->oc);
	return rc;
}

static ssize_t posix_read(struct bobj *ob, void *buf, size_t len,
			  uint64_t off, const struct deadline *dl)
{
	struct posix_obj *o = (struct posix_obj *)ob;
	struct posix_backend *px = to_px(ob->b);
	struct px_call *c = px_call_new(px, PX_READ, ob->name);
	c->f = o->f;
	atomic_fetch_add(&o->f->refs, 1);
	c->st = o->st;
	c->len = len;
	c->off = off;
	c->buf = xmalloc(len ? len : 1);    /* the worker's, never buf */
	ssize_t rc = px_run(px, c, dl);
	if (rc == 0) {
		memcpy(buf, c->buf, (size_t)c->got);
		rc = c->got;
	}
	offload_call_put(&c->oc);
	return rc;
}

/* The copy is read from fd on a worker, which may outlive this call: it
 * reads a descriptor of its own (dup), never the caller's. */
static int posix_put(struct backend *b, const char *name, int fd,
		     uint64_t size, const struct obj_info *stamp,
		     const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return -errno;
	struct px_call *c = px_call_new(px, PX_PUT, name);
	c->fd = dup_fd;
	c->size = size;
	c->info = *stamp;
	int rc = px_run(px, c, dl);
	if (rc < 0)
		log_warn("posix %s: cannot write '%s': %s", px->base.name, name,
			 strerror(-rc));
	offload_call_put(&c->oc);
	return rc;
}

/* close(2) on a dead NFS server blocks too: a worker does it. */
static void posix_close(struct bobj *ob)
{
	struct posix_obj *o = (struct posix_obj *)ob;
	struct px_call *c = px_call_new(to_px(ob->b), PX_CLOSE, NULL);
	c->f = o->f;                /* the handle's reference, handed over */
	offload_detach(to_px(ob->b)->ol, &c->oc);
	bobj_release(ob);
	free(o);
}

static void posix_probe(struct backend *b, struct probe_result *res,
			const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	int64_t t0 = mono_ns();

	memset(res, 0, sizeof(*res));
	struct px_call *c = px_call_new(px, PX_PROBE, NULL);
	res->err = px_run(px, c, dl);
	offload_call_put(&c->oc);
	if (res->err == 0)
		snprintf(res->message, sizeof(res->message), "folder readable");
	else
		snprintf(res->message, sizeof(res->message), "cannot read %s: %s",
			 px->rt->root, strerror(-res->err));
	res->latency_ms = (double)(mono_ns() - t0) / 1e6;
}

static void posix_destroy(struct backend *b)
{
	struct posix_backend *px = to_px(b);
	offload_destroy(px->ol);
	root_put(px->rt);
	backend_release(b);
	free(px);
}

static const struct backend_ops posix_ops = {
	.type = "posix",
	.stat = posix_stat,
	.list = posix_list,
	.open = posix_open,
	.read = posix_read,
	.close = posix_close,
	.put = posix_put,
	.probe = posix_probe,
	.destroy = posix_destroy,
};

/* Opening the root folder, on a worker too: a dead NFS server must not
 * hang the mount (or check) that builds the store. */
struct root_call {
	struct offload_call oc;   /* first */
	char *path;
	int fd;
};

static int root_call_fn(struct offload_call *oc)
{
	struct root_call *c = (struct root_call *)oc;
	c->fd = open(c->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return c->fd < 0 ? -errno : 0;
}

static void root_call_release(struct offload_call *oc)
{
	struct root_call *c = (struct root_call *)oc;
	if (c->fd >= 0)
		close(c->fd);
	free(c->path);
	free(c);
}

/* The root folder's descriptor, or -errno (-ETIMEDOUT: no answer within
 * the connect timeout). */
static int open_root(struct offload *ol, const char *path, int64_t ms)
{
	struct root_call *c = xcalloc(1, sizeof(*c));
	struct deadline dl = deadline_in_ms(ms > 0 ? ms : 5000);

	c->oc.fn = root_call_fn;
	c->oc.release = root_call_release;
	c->path = xstrdup(path);
	c->fd = -1;
	int rc = offload_run(ol, &c->oc, &dl);
	if (rc == 0) {
		rc = c->fd;
		c->fd = -1;
	}
	offload_call_put(&c->oc);
	return rc;
}

int posix_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen)
{
	struct strbuf root = STRBUF_INIT, desc = STRBUF_INIT;

	strbuf_adds(&root, c->path);
	if (c->prefix && *c->prefix)
		strbuf_addf(&root, "/%s", c->prefix);
	struct offload *ol = offload_create(PX_MAX_STUCK);
	int fd = open_root(ol, root.buf, c->net.connect_timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "posix path %s: %s", root.buf,
			 fd == -ETIMEDOUT ? "no answer (a hung NFS server?)"
					  : strerror(-fd));
		offload_destroy(ol);
		strbuf_release(&root);
		return fd;
	}
	struct posix_backend *px = xcalloc(1, sizeof(*px));
	struct px_root *rt = xcalloc(1, sizeof(*rt));
	atomic_init(&rt->refs, 1);
	rt->rootfd = fd;
	rt->root = strbuf_detach(&root, NULL);
	px->rt = rt;
	px->ol = ol;
	px->page_size = (unsigned)c->list_page_size;
	strbuf_addf(&desc, "user.%s", c->generation_key && *c->generation_key
		    ? c->generation_key : "goog-generation");
	rt->generation_xattr = strbuf_detach(&desc, NULL);
	strbuf_addf(&desc, "posix %s", rt->root);
	backend_init(&px->base, &posix_ops, c->name, desc.buf, 0);
	strbuf_release(&desc);
	*out = &px->base;
	return 0;
}
