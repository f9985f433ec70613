/*
 * vmap_records.h - the records of the version map (cache/vmap.c), apart
 * from LMDB so that unit tests and the fuzz target can reach them.
 * Internal to cache/: nothing outside the version map (vmap.c,
 * vmap_writer.c) and the tests uses them.
 *
 * One record per name holds every fact about it: the source's version
 * and what each replica holds.  A record does not hold the name: it is
 * found by a 128-bit hash of the name (the key) and carries a second,
 * independent 64-bit hash (the check), both keyed with the map's own
 * secret (struct vmap_secret).  Why that never serves another name's
 * facts is argued at the top of vmap_records.c, beside the layouts.
 *
 * A record is whatever bytes the map holds: decoders check every length
 * and treat a record of another format, a truncated or malformed one or
 * one whose check differs (another name with the same key) as absent
 * (-ENOENT), never as an error to report.
 *
 * Pure functions; thread safe.
 */
#ifndef HYLAKE_VMAP_RECORDS_H
#define HYLAKE_VMAP_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/facts.h"

/* Replicas one record can hold facts of; a fact about one more is not
 * kept (facts.h: a fact that cannot be kept is simply not kept). */
#define VMAP_RECORDS_REPLICAS_MAX 16

/* The map's hash keys: random when the map is made, kept in it, never
 * shown.  Names chosen without knowing them cannot be aimed at each
 * other's keys and checks. */
struct vmap_secret {
	uint64_t seed;            /* of the key hash, XXH3-128 */
	uint64_t k0, k1;          /* of the check hash, SipHash-1-3 */
};

/* Everything the map knows of one name. */
struct vmap_entry {
	bool has_source;
	struct source_fact source;
	unsigned nrep;
	uint8_t rid[VMAP_RECORDS_REPLICAS_MAX];    /* the map's replica ids */
	struct replica_fact rep[VMAP_RECORDS_REPLICAS_MAX];
};

/* The key (16 bytes) and the check of name.  A replica's facts are kept
 * under a small id the map gives it (vmap.c), in records and sums keys. */
void vmap_records_name_hash(const struct vmap_secret *s, const char *name,
			    unsigned char key[16], uint64_t *check);

/* Set replica rid's fact in e.  0, or -ENOSPC when e holds facts of
 * VMAP_RECORDS_REPLICAS_MAX other replicas already. */
int vmap_records_entry_set_replica(struct vmap_entry *e, uint8_t rid,
				   const struct replica_fact *f);

/* Encode e for the name of check, stamped as used at minute `used` since
 * the epoch.  Returns the record (caller frees), its length in *len. */
void *vmap_records_encode(const struct vmap_entry *e, uint64_t check,
			  uint32_t used, size_t *len);
/* Decode record b[0..len) when it is the one of check: all of it, or one
 * fact (-ENOENT also when the record holds no such fact).  0 or -ENOENT. */
int vmap_records_decode(const unsigned char *b, size_t len, uint64_t check,
			struct vmap_entry *e);
int vmap_records_decode_source(const unsigned char *b, size_t len,
			       uint64_t check, struct source_fact *f);
int vmap_records_decode_replica(const unsigned char *b, size_t len,
				uint64_t check, uint8_t rid,
				struct replica_fact *f);

/* The block sums proven for a replica's copy (a record of their own,
 * keyed by replica id and name key): encoded, and the manifest found
 * inside one: b[*off .. len).  0 or -ENOENT. */
void *vmap_records_encode_sums(uint64_t check, const void *sums, size_t slen,
			       uint32_t used, size_t *len);
int vmap_records_decode_sums(const unsigned char *b, size_t len,
			     uint64_t check, size_t *off);

/* The "used" stamp of any record (0 when too short to have one), and
 * setting it in place (no-op when too short). */
uint32_t vmap_records_used(const unsigned char *b, size_t len);
void vmap_records_set_used(unsigned char *b, size_t len, uint32_t used);

#endif
