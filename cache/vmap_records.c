/*
 * vmap_records.c - encoding and decoding the version map's records
 * (vmap_records.h); LMDB, keys and batching stay in vmap.c and
 * vmap_writer.c.
 *
 * Name record, format 3: every fact about one name.  Integers are LEB128
 * varints ("v"), zz() is zigzag (small differences either way stay
 * short), fixed-width fields are in native byte order; times are in
 * nanoseconds, exact (code that orders facts by time relies on it):
 *
 *    0  u8   format (3)        1  u8   flags: 1 source, 2 tombstone,
 *                                       4 crc32c, 8 md5 (0x10: sums)
 *    2  u32  used (minutes since the epoch)
 *    6  u64  check (SipHash-1-3 of the name)
 *   14  when flag 1, the source fact:
 *         v generation, v metageneration, v size,
 *         v zz(ctime_ns - generation * 1000)   GCS generations are the
 *                                              creation time in us
 *         v zz(confirmed_ns)
 *         u32 crc32c (flag 4), u8[16] md5 (flag 8)
 *       u8 r, the replica facts that follow (at most 16), each:
 *         u8 replica id (the map's own number for the replica, vmap.c),
 *         u8 state | etag form << 4,
 *         v zz(S.generation - generation), v zz(S.size - size),
 *         v zz(checked_ns - S.confirmed_ns)
 *         etag: form 0, u8 length e + e bytes of text; form 1 (32
 *         lowercase hex digits, an MD5) 16 bytes; form 2 (the same in
 *         double quotes) 16 bytes
 *       where S is the source fact, or all zero when there is none.
 *
 * A record ends exactly after its last replica fact: bytes left over,
 * a field cut short, an unknown flag, state or etag form, a replica
 * counted twice or another format reads as absent.
 *
 * Sums record, format 3 (the block sums proven for a replica's copy):
 *
 *    0  u8   format (3)        1  u8   flags (0x10)
 *    2  u32  used              6  u64  check
 *   14  the encoded block manifest
 *
 * Why a record never answers for another name.  The key is XXH3-128 of
 * the name, seeded, and the check SipHash-1-3 of the name under a 128-bit
 * key; both come from the map's secret (random when the map is made,
 * kept in it, never shown).  A lookup of name A reads the one record
 * under A's key and takes it only when its check is A's.  Another name
 * B's record is taken only if B has A's key and A's check.  SipHash is a
 * keyed pseudo-random function; SipHash-1-3 (one round per word, three
 * to finish) is the variant Rust's standard hash maps and CPython use
 * against chosen-key floods, with no known attack, though with a smaller
 * margin than SipHash-2-4.  Taking it as a PRF: for names chosen without
 * knowing the key - the bucket's names are written far from this node,
 * which keeps the key to itself - two distinct names share a check with
 * chance 2^-64, whatever the key hash does, so even if someone could
 * make XXH3 keys collide at will each lookup would be fooled with chance
 * at most 2^-64 (10^6 lookups a second for a century: 2^51.5 lookups).
 * By chance alone keys collide among n names with chance n^2 / 2^129
 * (1.5e-25 at 10^7 names), and then the check must too.  Were the check
 * ever fooled, the facts served would be another name's, and those are
 * hints: every read re-verifies the version it receives (facts.h).  On
 * a key collision the lookup finds the other name's record, sees another
 * check, and answers "not known"; a fact put for one of the two replaces
 * the other's record, which the map, a cache, simply forgets.
 */
#include "cache/vmap_records.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define FORMAT 3
#define HDR 14
#define F_SOURCE 1
#define F_TOMB 2
#define F_CRC 4
#define F_MD5 8
#define F_SUMS 0x10
#define ETAG_TEXT 0
#define ETAG_HEX 1
#define ETAG_QHEX 2
#define VARINT_MAX 10

/* ---- hashes ---- */

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
} while (0)

/* SipHash-1-3 (Aumasson and Bernstein; the rounds as Rust and CPython
 * use them), 64-bit output, little-endian words as the reference code
 * reads them. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const unsigned char *p,
			  size_t len)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		memcpy(&m, p + i, 8);
		m = le64toh(m);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t k = 0; i + k < len; k++)
		b |= (uint64_t)p[i + k] << (8 * k);
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < 3; r++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

void vmap_records_name_hash(const struct vmap_secret *s, const char *name,
			    unsigned char key[16], uint64_t *check)
{
	size_t n = strlen(name);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(name, n, s->seed));
	memcpy(key, c.digest, 16);
	*check = siphash13(s->k0, s->k1, (const unsigned char *)name, n);
}

/* ---- writing ---- */

