/*
 * inode.c - the inode table: two chained hash tables (by number, by
 * path) over the same nodes, grown by doubling, one mutex.
 */
#include "fs/inode.h"
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
	uint64_t path_hash;
	bool in_path_table;         /* false once a newer inode took the path */
	struct obj_info info;
	/* Which version's bytes the kernel's pages hold (see inode.h). */
	struct obj_info paged;
	bool has_paged;
	unsigned paged_opens;       /* open handles that use the pages */
	struct inode *next_ino;
	struct inode *next_path;
};

struct itable {
	pthread_mutex_t lock;       /* guards everything below and all nodes */
	struct inode **by_ino;
	struct inode **by_path;
	size_t nbuckets;            /* power of two, same for both tables */
	size_t count;
	uint64_t next_ino;
};

static uint64_t hash_path(const char *p)
{
	return XXH3_64bits(p, strlen(p));
}

static size_t slot(const struct itable *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (t->nbuckets - 1);
}

static void link_node(struct itable *t, struct inode *n)
{
	size_t i = slot(t, n->ino * 0x9E3779B97F4A7C15ULL);
	n->next_ino = t->by_ino[i];
	t->by_ino[i] = n;
	if (n->in_path_table) {
		size_t j = slot(t, n->path_hash);
		n->next_path = t->by_path[j];
		t->by_path[j] = n;
	}
}

static void grow(struct itable *t)
{
	size_t old_n = t->nbuckets;
	struct inode **old = t->by_ino;

	t->nbuckets *= 2;
	t->by_ino = xcalloc(t->nbuckets, sizeof(*t->by_ino));
	free(t->by_path);
	t->by_path = xcalloc(t->nbuckets, sizeof(*t->by_path));
	for (size_t i = 0; i < old_n; i++) {
		struct inode *n = old[i];
		while (n) {
			struct inode *next = n->next_ino;
			link_node(t, n);
			n = next;
		}
	}
	free(old);
}

static struct inode *find_ino(struct itable *t, uint64_t ino)
{
	struct inode *n = t->by_ino[slot(t, ino * 0x9E3779B97F4A7C15ULL)];
	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

static struct inode *find_path(struct itable *t, const char *path, uint64_t h)
{
	struct inode *n = t->by_path[slot(t, h)];
	while (n && (n->path_hash != h || strcmp(n->path, path) != 0))
		n = n->next_path;
	return n;
}

static void unlink_path(struct itable *t, struct inode *n)
{
	struct inode **pp = &t->by_path[slot(t, n->path_hash)];
	while (*pp && *pp != n)
		pp = &(*pp)->next_path;
	if (*pp)
		*pp = n->next_path;
	n->in_path_table = false;
}

static struct inode *new_node(struct itable *t, const char *path,
			      const struct obj_info *info)
{
	struct inode *n = xcalloc(1, sizeof(*n));
	n->ino = t->next_ino++;
	n->path = xstrdup(path);
	n->path_hash = hash_path(path);
	n->in_path_table = true;
	n->info = *info;
	if (t->count + 1 > t->nbuckets)
		grow(t);
	link_node(t, n);
	t->count++;
	return n;
}

struct itable *itable_create(void)
{
	struct itable *t = xcalloc(1, sizeof(*t));
	struct obj_info root = { .is_dir = true };

	pthread_mutex_init(&t->lock, NULL);
	t->nbuckets = 1024;
	t->by_ino = xcalloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_path = xcalloc(t->nbuckets, sizeof(*t->by_path));
	t->next_ino = INODE_ROOT;
	struct inode *r = new_node(t, "", &root);
	r->nlookup = 1;      /* pinned */
	return t;
}

void itable_destroy(struct itable *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct inode *n = t->by_ino[i];
		while (n) {
			struct inode *next = n->next_ino;
			free(n->path);
			free(n);
			n = next;
		}
	}
	free(t->by_ino);
	free(t->by_path);
	pthread_mutex_destroy(&t->lock);
	free(t);
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

void itable_forget(struct itable *t, uint64_t ino, uint64_t nl)
{
	if (ino == INODE_ROOT)
		return;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n) {
		n->nlookup = n->nlookup > nl ? n->nlookup - nl : 0;
		if (n->nlookup == 0) {
			struct inode **pp =
				&t->by_ino[slot(t, ino * 0x9E3779B97F4A7C15ULL)];
			while (*pp != n)
				pp = &(*pp)->next_ino;
			*pp = n->next_ino;
			if (n->in_path_table)
				unlink_path(t, n);
			t->count--;
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

bool itable_update(struct itable *t, uint64_t ino, const struct obj_info *info)
{
	bool changed = false;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n && n->ino != INODE_ROOT) {
		changed = !obj_info_same_version(&n->info, info);
		n->info = *info;
	}
	pthread_mutex_unlock(&t->lock);
	return changed;
}

uint64_t itable_count(struct itable *t)
{
	pthread_mutex_lock(&t->lock);
	uint64_t c = t->count;
	pthread_mutex_unlock(&t->lock);
	return c;
}

enum page_use itable_open_pages(struct itable *t, uint64_t ino,
				const struct obj_info *v)
{
	enum page_use use = PAGES_BYPASS;
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n) {
		bool same = n->has_paged && obj_info_same_version(&n->paged, v);
		if (same) {
			use = PAGES_KEEP;
		} else if (!n->paged_opens) {
			use = PAGES_DROP;
			n->paged = *v;
			n->has_paged = true;
		}
		if (use != PAGES_BYPASS)
			n->paged_opens++;
	}
	pthread_mutex_unlock(&t->lock);
	return use;
}

void itable_close_pages(struct itable *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct inode *n = find_ino(t, ino);
	if (n && n->paged_opens)
		n->paged_opens--;
	pthread_mutex_unlock(&t->lock);
}
