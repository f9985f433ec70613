/*
 * journal.h - the site journal: GCS's changes, as one follower per site
 * read them from the subscription, kept in the site's own store so that
 * every mount at the site learns them with cheap local reads.
 *
 * The follower (`hylake replicate --follow`) pulls the subscription,
 * copies each new generation to the site, and appends what it learnt as
 * one numbered batch; then it moves the head.  In the site store, under
 * the reserved prefix JOURNAL_PREFIX:
 *
 *   .hylake/journal/00000000000000000042   batch 42: JSON
 *     {"journal":1,"seq":42,"written":NS,"changes":[CHANGE...]}
 *   .hylake/journal/head                   the newest batch and the
 *     heartbeat: {"journal":1,"seq":42,"drained":NS,"written":NS}
 *
 * A CHANGE is one notification, as feed.h applies it:
 *   {"id":MSGID,"published":NS,"kind":"finalize"|"metadata"|"delete"|
 *    "archive"|"gap","bucket":B,"name":N,"generation":G,
 *    "overwrote":G,"overwritten_by":G,
 *    "object":{"size":S,"metageneration":M,"created":NS,
 *              "crc32c":C,"md5":"base64"}            (when known)
 *    "held":{"size":S,"etag":E}}   (the site holds generation G of N,
 *                                   under its own version token E)
 * "gap" stands for a message that was not a change notification: some
 * change went unread, and the readers stop trusting what they knew.
 *
 * "drained" in the head is the wall-clock time of the follower's last
 * pull that found the subscription empty with every change before it in
 * batches up to seq: a mount that has applied them, reading a head whose
 * drained time is recent, is as current as the follower (clocks of the
 * follower and the mounts are assumed within a second or two; a follower
 * clock behind only makes mounts ask GCS sooner).  A batch is written
 * before the head names it, and batches are never rewritten: a reader
 * that finds seq in the head finds every batch up to it, or a gap (a
 * batch removed by an operator) it reports as such.
 *
 * Documents are untrusted input (the site store is shared): the parsers
 * reject what is malformed and are fuzzed.  Pure functions but for the
 * ones taking a struct backend.
 */
#ifndef HYLAKE_JOURNAL_H
#define HYLAKE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "backends/facts.h"
#include "backends/gcs/gcs_json.h"
#include "backends/util/strbuf.h"

#define JOURNAL_PREFIX ".hylake/journal/"
#define JOURNAL_HEAD JOURNAL_PREFIX "head"
#define JOURNAL_DOC_MAX (16u << 20)   /* bytes of one batch, at most */

/* What the site holds of one change's generation. */
struct journal_held {
	bool holds;
	uint64_t size;
	char etag[HY_ETAG_MAX];       /* the site's version token; may be "" */
};

struct journal_batch {
	uint64_t seq;                 /* >= 1 */
	int64_t written_ns;
	struct gcs_changes ch;        /* ack_id "" (nothing to acknowledge) */
	struct journal_held *held;    /* ch.n of them */
};

struct journal_head {
	uint64_t seq;                 /* 0: no batch yet */
	int64_t drained_ns;
	int64_t written_ns;
};

/* The name of batch seq in the site store (into a strbuf). */
void journal_batch_name(uint64_t seq, struct strbuf *out);

void journal_encode_batch(const struct journal_batch *b, struct strbuf *out);
void journal_encode_head(const struct journal_head *h, struct strbuf *out);

/* 0, or -EBADMSG when text is not such a document.  A change of a kind
 * not known, or missing what its kind needs, is read as a gap. */
int journal_parse_batch(const char *text, size_t len, struct journal_batch *out);
int journal_parse_head(const char *text, size_t len, struct journal_head *out);
void journal_batch_release(struct journal_batch *b);

/* Read a journal document (head or batch) of the site store into *out
 * (caller releases).  -ENOENT when there is none. */
int journal_read(struct backend *site, const char *name, struct strbuf *out,
		 const struct deadline *dl);

/* Write one (atomic: readers see the old or the new one).  tmpdir holds
 * the bytes on their way. */
int journal_write(struct backend *site, const char *name,
		  const struct strbuf *doc, const char *tmpdir,
		  const struct deadline *dl);

/*
 * A mount following a site's journal: a change source for the feed
 * (feed.h).  Starts at the head it finds (what came before is learnt
 * from GCS as the freshness rules say), and delivers each batch after
 * it; the site's holdings go to facts as replica `replica`'s, before the
 * batch's changes are applied, and never replace a newer holding.
 */
struct journal_reader;
struct feed_source;

int journal_reader_create(struct backend *site, const char *replica,
			  struct facts facts, const char *bucket,
			  const char *prefix, int64_t stall_ms,
			  struct journal_reader **out);
void journal_reader_destroy(struct journal_reader *jr);
void journal_reader_source(struct journal_reader *jr, struct feed_source *out);

#endif
