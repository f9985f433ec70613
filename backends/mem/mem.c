/*
 * mem.c - the memory store (see mem.h).
 *
 * Objects live in one array sorted by name (byte order, as GCS and S3
 * list), each pointing at its current version.  A version is immutable
 * and reference counted: a read checks under the lock that its pinned
 * version is still the current one, takes a reference and copies the
 * bytes after unlocking, so a replacement meanwhile cannot mix versions.
 *
 * Listing tokens are the last key of the page, with its kind: "o:name"
 * (an object: go on after it) or "p:dir/" (a folder: go on after every
 * name under it).
 */
#include "backends/mem/mem.h"
#include "backends/backend.h"
#include "backends/util/crc32c.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_PAGE_MAX 1000
#define MEM_PUT_MAX (1ULL << 30)      /* what put() will read from a file */

struct mem_ver {
	atomic_int refs;          /* the store's entry, and reads in progress */
	uint64_t gen;             /* the store's own generation */
	struct obj_info info;
	unsigned char *data;      /* NULL: pattern bytes from seed */
	uint64_t seed;
};

struct mem_entry {
	char *name;
	struct mem_ver *v;
};

struct mem_store {
	struct backend base;
	pthread_mutex_t lock;     /* guards ents, n, cap, last_gen */
	struct mem_entry *ents;   /* sorted by name */
	size_t n, cap;
	uint64_t last_gen;
};

struct mem_obj {
	struct bobj base;
	uint64_t gen;             /* the pinned version */
};

static struct mem_store *to_mem(struct backend *b)
{
	return (struct mem_store *)b;
}

static void ver_unref(struct mem_ver *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
		free(v->data);
		free(v);
	}
}

unsigned char mem_pattern_byte(uint64_t seed, uint64_t off)
{
	uint64_t x = (off / 8) * 0x9E3779B97F4A7C15ULL ^
		     seed * 0xC2B2AE3D27D4EB4FULL;
	return (unsigned char)(x >> ((off % 8) * 8));
}

