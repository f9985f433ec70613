/* The config file: good files, and every error with its FILE:LINE. */
#include "mount/config.h"
#include "backends/util/fdio.h"
#include "backends/util/strbuf.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *write_file(const char *name, const char *text, int mode)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
	return path;
}

/* Load text; return rc and the error output in *errs (caller frees). */
static int load(const char *text, struct hy_config *cfg, char **errs)
{
	size_t len;
	FILE *e = open_memstream(errs, &len);
	const char *path = write_file("t.conf", text, 0644);
	int rc = config_load(path, cfg, e);
	fclose(e);
	return rc;
}

static void good(void)
{
	struct hy_config cfg;
	char *errs, text[2048], err[256];
	const char *creds = write_file("creds", "[default]\n"
		"aws_access_key_id = AK\naws_secret_access_key = SK\n", 0600);

	snprintf(text, sizeof(text),
		 "; a comment\n"
		 "[mount]\n"
		 "state_dir = /var/lib/hylake/lake   ; inline comment\n"
		 "connect_timeout = 250ms\n"
		 "retries = 5\n"
		 "[source]\n"
		 "type = s3\n"
		 "endpoint = http://127.0.0.1:7480\n"
		 "bucket = lake\n"
		 "prefix = /tables\n"
		 "credentials = %s\n"
		 "[replica dc-east-nfs]\n"
		 "type = posix\n"
		 "path = /mnt/vast-east/lake\n"
		 "[replica dc-west-nfs]\n"
		 "type = posix\n"
		 "path = /mnt/vast-west/lake\n"
		 "verify = blocks\n"
		 "[replica lab]\n"
		 "type = posix\n"
		 "path = /mnt/lab/lake\n"
		 "verify = trust\n", creds);
	CHECK_INT(load(text, &cfg, &errs), 0);
	CHECK_STR(errs, "");
	free(errs);
	CHECK_STR(cfg.mount.state_dir, "/var/lib/hylake/lake");
	CHECK_INT(cfg.mount.net.connect_timeout_ms, 250);
	CHECK_INT(cfg.mount.net.retries, 5);
	CHECK_INT(cfg.mount.net.request_timeout_ms, 30000);     /* default */
	CHECK_INT(cfg.source.type, STORE_S3);
	CHECK_STR(cfg.source.prefix, "tables/");                /* normalised */
	CHECK_STR(cfg.source.region, "us-east-1");
	CHECK_INT(cfg.source.net.connect_timeout_ms, 250);      /* copied */
	CHECK_INT(cfg.nreplicas, 3);
	CHECK_STR(cfg.replicas[0].name, "dc-east-nfs");
	CHECK_INT(cfg.replicas[0].type, STORE_POSIX);
	/* how each replica's bytes are checked: whole-first by default */
	CHECK_INT(cfg.replicas[0].verify, VERIFY_WHOLE_FIRST);
	CHECK_INT(cfg.replicas[1].verify, VERIFY_BLOCKS);
	CHECK_INT(cfg.replicas[2].verify, VERIFY_TRUST);
	CHECK_INT(cfg.mount.freshness.kind, FRESH_LAKEHOUSE);  /* default */
	CHECK_INT(cfg.mount.serve_stale_ms, -1);               /* off */
	CHECK_INT(cfg.mount.map_size, 1LL << 30);
	CHECK_STR(cfg.replicas[0].generation_key, "goog-generation");
	CHECK_INT(config_set_option(&cfg, "freshness", "bounded:30s", err,
				    sizeof(err)), 0);
	CHECK_INT(cfg.mount.freshness.kind, FRESH_BOUNDED);
	CHECK_INT(cfg.mount.freshness.bound_ms, 30000);
	CHECK_INT(config_set_option(&cfg, "serve_stale_when_source_down",
				    "10m", err, sizeof(err)), 0);
	CHECK_INT(cfg.mount.serve_stale_ms, 600000);
	CHECK_INT(config_set_option(&cfg, "map_size", "64M", err, sizeof(err)),
		  0);
	CHECK_INT(cfg.mount.map_size, 64LL << 20);

	CHECK_INT(config_set_option(&cfg, "op_timeout", "5s", err, sizeof(err)), 0);
	CHECK_INT(cfg.mount.op_timeout_ms, 5000);
	CHECK(config_set_option(&cfg, "bucket", "x", err, sizeof(err)) < 0);
	CHECK(config_set_option(&cfg, "retries", "-1", err, sizeof(err)) < 0);
	config_release(&cfg);
}

