/*
 * gcs_media.c - the version a media download names, from its headers.
 */
#include "backends/gcs/gcs_media.h"
#include "backends/http/http.h"
#include "backends/util/base64.h"
#include "backends/util/parse.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define US_PER_S 1000000ULL
#define NS_PER_MS 1000000LL

/* One "crc32c=<b64>" or "md5=<b64>" of x-goog-hash (len bytes at p);
 * other algorithms are passed over.  A hash named twice is refused. */
static int parse_hash(const char *p, size_t len, struct obj_info *info)
{
	char v[64];

	while (len && *p == ' ') {
		p++;
		len--;
	}
	while (len && p[len - 1] == ' ')
		len--;
	const char *eq = memchr(p, '=', len);
	if (!eq || (size_t)(p + len - eq) > sizeof(v))
		return eq ? -EBADMSG : 0;
	memcpy(v, eq + 1, (size_t)(p + len - eq - 1));
	v[p + len - eq - 1] = '\0';
	if (eq - p == 6 && !strncmp(p, "crc32c", 6)) {
		if (info->has_crc32c || base64_crc32c(v, &info->crc32c))
			return -EBADMSG;
		info->has_crc32c = true;
	} else if (eq - p == 3 && !strncmp(p, "md5", 3)) {
		if (info->has_md5 || base64_md5(v, info->md5))
			return -EBADMSG;
		info->has_md5 = true;
	}
	return 0;
}

/* x-goog-hash: "crc32c=<b64>,md5=<b64>", in any order, either absent, in
 * one header line or in one line each (GCS sends both forms). */
static int parse_hashes(const struct http_resp *r, struct obj_info *info)
{
	char v[256];

	for (unsigned n = 0; http_resp_header_nth(r, "x-goog-hash", n, v,
						   sizeof(v)); n++) {
		/* a value that fills v may have been cut: refuse it */
		if (strlen(v) >= sizeof(v) - 1)
			return -EBADMSG;
		for (const char *p = v;;) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			if (parse_hash(p, len, info) < 0)
				return -EBADMSG;
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	return 0;
}

/* The header's value as a number: false when absent or malformed. */
static bool header_u64(const struct http_resp *r, const char *name,
		       uint64_t *out)
{
	char v[32];
	return http_resp_header(r, name, v, sizeof(v)) &&
	       parse_u64_str(v, out);
}

/* timeCreated when the headers agree on it (see gcs_media.h), else 0. */
static int64_t created_ns(const struct http_resp *r,
			  const struct obj_info *info)
{
	char v[64];
	int64_t lm;

	if (info->metageneration != 1 ||
	    !http_resp_header(r, "last-modified", v, sizeof(v)) ||
	    httpdate_parse_ns(v, &lm) < 0 || lm < 0 ||
	    (uint64_t)lm / 1000000000ULL != info->generation / US_PER_S ||
	    info->generation / 1000 > INT64_MAX / NS_PER_MS)
		return 0;
	return (int64_t)(info->generation / 1000) * NS_PER_MS;
}

int gcs_media_info(const struct http_resp *r, struct obj_info *info)
{
	char v[256];
	uint64_t off, stored;

	memset(info, 0, sizeof(*info));
	if (!http_resp_range(r, &off, &info->size) ||
	    !header_u64(r, "x-goog-generation", &info->generation) ||
	    !info->generation)
		return -EBADMSG;
	if (http_resp_header(r, "x-goog-stored-content-length", v, sizeof(v)) &&
	    (!parse_u64_str(v, &stored) || stored != info->size))
		return -EBADMSG;
	if (http_resp_header(r, "x-goog-metageneration", v, sizeof(v)) &&
	    !parse_u64_str(v, &info->metageneration))
		return -EBADMSG;
	if (parse_hashes(r, info) < 0)
		return -EBADMSG;
	info->mtime_ns = created_ns(r, info);
	/* The version token of GCS is the generation; as gcs_json.c keeps it. */
	snprintf(info->etag, sizeof(info->etag), "%" PRIu64, info->generation);
	return 0;
}
