/*
 * options.c - the settings table and its parsers.
 */
#include "mount/options.h"
#include "mount/config.h"
#include "backends/store.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define M(field) SCOPE_MOUNT, offsetof(struct mount_conf, field)
#define S(field) SCOPE_STORE, offsetof(struct store_conf, field)
#define C(field) SCOPE_CHANGES, offsetof(struct changes_conf, field)
#define DAY (86400LL * 1000)

const struct opt_def opt_table[] = {
	/* [mount] */
	{ "state_dir", OPT_PATH, M(state_dir), NULL, 0, 0, 0, 0,
	  "folder for the version map and other state of this mount" },
	{ "connect_timeout", OPT_DURATION, M(net.connect_timeout_ms), "5s",
	  1, 600000, 0, 1, "limit on connecting to a store" },
	{ "request_timeout", OPT_DURATION, M(net.request_timeout_ms), "30s",
	  1, DAY, 0, 1, "limit on one HTTP request, start to end" },
	{ "stall_timeout", OPT_DURATION, M(net.stall_timeout_ms), "10s",
	  0, DAY, 0, 1,
	  "abort a transfer that moves under 1 KiB/s for this long (0: off)" },
	{ "retries", OPT_UINT, M(net.retries), "3", 0, 20, 0, 1,
	  "extra attempts for a failed idempotent request (backoff with jitter)" },
	{ "op_timeout", OPT_DURATION, M(op_timeout_ms), "60s", 1, DAY, 0, 1,
	  "deadline of one filesystem operation, retries included" },
	{ "entry_timeout", OPT_DURATION, M(entry_timeout_ms), "5s", 0, DAY, 0, 1,
	  "how long the kernel may cache a name" },
	{ "attr_timeout", OPT_DURATION, M(attr_timeout_ms), "5s", 0, DAY, 0, 1,
	  "how long the kernel may cache attributes (opens always re-check)" },
	{ "negative_timeout", OPT_DURATION, M(negative_timeout_ms), "0s", 0, DAY,
	  0, 1, "how long the kernel may cache 'no such file'" },
	{ "threads", OPT_UINT, M(threads), "16", 1, 1024, 0, 1,
	  "most requests served at once" },
	{ "log_level", OPT_LOGLEVEL, M(log_level), "info", 0, 0, 0, 1,
	  "err | warning | notice | info | debug | trace" },
	{ "list_page_size", OPT_UINT, M(list_page_size), "1000", 1, 1000, 0, 1,
	  "names asked for per listing request" },
	{ "freshness", OPT_FRESHNESS, M(freshness), "lakehouse", 0, DAY, 0, 1,
	  "lakehouse (files table formats write once are opened without "
	  "asking the source once their version is known; everything else "
	  "strict) | strict (ask the source on every open) | bounded:DURATION "
	  "(trust a version the source confirmed that recently) | immutable" },
	{ "serve_stale_when_source_down", OPT_DURATION_OFF, M(serve_stale_ms),
	  "off", 0, 365 * DAY, 0, 1, "off | DURATION: while the source is "
	  "unreachable, serve known versions confirmed this recently" },
	{ "replica_recheck", OPT_DURATION, M(replica_recheck_ms), "60s", 0, DAY,
	  0, 1, "how long a replica known to lag or lack a name is skipped "
	  "without asking it again" },
	{ "hedge_budget", OPT_UINT, M(hedge_budget_pct), "5", 0, 100, 0, 1,
	  "percent of reads that may also be sent to the next store when "
	  "they wait past their store's p95 latency and the next store's "
	  "typical read (0: never)" },
	{ "map_size", OPT_SIZE, M(map_size), "1G", 1 << 20, (int64_t)1 << 40,
	  0, 1, "ceiling of the version map on disk (least recently used "
	  "entries are evicted below it)" },
	{ "cache_dir", OPT_PATH, M(cache_dir), NULL, 0, 0, 0, 1,
	  "folder of the block cache [/var/cache/hylake/BUCKET]" },
	{ "cache_size", OPT_SIZE, M(cache_size), "10G", 0, (int64_t)1 << 50,
	  0, 1, "ceiling of the block cache on disk (0: no block cache)" },
	{ "cache_first_read", OPT_BOOL, M(cache_first_read), "no", 0, 1, 0,
	  1, "yes: store every block read in the block cache | no: a block "
	  "read once is only remembered, and stored when it is read again "
	  "(`hylake warm` stores what it reads either way)" },
	{ "cache_min_free", OPT_SIZE, M(cache_min_free), "1G", 0,
	  (int64_t)1 << 50, 0, 1, "free space the block cache leaves on its "
	  "disk" },
	{ "memory_limit", OPT_SIZE, M(memory_limit), "512M", 16 << 20,
	  (int64_t)1 << 40, 0, 1, "memory for the bytes the read path holds "
	  "for all open files together (read-ahead, kept blocks, footers); "
	  "the least recently read go first" },
	{ "read_ahead", OPT_SIZE, M(read_ahead), "64M", 0, (int64_t)1 << 30, 0,
	  1, "largest read-ahead window of one file read in order (0: none)" },
	{ "metadata_cache_size", OPT_SIZE, M(metadata_cache_size), "64M", 0,
	  (int64_t)1 << 40, 0, 1, "memory for cached attributes and listings "
	  "(0: none)" },
	{ "uid", OPT_USER, M(uid), "", -1, 0xfffffffe, 1, 1,
	  "owner shown for every file and folder: a user name or number "
	  "[the mounting user]" },
	{ "gid", OPT_GROUP, M(gid), "", -1, 0xfffffffe, 1, 1,
	  "group shown for every file and folder: a group name or number "
	  "[the mounting user's group]" },
	{ "writable", OPT_BOOL, M(writable), "no", 0, 1, 0, 1,
	  "yes: files may be created, replaced and removed (also -o rw); "
	  "every write goes to the source, which must be gcs, under a "
	  "precondition | no: read-only" },
	{ "lease", OPT_DURATION, M(lease_ms), "30s", 3000, DAY, 0, 1,
	  "writable mounts: how long a flock()/fcntl() lock's lease in the "
	  "source outlives its holder (another host takes it over after "
	  "seeing it unrenewed this long; renewed every third of it)" },
	{ "staging_dir", OPT_PATH, M(staging_dir), NULL, 0, 0, 0, 1,
	  "writable mounts: folder where files written out of order, "
	  "appended to or cut wait for their upload at close or fsync, and "
	  "where a restart finds those a stopped mount left "
	  "[STATE_DIR/staging]" },
	{ "staging_size", OPT_SIZE, M(staging_size), "10G", 0,
	  (int64_t)1 << 50, 0, 1, "writable mounts: most bytes the files "
	  "staged at once may hold; a write past it fails with ENOSPC "
	  "(0: no staging: such writes fail with ENOTSUP)" },
	{ "write_back", OPT_STRING, M(write_back), NULL, 0, 0, 0, 1,
	  "writable mounts: a replica's name (s3 or posix): each file "
	  "written is also put there at close, once the source has it, "
	  "stamped with its new generation, so the next read there is "
	  "local; a failure is logged and counted, never an error (off "
	  "when unset: the replicator brings files to the site)" },
	{ "file_mode", OPT_MODE, M(file_mode), "0444", 0, 0777, 0, 1,
	  "permission bits shown for files (on a read-only mount write bits "
	  "are shown but writes fail)" },
	{ "dir_mode", OPT_MODE, M(dir_mode), "0555", 0, 0777, 0, 1,
	  "permission bits shown for folders" },
	{ "metrics_listen", OPT_STRING, M(metrics_listen), NULL, 0, 0, 0, 1,
	  "HOST:PORT to serve Prometheus metrics on at /metrics, e.g. "
	  "127.0.0.1:9464 (off when unset)" },
	{ "metrics_file", OPT_PATH, M(metrics_file), NULL, 0, 0, 0, 1,
	  "file rewritten with Prometheus metrics every metrics_interval, "
	  "for node_exporter's textfile collector (off when unset)" },
	{ "metrics_interval", OPT_DURATION, M(metrics_interval_ms), "15s",
	  1000, DAY, 0, 1, "how often metrics_file is rewritten" },
	/* [source] and [replica NAME] */
	{ "type", OPT_STORETYPE, S(type), NULL, 0, 0, 0, 0,
	  "gcs | s3 | posix" },
	{ "endpoint", OPT_STRING, S(endpoint), NULL, 0, 0, 0, 0,
	  "URL of the store (s3; gcs [https://storage.googleapis.com])" },
	{ "bucket", OPT_STRING, S(bucket), NULL, 0, 0, 0, 0,
	  "bucket name (s3, gcs)" },
	{ "prefix", OPT_STRING, S(prefix), "", 0, 0, 1, 0,
	  "mount only the names under this prefix" },
	{ "region", OPT_STRING, S(region), "us-east-1", 0, 0, 0, 0,
	  "signing region (s3)" },
	{ "credentials", OPT_STRING, S(credentials), NULL, 0, 0, 0, 0,
	  "s3: AWS shared-credentials file; gcs: service-account key file, "
	  "metadata or none (files: mode 0600)" },
	{ "metadata_endpoint", OPT_STRING, S(metadata_endpoint), NULL, 0, 0, 0,
	  0, "gcs, credentials = metadata: the metadata server "
	  "[http://metadata.google.internal]" },
	{ "profile", OPT_STRING, S(profile), "default", 0, 0, 1, 0,
	  "profile in the credentials file (s3)" },
	{ "path", OPT_PATH, S(path), NULL, 0, 0, 0, 0,
	  "root folder (posix)" },
	{ "generation_key", OPT_STRING, S(generation_key), "goog-generation",
	  0, 0, 0, 0, "replicas: where a copy records its source generation "
	  "(s3: x-amz-meta-KEY, posix: xattr user.KEY)" },
	{ "verify", OPT_VERIFY, S(verify), "whole-first", 0, 0, 0, 0,
	  "replicas: how bytes are checked against the source's crc32c before "
	  "they are served: whole-first (the copy's block manifest, or the "
	  "whole copy read once on first use) | blocks (only copies with a "
	  "manifest) | trust (the stamp alone; unsafe)" },
	/* [changes] */
	{ "subscription", OPT_STRING, C(subscription), NULL, 0, 0, 0, 0,
	  "the Pub/Sub subscription of the source bucket's notifications: "
	  "projects/PROJECT/subscriptions/NAME" },
	{ "endpoint", OPT_STRING, C(endpoint), "https://pubsub.googleapis.com",
	  0, 0, 0, 0, "URL of the Pub/Sub API" },
	{ "credentials", OPT_STRING, C(credentials), NULL, 0, 0, 0, 0,
	  "service-account key file, metadata or none [the source's]" },
	{ "metadata_endpoint", OPT_STRING, C(metadata_endpoint), NULL, 0, 0, 0,
	  0, "credentials = metadata: the metadata server [the source's]" },
	{ "journal", OPT_STRING, C(journal), NULL, 0, 0, 0, 0,
	  "follow the journal that `hylake replicate --follow` keeps on this "
	  "replica (a [replica NAME] of this file) instead of the "
	  "subscription: no Pub/Sub request from the mount" },
	{ "stall", OPT_DURATION, C(stall_ms), "10s", 1000, DAY, 0, 0,
	  "with no good pull for this long the feed counts as stalled and "
	  "bounded names are confirmed with GCS again" },
};
const size_t opt_count = sizeof(opt_table) / sizeof(opt_table[0]);

