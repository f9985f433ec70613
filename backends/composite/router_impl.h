/*
 * router_impl.h - the router's insides, shared by router.c (facts,
 * pinning a version, listing, explain) and router_read.c (which store
 * serves a read, the checks on replica bytes, hedging).  Not an API:
 * nothing outside these two files includes it.
 */
#ifndef HYLAKE_ROUTER_IMPL_H
#define HYLAKE_ROUTER_IMPL_H

#include "backends/backend.h"
#include "backends/composite/blocksums.h"
#include "backends/composite/health.h"
#include "backends/composite/router.h"
#include "backends/util/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct flight;
struct listed;

struct router {
	struct backend base;
	struct backend *src;
	struct backend **rep;
	size_t nrep;
	atomic_bool no_learn;             /* the source's listings carry no
					     generations (learn_by_listing) */
	struct facts facts;
	struct router_conf conf;
	struct store_health *health;   /* replicas in order, then the source */
	pthread_mutex_t hedge_lock;
	double hedge_tokens;      /* hedge budget: + budget% per read, -1 each */
	struct pool pool;         /* runs first requests of hedged reads */
	atomic_uint_fast64_t hedges, hedge_wins;
	atomic_uint_fast64_t write_backs;      /* copies put after a commit */
	atomic_uint_fast64_t write_back_fails; /* ... that could not be */
	atomic_uint_fast64_t reads;      /* router_read calls that returned bytes */
	atomic_uint_fast64_t fallbacks;  /* of which the source served */
	atomic_uint_fast64_t failovers;  /* a store failed; the read moved on */
	atomic_uint_fast64_t bad_copies; /* replica bytes that failed a check */
	struct listed *listed;    /* what folder listings showed */
	pthread_mutex_t flight_lock;
	struct flight *flights;   /* opens of the source in progress */
	struct flight *learns;    /* folders being learnt (learn_by_listing) */
};

/* CAND_OPENING: one reader is opening it (unlocked); others wait on
 * router_obj.cv, no longer than their own share of their deadline. */
enum cand_state { CAND_UNTRIED, CAND_OPENING, CAND_OK, CAND_SKIP };

struct cand {
	enum cand_state st;
	struct bobj *h;           /* kept until close, even once skipped */
	/* How its bytes are checked: sums (set once, then immutable), or
	 * the whole copy at its first read (whole_first), or not at all
	 * (a trusted replica: neither). */
	struct blocksums *sums;
	bool whole_first;
	bool verifying;           /* a reader is reading it whole: wait */
};

struct router_obj {
	struct bobj base;         /* base.info is the pinned version V */
	struct router *r;
	atomic_int refs;          /* the opener, and hedged reads in flight */
	pthread_mutex_t lock;     /* guards cands, src_h */
	pthread_cond_t cv;        /* a candidate's open or verification
				   * ended (monotonic) */
	struct cand *cands;       /* one per replica */
	struct bobj *src_h;
};

/* Errors that mean "the store is not answering", not "no such thing". */
static inline bool router_store_down(int rc)
{
	return rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ETIMEDOUT ||
	       rc == -ECONNRESET || rc == -EAGAIN || rc == -EIO;
}

/* Facts (router.c): the source no longer has name; the version the map
 * knew of name is not the source's now (replaced or deleted: unknown);
 * replica i's state. */
void router_note_gone(struct router *r, const char *name, int64_t asked_ns);
void router_note_stale(struct router *r, const char *name);
void router_note_replica(struct router *r, size_t i, const char *name,
			 enum replica_state st, const struct obj_info *info);

/* Reading (router_read.c): the stores in the order reads try them
 * (replica indexes, then -1 for the source), and the count; the read
 * and close ops of a router handle. */
size_t router_rank(struct router *r, int *order);
ssize_t router_read(struct bobj *ob, void *buf, size_t len, uint64_t off,
		    const struct deadline *dl);
void router_close(struct bobj *ob);

#endif
