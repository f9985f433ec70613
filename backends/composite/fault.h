/*
 * fault.h - a store that wraps any other and misbehaves on purpose, to
 * prove the failover paths (SQLite's test_vfs.c is the model).
 *
 * Rules say which calls go wrong and how.  A call matches a rule by op
 * (or FAULT_ANY) and by object name (exact, or a prefix; for a listing
 * the name is its prefix, for a probe ""); of the calls that match, the
 * rule lets `skip` through, then fires on the next `times` (0: on every
 * one from then on).  So: fail the Nth call (skip N-1, times 1), fail
 * after N (skip N, times 0), fail once (skip 0, times 1).  With percent
 * set, a matching call past `skip` fires only with that chance, drawn
 * from the seed given at creation: the same seed and the same calls in
 * the same order give the same faults.
 *
 * What a rule does when it fires:
 *   FAULT_FAIL           the call returns err, without reaching the store
 *   FAULT_DELAY          the call waits delay_us first; if its deadline
 *                        passes meanwhile it returns -ETIMEDOUT (and
 *                        -ECANCELED when its cancel flag is set)
 *   FAULT_CORRUPT        (reads) one byte of what was read is flipped, at
 *                        an offset drawn from the seed
 *   FAULT_TRUNCATE       (reads) only the first half of the bytes come
 *   FAULT_OTHER_VERSION  (stat, open, open_pinned) the answer names
 *                        another version: generation `generation` (0:
 *                        the real one + 1) and an etag changed to match;
 *                        reads through such a handle still read the
 *                        version the store really opened
 *   FAULT_SHORT_PAGE     (list) the page holds at most page_max entries,
 *                        as real stores may send fewer than asked for
 *                        (the inner store is asked for no more)
 * Several rules may fire on one call: delays add up, the first error wins,
 * the shortest page wins.
 *
 * Handles are wrapped, so reads come through the rules.  The wrapper has
 * the inner store's name and capabilities.  It also counts calls per op,
 * the most of them in flight at once, and the range of every read (the
 * first FAULT_LOG_MAX of them), for tests to look at.
 *
 * Thread safety: like every store; rules may be added and cleared while
 * other threads call the store.
 */
#ifndef HYLAKE_FAULT_H
#define HYLAKE_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

enum fault_op {
	FAULT_STAT, FAULT_LIST, FAULT_OPEN, FAULT_OPEN_PINNED, FAULT_READ,
	FAULT_PUT, FAULT_PROBE,
	FAULT_WRITER_OPEN, FAULT_REMOVE, FAULT_SET_META,   /* writes */
	FAULT_ANY,                /* as a rule's op: every op; in counts: all */
};

enum fault_action {
	FAULT_FAIL, FAULT_DELAY, FAULT_CORRUPT, FAULT_TRUNCATE,
	FAULT_OTHER_VERSION, FAULT_SHORT_PAGE,
};

struct fault_rule {
	enum fault_op op;
	const char *name;         /* NULL: any name (copied by fault_add) */
	bool prefix;              /* name is a prefix, not a whole name */
	unsigned skip;            /* matching calls let through first */
	unsigned times;           /* then fire on this many; 0: on all */
	unsigned percent;         /* 0: every matching call; 1..99: a share */
	enum fault_action action;
	int err;                  /* FAULT_FAIL: a negative errno */
	unsigned delay_us;        /* FAULT_DELAY */
	uint64_t generation;      /* FAULT_OTHER_VERSION; 0: the real one + 1 */
	unsigned page_max;        /* FAULT_SHORT_PAGE: > 0 */
};

#define FAULT_LOG_MAX 4096

/* The offset and length of one read call. */
struct fault_range {
	uint64_t off;
	uint64_t len;
};

/* Wrap inner (takes ownership).  Never fails. */
struct backend *fault_create(struct backend *inner, uint64_t seed);

/*
 * Add a rule (after the ones there are).  Returns its id (>= 0), or
 * -EINVAL for a rule that cannot fire: an action the op does not have,
 * FAULT_FAIL without a negative err, FAULT_SHORT_PAGE without page_max,
 * percent over 100.
 */
int fault_add(struct backend *b, const struct fault_rule *r);

/* Remove every rule: the store behaves again. */
void fault_clear(struct backend *b);

/* How many times rule id fired (0 for an unknown id). */
unsigned fault_fired(struct backend *b, int id);

/* Calls of op (FAULT_ANY: of every op) since creation or the last reset,
 * and the most of them that were in flight at once. */
unsigned fault_calls(struct backend *b, enum fault_op op);
unsigned fault_max_inflight(struct backend *b, enum fault_op op);

/* Copy the ranges of the first reads (at most max) to out, in the order
 * they were called.  Returns how many were copied. */
size_t fault_read_log(struct backend *b, struct fault_range *out,
		      size_t max);

/* Zero the counts and the read log (rules keep their own). */
void fault_reset_counts(struct backend *b);

#endif
