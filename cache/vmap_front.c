/*
 * vmap_front.c - records of names looked up lately (vmap_front.h).
 *
 * A slot is 192 bytes, three cache lines: its sequence count, then words
 * of the name key, the record's length and the record.  The count is
 * even while the slot is still and odd while one thread changes it; a
 * change takes it from even to odd (a compare-and-swap, so changers
 * exclude each other) and ends two higher than it began.  Every word is
 * an atomic read and written relaxed, ordered by the count's fences as
 * in a seqlock, so a reader never sees a torn copy it keeps.
 */
#include "cache/vmap_front.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define KEY_WORDS (VFRONT_KEY / 8)
#define VAL_WORDS (VFRONT_VAL_MAX / 8)

struct slot {
	_Atomic uint64_t seq;
	_Atomic uint64_t key[KEY_WORDS];
	_Atomic uint64_t len;
	_Atomic uint64_t val[VAL_WORDS];
};

_Static_assert(sizeof(struct slot) == 192, "a slot is three cache lines");

struct vfront {
	struct slot *slots;
	uint64_t mask;
	size_t bytes;
};

struct vfront *vfront_create(unsigned slots_log2)
{
	struct vfront *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->mask = ((uint64_t)1 << slots_log2) - 1;
	f->bytes = (size_t)(f->mask + 1) * sizeof(struct slot);
	/* anonymous pages: zero (every count even, every slot empty), and
	 * only the slots a lookup fills take memory */
	f->slots = mmap(NULL, f->bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->slots == MAP_FAILED) {
		free(f);
		return NULL;
	}
	return f;
}

void vfront_destroy(struct vfront *f)
{
	if (!f)
		return;
	munmap(f->slots, f->bytes);
	free(f);
}

static void words_of(const unsigned char *b, size_t len, uint64_t *w)
{
	memset(w, 0, (len + 7) / 8 * 8);
	memcpy(w, b, len);
}

/* Keys are hashes: their first word spreads them. */
static struct slot *slot_of(struct vfront *f, const unsigned char *key)
{
	uint64_t k;
	memcpy(&k, key, sizeof(k));
	return &f->slots[k & f->mask];
}

uint64_t vfront_ticket(struct vfront *f, const unsigned char *key)
{
	uint64_t s = atomic_load_explicit(&slot_of(f, key)->seq,
					  memory_order_acquire);
	return s & 1 ? 0 : s + 2;
}

size_t vfront_get(struct vfront *f, const unsigned char *key,
		  unsigned char *buf)
{
	struct slot *sl = slot_of(f, key);
	uint64_t k[KEY_WORDS], want[KEY_WORDS], v[VAL_WORDS], len;

	uint64_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
	if (s1 & 1)
		return 0;
	for (int i = 0; i < KEY_WORDS; i++)
		k[i] = atomic_load_explicit(&sl->key[i], memory_order_relaxed);
	len = atomic_load_explicit(&sl->len, memory_order_relaxed);
	if (len > VFRONT_VAL_MAX)
		len = 0;                   /* torn: the count will say so */
	for (uint64_t i = 0; i < (len + 7) / 8; i++)
		v[i] = atomic_load_explicit(&sl->val[i], memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != s1)
		return 0;
	words_of(key, VFRONT_KEY, want);
	if (!len || memcmp(k, want, sizeof(k)))
		return 0;
	memcpy(buf, v, len);
	return len;
}

/* Take sl from the even count s to s + 1: true when this thread changes
 * it now. */
static bool slot_begin(struct slot *sl, uint64_t s)
{
	if (!atomic_compare_exchange_strong_explicit(&sl->seq, &s, s + 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	atomic_thread_fence(memory_order_release);
	return true;
}

static void slot_end(struct slot *sl, uint64_t s)
{
	atomic_store_explicit(&sl->seq, s + 2, memory_order_release);
}

void vfront_fill(struct vfront *f, const unsigned char *key, uint64_t ticket,
		 const unsigned char *v, size_t len)
{
	struct slot *sl = slot_of(f, key);
	uint64_t k[KEY_WORDS], w[VAL_WORDS];

	if (!ticket || !len || len > VFRONT_VAL_MAX ||
	    !slot_begin(sl, ticket - 2))
		return;                    /* the slot changed since */
	words_of(key, VFRONT_KEY, k);
	words_of(v, len, w);
	for (int i = 0; i < KEY_WORDS; i++)
		atomic_store_explicit(&sl->key[i], k[i], memory_order_relaxed);
	atomic_store_explicit(&sl->len, len, memory_order_relaxed);
	for (size_t i = 0; i < (len + 7) / 8; i++)
		atomic_store_explicit(&sl->val[i], w[i], memory_order_relaxed);
	slot_end(sl, ticket - 2);
}

void vfront_forget(struct vfront *f, const unsigned char *key)
{
	struct slot *sl = slot_of(f, key);

	/* The slot must change after this call began, even when a lookup
	 * is filling it now (with a record that may be the older one):
	 * wait for that fill to end, then change the slot again. */
	for (;;) {
		uint64_t s = atomic_load_explicit(&sl->seq,
						  memory_order_relaxed);
		if (!(s & 1) && slot_begin(sl, s)) {
			atomic_store_explicit(&sl->len, 0,
					      memory_order_relaxed);
			slot_end(sl, s);
			return;
		}
		sched_yield();
	}
}