const struct opt_def *opt_find(enum opt_scope scope, const char *name)
{
	for (size_t i = 0; i < opt_count; i++)
		if (opt_table[i].scope == scope &&
		    strcmp(opt_table[i].name, name) == 0)
			return &opt_table[i];
	return NULL;
}

size_t opt_index(const struct opt_def *d)
{
	return (size_t)(d - opt_table);
}

static int parse_int(const char *v, int64_t *out)
{
	char *end;
	if (!*v || *v == '-')
		return -EINVAL;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

/* "4096", "512K", "512M", "2G", "1T" (binary units). */
static int size_parse(const char *v, int64_t *out)
{
	char *end;
	if (!*v || *v == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -EINVAL;
	int shift = 0;
	switch (*end) {
	case 'K': case 'k': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	case 'T': case 't': shift = 40; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end && end[1] && !(end[1] == 'i' && (end[2] == 'B' || !end[2])) &&
	    !(end[1] == 'B' && !end[2]))
		return -EINVAL;
	if (n > (unsigned long long)INT64_MAX >> shift)
		return -ERANGE;
	*out = (int64_t)(n << shift);
	return 0;
}

/* Octal permission bits: "0444", "755". */
static int mode_parse(const char *v, int64_t *out)
{
	char *end;
	if (!*v || *v == '-' || *v == '+')
		return -EINVAL;
	errno = 0;
	unsigned long m = strtoul(v, &end, 8);
	if (errno || *end)
		return -EINVAL;
	*out = (int64_t)m;
	return 0;
}

/* A user or group: a number, a name in the passwd/group database, or ""
 * for the mounting user's (-1). */
static int owner_parse(const char *v, bool user, int64_t *out)
{
	char buf[4096];
	if (!*v) {
		*out = -1;
		return 0;
	}
	if (parse_int(v, out) == 0)
		return 0;
	if (user) {
		struct passwd pw, *res = NULL;
		if (getpwnam_r(v, &pw, buf, sizeof(buf), &res) || !res)
			return -EINVAL;
		*out = res->pw_uid;
	} else {
		struct group gr, *res = NULL;
		if (getgrnam_r(v, &gr, buf, sizeof(buf), &res) || !res)
			return -EINVAL;
		*out = res->gr_gid;
	}
	return 0;
}

static int set_verify(void *field, const char *v, char *err, size_t len)
{
	static const enum verify_mode modes[] = { VERIFY_WHOLE_FIRST,
						  VERIFY_BLOCKS, VERIFY_TRUST };
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(v, verify_mode_name(modes[i])) == 0) {
			*(enum verify_mode *)field = modes[i];
			return 0;
		}
	}
	snprintf(err, len, "unknown verify mode '%s': expected whole-first, "
		 "blocks or trust", v);
	return -EINVAL;
}

