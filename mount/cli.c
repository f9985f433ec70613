/*
 * cli.c - the command line: `hylake mount|check|--help|--version`, the
 * dispatch to the other subcommands (explain, status, warm, replicate:
 * each in its own file, each parsing its arguments with cli_getopt), and
 * the mount(8) helper `mount.hylake SPEC DIR [-sfnv] [-o OPTIONS]`.
 *
 * Exit codes: 0 success, 1 a store or the mount failed, 2 bad usage or
 * configuration.
 */
#include "mount/cli.h"
#include "mount/changes.h"
#include "mount/config.h"
#include "mount/daemon.h"
#include "mount/explain.h"
#include "mount/metrics.h"
#include "mount/options.h"
#include "mount/replicate.h"
#include "mount/stack.h"
#include "mount/status.h"
#include "mount/warm.h"
#include "backends/backend.h"
#include "backends/composite/lease.h"
#include "backends/composite/router.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"
#include "fs/fs.h"
#include "fs/staging.h"
#include "cache/readpath.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <mntent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct mount_args {
	const char *config;          /* as given: messages quote it */
	char *config_abs;            /* absolute: the daemon leaves the cwd */
	char *mountpoint;            /* absolute */
	bool foreground;
	bool debug;
	bool verbose;                /* mount.hylake -v: debug logging */
	struct strbuf opts;          /* raw -o list, comma separated */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hylake mount CONFIG MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
		"       hylake check CONFIG\n"
		"       hylake explain PATH...\n"
		"       hylake status MOUNTPOINT [--prometheus]\n"
		"       hylake warm PATH... [--jobs N]\n"
		"       hylake replicate CONFIG --to REPLICA [--prefix P]\n"
		"       hylake --help | --version\n"
		"\n"
		"  mount   mount the lake described by CONFIG on MOUNTPOINT;\n"
		"          returns once the mount answers (-f: stay in the\n"
		"          foreground, -d: debug logging)\n"
		"  check   contact every store of CONFIG and report, one line\n"
		"          per store\n"
		"  explain which store serves a file of a mount, and what every\n"
		"          store holds of it\n"
		"  status  a mount's stores (health, latency, requests, bytes,\n"
		"          errors), fallbacks to the source, cache hit ratios\n"
		"          (--prometheus: as Prometheus text)\n"
		"  warm    read files (folders: every file beneath) through the\n"
		"          mount so the block cache keeps them; progress on a\n"
		"          terminal\n"
		"  replicate  copy what REPLICA lacks from the source, stamped\n"
		"          with its generation (see hylake replicate --help)\n"
		"\n"
		"OPTIONS is a comma-separated list of [mount] settings\n"
		"(NAME=VALUE) and FUSE mount options (allow_other,\n"
		"default_permissions, ...).  Unmount with umount or\n"
		"fusermount3 -u.\n");
	opt_print_help(out);
}

/*
 * Split -o OPTIONS: hylake settings go into cfg, the rest are returned
 * as a FUSE option string.  Returns 0 or -EINVAL (message printed).
 */
static int split_options(struct hy_config *cfg, const char *opts,
			 struct strbuf *fuse_opts)
{
	char *copy = xstrdup(opts), *save = NULL;
	int rc = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char err[512];
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = '\0';
		/* rw and ro say whether the mount is writable; a bare
		 * yes/no setting (-o writable) means yes */
		const char *name = tok, *value = eq ? eq + 1 : "";
		if (!eq && (!strcmp(tok, "rw") || !strcmp(tok, "ro"))) {
			value = tok[1] == 'w' ? "yes" : "no";
			name = "writable";
		}
		const struct opt_def *d = opt_find(SCOPE_MOUNT, name);
		if (d && d->cli) {
			if (!eq && d->type == OPT_BOOL && name == tok)
				value = "yes";
			if (config_set_option(cfg, name, value, err,
					      sizeof(err)) < 0) {
				fprintf(stderr, "hylake: -o %s\n", err);
				rc = -EINVAL;
			}
			continue;
		}
		if (eq)
			*eq = '=';
		if (fuse_opts->len)
			strbuf_addch(fuse_opts, ',');
		strbuf_adds(fuse_opts, tok);
	}
	free(copy);
	return rc;
}

struct ready_ctx {
	const char *mountpoint;
	int report_fd;             /* -1 in the foreground */
	const char *banner;
	struct fs *fs;
};

