/*
 * fdio.c - whole writes to file descriptors, folders made whole and
 * removed whole (fdio.h).
 */
#include "backends/util/fdio.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t k = pwrite(fd, p, len, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		p += k;
		off += (uint64_t)k;
		len -= (size_t)k;
	}
	return 0;
}

int mkdir_p(const char *path)
{
	struct strbuf p = STRBUF_INIT;
	int rc = 0;
	strbuf_adds(&p, path);
	for (char *s = p.buf + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p.buf, 0700) < 0 && errno != EEXIST)
			rc = -errno;
		*s = c;
		if (!c)
			break;
	}
	strbuf_release(&p);
	return rc;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? errno : 0;
}

int remove_tree(const char *path)
{
	int rc = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (rc < 0)
		return errno == ENOENT ? 0 : -errno;
	return -rc;
}

int tmpfile_in(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	struct strbuf p = STRBUF_INIT;        /* no O_TMPFILE there */
	strbuf_addf(&p, "%s/hylake-XXXXXX", dir);
	fd = mkostemp(p.buf, O_CLOEXEC);
	if (fd >= 0)
		unlink(p.buf);
	strbuf_release(&p);
	return fd;
}
