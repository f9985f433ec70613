/*
 * parquet_footer.h - Parquet footers (FileMetaData, Thrift compact)
 * written by the unit tests: chunks where a test wants them, and fields
 * of every kind around them.  Header-only; for tests.
 */
#ifndef HYLAKE_TEST_PARQUET_FOOTER_H
#define HYLAKE_TEST_PARQUET_FOOTER_H

#include "backends/util/strbuf.h"

#include <stddef.h>
#include <stdint.h>


enum { BOOL_T = 1, BYTE = 3, I16 = 4, I32 = 5, I64 = 6, DOUBLE = 7,
       BINARY = 8, LIST = 9, SET = 10, MAP = 11, STRUCT = 12, UUID = 13 };

static inline void put(struct strbuf *w, unsigned b)
{
	strbuf_addch(w, (char)(unsigned char)b);
}

static inline void put_varint(struct strbuf *w, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		put(w, (unsigned)(v & 0x7f) | 0x80);
	put(w, (unsigned)v);
}

static inline void put_i64(struct strbuf *w, int64_t v)
{
	put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A field header; *last is the previous id of the struct. */
static inline void put_field(struct strbuf *w, int *last, int id, int type)
{
	if (id > *last && id - *last <= 15) {
		put(w, (unsigned)((id - *last) << 4 | type));
	} else {
		put(w, (unsigned)type);
		put_i64(w, id);
	}
	*last = id;
}

static inline void put_list(struct strbuf *w, uint64_t n, int type)
{
	if (n < 15) {
		put(w, (unsigned)(n << 4 | (unsigned)type));
	} else {
		put(w, 0xf0u | (unsigned)type);
		put_varint(w, n);
	}
}

static inline void put_i64_field(struct strbuf *w, int *last, int id, int64_t v)
{
	put_field(w, last, id, I64);
	put_i64(w, v);
}

/* One of every type as fields 20.., and one field id in the long form. */
static inline void put_unknowns(struct strbuf *w, int *last)
{
	put_field(w, last, 20, BOOL_T);
	put_field(w, last, 21, 2);               /* bool false */
	put_field(w, last, 22, BYTE);
	put(w, 0xff);
	put_field(w, last, 23, I16);
	put_i64(w, -3);
	put_field(w, last, 24, I32);
	put_i64(w, 1 << 30);
	put_field(w, last, 25, DOUBLE);
	strbuf_add(w, "\0\0\0\0\0\0\xf0\x3f", 8);
	put_field(w, last, 26, BINARY);
	put_varint(w, 3);
	strbuf_add(w, "abc", 3);
	put_field(w, last, 27, LIST);
	put_list(w, 2, BOOL_T);
	put(w, 1);
	put(w, 0);
	put_field(w, last, 28, SET);
	put_list(w, 16, I32);                   /* the long size form */
	for (int i = 0; i < 16; i++)
		put_i64(w, i);
	put_field(w, last, 29, MAP);
	put_varint(w, 1);
	put(w, BINARY << 4 | STRUCT);
	put_varint(w, 1);
	put(w, 'k');
	put(w, 0x15);                            /* {1: i32 7} */
	put_i64(w, 7);
	put(w, 0);
	put_field(w, last, 30, MAP);             /* empty */
	put_varint(w, 0);
	put_field(w, last, 31, UUID);
	strbuf_add(w, "0123456789abcdef", 16);
	put_field(w, last, 300, STRUCT);        /* long form id */
	put(w, 0);
}

struct spec {                     /* one column chunk written here */
	int64_t data, dict, size;     /* dict < 0: not set */
	unsigned flags;
};
#define NO_META 1u                /* no ColumnMetaData */
#define FILE_PATH 2u              /* in another file */
#define TWICE 4u                  /* meta_data given twice */
#define UNKNOWNS 8u               /* every type of unknown field */

static inline void put_meta(struct strbuf *w, const struct spec *s)
{
	int last = 0;

	put_field(w, &last, 1, I32);             /* type */
	put_i64(w, 2);
	put_field(w, &last, 3, LIST);            /* path_in_schema */
	put_list(w, 1, BINARY);
	put_varint(w, 1);
	put(w, 'x');
	put_i64_field(w, &last, 7, s->size);
	put_i64_field(w, &last, 9, s->data);
	if (s->dict >= 0)
		put_i64_field(w, &last, 11, s->dict);
	if (s->flags & UNKNOWNS)
		put_unknowns(w, &last);
	put(w, 0);
}

static inline void put_chunk(struct strbuf *w, const struct spec *s)
{
	int last = 0;

	if (s->flags & FILE_PATH) {
		put_field(w, &last, 1, BINARY);
		put_varint(w, 1);
		put(w, 'f');
	}
	put_i64_field(w, &last, 2, s->data);
	if (!(s->flags & NO_META)) {
		put_field(w, &last, 3, STRUCT);
		put_meta(w, s);
	}
	if (s->flags & TWICE) {
		put_field(w, &last, 3, STRUCT);
		put_meta(w, s);
	}
	put(w, 0);
}

/* FileMetaData with ngroups row groups, chunks spread over them: group
 * g holds per[g] of the specs, in order. */
static inline void put_footer(struct strbuf *w, const struct spec *s,
		       const size_t *per, size_t ngroups)
{
	int last = 0;

	put_field(w, &last, 1, I32);             /* version */
	put_i64(w, 1);
	put_field(w, &last, 2, LIST);            /* schema: one element */
	put_list(w, 1, STRUCT);
	put(w, 0x48);                            /* {4: name "s"} */
	put_varint(w, 1);
	put(w, 's');
	put(w, 0);
	put_i64_field(w, &last, 3, 0);
	put_field(w, &last, 4, LIST);
	put_list(w, ngroups, STRUCT);
	for (size_t g = 0; g < ngroups; g++) {
		int rl = 0;

		put_field(w, &rl, 1, LIST);
		put_list(w, per[g], STRUCT);
		for (size_t i = 0; i < per[g]; i++)
			put_chunk(w, s++);
		put_i64_field(w, &rl, 2, 1000);
		put_i64_field(w, &rl, 3, 10);
		put(w, 0);
	}
	put_field(w, &last, 6, BINARY);          /* created_by */
	put_varint(w, 4);
	strbuf_add(w, "test", 4);
	put(w, 0);
}

#endif
