/*
 * changes.c - a mount's change feed and who hears of it (changes.h).
 */
#include "mount/changes.h"
#include "backends/composite/feed.h"
#include "backends/composite/journal.h"
#include "backends/composite/metacache.h"
#include "backends/gcs/gcs_auth.h"
#include "backends/gcs/pubsub.h"
#include "backends/http/http.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mount_feed {
	struct http_engine *http;
	struct gcs_auth *auth;
	struct pubsub *sub;
	struct journal_reader *journal;
	struct feed *feed;
	pthread_mutex_t lock;        /* guards the two below, and is held
	                                while they are called */
	struct backend *metacache;
	void (*hook)(void *arg, const char *name);
	void *hook_arg;
};

static void on_changed(void *arg, const char *name, bool removed)
{
	struct mount_feed *mf = arg;

	pthread_mutex_lock(&mf->lock);
	if (mf->metacache)
		metacache_forget_change(mf->metacache, name, removed);
	if (mf->hook)
		mf->hook(mf->hook_arg, name);
	pthread_mutex_unlock(&mf->lock);
}

int changes_subscribe(const struct changes_conf *c, struct http_engine *http,
		      struct gcs_auth **auth, struct pubsub **sub, char *err,
		      size_t errlen)
{
	int rc = gcs_auth_create_scoped(c->credentials ? c->credentials
						       : "none",
					c->metadata_endpoint, PUBSUB_SCOPE,
					http, auth, err, errlen);
	if (rc == 0)
		rc = pubsub_create(c->endpoint, c->subscription, http, *auth,
				   sub, err, errlen);
	return rc;
}

int changes_start(const struct changes_conf *c, const struct store_conf *src,
		  struct facts facts, struct backend *site,
		  struct mount_feed **out, char *err, size_t errlen)
{
	struct mount_feed *mf = xcalloc(1, sizeof(*mf));
	const char *prefix = src->prefix ? src->prefix : "";
	struct feed_conf fc = {
		.facts = facts, .bucket = src->bucket, .prefix = prefix,
		.stall_ms = c->stall_ms, .changed = on_changed,
		.changed_arg = mf,
	};
	struct strbuf via = STRBUF_INIT;
	char why[300];
	int rc = 0;

	pthread_mutex_init(&mf->lock, NULL);
	if (c->journal) {
		journal_reader_create(site, c->journal, facts, src->bucket,
				      prefix, c->stall_ms, &mf->journal);
		journal_reader_source(mf->journal, &fc.src);
		strbuf_addf(&via, "journal of %s", c->journal);
	} else {
		mf->http = http_engine_create(&c->net);
		rc = changes_subscribe(c, mf->http, &mf->auth, &mf->sub, why,
				       sizeof(why));
		if (rc == 0)
			feed_source_pubsub(mf->sub, &fc.src);
		strbuf_adds(&via, "subscription");
	}
	fc.via = via.buf;
	if (rc == 0) {
		rc = feed_start(&fc, &mf->feed);
		if (rc < 0)
			snprintf(why, sizeof(why), "cannot start: %s",
				 strerror(-rc));
	}
	strbuf_release(&via);
	if (rc < 0) {
		snprintf(err, errlen, "[changes]: %s", why);
		changes_stop(mf);
		return rc;
	}
	if (c->journal)
		log_info("change feed: following the journal on %s",
			 c->journal);
	else
		log_info("change feed: following %s at %s", c->subscription,
			 c->endpoint);
	*out = mf;
	return 0;
}

struct feed *changes_feed(struct mount_feed *mf)
{
	return mf ? mf->feed : NULL;
}

void changes_set_metacache(struct mount_feed *mf, struct backend *mc)
{
	pthread_mutex_lock(&mf->lock);
	mf->metacache = mc;
	pthread_mutex_unlock(&mf->lock);
}

void changes_set_hook(struct mount_feed *mf,
		      void (*fn)(void *arg, const char *name), void *arg)
{
	pthread_mutex_lock(&mf->lock);
	mf->hook = fn;
	mf->hook_arg = arg;
	pthread_mutex_unlock(&mf->lock);
}

void changes_stop(struct mount_feed *mf)
{
	if (!mf)
		return;
	feed_stop(mf->feed);
	journal_reader_destroy(mf->journal);
	pubsub_destroy(mf->sub);
	gcs_auth_destroy(mf->auth);
	http_engine_destroy(mf->http);
	pthread_mutex_destroy(&mf->lock);
	free(mf);
}
