/*
 * blockcache.c - the block cache on local disk (blockcache.h).
 *
 * Folder layout:
 *
 *   <dir>/lock                  flock()ed while a process has the cache
 *                               open; holds that process's pid
 *   <dir>/v1/FORMAT             "hylake block cache 1 block_size=1048576\n";
 *                               anything else there: v1 is wiped
 *   <dir>/v1/tmp/<16 hex>       blocks being written (emptied at open)
 *   <dir>/v1/CHECKED            left by a clean close: the block files its
 *                               process had checked (bcchecked.h); taken
 *                               and removed at open
 *   <dir>/v1/<2 hex>/<32 hex>   one block: the name is the XXH3-128 of its
 *                               key, the folder the hash's first byte
 *
 * Block file, format 1 (native byte order, fixed offsets):
 *
 *    0  u8[8] magic "HYBLK001"    8  u32  header length h
 *   12  u32  data length d       16  u64  XXH3-64 of the data
 *   24  u64  block index         32  u16  namespace length
 *   34  u16  name length         36  u16  version length
 *   38  namespace, name and version bytes
 *    h  the data (d bytes)
 *
 * Bytes 24..h are the key: fixed-width and length-prefixed, so they are
 * also the unambiguous serialisation that is hashed to name the file.  A
 * block is served only when those bytes equal the ones asked for, the
 * file is exactly h + d long and the checksum holds (a hash collision or
 * a torn write never serves wrong bytes); otherwise it is dropped.
 *
 * The index (a hash table by XXH3-128 and a list in order of use) lives
 * in memory under `lock`, which is never held across I/O.  A second
 * mutex, `fs_lock`, serialises changes to the files under v1/<2 hex>/ -
 * a put's rename, the unlink of an evicted or corrupt block - each with
 * its change to the index, so that outside it the index and the files
 * agree and an unlink can never remove a block that a concurrent put has
 * just renamed into place.  Block data is written outside both locks.
 * Lock order: fs_lock, then lock.
 *
 * No fsync: a block torn by a crash fails its checks and is dropped.  The
 * order of use survives a restart approximately: open orders the blocks
 * by mtime, and a hit refreshes the mtime when the block's was more than
 * a minute old.
 *
 * Checked once per file per process.  A block file is never written once
 * it is in place: a put writes a new file and renames it over the path,
 * eviction unlinks it.  So the bytes of one file (one inode) are those that
 * were checked, for as long as it exists, and each entry remembers the
 * inode it has seen checked in this process (`checked_ino`): the file this
 * process wrote itself from bytes it held (a put), or one whose data a get
 * or a pin read back and hashed.  bcache_get still checks every hit, since
 * it reads the bytes anyway; bcache_pin, whose caller hands the file to the
 * kernel without reading it, checks the data only when the inode it opened
 * is not the one its entry saw checked.  Blocks found on disk at open (a
 * previous process wrote them, maybe torn by a crash) are unchecked until
 * their first use, except the files a clean close recorded as checked
 * (bcchecked.h): it made every block durable first, and a file found
 * with the recorded inode, size and ctime has not been written since.
 * What this gives up: a block's bytes that decay on the
 * disk after their check in this process, and are read from the disk again
 * (the page cache dropped them), reach a pin unhashed; the disk's own
 * checks are what stands there, as for every other file on it.  The key in
 * the header is compared on every pin: an entry names a file by the hash of
 * its key, and only the header proves whose block it is.
 */
#include "cache/blockcache.h"
#include "cache/bcchecked.h"
#include "backends/util/fdio.h"
#include "backends/util/hmap.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#define MAGIC "HYBLK001"
#define HDR_FIXED 38              /* header bytes before the strings */
#define KEY_OFF 24                /* where the key part begins */
#define HDR_MAX (HDR_FIXED + 3 * (size_t)UINT16_MAX)
#define PATH_LEN 40               /* "xx/" + 32 hex, or "tmp/" + 16 hex */
#define TOUCH_AGE_S 60            /* refresh a block's mtime at most so often */
#define STATVFS_PUTS 64           /* ask for the free space every 64 puts */
#define STATVFS_NS NS_PER_SEC     /* or every second */
#define WARN_NS (60 * NS_PER_SEC) /* one warning a minute at most */
#define NBUCKETS_MIN 1024
#define CHECK_BUF ((size_t)64 << 10)   /* bytes hashed per read by a pin */

#define PUT(buf, off, v) memcpy((buf) + (off), &(v), sizeof(v))
#define GET(buf, off, v) memcpy(&(v), (buf) + (off), sizeof(v))

struct entry {
	XXH128_hash_t h;
	uint64_t size;            /* of the file: header and data */
	uint64_t gen;             /* new whenever the file at the path is */
	int64_t used_s;           /* last use written to the mtime (wall s) */
	ino_t checked_ino;        /* the file whose data this process
	                             checked or wrote; 0: none yet */
	bool checking;            /* a pin is checking it (check_cv) */
	struct hmap_node hn;      /* in the index, by h.low64 */
	struct lru_link use;      /* order of use: the oldest first */
	struct entry *victim_next;  /* on a list of evicted blocks */
};

