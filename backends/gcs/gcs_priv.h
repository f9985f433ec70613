/*
 * gcs_priv.h - the inside of the GCS store, shared by its two files and
 * no one else: gcs.c (reads, listings, the store itself), gcs_write.c
 * (uploads and removals) and gcs_copy.c (copies).
 */
#ifndef HYLAKE_GCS_PRIV_H
#define HYLAKE_GCS_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

struct curl_slist;
struct gcs_item;
struct gcs_auth;
struct http_engine;
struct http_req;
struct http_resp;
struct strbuf;

struct gcs_backend {
	struct backend base;
	struct http_engine *http;
	struct gcs_auth *auth;
	char *base_url;           /* endpoint, no trailing '/' */
	char *bucket;
	char *prefix;             /* "" or "dir/" */
	char *stamp_key;          /* replicas: metadata key of the stamped
	                             source generation; NULL for the source */
	const char *fields;       /* object fields asked for */
	unsigned page_size;
	int64_t request_timeout_ms;  /* bounds what runs without a caller's
	                                deadline (cancelling an upload) */
};

static inline struct gcs_backend *to_gcs(struct backend *b)
{
	return (struct gcs_backend *)b;
}

/* prefix + name, appended to out. */
void gcs_full_name(struct gcs_backend *g, const char *name,
		   struct strbuf *out);

/* "<base>/storage/v1/b/<bucket>/o" plus "/<prefix+name>" (one encoded
 * segment) when name is not NULL, appended to url. */
void gcs_object_url(struct gcs_backend *g, const char *name,
		    struct strbuf *url);

/* Append "?name=value" or "&name=value", value percent-encoded. */
void gcs_add_param(struct strbuf *url, const char *name, const char *value);

/* "&ifGenerationMatch=G" (0 for absent) for pre, nothing for none, and
 * "&ifMetagenerationMatch=M" when pre names one. */
void gcs_add_pre(struct strbuf *url, const struct write_pre *pre);

/* The live object's metadata (item->name is the caller's to free). */
int gcs_get_meta(struct gcs_backend *g, const char *name,
		 struct gcs_item *item, const struct deadline *dl);

/*
 * Send req (prepare is the store's: the Authorization header, after the
 * borrowed extra headers) through http_do(); a 401 drops the cached
 * token and tries once more.  Returns http_do()'s answer or the auth
 * failure; reason/msg (may be 0-sized) get the error document's first
 * reason and message, or the auth or transport failure.
 */
int gcs_send(struct gcs_backend *g, struct http_req *req,
	     const struct curl_slist *extra, struct http_resp *resp,
	     char *reason, size_t reasonlen, char *msg, size_t msglen);

/* gcs_write.c: the write ops of struct backend_ops. */
int gcs_writer_open(struct backend *b, const char *name,
		    const struct write_pre *pre, struct bwriter **out,
		    const struct deadline *dl);
int gcs_writer_write(struct bwriter *w, const void *buf, size_t len,
		     const struct deadline *dl);
int gcs_writer_commit(struct bwriter *w, struct obj_info *out,
		      const struct deadline *dl);
void gcs_writer_abort(struct bwriter *w);
int gcs_remove(struct backend *b, const char *name,
	       const struct write_pre *pre, const struct deadline *dl);
int gcs_set_meta(struct backend *b, const char *name,
		 const struct write_pre *pre, const struct meta_kv *kv,
		 size_t n, struct obj_info *out, const struct deadline *dl);

/* gcs_copy.c: the copy op (objects.rewrite). */
int gcs_copy(struct backend *b, const char *from, uint64_t from_generation,
	     const char *to, const struct write_pre *pre, struct obj_info *out,
	     const struct deadline *dl);

#endif
