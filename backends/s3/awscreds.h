/*
 * awscreds.h - AWS shared-credentials files (~/.aws/credentials format):
 *
 *   [default]
 *   aws_access_key_id = AKIA...
 *   aws_secret_access_key = ...
 *   aws_session_token = ...        ; optional
 *
 * Parsed with inih.  The file must pass secretfile_check().  Errors name
 * the file, line and profile, never a value.
 */
#ifndef HYLAKE_AWSCREDS_H
#define HYLAKE_AWSCREDS_H

#include <stddef.h>

struct aws_creds {
	char *access_key;
	char *secret_key;
	char *session_token;     /* NULL when absent */
};

/* Load `profile` (NULL or "" means "default").  0 or -errno + err. */
int awscreds_load(const char *path, const char *profile,
		  struct aws_creds *out, char *err, size_t errlen);
/* Scrub and free. */
void awscreds_release(struct aws_creds *c);

#endif
