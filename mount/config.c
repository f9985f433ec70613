/*
 * config.c - read and validate the configuration file.
 *
 * inih does the parsing; a line-counting reader gives every message its
 * line number and catches lines too long for inih's buffer, so errors
 * are reported for the whole file, each as FILE:LINE: message.
 */
#include "mount/config.h"
#include "backends/composite/router.h"
#include "backends/http/http.h"
#include "mount/options.h"
#include "backends/util/secretfile.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64
#define MAX_SECTIONS 64

/* Where each key of a section was set, for messages and duplicates. */
struct section_lines {
	int header;
	int key[MAX_OPTS];
};

struct parse_state {
	FILE *f;
	FILE *errs;
	const char *path;
	struct hy_config *cfg;
	int line;                     /* line being parsed */
	int header_line;              /* line of the last [section] */
	bool new_header;              /* a header was read since the last key */
	int nerrors;
	int last_error_line;
	/* the section being filled */
	char *section;
	enum opt_scope scope;         /* 0: unknown section, keys ignored */
	void *base;
	bool in_freshness;            /* in [freshness]: GLOB = SETTING */
	struct section_lines *lines;
	/* sections seen so far */
	char *seen[MAX_SECTIONS];
	size_t nseen;
	struct section_lines mount_lines, source_lines, changes_lines;
	struct section_lines *replica_lines;
};

static void report(struct parse_state *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct parse_state *ps, int line, const char *fmt, ...)
{
	va_list ap;
	if (line > 0)
		fprintf(ps->errs, "%s:%d: ", ps->path, line);
	else
		fprintf(ps->errs, "%s: ", ps->path);
	va_start(ap, fmt);
	vfprintf(ps->errs, fmt, ap);
	va_end(ap);
	fputc('\n', ps->errs);
	ps->nerrors++;
	ps->last_error_line = line;
}

static char *reader(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;

	if (!fgets(str, num, ps->f))
		return NULL;
	ps->line++;
	size_t len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(ps->f)) {
		int c;
		report(ps, ps->line, "line longer than %d bytes", num - 2);
		while ((c = fgetc(ps->f)) != EOF && c != '\n')
			;
		str[0] = '\0';    /* let inih skip it */
		return str;
	}
	const char *p = str;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[') {
		ps->header_line = ps->line;
		ps->new_header = true;
	}
	return str;
}

static bool section_seen(struct parse_state *ps, const char *name)
{
	for (size_t i = 0; i < ps->nseen; i++)
		if (strcmp(ps->seen[i], name) == 0)
			return true;
	return false;
}

static bool valid_replica_name(const char *n)
{
	if (!*n)
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '-' && *n != '_' &&
		    *n != '.')
			return false;
	return true;
}

static void store_defaults(struct store_conf *s, const char *name, int line)
{
	memset(s, 0, sizeof(*s));
	opt_defaults(SCOPE_STORE, s);
	s->name = xstrdup(name);
	s->line = line;
}

