/*
 * libFuzzer target: a Parquet footer (cache/parquet.c).  Input:
 *
 *   file size (8, little-endian) | footer ...
 *
 * The footer is copied to a buffer of exactly its length (a read past it
 * trips AddressSanitizer) and parsed as the footer of a file of that
 * size; the input's last 8 bytes are also tried as the file's tail.  A
 * layout that parses must keep its promises: every chunk inside the
 * file's data, groups sorted and disjoint, each chunk found by its
 * first and last byte, and the runs of a group covering it once.
 * The seeds in corpus/parquet are DuckDB's footers of
 * tests/unit/data/parquet, each after its file's size.
 */
#include "cache/parquet.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_group(const struct parquet_layout *l, size_t g,
			uint64_t max_gap)
{
	const struct parquet_group *gr = &l->groups[g];
	struct parquet_run run;
	size_t pos = 0, next = gr->first;

	while (parquet_run_next(l, g, max_gap, 4096, &pos, &run)) {
		const struct parquet_chunk *z = &l->chunks[run.first + run.n - 1];

		if (run.first != next || run.n == 0 ||
		    run.off != l->chunks[run.first].off ||
		    run.off + run.len != z->off + z->len ||
		    (run.n > 1 && run.len > 4096))
			abort();
		next += run.n;
	}
	if (next != gr->first + gr->n)
		abort();
}

static void check(const struct parquet_layout *l, uint64_t max_gap)
{
	size_t next = 0;

	for (size_t g = 0; g < l->n_groups; g++) {
		const struct parquet_group *gr = &l->groups[g];

		if (gr->first != next || gr->num_rows < 0)
			abort();
		for (size_t i = 0; i < gr->n; i++) {
			const struct parquet_chunk *c = &l->chunks[gr->first + i];

			if (c->group != g || c->off < 4 || c->len == 0 ||
			    c->off >= l->data_end ||
			    c->len > l->data_end - c->off ||
			    (i && c->off < c[-1].off + c[-1].len))
				abort();
			if (parquet_find(l, c->off) != c ||
			    parquet_find(l, c->off + c->len - 1) != c)
				abort();
		}
		next += gr->n;
		check_group(l, g, max_gap);
	}
	if (next != l->n_chunks)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parquet_layout *l = NULL;
	uint64_t file_size = 0;
	uint32_t flen;
	uint8_t *copy;
	size_t len;

	if (size < 8)
		return 0;
	for (int i = 0; i < 8; i++)
		file_size |= (uint64_t)data[i] << (8 * i);
	if (parquet_tail_len(data + size - 8, file_size, &flen) == 0 &&
	    (flen == 0 || flen > PARQUET_FOOTER_MAX || flen > file_size - 12))
		abort();
	len = size - 8;
	copy = malloc(len ? len : 1);
	memcpy(copy, data + 8, len);
	if (parquet_footer_parse(copy, len, file_size, &l) == 0) {
		if (!l || l->data_end != file_size - 8 - len)
			abort();
		check(l, file_size & 0xffff);
		parquet_layout_destroy(l);
	} else if (l) {
		abort();
	}
	free(copy);
	return 0;
}
