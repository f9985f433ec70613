/*
 * awscreds.c - read one profile of an AWS shared-credentials file.
 */
#include "backends/s3/awscreds.h"
#include "backends/util/secretfile.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parse_state {
	const char *profile;
	struct aws_creds *out;
	bool seen_profile;
};

static void set(char **slot, const char *value)
{
	if (*slot) {
		OPENSSL_cleanse(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = xstrdup(value);
}

static int on_entry(void *arg, const char *section, const char *name,
		    const char *value)
{
	struct parse_state *st = arg;

	/* Both "[name]" and the config-file style "[profile name]". */
	if (strncmp(section, "profile ", 8) == 0)
		section += 8;
	if (strcmp(section, st->profile) != 0)
		return 1;
	st->seen_profile = true;
	if (strcmp(name, "aws_access_key_id") == 0)
		set(&st->out->access_key, value);
	else if (strcmp(name, "aws_secret_access_key") == 0)
		set(&st->out->secret_key, value);
	else if (strcmp(name, "aws_session_token") == 0)
		set(&st->out->session_token, value);
	return 1;    /* other keys (region, ...) are legal and ignored */
}

int awscreds_load(const char *path, const char *profile,
		  struct aws_creds *out, char *err, size_t errlen)
{
	struct parse_state st = {
		.profile = profile && *profile ? profile : "default",
		.out = out,
	};
	int rc;

	memset(out, 0, sizeof(*out));
	struct strbuf text = STRBUF_INIT;
	rc = secretfile_read(path, &text, err, errlen);
	if (rc < 0) {
		strbuf_release(&text);
		return rc;
	}
	rc = ini_parse_string(text.buf, on_entry, &st);
	secretfile_scrub(&text);
	strbuf_release(&text);
	if (rc > 0) {
		snprintf(err, errlen, "%s:%d: not a valid credentials file",
			 path, rc);
		awscreds_release(out);
		return -EINVAL;
	}
	if (!st.seen_profile) {
		snprintf(err, errlen, "credentials file %s has no profile [%s]",
			 path, st.profile);
		return -EINVAL;
	}
	if (!out->access_key || !out->secret_key || !*out->access_key ||
	    !*out->secret_key) {
		snprintf(err, errlen, "credentials file %s, profile [%s]: "
			 "aws_access_key_id and aws_secret_access_key are "
			 "both required", path, st.profile);
		awscreds_release(out);
		return -EINVAL;
	}
	return 0;
}

void awscreds_release(struct aws_creds *c)
{
	char **slots[] = { &c->access_key, &c->secret_key, &c->session_token };
	for (size_t i = 0; i < 3; i++) {
		if (*slots[i]) {
			OPENSSL_cleanse(*slots[i], strlen(*slots[i]));
			free(*slots[i]);
			*slots[i] = NULL;
		}
	}
}
