/*
 * contract.h - the replica contract: when a replica's copy counts as a
 * version of the source.
 *
 * A copy counts as source generation G when, in this order:
 *   1. its stamped source generation is G, and its size (and stamped
 *      crc32c, when there is one) agree with the source's;
 *   2. nothing is stamped, and size plus MD5 (the store's own MD5, or a
 *      single-part S3 ETag) match the source's md5Hash;
 *   3. otherwise nothing proves it: it does not count.
 * A copy stamped with G whose size or crc32c disagree is bad: it claims a
 * version it does not hold.
 *
 * Shared by the router (which copies it may serve) and the replicator
 * (which copies it must replace), so both read the contract the same way.
 */
#ifndef HYLAKE_CONTRACT_H
#define HYLAKE_CONTRACT_H

#include "backends/backend.h"
#include "backends/facts.h"

/*
 * Judge copy against the source version v.  Returns REPLICA_HOLDS (and
 * *held the generation the copy holds: v's, or another one it is stamped
 * with), REPLICA_BAD or REPLICA_UNPROVEN.
 */
enum replica_state contract_judge(const struct obj_info *copy,
				  const struct obj_info *v, uint64_t *held);

#endif
