/*
 * test_parquet.c - Parquet footers: real ones from DuckDB's writer,
 * checked against what DuckDB's parquet_metadata() reports
 * (tests/unit/data/parquet, made by make.mjs there), and footers written
 * here in the Thrift compact protocol to reach each rule and limit.
 */
#include "cache/parquet.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"
#include "tests/unit/parquet_footer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#ifndef PARQUET_DATA_DIR
#error "PARQUET_DATA_DIR: the folder of the fixtures"
#endif

/* ---- the fixtures ---- */

static unsigned char *slurp(const char *name, const char *ext, size_t *len)
{
	char path[1024];
	struct strbuf sb = STRBUF_INIT;
	char buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", PARQUET_DATA_DIR, name, ext);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: cannot open\n", path);
		exit(1);
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return (unsigned char *)strbuf_detach(&sb, len);
}

/* The chunk of (group, column) in l, or NULL. */
static const struct parquet_chunk *chunk_of(const struct parquet_layout *l,
					    size_t g, uint32_t column)
{
	for (size_t i = 0; i < l->groups[g].n; i++)
		if (l->chunks[l->groups[g].first + i].column == column)
			return &l->chunks[l->groups[g].first + i];
	return NULL;
}

/* Every chunk is found by its first and last byte; the byte before a
 * chunk belongs to the chunk that ends there or to none. */
static void check_find(const struct parquet_layout *l)
{
	for (size_t i = 0; i < l->n_chunks; i++) {
		const struct parquet_chunk *c = &l->chunks[i], *p;

		CHECK(parquet_find(l, c->off) == c);
		CHECK(parquet_find(l, c->off + c->len - 1) == c);
		p = parquet_find(l, c->off - 1);
		CHECK(!p || p->off + p->len == c->off);
	}
	CHECK(parquet_find(l, 0) == NULL);
	CHECK(parquet_find(l, 3) == NULL);
	CHECK(parquet_find(l, l->data_end) == NULL);
	CHECK(parquet_find(l, UINT64_MAX) == NULL);
}

/* Runs of each group, with no gap allowed, cover its chunks once and in
 * order, and break exactly where a gap is. */
static void check_runs(const struct parquet_layout *l)
{
	for (size_t g = 0; g < l->n_groups; g++) {
		struct parquet_run run;
		size_t pos = 0, next = l->groups[g].first;

		while (parquet_run_next(l, g, 0, 0, &pos, &run)) {
			const struct parquet_chunk *a = &l->chunks[run.first];
			const struct parquet_chunk *z =
				&l->chunks[run.first + run.n - 1];

			CHECK_INT(run.first, next);
			CHECK(run.n >= 1);
			CHECK_INT(run.off, a->off);
			CHECK_INT(run.off + run.len, z->off + z->len);
			for (size_t i = 1; i < run.n; i++)
				CHECK_INT(a[i].off, a[i - 1].off + a[i - 1].len);
			if (run.first + run.n < l->groups[g].first + l->groups[g].n)
				CHECK(z[1].off > z->off + z->len);
			next = run.first + run.n;
		}
		CHECK_INT(next, l->groups[g].first + l->groups[g].n);
	}
	CHECK(!parquet_run_next(l, l->n_groups, 0, 0, &(size_t){ 0 },
				&(struct parquet_run){ 0 }));
}

/* One fixture: the tail gives the footer's length, and the footer gives
 * the ranges DuckDB reported.  Returns how many chunks had a dictionary
 * page before their data. */
