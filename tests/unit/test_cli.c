/*
 * The argument parsing of the command line: every subcommand answers
 * --help with 0, and a wrong count of operands with 2; the mount(8)
 * helper takes its flags bundled or apart, before or after the operands
 * (with -f it only loads the config, so nothing is mounted here).
 */
#include "mount/cli.h"
#include "tests/unit/check.h"

#include <stdlib.h>

static char conf[1024];

/* Run main(argv) of hylake or mount.hylake; the exit status. */
static int run(int (*main_fn)(int, char **), const char **args)
{
	char *argv[16];
	int argc = 0;
	while (args[argc] && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	fflush(stdout);
	return main_fn(argc, argv);
}

#define HY(...) run(cli_main, (const char *[]){ "hylake", __VA_ARGS__, NULL })
#define HELPER(...) run(mount_helper_main, \
			(const char *[]){ "mount.hylake", __VA_ARGS__, NULL })

static void subcommands_answer_help(void)
{
	CHECK_INT(HY("--help"), 0);
	CHECK_INT(HY("mount", "--help"), 0);
	CHECK_INT(HY("check", "--help"), 0);
	CHECK_INT(HY("check", "-h"), 0);
	CHECK_INT(HY("explain", "--help"), 0);
	CHECK_INT(HY("status", "--help"), 0);
	CHECK_INT(HY("warm", "--help"), 0);
	CHECK_INT(HY("replicate", "--help"), 0);
}

static void check_takes_one_config(void)
{
	CHECK_INT(HY("check"), 2);
	CHECK_INT(HY("check", conf, conf), 2);
	CHECK_INT(HY("check", "--bogus", conf), 2);
	CHECK_INT(HY("check", "--", "/nonexistent/hylake.conf"), 2);
	/* one posix store that is there: it answers */
	CHECK_INT(HY("check", conf), 0);
	CHECK_INT(HY("status"), 2);
	CHECK_INT(HY("status", "--prometheus"), 2);
	CHECK_INT(HY("mount", conf), 2);
}

static void helper_flags_anywhere(void)
{
	CHECK_INT(HELPER(conf, "/mnt", "-f"), 0);
	CHECK_INT(HELPER(conf, "/mnt", "-sfnv", "-o", "ro,_netdev"), 0);
	CHECK_INT(HELPER("-f", "-o", "allow_other", conf, "/mnt"), 0);
	CHECK_INT(HELPER(conf, "-sf", "/mnt", "-onofail", "-o", "ro"), 0);
	CHECK_INT(HELPER(conf, "/mnt", "-f", "-x"), 2);      /* unknown */
	CHECK_INT(HELPER(conf, "/mnt", "-f", "-o"), 2);      /* no value */
	CHECK_INT(HELPER(conf, "-f"), 2);                    /* no DIR */
	CHECK_INT(HELPER(conf, "/mnt", "/more", "-f"), 2);
	CHECK_INT(HELPER("/nonexistent/hylake.conf", "/mnt", "-f"), 2);
}

int main(void)
{
	const char *tmp = getenv("HYLAKE_TEST_TMP");
	snprintf(conf, sizeof(conf), "%s/test_cli.conf", tmp ? tmp : "/tmp");
	FILE *f = fopen(conf, "w");
	CHECK(f != NULL);
	if (!f)
		return check_summary();
	fprintf(f, "[source]\ntype = posix\npath = %s\n", tmp ? tmp : "/tmp");
	fclose(f);
	subcommands_answer_help();
	check_takes_one_config();
	helper_flags_anywhere();
	remove(conf);
	return check_summary();
}
