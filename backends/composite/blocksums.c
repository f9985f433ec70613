/*
 * blocksums.c - block manifests of replica copies: build, encode, parse,
 * prove against the source's crc32c, check bytes (layout: blocksums.h).
 */
#include "backends/composite/blocksums.h"
#include "backends/util/crc32c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "HYBS"
#define FORMAT 1
#define HEAD 36                   /* bytes before the block sums */

uint32_t blocksums_count(uint64_t size)
{
	return (uint32_t)((size + BLOCKSUMS_BLOCK - 1) / BLOCKSUMS_BLOCK);
}

void blocksums_sidecar(const char *name, struct strbuf *out)
{
	strbuf_addf(out, "%s%s", BLOCKSUMS_PREFIX, name);
}

static void put32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
	strbuf_add(sb, b, 4);
}

static void put64(struct strbuf *sb, uint64_t v)
{
	put32(sb, (uint32_t)(v >> 32));
	put32(sb, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static struct blocksums *sums_new(uint64_t generation, uint64_t size)
{
	uint32_t n = blocksums_count(size);
	struct blocksums *s = xcalloc(1, sizeof(*s) + (size_t)n * 4);
	s->generation = generation;
	s->size = size;
	s->nblocks = n;
	return s;
}

void blocksums_encode(const struct blocksums *s, struct strbuf *out)
{
	size_t start = out->len;

	strbuf_add(out, MAGIC, 4);
	put32(out, FORMAT);
	put32(out, (uint32_t)BLOCKSUMS_BLOCK);
	put64(out, s->generation);
	put64(out, s->size);
	put32(out, s->crc32c);
	put32(out, s->nblocks);
	for (uint32_t i = 0; i < s->nblocks; i++)
		put32(out, s->crc[i]);
	put32(out, crc32c_update(0, out->buf + start, out->len - start));
}

int blocksums_decode(const void *buf, size_t len, struct blocksums **out)
{
	const unsigned char *p = buf;

	*out = NULL;
	if (len < HEAD + 4 || memcmp(p, MAGIC, 4) != 0 ||
	    get32(p + 4) != FORMAT || get32(p + 8) != BLOCKSUMS_BLOCK)
		return -EINVAL;
	uint64_t size = get64(p + 20);
	uint32_t n = get32(p + 32);
	if (n != blocksums_count(size) || (len - HEAD - 4) / 4 != n ||
	    (len - HEAD - 4) % 4 != 0 ||
	    crc32c_update(0, p, len - 4) != get32(p + len - 4))
		return -EINVAL;
	struct blocksums *s = sums_new(get64(p + 12), size);
	s->crc32c = get32(p + 28);
	for (uint32_t i = 0; i < n; i++)
		s->crc[i] = get32(p + HEAD + 4 * (size_t)i);
	*out = s;
	return 0;
}

static uint64_t block_len(const struct blocksums *s, uint32_t i)
{
	uint64_t start = (uint64_t)i * BLOCKSUMS_BLOCK;
	uint64_t left = s->size - start;
	return left < BLOCKSUMS_BLOCK ? left : BLOCKSUMS_BLOCK;
}

/* The blocks' sums combined: the crc32c of the whole object. */
static uint32_t combined(const struct blocksums *s)
{
	uint32_t op = crc32c_shift_op(BLOCKSUMS_BLOCK), crc = 0;

	for (uint32_t i = 0; i < s->nblocks; i++)
		crc = i + 1 < s->nblocks
		      ? crc32c_combine_op(crc, s->crc[i], op)
		      : crc32c_combine(crc, s->crc[i], block_len(s, i));
	return crc;
}

bool blocksums_prove(const struct blocksums *s, const struct obj_info *v)
{
	return s->generation == v->generation && s->size == v->size &&
	       v->has_crc32c && s->crc32c == v->crc32c &&
	       combined(s) == v->crc32c;
}

int blocksums_check(const struct blocksums *s, uint64_t off, const void *buf,
		    size_t len, uint64_t *bad)
{
	const unsigned char *p = buf;

	if (off % BLOCKSUMS_BLOCK || off > s->size || len > s->size - off ||
	    (len % BLOCKSUMS_BLOCK && off + len != s->size))
		return -EINVAL;
	for (uint32_t i = (uint32_t)(off / BLOCKSUMS_BLOCK); len; i++) {
		size_t n = (size_t)block_len(s, i);
		if (crc32c_update(0, p, n) != s->crc[i]) {
			*bad = i;
			return -EBADMSG;
		}
		p += n;
		len -= n;
	}
	return 0;
}

void blocksums_builder_init(struct blocksums_builder *b, uint64_t generation,
			    uint64_t size)
{
	b->s = sums_new(generation, size);
	b->at = 0;
	b->cur = 0;
}

void blocksums_builder_feed(struct blocksums_builder *b, const void *buf,
			    size_t len)
{
	const unsigned char *p = buf;

	while (len && b->at < b->s->size) {
		uint32_t i = (uint32_t)(b->at / BLOCKSUMS_BLOCK);
		uint64_t room = block_len(b->s, i) - b->at % BLOCKSUMS_BLOCK;
		size_t n = len < room ? len : (size_t)room;
		b->cur = crc32c_update(b->cur, p, n);
		b->at += n;
		p += n;
		len -= n;
		if (n == room) {          /* the block is complete */
			b->s->crc[i] = b->cur;
			b->cur = 0;
		}
	}
	b->at += len;                 /* past the size: finish says so */
}

struct blocksums *blocksums_builder_finish(struct blocksums_builder *b)
{
	struct blocksums *s = b->s;

	b->s = NULL;
	if (b->at != s->size) {
		free(s);
		return NULL;
	}
	s->crc32c = combined(s);
	return s;
}

void blocksums_builder_release(struct blocksums_builder *b)
{
	free(b->s);
	b->s = NULL;
}

int blocksums_read(const struct obj_info *v, size_t piece, blocksums_reader rd,
		   void *arg, struct blocksums **out)
{
	struct blocksums_builder b;
	void *buf;
	uint64_t off = 0;
	int rc = 0;

	if (v->size < piece)
		piece = (size_t)v->size;
	buf = xmalloc(piece ? piece : 1);
	*out = NULL;
	blocksums_builder_init(&b, v->generation, v->size);
	while (off < v->size) {
		ssize_t n = rd(arg, buf, piece, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EBADMSG;   /* shorter than v */
			break;
		}
		blocksums_builder_feed(&b, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	if (rc < 0) {
		blocksums_builder_release(&b);
		return rc;
	}
	*out = blocksums_builder_finish(&b);
	if (*out && blocksums_prove(*out, v))
		return 0;
	free(*out);
	*out = NULL;
	return -EBADMSG;
}
