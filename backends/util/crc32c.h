/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum GCS keeps for every
 * object.  Uses the SSE4.2 instruction when the CPU has it, a table
 * otherwise.  crc32c_update(0, data, len) is the CRC of data; feed
 * consecutive pieces by passing the previous result.  Thread safe.
 */
#ifndef HYLAKE_CRC32C_H
#define HYLAKE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

/*
 * The CRC of A followed by B, from crc_a = CRC(A), crc_b = CRC(B) and
 * B's length, without the data (O(log len_b)): so per-block CRCs can be
 * checked against a whole-object CRC.
 */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The same in two steps, for many pieces of one length: op =
 * crc32c_shift_op(len_b) once, then crc32c_combine_op(a, b, op). */
uint32_t crc32c_shift_op(uint64_t len_b);
uint32_t crc32c_combine_op(uint32_t crc_a, uint32_t crc_b, uint32_t op);

#endif
