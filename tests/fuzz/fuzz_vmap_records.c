/*
 * libFuzzer target: the version map's records (cache/vmap_records.c) as
 * they come back out of data.mdb - a file on local disk that a crash,
 * a full disk or another program may have left in any state.
 *
 * Input: byte 0 picks the record kind (name record, sums), bytes 1-8 the
 * check asked for (native order), the rest the record (copied to a
 * buffer of exactly its length, so a read past it trips
 * AddressSanitizer).  A record that decodes is encoded again and must
 * decode to the same facts; each one-fact decoder must agree with the
 * whole one.
 */
#include "cache/vmap_records.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_replica(const struct replica_fact *a,
			 const struct replica_fact *b)
{
	return a->state == b->state && a->generation == b->generation &&
	       a->size == b->size && a->checked_ns == b->checked_ns &&
	       strcmp(a->etag, b->etag) == 0;
}

static void name_record(const unsigned char *r, size_t len, uint64_t check)
{
	struct vmap_entry e, g, other;
	struct source_fact s;
	struct replica_fact f;
	size_t n;

	if (vmap_records_decode(r, len, check, &e) < 0) {
		if (vmap_records_decode_source(r, len, check, &s) == 0)
			abort();
		return;
	}
	if ((vmap_records_decode_source(r, len, check, &s) == 0) !=
	    e.has_source ||
	    (e.has_source && memcmp(&s, &e.source, sizeof(s)) != 0))
		abort();
	for (unsigned i = 0; i < e.nrep; i++) {
		if (strlen(e.rep[i].etag) >= HY_ETAG_MAX ||
		    vmap_records_decode_replica(r, len, check, e.rid[i], &f) < 0 ||
		    !same_replica(&f, &e.rep[i]))
			abort();
	}
	unsigned char *b = vmap_records_encode(&e, check, 7, &n);
	if (vmap_records_decode(b, n, check, &g) < 0 ||
	    g.has_source != e.has_source || g.nrep != e.nrep ||
	    memcmp(&g.source, &e.source, sizeof(g.source)) != 0 ||
	    vmap_records_used(b, n) != 7 ||
	    vmap_records_decode(b, n, check + 1, &other) == 0)
		abort();
	for (unsigned i = 0; i < e.nrep; i++)
		if (g.rid[i] != e.rid[i] || !same_replica(&g.rep[i], &e.rep[i]))
			abort();
	free(b);
}

static void sums(const unsigned char *r, size_t len, uint64_t check)
{
	size_t off, n, off2;

	if (vmap_records_decode_sums(r, len, check, &off) < 0)
		return;
	if (off > len)
		abort();
	unsigned char *e = vmap_records_encode_sums(check, r + off, len - off,
						    7, &n);
	if (vmap_records_decode_sums(e, n, check, &off2) < 0 ||
	    n - off2 != len - off || memcmp(e + off2, r + off, len - off))
		abort();
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t check;

	if (size < 9)
		return 0;
	memcpy(&check, data + 1, 8);
	size_t len = size - 9;
	unsigned char *r = malloc(len ? len : 1);

	if (!r)
		return 0;
	memcpy(r, data + 9, len);
	(void)vmap_records_used(r, len);
	if (data[0] % 2 == 0)
		name_record(r, len, check);
	else
		sums(r, len, check);
	vmap_records_set_used(r, len, 1);
	free(r);
	return 0;
}
