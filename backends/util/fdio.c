/*
 * fdio.c - whole writes to file descriptors (fdio.h).
 */
#include "backends/util/fdio.h"

#include <errno.h>
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
