/*
 * Streaming folder listings over the memory store (backends/mem/mem.h),
 * which pages and sorts as GCS does (a page covers the first max_keys
 * names in byte order), in a fault wrapper that counts listing requests.
 * Pages whose objects and prefixes come as two runs are the listing
 * iterator's business, tested in test_listing.c.
 */
#include "fs/dirstream.h"
#include "backends/composite/fault.h"
#include "backends/mem/mem.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A memory store holding keys (each object's bytes are its name), in a
 * fault wrapper that counts the listing requests it gets. */
static struct backend *store_new(const char *const *keys, size_t n)
{
	struct backend *m = mem_create("mem");
	for (size_t i = 0; i < n; i++)
		CHECK(mem_put(m, keys[i], keys[i], strlen(keys[i]), NULL) > 0);
	return fault_create(m, 1);
}

static unsigned lists(struct backend *b)
{
	return fault_calls(b, FAULT_LIST);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the whole folder; returns the names sorted and joined with ','
 * ("/" after folders).  Directory order is not promised, the set is. */
static char *read_all(struct backend *b, const char *dir, unsigned page,
		      uint64_t *hidden)
{
	struct dirstream *ds = dirstream_create(b, dir, page);
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

static void basics(void)
{
	const char *keys[] = { "d/", "d/a", "d/b/x", "d/b/y", "d/c", "e" };
	struct backend *b = store_new(keys, 6);
	uint64_t hidden;
	char *s = read_all(b, "d", 1000, &hidden);
	CHECK_STR(s, "a,b/,c");            /* marker "d/" skipped */
	CHECK_INT(hidden, 0);
	free(s);
	s = read_all(b, "", 1000, NULL);
	CHECK_STR(s, "d/,e");
	free(s);
	backend_destroy(b);
}

static void collisions_across_pages(void)
{
	/* "x" is an object and a folder; "x-1" and "x.txt" sort between
	 * "x" and "x/"; tiny pages force the decision across pages. */
	const char *keys[] = { "x", "x-1", "x.txt", "x/child", "y", "y/z" };
	struct backend *b = store_new(keys, 6);
	uint64_t hidden;
	for (unsigned page = 1; page <= 7; page++) {
		char *s = read_all(b, "", page, &hidden);
		CHECK_STR(s, "x-1,x.txt,x/,y/");   /* sorted by the test */
		CHECK_INT(hidden, 2);              /* objects x and y */
		free(s);
	}
	backend_destroy(b);
}

static void unsafe_names(void)
{
	const char *keys[] = { "a//b", "./x", "ok", "y/../z", "..", "c/./d" };
	struct backend *b = store_new(keys, 6);
	uint64_t hidden;
	char *s = read_all(b, "", 2, &hidden);
	/* "a/" "y/" "c/" are fine folders; "." and ".." are not names. */
	CHECK_STR(s, "a/,c/,ok,y/");
	CHECK_INT(hidden, 2);
	free(s);
	s = read_all(b, "a", 100, &hidden);
	CHECK_STR(s, "");                  /* "a//b": empty segment hidden */
	CHECK_INT(hidden, 1);
	free(s);
	backend_destroy(b);
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
	struct backend *b = store_new(keys, N);
	struct dirstream *ds = dirstream_create(b, "f", 1000);
	struct deadline dl = deadline_in_ms(1000);
	const struct dir_item *it;

	/* First 100 entries: one page. */
	for (int i = 0; i < 100; i++) {
		CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
		dirstream_next(ds);
	}
	CHECK_INT(lists(b), 1);
	/* The reader takes back 10 entries: replayed without a request. */
	CHECK_INT(dirstream_seek(ds, 90, &dl), 0);
	CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
	CHECK_STR(it->name, "00090");
	CHECK_INT(lists(b), 1);
	/* Read on to the end. */
	int count = 90;
	while (dirstream_peek(ds, &it, &dl) == 1) {
		count++;
		dirstream_next(ds);
		dirstream_seek(ds, dirstream_pos(ds), &dl);
	}
	CHECK_INT(count, N);
	CHECK_INT(lists(b), 3);
	/* Seeking before what was kept restarts the listing. */
	CHECK_INT(dirstream_seek(ds, 5, &dl), 0);
	CHECK_INT(dirstream_peek(ds, &it, &dl), 1);
	CHECK_STR(it->name, "00005");
	CHECK_INT(lists(b), 4);
	dirstream_destroy(ds);
	backend_destroy(b);
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
