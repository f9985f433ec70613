/*
 * fs.c - FUSE low-level operations over one store.
 *
 * Inodes stand for paths (fs/inode.c); open files hold a store handle
 * pinned to the version seen at open; open folders hold a dirstream.
 * Every request runs under a deadline of op_timeout and gets exactly one
 * reply.  What changes the tree (files written, removed; refusals of the
 * rest) is in fs_write.c: a read-only mount answers EROFS to all of it.
 *
 * File bytes come through the read path (cache/readpath.h): extents in
 * memory, the block cache, read-ahead.
 *
 * Kernel caches: an open that finds the version the inode had keeps the
 * kernel's pages (they hold that version's bytes); one that finds a new
 * version drops them and the inode's cached attributes, so the new size
 * shows at once.
 */
#include "fs/fs.h"
#include "fs/fs_impl.h"
#include "fs/dirstream.h"
#include "fs/inode.h"
#include "fs/names.h"
#include "fs/wfile.h"
#include "backends/backend.h"
#include "cache/readpath.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* An open folder: the stream and the lock that serialises its use. */
struct dir_handle {
	pthread_mutex_t lock;             /* guards ds */
	struct dirstream *ds;
	uint64_t hidden_reported;
};

void fs_close_file(struct fs *fs, fuse_ino_t ino, struct open_file *of)
{
	if (of->w) {
		fs_forget_writer(fs, of);
		wfile_destroy(of->w);
		free(of);
		return;
	}
	itable_close_pages(fs->inodes, ino);
	rfile_close(of->f);
	free(of);
}

void fs_fill_stat(const struct fs *fs, uint64_t ino,
		  const struct obj_info *info, struct stat *st)
{
	int64_t t = info->mtime_ns ? info->mtime_ns : fs->start_ns;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->conf.uid;
	st->st_gid = fs->conf.gid;
	if (info->is_dir) {
		st->st_mode = S_IFDIR | (fs->conf.dir_mode & 07777);
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (fs->conf.file_mode & 07777);
		st->st_nlink = 1;
		st->st_size = (off_t)info->size;
		st->st_blocks = (blkcnt_t)((info->size + 511) / 512);
	}
	/* Large I/O for files.  Not for folders: glibc sizes its getdents
	 * buffer from st_blksize, and 1 MiB would pull ~6,500 names (seven
	 * listing pages) into a reader that wanted the first few. */
	st->st_blksize = info->is_dir ? 4096 : 1 << 20;
	st->st_mtim.tv_sec = t / NS_PER_SEC;
	st->st_mtim.tv_nsec = t % NS_PER_SEC;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* "parent/name", or "name" under the root.  NULL for unusable names. */
char *fs_child_path(struct fs *fs, fuse_ino_t parent, const char *name)
{
	char *ppath;

	if (!names_segment_ok(name, strlen(name)))
		return NULL;
	if (parent == FUSE_ROOT_ID && backend_name_reserved(name))
		return NULL;                  /* hylake's own names */
	if (itable_get(fs->inodes, parent, &ppath, NULL) < 0)
		return NULL;
	struct strbuf sb = STRBUF_INIT;
	if (*ppath)
		strbuf_addf(&sb, "%s/", ppath);
	strbuf_adds(&sb, name);
	free(ppath);
	return strbuf_detach(&sb, NULL);
}

void fs_make_entry(struct fs *fs, uint64_t ino, const struct obj_info *info,
		   struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr_timeout = secs(fs->conf.attr_timeout_ms);
	e->entry_timeout = secs(fs->conf.entry_timeout_ms);
	fs_fill_stat(fs, ino, info, &e->attr);
}

/*
 * The largest read the kernel sends.  A spliced reply (reply_spliced) goes
 * through a pipe that must hold all of it plus libfuse's header and a page
 * per buffer, and a pipe grows to fs.pipe-max-size at most (1 MiB unless
 * raised, and only CAP_SYS_RESOURCE passes it): a 1 MiB read never fits,
 * and libfuse would copy every such reply instead.  512 KiB requests fit,
 * and each lies within one cache block.
 */
#define FS_MAX_READ (512u << 10)

static void hy_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	/* O_TRUNC comes with the open (replace under a precondition), not
	 * as a truncate before it */
	if (fs->conf.writable && (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC))
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Always readdirplus: attributes come with the listing for free. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* locks come here, to become leases (fs_lock.c) */
	if (fs->locks)
		conn->want |= conn->capable & (FUSE_CAP_FLOCK_LOCKS |
					       FUSE_CAP_POSIX_LOCKS);
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Replies from the block cache are spliced from its files (see
	 * hy_read).  Not SPLICE_MOVE: those pages belong to the cache
	 * files' page cache, and the reader's copy must not take them. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE) {
		conn->want |= FUSE_CAP_SPLICE_WRITE;
		fs->splice = true;
	}
	conn->want &= ~FUSE_CAP_SPLICE_MOVE;
	conn->max_read = FS_MAX_READ;     /* as the mount option says */
	conn->time_gran = 1;
}