struct ratelimit {
	int64_t at;               /* mono_ns of the last message */
	uint64_t count_at;        /* the event count it reported */
};

struct bcache {
	char *dir;
	char *ns;
	uint16_t ns_len;
	uint64_t max_bytes, min_free;
	int lock_fd;              /* <dir>/lock */
	int v1_fd;                /* <dir>/v1 */
	bool scanned;             /* open went through: close records */
	atomic_uint_fast64_t tmp_seq;

	pthread_mutex_t fs_lock;  /* serialises changes to the block files */

	pthread_mutex_t lock;     /* guards everything below */
	pthread_cond_t check_cv;  /* a pin finished checking a block */
	struct hmap index;        /* the blocks, by their key's hash */
	struct lru_link lru;      /* the blocks in order of use */
	uint64_t gen;
	uint64_t reserved;        /* bytes of puts being written */
	uint64_t free_est;        /* free bytes on the disk, estimated */
	int64_t free_at;          /* mono_ns of the last statvfs */
	unsigned puts_unchecked;  /* puts since then */
	struct ratelimit put_warn, corrupt_warn;
	struct bcache_stats st;
	_Atomic uint64_t *seen;   /* BC_ADMIT_SLOTS key fingerprints */
	atomic_uint_fast64_t first_touches;
};

/* The header of a block: its encoding and the hash of its key. */
struct hdr {
	unsigned char *b;
	uint32_t len;
	XXH128_hash_t h;
};

/* ---- keys, headers and paths ---- */

/* Encode k's header with data length and checksum 0.  -EINVAL for a key
 * that cannot be stored (empty version, strings over 65,535 bytes). */
static int hdr_encode(const struct bcache *c, const struct bcache_key *k,
		      struct hdr *out)
{
	size_t nl = strlen(k->name), vl = strlen(k->version);
	uint16_t n16 = (uint16_t)nl, v16 = (uint16_t)vl;
	uint32_t len;
	unsigned char *b;

	if (!vl || nl > UINT16_MAX || vl > UINT16_MAX)
		return -EINVAL;
	len = (uint32_t)(HDR_FIXED + c->ns_len + nl + vl);
	b = xcalloc(1, len);
	memcpy(b, MAGIC, 8);
	PUT(b, 8, len);
	PUT(b, 24, k->index);
	PUT(b, 32, c->ns_len);
	PUT(b, 34, n16);
	PUT(b, 36, v16);
	memcpy(b + HDR_FIXED, c->ns, c->ns_len);
	memcpy(b + HDR_FIXED + c->ns_len, k->name, nl);
	memcpy(b + HDR_FIXED + c->ns_len + nl, k->version, vl);
	out->b = b;
	out->len = len;
	out->h = XXH3_128bits(b + KEY_OFF, len - KEY_OFF);
	return 0;
}

static unsigned hash_dir(XXH128_hash_t h)
{
	return (unsigned)(h.high64 >> 56);
}

