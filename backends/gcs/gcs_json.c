/*
 * gcs_json.c - GCS and OAuth JSON documents.
 */
#include "backends/gcs/gcs_json.h"
#include "backends/util/base64.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text, size_t len)
{
	json_error_t jerr;
	return json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
}

/* A 64-bit unsigned number sent as a JSON string (or, leniently, as a
 * JSON integer).  -EBADMSG if absent or malformed. */
static int get_u64(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) ||
	    !parse_u64_digits(json_string_value(v), json_string_length(v), out))
		return -EBADMSG;
	return 0;
}

/* A replica's stamp: a decimal generation in metadata[key]. */
static uint64_t stamped_generation(json_t *o, const char *key)
{
	json_t *md = json_object_get(o, "metadata");
	json_t *v = json_object_get(md, key);
	uint64_t g;
	if (!json_is_string(v) ||
	    !parse_u64_digits(json_string_value(v), json_string_length(v), &g))
		return 0;
	return g;
}

static int object_from_json(json_t *o, const char *stamp_key,
			    struct gcs_item *item)
{
	struct obj_info *info = &item->info;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *created = json_string_value(json_object_get(o, "timeCreated"));
	const char *crc = json_string_value(json_object_get(o, "crc32c"));
	const char *md5 = json_string_value(json_object_get(o, "md5Hash"));
	const char *enc = json_string_value(json_object_get(o, "contentEncoding"));

	memset(item, 0, sizeof(*item));
	if (!json_is_object(o) || !name || !*name)
		return -EBADMSG;
	if (get_u64(o, "generation", &info->generation) < 0 ||
	    info->generation == 0 || get_u64(o, "size", &info->size) < 0)
		return -EBADMSG;
	if (json_object_get(o, "metageneration") &&
	    get_u64(o, "metageneration", &info->metageneration) < 0)
		return -EBADMSG;
	if (created && iso8601_parse_ns(created, &info->mtime_ns) < 0)
		return -EBADMSG;
	if (crc) {
		if (base64_crc32c(crc, &info->crc32c) < 0)
			return -EBADMSG;
		info->has_crc32c = true;
	}
	if (md5) {
		if (base64_md5(md5, info->md5) < 0)
			return -EBADMSG;
		info->has_md5 = true;
	}
	/* The version token of GCS is the generation; keep it as text too. */
	snprintf(info->etag, sizeof(info->etag), "%" PRIu64, info->generation);
	if (stamp_key) {
		info->generation = stamped_generation(o, stamp_key);
		info->metageneration = 0;
	}
	item->gzip = enc && strcmp(enc, "gzip") == 0;
	item->name = xstrdup(name);
	return 0;
}

int gcs_json_parse_object(const char *text, size_t len, const char *stamp_key,
			  struct gcs_item *item)
{
	json_t *o = load(text, len);
	int rc = o ? object_from_json(o, stamp_key, item) : -EBADMSG;
	json_decref(o);
	return rc;
}

int gcs_json_parse_rewrite(const char *text, size_t len, bool *done,
			   char **token, struct gcs_item *item)
{
	json_t *doc = load(text, len);
	int rc = -EBADMSG;

	*token = NULL;
	*done = false;
	memset(item, 0, sizeof(*item));
	json_t *d = json_object_get(doc, "done");
	if (!json_is_object(doc) || !json_is_boolean(d))
		goto out_decref;
	*done = json_is_true(d);
	if (*done) {
		rc = object_from_json(json_object_get(doc, "resource"), NULL,
				      item);
	} else {
		const char *t = json_string_value(
			json_object_get(doc, "rewriteToken"));
		if (t && *t) {
			*token = xstrdup(t);
			rc = 0;
		}
	}
out_decref:
	json_decref(doc);
	return rc;
}