static int set_freshness(const struct opt_def *d, void *field, const char *v,
		  char *err, size_t len)
{
	struct fresh_setting s;

	if (fresh_setting_parse(v, true, &s, err, len) < 0)
		return -EINVAL;
	if (s.kind == FRESH_BOUNDED && s.bound_ms > d->max) {
		char hi[32];
		duration_format(d->max, hi, sizeof(hi));
		snprintf(err, len, "'%s' = %s is out of range (a bound of at "
			 "most %s)", d->name, v, hi);
		return -EINVAL;
	}
	*(struct fresh_setting *)field = s;
	return 0;
}

/* yes|no, true|false, on|off, 1|0. */
static int bool_parse(const char *v, int64_t *out)
{
	static const char *const words[] = { "no", "yes", "false", "true",
					     "off", "on", "0", "1" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!strcmp(v, words[i])) {
			*out = (int64_t)(i % 2);
			return 0;
		}
	}
	return -EINVAL;
}

static int set_store_type(void *field, const char *v, char *err, size_t len)
{
	static const enum store_type types[] = { STORE_GCS, STORE_S3,
						 STORE_POSIX };
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(v, store_type_name(types[i])) == 0) {
			*(enum store_type *)field = types[i];
			return 0;
		}
	}
	snprintf(err, len, "unknown store type '%s': expected gcs, s3 or posix",
		 v);
	return -EINVAL;
}

