/*
 * gcs_auth.c - access tokens: service-account JWT exchange, the metadata
 * server, or nothing.
 */
#include "backends/gcs/gcs_auth.h"
#include "backends/gcs/gcs_json.h"
#include "backends/http/http.h"
#include "backends/gcs/jwt.h"
#include "backends/util/secretfile.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/uri.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_LIFETIME_S 3600
#define REFRESH_AHEAD_MAX_NS (300 * NS_PER_SEC)

enum auth_kind { AUTH_NONE, AUTH_KEYFILE, AUTH_METADATA };

struct gcs_auth {
	enum auth_kind kind;
	struct http_engine *http;
	/* key file */
	struct jwt_key *key;
	char *client_email;
	char *key_id;
	char *token_uri;
	char *scope;                 /* what key-file tokens are asked for */
	/* metadata */
	char *metadata_url;
	/* the cached token */
	pthread_mutex_t lock;        /* guards token, refresh_at; held while
	                                fetching, so fetches are single flight */
	char *token;
	int64_t refresh_at;          /* mono_ns after which to fetch again */
};

static void scrub_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int load_key_file(struct gcs_auth *a, const char *path, char *err,
			 size_t errlen)
{
	struct strbuf text = STRBUF_INIT;
	json_error_t jerr;
	int rc = secretfile_read(path, &text, err, errlen);

	if (rc < 0)
		goto out_scrub;
	json_t *doc = json_loadb(text.buf, text.len, 0, &jerr);
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *email = json_string_value(json_object_get(doc, "client_email"));
	const char *pem = json_string_value(json_object_get(doc, "private_key"));
	const char *kid = json_string_value(json_object_get(doc, "private_key_id"));
	const char *uri = json_string_value(json_object_get(doc, "token_uri"));
	if (!doc) {
		snprintf(err, errlen, "key file %s:%d: not JSON (%s)", path,
			 jerr.line, jerr.text);
		rc = -EINVAL;
	} else if (!type || strcmp(type, "service_account") != 0) {
		snprintf(err, errlen, "key file %s: \"type\" must be "
			 "\"service_account\"", path);
		rc = -EINVAL;
	} else if (!email || !pem) {
		snprintf(err, errlen, "key file %s: \"client_email\" and "
			 "\"private_key\" are required", path);
		rc = -EINVAL;
	} else if (uri && *uri && !http_url_private(uri)) {
		snprintf(err, errlen, "key file %s: \"token_uri\" '%s' must be "
			 "an https:// URL (http:// only to a loopback address, "
			 "for tests and emulators): the signed assertion would "
			 "go in clear", path, uri);
		rc = -EINVAL;
	} else {
		char kerr[128];
		rc = jwt_key_load(pem, &a->key, kerr, sizeof(kerr));
		if (rc < 0)
			snprintf(err, errlen, "key file %s: %s", path, kerr);
	}
	if (rc == 0) {
		a->client_email = xstrdup(email);
		a->key_id = kid ? xstrdup(kid) : NULL;
		a->token_uri = xstrdup(uri && *uri ? uri : GCS_DEFAULT_TOKEN_URI);
	}
	if (doc) {
		/* scrub the private key text held by jansson */
		json_t *pk = json_object_get(doc, "private_key");
		if (json_is_string(pk))
			OPENSSL_cleanse((char *)json_string_value(pk),
					json_string_length(pk));
		json_decref(doc);
	}
out_scrub:
	secretfile_scrub(&text);
	strbuf_release(&text);
	return rc;
}

int gcs_auth_create(const char *credentials, const char *metadata_endpoint,
		    struct http_engine *http, struct gcs_auth **out,
		    char *err, size_t errlen)
{
	return gcs_auth_create_scoped(credentials, metadata_endpoint,
				      GCS_SCOPE_READ_ONLY, http, out, err,
				      errlen);
}

