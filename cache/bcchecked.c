/*
 * bcchecked.c - the record of checked block files (bcchecked.h): its
 * encoding, and taking and saving it durably.
 */
#include "cache/bcchecked.h"
#include "backends/util/fdio.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC "HYCHK001"
#define HEAD 16
#define REC 48
#define NAME "CHECKED"
#define TMP_NAME "tmp/CHECKED"
#define MAX_BYTES ((size_t)1 << 30)   /* 22 M blocks: past any cache */

static int cmp_rec(const void *a, const void *b)
{
	const struct bcchecked_rec *x = a, *y = b;

	if (x->high != y->high)
		return x->high < y->high ? -1 : 1;
	return x->low < y->low ? -1 : x->low > y->low;
}

void bcchecked_release(struct bcchecked *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->alloc = 0;
}

void bcchecked_add(struct bcchecked *s, const struct bcchecked_rec *r)
{
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 256;
		s->r = xrealloc(s->r, s->alloc * sizeof(*s->r));
	}
	s->r[s->n++] = *r;
}

int bcchecked_parse(const void *buf, size_t len, struct bcchecked *out)
{
	const unsigned char *b = buf;
	uint64_t n, sum;

	bcchecked_release(out);
	if (len < HEAD + 8 || memcmp(b, MAGIC, 8) != 0)
		return -EINVAL;
	memcpy(&n, b + 8, 8);
	if (n > (len - HEAD - 8) / REC || HEAD + n * REC + 8 != len)
		return -EINVAL;
	memcpy(&sum, b + len - 8, 8);
	if (XXH3_64bits(b, len - 8) != sum)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		struct bcchecked_rec r;
		memcpy(&r, b + HEAD + i * REC, REC);
		bcchecked_add(out, &r);
	}
	if (out->n)
		qsort(out->r, out->n, sizeof(*out->r), cmp_rec);
	return 0;
}

/* The whole of dir_fd/NAME in *buf; -ENOENT when there is none. */
static int read_all(int dir_fd, unsigned char **buf, size_t *len)
{
	struct stat st;
	int fd = openat(dir_fd, NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MAX_BYTES) {
		close(fd);
		return -EINVAL;
	}
	*len = (size_t)st.st_size;
	*buf = xmalloc(*len ? *len : 1);
	if (pread(fd, *buf, *len, 0) != (ssize_t)*len)
		rc = -EIO;
	close(fd);
	return rc;
}

int bcchecked_take(int dir_fd, struct bcchecked *out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = read_all(dir_fd, &buf, &len);

	bcchecked_release(out);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		bcchecked_parse(buf, len, out);
	free(buf);
	/* Gone for good before this process writes a block: should it die,
	 * the next open must not trust what it leaves. */
	if (unlinkat(dir_fd, NAME, 0) < 0 && errno != ENOENT)
		rc = -errno;
	else if (fsync(dir_fd) < 0)
		rc = -errno;
	else
		rc = 0;
	if (rc)
		bcchecked_release(out);
	return rc;
}

int bcchecked_save(int dir_fd, const struct bcchecked *s)
{
	size_t len = HEAD + s->n * REC + 8;
	unsigned char *b = xmalloc(len);
	uint64_t n = s->n, sum;
	int fd, rc;

	memcpy(b, MAGIC, 8);
	memcpy(b + 8, &n, 8);
	for (size_t i = 0; i < s->n; i++)
		memcpy(b + HEAD + i * REC, &s->r[i], REC);
	sum = XXH3_64bits(b, len - 8);
	memcpy(b + len - 8, &sum, 8);
	fd = openat(dir_fd, TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		free(b);
		return -errno;
	}
	rc = pwrite_full(fd, b, len, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dir_fd, TMP_NAME, dir_fd, NAME) < 0)
		rc = -errno;
	if (rc == 0 && fsync(dir_fd) < 0)
		rc = -errno;
	if (rc)
		unlinkat(dir_fd, TMP_NAME, 0);
	free(b);
	return rc;
}

const struct bcchecked_rec *bcchecked_find(const struct bcchecked *s,
					   uint64_t high, uint64_t low)
{
	struct bcchecked_rec key = { .high = high, .low = low };

	if (!s->n)
		return NULL;
	return bsearch(&key, s->r, s->n, sizeof(*s->r), cmp_rec);
}
