/*
 * secretfile.c - permission checks for files holding secrets.
 */
#include "backends/util/secretfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int secretfile_check(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read credentials file %s: %s",
			 path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "credentials file %s is not a regular file",
			 path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "credentials file %s is %s by group/other (mode %04o); "
			 "refusing to use it: run chmod 600 %s", path,
			 (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable"
							    : "accessible",
			 (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}