/* Each bad file gives exactly one line starting "PATH:LINE: ..." that
 * contains want. */
static void bad(const char *text, int line, const char *want)
{
	struct hy_config cfg;
	char *errs, prefix[1100];

	CHECK_INT(load(text, &cfg, &errs), -EINVAL);
	if (line)
		snprintf(prefix, sizeof(prefix), "%s/t.conf:%d: ", dir, line);
	else
		snprintf(prefix, sizeof(prefix), "%s/t.conf: ", dir);
	if (strncmp(errs, prefix, strlen(prefix)) != 0 || !strstr(errs, want)) {
		check_failures++;
		fprintf(stderr, "want \"%s...%s\", got \"%s\"\n", prefix, want,
			errs);
	}
	free(errs);
}

static void errors(void)
{
	const char *src = "[source]\ntype = posix\npath = /tmp\n";
	char text[2048];

	snprintf(text, sizeof(text), "[mount]\nbogus = 1\n%s", src);
	bad(text, 2, "unknown key 'bogus' in [mount]");
	snprintf(text, sizeof(text), "%s[mounts]\nx = 1\n", src);
	bad(text, 4, "unknown section [mounts]");
	snprintf(text, sizeof(text), "[mount]\nconnect_timeout = soon\n%s", src);
	bad(text, 2, "bad duration 'soon'");
	snprintf(text, sizeof(text), "[mount]\nretries = 99\n%s", src);
	bad(text, 2, "out of range");
	snprintf(text, sizeof(text), "[mount]\nretries = 1\nretries = 2\n%s", src);
	bad(text, 3, "set twice");
	snprintf(text, sizeof(text), "[mount]\nstate_dir = relative/dir\n%s", src);
	bad(text, 2, "absolute path");
	bad("[mount]\nthreads = 4\n", 0, "no [source] section");
	bad("[source]\ntype = s3\nendpoint = http://x\nbucket = b\n", 1,
	    "needs 'credentials'");
	bad("[source]\ntype = posix\n", 1, "needs 'path'");
	bad("[source]\ntype = gcs\nbucket = b\ncredentials = none\n"
	    "endpoint = ftp://h\n", 5, "http:// or https://");
	bad("[source]\ntype = gcs\nbucket = b\ncredentials = none\n"
	    "metadata_endpoint = http://h\n", 5, "only applies with");
	bad("[source]\ntype = gcs\nbucket = b\ncredentials = key.json\n", 4,
	    "absolute path, 'metadata' or 'none'");
	bad("[mount]\nfreshness = sometimes\n[source]\ntype = posix\n"
	    "path = /tmp\n", 2, "bad freshness");
	bad("[mount]\nmap_size = 12Q\n[source]\ntype = posix\npath = /tmp\n",
	    2, "bad size");
	bad("[source]\ntype = ftp\n", 2, "unknown store type 'ftp'");
	bad("[source]\ntype = posix\npath = /tmp\nbucket = b\n", 4,
	    "'bucket' does not apply to a store of type posix");
	bad("[source]\ntype = gcs\nbucket = b\ncredentials = none\n"
	    "generation_key = g\n", 5, "'generation_key' applies to replicas");
	snprintf(text, sizeof(text), "%s[replica a]\ntype = posix\npath = /t\n"
		 "verify = sometimes\n", src);
	bad(text, 7, "unknown verify mode 'sometimes'");
	snprintf(text, sizeof(text), "[source]\ntype = posix\npath = /tmp\n"
		 "verify = trust\n");
	bad(text, 4, "verify");
	bad("[source]\ntype = posix\npath = /tmp\njunk line\n", 4,
	    "syntax error");
	snprintf(text, sizeof(text), "%s[replica a]\ntype=posix\npath=/t\n"
		 "[replica a]\npath=/u\n", src);
	bad(text, 7, "appears twice");
	snprintf(text, sizeof(text), "%s[replica bad/name]\ntype = posix\n", src);
	bad(text, 4, "bad replica name");

	/* Long lines are an error, not silently cut. */
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, "[source]\ntype = posix\npath = /");
	for (int i = 0; i < 400; i++)
		strbuf_addch(&sb, 'p');
	strbuf_adds(&sb, "\n");
	bad(sb.buf, 3, "line longer than");
	strbuf_release(&sb);
}

