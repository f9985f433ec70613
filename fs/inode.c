/*
 * inode.c - the inode table: two hash tables (by number, by path) over
 * the same nodes, one mutex.
 */
#include "fs/inode.h"
#include "backends/util/hmap.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct inode {
	uint64_t ino;
	uint64_t nlookup;
	char *path;
	bool in_path_table;         /* false once a newer inode took the path */
	struct obj_info info;
	/* Which version's bytes the kernel's pages hold (see inode.h). */
	struct obj_info paged;
	bool has_paged;
	unsigned paged_opens;       /* open handles that use the pages */
	struct hmap_node by_ino, by_path;
};

struct itable {
	pthread_mutex_t lock;       /* guards everything below and all nodes */
	struct hmap by_ino;
	struct hmap by_path;        /* the newest inode of each path */
	uint64_t next_ino;
};

static uint64_t hash_path(const char *p)
{
	return XXH3_64bits(p, strlen(p));
}

static uint64_t hash_ino(uint64_t ino)
{
	return ino * 0x9E3779B97F4A7C15ULL;
}

static struct inode *find_ino(struct itable *t, uint64_t ino)
{
	uint64_t h = hash_ino(ino);
	for (struct hmap_node *n = hmap_first(&t->by_ino, h); n;
	     n = hmap_next(n)) {
		struct inode *i = container_of(n, struct inode, by_ino);
		if (i->ino == ino)
			return i;
	}
	return NULL;
}

static struct inode *find_path(struct itable *t, const char *path, uint64_t h)
{
	for (struct hmap_node *n = hmap_first(&t->by_path, h); n;
	     n = hmap_next(n)) {
		struct inode *i = container_of(n, struct inode, by_path);
		if (!strcmp(i->path, path))
			return i;
	}
	return NULL;
}

static void unlink_path(struct itable *t, struct inode *n)
{
	hmap_remove(&t->by_path, &n->by_path);
	n->in_path_table = false;
}

static struct inode *new_node(struct itable *t, const char *path,
			      const struct obj_info *info)
{
	struct inode *n = xcalloc(1, sizeof(*n));
	n->ino = t->next_ino++;
	n->path = xstrdup(path);
	n->in_path_table = true;
	n->info = *info;
	hmap_add(&t->by_ino, &n->by_ino, hash_ino(n->ino));
	hmap_add(&t->by_path, &n->by_path, hash_path(path));
	return n;
}

struct itable *itable_create(void)
{
	struct itable *t = xcalloc(1, sizeof(*t));
	struct obj_info root = { .is_dir = true };

	pthread_mutex_init(&t->lock, NULL);
	hmap_init(&t->by_ino, 1024);
	hmap_init(&t->by_path, 1024);
	t->next_ino = INODE_ROOT;
	struct inode *r = new_node(t, "", &root);
	r->nlookup = 1;      /* pinned */
	return t;
}

static void free_inode(struct hmap_node *n, void *arg)
{
	struct inode *i = container_of(n, struct inode, by_ino);
	(void)arg;
	free(i->path);
	free(i);
}

