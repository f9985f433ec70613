/*
 * status.c - `hylake status MOUNTPOINT`: read the mount's figures (the
 * Prometheus text of metrics.c, from the user.hylake.metrics attribute
 * of its root) and print them for a person, or as they are with
 * --prometheus.
 *
 * The text is parsed only as far as this program writes it: one sample
 * per line, at most one label (store="NAME").
 */
#include "mount/status.h"
#include "mount/cli.h"
#include "mount/human.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#define VALUE_MAX 65536          /* XATTR_SIZE_MAX */
#define STORES_MAX 16

struct sample {
	char name[96];
	char store[64];              /* "" when unlabelled */
	double v;
};

struct figures {
	struct sample *s;
	size_t n;
	char stores[STORES_MAX][64]; /* in the order first seen */
	size_t nstores;
	char version[32];
	char via[64];                /* how the change feed is followed */
};

static void parse(char *text, struct figures *f)
{
	size_t alloc = 0;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		struct sample x = { .v = 0 };
		char *sp = strrchr(l, ' ');
		if (l[0] == '#' || !sp)
			continue;
		*sp = '\0';
		x.v = strtod(sp + 1, NULL);
		char *brace = strchr(l, '{');
		if (brace) {
			*brace = '\0';
			char *q1 = strchr(brace + 1, '"');
			char *q2 = q1 ? strrchr(q1 + 1, '"') : NULL;
			if (q1 && q2) {
				*q2 = '\0';
				if (!strncmp(brace + 1, "version=", 8))
					snprintf(f->version, sizeof(f->version),
						 "%s", q1 + 1);
				else if (!strncmp(brace + 1, "via=", 4))
					snprintf(f->via, sizeof(f->via), "%s",
						 q1 + 1);
				else
					snprintf(x.store, sizeof(x.store), "%s",
						 q1 + 1);
			}
		}
		snprintf(x.name, sizeof(x.name), "%s", l);
		if (x.store[0]) {
			size_t i = 0;
			while (i < f->nstores && strcmp(f->stores[i], x.store))
				i++;
			if (i == f->nstores && i < STORES_MAX)
				snprintf(f->stores[f->nstores++], 64, "%s",
					 x.store);
		}
		if (f->n == alloc) {
			alloc = alloc ? 2 * alloc : 64;
			f->s = xrealloc(f->s, alloc * sizeof(*f->s));
		}
		f->s[f->n++] = x;
	}
}

/* The value of name (for store, or unlabelled when store is NULL);
 * def when absent. */
static double get(const struct figures *f, const char *name,
		  const char *store, double def)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->s[i].name, name) &&
		    !strcmp(f->s[i].store, store ? store : ""))
			return f->s[i].v;
	return def;
}

static bool has(const struct figures *f, const char *name, const char *store)
{
	return get(f, name, store, -1.5) != -1.5;
}

static void ms_text(double seconds, char *buf, size_t len)
{
	if (seconds != seconds)              /* NaN: too few reads */
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f ms", seconds * 1e3);
}

static void pct_text(double part, double whole, char *buf, size_t len)
{
	if (whole <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * part / whole);
}

static void print_stores(const struct figures *f)
{
	printf("%-12s %-6s %10s %10s %7s %9s %9s %9s %7s\n", "store",
	       "health", "reads", "bytes", "errors", "p95", "average",
	       "requests", "retries");
	for (size_t i = 0; i < f->nstores; i++) {
		const char *s = f->stores[i];
		char b[32], p95[32], avg[32], req[32], ret[32];
		bool open = get(f, "hylake_store_breaker_open", s, 0) > 0;
		human_bytes(get(f, "hylake_store_read_bytes_total", s, 0), b,
			   sizeof(b));
		ms_text(get(f, "hylake_store_read_latency_p95_seconds", s,
			    0.0 / 0.0), p95, sizeof(p95));
		ms_text(get(f, "hylake_store_read_latency_ewma_seconds", s,
			    0.0 / 0.0), avg, sizeof(avg));
		if (has(f, "hylake_store_requests_total", s)) {
			snprintf(req, sizeof(req), "%.0f",
				 get(f, "hylake_store_requests_total", s, 0));
			snprintf(ret, sizeof(ret), "%.0f",
				 get(f, "hylake_store_retries_total", s, 0));
		} else {
			snprintf(req, sizeof(req), "-");   /* not HTTP */
			snprintf(ret, sizeof(ret), "-");
		}
		printf("%-12s %-6s %10.0f %10s %7.0f %9s %9s %9s %7s\n", s,
		       open ? "DOWN" : "ok",
		       get(f, "hylake_store_reads_total", s, 0), b,
		       get(f, "hylake_store_read_errors_total", s, 0) +
		       get(f, "hylake_store_request_errors_total", s, 0),
		       p95, avg, req, ret);
	}
}

