/*
 * test_blocksums.c - CRC-32C combination and block manifests.
 */
#include "backends/composite/blocksums.h"
#include "backends/util/crc32c.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>

#define MiB (1u << 20)

static unsigned char *random_bytes(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
	return p;
}

static void combine(void)
{
	unsigned char *d = random_bytes(3 * MiB + 17, 1);
	uint32_t whole = crc32c_update(0, d, 3 * MiB + 17);
	size_t cuts[] = { 0, 1, 7, 4096, MiB, 2 * MiB + 5, 3 * MiB + 17 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t a = cuts[i], b = 3 * MiB + 17 - a;
		uint32_t ca = crc32c_update(0, d, a);
		uint32_t cb = crc32c_update(0, d + a, b);
		CHECK_INT(crc32c_combine(ca, cb, b), whole);
	}
	/* long runs (three chains at once) agree with byte-at-a-time ones */
	for (size_t n = 12287; n <= 12289 + 64; n += 7) {
		uint32_t one = 0;
		for (size_t i = 0; i < n; i++)
			one = crc32c_update(one, d + i, 1);
		CHECK_INT(crc32c_update(0, d, n), one);
	}
	/* "123456789" in two pieces: the catalogue value */
	CHECK_INT(crc32c_combine(crc32c_update(0, "1234", 4),
				 crc32c_update(0, "56789", 5), 5), 0xE3069283U);
	free(d);
}

/* Sums of d (size bytes) built from pieces of `piece` bytes. */
static struct blocksums *build(const unsigned char *d, uint64_t size,
			       size_t piece, uint64_t gen)
{
	struct blocksums_builder b;
	blocksums_builder_init(&b, gen, size);
	for (uint64_t at = 0; at < size; at += piece) {
		size_t n = size - at < piece ? (size_t)(size - at) : piece;
		blocksums_builder_feed(&b, d + at, n);
	}
	return blocksums_builder_finish(&b);
}

static void manifest(void)
{
	uint64_t size = 5 * MiB + 1234;
	unsigned char *d = random_bytes(size, 7);
	struct obj_info v = { .size = size, .generation = 42,
			      .crc32c = crc32c_update(0, d, size),
			      .has_crc32c = true };
	uint64_t bad = 0;

	struct blocksums *s = build(d, size, 333333, 42);
	CHECK(s != NULL);
	CHECK_INT(s->nblocks, 6);
	CHECK_INT(s->crc32c, v.crc32c);
	CHECK(blocksums_prove(s, &v));
	struct blocksums *s2 = build(d, size, MiB, 42);   /* other pieces */
	CHECK(!memcmp(s->crc, s2->crc, 6 * 4));
	free(s2);

	/* round trip, and a damaged sidecar is refused */
	struct strbuf enc = STRBUF_INIT;
	blocksums_encode(s, &enc);
	CHECK_INT(enc.len, 36 + 6 * 4 + 4);
	struct blocksums *back;
	CHECK_INT(blocksums_decode(enc.buf, enc.len, &back), 0);
	CHECK(back && blocksums_prove(back, &v));
	free(back);
	enc.buf[40] ^= 1;
	CHECK_INT(blocksums_decode(enc.buf, enc.len, &back), -EINVAL);
	CHECK_INT(blocksums_decode(enc.buf, 20, &back), -EINVAL);
	strbuf_release(&enc);

	/* it proves nothing about another version */
	struct obj_info w = v;
	w.generation = 43;
	CHECK(!blocksums_prove(s, &w));
	w = v;
	w.crc32c ^= 1;
	CHECK(!blocksums_prove(s, &w));
	w = v;
	w.has_crc32c = false;
	CHECK(!blocksums_prove(s, &w));
	/* sums that do not combine to the source's crc prove nothing */
	s->crc[3] ^= 1;
	CHECK(!blocksums_prove(s, &v));
	s->crc[3] ^= 1;

	/* checks: whole blocks, the short last one, a flipped byte */
	CHECK_INT(blocksums_check(s, 0, d, size, &bad), 0);
	CHECK_INT(blocksums_check(s, 2 * MiB, d + 2 * MiB, MiB, &bad), 0);
	CHECK_INT(blocksums_check(s, 5 * MiB, d + 5 * MiB, 1234, &bad), 0);
	CHECK_INT(blocksums_check(s, MiB, d + MiB, 100, &bad), -EINVAL);
	CHECK_INT(blocksums_check(s, 100, d + 100, MiB, &bad), -EINVAL);
	d[3 * MiB + 99] ^= 0x20;
	CHECK_INT(blocksums_check(s, 0, d, size, &bad), -EBADMSG);
	CHECK_INT(bad, 3);
	CHECK_INT(blocksums_check(s, 2 * MiB, d + 2 * MiB, 2 * MiB, &bad),
		  -EBADMSG);
	CHECK_INT(blocksums_check(s, 4 * MiB, d + 4 * MiB, size - 4 * MiB,
				  &bad), 0);
	free(s);

	/* a builder fed the wrong number of bytes gives nothing */
	struct blocksums_builder b;
	blocksums_builder_init(&b, 1, 10);
	blocksums_builder_feed(&b, d, 9);
	CHECK(blocksums_builder_finish(&b) == NULL);
	blocksums_builder_init(&b, 1, 10);
	blocksums_builder_feed(&b, d, 11);
	CHECK(blocksums_builder_finish(&b) == NULL);

	/* an empty object: no blocks, crc 0 */
	s = build(d, 0, 1, 5);
	struct obj_info e = { .generation = 5, .has_crc32c = true };
	CHECK(s && s->nblocks == 0 && blocksums_prove(s, &e));
	free(s);

	struct strbuf side = STRBUF_INIT;
	blocksums_sidecar("t/a.parquet", &side);
	CHECK_STR(side.buf, ".hylake/blocks/t/a.parquet");
	strbuf_release(&side);
	free(d);
}

int main(void)
{
	combine();
	manifest();
	return check_summary();
}