static void block_path(XXH128_hash_t h, char p[PATH_LEN])
{
	snprintf(p, PATH_LEN, "%02x/%016llx%016llx", hash_dir(h),
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static bool parse_hex64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' :
			ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

/* The hash named by a block file's name (32 lower-case hex digits). */
static bool parse_block_name(const char *name, XXH128_hash_t *h)
{
	return strlen(name) == 32 && parse_hex64(name, &h->high64) &&
	       parse_hex64(name + 16, &h->low64);
}

/* ---- the index (lock held) ---- */

static struct entry *find(struct bcache *c, XXH128_hash_t h)
{
	for (struct hmap_node *n = hmap_first(&c->index, h.low64); n;
	     n = hmap_next(n)) {
		struct entry *e = container_of(n, struct entry, hn);
		if (XXH128_isEqual(e->h, h))
			return e;
	}
	return NULL;
}

/* Add e (not indexed yet) as the most recently used block. */
static void index_add(struct bcache *c, struct entry *e)
{
	hmap_add(&c->index, &e->hn, e->h.low64);
	lru_push(&c->lru, &e->use);
	e->gen = ++c->gen;
	c->st.blocks++;
	c->st.bytes += e->size;
}

/* Unindex block e and return it; its file is gone or about to go, so its
 * bytes count as free again. */
static struct entry *index_remove(struct bcache *c, struct entry *e)
{
	hmap_remove(&c->index, &e->hn);
	lru_unlink(&e->use);
	c->st.blocks--;
	c->st.bytes -= e->size;
	c->free_est += e->size;
	return e;
}

/* Evict the least recently used block onto *victims; false when none. */
static bool evict_one(struct bcache *c, struct entry **victims)
{
	struct lru_link *oldest = lru_oldest(&c->lru);

	if (!oldest)
		return false;
	struct entry *e = container_of(oldest, struct entry, use);
	index_remove(c, e);
	c->st.evictions++;
	e->victim_next = *victims;
	*victims = e;
	return true;
}

/* Remove the files of evicted blocks; fs_lock held (or no other user). */
static void unlink_victims(struct bcache *c, struct entry *v)
{
	char p[PATH_LEN];

	while (v) {
		struct entry *next = v->victim_next;
		block_path(v->h, p);
		if (unlinkat(c->v1_fd, p, 0) < 0 && errno != ENOENT)
			log_debug("block cache in %s: unlink v1/%s: %s", c->dir,
				  p, strerror(errno));
		free(v);
		v = next;
	}
}

/* Whether a rate-limited message is due; lock held.  *since gets the
 * events counted since the last one. */
static bool ratelimit_due(struct ratelimit *r, uint64_t count,
			  uint64_t *since)
{
	int64_t now = mono_ns();

	if (r->at && now - r->at < WARN_NS)
		return false;
	r->at = now;
	*since = count - r->count_at;
	r->count_at = count;
	return true;
}

/* ---- put ---- */

/* Ask the disk for its free space when due. */
static void refresh_free(struct bcache *c, bool force)
{
	int64_t now = mono_ns();
	struct statvfs sv;
	bool due;

	pthread_mutex_lock(&c->lock);
	due = force || ++c->puts_unchecked >= STATVFS_PUTS ||
	      now - c->free_at >= STATVFS_NS;
	if (due) {
		c->puts_unchecked = 0;
		c->free_at = now;
	}
	pthread_mutex_unlock(&c->lock);
	if (!due || fstatvfs(c->v1_fd, &sv) < 0)
		return;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	pthread_mutex_lock(&c->lock);
	/* blocks being written have not taken all their space yet */
	c->free_est = avail > c->reserved ? avail - c->reserved : 0;
	pthread_mutex_unlock(&c->lock);
}

static bool room_for(const struct bcache *c, uint64_t need)
{
	return c->st.bytes + c->reserved + need <= c->max_bytes &&
	       c->free_est >= need && c->free_est - need >= c->min_free;
}

/* Evict until need more bytes fit under the ceiling and above the free
 * space floor, then reserve them.  0 or -ENOSPC. */
static int make_room(struct bcache *c, uint64_t need)
{
	struct entry *victims = NULL;
	int rc = 0;

	refresh_free(c, false);
	pthread_mutex_lock(&c->fs_lock);
	pthread_mutex_lock(&c->lock);
	if (need > c->max_bytes)
		rc = -ENOSPC;
	while (rc == 0 && !room_for(c, need))
		if (!evict_one(c, &victims))
			rc = -ENOSPC;
	if (rc == 0) {
		c->reserved += need;
		c->free_est -= need;
	}
	pthread_mutex_unlock(&c->lock);
	unlink_victims(c, victims);
	pthread_mutex_unlock(&c->fs_lock);
	return rc;
}

static void unreserve(struct bcache *c, uint64_t need, int rc)
{
	pthread_mutex_lock(&c->lock);
	c->reserved -= need;
	c->free_est += need;
	if (rc == -ENOSPC)         /* the disk is fuller than we thought */
		c->puts_unchecked = STATVFS_PUTS;
	pthread_mutex_unlock(&c->lock);
}

/* Write header and data to a new file in v1/tmp; its name goes to tmp. */
static int write_tmp(struct bcache *c, const struct hdr *hd, const void *buf,
		     size_t len, char tmp[PATH_LEN], ino_t *ino)
{
	struct stat st;
	int fd, rc;

	do {
		snprintf(tmp, PATH_LEN, "tmp/%016llx", (unsigned long long)
			 atomic_fetch_add(&c->tmp_seq, 1));
		fd = openat(c->v1_fd, tmp, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC, 0600);
	} while (fd < 0 && errno == EEXIST);
	if (fd < 0)
		return -errno;
	rc = pwrite_full(fd, hd->b, hd->len, 0);
	if (rc == 0)
		rc = pwrite_full(fd, buf, len, hd->len);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	*ino = rc == 0 ? st.st_ino : 0;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc)
		unlinkat(c->v1_fd, tmp, 0);
	return rc;
}

/* Rename the written block into place and index it, replacing any block
 * of the same key; the reservation becomes the block's bytes. */
static int install(struct bcache *c, XXH128_hash_t h, const char *tmp,
		   uint64_t size, ino_t ino)
{
	struct entry *e = xcalloc(1, sizeof(*e)), *old;
	char p[PATH_LEN];
	int rc = 0;

	e->h = h;
	e->size = size;
	e->checked_ino = ino;     /* its bytes are the ones just hashed */
	e->used_s = wall_ns() / NS_PER_SEC;
	block_path(h, p);
	pthread_mutex_lock(&c->fs_lock);
	if (renameat(c->v1_fd, tmp, c->v1_fd, p) < 0) {
		rc = -errno;
		pthread_mutex_unlock(&c->fs_lock);
		unlinkat(c->v1_fd, tmp, 0);
		free(e);
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	old = find(c, h);
	if (old)
		index_remove(c, old);
	c->reserved -= size;
	index_add(c, e);
	c->st.puts++;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->fs_lock);
	free(old);
	return 0;
}

static void put_failed(struct bcache *c, int rc)
{
	uint64_t since = 0;
	bool warn;

	pthread_mutex_lock(&c->lock);
	c->st.put_failures++;
	warn = ratelimit_due(&c->put_warn, c->st.put_failures, &since);
	pthread_mutex_unlock(&c->lock);
	if (warn)
		log_warn("block cache in %s: a block was not kept (%s); %llu "
			 "failed puts since the last warning", c->dir,
			 strerror(-rc), (unsigned long long)since);
}

int bcache_put(struct bcache *c, const struct bcache_key *k, const void *buf,
	       size_t len)
{
	char tmp[PATH_LEN];
	struct hdr hd;
	ino_t ino = 0;
	uint32_t dlen = (uint32_t)len;
	uint64_t sum, size;
	int rc;

	if (len == 0 || len > BC_BLOCK_SIZE)
		return -EINVAL;
	rc = hdr_encode(c, k, &hd);
	if (rc)
		return rc;
	sum = XXH3_64bits(buf, len);
	PUT(hd.b, 12, dlen);
	PUT(hd.b, 16, sum);
	size = hd.len + (uint64_t)len;

	rc = make_room(c, size);
	if (rc == 0) {
		rc = write_tmp(c, &hd, buf, len, tmp, &ino);
		if (rc == 0)
			rc = install(c, hd.h, tmp, size, ino);
		if (rc)
			unreserve(c, size, rc);
	}
	if (rc)
		put_failed(c, rc);
	free(hd.b);
	return rc;
}

/* bcache_admit, and bcache_would_admit when offer is false. */
static bool admit(struct bcache *c, const struct bcache_key *k, bool offer)
{
	struct hdr hd;

	if (hdr_encode(c, k, &hd))
		return false;
	free(hd.b);
	uint64_t fp = hd.h.low64 | 1;        /* 0: an empty slot */
	_Atomic uint64_t *slot = &c->seen[hd.h.high64 % BC_ADMIT_SLOTS];
	if ((offer ? atomic_exchange_explicit(slot, fp, memory_order_relaxed)
		   : atomic_load_explicit(slot, memory_order_relaxed)) == fp)
		return true;
	pthread_mutex_lock(&c->lock);
	bool held = find(c, hd.h) != NULL;
	pthread_mutex_unlock(&c->lock);
	if (!held && offer)
		atomic_fetch_add(&c->first_touches, 1);
	return held;
}

bool bcache_admit(struct bcache *c, const struct bcache_key *k)
{
	return admit(c, k, true);
}

bool bcache_would_admit(struct bcache *c, const struct bcache_key *k)
{
	return admit(c, k, false);
}

/* ---- get ---- */

/* Find h, make it the most recently used block, and say whether its
 * mtime is due for a refresh.  Counts a miss when it is not there. */
static bool lookup_use(struct bcache *c, XXH128_hash_t h, uint64_t *gen,
		       bool *touch)
{
	int64_t now = wall_ns() / NS_PER_SEC;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, h);
	if (e) {
		lru_touch(&c->lru, &e->use);
		*gen = e->gen;
		*touch = now - e->used_s > TOUCH_AGE_S;
		if (*touch)
			e->used_s = now;
	} else {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return e != NULL;
}

/* Count a miss and drop block h if it is still the file that was read
 * (generation gen); why != NULL: it was corrupt. */
static void drop(struct bcache *c, XXH128_hash_t h, uint64_t gen,
		 const char *why)
{
	struct entry *e;
	char p[PATH_LEN];
	uint64_t since = 0;
	bool warn = false;

	block_path(h, p);
	pthread_mutex_lock(&c->fs_lock);
	pthread_mutex_lock(&c->lock);
	e = find(c, h);
	if (e && e->gen == gen)
		index_remove(c, e);
	else
		e = NULL;
	c->st.misses++;
	if (why) {
		c->st.corrupt++;
		warn = ratelimit_due(&c->corrupt_warn, c->st.corrupt, &since);
	}
	pthread_mutex_unlock(&c->lock);
	if (e && unlinkat(c->v1_fd, p, 0) < 0 && errno != ENOENT)
		log_debug("block cache in %s: unlink v1/%s: %s", c->dir, p,
			  strerror(errno));
	pthread_mutex_unlock(&c->fs_lock);
	free(e);
	if (warn)
		log_notice("block cache in %s: dropped block v1/%s (%s); %llu "
			   "corrupt since the last notice", c->dir, p, why,
			   (unsigned long long)since);
}

/* Check the header read back (n bytes) against the one wanted.  NULL, or
 * what is wrong with it; *dlen gets the data length it promises. */
static const char *check_header(const struct hdr *want,
				const unsigned char *got, ssize_t n,
				uint32_t *dlen)
{
	uint32_t hlen, d;

	if (n < (ssize_t)want->len)
		return "short header";
	if (memcmp(got, MAGIC, 8) != 0)
		return "bad magic";
	GET(got, 8, hlen);
	GET(got, 12, d);
	if (hlen != want->len || memcmp(got + KEY_OFF, want->b + KEY_OFF,
					want->len - KEY_OFF) != 0)
		return "another key";
	if (d == 0 || d > BC_BLOCK_SIZE)
		return "bad length";
	*dlen = d;
	return NULL;
}

/* Read and check the header of block want from fd; *dlen and *sum get
 * the data length and checksum it promises.  NULL, or what is wrong. */
static const char *read_header(int fd, const struct hdr *want, uint32_t *dlen,
			       uint64_t *sum)
{
	unsigned char *got = xmalloc(want->len);
	const char *why;
	ssize_t n = pread(fd, got, want->len, 0);

	why = n < 0 ? strerror(errno) : check_header(want, got, n, dlen);
	if (!why)
		GET(got, 16, *sum);
	free(got);
	return why;
}

/* Read and check block want from fd: the header, then exactly the data
 * it promises into buf (a byte more would mean the file is too long).
 * NULL, or what is wrong with it. */
static const char *read_block(int fd, const struct hdr *want, void *buf,
			      uint32_t *dlen)
{
	unsigned char extra;
	uint64_t sum = 0;
	ssize_t n;
	const char *why = read_header(fd, want, dlen, &sum);

	if (why)
		return why;
	struct iovec iov[2] = { { buf, *dlen }, { &extra, 1 } };
	n = preadv(fd, iov, 2, want->len);
	if (n < 0)
		return strerror(errno);
	if (n != (ssize_t)*dlen)
		return "bad length";
	if (XXH3_64bits(buf, *dlen) != sum)
		return "bad checksum";
	return NULL;
}

/* The first steps of a get: -ENOENT when h is not indexed (a miss),
 * else its file open in *fd.  Frees want->b on failure. */
static int open_block(struct bcache *c, struct hdr *want, uint64_t *gen,
		      bool *touch, int *fd)
{
	char p[PATH_LEN];

	if (!lookup_use(c, want->h, gen, touch)) {
		free(want->b);
		return -ENOENT;
	}
	block_path(want->h, p);
	*fd = openat(c->v1_fd, p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		if (e == EMFILE || e == ENFILE || e == ENOMEM)
			drop(c, want->h, 0, NULL);      /* gen 0: keep it */
		else
			drop(c, want->h, *gen, e == ENOENT ? NULL : strerror(e));
		free(want->b);
		return -ENOENT;
	}
	return 0;
}

/*
 * Whether the caller is to check file ino of block h (generation gen):
 * false when this process has checked it already.  While another pin
 * checks the same block this waits for it, so that the concurrent first
 * reads of a block (the kernel's read-ahead sends several) hash it once.
 * *claimed: the caller checks it for everyone, and calls end_check.
 */
static bool begin_check(struct bcache *c, XXH128_hash_t h, uint64_t gen,
			ino_t ino, bool *claimed)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = find(c, h);
		if (e && e->checked_ino == ino) {
			pthread_mutex_unlock(&c->lock);
			*claimed = false;
			return false;
		}
		if (!e || e->gen != gen || !e->checking)
			break;
		pthread_cond_wait(&c->check_cv, &c->lock);
	}
	*claimed = e && e->gen == gen;
	if (*claimed)
		e->checking = true;
	pthread_mutex_unlock(&c->lock);
	return true;
}