/* Wait until the mount answers, then tell whoever is waiting. */
static void *ready_thread(void *arg)
{
	struct ready_ctx *rc = arg;
	struct stat st;
	int err = stat(rc->mountpoint, &st) < 0 ? errno : 0;

	if (err) {
		log_err("mount on %s does not answer: %s", rc->mountpoint,
			strerror(err));
	} else {
		fs_mount_ready(rc->fs, rc->mountpoint);
		log_notice("%s", rc->banner);
	}
	if (rc->report_fd >= 0) {
		struct strbuf m = STRBUF_INIT;
		if (err)
			strbuf_addf(&m, "hylake: mount on %s does not answer: %s",
				    rc->mountpoint, strerror(err));
		daemon_report(rc->report_fd, err ? EXIT_FAIL : 0, m.buf);
		strbuf_release(&m);
		if (!err)
			daemon_detach_stdio();
	}
	return NULL;
}

/* Report a start-up failure to the right place. */
__attribute__((format(printf, 3, 4)))
static int fail(int report_fd, int status, const char *fmt, ...)
{
	char msg[2048];          /* err buffers are 1 KiB: room to spare */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (report_fd >= 0)
		daemon_report(report_fd, status, msg);
	else
		fprintf(stderr, "%s\n", msg);
	return status;
}

/* Is a hylake mount already sitting exactly on mp? */
static bool hylake_mounted_at(const char *mp, char *source, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent ent;
	char buf[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && getmntent_r(f, &ent, buf, sizeof(buf))) {
		if (strcmp(ent.mnt_dir, mp) == 0 &&
		    strcmp(ent.mnt_type, "fuse.hylake") == 0) {
			snprintf(source, len, "%s", ent.mnt_fsname);
			found = true;
		}
	}
	endmntent(f);
	return found;
}

static int check_mountpoint(const char *mp)
{
	struct stat st;
	char source[1024];

	if (hylake_mounted_at(mp, source, sizeof(source))) {
		fprintf(stderr, "hylake: %s is already mounted (hylake, %s); "
			"unmount it first\n", mp, source);
		return -EBUSY;
	}
	if (stat(mp, &st) < 0) {
		fprintf(stderr, "hylake: mountpoint %s: %s\n", mp,
			strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hylake: mountpoint %s is not a directory\n",
			mp);
		return -ENOTDIR;
	}
	return 0;
}

/* How fs/ presents the stack, from the [mount] settings. */
static void fs_settings(const struct mount_conf *m, struct readpath *rp,
			struct fs_conf *fc)
{
	*fc = (struct fs_conf){
		.entry_timeout_ms = m->entry_timeout_ms,
		.attr_timeout_ms = m->attr_timeout_ms,
		.negative_timeout_ms = m->negative_timeout_ms,
		.op_timeout_ms = m->op_timeout_ms,
		.list_page_size = (unsigned)m->list_page_size,
		.threads = (unsigned)m->threads,
		.uid = m->uid >= 0 ? (uid_t)m->uid : getuid(),
		.gid = m->gid >= 0 ? (gid_t)m->gid : getgid(),
		.file_mode = (mode_t)m->file_mode,
		.dir_mode = (mode_t)m->dir_mode,
		.readpath = rp,
		.kernel_read_ahead_kb = m->read_ahead ? 1024 : 0,
		.writable = m->writable != 0,
	};
}

/* write_back: where a writable mount puts the files it commits. */
struct write_back {
	struct backend *router;      /* the stack's */
	const char *replica;         /* the config's */
	const char *tmpdir;          /* manifests on their way */
	int64_t timeout_ms;
};

/* fs_conf.written: the commit succeeded; put its bytes on the replica.
 * Nothing here can fail the application's close. */
static void write_back(void *arg, const char *name, int fd,
		       const struct obj_info *info)
{
	const struct write_back *wb = arg;
	if (fd < 0) {
		router_write_back_skipped(wb->router);  /* wfile said why */
		return;
	}
	router_write_back(wb->router, wb->replica, name, fd, info,
			  wb->tmpdir, wb->timeout_ms);
}

/* The log line that says how a mount is set up. */
static void mount_banner(const struct hy_config *cfg, const struct stack *st,
			 const char *mountpoint, struct strbuf *out)
{
	const struct mount_conf *m = &cfg->mount;
	char fresh[32], stale[32];

	fresh_setting_format(&m->freshness, fresh, sizeof(fresh));
	if (m->serve_stale_ms >= 0)
		duration_format(m->serve_stale_ms, stale, sizeof(stale));
	else
		snprintf(stale, sizeof(stale), "off");
	strbuf_addf(out, "mounted %s on %s (%s, %s); freshness %s%s, serve stale "
		    "when the source is down %s; %s", st->top->describe,
		    mountpoint, cfg->path, m->writable ? "read-write" :
		    "read-only", fresh, cfg->nfresh ? " (and [freshness] "
		    "patterns)" : "", stale, st->describe.buf);
}