static void print_human(const char *mnt, const struct figures *f)
{
	char a[32], b[32], c[32];
	double started = get(f, "hylake_start_time_seconds", NULL, 0);
	long up = started > 0 ? (long)((double)time(NULL) - started) : 0;

	printf("%s: hylake %s, up %ldh%02ldm%02lds\n\n", mnt,
	       f->version[0] ? f->version : "?", up / 3600, up % 3600 / 60,
	       up % 60);
	if (f->nstores)
		print_stores(f);
	else
		printf("one local store (no replicas): no per-store "
		       "figures\n");

	double reads = get(f, "hylake_reads_total", NULL, 0);
	human_bytes(get(f, "hylake_read_bytes_total", NULL, 0), a, sizeof(a));
	printf("\nreads         %.0f (%s) by applications\n", reads, a);
	if (has(f, "hylake_router_reads_total", NULL)) {
		double rr = get(f, "hylake_router_reads_total", NULL, 0);
		double fb = get(f, "hylake_source_fallbacks_total", NULL, 0);
		pct_text(fb, rr, b, sizeof(b));
		printf("routing       %.0f store reads; %.0f fell back to the "
		       "source (%s); %.0f failovers; %.0f hedged (%.0f won by "
		       "the hedge)\n", rr, fb, b,
		       get(f, "hylake_failovers_total", NULL, 0),
		       get(f, "hylake_hedged_reads_total", NULL, 0),
		       get(f, "hylake_hedge_wins_total", NULL, 0));
	}
	if (has(f, "hylake_staging_limit_bytes", NULL)) {
		human_bytes(get(f, "hylake_staged_bytes", NULL, 0), a,
			    sizeof(a));
		human_bytes(get(f, "hylake_staging_limit_bytes", NULL, 0), b,
			    sizeof(b));
		double rep = get(f, "hylake_staged_reported", NULL, 0);
		printf("staging       %.0f files (%s of %s) wait for close; at "
		       "start %.0f uploads finished, %.0f kept to retry; %.0f "
		       "NOT uploaded%s\n", get(f, "hylake_staged_files", NULL, 0),
		       a, b, get(f, "hylake_staged_recovered_total", NULL, 0),
		       get(f, "hylake_staged_pending", NULL, 0), rep,
		       rep > 0 ? " (see the log; kept in STAGING_DIR/reported)"
			       : "");
	}
	if (has(f, "hylake_write_backs_total", NULL) &&
	    get(f, "hylake_write_backs_total", NULL, 0) +
	    get(f, "hylake_write_back_failures_total", NULL, 0) > 0)
		printf("write-back    %.0f files put on the site at close; "
		       "%.0f failed or skipped (see the log)\n",
		       get(f, "hylake_write_backs_total", NULL, 0),
		       get(f, "hylake_write_back_failures_total", NULL, 0));
	if (get(f, "hylake_cache_enabled", NULL, 0) > 0) {
		/* Of the bytes that had to come from somewhere other than
		 * read-ahead memory: the share the block cache gave. */
		double h = get(f, "hylake_cache_read_bytes_total", NULL, 0);
		double m = get(f, "hylake_fetched_bytes_total", NULL, 0);
		char hb[32], mb[32];
		pct_text(h, h + m, a, sizeof(a));
		human_bytes(h, hb, sizeof(hb));
		human_bytes(m, mb, sizeof(mb));
		human_bytes(get(f, "hylake_cache_bytes", NULL, 0), b, sizeof(b));
		human_bytes(get(f, "hylake_cache_limit_bytes", NULL, 0), c,
			   sizeof(c));
		printf("block cache   hit ratio %s (%s from the cache, %s from "
		       "stores); holds %s of %s; %.0f blocks read once, not "
		       "stored; %.0f evictions, %.0f corrupt blocks dropped\n",
		       a, hb, mb, b, c,
		       get(f, "hylake_cache_first_touches_total", NULL, 0),
		       get(f, "hylake_cache_evictions_total", NULL, 0),
		       get(f, "hylake_cache_corrupt_blocks_total", NULL, 0));
	} else {
		printf("block cache   off\n");
	}
	if (has(f, "hylake_metadata_cache_hits_total", NULL)) {
		double h = get(f, "hylake_metadata_cache_hits_total", NULL, 0);
		double m = get(f, "hylake_metadata_cache_misses_total", NULL,
			       0);
		pct_text(h, h + m, a, sizeof(a));
		printf("metadata      hit ratio %s (%.0f hits, %.0f misses), "
		       "%.0f entries\n", a, h, m,
		       get(f, "hylake_metadata_cache_entries", NULL, 0));
	}
	if (has(f, "hylake_vmap_names", NULL)) {
		double l = get(f, "hylake_vmap_lookups_total", NULL, 0);
		pct_text(get(f, "hylake_vmap_memory_hits_total", NULL, 0), l, a,
			 sizeof(a));
		human_bytes(get(f, "hylake_vmap_bytes", NULL, 0), b, sizeof(b));
		human_bytes(get(f, "hylake_vmap_limit_bytes", NULL, 0), c,
			   sizeof(c));
		double lost = get(f, "hylake_vmap_lost_facts_total", NULL, 0);
		printf("version map   %.0f names in %s of %s; %s of %.0f "
		       "lookups from memory; %.0f names evicted; %.0f facts "
		       "dropped (writer behind), %.0f lost%s\n",
		       get(f, "hylake_vmap_names", NULL, 0), b, c, a, l,
		       get(f, "hylake_vmap_evicted_total", NULL, 0),
		       get(f, "hylake_vmap_dropped_facts_total", NULL, 0), lost,
		       lost > 0 ? " (see the log)" : "");
	}
	if (has(f, "hylake_feed_healthy", NULL)) {
		bool ok = get(f, "hylake_feed_healthy", NULL, 0) > 0;
		printf("change feed   %s%s%s", ok ? "following" : "STALLED: "
		       "bounded names are confirmed with GCS",
		       f->via[0] ? " the " : "", f->via[0] ? f->via : "");
		if (has(f, "hylake_journal_heartbeat_age_seconds", NULL))
			printf("; heartbeat %.1f s ago, %.0f batches behind",
			       get(f, "hylake_journal_heartbeat_age_seconds",
				   NULL, 0),
			       get(f, "hylake_journal_behind_batches", NULL, 0));
		if (has(f, "hylake_feed_last_pull_age_seconds", NULL))
			printf("; last pull %.1f s ago", get(f,
			       "hylake_feed_last_pull_age_seconds", NULL, 0));
		else
			printf("; no good pull yet");
		if (has(f, "hylake_feed_lag_seconds", NULL))
			printf("; lag %.1f s", get(f, "hylake_feed_lag_seconds",
						   NULL, 0));
		printf("; %.0f changes applied, %.0f duplicate or stale, "
		       "%.0f gaps\n", get(f, "hylake_feed_applied_total", NULL, 0),
		       get(f, "hylake_feed_stale_total", NULL, 0),
		       get(f, "hylake_feed_gaps_total", NULL, 0));
	}
	human_bytes(get(f, "hylake_readahead_memory_bytes", NULL, 0), a,
		   sizeof(a));
	human_bytes(get(f, "hylake_readahead_memory_peak_bytes", NULL, 0), b,
		   sizeof(b));
	human_bytes(get(f, "hylake_readahead_memory_limit_bytes", NULL, 0), c,
		   sizeof(c));
	printf("read-ahead    %.0f fetches (%.0f ahead, %.0f unused); "
	       "memory %s, peak %s of %s\n",
	       get(f, "hylake_fetches_total", NULL, 0),
	       get(f, "hylake_readahead_fetches_total", NULL, 0),
	       get(f, "hylake_readahead_unused_total", NULL, 0), a, b, c);
}

