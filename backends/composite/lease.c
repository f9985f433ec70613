/*
 * lease.c - leases held in a store (see lease.h for the protocol).
 *
 * The manager keeps the leases it holds, renewed by one thread, and the
 * leases of others it has looked at (watches): the (generation,
 * metageneration) it saw and since when, by its own monotonic clock.  A
 * watch that has not changed for a ttl means the holder is gone.
 *
 *   held:     lease -> lease -> ...     (m->lock; a renewal in flight
 *                                        marks its lease busy)
 *   watches:  name, gen, metagen, since (m->lock; at most WATCH_MAX, the
 *                                        oldest dropped)
 */
#include "backends/composite/lease.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DOC_MAX 4096
#define WATCH_MAX 1024
#define RENEWED_KEY "hylake-lease-renewed"

struct lease {
	struct lease_mgr *m;
	struct lease *next;       /* m->held; m->lock */
	char *name;
	/* m->lock guards the rest */
	uint64_t gen, metagen;
	int64_t renewed_mono;     /* when the last good renewal was sent */
	int64_t retry_mono;       /* after a failed renewal: not before */
	int failures;             /* renewals failed in a row */
	bool lost;                /* taken over or removed */
	bool busy;                /* a renewal is in flight */
};

struct watch {
	char *name;
	uint64_t gen, metagen;
	int64_t since_mono;
	int64_t used_mono;
};

struct lease_mgr {
	struct backend *store;
	char *holder;
	int64_t ttl_ms, op_timeout_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* stop, a renewal done */
	bool stop;                /* lock */
	struct lease *held;       /* lock */
	struct watch *watches;    /* lock */
	size_t nwatches;          /* lock */
};

static struct deadline op_dl(const struct lease_mgr *m)
{
	return deadline_in_ms(m->op_timeout_ms);
}

/* ------------------------------------------------------------ the doc */

static void doc_encode(const struct lease_mgr *m, struct strbuf *out)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "holder", m->holder,
			      "ttl_ms", (json_int_t)m->ttl_ms,
			      "acquired_ns", (json_int_t)wall_ns());
	char *text = json_dumps(o, JSON_COMPACT);
	strbuf_adds(out, text);
	free(text);
	json_decref(o);
}

