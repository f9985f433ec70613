/*
 * The memory store against the seam's contract: stat of files, folders
 * and both; sorted pages with tokens, delimiters and start_at; reads
 * pinned to the version opened (ESTALE once it is replaced or deleted);
 * open_pinned; put with a stamp, which the copy then reports.
 */
#include "backends/mem/mem.h"
#include "backends/backend.h"
#include "backends/util/crc32c.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static struct deadline dl;

static void put(struct backend *b, const char *name, const char *text)
{
	CHECK(mem_put(b, name, text, strlen(text), NULL) > 0);
}

struct names {
	struct strbuf sb;         /* "name,prefix/,..." */
	unsigned n;
};

static int collect(void *arg, const struct list_entry *e)
{
	struct names *c = arg;
	strbuf_addf(&c->sb, "%s%s", c->n++ ? "," : "", e->name);
	if (e->is_prefix != (e->name[strlen(e->name) - 1] == '/'))
		strbuf_adds(&c->sb, "(kind?)");
	return 0;
}

/* Every page of a listing, joined; *pages gets the number of pages. */
static char *list_all(struct backend *b, const char *prefix, const char *delim,
		      unsigned max, const char *start_at, unsigned *pages)
{
	struct names c = { STRBUF_INIT, 0 };
	char *token = NULL;
	*pages = 0;
	do {
		char *next = NULL;
		struct list_req req = { .prefix = prefix, .delimiter = delim,
					.token = token, .max_keys = max,
					.start_at = token ? NULL : start_at };
		CHECK_INT(backend_list(b, &req, collect, &c, &next, &dl), 0);
		free(token);
		token = next;
		++*pages;
	} while (token && *pages < 100);
	return strbuf_detach(&c.sb, NULL);
}

static void stat_and_list(void)
{
	struct backend *b = mem_create("m");
	struct obj_info i;
	unsigned pages;
	char *s;

	CHECK(backend_has(b, BACKEND_LIST_SORTED | BACKEND_LIST_START_AT));
	put(b, "a", "file a");
	put(b, "a/b", "bb");
	put(b, "a/c", "ccc");
	put(b, "a/d/e", "e");
	put(b, "a-z", "dash");
	put(b, "b.txt", "hello world");

	CHECK_INT(backend_stat(b, "", &i, &dl), 0);
	CHECK(i.is_dir);
	CHECK_INT(backend_stat(b, "a", &i, &dl), 0);       /* both: folder */
	CHECK(i.is_dir);
	CHECK_INT(backend_stat(b, "a/d", &i, &dl), 0);
	CHECK(i.is_dir);
	CHECK_INT(backend_stat(b, "b.txt", &i, &dl), 0);
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 11);
	CHECK_INT(i.generation, mem_generation(b, "b.txt"));
	CHECK(i.has_crc32c && i.crc32c == 0xc99465aaU);    /* "hello world" */
	CHECK(i.has_md5 && i.md5[0] == 0x5e && i.md5[15] == 0xc3);
	CHECK_INT(backend_stat(b, "a/d/e/f", &i, &dl), -ENOENT);
	CHECK_INT(backend_stat(b, "a/", &i, &dl), -ENOENT);
	CHECK_INT(backend_stat(b, "zz", &i, &dl), -ENOENT);
	/* the seam's own rule, by listing, agrees */
	CHECK_INT(backend_stat_by_listing(b, "a", &i, &dl), 0);
	CHECK(i.is_dir);
	CHECK_INT(backend_stat_by_listing(b, "a/c", &i, &dl), 0);
	CHECK_INT(i.size, 3);
	CHECK_INT(i.generation, mem_generation(b, "a/c"));

	/* byte order: "a" < "a-z" < "a/" < "b.txt" */
	s = list_all(b, "", "/", 1000, NULL, &pages);
	CHECK_STR(s, "a,a-z,a/,b.txt");
	CHECK_INT(pages, 1);
	free(s);
	s = list_all(b, "a/", "/", 1, NULL, &pages);       /* one per page */
	CHECK_STR(s, "a/b,a/c,a/d/");
	CHECK_INT(pages, 3);
	free(s);
	s = list_all(b, "", "/", 2, NULL, &pages);         /* a folder ends a page */
	CHECK_STR(s, "a,a-z,a/,b.txt");
	CHECK_INT(pages, 2);
	free(s);
	s = list_all(b, "a/", NULL, 2, NULL, &pages);      /* recursive */
	CHECK_STR(s, "a/b,a/c,a/d/e");
	CHECK_INT(pages, 2);
	free(s);
	s = list_all(b, "a/", "/", 1000, "a/c", &pages);
	CHECK_STR(s, "a/c,a/d/");
	free(s);
	s = list_all(b, "a", "/", 1, "a/d", &pages);       /* start_at, then pages */
	CHECK_STR(s, "a/");
	free(s);
	s = list_all(b, "nothing/", "/", 10, NULL, &pages);
	CHECK_STR(s, "");
	free(s);
	char *next = NULL;
	struct list_req bad = { .prefix = "", .delimiter = "/",
				.token = "junk", .max_keys = 5 };
	struct names c = { STRBUF_INIT, 0 };
	CHECK_INT(backend_list(b, &bad, collect, &c, &next, &dl), -EINVAL);
	CHECK(next == NULL);
	strbuf_release(&c.sb);

	CHECK_INT(mem_put(b, "", "x", 1, NULL), -EINVAL);
	CHECK_INT(mem_put(b, "/abs", "x", 1, NULL), -EINVAL);
	backend_destroy(b);
}

