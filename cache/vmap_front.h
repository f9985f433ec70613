/*
 * vmap_front.h - the version map's records of names looked up lately,
 * held in memory ahead of LMDB.
 *
 * A lookup in a map of millions of names walks LMDB's tree through pages
 * that are no longer in the CPU's caches: about a microsecond of memory
 * misses.  A mount opens the same names again and again (a query's
 * files, a table's log), so the records of names just looked up are kept
 * here: a direct-mapped table of slots, each a name key and a copy of its
 * record (every fact of the name), filled by lookups and emptied by the
 * writer.
 *
 * Never an older record than the map's: a slot is filled only from a
 * read that began after the slot's last change.  A lookup takes a ticket
 * (vfront_ticket) before it looks at the batches of facts not yet
 * committed, and fills with it.  The writer, once a batch is committed,
 * forgets the slot of each name the batch wrote, before the batch's
 * facts leave the batches.  So a lookup that read a record before that
 * commit took its ticket before the forget, and its fill fails (a forget
 * that meets a fill in progress waits for it and empties the slot
 * again); a lookup that took its ticket after the forget reads the
 * committed record.  A fact still queued is found in the batches, which
 * a lookup looks at first: the front holds what LMDB holds, never what
 * is queued, and answers only for facts not queued.
 *
 * Slots are read without a lock (a sequence count per slot, as a seqlock:
 * a copy is kept only when the count did not move while it was made).
 *
 * Thread safety: all functions but vfront_create/vfront_destroy may be
 * called from any thread at once.
 */
#ifndef HYLAKE_VMAP_FRONT_H
#define HYLAKE_VMAP_FRONT_H

#include <stddef.h>
#include <stdint.h>

#define VFRONT_KEY 16              /* a name key */
#define VFRONT_VAL_MAX 160         /* longer records are not kept */

struct vfront;

/* A table of 2^slots_log2 slots (calloc'd: untouched slots cost no
 * memory).  NULL when out of memory. */
struct vfront *vfront_create(unsigned slots_log2);
void vfront_destroy(struct vfront *f);

/* The ticket of key's slot, taken before a lookup looks anywhere else:
 * 0 when the slot is being changed (the lookup will not fill it). */
uint64_t vfront_ticket(struct vfront *f, const unsigned char *key);

/* Copy key's record into buf (VFRONT_VAL_MAX bytes).  Its length, or 0
 * when the slot holds no record of key. */
size_t vfront_get(struct vfront *f, const unsigned char *key,
		  unsigned char *buf);

/* Keep key's record v (len bytes), read from the map after ticket was
 * taken; nothing happens when the slot changed since, or len is 0 or
 * past VFRONT_VAL_MAX. */
void vfront_fill(struct vfront *f, const unsigned char *key, uint64_t ticket,
		 const unsigned char *v, size_t len);

/* Empty key's slot: its record changed (or is about to). */
void vfront_forget(struct vfront *f, const unsigned char *key);

#endif
