/*
 * The metadata cache over a fake store that counts its calls: stat and
 * negative TTLs, listings filling the stat cache (a folder wins), cached
 * pages replayed with their token, opens refreshing what is cached, the
 * byte ceiling, errors never cached, and several threads at once.
 */
#include "backends/composite/metacache.h"
#include "backends/backend.h"
#include "backends/util/log.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------ the fake store */

struct fake_entry {
	const char *name;
	bool is_prefix;
	uint64_t size;
};

#define FAKE_PAGE_MAX 8

/* Pages of the listing of "d/": page i has token "i" (none for page 0). */
static const struct fake_entry fake_pages[][FAKE_PAGE_MAX] = {
	{ { "d/a", false, 1 }, { "d/b", false, 2 }, { "d/sub/", true, 0 },
	  { "d/y", false, 5 }, { "d/y/", true, 0 } },
	{ { "d/c", false, 3 }, { "d/w", false, 7 } },   /* d/w: last name */
	{ { "d/w/", true, 0 }, { "d/x", false, 4 } },   /* d/w is a folder */
	{ { "d/z", false, 6 } },                         /* the last page */
};
#define FAKE_NPAGES (sizeof(fake_pages) / sizeof(fake_pages[0]))

struct fake {
	struct backend base;
	atomic_int stats, lists, opens;
	atomic_ullong open_size;        /* size a new open reports */
	atomic_bool vanished;           /* "vanish" is gone */
};

static struct fake *to_fake(struct backend *b)
{
	return (struct fake *)b;
}

/* Count a call; -ENOENT for the names the fake does not hold:
 * "missing*", and "vanish" once it is gone. */
static int fake_call(struct fake *f, atomic_int *calls, const char *name)
{
	atomic_fetch_add(calls, 1);
	if (!strncmp(name, "missing", 7) ||
	    (!strcmp(name, "vanish") && atomic_load(&f->vanished)))
		return -ENOENT;
	return 0;
}

static int fake_stat(struct backend *b, const char *name, struct obj_info *out,
		     const struct deadline *dl)
{
	int rc = fake_call(to_fake(b), &to_fake(b)->stats, name);
	(void)dl;
	if (rc < 0)
		return rc;
	if (!strncmp(name, "eio", 3))
		return -EIO;
	memset(out, 0, sizeof(*out));
	if (!strncmp(name, "dir", 3)) {
		out->is_dir = true;
		return 0;
	}
	out->size = 10;
	snprintf(out->etag, sizeof(out->etag), "etag-10");
	return 0;
}

static int fake_list(struct backend *b, const struct list_req *req, list_cb cb,
		     void *arg, char **next_token, const struct deadline *dl)
{
	struct fake *f = to_fake(b);
	size_t page = req->token ? strtoul(req->token, NULL, 10) : 0;
	(void)dl;

	atomic_fetch_add(&f->lists, 1);
	*next_token = NULL;
	if (strcmp(req->prefix, "d/") != 0 || page >= FAKE_NPAGES)
		return -EINVAL;
	for (size_t i = 0; i < FAKE_PAGE_MAX && fake_pages[page][i].name; i++) {
		const struct fake_entry *fe = &fake_pages[page][i];
		struct list_entry e = { .name = fe->name,
					.is_prefix = fe->is_prefix };
		e.info.is_dir = fe->is_prefix;
		e.info.size = fe->size;
		snprintf(e.info.etag, sizeof(e.info.etag), "etag-%s", fe->name);
		int rc = cb(arg, &e);
		if (rc < 0)
			return rc;
	}
	if (page + 1 < FAKE_NPAGES) {
		char tok[16];
		snprintf(tok, sizeof(tok), "%zu", page + 1);
		*next_token = strdup(tok);
	}
	return 0;
}

