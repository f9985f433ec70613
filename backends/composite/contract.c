/*
 * contract.c - the replica contract (see contract.h).
 */
#include "backends/composite/contract.h"

#include <ctype.h>
#include <string.h>

/* A single-part ETag is the hex MD5 of the bytes; multipart ETags
 * ("...-N") are not. */
static bool md5_matches_etag(const unsigned char md5[16], const char *etag)
{
	static const char hex[] = "0123456789abcdef";
	if (strlen(etag) != 32)
		return false;
	for (int i = 0; i < 16; i++)
		if (tolower((unsigned char)etag[2 * i]) != hex[md5[i] >> 4] ||
		    tolower((unsigned char)etag[2 * i + 1]) != hex[md5[i] & 15])
			return false;
	return true;
}

enum replica_state contract_judge(const struct obj_info *copy,
				  const struct obj_info *v, uint64_t *held)
{
	*held = 0;
	if (copy->generation) {
		if (copy->generation != v->generation) {
			*held = copy->generation;      /* another generation */
			return REPLICA_HOLDS;
		}
		if (copy->size != v->size ||
		    (copy->has_crc32c && v->has_crc32c &&
		     copy->crc32c != v->crc32c))
			return REPLICA_BAD;
		*held = v->generation;
		return REPLICA_HOLDS;
	}
	if (copy->size != v->size || !v->has_md5)
		return REPLICA_UNPROVEN;
	if (copy->has_md5 ? memcmp(copy->md5, v->md5, 16) == 0
			  : md5_matches_etag(v->md5, copy->etag)) {
		*held = v->generation;
		return REPLICA_HOLDS;
	}
	return REPLICA_UNPROVEN;
}
