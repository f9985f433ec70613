/*
 * facts.h - what the router remembers, and the interface it remembers
 * through.
 *
 * The router (backends/) learns facts: the source's current version of a
 * name, and what each replica holds of it.  It keeps them through this
 * small interface; cache/vmap.c implements it on LMDB and mount/ wires
 * the two together, so no dependency points up from backends/ to cache/.
 *
 * Facts are a cache: a missing or lost fact costs a round trip, never a
 * wrong byte, because every read re-verifies the version it receives.
 *
 * Thread safety: implementations are called from many threads at once.
 */
#ifndef HYLAKE_FACTS_H
#define HYLAKE_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/* The source's view of a name. */
struct source_fact {
	bool tombstone;           /* the name does not exist (at confirmed) */
	uint64_t generation;
	uint64_t metageneration;
	uint64_t size;
	int64_t ctime_ns;         /* timeCreated of this generation */
	uint32_t crc32c;
	bool has_crc32c;
	bool has_md5;
	unsigned char md5[16];
	int64_t confirmed_ns;     /* wall clock: when the source said so */
};

enum replica_state {
	REPLICA_UNKNOWN = 0,      /* never checked */
	REPLICA_ABSENT,           /* checked: no copy */
	REPLICA_HOLDS,            /* a copy of source generation `generation` */
	REPLICA_UNPROVEN,         /* a copy nothing proves to be any generation */
	REPLICA_BAD,              /* a copy that failed verification */
};

/* What one replica holds of a name. */
struct replica_fact {
	enum replica_state state;
	uint64_t generation;      /* the source generation it holds */
	uint64_t size;
	char etag[HY_ETAG_MAX];   /* the replica's own version token */
	int64_t checked_ns;       /* wall clock: when this was learned */
};

struct facts_ops {
	/* 0 with *out filled, or -ENOENT when nothing is known. */
	int (*get_source)(void *ctx, const char *name, struct source_fact *out);
	/* Remember; may be written later (batched).  Never fails loudly:
	 * a fact that cannot be kept is simply not kept. */
	void (*put_source)(void *ctx, const char *name,
			   const struct source_fact *f);
	int (*get_replica)(void *ctx, const char *replica, const char *name,
			   struct replica_fact *out);
	void (*put_replica)(void *ctx, const char *replica, const char *name,
			    const struct replica_fact *f);
	/*
	 * Block sums proven for replica's copy of name: an encoded block
	 * manifest (backends/composite/blocksums.h), opaque here; the
	 * router proves it again against the version it opens.  get: 0 with
	 * *out (malloc'd, caller frees) and *len, or -ENOENT.
	 */
	int (*get_sums)(void *ctx, const char *replica, const char *name,
			void **out, size_t *len);
	void (*put_sums)(void *ctx, const char *replica, const char *name,
			 const void *sums, size_t len);
	/* Optional: return once every fact put before the call is kept
	 * (or dropped: a failed write does not keep the caller waiting). */
	void (*flush)(void *ctx);
};

struct facts {
	const struct facts_ops *ops;
	void *ctx;
};

#endif