static int fake_open(struct backend *b, const char *name, struct bobj **out,
		     const struct deadline *dl)
{
	struct fake *f = to_fake(b);
	int rc = fake_call(f, &f->opens, name);
	(void)dl;
	if (rc < 0)
		return rc;
	struct bobj *o = xcalloc(1, sizeof(*o));
	bobj_init(o, b, name);
	o->info.size = atomic_load(&f->open_size);
	snprintf(o->info.etag, sizeof(o->info.etag), "etag-%llu",
		 (unsigned long long)o->info.size);
	*out = o;
	return 0;
}

static ssize_t fake_read(struct bobj *o, void *buf, size_t len, uint64_t off,
			 const struct deadline *dl)
{
	(void)o; (void)buf; (void)len; (void)off; (void)dl;
	return 0;
}

static void fake_close(struct bobj *o)
{
	bobj_release(o);
	free(o);
}

static void fake_probe(struct backend *b, struct probe_result *res,
		       const struct deadline *dl)
{
	(void)b; (void)dl;
	memset(res, 0, sizeof(*res));
	snprintf(res->message, sizeof(res->message), "ok");
}

static void fake_destroy(struct backend *b)
{
	backend_release(b);
	free(b);
}

static const struct backend_ops fake_ops = {
	.type = "s3",
	.stat = fake_stat,
	.list = fake_list,
	.open = fake_open,
	.read = fake_read,
	.close = fake_close,
	.probe = fake_probe,
	.destroy = fake_destroy,
};

static struct fake *fake;   /* the store inside the cache being tested */

/* The folder "e/" of a store whose listings can start at a name, in
 * pages of at most sorted_page_limit names: files e/a00..e/a04, e/f and
 * e/g, and a folder e/f/.  Listings of "bad/" fail. */
static const struct fake_entry sorted_names[] = {
	{ "e/a00", false, 100 }, { "e/a01", false, 101 },
	{ "e/a02", false, 102 }, { "e/a03", false, 103 },
	{ "e/a04", false, 104 }, { "e/f", false, 9 }, { "e/f/", true, 0 },
	{ "e/g", false, 7 },
};
#define SORTED_N (sizeof(sorted_names) / sizeof(sorted_names[0]))
static size_t sorted_page_limit = 100;

static int sorted_list(struct backend *b, const struct list_req *req,
		       list_cb cb, void *arg, char **next_token,
		       const struct deadline *dl)
{
	size_t i = req->token ? strtoul(req->token, NULL, 10) : 0, n = 0;
	(void)dl;

	atomic_fetch_add(&to_fake(b)->lists, 1);
	*next_token = NULL;
	if (strcmp(req->prefix, "e/") != 0)
		return -EIO;
	while (!req->token && req->start_at && i < SORTED_N &&
	       strcmp(sorted_names[i].name, req->start_at) < 0)
		i++;
	for (; i < SORTED_N && n < sorted_page_limit; i++, n++) {
		struct list_entry e = { .name = sorted_names[i].name,
					.is_prefix = sorted_names[i].is_prefix };
		e.info.is_dir = e.is_prefix;
		e.info.size = sorted_names[i].size;
		int rc = cb(arg, &e);
		if (rc < 0)
			return rc;
	}
	if (i < SORTED_N) {
		char tok[16];
		snprintf(tok, sizeof(tok), "%zu", i);
		*next_token = strdup(tok);
	}
	return 0;
}

static struct backend_ops sorted_ops;