static void end_check(struct bcache *c, XXH128_hash_t h, uint64_t gen,
		      ino_t ino, bool claimed, bool ok)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, h);
	if (e && e->gen == gen) {
		if (claimed)
			e->checking = false;
		if (ok)
			e->checked_ino = ino;
	}
	if (claimed)
		pthread_cond_broadcast(&c->check_cv);
	pthread_mutex_unlock(&c->lock);
}

/* Remember that file ino, block h as of generation gen, was checked. */
static void mark_checked(struct bcache *c, XXH128_hash_t h, uint64_t gen,
			 ino_t ino)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, h);
	if (e && e->gen == gen)
		e->checked_ino = ino;
	pthread_mutex_unlock(&c->lock);
}

/* Hash the dlen data bytes of fd from pos against sum, through a small
 * buffer.  NULL, or what is wrong. */
static const char *check_data(int fd, uint64_t pos, uint32_t dlen,
			      uint64_t sum)
{
	unsigned char buf[CHECK_BUF];
	XXH3_state_t st;
	uint32_t done = 0;

	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	while (done < dlen) {
		size_t want = dlen - done < CHECK_BUF ? dlen - done : CHECK_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)(pos + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return strerror(errno);
		if (n == 0)
			return "bad length";
		XXH3_64bits_update(&st, buf, (size_t)n);
		done += (uint32_t)n;
	}
	return XXH3_64bits_digest(&st) == sum ? NULL : "bad checksum";
}