static int fixture(const char *name)
{
	size_t tlen, elen, n_chunks = 0;
	unsigned char *tail = slurp(name, "tail", &tlen);
	char *expect = (char *)slurp(name, "expect", &elen), *save, *line;
	uint64_t file_size = 0, groups = 0;
	struct parquet_layout *l = NULL;
	uint32_t flen = 0;
	int dicts = 0;

	for (line = strtok_r(expect, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "file_size %" SCNu64, &file_size) == 1 ||
		    sscanf(line, "groups %" SCNu64, &groups) == 1)
			continue;
		if (strncmp(line, "chunk ", 6) == 0)
			n_chunks++;
	}
	free(expect);
	CHECK(tlen > PARQUET_TAIL);
	CHECK_INT(parquet_tail_len(tail + tlen - PARQUET_TAIL, file_size,
				   &flen), 0);
	CHECK_INT(flen, tlen - PARQUET_TAIL);
	CHECK_INT(parquet_footer_parse(tail, flen, file_size, &l), 0);
	if (!l) {
		fprintf(stderr, "%s: no layout\n", name);
		free(tail);
		return 0;
	}
	CHECK_INT(l->n_groups, groups);
	CHECK_INT(l->n_chunks, n_chunks);
	CHECK_INT(l->data_end, file_size - PARQUET_TAIL - flen);

	expect = (char *)slurp(name, "expect", &elen);
	for (line = strtok_r(expect, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		uint64_t g, rows, col, data, size, dict = 0, want;
		char dict_s[32];
		const struct parquet_chunk *c;

		if (sscanf(line, "chunk %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %31s %" SCNu64, &g, &rows, &col,
			   &data, dict_s, &size) != 6)
			continue;
		if (dict_s[0] != '-')
			dict = strtoull(dict_s, NULL, 10);
		want = dict > 0 && dict < data ? dict : data;
		dicts += want != data;
		if (g >= l->n_groups) {
			CHECK(g < l->n_groups);
			continue;
		}
		CHECK_INT(l->groups[g].num_rows, rows);
		c = chunk_of(l, g, (uint32_t)col);
		CHECK(c != NULL);
		if (!c)
			continue;
		CHECK_INT(c->group, g);
		CHECK_INT(c->off, want);
		CHECK_INT(c->len, size);
	}
	free(expect);

	check_find(l);
	check_runs(l);
	parquet_layout_destroy(l);

	/* every shorter footer is refused: the file's last stop is cut
	 * (of a long footer, every 61st cut and the last 256) */
	for (size_t cut = 1; cut < flen;
	     cut += flen < 4096 || cut + 256 >= flen ? 1 : 61) {
		CHECK_INT(parquet_footer_parse(tail, cut, file_size, &l),
			  -EBADMSG);
		CHECK(l == NULL);
	}
	free(tail);
	return dicts;
}

static void fixtures(void)
{
	CHECK_INT(fixture("plain"), 0);
	CHECK_INT(fixture("dict"), 6);
	CHECK(fixture("nested") > 0);
	CHECK_INT(fixture("many"), 300);
	CHECK_INT(fixture("empty"), 0);
}

/* The dict fixture's chunks of row group 0 touch ([4, 17182), then 215
 * and 222 bytes): one run at any gap; each alone under a cap of 300
 * bytes; the first two together under a cap of their length. */
static void coalescing(void)
{
	size_t tlen;
	unsigned char *tail = slurp("dict", "tail", &tlen);
	struct parquet_layout *l = NULL;
	struct parquet_run run;
	size_t pos = 0;

	CHECK_INT(parquet_footer_parse(tail, tlen - 8, 43286, &l), 0);
	if (!l) {
		free(tail);
		return;
	}
	CHECK(parquet_run_next(l, 0, 0, 0, &pos, &run));
	CHECK_INT(run.n, 3);
	CHECK_INT(run.off, 4);
	CHECK_INT(run.len, 17619 - 4);
	CHECK(!parquet_run_next(l, 0, 0, 0, &pos, &run));

	pos = 0;
	for (int i = 0; i < 3; i++) {
		CHECK(parquet_run_next(l, 0, 0, 300, &pos, &run));
		CHECK_INT(run.n, 1);
		CHECK_INT(run.first, i);
	}
	CHECK(!parquet_run_next(l, 0, 0, 300, &pos, &run));

	pos = 0;
	CHECK(parquet_run_next(l, 0, 0, 17397 - 4, &pos, &run));
	CHECK_INT(run.n, 2);
	CHECK(parquet_run_next(l, 0, 0, 17397 - 4, &pos, &run));
	CHECK_INT(run.n, 1);
	CHECK_INT(run.first, 2);
	parquet_layout_destroy(l);

	/* a file one byte too short for the last chunk (dictionary at
	 * 41925, 188 bytes) is refused; the exact size is not */
	CHECK_INT(parquet_footer_parse(tail, tlen - 8, 42113 + tlen - 1, &l),
		  -EBADMSG);
	CHECK(l == NULL);
	CHECK_INT(parquet_footer_parse(tail, tlen - 8, 42113 + tlen, &l), 0);
	parquet_layout_destroy(l);
	free(tail);
}