static ssize_t read_str(struct bobj *o, char *buf, size_t len, uint64_t off)
{
	ssize_t n = bobj_read(o, buf, len - 1, off, &dl);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static void reads_are_pinned(void)
{
	struct backend *b = mem_create("m");
	struct bobj *o, *o2, *p;
	char buf[64];

	int64_t g1 = mem_put(b, "f", "version one", 11, NULL);
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);
	CHECK_INT(o->info.generation, g1);
	CHECK_INT(read_str(o, buf, sizeof(buf), 8), 3);
	CHECK_STR(buf, "one");
	CHECK_INT(read_str(o, buf, sizeof(buf), 11), 0);      /* at the end */
	int64_t g2 = mem_put(b, "f", "version two!", 12, NULL);
	CHECK(g2 > g1);                                        /* monotonic */
	CHECK_INT(read_str(o, buf, sizeof(buf), 0), -ESTALE);  /* never "two" */
	CHECK_INT(backend_open(b, "f", &o2, &dl), 0);
	CHECK_INT(read_str(o2, buf, sizeof(buf), 8), 4);
	CHECK_STR(buf, "two!");
	CHECK(!obj_info_same_version(&o->info, &o2->info));

	/* open_pinned: the old version is gone, the new one reads */
	CHECK_INT(backend_open_pinned(b, "f", &o->info, &p), 0);
	CHECK_INT(read_str(p, buf, sizeof(buf), 0), -ESTALE);
	bobj_close(p);
	struct obj_info by_gen = { .generation = (uint64_t)g2 };
	CHECK_INT(backend_open_pinned(b, "f", &by_gen, &p), 0);
	CHECK_INT(read_str(p, buf, sizeof(buf), 0), 12);
	bobj_close(p);

	CHECK_INT(mem_delete(b, "f"), 0);
	CHECK_INT(mem_delete(b, "f"), -ENOENT);
	CHECK_INT(read_str(o2, buf, sizeof(buf), 0), -ESTALE);
	CHECK_INT(backend_open(b, "f", &p, &dl), -ENOENT);
	bobj_close(o);
	bobj_close(o2);

	mem_put_pattern(b, "big", 1 << 20, 5, NULL);
	CHECK_INT(backend_open(b, "big", &o, &dl), 0);
	unsigned char pb[100];
	CHECK_INT(bobj_read(o, pb, sizeof(pb), (1 << 20) - 50, &dl), 50);
	CHECK(pb[0] == mem_pattern_byte(5, (1 << 20) - 50) &&
	      pb[49] == mem_pattern_byte(5, (1 << 20) - 1));
	bobj_close(o);
	backend_destroy(b);
}

