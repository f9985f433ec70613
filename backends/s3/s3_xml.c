/*
 * s3_xml.c - expat-based parsing of ListObjectsV2 and error documents.
 *
 * The parser keeps the path of open elements (bounded depth) and the text
 * of the current leaf (bounded length), and acts on end tags.
 */
#include "backends/s3/s3_xml.h"
#include "backends/backend.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"
#include "backends/util/uri.h"

#include <errno.h>
#include <expat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 8
#define MAX_TEXT 8192           /* a 1,024-byte key URL-encoded is 3 KiB */

struct xml_state {
	XML_Parser p;
	const char *path[MAX_DEPTH];    /* element names; static strings */
	int depth;                      /* may exceed MAX_DEPTH: then ignored */
	struct strbuf text;
	bool failed;
	/* listing */
	struct s3_xml_listing *l;
	struct s3_xml_entry cur;
	/* error */
	char *code, *msg;
	size_t codelen, msglen;
	bool have_code;
};

/* Element names we care about, interned so path[] can hold pointers. */
static const char *const known[] = {
	"ListBucketResult", "Contents", "CommonPrefixes", "Key", "Prefix",
	"Size", "LastModified", "ETag", "IsTruncated", "NextContinuationToken",
	"EncodingType", "Error", "Code", "Message",
};

static const char *intern(const char *name)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i]) == 0)
			return known[i];
	return "";
}

static bool at(const struct xml_state *s, const char *a, const char *b,
	       const char *c)
{
	const char *want[3] = { a, b, c };
	int n = c ? 3 : b ? 2 : 1;
	if (s->depth != n)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(s->path[i], want[i]) != 0)
			return false;
	return true;
}

static void on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_state *s = arg;
	(void)attrs;
	if (s->depth < MAX_DEPTH)
		s->path[s->depth] = intern(name);
	s->depth++;
	strbuf_reset(&s->text);
	if (s->l && (at(s, "ListBucketResult", "Contents", NULL) ||
		     at(s, "ListBucketResult", "CommonPrefixes", NULL))) {
		memset(&s->cur, 0, sizeof(s->cur));
		s->cur.is_prefix = strcmp(name, "CommonPrefixes") == 0;
	}
}

static void on_text(void *arg, const XML_Char *txt, int len)
{
	struct xml_state *s = arg;
	if (s->text.len + (size_t)len > MAX_TEXT) {
		s->failed = true;
		XML_StopParser(s->p, XML_FALSE);
		return;
	}
	strbuf_add(&s->text, txt, (size_t)len);
}

static void push_entry(struct xml_state *s)
{
	struct s3_xml_listing *l = s->l;
	if (!s->cur.key) {       /* an entry without a key is malformed */
		s->failed = true;
		return;
	}
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->entries = xrealloc(l->entries, l->alloc * sizeof(*l->entries));
	}
	l->entries[l->n++] = s->cur;
	memset(&s->cur, 0, sizeof(s->cur));
}

static void end_listing(struct xml_state *s)
{
	const char *t = s->text.buf;
	struct s3_xml_entry *e = &s->cur;

	if (at(s, "ListBucketResult", "Contents", "Key") ||
	    at(s, "ListBucketResult", "CommonPrefixes", "Prefix")) {
		free(e->key);
		e->key = xstrdup(t);
	} else if (at(s, "ListBucketResult", "Contents", "Size")) {
		if (!parse_u64_digits(t, s->text.len, &e->size))
			s->failed = true;
	} else if (at(s, "ListBucketResult", "Contents", "LastModified")) {
		if (iso8601_parse_ns(t, &e->mtime_ns) < 0)
			s->failed = true;
	} else if (at(s, "ListBucketResult", "Contents", "ETag")) {
		if (!etag_copy(e->etag, t, strlen(t)))
			s->failed = true;
	} else if (at(s, "ListBucketResult", "Contents", NULL) ||
		   at(s, "ListBucketResult", "CommonPrefixes", NULL)) {
		push_entry(s);
	} else if (at(s, "ListBucketResult", "IsTruncated", NULL)) {
		s->l->truncated = strcmp(t, "true") == 0;
	} else if (at(s, "ListBucketResult", "NextContinuationToken", NULL)) {
		free(s->l->next_token);
		s->l->next_token = xstrdup(t);
	} else if (at(s, "ListBucketResult", "EncodingType", NULL)) {
		s->l->url_encoded = strcmp(t, "url") == 0;
	}
}

