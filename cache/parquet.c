/*
 * parquet.c - the layout of a Parquet file's column chunks, from its
 * footer (parquet.h).
 *
 * The footer is a Thrift struct in the compact protocol.  What is read
 * of it (field ids from parquet-format's parquet.thrift):
 *
 *   FileMetaData    4: list<RowGroup> row_groups
 *   RowGroup        1: list<ColumnChunk> columns
 *                   2: i64 total_byte_size     3: i64 num_rows
 *   ColumnChunk     1: string file_path (set: data in another file)
 *                   3: ColumnMetaData meta_data (absent: encrypted)
 *   ColumnMetaData  7: i64 total_compressed_size
 *                   9: i64 data_page_offset   11: i64 dictionary_page_offset
 *
 * Every other field, of any type, is skipped.  The compact protocol, as
 * far as it matters here:
 *
 *   field header  1 byte: high nibble = id delta (1..15; 0: a zigzag
 *                 varint id follows), low nibble = type (0 = stop)
 *   types         1/2 bool true/false (in a field the header is the
 *                 value; in a list one byte), 3 byte, 4 i16, 5 i32,
 *                 6 i64 (zigzag varints), 7 double (8 bytes), 8 binary
 *                 (varint length + bytes), 9 list, 10 set, 11 map,
 *                 12 struct (fields up to a stop), 13 uuid (16 bytes)
 *   list, set     1 byte: high nibble = size (15: a varint size
 *                 follows), low nibble = element type
 *   map           varint size; if not 0, 1 byte: key type << 4 | value
 *
 * Bounds: nothing is read past the buffer; nesting is at most DEPTH_MAX
 * (recursion is that deep at most); a list or map may not claim more
 * elements than there are bytes left, since each takes one at least, so
 * the work is linear in the footer's length.
 */
#include "cache/parquet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 32

enum {
	T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE,
	T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT, T_UUID,
};

struct tc {                       /* a bounded compact-protocol reader */
	const uint8_t *p, *end;
	int depth;
};

static int tc_byte(struct tc *r, uint8_t *b)
{
	if (r->p == r->end)
		return -EBADMSG;
	*b = *r->p++;
	return 0;
}

static int tc_bytes(struct tc *r, uint64_t n)
{
	if (n > (uint64_t)(r->end - r->p))
		return -EBADMSG;
	r->p += n;
	return 0;
}