int gcs_json_parse_listing(const char *text, size_t len, const char *stamp_key,
			   struct gcs_listing *out)
{
	json_t *doc = load(text, len);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(doc)) {
		json_decref(doc);
		return -EBADMSG;
	}
	json_t *items = json_object_get(doc, "items");
	json_t *prefixes = json_object_get(doc, "prefixes");
	json_t *token = json_object_get(doc, "nextPageToken");
	if ((items && !json_is_array(items)) ||
	    (prefixes && !json_is_array(prefixes)) ||
	    (token && !json_is_string(token))) {
		rc = -EBADMSG;
		goto out_decref;
	}
	if (items) {
		out->items = xcalloc(json_array_size(items) + 1,
				     sizeof(*out->items));
		for (size_t i = 0; i < json_array_size(items) && rc == 0; i++) {
			rc = object_from_json(json_array_get(items, i),
					      stamp_key, &out->items[i]);
			if (rc == 0)
				out->nitems++;
		}
	}
	if (prefixes && rc == 0) {
		out->prefixes = xcalloc(json_array_size(prefixes) + 1,
					sizeof(*out->prefixes));
		for (size_t i = 0; i < json_array_size(prefixes); i++) {
			const char *p = json_string_value(json_array_get(prefixes, i));
			if (!p || !*p) {
				rc = -EBADMSG;
				break;
			}
			out->prefixes[out->nprefixes++] = xstrdup(p);
		}
	}
	if (token && rc == 0 && *json_string_value(token))
		out->next_token = xstrdup(json_string_value(token));
out_decref:
	json_decref(doc);
	if (rc < 0)
		gcs_listing_release(out);
	return rc;
}

