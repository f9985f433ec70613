/*
 * The metadata cache over a memory store in a fault wrapper that counts
 * the calls it gets: stat and
 * negative TTLs, listings filling the stat cache (a folder wins), cached
 * pages replayed with their token, opens refreshing what is cached, the
 * byte ceiling, errors never cached, and several threads at once.
 */
#include "backends/composite/metacache.h"
#include "backends/backend.h"
#include "backends/composite/fault.h"
#include "backends/composite/wrap.h"
#include "backends/mem/mem.h"
#include "backends/util/log.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ the store */

/*
 * The cache wraps a fault wrapper (which counts the calls it gets, and
 * fails some) over a memory store holding, for every test:
 *   "f", "vanish", "f-NNNN" (odd N), "fN" (N < 300): 10 bytes each;
 *   "dir": a folder that also has an object of its name;
 *   the folder "d/", listed in pages of PAGE names:
 *     d/a:1 d/b:2 d/b/ | d/c:3 d/sub/ d/w:7 | d/w/ d/x:4 d/y:5 | d/z:6
 *   the folder "e/": e/a00..e/a04 (100..104 bytes), e/f:9 and the folder
 *   e/f/, e/g:7; and "bad/x", whose folder's listings fail;
 *   "eio", whose stats fail with -EIO.
 * "missing*" names are absent.
 */
#define PAGE 3

static struct backend *mem;     /* the memory store at the bottom */
static struct backend *inner;   /* the fault wrapper the cache wraps */

static void put_size(const char *name, size_t size)
{
	static const char bytes[256];
	if (mem_put(mem, name, bytes, size, NULL) <= 0)
		abort();
}

static void fill(void)
{
	static const struct { const char *name; size_t size; } objs[] = {
		{ "f", 10 }, { "vanish", 10 }, { "dir", 10 }, { "dir/x", 1 },
		{ "eio", 10 },
		{ "d/a", 1 }, { "d/b", 2 }, { "d/b/k", 1 }, { "d/c", 3 },
		{ "d/sub/k", 1 }, { "d/w", 7 }, { "d/w/k", 1 }, { "d/x", 4 },
		{ "d/y", 5 }, { "d/z", 6 },
		{ "e/a00", 100 }, { "e/a01", 101 }, { "e/a02", 102 },
		{ "e/a03", 103 }, { "e/a04", 104 }, { "e/f", 9 },
		{ "e/f/k", 1 }, { "e/g", 7 }, { "bad/x", 10 },
	};
	char name[64];

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		put_size(objs[i].name, objs[i].size);
	for (int i = 1; i < 2000; i += 2) {
		snprintf(name, sizeof(name), "f-%04d", i);
		put_size(name, 10);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		put_size(name, 10);
	}
}

/* A new store as described above, in its fault wrapper (set in inner). */
static struct backend *store_new(void)
{
	mem = mem_create("source");
	fill();
	inner = fault_create(mem, 1);
	fault_add(inner, &(struct fault_rule){ .op = FAULT_STAT,
		.name = "eio", .action = FAULT_FAIL, .err = -EIO });
	fault_add(inner, &(struct fault_rule){ .op = FAULT_LIST,
		.name = "bad/", .action = FAULT_FAIL, .err = -EIO });
	return inner;
}

static unsigned calls(enum fault_op op)
{
	return fault_calls(inner, op);
}

/* The version token of name's current version in the store. */
static const char *etag_of(const char *name)
{
	static char buf[32];
	snprintf(buf, sizeof(buf), "%lld",
		 (long long)mem_generation(mem, name));
	return buf;
}

static struct backend *cache(int64_t attr, int64_t neg, int64_t list,
			     size_t max)
{
	struct metacache_conf c = { .attr_ttl_ms = attr, .neg_ttl_ms = neg,
				    .list_ttl_ms = list, .max_bytes = max };
	return metacache_create(store_new(), &c);
}

