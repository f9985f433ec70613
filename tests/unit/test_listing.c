/*
 * The listing iterator (backends/listing.h) over a tiny store whose pages
 * the test writes out: GCS-style pages (objects, then prefixes), a file
 * and its folder split across pages, repeated prefixes, empty pages,
 * errors mid-listing, start_at, the bound on held names, unsorted
 * stores, listing_settle() and backend_stat_by_listing().
 */
#include "backends/listing.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>

#define PAGE_MAX 8

/* A page as the store sends it, in delivery order; a name ending in '/'
 * is a prefix.  A page's token is its index + 1 (none on the last). */
struct tpage {
	const char *names[PAGE_MAX];
};

struct tstore {
	struct backend base;
	const struct tpage *pages;
	size_t npages;
	const char *const *folders;  /* answers to one-key listings */
	int fail_page;               /* this page fails once; -1: none */
	int fail_probe;              /* probes fail this many times */
	int lists, probes;
	char start_at[64];           /* of the last first-page request */
};

static int t_list(struct backend *b, const struct list_req *req, list_cb cb,
		  void *arg, char **next, const struct deadline *dl)
{
	struct tstore *t = (struct tstore *)b;
	size_t p = req->token ? strtoul(req->token, NULL, 10) : 0;
	(void)dl;

	*next = NULL;
	if (req->max_keys == 1) {   /* backend_prefix_exists; pages are 2+ */
		t->probes++;
		if (t->fail_probe > 0 && t->fail_probe--)
			return -ETIMEDOUT;
		for (size_t i = 0; t->folders && t->folders[i]; i++)
			if (!strncmp(t->folders[i], req->prefix,
				     strlen(req->prefix))) {
				struct list_entry e = { .name = t->folders[i],
							.is_prefix = true };
				return cb(arg, &e);
			}
		return 0;
	}
	t->lists++;
	if (!req->token)
		snprintf(t->start_at, sizeof(t->start_at), "%s",
			 req->start_at ? req->start_at : "-");
	for (size_t i = 0; i < PAGE_MAX && t->pages[p].names[i]; i++) {
		const char *n = t->pages[p].names[i];
		struct list_entry e = { .name = n };
		e.is_prefix = e.info.is_dir = n[strlen(n) - 1] == '/';
		e.info.size = strlen(n);
		int rc = cb(arg, &e);
		if (rc < 0)
			return rc;
		if ((int)p == t->fail_page) {   /* after one entry */
			t->fail_page = -1;
			return -EIO;
		}
	}
	if (p + 1 < t->npages) {
		char tok[24];
		snprintf(tok, sizeof(tok), "%zu", p + 1);
		*next = xstrdup(tok);
	}
	return 0;
}

static const struct backend_ops t_ops = { .type = "test", .list = t_list };

static void tstore(struct tstore *t, const struct tpage *pages, size_t n,
		   unsigned caps)
{
	memset(t, 0, sizeof(*t));
	t->base.ops = &t_ops;
	t->base.caps = caps;
	t->pages = pages;
	t->npages = n;
	t->fail_page = -1;
}

#define SORTED BACKEND_LIST_SORTED
#define NPAGES(a) (sizeof(a) / sizeof((a)[0]))

/* Everything the listing yields, joined with ','; "ERR<n>" on an error. */
static char *drain(struct listing *l, uint64_t *hidden)
{
	struct deadline dl = deadline_in_ms(1000);
	struct strbuf sb = STRBUF_INIT;
	const struct list_entry *e;
	int rc;

	while ((rc = listing_next(l, &e, &dl)) == 1)
		strbuf_addf(&sb, "%s%s", sb.len ? "," : "", e->name);
	if (rc < 0)
		strbuf_addf(&sb, "%sERR%d", sb.len ? "," : "", -rc);
	if (hidden)
		*hidden = listing_hidden(l);
	return strbuf_detach(&sb, NULL);
}

static char *list_all(struct tstore *t, const char *start_at,
		      unsigned hold_max, uint64_t *hidden)
{
	struct listing_conf c = { .prefix = "d/", .delimiter = "/",
				  .page_size = 100, .start_at = start_at,
				  .hold_max = hold_max };
	struct listing *l = listing_create(&t->base, &c);
	char *s = drain(l, hidden);
	listing_destroy(l);
	return s;
}