static void put_is_stamped(void)
{
	struct backend *b = mem_create("replica");
	char path[] = "/tmp/test_mem-XXXXXX";
	int fd = mkstemp(path);
	struct obj_info stamp = { .generation = 1700, .crc32c = 0xc99465aaU,
				  .has_crc32c = true }, i;
	struct bobj *o;
	char buf[32];

	CHECK(fd >= 0);
	unlink(path);
	CHECK_INT(write(fd, "hello world", 11), 11);
	CHECK_INT(backend_put(b, "dir/copy", fd, 11, &stamp, &dl), 0);
	CHECK_INT(backend_stat(b, "dir/copy", &i, &dl), 0);
	CHECK_INT(i.generation, 1700);                  /* the source's */
	CHECK(i.has_crc32c && i.crc32c == 0xc99465aaU);
	CHECK_INT(strtoll(i.etag, NULL, 10), mem_generation(b, "dir/copy"));
	CHECK_INT(backend_open(b, "dir/copy", &o, &dl), 0);
	CHECK_INT(read_str(o, buf, sizeof(buf), 0), 11);
	CHECK_STR(buf, "hello world");
	/* a stamp without crc32c reports none, whatever the bytes */
	struct obj_info bare = { .generation = 1701 };
	CHECK_INT(backend_put(b, "dir/copy", fd, 5, &bare, &dl), 0);
	CHECK_INT(backend_stat(b, "dir/copy", &i, &dl), 0);
	CHECK(i.generation == 1701 && !i.has_crc32c && i.size == 5);
	CHECK_INT(read_str(o, buf, sizeof(buf), 0), -ESTALE);
	bobj_close(o);
	/* bytes that are not what the md5 says are refused, nothing changes */
	struct obj_info wrong = { .generation = 1702, .has_md5 = true };
	CHECK_INT(backend_put(b, "dir/copy", fd, 11, &wrong, &dl), -EIO);
	CHECK_INT(backend_stat(b, "dir/copy", &i, &dl), 0);
	CHECK_INT(i.generation, 1701);
	CHECK_INT(backend_put(b, "dir/copy", fd, 12, &bare, &dl), -EIO);
	CHECK_INT(backend_put(b, "dir/", fd, 1, &bare, &dl), -EINVAL);
	close(fd);
	backend_destroy(b);
}

/* The write ops' defaults and the precondition rules every store shares
 * (the GCS store's writes: tests/gcs/test_gcs_writes.py). */
static void writes_default(void)
{
	struct backend *b = mem_create("m");
	struct write_pre none = { .kind = WRITE_PRE_NONE };
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct write_pre gen = { .kind = WRITE_PRE_GENERATION,
				 .generation = 7 };
	struct write_pre gen0 = { .kind = WRITE_PRE_GENERATION };
	struct bwriter *w = NULL;

	/* a store not built to write (no BACKEND_WRITE) refuses, though
	 * its table has the ops (mem_create_writable: tests/unit/test_wfile.c) */
	CHECK_INT(backend_writer_open(b, "x", &absent, &w, &dl), -EROFS);
	CHECK(w == NULL);
	CHECK_INT(backend_remove(b, "x", &gen, &dl), -EROFS);
	bwriter_abort(NULL);
	CHECK(write_pre_valid(&none) && write_pre_valid(&absent));
	CHECK(write_pre_valid(&gen) && !write_pre_valid(&gen0));
	/* a failed precondition (HTTP 412: -ESTALE) under put-if-absent */
	CHECK_INT(write_pre_errno(&absent, -ESTALE), -EEXIST);
	CHECK_INT(write_pre_errno(&gen, -ESTALE), -ESTALE);
	CHECK_INT(write_pre_errno(&none, -ESTALE), -ESTALE);
	CHECK_INT(write_pre_errno(&absent, -ENOENT), -ENOENT);
	CHECK_INT(write_pre_errno(&absent, 0), 0);
	backend_destroy(b);
}

int main(void)
{
	dl = deadline_in_ms(10000);
	stat_and_list();
	reads_are_pinned();
	put_is_stamped();
	writes_default();
	return check_summary();
}
