/*
 * staging.c - staged files: a data file and its manifest in the staging
 * folder, the space they may take, their upload, and the start-up pass
 * over what a stopped daemon left (staging.h says what is promised).
 *
 * On disk, for each staged file ID (hex: time, pid, sequence):
 *
 *   DIR/ID.data       the file's whole content (sparse where never
 *                     written); flock(LOCK_EX) while a mount holds it
 *   DIR/ID.meta       the manifest, replaced whole (ID.meta.tmp, rename):
 *                       hylake-staged 1
 *                       store IDENTITY  (the source it is for)
 *                       state open | commit | reported
 *                       pre absent | generation G | none
 *                       size N          } commit: what the upload sends,
 *                       crc32c C        } checked again before a retry
 *                       why TEXT        (reported)
 *                       name LEN
 *                       <LEN bytes of the object name>
 *   DIR/reported/     ID.data and ID.meta of files reported, for a
 *                     person to look at; never uploaded by hylake
 *
 * "open": the application may still change the file: it must not be
 * uploaded by anyone else.  "commit": close() or fsync() asked for the
 * upload of exactly these bytes.  The manifest is written without fsync:
 * it survives the daemon, not the machine; after a power loss the size
 * and CRC32C check refuses bytes the disk did not keep.
 */
#include "fs/staging.h"
#include "backends/util/crc32c.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "hylake-staged 1\n"
#define MANIFEST_MAX (16 << 10)
#define COPY_PIECE (1u << 20)

struct staging {
	char *dir;                /* immutable */
	char *store;              /* immutable: the source's identity */
	uint64_t limit;           /* immutable */
	pthread_mutex_t lock;     /* guards the counters below */
	uint64_t used, files, reported, recovered, pending;
	atomic_uint seq;
};

struct staged {
	struct staging *s;
	char *name;
	char *base;               /* DIR/ID (add .data or .meta) */
	struct write_pre pre;
	int fd;                   /* ID.data, flocked */
	uint64_t size;            /* bytes reserved: the file's size */
};

/* What a manifest says. */
struct manifest {
	char *store;              /* malloc'd */
	char state[16];
	struct write_pre pre;
	uint64_t size;
	uint32_t crc32c;
	char *name;               /* malloc'd */
};

/* ------------------------------------------------------------- space */

/* The file's size becomes size: its reservation follows. */
static int reserve(struct staged *f, uint64_t size)
{
	struct staging *s = f->s;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	if (size > f->size && s->used + (size - f->size) > s->limit)
		rc = -ENOSPC;
	else
		s->used = s->used - f->size + size;
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		f->size = size;
	return rc;
}

int staging_take(struct staging *s, uint64_t bytes)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	if (s->used + bytes > s->limit)
		rc = -ENOSPC;
	else
		s->used += bytes;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void staging_give(struct staging *s, uint64_t bytes)
{
	pthread_mutex_lock(&s->lock);
	s->used -= bytes < s->used ? bytes : s->used;
	pthread_mutex_unlock(&s->lock);
}

int staged_fd(const struct staged *f)
{
	return f->fd;
}

/* --------------------------------------------------------- manifests */

static char *path_of(const char *base, const char *ext)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s%s", base, ext);
	return strbuf_detach(&sb, NULL);
}

static int manifest_write(const char *base, const struct manifest *m,
			  const char *why)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, MAGIC);
	strbuf_addf(&sb, "store %s\n", m->store);
	strbuf_addf(&sb, "state %s\n", m->state);
	if (m->pre.kind == WRITE_PRE_ABSENT)
		strbuf_adds(&sb, "pre absent\n");
	else if (m->pre.kind == WRITE_PRE_GENERATION)
		strbuf_addf(&sb, "pre generation %" PRIu64 "\n",
			    m->pre.generation);
	else
		strbuf_adds(&sb, "pre none\n");
	if (strcmp(m->state, "open") != 0)
		strbuf_addf(&sb, "size %" PRIu64 "\ncrc32c %" PRIu32 "\n",
			    m->size, m->crc32c);
	if (why)
		strbuf_addf(&sb, "why %s\n", why);
	strbuf_addf(&sb, "name %zu\n", strlen(m->name));
	strbuf_adds(&sb, m->name);

	char *tmp = path_of(base, ".meta.tmp"), *dst = path_of(base, ".meta");
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = -errno;
	else {
		rc = pwrite_full(fd, sb.buf, sb.len, 0);
		close(fd);
		if (rc == 0 && rename(tmp, dst) < 0)
			rc = -errno;
		if (rc < 0)
			unlink(tmp);
	}
	free(tmp);
	free(dst);
	strbuf_release(&sb);
	return rc;
}