/* A key arrived under a section we have not seen before. */
static void enter_section(struct parse_state *ps, const char *section)
{
	struct hy_config *cfg = ps->cfg;

	free(ps->section);
	ps->section = xstrdup(section);
	ps->scope = 0;
	ps->base = NULL;
	if (section_seen(ps, section)) {
		report(ps, ps->header_line, "section [%s] appears twice",
		       section);
		return;
	}
	if (ps->nseen < MAX_SECTIONS)
		ps->seen[ps->nseen++] = xstrdup(section);

	if (strcmp(section, "freshness") == 0) {
		ps->in_freshness = true;
		return;
	}
	ps->in_freshness = false;
	if (strcmp(section, "mount") == 0) {
		ps->scope = SCOPE_MOUNT;
		ps->base = &cfg->mount;
		ps->lines = &ps->mount_lines;
	} else if (strcmp(section, "source") == 0) {
		ps->scope = SCOPE_STORE;
		store_defaults(&cfg->source, "source", ps->header_line);
		ps->base = &cfg->source;
		ps->lines = &ps->source_lines;
	} else if (strcmp(section, "changes") == 0) {
		ps->scope = SCOPE_CHANGES;
		opt_defaults(SCOPE_CHANGES, &cfg->changes);
		cfg->changes.present = true;
		ps->base = &cfg->changes;
		ps->lines = &ps->changes_lines;
	} else if (strncmp(section, "replica ", 8) == 0) {
		const char *name = section + 8;
		while (*name == ' ')
			name++;
		if (!valid_replica_name(name) || strcmp(name, "source") == 0) {
			report(ps, ps->header_line, "bad replica name '%s': use "
			       "letters, digits, '-', '_' and '.'", name);
			return;
		}
		if (cfg->nreplicas == ROUTER_MAX_REPLICAS) {
			report(ps, ps->header_line, "too many replicas: at most "
			       "%d", ROUTER_MAX_REPLICAS);
			return;
		}
		size_t n = cfg->nreplicas++;
		cfg->replicas = xrealloc(cfg->replicas,
					 cfg->nreplicas * sizeof(*cfg->replicas));
		ps->replica_lines = xrealloc(ps->replica_lines,
			cfg->nreplicas * sizeof(*ps->replica_lines));
		store_defaults(&cfg->replicas[n], name, ps->header_line);
		cfg->replicas[n].replica = true;
		ps->scope = SCOPE_STORE;
		ps->base = &cfg->replicas[n];
		ps->lines = &ps->replica_lines[n];
	} else {
		report(ps, ps->header_line, "unknown section [%s]: expected "
		       "[mount], [source], [replica NAME], [freshness] or "
		       "[changes]", section);
		return;
	}
	memset(ps->lines, 0, sizeof(*ps->lines));
	ps->lines->header = ps->header_line;
}

/* One [freshness] line: GLOB = strict | bounded:DURATION | immutable. */
static int on_freshness(struct parse_state *ps, const char *glob,
			const char *value)
{
	struct hy_config *cfg = ps->cfg;
	struct fresh_setting s;
	char err[256];

	for (size_t i = 0; i < cfg->nfresh; i++)
		if (!strcmp(cfg->fresh[i].glob, glob)) {
			report(ps, ps->line, "pattern '%s' is set twice in "
			       "[freshness]", glob);
			return 1;
		}
	if (fresh_setting_parse(value, false, &s, err, sizeof(err)) < 0) {
		report(ps, ps->line, "%s", err);
		return 1;
	}
	cfg->fresh = xrealloc(cfg->fresh, (cfg->nfresh + 1) *
			      sizeof(*cfg->fresh));
	cfg->fresh[cfg->nfresh].glob = xstrdup(glob);
	cfg->fresh[cfg->nfresh++].s = s;
	return 1;
}

static int on_key(void *arg, const char *section, const char *name,
		  const char *value)
{
	struct parse_state *ps = arg;
	char err[512];

	if (!*section) {
		report(ps, ps->line, "'%s' is outside any section", name);
		return 1;
	}
	if (ps->new_header || !ps->section) {
		ps->new_header = false;
		enter_section(ps, section);
	}
	if (ps->in_freshness)
		return on_freshness(ps, name, value);
	if (!ps->base)
		return 1;         /* the section was already reported */
	const struct opt_def *d = opt_find(ps->scope, name);
	if (!d) {
		report(ps, ps->line, "unknown key '%s' in [%s]", name, section);
		return 1;
	}
	size_t i = opt_index(d);
	if (ps->lines->key[i]) {
		report(ps, ps->line, "'%s' is set twice in [%s] (first on line "
		       "%d)", name, section, ps->lines->key[i]);
		return 1;
	}
	ps->lines->key[i] = ps->line;
	if (opt_set(d, ps->base, value, err, sizeof(err)) < 0)
		report(ps, ps->line, "%s", err);
	return 1;
}

/* Normalise a prefix to "" or "a/b/"; reject unsafe ones. */
static int normalise_prefix(struct store_conf *s, char *err, size_t len)
{
	const char *p = s->prefix ? s->prefix : "";
	while (*p == '/')
		p++;
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, p);
	if (sb.len && sb.buf[sb.len - 1] != '/')
		strbuf_addch(&sb, '/');
	int rc = 0;
	if (strstr(sb.buf, "//") || strstr(sb.buf, "/./") ||
	    strstr(sb.buf, "/../") || !strncmp(sb.buf, "./", 2) ||
	    !strncmp(sb.buf, "../", 3)) {
		snprintf(err, len, "prefix '%s' has an empty, '.' or '..' "
			 "segment", s->prefix);
		rc = -EINVAL;
	}
	free(s->prefix);
	s->prefix = strbuf_detach(&sb, NULL);
	return rc;
}