int gcs_auth_create_scoped(const char *credentials,
			   const char *metadata_endpoint, const char *scope,
			   struct http_engine *http, struct gcs_auth **out,
			   char *err, size_t errlen)
{
	struct gcs_auth *a = xcalloc(1, sizeof(*a));
	int rc = 0;

	a->http = http;
	a->scope = xstrdup(scope);
	pthread_mutex_init(&a->lock, NULL);
	if (!strcmp(credentials, "none")) {
		a->kind = AUTH_NONE;
	} else if (!strcmp(credentials, "metadata")) {
		struct strbuf u = STRBUF_INIT;
		const char *base = metadata_endpoint && *metadata_endpoint
			? metadata_endpoint : GCS_DEFAULT_METADATA;
		size_t blen = strlen(base);
		while (blen && base[blen - 1] == '/')
			blen--;
		strbuf_add(&u, base, blen);
		strbuf_adds(&u, "/computeMetadata/v1/instance/service-accounts/"
			    "default/token");
		a->kind = AUTH_METADATA;
		a->metadata_url = strbuf_detach(&u, NULL);
	} else {
		a->kind = AUTH_KEYFILE;
		rc = load_key_file(a, credentials, err, errlen);
	}
	if (rc < 0) {
		gcs_auth_destroy(a);
		return rc;
	}
	*out = a;
	return 0;
}

