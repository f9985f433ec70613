/*
 * wfile.c - a file being written: streamed to a store writer fed in
 * order, or staged in a local file; and its commit (wfile.h says what
 * the calls promise).
 *
 *            write(off = end)*                        commit
 *   streamed ───────────────────────────────────────────────> ended
 *     │ head only: a write out of order, a read past...  ^ │  (rc, info
 *     v                                                  │ │   kept)
 *   staged <── first change ── pending (an existing file,│ │
 *     │  ^                      read through its version)│ │
 *     │  └── write after a good commit ──────────────────┼─┘
 *     └──────────────────────────────────────────────────┘
 *
 * A failure while streaming breaks the file (nothing appears); a write
 * at 0 after a good commit of an empty streamed file starts again, for
 * shells: `cmd > f` opens f, dups the descriptor and closes the
 * original, which flushes (commits) an empty file before cmd writes a
 * byte.  Nothing written is lost by starting again, under the empty
 * generation as precondition.
 */
#include "fs/wfile.h"
#include "fs/staging.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wfile {
	struct backend *b;        /* immutable */
	char *name;               /* immutable */
	struct staging *stg;      /* immutable; NULL: never staged */
	bool append;              /* immutable */
	pthread_mutex_t lock;     /* guards everything below */
	struct write_pre pre;     /* the precondition taken at open */
	struct bwriter *w;        /* streamed; NULL once ended, or staged */
	struct strbuf head;       /* streamed: bytes w has not seen, while
	                             all of them fit in WFILE_HEAD */
	bool streamed;            /* w has seen bytes (head is spent) */
	struct bobj *base;        /* pending: the version written into */
	struct staged *sf;        /* staged */
	bool dirty;               /* staged: changed since the last commit */
	uint64_t size;            /* bytes the file holds */
	int err;                  /* the first failure, 0 if none */
	bool ended;               /* committed, not changed since */
	int64_t opened_ns;        /* wall clock: mtime shown until commit */
	struct obj_info info;     /* after a good commit */
	wfile_written_fn written; /* immutable; NULL: nobody told */
	void *written_arg;        /* immutable */
	int copy_fd;              /* streamed, with written: the bytes
	                             streamed so far; -1: none kept */
	uint64_t copy_taken;      /* staging room the copy holds */
};

static struct wfile *wfile_new(struct backend *b, const char *name,
			       const struct write_pre *pre,
			       const struct wfile_how *how)
{
	struct wfile *f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	strbuf_init(&f->head);
	f->b = b;
	f->name = xstrdup(name);
	f->pre = *pre;
	f->opened_ns = wall_ns();
	f->copy_fd = -1;
	if (how) {
		f->stg = how->staging;
		f->append = how->append;
		f->base = how->base;
		f->written = how->written;
		f->written_arg = how->written_arg;
	}
	if (f->base)
		f->size = f->base->info.size;
	return f;
}

/* ------------------------------------------------ the streamed copy */

/* Stop keeping a local copy of the streamed bytes (why: NULL when the
 * bytes are kept elsewhere now, else the log line's reason). */
static void copy_drop(struct wfile *f, const char *why)
{
	if (f->copy_fd < 0)
		return;
	if (why)
		log_notice("'%s': no local copy of its bytes (%s): it will "
			   "not be written back", f->name, why);
	close(f->copy_fd);
	f->copy_fd = -1;
	staging_give(f->stg, f->copy_taken);
	f->copy_taken = 0;
}

/* A streamed file whose commit someone is told of keeps its bytes. */
static void copy_start(struct wfile *f)
{
	if (!f->written)
		return;
	if (!f->stg) {
		log_notice("'%s': no staging folder for a local copy of its "
			   "bytes: it will not be written back", f->name);
		return;
	}
	f->copy_fd = tmpfile_in(staging_dir(f->stg));
	if (f->copy_fd < 0)
		log_notice("'%s': no local copy of its bytes (%s): it will "
			   "not be written back", f->name, strerror(errno));
}

/* len more streamed bytes, at off, into the copy. */
static void copy_add(struct wfile *f, const void *buf, size_t len,
		     uint64_t off)
{
	if (f->copy_fd < 0)
		return;
	int rc = staging_take(f->stg, len);
	if (rc < 0) {
		copy_drop(f, "the staging folder is full");
		return;
	}
	f->copy_taken += len;
	rc = pwrite_full(f->copy_fd, buf, len, off);
	if (rc < 0)
		copy_drop(f, strerror(-rc));
}

/* A good commit made info: tell whoever asked, with the bytes. */
static void tell_written(struct wfile *f, int fd)
{
	if (f->written)
		f->written(f->written_arg, f->name, fd, &f->info);
}

