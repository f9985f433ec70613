/*
 * replicate.c - `hylake replicate CONFIG --to REPLICA [--prefix P]`: the
 * reference replicator.
 *
 * Walks the source's objects under P and gives the replica a copy of each
 * one it lacks or holds at another (older) version, stamped with the
 * source generation and crc32c as the replica contract reads them:
 *
 *   list source (the top level, then each of its folders
 *   recursively, LIST_SHARDS at once) ->  queue  ->  N workers:
 *       replica holds G already (contract)    -> current, nothing sent
 *       replica holds a newer generation      -> left alone (the listing
 *                                                is older than the copy)
 *       else  download at generation G into an unlinked temp file,
 *             computing the crc32c of every 1 MiB block, and check
 *             that they combine to the source's crc32c;
 *             put the block manifest (a sidecar under .hylake/blocks/,
 *             which lets a mount check every block it reads), then
 *             the copy (one atomic write carrying bytes and stamp)
 *
 * A copy is only ever stamped with the generation its bytes were read at
 * and checked against, so it can never claim a version it does not hold.
 *
 * Exit codes: 0 every object is current, 1 some object failed, 2 usage or
 * configuration.
 */
#include "mount/replicate.h"
#include "mount/cli.h"
#include "mount/config.h"
#include "mount/human.h"
#include "mount/stack.h"
#include "backends/backend.h"
#include "backends/composite/blocksums.h"
#include "backends/composite/replica_put.h"
#include "backends/composite/contract.h"
#include "backends/gcs/inventory.h"
#include "backends/util/crc32c.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_MAX 1024           /* listed objects waiting for a worker */
#define LIST_SHARDS 4            /* top-level folders listed at once */
#define MAX_JOBS 64

struct item {
	char *name;
	struct obj_info v;       /* the source's version, from the listing */
};

struct repl {
	struct copy_env env;
	const char *prefix;
	bool dry_run;
	replicate_note note;     /* may be NULL */
	void *note_arg;
	const char *report;      /* an inventory report listing the source
	                            instead of the source itself, or NULL */

	pthread_mutex_t lock;
	pthread_cond_t more, room;
	struct item q[QUEUE_MAX];
	size_t qhead, qlen;
	bool listed;             /* the lister is done (or failed) */
	int list_rc;

	atomic_uint_fast64_t checked, copied, current, newer, skipped, failed,
			     bytes;
	pthread_mutex_t out_lock; /* one message line at a time */
	bool progress_shown;
};

static void say(struct repl *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A message line on stderr; clears a progress line first. */
static void say(struct repl *r, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&r->out_lock);
	if (r->progress_shown)
		fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&r->out_lock);
}

static struct deadline op_deadline(const struct copy_env *e, uint64_t bytes)
{
	return replica_put_deadline(e->op_timeout_ms, bytes);
}

/* ---------------------------------------------------------------- lister */

