/*
 * fs_write.c - what changes the tree through a writable mount.
 *
 * A file open for writing is a wfile (fs/wfile.h) streamed to the store,
 * committed at a close by the process that opened it (hy_flush), at
 * fsync, or at the last release, under the precondition taken at open:
 * absent (ifGenerationMatch=0) for a new name, O_EXCL or not, and the
 * generation seen at open for a replaced one (O_TRUNC).
 * close() answers the commit's error: EEXIST when another host created
 * the name first, ESTALE when the object changed meanwhile, EIO, ...
 * Write handles use direct I/O, so the kernel's pages, which other
 * handles may read an older version through, never hold their bytes.
 * unlink removes the generation the mount knows.  Links, renames and
 * folders are fs_tree.c's.  Modes, owners and times are accepted and
 * change nothing (the bucket keeps none).  Symlinks, special files and
 * xattrs answer ENOTSUP; a read-only mount answers EROFS to all of it.
 */
#include "fs/fs_impl.h"
#include "fs/wfile.h"
#include "fs/staging.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process (thread group) of the thread that sent req; 0 when /proc
 * cannot say (another pid namespace, no permission). */
static pid_t req_process(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[64], line[128];
	int tgid = 0;

	if (!ctx || ctx->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	if (f)
		fclose(f);
	return (pid_t)tgid;
}

/* of (open for writing) leaves fs.writing. */
void fs_forget_writer(struct fs *fs, struct open_file *of)
{
	pthread_mutex_lock(&fs->wlock);
	for (struct open_file **p = &fs->writing; *p; p = &(*p)->next) {
		if (*p == of) {
			*p = of->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->wlock);
}

void fs_abandon_writers(struct fs *fs)
{
	pthread_mutex_lock(&fs->wlock);
	struct open_file *of = fs->writing;
	fs->writing = NULL;
	pthread_mutex_unlock(&fs->wlock);
	while (of) {
		struct open_file *next = of->next;
		wfile_abandon(of->w);
		free(of);
		of = next;
	}
}

/* Whether ino is being written (a file not committed yet), and then
 * what it holds so far: the store knows nothing of it yet. */
bool fs_writing_info(struct fs *fs, uint64_t ino, struct obj_info *out)
{
	bool found = false;
	pthread_mutex_lock(&fs->wlock);
	for (struct open_file *of = fs->writing; of && !found; of = of->next) {
		if (of->ino == ino && !wfile_ended(of->w)) {
			wfile_info(of->w, out);
			found = true;
		}
	}
	pthread_mutex_unlock(&fs->wlock);
	return found;
}

/* A file written under a lock whose lease is lost does not land: the
 * lease no longer keeps other hosts out, so its bytes could race theirs
 * (close answers ENOLCK, as its writes do). */
static void commit_guard(struct fs *fs, struct open_file *of)
{
	int lost = fs_locks_guard(fs, of->ino);
	if (lost < 0)
		wfile_break(of->w, lost);
}

int fs_commit_writing(struct fs *fs, uint64_t ino, const struct deadline *dl)
{
	struct obj_info info;
	int rc = 0;

	pthread_mutex_lock(&fs->wlock);
	for (struct open_file *of = fs->writing; of; of = of->next) {
		if (of->ino == ino && !wfile_ended(of->w)) {
			commit_guard(fs, of);
			rc = wfile_commit(of->w, &info, dl);
			break;
		}
	}
	pthread_mutex_unlock(&fs->wlock);
	return rc;
}

/*
 * Reply to an open or a create with a file being written: direct I/O, so
 * the kernel's pages (which may hold a version other handles read) never
 * see its bytes.
 */
static void reply_writing(fuse_req_t req, uint64_t ino, struct wfile *w,
			  struct fuse_file_info *fi,
			  const struct fuse_entry_param *e)
{
	struct fs *fs = req_fs(req);
	struct open_file *of = xcalloc(1, sizeof(*of));
	of->w = w;
	of->ino = ino;
	of->opener = req_process(req);
	pthread_mutex_lock(&fs->wlock);
	of->next = fs->writing;
	fs->writing = of;
	pthread_mutex_unlock(&fs->wlock);
	fi->fh = (uint64_t)(uintptr_t)of;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	int rc = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
	if (rc == -ENOENT) {            /* the opener was interrupted */
		if (e)
			itable_forget(fs->inodes, ino, 1);
		fs_close_file(fs, ino, of);
	}
}

/*
 * Open an existing file for writing, under the generation seen now as
 * the upload's precondition, so a change made meanwhile elsewhere is
 * never overwritten (close() answers ESTALE).  O_TRUNC without O_RDWR
 * replaces it by a streamed file; O_TRUNC with O_RDWR, by a staged one;
 * without O_TRUNC (or with O_APPEND) its bytes are staged at the first
 * change, and until then read from the version opened.  No staging
 * folder: only O_TRUNC (ENOTSUP).
 */
void fs_open_to_replace(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	bool trunc = fi->flags & O_TRUNC;
	struct wfile_how how = {
		.staging = fs->conf.staging,
		.append = fi->flags & O_APPEND,
		.stage = trunc && (fi->flags & O_ACCMODE) == O_RDWR,
		.written = fs->conf.written,
		.written_arg = fs->conf.written_arg,
	};
	struct bobj *o;
	struct wfile *w;
	char *path;

	if (itable_get(fs->inodes, ino, &path, NULL) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = backend_open(fs->src, path, &o, &dl);
	if (rc == 0) {
		struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
					 .generation = o->info.generation };
		rc = o->info.is_dir ? -EISDIR : o->info.generation ? 0 : -ENOTSUP;
		if (rc == 0 && !trunc) {
			how.base = o;          /* the wfile's now */
			o = NULL;
		}
		if (o)
			bobj_close(o);
		if (rc == 0)
			rc = wfile_open_with(fs->src, path, &pre, &how, &dl,
					     &w);
	}
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_writing(req, ino, w, fi, NULL);
}

void fs_read_writing(fuse_req_t req, struct open_file *of, size_t size,
		     off_t off)
{
	struct deadline dl = op_deadline(req_fs(req));
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = wfile_read(of->w, buf, size, (uint64_t)off, &dl);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* What a mount cannot do: EROFS when read-only, ENOTSUP when writable
 * (symlinks, special files, xattrs: a bucket holds none). */
static void refuse(fuse_req_t req)
{
	fuse_reply_err(req, req_fs(req)->conf.writable ? ENOTSUP : EROFS);
}

void hy_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct open_file *of = fi_file(fi);
	struct deadline dl = op_deadline(fs);

	if (!of->w) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int lost = fs_locks_guard(fs, ino);   /* not under a lost lease */
	if (lost < 0) {
		fuse_reply_err(req, -lost);
		return;
	}
	ssize_t n = wfile_write(of->w, buf, size, (uint64_t)off, &dl);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * The file written through of appears now, or not at all.  After a good
 * commit the kernel's attributes of the inode are dropped (offset -1: no
 * page lock is taken, and a writer has no pages), so the next stat asks
 * the store, which the router has told of the new generation.  After a
 * failed create, its name goes too: the kernel would show a file that
 * does not exist.  No lock of the kernel's is held while a flush or
 * fsync waits for its reply, so the notices cannot deadlock it.
 */
int fs_commit_file(struct fs *fs, struct open_file *of)
{
	struct deadline dl = op_deadline(fs);
	struct obj_info info;
	char *path = NULL;

	if (wfile_ended(of->w))
		return wfile_commit(of->w, NULL, &dl);
	commit_guard(fs, of);
	int rc = wfile_commit(of->w, &info, &dl);
	itable_get(fs->inodes, of->ino, &path, NULL);
	if (rc < 0)
		log_notice("'%s': not written: %s", path ? path : "?",
			   strerror(-rc));
	else
		log_debug("'%s': written, generation %llu, %llu bytes",
			  path ? path : "?",
			  (unsigned long long)info.generation,
			  (unsigned long long)info.size);
	if (rc < 0 && path)
		fs_forget_name(fs, path, true);
	else if (rc == 0)
		fuse_lowlevel_notify_inval_inode(fs->se, of->ino, -1, 0);
	free(path);
	return rc;
}

/*
 * close(): commit the file written; its error is close()'s.  Every close
 * of a descriptor that shares the open file flushes, also in processes
 * that only inherited it: a child exiting, or closing it at exec, while
 * the writer goes on (`(cmd1; cmd2) > f`).  Only the process that opened
 * the file commits at close; if it never closes it, release commits.
 * Open for reading there is nothing to do.
 */
void hy_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = fi_file(fi);
	/* the fcntl locks of the closing process go with any close */
	fs_locks_closed(req_fs(req), ino, fi->lock_owner, true);
	if (!of->w) {
		fuse_reply_err(req, 0);
		return;
	}
	pid_t p = req_process(req);
	if (of->opener && p && p != of->opener) {
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req, -fs_commit_file(req_fs(req), of));
}

/* fsync(): the file written appears now, whoever asks (later writes
 * fail: EBADF). */
void hy_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	struct open_file *of = fi_file(fi);
	(void)ino;
	(void)datasync;
	fuse_reply_err(req, of->w ? -fs_commit_file(req_fs(req), of) : 0);
}