/* The line of key name in a section of scope, else its header's. */
static int line_of(const struct section_lines *l, enum opt_scope scope,
		   const char *name)
{
	const struct opt_def *d = opt_find(scope, name);
	int line = d ? l->key[opt_index(d)] : 0;
	return line ? line : l->header;
}

static int key_line(const struct section_lines *l, const char *name)
{
	return line_of(l, SCOPE_STORE, name);
}

/* gcs: do requests carry a bearer token (a key file's, or the metadata
 * server's), that is, anything but credentials = none? */
static bool sends_token(const struct store_conf *s)
{
	return s->credentials && strcmp(s->credentials, "none") != 0;
}

/* s3: an absolute path; gcs: an absolute path, "metadata" or "none".
 * Files must pass the secret-file permission check. */
static void check_credentials(struct parse_state *ps,
			      const struct store_conf *s, int line)
{
	const char *c = s->credentials;
	char err[512];

	if (!c)
		return;
	if (s->type == STORE_GCS &&
	    (!strcmp(c, "metadata") || !strcmp(c, "none")))
		return;
	if (c[0] != '/') {
		report(ps, line, "'credentials' must be an absolute path%s, "
		       "not '%s'", s->type == STORE_GCS
		       ? ", 'metadata' or 'none'" : "", c);
		return;
	}
	if (secretfile_check(c, err, sizeof(err)) < 0)
		report(ps, line, "%s", err);
}

/* Which keys a store type needs, and which it does not understand. */
static void validate_store(struct parse_state *ps, struct store_conf *s,
			   const struct section_lines *l)
{
	static const char *const s3_keys[] = { "type", "endpoint", "bucket",
		"prefix", "region", "credentials", "profile", "generation_key",
		"verify", NULL };
	static const char *const s3_required[] = { "endpoint", "bucket",
						   "credentials", NULL };
	static const char *const gcs_keys[] = { "type", "endpoint", "bucket",
		"prefix", "credentials", "metadata_endpoint", "generation_key",
		"verify", NULL };
	static const char *const gcs_required[] = { "bucket", "credentials",
						    NULL };
	static const char *const posix_keys[] = { "type", "path", "prefix",
						  "generation_key", "verify",
						  NULL };
	static const char *const posix_required[] = { "path", NULL };
	const char *const *keys, *const *required;
	char err[512];

	switch (s->type) {
	case STORE_S3:
		keys = s3_keys;
		required = s3_required;
		break;
	case STORE_POSIX:
		keys = posix_keys;
		required = posix_required;
		break;
	case STORE_GCS:
		keys = gcs_keys;
		required = gcs_required;
		break;
	default:
		report(ps, l->header, "[%s] needs 'type' (gcs, s3 or posix)",
		       s->name);
		return;
	}
	for (size_t i = 0; i < opt_count; i++) {
		const struct opt_def *d = &opt_table[i];
		if (d->scope != SCOPE_STORE || !l->key[i])
			continue;
		bool ok = false;
		for (size_t k = 0; keys[k]; k++)
			ok = ok || strcmp(keys[k], d->name) == 0;
		if (!ok)
			report(ps, l->key[i], "'%s' does not apply to a store "
			       "of type %s", d->name, store_type_name(s->type));
		else if (!s->replica && (!strcmp(d->name, "generation_key") ||
					 !strcmp(d->name, "verify")))
			report(ps, l->key[i], "'%s' applies to replicas: %s",
			       d->name, d->name[0] == 'g'
			       ? "the source's generations are its own"
			       : "replicas are checked against the source");
	}
	for (size_t k = 0; required[k]; k++)
		if (!l->key[opt_index(opt_find(SCOPE_STORE, required[k]))])
			report(ps, l->header, "[%s] needs '%s'", s->name,
			       required[k]);
	if (normalise_prefix(s, err, sizeof(err)) < 0)
		report(ps, key_line(l, "prefix"), "%s", err);
	check_credentials(ps, s, key_line(l, "credentials"));
	if (s->endpoint && strncmp(s->endpoint, "http://", 7) &&
	    strncmp(s->endpoint, "https://", 8))
		report(ps, key_line(l, "endpoint"), "endpoint '%s' must be an "
		       "http:// or https:// URL", s->endpoint);
	if (s->type == STORE_GCS && s->endpoint && sends_token(s) &&
	    !strncmp(s->endpoint, "http://", 7) &&
	    !http_url_private(s->endpoint))
		report(ps, key_line(l, "endpoint"), "endpoint '%s' would send "
		       "the bearer token in clear: use https:// "
		       "(plain http:// is allowed to a loopback address only, "
		       "for tests and emulators) or credentials = none",
		       s->endpoint);
	if (s->metadata_endpoint &&
	    (!s->credentials || strcmp(s->credentials, "metadata") != 0))
		report(ps, key_line(l, "metadata_endpoint"), "'metadata_endpoint' "
		       "only applies with credentials = metadata");
}