static void gcs_pages(void)
{
	/* objects then prefixes, each run sorted, names grow across pages */
	static const struct tpage p[] = {
		{ { "d/a", "d/c", "d/e", "d/b/", "d/d/" } },
		{ { "d/g", "d/f/", "d/h/" } },
	};
	struct tstore t;
	uint64_t hidden;
	tstore(&t, p, NPAGES(p), SORTED);
	char *s = list_all(&t, NULL, 0, &hidden);
	CHECK_STR(s, "d/a,d/b/,d/c,d/d/,d/e,d/f/,d/g,d/h/");
	CHECK_INT(hidden, 0);
	CHECK_INT(t.lists, 2);
	CHECK_INT(t.probes, 0);
	free(s);
}

static void folder_hides_file_across_pages(void)
{
	/* "x" ends a page; "x-1" and "x.txt" sort between "x" and "x/" and
	 * come first on the next page (objects before prefixes). */
	static const struct tpage a[] = {
		{ { "d/a", "d/x" } },
		{ { "d/x-1", "d/x.txt", "d/x/" } },
		{ { "d/y" } },
	};
	struct tstore t;
	uint64_t hidden;
	tstore(&t, a, NPAGES(a), SORTED);
	char *s = list_all(&t, NULL, 0, &hidden);
	CHECK_STR(s, "d/a,d/x-1,d/x.txt,d/x/,d/y");
	CHECK_INT(hidden, 1);
	CHECK_INT(t.probes, 0);
	free(s);

	/* The other order: the folder arrives before the file (prefixes
	 * first on a page), and a file whose folder comes two pages later,
	 * past an empty page. */
	static const struct tpage b[] = {
		{ { "d/p/", "d/p" } },
		{ { "d/q", "d/q-1" } },
		{ { NULL } },
		{ { "d/q/", "d/r" } },
	};
	tstore(&t, b, NPAGES(b), SORTED);
	s = list_all(&t, NULL, 0, &hidden);
	CHECK_STR(s, "d/p/,d/q-1,d/q/,d/r");
	CHECK_INT(hidden, 2);
	free(s);

	/* a file that no folder hides is shown once a later name, or the
	 * end of the listing, decides it */
	static const struct tpage c[] = {
		{ { "d/m" } }, { { "d/m.txt" } }, { { "d/m0" } }, { { "d/z" } },
	};
	tstore(&t, c, NPAGES(c), SORTED);
	struct listing_conf conf = { .prefix = "d/", .delimiter = "/",
				     .page_size = 2 };
	struct listing *l = listing_create(&t.base, &conf);
	struct deadline dl = deadline_in_ms(1000);
	const struct list_entry *e;
	CHECK_INT(listing_next(l, &e, &dl), 1);
	CHECK_STR(t.lists ? e->name : NULL, "d/m");
	CHECK_INT(t.lists, 3);               /* "d/m0" decided it */
	s = drain(l, &hidden);
	CHECK_STR(s, "d/m.txt,d/m0,d/z");
	CHECK_INT(hidden, 0);
	free(s);
	listing_destroy(l);
}

static void repeated_prefixes(void)
{
	static const struct tpage p[] = {
		{ { "d/a/", "d/b/" } },
		{ { "d/b/", "d/c/" } },     /* "d/b/" again */
		{ { "d/c/" } },             /* again, alone */
		{ { "d/c", "d/c/", "d/d/" } },
	};
	struct tstore t;
	uint64_t hidden;
	tstore(&t, p, NPAGES(p), SORTED);
	char *s = list_all(&t, NULL, 0, &hidden);
	/* a store out of order sends "d/c" after "d/c/": the repeated
	 * prefix is dropped but still hides the file before it */
	CHECK_STR(s, "d/a/,d/b/,d/c/,d/d/");
	CHECK_INT(hidden, 1);
	free(s);
}

