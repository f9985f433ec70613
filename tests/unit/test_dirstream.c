/*
 * Streaming folder listings over an in-memory store that pages and
 * sorts exactly as S3 does (objects and common prefixes as two sorted
 * runs per page, a page covering the first max_keys names in order).
 */
#include "fs/dirstream.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>

struct mem_store {
	struct backend base;
	const char **keys;          /* sorted */
	size_t nkeys;
	int lists;                  /* list calls made */
	bool sorted;
};

static int mem_list(struct backend *b, const struct list_req *req, list_cb cb,
		    void *arg, char **next, const struct deadline *dl)
{
	struct mem_store *m = (struct mem_store *)b;
	size_t plen = strlen(req->prefix), start = 0, n = 0;
	char *last = NULL;
	(void)dl;

	m->lists++;
	if (req->token)
		start = strtoul(req->token, NULL, 10);
	*next = NULL;
	/* Walk keys in order, rolling up common prefixes. */
	struct list_entry *out = xcalloc(req->max_keys, sizeof(*out));
	char **names = xcalloc(req->max_keys, sizeof(*names));
	size_t nout = 0, i;
	for (i = start; i < m->nkeys && n < req->max_keys; i++) {
		const char *k = m->keys[i];
		if (strncmp(k, req->prefix, plen) != 0)
			continue;
		const char *slash = strchr(k + plen, '/');
		char *name;
		bool pfx = slash != NULL;
		if (pfx)
			name = xstrndup(k, (size_t)(slash - k) + 1);
		else
			name = xstrdup(k);
		if (last && strcmp(last, name) == 0) {
			free(name);
			continue;
		}
		free(last);
		last = xstrdup(name);
		names[nout] = name;
		out[nout] = (struct list_entry){ .name = name, .is_prefix = pfx };
		out[nout].info.size = strlen(k);
		nout++;
		n++;
	}
	free(last);
	/* deliver objects first, then prefixes, as S3 XML does */
	for (int pass = 0; pass < 2; pass++)
		for (size_t j = 0; j < nout; j++)
			if (out[j].is_prefix == (pass == 1))
				cb(arg, &out[j]);
	for (size_t j = 0; j < nout; j++)
		free(names[j]);
	free(names);
	free(out);
	if (i < m->nkeys) {
		char tok[32];
		snprintf(tok, sizeof(tok), "%zu", i);
		*next = xstrdup(tok);
	}
	return 0;
}

static const struct backend_ops mem_ops = {
	.type = "mem", .list = mem_list,
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the whole folder; returns the names sorted and joined with ','
 * ("/" after folders).  Directory order is not promised, the set is. */
static char *read_all(struct mem_store *m, const char *dir, unsigned page,
		      uint64_t *hidden)
{
	struct dirstream *ds = dirstream_create(&m->base, dir, page);
	struct deadline dl = deadline_in_ms(1000);
	struct strbuf sb = STRBUF_INIT;
	const struct dir_item *it;
	char *names[64];
	size_t n = 0;
	int rc;

	while ((rc = dirstream_peek(ds, &it, &dl)) == 1 && n < 64) {
		struct strbuf e = STRBUF_INIT;
		strbuf_addf(&e, "%s%s", it->name, it->info.is_dir ? "/" : "");
		names[n++] = strbuf_detach(&e, NULL);
		dirstream_next(ds);
	}
	CHECK_INT(rc, 0);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		strbuf_addf(&sb, "%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	if (hidden)
		*hidden = dirstream_hidden(ds);
	dirstream_destroy(ds);
	return strbuf_detach(&sb, NULL);
}

static void store(struct mem_store *m, const char **keys, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->base.ops = &mem_ops;
	m->base.caps = BACKEND_LIST_SORTED;
	m->keys = keys;
	m->nkeys = n;
}

static void basics(void)
{
	const char *keys[] = { "d/", "d/a", "d/b/x", "d/b/y", "d/c", "e" };
	struct mem_store m;
	uint64_t hidden;
	store(&m, keys, 6);
	char *s = read_all(&m, "d", 1000, &hidden);
	CHECK_STR(s, "a,b/,c");            /* marker "d/" skipped */
	CHECK_INT(hidden, 0);
	free(s);
	s = read_all(&m, "", 1000, NULL);
	CHECK_STR(s, "d/,e");
	free(s);
}

static void collisions_across_pages(void)
{
	/* "x" is an object and a folder; "x-1" and "x.txt" sort between
	 * "x" and "x/"; tiny pages force the decision across pages. */
	const char *keys[] = { "x", "x-1", "x.txt", "x/child", "y", "y/z" };
	struct mem_store m;
	uint64_t hidden;
	store(&m, keys, 6);
	for (unsigned page = 1; page <= 7; page++) {
		m.lists = 0;
		char *s = read_all(&m, "", page, &hidden);
		CHECK_STR(s, "x-1,x.txt,x/,y/");   /* sorted by the test */
		CHECK_INT(hidden, 2);              /* objects x and y */
		free(s);
	}
}

static void unsafe_names(void)
{
	const char *keys[] = { "a//b", "./x", "ok", "y/../z", "..", "c/./d" };
	struct mem_store m;
	uint64_t hidden;
	store(&m, keys, 6);
	char *s = read_all(&m, "", 2, &hidden);
	/* "a/" "y/" "c/" are fine folders; "." and ".." are not names. */
	CHECK_STR(s, "a/,c/,ok,y/");
	CHECK_INT(hidden, 2);
	free(s);
	s = read_all(&m, "a", 100, &hidden);
	CHECK_STR(s, "");                  /* "a//b": empty segment hidden */
	CHECK_INT(hidden, 1);
	free(s);
}

static void streaming_and_seek(void)
{
	enum { N = 2500 };
	const char **keys = xcalloc(N, sizeof(*keys));
	for (int i = 0; i < N; i++) {
		char k[32];
		snprintf(k, sizeof(k), "f/%05d", i);
		keys[i] = xstrdup(k);
	}
	struct mem_store m;
	store(&m, keys, N);
	struct dirstream *ds = dirstream_create(&m.base, "f", 1000);
	struct deadline dl = deadline_in_ms(1000);
	const struct dir_item *it;

	/* First 100 entries: one page. */
	for (int i = 0; i < 100; i++) {
		CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
		dirstream_next(ds);
	}
	CHECK_INT(m.lists, 1);
	/* The reader takes back 10 entries: replayed without a request. */
	CHECK_INT(dirstream_seek(ds, 90, &dl), 0);
	CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
	CHECK_STR(it->name, "00090");
	CHECK_INT(m.lists, 1);
	/* Read on to the end. */
	int count = 90;
	while (dirstream_peek(ds, &it, &dl) == 1) {
		count++;
		dirstream_next(ds);
		dirstream_seek(ds, dirstream_pos(ds), &dl);
	}
	CHECK_INT(count, N);
	CHECK_INT(m.lists, 3);
	/* Seeking before what was kept restarts the listing. */
	CHECK_INT(dirstream_seek(ds, 5, &dl), 0);
	CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
	CHECK_STR(it->name, "00005");
	CHECK_INT(m.lists, 4);
	dirstream_destroy(ds);
	for (int i = 0; i < N; i++)
		free((char *)keys[i]);
	free(keys);
}

int main(void)
{
	basics();
	collisions_across_pages();
	unsafe_names();
	streaming_and_seek();
	return check_summary();
}