ssize_t bcache_get(struct bcache *c, const struct bcache_key *k, void *buf,
		   size_t buflen)
{
	struct hdr want;
	const char *why;
	uint64_t gen;
	uint32_t dlen = 0;
	struct stat st;
	bool touch;
	int fd;

	if (buflen < BC_BLOCK_SIZE || hdr_encode(c, k, &want))
		return -EINVAL;
	if (open_block(c, &want, &gen, &touch, &fd))
		return -ENOENT;
	why = read_block(fd, &want, buf, &dlen);
	if (!why && fstat(fd, &st) == 0)
		mark_checked(c, want.h, gen, st.st_ino);
	if (!why && touch)
		futimens(fd, NULL);
	close(fd);
	if (why) {
		drop(c, want.h, gen, why);
		free(want.b);
		return -ENOENT;
	}
	pthread_mutex_lock(&c->lock);
	c->st.hits++;
	pthread_mutex_unlock(&c->lock);
	free(want.b);
	return dlen;
}

int bcache_pin(struct bcache *c, const struct bcache_key *k,
	       struct bcache_pin *pin)
{
	struct hdr want;
	const char *why;
	uint64_t gen, sum = 0;
	uint32_t dlen = 0;
	struct stat st;
	bool touch, claimed;
	int fd, rc;