static int do_stat(struct backend *b, const char *name, struct obj_info *i)
{
	struct deadline dl = deadline_in_ms(1000);
	struct obj_info scratch;
	return backend_stat(b, name, i ? i : &scratch, &dl);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A listing page as the caller saw it: "name,name,...|token". */
static int add_name(void *arg, const struct list_entry *e)
{
	struct strbuf *sb = arg;
	strbuf_addf(sb, "%s%s:%llu,", e->name, e->is_prefix ? "(p)" : "",
		    (unsigned long long)e->info.size);
	return 0;
}

static int list_page(struct backend *b, const char *token, unsigned max,
		     struct strbuf *sb)
{
	struct deadline dl = deadline_in_ms(1000);
	struct list_req req = { .prefix = "d/", .delimiter = "/",
				.token = token, .max_keys = max };
	char *next = NULL;
	strbuf_reset(sb);
	int rc = backend_list(b, &req, add_name, sb, &next, &dl);
	strbuf_addf(sb, "|%s", next ? next : "-");
	free(next);
	return rc;
}

/* ---------------------------------------------------------------- tests */

static void invisible(void)
{
	struct backend *b = cache(1000, 0, 0, 1 << 20);
	struct bobj *o_unused = NULL;
	struct deadline dl = deadline_in_ms(1000);
	CHECK_STR(b->name, "source");
	CHECK_STR(b->describe, inner->describe);
	CHECK_INT(b->caps, inner->caps);
	/* the store's defaults come through (the memory store explains
	 * nothing): fs.c then answers itself */
	CHECK_INT(backend_explain(b, "f", "source", NULL, &dl), -ENOTSUP);
	/* the optional ops it has are passed to it */
	struct obj_info info;
	CHECK_INT(backend_stat(inner, "f", &info, &dl), 0);
	CHECK_INT(backend_open_pinned(b, "f", &info, &o_unused), 0);
	CHECK(o_unused->b == inner);
	bobj_close(o_unused);
	CHECK_INT(calls(FAULT_OPEN_PINNED), 1);
	fault_add(inner, &(struct fault_rule){ .op = FAULT_PUT,
		.action = FAULT_FAIL, .err = -EROFS });
	CHECK_INT(backend_put(b, "f", -1, 0, NULL, &dl), -EROFS);
	CHECK_INT(calls(FAULT_PUT), 1);
	struct bobj *o;
	char buf[16];
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);
	CHECK(o->b == inner);               /* reads go to the store itself */
	CHECK_INT(bobj_read(o, buf, sizeof(buf), 0, &dl), 10);
	bobj_close(o);
	CHECK_INT(calls(FAULT_READ), 1);
	struct probe_result pr, inner_pr;
	backend_probe(b, &pr, &dl);
	backend_probe(inner, &inner_pr, &dl);
	CHECK_STR(pr.message, inner_pr.message);
	CHECK_INT(calls(FAULT_PROBE), 2);
	struct metacache_stats st;
	metacache_get_stats(b, &st);        /* a read is not a lookup */
	CHECK_INT(st.misses, 0);
	backend_destroy(b);
}

static void stat_ttl(void)
{
	struct backend *b = cache(60, 0, 0, 1 << 20);
	struct obj_info i;
	struct metacache_stats st;

	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(i.size, 10);
	memset(&i, 0, sizeof(i));
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(i.size, 10);
	CHECK_STR(i.etag, etag_of("f"));
	CHECK_INT(calls(FAULT_STAT), 1);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(calls(FAULT_STAT), 2);
	metacache_get_stats(b, &st);
	CHECK_INT(st.hits, 2);
	CHECK_INT(st.misses, 2);
	CHECK_INT(st.entries, 2);
	sleep_ms(100);                          /* past the TTL */
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(calls(FAULT_STAT), 3);
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(calls(FAULT_STAT), 3);
	backend_destroy(b);
}