/*
 * [changes]: a subscription, a GCS source whose notifications it
 * carries, credentials (the source's unless given) that are not sent in
 * clear.
 */
static void validate_changes(struct parse_state *ps, struct hy_config *cfg)
{
	struct changes_conf *c = &cfg->changes;
	const struct section_lines *l = &ps->changes_lines;
	int sub_line = line_of(l, SCOPE_CHANGES, "subscription");
	int ep_line = line_of(l, SCOPE_CHANGES, "endpoint");

	if (c->journal) {
		bool found = false;
		for (size_t i = 0; i < cfg->nreplicas; i++)
			found |= !strcmp(cfg->replicas[i].name, c->journal);
		if (!found)
			report(ps, line_of(l, SCOPE_CHANGES, "journal"),
			       "journal = %s: no [replica %s] in this file",
			       c->journal, c->journal);
	}
	if (!c->subscription && !c->journal)
		report(ps, l->header, "[changes] needs 'subscription' "
		       "(projects/PROJECT/subscriptions/NAME) or 'journal' "
		       "(a replica whose site journal to follow)");
	else if (c->subscription &&
		 (strncmp(c->subscription, "projects/", 9) ||
		  !strstr(c->subscription, "/subscriptions/")))
		report(ps, sub_line, "subscription '%s': expected "
		       "projects/PROJECT/subscriptions/NAME", c->subscription);
	if (cfg->source.name && cfg->source.type != STORE_GCS)
		report(ps, l->header, "[changes] follows GCS notifications: "
		       "the source must be of type gcs");
	if (!c->credentials && cfg->source.credentials)
		c->credentials = xstrdup(cfg->source.credentials);
	if (!c->metadata_endpoint && cfg->source.metadata_endpoint)
		c->metadata_endpoint = xstrdup(cfg->source.metadata_endpoint);
	struct store_conf as = { .type = STORE_GCS, .name = "changes",
				 .credentials = c->credentials,
				 .metadata_endpoint = c->metadata_endpoint };
	check_credentials(ps, &as, line_of(l, SCOPE_CHANGES, "credentials"));
	if (strncmp(c->endpoint, "http://", 7) &&
	    strncmp(c->endpoint, "https://", 8))
		report(ps, ep_line, "endpoint '%s' must "
		       "be an http:// or https:// URL", c->endpoint);
	else if (sends_token(&as) && !strncmp(c->endpoint, "http://", 7) &&
		 !http_url_private(c->endpoint))
		report(ps, ep_line, "endpoint '%s' would "
		       "send the bearer token in clear: use https:// (plain "
		       "http:// is allowed to a loopback address only) or "
		       "credentials = none", c->endpoint);
}

const struct store_conf *config_write_back(const struct hy_config *cfg)
{
	for (size_t i = 0; cfg->mount.write_back && i < cfg->nreplicas; i++)
		if (!strcmp(cfg->replicas[i].name, cfg->mount.write_back))
			return &cfg->replicas[i];
	return NULL;
}

/* write_back names a replica this mount can put copies on. */
static void validate_write_back(struct parse_state *ps,
				const struct hy_config *cfg)
{
	int line = line_of(&ps->mount_lines, SCOPE_MOUNT, "write_back");
	const struct store_conf *c = config_write_back(cfg);
	if (!c)
		report(ps, line, "write_back = %s: no [replica %s] in this "
		       "file (write_back names the replica, on this host's "
		       "site, that files written are also put on)",
		       cfg->mount.write_back, cfg->mount.write_back);
	else if (c->type != STORE_S3 && c->type != STORE_POSIX)
		report(ps, line, "write_back = %s: a replica of type %s "
		       "cannot be written; only s3 and posix replicas can",
		       c->name, store_type_name(c->type));
}

