/*
 * libFuzzer target: the site journal's documents (untrusted: the site
 * store is shared), batches and heads.  A batch that parses holds only
 * well-formed changes or gaps, and encodes to a document that parses to
 * the same.
 */
#include "backends/composite/journal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct journal_batch *b)
{
	if (!b->seq)
		__builtin_trap();
	for (size_t i = 0; i < b->ch.n; i++) {
		const struct gcs_change *c = &b->ch.c[i];
		if (!c->ack_id || !c->message_id)
			__builtin_trap();
		if (c->kind == GCS_CHANGE_INVALID
		    ? c->name || c->bucket || c->has_info || b->held[i].holds
		    : !c->name || !c->name[0] || !c->bucket || !c->generation ||
		      (c->has_info && c->info.generation != c->generation))
			__builtin_trap();
		if (strnlen(b->held[i].etag, HY_ETAG_MAX) >= HY_ETAG_MAX)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct journal_batch b, again;
	struct journal_head h;

	if (journal_parse_batch(text, size, &b) == 0) {
		check(&b);
		struct strbuf doc = STRBUF_INIT;
		journal_encode_batch(&b, &doc);
		if (journal_parse_batch(doc.buf, doc.len, &again) != 0 ||
		    again.seq != b.seq || again.ch.n != b.ch.n)
			__builtin_trap();
		for (size_t i = 0; i < b.ch.n; i++)
			if (again.ch.c[i].kind != b.ch.c[i].kind ||
			    again.held[i].holds != b.held[i].holds)
				__builtin_trap();
		journal_batch_release(&again);
		strbuf_release(&doc);
		journal_batch_release(&b);
	}
	journal_parse_head(text, size, &h);
	return 0;
}
