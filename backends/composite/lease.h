/*
 * lease.h - leases across hosts, with the store as the only arbiter.
 *
 * A lease is one small object (its name is the caller's: the mount keeps
 * them under ".hylake/locks/", the site follower under
 * ".hylake/leases/").  Hosts never talk to each other; every step is one
 * conditional request:
 *
 *   acquire   create the object, ifGenerationMatch=0, holding
 *             {"holder":..,"ttl_ms":..,"acquired_ns":..}
 *   renew     every ttl/3, a metadata update (set_meta) under
 *             ifGenerationMatch=G & ifMetagenerationMatch=M: the
 *             metageneration grows, the bytes and generation stay (no
 *             generation is left behind per renewal, and it stays
 *             under GCS's one update a second per object)
 *   release   remove, ifGenerationMatch=G
 *   takeover  a contender that saw the same (generation, metageneration)
 *             for a whole ttl, by its own monotonic clock, writes its
 *             document under ifGenerationMatch=G & ifMetagenerationMatch=M:
 *             a renewal in between fails it
 *
 * Clocks.  Expiry is never read from a timestamp the holder wrote: a
 * contender measures how long the lease has not changed with its own
 * CLOCK_MONOTONIC, so wall clock skew between hosts does not matter,
 * only the rate at which their clocks run.  The holder counts from the
 * moment it sent its last successful renewal and stops trusting the
 * lease two thirds of a ttl later (lease_check answers -ENOLCK), a third
 * of a ttl before any contender can have taken it over.
 *
 * Thread safety: a manager and its leases may be used from any thread.
 */
#ifndef HYLAKE_LEASE_H
#define HYLAKE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"

#define LEASE_TTL_MIN_MS 300      /* tests; mounts ask for 3 s at least, as
                                     GCS takes one update a second */
#define LEASE_HOLDER_MAX 256

struct lease_conf {
	struct backend *store;    /* borrowed; built to write (BACKEND_WRITE)
	                             and answering open from the store itself,
	                             never from a cache: the source store */
	const char *holder;       /* copied: who this is, for the document
	                             ("host pid ..."), < LEASE_HOLDER_MAX */
	int64_t ttl_ms;           /* >= LEASE_TTL_MIN_MS */
	int64_t op_timeout_ms;    /* each request's deadline */
};

struct lease_mgr;
struct lease;

/* What a lease object says, and what this host saw of it. */
struct lease_info {
	char holder[LEASE_HOLDER_MAX];
	int64_t ttl_ms;
	int64_t acquired_ns;      /* holder's wall clock, for people only */
	uint64_t generation, metageneration;   /* renewals: metageneration-1 */
	bool mine;                /* held through this manager */
	int64_t unchanged_ms;     /* how long this host has seen it unchanged
	                             (watched by lease_try), or -1 */
};

/* A manager with its renewal thread.  NULL with *err (-errno) when conf
 * is unusable (-EINVAL: ttl below the minimum) or the thread cannot
 * start. */
struct lease_mgr *lease_mgr_create(const struct lease_conf *conf, int *err);

/* Stop renewing and release every lease still held. */
void lease_mgr_destroy(struct lease_mgr *m);

int64_t lease_mgr_ttl_ms(const struct lease_mgr *m);

/*
 * Take the lease name once, without waiting: 0 and *out, a handle until
 * lease_release; -EWOULDBLOCK when another holds it (alive, or not yet
 * seen unchanged by this manager for a whole ttl: the first look starts
 * the watch); -errno when the store failed (-EROFS, -ETIMEDOUT, ...).
 */
int lease_try(struct lease_mgr *m, const char *name, struct lease **out);

/*
 * Take the lease, waiting (polling with capped backoff and jitter) while
 * another holds it.  cancelled (may be NULL) is asked between polls;
 * when it says true the wait ends with -EINTR.  Other errors as
 * lease_try, but -EWOULDBLOCK never.
 */
int lease_acquire(struct lease_mgr *m, const char *name,
		  bool (*cancelled)(void *), void *arg, struct lease **out);

/*
 * 0 while the lease is held and was renewed in time; -ENOLCK when it is
 * lost (another host took it over, or it was removed) or could not be
 * renewed for two thirds of a ttl: work under it must stop.  Cheap.
 */
int lease_check(struct lease *l);

/* Release (remove the object under its generation) and free l. */
void lease_release(struct lease *l);

/* What the lease object name says: 0, -ENOENT (nobody holds it), -errno. */
int lease_inspect(struct lease_mgr *m, const char *name,
		  struct lease_info *out);

/* "host pid N what": who a holder is, for people and for uniqueness
 * (the start time tells apart a process that reused a pid). */
void lease_holder_id(const char *what, struct strbuf *out);

/* One line for people: "held by H since T, ttl N s, renewed R times". */
void lease_info_describe(const struct lease_info *li, struct strbuf *out);

#endif
