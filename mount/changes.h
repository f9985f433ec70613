/*
 * changes.h - a mount's change feed ([changes] in the config): the
 * Pub/Sub subscription, the feed that keeps the version map current from
 * it (backends/composite/feed.h), and who is told of each change.
 *
 * Each changed name goes, on the feed's thread, to the metadata cache
 * (which forgets the name, and its folders when it was deleted:
 * metacache_forget_change) and to a hook the mount
 * sets once it has a filesystem (the kernel drops its entries).  Setting
 * or clearing the hook waits for a call in progress, so a hook cleared
 * before its filesystem goes away is never called after.
 */
#ifndef HYLAKE_CHANGES_H
#define HYLAKE_CHANGES_H

#include <stddef.h>

#include "backends/facts.h"
#include "mount/config.h"

struct backend;
struct feed;
struct gcs_auth;
struct http_engine;
struct pubsub;
struct mount_feed;

/*
 * Start following c for the GCS source src (its bucket and prefix),
 * keeping facts (borrowed: stop the feed before they go): the journal
 * on site (the replica c->journal names; borrowed) when c names one,
 * else the subscription.  0, or -errno with err filled (bad
 * credentials, bad subscription name).
 */
int changes_start(const struct changes_conf *c, const struct store_conf *src,
		  struct facts facts, struct backend *site,
		  struct mount_feed **out, char *err, size_t errlen);

/* The subscription of c, with its own token (scope Pub/Sub) over http:
 * for the mount's feed and the site's follower.  0 or -errno with err
 * filled. */
int changes_subscribe(const struct changes_conf *c, struct http_engine *http,
		      struct gcs_auth **auth, struct pubsub **sub, char *err,
		      size_t errlen);

/* The feed, for the router (borrowed). */
struct feed *changes_feed(struct mount_feed *mf);

/* The metadata cache to clear on each change (NULL: none). */
void changes_set_metacache(struct mount_feed *mf, struct backend *mc);

/* The hook told of each changed name (NULL: none). */
void changes_set_hook(struct mount_feed *mf,
		      void (*fn)(void *arg, const char *name), void *arg);

/* Stop the feed and free everything; NULL is fine. */
void changes_stop(struct mount_feed *mf);

#endif