/* First index whose name is >= key.  Lock held. */
static size_t lower_bound(const struct mem_store *ms, const char *key)
{
	size_t lo = 0, hi = ms->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(ms->ents[mid].name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry named name, or NULL.  Lock held. */
static struct mem_entry *find(struct mem_store *ms, const char *name)
{
	size_t i = lower_bound(ms, name);
	return i < ms->n && !strcmp(ms->ents[i].name, name) ? &ms->ents[i]
							     : NULL;
}

static bool starts_with(const char *s, const char *prefix, size_t plen)
{
	return strncmp(s, prefix, plen) == 0;
}

static bool valid_name(const char *name)
{
	return name && *name && *name != '/';
}

/* A version of len bytes (data, or the pattern of seed), with the info
 * an unstamped copy reports; the generation comes at insertion. */
static struct mem_ver *ver_new(unsigned char *data, uint64_t len,
			       uint64_t seed, const struct obj_info *stamp)
{
	struct mem_ver *v = xcalloc(1, sizeof(*v));
	atomic_init(&v->refs, 1);
	v->data = data;
	v->seed = seed;
	v->info.size = len;
	v->info.mtime_ns = stamp && stamp->mtime_ns ? stamp->mtime_ns
						     : wall_ns();
	v->info.metageneration = 1;
	if (data) {
		v->info.crc32c = crc32c_update(0, data, (size_t)len);
		v->info.has_crc32c = true;
		v->info.has_md5 = EVP_Digest(data, (size_t)len, v->info.md5,
					     NULL, EVP_md5(), NULL) == 1;
	}
	if (stamp) {              /* a replica reports what it is stamped */
		v->info.generation = stamp->generation;
		v->info.crc32c = stamp->has_crc32c ? stamp->crc32c : 0;
		v->info.has_crc32c = stamp->has_crc32c;
	}
	return v;
}

/* Does pre hold for e (NULL: no such name)?  0, -EEXIST or -ESTALE, as
 * GCS answers (write_pre_errno).  Lock held. */
static int pre_check(const struct mem_entry *e, const struct write_pre *pre)
{
	if (!pre || pre->kind == WRITE_PRE_NONE)
		return 0;
	if (pre->kind == WRITE_PRE_ABSENT)
		return e ? -EEXIST : 0;
	if (!e || e->v->gen != pre->generation)
		return -ESTALE;
	return !pre->metageneration ||
	       e->v->info.metageneration == pre->metageneration ? 0 : -ESTALE;
}

/* Make v the current version of name if pre holds (NULL: always);
 * returns its generation, with its info in *info (may be NULL), or
 * pre_check's error (v is then the caller's still). */
static int64_t insert(struct mem_store *ms, const char *name,
		      struct mem_ver *v, bool stamped,
		      const struct write_pre *pre, struct obj_info *info)
{
	struct mem_ver *old = NULL;

	pthread_mutex_lock(&ms->lock);
	int rc = pre_check(find(ms, name), pre);
	if (rc < 0) {
		pthread_mutex_unlock(&ms->lock);
		return rc;
	}
	v->gen = ++ms->last_gen;
	if (!stamped)
		v->info.generation = v->gen;
	snprintf(v->info.etag, sizeof(v->info.etag), "%" PRIu64, v->gen);
	size_t i = lower_bound(ms, name);
	if (i < ms->n && !strcmp(ms->ents[i].name, name)) {
		old = ms->ents[i].v;
		ms->ents[i].v = v;
	} else {
		if (ms->n == ms->cap) {
			ms->cap = ms->cap ? 2 * ms->cap : 16;
			ms->ents = xrealloc(ms->ents,
					    ms->cap * sizeof(*ms->ents));
		}
		memmove(&ms->ents[i + 1], &ms->ents[i],
			(ms->n - i) * sizeof(*ms->ents));
		ms->ents[i] = (struct mem_entry){ xstrdup(name), v };
		ms->n++;
	}
	int64_t gen = (int64_t)v->gen;
	if (info)
		*info = v->info;
	pthread_mutex_unlock(&ms->lock);
	ver_unref(old);
	return gen;
}

int64_t mem_put(struct backend *b, const char *name, const void *data,
		size_t len, const struct obj_info *stamp)
{
	if (!valid_name(name))
		return -EINVAL;
	unsigned char *copy = xmalloc(len ? len : 1);
	if (len)
		memcpy(copy, data, len);
	return insert(to_mem(b), name, ver_new(copy, len, 0, stamp),
		      stamp != NULL, NULL, NULL);
}

int64_t mem_put_pattern(struct backend *b, const char *name, uint64_t size,
			uint64_t seed, const struct obj_info *stamp)
{
	if (!valid_name(name))
		return -EINVAL;
	return insert(to_mem(b), name, ver_new(NULL, size, seed, stamp),
		      stamp != NULL, NULL, NULL);
}

/* Delete name if pre holds (NULL: always): 0, -ENOENT or pre_check's. */
static int delete_if(struct mem_store *ms, const char *name,
		     const struct write_pre *pre)
{
	struct mem_ver *old = NULL;
	char *oldname = NULL;

	pthread_mutex_lock(&ms->lock);
	struct mem_entry *e = find(ms, name);
	int rc = e ? pre_check(e, pre) : -ENOENT;
	if (rc == 0) {
		old = e->v;
		oldname = e->name;
		size_t i = (size_t)(e - ms->ents);
		memmove(&ms->ents[i], &ms->ents[i + 1],
			(ms->n - i - 1) * sizeof(*ms->ents));
		ms->n--;
	}
	pthread_mutex_unlock(&ms->lock);
	free(oldname);
	ver_unref(old);
	return rc;
}

int mem_delete(struct backend *b, const char *name)
{
	return delete_if(to_mem(b), name, NULL);
}

int64_t mem_generation(struct backend *b, const char *name)
{
	struct mem_store *ms = to_mem(b);
	pthread_mutex_lock(&ms->lock);
	struct mem_entry *e = find(ms, name);
	int64_t gen = e ? (int64_t)e->v->gen : -ENOENT;
	pthread_mutex_unlock(&ms->lock);
	return gen;
}

/* ------------------------------------------------------------ the seam */

static int mem_stat(struct backend *b, const char *name,
		    struct obj_info *out, const struct deadline *dl)
{
	struct mem_store *ms = to_mem(b);
	struct strbuf dir = STRBUF_INIT;
	int rc = -ENOENT;
	(void)dl;

	memset(out, 0, sizeof(*out));
	if (!*name) {
		out->is_dir = true;
		return 0;
	}
	strbuf_addf(&dir, "%s/", name);
	pthread_mutex_lock(&ms->lock);
	size_t i = lower_bound(ms, dir.buf);
	struct mem_entry *e;
	if (i < ms->n && starts_with(ms->ents[i].name, dir.buf, dir.len)) {
		out->is_dir = true;           /* the folder wins */
		rc = 0;
	} else if ((e = find(ms, name))) {
		*out = e->v->info;
		rc = 0;
	}
	pthread_mutex_unlock(&ms->lock);
	strbuf_release(&dir);
	return rc;
}

/* One entry of a page, copied out so that cb runs without the lock. */
struct page_entry {
	char *name;
	bool is_prefix;
	struct obj_info info;
};

/* Where a page starts: after the token's key, else at start_at or the
 * prefix.  Lock held. */
static size_t page_start(struct mem_store *ms, const struct list_req *req)
{
	const char *t = req->token;
	if (t) {
		size_t i = lower_bound(ms, t + 2);
		size_t klen = strlen(t + 2);
		if (t[0] == 'p')
			while (i < ms->n && starts_with(ms->ents[i].name, t + 2,
							klen))
				i++;
		else if (i < ms->n && !strcmp(ms->ents[i].name, t + 2))
			i++;
		return i;
	}
	size_t i = lower_bound(ms, req->prefix);
	if (req->start_at && *req->start_at) {
		size_t j = lower_bound(ms, req->start_at);
		if (j > i)
			i = j;
	}
	return i;
}

/* Fill pg (up to max entries) with the page; *next gets the token when
 * more names follow.  Lock held. */
static size_t page_fill(struct mem_store *ms, const struct list_req *req,
			struct page_entry *pg, unsigned max, char **next)
{
	const char *prefix = req->prefix;
	size_t plen = strlen(prefix), n = 0;
	const char *delim = req->delimiter && *req->delimiter ? req->delimiter
							      : NULL;
	size_t i = page_start(ms, req);

	while (i < ms->n && starts_with(ms->ents[i].name, prefix, plen)) {
		const char *name = ms->ents[i].name;
		if (n == max) {
			struct strbuf tok = STRBUF_INIT;
			strbuf_addf(&tok, "%c:%s", pg[n - 1].is_prefix ? 'p' : 'o',
				    pg[n - 1].name);
			*next = strbuf_detach(&tok, NULL);
			break;
		}
		const char *d = delim ? strstr(name + plen, delim) : NULL;
		if (d) {
			size_t clen = (size_t)(d - name) + strlen(delim);
			pg[n] = (struct page_entry){ .name = xstrndup(name, clen),
						     .is_prefix = true };
			while (i < ms->n && starts_with(ms->ents[i].name,
							pg[n].name, clen))
				i++;
		} else {
			pg[n] = (struct page_entry){ xstrdup(name), false,
						     ms->ents[i].v->info };
			i++;
		}
		n++;
	}
	return n;
}

static int mem_list(struct backend *b, const struct list_req *req,
		    list_cb cb, void *arg, char **next_token,
		    const struct deadline *dl)
{
	struct mem_store *ms = to_mem(b);
	unsigned max = req->max_keys && req->max_keys <= MEM_PAGE_MAX
		       ? req->max_keys : MEM_PAGE_MAX;
	int rc = 0;
	(void)dl;

	*next_token = NULL;
	if (req->token && (strlen(req->token) < 2 || req->token[1] != ':' ||
			   (req->token[0] != 'o' && req->token[0] != 'p')))
		return -EINVAL;
	struct page_entry *pg = xcalloc(max, sizeof(*pg));
	pthread_mutex_lock(&ms->lock);
	size_t n = page_fill(ms, req, pg, max, next_token);
	pthread_mutex_unlock(&ms->lock);
	for (size_t i = 0; i < n; i++) {
		struct list_entry e = { .name = pg[i].name,
					.is_prefix = pg[i].is_prefix,
					.info = pg[i].info };
		if (rc == 0)
			rc = cb(arg, &e);
		free(pg[i].name);
	}
	free(pg);
	if (rc < 0) {
		free(*next_token);
		*next_token = NULL;
	}
	return rc;
}

static struct bobj *obj_new(struct backend *b, const char *name,
			    const struct obj_info *info, uint64_t gen)
{
	struct mem_obj *o = xcalloc(1, sizeof(*o));
	bobj_init(&o->base, b, name);
	o->base.info = *info;
	o->gen = gen;
	return &o->base;
}

static int mem_open(struct backend *b, const char *name, struct bobj **out,
		    const struct deadline *dl)
{
	struct mem_store *ms = to_mem(b);
	(void)dl;

	pthread_mutex_lock(&ms->lock);
	struct mem_entry *e = find(ms, name);
	if (e)
		*out = obj_new(b, name, &e->v->info, e->v->gen);
	pthread_mutex_unlock(&ms->lock);
	return e ? 0 : -ENOENT;
}

/* Pinned by the etag (this store's generation), or, for a version
 * known by its generation alone, by that (unstamped copies: the same). */
static int mem_open_pinned(struct backend *b, const char *name,
			   const struct obj_info *info, struct bobj **out)
{
	uint64_t gen = info->generation;
	if (info->etag[0]) {
		char *end;
		errno = 0;
		gen = strtoull(info->etag, &end, 10);
		if (errno || *end)
			return -EINVAL;
	}
	if (!gen)
		return -EINVAL;
	*out = obj_new(b, name, info, gen);
	return 0;
}

static ssize_t mem_read(struct bobj *ob, void *buf, size_t len, uint64_t off,
			const struct deadline *dl)
{
	struct mem_obj *o = (struct mem_obj *)ob;
	struct mem_store *ms = to_mem(ob->b);
	struct mem_ver *v = NULL;
	(void)dl;

	pthread_mutex_lock(&ms->lock);
	struct mem_entry *e = find(ms, ob->name);
	if (e && e->v->gen == o->gen) {
		v = e->v;
		atomic_fetch_add(&v->refs, 1);
	}
	pthread_mutex_unlock(&ms->lock);
	if (!v)
		return -ESTALE;             /* replaced or deleted */
	uint64_t size = v->info.size;
	size_t n = off >= size ? 0 : (size_t)(size - off < len ? size - off
							       : len);
	if (v->data)
		memcpy(buf, v->data + off, n);
	else
		for (size_t i = 0; i < n; i++)
			((unsigned char *)buf)[i] = mem_pattern_byte(v->seed,
								     off + i);
	ver_unref(v);
	return (ssize_t)n;
}

static void mem_close(struct bobj *ob)
{
	bobj_release(ob);
	free(ob);
}

/* All size bytes of fd from offset 0, or -errno (-EIO when shorter). */
static int slurp(int fd, uint64_t size, unsigned char **out)
{
	unsigned char *buf = xmalloc(size ? (size_t)size : 1);
	uint64_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, buf + got, (size_t)(size - got),
				  (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? -errno : -EIO;
			free(buf);
			return e;
		}
		got += (uint64_t)r;
	}
	*out = buf;
	return 0;
}

static int mem_put_op(struct backend *b, const char *name, int fd,
		      uint64_t size, const struct obj_info *stamp,
		      const struct deadline *dl)
{
	unsigned char *data = NULL;
	(void)dl;

	if (!valid_name(name) || name[strlen(name) - 1] == '/')
		return -EINVAL;
	if (size > MEM_PUT_MAX)
		return -EFBIG;
	int rc = slurp(fd, size, &data);
	if (rc < 0)
		return rc;
	struct mem_ver *v = ver_new(data, size, 0, stamp);
	if (stamp->has_md5 && memcmp(stamp->md5, v->info.md5, 16) != 0) {
		ver_unref(v);             /* not what was sent: refuse it */
		return -EIO;
	}
	insert(to_mem(b), name, v, true, NULL, NULL);
	return 0;
}

/* ------------------------------------------------------------- writes */

/* Bytes gather in memory; the version appears at commit, if pre holds. */
struct mem_writer {
	struct bwriter base;
	unsigned char *data;
	size_t cap;
};

static int mem_writer_open(struct backend *b, const char *name,
			   const struct write_pre *pre, struct bwriter **out,
			   const struct deadline *dl)
{
	(void)dl;
	if (!valid_name(name) || name[strlen(name) - 1] == '/')
		return -EINVAL;
	struct mem_writer *w = xcalloc(1, sizeof(*w));
	bwriter_init(&w->base, b, name, pre);
	*out = &w->base;
	return 0;
}

static int mem_writer_write(struct bwriter *bw, const void *buf, size_t len,
			    const struct deadline *dl)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	(void)dl;
	if (w->base.written + len > MEM_PUT_MAX)
		return -EFBIG;
	if (w->base.written + len > w->cap) {
		w->cap = 2 * (w->base.written + len);
		w->data = xrealloc(w->data, w->cap);
	}
	memcpy(w->data + w->base.written, buf, len);
	w->base.written += len;
	return 0;
}