/* The path of a name to create or remove, or NULL after replying with
 * the error (EROFS on a read-only mount; bad, an unusable name). */
char *fs_changed_path(fuse_req_t req, fuse_ino_t parent, const char *name,
			  int bad)
{
	struct fs *fs = req_fs(req);
	if (!fs->conf.writable) {
		fuse_reply_err(req, EROFS);
		return NULL;
	}
	char *path = fs_child_path(fs, parent, name);
	if (!path)
		fuse_reply_err(req, bad);
	return path;
}

void hy_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct fuse_entry_param e;
	struct wfile *w;
	(void)mode;

	char *path = fs_changed_path(req, parent, name, EINVAL);
	if (!path)
		return;
	/* The kernel found no such name: the upload must find none either
	 * (ifGenerationMatch=0), O_EXCL or not, so a racing creator
	 * elsewhere is never overwritten. */
	struct write_pre pre = { .kind = WRITE_PRE_ABSENT };
	/* Opened to read as well: staged, so reads see its bytes. */
	struct wfile_how how = {
		.staging = fs->conf.staging,
		.append = fi->flags & O_APPEND,
		.stage = fs->conf.staging &&
			 (fi->flags & O_ACCMODE) == O_RDWR,
		.written = fs->conf.written,
		.written_arg = fs->conf.written_arg,
	};
	int rc = wfile_open_with(fs->src, path, &pre, &how, &dl, &w);
	if (rc < 0) {
		free(path);
		fuse_reply_err(req, -rc);
		return;
	}
	struct obj_info info;
	wfile_info(w, &info);
	uint64_t ino = itable_lookup(fs->inodes, path, &info);
	free(path);
	fs_make_entry(fs, ino, &info, &e);
	e.attr_timeout = 0;       /* its size grows: ask (writing_info) */
	reply_writing(req, ino, w, fi, &e);
}