static struct backend *cache(int64_t attr, int64_t neg, int64_t list,
			     size_t max)
{
	fake = xcalloc(1, sizeof(*fake));
	backend_init(&fake->base, &fake_ops, "source", "s3 http://h/b/",
		     BACKEND_LIST_SORTED);
	atomic_init(&fake->open_size, 10);
	struct metacache_conf c = { .attr_ttl_ms = attr, .neg_ttl_ms = neg,
				    .list_ttl_ms = list, .max_bytes = max };
	return metacache_create(&fake->base, &c);
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

static int list_page(struct backend *b, const char *token, struct strbuf *sb)
{
	struct deadline dl = deadline_in_ms(1000);
	struct list_req req = { .prefix = "d/", .delimiter = "/",
				.token = token, .max_keys = 1000 };
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
	CHECK_STR(b->describe, "s3 http://h/b/");
	CHECK(backend_has(b, BACKEND_LIST_SORTED));
	/* the store's defaults come through: fs.c then answers itself */
	CHECK_INT(backend_explain(b, "f", "source", NULL, &dl), -ENOTSUP);
	CHECK_INT(backend_open_pinned(b, "f", NULL, &o_unused), -ENOTSUP);
	CHECK_INT(backend_put(b, "f", -1, 0, NULL, &dl), -ENOTSUP);
	struct bobj *o;
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);
	CHECK(o->b == &fake->base);         /* reads go to the store itself */
	CHECK_INT(bobj_read(o, NULL, 0, 0, &dl), 0);
	bobj_close(o);
	struct probe_result pr;
	backend_probe(b, &pr, &dl);
	CHECK_STR(pr.message, "ok");
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
	CHECK_STR(i.etag, "etag-10");
	CHECK_INT(atomic_load(&fake->stats), 1);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(atomic_load(&fake->stats), 2);
	metacache_get_stats(b, &st);
	CHECK_INT(st.hits, 2);
	CHECK_INT(st.misses, 2);
	CHECK_INT(st.entries, 2);
	sleep_ms(100);                          /* past the TTL */
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(atomic_load(&fake->stats), 3);
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(atomic_load(&fake->stats), 3);
	backend_destroy(b);
}

static void negative(void)
{
	struct backend *b = cache(10000, 60, 0, 1 << 20);
	struct metacache_stats st;

	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(atomic_load(&fake->stats), 2);
	metacache_get_stats(b, &st);
	CHECK_INT(st.neg_hits, 1);
	sleep_ms(100);         /* past the negative TTL, not the positive */
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(atomic_load(&fake->stats), 3);
	backend_destroy(b);

	b = cache(10000, 0, 0, 1 << 20);       /* neg_ttl 0: never kept */
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(atomic_load(&fake->stats), 2);
	backend_destroy(b);

	b = cache(0, 10000, 0, 1 << 20);       /* attr_ttl 0: only negatives */
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "f", NULL), 0);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(do_stat(b, "missing", NULL), -ENOENT);
	CHECK_INT(atomic_load(&fake->stats), 3);
	backend_destroy(b);
}