int opt_set(const struct opt_def *d, void *base, const char *value,
	    char *err, size_t errlen)
{
	void *field = (char *)base + d->offset;
	int64_t n = 0;

	if (!*value && !d->allow_empty) {
		snprintf(err, errlen, "'%s' needs a value", d->name);
		return -EINVAL;
	}
	switch (d->type) {
	case OPT_PATH:
		if (value[0] != '/') {
			snprintf(err, errlen, "'%s' must be an absolute path, "
				 "not '%s'", d->name, value);
			return -EINVAL;
		}
		/* fall through */
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case OPT_DURATION:
		if (duration_parse_ms(value, &n) < 0) {
			snprintf(err, errlen, "bad duration '%s' for '%s': "
				 "expected e.g. 250ms, 5s, 2m", value, d->name);
			return -EINVAL;
		}
		break;
	case OPT_UINT:
		if (parse_int(value, &n) < 0) {
			snprintf(err, errlen, "bad number '%s' for '%s'", value,
				 d->name);
			return -EINVAL;
		}
		break;
	case OPT_LOGLEVEL:
		n = log_level_parse(value);
		if (n < 0) {
			snprintf(err, errlen, "bad log level '%s': expected err, "
				 "warning, notice, info, debug or trace", value);
			return -EINVAL;
		}
		*(int64_t *)field = n;
		return 0;
	case OPT_STORETYPE:
		return set_store_type(field, value, err, errlen);
	case OPT_VERIFY:
		return set_verify(field, value, err, errlen);
	case OPT_FRESHNESS:
		return set_freshness(d, field, value, err, errlen);
	case OPT_DURATION_OFF:
		if (strcmp(value, "off") == 0) {
			*(int64_t *)field = -1;
			return 0;
		}
		if (duration_parse_ms(value, &n) < 0) {
			snprintf(err, errlen, "bad value '%s' for '%s': expected "
				 "off or a duration such as 10m", value, d->name);
			return -EINVAL;
		}
		break;
	case OPT_MODE:
		if (mode_parse(value, &n) < 0) {
			snprintf(err, errlen, "bad mode '%s' for '%s': expected "
				 "octal permission bits such as 0444", value,
				 d->name);
			return -EINVAL;
		}
		break;
	case OPT_USER:
	case OPT_GROUP:
		if (owner_parse(value, d->type == OPT_USER, &n) < 0) {
			snprintf(err, errlen, "unknown %s '%s' for '%s'",
				 d->type == OPT_USER ? "user" : "group", value,
				 d->name);
			return -EINVAL;
		}
		break;
	case OPT_BOOL:
		if (bool_parse(value, &n) < 0) {
			snprintf(err, errlen, "bad value '%s' for '%s': expected "
				 "yes or no", value, d->name);
			return -EINVAL;
		}
		break;
	case OPT_SIZE:
		if (size_parse(value, &n) < 0) {
			snprintf(err, errlen, "bad size '%s' for '%s': expected "
				 "e.g. 512M or 2G", value, d->name);
			return -EINVAL;
		}
		break;
	}
	if (n < d->min || n > d->max) {
		char lo[32], hi[32];
		if (d->type == OPT_DURATION || d->type == OPT_DURATION_OFF) {
			duration_format(d->min, lo, sizeof(lo));
			duration_format(d->max, hi, sizeof(hi));
		} else {
			snprintf(lo, sizeof(lo), "%lld", (long long)d->min);
			snprintf(hi, sizeof(hi), "%lld", (long long)d->max);
		}
		snprintf(err, errlen, "'%s' = %s is out of range (%s to %s)",
			 d->name, value, lo, hi);
		return -EINVAL;
	}
	*(int64_t *)field = n;
	return 0;
}

