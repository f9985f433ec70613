/*
 * Writes down the stack, without a mount: fs/wfile.c over the metadata
 * cache over the router over a writable memory store, with the real
 * version map as the router's facts.  A file appears at commit or not at
 * all; a write not at the end changes nothing; preconditions answer
 * EEXIST and ESTALE; the router remembers what a write did (a commit's
 * generation, a removal's tombstone), and the metadata cache forgets what
 * it knew of the name.
 */
#include "backends/backend.h"
#include "backends/util/fdio.h"
#include "backends/composite/freshness.h"
#include "backends/composite/metacache.h"
#include "backends/composite/router.h"
#include "backends/mem/mem.h"
#include "cache/vmap.h"
#include "fs/wfile.h"
#include "fs/staging.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[512];
static struct deadline dl;

struct stack {
	struct vmap *map;
	struct freshness *fresh;
	struct backend *src;      /* the memory store (owned by the router) */
	struct backend *top;      /* metadata cache over the router */
};

/* Names are immutable: the router answers from its facts alone, so what
 * it answers after a write is what it learnt from the write. */
static void stack_open(struct stack *s, const char *sub, bool writable)
{
	char dir[600], err[256];
	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	CHECK_INT(vmap_open(dir, "mem source", 64 << 20, &s->map, err,
			    sizeof(err)), 0);
	s->fresh = freshness_create(NULL, 0, (struct fresh_setting){
					    .kind = FRESH_IMMUTABLE });
	s->src = writable ? mem_create_writable("source") : mem_create("source");
	struct router_conf rc = { .fresh = s->fresh, .serve_stale_ms = -1,
				  .replica_recheck_ms = 60000 };
	struct backend *router;
	CHECK_INT(router_create(s->src, NULL, 0, vmap_facts(s->map), &rc,
				&router), 0);
	struct metacache_conf mc = { .attr_ttl_ms = 60000, .neg_ttl_ms = 60000,
				     .max_bytes = 1 << 20 };
	s->top = metacache_create(router, &mc);
}

static void stack_close(struct stack *s)
{
	backend_destroy(s->top);
	vmap_close(s->map);
	freshness_destroy(s->fresh);
}

static int write_all(struct backend *b, const char *name,
		     const struct write_pre *pre, const char *text,
		     struct obj_info *info)
{
	struct wfile *f;
	int rc = wfile_open(b, name, pre, &dl, &f);
	if (rc < 0)
		return rc;
	size_t len = strlen(text), half = len / 2;
	CHECK_INT(wfile_write(f, text, half, 0, &dl), (long long)half);
	CHECK_INT(wfile_write(f, text + half, len - half, half, &dl),
		  (long long)(len - half));
	rc = wfile_commit(f, info, &dl);
	wfile_destroy(f);
	return rc;
}

static void read_back(struct backend *b, const char *name, const char *want)
{
	struct bobj *o;
	char buf[256];
	CHECK_INT(backend_open(b, name, &o, &dl), 0);
	if (!o)
		return;
	CHECK_INT(o->info.size, strlen(want));
	CHECK_INT(bobj_read(o, buf, sizeof(buf), 0, &dl), strlen(want));
	CHECK(memcmp(buf, want, strlen(want)) == 0);
	bobj_close(o);
}