static int queue_entry(void *arg, const struct list_entry *e)
{
	struct repl *r = arg;
	if (e->is_prefix || backend_name_reserved(e->name))
		return 0;                 /* hylake's own names stay put */
	pthread_mutex_lock(&r->lock);
	while (r->qlen == QUEUE_MAX)
		pthread_cond_wait(&r->room, &r->lock);
	struct item *it = &r->q[(r->qhead + r->qlen) % QUEUE_MAX];
	it->name = xstrdup(e->name);
	it->v = e->info;
	r->qlen++;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* The objects of an inventory report, as a listing would give them. */
static int list_report(struct repl *r)
{
	struct inventory_counts counts;
	char err[300];
	int fd = open(r->report, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		rc = -errno;
		say(r, "cannot read the inventory report %s: %s", r->report,
		    strerror(errno));
		return rc;
	}
	rc = inventory_read_fd(fd, r->env.src_bucket, r->prefix, queue_entry,
			       r, &counts, err, sizeof(err));
	close(fd);
	if (rc < 0)
		say(r, "inventory report %s: %s", r->report, err);
	else
		say(r, "inventory report %s: %" PRIu64 " objects, %" PRIu64
		    " rows skipped (another bucket or prefix, deleted, or "
		    "malformed)", r->report, counts.objects, counts.skipped);
	return rc;
}

/* Every page of a listing of prefix (recursive without delim). */
static int list_pages(struct repl *r, const char *prefix, const char *delim,
		      list_cb cb, void *arg)
{
	char *token = NULL;
	int rc;

	do {
		struct list_req lr = { .prefix = prefix, .delimiter = delim,
				       .token = token, .max_keys = 1000 };
		struct deadline dl = op_deadline(&r->env, 0);
		char *next = NULL;
		rc = backend_list(r->env.src, &lr, cb, arg, &next, &dl);
		free(token);
		token = next;
	} while (rc == 0 && token);
	free(token);
	return rc;
}

/* The folders of the top level, listed by LIST_SHARDS threads at once. */
struct shards {
	struct repl *r;
	pthread_mutex_t lock;
	char **prefix;
	size_t n, alloc, next;
	int rc;                  /* the first error */
};

static int shard_entry(void *arg, const struct list_entry *e)
{
	struct shards *sh = arg;

	if (!e->is_prefix)
		return queue_entry(sh->r, e);
	if (backend_name_reserved(e->name))
		return 0;
	if (sh->n == sh->alloc) {
		sh->alloc = sh->alloc ? 2 * sh->alloc : 64;
		sh->prefix = xrealloc(sh->prefix, sh->alloc * sizeof(char *));
	}
	sh->prefix[sh->n++] = xstrdup(e->name);
	return 0;
}

static void *shard_lister(void *arg)
{
	struct shards *sh = arg;

	for (;;) {
		pthread_mutex_lock(&sh->lock);
		size_t i = sh->next++;
		bool stop = i >= sh->n || sh->rc < 0;
		pthread_mutex_unlock(&sh->lock);
		if (stop)
			return NULL;
		int rc = list_pages(sh->r, sh->prefix[i], NULL, queue_entry,
				    sh->r);
		pthread_mutex_lock(&sh->lock);
		if (rc < 0 && sh->rc == 0)
			sh->rc = rc;
		pthread_mutex_unlock(&sh->lock);
	}
}

/*
 * The source's objects under r->prefix: the top level with a delimiter
 * (its objects at once), then each of its folders in full, LIST_SHARDS
 * at a time, so a bucket of many tables is listed in parallel.
 */
static int list_source(struct repl *r)
{
	struct shards sh = { .r = r };
	pthread_t th[LIST_SHARDS];
	size_t nth = 0;

	pthread_mutex_init(&sh.lock, NULL);
	sh.rc = list_pages(r, r->prefix, "/", shard_entry, &sh);
	while (sh.rc == 0 && nth < LIST_SHARDS && nth < sh.n &&
	       pthread_create(&th[nth], NULL, shard_lister, &sh) == 0)
		nth++;
	if (sh.rc == 0 && !nth)
		shard_lister(&sh);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < sh.n; i++)
		free(sh.prefix[i]);
	free(sh.prefix);
	pthread_mutex_destroy(&sh.lock);
	return sh.rc;
}

