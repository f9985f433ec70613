/*
 * router_wb.c - write-back: the bytes a writable mount just committed
 * to the source, put on one of the router's replicas as the replicator
 * would, and the facts that let the next open read them there
 * (router.h: router_write_back).
 *
 * What the map learns is what an open would have learned by asking the
 * replica: that it holds v (with the copy's etag, so the open pins the
 * copy without a HEAD) and the block sums that prove its bytes (so no
 * manifest is fetched).  The etag comes from one stat of the replica
 * after the put, a request to the local site, not the WAN.
 *
 * A replica the router's breaker keeps reads away from is not waited
 * on: its write-backs are skipped (and counted) while the breaker is
 * open, as its reads are; a put that fails because the store did not
 * answer counts against its health like a failed read.
 */
#include "backends/composite/router_impl.h"
#include "backends/composite/contract.h"
#include "backends/composite/replica_put.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int replica_index(const struct router *r, const char *replica)
{
	for (size_t i = 0; i < r->nrep; i++)
		if (!strcmp(r->rep[i]->name, replica))
			return (int)i;
	return -1;
}

/* Replica i now holds v (put just now), with sums s: the facts. */
static int note_held(struct router *r, size_t i, const char *name,
		     const struct obj_info *v, const struct blocksums *s,
		     int64_t timeout_ms)
{
	struct backend *rep = r->rep[i];
	struct deadline dl = deadline_in_ms(timeout_ms);
	struct obj_info copy;
	uint64_t held = 0;
	int rc = backend_stat(rep, name, &copy, &dl);
	if (rc < 0)
		return rc;
	if (contract_judge(&copy, v, &held) != REPLICA_HOLDS ||
	    held != v->generation) {
		/* replaced at once by another hand: say nothing */
		log_info("write-back: replica %s: '%s' holds another version "
			 "just after the put", rep->name, name);
		return 0;
	}
	copy.generation = held;
	router_note_replica(r, i, name, REPLICA_HOLDS, &copy);
	struct strbuf enc = STRBUF_INIT;
	blocksums_encode(s, &enc);
	r->facts.ops->put_sums(r->facts.ctx, rep->name, name, enc.buf,
			       enc.len);
	strbuf_release(&enc);
	return 0;
}

int router_write_back(struct backend *b, const char *replica,
		      const char *name, int fd, const struct obj_info *v,
		      const char *tmpdir, int64_t timeout_ms)
{
	struct router *r = (struct router *)b;
	struct blocksums *s = NULL;
	int i = replica_index(r, replica), rc;

	if (i < 0)
		rc = -ENOENT;
	else if (health_blocked(&r->health[i], mono_ns()))
		rc = -EHOSTUNREACH;   /* down: no close waits on it */
	else
		rc = replica_sums_of_fd(fd, v, &s);
	if (rc == 0)
		rc = replica_put_stamped(r->rep[i], name, fd, v, s, tmpdir,
					 timeout_ms);
	if (rc == 0) {
		int nrc = note_held(r, (size_t)i, name, v, s, timeout_ms);
		if (nrc < 0)
			log_info("write-back: replica %s: '%s' put, but not "
				 "seen after (%s); the next open asks it",
				 replica, name, strerror(-nrc));
	}
	free(s);
	if (rc < 0 && rc != -EHOSTUNREACH && i >= 0 && router_store_down(rc))
		health_fail(&r->health[i]);
	if (rc < 0) {
		atomic_fetch_add(&r->write_back_fails, 1);
		log_warn("write-back of '%s' (generation %" PRIu64 ") to "
			 "replica %s failed: %s; it is in the source, and the "
			 "replicator brings it", name, v->generation, replica,
			 rc == -EBADMSG ? "the local bytes are not the "
			 "committed object's" : strerror(-rc));
		return rc;
	}
	atomic_fetch_add(&r->write_backs, 1);
	log_debug("write-back of '%s' (generation %" PRIu64 ") to replica "
		  "%s done", name, v->generation, replica);
	return 0;
}

void router_write_back_skipped(struct backend *b)
{
	atomic_fetch_add(&((struct router *)b)->write_back_fails, 1);
}