static void empty_pages(void)
{
	static const struct tpage p[] = {
		{ { NULL } }, { { "d/a" } }, { { NULL } }, { { NULL } },
	};
	struct tstore t;
	tstore(&t, p, NPAGES(p), SORTED);
	char *s = list_all(&t, NULL, 0, NULL);
	CHECK_STR(s, "d/a");
	CHECK_INT(t.lists, 4);
	free(s);

	static const struct tpage none[] = { { { NULL } } };
	tstore(&t, none, 1, SORTED);
	s = list_all(&t, NULL, 0, NULL);
	CHECK_STR(s, "");
	CHECK_INT(t.lists, 1);
	free(s);
}

static void error_mid_listing(void)
{
	static const struct tpage p[] = {
		{ { "d/a", "d/b" } },
		{ { "d/c", "d/d/", "d/e" } },
		{ { "d/f" } },
	};
	struct tstore t;
	tstore(&t, p, NPAGES(p), SORTED);
	t.fail_page = 1;
	struct listing_conf c = { .prefix = "d/", .delimiter = "/",
				  .page_size = 3 };
	struct listing *l = listing_create(&t.base, &c);
	char *s = drain(l, NULL);
	/* "d/b" waits for the next page, which fails after one entry */
	CHECK_STR(s, "d/a,ERR5");
	free(s);
	s = drain(l, NULL);                  /* asks the same page again */
	CHECK_STR(s, "d/b,d/c,d/d/,d/e,d/f");
	CHECK_INT(t.lists, 4);
	free(s);
	listing_destroy(l);
}

static void start_at(void)
{
	/* the store honours start_at but sends a few names before it */
	static const struct tpage p[] = {
		{ { "d/k", "d/ka", "d/m", "d/n/" } },
		{ { "d/o" } },
	};
	struct tstore t;
	tstore(&t, p, NPAGES(p), SORTED | BACKEND_LIST_START_AT);
	char *s = list_all(&t, "d/m", 0, NULL);
	CHECK_STR(s, "d/m,d/n/,d/o");
	CHECK_STR(t.start_at, "d/m");        /* asked of the first page */
	free(s);

	/* a store that cannot start at a name is not asked to */
	tstore(&t, p, NPAGES(p), SORTED);
	s = list_all(&t, "d/ka", 0, NULL);
	CHECK_STR(s, "d/ka,d/m,d/n/,d/o");
	CHECK_STR(t.start_at, "-");
	free(s);
}

static void hold_bound(void)
{
	/* "x" followed by more siblings than may wait behind it */
	static const struct tpage p[] = {
		{ { "d/x", "d/x-1", "d/x-2" } },
		{ { "d/x-3", "d/x-4", "d/x-5" } },
		{ { "d/x/", "d/y" } },
	};
	static const char *const folders[] = { "d/x/", NULL };
	struct tstore t;
	uint64_t hidden;
	tstore(&t, p, NPAGES(p), SORTED);
	t.folders = folders;
	char *s = list_all(&t, NULL, 4, &hidden);
	CHECK_STR(s, "d/x-1,d/x-2,d/x-3,d/x-4,d/x-5,d/x/,d/y");
	CHECK_INT(hidden, 1);
	CHECK_INT(t.probes, 1);              /* asked once, after page 2 */
	free(s);

	/* no folder: the file is shown, in its place */
	static const struct tpage r[] = {
		{ { "d/x", "d/x-1", "d/x-2" } },
		{ { "d/x-3", "d/x-4", "d/x-5" } },
		{ { "d/y" } },
	};
	tstore(&t, r, NPAGES(r), SORTED);
	s = list_all(&t, NULL, 4, &hidden);
	CHECK_STR(s, "d/x,d/x-1,d/x-2,d/x-3,d/x-4,d/x-5,d/y");
	CHECK_INT(hidden, 0);
	CHECK_INT(t.probes, 1);
	free(s);

	/* a failed question is an error, and asked again */
	tstore(&t, r, NPAGES(r), SORTED);
	t.fail_probe = 1;
	struct listing_conf c = { .prefix = "d/", .delimiter = "/",
				  .page_size = 3, .hold_max = 4 };
	struct listing *l = listing_create(&t.base, &c);
	s = drain(l, NULL);
	CHECK_STR(s, "ERR110");
	free(s);
	s = drain(l, NULL);
	CHECK_STR(s, "d/x,d/x-1,d/x-2,d/x-3,d/x-4,d/x-5,d/y");
	CHECK_INT(t.probes, 2);
	CHECK_INT(t.lists, 3);
	free(s);
	listing_destroy(l);

	/* the default bound: nothing asked for a few siblings */
	tstore(&t, p, NPAGES(p), SORTED);
	s = list_all(&t, NULL, 0, &hidden);
	CHECK_INT(t.probes, 0);
	CHECK_INT(hidden, 1);
	free(s);
}