/* Parse a manifest file: 0, or -EINVAL for one this version cannot read. */
static int manifest_read(const char *path, struct manifest *m)
{
	char buf[MANIFEST_MAX + 1];
	memset(m, 0, sizeof(*m));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, MANIFEST_MAX);
	close(fd);
	if (n < (ssize_t)strlen(MAGIC) || memcmp(buf, MAGIC, strlen(MAGIC)))
		return -EINVAL;
	buf[n] = '\0';
	char *p = buf + strlen(MAGIC), *end = buf + n;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return -EINVAL;
		*nl = '\0';
		unsigned long long v;
		unsigned c;
		size_t len;
		if (strncmp(p, "store ", 6) == 0)
			m->store = xstrdup(p + 6);
		else if (sscanf(p, "state %15s", m->state) == 1)
			;
		else if (strcmp(p, "pre absent") == 0)
			m->pre.kind = WRITE_PRE_ABSENT;
		else if (sscanf(p, "pre generation %llu", &v) == 1)
			m->pre = (struct write_pre){ .kind = WRITE_PRE_GENERATION,
						     .generation = v };
		else if (sscanf(p, "size %llu", &v) == 1)
			m->size = v;
		else if (sscanf(p, "crc32c %u", &c) == 1)
			m->crc32c = c;
		else if (sscanf(p, "name %zu", &len) == 1) {
			if (len == 0 || len > (size_t)(end - nl - 1))
				return -EINVAL;
			m->name = xstrndup(nl + 1, len);
			break;
		}
		p = nl + 1;
	}
	if (!m->name || !m->state[0] || !m->store) {
		free(m->name);
		free(m->store);
		m->name = m->store = NULL;
		return -EINVAL;
	}
	return 0;
}

static int staged_manifest(struct staged *f, const char *state,
			   uint32_t crc)
{
	struct manifest m = { .pre = f->pre, .size = f->size, .crc32c = crc,
			      .name = f->name, .store = f->s->store };
	snprintf(m.state, sizeof(m.state), "%s", state);
	return manifest_write(f->base, &m, NULL);
}

/* ------------------------------------------------------------ upload */

/* Hand the first size bytes of fd, piece by piece, to use (0 to go on,
 * or -errno to stop).  0 or the first -errno. */
