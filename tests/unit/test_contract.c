/* The replica contract: which copies count as which source generation. */
#include "backends/composite/contract.h"
#include "tests/unit/check.h"

#include <string.h>

static struct obj_info source(void)
{
	struct obj_info v = { .size = 11, .generation = 1700,
			      .crc32c = 0xc99465aaU, .has_crc32c = true,
			      .has_md5 = true };
	/* md5("hello world") = 5eb63bbbe01eeed093cb22bb8f5acdc3 */
	static const unsigned char md5[16] = { 0x5e, 0xb6, 0x3b, 0xbb, 0xe0,
		0x1e, 0xee, 0xd0, 0x93, 0xcb, 0x22, 0xbb, 0x8f, 0x5a, 0xcd,
		0xc3 };
	memcpy(v.md5, md5, 16);
	return v;
}

int main(void)
{
	struct obj_info v = source(), c;
	uint64_t held;

	/* 1. stamped with G, size and crc32c agree: holds G */
	c = (struct obj_info){ .size = 11, .generation = 1700,
			       .crc32c = 0xc99465aaU, .has_crc32c = true };
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_HOLDS);
	CHECK_INT(held, 1700);
	/* stamped with G but its crc32c or size disagree: bad */
	c.crc32c = 1;
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_BAD);
	CHECK_INT(held, 0);
	c = (struct obj_info){ .size = 12, .generation = 1700 };
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_BAD);
	/* stamped with G and no crc32c recorded: the generation decides */
	c = (struct obj_info){ .size = 11, .generation = 1700 };
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_HOLDS);
	/* stamped with another generation: holds that one (lagging) */
	c = (struct obj_info){ .size = 5, .generation = 1699 };
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_HOLDS);
	CHECK_INT(held, 1699);

	/* 2. no stamp: a single-part ETag equal to the MD5 proves it */
	c = (struct obj_info){ .size = 11 };
	strcpy(c.etag, "5EB63BBBE01EEED093CB22BB8F5ACDC3");
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_HOLDS);
	CHECK_INT(held, 1700);
	c.size = 10;                                   /* size differs */
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	c.size = 11;
	strcpy(c.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3-2"); /* multipart */
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	strcpy(c.etag, "5eb63bbbe01eeed093cb22bb8f5acdc4");   /* other bytes */
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	/* a store's own MD5 (a GCS bucket as replica) counts too, not its
	 * etag (which is its own generation there) */
	c = (struct obj_info){ .size = 11, .has_md5 = true };
	memcpy(c.md5, v.md5, 16);
	strcpy(c.etag, "42");
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_HOLDS);
	c.md5[3] ^= 1;
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	/* the source has no MD5 (composite object): nothing proves a copy */
	v.has_md5 = false;
	c = (struct obj_info){ .size = 11 };
	strcpy(c.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	/* 3. a posix copy without the xattr: nothing to go by */
	c = (struct obj_info){ .size = 11 };
	strcpy(c.etag, "803:1a2b:b:17");
	CHECK_INT(contract_judge(&c, &v, &held), REPLICA_UNPROVEN);
	return check_summary();
}