static void hy_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct obj_info info;
	struct fuse_entry_param e;

	char *path = fs_child_path(fs, parent, name);
	if (!path) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = backend_stat(fs->src, path, &info, &dl);
	if (rc == -ENOENT && fs->conf.negative_timeout_ms > 0) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = secs(fs->conf.negative_timeout_ms);
		fuse_reply_entry(req, &e);
	} else if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		uint64_t ino = itable_lookup(fs->inodes, path, &info);
		fs_make_entry(fs, ino, &info, &e);
		/* a name whose version never changes may be kept longer, and
		 * a folder the store says lasts ("path/") */
		int64_t keep;
		if (info.is_dir) {
			struct strbuf folder = STRBUF_INIT;
			strbuf_addf(&folder, "%s/", path);
			keep = backend_cache_ms(fs->src, folder.buf);
			strbuf_release(&folder);
		} else {
			keep = backend_cache_ms(fs->src, path);
		}
		if (keep > fs->conf.entry_timeout_ms)
			e.entry_timeout = secs(keep);
		if (keep > fs->conf.attr_timeout_ms && e.attr_timeout > 0)
			e.attr_timeout = secs(keep);
		fuse_reply_entry(req, &e);
	}
	free(path);
}

static void hy_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	itable_forget(req_fs(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void hy_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = req_fs(req);
	for (size_t i = 0; i < count; i++)
		itable_forget(fs->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void hy_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct obj_info info;
	struct stat st;
	char *path;

	/* An open file shows the version it is pinned to; one being
	 * written, what it holds so far. */
	if (fi && fi->fh) {
		struct open_file *of = fi_file(fi);
		if (of->w)
			wfile_info(of->w, &info);
		else
			info = rfile_bobj(of->f)->info;
		fs_fill_stat(fs, ino, &info, &st);
		fuse_reply_attr(req, &st, secs(fs->conf.attr_timeout_ms));
		return;
	}
	if (fs->conf.writable && fs_writing_info(fs, ino, &info)) {
		fs_fill_stat(fs, ino, &info, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (itable_get(fs->inodes, ino, &path, &info) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the store is asked of a file's name, not of an inode the name
	 * has left (it keeps its version) */
	if (!info.is_dir && *path && itable_named(fs->inodes, ino)) {
		struct deadline dl = op_deadline(fs);
		struct obj_info fresh;
		int rc = backend_stat(fs->src, path, &fresh, &dl);
		if (rc < 0) {
			free(path);
			fuse_reply_err(req, -rc);
			return;
		}
		/* an inode read at its version keeps showing it (inode.h) */
		if (fresh.is_dir == info.is_dir &&
		    itable_update(fs->inodes, ino, &fresh, &info) !=
		    ITABLE_FROZEN)
			info = fresh;
	}
	free(path);
	fs_fill_stat(fs, ino, &info, &st);
	fuse_reply_attr(req, &st, secs(fs->conf.attr_timeout_ms));
}

static void hy_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct bobj *o;
	char *path;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		if (!fs->conf.writable)
			fuse_reply_err(req, EROFS);
		else
			fs_open_to_replace(req, ino, fi);
		return;
	}
	struct obj_info known;
	if (itable_get(fs->inodes, ino, &path, &known) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = backend_open_tail(fs->src, path,
				   readpath_open_tail(fs->conf.readpath, path,
						      &known), &o, &dl);
	free(path);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	enum page_use pages;
	bool changed;
	rc = itable_open(fs->inodes, ino, &o->info, &pages, &changed);
	if (rc < 0) {
		/* the inode stands for another version, still read through
		 * its pages: the name takes a new inode, and the kernel,
		 * refused ESTALE, looks it up again and retries the open */
		log_debug("'%s' (%s) opened at another inode's version",
			  o->name, o->info.etag);
		bobj_close(o);
		fuse_reply_err(req, -rc);
		return;
	}
	if (changed) {
		/* A new version: the kernel's size and times are stale, and
		 * its pages (dropped: keep_cache off).  offset -1: only the
		 * attributes, so no page lock is taken here. */
		log_debug("new version of '%s' (%s)", o->name, o->info.etag);
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	}
	struct open_file *of = xcalloc(1, sizeof(*of));
	of->f = rfile_open(fs->conf.readpath, o);
	fi->fh = (uint64_t)(uintptr_t)of;
	fi->keep_cache = pages == PAGES_KEEP;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_close_file(fs, ino, of);    /* the opener was interrupted */
}

static void reply_read_error(fuse_req_t req, const struct bobj *o, int err)
{
	if (err == -ESTALE)
		log_notice("'%s' changed while open; read refused (ESTALE)",
			   o->name);
	fuse_reply_err(req, -err);
}

/*
 * Reply from the block cache's files without copying the bytes through
 * this process: libfuse splices each piece into a pipe and the pipe into
 * /dev/fuse before fuse_reply_data returns, and the pieces' fds keep
 * their files' bytes exact until then (rfile_splice).  False when the
 * cache does not hold the whole range: nothing was replied.
 */
static bool reply_spliced(fuse_req_t req, struct rfile *f, uint64_t off,
			  size_t size)
{
	struct rsplice s;
	struct fuse_bufvec *bv;

	ssize_t n = rfile_splice(f, off, size, &s);
	if (n < 0)
		return false;
	if (n == 0) {
		fuse_reply_buf(req, NULL, 0);
		return true;
	}
	/* a fuse_bufvec ends in buf[1]: room for s.n of them */
	bv = xcalloc(1, sizeof(*bv) + (s.n - 1) * sizeof(bv->buf[0]));
	bv->count = s.n;
	for (unsigned i = 0; i < s.n; i++) {
		struct fuse_buf *b = &bv->buf[i];
		b->size = s.piece[i].len;
		b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		b->fd = s.piece[i].fd;
		b->pos = (off_t)s.piece[i].pos;
	}
	fuse_reply_data(req, bv, 0);
	free(bv);
	rfile_splice_release(&s);
	return true;
}

static void hy_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct rfile *f = fi_file(fi)->f;
	struct deadline dl = op_deadline(fs);
	(void)ino;

	if (!f) {                 /* open for writing: what it holds */
		fs_read_writing(req, fi_file(fi), size, off);
		return;
	}
	struct bobj *o = rfile_bobj(f);
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= o->info.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > o->info.size - (uint64_t)off)
		size = (size_t)(o->info.size - (uint64_t)off);
	if (fs->splice && reply_spliced(req, f, (uint64_t)off, size))
		return;
	/* Within one block: reply straight from the read path's memory. */
	struct rview v;
	ssize_t n = rfile_view(f, (uint64_t)off, size, &dl, &v);
	if (n != -EXDEV) {
		if (n < 0)
			reply_read_error(req, o, (int)n);
		else
			fuse_reply_buf(req, v.data, (size_t)n);
		rfile_view_release(f, &v);
		return;
	}
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = rfile_read(f, buf, size, (uint64_t)off, &dl);
	if (n < 0) {
		reply_read_error(req, o, (int)n);
	} else {
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
}

static void hy_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	(void)ino, (void)arg, (void)in_buf, (void)in_bufsz, (void)out_bufsz;

	if ((flags & FUSE_IOCTL_DIR) || cmd != HYLAKE_IOC_KEEP) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	struct rfile *f = fi_file(fi)->f;
	if (!f) {                 /* open for writing */
		fuse_reply_err(req, ENOTTY);
		return;
	}
	rfile_keep(f);
	fuse_reply_ioctl(req, 0, NULL, 0);
}

static void hy_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct open_file *of = fi_file(fi);
	/* a file written but never flushed is committed all the same (its
	 * error has no one to go to but the log) */
	if (of->w && !wfile_ended(of->w))
		fs_commit_file(req_fs(req), of);
	if (fi->flock_release)
		fs_locks_closed(req_fs(req), ino, fi->lock_owner, false);
	fs_close_file(req_fs(req), ino, of);
	fuse_reply_err(req, 0);
}

static void hy_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct obj_info info;
	char *path;

	if (itable_get(fs->inodes, ino, &path, &info) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!info.is_dir) {
		free(path);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct dir_handle *dh = xcalloc(1, sizeof(*dh));
	pthread_mutex_init(&dh->lock, NULL);
	dh->ds = dirstream_create(fs->src, path, fs->conf.list_page_size);
	free(path);
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		dirstream_destroy(dh->ds);
		pthread_mutex_destroy(&dh->lock);
		free(dh);
	}
}