/* [changes]: the subscription a GCS mount follows. */
static void changes(void)
{
	struct hy_config cfg;
	char *errs;
	const char *gcs = "[source]\ntype = gcs\nbucket = lake\n"
			  "credentials = metadata\n";
	char text[1024];

	snprintf(text, sizeof(text), "%s[changes]\nsubscription = "
		 "projects/p/subscriptions/lake-changes\n", gcs);
	CHECK_INT(load(text, &cfg, &errs), 0);
	CHECK_STR(errs, "");
	free(errs);
	CHECK(cfg.changes.present);
	CHECK_STR(cfg.changes.subscription,
		  "projects/p/subscriptions/lake-changes");
	CHECK_STR(cfg.changes.endpoint, "https://pubsub.googleapis.com");
	CHECK_STR(cfg.changes.credentials, "metadata");   /* the source's */
	CHECK_INT(cfg.changes.stall_ms, 10000);
	CHECK_INT(cfg.changes.net.connect_timeout_ms,
		  cfg.mount.net.connect_timeout_ms);
	config_release(&cfg);

	CHECK_INT(load(gcs, &cfg, &errs), 0);              /* no feed */
	free(errs);
	CHECK(!cfg.changes.present);
	config_release(&cfg);

	snprintf(text, sizeof(text), "%s[changes]\nstall = 30s\n", gcs);
	bad(text, 5, "needs 'subscription'");
	snprintf(text, sizeof(text), "%s[changes]\nsubscription = lake\n", gcs);
	bad(text, 6, "expected projects/PROJECT/subscriptions/NAME");
	snprintf(text, sizeof(text), "%s[changes]\nsubscription = "
		 "projects/p/subscriptions/s\nendpoint = http://pubsub.example\n",
		 gcs);
	bad(text, 7, "bearer token in clear");
	snprintf(text, sizeof(text), "%s[changes]\nsubscription = "
		 "projects/p/subscriptions/s\nstall = 10ms\n", gcs);
	bad(text, 7, "out of range");
	snprintf(text, sizeof(text), "%s[changes]\nsubscription = "
		 "projects/p/subscriptions/s\nbucket = x\n", gcs);
	bad(text, 7, "unknown key 'bucket' in [changes]");
	bad("[source]\ntype = posix\npath = /tmp\n[changes]\n"
	    "subscription = projects/p/subscriptions/s\n", 4,
	    "the source must be of type gcs");
}

static void credentials_mode(void)
{
	char text[2048];
	const char *creds = write_file("open-creds", "[default]\n"
		"aws_access_key_id = AK\naws_secret_access_key = VERYSECRET\n",
		0644);
	snprintf(text, sizeof(text), "[source]\ntype = s3\nendpoint = http://h\n"
		 "bucket = b\ncredentials = %s\n", creds);
	bad(text, 5, "readable by group/other (mode 0644)");

	struct hy_config cfg;
	char *errs;
	CHECK_INT(load(text, &cfg, &errs), -EINVAL);
	CHECK(strstr(errs, "VERYSECRET") == NULL);     /* never printed */
	free(errs);
}

/*
 * A key file's bearer token must not cross the network in clear: with
 * key-file credentials a GCS endpoint is https://, or http:// to a
 * loopback address (tests, emulators).  credentials = none has no
 * token; the metadata server is plain http by design.
 */