int wfile_open_with(struct backend *b, const char *name,
		    const struct write_pre *pre, const struct wfile_how *how,
		    const struct deadline *dl, struct wfile **out)
{
	bool staged = how && (how->stage || how->base);
	struct bwriter *w = NULL;
	int rc = 0;

	if (staged && !how->staging)
		rc = -ENOTSUP;
	else if (!staged)
		rc = backend_writer_open(b, name, pre, &w, dl);
	if (rc < 0) {
		if (how && how->base)
			bobj_close(how->base);
		return rc;
	}
	struct wfile *f = wfile_new(b, name, pre, how);
	f->w = w;
	if (w)
		copy_start(f);
	if (how && how->stage && !how->base) {
		rc = staged_create(f->stg, name, pre, &f->sf);
		f->dirty = true;      /* it appears at commit, even empty */
	}
	if (rc < 0) {
		wfile_destroy(f);
		return rc;
	}
	*out = f;
	return 0;
}

int wfile_open(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl,
	       struct wfile **out)
{
	return wfile_open_with(b, name, pre, NULL, dl, out);
}

/* After a good commit of nothing, a write at 0 starts again: a new
 * upload that replaces that empty generation.  Lock held. */
static int restart(struct wfile *f, const struct deadline *dl)
{
	struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
				 .generation = f->info.generation };
	int rc = backend_writer_open(f->b, f->name, &pre, &f->w, dl);
	if (rc < 0)
		return rc;
	f->pre = pre;
	f->ended = false;
	f->streamed = false;
	f->size = 0;
	copy_drop(f, NULL);
	copy_start(f);
	memset(&f->info, 0, sizeof(f->info));
	return 0;
}

/*
 * Move the file to staging, keeping its first keep bytes (all: UINT64_MAX).
 * Pending: the version's bytes come through the store; streamed: from
 * the head, and the writer, which has sent nothing, is dropped.  On an
 * error the file is as it was.  Lock held.
 */
static int to_staging(struct wfile *f, uint64_t keep,
		      const struct deadline *dl)
{
	struct staged *sf;
	if (!f->stg) {
		log_notice("'%s': written out of order, and no staging folder "
			   "(ENOTSUP)", f->name);
		return -ENOTSUP;
	}
	if (!f->base && f->streamed) {
		log_notice("'%s': written out of order after %llu bytes went "
			   "to the store (ENOTSUP)", f->name,
			   (unsigned long long)f->size);
		return -ENOTSUP;
	}
	int rc = staged_create(f->stg, f->name, &f->pre, &sf);
	if (rc < 0)
		return rc;
	if (keep > f->size)
		keep = f->size;
	if (f->base)
		rc = staged_fill(sf, f->base, keep, dl);
	else if (keep)
		rc = staged_write(sf, f->head.buf, (size_t)keep, 0);
	if (rc < 0) {
		staged_destroy(sf);
		return rc;
	}
	if (f->base) {
		bobj_close(f->base);
		f->base = NULL;
	} else {
		bwriter_abort(f->w);
		f->w = NULL;
		strbuf_release(&f->head);
		copy_drop(f, NULL);   /* the staged file holds the bytes */
	}
	f->sf = sf;
	f->size = keep;
	f->dirty = true;
	log_debug("'%s': staged (%llu bytes kept)", f->name,
		  (unsigned long long)keep);
	return 0;
}

/* Streamed: keep len more bytes in the head, or hand them (and the
 * head, the first time) to the writer.  Lock held. */
static int stream(struct wfile *f, const void *buf, size_t len,
		  const struct deadline *dl)
{
	int rc = 0;
	if (!f->streamed && f->head.len + len <= WFILE_HEAD) {
		strbuf_add(&f->head, buf, len);
		return 0;
	}
	if (!f->streamed) {
		f->streamed = true;
		rc = bwriter_write(f->w, f->head.buf, f->head.len, dl);
		strbuf_release(&f->head);
	}
	if (rc == 0)
		rc = bwriter_write(f->w, buf, len, dl);
	if (rc < 0)
		f->err = rc;
	return rc;
}

/* Whether the file may change now; a staged (or never changed) file
 * committed may, and is being written again from then on.  Lock held. */
static int changeable(struct wfile *f)
{
	if (f->ended && (f->sf || f->base) && !f->err) {
		f->ended = false;
		return 0;
	}
	if (f->ended)
		return -EBADF;
	return f->err;
}

/*
 * A change refused (no room, out of order past the head, the store's
 * error) breaks the file: the application may not look at the error
 * (stdio reports it at fclose, then closes anyway), and the object must
 * never appear without the bytes it was refused.  Lock held.
 */
static void refused(struct wfile *f, int rc)
{
	if (rc < 0 && rc != -EBADF && !f->err)
		f->err = rc;
}

