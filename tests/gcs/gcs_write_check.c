/*
 * gcs_write_check.c - the GCS store's writes (backend.h: writers and
 * remove), checked against the GCS test server.  Run by
 * tests/gcs/test_gcs_writes.py, which starts the server, writes the
 * config and sets the server's faults.
 *
 *   gcs_write_check CONFIG CHECK [NAME SIZE]
 *
 * CONFIG is a hylake config whose [source] is the server; the store is
 * opened as a mount opens its source (config_load, stack_open_store), but
 * built to write.  Every object written is read back through the store
 * (open, read) and compared byte for byte, and its generation, size and
 * crc32c are compared with what the commit answered.
 *
 *   sizes          0, 1, one chunk, one chunk + 1, 2.5 chunks; an overwrite;
 *                  a write and a remove through a tracing wrapper
 *   preconditions  put-if-absent once, then EEXIST; a stale generation
 *                  ESTALE, leaving the object as it was; two writers racing
 *                  for one name, small and large
 *   abort          no object after an abort, before and after a chunk went
 *   remove         a wrong generation ESTALE, the right one removes, then
 *                  ENOENT
 *   copy           a server-side copy of the generation seen: put-if-absent
 *                  once, then EEXIST; an overwrite of the generation seen,
 *                  then ESTALE; a source that is another generation, or
 *                  none, ENOENT; through a tracing wrapper
 *   tail           open_tail of objects of 0, 1, 100 bytes, one tail - 1,
 *                  + 0, + 1, and 3 MiB: the handle's info is what open
 *                  gives, its tail the object's last min(N, size) bytes,
 *                  and reads go on from it; a missing name ENOENT
 *   readonly       a store not built to write answers EROFS
 *   put NAME SIZE  one upload; prints "generation=G size=S crc32c=C"
 *   fail NAME SIZE one upload that must fail; prints "error=ENAME" and
 *                  checks that no object is left
 *   tailone NAME N one open_tail of the last N bytes of NAME (put there by
 *                  the test); prints "generation=G metageneration=M
 *                  size=S mtime=T crc32c=C tail=LEN tailcrc=X", or
 *                  "error=ENAME"
 *   cp NAME SIZE   one upload, then a copy of it to NAME.copy under
 *                  put-if-absent; prints "generation=G size=S crc32c=C"
 *                  of the copy, or "error=ENAME"
 *
 * Exit status 0 when every check passed.
 */
#include "backends/backend.h"
#include "backends/composite/trace.h"
#include "backends/gcs/gcs.h"
#include "backends/util/crc32c.h"
#include "backends/util/log.h"
#include "backends/util/parse.h"
#include "mount/config.h"
#include "mount/stack.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((uint64_t)GCS_UPLOAD_CHUNK)
#define STEP 100003               /* bytes per write: odd, so writes
                                     straddle the chunk boundaries */
#define TIMEOUT_MS 60000

static const char *errname(int rc)
{
	const char *n = rc ? strerrorname_np(-rc) : "0";
	return n ? n : "?";
}

#define CHECK_RC(got, want) do { int g_ = (got), w_ = (want); \
	check_count++; if (g_ != w_) { check_failures++; \
	fprintf(stderr, "%s:%d: %s = %s, want %s\n", __FILE__, __LINE__, \
		#got, errname(g_), errname(w_)); } } while (0)

/* Byte `off` of the object written with seed. */
static unsigned char pattern_byte(uint64_t off, unsigned seed)
{
	return (unsigned char)(off * 131 + (off >> 11) + seed * 7);
}

static void pattern(unsigned char *buf, uint64_t off, size_t len,
		    unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(off + i, seed);
}

static uint32_t pattern_crc(uint64_t size, unsigned seed)
{
	unsigned char *buf = xmalloc(STEP);
	uint32_t crc = 0;
	for (uint64_t off = 0; off < size; off += STEP) {
		size_t n = size - off < STEP ? (size_t)(size - off) : STEP;
		pattern(buf, off, n, seed);
		crc = crc32c_update(crc, buf, n);
	}
	free(buf);
	return crc;
}

/* Open a writer and write size bytes of the pattern (no commit). */
static int start(struct backend *b, const char *name, struct write_pre pre,
		 uint64_t size, unsigned seed, struct bwriter **w)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	unsigned char *buf = xmalloc(STEP);
	int rc = backend_writer_open(b, name, &pre, w, &dl);

	for (uint64_t off = 0; rc == 0 && off < size; off += STEP) {
		size_t n = size - off < STEP ? (size_t)(size - off) : STEP;
		pattern(buf, off, n, seed);
		rc = bwriter_write(*w, buf, n, &dl);
	}
	if (rc == 0)
		CHECK_INT((*w)->written, size);
	free(buf);
	return rc;
}

static int finish(struct bwriter *w, int rc, struct obj_info *out)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info info;
	/* a failed write leaves the writer answering the same error */
	int crc = bwriter_commit(w, out ? out : &info, &dl);
	if (rc)
		CHECK_RC(crc, rc);
	return crc;
}