static void *lister(void *arg)
{
	struct repl *r = arg;
	int rc = r->report ? list_report(r) : list_source(r);

	pthread_mutex_lock(&r->lock);
	r->listed = true;
	r->list_rc = rc;
	pthread_cond_broadcast(&r->more);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---------------------------------------------------------------- workers */

enum replicate_verdict replicate_look(const struct copy_env *e,
				      const char *name,
				      const struct obj_info *v,
				      struct obj_info *held_info,
				      const char **why)
{
	struct deadline dl = op_deadline(e, 0);
	struct bobj *h;
	uint64_t held;

	int rc = backend_open(e->dst, name, &h, &dl);
	if (rc == -ENOENT || rc == -EISDIR) {
		*why = "absent";
		return V_COPY;
	}
	if (rc < 0) {
		*why = strerror(-rc);
		return V_FAILED;
	}
	enum replica_state st = contract_judge(&h->info, v, &held);
	if (held_info)
		*held_info = h->info;
	bobj_close(h);
	if (st == REPLICA_HOLDS && held == v->generation)
		return V_CURRENT;
	if (st == REPLICA_HOLDS && held > v->generation)
		return V_NEWER;
	*why = st == REPLICA_HOLDS ? "older generation"
	     : st == REPLICA_BAD   ? "stamp disagrees with its bytes"
				   : "unproven copy";
	return V_COPY;
}

/* Download generation G into fd, with its block sums (*sums, caller
 * frees), checking them against the source's crc32c. */
static int download(const struct copy_env *e, const char *name,
		    const struct obj_info *v, int fd, char *buf,
		    struct blocksums **sums)
{
	struct backend *src = e->src;
	struct bobj *h;
	struct deadline dl = op_deadline(e, 0);
	struct blocksums_builder b;
	uint64_t off = 0;
	int rc;

	*sums = NULL;
	rc = backend_open_pinned(src, name, v, &h);
	if (rc == -ENOTSUP)
		rc = backend_open(src, name, &h, &dl);
	if (rc < 0)
		return rc;
	if (!obj_info_same_version(&h->info, v)) {
		bobj_close(h);
		return -ESTALE;
	}
	blocksums_builder_init(&b, v->generation, v->size);
	while (off < v->size) {
		dl = op_deadline(e, REPLICATE_CHUNK);
		ssize_t n = bobj_read(h, buf, REPLICATE_CHUNK, off, &dl);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		blocksums_builder_feed(&b, buf, (size_t)n);
		rc = pwrite_full(fd, buf, (size_t)n, off);
		if (rc < 0)
			break;
		off += (uint64_t)n;
	}
	bobj_close(h);
	if (rc < 0) {
		blocksums_builder_release(&b);
		return rc;
	}
	*sums = blocksums_builder_finish(&b);
	if (!*sums || (v->has_crc32c && (*sums)->crc32c != v->crc32c)) {
		free(*sums);
		*sums = NULL;
		return -EBADMSG;
	}
	return 0;
}

int replicate_copy(const struct copy_env *e, const char *name,
		   const struct obj_info *v, char *buf)
{
	int fd = tmpfile_in(e->tmpdir);
	if (fd < 0) {
		log_warn("no temporary file in %s: %s", e->tmpdir,
			 strerror(errno));
		return -ENOSPC;
	}
	struct blocksums *sums;
	int rc = download(e, name, v, fd, buf, &sums);
	if (rc == 0) {
		rc = replica_put_stamped(e->dst, name, fd, v, sums, e->tmpdir,
					 e->op_timeout_ms);
		if (rc == -ESTALE || rc == -ENOENT || rc == -EBADMSG ||
		    rc == -ENOSPC)
			rc = -EIO;   /* the replica's, not the source's */
	}
	free(sums);
	close(fd);
	return rc;
}

void replicate_copy_error(int rc, struct strbuf *out)
{
	switch (rc) {
	case -ENOSPC:
		strbuf_adds(out, "no temporary file for the download "
			    "(TMPDIR)");
		break;
	case -EINVAL:
		strbuf_adds(out, "the replica cannot hold this name");
		break;
	case -EFBIG:
		strbuf_adds(out, "too large for one write to the replica");
		break;
	case -ESTALE:
	case -ENOENT:
		strbuf_adds(out, "changed in the source while copying (the "
			    "generation is gone)");
		break;
	case -EBADMSG:
		strbuf_adds(out, "bytes do not match the source's crc32c; not "
			    "copied");
		break;
	default:
		strbuf_addf(out, "%s", strerror(-rc));
	}
}

/* Copy it: 0 when the replica holds it now, 1 for a dry run, or -errno
 * (-ESTALE, -ENOENT: the generation is gone from the source). */
static int copy_one(struct repl *r, const struct item *it, const char *why,
		    char *buf)
{
	if (r->dry_run) {
		say(r, "would copy %s (generation %" PRIu64 ", %" PRIu64
		    " bytes): %s", it->name, it->v.generation, it->v.size, why);
		atomic_fetch_add(&r->copied, 1);
		return 1;
	}
	int rc = replicate_copy(&r->env, it->name, &it->v, buf);
	if (rc == 0) {
		atomic_fetch_add(&r->copied, 1);
		atomic_fetch_add(&r->bytes, it->v.size);
		return 0;
	}
	struct strbuf msg = STRBUF_INIT;
	replicate_copy_error(rc, &msg);
	say(r, "%s (generation %" PRIu64 "): %s %s", it->name,
	    it->v.generation, rc == -EINVAL || rc == -ESTALE || rc == -ENOENT
	    ? "skipped:" : "failed:", msg.buf);
	strbuf_release(&msg);
	atomic_fetch_add(rc == -EINVAL || rc == -ESTALE || rc == -ENOENT
			 ? &r->skipped : &r->failed, 1);
	return rc;
}

/* Tell r->note what the replica holds of it now (held: its copy's info,
 * or NULL when it does not hold generation it->v). */
static void noted(struct repl *r, const struct item *it,
		  const struct obj_info *held)
{
	if (r->note && !r->dry_run)
		r->note(r->note_arg, it->name, &it->v, held);
}

static void *worker(void *arg)
{
	struct repl *r = arg;
	char *buf = r->dry_run ? NULL : xmalloc(REPLICATE_CHUNK);

	for (;;) {
		pthread_mutex_lock(&r->lock);
		while (!r->qlen && !r->listed)
			pthread_cond_wait(&r->more, &r->lock);
		if (!r->qlen) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		struct item it = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % QUEUE_MAX;
		r->qlen--;
		pthread_cond_signal(&r->room);
		pthread_mutex_unlock(&r->lock);

		const char *why = "";
		size_t len = strlen(it.name);
		if (len && it.name[len - 1] == '/') {
			atomic_fetch_add(&r->skipped, 1);   /* a folder marker */
		} else if (!it.v.generation) {
			say(r, "%s: the source gives no generation to stamp",
			    it.name);
			atomic_fetch_add(&r->failed, 1);
		} else {
			struct obj_info held;
			switch (replicate_look(&r->env, it.name, &it.v, &held,
					       &why)) {
			case V_CURRENT:
				atomic_fetch_add(&r->current, 1);
				noted(r, &it, &held);
				break;
			case V_NEWER:
				atomic_fetch_add(&r->newer, 1);
				noted(r, &it, NULL);
				break;
			case V_FAILED:
				say(r, "%s: cannot look at the replica's copy: "
				    "%s", it.name, why);
				atomic_fetch_add(&r->failed, 1);
				noted(r, &it, NULL);
				break;
			case V_COPY: {
				int rc = copy_one(r, &it, why, buf);
				if (rc == -ESTALE || rc == -ENOENT)
					break;   /* gone: nothing to tell */
				if (rc == 0 && r->note &&
				    replicate_look(&r->env, it.name, &it.v,
						   &held, &why) == V_CURRENT)
					noted(r, &it, &held);
				else
					noted(r, &it, NULL);
				break;
			}
			}
		}
		atomic_fetch_add(&r->checked, 1);
		free(it.name);
	}
	free(buf);
	return NULL;
}

/* ---------------------------------------------------------------- command */

static void progress(struct repl *r, double secs)
{
	char b[32], rate[32];
	uint64_t bytes = atomic_load(&r->bytes);
	human_bytes((double)bytes, b, sizeof(b));
	human_bytes(secs > 0 ? (double)bytes / secs : 0, rate, sizeof(rate));
	pthread_mutex_lock(&r->out_lock);
	fprintf(stderr, "\r\033[K%s -> %s: %" PRIu64 " checked, %" PRIu64
		" copied (%s, %s/s), %" PRIu64 " failed", r->env.src->name,
		r->env.dst->name, (uint64_t)atomic_load(&r->checked),
		(uint64_t)atomic_load(&r->copied), b, rate,
		(uint64_t)atomic_load(&r->failed));
	r->progress_shown = true;
	pthread_mutex_unlock(&r->out_lock);
}

/* List and copy with jobs workers; the seconds it took. */
static double run(struct repl *r, long jobs, bool tty)
{
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->out_lock, NULL);
	pthread_cond_init(&r->more, NULL);
	pthread_cond_init(&r->room, NULL);
	pthread_t lt, wt[MAX_JOBS];
	int64_t t0 = mono_ns();
	pthread_create(&lt, NULL, lister, r);
	for (long i = 0; i < jobs; i++)
		pthread_create(&wt[i], NULL, worker, r);

	for (;;) {
		pthread_mutex_lock(&r->lock);
		bool done = r->listed && !r->qlen;
		pthread_mutex_unlock(&r->lock);
		if (done)
			break;
		if (tty)
			progress(r, (double)(mono_ns() - t0) / 1e9);
		usleep(200 * 1000);
	}
	pthread_join(lt, NULL);
	for (long i = 0; i < jobs; i++)
		pthread_join(wt[i], NULL);
	double secs = (double)(mono_ns() - t0) / 1e9;
	if (tty) {
		progress(r, secs);
		fputc('\n', stderr);
	}
	pthread_cond_destroy(&r->more);
	pthread_cond_destroy(&r->room);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->out_lock);
	return secs;
}

