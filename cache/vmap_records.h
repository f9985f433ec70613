/*
 * vmap_records.h - the records of the version map (cache/vmap.c), apart
 * from LMDB so that unit tests and the fuzz target can reach them.
 * Internal to cache/: nothing outside vmap.c and the tests uses them.
 *
 * The layouts are drawn at the top of vmap_records.c.  A record is
 * whatever bytes the map holds: decoders check every length and treat a
 * record of another format, a truncated one or one of another name (a
 * key hash collision) as absent (-ENOENT), never as an error to report.
 *
 * Pure functions; thread safe.
 */
#ifndef HYLAKE_VMAP_RECORDS_H
#define HYLAKE_VMAP_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "backends/facts.h"

/* Longest name a record can hold (the length is a u16).  Longer names are
 * never stored; the encoders must not be given one. */
#define VMAP_RECORDS_NAME_MAX UINT16_MAX

/* Encode the fact about name, stamped as used at minute `used` since the
 * epoch.  Returns the record (caller frees), its length in *len. */
void *vmap_records_encode_object(const char *name, const struct source_fact *f,
				 uint32_t used, size_t *len);
void *vmap_records_encode_replica(const char *name,
				  const struct replica_fact *f, uint32_t used,
				  size_t *len);
void *vmap_records_encode_sums(const char *name, const void *sums,
			       size_t slen, uint32_t used, size_t *len);

/* Decode record b[0..len) when it is about name.  0, or -ENOENT. */
int vmap_records_decode_object(const unsigned char *b, size_t len,
			       const char *name, struct source_fact *f);
int vmap_records_decode_replica(const unsigned char *b, size_t len,
				const char *name, struct replica_fact *f);
/* The block manifest inside a sums record: b[*off .. len). */
int vmap_records_decode_sums(const unsigned char *b, size_t len,
			     const char *name, size_t *off);

/* The "used" stamp of any record (0 when too short to have one), and
 * setting it in place (no-op when too short). */
uint32_t vmap_records_used(const unsigned char *b, size_t len);
void vmap_records_set_used(unsigned char *b, size_t len, uint32_t used);

#endif
