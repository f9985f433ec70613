/*
 * hmap.h - an intrusive chained hash table, and a list in order of use.
 *
 * The table holds nodes embedded in the caller's structs, keyed by a
 * 64-bit hash the caller computes (XXH3 of the key, or a mixed integer);
 * the caller compares full keys while walking the nodes of one hash, so
 * collisions are its business, and a struct may sit in several tables
 * through several nodes.  Buckets double when the table holds as many
 * nodes as buckets.  The table never allocates or frees nodes.
 *
 *   struct thing { struct hmap_node hn; struct lru_link use; char *key; };
 *   for (n = hmap_first(&m, h); n; n = hmap_next(n))
 *           if (!strcmp(container_of(n, struct thing, hn)->key, key)) ...
 *
 * lru_link is a circular doubly linked list with a sentinel head: the
 * oldest at head.next, lru_touch() moves a node to the newest end.
 *
 * Thread safety: none; the owner's lock guards a table and its lists.
 * Allocation failure aborts (xcalloc).
 */
#ifndef HYLAKE_HMAP_H
#define HYLAKE_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct hmap_node {
	struct hmap_node *next;   /* in the bucket's chain */
	uint64_t hash;
};

struct hmap {
	struct hmap_node **buckets;
	size_t nbuckets;          /* a power of two */
	size_t count;
};

/* An empty table of at least min_buckets buckets (rounded up to a power
 * of two, at least 16).  hmap_release frees the buckets, not the nodes. */
void hmap_init(struct hmap *m, size_t min_buckets);
void hmap_release(struct hmap *m);

/* Add n under hash; a node already there with the same hash stays too. */
void hmap_add(struct hmap *m, struct hmap_node *n, uint64_t hash);

/* Take n out of m.  Returns false when n was not in m. */
bool hmap_remove(struct hmap *m, struct hmap_node *n);

/* The first node added under hash that is still there (newest first),
 * then the next with the same hash; NULL after the last. */
struct hmap_node *hmap_first(const struct hmap *m, uint64_t hash);
struct hmap_node *hmap_next(const struct hmap_node *n);

/* Take every node out of m, calling fn(node, arg) on each (fn may free
 * the struct around it, and must not use m). */
void hmap_clear(struct hmap *m, void (*fn)(struct hmap_node *n, void *arg),
		void *arg);

struct lru_link {
	struct lru_link *prev, *next;
};

static inline void lru_init(struct lru_link *head)
{
	head->prev = head->next = head;
}

static inline bool lru_empty(const struct lru_link *head)
{
	return head->next == head;
}

/* Unlink n from its list (it must be in one). */
static inline void lru_unlink(struct lru_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Add n at the newest end of head's list. */
static inline void lru_push(struct lru_link *head, struct lru_link *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Move n (in head's list) to the newest end. */
static inline void lru_touch(struct lru_link *head, struct lru_link *n)
{
	lru_unlink(n);
	lru_push(head, n);
}

/* The oldest node, or NULL when the list is empty. */
static inline struct lru_link *lru_oldest(const struct lru_link *head)
{
	return lru_empty(head) ? NULL : head->next;
}

#endif
