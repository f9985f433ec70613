/*
 * backend.c - helpers shared by every store: common fields of backends
 * and open handles, version comparison, stat by listing (the listing
 * rules themselves live in listing.c).
 */
#include "backends/backend.h"
#include "backends/listing.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool etag_copy(char *dst, const char *src, size_t len)
{
	if (len >= 2 && src[0] == '"' && src[len - 1] == '"') {
		src++;
		len -= 2;
	}
	if (len >= HY_ETAG_MAX)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

bool obj_info_same_version(const struct obj_info *a, const struct obj_info *b)
{
	/* Generations when both know one (a listing of an S3 replica does
	 * not carry the stamped generation that its HEAD does). */
	if (a->generation && b->generation)
		return a->generation == b->generation;
	if (!a->etag[0] || !b->etag[0])
		return false;
	return strcmp(a->etag, b->etag) == 0 && a->size == b->size;
}

void backend_init(struct backend *b, const struct backend_ops *ops,
		  const char *name, const char *describe, unsigned caps)
{
	b->ops = ops;
	b->caps = caps;
	b->name = xstrdup(name);
	b->describe = xstrdup(describe);
}

void backend_release(struct backend *b)
{
	free(b->name);
	free(b->describe);
}

void bobj_init(struct bobj *o, struct backend *b, const char *name)
{
	memset(o, 0, sizeof(*o));
	o->b = b;
	o->name = xstrdup(name);
}

void bobj_release(struct bobj *o)
{
	free(o->name);
	free(o->tail);
}

void bobj_take_tail(struct bobj *to, struct bobj *from)
{
	free(to->tail);
	to->tail = from->tail;
	to->tail_len = from->tail_len;
	from->tail = NULL;
	from->tail_len = 0;
}

#define STAT_PAGE 16          /* names fetched per stat listing page */
#define STAT_SCAN_MAX 64      /* names read past; then ask for the folder */

static int note_any(void *arg, const struct list_entry *e)
{
	(void)e;
	*(bool *)arg = true;
	return 0;
}

int backend_prefix_exists(struct backend *b, const char *prefix,
			  const struct deadline *dl)
{
	char *token = NULL;
	bool any = false;
	int rc;

	do {
		char *next = NULL;
		struct list_req req = { .prefix = prefix, .delimiter = "/",
					.token = token, .max_keys = 1 };
		rc = b->ops->list(b, &req, note_any, &any, &next, dl);
		free(token);
		token = next;
	} while (rc == 0 && !any && token);
	free(token);
	return rc < 0 ? rc : any;
}

/*
 * The listing of prefix = name comes in byte order with a folder hiding a
 * file of its name (listing.h): "name" (yielded only when no "name/"
 * exists), siblings such as "name-1" and "name.txt", then "name/".  After
 * STAT_SCAN_MAX siblings, ask for the folder directly instead of reading
 * on (the listing does the same for a held "name").
 */
int backend_stat_by_listing(struct backend *b, const char *name,
			    struct obj_info *out, const struct deadline *dl)
{
	struct listing_conf conf = { .prefix = name, .delimiter = "/",
				     .page_size = STAT_PAGE,
				     .hold_max = STAT_SCAN_MAX };
	const struct list_entry *e;
	size_t n = strlen(name);
	int rc, seen = 0;
	bool file = false;

	memset(out, 0, sizeof(*out));
	if (!*name) {
		out->is_dir = true;
		return 0;
	}
	struct listing *l = listing_create(b, &conf);
	while ((rc = listing_next(l, &e, dl)) == 1) {
		unsigned char c = (unsigned char)e->name[n];
		if (c == '\0' && !e->is_prefix) {
			*out = e->info;   /* a file no folder hides */
			file = true;
			rc = 0;
			break;
		}
		if (c >= '/') {
			rc = c == '/';    /* the folder, or past where it goes */
			break;
		}
		if (++seen >= STAT_SCAN_MAX) {
			struct strbuf dir = STRBUF_INIT;
			strbuf_addf(&dir, "%s/", name);
			rc = backend_prefix_exists(b, dir.buf, dl);
			strbuf_release(&dir);
			break;
		}
	}
	listing_destroy(l);
	if (rc < 0 || file)
		return rc;
	if (rc == 0)
		return -ENOENT;           /* neither, or the listing ended */
	out->is_dir = true;
	return 0;
}

void bwriter_init(struct bwriter *w, struct backend *b, const char *name,
		  const struct write_pre *pre)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->name = xstrdup(name);
	w->pre = *pre;
}

void bwriter_release(struct bwriter *w)
{
	free(w->name);
	w->name = NULL;
}

bool write_pre_valid(const struct write_pre *pre)
{
	switch (pre->kind) {
	case WRITE_PRE_NONE:
	case WRITE_PRE_ABSENT:
		return !pre->metageneration;
	case WRITE_PRE_GENERATION:
		return pre->generation > 0;
	}
	return false;
}

int write_pre_errno(const struct write_pre *pre, int err)
{
	if (err == -ESTALE && pre->kind == WRITE_PRE_ABSENT)
		return -EEXIST;
	return err;
}