static void create_appears_at_commit(void)
{
	struct stack s;
	struct obj_info info, st;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct wfile *f;

	stack_open(&s, "create", true);
	CHECK(backend_has(s.top, BACKEND_WRITE));
	/* the cache remembers the name is absent */
	CHECK_INT(backend_stat(s.top, "t/_delta_log/1.json", &st, &dl), -ENOENT);
	CHECK_INT(wfile_open(s.top, "t/_delta_log/1.json", &absent, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "abc", 3, 0, &dl), 3);
	CHECK_INT(wfile_write(f, "def", 3, 3, &dl), 3);
	wfile_info(f, &info);
	CHECK_INT(info.size, 6);
	CHECK_INT(mem_generation(s.src, "t/_delta_log/1.json"), -ENOENT);
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	CHECK(wfile_ended(f));
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);      /* answers again */
	CHECK_INT(wfile_write(f, "g", 1, 6, &dl), -EBADF);
	wfile_destroy(f);
	CHECK_INT(info.size, 6);
	CHECK_INT(info.generation,
		  mem_generation(s.src, "t/_delta_log/1.json"));
	/* the cache forgot its "absent"; the router knew the generation */
	CHECK_INT(backend_stat(s.top, "t/_delta_log/1.json", &st, &dl), 0);
	CHECK_INT(st.generation, info.generation);
	read_back(s.top, "t/_delta_log/1.json", "abcdef");
	/* a second exclusive create loses, at commit, and changes nothing */
	CHECK_INT(write_all(s.top, "t/_delta_log/1.json", &absent, "other",
			    NULL), -EEXIST);
	read_back(s.top, "t/_delta_log/1.json", "abcdef");
	/* not at the end, with no staging folder: refused, and the file is
	 * broken, so nothing appears cut short */
	CHECK_INT(wfile_open(s.top, "t/refused", &absent, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "abc", 3, 0, &dl), 3);
	CHECK_INT(wfile_write(f, "x", 1, 1, &dl), -ENOTSUP);
	CHECK_INT(wfile_commit(f, NULL, &dl), -ENOTSUP);
	wfile_destroy(f);
	CHECK_INT(mem_generation(s.src, "t/refused"), -ENOENT);
	/* an upload dropped before commit leaves nothing */
	CHECK_INT(wfile_open(s.top, "t/dropped", &absent, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "zz", 2, 0, &dl), 2);
	wfile_destroy(f);
	CHECK_INT(mem_generation(s.src, "t/dropped"), -ENOENT);
	stack_close(&s);
}

static void replace_and_remove_under_preconditions(void)
{
	struct stack s;
	struct obj_info info, st;

	stack_open(&s, "replace", true);
	int64_t g1 = mem_put(s.src, "p/part-0.parquet", "old", 3, NULL);
	CHECK_INT(backend_stat(s.top, "p/part-0.parquet", &st, &dl), 0);
	CHECK_INT(st.size, 3);
	/* replaced elsewhere meanwhile: the generation seen is stale */
	struct write_pre seen = { .kind = WRITE_PRE_GENERATION,
				  .generation = (uint64_t)g1 };
	int64_t g2 = mem_put(s.src, "p/part-0.parquet", "theirs", 6, NULL);
	CHECK_INT(write_all(s.top, "p/part-0.parquet", &seen, "mine", NULL),
		  -ESTALE);
	CHECK_INT(mem_generation(s.src, "p/part-0.parquet"), g2);
	/* against the current generation it goes through, and the stack
	 * shows it at once (size cached before, fact learnt from the write) */
	seen.generation = (uint64_t)g2;
	CHECK_INT(write_all(s.top, "p/part-0.parquet", &seen, "mine!", &info), 0);
	CHECK_INT(backend_stat(s.top, "p/part-0.parquet", &st, &dl), 0);
	CHECK_INT(st.size, 5);
	CHECK_INT(st.generation, info.generation);
	read_back(s.top, "p/part-0.parquet", "mine!");
	/* the commit's answer is what the map holds: read-your-writes with
	 * no question to the source (the name is immutable) */
	mem_delete(s.src, "p/part-0.parquet");
	mem_put(s.src, "p/part-0.parquet", "mine!", 5, NULL);
	CHECK_INT(backend_stat(s.top, "p/part-0.parquet", &st, &dl), 0);
	CHECK_INT(st.generation, info.generation);
	/* a removal with a stale generation changes nothing */
	seen.generation = (uint64_t)g2;
	CHECK_INT(backend_remove(s.top, "p/part-0.parquet", &seen, &dl), -ESTALE);
	CHECK(mem_generation(s.src, "p/part-0.parquet") > 0);
	seen.generation = (uint64_t)mem_generation(s.src, "p/part-0.parquet");
	CHECK_INT(backend_remove(s.top, "p/part-0.parquet", &seen, &dl), 0);
	CHECK_INT(mem_generation(s.src, "p/part-0.parquet"), -ENOENT);
	/* the map says it is gone (a tombstone, confirmed now) */
	struct facts facts = vmap_facts(s.map);
	struct source_fact fact;
	CHECK_INT(facts.ops->get_source(facts.ctx, "p/part-0.parquet", &fact), 0);
	CHECK(fact.tombstone && fact.confirmed_ns > 0);
	CHECK_INT(backend_stat(s.top, "p/part-0.parquet", &st, &dl), -ENOENT);
	stack_close(&s);
}