/* Write size bytes of the pattern to name under pre and commit. */
static int upload(struct backend *b, const char *name, struct write_pre pre,
		  uint64_t size, unsigned seed, struct obj_info *out)
{
	struct bwriter *w = NULL;
	int rc = start(b, name, pre, size, seed, &w);
	if (!w)
		return rc;
	return finish(w, rc, out);
}

/* name holds exactly the pattern (size, seed) at info's generation. */
static void verify(struct backend *b, const char *name, uint64_t size,
		   unsigned seed, const struct obj_info *info)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	unsigned char *got = xmalloc(STEP), *want = xmalloc(STEP);
	struct bobj *o;
	int rc = backend_open(b, name, &o, &dl);

	CHECK_INT(info->size, size);
	CHECK(info->generation > 0);
	CHECK(info->has_crc32c && info->crc32c == pattern_crc(size, seed));
	CHECK_RC(rc, 0);
	if (rc < 0)
		goto out_free;
	CHECK_INT(o->info.generation, info->generation);
	CHECK_INT(o->info.size, size);
	CHECK(o->info.has_crc32c && o->info.crc32c == info->crc32c);
	for (uint64_t off = 0; off < size; off += STEP) {
		size_t n = size - off < STEP ? (size_t)(size - off) : STEP;
		ssize_t r = bobj_read(o, got, n, off, &dl);
		pattern(want, off, n, seed);
		CHECK_INT(r, (ssize_t)n);
		if (r != (ssize_t)n || memcmp(got, want, n) != 0) {
			fprintf(stderr, "%s: bytes at %" PRIu64 " differ\n", name,
				off);
			check_failures++;
			break;
		}
	}
	bobj_close(o);
out_free:
	free(got);
	free(want);
}

static void check_absent(struct backend *b, const char *name)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct bobj *o = NULL;
	CHECK_RC(backend_open(b, name, &o, &dl), -ENOENT);
	if (o)
		bobj_close(o);
}

static const struct write_pre none = { .kind = WRITE_PRE_NONE };
static const struct write_pre absent = { .kind = WRITE_PRE_ABSENT };

static struct write_pre at(uint64_t generation)
{
	struct write_pre p = { .kind = WRITE_PRE_GENERATION,
			       .generation = generation };
	return p;
}

static void check_sizes(struct backend *b)
{
	const uint64_t sizes[] = { 0, 1, CHUNK, CHUNK + 1, CHUNK * 5 / 2 };
	struct obj_info info, again;
	char name[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "sizes/%" PRIu64, sizes[i]);
		CHECK_RC(upload(b, name, absent, sizes[i], (unsigned)i, &info), 0);
		verify(b, name, sizes[i], (unsigned)i, &info);
	}
	/* an overwrite without a precondition: a new generation */
	CHECK_RC(upload(b, "sizes/1", none, 3, 9, &again), 0);
	CHECK(again.generation > info.generation);
	verify(b, "sizes/1", 3, 9, &again);
}

/* A store that wraps another (trace, as log_level=trace builds it)
 * passes writes through.  Takes ownership of b. */
static void check_traced(struct backend *b)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info info;

	b = trace_create(b);
	CHECK(backend_has(b, BACKEND_WRITE));
	CHECK_RC(upload(b, "traced", absent, CHUNK + 1, 3, &info), 0);
	verify(b, "traced", CHUNK + 1, 3, &info);
	struct write_pre pre = at(info.generation);
	CHECK_RC(backend_remove(b, "traced", &pre, &dl), 0);
	check_absent(b, "traced");
	backend_destroy(b);
}