struct wbuf {
	unsigned char *b;
	size_t n;
};

static void put_bytes(struct wbuf *w, const void *p, size_t len)
{
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

static void put_u8(struct wbuf *w, unsigned v)
{
	w->b[w->n++] = (unsigned char)v;
}

static void put_v(struct wbuf *w, uint64_t v)
{
	while (v >= 0x80) {
		w->b[w->n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	w->b[w->n++] = (unsigned char)v;
}

static uint64_t zz(uint64_t d)   /* d is a two's complement difference */
{
	return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63);
}

static uint64_t unzz(uint64_t z)
{
	return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;                /* upper case would not come back as it was */
}

/* The form an etag is kept in: ETAG_HEX or ETAG_QHEX when its text is
 * (quoted) 32 lowercase hex digits, else ETAG_TEXT. */
static int etag_form(const char *etag, size_t len, const char **hex)
{
	int form = ETAG_HEX;

	if (len == 34 && etag[0] == '"' && etag[33] == '"') {
		etag++;
		len = 32;
		form = ETAG_QHEX;
	}
	if (len != 32)
		return ETAG_TEXT;
	for (size_t i = 0; i < 32; i++)
		if (hexval(etag[i]) < 0)
			return ETAG_TEXT;
	*hex = etag;
	return form;
}

static void put_replica(struct wbuf *w, uint8_t rid,
			const struct replica_fact *f,
			const struct source_fact *s)
{
	size_t e = strnlen(f->etag, HY_ETAG_MAX - 1);
	const char *hex = NULL;
	int form = etag_form(f->etag, e, &hex);

	put_u8(w, rid);
	put_u8(w, (unsigned)f->state | (unsigned)form << 4);
	put_v(w, zz(s->generation - f->generation));
	put_v(w, zz(s->size - f->size));
	put_v(w, zz((uint64_t)f->checked_ns - (uint64_t)s->confirmed_ns));
	if (form == ETAG_TEXT) {
		put_u8(w, (unsigned)e);
		put_bytes(w, f->etag, e);
		return;
	}
	for (size_t i = 0; i < 16; i++)
		put_u8(w, (unsigned)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1])));
}

static void put_header(struct wbuf *w, unsigned flags, uint32_t used,
		       uint64_t check)
{
	put_u8(w, FORMAT);
	put_u8(w, flags);
	put_bytes(w, &used, 4);
	put_bytes(w, &check, 8);
}

void *vmap_records_encode(const struct vmap_entry *e, uint64_t check,
			  uint32_t used, size_t *len)
{
	static const struct source_fact none;
	const struct source_fact *s = e->has_source ? &e->source : &none;
	unsigned nrep = e->nrep < VMAP_RECORDS_REPLICAS_MAX ? e->nrep :
			VMAP_RECORDS_REPLICAS_MAX;
	/* the longest: every varint at its longest, every etag text */
	struct wbuf w = { xmalloc(HDR + 5 * VARINT_MAX + 4 + 16 + 1 +
				  nrep * (1 + 1 + 3 * VARINT_MAX + 1 +
					  HY_ETAG_MAX)), 0 };
	unsigned flags = 0;

	if (e->has_source)
		flags = F_SOURCE | (s->tombstone ? F_TOMB : 0) |
			(s->has_crc32c ? F_CRC : 0) | (s->has_md5 ? F_MD5 : 0);
	put_header(&w, flags, used, check);
	if (e->has_source) {
		put_v(&w, s->generation);
		put_v(&w, s->metageneration);
		put_v(&w, s->size);
		put_v(&w, zz((uint64_t)s->ctime_ns - s->generation * 1000));
		put_v(&w, zz((uint64_t)s->confirmed_ns));
		if (s->has_crc32c)
			put_bytes(&w, &s->crc32c, 4);
		if (s->has_md5)
			put_bytes(&w, s->md5, 16);
	}
	put_u8(&w, nrep);
	for (unsigned i = 0; i < nrep; i++)
		put_replica(&w, e->rid[i], &e->rep[i], s);
	*len = w.n;
	return w.b;
}