static int doc_parse(const char *text, size_t len, struct lease_info *li)
{
	json_t *o = json_loadb(text, len, 0, NULL), *h;
	int rc = -EBADMSG;

	if (!o)
		return rc;
	h = json_object_get(o, "holder");
	if (json_is_string(h) && json_is_integer(json_object_get(o, "ttl_ms"))) {
		snprintf(li->holder, sizeof(li->holder), "%s",
			 json_string_value(h));
		li->ttl_ms = json_integer_value(json_object_get(o, "ttl_ms"));
		li->acquired_ns = json_integer_value(
			json_object_get(o, "acquired_ns"));
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* Write this manager's document to name under pre: its info to *out. */
static int doc_write(struct lease_mgr *m, const char *name,
		     const struct write_pre *pre, struct obj_info *out)
{
	struct deadline dl = op_dl(m);
	struct strbuf doc = STRBUF_INIT;
	struct bwriter *w;

	doc_encode(m, &doc);
	int rc = backend_writer_open(m->store, name, pre, &w, &dl);
	if (rc == 0) {
		rc = bwriter_write(w, doc.buf, doc.len, &dl);
		if (rc == 0)
			rc = bwriter_commit(w, out, &dl);
		else
			bwriter_abort(w);
	}
	strbuf_release(&doc);
	return rc;
}

/* The document of the live lease object and its version. */
static int doc_read(struct lease_mgr *m, const char *name,
		    struct lease_info *li)
{
	struct deadline dl = op_dl(m);
	struct bobj *o;
	char buf[DOC_MAX];

	memset(li, 0, sizeof(*li));
	li->unchanged_ms = -1;
	int rc = backend_open(m->store, name, &o, &dl);
	if (rc < 0)
		return rc;
	ssize_t n = bobj_read(o, buf, sizeof(buf), 0, &dl);
	li->generation = o->info.generation;
	li->metageneration = o->info.metageneration;
	bobj_close(o);
	if (n < 0)
		return (int)n;
	return doc_parse(buf, (size_t)n, li);
}

/* The lease object's version: asked of the object itself (an open, not
 * a listing, where a folder of the same name would win). */
static int lease_stat(struct lease_mgr *m, const char *name,
		      struct obj_info *out)
{
	struct deadline dl = op_dl(m);
	struct bobj *o;
	int rc = backend_open(m->store, name, &o, &dl);
	if (rc == 0) {
		*out = o->info;
		bobj_close(o);
	}
	return rc;
}

/* ------------------------------------------------------------ watches */

/* The watch of name; a new one (replacing the least used when full). */
static struct watch *watch_get(struct lease_mgr *m, const char *name)
{
	size_t i, old = 0;
	for (i = 0; i < m->nwatches; i++) {
		if (!strcmp(m->watches[i].name, name))
			return &m->watches[i];
		if (m->watches[i].used_mono < m->watches[old].used_mono)
			old = i;
	}
	if (m->nwatches == WATCH_MAX) {
		free(m->watches[old].name);
		i = old;
	} else {
		m->watches = xrealloc(m->watches, (m->nwatches + 1) *
				      sizeof(*m->watches));
		i = m->nwatches++;
	}
	m->watches[i] = (struct watch){ .name = xstrdup(name) };
	return &m->watches[i];
}

static void watch_drop(struct lease_mgr *m, const char *name)
{
	for (size_t i = 0; i < m->nwatches; i++) {
		if (!strcmp(m->watches[i].name, name)) {
			free(m->watches[i].name);
			m->watches[i] = m->watches[--m->nwatches];
			return;
		}
	}
}

/*
 * Note that name is at (gen, metagen) now; true when it has been so for
 * a whole ttl (the holder stopped renewing it).
 */
static bool watch_expired(struct lease_mgr *m, const char *name,
			  uint64_t gen, uint64_t metagen)
{
	int64_t now = mono_ns();
	pthread_mutex_lock(&m->lock);
	struct watch *w = watch_get(m, name);
	if (w->gen != gen || w->metagen != metagen) {
		w->gen = gen;
		w->metagen = metagen;
		w->since_mono = now;
	}
	w->used_mono = now;
	bool expired = now - w->since_mono >= m->ttl_ms * NS_PER_MS;
	pthread_mutex_unlock(&m->lock);
	return expired;
}

/* ------------------------------------------------------------ holding */

static struct lease *held_new(struct lease_mgr *m, const char *name,
			      const struct obj_info *info, int64_t sent)
{
	struct lease *l = xcalloc(1, sizeof(*l));
	l->m = m;
	l->name = xstrdup(name);
	l->gen = info->generation;
	l->metagen = info->metageneration;
	l->renewed_mono = sent;
	pthread_mutex_lock(&m->lock);
	watch_drop(m, name);
	l->next = m->held;
	m->held = l;
	pthread_mutex_unlock(&m->lock);
	return l;
}

int lease_try(struct lease_mgr *m, const char *name, struct lease **out)
{
	struct write_pre pre = { .kind = WRITE_PRE_ABSENT };
	struct obj_info cur, got;
	int64_t sent;

	int rc = lease_stat(m, name, &cur);
	if (rc == 0) {
		if (!watch_expired(m, name, cur.generation,
				   cur.metageneration))
			return -EWOULDBLOCK;
		pre.kind = WRITE_PRE_GENERATION;     /* expired: take it */
		pre.generation = cur.generation;
		pre.metageneration = cur.metageneration;
	} else if (rc != -ENOENT) {
		return rc;
	}
	sent = mono_ns();
	rc = doc_write(m, name, &pre, &got);
	if (rc == -EEXIST || rc == -ESTALE)
		return -EWOULDBLOCK;                 /* another was quicker */
	if (rc < 0)
		return rc;
	if (pre.kind == WRITE_PRE_GENERATION)
		log_notice("lease %s: taken over (generation %" PRIu64
			   " was not renewed for %" PRId64 " ms)", name,
			   pre.generation, m->ttl_ms);
	*out = held_new(m, name, &got, sent);
	return 0;
}

int lease_acquire(struct lease_mgr *m, const char *name,
		  bool (*cancelled)(void *), void *arg, struct lease **out)
{
	int64_t wait_ms = 50, cap_ms = m->ttl_ms / 4;

	if (cap_ms > 2000)
		cap_ms = 2000;
	for (;;) {
		int rc = lease_try(m, name, out);
		if (rc != -EWOULDBLOCK)
			return rc;
		/* sleep wait_ms +- a quarter, in slices, asking cancelled */
		int64_t jitter = wait_ms / 2 ? rand() % (wait_ms / 2) : 0;
		int64_t end = mono_ns() + (wait_ms * 3 / 4 + jitter) *
					  NS_PER_MS;
		while (mono_ns() < end) {
			if (cancelled && cancelled(arg))
				return -EINTR;
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (cancelled && cancelled(arg))
			return -EINTR;
		wait_ms = wait_ms * 2 < cap_ms ? wait_ms * 2 : cap_ms;
	}
}

int lease_check(struct lease *l)
{
	struct lease_mgr *m = l->m;
	pthread_mutex_lock(&m->lock);
	bool ok = !l->lost && mono_ns() - l->renewed_mono <
			      m->ttl_ms * NS_PER_MS * 2 / 3;
	pthread_mutex_unlock(&m->lock);
	return ok ? 0 : -ENOLCK;
}

void lease_release(struct lease *l)
{
	if (!l)
		return;
	struct lease_mgr *m = l->m;
	pthread_mutex_lock(&m->lock);
	while (l->busy)
		pthread_cond_wait(&m->cond, &m->lock);
	for (struct lease **p = &m->held; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	bool lost = l->lost;
	struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
				 .generation = l->gen };
	pthread_mutex_unlock(&m->lock);
	if (!lost) {
		struct deadline dl = op_dl(m);
		int rc = backend_remove(m->store, l->name, &pre, &dl);
		if (rc < 0 && rc != -ENOENT && rc != -ESTALE)
			log_warn("lease %s: cannot remove it (%s): it expires "
				 "in %" PRId64 " ms", l->name, strerror(-rc),
				 m->ttl_ms);
	}
	free(l->name);
	free(l);
}

/* ------------------------------------------------------------ renewal */

/* Renew l (busy, lock not held); then record what came of it. */
static void renew_one(struct lease_mgr *m, struct lease *l, uint64_t gen,
		      uint64_t metagen)
{
	char when[32];
	struct meta_kv kv = { RENEWED_KEY, when };
	struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
				 .generation = gen, .metageneration = metagen };
	struct deadline dl = op_dl(m);
	struct obj_info got;
	int64_t sent = mono_ns();

	snprintf(when, sizeof(when), "%" PRId64, wall_ns());
	int rc = backend_set_meta(m->store, l->name, &pre, &kv, 1, &got, &dl);
	if (rc == -ESTALE) {
		/* a renewal whose answer was lost, sent again, finds its own
		 * metageneration: the generation says whether it is ours */
		rc = lease_stat(m, l->name, &got);
		if (rc == 0 && got.generation != gen)
			rc = -ESTALE;
	}
	pthread_mutex_lock(&m->lock);
	if (rc == 0) {
		if (l->failures)
			log_notice("lease %s: renewed again", l->name);
		l->metagen = got.metageneration;
		l->renewed_mono = sent;
		l->failures = 0;
	} else if (rc == -ESTALE || rc == -ENOENT) {
		l->lost = true;
		log_warn("lease %s: lost (taken over or removed)", l->name);
	} else {
		if (!l->failures++)
			log_warn("lease %s: cannot renew it: %s", l->name,
				 strerror(-rc));
		/* again soon, but within GCS's update a second per object */
		l->retry_mono = mono_ns() + m->ttl_ms * NS_PER_MS / 12;
	}
	l->busy = false;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* The next held lease due for renewal, marked busy; NULL when none.
 * Lock held. */
static struct lease *due(struct lease_mgr *m, int64_t now)
{
	for (struct lease *l = m->held; l; l = l->next)
		if (!l->busy && !l->lost && now >= l->retry_mono &&
		    now - l->renewed_mono >= m->ttl_ms * NS_PER_MS / 3)
			return l;
	return NULL;
}

static void *renew_thread(void *arg)
{
	struct lease_mgr *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct lease *l = due(m, mono_ns());
		if (l) {
			uint64_t gen = l->gen, metagen = l->metagen;
			l->busy = true;
			pthread_mutex_unlock(&m->lock);
			renew_one(m, l, gen, metagen);
			pthread_mutex_lock(&m->lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t at = ts.tv_sec * NS_PER_SEC + ts.tv_nsec +
			     m->ttl_ms * NS_PER_MS / 12;
		ts.tv_sec = at / NS_PER_SEC;
		ts.tv_nsec = at % NS_PER_SEC;
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ------------------------------------------------------------ manager */

struct lease_mgr *lease_mgr_create(const struct lease_conf *conf, int *err)
{
	if (conf->ttl_ms < LEASE_TTL_MIN_MS || !conf->holder ||
	    strlen(conf->holder) >= LEASE_HOLDER_MAX) {
		*err = -EINVAL;
		return NULL;
	}
	struct lease_mgr *m = xcalloc(1, sizeof(*m));
	m->store = conf->store;
	m->holder = xstrdup(conf->holder);
	m->ttl_ms = conf->ttl_ms;
	m->op_timeout_ms = conf->op_timeout_ms;
	pthread_mutex_init(&m->lock, NULL);
	timeutil_cond_init(&m->cond);
	int rc = pthread_create(&m->thread, NULL, renew_thread, m);
	if (rc) {
		pthread_cond_destroy(&m->cond);
		pthread_mutex_destroy(&m->lock);
		free(m->holder);
		free(m);
		*err = -rc;
		return NULL;
	}
	return m;
}

void lease_mgr_destroy(struct lease_mgr *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	while (m->held)
		lease_release(m->held);
	for (size_t i = 0; i < m->nwatches; i++)
		free(m->watches[i].name);
	free(m->watches);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m->holder);
	free(m);
}

int64_t lease_mgr_ttl_ms(const struct lease_mgr *m)
{
	return m->ttl_ms;
}

int lease_inspect(struct lease_mgr *m, const char *name,
		  struct lease_info *out)
{
	int rc = doc_read(m, name, out);
	if (rc < 0)
		return rc;
	int64_t now = mono_ns();
	pthread_mutex_lock(&m->lock);
	for (struct lease *l = m->held; l; l = l->next)
		if (!strcmp(l->name, name) && l->gen == out->generation)
			out->mine = true;
	for (size_t i = 0; i < m->nwatches; i++) {
		struct watch *w = &m->watches[i];
		if (!strcmp(w->name, name) && w->gen == out->generation &&
		    w->metagen == out->metageneration)
			out->unchanged_ms = (now - w->since_mono) / NS_PER_MS;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void lease_holder_id(const char *what, struct strbuf *out)
{
	char host[256] = "host";
	gethostname(host, sizeof(host) - 1);
	strbuf_addf(out, "%s pid %d started %" PRIx64 " %s", host,
		    (int)getpid(), (uint64_t)wall_ns(), what);
}

void lease_info_describe(const struct lease_info *li, struct strbuf *out)
{
	char since[64] = "?";
	struct tm tm;
	time_t t = (time_t)(li->acquired_ns / NS_PER_SEC);

	if (li->acquired_ns > 0 && gmtime_r(&t, &tm))
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strbuf_addf(out, "held by %s%s since %s, ttl %" PRId64 " ms, renewed %"
		    PRIu64 " times", li->holder, li->mine ? " (this mount)" : "",
		    since, li->ttl_ms,
		    li->metageneration ? li->metageneration - 1 : 0);
	if (li->unchanged_ms >= 0)
		strbuf_addf(out, ", unchanged here for %" PRId64 " ms",
			    li->unchanged_ms);
}