/* A shell's `cmd > f`: the empty file is committed when the shell closes
 * its first descriptor, then cmd writes through the dup: the writes start
 * again over the empty generation (and only over it). */
static void writes_after_an_empty_commit_start_again(void)
{
	struct stack s;
	struct obj_info empty, info;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct wfile *f;

	stack_open(&s, "restart", true);
	CHECK_INT(wfile_open(s.top, "out.txt", &absent, &dl, &f), 0);
	CHECK_INT(wfile_commit(f, &empty, &dl), 0);
	CHECK_INT(empty.size, 0);
	CHECK_INT(wfile_write(f, "x", 1, 1, &dl), -EBADF);
	CHECK_INT(wfile_write(f, "hello\n", 6, 0, &dl), 6);
	CHECK(!wfile_ended(f));
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	CHECK_INT(info.size, 6);
	CHECK(info.generation > empty.generation);
	read_back(s.top, "out.txt", "hello\n");
	/* not after bytes: those are gone to the store */
	CHECK_INT(wfile_write(f, "again", 5, 0, &dl), -EBADF);
	wfile_destroy(f);
	/* and not over someone else's change since the empty commit */
	CHECK_INT(wfile_open(s.top, "out2.txt", &absent, &dl, &f), 0);
	CHECK_INT(wfile_commit(f, &empty, &dl), 0);
	mem_put(s.src, "out2.txt", "theirs", 6, NULL);
	CHECK_INT(wfile_write(f, "mine", 4, 0, &dl), 4);
	CHECK_INT(wfile_commit(f, &info, &dl), -ESTALE);
	wfile_destroy(f);
	CHECK_INT(mem_generation(s.src, "out2.txt") > (int64_t)empty.generation, 1);
	stack_close(&s);
}

static void read_only_store_refuses(void)
{
	struct stack s;
	struct wfile *f;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct write_pre none = { .kind = WRITE_PRE_NONE };

	stack_open(&s, "ro", false);
	CHECK(!backend_has(s.top, BACKEND_WRITE));
	CHECK_INT(wfile_open(s.top, "x", &absent, &dl, &f), -EROFS);
	mem_put(s.src, "x", "x", 1, NULL);
	CHECK_INT(backend_remove(s.top, "x", &none, &dl), -EROFS);
	CHECK_INT(mem_generation(s.src, "x") > 0, 1);
	stack_close(&s);
}

/* Out of order, into an existing file, over the limit, and after a stop:
 * staged (fs/staging.h). */
