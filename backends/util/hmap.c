/*
 * hmap.c - the intrusive chained hash table of hmap.h.
 *
 * A bucket is chosen by the low bits of the hash after one more mixing
 * step, so callers may pass weak hashes (an inode number times a
 * constant) as well as XXH3 outputs.
 */
#include "backends/util/hmap.h"
#include "backends/util/strbuf.h"

#include <stdlib.h>

static size_t bucket_of(const struct hmap *m, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (m->nbuckets - 1);
}

void hmap_init(struct hmap *m, size_t min_buckets)
{
	size_t n = 16;
	while (n < min_buckets)
		n *= 2;
	m->buckets = xcalloc(n, sizeof(*m->buckets));
	m->nbuckets = n;
	m->count = 0;
}

void hmap_release(struct hmap *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->count = 0;
}

static void grow(struct hmap *m)
{
	struct hmap_node **old = m->buckets;
	size_t old_n = m->nbuckets;

	m->nbuckets *= 2;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	for (size_t i = 0; i < old_n; i++)
		for (struct hmap_node *n = old[i], *next; n; n = next) {
			next = n->next;
			size_t b = bucket_of(m, n->hash);
			n->next = m->buckets[b];
			m->buckets[b] = n;
		}
	free(old);
}

void hmap_add(struct hmap *m, struct hmap_node *n, uint64_t hash)
{
	if (m->count >= m->nbuckets)
		grow(m);
	size_t b = bucket_of(m, hash);
	n->hash = hash;
	n->next = m->buckets[b];
	m->buckets[b] = n;
	m->count++;
}

bool hmap_remove(struct hmap *m, struct hmap_node *n)
{
	struct hmap_node **pp = &m->buckets[bucket_of(m, n->hash)];

	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (!*pp)
		return false;
	*pp = n->next;
	n->next = NULL;
	m->count--;
	return true;
}

struct hmap_node *hmap_first(const struct hmap *m, uint64_t hash)
{
	struct hmap_node *n = m->buckets[bucket_of(m, hash)];
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_next(const struct hmap_node *n)
{
	uint64_t hash = n->hash;
	for (n = n->next; n; n = n->next)
		if (n->hash == hash)
			return (struct hmap_node *)n;
	return NULL;
}

void hmap_clear(struct hmap *m, void (*fn)(struct hmap_node *n, void *arg),
		void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_node *n = m->buckets[i], *next;
		m->buckets[i] = NULL;
		for (; n; n = next) {
			next = n->next;
			n->next = NULL;
			fn(n, arg);
		}
	}
	m->count = 0;
}