static void log_read_figures(struct readpath *rp)
{
	struct readpath_stats rs;
	readpath_get_stats(rp, &rs);
	log_info("reads: %" PRIu64 " (%" PRIu64 " MiB); store requests %" PRIu64
		 " (%" PRIu64 " read ahead, %" PRIu64 " unused), %" PRIu64
		 " MiB; block cache hits %" PRIu64 "; memory peak %" PRIu64
		 " MiB", rs.reads, rs.bytes >> 20, rs.fetches, rs.ahead_fetches,
		 rs.ahead_unused, rs.fetched_bytes >> 20, rs.cache_hits,
		 rs.mem_peak >> 20);
}

/* The change feed's hook: the kernel drops what it keeps of name. */
static void tell_fs(void *fs, const char *name)
{
	fs_changed(fs, name);
}

static int run_mount(struct mount_args *ma)
{
	struct hy_config cfg;
	struct strbuf fuse_opts = STRBUF_INIT, banner = STRBUF_INIT;
	struct stack stack = { 0 };
	struct fs *fs = NULL;
	struct metrics_exporter *mx = NULL;
	struct lease_mgr *leases = NULL;
	struct fs_conf fc;
	char err[1024];
	int report_fd = -1, status, rc;

	if (config_load(ma->config, &cfg, stderr) < 0)
		return EXIT_USAGE;
	if (split_options(&cfg, ma->opts.buf, &fuse_opts) < 0) {
		status = EXIT_USAGE;
		goto out_release_config;
	}
	config_finish(&cfg);
	log_level = (int)cfg.mount.log_level;
	if ((ma->debug || ma->verbose) && log_level < LOG_DEBUG)
		log_level = LOG_DEBUG;      /* -d never hides trace lines */
	if (check_mountpoint(ma->mountpoint) < 0) {
		status = EXIT_FAIL;
		goto out_release_config;
	}
	if (!ma->foreground) {
		report_fd = daemon_fork();
		if (report_fd < 0) {
			fprintf(stderr, "hylake: fork: %s\n", strerror(-report_fd));
			status = EXIT_FAIL;
			goto out_release_config;
		}
		/* Start-up failures travel through the report pipe. */
		log_to_syslog("hylake");
	}

	/* From here on: the (future) daemon. */
	if (stack_build(&cfg, &stack, err, sizeof(err)) < 0) {
		status = fail(report_fd, EXIT_FAIL, "hylake: cannot mount: %s%s",
			      strncmp(err, "source", 6) ? "" : "store ", err);
		goto out_release_config;
	}
	struct staging *staging = stack.staging;
	struct metrics_src msrc = {
		.top = stack.top,
		.rp = stack.rp,
		.bc = stack.bc,
		.cache_limit = (uint64_t)cfg.mount.cache_size,
		.memory_limit = (uint64_t)cfg.mount.memory_limit,
		.mountpoint = ma->mountpoint,
		.start_wall_ns = wall_ns(),
		.feed = changes_feed(stack.changes),
		.staging = staging,
		.vmap = stack.vmap,
	};
	fs_settings(&cfg.mount, stack.rp, &fc);
	if (cfg.mount.writable) {
		struct strbuf who = STRBUF_INIT, what = STRBUF_INIT;
		strbuf_addf(&what, "mount %s", ma->mountpoint);
		lease_holder_id(what.buf, &who);
		struct lease_conf lc = { .store = stack.source,
					 .holder = who.buf,
					 .ttl_ms = cfg.mount.lease_ms,
					 .op_timeout_ms = cfg.mount.op_timeout_ms };
		leases = lease_mgr_create(&lc, &rc);
		strbuf_release(&who);
		strbuf_release(&what);
		if (!leases) {
			status = fail(report_fd, EXIT_FAIL, "hylake: cannot "
				      "mount: leases: %s", strerror(-rc));
			goto out_destroy;
		}
		fc.leases = leases;
	}
	fc.staging = staging;
	struct write_back wb = {
		.router = stack.router,
		.replica = cfg.mount.write_back,
		.tmpdir = staging ? staging_dir(staging) : "/tmp",
		.timeout_ms = cfg.mount.op_timeout_ms,
	};
	if (cfg.mount.writable && wb.replica && wb.router) {
		fc.written = write_back;
		fc.written_arg = &wb;
		if (staging)
			log_notice("files written are also put on replica %s",
				   wb.replica);
		else
			log_warn("write_back = %s: staging_size is 0, so no "
				 "local copy of a file's bytes is kept and "
				 "none is written back", wb.replica);
	}
	fc.metrics = metrics_fs_callback;
	fc.metrics_arg = &msrc;
	fs = fs_create(stack.top, &fc);
	if (stack.changes)
		changes_set_hook(stack.changes, tell_fs, fs);
	rc = metrics_start(&msrc, cfg.mount.metrics_listen,
			   cfg.mount.metrics_file, cfg.mount.metrics_interval_ms,
			   &mx, err, sizeof(err));
	if (rc < 0) {
		status = fail(report_fd, EXIT_FAIL, "hylake: cannot mount: %s",
			      err);
		goto out_destroy;
	}
	rc = fs_mount(fs, ma->mountpoint, ma->config_abs, fuse_opts.buf, err,
		      sizeof(err));
	if (rc < 0) {
		status = fail(report_fd, EXIT_FAIL, "hylake: %s", err);
		goto out_destroy;
	}

	mount_banner(&cfg, &stack, ma->mountpoint, &banner);
	struct ready_ctx rctx = { ma->mountpoint, report_fd, banner.buf, fs };
	pthread_t tid;
	pthread_create(&tid, NULL, ready_thread, &rctx);
	rc = fs_run(fs);
	pthread_join(tid, NULL);
	log_read_figures(stack.rp);
	log_notice("unmounted %s", ma->mountpoint);
	status = rc < 0 ? EXIT_FAIL : 0;

out_destroy:
	metrics_stop(mx);
	if (stack.changes)
		changes_set_hook(stack.changes, NULL, NULL);
	fs_destroy(fs);               /* releases the leases of its locks */
	lease_mgr_destroy(leases);
	stack_release(&stack);
out_release_config:
	config_release(&cfg);
	strbuf_release(&banner);
	strbuf_release(&fuse_opts);
	return status;
}

