/*
 * pubsub.h - one Pub/Sub subscription, followed through the REST API
 * (PROTOCOLS.md 3.2): pull, acknowledge, modifyAckDeadline.
 *
 *   POST {endpoint}/v1/{subscription}:pull              {"maxMessages":N}
 *   POST {endpoint}/v1/{subscription}:acknowledge       {"ackIds":[..]}
 *   POST {endpoint}/v1/{subscription}:modifyAckDeadline {"ackIds":[..],
 *                                                  "ackDeadlineSeconds":S}
 *
 * Messages come back as GCS change notifications (gcs_json.h).  Delivery
 * is at least once and in no particular order: the caller deduplicates
 * and orders by generation.  Each call retries as the HTTP layer does
 * (all three are safe to repeat) and a 401 once more with a new token.
 *
 * Thread safety: calls may come from any thread; the subscription is
 * usually followed by one.
 */
#ifndef HYLAKE_PUBSUB_H
#define HYLAKE_PUBSUB_H

#include <stddef.h>

#include "backends/gcs/gcs_json.h"
#include "backends/util/timeutil.h"

struct gcs_auth;
struct http_engine;
struct prom;
struct pubsub;

#define PUBSUB_DEFAULT_ENDPOINT "https://pubsub.googleapis.com"
#define PUBSUB_SCOPE "https://www.googleapis.com/auth/pubsub"
#define PUBSUB_PULL_MAX 1000         /* messages one pull may ask for */

/*
 * endpoint: scheme and host ("https://pubsub.googleapis.com"), no
 * trailing slash needed; subscription: "projects/P/subscriptions/S"
 * (checked: -EINVAL with err otherwise).  http and auth are borrowed
 * and must outlive the subscription; auth's tokens must carry the
 * Pub/Sub scope.
 */
int pubsub_create(const char *endpoint, const char *subscription,
		  struct http_engine *http, struct gcs_auth *auth,
		  struct pubsub **out, char *err, size_t errlen);
void pubsub_destroy(struct pubsub *p);

/*
 * Pull up to max messages (1..PUBSUB_PULL_MAX) into *out (release it
 * with gcs_changes_release).  An empty batch is normal.  0, or -errno
 * with err filled: -ENOENT (no such subscription), -EACCES, -EBADMSG (an
 * answer that is not a pull response), or a transport error.
 */
int pubsub_pull(struct pubsub *p, unsigned max, struct gcs_changes *out,
		const struct deadline *dl, char *err, size_t errlen);

/*
 * Acknowledge the ack ids of changes c[0..n): they are not delivered
 * again.  With deadline_s >= 0 instead set their ack deadline to that
 * many seconds (0: deliver them again at once).  0 or -errno.
 */
int pubsub_ack(struct pubsub *p, const struct gcs_change *c, size_t n,
	       const struct deadline *dl);
int pubsub_modify_deadline(struct pubsub *p, const struct gcs_change *c,
			   size_t n, int deadline_s, const struct deadline *dl);

/* "projects/P/subscriptions/S", as given. */
const char *pubsub_name(const struct pubsub *p);

#endif