/*
 * Offsets: "." is 1, ".." is 2, stream position p is p + 3.  The offset
 * the kernel passes is that of the last entry it consumed.
 */
#define DIR_FIRST_OFF 3
#define UNKNOWN_INO 0xffffffffULL    /* d_ino of plain readdir entries */

static size_t add_dot(fuse_req_t req, char *buf, size_t room, const char *name,
		      off_t next, bool plus, struct fs *fs, fuse_ino_t ino)
{
	struct obj_info dir = { .is_dir = true };
	struct fuse_entry_param e;

	fs_make_entry(fs, ino, &dir, &e);
	if (plus)
		return fuse_add_direntry_plus(req, buf, room, name, &e, next);
	return fuse_add_direntry(req, buf, room, name, &e.attr, next);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct dir_handle *dh = (struct dir_handle *)(uintptr_t)fi->fh;
	struct deadline dl = op_deadline(fs);
	char *buf = xcalloc(1, size);
	size_t used = 0;
	int rc = 0;
	char *dirpath = NULL;

	pthread_mutex_lock(&dh->lock);
	if (off < 1) {
		size_t n = add_dot(req, buf, size, ".", 1, plus, fs, ino);
		if (n > size)
			goto out_reply;
		used += n;
		off = 1;
	}
	if (off < 2) {
		size_t n = add_dot(req, buf + used, size - used, "..", 2, plus,
				   fs, ino);
		if (n > size - used)
			goto out_reply;
		used += n;
		off = 2;
	}
	/* off names the last entry consumed: continue with the next one. */
	rc = dirstream_seek(dh->ds, (uint64_t)off - (DIR_FIRST_OFF - 1), &dl);
	if (rc < 0)
		goto out_reply;
	if (itable_get(fs->inodes, ino, &dirpath, NULL) < 0)
		dirpath = xstrdup("");
	for (;;) {
		const struct dir_item *it;
		struct fuse_entry_param e;
		rc = dirstream_peek(dh->ds, &it, &dl);
		if (rc <= 0)
			break;
		off_t next = (off_t)(dirstream_pos(dh->ds) + DIR_FIRST_OFF);
		size_t n;
		fs_make_entry(fs, 0, &it->info, &e);
		if (plus) {
			/* Size first, so the inode is counted only if it fits. */
			n = fuse_add_direntry_plus(req, NULL, 0, it->name, &e, next);
			if (n > size - used)
				break;
			struct strbuf p = STRBUF_INIT;
			strbuf_addf(&p, "%s%s%s", dirpath, *dirpath ? "/" : "",
				    it->name);
			e.ino = itable_lookup(fs->inodes, p.buf, &it->info);
			e.attr.st_ino = e.ino;
			strbuf_release(&p);
			fuse_add_direntry_plus(req, buf + used, size - used,
					       it->name, &e, next);
		} else {
			e.attr.st_ino = UNKNOWN_INO;   /* no lookup: no inode */
			n = fuse_add_direntry(req, buf + used, size - used,
					      it->name, &e.attr, next);
			if (n > size - used)
				break;
		}
		used += n;
		dirstream_next(dh->ds);
	}
	uint64_t hidden = dirstream_hidden(dh->ds);
	if (hidden > dh->hidden_reported) {
		atomic_fetch_add(&fs->hidden, hidden - dh->hidden_reported);
		log_info("'%s/': %llu name(s) hidden (cannot be paths, or "
			 "shadowed by a folder of the same name)", dirpath,
			 (unsigned long long)(hidden - dh->hidden_reported));
		dh->hidden_reported = hidden;
	}
out_reply:
	pthread_mutex_unlock(&dh->lock);
	free(dirpath);
	/* An error after some entries: deliver them, report it next time. */
	if (rc < 0 && used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void hy_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void hy_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void hy_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dir_handle *dh = (struct dir_handle *)(uintptr_t)fi->fh;
	(void)ino;
	dirstream_destroy(dh->ds);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
	fuse_reply_err(req, 0);
}

static void hy_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	struct statvfs sv;
	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 1 << 20;
	sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)1 << 38;    /* 1 PiB: the lake is large */
	sv.f_files = (fsfilcnt_t)1 << 32;
	sv.f_namemax = NAMES_SEGMENT_MAX;
	sv.f_flag = fs->conf.writable ? 0 : ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

