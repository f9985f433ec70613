/*
 * fs_lock.c - flock() and fcntl() locks on a read-write mount.
 *
 * Between processes of this host the usual rules hold, kept here (the
 * kernel hands every lock of a FUSE mount that asks for them to the
 * daemon): flock locks belong to an open file description, fcntl locks
 * to a process; shared locks share, an exclusive one excludes; the two
 * kinds do not see each other, as on Linux.  Between hosts, a file with
 * any lock held on this host holds the lease ".hylake/locks/PATH" in the
 * source (backends/composite/lease.h): one host at a time, shared or
 * exclusive alike.  The last unlock on this host (or close) releases it.
 *
 * fcntl locks lock the whole file whatever range they name, and
 * unlocking any range unlocks the process's lock on the file.
 *
 *   files:  ino -> lk_file { lease, holders: (owner, kind, type, pid) }
 *
 * fs_locks.lock guards everything; no request to the store is made with
 * it held (a file being given or released its lease is marked taking).
 */
#include "fs/fs_impl.h"
#include "backends/composite/lease.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define LOCKS_PREFIX HY_RESERVED_PREFIX "locks/"
#define WAIT_SLICE_MS 100         /* a blocked lock looks for interrupts */

struct lk_holder {
	uint64_t owner;
	bool posix;               /* fcntl; else flock */
	bool write;
	pid_t pid;
	struct lk_holder *next;
};

struct lk_file {
	uint64_t ino;
	char *lease_name;
	struct lease *lease;      /* held while any holder is */
	bool taking;              /* the lease is being got or released */
	bool taking_waits;        /* ... by a lock that waits for it */
	unsigned users;           /* lock_take calls looking at it */
	struct lk_holder *holders;
	struct lk_file *next;
};

struct fs_locks {
	struct lease_mgr *mgr;    /* borrowed */
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a holder, or a lease, came or went */
	struct lk_file *files;
};

/* A lock request, from flock or fcntl. */
struct lk_req {
	uint64_t owner;
	bool posix;
	bool write;
	pid_t pid;
	bool wait;
};

struct fs_locks *fs_locks_create(struct lease_mgr *mgr)
{
	struct fs_locks *lk = xcalloc(1, sizeof(*lk));
	lk->mgr = mgr;
	pthread_mutex_init(&lk->lock, NULL);
	timeutil_cond_init(&lk->cond);
	return lk;
}

void fs_locks_destroy(struct fs_locks *lk)
{
	if (!lk)
		return;
	while (lk->files) {
		struct lk_file *f = lk->files;
		lk->files = f->next;
		while (f->holders) {
			struct lk_holder *h = f->holders;
			f->holders = h->next;
			free(h);
		}
		lease_release(f->lease);
		free(f->lease_name);
		free(f);
	}
	pthread_cond_destroy(&lk->cond);
	pthread_mutex_destroy(&lk->lock);
	free(lk);
}

/* ------------------------------------------------------------ the table */

static struct lk_file *file_find(struct fs_locks *lk, uint64_t ino)
{
	for (struct lk_file *f = lk->files; f; f = f->next)
		if (f->ino == ino)
			return f;
	return NULL;
}

static struct lk_file *file_get(struct fs_locks *lk, uint64_t ino,
				const char *path)
{
	struct lk_file *f = file_find(lk, ino);
	if (f)
		return f;
	f = xcalloc(1, sizeof(*f));
	f->ino = ino;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s%s", LOCKS_PREFIX, path);
	f->lease_name = strbuf_detach(&sb, NULL);
	f->next = lk->files;
	lk->files = f;
	return f;
}

/* Forget f when nothing is left of it.  Lock held. */
static void file_put(struct fs_locks *lk, struct lk_file *f)
{
	if (f->holders || f->lease || f->taking || f->users)
		return;
	for (struct lk_file **p = &lk->files; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
	free(f->lease_name);
	free(f);
}

static bool same(const struct lk_holder *h, const struct lk_req *r)
{
	return h->owner == r->owner && h->posix == r->posix;
}

/* A holder of another owner, of r's kind, that r cannot share with. */
static struct lk_holder *conflict(struct lk_file *f, const struct lk_req *r)
{
	for (struct lk_holder *h = f->holders; h; h = h->next)
		if (h->posix == r->posix && !same(h, r) &&
		    (h->write || r->write))
			return h;
	return NULL;
}

/* Wait on the table's condition for a slice.  Lock held. */
static void wait_slice(struct fs_locks *lk)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t at = ts.tv_sec * NS_PER_SEC + ts.tv_nsec +
		     WAIT_SLICE_MS * NS_PER_MS;
	ts.tv_sec = at / NS_PER_SEC;
	ts.tv_nsec = at % NS_PER_SEC;
	pthread_cond_timedwait(&lk->cond, &lk->lock, &ts);
}