static void negative(void)
{
	struct backend *b = cache(10000, 60, 0, 1 << 20);
	struct metacache_stats st;

	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), 2);
	metacache_get_stats(b, &st);
	CHECK_INT(st.neg_hits, 1);
	sleep_ms(100);         /* past the negative TTL, not the positive */
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), 3);
	backend_destroy(b);

	b = cache(10000, 0, 0, 1 << 20);       /* neg_ttl 0: never kept */
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 2);
	backend_destroy(b);

	b = cache(0, 10000, 0, 1 << 20);       /* attr_ttl 0: only negatives */
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 3);
	backend_destroy(b);
}

static void errors_not_cached(void)
{
	struct backend *b = cache(10000, 10000, 0, 1 << 20);
	CHECK_INT(do_stat(b, "eio", NULL), -EIO);
	CHECK_INT(do_stat(b, "eio", NULL), -EIO);
	CHECK_INT(calls(FAULT_STAT), 2);
	struct metacache_stats st;
	metacache_get_stats(b, &st);
	CHECK_INT(st.entries, 0);
	backend_destroy(b);
}

static void listing_fills_stats(void)
{
	struct backend *b = cache(10000, 0, 0, 1 << 20);
	struct strbuf sb = STRBUF_INIT;
	struct obj_info i;

	CHECK_INT(list_page(b, NULL, PAGE, &sb), 0);
	CHECK_STR(sb.buf, "d/a:1,d/b:2,d/b/(p):0,|p:d/b/");
	CHECK_INT(list_page(b, "p:d/b/", PAGE, &sb), 0);
	CHECK_STR(sb.buf, "d/c:3,d/sub/(p):0,d/w:7,|o:d/w");
	CHECK_INT(calls(FAULT_LIST), 2);
	CHECK_INT(do_stat(b, "d/a", &i), 0);
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 1);
	CHECK_STR(i.etag, etag_of("d/a"));
	CHECK_INT(do_stat(b, "d/sub", &i), 0);    /* a prefix: a folder */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/b", &i), 0);      /* the folder wins */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/c", &i), 0);
	CHECK_INT(i.size, 3);
	CHECK_INT(calls(FAULT_STAT), 0);
	/* "d/w" ends a page that has a next one: "d/w/" could follow (it
	 * does), so the listing does not decide it yet; stat asks. */
	CHECK_INT(do_stat(b, "d/w", &i), 0);
	CHECK_INT(calls(FAULT_STAT), 1);
	/* pages are not kept with list_ttl 0 */
	CHECK_INT(list_page(b, NULL, PAGE, &sb), 0);
	CHECK_INT(calls(FAULT_LIST), 3);
	backend_destroy(b);

	/* the next page decides what the previous one could not */
	b = cache(10000, 0, 0, 1 << 20);
	const char *tokens[] = { NULL, "p:d/b/", "o:d/w", "o:d/y" };
	for (int p = 0; p < 4; p++)
		CHECK_INT(list_page(b, tokens[p], PAGE, &sb), 0);
	CHECK_STR(sb.buf, "d/z:6,|-");
	CHECK_INT(do_stat(b, "d/w", &i), 0);      /* "d/w/" came next */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/x", &i), 0);
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 4);
	CHECK_INT(do_stat(b, "d/y", &i), 0);      /* the last page: a file */
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 5);
	CHECK_INT(do_stat(b, "d/z", &i), 0);
	CHECK_INT(i.size, 6);
	CHECK_INT(calls(FAULT_STAT), 0);
	strbuf_release(&sb);
	backend_destroy(b);
}

