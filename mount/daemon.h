/*
 * daemon.h - become a daemon without losing the start-up verdict.
 *
 * daemon_fork() forks.  The parent waits until the child reports through
 * daemon_report() (or dies) and exits with the reported status, printing
 * the reported message on stderr; it never returns.  The child returns
 * with the report descriptor, in a new session.
 *
 * Fork before creating threads, curl handles or LMDB environments.
 */
#ifndef HYLAKE_DAEMON_H
#define HYLAKE_DAEMON_H

/* Returns the report fd in the child, or -errno if fork failed. */
int daemon_fork(void);

/* Tell the waiting parent how start-up went (status 0: ready) and close
 * fd.  message may be NULL or "". */
void daemon_report(int fd, int status, const char *message);

/* Point stdin and stdout at /dev/null, and stderr too unless the
 * environment names a file for it in HYLAKE_DAEMON_STDERR (appended to;
 * the test suite collects sanitizer reports there). */
void daemon_detach_stdio(void);

#endif
