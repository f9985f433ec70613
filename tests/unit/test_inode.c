/*
 * The inode table: one inode, one version while it is read through the
 * kernel's pages (fs/inode.h).  Each case is one the kernel would get
 * wrong otherwise: a size of one version cutting reads of another.
 */
#include "fs/inode.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdlib.h>

static struct obj_info version(uint64_t gen, uint64_t size)
{
	struct obj_info v = { .size = size, .generation = gen };
	snprintf(v.etag, sizeof(v.etag), "g%llu", (unsigned long long)gen);
	return v;
}

static uint64_t shown_size(struct itable *t, uint64_t ino)
{
	struct obj_info i;
	CHECK(itable_get(t, ino, NULL, &i) == 0);
	return i.size;
}

/* While a handle reads version 1, the name moving to version 2 (a
 * lookup) gets a new inode; the old one keeps version 1 for its readers
 * and for a getattr without a handle (fstat), until they close. */
static void a_read_inode_keeps_its_version(void)
{
	struct itable *t = itable_create();
	struct obj_info v1 = version(1, 1048583), v2 = version(2, 131072);
	enum page_use use;
	bool changed;

	uint64_t i1 = itable_lookup(t, "b/n07", &v1);
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	CHECK(use == PAGES_DROP && !changed);   /* pages never filled */

	uint64_t i2 = itable_lookup(t, "b/n07", &v2);
	CHECK(i2 != i1);
	CHECK_INT(itable_find(t, "b/n07"), i2);
	CHECK_INT(shown_size(t, i1), 1048583);
	CHECK_INT(shown_size(t, i2), 131072);

	/* the store says version 2 to a getattr of the old inode */
	struct obj_info shown;
	CHECK(itable_update(t, i1, &v2, &shown) == ITABLE_FROZEN);
	CHECK_INT(shown.size, 1048583);
	CHECK_INT(shown_size(t, i1), 1048583);

	/* a second reader of version 1 through the old inode: its pages */
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	CHECK(use == PAGES_KEEP && !changed);
	/* version 2 through the old inode: refused, the kernel looks the
	 * name up again and finds the new one */
	CHECK(itable_open(t, i1, &v2, &use, &changed) == -ESTALE);
	CHECK(itable_open(t, i2, &v2, &use, &changed) == 0);
	CHECK(use == PAGES_DROP && !changed);

	CHECK(itable_paged(t, i1) && itable_paged(t, i2));
	itable_close_pages(t, i1);
	CHECK(itable_paged(t, i1));          /* its second reader */
	itable_close_pages(t, i1);
	CHECK(!itable_paged(t, i1) && itable_paged(t, i2));
	/* the name has left it: closed or not, it stays version 1 */
	CHECK(itable_open(t, i1, &v2, &use, &changed) == -ESTALE);
	CHECK(itable_update(t, i1, &v2, NULL) == ITABLE_FROZEN);
	itable_close_pages(t, i2);
	CHECK(!itable_paged(t, i2) && !itable_paged(t, 999));
	itable_forget(t, i1, 1);
	CHECK(itable_get(t, i1, NULL, NULL) == -ENOENT);
	CHECK_INT(itable_find(t, "b/n07"), i2);
	itable_destroy(t);
}

/* A getattr that learns of version 2 while version 1 is read detaches
 * the name there too: the next lookup makes the new inode. */
static void a_getattr_detaches_the_name(void)
{
	struct itable *t = itable_create();
	struct obj_info v1 = version(1, 27088), v2 = version(2, 37616), shown;
	enum page_use use;
	bool changed;

	uint64_t i1 = itable_lookup(t, "c/n2", &v1);
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	CHECK(itable_update(t, i1, &v2, &shown) == ITABLE_FROZEN);
	CHECK_INT(shown.size, 27088);
	CHECK_INT(itable_find(t, "c/n2"), 0);
	CHECK(!itable_named(t, i1));     /* its getattr asks no store */
	uint64_t i2 = itable_lookup(t, "c/n2", &v2);
	CHECK(i2 != i1);
	CHECK(itable_named(t, i2));
	CHECK(!itable_named(t, 999999));
	/* an open of the old inode that finds version 2 (the kernel's entry
	 * still named it) is refused, and one of version 1 is not */
	CHECK(itable_open(t, i1, &v2, &use, &changed) == -ESTALE);
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	CHECK(use == PAGES_KEEP);
	itable_destroy(t);
}

/* With no handle reading it, an inode follows its name's versions: a
 * new version is shown at once, and its open drops the old pages. */
static void an_unread_inode_follows_its_name(void)
{
	struct itable *t = itable_create();
	struct obj_info v1 = version(1, 10), v2 = version(2, 20), v3 =
		version(3, 30), shown;
	enum page_use use;
	bool changed;

	uint64_t i1 = itable_lookup(t, "x", &v1);
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	itable_close_pages(t, i1);
	/* closed: its pages are still version 1's */
	CHECK(itable_open(t, i1, &v1, &use, &changed) == 0);
	CHECK(use == PAGES_KEEP && !changed);
	itable_close_pages(t, i1);

	CHECK_INT(itable_lookup(t, "x", &v2), i1);
	CHECK(itable_update(t, i1, &v3, &shown) == ITABLE_CHANGED);
	CHECK_INT(shown_size(t, i1), 30);
	CHECK(itable_update(t, i1, &v3, &shown) == ITABLE_SAME);
	/* an open that finds version 2 again, after the table said 3 */
	CHECK(itable_open(t, i1, &v2, &use, &changed) == 0);
	CHECK(use == PAGES_DROP && changed);
	/* two readers of one version share the pages */
	CHECK(itable_open(t, i1, &v2, &use, &changed) == 0);
	CHECK(use == PAGES_KEEP && !changed);
	itable_close_pages(t, i1);
	itable_close_pages(t, i1);
	CHECK_INT(itable_find(t, "x"), i1);
	itable_destroy(t);
}

int main(void)
{
	a_read_inode_keeps_its_version();
	a_getattr_detaches_the_name();
	an_unread_inode_follows_its_name();
	return check_summary();
}
