/*
 * libFuzzer target: GCS JSON API documents (untrusted input): object
 * resources (as the source and as a stamped replica), listing pages,
 * error bodies, OAuth/metadata token answers, and Pub/Sub pull
 * responses carrying change notifications.
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

/* A change is acknowledgeable, and says something only when valid. */
static void check_changes(const struct gcs_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		const struct gcs_change *c = &ch->c[i];
		if (!c->ack_id || !c->ack_id[0] || !c->message_id)
			__builtin_trap();
		if (c->kind == GCS_CHANGE_INVALID
		    ? c->name || c->bucket || c->has_info
		    : !c->name || !c->name[0] || !c->bucket || !c->generation ||
		      (c->has_info && c->info.generation != c->generation))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gcs_changes ch;
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
	if (gcs_json_parse_pull(text, size, &ch) == 0) {
		check_changes(&ch);
		gcs_changes_release(&ch);
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