/* Lookups answered by a page of their folder from the name on. */
static void lookup_pages(void)
{
	struct metacache_conf c = { .attr_ttl_ms = 10000, .neg_ttl_ms = 0,
				    .max_bytes = 1 << 20,
				    .lookup_pages = true };
	struct obj_info i;

	struct backend *b = metacache_create(store_new(), &c);

	/* one page answers the lookup and the burst after it */
	CHECK_INT(do_stat(b, "e/a01", &i), 0);
	CHECK_INT(i.size, 101);
	CHECK_INT(calls(FAULT_LIST), 1);
	for (const char *n = "e/a02"; n; n = !strcmp(n, "e/a02") ? "e/a04"
				       : NULL) {
		CHECK_INT(do_stat(b, n, &i), 0);
		CHECK(!i.is_dir);
	}
	CHECK_INT(do_stat(b, "e/f", &i), 0);     /* the folder wins */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "e/g", &i), 0);
	CHECK_INT(i.size, 7);
	CHECK_INT(calls(FAULT_LIST), 1);
	CHECK_INT(calls(FAULT_STAT), 0);
	/* a name before the page's start was not learnt: its own page */
	CHECK_INT(do_stat(b, "e/a00", &i), 0);
	CHECK_INT(i.size, 100);
	CHECK_INT(calls(FAULT_LIST), 2);
	/* the folder's last page decides that a name does not exist */
	CHECK_INT(do_stat(b, "e/nothere", &i), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 0);
	/* a page that ends at the name cannot rule out a folder of that
	 * name on the next page: the store is asked about the name alone */
	backend_destroy(b);
	b = metacache_create(store_new(), &c);
	fault_add(inner, &(struct fault_rule){ .op = FAULT_LIST, .times = 1,
		.action = FAULT_SHORT_PAGE, .page_max = 1 });
	CHECK_INT(do_stat(b, "e/a03", &i), 0);
	CHECK_INT(calls(FAULT_LIST), 1);
	CHECK_INT(calls(FAULT_STAT), 1);
	CHECK_INT(i.size, 103);
	/* ... but one reaching past "name/" decides it */
	fault_add(inner, &(struct fault_rule){ .op = FAULT_LIST,
		.action = FAULT_SHORT_PAGE, .page_max = 2 });
	CHECK_INT(do_stat(b, "e/f", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(calls(FAULT_STAT), 1);
	/* a page that fails falls back to the store's own stat */
	CHECK_INT(do_stat(b, "bad/x", &i), 0);
	CHECK_INT(calls(FAULT_STAT), 2);
	backend_destroy(b);

	/* off: every lookup is the store's stat */
	c.lookup_pages = false;
	b = metacache_create(store_new(), &c);
	CHECK_INT(do_stat(b, "e/a01", &i), 0);
	CHECK_INT(do_stat(b, "e/a02", &i), 0);
	CHECK_INT(calls(FAULT_STAT), 2);
	CHECK_INT(calls(FAULT_LIST), 0);
	backend_destroy(b);
}

static void pages_replayed(void)
{
	struct backend *b = cache(10000, 0, 60, 1 << 20);
	struct strbuf first = STRBUF_INIT, again = STRBUF_INIT;
	struct metacache_stats st;

	CHECK_INT(list_page(b, NULL, PAGE, &first), 0);
	CHECK_INT(list_page(b, NULL, PAGE, &again), 0);
	CHECK_STR(again.buf, first.buf);          /* same entries, same token */
	CHECK_INT(calls(FAULT_LIST), 1);
	CHECK_INT(list_page(b, "p:d/b/", PAGE, &first), 0);
	CHECK_INT(list_page(b, "p:d/b/", PAGE, &again), 0);
	CHECK_STR(again.buf, "d/c:3,d/sub/(p):0,d/w:7,|o:d/w");
	CHECK_STR(first.buf, again.buf);
	CHECK_INT(list_page(b, "o:d/y", PAGE, &again), 0);
	CHECK_INT(list_page(b, "o:d/y", PAGE, &again), 0);
	CHECK_STR(again.buf, "d/z:6,|-");         /* no token: the end */
	CHECK_INT(calls(FAULT_LIST), 3);
	metacache_get_stats(b, &st);
	CHECK_INT(st.list_hits, 3);
	CHECK_INT(st.list_misses, 3);
	sleep_ms(100);
	CHECK_INT(list_page(b, NULL, PAGE, &again), 0);
	CHECK_INT(calls(FAULT_LIST), 4);
	strbuf_release(&first);
	strbuf_release(&again);
	backend_destroy(b);
}

static void opens_refresh(void)
{
	struct backend *b = cache(10000, 10000, 0, 1 << 20);
	struct deadline dl = deadline_in_ms(1000);
	struct obj_info i;
	struct bobj *o;

	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(i.size, 10);
	put_size("f", 20);                         /* a new version */
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);
	CHECK_INT(o->info.size, 20);
	bobj_close(o);
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);   /* never cached */
	bobj_close(o);
	CHECK_INT(calls(FAULT_OPEN), 2);
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(i.size, 20);
	CHECK_STR(i.etag, etag_of("f"));
	CHECK_INT(calls(FAULT_STAT), 1);

	/* a cached folder stays a folder */
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK_INT(backend_open(b, "dir", &o, &dl), 0);
	bobj_close(o);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);

	/* an open that finds nothing is remembered (neg_ttl > 0) */
	CHECK_INT(backend_open(b, "missing-1", &o, &dl), -ENOENT);
	CHECK_INT(do_stat(b, "missing-1", &i), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 2);
	backend_destroy(b);

	/* without negative caching, it still drops what was known */
	b = cache(10000, 0, 0, 1 << 20);
	CHECK_INT(do_stat(b, "vanish", &i), 0);
	CHECK_INT(mem_delete(mem, "vanish"), 0);
	CHECK_INT(do_stat(b, "vanish", &i), 0);       /* cached */
	CHECK_INT(backend_open(b, "vanish", &o, &dl), -ENOENT);
	CHECK_INT(do_stat(b, "vanish", &i), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 2);
	backend_destroy(b);
}