static void errors_not_cached(void)
{
	struct backend *b = cache(10000, 10000, 0, 1 << 20);
	CHECK_INT(do_stat(b, "eio", NULL), -EIO);
	CHECK_INT(do_stat(b, "eio", NULL), -EIO);
	CHECK_INT(atomic_load(&fake->stats), 2);
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

	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_STR(sb.buf, "d/a:1,d/b:2,d/sub/(p):0,d/y:5,d/y/(p):0,|1");
	CHECK_INT(list_page(b, "1", &sb), 0);
	CHECK_STR(sb.buf, "d/c:3,d/w:7,|2");
	CHECK_INT(atomic_load(&fake->lists), 2);
	CHECK_INT(do_stat(b, "d/a", &i), 0);
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 1);
	CHECK_STR(i.etag, "etag-d/a");
	CHECK_INT(do_stat(b, "d/b", &i), 0);
	CHECK_INT(i.size, 2);
	CHECK_INT(do_stat(b, "d/sub", &i), 0);    /* a prefix: a folder */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/y", &i), 0);      /* the folder wins */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/c", &i), 0);
	CHECK_INT(i.size, 3);
	CHECK_INT(atomic_load(&fake->stats), 0);
	/* "d/w" ends a page that has a next one: "d/w/" could follow (it
	 * does), so the listing does not decide it yet; stat asks. */
	CHECK_INT(do_stat(b, "d/w", &i), 0);
	CHECK_INT(atomic_load(&fake->stats), 1);
	/* pages are not kept with list_ttl 0 */
	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_INT(atomic_load(&fake->lists), 3);
	backend_destroy(b);

	/* the next page decides what the previous one could not */
	b = cache(10000, 0, 0, 1 << 20);
	const char *tokens[] = { NULL, "1", "2", "3" };
	for (int p = 0; p < 4; p++)
		CHECK_INT(list_page(b, tokens[p], &sb), 0);
	CHECK_STR(sb.buf, "d/z:6,|-");
	CHECK_INT(do_stat(b, "d/w", &i), 0);      /* "d/w/" came next */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "d/x", &i), 0);      /* the last page: a file */
	CHECK(!i.is_dir);
	CHECK_INT(i.size, 4);
	CHECK_INT(do_stat(b, "d/z", &i), 0);
	CHECK_INT(i.size, 6);
	CHECK_INT(atomic_load(&fake->stats), 0);
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

	sorted_ops = fake_ops;
	sorted_ops.list = sorted_list;
	fake = xcalloc(1, sizeof(*fake));
	backend_init(&fake->base, &sorted_ops, "source", "s3 http://h/b/",
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT);
	struct backend *b = metacache_create(&fake->base, &c);

	/* one page answers the lookup and the burst after it */
	CHECK_INT(do_stat(b, "e/a01", &i), 0);
	CHECK_INT(i.size, 101);
	CHECK_INT(atomic_load(&fake->lists), 1);
	for (const char *n = "e/a02"; n; n = !strcmp(n, "e/a02") ? "e/a04"
				       : NULL) {
		CHECK_INT(do_stat(b, n, &i), 0);
		CHECK(!i.is_dir);
	}
	CHECK_INT(do_stat(b, "e/f", &i), 0);     /* the folder wins */
	CHECK(i.is_dir);
	CHECK_INT(do_stat(b, "e/g", &i), 0);
	CHECK_INT(i.size, 7);
	CHECK_INT(atomic_load(&fake->lists), 1);
	CHECK_INT(atomic_load(&fake->stats), 0);
	/* a name before the page's start was not learnt: its own page */
	CHECK_INT(do_stat(b, "e/a00", &i), 0);
	CHECK_INT(i.size, 100);
	CHECK_INT(atomic_load(&fake->lists), 2);
	/* the folder's last page decides that a name does not exist */
	CHECK_INT(do_stat(b, "e/nothere", &i), -ENOENT);
	CHECK_INT(atomic_load(&fake->stats), 0);
	/* a page that ends at the name cannot rule out a folder of that
	 * name on the next page: the store is asked about the name alone */
	sorted_page_limit = 1;
	backend_destroy(b);
	fake = xcalloc(1, sizeof(*fake));
	backend_init(&fake->base, &sorted_ops, "source", "s3 http://h/b/",
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT);
	b = metacache_create(&fake->base, &c);
	CHECK_INT(do_stat(b, "e/a03", &i), 0);
	CHECK_INT(atomic_load(&fake->lists), 1);
	CHECK_INT(atomic_load(&fake->stats), 1);
	CHECK_INT(i.size, 10);                     /* fake_stat's answer */
	/* ... but one reaching past "name/" decides it */
	sorted_page_limit = 2;
	CHECK_INT(do_stat(b, "e/f", &i), 0);
	CHECK(i.is_dir);
	CHECK_INT(atomic_load(&fake->stats), 1);
	/* a page that fails falls back to the store's own stat */
	CHECK_INT(do_stat(b, "bad/x", &i), 0);
	CHECK_INT(atomic_load(&fake->stats), 2);
	sorted_page_limit = 100;
	backend_destroy(b);

	/* off: every lookup is the store's stat */
	c.lookup_pages = false;
	fake = xcalloc(1, sizeof(*fake));
	backend_init(&fake->base, &sorted_ops, "source", "s3 http://h/b/",
		     BACKEND_LIST_SORTED | BACKEND_LIST_START_AT);
	b = metacache_create(&fake->base, &c);
	CHECK_INT(do_stat(b, "e/a01", &i), 0);
	CHECK_INT(do_stat(b, "e/a02", &i), 0);
	CHECK_INT(atomic_load(&fake->stats), 2);
	CHECK_INT(atomic_load(&fake->lists), 0);
	backend_destroy(b);
}