static void check_preconditions(struct backend *b)
{
	struct obj_info first, second, info;
	struct bwriter *w1 = NULL, *w2 = NULL;

	/* put-if-absent: once */
	CHECK_RC(upload(b, "pre/a", absent, 10, 1, &first), 0);
	CHECK_RC(upload(b, "pre/a", absent, 20, 2, &info), -EEXIST);
	CHECK_RC(upload(b, "pre/a", absent, CHUNK * 5 / 2, 2, &info), -EEXIST);
	verify(b, "pre/a", 10, 1, &first);
	/* an overwrite of the generation seen, then of a stale one */
	CHECK_RC(upload(b, "pre/a", at(first.generation), 30, 3, &second), 0);
	CHECK(second.generation > first.generation);
	CHECK_RC(upload(b, "pre/a", at(first.generation), 40, 4, &info),
		 -ESTALE);
	CHECK_RC(upload(b, "pre/a", at(first.generation), CHUNK + 5, 4, &info),
		 -ESTALE);
	verify(b, "pre/a", 30, 3, &second);
	/* a generation of a name that does not exist */
	CHECK_RC(upload(b, "pre/none", at(second.generation), 5, 5, &info),
		 -ESTALE);
	check_absent(b, "pre/none");
	/* a malformed precondition is refused before anything is sent */
	CHECK_RC(upload(b, "pre/none", at(0), 5, 5, &info), -EINVAL);

	/* two writers race for one new name: the first commit wins */
	CHECK_RC(start(b, "pre/race", absent, 100, 6, &w1), 0);
	CHECK_RC(start(b, "pre/race", absent, 200, 7, &w2), 0);
	CHECK_RC(finish(w1, 0, &first), 0);
	CHECK_RC(finish(w2, 0, &info), -EEXIST);
	verify(b, "pre/race", 100, 6, &first);
	/* ... when both have sent chunks already, the last PUT decides */
	CHECK_RC(start(b, "pre/race-big", absent, CHUNK * 5 / 2, 8, &w1), 0);
	CHECK_RC(start(b, "pre/race-big", absent, CHUNK * 5 / 2, 9, &w2), 0);
	CHECK_RC(finish(w2, 0, &first), 0);
	CHECK_RC(finish(w1, 0, &info), -EEXIST);
	verify(b, "pre/race-big", CHUNK * 5 / 2, 9, &first);
}

static void check_abort(struct backend *b)
{
	struct bwriter *w = NULL;
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);

	CHECK_RC(backend_writer_open(b, "abort/empty", &absent, &w, &dl), 0);
	bwriter_abort(w);
	check_absent(b, "abort/empty");
	CHECK_RC(start(b, "abort/small", absent, 1, 1, &w), 0);
	bwriter_abort(w);
	check_absent(b, "abort/small");
	/* a chunk went out: the session exists, and is cancelled */
	CHECK_RC(start(b, "abort/big", absent, CHUNK * 3 / 2, 2, &w), 0);
	bwriter_abort(w);
	check_absent(b, "abort/big");
}

static void check_remove(struct backend *b)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info info;
	struct write_pre wrong;

	CHECK_RC(upload(b, "rm/a", absent, 7, 1, &info), 0);
	wrong = at(info.generation + 1);
	CHECK_RC(backend_remove(b, "rm/a", &wrong, &dl), -ESTALE);
	verify(b, "rm/a", 7, 1, &info);
	CHECK_RC(backend_remove(b, "rm/a", &absent, &dl), -EINVAL);
	wrong = at(0);
	CHECK_RC(backend_remove(b, "rm/a", &wrong, &dl), -EINVAL);
	struct write_pre right = at(info.generation);
	CHECK_RC(backend_remove(b, "rm/a", &right, &dl), 0);
	check_absent(b, "rm/a");
	CHECK_RC(backend_remove(b, "rm/a", &right, &dl), -ENOENT);
	CHECK_RC(backend_remove(b, "rm/a", &none, &dl), -ENOENT);
	/* without a precondition */
	CHECK_RC(upload(b, "rm/b", absent, 7, 1, &info), 0);
	CHECK_RC(backend_remove(b, "rm/b", &none, &dl), 0);
	check_absent(b, "rm/b");
}

