/*
 * libFuzzer target: block manifests, the sidecars a replica holds beside
 * its copies (outside input: whoever writes the replica writes them).
 * A manifest that parses is proven against a version and used to check
 * a buffer, as the router does.
 */
#include "backends/composite/blocksums.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blocksums *s;
	uint64_t bad;

	if (blocksums_decode(data, size, &s) < 0)
		return 0;
	struct obj_info v = { .generation = s->generation, .size = s->size,
			      .crc32c = s->crc32c, .has_crc32c = true };
	(void)blocksums_prove(s, &v);
	/* check the first block (or the whole object, when small) */
	size_t n = s->size < BLOCKSUMS_BLOCK ? (size_t)s->size
					     : (size_t)BLOCKSUMS_BLOCK;
	unsigned char *buf = calloc(1, n ? n : 1);
	if (buf)
		(void)blocksums_check(s, 0, buf, n, &bad);
	free(buf);
	free(s);
	return 0;
}