static int fd_pieces(int fd, uint64_t size,
		     int (*use)(void *arg, const void *buf, size_t len),
		     void *arg)
{
	unsigned char *buf = xmalloc(COPY_PIECE);
	int rc = 0;
	for (uint64_t off = 0; off < size && rc == 0;) {
		size_t want = size - off < COPY_PIECE ? (size_t)(size - off)
						       : COPY_PIECE;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else if ((rc = use(arg, buf, (size_t)n)) == 0)
			off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static int crc_piece(void *arg, const void *buf, size_t len)
{
	uint32_t *crc = arg;
	*crc = crc32c_update(*crc, buf, len);
	return 0;
}

/* CRC32C of the first size bytes of fd.  0 or -errno. */
static int fd_crc(int fd, uint64_t size, uint32_t *out)
{
	*out = 0;
	return fd_pieces(fd, size, crc_piece, out);
}

struct upload_ctx {
	struct bwriter *w;
	const struct deadline *dl;
};

static int upload_piece(void *arg, const void *buf, size_t len)
{
	struct upload_ctx *u = arg;
	return bwriter_write(u->w, buf, len, u->dl);
}

/* Upload the first size bytes of fd as name under pre. */
static int upload_fd(struct backend *b, const char *name,
		     const struct write_pre *pre, int fd, uint64_t size,
		     struct obj_info *out, const struct deadline *dl)
{
	struct upload_ctx u = { .dl = dl };
	int rc = backend_writer_open(b, name, pre, &u.w, dl);
	if (rc < 0)
		return rc;
	rc = fd_pieces(fd, size, upload_piece, &u);
	if (rc < 0) {
		bwriter_abort(u.w);
		return rc;
	}
	rc = bwriter_commit(u.w, out, dl);
	if (rc == 0 && out->size != size) {
		log_err("'%s': the store kept %" PRIu64 " bytes of %" PRIu64,
			name, out->size, size);
		rc = -EIO;
	}
	return rc;
}

int staged_upload(struct staged *f, struct backend *b, struct obj_info *out,
		  const struct deadline *dl)
{
	uint32_t crc;
	int rc = fd_crc(f->fd, f->size, &crc);
	if (rc == 0)
		rc = staged_manifest(f, "commit", crc);
	if (rc == 0)
		rc = upload_fd(b, f->name, &f->pre, f->fd, f->size, out, dl);
	if (rc == 0)
		f->pre = (struct write_pre){ .kind = WRITE_PRE_GENERATION,
					     .generation = out->generation };
	/* whatever happened, the application has the answer now */
	int mrc = staged_manifest(f, "open", 0);
	if (mrc < 0)
		log_warn("'%s': staging manifest: %s", f->name,
			 strerror(-mrc));
	return rc;
}

/* ------------------------------------------------------------ staged */

int staged_create(struct staging *s, const char *name,
		  const struct write_pre *pre, struct staged **out)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%" PRIx64 "-%x-%x", s->dir,
		    (uint64_t)(wall_ns() / 1000000000), (unsigned)getpid(),
		    atomic_fetch_add(&s->seq, 1));
	struct staged *f = xcalloc(1, sizeof(*f));
	f->s = s;
	f->name = xstrdup(name);
	f->base = strbuf_detach(&sb, NULL);
	f->pre = *pre;
	char *data = path_of(f->base, ".data");
	f->fd = open(data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = f->fd < 0 ? -errno : 0;
	if (rc == 0 && flock(f->fd, LOCK_EX | LOCK_NB) < 0)
		rc = -errno;
	if (rc == 0)
		rc = staged_manifest(f, "open", 0);
	if (rc < 0) {
		log_warn("staging '%s' in %s: %s", name, s->dir, strerror(-rc));
		if (f->fd >= 0) {
			close(f->fd);
			unlink(data);
		}
		free(data);
		free(f->base);
		free(f->name);
		free(f);
		return rc;
	}
	free(data);
	pthread_mutex_lock(&s->lock);
	s->files++;
	pthread_mutex_unlock(&s->lock);
	*out = f;
	return 0;
}

int staged_fill(struct staged *f, struct bobj *o, uint64_t len,
		const struct deadline *dl)
{
	int rc = reserve(f, len);
	if (rc < 0)
		return rc;
	unsigned char *buf = xmalloc(COPY_PIECE);
	for (uint64_t off = 0; off < len && rc == 0;) {
		size_t want = len - off < COPY_PIECE ? (size_t)(len - off)
						     : COPY_PIECE;
		ssize_t n = bobj_read(o, buf, want, off, dl);
		if (n < 0)
			rc = (int)n;
		else if (n == 0)
			rc = -ESTALE;          /* shorter than its version */
		else if ((rc = pwrite_full(f->fd, buf, (size_t)n, off)) == 0)
			off += (uint64_t)n;
	}
	free(buf);
	if (rc < 0) {
		reserve(f, 0);
		if (ftruncate(f->fd, 0) < 0)
			rc = -EIO;
	}
	return rc;
}

int staged_write(struct staged *f, const void *buf, size_t len,
		 uint64_t off)
{
	uint64_t old = f->size;
	if (off + len > old) {
		int rc = reserve(f, off + len);
		if (rc < 0)
			return rc;
	}
	int rc = pwrite_full(f->fd, buf, len, off);
	if (rc < 0 && off + len > old) {
		reserve(f, old);          /* give back what was not taken */
		if (ftruncate(f->fd, (off_t)old) < 0)
			return -EIO;
	}
	return rc;
}

ssize_t staged_read(struct staged *f, void *buf, size_t len, uint64_t off)
{
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(f->fd, (char *)buf + got, len - got,
				  (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {             /* a hole at the end reads as zeros */
			memset((char *)buf + got, 0, len - got);
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)len;
}

int staged_truncate(struct staged *f, uint64_t size)
{
	uint64_t old = f->size;
	int rc = reserve(f, size);
	if (rc < 0)
		return rc;
	if (ftruncate(f->fd, (off_t)size) < 0) {
		rc = -errno;
		reserve(f, old);
	}
	return rc;
}

uint64_t staged_size(const struct staged *f)
{
	return f->size;
}

static void remove_files(const char *base)
{
	char *data = path_of(base, ".data"), *meta = path_of(base, ".meta");
	unlink(meta);
	unlink(data);
	free(meta);
	free(data);
}

static void staged_free(struct staged *f, bool remove)
{
	reserve(f, 0);
	if (remove)
		remove_files(f->base);
	close(f->fd);                 /* and its lock */
	pthread_mutex_lock(&f->s->lock);
	f->s->files--;
	pthread_mutex_unlock(&f->s->lock);
	free(f->base);
	free(f->name);
	free(f);
}

void staged_destroy(struct staged *f)
{
	if (f)
		staged_free(f, true);
}

void staged_keep(struct staged *f)
{
	if (f)
		staged_free(f, false);
}

/* ----------------------------------------------------------- staging */

static uint64_t count_reported(const char *dir)
{
	char *rdir = path_of(dir, "/reported");
	DIR *d = opendir(rdir);
	uint64_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".meta") == 0)
			n++;
	}
	if (d)
		closedir(d);
	free(rdir);
	return n;
}