static void pages_replayed(void)
{
	struct backend *b = cache(10000, 0, 60, 1 << 20);
	struct strbuf first = STRBUF_INIT, again = STRBUF_INIT;
	struct metacache_stats st;

	CHECK_INT(list_page(b, NULL, &first), 0);
	CHECK_INT(list_page(b, NULL, &again), 0);
	CHECK_STR(again.buf, first.buf);          /* same entries, same token */
	CHECK_INT(atomic_load(&fake->lists), 1);
	CHECK_INT(list_page(b, "1", &first), 0);
	CHECK_INT(list_page(b, "1", &again), 0);
	CHECK_STR(again.buf, "d/c:3,d/w:7,|2");
	CHECK_STR(first.buf, again.buf);
	CHECK_INT(list_page(b, "3", &again), 0);
	CHECK_INT(list_page(b, "3", &again), 0);
	CHECK_STR(again.buf, "d/z:6,|-");         /* no token: the end */
	CHECK_INT(atomic_load(&fake->lists), 3);
	metacache_get_stats(b, &st);
	CHECK_INT(st.list_hits, 3);
	CHECK_INT(st.list_misses, 3);
	sleep_ms(100);
	CHECK_INT(list_page(b, NULL, &again), 0);
	CHECK_INT(atomic_load(&fake->lists), 4);
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
	atomic_store(&fake->open_size, 20);        /* a new version */
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);
	CHECK_INT(o->info.size, 20);
	bobj_close(o);
	CHECK_INT(backend_open(b, "f", &o, &dl), 0);   /* never cached */
	bobj_close(o);
	CHECK_INT(atomic_load(&fake->opens), 2);
	CHECK_INT(do_stat(b, "f", &i), 0);
	CHECK_INT(i.size, 20);
	CHECK_STR(i.etag, "etag-20");
	CHECK_INT(atomic_load(&fake->stats), 1);

	/* a cached folder stays a folder */
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK_INT(backend_open(b, "dir", &o, &dl), 0);
	bobj_close(o);
	CHECK_INT(do_stat(b, "dir", &i), 0);
	CHECK(i.is_dir);

	/* an open that finds nothing is remembered (neg_ttl > 0) */
	CHECK_INT(backend_open(b, "missing-1", &o, &dl), -ENOENT);
	CHECK_INT(do_stat(b, "missing-1", &i), -ENOENT);
	CHECK_INT(atomic_load(&fake->stats), 2);
	backend_destroy(b);

	/* without negative caching, it still drops what was known */
	b = cache(10000, 0, 0, 1 << 20);
	CHECK_INT(do_stat(b, "vanish", &i), 0);
	atomic_store(&fake->vanished, true);
	CHECK_INT(do_stat(b, "vanish", &i), 0);       /* cached */
	CHECK_INT(backend_open(b, "vanish", &o, &dl), -ENOENT);
	CHECK_INT(do_stat(b, "vanish", &i), -ENOENT);
	CHECK_INT(atomic_load(&fake->stats), 2);
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
	int before = atomic_load(&fake->stats);
	CHECK_INT(do_stat(b, "f-1999", NULL), 0);
	CHECK_INT(atomic_load(&fake->stats), before);

	backend_destroy(b);

	/* a page over a quarter of the budget is passed on, not kept */
	b = cache(10000, 10000, 10000, 2048);
	struct strbuf sb = STRBUF_INIT;
	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_INT(atomic_load(&fake->lists), 2);
	CHECK_STR(sb.buf, "d/a:1,d/b:2,d/sub/(p):0,d/y:5,d/y/(p):0,|1");
	metacache_get_stats(b, &st);
	CHECK(st.bytes <= 2048);
	strbuf_release(&sb);
	backend_destroy(b);

	/* with room, the same page is kept */
	b = cache(10000, 10000, 10000, 1 << 20);
	sb = (struct strbuf)STRBUF_INIT;
	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_INT(list_page(b, NULL, &sb), 0);
	CHECK_INT(atomic_load(&fake->lists), 1);
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
			if (list_page(shared, k % 20 ? NULL : "1", &sb) < 0)
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
	return check_summary();
}