static void mem_writer_abort(struct bwriter *bw)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	free(w->data);
	bwriter_release(bw);
	free(w);
}

static int mem_writer_commit(struct bwriter *bw, struct obj_info *out,
			     const struct deadline *dl)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	(void)dl;
	struct mem_ver *v = ver_new(w->data ? w->data : xmalloc(1),
				    w->base.written, 0, NULL);
	w->data = NULL;
	int64_t rc = insert(to_mem(bw->b), bw->name, v, false, &bw->pre, out);
	if (rc < 0)
		ver_unref(v);
	mem_writer_abort(bw);
	return rc < 0 ? (int)rc : 0;
}

static int mem_remove(struct backend *b, const char *name,
		      const struct write_pre *pre, const struct deadline *dl)
{
	(void)dl;
	return delete_if(to_mem(b), name, pre);
}

/* The store keeps no custom metadata: an update only counts (the
 * metageneration), which is all a lease asks of it. */
static int mem_set_meta(struct backend *b, const char *name,
			const struct write_pre *pre, const struct meta_kv *kv,
			size_t n, struct obj_info *out,
			const struct deadline *dl)
{
	struct mem_store *ms = to_mem(b);
	(void)kv;
	(void)n;
	(void)dl;

	pthread_mutex_lock(&ms->lock);
	struct mem_entry *e = find(ms, name);
	int rc = e ? pre_check(e, pre) : -ENOENT;
	if (rc == 0) {
		e->v->info.metageneration++;
		*out = e->v->info;
	}
	pthread_mutex_unlock(&ms->lock);
	return rc;
}