int staging_open(const char *dir, uint64_t limit, const char *store,
		 struct staging **out, char *err, size_t errlen)
{
	char *rdir = path_of(dir, "/reported");
	int rc = mkdir_p(rdir);
	free(rdir);
	if (rc < 0) {
		snprintf(err, errlen, "staging_dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	struct staging *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->store = xstrdup(store);
	s->limit = limit;
	pthread_mutex_init(&s->lock, NULL);
	s->reported = count_reported(dir);
	*out = s;
	return 0;
}

void staging_destroy(struct staging *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s->store);
	free(s);
}

const char *staging_dir(const struct staging *s)
{
	return s->dir;
}

void staging_get_stats(struct staging *s, struct staging_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = (struct staging_stats){
		.files = s->files, .bytes = s->used, .limit = s->limit,
		.reported = s->reported, .recovered = s->recovered,
		.pending = s->pending,
	};
	pthread_mutex_unlock(&s->lock);
}

/* Move ID's files to reported/, the manifest saying why. */
static void report(struct staging *s, const char *id, struct manifest *m,
		   const char *why)
{
	struct strbuf from = STRBUF_INIT, to = STRBUF_INIT;
	strbuf_addf(&from, "%s/%s", s->dir, id);
	strbuf_addf(&to, "%s/reported/%s", s->dir, id);
	log_err("staged file for '%s' not uploaded: %s; kept as %s.data",
		m->name ? m->name : "?", why, to.buf);
	char *fd = path_of(from.buf, ".data"), *td = path_of(to.buf, ".data");
	if (rename(fd, td) < 0 && errno != ENOENT)
		log_warn("%s: %s", fd, strerror(errno));
	free(fd);
	free(td);
	if (m->name) {
		snprintf(m->state, sizeof(m->state), "reported");
		manifest_write(to.buf, m, why);
	} else {
		char *fm = path_of(from.buf, ".meta");
		char *tm = path_of(to.buf, ".meta");
		if (rename(fm, tm) < 0)
			log_warn("%s: %s", fm, strerror(errno));
		free(fm);
		free(tm);
	}
	remove_files(from.buf);
	pthread_mutex_lock(&s->lock);
	s->reported++;
	pthread_mutex_unlock(&s->lock);
	strbuf_release(&from);
	strbuf_release(&to);
}

/* One staged file left by a daemon that is gone (fd: its data, locked). */
static void recover_one(struct staging *s, struct backend *b, const char *id,
			int fd, int64_t timeout_ms)
{
	struct strbuf base = STRBUF_INIT;
	struct manifest m;
	struct obj_info now;
	struct stat st;
	uint32_t crc;

	strbuf_addf(&base, "%s/%s", s->dir, id);
	char *meta = path_of(base.buf, ".meta");
	int rc = manifest_read(meta, &m);
	free(meta);
	if (rc < 0) {
		report(s, id, &m, "its manifest cannot be read");
		goto out;
	}
	if (strcmp(m.store, s->store) != 0) {
		log_warn("staged file %s.data is for another source (%s); left "
			 "for a mount of it", base.buf, m.store);
		pthread_mutex_lock(&s->lock);
		s->pending++;
		pthread_mutex_unlock(&s->lock);
		goto out;
	}
	if (strcmp(m.state, "commit") != 0) {
		report(s, id, &m, "the mount stopped while the file was open "
		       "for writing (no close or fsync asked for an upload)");
		goto out;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != m.size ||
	    fd_crc(fd, m.size, &crc) < 0 || crc != m.crc32c) {
		report(s, id, &m, "its bytes are not those the upload was "
		       "asked for");
		goto out;
	}
	struct deadline dl = deadline_in_ms(timeout_ms);
	/* The upload may have finished before the daemon died. */
	if (backend_stat(b, m.name, &now, &dl) == 0 && !now.is_dir &&
	    now.size == m.size && now.has_crc32c && now.crc32c == crc &&
	    (m.pre.kind != WRITE_PRE_GENERATION ||
	     now.generation != m.pre.generation)) {
		log_notice("'%s': its upload had finished (generation %" PRIu64
			   ")", m.name, now.generation);
		rc = 0;
	} else {
		rc = upload_fd(b, m.name, &m.pre, fd, m.size, &now, &dl);
		if (rc == 0)
			log_notice("'%s': upload finished after a restart "
				   "(generation %" PRIu64 ", %" PRIu64 " bytes)",
				   m.name, now.generation, m.size);
	}
	if (rc == -EEXIST || rc == -ESTALE) {
		report(s, id, &m, rc == -EEXIST ? "the name was created "
		       "elsewhere meanwhile (precondition failed; not forced)"
		       : "the object changed meanwhile (precondition failed; "
		       "not forced)");
	} else if (rc < 0) {
		log_warn("'%s': staged upload failed again (%s); kept in %s "
			 "for the next start", m.name, strerror(-rc), s->dir);
		pthread_mutex_lock(&s->lock);
		s->pending++;
		pthread_mutex_unlock(&s->lock);
	} else {
		remove_files(base.buf);
		pthread_mutex_lock(&s->lock);
		s->recovered++;
		pthread_mutex_unlock(&s->lock);
	}
out:
	free(m.name);
	free(m.store);
	strbuf_release(&base);
}

void staging_recover(struct staging *s, struct backend *b,
		     int64_t timeout_ms)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l <= 5 || strcmp(de->d_name + l - 5, ".data") != 0)
			continue;
		char *id = xstrndup(de->d_name, l - 5);
		struct strbuf path = STRBUF_INIT;
		strbuf_addf(&path, "%s/%s", s->dir, de->d_name);
		int fd = open(path.buf, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			recover_one(s, b, id, fd, timeout_ms);
		if (fd >= 0)
			close(fd);
		strbuf_release(&path);
		free(id);
	}
	if (d)
		closedir(d);
}