static void staged_writes(void)
{
	struct stack s;
	struct staging *stg;
	struct obj_info info;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct wfile *f;
	struct bobj *o;
	char dir[600], err[256], buf[16];

	stack_open(&s, "staged", true);
	snprintf(dir, sizeof(dir), "%s/staging", tmp);
	CHECK_INT(staging_open(dir, 16, "mem source", &stg, err, sizeof(err)), 0);
	struct wfile_how how = { .staging = stg };
	/* a seek back while the bytes are in memory: staged, no error */
	CHECK_INT(wfile_open_with(s.top, "a", &absent, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "hello world", 11, 0, &dl), 11);
	CHECK_INT(wfile_write(f, "W", 1, 6, &dl), 1);
	CHECK_INT(wfile_read(f, buf, sizeof(buf), 0, &dl), 11);
	CHECK(memcmp(buf, "hello World", 11) == 0);
	CHECK_INT(mem_generation(s.src, "a"), -ENOENT);
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	wfile_destroy(f);
	read_back(s.top, "a", "hello World");
	/* an existing file: appended to, under its generation */
	CHECK_INT(backend_open(s.top, "a", &o, &dl), 0);
	struct write_pre seen = { .kind = WRITE_PRE_GENERATION,
				  .generation = o->info.generation };
	how = (struct wfile_how){ .staging = stg, .base = o, .append = true };
	CHECK_INT(wfile_open_with(s.top, "a", &seen, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "!", 1, 0, &dl), 1);
	/* past staging_size (16): ENOSPC, and the file is broken */
	CHECK_INT(wfile_write(f, "0123456789", 10, 12, &dl), -ENOSPC);
	CHECK_INT(wfile_commit(f, NULL, &dl), -ENOSPC);
	wfile_destroy(f);
	read_back(s.top, "a", "hello World");
	CHECK_INT(backend_open(s.top, "a", &o, &dl), 0);
	how = (struct wfile_how){ .staging = stg, .base = o, .append = true };
	CHECK_INT(wfile_open_with(s.top, "a", &seen, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "!", 1, 0, &dl), 1);
	CHECK_INT(wfile_truncate(f, 5, &dl), 0);
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	wfile_destroy(f);
	read_back(s.top, "a", "hello");
	/* a staged file left open by a stopped mount: reported at start */
	struct staged *sf;
	CHECK_INT(staged_create(stg, "b", &absent, &sf), 0);
	CHECK_INT(staged_write(sf, "left", 4, 0), 0);
	struct staging_stats st;
	staging_get_stats(stg, &st);
	CHECK_INT(st.files, 1);
	CHECK_INT(st.bytes, 4);
	struct staging *again;
	CHECK_INT(staging_open(dir, 16, "mem source", &again, err, sizeof(err)), 0);
	staging_recover(again, s.top, 10000);  /* held: left alone */
	staging_get_stats(again, &st);
	CHECK_INT(st.reported, 0);
	staged_destroy(sf);
	staging_destroy(again);
	staging_destroy(stg);
	stack_close(&s);
}

/* What a wfile_written_fn was told, the bytes of its fd included. */
struct told {
	int calls;
	int fd;                   /* the last call's: -1 or >= 0 */
	char bytes[64];
	struct obj_info info;
};

static void note_written(void *arg, const char *name, int fd,
			 const struct obj_info *info)
{
	struct told *t = arg;
	(void)name;
	t->calls++;
	t->fd = fd;
	t->info = *info;
	memset(t->bytes, 0, sizeof(t->bytes));
	if (fd >= 0 && info->size < sizeof(t->bytes))
		CHECK_INT(pread(fd, t->bytes, info->size, 0),
			  (long long)info->size);
}

/* Whoever asked is told of each commit with its bytes: a streamed file
 * keeps a copy in the staging folder, counted and given back; with no
 * room for it (or no folder) the commit still succeeds, told fd -1. */