static void byte_ceiling(void)
{
	const size_t max = 8192;
	struct backend *b = cache(10000, 10000, 10000, max);
	struct metacache_stats st;
	char name[64];

	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "%s-%04d", i % 2 ? "f" : "missing",
			 i);
		CHECK_INT(do_stat(b, name, NULL), i % 2 ? 0 : -ENOENT);
		metacache_get_stats(b, &st);
		if (st.bytes > max) {
			CHECK(st.bytes <= max);
			break;
		}
	}
	CHECK(st.evictions > 0);
	CHECK(st.entries > 0);
	/* the most recent names are still there */
	int before = calls(FAULT_STAT);
	CHECK_INT(do_stat(b, "f-1999", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), before);

	backend_destroy(b);

	/* a page over a quarter of the budget is passed on, not kept */
	b = cache(10000, 10000, 10000, 2048);
	struct strbuf sb = STRBUF_INIT;
	CHECK_INT(list_page(b, NULL, 1000, &sb), 0);
	CHECK_INT(list_page(b, NULL, 1000, &sb), 0);
	CHECK_INT(calls(FAULT_LIST), 2);
	CHECK_STR(sb.buf, "d/a:1,d/b:2,d/b/(p):0,d/c:3,d/sub/(p):0,d/w:7,"
		  "d/w/(p):0,d/x:4,d/y:5,d/z:6,|-");
	metacache_get_stats(b, &st);
	CHECK(st.bytes <= 2048);
	strbuf_release(&sb);
	backend_destroy(b);

	/* with room, the same page is kept */
	b = cache(10000, 10000, 10000, 1 << 20);
	sb = (struct strbuf)STRBUF_INIT;
	CHECK_INT(list_page(b, NULL, 1000, &sb), 0);
	CHECK_INT(list_page(b, NULL, 1000, &sb), 0);
	CHECK_INT(calls(FAULT_LIST), 1);
	strbuf_release(&sb);
	backend_destroy(b);
}

