/*
 * wfile.c - a file being written: a store writer fed in order, and its
 * one commit (wfile.h says what the calls promise).
 *
 *   open ──write(off = end)*──> commit ──> ended (rc, info kept)
 *    ^       │ failure                       ^      │
 *    │       └──> broken (err) ──────────────┘      │ write at 0 after
 *    └──────────────────────────────────────────────┘ an empty commit
 *
 * The restart is for shells: `cmd > f` opens f, dups the descriptor and
 * closes the original, which flushes (commits) an empty file before cmd
 * writes a byte.  Nothing written is lost by starting again, under the
 * empty generation as precondition.
 */
#include "fs/wfile.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct wfile {
	struct backend *b;        /* immutable */
	char *name;               /* immutable */
	pthread_mutex_t lock;     /* guards everything below */
	struct bwriter *w;        /* NULL once committed or aborted */
	uint64_t size;            /* bytes accepted so far */
	int err;                  /* the first failure, 0 if none */
	bool ended;               /* wfile_commit was called */
	int64_t opened_ns;        /* wall clock: mtime shown until commit */
	struct obj_info info;     /* after a good commit */
};

int wfile_open(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl,
	       struct wfile **out)
{
	struct bwriter *w;
	int rc = backend_writer_open(b, name, pre, &w, dl);
	if (rc < 0)
		return rc;
	struct wfile *f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->b = b;
	f->name = xstrdup(name);
	f->w = w;
	f->opened_ns = wall_ns();
	*out = f;
	return 0;
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
	f->ended = false;
	f->size = 0;
	memset(&f->info, 0, sizeof(f->info));
	return 0;
}

ssize_t wfile_write(struct wfile *f, const void *buf, size_t len,
		    uint64_t off, const struct deadline *dl)
{
	ssize_t rc;

	pthread_mutex_lock(&f->lock);
	bool empty = f->ended && f->err == 0 && f->size == 0 &&
		     f->info.generation;
	rc = empty && off == 0 ? restart(f, dl) : 0;
	if (rc < 0)
		;                 /* rc: why it could not start again */
	else if (f->ended)
		rc = -EBADF;
	else if (f->err)
		rc = f->err;
	else if (off != f->size)
		rc = -ENOTSUP;
	else if ((rc = bwriter_write(f->w, buf, len, dl)) < 0)
		f->err = (int)rc;
	else {
		f->size += len;
		rc = (ssize_t)len;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int wfile_commit(struct wfile *f, struct obj_info *info,
		 const struct deadline *dl)
{
	pthread_mutex_lock(&f->lock);
	if (!f->ended) {
		f->ended = true;
		if (f->err) {
			bwriter_abort(f->w);
		} else {
			f->err = bwriter_commit(f->w, &f->info, dl);
			if (f->err == 0 && f->info.size != f->size) {
				log_err("'%s': the store kept %llu bytes of %llu",
					f->name,
					(unsigned long long)f->info.size,
					(unsigned long long)f->size);
				f->err = -EIO;
			}
		}
		f->w = NULL;
	}
	int rc = f->err;
	if (rc == 0 && info)
		*info = f->info;
	pthread_mutex_unlock(&f->lock);
	return rc;
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
	pthread_mutex_destroy(&f->lock);
	free(f->name);
	free(f);
}
