/*
 * Files that hold secrets: opened without following a final symlink,
 * checked on the opened descriptor (regular, owned by this user or root,
 * nothing for group/other), read, and the process made undumpable.
 */
#include "backends/util/secretfile.h"
#include "backends/util/fdio.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *path_of(const char *name)
{
	static char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void make(const char *name, const char *text, int mode)
{
	const char *p = path_of(name);
	unlink(p);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	chmod(p, (mode_t)mode);
}

static void checks(void)
{
	char err[512], target[1024];

	make("good", "SECRET\n", 0600);
	CHECK_INT(secretfile_check(path_of("good"), err, sizeof(err)), 0);

	/* a symlink, even to a good file, is refused: it may be swapped */
	snprintf(target, sizeof(target), "%s", path_of("good"));
	unlink(path_of("link"));
	CHECK_INT(symlink(target, path_of("link")), 0);
	CHECK_INT(secretfile_check(path_of("link"), err, sizeof(err)), -ELOOP);
	CHECK(strstr(err, "symbolic link") != NULL);

	make("open", "SECRET\n", 0640);
	CHECK_INT(secretfile_check(path_of("open"), err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "chmod 600") != NULL);
	CHECK(strstr(err, "SECRET") == NULL);

	CHECK_INT(secretfile_check(dir, err, sizeof(err)), -EINVAL);

	/* someone else's file: they could rewrite it under us */
	if (geteuid() == 0) {
		make("theirs", "SECRET\n", 0600);
		CHECK_INT(chown(path_of("theirs"), 4242, 4242), 0);
		CHECK_INT(secretfile_check(path_of("theirs"), err, sizeof(err)),
			  -EPERM);
		CHECK(strstr(err, "owned by uid 4242") != NULL);
	}
}

static void reads(void)
{
	struct strbuf sb = STRBUF_INIT;
	char err[512];

	CHECK_INT(secretfile_read(path_of("link"), &sb, err, sizeof(err)),
		  -ELOOP);
	CHECK_INT(sb.len, 0);
	CHECK_INT(prctl(PR_GET_DUMPABLE), 1);      /* nothing read yet */
	CHECK_INT(secretfile_read(path_of("good"), &sb, err, sizeof(err)), 0);
	CHECK_STR(sb.buf, "SECRET\n");
	/* a process that has read a key leaves no core dump */
	CHECK_INT(prctl(PR_GET_DUMPABLE), 0);
	secretfile_scrub(&sb);
	CHECK_INT(sb.len, 0);
	/* the key's bytes are overwritten in place, not only forgotten: a
	 * reset alone would leave "ECRET\n" after the new terminator */
	CHECK(sb.buf != NULL);
	for (size_t i = 0; sb.buf && i < 7; i++)
		CHECK_INT(sb.buf[i], 0);
	strbuf_release(&sb);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	snprintf(dir, sizeof(dir), "%s/secretfile-test-%d", base ? base : "/tmp",
		 (int)getpid());
	mkdir(dir, 0700);
	checks();
	reads();
	CHECK_INT(remove_tree(dir), 0);
	return check_summary();
}