void opt_defaults(enum opt_scope scope, void *base)
{
	char err[256];
	for (size_t i = 0; i < opt_count; i++) {
		const struct opt_def *d = &opt_table[i];
		if (d->scope == scope && d->def)
			opt_set(d, base, d->def, err, sizeof(err));
	}
}

void opt_release(enum opt_scope scope, void *base)
{
	for (size_t i = 0; i < opt_count; i++) {
		const struct opt_def *d = &opt_table[i];
		if (d->scope == scope &&
		    (d->type == OPT_STRING || d->type == OPT_PATH)) {
			char **p = (char **)((char *)base + d->offset);
			free(*p);
			*p = NULL;
		}
	}
}

void opt_print_help(FILE *out)
{
	const char *heading[] = { NULL, "[mount] settings (also -o NAME=VALUE)",
				  "[source] / [replica NAME] settings",
				  "[changes] settings (the GCS change feed)" };
	for (int scope = SCOPE_MOUNT; scope <= SCOPE_CHANGES; scope++) {
		fprintf(out, "\n%s:\n", heading[scope]);
		for (size_t i = 0; i < opt_count; i++) {
			const struct opt_def *d = &opt_table[i];
			if ((int)d->scope != scope)
				continue;
			fprintf(out, "  %-18s %s", d->name, d->help);
			if (d->def && *d->def)
				fprintf(out, " [%s]", d->def);
			fputc('\n', out);
		}
	}
}