/* argv[0] is "mount".  0, 1 for --help, or -EINVAL (message printed). */
static int parse_mount_args(int argc, char **argv, struct mount_args *ma)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "fdo:h", longopts)) != -1) {
		switch (c) {
		case 'h':
			return 1;
		case 'd':
			ma->debug = true;
			ma->foreground = true;   /* debug runs in the foreground */
			break;
		case 'f':
			ma->foreground = true;
			break;
		case 'o':
			if (ma->opts.len)
				strbuf_addch(&ma->opts, ',');
			strbuf_adds(&ma->opts, optarg);
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "hylake: mount needs CONFIG and MOUNTPOINT%s\n",
			argc - optind > 2 ? ", nothing more" : "");
		return -EINVAL;
	}
	ma->config = argv[optind];
	ma->config_abs = realpath(argv[optind], NULL);
	if (!ma->config_abs)
		ma->config_abs = xstrdup(argv[optind]);  /* config_load says why */
	ma->mountpoint = realpath(argv[optind + 1], NULL);
	if (!ma->mountpoint)
		ma->mountpoint = xstrdup(argv[optind + 1]);   /* reported later */
	return 0;
}

static int cmd_mount(int argc, char **argv, bool verbose)
{
	struct mount_args ma = { .opts = STRBUF_INIT, .verbose = verbose };
	int status = EXIT_USAGE;

	int rc = parse_mount_args(argc, argv, &ma);
	if (rc == 0) {
		status = run_mount(&ma);
	} else if (rc == 1) {
		usage(stdout);
		status = 0;
	} else {
		usage(stderr);
	}
	free(ma.mountpoint);
	free(ma.config_abs);
	strbuf_release(&ma.opts);
	return status;
}

/* argv[0] is "check". */
static int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hy_config cfg;
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
		fprintf(c == 'h' ? stdout : stderr, "usage: hylake check "
			"CONFIG\n  contact every store of CONFIG and report, "
			"one line per store\n");
		return c == 'h' ? 0 : EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "hylake: check needs exactly one CONFIG\n");
		return EXIT_USAGE;
	}
	if (config_load(argv[optind], &cfg, stderr) < 0)
		return EXIT_USAGE;
	log_level = LOG_WARNING;
	int status = stack_check(&cfg, stdout);
	config_release(&cfg);
	return status;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	char spec[64];

	/* ':' first: a missing value is told from an unknown option */
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	int c = getopt_long(argc, argv, spec, longopts, NULL);
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	if (c == ':') {
		fprintf(stderr, "hylake %s: %s needs a value\n", argv[0], arg);
		return '?';
	}
	if (c == '?') {
		if (optopt)
			fprintf(stderr, "hylake %s: unknown option -%c\n",
				argv[0], optopt);
		else
			fprintf(stderr, "hylake %s: unknown option %s\n",
				argv[0], arg);
	}
	return c;
}

