/*
 * posix.c - the posix store.
 *
 * Listings read one directory with readdir; the continuation token is the
 * telldir() cookie of the next entry, so a huge directory is paged without
 * ever being held in memory.  Entries come in directory order (not
 * sorted); a name is either a file or a folder, never both.
 */
#include "backends/posix/posix.h"
#include "backends/backend.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/base64.h"
#include "backends/util/fdio.h"

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
#include <unistd.h>

struct posix_backend {
	struct backend base;
	int rootfd;
	char *root;
	char *generation_xattr;   /* "user.goog-generation" */
	unsigned page_size;
};

struct posix_obj {
	struct bobj base;
	int fd;
	struct stat st;         /* as seen at open */
};

static struct posix_backend *to_px(struct backend *b)
{
	return (struct posix_backend *)b;
}

/* Open name beneath the root; never follows a path outside it. */
static int open_beneath(struct posix_backend *px, const char *name, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	const char *path = *name ? name : ".";
	int fd = (int)syscall(SYS_openat2, px->rootfd, path, &how, sizeof(how));
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

static int posix_stat(struct backend *b, const char *name,
		      struct obj_info *out, const struct deadline *dl)
{
	struct stat st;
	(void)dl;
	int fd = open_beneath(to_px(b), name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return fd == -ELOOP ? -ENOENT : fd;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return -ENOENT;     /* devices, sockets, symlinks: not objects */
	info_from_stat(&st, out);
	return 0;
}

static int posix_list(struct backend *b, const struct list_req *req,
		      list_cb cb, void *arg, char **next_token,
		      const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	const char *slash = strrchr(req->prefix, '/');
	size_t dlen = slash ? (size_t)(slash - req->prefix) + 1 : 0;
	const char *filter = req->prefix + dlen;
	size_t flen = strlen(filter);
	unsigned max = req->max_keys ? req->max_keys : px->page_size;
	char *dir = xstrndup(req->prefix, dlen);
	struct strbuf name = STRBUF_INIT;
	unsigned n = 0;
	int rc = 0;
	(void)dl;

	*next_token = NULL;
	if (!req->delimiter || strcmp(req->delimiter, "/") != 0) {
		free(dir);
		return -ENOTSUP;    /* recursive listings: not needed yet */
	}
	int fd = open_beneath(px, dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		free(dir);
		return fd == -ENOTDIR ? -ENOENT : (fd == -ENOENT ? 0 : fd);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		free(dir);
		return rc;
	}
	if (req->token) {
		char *end;
		long pos = strtol(req->token, &end, 10);
		if (*end) {
			rc = -EINVAL;
			goto out_closedir;
		}
		seekdir(d, pos);
	}
	for (;;) {
		if (n >= max) {
			char tok[32];
			snprintf(tok, sizeof(tok), "%ld", telldir(d));
			*next_token = xstrdup(tok);
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
		if (strncmp(de->d_name, filter, flen) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* vanished since readdir */
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			continue;
		strbuf_reset(&name);
		strbuf_addf(&name, "%s%s%s", dir, de->d_name,
			    S_ISDIR(st.st_mode) ? "/" : "");
		struct list_entry e = { .name = name.buf,
					.is_prefix = S_ISDIR(st.st_mode) };
		info_from_stat(&st, &e.info);
		n++;
		rc = cb(arg, &e);
		if (rc < 0)
			break;
	}
out_closedir:
	closedir(d);
	strbuf_release(&name);
	free(dir);
	return rc;
}

/* The source generation and crc32c a replicator stamped on the file. */
static void read_stamp(const struct posix_backend *px, int fd,
		       struct obj_info *info)
{
	char v[64];
	ssize_t n = fgetxattr(fd, px->generation_xattr, v, sizeof(v) - 1);
	uint64_t g;
	if (n > 0 && parse_u64_digits(v, (size_t)n, &g))
		info->generation = g;
	n = fgetxattr(fd, "user." STORE_CRC32C_KEY, v, sizeof(v) - 1);
	if (n > 0) {
		v[n] = '\0';
		info->has_crc32c = base64_crc32c(v, &info->crc32c) == 0;
	}
}

static int posix_open(struct backend *b, const char *name, struct bobj **out,
		      const struct deadline *dl)
{
	struct stat st;
	(void)dl;
	int fd = open_beneath(to_px(b), name, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd == -ELOOP ? -ENOENT : fd;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENOENT;
	}
	struct posix_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, name);
	info_from_stat(&st, &o->base.info);
	read_stamp(to_px(b), fd, &o->base.info);
	o->fd = fd;
	o->st = st;
	*out = &o->base;
	return 0;
}

/* Has the file behind the descriptor changed since open? */
static bool changed(const struct posix_obj *o)
{
	struct stat st;
	if (fstat(o->fd, &st) < 0)
		return true;
	return st.st_size != o->st.st_size ||
	       st.st_mtim.tv_sec != o->st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != o->st.st_mtim.tv_nsec ||
	       st.st_ctim.tv_sec != o->st.st_ctim.tv_sec ||
	       st.st_ctim.tv_nsec != o->st.st_ctim.tv_nsec;
}

static ssize_t posix_read(struct bobj *ob, void *buf, size_t len,
			  uint64_t off, const struct deadline *dl)
{
	struct posix_obj *o = (struct posix_obj *)ob;
	size_t got = 0;
	(void)dl;

	if (changed(o))
		return -ESTALE;
	while (got < len) {
		ssize_t n = pread(o->fd, (char *)buf + got, len - got,
				  (off_t)(off + got));
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
	if (changed(o))
		return -ESTALE;
	return (ssize_t)got;
}

/*
 * Open (creating as needed) the folder that holds name, one component at
 * a time beneath the root, never following a link.  *base gets the last
 * component.  -EINVAL for names that are no path (empty or "." / ".."
 * segments, a trailing '/').
 */
static int open_parent(struct posix_backend *px, const char *name,
		       const char **base)
{
	int dfd = dup(px->rootfd);
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
static int posix_put(struct backend *b, const char *name, int fd,
		     uint64_t size, const struct obj_info *stamp,
		     const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	struct strbuf tmp = STRBUF_INIT, crc = STRBUF_INIT;
	const char *base = NULL;
	char gen[32];
	unsigned char rnd[6];
	int rc = 0;
	(void)dl;

	int dfd = open_parent(px, name, &base);
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
	rc = copy_bytes(fd, tfd, size);
	if (rc == 0 && fsetxattr(tfd, px->generation_xattr, gen, strlen(gen),
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
	if (rc < 0)
		log_warn("posix %s: cannot write '%s': %s", px->base.name, name,
			 strerror(-rc));
	close(dfd);
	strbuf_release(&tmp);
	strbuf_release(&crc);
	return rc;
}

static void posix_close(struct bobj *ob)
{
	struct posix_obj *o = (struct posix_obj *)ob;
	close(o->fd);
	bobj_release(ob);
	free(o);
}

static void posix_probe(struct backend *b, struct probe_result *res,
			const struct deadline *dl)
{
	struct posix_backend *px = to_px(b);
	struct stat st;
	int64_t t0 = mono_ns();
	(void)dl;

	memset(res, 0, sizeof(*res));
	int fd = open_beneath(px, "", O_RDONLY | O_DIRECTORY);
	if (fd >= 0 && fstat(fd, &st) == 0 && access(px->root, R_OK | X_OK) == 0)
		snprintf(res->message, sizeof(res->message), "folder readable");
	else {
		res->err = fd < 0 ? fd : -errno;
		snprintf(res->message, sizeof(res->message), "cannot read %s: %s",
			 px->root, strerror(-res->err));
	}
	if (fd >= 0)
		close(fd);
	res->latency_ms = (double)(mono_ns() - t0) / 1e6;
}

static void posix_destroy(struct backend *b)
{
	struct posix_backend *px = to_px(b);
	close(px->rootfd);
	free(px->root);
	free(px->generation_xattr);
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

int posix_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen)
{
	struct strbuf root = STRBUF_INIT, desc = STRBUF_INIT;

	strbuf_adds(&root, c->path);
	if (c->prefix && *c->prefix)
		strbuf_addf(&root, "/%s", c->prefix);
	int fd = open(root.buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "posix path %s: %s", root.buf, strerror(e));
		strbuf_release(&root);
		return -e;
	}
	struct posix_backend *px = xcalloc(1, sizeof(*px));
	px->rootfd = fd;
	px->root = strbuf_detach(&root, NULL);
	px->page_size = (unsigned)c->list_page_size;
	strbuf_addf(&desc, "user.%s", c->generation_key && *c->generation_key
		    ? c->generation_key : "goog-generation");
	px->generation_xattr = strbuf_detach(&desc, NULL);
	strbuf_addf(&desc, "posix %s", px->root);
	backend_init(&px->base, &posix_ops, c->name, desc.buf, 0);
	strbuf_release(&desc);
	*out = &px->base;
	return 0;
}