/* ---- footers written here (tests/unit/parquet_footer.h) ---- */

/* Parse chunks written as one row group, in a file whose data (what
 * lies before the footer) ends at data_end. */
static int parse_specs(const struct spec *s, size_t n, uint64_t data_end,
		       struct parquet_layout **l)
{
	struct strbuf w = STRBUF_INIT;
	int rc;

	put_footer(&w, s, &n, 1);
	rc = parquet_footer_parse(w.buf, w.len, data_end + 8 + w.len, l);
	strbuf_release(&w);
	return rc;
}

static int parse_one(struct spec s, uint64_t data_end)
{
	struct parquet_layout *l = NULL;
	int rc = parse_specs(&s, 1, data_end, &l);

	CHECK(rc == 0 || l == NULL);
	parquet_layout_destroy(l);
	return rc;
}

static void ranges(void)
{
	struct parquet_layout *l = NULL;
	/* given out of order; a gap between the second and third */
	struct spec s[] = { { 300, -1, 100, UNKNOWNS }, { 4, 0, 96, 0 },
			    { 100, 120, 50, 0 } };

	CHECK_INT(parse_specs(s, 3, 10000, &l), 0);
	if (l) {
		CHECK_INT(l->n_chunks, 3);
		CHECK_INT(l->chunks[0].column, 1);     /* sorted by offset */
		CHECK_INT(l->chunks[0].off, 4);        /* dict 0: data */
		CHECK_INT(l->chunks[1].off, 100);      /* dict after data */
		CHECK_INT(l->chunks[2].off, 300);
		CHECK_INT(l->groups[0].num_rows, 10);
		CHECK_INT(l->groups[0].total_byte_size, 1000);
		CHECK(parquet_find(l, 149) == &l->chunks[1]);
		CHECK(parquet_find(l, 150) == NULL);
		check_find(l);
		check_runs(l);
		parquet_layout_destroy(l);
	}
	/* the dictionary before the data starts the chunk */
	CHECK_INT(parse_one((struct spec){ 50, 10, 100, 0 }, 110), 0);
	CHECK_INT(parse_one((struct spec){ 50, 10, 100, 0 }, 109), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 50, -1, 100, 0 }, 149), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 50, -1, 100, 0 }, 150), 0);

	CHECK_INT(parse_one((struct spec){ 3, -1, 10, 0 }, 1000), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ -5, -1, 10, 0 }, 1000), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 4, -1, 0, 0 }, 1000), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 4, -1, -1, 0 }, 1000), -EBADMSG);
	/* lengths near the top of the range: no overflow either way */
	CHECK_INT(parse_one((struct spec){ 4, -1, INT64_MAX, 0 },
			    (uint64_t)INT64_MAX + 3), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 4, -1, INT64_MAX, 0 },
			    (uint64_t)INT64_MAX + 4), 0);
	CHECK_INT(parse_one((struct spec){ INT64_MAX, -1, INT64_MAX, 0 },
			    UINT64_MAX - 4096), -EBADMSG);
	CHECK_INT(parse_one((struct spec){ 4, -1, 10, NO_META }, 1000),
		  -ENOTSUP);
	CHECK_INT(parse_one((struct spec){ 4, -1, 10, FILE_PATH }, 1000),
		  -ENOTSUP);
	CHECK_INT(parse_one((struct spec){ 4, -1, 10, TWICE }, 1000),
		  -EBADMSG);

	/* row groups without columns (and so no chunks at all) */
	{
		struct strbuf w = STRBUF_INIT;
		size_t per[2] = { 0, 0 };

		put_footer(&w, s, per, 2);
		CHECK_INT(parquet_footer_parse(w.buf, w.len, w.len + 12, &l), 0);
		CHECK(l && l->n_groups == 2 && l->n_chunks == 0);
		if (l) {
			CHECK(parquet_find(l, 4) == NULL);
			check_runs(l);
		}
		parquet_layout_destroy(l);
		strbuf_release(&w);
	}

	/* two chunks sharing a byte */
	s[0] = (struct spec){ 4, -1, 100, 0 };
	s[1] = (struct spec){ 103, -1, 10, 0 };
	CHECK_INT(parse_specs(s, 2, 10000, &l), -EBADMSG);
	CHECK(l == NULL);
}

