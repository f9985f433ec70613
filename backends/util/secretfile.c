/*
 * secretfile.c - opening, checking and reading files that hold secrets.
 *
 * The file is opened with O_NOFOLLOW and every check runs on the open
 * descriptor (fstat), so a file swapped between check and read, or a
 * symbolic link pointing at someone else's file, is never used.
 */
#include "backends/util/secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open path for reading and check what was opened.  fd (and *size) or
 * -errno. */
static int open_checked(const char *path, size_t *size, char *err,
			size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			snprintf(err, errlen, "credentials file %s is a symbolic "
				 "link; refusing to follow it: name the file "
				 "itself", path);
		else
			snprintf(err, errlen, "cannot read credentials file %s: "
				 "%s", path, strerror(e));
		return -e;
	}
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read credentials file %s: %s",
			 path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "credentials file %s is not a regular file",
			 path);
		rc = -EINVAL;
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "credentials file %s is owned by uid %u, "
			 "not by this user (uid %u) or root; refusing to use it",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		rc = -EPERM;
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "credentials file %s is %s by group/other (mode %04o); "
			 "refusing to use it: run chmod 600 %s", path,
			 (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable"
							    : "accessible",
			 (unsigned)(st.st_mode & 07777), path);
		rc = -EPERM;
	} else if (st.st_size > SECRETFILE_MAX) {
		snprintf(err, errlen, "credentials file %s is larger than %d "
			 "bytes", path, SECRETFILE_MAX);
		rc = -EFBIG;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int secretfile_check(const char *path, char *err, size_t errlen)
{
	size_t size = 0;
	int fd = open_checked(path, &size, err, errlen);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int secretfile_read(const char *path, struct strbuf *out, char *err,
		    size_t errlen)
{
	char buf[4096];
	size_t start = out->len;
	ssize_t n;
	int rc = 0;

	size_t size = 0;
	int fd = open_checked(path, &size, err, errlen);
	if (fd < 0)
		return fd;
	/* From here on the process holds a secret: no core dumps of it. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* room for it all now: a realloc while reading would leave a copy
	 * of the first bytes in freed memory */
	strbuf_grow(out, size + 1);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || out->len - start + (size_t)n > SECRETFILE_MAX) {
			rc = n < 0 ? -errno : -EFBIG;
			snprintf(err, errlen, "cannot read credentials file %s: "
				 "%s", path, strerror(-rc));
			break;
		}
		strbuf_add(out, buf, (size_t)n);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	if (rc < 0 && out->len > start) {
		OPENSSL_cleanse(out->buf + start, out->len - start);
		out->len = start;
		out->buf[start] = '\0';
	}
	return rc;
}

void secretfile_scrub(struct strbuf *sb)
{
	if (sb->buf && sb->len)
		OPENSSL_cleanse(sb->buf, sb->len);
	strbuf_reset(sb);
}