/* An unsigned LEB128 of at most 64 bits (10 bytes, the last 0 or 1). */
static int tc_varint(struct tc *r, uint64_t *v)
{
	uint64_t x = 0;
	uint8_t b;

	for (int shift = 0; shift < 70; shift += 7) {
		if (tc_byte(r, &b) < 0)
			return -EBADMSG;
		if (shift == 63 && b > 1)
			return -EBADMSG;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG;
}

static int64_t unzigzag(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int tc_i64(struct tc *r, int64_t *v)
{
	uint64_t u;

	if (tc_varint(r, &u) < 0)
		return -EBADMSG;
	*v = unzigzag(u);
	return 0;
}

/* A varint that fits in bits (32 or 16) before unzigzagging. */
static int tc_small(struct tc *r, int bits, int64_t *v)
{
	uint64_t u;

	if (tc_varint(r, &u) < 0 || u >> bits)
		return -EBADMSG;
	*v = unzigzag(u);
	return 0;
}

static bool valid_type(int t)
{
	return t >= T_TRUE && t <= T_UUID;
}

/*
 * The next field header: *type 0 at the struct's end, else its type
 * and *id (relative to *last, which it updates).
 */
static int tc_field(struct tc *r, int16_t *last, int *type, int16_t *id)
{
	uint8_t b;
	int64_t v;

	if (tc_byte(r, &b) < 0)
		return -EBADMSG;
	*type = b & 0x0f;
	if (*type == T_STOP)
		return b == 0 ? 0 : -EBADMSG;
	if (!valid_type(*type))
		return -EBADMSG;
	if (b >> 4) {
		v = (int64_t)*last + (b >> 4);
		if (v > INT16_MAX)
			return -EBADMSG;
	} else if (tc_small(r, 16, &v) < 0) {
		return -EBADMSG;
	}
	*id = *last = (int16_t)v;
	return 0;
}

/* A list or set header; *n is at most the bytes left. */
static int tc_list(struct tc *r, int *etype, uint64_t *n)
{
	uint8_t b;

	if (tc_byte(r, &b) < 0)
		return -EBADMSG;
	*etype = b & 0x0f;
	*n = b >> 4;
	if (*n == 15 && tc_varint(r, n) < 0)
		return -EBADMSG;
	if (*n > (uint64_t)(r->end - r->p))
		return -EBADMSG;
	if (*n && !valid_type(*etype))
		return -EBADMSG;
	return 0;
}

static int tc_enter(struct tc *r)
{
	return ++r->depth > DEPTH_MAX ? -EBADMSG : 0;
}

static int skip(struct tc *r, int type, bool in_field);

/*
 * Walk one struct's fields up to its stop.  field() reads the fields it
 * knows and returns 0 or -errno, or 1 to have the field skipped; NULL
 * skips them all.
 */
static int walk_struct(struct tc *r,
		       int (*field)(struct tc *, void *, int16_t, int),
		       void *ctx)
{
	int16_t last = 0, id;
	int type, rc;

	if (tc_enter(r) < 0)
		return -EBADMSG;
	for (;;) {
		if (tc_field(r, &last, &type, &id) < 0)
			return -EBADMSG;
		if (type == T_STOP)
			break;
		rc = field ? field(r, ctx, id, type) : 1;
		if (rc > 0)
			rc = skip(r, type, true);
		if (rc < 0)
			return rc;
	}
	r->depth--;
	return 0;
}

static int skip_list(struct tc *r)
{
	uint64_t n;
	int et;

	if (tc_list(r, &et, &n) < 0)
		return -EBADMSG;
	for (uint64_t i = 0; i < n; i++)
		if (skip(r, et, false) < 0)
			return -EBADMSG;
	return 0;
}

static int skip_map(struct tc *r)
{
	uint64_t n;
	uint8_t kv;

	if (tc_varint(r, &n) < 0)
		return -EBADMSG;
	if (n == 0)
		return 0;
	if (n > (uint64_t)(r->end - r->p) / 2 || tc_byte(r, &kv) < 0 ||
	    !valid_type(kv >> 4) || !valid_type(kv & 0x0f))
		return -EBADMSG;
	for (uint64_t i = 0; i < n; i++)
		if (skip(r, kv >> 4, false) < 0 || skip(r, kv & 0x0f, false) < 0)
			return -EBADMSG;
	return 0;
}

/* Skip one value of type; a bool field's value is its header. */
static int skip(struct tc *r, int type, bool in_field)
{
	uint64_t u;
	int rc;

	switch (type) {
	case T_TRUE:
	case T_FALSE:
		return in_field ? 0 : tc_bytes(r, 1);
	case T_BYTE:
		return tc_bytes(r, 1);
	case T_I16:
	case T_I32:
	case T_I64:
		return tc_varint(r, &u);
	case T_DOUBLE:
		return tc_bytes(r, 8);
	case T_UUID:
		return tc_bytes(r, 16);
	case T_BINARY:
		return tc_varint(r, &u) < 0 ? -EBADMSG : tc_bytes(r, u);
	case T_STRUCT:
		return walk_struct(r, NULL, NULL) < 0 ? -EBADMSG : 0;
	case T_LIST:
	case T_SET:
	case T_MAP:
		if (tc_enter(r) < 0)
			return -EBADMSG;
		rc = type == T_MAP ? skip_map(r) : skip_list(r);
		r->depth--;
		return rc;
	}
	return -EBADMSG;
}

/*
 * A list of structs, each read by elem(r, ctx, index).  At most max
 * elements (-E2BIG past it).
 */
static int walk_list(struct tc *r, int type, size_t max,
		     int (*elem)(struct tc *, void *, uint32_t), void *ctx)
{
	uint64_t n;
	int et, rc;

	if (type != T_LIST || tc_enter(r) < 0 || tc_list(r, &et, &n) < 0 ||
	    (n && et != T_STRUCT))
		return -EBADMSG;
	if (n > max)
		return -E2BIG;
	for (uint64_t i = 0; i < n; i++) {
		rc = elem(r, ctx, (uint32_t)i);
		if (rc < 0)
			return rc;
	}
	r->depth--;
	return 0;
}

/* ---- the footer's structs ---- */

struct builder {
	struct parquet_layout *l;
	size_t chunk_alloc, group_alloc;
	uint32_t group;           /* the row group being read */
};

/* What a struct has read so far: bit id of seen for each field read,
 * which may come once; v[id] the i64 ones.  A ColumnChunk and its
 * ColumnMetaData share one (their ids 1, 3 and 7, 9, 11 differ). */
struct fields {
	unsigned seen;
	int64_t v[12];            /* the i64 fields, by id */
	struct builder *b;
};

static int once(struct fields *f, int16_t id)
{
	if (f->seen & (1u << id))
		return -EBADMSG;
	f->seen |= 1u << id;
	return 0;
}

static int read_i64(struct tc *r, struct fields *f, int16_t id, int type)
{
	if (type != T_I64 || once(f, id) < 0)
		return -EBADMSG;
	return tc_i64(r, &f->v[id]);
}

static int column_meta_field(struct tc *r, void *ctx, int16_t id, int type)
{
	if (id == 7 || id == 9 || id == 11)
		return read_i64(r, ctx, id, type);
	return 1;
}

static int column_chunk_field(struct tc *r, void *ctx, int16_t id, int type)
{
	struct fields *f = ctx;

	if (id == 1)              /* file_path: refused once read whole */
		return type != T_BINARY || once(f, id) < 0 ? -EBADMSG : 1;
	if (id != 3)
		return 1;
	if (type != T_STRUCT || once(f, id) < 0)
		return -EBADMSG;
	return walk_struct(r, column_meta_field, f);
}

static int push_chunk(struct builder *b, const struct parquet_chunk *c)
{
	struct parquet_layout *l = b->l;

	if (l->n_chunks == PARQUET_CHUNKS_MAX)
		return -E2BIG;
	if (l->n_chunks == b->chunk_alloc) {
		size_t a = b->chunk_alloc ? 2 * b->chunk_alloc : 16;
		void *p = realloc(l->chunks, a * sizeof(*l->chunks));
		if (!p)
			return -ENOMEM;
		l->chunks = p;
		b->chunk_alloc = a;
	}
	l->chunks[l->n_chunks++] = *c;
	return 0;
}

/*
 * One ColumnChunk: its range is the dictionary page's offset when that
 * is set and before the first data page, else the first data page's,
 * for total_compressed_size bytes; it must lie within the file's data.
 */
static int column_chunk(struct tc *r, void *ctx, uint32_t column)
{
	struct builder *b = ctx;
	struct fields f = { 0 };
	struct parquet_chunk c = { .group = b->group, .column = column };
	int64_t size, data, dict;
	uint64_t end = b->l->data_end;
	int rc;

	rc = walk_struct(r, column_chunk_field, &f);
	if (rc < 0)
		return rc;
	if ((f.seen & (1u << 1)) || !(f.seen & (1u << 3)))
		return -ENOTSUP;          /* in another file; encrypted */
	if (!(f.seen & (1u << 7)) || !(f.seen & (1u << 9)))
		return -EBADMSG;
	size = f.v[7];
	data = f.v[9];
	dict = f.v[11];
	if (size <= 0 || data < 0)
		return -EBADMSG;
	c.off = dict > 0 && dict < data ? (uint64_t)dict : (uint64_t)data;
	c.len = (uint64_t)size;
	if (c.off < 4 || c.off >= end || c.len > end - c.off)
		return -EBADMSG;
	return push_chunk(b, &c);
}

static int row_group_field(struct tc *r, void *ctx, int16_t id, int type)
{
	struct fields *f = ctx;

	if (id == 2 || id == 3)
		return read_i64(r, f, id, type);
	if (id != 1)
		return 1;
	if (once(f, id) < 0)
		return -EBADMSG;
	return walk_list(r, type, PARQUET_CHUNKS_MAX, column_chunk, f->b);
}

static int row_group(struct tc *r, void *ctx, uint32_t group)
{
	struct builder *b = ctx;
	struct fields f = { .b = b };
	struct parquet_group g = { .first = b->l->n_chunks };
	int rc;

	b->group = group;
	rc = walk_struct(r, row_group_field, &f);
	if (rc < 0)
		return rc;
	if (f.seen != 0xe || f.v[3] < 0)
		return -EBADMSG;
	g.n = b->l->n_chunks - g.first;
	g.total_byte_size = f.v[2];
	g.num_rows = f.v[3];
	if (b->l->n_groups == b->group_alloc) {
		size_t a = b->group_alloc ? 2 * b->group_alloc : 16;
		void *p = realloc(b->l->groups, a * sizeof(g));
		if (!p)
			return -ENOMEM;
		b->l->groups = p;
		b->group_alloc = a;
	}
	b->l->groups[b->l->n_groups++] = g;
	return 0;
}

static int file_meta_field(struct tc *r, void *ctx, int16_t id, int type)
{
	struct fields *f = ctx;

	if (id != 4)
		return 1;
	if (once(f, id) < 0)
		return -EBADMSG;
	return walk_list(r, type, PARQUET_GROUPS_MAX, row_group, f->b);
}

/* ---- sorting and queries ---- */

static int cmp_chunk(const void *a, const void *b)
{
	const struct parquet_chunk *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->column < y->column ? -1 : x->column > y->column;
}

static int cmp_index(const void *a, const void *b, void *arg)
{
	const struct parquet_chunk *c = arg;

	return cmp_chunk(&c[*(const uint32_t *)a], &c[*(const uint32_t *)b]);
}

/* Sort each group by offset, index all chunks by offset, and refuse
 * chunks that share bytes (a query could not tell them apart). */
static int index_chunks(struct parquet_layout *l)
{
	for (size_t g = 0; g < l->n_groups; g++)
		if (l->groups[g].n > 1)   /* chunks may be NULL */
			qsort(l->chunks + l->groups[g].first, l->groups[g].n,
			      sizeof(*l->chunks), cmp_chunk);
	l->by_off = malloc((l->n_chunks ? l->n_chunks : 1) * sizeof(uint32_t));
	if (!l->by_off)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_chunks; i++)
		l->by_off[i] = (uint32_t)i;
	qsort_r(l->by_off, l->n_chunks, sizeof(uint32_t), cmp_index, l->chunks);
	for (size_t i = 1; i < l->n_chunks; i++) {
		const struct parquet_chunk *p = &l->chunks[l->by_off[i - 1]];

		if (p->off + p->len > l->chunks[l->by_off[i]].off)
			return -EBADMSG;
	}
	return 0;
}

int parquet_tail_len(const void *last8, uint64_t file_size,
		     uint32_t *footer_len)
{
	const uint8_t *t = last8;
	uint32_t n;

	if (!t || !footer_len)
		return -EINVAL;
	if (memcmp(t + 4, "PARE", 4) == 0)
		return -ENOTSUP;
	if (memcmp(t + 4, "PAR1", 4) != 0)
		return -EBADMSG;
	n = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
	    (uint32_t)t[3] << 24;
	if (n == 0 || file_size < 4 + PARQUET_TAIL ||
	    n > file_size - 4 - PARQUET_TAIL)
		return -EBADMSG;
	if (n > PARQUET_FOOTER_MAX)
		return -E2BIG;
	*footer_len = n;
	return 0;
}

int parquet_footer_parse(const void *footer, size_t len, uint64_t file_size,
			 struct parquet_layout **out)
{
	struct tc r = { footer, NULL, 0 };
	struct builder b = { 0 };
	struct fields f = { .b = &b };
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!footer)
		return -EINVAL;
	if (len == 0 || file_size < 4 + PARQUET_TAIL ||
	    len > file_size - 4 - PARQUET_TAIL)
		return -EBADMSG;
	if (len > PARQUET_FOOTER_MAX)
		return -E2BIG;
	r.end = r.p + len;
	b.l = calloc(1, sizeof(*b.l));
	if (!b.l)
		return -ENOMEM;
	b.l->data_end = file_size - PARQUET_TAIL - len;
	/* Bytes after the struct are allowed: a signed plaintext footer
	 * carries a nonce and a tag there. */
	rc = walk_struct(&r, file_meta_field, &f);
	if (rc == 0 && !(f.seen & (1u << 4)))
		rc = -EBADMSG;
	if (rc == 0)
		rc = index_chunks(b.l);
	if (rc < 0) {
		parquet_layout_destroy(b.l);
		return rc;
	}
	*out = b.l;
	return 0;
}

