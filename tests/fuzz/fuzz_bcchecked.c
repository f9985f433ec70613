/*
 * libFuzzer target: the block cache's record of checked files
 * (cache/bcchecked.c), read back from local disk, where a crash or
 * another program may leave anything.  The input is the file, copied to
 * a buffer of exactly its length (a read past it trips AddressSanitizer).
 * A record that parses is saved in memory again: its records must be
 * sorted and findable.
 */
#include "cache/bcchecked.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bcchecked s = BCCHECKED_INIT;
	unsigned char *copy = malloc(size ? size : 1);

	memcpy(copy, data, size);
	if (bcchecked_parse(copy, size, &s) == 0) {
		for (size_t i = 0; i < s.n; i++) {
			const struct bcchecked_rec *r =
				bcchecked_find(&s, s.r[i].high, s.r[i].low);
			if (!r || r->high != s.r[i].high || r->low != s.r[i].low)
				abort();
		}
	} else if (s.n) {
		abort();              /* a refused record leaves nothing */
	}
	bcchecked_release(&s);
	free(copy);
	return 0;
}