/* Many threads on a small budget: answers stay right, nothing breaks. */
static struct backend *shared;

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct strbuf sb = STRBUF_INIT;
	struct deadline dl = deadline_in_ms(10000);
	char name[64];
	long bad = 0;

	for (int i = 0; i < 20000; i++) {
		int k = (int)(rand_r(&seed) % 300);
		struct obj_info info;
		struct bobj *o;
		switch (k % 10) {
		case 0:
			if (list_page(shared, k % 20 ? NULL : "p:d/b/", PAGE, &sb) < 0)
				bad++;
			break;
		case 1:
			snprintf(name, sizeof(name), "f%d", k);
			if (backend_open(shared, name, &o, &dl) < 0)
				bad++;
			else
				bobj_close(o);
			break;
		case 2:
			snprintf(name, sizeof(name), "missing%d", k);
			bad += do_stat(shared, name, NULL) != -ENOENT;
			break;
		default:
			snprintf(name, sizeof(name), "f%d", k);
			bad += do_stat(shared, name, &info) != 0 ||
			       info.size != 10;
		}
	}
	strbuf_release(&sb);
	return (void *)bad;
}

static void threads(void)
{
	pthread_t th[4];
	struct metacache_stats st;

	shared = cache(5, 5, 5, 16384);
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, (void *)(i + 1));
	long bad = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += (long)r;
	}
	CHECK_INT(bad, 0);
	metacache_get_stats(shared, &st);
	CHECK(st.bytes <= 16384);
	CHECK(st.hits > 0);
	CHECK(st.evictions > 0);
	backend_destroy(shared);
}

/* ------------------------------------------------ covered by a feed */

static bool cover_ok;

static bool covered(void *arg, const char *name, int64_t born)
{
	(void)arg;
	(void)name;
	(void)born;
	return cover_ok;
}

static void *stat_f(void *arg)
{
	do_stat(arg, "f", NULL);
	return NULL;
}

static void covered_by_feed(void)
{
	struct metacache_conf c = { .attr_ttl_ms = 50, .neg_ttl_ms = 0,
				    .max_bytes = 1 << 20,
				    .covered = covered };
	struct backend *b = metacache_create(store_new(), &c);

	/* while covered, answers outlive their TTL, negative ones too */
	cover_ok = true;
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "d", NULL), 0);
	CHECK_INT(do_stat(b, "d/a", NULL), 0);
	sleep_ms(100);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 4);
	/* not covered (the feed stalled): past the TTL, asked again */
	cover_ok = false;
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 6);
	cover_ok = true;

	/* a new version of d/a: it goes, its folder stays */
	metacache_forget_change(b, "d/a", false);
	CHECK_INT(do_stat(b, "d", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), 6);
	CHECK_INT(do_stat(b, "d/a", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), 7);
	/* a deletion: the folder may be empty now */
	metacache_forget_change(b, "d/a", true);
	CHECK_INT(do_stat(b, "d", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), 8);
	/* a name created: a cached "not found" of it goes */
	metacache_forget_change(b, "missing", false);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(calls(FAULT_STAT), 9);

	/* an answer to a question asked before the change is not kept */
	metacache_forget_change(b, "f", false);
	fault_add(inner, &(struct fault_rule){ .op = FAULT_STAT, .name = "f",
		.action = FAULT_DELAY, .delay_us = 200000 });
	pthread_t th;
	pthread_create(&th, NULL, stat_f, b);
	sleep_ms(50);
	metacache_forget_change(b, "f", false);
	pthread_join(th, NULL);
	fault_clear(inner);
	unsigned before = calls(FAULT_STAT);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), before + 1);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(calls(FAULT_STAT), before + 1);
	backend_destroy(b);
}

int main(void)
{
	log_level = LOG_WARNING;
	invisible();
	stat_ttl();
	negative();
	errors_not_cached();
	listing_fills_stats();
	lookup_pages();
	pages_replayed();
	opens_refresh();
	byte_ceiling();
	threads();
	covered_by_feed();
	return check_summary();
}