#define XATTR_PREFIX "user.hylake."
static const char xattr_names[] = XATTR_PREFIX "source\0" XATTR_PREFIX
				  "generation\0" XATTR_PREFIX "replicas\0"
				  XATTR_PREFIX "freshness";

/* Reply with value, honouring the size-probe protocol of getxattr(2). */
static void reply_xattr_value(fuse_req_t req, const char *v, size_t len,
			      size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

static const char root_xattr_names[] = XATTR_PREFIX "metrics";

static void hy_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = req_fs(req);
	struct obj_info info;
	if (ino == FUSE_ROOT_ID && fs->conf.metrics) {
		reply_xattr_value(req, root_xattr_names,
				  sizeof(root_xattr_names), size);
		return;
	}
	if (itable_get(fs->inodes, ino, NULL, &info) < 0 || info.is_dir) {
		reply_xattr_value(req, "", 0, size);
		return;
	}
	reply_xattr_value(req, xattr_names, sizeof(xattr_names), size);
}

/* user.hylake.* of a store that cannot explain itself: a single store
 * serves everything it holds. */
static int explain_single(const struct backend *b, const struct obj_info *info,
			  const char *attr, struct strbuf *v)
{
	if (!strcmp(attr, "source"))
		strbuf_adds(v, b->name);
	else if (!strcmp(attr, "generation") && info->generation)
		strbuf_addf(v, "%llu", (unsigned long long)info->generation);
	else if (!strcmp(attr, "replicas"))
		strbuf_addf(v, "%s=current", b->name);
	else if (!strcmp(attr, "freshness"))
		strbuf_adds(v, "strict (one store, no version map: every open "
			    "asks it)");
	else
		return -ENODATA;
	return 0;
}

