/*
 * backend.c - helpers shared by every store: common fields of backends
 * and open handles, version comparison, and the constructor that maps a
 * configured store type to its implementation.
 */
#include "backends/backend.h"
#include "backends/store.h"
#include "backends/s3.h"
#include "backends/posix.h"
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
	if (a->generation || b->generation)
		return a->generation == b->generation;
	if (!a->etag[0] || !b->etag[0])
		return false;
	return strcmp(a->etag, b->etag) == 0 && a->size == b->size;
}

void backend_init(struct backend *b, const struct backend_ops *ops,
		  const char *name, const char *describe)
{
	b->ops = ops;
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

const char *store_type_name(enum store_type t)
{
	switch (t) {
	case STORE_S3: return "s3";
	case STORE_POSIX: return "posix";
	case STORE_GCS: return "gcs";
	default: return "none";
	}
}

void store_conf_release(struct store_conf *c)
{
	free(c->name);
	free(c->endpoint);
	free(c->bucket);
	free(c->prefix);
	free(c->region);
	free(c->credentials);
	free(c->profile);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

int store_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen)
{
	switch (c->type) {
	case STORE_S3:
		return s3_create(c, out, err, errlen);
	case STORE_POSIX:
		return posix_create(c, out, err, errlen);
	default:
		snprintf(err, errlen, "store type '%s' is not supported yet",
			 store_type_name(c->type));
		return -ENOTSUP;
	}
}
