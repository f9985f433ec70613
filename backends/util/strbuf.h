/*
 * strbuf.h - a growable byte buffer, always NUL-terminated.
 *
 * struct strbuf sb = STRBUF_INIT;  ... strbuf_release(&sb);
 * Allocation failure aborts (the process cannot do anything useful
 * without memory for a few KiB of text).  Not thread safe.
 */
#ifndef HYLAKE_STRBUF_H
#define HYLAKE_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf;      /* always valid, NUL-terminated */
	size_t len;
	size_t alloc;
};

extern char strbuf_empty[];
#define STRBUF_INIT { strbuf_empty, 0, 0 }

void strbuf_init(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the buffer to the caller (free() it); sb is re-initialised. */
char *strbuf_detach(struct strbuf *sb, size_t *len);

/* Allocation helpers that abort on failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
