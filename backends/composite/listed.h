/*
 * listed.h - what complete listings of folders showed: how a mount learns
 * that a name it trusts without asking (an immutable file of a table) was
 * deleted (VACUUM), the first time anyone lists its folder afterwards.
 *
 * The router hands over every page of a "/"-delimited listing of a folder
 * from the source, in order (token NULL starts a listing; a page whose
 * next token is NULL ends it).  Once a listing is complete, the folder's
 * names (64-bit hashes) and the time it began replace what was known of
 * it.  listed_lacks() then says whether a listing begun after a given
 * time showed the name missing.  Memory is bounded: at most max_names
 * hashes in all; the least recently completed folders go first, and a
 * folder listing with more names than that is not kept (it only means
 * deletions there are learnt another way).
 *
 * Thread safety: all functions may be called from any thread.
 */
#ifndef HYLAKE_LISTED_H
#define HYLAKE_LISTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct listed;

struct listed *listed_create(size_t max_names);
void listed_destroy(struct listed *l);

/*
 * One page of the listing of folder ("" or "a/b/"), asked with token
 * (NULL: the first page) and answered with next (NULL: the last page)
 * and the object names on it; began_ns is when the first page was asked
 * (wall clock), passed on every page.  Pages of a listing not seen from
 * its first page are ignored.
 */
void listed_page(struct listed *l, const char *folder, const char *token,
		 const char *next, const char *const *names, size_t n,
		 int64_t began_ns);

/* Did a complete listing of name's folder, begun after since_ns, not
 * show name? */
bool listed_lacks(struct listed *l, const char *name, int64_t since_ns);

#endif