static void hy_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct strbuf v = STRBUF_INIT;
	struct obj_info info;
	char *path;
	int rc;

	/* Only user.* names exist here.  "Not supported" for the other
	 * namespaces (security.selinux, system.posix_acl_*) lets tools that
	 * ask for them per file (ls -l) stop asking after the first. */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ino == FUSE_ROOT_ID && fs->conf.metrics &&
	    !strcmp(name, XATTR_PREFIX "metrics")) {
		fs->conf.metrics(fs->conf.metrics_arg, &v);
		reply_xattr_value(req, v.buf, v.len, size);
		strbuf_release(&v);
		return;
	}
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0 ||
	    itable_get(fs->inodes, ino, &path, &info) < 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	const char *attr = name + strlen(XATTR_PREFIX);
	if (!strcmp(attr, "lease"))
		rc = fs_locks_explain(fs, path, &v);
	else
		rc = info.is_dir ? -ENODATA
				 : backend_explain(fs->src, path, attr, &v,
						   &dl);
	if (rc == -ENOTSUP)
		rc = explain_single(fs->src, &info, attr, &v);
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_xattr_value(req, v.buf, v.len, size);
	strbuf_release(&v);
}

static const struct fuse_lowlevel_ops hy_ops = {
	.init = hy_init,
	.lookup = hy_lookup,
	.forget = hy_forget,
	.forget_multi = hy_forget_multi,
	.getattr = hy_getattr,
	.open = hy_open,
	.read = hy_read,
	.ioctl = hy_ioctl,
	.release = hy_release,
	.opendir = hy_opendir,
	.readdir = hy_readdir,
	.readdirplus = hy_readdirplus,
	.releasedir = hy_releasedir,
	.statfs = hy_statfs,
	.setattr = hy_setattr,
	.mknod = hy_mknod,
	.mkdir = hy_mkdir,
	.unlink = hy_unlink,
	.rmdir = hy_rmdir,
	.symlink = hy_symlink,
	.rename = hy_rename,
	.link = hy_link,
	.create = hy_create,
	.write = hy_write,
	.getxattr = hy_getxattr,
	.listxattr = hy_listxattr,
	.setxattr = hy_setxattr,
	.removexattr = hy_removexattr,
};

