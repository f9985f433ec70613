/*
 * The version map's front (cache/vmap_front.c): what a slot keeps, and
 * the rule that keeps it from holding a record older than the map's.
 */
#include "cache/vmap_front.h"
#include "tests/unit/check.h"

#include <string.h>

/* A name key: keys are hashes, and the first word picks the slot. */
static void key_of(uint64_t slot, uint64_t tag, unsigned char *k)
{
	memcpy(k, &slot, 8);
	memcpy(k + 8, &tag, 8);
}

static void keeps_and_forgets(void)
{
	struct vfront *f = vfront_create(4);
	unsigned char k[VFRONT_KEY], buf[VFRONT_VAL_MAX];
	const unsigned char rec[] = "a record of 25 bytes ...";

	CHECK(f != NULL);
	key_of(3, 1, k);
	CHECK_INT(vfront_get(f, k, buf), 0);           /* empty */
	uint64_t t = vfront_ticket(f, k);
	CHECK(t != 0);
	vfront_fill(f, k, t, rec, sizeof(rec));
	CHECK_INT(vfront_get(f, k, buf), sizeof(rec));
	CHECK(memcmp(buf, rec, sizeof(rec)) == 0);
	/* the same ticket fills no more: the slot changed since */
	vfront_fill(f, k, t, (const unsigned char *)"older", 5);
	CHECK_INT(vfront_get(f, k, buf), sizeof(rec));
	vfront_forget(f, k);
	CHECK_INT(vfront_get(f, k, buf), 0);
	vfront_destroy(f);
}

/* A lookup that took its ticket before a put's forget read the map
 * before the put's fact reached it, maybe: it must not fill. */
static void a_fill_after_a_forget_is_refused(void)
{
	struct vfront *f = vfront_create(4);
	unsigned char k[VFRONT_KEY], buf[VFRONT_VAL_MAX];

	key_of(5, 9, k);
	uint64_t before = vfront_ticket(f, k);
	vfront_forget(f, k);                           /* a put */
	vfront_fill(f, k, before, (const unsigned char *)"old", 3);
	CHECK_INT(vfront_get(f, k, buf), 0);
	/* a ticket taken after the forget fills */
	uint64_t after = vfront_ticket(f, k);
	vfront_fill(f, k, after, (const unsigned char *)"new", 3);
	CHECK_INT(vfront_get(f, k, buf), 3);
	CHECK(memcmp(buf, "new", 3) == 0);
	vfront_destroy(f);
}

/* Two names of one slot: the later fill takes it, and the other is
 * not found (never answered with the other's record); a forget of
 * either empties it. */
static void names_sharing_a_slot(void)
{
	struct vfront *f = vfront_create(4);
	unsigned char a[VFRONT_KEY], b[VFRONT_KEY], buf[VFRONT_VAL_MAX];

	key_of(7, 1, a);
	key_of(7 + 16, 2, b);                          /* the same slot */
	vfront_fill(f, a, vfront_ticket(f, a), (const unsigned char *)"A", 1);
	vfront_fill(f, b, vfront_ticket(f, b), (const unsigned char *)"BB", 2);
	CHECK_INT(vfront_get(f, a, buf), 0);
	CHECK_INT(vfront_get(f, b, buf), 2);
	CHECK(memcmp(buf, "BB", 2) == 0);
	vfront_forget(f, a);
	CHECK_INT(vfront_get(f, b, buf), 0);
	vfront_destroy(f);
}

/* Records past VFRONT_VAL_MAX and empty ones are not kept; the longest
 * kept one comes back whole. */
static void record_lengths(void)
{
	struct vfront *f = vfront_create(4);
	unsigned char k[VFRONT_KEY], buf[VFRONT_VAL_MAX];
	unsigned char big[VFRONT_VAL_MAX + 1];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 1);
	key_of(1, 1, k);
	vfront_fill(f, k, vfront_ticket(f, k), big, sizeof(big));
	CHECK_INT(vfront_get(f, k, buf), 0);
	vfront_fill(f, k, vfront_ticket(f, k), big, 0);
	CHECK_INT(vfront_get(f, k, buf), 0);
	vfront_fill(f, k, vfront_ticket(f, k), big, VFRONT_VAL_MAX);
	CHECK_INT(vfront_get(f, k, buf), VFRONT_VAL_MAX);
	CHECK(memcmp(buf, big, VFRONT_VAL_MAX) == 0);
	vfront_fill(f, k, vfront_ticket(f, k), big + 1, 13);   /* shorter */
	CHECK_INT(vfront_get(f, k, buf), 13);
	CHECK(memcmp(buf, big + 1, 13) == 0);
	vfront_destroy(f);
}

int main(void)
{
	keeps_and_forgets();
	a_fill_after_a_forget_is_refused();
	names_sharing_a_slot();
	record_lengths();
	return check_summary();
}