static void commits_told_with_their_bytes(void)
{
	struct stack s;
	struct staging *stg;
	struct staging_stats st;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct told t = { 0 };
	struct obj_info info;
	struct wfile *f;
	struct bobj *o;
	char dir[600], err[256];

	stack_open(&s, "told", true);
	snprintf(dir, sizeof(dir), "%s/staging-told", tmp);
	CHECK_INT(staging_open(dir, 16, "mem source", &stg, err, sizeof(err)), 0);
	struct wfile_how how = { .staging = stg, .written = note_written,
				 .written_arg = &t };
	CHECK_INT(wfile_open_with(s.top, "s", &absent, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "hello ", 6, 0, &dl), 6);
	CHECK_INT(wfile_write(f, "world", 5, 6, &dl), 5);
	staging_get_stats(stg, &st);
	CHECK_INT(st.bytes, 11);             /* the copy counts */
	CHECK_INT(t.calls, 0);               /* never before the commit */
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	CHECK_INT(t.calls, 1);
	CHECK(t.fd >= 0);
	CHECK_STR(t.bytes, "hello world");
	CHECK_INT(t.info.generation, mem_generation(s.src, "s"));
	staging_get_stats(stg, &st);
	CHECK_INT(st.bytes, 0);              /* given back */
	wfile_destroy(f);
	/* opened to write, never changed: no new generation, nobody told */
	CHECK_INT(backend_open(s.top, "s", &o, &dl), 0);
	struct write_pre seen = { .kind = WRITE_PRE_GENERATION,
				  .generation = o->info.generation };
	how.base = o;
	CHECK_INT(wfile_open_with(s.top, "s", &seen, &how, &dl, &f), 0);
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);
	wfile_destroy(f);
	CHECK_INT(t.calls, 1);
	/* changed: staged, told with the staged bytes */
	CHECK_INT(backend_open(s.top, "s", &o, &dl), 0);
	how.base = o;
	how.append = true;
	CHECK_INT(wfile_open_with(s.top, "s", &seen, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "!", 1, 0, &dl), 1);
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);
	wfile_destroy(f);
	CHECK_INT(t.calls, 2);
	CHECK_STR(t.bytes, "hello world!");
	/* no room for the copy (16 bytes): the writes and the commit succeed */
	how = (struct wfile_how){ .staging = stg, .written = note_written,
				  .written_arg = &t };
	CHECK_INT(wfile_open_with(s.top, "big", &absent, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "0123456789", 10, 0, &dl), 10);
	CHECK_INT(wfile_write(f, "0123456789", 10, 10, &dl), 10);
	CHECK_INT(wfile_commit(f, &info, &dl), 0);
	wfile_destroy(f);
	CHECK_INT(t.calls, 3);
	CHECK_INT(t.fd, -1);
	CHECK_INT(info.size, 20);
	staging_get_stats(stg, &st);
	CHECK_INT(st.bytes, 0);
	/* no staging folder: no copy either */
	how.staging = NULL;
	CHECK_INT(wfile_open_with(s.top, "nostg", &absent, &how, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "x", 1, 0, &dl), 1);
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);
	wfile_destroy(f);
	CHECK_INT(t.calls, 4);
	CHECK_INT(t.fd, -1);
	staging_destroy(stg);
	stack_close(&s);
}

/* A file broken before its commit (its write lease lost) never lands. */
static void broken_never_lands(void)
{
	struct stack s;
	struct write_pre absent = { .kind = WRITE_PRE_ABSENT };
	struct wfile *f;

	stack_open(&s, "broken", true);
	CHECK_INT(wfile_open(s.top, "t/locked", &absent, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "abc", 3, 0, &dl), 3);
	wfile_break(f, -ENOLCK);
	CHECK_INT(wfile_write(f, "def", 3, 3, &dl), -ENOLCK);
	CHECK_INT(wfile_commit(f, NULL, &dl), -ENOLCK);
	wfile_destroy(f);
	CHECK_INT(mem_generation(s.src, "t/locked"), -ENOENT);
	/* after a good commit, a break changes nothing */
	CHECK_INT(wfile_open(s.top, "t/kept", &absent, &dl, &f), 0);
	CHECK_INT(wfile_write(f, "abc", 3, 0, &dl), 3);
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);
	wfile_break(f, -ENOLCK);
	CHECK_INT(wfile_commit(f, NULL, &dl), 0);
	wfile_destroy(f);
	read_back(s.top, "t/kept", "abc");
	stack_close(&s);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/wfile-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	dl = deadline_in_ms(10000);
	create_appears_at_commit();
	replace_and_remove_under_preconditions();
	writes_after_an_empty_commit_start_again();
	read_only_store_refuses();
	staged_writes();
	commits_told_with_their_bytes();
	broken_never_lands();
	CHECK_INT(remove_tree(tmp), 0);
	return check_summary();
}