static void end_error(struct xml_state *s)
{
	if (at(s, "Error", "Code", NULL)) {
		snprintf(s->code, s->codelen, "%s", s->text.buf);
		s->have_code = true;
	} else if (at(s, "Error", "Message", NULL)) {
		snprintf(s->msg, s->msglen, "%s", s->text.buf);
	}
}

static void on_end(void *arg, const XML_Char *name)
{
	struct xml_state *s = arg;
	(void)name;
	if (s->depth <= MAX_DEPTH) {
		if (s->l)
			end_listing(s);
		else
			end_error(s);
	}
	s->depth--;
	strbuf_reset(&s->text);
	if (s->failed)
		XML_StopParser(s->p, XML_FALSE);
}

static int run(struct xml_state *s, const char *xml, size_t len)
{
	int rc = 0;
	s->p = XML_ParserCreate("UTF-8");
	if (!s->p)
		return -ENOMEM;
	XML_SetUserData(s->p, s);
	XML_SetElementHandler(s->p, on_start, on_end);
	XML_SetCharacterDataHandler(s->p, on_text);
	if (len > INT32_MAX ||
	    XML_Parse(s->p, xml, (int)len, XML_TRUE) != XML_STATUS_OK ||
	    s->failed)
		rc = -EBADMSG;
	XML_ParserFree(s->p);
	strbuf_release(&s->text);
	return rc;
}

/*
 * Decode the keys of a URL-encoded page in place, once the whole page
 * is read (EncodingType may come after the entries).  A key whose
 * decoded bytes hold a NUL cannot be a C string, let alone a path: cut
 * at the NUL it would show as another name with this object's size, so
 * it is dropped and counted in l->hidden.  A broken escape is a broken
 * document.
 */
static int decode_keys(struct s3_xml_listing *l)
{
	struct strbuf dec = STRBUF_INIT;
	size_t kept = 0;
	int rc = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct s3_xml_entry *e = &l->entries[i];
		strbuf_reset(&dec);
		if (rc == 0 && uri_decode(&dec, e->key, strlen(e->key)) < 0)
			rc = -EBADMSG;
		free(e->key);
		if (rc < 0 || memchr(dec.buf, '\0', dec.len)) {
			l->hidden += rc == 0;
			continue;
		}
		e->key = xstrndup(dec.buf, dec.len);
		l->entries[kept++] = *e;
	}
	l->n = kept;
	strbuf_release(&dec);
	return rc;
}

int s3_xml_parse_listing(const char *xml, size_t len,
			 struct s3_xml_listing *out)
{
	struct xml_state s = { .l = out };
	memset(out, 0, sizeof(*out));
	strbuf_init(&s.text);
	int rc = run(&s, xml, len);
	free(s.cur.key);
	if (rc == 0 && out->truncated && !out->next_token)
		rc = -EBADMSG;    /* truncated without a way to go on */
	if (rc == 0 && out->url_encoded)
		rc = decode_keys(out);
	if (rc < 0)
		s3_xml_listing_release(out);
	return rc;
}

void s3_xml_listing_release(struct s3_xml_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].key);
	free(l->entries);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

int s3_xml_parse_error(const char *xml, size_t len, char *code,
		       size_t codelen, char *msg, size_t msglen)
{
	struct xml_state s = { .code = code, .codelen = codelen,
			       .msg = msg, .msglen = msglen };
	if (codelen)
		code[0] = '\0';
	if (msglen)
		msg[0] = '\0';
	strbuf_init(&s.text);
	if (len == 0)
		return -ENOENT;
	int rc = run(&s, xml, len);
	if (rc < 0)
		return rc;
	return s.have_code ? 0 : -ENOENT;
}