void parquet_layout_destroy(struct parquet_layout *l)
{
	if (!l)
		return;
	free(l->chunks);
	free(l->groups);
	free(l->by_off);
	free(l);
}

const struct parquet_chunk *parquet_find(const struct parquet_layout *l,
					 uint64_t off)
{
	size_t lo = 0, hi = l->n_chunks;   /* first chunk starting past off */
	const struct parquet_chunk *c;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->chunks[l->by_off[mid]].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	c = &l->chunks[l->by_off[lo - 1]];
	return off - c->off < c->len ? c : NULL;
}

bool parquet_run_next(const struct parquet_layout *l, size_t group,
		      uint64_t max_gap, uint64_t max_len, size_t *pos,
		      struct parquet_run *run)
{
	const struct parquet_group *g;
	const struct parquet_chunk *c;
	uint64_t end;
	size_t k = 1;

	if (group >= l->n_groups || *pos >= l->groups[group].n)
		return false;
	g = &l->groups[group];
	c = &l->chunks[g->first + *pos];
	run->first = g->first + *pos;
	run->off = c->off;
	end = c->off + c->len;
	for (; *pos + k < g->n; k++) {
		c = &l->chunks[g->first + *pos + k];
		if (c->off - end > max_gap ||
		    (max_len && c->off + c->len - run->off > max_len))
			break;
		end = c->off + c->len;
	}
	run->n = k;
	run->len = end - run->off;
	*pos += k;
	return true;
}
