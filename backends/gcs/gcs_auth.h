/*
 * gcs_auth.h - OAuth access tokens for the GCS JSON API.
 *
 *   credentials = /path/key.json   service-account key: an RS256 JWT
 *                                  assertion exchanged at its token_uri
 *   credentials = metadata         the GCE metadata server's token endpoint
 *   credentials = none             no Authorization header (emulators)
 *
 * Tokens are cached and fetched again shortly before they expire (a
 * quarter of their lifetime, at most five minutes, ahead), by one thread
 * while the others wait (single flight).  Tokens and keys are never
 * logged.  Thread safe.
 */
#ifndef HYLAKE_GCS_AUTH_H
#define HYLAKE_GCS_AUTH_H

#include <stddef.h>

#include "backends/util/timeutil.h"

struct curl_slist;
struct http_engine;
struct gcs_auth;

#define GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_DEFAULT_METADATA "http://metadata.google.internal"
#define GCS_SCOPE_READ_ONLY "https://www.googleapis.com/auth/devstorage.read_only"
#define GCS_SCOPE_READ_WRITE "https://www.googleapis.com/auth/devstorage.read_write"

/*
 * credentials: a key file path, "metadata" or "none".  metadata_endpoint
 * may be NULL (the GCE default).  http is borrowed.  Loads and checks
 * the key file now (permissions, fields, key); fetches no token yet.
 * A key file's tokens are asked for GCS_SCOPE_READ_ONLY.
 */
int gcs_auth_create(const char *credentials, const char *metadata_endpoint,
		    struct http_engine *http, struct gcs_auth **out,
		    char *err, size_t errlen);

/*
 * The same, with the scope (copied) a key file's tokens are asked for:
 * GCS_SCOPE_READ_WRITE for a store that writes, or another API's (the
 * metadata server's tokens carry the scopes the VM was given).
 */
int gcs_auth_create_scoped(const char *credentials,
			   const char *metadata_endpoint, const char *scope,
			   struct http_engine *http, struct gcs_auth **out,
			   char *err, size_t errlen);
void gcs_auth_destroy(struct gcs_auth *a);

/*
 * Append the Authorization header (nothing for "none") to *headers,
 * fetching a token if none is valid.  0, or -EACCES (credentials
 * rejected) / -ETIMEDOUT / -ECONNREFUSED ... with err filled.
 */
int gcs_auth_header(struct gcs_auth *a, struct curl_slist **headers,
		    const struct deadline *dl, char *err, size_t errlen);

/* The store got 401 with the cached token: forget it. */
void gcs_auth_invalidate(struct gcs_auth *a);

struct http_req;
struct http_resp;

/*
 * Send req through http with a's Authorization header (after the
 * borrowed extra headers, may be NULL); a 401 drops the cached token
 * and tries once more.  req->prepare is used and left NULL.  Returns
 * http_do()'s answer or the auth failure; reason/msg (may be 0-sized)
 * get the Google error document's first reason and message, or the auth
 * or transport failure.
 */
int gcs_auth_do(struct gcs_auth *a, struct http_engine *http,
		struct http_req *req, const struct curl_slist *extra,
		struct http_resp *resp, char *reason, size_t reasonlen,
		char *msg, size_t msglen);

#endif
