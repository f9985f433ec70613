/*
 * pubsub.c - a Pub/Sub subscription over REST (pubsub.h).
 */
#include "backends/gcs/pubsub.h"
#include "backends/gcs/gcs_auth.h"
#include "backends/http/http.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_BODY_MAX (64 << 20)     /* 1,000 messages with payloads */

struct pubsub {
	char *base;                  /* {endpoint}/v1/{subscription} */
	char *name;
	struct http_engine *http;
	struct gcs_auth *auth;
	struct curl_slist *json_type;
};

/* "projects/P/subscriptions/S", each part a plain path segment. */
static bool subscription_ok(const char *s)
{
	const char *parts[] = { "projects/", NULL, "/subscriptions/", NULL };
	const char *p = s;

	for (size_t i = 0; i < 4; i++) {
		if (parts[i]) {
			if (strncmp(p, parts[i], strlen(parts[i])))
				return false;
			p += strlen(parts[i]);
			continue;
		}
		size_t n = strcspn(p, "/?#% ");
		if (n == 0)
			return false;
		p += n;
	}
	return *p == '\0';
}

int pubsub_create(const char *endpoint, const char *subscription,
		  struct http_engine *http, struct gcs_auth *auth,
		  struct pubsub **out, char *err, size_t errlen)
{
	size_t elen = strlen(endpoint);

	while (elen && endpoint[elen - 1] == '/')
		elen--;
	if (!subscription_ok(subscription)) {
		snprintf(err, errlen, "subscription '%s': expected "
			 "projects/PROJECT/subscriptions/NAME", subscription);
		return -EINVAL;
	}
	struct pubsub *p = xcalloc(1, sizeof(*p));
	struct strbuf b = STRBUF_INIT;
	strbuf_addf(&b, "%.*s/v1/%s", (int)elen, endpoint, subscription);
	p->base = strbuf_detach(&b, NULL);
	p->name = xstrdup(subscription);
	p->http = http;
	p->auth = auth;
	p->json_type = curl_slist_append(NULL,
					 "Content-Type: application/json");
	*out = p;
	return 0;
}

void pubsub_destroy(struct pubsub *p)
{
	if (!p)
		return;
	curl_slist_free_all(p->json_type);
	free(p->base);
	free(p->name);
	free(p);
}

const char *pubsub_name(const struct pubsub *p)
{
	return p->name;
}

/* POST {base}:{verb} with a JSON body; the 2xx body into out (if set). */
static int post(struct pubsub *p, const char *verb, const char *body,
		struct strbuf *out, const struct deadline *dl, char *err,
		size_t errlen)
{
	struct strbuf url = STRBUF_INIT;
	struct http_resp resp;
	char reason[64], msg[200];
	int rc;

	strbuf_addf(&url, "%s:%s", p->base, verb);
	struct http_req req = {
		.method = "POST", .url = url.buf, .idempotent = true,
		.static_headers = p->json_type, .body = out,
		.body_max = PULL_BODY_MAX, .upload = body,
		.upload_len = strlen(body), .dl = dl,
	};
	http_resp_init(&resp);
	rc = gcs_auth_do(p->auth, p->http, &req, NULL, &resp, reason,
			 sizeof(reason), msg, sizeof(msg));
	if (rc < 0 && http_resp_error_status(&resp))
		snprintf(err, errlen, "%s: HTTP %ld%s%s", verb, resp.status,
			 msg[0] ? ": " : "", msg);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s", verb,
			 msg[0] ? msg : strerror(-rc));
	http_resp_release(&resp);
	strbuf_release(&url);
	return rc;
}

int pubsub_pull(struct pubsub *p, unsigned max, struct gcs_changes *out,
		const struct deadline *dl, char *err, size_t errlen)
{
	struct strbuf body = STRBUF_INIT;
	char req[48];
	int rc;

	memset(out, 0, sizeof(*out));
	if (max < 1 || max > PUBSUB_PULL_MAX)
		return -EINVAL;
	snprintf(req, sizeof(req), "{\"maxMessages\":%u}", max);
	rc = post(p, "pull", req, &body, dl, err, errlen);
	if (rc == 0) {
		rc = gcs_json_parse_pull(body.buf ? body.buf : "", body.len,
					 out);
		if (rc < 0)
			snprintf(err, errlen, "pull: the answer is not a "
				 "pull response");
	}
	strbuf_release(&body);
	return rc;
}

/* {"ackIds":[...]} (with "ackDeadlineSeconds" when deadline_s >= 0). */
static char *ack_body(const struct gcs_change *c, size_t n, int deadline_s)
{
	json_t *doc = json_object(), *ids = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(ids, json_string(c[i].ack_id));
	json_object_set_new(doc, "ackIds", ids);
	if (deadline_s >= 0)
		json_object_set_new(doc, "ackDeadlineSeconds",
				    json_integer(deadline_s));
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		abort();                 /* out of memory, as xmalloc */
	return s;
}

static int ack_call(struct pubsub *p, const char *verb,
		    const struct gcs_change *c, size_t n, int deadline_s,
		    const struct deadline *dl)
{
	char err[300];

	if (n == 0)
		return 0;
	char *body = ack_body(c, n, deadline_s);
	int rc = post(p, verb, body, NULL, dl, err, sizeof(err));
	free(body);
	if (rc < 0)
		log_warn("pubsub %s: %s", p->name, err);
	return rc;
}

int pubsub_ack(struct pubsub *p, const struct gcs_change *c, size_t n,
	       const struct deadline *dl)
{
	return ack_call(p, "acknowledge", c, n, -1, dl);
}

int pubsub_modify_deadline(struct pubsub *p, const struct gcs_change *c,
			   size_t n, int deadline_s, const struct deadline *dl)
{
	if (deadline_s < 0 || deadline_s > 600)
		return -EINVAL;
	return ack_call(p, "modifyAckDeadline", c, n, deadline_s, dl);
}