static void release_parse_state(struct parse_state *ps)
{
	free(ps->section);
	for (size_t i = 0; i < ps->nseen; i++)
		free(ps->seen[i]);
	free(ps->replica_lines);
}

int config_load(const char *path, struct hy_config *cfg, FILE *errs)
{
	struct parse_state ps = { .errs = errs, .path = path, .cfg = cfg };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = xstrdup(path);
	opt_defaults(SCOPE_MOUNT, &cfg->mount);
	ps.f = fopen(path, "r");
	if (!ps.f) {
		rc = -errno;
		fprintf(errs, "%s: cannot read config: %s\n", path,
			strerror(-rc));
		config_release(cfg);
		return rc;
	}
	rc = ini_parse_stream(reader, &ps, on_key, &ps);
	fclose(ps.f);
	if (rc > 0 && rc != ps.last_error_line)
		report(&ps, rc, "syntax error: expected '[section]' or "
		       "'key = value'");
	else if (rc < 0)
		report(&ps, 0, "cannot parse (out of memory)");

	if (!cfg->source.name)
		report(&ps, 0, "no [source] section: the store that is the "
		       "source of truth must be configured");
	else
		validate_store(&ps, &cfg->source, &ps.source_lines);
	for (size_t i = 0; i < cfg->nreplicas; i++)
		validate_store(&ps, &cfg->replicas[i], &ps.replica_lines[i]);
	if (cfg->changes.present)
		validate_changes(&ps, cfg);
	if (cfg->mount.writable && cfg->source.name &&
	    cfg->source.type != STORE_GCS)
		report(&ps, line_of(&ps.mount_lines, SCOPE_MOUNT, "writable"),
		       "%s", config_writable_error(cfg));
	if (cfg->mount.write_back)
		validate_write_back(&ps, cfg);
	release_parse_state(&ps);
	if (ps.nerrors) {
		config_release(cfg);
		return -EINVAL;
	}
	config_finish(cfg);
	return 0;
}

const char *config_writable_error(const struct hy_config *cfg)
{
	if (!cfg->mount.writable || cfg->source.type == STORE_GCS)
		return NULL;
	return "writable = yes needs a source of type gcs: writes go to GCS "
	       "under a generation precondition, which other stores cannot "
	       "check";
}

int config_set_option(struct hy_config *cfg, const char *name,
		      const char *value, char *err, size_t errlen)
{
	const struct opt_def *d = opt_find(SCOPE_MOUNT, name);
	if (!d || !d->cli) {
		snprintf(err, errlen, "unknown option '%s'", name);
		return -EINVAL;
	}
	return opt_set(d, &cfg->mount, value, err, errlen);
}

static void finish_store(const struct mount_conf *m, struct store_conf *s)
{
	s->net = m->net;
	s->net.stall_bytes = 1024;
	s->net.backoff_base_ms = 100;
	s->net.backoff_max_ms = 5000;
	s->list_page_size = m->list_page_size;
}

void config_finish(struct hy_config *cfg)
{
	if (cfg->source.name)
		finish_store(&cfg->mount, &cfg->source);
	for (size_t i = 0; i < cfg->nreplicas; i++)
		finish_store(&cfg->mount, &cfg->replicas[i]);
	if (cfg->changes.present) {
		cfg->changes.net = cfg->mount.net;
		cfg->changes.net.stall_bytes = 1024;
		cfg->changes.net.backoff_base_ms = 100;
		cfg->changes.net.backoff_max_ms = 5000;
	}
}

void config_release(struct hy_config *cfg)
{
	opt_release(SCOPE_MOUNT, &cfg->mount);
	if (cfg->changes.present)
		opt_release(SCOPE_CHANGES, &cfg->changes);
	store_conf_release(&cfg->source);
	for (size_t i = 0; i < cfg->nreplicas; i++)
		store_conf_release(&cfg->replicas[i]);
	free(cfg->replicas);
	for (size_t i = 0; i < cfg->nfresh; i++)
		free(cfg->fresh[i].glob);
	free(cfg->fresh);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}