	pin->fd = -1;
	if (hdr_encode(c, k, &want))
		return -EINVAL;
	rc = open_block(c, &want, &gen, &touch, &fd);
	if (rc)
		return rc;
	why = read_header(fd, &want, &dlen, &sum);
	if (!why && fstat(fd, &st) < 0)
		why = strerror(errno);
	if (!why && (uint64_t)st.st_size != want.len + (uint64_t)dlen)
		why = "bad length";
	if (!why && begin_check(c, want.h, gen, st.st_ino, &claimed)) {
		why = check_data(fd, want.len, dlen, sum);
		end_check(c, want.h, gen, st.st_ino, claimed, !why);
	}
	if (why) {
		close(fd);
		drop(c, want.h, gen, why);
		free(want.b);
		return -ENOENT;
	}
	if (touch)
		futimens(fd, NULL);
	pthread_mutex_lock(&c->lock);
	c->st.hits++;
	pthread_mutex_unlock(&c->lock);
	pin->fd = fd;
	pin->pos = want.len;
	pin->len = dlen;
	free(want.b);
	return 0;
}

void bcache_unpin(struct bcache_pin *pin)
{
	if (pin->fd >= 0)
		close(pin->fd);
	pin->fd = -1;
}

void bcache_prefetch(struct bcache *c, const struct bcache_key *k)
{
	struct hdr hd;
	char p[PATH_LEN];
	int fd;

	if (hdr_encode(c, k, &hd))
		return;
	block_path(hd.h, p);
	free(hd.b);
	fd = openat(c->v1_fd, p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

bool bcache_has(struct bcache *c, const struct bcache_key *k)
{
	struct hdr hd;
	bool found;

	if (hdr_encode(c, k, &hd))
		return false;
	pthread_mutex_lock(&c->lock);
	found = find(c, hd.h) != NULL;
	pthread_mutex_unlock(&c->lock);
	free(hd.b);
	return found;
}

void bcache_get_stats(struct bcache *c, struct bcache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
	out->first_touches = atomic_load(&c->first_touches);
}

/* ---- open ---- */

static int open_err(const struct bcache *c, char *err, size_t errlen,
		    const char *what, int rc)
{
	snprintf(err, errlen, "cache_dir %s%s%s: %s", c->dir, what ? ": " : "",
		 what ? what : "", strerror(-rc));
	return rc;
}

/* The folder holds blocks that are served as the store's bytes, so it
 * must be this user's alone: another user, or anyone in the group, who
 * can write there could plant blocks (their checksums are not a secret).
 * The same rule as credentials files (util/secretfile.c). */
static int check_owner(const struct bcache *c, int root_fd, char *err,
		       size_t errlen)
{
	struct stat st;

	if (fstat(root_fd, &st) < 0)
		return open_err(c, err, errlen, NULL, -errno);
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "cache_dir %s is owned by uid %u, not by "
			 "this user (uid %u); refusing to use it", c->dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "cache_dir %s is writable by group/other "
			 "(mode %04o); refusing to use it: run chmod 700 %s",
			 c->dir, (unsigned)(st.st_mode & 07777), c->dir);
		return -EPERM;
	}
	return 0;
}

static int take_lock(struct bcache *c, int root_fd, char *err, size_t errlen)
{
	char pid[24];
	int fd, rc;
	ssize_t n;

	fd = openat(root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return open_err(c, err, errlen, "lock", -errno);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc != -EWOULDBLOCK) {
			close(fd);
			return open_err(c, err, errlen, "lock", rc);
		}
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen, "cache_dir %s: in use by another process "
			 "(pid %s)", c->dir, *pid ? pid : "unknown");
		close(fd);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		pwrite_full(fd, pid, (size_t)n, 0);
	c->lock_fd = fd;
	return 0;
}

static void format_text(char *buf, size_t len)
{
	snprintf(buf, len, "hylake block cache 1 block_size=%zu\n",
		 BC_BLOCK_SIZE);
}

/* Whether v1/FORMAT says text. */
static bool format_matches(int root_fd, const char *text)
{
	char have[128];
	ssize_t n = -1;
	int fd = openat(root_fd, "v1/FORMAT", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = pread(fd, have, sizeof(have) - 1, 0);
		close(fd);
	}
	if (n < 0)
		return false;
	have[n] = '\0';
	return strcmp(have, text) == 0;
}