static bool interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

/* Get f's lease for r (f->taking set by the caller; lock not held). */
static int take_lease(struct fs_locks *lk, struct lk_file *f,
		      const struct lk_req *r, fuse_req_t req,
		      struct lease **out)
{
	if (r->wait)
		return lease_acquire(lk->mgr, f->lease_name, interrupted, req,
				     out);
	return lease_try(lk->mgr, f->lease_name, out);
}

/* Release f's lease when no holder is left.  Lock held; dropped and
 * taken again around the store's request. */
static void drop_lease_if_unused(struct fs_locks *lk, struct lk_file *f)
{
	if (f->holders || !f->lease || f->taking)
		return;
	struct lease *l = f->lease;
	f->lease = NULL;
	f->taking = true;
	f->taking_waits = false;
	pthread_mutex_unlock(&lk->lock);
	lease_release(l);
	pthread_mutex_lock(&lk->lock);
	f->taking = false;
	pthread_cond_broadcast(&lk->cond);
}

/* Take a lock: 0, -EWOULDBLOCK, -EINTR, -ENOLCK (the lease is lost),
 * or the store's -errno. */
static int lock_take(struct fs *fs, fuse_ino_t ino, const struct lk_req *r,
		     fuse_req_t req)
{
	struct fs_locks *lk = fs->locks;
	char *path;
	int rc = 0;

	if (itable_get(fs->inodes, ino, &path, NULL) < 0)
		return -ENOENT;
	pthread_mutex_lock(&lk->lock);
	struct lk_file *f = file_get(lk, ino, path);
	free(path);
	f->users++;
	for (;;) {
		if (r->wait && fuse_req_interrupted(req)) {
			rc = -EINTR;
			break;
		}
		if (conflict(f, r)) {
			if (!r->wait) {
				rc = -EWOULDBLOCK;
				break;
			}
			wait_slice(lk);
			continue;
		}
		if (f->taking) {          /* another lock is getting it */
			if (!r->wait && f->taking_waits) {
				rc = -EWOULDBLOCK;
				break;
			}
			wait_slice(lk);
			continue;
		}
		if (f->lease && lease_check(f->lease) < 0) {
			rc = -ENOLCK;
			break;
		}
		if (!f->lease) {
			struct lease *l = NULL;
			f->taking = true;
			f->taking_waits = r->wait;
			pthread_mutex_unlock(&lk->lock);
			rc = take_lease(lk, f, r, req, &l);
			pthread_mutex_lock(&lk->lock);
			f->taking = false;
			f->lease = l;
			pthread_cond_broadcast(&lk->cond);
			if (rc < 0)
				break;
			continue;         /* look again: time went by */
		}
		struct lk_holder *h = f->holders;
		while (h && !same(h, r))
			h = h->next;
		if (!h) {
			h = xcalloc(1, sizeof(*h));
			h->owner = r->owner;
			h->posix = r->posix;
			h->next = f->holders;
			f->holders = h;
		}
		h->write = r->write;
		h->pid = r->pid;
		break;
	}
	if (rc < 0)
		drop_lease_if_unused(lk, f);
	f->users--;
	file_put(lk, f);
	pthread_mutex_unlock(&lk->lock);
	return rc;
}

/* Drop owner's lock of one kind on ino (if any); the last one on this
 * host releases the lease. */