/* Takes ownership of b (it ends wrapped in a tracing store). */
static void check_copy(struct backend *b)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info src, first, second, info;
	struct write_pre pre = absent;

	CHECK_RC(upload(b, "cp/src", absent, CHUNK + 1, 1, &src), 0);
	CHECK_RC(backend_copy(b, "cp/src", src.generation, "cp/dst", &pre,
			      &first, &dl), 0);
	CHECK(first.generation > src.generation);
	verify(b, "cp/dst", CHUNK + 1, 1, &first);
	/* put-if-absent: once */
	CHECK_RC(backend_copy(b, "cp/src", src.generation, "cp/dst", &pre,
			      &info, &dl), -EEXIST);
	verify(b, "cp/dst", CHUNK + 1, 1, &first);
	/* over the generation seen, then over a stale one */
	pre = at(first.generation);
	CHECK_RC(backend_copy(b, "cp/src", src.generation, "cp/dst", &pre,
			      &second, &dl), 0);
	CHECK(second.generation > first.generation);
	CHECK_RC(backend_copy(b, "cp/src", src.generation, "cp/dst", &pre,
			      &info, &dl), -ESTALE);
	verify(b, "cp/dst", CHUNK + 1, 1, &second);
	/* the source is another generation now, or none */
	pre = absent;
	CHECK_RC(backend_copy(b, "cp/src", src.generation + 1, "cp/other",
			      &pre, &info, &dl), -ENOENT);
	CHECK_RC(backend_copy(b, "cp/none", src.generation, "cp/other",
			      &pre, &info, &dl), -ENOENT);
	check_absent(b, "cp/other");
	/* malformed: refused before anything is sent */
	CHECK_RC(backend_copy(b, "cp/src", 0, "cp/other", &pre, &info, &dl),
		 -EINVAL);
	/* an empty object, through a tracing wrapper */
	CHECK_RC(upload(b, "cp/empty", absent, 0, 2, &src), 0);
	b = trace_create(b);
	CHECK_RC(backend_copy(b, "cp/empty", src.generation, "cp/empty2", &pre,
			      &info, &dl), 0);
	verify(b, "cp/empty2", 0, 2, &info);
	backend_destroy(b);
}

#define TAIL (64 << 10)

/* open_tail(TAIL) of the pattern (size, seed) just written as info. */
static void tail_is_open_and_read(struct backend *b, const char *name,
				  uint64_t size, unsigned seed,
				  const struct obj_info *info)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct bobj *plain, *o;
	size_t want_len = size < TAIL ? (size_t)size : TAIL;
	unsigned char *want = xmalloc(TAIL), *got = xmalloc(TAIL);

	CHECK_RC(backend_open(b, name, &plain, &dl), 0);
	CHECK_RC(backend_open_tail(b, name, TAIL, &o, &dl), 0);
	/* the same version, told the same: no field of it differs */
	CHECK(memcmp(&o->info, &plain->info, sizeof(o->info)) == 0);
	CHECK_INT(o->info.generation, info->generation);
	CHECK(o->info.mtime_ns > 0);
	pattern(want, size - want_len, want_len, seed);
	CHECK_INT(o->tail_len, want_len);
	CHECK(o->tail_len == want_len &&
	      (!want_len || memcmp(o->tail, want, want_len) == 0));
	/* the handle is pinned as open's: reads go on from it */
	if (size) {
		size_t n = size < 100 ? (size_t)size : 100;
		CHECK_INT(bobj_read(o, got, n, 0, &dl), (ssize_t)n);
		pattern(want, 0, n, seed);
		CHECK(memcmp(got, want, n) == 0);
	}
	bobj_close(o);
	bobj_close(plain);
	free(want);
	free(got);
}

static void check_tail(struct backend *b)
{
	const uint64_t sizes[] = { 0, 1, 100, TAIL - 1, TAIL, TAIL + 1,
				   3 << 20 };
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info info;
	struct bobj *o = NULL;
	char name[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "tail/%" PRIu64, sizes[i]);
		CHECK_RC(upload(b, name, absent, sizes[i], (unsigned)i, &info), 0);
		tail_is_open_and_read(b, name, sizes[i], (unsigned)i, &info);
	}
	CHECK_RC(backend_open_tail(b, "tail/none", TAIL, &o, &dl), -ENOENT);
	if (o)
		bobj_close(o);
}

static void one_tail(struct backend *b, const char *name, size_t n)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct bobj *o;
	int rc = backend_open_tail(b, name, n, &o, &dl);

	if (rc < 0) {
		printf("error=%s\n", errname(rc));
		return;
	}
	printf("generation=%" PRIu64 " metageneration=%" PRIu64 " size=%"
	       PRIu64 " mtime=%" PRId64 " crc32c=%08x tail=%zu tailcrc=%08x\n",
	       o->info.generation, o->info.metageneration, o->info.size,
	       o->info.mtime_ns, o->info.crc32c, o->tail_len,
	       crc32c_update(0, o->tail, o->tail_len));
	bobj_close(o);
}

