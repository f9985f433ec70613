/*
 * fs_impl.h - the FUSE front end's insides, shared by fs.c (the tree,
 * reads, the session) and fs_write.c (files written, and what else
 * modifies the tree).  Not an API: nothing outside fs/ includes it.
 */
#ifndef HYLAKE_FS_IMPL_H
#define HYLAKE_FS_IMPL_H

#include "fs/fs.h"
#include "fs/inode.h"
#include "backends/backend.h"
#include "cache/readpath.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct wfile;

struct fs {
	struct backend *src;
	struct fs_conf conf;
	struct itable *inodes;
	struct fuse_session *se;
	bool mounted;
	bool splice;                      /* the kernel takes spliced replies
					     (set at FUSE's INIT) */
	int64_t start_ns;                 /* mtime shown for folders */
	atomic_uint_fast64_t hidden;      /* unsafe/shadowed names seen */
	pthread_mutex_t wlock;            /* guards writing */
	struct open_file *writing;        /* files open for writing */
	struct fs_locks *locks;           /* flock/fcntl locks, with
	                                     conf.leases; else NULL */
};

/* An open file: its bytes (it reads through the kernel's pages of its
 * inode, itable_open); or, open for writing, the file being written (no
 * pages: direct I/O). */
struct open_file {
	struct rfile *f;                  /* NULL when open for writing */
	struct wfile *w;                  /* open for writing */
	pid_t opener;                     /* w: the process that opened it
	                                     (0: unknown) */
	uint64_t ino;                     /* w: the inode, and ... */
	struct open_file *next;           /* ... fs.writing (under wlock) */
};

static inline struct open_file *fi_file(const struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static inline struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct deadline op_deadline(const struct fs *fs)
{
	return deadline_in_ms(fs->conf.op_timeout_ms);
}

static inline double secs(int64_t ms)
{
	return (double)ms / 1000.0;
}


/* fs.c: attributes of info as the kernel sees them; "parent/name" (NULL
 * for unusable names); an entry reply for ino; the end of an open file
 * (its store handle, or its wfile); GETATTR. */
void fs_fill_stat(const struct fs *fs, uint64_t ino,
		  const struct obj_info *info, struct stat *st);
char *fs_child_path(struct fs *fs, fuse_ino_t parent, const char *name);
void fs_make_entry(struct fs *fs, uint64_t ino, const struct obj_info *info,
		   struct fuse_entry_param *e);
void fs_close_file(struct fs *fs, fuse_ino_t ino, struct open_file *of);
void hy_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/*
 * fs_write.c: whether ino is being written, and then what it holds so
 * far; open an existing file to write it (replies); commit a file
 * written (0 or -errno, close()'s answer); drop of from fs.writing; and
 * the ops that write or would modify the tree (EROFS on a read-only
 * mount; ENOTSUP on a writable one for what a bucket cannot hold).
 */
bool fs_writing_info(struct fs *fs, uint64_t ino, struct obj_info *out);
/* A file being written as ino, not committed yet, is committed now (as
 * by fsync): 0 when none is, or the commit's -errno.  Takes no kernel
 * lock, so ops that hold the kernel's folder locks may call it. */
int fs_commit_writing(struct fs *fs, uint64_t ino, const struct deadline *dl);
/* What the store holds as path now: 0 and *info for a file with a
 * generation (what a conditional write pins), else -errno: dir_err for
 * a folder, ENOTSUP without a generation, the stat's error. */
int fs_stat_file(struct fs *fs, const char *path, int dir_err,
		 struct obj_info *info, const struct deadline *dl);
/* The path of parent/name to create or remove, or NULL after replying
 * (EROFS on a read-only mount; bad, for an unusable name). */
char *fs_changed_path(fuse_req_t req, fuse_ino_t parent, const char *name,
		      int bad);
void fs_open_to_replace(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi);
/* READ of a file open for writing: what it holds now (replies). */
void fs_read_writing(fuse_req_t req, struct open_file *of, size_t size,
		     off_t off);
int fs_commit_file(struct fs *fs, struct open_file *of);
/* fs_changed, and with held_too, the attributes and pages of the name's
 * inode even while handles read it (a commit that failed: the kernel
 * holds the size written so far). */
void fs_forget_name(struct fs *fs, const char *name, bool held_too);
void fs_forget_writer(struct fs *fs, struct open_file *of);
/* At the end of the session: files still open for writing (the kernel
 * never released them) are dropped (wfile_abandon). */
void fs_abandon_writers(struct fs *fs);
void hy_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void hy_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hy_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void hy_create(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, struct fuse_file_info *fi);
void hy_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void hy_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		int to_set, struct fuse_file_info *fi);
void hy_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode, dev_t rdev);
void hy_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name);
void hy_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void hy_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/*
 * fs_tree.c: what changes names: link (a put-if-absent copy), rename (a
 * copy under the target's precondition, then the removal of the source),
 * mkdir and rmdir (a folder's marker object "dir/").
 */
void hy_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname);
void hy_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);
void hy_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode);
void hy_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);

/*
 * fs_lock.c: flock() and fcntl() locks of a read-write mount, leases
 * across hosts (conf.leases).  The table of locks; the FUSE lock ops;
 * a close (flush: fcntl locks of owner; release: its flock locks);
 * whether writes to ino may go on (0, or -ENOLCK once the lease of a
 * lock held on it is lost); the user.hylake.lease attribute.
 */
struct fs_locks *fs_locks_create(struct lease_mgr *mgr);
void fs_locks_destroy(struct fs_locks *lk);
void hy_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      int op);
void hy_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep);
void hy_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock);
void fs_locks_closed(struct fs *fs, fuse_ino_t ino, uint64_t owner,
		     bool posix);
int fs_locks_guard(struct fs *fs, fuse_ino_t ino);
int fs_locks_explain(struct fs *fs, const char *path, struct strbuf *out);

#endif
