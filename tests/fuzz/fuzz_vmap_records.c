/*
 * libFuzzer target: the version map's records (cache/vmap_records.c) as
 * they come back out of data.mdb - a file on local disk that a crash,
 * a full disk or another program may have left in any state.
 *
 * Input: byte 0 picks the record kind (object, replica, sums), byte 1
 * the length k of the name asked for, the next k bytes the name, the
 * rest the record (copied to a buffer of exactly its length, so a read
 * past it trips AddressSanitizer).  A record that decodes is encoded
 * again and must decode to the same fact.
 */
#include "cache/vmap_records.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void object(const unsigned char *r, size_t len, const char *name)
{
	struct source_fact f, g;
	size_t n;

	if (vmap_records_decode_object(r, len, name, &f) < 0)
		return;
	void *e = vmap_records_encode_object(name, &f, 7, &n);
	if (vmap_records_decode_object(e, n, name, &g) < 0 ||
	    memcmp(&f, &g, sizeof(f)) != 0 || vmap_records_used(e, n) != 7)
		abort();
	free(e);
}

static void replica(const unsigned char *r, size_t len, const char *name)
{
	struct replica_fact f, g;
	size_t n;

	if (vmap_records_decode_replica(r, len, name, &f) < 0)
		return;
	if (strlen(f.etag) >= HY_ETAG_MAX)
		abort();
	void *e = vmap_records_encode_replica(name, &f, 7, &n);
	if (vmap_records_decode_replica(e, n, name, &g) < 0 ||
	    f.state != g.state || f.generation != g.generation ||
	    f.size != g.size || f.checked_ns != g.checked_ns ||
	    strcmp(f.etag, g.etag) != 0)
		abort();
	free(e);
}

static void sums(const unsigned char *r, size_t len, const char *name)
{
	size_t off, n, off2;

	if (vmap_records_decode_sums(r, len, name, &off) < 0)
		return;
	if (off > len)
		abort();
	unsigned char *e = vmap_records_encode_sums(name, r + off, len - off,
						    7, &n);
	if (vmap_records_decode_sums(e, n, name, &off2) < 0 ||
	    n - off2 != len - off || memcmp(e + off2, r + off, len - off))
		abort();
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || (size_t)data[1] > size - 2)
		return 0;
	size_t k = data[1], len = size - 2 - k;
	char *name = malloc(k + 1);
	unsigned char *r = malloc(len ? len : 1);

	if (!name || !r)
		goto out_free;
	memcpy(name, data + 2, k);
	name[k] = '\0';
	memcpy(r, data + 2 + k, len);
	(void)vmap_records_used(r, len);
	switch (data[0] % 3) {
	case 0: object(r, len, name); break;
	case 1: replica(r, len, name); break;
	default: sums(r, len, name); break;
	}
	vmap_records_set_used(r, len, 1);
out_free:
	free(name);
	free(r);
	return 0;
}