int fs_stat_file(struct fs *fs, const char *path, int dir_err,
		 struct obj_info *info, const struct deadline *dl)
{
	int rc = backend_stat(fs->src, path, info, dl);
	if (rc == 0 && info->is_dir)
		return dir_err;
	if (rc == 0 && !info->generation)
		return -ENOTSUP;       /* no version to pin a write to */
	return rc;
}

void hy_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct obj_info info;

	char *path = fs_changed_path(req, parent, name, ENOENT);
	if (!path)
		return;
	/* Remove what the mount knows, and nothing newer: the generation
	 * is the removal's precondition (a change since: ESTALE). */
	int rc = fs_stat_file(fs, path, -EISDIR, &info, &dl);
	if (rc == 0) {
		struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
					 .generation = info.generation };
		rc = backend_remove(fs->src, path, &pre, &dl);
	}
	free(path);
	fuse_reply_err(req, -rc);
}

/*
 * truncate(2) of ino without a handle: the file being written as ino,
 * if any; else its current version staged, cut, and committed at once.
 */
static int truncate_path(struct fs *fs, fuse_ino_t ino, uint64_t size,
			 struct obj_info *info, const struct deadline *dl)
{
	struct wfile *w = NULL;
	char *path;
	struct bobj *o;
	int rc = -ENOENT;