int replicate_run(const struct copy_env *e, const char *report, long jobs,
		  replicate_note note, void *arg, struct replicate_counts *out)
{
	struct repl r = { .env = *e, .prefix = "", .note = note,
			  .note_arg = arg, .report = report };

	run(&r, jobs, false);
	out->checked = atomic_load(&r.checked);
	out->copied = atomic_load(&r.copied);
	out->current = atomic_load(&r.current);
	out->failed = atomic_load(&r.failed);
	return r.list_rc;
}

static void replicate_usage(FILE *out)
{
	fprintf(out,
		"usage: hylake replicate CONFIG --to REPLICA [--prefix P] "
		"[--jobs N] [--dry-run]\n"
		"       hylake replicate CONFIG --to SITE --follow "
		"[--heartbeat D]\n"
		"\n"
		"Copy the source's objects under P that REPLICA lacks or holds\n"
		"at an older generation, each checked against the source's\n"
		"crc32c and stamped with its generation (one atomic write).\n"
		"  --jobs N    objects copied at once (default 4)\n"
		"  --dry-run   say what would be copied, copy nothing\n"
		"\n"
		"With --follow, follow the subscription of [changes] until\n"
		"stopped (SIGTERM): copy each new generation to SITE and keep\n"
		"the site's journal, which mounts with 'journal = SITE' read.\n"
		"One follower per site writes (a lease in the source bucket);\n"
		"others wait to take over.\n"
		"  --heartbeat D  the journal's head is written at least this\n"
		"                 often (default 1s)\n"
		"  --reconcile    list the source first and journal what it\n"
		"                 holds (done anyway for a new journal, or one\n"
		"                 older than the subscription's retention)\n"
		"  --seed REPORT  reconcile from a Storage Insights inventory\n"
		"                 report (CSV with its header) of the bucket\n"
		"                 instead of listing it\n");
}

