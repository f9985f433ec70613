/* Storage Insights inventory reports: columns found by the header, quoted
 * fields, rows of another bucket or prefix, deleted and malformed rows
 * skipped, and a report without the needed columns refused. */
#include "backends/gcs/inventory.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <string.h>

static char seen[4096];

static int add(void *arg, const struct list_entry *e)
{
	(void)arg;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
		 "%s g%llu s%llu%s%s;", e->name,
		 (unsigned long long)e->info.generation,
		 (unsigned long long)e->info.size,
		 e->info.has_crc32c ? " crc" : "", e->info.has_md5 ? " md5" : "");
	return 0;
}

static int stop_at_two(void *arg, const struct list_entry *e)
{
	int *n = arg;
	(void)e;
	return ++*n == 2 ? -ECANCELED : 0;
}

int main(void)
{
	struct inventory_counts c;
	char err[256];
	/* the default fields, in GCS's order, and a name with a comma */
	const char *report =
		"project,bucket,name,location,size,timeCreated,timeDeleted,"
		"updated,storageClass,etag,retentionExpirationTime,crc32c,"
		"md5Hash,generation,metageneration,contentType\n"
		"p,lake,t/a,US,5,2026-01-02T03:04:05.678Z,,2026-01-02T03:04:05Z,"
		"STANDARD,CKih,,3q2+7w==,XUFAKrxLKna5cZ2REBfFkg==,17,1,text/plain\n"
		"p,lake,\"t/b, with a comma\",US,0,,,,,,,,,18,1,\n"
		"p,other,t/c,US,1,,,,,,,,,19,1,\n"        /* another bucket */
		"p,lake,x/d,US,1,,,,,,,,,20,1,\n"         /* outside t/ */
		"p,lake,t/e,US,1,,2026-01-03T00:00:00Z,,,,,,,21,1,\n" /* deleted */
		"p,lake,t/f,US,1,,,,,,,,,twenty,1,\n"     /* malformed */
		"p,lake,t/g,US,1,,,,,,,!!,,22,1,\n"       /* bad crc32c */
		"p,lake,t/,US,0,,,,,,,,,23,1,\n";         /* the prefix itself */

	CHECK_INT(inventory_parse(report, strlen(report), "lake", "t/", add,
				  NULL, &c, err, sizeof(err)), 0);
	CHECK_STR(seen, "a g17 s5 crc md5;b, with a comma g18 s0;");
	CHECK_INT(c.rows, 8);
	CHECK_INT(c.objects, 2);
	CHECK_INT(c.skipped, 6);

	/* columns in another order, the bucket column absent, CRLF */
	seen[0] = '\0';
	const char *minimal = "size,generation,name\r\n7,3,t/x\r\n";
	CHECK_INT(inventory_parse(minimal, strlen(minimal), "lake", "", add,
				  NULL, &c, err, sizeof(err)), 0);
	CHECK_STR(seen, "t/x g3 s7;");

	/* a report that cannot be used says why */
	const char *no_gen = "name,size\nt/a,1\n";
	CHECK_INT(inventory_parse(no_gen, strlen(no_gen), "lake", "", add,
				  NULL, &c, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "generation") != NULL);
	CHECK_INT(inventory_parse("", 0, "lake", "", add, NULL, &c, err,
				  sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "empty") != NULL);

	/* the callback's error stops the parse */
	int n = 0;
	const char *three = "name,generation,size\na,1,1\nb,2,1\nc,3,1\n";
	CHECK_INT(inventory_parse(three, strlen(three), "lake", "",
				  stop_at_two, &n, &c, err, sizeof(err)),
		  -ECANCELED);
	CHECK_INT(n, 2);
	return check_summary();
}
