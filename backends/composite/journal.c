/*
 * journal.c - the site journal's documents, and a mount following them
 * (journal.h).
 */
#include "backends/composite/journal.h"
#include "backends/composite/feed.h"
#include "backends/util/base64.h"
#include "backends/util/fdio.h"
#include "backends/util/log.h"
#include "backends/util/prom.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORMAT 1
#define READER_IDLE_MS 200       /* between looks at the head */

void journal_batch_name(uint64_t seq, struct strbuf *out)
{
	strbuf_addf(out, JOURNAL_PREFIX "%020" PRIu64, seq);
}

/* ---------------------------------------------------------- encoding */

static const char *const kinds[] = {
	[GCS_CHANGE_INVALID] = "gap",
	[GCS_CHANGE_FINALIZE] = "finalize",
	[GCS_CHANGE_METADATA] = "metadata",
	[GCS_CHANGE_DELETE] = "delete",
	[GCS_CHANGE_ARCHIVE] = "archive",
};

static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static json_t *change_json(const struct gcs_change *c,
			   const struct journal_held *h)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(c->message_id));
	set_u64(o, "published", (uint64_t)c->publish_ns);
	json_object_set_new(o, "kind", json_string(kinds[c->kind]));
	if (c->kind == GCS_CHANGE_INVALID)
		return o;
	json_object_set_new(o, "bucket", json_string(c->bucket));
	json_object_set_new(o, "name", json_string(c->name));
	set_u64(o, "generation", c->generation);
	if (c->overwrote)
		set_u64(o, "overwrote", c->overwrote);
	if (c->overwritten_by)
		set_u64(o, "overwritten_by", c->overwritten_by);
	if (c->has_info) {
		json_t *info = json_object();
		set_u64(info, "size", c->info.size);
		set_u64(info, "metageneration", c->info.metageneration);
		set_u64(info, "created", (uint64_t)c->info.mtime_ns);
		if (c->info.has_crc32c)
			set_u64(info, "crc32c", c->info.crc32c);
		if (c->info.has_md5) {
			struct strbuf m = STRBUF_INIT;
			base64_encode(&m, c->info.md5, 16);
			json_object_set_new(info, "md5", json_string(m.buf));
			strbuf_release(&m);
		}
		json_object_set_new(o, "object", info);
	}
	if (h && h->holds) {
		json_t *held = json_object();
		set_u64(held, "size", h->size);
		json_object_set_new(held, "etag", json_string(h->etag));
		json_object_set_new(o, "held", held);
	}
	return o;
}

static void dump(json_t *doc, struct strbuf *out)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	strbuf_adds(out, text);
	strbuf_addch(out, '\n');
	free(text);
	json_decref(doc);
}

void journal_encode_batch(const struct journal_batch *b, struct strbuf *out)
{
	json_t *doc = json_object(), *arr = json_array();

	set_u64(doc, "journal", FORMAT);
	set_u64(doc, "seq", b->seq);
	set_u64(doc, "written", (uint64_t)b->written_ns);
	for (size_t i = 0; i < b->ch.n; i++)
		json_array_append_new(arr, change_json(&b->ch.c[i],
						       b->held ? &b->held[i]
							       : NULL));
	json_object_set_new(doc, "changes", arr);
	dump(doc, out);
}

void journal_encode_head(const struct journal_head *h, struct strbuf *out)
{
	json_t *doc = json_object();

	set_u64(doc, "journal", FORMAT);
	set_u64(doc, "seq", h->seq);
	set_u64(doc, "drained", (uint64_t)h->drained_ns);
	set_u64(doc, "written", (uint64_t)h->written_ns);
	dump(doc, out);
}

/* ---------------------------------------------------------- parsing */