static void cleartext_endpoints(void)
{
	char key[1024];
	snprintf(key, sizeof(key), "%s", write_file("key.json", "{}", 0600));
	const char *refused[] = {
		"http://storage.example.com", "http://10.0.0.1:4443",
		"http://127.0.0.1.example.com", "http://localhost.example.com",
		"http://[::2]:80", "http://128.0.0.1", "http://127.0.0.1@evil.com",
	};
	const char *allowed[] = {
		"https://storage.example.com", "http://127.0.0.1:4443",
		"http://127.9.8.7", "http://localhost:8080/", "http://LOCALHOST",
		"http://[::1]:9000",
	};
	char text[2048];
	struct hy_config cfg;
	char *errs;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(text, sizeof(text), "[source]\ntype = gcs\nbucket = b\n"
			 "credentials = %s\nendpoint = %s\n", key, refused[i]);
		bad(text, 5, "in clear");
		/* without a token to protect, http is fine */
		snprintf(text, sizeof(text), "[source]\ntype = gcs\nbucket = b\n"
			 "credentials = none\nendpoint = %s\n", refused[i]);
		CHECK_INT(load(text, &cfg, &errs), 0);
		CHECK_STR(errs, "");
		free(errs);
		config_release(&cfg);
	}
	/* the metadata server's token is a bearer token too; the server
	 * itself is plain http by design */
	bad("[source]\ntype = gcs\nbucket = b\ncredentials = metadata\n"
	    "endpoint = http://storage.example.com\n", 5, "in clear");
	CHECK_INT(load("[source]\ntype = gcs\nbucket = b\ncredentials = "
		       "metadata\nmetadata_endpoint = http://169.254.169.254\n",
		       &cfg, &errs), 0);
	CHECK_STR(errs, "");
	free(errs);
	config_release(&cfg);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		snprintf(text, sizeof(text), "[source]\ntype = gcs\nbucket = b\n"
			 "credentials = %s\nendpoint = %s\n", key, allowed[i]);
		CHECK_INT(load(text, &cfg, &errs), 0);
		CHECK_STR(errs, "");
		free(errs);
		config_release(&cfg);
	}
}

/* writable = yes|no; only over a GCS source, whose store is then opened
 * to write (config_set_option is how -o writable and -o rw arrive). */
static void writable(void)
{
	struct hy_config cfg;
	char *errs, err[256];

	bad("[mount]\nwritable = yes\n[source]\ntype = posix\npath = /tmp\n",
	    2, "needs a source of type gcs");
	bad("[mount]\nwritable = maybe\n[source]\ntype = posix\npath = /tmp\n",
	    2, "expected yes or no");
	CHECK(load("[mount]\nwritable = no\n[source]\ntype = posix\n"
		   "path = /tmp\n", &cfg, &errs) == 0);
	CHECK(cfg.mount.writable == 0);
	CHECK(config_writable_error(&cfg) == NULL);
	CHECK(config_set_option(&cfg, "writable", "yes", err, sizeof(err)) == 0);
	CHECK(config_writable_error(&cfg) != NULL);
	config_release(&cfg);
	free(errs);
	CHECK(load("[mount]\nwritable = yes\n[source]\ntype = gcs\n"
		   "bucket = b\ncredentials = none\n", &cfg, &errs) == 0);
	CHECK(cfg.mount.writable == 1);
	CHECK(config_writable_error(&cfg) == NULL);
	CHECK(config_set_option(&cfg, "writable", "off", err, sizeof(err)) == 0);
	CHECK(cfg.mount.writable == 0);
	config_release(&cfg);
	free(errs);
	/* the default */
	CHECK(load("[source]\ntype = gcs\nbucket = b\ncredentials = none\n",
		   &cfg, &errs) == 0);
	CHECK(cfg.mount.writable == 0);
	config_release(&cfg);
	free(errs);
}

int main(void)
{
	const char *base = getenv("HYLAKE_TEST_TMP");
	snprintf(dir, sizeof(dir), "%s/config-test-%d", base ? base : "/tmp",
		 (int)getpid());
	mkdir(dir, 0700);
	good();
	errors();
	changes();
	credentials_mode();
	cleartext_endpoints();
	writable();
	CHECK_INT(remove_tree(dir), 0);
	return check_summary();
}
