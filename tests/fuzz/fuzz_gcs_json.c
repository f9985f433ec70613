/*
 * libFuzzer target: GCS JSON API documents (untrusted input): object
 * resources (as the source and as a stamped replica), listing pages,
 * error bodies and OAuth/metadata token answers.
 */
#include "backends/gcs/gcs_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_item(const struct gcs_item *it)
{
	if (!it->name || !it->name[0] ||
	    strnlen(it->info.etag, sizeof(it->info.etag)) >= sizeof(it->info.etag))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct gcs_item it;
	struct gcs_listing l;
	char reason[64], msg[256];
	char *token;
	int64_t expires_in;

	for (int stamped = 0; stamped < 2; stamped++) {
		const char *key = stamped ? "goog-generation" : NULL;
		if (gcs_json_parse_object(text, size, key, &it) == 0) {
			check_item(&it);
			free(it.name);
		}
		if (gcs_json_parse_listing(text, size, key, &l) == 0) {
			for (size_t i = 0; i < l.nitems; i++)
				check_item(&l.items[i]);
			for (size_t i = 0; i < l.nprefixes; i++)
				if (!l.prefixes[i] || !l.prefixes[i][0])
					__builtin_trap();
			gcs_listing_release(&l);
		}
	}
	gcs_json_parse_error(text, size, reason, sizeof(reason), msg,
			     sizeof(msg));
	if (gcs_json_parse_token(text, size, &token, &expires_in, msg,
				 sizeof(msg)) == 0) {
		if (!token || expires_in < 1 ||
		    expires_in > GCS_TOKEN_LIFE_MAX_S)
			__builtin_trap();
		free(token);
	}
	return 0;
}
