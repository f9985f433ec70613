/*
 * test_hmap.c - the intrusive hash table and the list in order of use.
 */
#include "backends/util/hmap.h"
#include "tests/unit/check.h"

#include <stdlib.h>

struct item {
	struct hmap_node hn;
	struct lru_link use;
	int key;
	bool freed;
};

#define N 5000

static struct item items[N];

/* A weak hash on purpose: every 7 keys share one, so chains are walked
 * by hash and then by key. */
static uint64_t weak(int key)
{
	return (uint64_t)(key / 7);
}

static struct item *find(struct hmap *m, int key)
{
	for (struct hmap_node *n = hmap_first(m, weak(key)); n;
	     n = hmap_next(n)) {
		struct item *it = container_of(n, struct item, hn);
		if (it->key == key)
			return it;
	}
	return NULL;
}

static void mark_freed(struct hmap_node *n, void *arg)
{
	container_of(n, struct item, hn)->freed = true;
	(*(int *)arg)++;
}

static void table(void)
{
	struct hmap m;

	hmap_init(&m, 3);
	CHECK_INT(m.nbuckets, 16);
	for (int i = 0; i < N; i++) {
		items[i].key = i;
		hmap_add(&m, &items[i].hn, weak(i));
	}
	CHECK_INT(m.count, N);
	CHECK(m.nbuckets >= N);                  /* grew */
	for (int i = 0; i < N; i += 13)
		CHECK(find(&m, i) == &items[i]);
	CHECK(find(&m, N + 3) == NULL);
	/* remove every other key; the rest stay findable */
	for (int i = 0; i < N; i += 2)
		CHECK(hmap_remove(&m, &items[i].hn));
	CHECK(!hmap_remove(&m, &items[0].hn));   /* not there any more */
	CHECK_INT(m.count, N / 2);
	for (int i = 0; i < 100; i++)
		CHECK(find(&m, i) == (i % 2 ? &items[i] : NULL));
	int visited = 0;
	hmap_clear(&m, mark_freed, &visited);
	CHECK_INT(visited, N / 2);
	CHECK_INT(m.count, 0);
	CHECK(items[1].freed && !items[2].freed);
	CHECK(find(&m, 1) == NULL);
	hmap_release(&m);
}

static void order_of_use(void)
{
	struct lru_link head;
	struct item a = { .key = 1 }, b = { .key = 2 }, c = { .key = 3 };

	lru_init(&head);
	CHECK(lru_oldest(&head) == NULL);
	lru_push(&head, &a.use);
	lru_push(&head, &b.use);
	lru_push(&head, &c.use);
	CHECK(lru_oldest(&head) == &a.use);
	lru_touch(&head, &a.use);                /* a is the newest now */
	CHECK(lru_oldest(&head) == &b.use);
	lru_unlink(&b.use);
	CHECK(lru_oldest(&head) == &c.use);
	lru_unlink(&c.use);
	CHECK(lru_oldest(&head) == &a.use);
	lru_unlink(&a.use);
	CHECK(lru_empty(&head));
}

int main(void)
{
	table();
	order_of_use();
	return check_summary();
}