	pthread_mutex_lock(&fs->wlock);
	for (struct open_file *of = fs->writing; of; of = of->next) {
		if (of->ino == ino && !wfile_ended(of->w)) {
			rc = wfile_truncate(of->w, size, dl);
			wfile_info(of->w, info);
			w = of->w;
			break;
		}
	}
	pthread_mutex_unlock(&fs->wlock);
	if (w)
		return rc;
	if (itable_get(fs->inodes, ino, &path, NULL) < 0)
		return -ENOENT;
	rc = backend_open(fs->src, path, &o, dl);
	if (rc == 0 && (o->info.is_dir || !o->info.generation)) {
		rc = o->info.is_dir ? -EISDIR : -ENOTSUP;
		bobj_close(o);
	}
	if (rc == 0 && o->info.size == size) {
		*info = o->info;          /* nothing to cut */
		bobj_close(o);
		free(path);
		return 0;
	}
	if (rc == 0) {
		struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
					 .generation = o->info.generation };
		struct wfile_how how = { .staging = fs->conf.staging,
					 .base = o,
					 .written = fs->conf.written,
					 .written_arg = fs->conf.written_arg };
		rc = wfile_open_with(fs->src, path, &pre, &how, dl, &w);
	}
	if (rc == 0)
		rc = wfile_truncate(w, size, dl);
	if (rc == 0)
		rc = wfile_commit(w, info, dl);
	wfile_destroy(w);
	if (rc == 0)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	else
		log_notice("'%s': not cut to %llu bytes: %s", path,
			   (unsigned long long)size, strerror(-rc));
	free(path);
	return rc;
}

/*
 * On a writable mount: a new size cuts or extends a file open for
 * writing (a size it has already changes nothing: the truncate to 0
 * just after an O_TRUNC open or a create, as shells and cp do), staging
 * it when it is not yet; truncate(2) of a file not open for writing is
 * an open, the cut and a commit, under the generation seen.  Modes,
 * owners and times are accepted and change nothing: a bucket keeps no
 * modes or owners (the mount shows its configured ones), and a file's
 * times are when GCS made its generation.  So `cp -p`, `rsync -a` and
 * `touch` succeed.
 */
void hy_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	const int kept = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			 FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			 FUSE_SET_ATTR_CTIME | FUSE_SET_ATTR_MODE |
			 FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID;
	struct deadline dl = op_deadline(fs);
	struct obj_info info;
	int rc = 0;

	if (!fs->conf.writable) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (to_set & ~(kept | FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (!(to_set & FUSE_SET_ATTR_SIZE)) {
		if (fi && fi->fh && fi_file(fi)->w)
			wfile_info(fi_file(fi)->w, &info);
		else if (!fs_writing_info(fs, ino, &info)) {
			hy_getattr(req, ino, NULL);
			return;
		}
	} else if (fi && fi->fh && fi_file(fi)->w) {
		rc = wfile_truncate(fi_file(fi)->w, (uint64_t)attr->st_size,
				    &dl);
		wfile_info(fi_file(fi)->w, &info);
	} else {
		rc = truncate_path(fs, ino, (uint64_t)attr->st_size, &info,
				   &dl);
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct stat st;
	fs_fill_stat(fs, ino, &info, &st);
	fuse_reply_attr(req, &st, 0);
}

void hy_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent; (void)name; (void)mode; (void)rdev;
	refuse(req);
}

void hy_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link; (void)parent; (void)name;
	refuse(req);
}

void hy_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	refuse(req);
}

void hy_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino; (void)name;
	refuse(req);
}
