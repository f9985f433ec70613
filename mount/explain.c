/*
 * explain.c - `hylake explain PATH`: which store serves a file, and why.
 *
 * Asks the mount daemon through the user.hylake.* extended attributes, so
 * any user who can read the file can ask (no access to the version map's
 * files is needed).
 */
#include "mount/explain.h"
#include "mount/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

static int get(const char *path, const char *attr, char *buf, size_t len)
{
	char name[64];
	snprintf(name, sizeof(name), "user.hylake.%s", attr);
	ssize_t n = getxattr(path, name, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int explain_main(int argc, char **argv)
{
	char gen[64], source[128], replicas[4096], fresh[256], lease[1024];
	int status = 0;

	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
		fprintf(c == 'h' ? stdout : stderr,
			"usage: hylake explain PATH...\n");
		return c == 'h' ? 0 : 2;
	}
	if (optind == argc) {
		fprintf(stderr, "usage: hylake explain PATH...\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		const char *p = argv[i];
		int rc = get(p, "source", source, sizeof(source));
		struct stat sb;
		if (rc == -ENODATA && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "hylake: %s is a folder: explain tells "
				"about files\n", p);
			status = 1;
			continue;
		}
		if (rc == -ENODATA || rc == -ENOTSUP || rc == -EOPNOTSUPP) {
			fprintf(stderr, "hylake: %s: not a file on a hylake mount\n",
				p);
			status = 1;
			continue;
		}
		if (rc == 0)
			rc = get(p, "replicas", replicas, sizeof(replicas));
		if (rc < 0) {
			fprintf(stderr, "hylake: %s: %s\n", p, strerror(-rc));
			status = 1;
			continue;
		}
		if (get(p, "generation", gen, sizeof(gen)) < 0)
			snprintf(gen, sizeof(gen), "(no generation: version "
				 "token of the store)");
		printf("%s\n  version     %s\n", p, gen);
		if (get(p, "freshness", fresh, sizeof(fresh)) == 0)
			printf("  freshness   %s\n", fresh);
		bool chosen_holds = false, first = true;
		char *save = NULL;
		for (char *t = strtok_r(replicas, " ", &save); t;
		     t = strtok_r(NULL, " ", &save)) {
			char *st = strchr(t, '=');
			if (!st)
				continue;
			*st++ = '\0';
			printf("  %-11s %-12s ", first ? "stores" : "", t);
			if (strncmp(st, "lagging:", 8) == 0)
				printf("lagging (holds generation %s)\n", st + 8);
			else if (!strcmp(st, "bad"))
				printf("bad (stamped with this version, but its "
				       "bytes differ from the source's crc32c: "
				       "never served)\n");
			else
				printf("%s\n", st);
			first = false;
			chosen_holds |= !strcmp(t, source) && !strcmp(st, "current");
		}
		printf("  served by   %s%s\n", source, chosen_holds
		       ? "  (the first store, in configured order, holding this "
			 "version)" : "");
		/* a read-write mount: who holds the lease of its locks */
		if (get(p, "lease", lease, sizeof(lease)) == 0)
			printf("  lease       %s\n", lease);
	}
	return status;
}