ssize_t wfile_write(struct wfile *f, const void *buf, size_t len,
		    uint64_t off, const struct deadline *dl)
{
	ssize_t rc;

	pthread_mutex_lock(&f->lock);
	bool empty = f->ended && f->err == 0 && f->size == 0 && !f->sf &&
		     f->info.generation;
	rc = empty && off == 0 ? restart(f, dl) : changeable(f);
	if (rc == 0 && f->append)
		off = f->size;
	if (rc == 0 && !f->sf && (!f->w || off != f->size))
		rc = to_staging(f, UINT64_MAX, dl);
	if (rc < 0)
		;                 /* rc: why the file does not take it */
	else if (f->sf) {
		rc = staged_write(f->sf, buf, len, off);
		f->size = staged_size(f->sf);
		f->dirty |= rc == 0;
	} else {
		rc = stream(f, buf, len, dl);
		if (rc == 0)
			copy_add(f, buf, len, f->size);
		f->size += rc == 0 ? len : 0;
	}
	refused(f, (int)rc);
	pthread_mutex_unlock(&f->lock);
	return rc < 0 ? rc : (ssize_t)len;
}

ssize_t wfile_read(struct wfile *f, void *buf, size_t len, uint64_t off,
		   const struct deadline *dl)
{
	ssize_t rc;

	pthread_mutex_lock(&f->lock);
	if (f->sf) {
		rc = staged_read(f->sf, buf, len, off);
	} else if (f->base) {
		rc = bobj_read(f->base, buf, len, off, dl);
	} else if (!f->streamed && f->w) {
		rc = off >= f->head.len ? 0 : (ssize_t)(f->head.len - off);
		if (rc > (ssize_t)len)
			rc = (ssize_t)len;
		if (rc > 0)
			memcpy(buf, f->head.buf + off, (size_t)rc);
	} else {
		rc = -ENOTSUP;        /* its bytes went to the store */
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int wfile_truncate(struct wfile *f, uint64_t size, const struct deadline *dl)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	if (size == f->size) {
		rc = f->err;
	} else {
		rc = changeable(f);
		if (rc == 0 && !f->sf)
			rc = to_staging(f, size, dl);
		if (rc == 0)
			rc = staged_truncate(f->sf, size);
		if (rc == 0) {
			f->size = size;
			f->dirty = true;
		}
		refused(f, rc);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Commit a streamed file.  Lock held. */
static int commit_stream(struct wfile *f, const struct deadline *dl)
{
	int rc = f->err;
	if (rc == 0 && !f->streamed && f->head.len)
		rc = bwriter_write(f->w, f->head.buf, f->head.len, dl);
	strbuf_release(&f->head);
	if (rc < 0) {
		bwriter_abort(f->w);
	} else {
		rc = bwriter_commit(f->w, &f->info, dl);
		if (rc == 0 && f->info.size != f->size) {
			log_err("'%s': the store kept %llu bytes of %llu",
				f->name, (unsigned long long)f->info.size,
				(unsigned long long)f->size);
			rc = -EIO;
		}
	}
	f->w = NULL;
	return rc;
}

int wfile_commit(struct wfile *f, struct obj_info *info,
		 const struct deadline *dl)
{
	pthread_mutex_lock(&f->lock);
	if (!f->ended) {
		f->ended = true;
		if (f->err)
			;                     /* broken: nothing appears */
		else if (f->sf && f->dirty) {
			f->err = staged_upload(f->sf, f->b, &f->info, dl);
			if (!f->err)
				tell_written(f, staged_fd(f->sf));
		} else if (f->base) {
			f->info = f->base->info;   /* never changed */
		} else if (!f->sf) {
			f->err = commit_stream(f, dl);
			if (!f->err)
				tell_written(f, f->copy_fd);
			copy_drop(f, NULL);
		}
		f->dirty = false;
		if (f->w) {
			bwriter_abort(f->w);
			f->w = NULL;
		}
	}
	int rc = f->err;
	if (rc == 0 && info)
		*info = f->info;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void wfile_break(struct wfile *f, int err)
{
	pthread_mutex_lock(&f->lock);
	if (!f->ended && !f->err)
		f->err = err;
	pthread_mutex_unlock(&f->lock);
}

bool wfile_ended(struct wfile *f)
{
	pthread_mutex_lock(&f->lock);
	bool ended = f->ended;
	pthread_mutex_unlock(&f->lock);
	return ended;
}

void wfile_info(struct wfile *f, struct obj_info *out)
{
	pthread_mutex_lock(&f->lock);
	if (f->ended && f->err == 0) {
		*out = f->info;
	} else if (f->base) {
		*out = f->base->info;
	} else {
		memset(out, 0, sizeof(*out));
		out->size = f->size;
		out->mtime_ns = f->opened_ns;
	}
	pthread_mutex_unlock(&f->lock);
}

void wfile_destroy(struct wfile *f)
{
	if (!f)
		return;
	if (f->w)
		bwriter_abort(f->w);
	if (f->base)
		bobj_close(f->base);
	copy_drop(f, NULL);
	staged_destroy(f->sf);
	strbuf_release(&f->head);
	pthread_mutex_destroy(&f->lock);
	free(f->name);
	free(f);
}

void wfile_abandon(struct wfile *f)
{
	if (f && f->sf && f->dirty && !f->err) {
		log_warn("'%s': open for writing as the mount ends; its staged "
			 "bytes are kept for the next start to report", f->name);
		staged_keep(f->sf);
		f->sf = NULL;
	}
	wfile_destroy(f);
}
