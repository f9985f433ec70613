/*
 * listing.h - a store's folder listing as entries in byte order, with the
 * listing rules applied in one place for every user (stat by listing,
 * directory streams, the metadata cache's fill of its stat cache).
 *
 * A store lists a folder page by page (backend.h: list, and what
 * BACKEND_LIST_SORTED promises).  The rules that turn its pages into what
 * the folder holds, for a store with BACKEND_LIST_SORTED:
 *
 *   merge    a page's objects and prefixes (GCS and S3 send them as two
 *            sorted runs) come out merged into byte order of names;
 *   repeats  a prefix delivered again (GCS repeats the last one of a
 *            page at the start of the next) is dropped;
 *   hiding   with delimiter "/", a folder hides a file of its name: "x"
 *            and "x/" show as the folder only.  Names such as "x-1" and
 *            "x.txt" sort between "x" and "x/", so a file "x" is held
 *            (undecided) until a later name decides it: "x/" or a name
 *            under it hides it; a name after "x/" shows it; so does the
 *            end of the listing.  That can take several pages.
 *
 * Bounded memory: a held file also holds back every entry after it (the
 * output stays in byte order).  When more than hold_max entries wait
 * behind it, the iterator asks the store directly whether "x/" exists (a
 * one-key listing, backend_prefix_exists) instead of reading on.  So an
 * iterator holds at most hold_max + page_size entries.
 *
 * For a store without BACKEND_LIST_SORTED (posix: readdir order) entries
 * come in the store's order, a prefix equal to the one before it is
 * dropped, and nothing is hidden (a directory and a file cannot share a
 * name there).
 *
 * Names outside conf.prefix and, with start_at, names before start_at
 * are never yielded, whatever the store sends.
 *
 * Thread safety: a struct listing is used by one thread at a time (the
 * owner of a directory handle, one stat call).  listing_settle() keeps no
 * state and is safe from any thread.
 */
#ifndef HYLAKE_LISTING_H
#define HYLAKE_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/* Entries that may wait behind a held file before the store is asked. */
#define LISTING_HOLD_DEFAULT 1000

struct listing_conf {
	const char *prefix;       /* "" or "dir/" (or a name, for stat) */
	const char *delimiter;    /* "/" (hiding applies) or NULL */
	unsigned page_size;       /* max_keys of each page, 1..1000 */
	const char *start_at;     /* NULL, or yield names >= this only */
	unsigned hold_max;        /* 0: LISTING_HOLD_DEFAULT */
};

struct listing;

/*
 * An iterator over the listing conf describes, in b (borrowed; it must
 * outlive the iterator).  conf and its strings are copied.  Nothing is
 * asked of the store until listing_next().  Never fails (allocation
 * failure aborts).
 */
struct listing *listing_create(struct backend *b,
			       const struct listing_conf *conf);
void listing_destroy(struct listing *l);

/*
 * The next entry: 1 with *e set (owned by the iterator, valid until the
 * next call or listing_destroy), 0 at the end, or the negative errno of
 * a page or of a direct "x/" question that failed.  After an error the
 * iterator is where it was: calling again asks again.  Pages are fetched
 * only when no decided entry is left, one per request.
 */
int listing_next(struct listing *l, const struct list_entry **e,
		 const struct deadline *dl);

/* Files hidden so far by a folder of their name. */
uint64_t listing_hidden(const struct listing *l);

/*
 * Called by listing_settle() for each entry that stays.  idx is the
 * entry's index in held (0..nheld) or nheld + its index in page;
 * undecided is set for a file that only a later page can decide.
 * Return 0 to go on or a negative errno to stop.
 */
typedef int (*listing_settle_cb)(void *arg, const struct list_entry *e,
				 size_t idx, bool undecided);

/*
 * The same rules for a caller that is handed pages instead of pulling
 * them (the metadata cache sees whichever page its callers ask for).
 * held[0..nheld) are the files an earlier call reported undecided, page
 * one page of a "/"-delimited listing of b as the store gave it, last
 * true when no page follows it.  Calls cb in byte order for every entry
 * except hidden files and repeated prefixes; files it reports undecided
 * should be passed as held with the next page.  Entries are borrowed for
 * the call.  Returns 0 or the first negative value cb returned.
 */
int listing_settle(struct backend *b, const struct list_entry *held,
		   size_t nheld, const struct list_entry *page, size_t npage,
		   bool last, listing_settle_cb cb, void *arg);

#endif