static int open_store(const char *config, bool writable, struct backend **b)
{
	struct hy_config cfg;
	char err[512];
	int rc = config_load(config, &cfg, stderr);

	if (rc < 0)
		return rc;
	config_finish(&cfg);
	cfg.source.writable = writable;
	rc = stack_open_store(&cfg.source, cfg.mount.op_timeout_ms, b, err,
			      sizeof(err));
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", config, err);
	config_release(&cfg);
	return rc;
}

static void check_readonly(const char *config)
{
	struct backend *b = NULL;
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct bwriter *w = NULL;

	CHECK_RC(open_store(config, false, &b), 0);
	if (!b)
		return;
	CHECK(!backend_has(b, BACKEND_WRITE));
	CHECK_RC(backend_writer_open(b, "ro", &absent, &w, &dl), -EROFS);
	CHECK_RC(backend_remove(b, "ro", &none, &dl), -EROFS);
	struct obj_info info;
	CHECK_RC(backend_copy(b, "ro", 1, "ro2", &absent, &info, &dl), -EROFS);
	backend_destroy(b);
}

static void one_upload(struct backend *b, const char *name, uint64_t size,
		       bool must_fail)
{
	struct obj_info info;
	int rc = upload(b, name, none, size, 42, &info);

	if (must_fail) {
		printf("error=%s\n", errname(rc));
		CHECK(rc < 0);
		check_absent(b, name);
		return;
	}
	CHECK_RC(rc, 0);
	if (rc == 0) {
		verify(b, name, size, 42, &info);
		printf("generation=%" PRIu64 " size=%" PRIu64 " crc32c=%08x\n",
		       info.generation, info.size, info.crc32c);
	}
}

static void one_copy(struct backend *b, const char *name, uint64_t size)
{
	struct deadline dl = deadline_in_ms(TIMEOUT_MS);
	struct obj_info src, info;
	char to[512];

	CHECK_RC(upload(b, name, none, size, 42, &src), 0);
	snprintf(to, sizeof(to), "%s.copy", name);
	int rc = backend_copy(b, name, src.generation, to, &absent, &info, &dl);
	if (rc < 0) {
		printf("error=%s\n", errname(rc));
		return;
	}
	verify(b, to, size, 42, &info);
	printf("generation=%" PRIu64 " size=%" PRIu64 " crc32c=%08x\n",
	       info.generation, info.size, info.crc32c);
}

int main(int argc, char **argv)
{
	struct backend *b = NULL;
	uint64_t size = 0;

	if (argc < 3 || ((!strcmp(argv[2], "put") || !strcmp(argv[2], "fail") ||
			  !strcmp(argv[2], "cp") ||
			  !strcmp(argv[2], "tailone")) &&
			 (argc != 5 || !parse_u64_str(argv[4], &size)))) {
		fprintf(stderr, "usage: gcs_write_check CONFIG sizes|"
			"preconditions|abort|remove|copy|tail|readonly|put NAME "
			"SIZE|fail NAME SIZE|cp NAME SIZE|tailone NAME N\n");
		return 2;
	}
	const char *check = argv[2];
	if (!strcmp(check, "readonly")) {
		check_readonly(argv[1]);
		return check_summary();
	}
	int rc = open_store(argv[1], true, &b);
	if (rc < 0)
		return 2;
	CHECK(backend_has(b, BACKEND_WRITE));
	if (!strcmp(check, "sizes")) {
		check_sizes(b);
		check_traced(b);   /* takes b */
		b = NULL;
	}
	else if (!strcmp(check, "preconditions"))
		check_preconditions(b);
	else if (!strcmp(check, "abort"))
		check_abort(b);
	else if (!strcmp(check, "remove"))
		check_remove(b);
	else if (!strcmp(check, "copy")) {
		check_copy(b);     /* takes b */
		b = NULL;
	}
	else if (!strcmp(check, "tail"))
		check_tail(b);
	else if (!strcmp(check, "tailone"))
		one_tail(b, argv[3], (size_t)size);
	else if (!strcmp(check, "cp"))
		one_copy(b, argv[3], size);
	else if (!strcmp(check, "put") || !strcmp(check, "fail"))
		one_upload(b, argv[3], size, !strcmp(check, "fail"));
	else {
		fprintf(stderr, "unknown check '%s'\n", check);
		rc = 2;
	}
	backend_destroy(b);
	if (rc)
		return rc;
	return check_summary();
}