void itable_destroy(struct itable *t)
{
	if (!t)
		return;
	hmap_release(&t->by_path);   /* the same nodes: freed below */
	hmap_clear(&t->by_ino, free_inode, NULL);
	hmap_release(&t->by_ino);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* n's version is read through the kernel's pages and v is another:
 * n must keep its version (inode.h). */
static bool held_at_other(const struct inode *n, const struct obj_info *v)
{
	return n->paged_opens && !obj_info_same_version(&n->paged, v);
}

/* n stops standing for its path, at the version its pages hold. */
static void detach_held(struct itable *t, struct inode *n)
{
	unlink_path(t, n);
	n->info = n->paged;
}

/* The name has left n, at a version other than v. */
static bool left_at_other(const struct inode *n, const struct obj_info *v)
{
	return !n->in_path_table && !obj_info_same_version(&n->info, v);
}

/* n stands for a version other than v: the name left it, or handles read
 * it at its own (then the name is detached from it here). */
static bool keeps_other(struct itable *t, struct inode *n,
			const struct obj_info *v)
{
	if (left_at_other(n, v))
		return true;
	if (!held_at_other(n, v))
		return false;
	detach_held(t, n);
	return true;
}

uint64_t itable_lookup(struct itable *t, const char *path,
		       const struct obj_info *info)
{
	uint64_t h = hash_path(path), ino;

	pthread_mutex_lock(&t->lock);
	struct inode *n = find_path(t, path, h);
	if (n && n->ino != INODE_ROOT && n->info.is_dir != info->is_dir) {
		unlink_path(t, n);   /* type changed: a new inode takes over */
		n = NULL;
	} else if (n && n->ino != INODE_ROOT && held_at_other(n, info)) {
		detach_held(t, n);   /* read at its version: a new inode */
		n = NULL;
	}
	if (!n)
		n = new_node(t, path, info);
	else if (n->ino != INODE_ROOT)
		n->info = *info;
	n->nlookup++;
	ino = n->ino;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

uint64_t itable_rename(struct itable *t, const char *from, const char *to,
		       const struct obj_info *info)
{
	uint64_t h = hash_path(to), ino = 0;

	pthread_mutex_lock(&t->lock);
	struct inode *n = find_path(t, from, hash_path(from));
	struct inode *old = find_path(t, to, h);
	if (old && old != n && old->ino != INODE_ROOT)
		unlink_path(t, old);
	if (n && n->ino != INODE_ROOT) {
		unlink_path(t, n);
		free(n->path);
		n->path = xstrdup(to);
		n->info = *info;
		hmap_add(&t->by_path, &n->by_path, h);
		n->in_path_table = true;
		ino = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	return ino;
}

uint64_t itable_find(struct itable *t, const char *path)
{
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_path(t, path, hash_path(path));
	uint64_t ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void itable_forget(struct itable *t, uint64_t ino, uint64_t nl)
{
	if (ino == INODE_ROOT)
		return;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n) {
		n->nlookup = n->nlookup > nl ? n->nlookup - nl : 0;
		if (n->nlookup == 0) {
			hmap_remove(&t->by_ino, &n->by_ino);
			if (n->in_path_table)
				unlink_path(t, n);
			free(n->path);
			free(n);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

int itable_get(struct itable *t, uint64_t ino, char **path,
	       struct obj_info *info)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n) {
		if (path)
			*path = xstrdup(n->path);
		if (info)
			*info = n->info;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool itable_named(struct itable *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	bool named = n && n->in_path_table;
	pthread_mutex_unlock(&t->lock);
	return named;
}

enum itable_seen itable_update(struct itable *t, uint64_t ino,
			       const struct obj_info *info,
			       struct obj_info *shown)
{
	enum itable_seen seen = ITABLE_SAME;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n && n->ino != INODE_ROOT) {
		if (keeps_other(t, n, info)) {
			seen = ITABLE_FROZEN;
			if (shown)
				*shown = n->info;
		} else {
			if (!obj_info_same_version(&n->info, info))
				seen = ITABLE_CHANGED;
			n->info = *info;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return seen;
}

uint64_t itable_count(struct itable *t)
{
	pthread_mutex_lock(&t->lock);
	uint64_t c = t->by_ino.count;
	pthread_mutex_unlock(&t->lock);
	return c;
}

int itable_open(struct itable *t, uint64_t ino, const struct obj_info *v,
		enum page_use *use, bool *changed)
{
	int rc = 0;
	*use = PAGES_DROP;
	*changed = false;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (!n) {
		/* not the kernel's: nothing to pair */
	} else if (keeps_other(t, n, v)) {
		rc = -ESTALE;
	} else {
		*changed = !obj_info_same_version(&n->info, v);
		n->info = *v;
		if (n->has_paged && obj_info_same_version(&n->paged, v)) {
			*use = PAGES_KEEP;
		} else {
			n->paged = *v;
			n->has_paged = true;
		}
		n->paged_opens++;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool itable_paged(struct itable *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	bool paged = n && n->paged_opens;
	pthread_mutex_unlock(&t->lock);
	return paged;
}

void itable_close_pages(struct itable *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n && n->paged_opens)
		n->paged_opens--;
	pthread_mutex_unlock(&t->lock);
}