int cli_long_arg(const char *cmd, const char *opt, const char *v, long min,
		 long max, long *out)
{
	char *end;

	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		fprintf(stderr, "hylake %s: %s takes %ld to %ld, not '%s'\n",
			cmd, opt, min, max, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

int cli_main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);   /* a dropped connection is an error, not death */
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("hylake %s\n", HYLAKE_VERSION);
		return 0;
	}
	/* each gets argv[0] = its name, as getopt expects */
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc - 1, argv + 1, false);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "explain"))
		return explain_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "warm"))
		return warm_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return status_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "replicate"))
		return replicate_main(argc - 1, argv + 1);
	fprintf(stderr, "hylake: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}

/*
 * Options of mount(8) and systemd that are not for FUSE.  The restrictive
 * flags noexec, nosuid and nodev are not among them: libfuse turns them
 * into MS_NOEXEC/MS_NOSUID/MS_NODEV (fusermount3 accepts them from any
 * user), and an fstab that says noexec must get a noexec mount.  Their
 * permissive twins (exec, suid, dev) are the defaults, or refused to
 * users by fusermount3, so they are still dropped.
 */
static bool mount8_only(const char *o)
{
	static const char *const drop[] = { "_netdev", "nofail", "noauto",
		"auto", "user", "users", "nouser", "defaults", "rw", "owner",
		"group", "exec", "dev", "suid", NULL };
	for (size_t i = 0; drop[i]; i++)
		if (!strcmp(o, drop[i]))
			return true;
	return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8);
}

/* Append the options of one -o list that are for hylake or FUSE. */
static void add_helper_options(struct strbuf *opts, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (mount8_only(t))
			continue;
		if (opts->len)
			strbuf_addch(opts, ',');
		strbuf_adds(opts, t);
	}
	free(copy);
}

/*
 * mount(8) runs the helper as "mount.hylake SPEC DIR [-sfnv] [-o LIST]":
 * the operands first.  The optstring starts with '-' so getopt_long
 * hands them over (as code 1) wherever they stand, even under
 * POSIXLY_CORRECT, and flags may be bundled ("-sv").
 */
int mount_helper_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "options", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct strbuf opts = STRBUF_INIT;
	const char *spec = NULL, *dir = NULL;
	bool fake = false, verbose = false, bad = false;
	int c;

	optind = 0;
	opterr = 1;                  /* getopt says what is wrong */
	while (!bad && (c = getopt_long(argc, argv, "-sfnvo:", longopts,
					NULL)) != -1) {
		switch (c) {
		case 1:
			if (!spec) {
				spec = optarg;
			} else if (!dir) {
				dir = optarg;
			} else {
				fprintf(stderr, "mount.hylake: unexpected "
					"argument %s\n", optarg);
				bad = true;
			}
			break;
		case 'o':
			add_helper_options(&opts, optarg);
			break;
		case 'f':
			fake = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 's':            /* sloppy: unknown options are ours to drop */
		case 'n':            /* no mtab: there is none to write */
			break;
		default:
			bad = true;
		}
	}
	if (bad || !spec || !dir) {
		fprintf(stderr, "usage: mount.hylake CONFIG DIR [-sfnv] "
			"[-o OPTIONS]\n");
		strbuf_release(&opts);
		return EXIT_USAGE;
	}
	if (fake) {
		struct hy_config cfg;
		int rc = config_load(spec, &cfg, stderr);
		if (rc == 0)
			config_release(&cfg);
		strbuf_release(&opts);
		return rc == 0 ? 0 : EXIT_USAGE;
	}
	char *args[7];
	int n = 0;
	args[n++] = "mount";
	args[n++] = (char *)spec;
	args[n++] = (char *)dir;
	if (opts.len) {
		args[n++] = "-o";
		args[n++] = opts.buf;
	}
	args[n] = NULL;
	int status = cmd_mount(n, args, verbose);
	strbuf_release(&opts);
	return status;
}
