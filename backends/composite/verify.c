/*
 * verify.c - proving a replica copy's bytes: block manifests, whole-copy
 * verification and checked reads (verify.h).
 */
#include "backends/composite/verify.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WHOLE_PIECE ((size_t)8 << 20)    /* reads of a whole verification */
#define MANIFEST_MAX ((uint64_t)64 << 20) /* a sidecar larger is not one */

/* ------------------------------------------------------- proving */

int verify_load_manifest(struct backend *rep, const char *name,
			 const struct obj_info *v, struct blocksums **out,
			 const struct deadline *dl)
{
	struct strbuf side = STRBUF_INIT;
	struct bobj *h;
	int rc;

	*out = NULL;
	blocksums_sidecar(name, &side);
	rc = backend_open(rep, side.buf, &h, dl);
	strbuf_release(&side);
	if (rc < 0)
		return rc;
	uint64_t size = h->info.size;
	if (size > MANIFEST_MAX || size < 40) {
		rc = -ENOENT;
		goto out_close;
	}
	void *buf = xmalloc((size_t)size);
	ssize_t n = bobj_read(h, buf, (size_t)size, 0, dl);
	if (n < 0)
		rc = (int)n;
	else if ((uint64_t)n != size ||
		 blocksums_decode(buf, (size_t)n, out) < 0)
		rc = -ENOENT;
	else if (!blocksums_prove(*out, v))
		rc = -ENOENT;
	free(buf);
	if (rc == -ENOENT && *out) {
		log_info("replica %s: the block manifest of '%s' is not of "
			 "generation %llu; not used", rep->name, name,
			 (unsigned long long)v->generation);
		free(*out);
		*out = NULL;
	}
out_close:
	bobj_close(h);
	return rc;
}

int verify_buffer(const void *buf, size_t n, const struct obj_info *v,
		  struct blocksums **out)
{
	struct blocksums_builder b;

	blocksums_builder_init(&b, v->generation, v->size);
	blocksums_builder_feed(&b, buf, n);
	*out = blocksums_builder_finish(&b);
	if (*out && blocksums_prove(*out, v))
		return 0;
	free(*out);
	*out = NULL;
	return -EBADMSG;
}

struct whole_read {
	struct bobj *h;
	const struct deadline *dl;
};

static ssize_t whole_piece(void *arg, void *buf, size_t len, uint64_t off)
{
	struct whole_read *w = arg;
	return bobj_read(w->h, buf, len, off, w->dl);
}

int verify_whole(struct bobj *h, const struct obj_info *v,
		 struct blocksums **out, const struct deadline *dl)
{
	struct whole_read w = { .h = h, .dl = dl };
	return blocksums_read(v, WHOLE_PIECE, whole_piece, &w, out);
}

ssize_t verify_read(struct bobj *h, const struct blocksums *s, void *buf,
		    size_t len, uint64_t off, const struct deadline *dl,
		    uint64_t *bad)
{
	if (off >= s->size || !len)
		return 0;
	uint64_t end = off + len < s->size ? off + len : s->size;
	uint64_t a = off - off % BLOCKSUMS_BLOCK;
	uint64_t b = end % BLOCKSUMS_BLOCK ? end - end % BLOCKSUMS_BLOCK +
					     BLOCKSUMS_BLOCK : end;
	if (b > s->size)
		b = s->size;
	bool direct = a == off && b == end;   /* whole blocks: no copy */
	size_t want = (size_t)(b - a);
	unsigned char *p = direct ? buf : xmalloc(want);
	ssize_t n = bobj_read(h, p, want, a, dl);
	int rc = 0;

	if (n >= 0 && (size_t)n != want)
		rc = -EIO;            /* the pinned copy is shorter than v */
	else if (n < 0)
		rc = (int)n;
	else
		rc = blocksums_check(s, a, p, want, bad);
	if (rc == 0 && !direct)
		memcpy(buf, p + (off - a), (size_t)(end - off));
	if (!direct)
		free(p);
	return rc < 0 ? rc : (ssize_t)(end - off);
}