static void lock_drop(struct fs *fs, fuse_ino_t ino, uint64_t owner,
		      bool posix)
{
	struct fs_locks *lk = fs->locks;
	struct lk_req r = { .owner = owner, .posix = posix };

	pthread_mutex_lock(&lk->lock);
	struct lk_file *f = file_find(lk, ino);
	if (f) {
		for (struct lk_holder **p = &f->holders; *p;) {
			struct lk_holder *h = *p;
			if (same(h, &r)) {
				*p = h->next;
				free(h);
			} else {
				p = &h->next;
			}
		}
		pthread_cond_broadcast(&lk->cond);
		drop_lease_if_unused(lk, f);
		file_put(lk, f);
	}
	pthread_mutex_unlock(&lk->lock);
}

/* ------------------------------------------------------------ FUSE ops */

void hy_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      int op)
{
	struct fs *fs = req_fs(req);
	struct lk_req r = { .owner = fi->lock_owner, .posix = false,
			    .write = (op & LOCK_EX) != 0,
			    .pid = fuse_req_ctx(req)->pid,
			    .wait = !(op & LOCK_NB) };

	if (op & LOCK_UN) {
		lock_drop(fs, ino, r.owner, false);
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req, -lock_take(fs, ino, &r, req));
}

void hy_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep)
{
	struct fs *fs = req_fs(req);
	struct lk_req r = { .owner = fi->lock_owner, .posix = true,
			    .write = lock->l_type == F_WRLCK,
			    .pid = lock->l_pid, .wait = sleep != 0 };

	if (lock->l_type == F_UNLCK) {
		lock_drop(fs, ino, r.owner, true);
		fuse_reply_err(req, 0);
		return;
	}
	int rc = lock_take(fs, ino, &r, req);
	/* fcntl says EAGAIN (the same number as EWOULDBLOCK on Linux) */
	fuse_reply_err(req, rc == -EWOULDBLOCK ? EAGAIN : -rc);
}

void hy_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock)
{
	struct fs *fs = req_fs(req);
	struct fs_locks *lk = fs->locks;
	struct lk_req r = { .owner = fi->lock_owner, .posix = true,
			    .write = lock->l_type == F_WRLCK };
	struct flock out = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	bool ask = true;
	char *path;

	if (itable_get(fs->inodes, ino, &path, NULL) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&lk->lock);
	struct lk_file *f = file_find(lk, ino);
	struct lk_holder *h = f ? conflict(f, &r) : NULL;
	if (h) {
		out.l_type = h->write ? F_WRLCK : F_RDLCK;
		out.l_pid = h->pid;
	}
	if (h || (f && f->lease))
		ask = false;              /* this host has it */
	pthread_mutex_unlock(&lk->lock);
	if (ask) {
		struct strbuf name = STRBUF_INIT;
		struct lease_info li;
		strbuf_addf(&name, "%s%s", LOCKS_PREFIX, path);
		int rc = lease_inspect(lk->mgr, name.buf, &li);
		strbuf_release(&name);
		if (rc < 0 && rc != -ENOENT) {
			free(path);
			fuse_reply_err(req, -rc);
			return;
		}
		if (rc == 0) {            /* another host: no pid here */
			out.l_type = F_WRLCK;
			out.l_pid = 0;
		}
	}
	free(path);
	fuse_reply_lock(req, &out);
}

/* ------------------------------------------------------------ hooks */

void fs_locks_closed(struct fs *fs, fuse_ino_t ino, uint64_t owner,
		     bool posix)
{
	if (fs->locks)
		lock_drop(fs, ino, owner, posix);
}

int fs_locks_guard(struct fs *fs, fuse_ino_t ino)
{
	struct fs_locks *lk = fs->locks;
	int rc = 0;

	if (!lk)
		return 0;
	pthread_mutex_lock(&lk->lock);
	struct lk_file *f = file_find(lk, ino);
	if (f && f->lease && lease_check(f->lease) < 0)
		rc = -ENOLCK;
	pthread_mutex_unlock(&lk->lock);
	return rc;
}

int fs_locks_explain(struct fs *fs, const char *path, struct strbuf *out)
{
	struct lease_info li;
	struct strbuf name = STRBUF_INIT;

	if (!fs->locks)
		return -ENODATA;
	strbuf_addf(&name, "%s%s", LOCKS_PREFIX, path);
	int rc = lease_inspect(fs->locks->mgr, name.buf, &li);
	strbuf_release(&name);
	if (rc == -ENOENT) {
		strbuf_adds(out, "none");
		return 0;
	}
	if (rc == 0)
		lease_info_describe(&li, out);
	return rc;
}