struct fs *fs_create(struct backend *src, const struct fs_conf *conf)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));
	fs->src = src;
	fs->conf = *conf;
	fs->inodes = itable_create();
	fs->start_ns = wall_ns();
	pthread_mutex_init(&fs->wlock, NULL);
	if (conf->writable && conf->leases)
		fs->locks = fs_locks_create(conf->leases);
	return fs;
}

/*
 * The kernel reads ahead of a FUSE file by its mount's read_ahead_kb
 * (128 KiB unless told), in requests of at most that size: with more, a
 * file read in order arrives in 1 MiB requests instead of 128 KiB ones.
 * Only root may set it; failing to is not an error.  kb 0 leaves it.
 * Returns the KiB in effect, 0 when they cannot be told.
 */
static unsigned kernel_read_ahead(const char *mountpoint, unsigned kb)
{
	char *real = realpath(mountpoint, NULL);
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[4096], dev[32] = "", path[96];
	unsigned maj, min;

	while (real && mi && fgets(line, sizeof(line), mi)) {
		char mp[4096];
		/* id parent MAJ:MIN root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
		    strcmp(mp, real) == 0 && strstr(line, " fuse.hylake "))
			snprintf(dev, sizeof(dev), "%u:%u", maj, min);
	}
	if (mi)
		fclose(mi);
	free(real);
	if (!*dev)
		return 0;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	FILE *f = kb ? fopen(path, "w") : NULL;
	bool ok = f && fprintf(f, "%u\n", kb) > 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (kb && !ok)
		log_info("cannot set the kernel's read-ahead (%s): %s; reads "
			 "arrive in 128 KiB requests", path, strerror(errno));
	else if (kb)
		log_debug("kernel read-ahead of %s: %u KiB", mountpoint, kb);
	unsigned now = 0;
	f = fopen(path, "r");
	if (!f || fscanf(f, "%u", &now) != 1)
		now = 0;
	if (f)
		fclose(f);
	return now;
}

int fs_mount(struct fs *fs, const char *mountpoint, const char *source,
	     const char *fuse_opts, char *err, size_t errlen)
{
	struct strbuf opts = STRBUF_INIT;
	char *argv[] = { "hylake", "-o", NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);

	/* fuse_opt splits on ',': escape it (and '\\') in the source. */
	/* Read-only unless writable: the kernel refuses writes before they
	 * reach us. */
	if (!fs->conf.writable)
		strbuf_adds(&opts, "ro,");
	strbuf_addf(&opts, "max_read=%u,", FS_MAX_READ);
	strbuf_adds(&opts, "subtype=hylake,fsname=");
	for (const char *c = source; *c; c++) {
		if (*c == ',' || *c == '\\')
			strbuf_addch(&opts, '\\');
		strbuf_addch(&opts, *c);
	}
	if (fuse_opts && *fuse_opts)
		strbuf_addf(&opts, ",%s", fuse_opts);
	argv[2] = opts.buf;
	/* flush and fsync commit files written; a read-only mount leaves
	 * them out, so the kernel never asks (libfuse copies the table) */
	struct fuse_lowlevel_ops ops = hy_ops;
	if (fs->conf.writable) {
		ops.flush = hy_flush;
		ops.fsync = hy_fsync;
	}
	if (fs->locks) {
		ops.flock = hy_flock;
		ops.getlk = hy_getlk;
		ops.setlk = hy_setlk;
	}
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	strbuf_release(&opts);
	if (!fs->se) {
		snprintf(err, errlen, "invalid FUSE options '%s'",
			 fuse_opts ? fuse_opts : "");
		return -EINVAL;
	}
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		snprintf(err, errlen, "cannot mount on %s", mountpoint);
		fuse_session_destroy(fs->se);
		fs->se = NULL;
		return -EIO;
	}
	fs->mounted = true;
	return 0;
}