static void tails(void)
{
	unsigned char t[8] = { 100, 0, 0, 0, 'P', 'A', 'R', '1' };
	uint32_t n = 0;

	CHECK_INT(parquet_tail_len(t, 112, &n), 0);
	CHECK_INT(n, 100);
	CHECK_INT(parquet_tail_len(t, 111, &n), -EBADMSG);
	CHECK_INT(parquet_tail_len(t, 11, &n), -EBADMSG);
	CHECK_INT(parquet_tail_len(t, 0, &n), -EBADMSG);
	CHECK_INT(parquet_tail_len(NULL, 112, &n), -EINVAL);
	memcpy(t + 4, "PAR2", 4);
	CHECK_INT(parquet_tail_len(t, 112, &n), -EBADMSG);
	memcpy(t + 4, "PARE", 4);
	CHECK_INT(parquet_tail_len(t, 112, &n), -ENOTSUP);
	memcpy(t, "\0\0\0\0PAR1", 8);
	CHECK_INT(parquet_tail_len(t, 112, &n), -EBADMSG);
	memcpy(t, "\xff\xff\xff\xffPAR1", 8);
	CHECK_INT(parquet_tail_len(t, UINT64_MAX, &n), -E2BIG);
	memcpy(t, "\x00\x00\x00\x04PAR1", 8);        /* exactly 64 MiB */
	CHECK_INT(parquet_tail_len(t, UINT64_MAX, &n), 0);
	CHECK_INT(n, PARQUET_FOOTER_MAX);

	CHECK_INT(parquet_footer_parse("\0", 1, 12, NULL), -EINVAL);
	struct parquet_layout *l = (void *)1;
	CHECK_INT(parquet_footer_parse("\0", 1, 12, &l), -EBADMSG);
	CHECK(l == NULL);                        /* no row_groups */
	CHECK_INT(parquet_footer_parse("\0", 1, 12, &l), -EBADMSG);
	CHECK_INT(parquet_footer_parse("\x49\x0c\0", 3, 14, &l), -EBADMSG);
	CHECK_INT(parquet_footer_parse("\x49\x0c\0", 3, 15, &l), 0);
	CHECK(l && l->n_groups == 0 && l->n_chunks == 0);
	parquet_layout_destroy(l);
	CHECK_INT(parquet_footer_parse("\x49\x0c\0", 0, 15, &l), -EBADMSG);
	CHECK_INT(parquet_footer_parse(NULL, 3, 15, &l), -EINVAL);
}