int status_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "prometheus", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool prom = false, bad = false, help = false;
	const char *mnt = NULL;
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "ph", longopts)) != -1) {
		prom |= c == 'p';
		help |= c == 'h';
		bad |= c != 'p' && c != 'h';
	}
	if (!bad && !help && argc - optind == 1)
		mnt = argv[optind];
	if (!mnt) {
		fprintf(help && !bad ? stdout : stderr, "usage: hylake status "
			"MOUNTPOINT [--prometheus]\n");
		return help && !bad ? 0 : 2;
	}
	char *buf = xmalloc(VALUE_MAX + 1);
	ssize_t n = getxattr(mnt, "user.hylake.metrics", buf, VALUE_MAX);
	if (n < 0) {
		int e = errno;
		if (e == ENODATA || e == ENOTSUP)
			fprintf(stderr, "hylake: %s is not the mount point of "
				"a hylake mount\n", mnt);
		else
			fprintf(stderr, "hylake: %s: %s\n", mnt, strerror(e));
		free(buf);
		return 1;
	}
	buf[n] = '\0';
	if (prom) {
		fwrite(buf, 1, (size_t)n, stdout);
	} else {
		struct figures f = { 0 };
		parse(buf, &f);
		print_human(mnt, &f);
		free(f.s);
	}
	free(buf);
	return fflush(stdout) == 0 ? 0 : 1;
}
