/*
 * config.h - the configuration file (INI, parsed with inih).
 *
 *   [mount]           settings of the mount (see `hylake --help`)
 *   [source]          the source of truth: type = gcs | s3 | posix
 *   [replica NAME]    zero or more replicas, in order of preference
 *   [freshness]       GLOB = strict | bounded:DURATION | immutable, per
 *                     name, first match wins (freshness.h)
 *
 * Every problem is reported as "FILE:LINE: what is wrong"; unknown
 * sections and keys are errors.  Credentials files are checked for
 * permissions here, before anything starts.
 */
#ifndef HYLAKE_CONFIG_H
#define HYLAKE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "backends/store.h"
#include "backends/composite/freshness.h"

struct mount_conf {
	char *state_dir;
	struct net_conf net;
	int64_t op_timeout_ms;
	int64_t entry_timeout_ms;
	int64_t attr_timeout_ms;
	int64_t negative_timeout_ms;
	int64_t threads;
	int64_t log_level;
	int64_t list_page_size;
	struct fresh_setting freshness;  /* the default of every name */
	int64_t serve_stale_ms;        /* -1: off */
	int64_t replica_recheck_ms;
	int64_t hedge_budget_pct;
	int64_t map_size;
	char *cache_dir;               /* NULL: /var/cache/hylake/BUCKET */
	int64_t cache_size;            /* 0: no block cache */
	int64_t cache_first_read;      /* store blocks read once, too */
	int64_t cache_min_free;
	int64_t memory_limit;          /* read-ahead buffers, all files */
	int64_t read_ahead;            /* largest window of one file */
	int64_t metadata_cache_size;   /* 0: no metadata cache */
	int64_t uid, gid;              /* owner shown; -1: the mounting user */
	int64_t file_mode, dir_mode;   /* permission bits shown */
	char *metrics_listen;          /* "127.0.0.1:9464"; NULL: none */
	char *metrics_file;            /* textfile for node_exporter */
	int64_t metrics_interval_ms;   /* how often metrics_file is rewritten */
	int64_t writable;              /* 1: a read-write mount (GCS source) */
	int64_t lease_ms;              /* lock leases across hosts */
	char *staging_dir;             /* NULL: STATE_DIR/staging */
	int64_t staging_size;          /* bytes staged files may hold */
	char *write_back;              /* a replica's name: files written
	                                  are also put there; NULL: none */
};

/* [changes]: the GCS change feed the mount follows (feed.h). */
struct changes_conf {
	bool present;                  /* the section is in the file */
	char *subscription;            /* projects/P/subscriptions/S */
	char *journal;                 /* a replica's name: follow the site
	                                  journal there (journal.h) */
	char *endpoint;                /* Pub/Sub: https://pubsub.googleapis.com */
	char *credentials;             /* NULL: the source's */
	char *metadata_endpoint;       /* NULL: the source's */
	int64_t stall_ms;              /* no good pull this long: stalled */
	struct net_conf net;           /* the mount's, copied */
};

struct hy_config {
	char *path;
	struct changes_conf changes;
	struct mount_conf mount;
	struct store_conf source;
	struct store_conf *replicas;
	size_t nreplicas;
	struct fresh_pattern *fresh;   /* [freshness] GLOB = SETTING, in order */
	size_t nfresh;
};

/*
 * Load and validate path.  Errors are printed to errs, one per line.
 * Returns 0 or -EINVAL (config wrong) / -errno (cannot read it).
 * On error cfg is released.
 */
int config_load(const char *path, struct hy_config *cfg, FILE *errs);

/* Why the mount cannot be writable as configured (a writable mount
 * needs a GCS source), or NULL when it can.  A static string. */
const char *config_writable_error(const struct hy_config *cfg);

/* The replica write_back names (NULL when unset).  Only a valid
 * configuration (config_load) promises it is an s3 or posix replica. */
const struct store_conf *config_write_back(const struct hy_config *cfg);

/* Apply one "-o name=value" mount setting.  0 or -EINVAL + err. */
int config_set_option(struct hy_config *cfg, const char *name,
		      const char *value, char *err, size_t errlen);

/* Copy the mount-wide settings (timeouts, page size) into every store.
 * Call after the last config_set_option(). */
void config_finish(struct hy_config *cfg);

void config_release(struct hy_config *cfg);

#endif