/* Remove <dir>/v1 and all below it.  0 or -errno. */
static int wipe_v1(const struct bcache *c)
{
	struct strbuf p = STRBUF_INIT;
	int rc;

	strbuf_addf(&p, "%s/v1", c->dir);
	rc = remove_tree(p.buf);
	strbuf_release(&p);
	return rc;
}

static int write_format(struct bcache *c, const char *text)
{
	int fd = openat(c->v1_fd, "tmp/FORMAT", O_WRONLY | O_CREAT | O_TRUNC |
			O_CLOEXEC, 0600);
	int rc;

	if (fd < 0)
		return -errno;
	rc = pwrite_full(fd, text, strlen(text), 0);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(c->v1_fd, "tmp/FORMAT", c->v1_fd, "FORMAT") < 0)
		rc = -errno;
	return rc;
}

/* Empty v1/tmp of what a previous run left. */
static void clear_tmp(struct bcache *c)
{
	int fd = openat(c->v1_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
}

/* Check the format (wiping v1 when it is another), create v1, its tmp
 * and its 256 subfolders, and open it. */
static int open_v1(struct bcache *c, int root_fd, char *err, size_t errlen)
{
	char text[64], sub[3];
	bool same;
	int rc;

	format_text(text, sizeof(text));
	same = format_matches(root_fd, text);
	if (!same) {
		if (faccessat(root_fd, "v1/FORMAT", F_OK, AT_SYMLINK_NOFOLLOW)
		    == 0)
			log_notice("block cache in %s: another format, "
				   "starting empty", c->dir);
		rc = wipe_v1(c);
		if (rc)
			return open_err(c, err, errlen, "clearing v1", rc);
	}
	if (mkdirat(root_fd, "v1", 0700) < 0 && errno != EEXIST)
		return open_err(c, err, errlen, "v1", -errno);
	c->v1_fd = openat(root_fd, "v1", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			  O_CLOEXEC);
	if (c->v1_fd < 0)
		return open_err(c, err, errlen, "v1", -errno);
	if (mkdirat(c->v1_fd, "tmp", 0700) < 0 && errno != EEXIST)
		return open_err(c, err, errlen, "v1/tmp", -errno);
	for (unsigned i = 0; i < 256; i++) {
		snprintf(sub, sizeof(sub), "%02x", i);
		if (mkdirat(c->v1_fd, sub, 0700) < 0 && errno != EEXIST)
			return open_err(c, err, errlen, "v1", -errno);
	}
	clear_tmp(c);
	if (!same && (rc = write_format(c, text)) < 0)
		return open_err(c, err, errlen, "v1/FORMAT", rc);
	return 0;
}

struct found {
	XXH128_hash_t h;
	uint64_t size;
	struct timespec mtime;
	ino_t ino;
	struct timespec ctime;
};

struct found_list {
	struct found *f;
	size_t n, alloc;
};

/* Collect the blocks of subfolder i; remove files that are no blocks. */
static void scan_dir(struct bcache *c, unsigned i, struct found_list *l)
{
	char sub[3];
	int fd;
	DIR *d;
	struct dirent *de;
	struct stat st;
	XXH128_hash_t h;

	snprintf(sub, sizeof(sub), "%02x", i);
	fd = openat(c->v1_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode))
			continue;
		if (!S_ISREG(st.st_mode) || !parse_block_name(de->d_name, &h) ||
		    hash_dir(h) != i || st.st_size <= HDR_FIXED ||
		    (uint64_t)st.st_size > HDR_MAX + BC_BLOCK_SIZE) {
			unlinkat(fd, de->d_name, 0);
			continue;
		}
		if (l->n == l->alloc) {
			l->alloc = l->alloc ? l->alloc * 2 : 1024;
			l->f = xrealloc(l->f, l->alloc * sizeof(*l->f));
		}
		l->f[l->n].h = h;
		l->f[l->n].size = (uint64_t)st.st_size;
		l->f[l->n].mtime = st.st_mtim;
		l->f[l->n].ino = st.st_ino;
		l->f[l->n].ctime = st.st_ctim;
		l->n++;
	}
	closedir(d);
}