int vmap_records_entry_set_replica(struct vmap_entry *e, uint8_t rid,
				   const struct replica_fact *f)
{
	unsigned i;

	for (i = 0; i < e->nrep && e->rid[i] != rid; i++)
		;
	if (i == VMAP_RECORDS_REPLICAS_MAX)
		return -ENOSPC;
	if (i == e->nrep)
		e->nrep++;
	e->rid[i] = rid;
	e->rep[i] = *f;
	return 0;
}

/* ---- reading ---- */

struct rbuf {
	const unsigned char *p;
	size_t left;
	bool bad;                 /* a field was cut short or malformed */
};

static const unsigned char *take(struct rbuf *r, size_t len)
{
	const unsigned char *p = r->p;
	if (r->bad || r->left < len) {
		r->bad = true;
		return NULL;
	}
	r->p += len;
	r->left -= len;
	return p;
}

static unsigned get_u8(struct rbuf *r)
{
	const unsigned char *p = take(r, 1);
	return p ? *p : 0;
}

static void get_bytes(struct rbuf *r, void *out, size_t len)
{
	const unsigned char *p = take(r, len);
	if (p)
		memcpy(out, p, len);
	else
		memset(out, 0, len);
}

static uint64_t get_v(struct rbuf *r)
{
	size_t max = r->left < VARINT_MAX ? r->left : VARINT_MAX;
	uint64_t v = 0;

	if (r->bad)
		return 0;
	for (size_t i = 0; i < max; i++) {
		unsigned c = r->p[i];
		if (i == VARINT_MAX - 1 && c > 1)
			break;                  /* more than 64 bits */
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			r->p += i + 1;
			r->left -= i + 1;
			return v;
		}
	}
	r->bad = true;                          /* cut short, or too long */
	return 0;
}

/* Read one replica fact; into f when f, and only when `only` is its id
 * or -1.  s_t: the source's confirmed time, as kept. */
static uint8_t get_replica(struct rbuf *r, const struct source_fact *s,
			   int64_t s_t, struct replica_fact *f, int only)
{
	static const char digits[] = "0123456789abcdef";
	struct replica_fact dummy;
	uint8_t rid;
	unsigned sf, form, state;

	rid = (uint8_t)get_u8(r);
	if (only >= 0 && rid != only)
		f = NULL;
	sf = get_u8(r);
	state = sf & 0xf;
	form = sf >> 4;
	if (state > REPLICA_BAD || form > ETAG_QHEX)
		r->bad = true;
	if (!f)
		f = &dummy;
	f->state = (enum replica_state)state;
	f->generation = s->generation - unzz(get_v(r));
	f->size = s->size - unzz(get_v(r));
	f->checked_ns = (int64_t)((uint64_t)s_t + unzz(get_v(r)));
	if (form == ETAG_TEXT) {
		size_t e = get_u8(r);
		const unsigned char *p = e < HY_ETAG_MAX ? take(r, e) : NULL;
		if (!p) {
			r->bad = true;
			return rid;
		}
		if (f != &dummy) {
			memcpy(f->etag, p, e);
			f->etag[e] = '\0';
		}
		return rid;
	}
	const unsigned char *p = take(r, 16);
	if (!p || f == &dummy)
		return rid;
	char *o = f->etag;
	if (form == ETAG_QHEX)
		*o++ = '"';
	for (int i = 0; i < 16; i++) {
		*o++ = digits[p[i] >> 4];
		*o++ = digits[p[i] & 0xf];
	}
	if (form == ETAG_QHEX)
		*o++ = '"';
	*o = '\0';
	return rid;
}

/* The header: 0 with its flags when it is a record of this format for
 * check, else -ENOENT. */
static int get_header(struct rbuf *r, uint64_t check, unsigned *flags)
{
	uint64_t c;

	if (get_u8(r) != FORMAT)
		return -ENOENT;
	*flags = get_u8(r);
	take(r, 4);                       /* used */
	get_bytes(r, &c, 8);
	if (r->bad || c != check)
		return -ENOENT;
	return 0;
}

