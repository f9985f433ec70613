/*
 * cli.h - entry points of the two binaries.  Each returns the process
 * exit status.
 */
#ifndef HYLAKE_CLI_H
#define HYLAKE_CLI_H

int cli_main(int argc, char **argv);            /* hylake */

int mount_helper_main(int argc, char **argv);   /* mount.hylake */

/*
 * For the subcommands, which get argv[0] = their name ("warm") and parse
 * the rest with getopt_long(3).  cli_getopt() is getopt_long() with the
 * messages said our way ("hylake warm: --jobs needs a value"); it returns
 * '?' for an unknown option or a missing value (message printed), -1 at
 * the end; positional arguments are then argv[optind..argc-1].  Not
 * reentrant (getopt's state is global): one parse at a time, from its
 * first call (optind == 0 restarts it) to -1.
 */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* The value v of option opt of command cmd, an integer in [min, max]:
 * 0, or -EINVAL with a message on stderr. */
int cli_long_arg(const char *cmd, const char *opt, const char *v, long min,
		 long max, long *out);

#endif