static int cmp_mtime(const void *a, const void *b)
{
	const struct timespec *x = &((const struct found *)a)->mtime;
	const struct timespec *y = &((const struct found *)b)->mtime;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Whether found block f is the file that rec says was checked. */
static bool was_checked(const struct bcchecked *rec, const struct found *f)
{
	const struct bcchecked_rec *r = bcchecked_find(rec, f->h.high64,
						       f->h.low64);
	return r && r->ino == (uint64_t)f->ino && r->size == f->size &&
	       r->ctime_s == (int64_t)f->ctime.tv_sec &&
	       r->ctime_ns == (int64_t)f->ctime.tv_nsec;
}

/* Index the blocks on disk, least recently used (oldest mtime) first,
 * then evict down to the ceiling.  rec: the files checked before. */
static void scan(struct bcache *c, const struct bcchecked *rec)
{
	struct found_list l = { NULL, 0, 0 };
	struct entry *victims = NULL;

	for (unsigned i = 0; i < 256; i++)
		scan_dir(c, i, &l);
	if (l.n)
		qsort(l.f, l.n, sizeof(*l.f), cmp_mtime);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < l.n; i++) {
		struct entry *e = xcalloc(1, sizeof(*e));
		e->h = l.f[i].h;
		e->size = l.f[i].size;
		e->used_s = l.f[i].mtime.tv_sec;
		if (was_checked(rec, &l.f[i]))
			e->checked_ino = l.f[i].ino;
		index_add(c, e);
	}
	while (c->st.bytes > c->max_bytes)
		evict_one(c, &victims);
	pthread_mutex_unlock(&c->lock);
	unlink_victims(c, victims);
	free(l.f);
}

int bcache_open(const struct bcache_conf *conf, struct bcache **out,
		char *err, size_t errlen)
{
	struct bcache *c;
	int root_fd, rc;

	if (!conf->dir || !*conf->dir || !conf->ns ||
	    strlen(conf->ns) > UINT16_MAX) {
		snprintf(err, errlen, "cache_dir %s: no folder or namespace "
			 "too long", conf->dir ? conf->dir : "(none)");
		return -EINVAL;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(conf->dir);
	c->ns = xstrdup(conf->ns);
	c->seen = xcalloc(BC_ADMIT_SLOTS, sizeof(*c->seen));
	c->ns_len = (uint16_t)strlen(conf->ns);
	c->max_bytes = conf->max_bytes;
	c->min_free = conf->min_free_bytes;
	c->lock_fd = c->v1_fd = -1;
	hmap_init(&c->index, NBUCKETS_MIN);
	lru_init(&c->lru);
	pthread_mutex_init(&c->fs_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->check_cv, NULL);

	rc = mkdir_p(c->dir);
	if (rc) {
		open_err(c, err, errlen, NULL, rc);
		goto out_close;
	}
	root_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		rc = open_err(c, err, errlen, NULL, -errno);
		goto out_close;
	}
	rc = check_owner(c, root_fd, err, errlen);
	if (rc == 0)
		rc = take_lock(c, root_fd, err, errlen);
	if (rc == 0)
		rc = open_v1(c, root_fd, err, errlen);
	close(root_fd);
	if (rc)
		goto out_close;
	struct bcchecked rec = BCCHECKED_INIT;
	rc = bcchecked_take(c->v1_fd, &rec);
	if (rc)                   /* every block is checked at first use */
		log_notice("block cache in %s: v1/CHECKED: %s", c->dir,
			   strerror(-rc));
	scan(c, &rec);
	bcchecked_release(&rec);
	c->scanned = true;
	refresh_free(c, true);
	log_info("block cache in %s: %llu blocks, %.1f of %.1f MiB", c->dir,
		 (unsigned long long)c->st.blocks, (double)c->st.bytes / (1 << 20),
		 (double)c->max_bytes / (1 << 20));
	*out = c;
	return 0;

out_close:
	bcache_close(c);
	return rc;
}

/*
 * A clean close: make every block file durable, then record the ones this
 * process checked (or wrote), so the next open need not hash them again.
 * No record when the sync fails: the next process checks everything.
 */
static void save_checked(struct bcache *c)
{
	struct bcchecked s = BCCHECKED_INIT;
	char p[PATH_LEN];
	struct stat st;
	int rc = 0;

	if (syncfs(c->v1_fd) < 0)
		rc = -errno;
	pthread_mutex_lock(&c->lock);
	for (struct lru_link *l = c->lru.next; rc == 0 && l != &c->lru;
	     l = l->next) {
		struct entry *e = container_of(l, struct entry, use);
		if (!e->checked_ino)
			continue;
		block_path(e->h, p);
		if (fstatat(c->v1_fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_ino != e->checked_ino)
			continue;
		struct bcchecked_rec r = {
			e->h.high64, e->h.low64, (uint64_t)st.st_ino,
			(uint64_t)st.st_size, (int64_t)st.st_ctim.tv_sec,
			(int64_t)st.st_ctim.tv_nsec };
		bcchecked_add(&s, &r);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		rc = bcchecked_save(c->v1_fd, &s);
	if (rc)
		log_notice("block cache in %s: no record of checked blocks (%s); "
			   "the next open checks them again", c->dir,
			   strerror(-rc));
	bcchecked_release(&s);
}

void bcache_close(struct bcache *c)
{
	if (!c)
		return;
	if (c->scanned)
		save_checked(c);
	for (struct lru_link *l; (l = lru_oldest(&c->lru));) {
		lru_unlink(l);
		free(container_of(l, struct entry, use));
	}
	hmap_release(&c->index);
	if (c->v1_fd >= 0)
		close(c->v1_fd);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	pthread_mutex_destroy(&c->fs_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->check_cv);
	free(c->dir);
	free(c->ns);
	free((void *)c->seen);
	free(c);
}