/*
 * The one walk through a name record: all of it is checked; the source
 * fact goes to *s, the replica facts to e when e, and replica only's
 * fact to *one when one.  0 (1: one was found) or -ENOENT.
 */
static int parse(const unsigned char *b, size_t len, uint64_t check,
		 struct source_fact *s, bool *has_source, struct vmap_entry *e,
		 int only, struct replica_fact *one)
{
	bool found = false;
	struct rbuf r = { b, len, false };
	uint8_t seen[VMAP_RECORDS_REPLICAS_MAX];
	unsigned flags, nrep;
	int64_t s_t = 0;

	memset(s, 0, sizeof(*s));
	if (get_header(&r, check, &flags) < 0 ||
	    (flags & ~(unsigned)(F_SOURCE | F_TOMB | F_CRC | F_MD5)) ||
	    (!(flags & F_SOURCE) && flags))
		return -ENOENT;
	*has_source = flags & F_SOURCE;
	if (*has_source) {
		s->tombstone = flags & F_TOMB;
		s->has_crc32c = flags & F_CRC;
		s->has_md5 = flags & F_MD5;
		s->generation = get_v(&r);
		s->metageneration = get_v(&r);
		s->size = get_v(&r);
		s->ctime_ns = (int64_t)(s->generation * 1000 + unzz(get_v(&r)));
		s_t = (int64_t)unzz(get_v(&r));
		s->confirmed_ns = s_t;
		if (s->has_crc32c)
			get_bytes(&r, &s->crc32c, 4);
		if (s->has_md5)
			get_bytes(&r, s->md5, 16);
	}
	nrep = get_u8(&r);
	if (nrep > VMAP_RECORDS_REPLICAS_MAX)
		return -ENOENT;
	for (unsigned i = 0; i < nrep && !r.bad; i++) {
		struct replica_fact *f = e ? &e->rep[i] : one;
		uint8_t rid = get_replica(&r, s, s_t, f, e ? -1 : only);
		found |= one && rid == only;
		for (unsigned k = 0; k < i; k++)
			if (seen[k] == rid)
				return -ENOENT;   /* counted twice */
		seen[i] = rid;
		if (e)
			e->rid[i] = rid;
	}
	if (r.bad || r.left)
		return -ENOENT;
	if (e)
		e->nrep = nrep;
	return found;
}

int vmap_records_decode(const unsigned char *b, size_t len, uint64_t check,
			struct vmap_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (parse(b, len, check, &e->source, &e->has_source, e, -1, NULL) < 0) {
		memset(e, 0, sizeof(*e));
		return -ENOENT;
	}
	return 0;
}

int vmap_records_decode_source(const unsigned char *b, size_t len,
			       uint64_t check, struct source_fact *f)
{
	bool has;
	if (parse(b, len, check, f, &has, NULL, -1, NULL) < 0 || !has)
		return -ENOENT;
	return 0;
}

int vmap_records_decode_replica(const unsigned char *b, size_t len,
				uint64_t check, uint8_t rid,
				struct replica_fact *f)
{
	struct source_fact s;
	struct replica_fact one;
	bool has;

	if (parse(b, len, check, &s, &has, NULL, rid, &one) != 1)
		return -ENOENT;
	*f = one;
	return 0;
}

void *vmap_records_encode_sums(uint64_t check, const void *sums, size_t slen,
			       uint32_t used, size_t *len)
{
	struct wbuf w = { xmalloc(HDR + slen + 1), 0 };

	put_header(&w, F_SUMS, used, check);
	if (slen)
		put_bytes(&w, sums, slen);
	*len = w.n;
	return w.b;
}

int vmap_records_decode_sums(const unsigned char *b, size_t len,
			     uint64_t check, size_t *off)
{
	struct rbuf r = { b, len, false };
	unsigned flags;

	if (get_header(&r, check, &flags) < 0 || flags != F_SUMS)
		return -ENOENT;
	*off = HDR;
	return 0;
}

uint32_t vmap_records_used(const unsigned char *b, size_t len)
{
	uint32_t used = 0;
	if (len >= HDR)
		memcpy(&used, b + 2, 4);
	return used;
}

void vmap_records_set_used(unsigned char *b, size_t len, uint32_t used)
{
	if (len >= HDR)
		memcpy(b + 2, &used, 4);
}
