/*
 * fs.h - the FUSE front end: serves a store as a read-only tree.
 *
 * This is the only part of hylake that includes FUSE headers or replies
 * to the kernel.  Each request gets exactly one reply.
 *
 * Lifecycle: fs_create() -> fs_mount() -> fs_run() (returns when the
 * mount goes away or a signal asks to stop) -> fs_destroy().
 */
#ifndef HYLAKE_FS_H
#define HYLAKE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "fs/wfile.h"

struct backend;
/*
 * ioctl(2) on a file open for reading: store every block this handle
 * reads in the block cache, as `hylake warm` wants, though a block read
 * once is otherwise only remembered (cache_first_read).  No argument;
 * ENOTTY on anything else.
 */
#define HYLAKE_IOC_KEEP _IO('h', 1)

struct fs;
struct lease_mgr;
struct readpath;
struct strbuf;

struct staging;

struct fs_conf {
	int64_t entry_timeout_ms;     /* kernel dentry cache */
	int64_t attr_timeout_ms;      /* kernel attribute cache */
	int64_t negative_timeout_ms;  /* kernel cache of "no such name" */
	int64_t op_timeout_ms;        /* deadline of one filesystem request */
	unsigned list_page_size;
	unsigned threads;             /* worker threads of the session */
	uid_t uid;                    /* owner shown for every file */
	gid_t gid;
	mode_t file_mode, dir_mode;   /* permission bits shown */
	/*
	 * Optional: the mount's figures (Prometheus text), appended to out;
	 * served as the user.hylake.metrics attribute of the mount's root
	 * folder.  Called from any worker thread.
	 */
	void (*metrics)(void *arg, struct strbuf *out);
	void *metrics_arg;
	struct readpath *readpath;    /* serves file bytes; borrowed */
	unsigned kernel_read_ahead_kb;   /* the kernel's read-ahead for this
	                                    mount (0: leave it) */
	bool writable;                /* a read-write mount: the store has
	                                 BACKEND_WRITE; otherwise the kernel
	                                 mount is "ro" */
	/*
	 * A writable mount's leases (backends/composite/lease.h), borrowed:
	 * flock() and fcntl() locks are then the mount's, and leases across
	 * hosts.  NULL: the kernel keeps locks, local to this host.
	 */
	struct lease_mgr *leases;
	struct staging *staging;      /* where files written out of order
	                                 wait for their upload (fs/staging.h);
	                                 borrowed; NULL: such writes answer
	                                 ENOTSUP */
	/*
	 * Optional (write_back): told of every commit of new bytes with
	 * those bytes (fs/wfile.h: wfile_written_fn), from the thread that
	 * commits, before close() or fsync() returns.
	 */
	wfile_written_fn written;
	void *written_arg;
};

/* src is borrowed and must outlive the fs. */
struct fs *fs_create(struct backend *src, const struct fs_conf *conf);

/*
 * Create the FUSE session and mount it.  source is what /proc/mounts
 * shows as the mounted thing (the config file); fuse_opts is a
 * comma-separated list of FUSE mount options (may be NULL), e.g.
 * "allow_other".  Returns 0 or -errno with err filled.
 */
int fs_mount(struct fs *fs, const char *mountpoint, const char *source,
	     const char *fuse_opts, char *err, size_t errlen);

/* Call once the mount has answered a request (settings that must
 * follow FUSE's INIT). */
void fs_mount_ready(struct fs *fs, const char *mountpoint);

/*
 * name (a path under the mount) changed in the store: the kernel drops
 * its entry, so the next use asks again, and the attributes and cached
 * pages of its inode, unless handles read that inode through its pages
 * (it keeps its version until they close).
 * Must not be called from a request of this fs (the kernel may be
 * waiting on that request); before mounting or after it is a no-op.
 */
void fs_changed(struct fs *fs, const char *name);

/* Serve requests until unmounted or signalled.  Returns 0 or -errno. */
int fs_run(struct fs *fs);

/* Unmount (if still mounted) and free everything. */
void fs_destroy(struct fs *fs);

#endif