/* A non-negative integer of o (absent: false). */
static bool get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* A string of o with no NUL in it, not empty. */
static const char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || !json_string_length(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static bool parse_format(json_t *doc)
{
	uint64_t f;
	return json_is_object(doc) && get_u64(doc, "journal", &f) &&
	       f == FORMAT;
}

static enum gcs_change_kind parse_kind(const char *k)
{
	for (size_t i = 1; k && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(k, kinds[i]))
			return (enum gcs_change_kind)i;
	return GCS_CHANGE_INVALID;
}

static bool parse_info(json_t *o, struct gcs_change *c)
{
	uint64_t created = 0, crc;
	const char *md5;

	if (!json_is_object(o) || !get_u64(o, "size", &c->info.size))
		return false;
	get_u64(o, "metageneration", &c->info.metageneration);
	if (get_u64(o, "created", &created) && created <= INT64_MAX)
		c->info.mtime_ns = (int64_t)created;
	if (get_u64(o, "crc32c", &crc)) {
		if (crc > UINT32_MAX)
			return false;
		c->info.crc32c = (uint32_t)crc;
		c->info.has_crc32c = true;
	}
	if ((md5 = get_str(o, "md5"))) {
		if (base64_md5(md5, c->info.md5) < 0)
			return false;
		c->info.has_md5 = true;
	}
	c->info.generation = c->generation;
	c->has_info = true;
	return true;
}

/* One change; what does not hold together is a gap. */
static void parse_change(json_t *o, struct gcs_change *c,
			 struct journal_held *h)
{
	const char *id = get_str(o, "id"), *bucket = get_str(o, "bucket");
	const char *name = get_str(o, "name");
	uint64_t published = 0;
	json_t *held = json_object_get(o, "held");
	json_t *info = json_object_get(o, "object");

	memset(c, 0, sizeof(*c));
	memset(h, 0, sizeof(*h));
	c->ack_id = xstrdup("");
	c->message_id = xstrdup(id ? id : "");
	if (get_u64(o, "published", &published) && published <= INT64_MAX)
		c->publish_ns = (int64_t)published;
	c->kind = parse_kind(get_str(o, "kind"));
	if (c->kind == GCS_CHANGE_INVALID || !bucket || !name ||
	    !get_u64(o, "generation", &c->generation) || !c->generation ||
	    (info && !parse_info(info, c))) {
		c->kind = GCS_CHANGE_INVALID;
		c->has_info = false;
		memset(&c->info, 0, sizeof(c->info));
		return;
	}
	get_u64(o, "overwrote", &c->overwrote);
	get_u64(o, "overwritten_by", &c->overwritten_by);
	c->bucket = xstrdup(bucket);
	c->name = xstrdup(name);
	const char *etag = json_is_object(held) ? get_str(held, "etag") : NULL;
	if (json_is_object(held) && get_u64(held, "size", &h->size) &&
	    (!etag || etag_copy(h->etag, etag, strlen(etag))))
		h->holds = true;
}

int journal_parse_batch(const char *text, size_t len, struct journal_batch *out)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *arr = json_object_get(doc, "changes");
	uint64_t written = 0;

	memset(out, 0, sizeof(*out));
	if (!parse_format(doc) || !get_u64(doc, "seq", &out->seq) ||
	    !out->seq || !json_is_array(arr)) {
		json_decref(doc);
		return -EBADMSG;
	}
	if (get_u64(doc, "written", &written) && written <= INT64_MAX)
		out->written_ns = (int64_t)written;
	out->ch.n = json_array_size(arr);
	out->ch.c = xcalloc(out->ch.n + 1, sizeof(*out->ch.c));
	out->held = xcalloc(out->ch.n + 1, sizeof(*out->held));
	for (size_t i = 0; i < out->ch.n; i++)
		parse_change(json_array_get(arr, i), &out->ch.c[i],
			     &out->held[i]);
	json_decref(doc);
	return 0;
}