void fs_mount_ready(struct fs *fs, const char *mountpoint)
{
	/* After FUSE's INIT: its reply sets the read-ahead too.  The read
	 * path fetches what the kernel will ask past a Parquet chunk. */
	unsigned kb = kernel_read_ahead(mountpoint,
					fs->conf.kernel_read_ahead_kb);
	readpath_set_kernel_read_ahead(fs->conf.readpath, (uint64_t)kb << 10);
}

void fs_changed(struct fs *fs, const char *name)
{
	fs_forget_name(fs, name, false);
}

void fs_forget_name(struct fs *fs, const char *name, bool held_too)
{
	if (!fs->se || !fs->mounted || !*name)
		return;
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	char *parent = xstrndup(name, slash ? (size_t)(slash - name) : 0);
	uint64_t pino = *parent ? itable_find(fs->inodes, parent) : INODE_ROOT;
	uint64_t ino = itable_find(fs->inodes, name);

	/* the name, so the next lookup asks again (a new file, a deleted
	 * one); then its attributes and pages, unless handles read them
	 * (and held_too does not say otherwise):
	 * the inode keeps its version while they do (the next lookup of
	 * the name takes a new one), and an invalidation would only race
	 * their reads.  A page read that ends past the version's end
	 * shrinks the kernel's size to where its reply ended, but only
	 * when the attributes did not change while the read was out;
	 * after an invalidation the read returns the size the kernel held
	 * before, the missing bytes as zeros. */
	if (pino)
		fuse_lowlevel_notify_inval_entry(fs->se, pino, base,
						 strlen(base));
	if (ino && (held_too || !itable_paged(fs->inodes, ino)))
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	free(parent);
}

int fs_run(struct fs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (fuse_set_signal_handlers(fs->se) != 0) {
		fuse_loop_cfg_destroy(cfg);
		return -EIO;
	}
	fuse_loop_cfg_set_max_threads(cfg, fs->conf.threads);
	rc = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_remove_signal_handlers(fs->se);
	log_info("stopped serving (%llu unsafe or shadowed name(s) hidden)",
		 (unsigned long long)atomic_load(&fs->hidden));
	return rc < 0 ? rc : 0;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	fs_abandon_writers(fs);
	fs_locks_destroy(fs->locks);
	itable_destroy(fs->inodes);
	pthread_mutex_destroy(&fs->wlock);
	free(fs);
}