int replicate_main(int argc, char **argv)
{
	const char *config = NULL, *to = NULL, *prefix = "";
	long jobs = 4;
	bool dry_run = false, follow = false, reconcile = false;
	const char *seed = NULL;
	int64_t heartbeat_ms = 1000;
	struct hy_config cfg;

	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'f' },
		{ "heartbeat", required_argument, NULL, 'b' },
		{ "reconcile", no_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "t:p:j:nfb:rs:h", longopts)) != -1) {
		switch (c) {
		case 'h':
			replicate_usage(stdout);
			return 0;
		case 't':
			to = optarg;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'f':
			follow = true;
			break;
		case 'r':
			reconcile = true;
			break;
		case 's':
			seed = optarg;
			break;
		case 'b':
			if (duration_parse_ms(optarg, &heartbeat_ms) < 0 ||
			    heartbeat_ms < 100 || heartbeat_ms > 60000) {
				fprintf(stderr, "hylake replicate: --heartbeat "
					"'%s': a duration from 100ms to 60s\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			if (cli_long_arg("replicate", "--jobs", optarg, 1,
					 MAX_JOBS, &jobs) < 0)
				return 2;
			break;
		default:
			replicate_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		config = argv[optind++];
	if (!config || !to || optind < argc) {
		if (optind < argc)
			fprintf(stderr, "hylake replicate: unexpected '%s'\n",
				argv[optind]);
		replicate_usage(stderr);
		return 2;
	}
	if (*prefix == '/') {
		fprintf(stderr, "hylake replicate: --prefix is an object name "
			"prefix ('tables/t1/'), not a path\n");
		return 2;
	}
	if (config_load(config, &cfg, stderr) < 0)
		return 2;
	log_level = LOG_WARNING;

	const struct store_conf *rc_conf = NULL;
	for (size_t i = 0; i < cfg.nreplicas; i++)
		if (!strcmp(cfg.replicas[i].name, to))
			rc_conf = &cfg.replicas[i];
	if (!rc_conf) {
		fprintf(stderr, "hylake replicate: %s has no [replica %s]%s",
			config, to, cfg.nreplicas ? "; it has:" : "\n");
		for (size_t i = 0; i < cfg.nreplicas; i++)
			fprintf(stderr, " %s%s", cfg.replicas[i].name,
				i + 1 < cfg.nreplicas ? "" : "\n");
		config_release(&cfg);
		return 2;
	}

	if ((reconcile || seed) && !follow) {
		fprintf(stderr, "hylake replicate: --%s goes with --follow\n",
			seed ? "seed" : "reconcile");
		config_release(&cfg);
		return 2;
	}
	if (follow && (dry_run || *prefix)) {
		fprintf(stderr, "hylake replicate: --follow follows the whole "
			"source: no --prefix or --dry-run with it\n");
		config_release(&cfg);
		return 2;
	}
	const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR")
			     ? getenv("TMPDIR") : "/var/tmp";
	if (follow) {
		log_level = LOG_NOTICE;
		int st = follow_main(&cfg, rc_conf, tmpdir, heartbeat_ms,
				     reconcile, seed);
		config_release(&cfg);
		return st;
	}
	struct repl r = { .prefix = prefix, .dry_run = dry_run,
			  .env.op_timeout_ms = cfg.mount.op_timeout_ms };
	char err[512];
	int status = 1;
	r.env.tmpdir = tmpdir;
	if (stack_open_store(&cfg.source, cfg.mount.op_timeout_ms, &r.env.src, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "hylake replicate: source %s\n", err);
		goto out_cfg;
	}
	if (stack_open_store(rc_conf, cfg.mount.op_timeout_ms, &r.env.dst, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "hylake replicate: replica %s\n", err);
		goto out_src;
	}
	if (!r.env.dst->ops->put) {
		fprintf(stderr, "hylake replicate: replica %s is of type %s, "
			"which hylake replicate cannot write (s3 and posix "
			"replicas can be written)\n", to, r.env.dst->ops->type);
		goto out_dst;
	}

	bool tty = isatty(STDERR_FILENO);
	double secs = run(&r, jobs, tty);
	if (r.list_rc < 0) {
		fprintf(stderr, "hylake replicate: listing the source under "
			"'%s' failed: %s\n", prefix, strerror(-r.list_rc));
		atomic_fetch_add(&r.failed, 1);
	}

	char b[32], rate[32];
	human_bytes((double)atomic_load(&r.bytes), b, sizeof(b));
	human_bytes(secs > 0 ? (double)atomic_load(&r.bytes) / secs : 0, rate,
		    sizeof(rate));
	printf("%s %s -> %s: %" PRIu64 " checked, %" PRIu64 " %s (%s in %.1f s, "
	       "%s/s), %" PRIu64 " current, %" PRIu64 " newer on the replica, "
	       "%" PRIu64 " skipped, %" PRIu64 " failed\n",
	       dry_run ? "dry run" : "replicated", r.env.src->name, to,
	       (uint64_t)atomic_load(&r.checked),
	       (uint64_t)atomic_load(&r.copied),
	       dry_run ? "to copy" : "copied", b, secs, rate,
	       (uint64_t)atomic_load(&r.current), (uint64_t)atomic_load(&r.newer),
	       (uint64_t)atomic_load(&r.skipped),
	       (uint64_t)atomic_load(&r.failed));
	status = atomic_load(&r.failed) ? 1 : 0;
out_dst:
	backend_destroy(r.env.dst);
out_src:
	backend_destroy(r.env.src);
out_cfg:
	config_release(&cfg);
	return status;
}