static void mem_probe(struct backend *b, struct probe_result *res,
		      const struct deadline *dl)
{
	struct mem_store *ms = to_mem(b);
	(void)dl;
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&ms->lock);
	snprintf(res->message, sizeof(res->message), "memory, %zu objects",
		 ms->n);
	pthread_mutex_unlock(&ms->lock);
}

static void mem_destroy(struct backend *b)
{
	struct mem_store *ms = to_mem(b);
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->ents[i].name);
		ver_unref(ms->ents[i].v);
	}
	free(ms->ents);
	pthread_mutex_destroy(&ms->lock);
	backend_release(b);
	free(ms);
}

static const struct backend_ops mem_ops = {
	.type = "mem",
	.stat = mem_stat,
	.list = mem_list,
	.open = mem_open,
	.read = mem_read,
	.open_pinned = mem_open_pinned,
	.close = mem_close,
	.put = mem_put_op,
	.writer_open = mem_writer_open,
	.writer_write = mem_writer_write,
	.writer_commit = mem_writer_commit,
	.writer_abort = mem_writer_abort,
	.remove = mem_remove,
	.set_meta = mem_set_meta,
	.probe = mem_probe,
	.destroy = mem_destroy,
};

static struct backend *create(const char *name, unsigned caps)
{
	struct mem_store *ms = xcalloc(1, sizeof(*ms));
	struct strbuf desc = STRBUF_INIT;

	pthread_mutex_init(&ms->lock, NULL);
	strbuf_addf(&desc, "mem %s", name);
	backend_init(&ms->base, &mem_ops, name, desc.buf,
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT | caps);
	strbuf_release(&desc);
	return &ms->base;
}

struct backend *mem_create(const char *name)
{
	return create(name, 0);
}

struct backend *mem_create_writable(const char *name)
{
	return create(name, BACKEND_WRITE);
}
