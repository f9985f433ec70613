/*
 * inventory.c - Storage Insights inventory reports (inventory.h), parsed
 * with libcsv as they stream in.
 */
#include "backends/gcs/inventory.h"
#include "backends/util/base64.h"
#include "backends/util/parse.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <csv.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum col { C_NAME, C_GENERATION, C_SIZE, C_BUCKET, C_CRC32C, C_MD5,
	   C_METAGENERATION, C_CREATED, C_DELETED, C_COUNT };

static const char *const col_names[C_COUNT] = {
	"name", "generation", "size", "bucket", "crc32c", "md5Hash",
	"metageneration", "timeCreated", "timeDeleted",
};

#define FIELD_MAX 4096           /* longer than any object name */

struct inv {
	const char *bucket, *prefix;
	list_cb cb;
	void *arg;
	struct inventory_counts *counts;
	bool header_done;
	int at[C_COUNT];              /* column index of each, or -1 */
	size_t field;                 /* index of the field being read */
	char *val[C_COUNT];           /* this row's values (malloc'd) */
	bool bad;                     /* a field of this row is too long */
	int rc;                       /* cb's error, or -EBADMSG */
	char *err;
	size_t errlen;
};

static void on_field(void *s, size_t len, void *data)
{
	struct inv *v = data;
	size_t i = v->field++;

	if (v->rc < 0)
		return;
	if (!v->header_done) {
		for (int c = 0; c < C_COUNT; c++)
			if (s && strlen(col_names[c]) == len &&
			    !memcmp(s, col_names[c], len) && v->at[c] < 0)
				v->at[c] = (int)i;
		return;
	}
	for (int c = 0; c < C_COUNT; c++) {
		if (v->at[c] != (int)i)
			continue;
		if (len > FIELD_MAX || (s && memchr(s, '\0', len))) {
			v->bad = true;
			return;
		}
		free(v->val[c]);
		v->val[c] = xstrndup(s ? s : "", len);
	}
}

static bool row_object(struct inv *v, const char **name,
		       struct obj_info *info)
{
	const char *const *val = (const char *const *)v->val;
	size_t pl = strlen(v->prefix);

	memset(info, 0, sizeof(*info));
	if (v->bad || !val[C_NAME] || !val[C_GENERATION] || !val[C_SIZE] ||
	    !val[C_NAME][0] ||
	    (val[C_BUCKET] && strcmp(val[C_BUCKET], v->bucket)) ||
	    (val[C_DELETED] && val[C_DELETED][0]) ||
	    strncmp(val[C_NAME], v->prefix, pl) || !val[C_NAME][pl] ||
	    !parse_u64_str(val[C_GENERATION], &info->generation) ||
	    !info->generation || !parse_u64_str(val[C_SIZE], &info->size))
		return false;
	if (val[C_METAGENERATION] && val[C_METAGENERATION][0] &&
	    !parse_u64_str(val[C_METAGENERATION], &info->metageneration))
		return false;
	if (val[C_CRC32C] && val[C_CRC32C][0]) {
		if (base64_crc32c(val[C_CRC32C], &info->crc32c) < 0)
			return false;
		info->has_crc32c = true;
	}
	if (val[C_MD5] && val[C_MD5][0]) {
		if (base64_md5(val[C_MD5], info->md5) < 0)
			return false;
		info->has_md5 = true;
	}
	if (val[C_CREATED] && val[C_CREATED][0] &&
	    iso8601_parse_ns(val[C_CREATED], &info->mtime_ns) < 0)
		return false;
	*name = val[C_NAME] + pl;
	return true;
}

static void on_row(int term, void *data)
{
	struct inv *v = data;
	(void)term;

	if (v->rc < 0)
		goto next;
	if (!v->header_done) {
		v->header_done = true;
		if (v->at[C_NAME] < 0 || v->at[C_GENERATION] < 0 ||
		    v->at[C_SIZE] < 0) {
			snprintf(v->err, v->errlen, "the report's header names "
				 "no %s column (it needs name, generation and "
				 "size)", v->at[C_NAME] < 0 ? "name"
				 : v->at[C_GENERATION] < 0 ? "generation"
				 : "size");
			v->rc = -EBADMSG;
		}
		goto next;
	}
	v->counts->rows++;
	const char *name;
	struct obj_info info;
	if (!row_object(v, &name, &info)) {
		v->counts->skipped++;
		goto next;
	}
	struct list_entry e = { .name = name, .info = info };
	int rc = v->cb(v->arg, &e);
	if (rc < 0)
		v->rc = rc;
	else
		v->counts->objects++;
next:
	for (int c = 0; c < C_COUNT; c++) {
		free(v->val[c]);
		v->val[c] = NULL;
	}
	v->field = 0;
	v->bad = false;
}

static void inv_init(struct inv *v, struct csv_parser *p, const char *bucket,
		     const char *prefix, list_cb cb, void *arg,
		     struct inventory_counts *counts, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	memset(counts, 0, sizeof(*counts));
	v->bucket = bucket;
	v->prefix = prefix ? prefix : "";
	v->cb = cb;
	v->arg = arg;
	v->counts = counts;
	v->err = err;
	v->errlen = errlen;
	for (int c = 0; c < C_COUNT; c++)
		v->at[c] = -1;
	csv_init(p, CSV_APPEND_NULL);
}

/* Feed len bytes; 0 or -errno (err filled). */
static int feed(struct inv *v, struct csv_parser *p, const char *buf,
		size_t len)
{
	if (csv_parse(p, buf, len, on_field, on_row, v) != len) {
		snprintf(v->err, v->errlen, "the report is not CSV: %s",
			 csv_strerror(csv_error(p)));
		return -EBADMSG;
	}
	return v->rc;
}

static int finish(struct inv *v, struct csv_parser *p, int rc)
{
	if (rc == 0)
		csv_fini(p, on_field, on_row, v);
	if (rc == 0)
		rc = v->rc;
	if (rc == 0 && !v->header_done) {
		snprintf(v->err, v->errlen, "the report is empty: no header");
		rc = -EBADMSG;
	}
	for (int c = 0; c < C_COUNT; c++)
		free(v->val[c]);
	csv_free(p);
	return rc;
}

int inventory_parse(const char *text, size_t len, const char *bucket,
		    const char *prefix, list_cb cb, void *arg,
		    struct inventory_counts *counts, char *err, size_t errlen)
{
	struct inv v;
	struct csv_parser p;

	inv_init(&v, &p, bucket, prefix, cb, arg, counts, err, errlen);
	return finish(&v, &p, feed(&v, &p, text, len));
}

int inventory_read_fd(int fd, const char *bucket, const char *prefix,
		      list_cb cb, void *arg, struct inventory_counts *counts,
		      char *err, size_t errlen)
{
	struct inv v;
	struct csv_parser p;
	char buf[1 << 16];
	int rc = 0;

	inv_init(&v, &p, bucket, prefix, cb, arg, counts, err, errlen);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "reading the report: %s",
				 strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rc = feed(&v, &p, buf, (size_t)n);
		if (rc < 0)
			break;
	}
	return finish(&v, &p, rc);
}