void gcs_listing_release(struct gcs_listing *l)
{
	for (size_t i = 0; i < l->nitems; i++)
		free(l->items[i].name);
	free(l->items);
	for (size_t i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->prefixes);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

int gcs_json_parse_error(const char *text, size_t len, char *reason,
			 size_t reasonlen, char *msg, size_t msglen)
{
	json_t *doc = load(text, len);
	json_t *err = json_object_get(doc, "error");
	int rc = -ENOENT;

	if (reasonlen)
		reason[0] = '\0';
	if (msglen)
		msg[0] = '\0';
	if (json_is_object(err)) {
		const char *m = json_string_value(json_object_get(err, "message"));
		json_t *first = json_array_get(json_object_get(err, "errors"), 0);
		const char *r = json_string_value(json_object_get(first, "reason"));
		snprintf(msg, msglen, "%s", m ? m : "");
		snprintf(reason, reasonlen, "%s", r ? r : "");
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

int gcs_json_parse_token(const char *text, size_t len, char **token,
			 int64_t *expires_in, char *msg, size_t msglen)
{
	json_t *doc = load(text, len);
	int rc = -EBADMSG;

	*token = NULL;
	if (msglen)
		msg[0] = '\0';
	if (!json_is_object(doc))
		goto out_decref;
	const char *tok = json_string_value(json_object_get(doc, "access_token"));
	json_t *exp = json_object_get(doc, "expires_in");
	const char *oerr = json_string_value(json_object_get(doc, "error"));
	if (oerr) {
		const char *d = json_string_value(
			json_object_get(doc, "error_description"));
		snprintf(msg, msglen, "%s%s%s", oerr, d ? ": " : "", d ? d : "");
		rc = -EACCES;
	} else if (tok && *tok && json_is_integer(exp) &&
		   json_integer_value(exp) > 0) {
		json_int_t life = json_integer_value(exp);
		*token = xstrdup(tok);
		*expires_in = life > GCS_TOKEN_LIFE_MAX_S ? GCS_TOKEN_LIFE_MAX_S
							   : life;
		rc = 0;
	}
out_decref:
	json_decref(doc);
	return rc;
}

/* ------------------------------------------------ change notifications */

static const struct {
	const char *name;
	enum gcs_change_kind kind;
} change_kinds[] = {
	{ "OBJECT_FINALIZE", GCS_CHANGE_FINALIZE },
	{ "OBJECT_METADATA_UPDATE", GCS_CHANGE_METADATA },
	{ "OBJECT_DELETE", GCS_CHANGE_DELETE },
	{ "OBJECT_ARCHIVE", GCS_CHANGE_ARCHIVE },
};

static const char *attr(json_t *attrs, const char *key)
{
	return json_string_value(json_object_get(attrs, key));
}

/* A generation attribute: absent (0), or a positive decimal. */
static int attr_gen(json_t *attrs, const char *key, bool needed,
		    uint64_t *out)
{
	const char *v = attr(attrs, key);
	*out = 0;
	if (!v)
		return needed ? -EBADMSG : 0;
	if (!parse_u64_str(v, out) || *out == 0)
		return -EBADMSG;
	return 0;
}

/* The JSON_API_V1 payload: the object resource the attributes name. */
static int change_payload(json_t *msg, struct gcs_change *c)
{
	const char *data = json_string_value(json_object_get(msg, "data"));
	struct strbuf raw = STRBUF_INIT;
	struct gcs_item item;
	int rc;

	if (!data || base64_decode(&raw, data, strlen(data)) < 0) {
		strbuf_release(&raw);
		return -EBADMSG;
	}
	rc = gcs_json_parse_object(raw.buf ? raw.buf : "", raw.len, NULL, &item);
	strbuf_release(&raw);
	if (rc < 0)
		return rc;
	if (strcmp(item.name, c->name) ||
	    item.info.generation != c->generation)
		rc = -EBADMSG;
	else
		c->info = item.info;
	c->has_info = rc == 0;
	free(item.name);
	return rc;
}

/* The notification in msg's attributes (and payload) into c; -EBADMSG
 * when it is not a well-formed one. */
static int change_from_json(json_t *msg, struct gcs_change *c)
{
	json_t *attrs = json_object_get(msg, "attributes");
	const char *type = attr(attrs, "eventType");
	const char *bucket = attr(attrs, "bucketId");
	const char *name = attr(attrs, "objectId");
	const char *when = attr(attrs, "eventTime");
	const char *format = attr(attrs, "payloadFormat");

	if (!json_is_object(attrs) || !type || !bucket || !*bucket || !name ||
	    !*name)
		return -EBADMSG;
	for (size_t i = 0; i < sizeof(change_kinds) / sizeof(change_kinds[0]);
	     i++)
		if (!strcmp(type, change_kinds[i].name))
			c->kind = change_kinds[i].kind;
	if (c->kind == GCS_CHANGE_INVALID ||
	    attr_gen(attrs, "objectGeneration", true, &c->generation) < 0 ||
	    attr_gen(attrs, "overwroteGeneration", false, &c->overwrote) < 0 ||
	    attr_gen(attrs, "overwrittenByGeneration", false,
		     &c->overwritten_by) < 0 ||
	    (when && iso8601_parse_ns(when, &c->event_ns) < 0))
		return -EBADMSG;
	c->bucket = xstrdup(bucket);
	c->name = xstrdup(name);
	if (format && !strcmp(format, "JSON_API_V1") &&
	    c->kind != GCS_CHANGE_DELETE)
		return change_payload(msg, c);
	return 0;
}

/* A change that says nothing but that something changed. */
static void change_invalidate(struct gcs_change *c)
{
	free(c->bucket);
	free(c->name);
	c->bucket = c->name = NULL;
	c->kind = GCS_CHANGE_INVALID;
	c->generation = c->overwrote = c->overwritten_by = 0;
	c->event_ns = 0;
	c->has_info = false;
	memset(&c->info, 0, sizeof(c->info));
}

static int received_from_json(json_t *rm, struct gcs_change *c)
{
	json_t *msg = json_object_get(rm, "message");
	const char *ack = json_string_value(json_object_get(rm, "ackId"));
	const char *id = json_string_value(json_object_get(msg, "messageId"));
	const char *pub = json_string_value(json_object_get(msg, "publishTime"));

	memset(c, 0, sizeof(*c));
	if (!json_is_object(msg) || !ack || !*ack || !id || !*id || !pub ||
	    iso8601_parse_ns(pub, &c->publish_ns) < 0)
		return -EBADMSG;
	c->ack_id = xstrdup(ack);
	c->message_id = xstrdup(id);
	if (change_from_json(msg, c) < 0)
		change_invalidate(c);
	return 0;
}

int gcs_json_parse_pull(const char *text, size_t len, struct gcs_changes *out)
{
	json_t *doc = load(text, len);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	json_t *msgs = json_object_get(doc, "receivedMessages");
	if (!json_is_object(doc) || (msgs && !json_is_array(msgs))) {
		json_decref(doc);
		return -EBADMSG;
	}
	size_t n = json_array_size(msgs);
	out->c = xcalloc(n + 1, sizeof(*out->c));
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = received_from_json(json_array_get(msgs, i), &out->c[i]);
		if (rc == 0)
			out->n++;
	}
	json_decref(doc);
	if (rc < 0)
		gcs_changes_release(out);
	return rc;
}

void gcs_changes_release(struct gcs_changes *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->c[i].ack_id);
		free(c->c[i].message_id);
		free(c->c[i].bucket);
		free(c->c[i].name);
	}
	free(c->c);
	memset(c, 0, sizeof(*c));
}