int journal_parse_head(const char *text, size_t len, struct journal_head *out)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	uint64_t drained = 0, written = 0;
	int rc = -EBADMSG;

	memset(out, 0, sizeof(*out));
	if (parse_format(doc) && get_u64(doc, "seq", &out->seq) &&
	    get_u64(doc, "drained", &drained) && drained <= INT64_MAX) {
		out->drained_ns = (int64_t)drained;
		if (get_u64(doc, "written", &written) && written <= INT64_MAX)
			out->written_ns = (int64_t)written;
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

void journal_batch_release(struct journal_batch *b)
{
	gcs_changes_release(&b->ch);
	free(b->held);
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------- storage */

int journal_read(struct backend *site, const char *name, struct strbuf *out,
		 const struct deadline *dl)
{
	struct bobj *o;
	int rc = backend_open(site, name, &o, dl);

	if (rc < 0)
		return rc == -EISDIR ? -ENOENT : rc;
	uint64_t size = o->info.size;
	if (size > JOURNAL_DOC_MAX) {
		bobj_close(o);
		return -EFBIG;
	}
	strbuf_init(out);
	strbuf_grow(out, (size_t)size + 1);
	while (out->len < size) {
		ssize_t n = bobj_read(o, out->buf + out->len,
				      (size_t)size - out->len, out->len, dl);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		out->len += (size_t)n;
		out->buf[out->len] = '\0';
	}
	bobj_close(o);
	if (rc < 0)
		strbuf_release(out);
	return rc;
}

int journal_write(struct backend *site, const char *name,
		  const struct strbuf *doc, const char *tmpdir,
		  const struct deadline *dl)
{
	/* the stamp says nothing of the source: a journal document is the
	 * site's own (generation 0 claims no version) */
	struct obj_info stamp = { .size = doc->len };
	int fd = tmpfile_in(tmpdir), rc;

	if (fd < 0)
		return -errno;
	rc = pwrite_full(fd, doc->buf, doc->len, 0);
	if (rc == 0)
		rc = backend_put(site, name, fd, doc->len, &stamp, dl);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------- reader */

struct journal_reader {
	struct backend *site;
	char *replica, *bucket, *prefix, *name;
	struct facts facts;
	int64_t stall_ms;
	pthread_mutex_t lock;        /* guards the figures below */
	bool started;
	uint64_t cursor;             /* batches up to this one delivered */
	struct journal_head head;    /* the newest head read */
	int64_t head_read_mono;
	uint64_t batches, gaps;
};

static const char *jr_name(void *ctx)
{
	struct journal_reader *jr = ctx;
	return jr->name;
}

/* The site holds what h says of c: remembered unless it knows a newer
 * holding already. */
static void note_held(struct journal_reader *jr, const struct gcs_change *c,
		      const struct journal_held *h, int64_t now)
{
	struct replica_fact old;

	if (!h->holds || c->kind != GCS_CHANGE_FINALIZE)
		return;
	const char *name = feed_mount_name(jr->bucket, jr->prefix, c);
	if (!name)
		return;
	if (jr->facts.ops->get_replica(jr->facts.ctx, jr->replica, name,
				       &old) == 0 &&
	    old.state == REPLICA_HOLDS && old.generation > c->generation)
		return;
	struct replica_fact f = { .state = REPLICA_HOLDS,
				  .generation = c->generation,
				  .size = h->size, .checked_ns = now };
	snprintf(f.etag, sizeof(f.etag), "%s", h->etag);
	jr->facts.ops->put_replica(jr->facts.ctx, jr->replica, name, &f);
}

/* One gap, as a batch of one change. */
static void gap(struct gcs_changes *out)
{
	out->n = 1;
	out->c = xcalloc(2, sizeof(*out->c));
	out->c[0].ack_id = xstrdup("");
	out->c[0].message_id = xstrdup("");
}

static int read_head(struct journal_reader *jr, const struct deadline *dl,
		     struct journal_head *h, char *err, size_t errlen)
{
	struct strbuf doc;
	int rc = journal_read(jr->site, JOURNAL_HEAD, &doc, dl);

	if (rc == 0) {
		rc = journal_parse_head(doc.buf, doc.len, h);
		strbuf_release(&doc);
		if (rc < 0)
			snprintf(err, errlen, "%s on %s is not a journal head",
				 JOURNAL_HEAD, jr->site->name);
	} else {
		snprintf(err, errlen, "reading %s on %s: %s", JOURNAL_HEAD,
			 jr->site->name, rc == -ENOENT ? "no journal there "
			 "(is `hylake replicate --follow` running for this "
			 "site?)" : strerror(-rc));
	}
	return rc;
}

static int jr_pull(void *ctx, unsigned max, struct gcs_changes *out,
		   bool *drained, const struct deadline *dl, char *err,
		   size_t errlen)
{
	struct journal_reader *jr = ctx;
	struct journal_head h;
	(void)max;

	memset(out, 0, sizeof(*out));
	*drained = false;
	pthread_mutex_lock(&jr->lock);
	uint64_t cursor = jr->cursor;
	bool started = jr->started;
	h = jr->head;
	pthread_mutex_unlock(&jr->lock);

	if (!started || cursor >= h.seq) {
		int rc = read_head(jr, dl, &h, err, errlen);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&jr->lock);
		jr->head = h;
		jr->head_read_mono = mono_ns();
		if (!jr->started || h.seq < jr->cursor) {
			/* from now on (or a journal started afresh) */
			if (jr->started)
				log_warn("journal of %s started again (head %"
					 PRIu64 " < %" PRIu64 ")",
					 jr->site->name, h.seq, jr->cursor);
			jr->cursor = cursor = h.seq;
			jr->started = true;
		}
		pthread_mutex_unlock(&jr->lock);
	}
	if (cursor < h.seq) {
		struct strbuf name = STRBUF_INIT, doc;
		struct journal_batch b;
		journal_batch_name(cursor + 1, &name);
		int rc = journal_read(jr->site, name.buf, &doc, dl);
		if (rc == 0) {
			rc = journal_parse_batch(doc.buf, doc.len, &b);
			strbuf_release(&doc);
			if (rc == 0 && b.seq != cursor + 1) {
				journal_batch_release(&b);
				rc = -EBADMSG;
			}
		}
		if (rc == -ENOENT || rc == -EBADMSG || rc == -EFBIG) {
			/* a batch that is not there, or not one: what it
			 * said is lost, a gap */
			log_warn("journal of %s: %s %s; what it held is "
				 "confirmed with the source again",
				 jr->site->name, name.buf, rc == -ENOENT
				 ? "is missing" : "is not a journal batch");
			gap(out);
			pthread_mutex_lock(&jr->lock);
			jr->gaps++;
			pthread_mutex_unlock(&jr->lock);
		} else if (rc < 0) {
			snprintf(err, errlen, "reading %s on %s: %s",
				 name.buf, jr->site->name, strerror(-rc));
			strbuf_release(&name);
			return rc;
		} else {
			int64_t now = wall_ns();
			for (size_t i = 0; i < b.ch.n; i++)
				note_held(jr, &b.ch.c[i], &b.held[i], now);
			*out = b.ch;
			free(b.held);
		}
		strbuf_release(&name);
		cursor++;
		pthread_mutex_lock(&jr->lock);
		jr->cursor = cursor;
		jr->batches++;
		pthread_mutex_unlock(&jr->lock);
	}
	/* all delivered, and the follower was drained recently */
	*drained = cursor >= h.seq &&
		   wall_ns() - h.drained_ns <= jr->stall_ms * NS_PER_MS;
	return 0;
}

static int jr_ack(void *ctx, const struct gcs_changes *ch,
		  const struct deadline *dl)
{
	(void)ctx;
	(void)ch;
	(void)dl;
	return 0;            /* the cursor moved when they were read */
}

static void jr_metrics(void *ctx, struct prom *p)
{
	struct journal_reader *jr = ctx;

	pthread_mutex_lock(&jr->lock);
	struct journal_head h = jr->head;
	uint64_t cursor = jr->cursor, batches = jr->batches, gaps = jr->gaps;
	bool started = jr->started;
	pthread_mutex_unlock(&jr->lock);
	if (!started)
		return;
	prom_add(p, "hylake_journal_heartbeat_age_seconds", PROM_GAUGE,
		 "now minus the time the site's follower last found the "
		 "subscription drained", NULL, NULL,
		 (double)(wall_ns() - h.drained_ns) / 1e9);
	prom_add(p, "hylake_journal_batch", PROM_GAUGE,
		 "the newest batch of the site's journal applied", NULL, NULL,
		 (double)cursor);
	prom_add(p, "hylake_journal_behind_batches", PROM_GAUGE,
		 "batches of the site's journal not read yet", NULL, NULL,
		 (double)(h.seq > cursor ? h.seq - cursor : 0));
	prom_add(p, "hylake_journal_batches_total", PROM_COUNTER,
		 "batches of the site's journal read", NULL, NULL,
		 (double)batches);
	prom_add(p, "hylake_journal_gaps_total", PROM_COUNTER,
		 "batches found missing or malformed", NULL, NULL,
		 (double)gaps);
}

static const struct feed_source_ops reader_ops = {
	.name = jr_name,
	.pull = jr_pull,
	.ack = jr_ack,
	.metrics = jr_metrics,
	.idle_ms = READER_IDLE_MS,
};

int journal_reader_create(struct backend *site, const char *replica,
			  struct facts facts, const char *bucket,
			  const char *prefix, int64_t stall_ms,
			  struct journal_reader **out)
{
	struct journal_reader *jr = xcalloc(1, sizeof(*jr));
	struct strbuf name = STRBUF_INIT;

	jr->site = site;
	jr->replica = xstrdup(replica);
	jr->bucket = xstrdup(bucket);
	jr->prefix = xstrdup(prefix ? prefix : "");
	jr->facts = facts;
	jr->stall_ms = stall_ms;
	strbuf_addf(&name, "journal of %s", replica);
	jr->name = strbuf_detach(&name, NULL);
	pthread_mutex_init(&jr->lock, NULL);
	*out = jr;
	return 0;
}

void journal_reader_destroy(struct journal_reader *jr)
{
	if (!jr)
		return;
	pthread_mutex_destroy(&jr->lock);
	free(jr->replica);
	free(jr->bucket);
	free(jr->prefix);
	free(jr->name);
	free(jr);
}

void journal_reader_source(struct journal_reader *jr, struct feed_source *out)
{
	out->ops = &reader_ops;
	out->ctx = jr;
}
