/*
 * vmap_records.c - encoding and decoding the version map's records
 * (vmap_records.h); LMDB, keys and batching stay in vmap.c.
 *
 * Object record, format 1 (native byte order, fixed offsets):
 *
 *    0  u8   format (1)        1  u8   flags: 1 tombstone, 2 crc32c, 4 md5
 *    2  u16  name length n     4  u32  used (minutes since the epoch)
 *    8  u64  generation       16  u64  metageneration
 *   24  u64  size             32  i64  ctime_ns
 *   40  i64  confirmed_ns     48  u32  crc32c
 *   52  u8[16] md5            68  name (n bytes)
 *
 * Replica record, format 1:
 *
 *    0  u8   format (1)        1  u8   state (enum replica_state)
 *    2  u16  name length n     4  u32  used
 *    8  u64  generation       16  u64  size
 *   24  i64  checked_ns       32  u8   etag length e
 *   33  etag (e bytes)     33+e  name (n bytes)
 *
 * Sums record, format 1 (the block sums proven for a replica's copy):
 *
 *    0  u8   format (1)        1  u8   0
 *    2  u16  name length n     4  u32  used
 *    8  name (n bytes)       8+n  the encoded block manifest
 *
 * A record of another format is ignored (and overwritten by the next
 * fact), never trusted.
 */
#include "cache/vmap_records.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT 1
#define OBJ_HDR 68
#define REP_HDR 33
#define SUMS_HDR 8

#define PUT(buf, off, v) memcpy((buf) + (off), &(v), sizeof(v))
#define GET(buf, off, v) memcpy(&(v), (buf) + (off), sizeof(v))

void *vmap_records_encode_object(const char *name, const struct source_fact *f,
				 uint32_t used, size_t *len)
{
	uint16_t n = (uint16_t)strlen(name);
	uint8_t format = FORMAT, flags = (uint8_t)((f->tombstone ? 1 : 0) |
		(f->has_crc32c ? 2 : 0) | (f->has_md5 ? 4 : 0));
	unsigned char *b = xcalloc(1, OBJ_HDR + n);

	PUT(b, 0, format);
	PUT(b, 1, flags);
	PUT(b, 2, n);
	PUT(b, 4, used);
	PUT(b, 8, f->generation);
	PUT(b, 16, f->metageneration);
	PUT(b, 24, f->size);
	PUT(b, 32, f->ctime_ns);
	PUT(b, 40, f->confirmed_ns);
	PUT(b, 48, f->crc32c);
	memcpy(b + 52, f->md5, 16);
	memcpy(b + OBJ_HDR, name, n);
	*len = OBJ_HDR + n;
	return b;
}

int vmap_records_decode_object(const unsigned char *b, size_t len,
			       const char *name, struct source_fact *f)
{
	uint8_t format, flags;
	uint16_t n;

	if (len < OBJ_HDR)
		return -ENOENT;
	GET(b, 0, format);
	GET(b, 2, n);
	if (format != FORMAT || len != (size_t)OBJ_HDR + n ||
	    strlen(name) != n || memcmp(b + OBJ_HDR, name, n) != 0)
		return -ENOENT;          /* other format, or a collision */
	memset(f, 0, sizeof(*f));
	GET(b, 1, flags);
	f->tombstone = flags & 1;
	f->has_crc32c = flags & 2;
	f->has_md5 = flags & 4;
	GET(b, 8, f->generation);
	GET(b, 16, f->metageneration);
	GET(b, 24, f->size);
	GET(b, 32, f->ctime_ns);
	GET(b, 40, f->confirmed_ns);
	GET(b, 48, f->crc32c);
	memcpy(f->md5, b + 52, 16);
	return 0;
}

void *vmap_records_encode_replica(const char *name,
				  const struct replica_fact *f, uint32_t used,
				  size_t *len)
{
	uint16_t n = (uint16_t)strlen(name);
	uint8_t format = FORMAT, state = (uint8_t)f->state;
	uint8_t e = (uint8_t)strnlen(f->etag, HY_ETAG_MAX - 1);
	unsigned char *b = xcalloc(1, REP_HDR + e + n);

	PUT(b, 0, format);
	PUT(b, 1, state);
	PUT(b, 2, n);
	PUT(b, 4, used);
	PUT(b, 8, f->generation);
	PUT(b, 16, f->size);
	PUT(b, 24, f->checked_ns);
	PUT(b, 32, e);
	memcpy(b + REP_HDR, f->etag, e);
	memcpy(b + REP_HDR + e, name, n);
	*len = REP_HDR + e + n;
	return b;
}

int vmap_records_decode_replica(const unsigned char *b, size_t len,
				const char *name, struct replica_fact *f)
{
	uint8_t format, state, e;
	uint16_t n;

	if (len < REP_HDR)
		return -ENOENT;
	GET(b, 0, format);
	GET(b, 1, state);
	GET(b, 2, n);
	GET(b, 32, e);
	if (format != FORMAT || state > REPLICA_BAD || e >= HY_ETAG_MAX ||
	    len != (size_t)REP_HDR + e + n || strlen(name) != n ||
	    memcmp(b + REP_HDR + e, name, n) != 0)
		return -ENOENT;
	memset(f, 0, sizeof(*f));
	f->state = (enum replica_state)state;
	GET(b, 8, f->generation);
	GET(b, 16, f->size);
	GET(b, 24, f->checked_ns);
	memcpy(f->etag, b + REP_HDR, e);
	f->etag[e] = '\0';
	return 0;
}

uint32_t vmap_records_used(const unsigned char *b, size_t len)
{
	uint32_t used = 0;
	if (len >= 8)
		GET(b, 4, used);
	return used;
}

void vmap_records_set_used(unsigned char *b, size_t len, uint32_t used)
{
	if (len >= 8)
		PUT(b, 4, used);
}

void *vmap_records_encode_sums(const char *name, const void *sums,
			       size_t slen, uint32_t used, size_t *len)
{
	uint16_t n = (uint16_t)strlen(name);
	uint8_t format = FORMAT;
	unsigned char *b = xcalloc(1, SUMS_HDR + n + slen);

	PUT(b, 0, format);
	PUT(b, 2, n);
	PUT(b, 4, used);
	memcpy(b + SUMS_HDR, name, n);
	if (slen)
		memcpy(b + SUMS_HDR + n, sums, slen);
	*len = SUMS_HDR + n + slen;
	return b;
}

int vmap_records_decode_sums(const unsigned char *b, size_t len,
			     const char *name, size_t *off)
{
	size_t n = strlen(name);
	uint8_t format;
	uint16_t rn;

	if (len < SUMS_HDR + n)
		return -ENOENT;
	GET(b, 0, format);
	GET(b, 2, rn);
	if (format != FORMAT || rn != n || memcmp(b + SUMS_HDR, name, n) != 0)
		return -ENOENT;
	*off = SUMS_HDR + n;
	return 0;
}