/* Footers that are not Thrift, or that ask for too much. */
static void malformed(void)
{
	struct parquet_layout *l = NULL;
	struct strbuf w = STRBUF_INIT;
	int last = 0;

	/* row_groups of a huge length */
	put_field(&w, &last, 4, LIST);
	put(&w, 0xfc);
	put_varint(&w, (uint64_t)1 << 40);
	put(&w, 0);
	CHECK_INT(parquet_footer_parse(w.buf, w.len, 1 << 20, &l), -EBADMSG);
	/* an unknown binary longer than the footer */
	strbuf_reset(&w);
	last = 0;
	put_field(&w, &last, 5, BINARY);
	put_varint(&w, 1000);
	CHECK_INT(parquet_footer_parse(w.buf, w.len, 1 << 20, &l), -EBADMSG);
	/* an unknown map claiming more pairs than bytes */
	strbuf_reset(&w);
	last = 0;
	put_field(&w, &last, 5, MAP);
	put_varint(&w, 1000);
	put(&w, I32 << 4 | I32);
	CHECK_INT(parquet_footer_parse(w.buf, w.len, 1 << 20, &l), -EBADMSG);
	/* a varint of eleven bytes */
	strbuf_reset(&w);
	last = 0;
	put_field(&w, &last, 3, I64);
	strbuf_add(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
	put(&w, 0);
	CHECK_INT(parquet_footer_parse(w.buf, w.len, 1 << 20, &l), -EBADMSG);
	/* a type that does not exist; a known field of another type */
	CHECK_INT(parquet_footer_parse("\x1e\x00", 2, 1 << 20, &l), -EBADMSG);
	CHECK_INT(parquet_footer_parse("\x45\x02\x00", 3, 1 << 20, &l),
		  -EBADMSG);
	/* row_groups twice (the second id in the long form) */
	CHECK_INT(parquet_footer_parse("\x49\x0c\x09\x08\x0c\x00", 6,
				       1 << 20, &l), -EBADMSG);
	/* a stop byte with an id delta */
	CHECK_INT(parquet_footer_parse("\x49\x0c\x10", 3, 1 << 20, &l),
		  -EBADMSG);
	CHECK(l == NULL);
	strbuf_release(&w);
}

/* Nesting of unknown fields: 31 levels below the footer parse, 32
 * (past DEPTH_MAX with the footer's own) do not, nor do 100000. */
static int nested(int depth, int kind)
{
	struct parquet_layout *l = NULL;
	struct strbuf w = STRBUF_INIT;
	int last = 0, rc;

	put_field(&w, &last, 4, LIST);
	put_list(&w, 0, STRUCT);
	put_field(&w, &last, 5, kind);
	for (int i = 1; i < depth; i++) {
		if (kind == STRUCT)
			put(&w, 0x10 | STRUCT);       /* field 1: a struct */
		else
			put_list(&w, 1, LIST);
	}
	if (kind == STRUCT)
		for (int i = 0; i < depth; i++)
			put(&w, 0);
	else
		put_list(&w, 0, I32);
	put(&w, 0);
	rc = parquet_footer_parse(w.buf, w.len, 1 << 20, &l);
	CHECK(rc == 0 || l == NULL);
	parquet_layout_destroy(l);
	strbuf_release(&w);
	return rc;
}

static void depth(void)
{
	CHECK_INT(nested(31, STRUCT), 0);
	CHECK_INT(nested(32, STRUCT), -EBADMSG);
	CHECK_INT(nested(100000, STRUCT), -EBADMSG);
	CHECK_INT(nested(31, LIST), 0);
	CHECK_INT(nested(32, LIST), -EBADMSG);
	CHECK_INT(nested(100000, LIST), -EBADMSG);
}

/* The chunk cap: exactly PARQUET_CHUNKS_MAX parse, one more does not,
 * whether in one group or across two. */
static void limits(void)
{
	size_t n = PARQUET_CHUNKS_MAX + 1, per[2];
	struct spec *s = malloc(n * sizeof(*s));
	struct parquet_layout *l = NULL;
	struct strbuf w = STRBUF_INIT;

	for (size_t i = 0; i < n; i++)
		s[i] = (struct spec){ 4 + (int64_t)i, -1, 1, 0 };
	CHECK_INT(parse_specs(s, n - 1, 1 << 21, &l), 0);
	CHECK(l && l->n_chunks == PARQUET_CHUNKS_MAX);
	if (l)
		CHECK(parquet_find(l, 4 + 777777)->column == 777777);
	parquet_layout_destroy(l);
	CHECK_INT(parse_specs(s, n, 1 << 21, &l), -E2BIG);
	CHECK(l == NULL);
	per[0] = n / 2;
	per[1] = n - n / 2;
	put_footer(&w, s, per, 2);
	CHECK_INT(parquet_footer_parse(w.buf, w.len, (uint64_t)w.len + (1 << 21) + 8,
				       &l), -E2BIG);
	CHECK(l == NULL);
	strbuf_release(&w);
	free(s);
}

int main(void)
{
	fixtures();
	coalescing();
	ranges();
	tails();
	malformed();
	depth();
	limits();
	return check_summary();
}
