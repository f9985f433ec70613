/*
 * options.h - the one table of settings.
 *
 * Every setting hylake knows is a row here: name, type, default, bounds,
 * where it may appear ([mount], a store section, -o) and its help text.
 * The config parser, -o parsing and --help all read this table, so they
 * cannot disagree.
 */
#ifndef HYLAKE_OPTIONS_H
#define HYLAKE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
	OPT_STRING,       /* char *, may be empty when allow_empty */
	OPT_PATH,         /* char *, absolute path */
	OPT_DURATION,     /* int64_t milliseconds */
	OPT_UINT,         /* int64_t */
	OPT_LOGLEVEL,     /* int64_t syslog level */
	OPT_STORETYPE,    /* enum store_type */
	OPT_FRESHNESS,    /* struct fresh_setting */
	OPT_DURATION_OFF, /* int64_t ms, or -1 for "off" */
	OPT_SIZE,         /* int64_t bytes: 512M, 1G, ... */
	OPT_MODE,         /* int64_t permission bits, octal: 0444 */
	OPT_USER,         /* int64_t uid from a number or user name; -1: "" */
	OPT_GROUP,        /* int64_t gid from a number or group name; -1: "" */
	OPT_VERIFY,       /* enum verify_mode */
	OPT_BOOL,         /* int64_t 1 or 0: yes|no (also true|false, on|off,
	                     1|0, or the bare name after -o) */
};

enum opt_scope {
	SCOPE_MOUNT = 1,  /* [mount] section, offsets into struct mount_conf */
	SCOPE_STORE = 2,  /* [source]/[replica X], into struct store_conf */
	SCOPE_CHANGES = 3,  /* [changes], into struct changes_conf */
};

struct opt_def {
	const char *name;
	enum opt_type type;
	enum opt_scope scope;
	size_t offset;
	const char *def;          /* default as written in a config; NULL: none */
	int64_t min, max;         /* bounds for numbers and durations */
	int allow_empty;
	int cli;                  /* may be given with -o */
	const char *help;
};

extern const struct opt_def opt_table[];
extern const size_t opt_count;

const struct opt_def *opt_find(enum opt_scope scope, const char *name);
size_t opt_index(const struct opt_def *d);

/* Parse value into the field d describes in base.  0 or -EINVAL + err. */
int opt_set(const struct opt_def *d, void *base, const char *value,
	    char *err, size_t errlen);

/* Set every default of scope in base. */
void opt_defaults(enum opt_scope scope, void *base);

/* Free the strings of scope in base. */
void opt_release(enum opt_scope scope, void *base);

/* The settings part of --help. */
void opt_print_help(FILE *out);

#endif