void gcs_auth_destroy(struct gcs_auth *a)
{
	if (!a)
		return;
	jwt_key_destroy(a->key);
	free(a->client_email);
	free(a->key_id);
	free(a->token_uri);
	free(a->metadata_url);
	free(a->scope);
	scrub_free(a->token);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/*
 * Turn a token source's answer into 0 or -errno + err.  rc is what
 * http_do() returned; the request was sent as HTTP_API_TOKEN, so a
 * refused grant (400, 401, 403) is already -EACCES.  An error document
 * that says so under another status counts as a refusal too.
 */
static int token_answer(int rc, const struct http_resp *resp,
			const struct strbuf *body, const char *what,
			char **token, int64_t *expires_in, char *err,
			size_t errlen)
{
	char msg[256];

	if (rc < 0 && !http_resp_error_status(resp)) {
		snprintf(err, errlen, "%s unreachable: %s", what,
			 resp->error[0] ? resp->error : strerror(-rc));
		return rc;
	}
	const struct strbuf *text = rc == 0 ? body : &resp->errbody;
	int parsed = gcs_json_parse_token(text->buf, text->len, token,
					  expires_in, msg, sizeof(msg));
	if (parsed == 0 && rc == 0)
		return 0;
	scrub_free(*token);          /* a token in an error document */
	*token = NULL;
	if (rc == -EACCES || parsed == -EACCES) {
		snprintf(err, errlen, "credentials rejected by %s (HTTP %ld%s%s)",
			 what, resp->status, msg[0] ? ": " : "", msg);
		return -EACCES;
	}
	snprintf(err, errlen, "%s answered HTTP %ld without a token", what,
		 resp->status);
	return rc == 0 ? -EBADMSG : rc;
}

static int fetch_keyfile(struct gcs_auth *a, char **token, int64_t *expires_in,
			 const struct deadline *dl, char *err, size_t errlen)
{
	struct strbuf jwt = STRBUF_INIT, form = STRBUF_INIT, body = STRBUF_INIT;
	struct http_resp resp;
	struct curl_slist *hdrs = NULL;
	int rc;

	rc = jwt_service_account_assertion(a->key, a->key_id, a->client_email,
					   a->scope, a->token_uri,
					   wall_ns() / NS_PER_SEC,
					   JWT_LIFETIME_S, &jwt);
	if (rc < 0) {
		snprintf(err, errlen, "cannot sign the token request");
		return rc;
	}
	strbuf_adds(&form, "grant_type=");
	uri_encode_str(&form, "urn:ietf:params:oauth:grant-type:jwt-bearer",
		       false);
	strbuf_adds(&form, "&assertion=");
	uri_encode(&form, jwt.buf, jwt.len, false);

	hdrs = curl_slist_append(hdrs, "Content-Type: "
				 "application/x-www-form-urlencoded");
	struct http_req req = {
		.method = "POST", .url = a->token_uri, .idempotent = true,
		.api = HTTP_API_TOKEN,
		.body = &body, .body_max = 64 << 10, .dl = dl,
		.upload = form.buf, .upload_len = form.len,
		.static_headers = hdrs,
	};
	http_resp_init(&resp);
	rc = http_do(a->http, &req, &resp);
	rc = token_answer(rc, &resp, &body, "the token endpoint", token,
			  expires_in, err, errlen);
	http_resp_release(&resp);
	curl_slist_free_all(hdrs);
	OPENSSL_cleanse(jwt.buf, jwt.len);
	OPENSSL_cleanse(form.buf, form.len);
	OPENSSL_cleanse(body.buf, body.len);
	strbuf_release(&jwt);
	strbuf_release(&form);
	strbuf_release(&body);
	return rc;
}

static int fetch_metadata(struct gcs_auth *a, char **token,
			  int64_t *expires_in, const struct deadline *dl,
			  char *err, size_t errlen)
{
	struct strbuf body = STRBUF_INIT;
	struct http_resp resp;
	struct curl_slist *hdrs = curl_slist_append(NULL,
						    "Metadata-Flavor: Google");
	int rc;

	struct http_req req = {
		.method = "GET", .url = a->metadata_url, .idempotent = true,
		.api = HTTP_API_TOKEN,
		.body = &body, .body_max = 64 << 10, .dl = dl,
		.static_headers = hdrs,
	};
	http_resp_init(&resp);
	rc = http_do(a->http, &req, &resp);
	rc = token_answer(rc, &resp, &body, "the metadata server", token,
			  expires_in, err, errlen);
	http_resp_release(&resp);
	curl_slist_free_all(hdrs);
	OPENSSL_cleanse(body.buf, body.len);
	strbuf_release(&body);
	return rc;
}

int gcs_auth_header(struct gcs_auth *a, struct curl_slist **headers,
		    const struct deadline *dl, char *err, size_t errlen)
{
	int rc = 0;

	if (a->kind == AUTH_NONE)
		return 0;
	pthread_mutex_lock(&a->lock);
	if (!a->token || mono_ns() >= a->refresh_at) {
		char *token = NULL;
		int64_t expires_in = 0;
		rc = a->kind == AUTH_KEYFILE
			? fetch_keyfile(a, &token, &expires_in, dl, err, errlen)
			: fetch_metadata(a, &token, &expires_in, dl, err, errlen);
		if (rc == 0) {
			int64_t life = expires_in * NS_PER_SEC;
			int64_t ahead = life / 4 < REFRESH_AHEAD_MAX_NS
				? life / 4 : REFRESH_AHEAD_MAX_NS;
			scrub_free(a->token);
			a->token = token;
			a->refresh_at = mono_ns() + life - ahead;
			log_debug("gcs: new access token, valid %llds",
				  (long long)expires_in);
		}
	}
	if (rc == 0) {
		struct strbuf h = STRBUF_INIT;
		/* sized first: a realloc would leave a copy of the token */
		strbuf_grow(&h, strlen(a->token) + 32);
		strbuf_addf(&h, "Authorization: Bearer %s", a->token);
		*headers = curl_slist_append(*headers, h.buf);
		OPENSSL_cleanse(h.buf, h.len);
		strbuf_release(&h);
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void gcs_auth_invalidate(struct gcs_auth *a)
{
	pthread_mutex_lock(&a->lock);
	scrub_free(a->token);
	a->token = NULL;
	pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------ authorised requests */

/* One request's context for the prepare callback. */
struct auth_call {
	struct gcs_auth *a;
	const struct deadline *dl;
	const struct curl_slist *extra;
	int rc;
	char err[256];
};

static int call_prepare(void *ctx, struct curl_slist **headers)
{
	struct auth_call *c = ctx;
	for (const struct curl_slist *s = c->extra; s; s = s->next)
		*headers = curl_slist_append(*headers, s->data);
	c->rc = gcs_auth_header(c->a, headers, c->dl, c->err, sizeof(c->err));
	return c->rc;
}

int gcs_auth_do(struct gcs_auth *a, struct http_engine *http,
		struct http_req *req, const struct curl_slist *extra,
		struct http_resp *resp, char *reason, size_t reasonlen,
		char *msg, size_t msglen)
{
	struct auth_call c = { .a = a, .dl = req->dl, .extra = extra };
	int rc;

	req->prepare = call_prepare;
	req->prepare_ctx = &c;
	if (reasonlen)
		reason[0] = '\0';
	if (msglen)
		msg[0] = '\0';
	for (int tries = 0; tries < 2; tries++) {
		rc = http_do(http, req, resp);
		if (rc < 0 && resp->status == 401 && tries == 0) {
			gcs_auth_invalidate(a);        /* revoked or expired */
			continue;
		}
		break;
	}
	req->prepare = NULL;
	req->prepare_ctx = NULL;
	if (c.rc < 0) {
		snprintf(msg, msglen, "%s", c.err);
		return c.rc;
	}
	if (rc < 0 && http_resp_error_status(resp))
		gcs_json_parse_error(resp->errbody.buf ? resp->errbody.buf : "",
				     resp->errbody.len, reason, reasonlen, msg,
				     msglen);
	else if (rc < 0)
		snprintf(msg, msglen, "%s", resp->error);
	return rc;
}
