/*
 * daemon.c - fork with a start-up report pipe.
 *
 * The report is "<status>\n<message>" written once by the child.
 */
#include "mount/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void parent_wait(int fd, pid_t child)
{
	char buf[4096];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len == 0) {
		int st;
		waitpid(child, &st, 0);
		fprintf(stderr, "hylake: the mount process exited during "
			"start-up (%s %d)\n",
			WIFSIGNALED(st) ? "signal" : "status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		_exit(1);
	}
	char *msg = strchr(buf, '\n');
	int status = (int)strtol(buf, NULL, 10);
	if (msg && msg[1])
		fprintf(stderr, "%s\n", msg + 1);
	if (status != 0)
		waitpid(child, NULL, 0);   /* it exits right after reporting */
	_exit(status);
}

int daemon_fork(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0], pid);   /* never returns */
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0) {
		/* "/" always exists; nothing sensible to do otherwise */
	}
	return p[1];
}

void daemon_report(int fd, int status, const char *message)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "%d\n%s", status,
			 message ? message : "");
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (int)w;
	}
	close(fd);
}

void daemon_detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	const char *keep = getenv("HYLAKE_DAEMON_STDERR");
	int err = keep && *keep ? open(keep, O_WRONLY | O_CREAT | O_APPEND |
				       O_CLOEXEC, 0600) : -1;
	dup2(err >= 0 ? err : fd, 2);
	if (err > 2)
		close(err);
	if (fd > 2)
		close(fd);
}
