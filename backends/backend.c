/*
 * backend.c - helpers shared by every store: common fields of backends
 * and open handles, version comparison, stat by listing.
 */
#include "backends/backend.h"
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
}

#define STAT_PAGE 16          /* names fetched per stat listing page */
#define STAT_PAGES_MAX 4      /* then ask for the folder directly */

struct stat_scan {
	const char *name;
	size_t nlen;
	bool folder, have_file, past;
	struct obj_info file;
};

static int stat_scan_entry(void *arg, const struct list_entry *e)
{
	struct stat_scan *st = arg;
	size_t n = st->nlen;

	if (strncmp(e->name, st->name, n) != 0)
		return 0;
	if (e->is_prefix && e->name[n] == '/' && e->name[n + 1] == '\0')
		st->folder = true;
	else if (!e->is_prefix && e->name[n] == '\0') {
		st->file = e->info;
		st->have_file = true;
	}
	/* Names come sorted: one after name + "/" settles the question. */
	if ((unsigned char)e->name[n] > '/')
		st->past = true;
	return 0;
}

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

int backend_stat_by_listing(struct backend *b, const char *name,
			    struct obj_info *out, const struct deadline *dl)
{
	struct stat_scan st = { .name = name, .nlen = strlen(name) };
	char *token = NULL;
	int rc, pages = 0;

	memset(out, 0, sizeof(*out));
	if (!*name) {
		out->is_dir = true;
		return 0;
	}
	do {
		char *next = NULL;
		struct list_req req = { .prefix = name, .delimiter = "/",
					.token = token, .max_keys = STAT_PAGE };
		rc = b->ops->list(b, &req, stat_scan_entry, &st, &next, dl);
		free(token);
		token = next;
	} while (rc == 0 && !st.folder && !st.past && token &&
		 ++pages < STAT_PAGES_MAX);
	if (rc == 0 && !st.folder && !st.past && token) {
		/* Many "name-..." siblings sort before "name/": ask directly. */
		struct strbuf dir = STRBUF_INIT;
		strbuf_addf(&dir, "%s/", name);
		rc = backend_prefix_exists(b, dir.buf, dl);
		strbuf_release(&dir);
		st.folder = rc == 1;
	}
	free(token);
	if (rc < 0)
		return rc;
	if (st.folder) {
		out->is_dir = true;
		return 0;
	}
	if (!st.have_file)
		return -ENOENT;
	*out = st.file;
	return 0;
}
