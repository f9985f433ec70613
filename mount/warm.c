/*
 * warm.c - `hylake warm PATH...`: read every file under PATH through the
 * mount, so the daemon's read path stores the blocks in its cache (each
 * file is asked to, HYLAKE_IOC_KEEP: a block read once is otherwise
 * only remembered).
 *
 * Files are found with nftw() (not following links, not crossing into
 * other filesystems) before reading starts, so progress can say "of how
 * much".  N worker threads (--jobs, default 4) take files from the list
 * in turn and read each start to end in 1 MiB reads into a scratch
 * buffer.  A file that fails is reported and counted; the others go on.
 * On a terminal a progress line on stderr is rewritten every 200 ms.
 */
#include "mount/warm.h"
#include "fs/fs.h"
#include "mount/cli.h"
#include "mount/human.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define JOBS_MAX 64

struct wfile {
	char *path;
	uint64_t size;
};

struct warm {
	struct wfile *files;
	size_t n, alloc;
	uint64_t total;
	atomic_size_t next;              /* next file to take */
	atomic_size_t done, failed;
	atomic_uint_fast64_t bytes;
	pthread_mutex_t err_lock;        /* one message line at a time */
	bool tty, progress_shown;
};

static struct warm *walk_target;     /* nftw has no context argument */

static int add_file(const char *path, const struct stat *st, int flag,
		    struct FTW *f)
{
	struct warm *w = walk_target;

	(void)f;
	if (flag == FTW_NS || flag == FTW_DNR) {   /* never skipped quietly */
		fprintf(stderr, "hylake: warm: %s: cannot %s it\n", path,
			flag == FTW_NS ? "stat" : "list");
		atomic_fetch_add(&w->failed, 1);
		return 0;
	}
	if (flag != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (w->n == w->alloc) {
		w->alloc = w->alloc ? 2 * w->alloc : 256;
		w->files = xrealloc(w->files, w->alloc * sizeof(*w->files));
	}
	w->files[w->n].path = xstrdup(path);
	w->files[w->n].size = (uint64_t)st->st_size;
	w->total += (uint64_t)st->st_size;
	w->n++;
	return 0;
}

static void say(struct warm *w, const char *fmt, const char *a,
		const char *b)
{
	pthread_mutex_lock(&w->err_lock);
	if (w->progress_shown) {
		fputs("\r\033[K", stderr);
		w->progress_shown = false;
	}
	fprintf(stderr, fmt, a, b);
	pthread_mutex_unlock(&w->err_lock);
}

static int read_whole(struct warm *w, const char *path, char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* store what is read, though it is read once (best effort: a file
	 * outside a hylake mount answers ENOTTY and is read all the same) */
	(void)ioctl(fd, HYLAKE_IOC_KEEP);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		atomic_fetch_add(&w->bytes, (uint64_t)n);
	}
	close(fd);
	return rc;
}

static void *worker(void *arg)
{
	struct warm *w = arg;
	char *buf = xmalloc(CHUNK);
	for (;;) {
		size_t i = atomic_fetch_add(&w->next, 1);
		if (i >= w->n)
			break;
		int rc = read_whole(w, w->files[i].path, buf);
		if (rc < 0) {
			say(w, "hylake: warm: %s: %s\n", w->files[i].path,
			    strerror(-rc));
			atomic_fetch_add(&w->failed, 1);
		}
		atomic_fetch_add(&w->done, 1);
	}
	free(buf);
	return NULL;
}

static void progress(struct warm *w, double secs, bool final)
{
	char done[32], total[32];
	uint64_t b = atomic_load(&w->bytes);
	human_bytes((double)b, done, sizeof(done));
	human_bytes((double)w->total, total, sizeof(total));
	double rate = secs > 0 ? (double)b / 1e6 / secs : 0;
	pthread_mutex_lock(&w->err_lock);
	fprintf(final ? stdout : stderr, "%swarm: %zu/%zu files, %s of %s, "
		"%.0f MB/s%s", final ? "" : "\r\033[K", atomic_load(&w->done),
		w->n, done, total, rate, final ? "" : " ");
	if (final)
		fprintf(stdout, " in %.1f s; %zu failed\n", secs,
			atomic_load(&w->failed));
	else
		fflush(stderr);
	w->progress_shown = !final;
	pthread_mutex_unlock(&w->err_lock);
}

static int usage(FILE *out)
{
	fprintf(out, "usage: hylake warm PATH... [--jobs N]\n"
		"  read the files (a folder: every file beneath it) through "
		"the mount,\n  so their blocks are kept in its block cache\n");
	return 2;
}

int warm_main(int argc, char **argv)
{
	struct warm w = { .tty = isatty(STDERR_FILENO) };
	long jobs = 4;
	int status = 0;

	static const struct option longopts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "j:h", longopts)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c != 'j' || cli_long_arg("warm", "--jobs", optarg, 1,
					     JOBS_MAX, &jobs) < 0)
			return usage(stderr);
	}
	if (optind == argc)
		return usage(stderr);
	pthread_mutex_init(&w.err_lock, NULL);
	walk_target = &w;
	for (int i = optind; i < argc; i++) {
		if (nftw(argv[i], add_file, 32, FTW_PHYS | FTW_MOUNT) < 0) {
			fprintf(stderr, "hylake: warm: %s: %s\n", argv[i],
				strerror(errno));
			status = 1;
		}
	}

	int64_t t0 = mono_ns();
	size_t nth = (size_t)jobs < w.n ? (size_t)jobs : w.n;
	pthread_t th[JOBS_MAX];
	for (size_t i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, worker, &w);
	while (w.tty && atomic_load(&w.done) < w.n) {
		progress(&w, (double)(mono_ns() - t0) / 1e9, false);
		usleep(200 * 1000);
	}
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (w.progress_shown)
		fputs("\r\033[K", stderr);
	progress(&w, (double)(mono_ns() - t0) / 1e9, true);
	if (atomic_load(&w.failed))
		status = 1;
	for (size_t i = 0; i < w.n; i++)
		free(w.files[i].path);
	free(w.files);
	pthread_mutex_destroy(&w.err_lock);
	return status;
}