static void unsorted(void)
{
	/* readdir order is kept; a repeated prefix still goes */
	static const struct tpage p[] = {
		{ { "d/z", "d/b/", "d/b/" } },
		{ { "d/a", "d/a-1" } },
		{ { "outside", "d/c/" } },
	};
	struct tstore t;
	uint64_t hidden;
	tstore(&t, p, NPAGES(p), 0);
	char *s = list_all(&t, NULL, 0, &hidden);
	CHECK_STR(s, "d/z,d/b/,d/a,d/a-1,d/c/");
	CHECK_INT(hidden, 0);
	free(s);
}

/* listing_settle(): "name@idx" or "name?idx" (undecided). */
static int note_settled(void *arg, const struct list_entry *e, size_t idx,
			bool undecided)
{
	struct strbuf *sb = arg;
	strbuf_addf(sb, "%s%s%c%zu", sb->len ? "," : "", e->name,
		    undecided ? '?' : '@', idx);
	return 0;
}

static void settle(void)
{
	struct tstore t;
	tstore(&t, NULL, 0, SORTED);
	const struct list_entry held[] = { { .name = "d/w" } };
	const struct list_entry page[] = {
		{ .name = "d/x" }, { .name = "d/y" },
		{ .name = "d/w/", .is_prefix = true },
		{ .name = "d/x/", .is_prefix = true },
	};
	struct strbuf sb = STRBUF_INIT;
	CHECK_INT(listing_settle(&t.base, held, 1, page, 4, false,
				 note_settled, &sb), 0);
	CHECK_STR(sb.buf, "d/w/@3,d/x/@4,d/y?2");
	strbuf_reset(&sb);
	CHECK_INT(listing_settle(&t.base, NULL, 0, page, 2, true,
				 note_settled, &sb), 0);
	CHECK_STR(sb.buf, "d/x@0,d/y@1");
	strbuf_reset(&sb);
	tstore(&t, NULL, 0, 0);              /* unsorted: nothing waits */
	CHECK_INT(listing_settle(&t.base, NULL, 0, page, 3, false,
				 note_settled, &sb), 0);
	CHECK_STR(sb.buf, "d/x@0,d/y@1,d/w/@2");
	strbuf_release(&sb);
}

static void stat_by_listing(void)
{
	static const struct tpage p[] = {
		{ { "f", "f-1", "f.txt" } },
		{ { "f/", "g" } },
	};
	struct tstore t;
	struct deadline dl = deadline_in_ms(1000);
	struct obj_info info;
	tstore(&t, p, NPAGES(p), SORTED);
	CHECK_INT(backend_stat_by_listing(&t.base, "f", &info, &dl), 0);
	CHECK(info.is_dir);                  /* the folder wins */
	static const struct tpage q[] = {
		{ { "f", "f-1", "f.txt" } },
		{ { "f0", "g" } },
	};
	tstore(&t, q, NPAGES(q), SORTED);
	CHECK_INT(backend_stat_by_listing(&t.base, "f", &info, &dl), 0);
	CHECK(!info.is_dir);
	CHECK_INT(info.size, 1);
	tstore(&t, q, NPAGES(q), SORTED);
	CHECK_INT(backend_stat_by_listing(&t.base, "f-", &info, &dl),
		  -ENOENT);
	t.fail_page = 0;
	CHECK_INT(backend_stat_by_listing(&t.base, "f", &info, &dl), -EIO);
	CHECK_INT(backend_stat_by_listing(&t.base, "", &info, &dl), 0);
	CHECK(info.is_dir);
}

int main(void)
{
	log_level = LOG_WARNING;
	gcs_pages();
	folder_hides_file_across_pages();
	repeated_prefixes();
	empty_pages();
	error_mid_listing();
	start_at();
	hold_bound();
	unsorted();
	settle();
	stat_by_listing();
	return check_summary();
}
