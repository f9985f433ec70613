/*
 * libFuzzer target: block files read back by the block cache.  The
 * files live on local disk, where a crash, a full disk or another
 * program can leave anything, so the header checks in bcache_get() are
 * a parser of outside input.
 *
 * Fuzzed through the public API: once per process a cache is opened in
 * a temporary folder; per input, a block is put (so it is indexed), its
 * file is overwritten with the input, and it is read back.  A read that
 * succeeds must return exactly the bytes the file holds after its
 * header.  The seed corpus holds a valid block file for the key below.
 */
#include "backends/util/fdio.h"
#include "cache/blockcache.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bcache *cache;
static char root[64], block[512];
static unsigned char *buf;
static const struct bcache_key key = { "dir/obj", "g1700000000000001", 3 };

static void cleanup(void)
{
	bcache_close(cache);
	remove_tree(root);
	free(buf);
}

/* The one block file under v1/<2 hex>/ (the key is fixed, so is its path). */
static int find_block(void)
{
	char v1[128];
	struct dirent *d;

	snprintf(v1, sizeof(v1), "%s/v1", root);
	DIR *dir = opendir(v1);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (strlen(d->d_name) != 2)
			continue;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s/%s", v1, d->d_name);
		DIR *s = opendir(sub);
		struct dirent *e;
		while (s && (e = readdir(s))) {
			if (e->d_name[0] != '.') {
				snprintf(block, sizeof(block), "%s/%s", sub,
					 e->d_name);
				closedir(s);
				closedir(dir);
				return 0;
			}
		}
		if (s)
			closedir(s);
	}
	closedir(dir);
	return -1;
}

static int setup(void)
{
	const char *t = getenv("TMPDIR");
	char err[256];

	snprintf(root, sizeof(root), "%s/fuzzbc.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(root))
		return -1;
	struct bcache_conf conf = { .dir = root, .max_bytes = 64 << 20,
				    .min_free_bytes = 0, .ns = "fuzz" };
	if (bcache_open(&conf, &cache, err, sizeof(err)) < 0)
		return -1;
	buf = malloc(BC_BLOCK_SIZE);
	atexit(cleanup);
	if (!buf || bcache_put(cache, &key, "hello", 5) < 0)
		return -1;
	return find_block();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cache && setup() < 0)
		abort();
	if (bcache_put(cache, &key, "hello", 5) < 0)
		abort();
	int fd = open(block, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	ssize_t n = bcache_get(cache, &key, buf, BC_BLOCK_SIZE);
	if (n >= 0 && ((size_t)n > size ||
		       memcmp(buf, data + size - (size_t)n, (size_t)n) != 0))
		abort();
	return 0;
}
