/*
 * crc32c.c - CRC-32C, reflected polynomial 0x82F63B78.
 */
#include "backends/util/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[256];
static uint32_t x2n[32];      /* x^(2^k) mod P, reflected */
static bool have_sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* a * b modulo P, both polynomials in the reflected bit order (x^0 is
 * the top bit). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (uint32_t m = 1u << 31; m; m >>= 1) {
		if (a & m)
			p ^= b;
		b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
	x2n[0] = 1u << 30;        /* x^1 */
	for (int k = 1; k < 32; k++)
		x2n[k] = multmodp(x2n[k - 1], x2n[k - 1]);
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t sw(uint32_t c, const unsigned char *p, size_t len)
{
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

static uint32_t shift_bytes(uint64_t len);

#if defined(__x86_64__)
#define LANES_MIN 4096            /* shorter runs: one chain is as fast */

/*
 * Three CRC chains at once over three equal lanes: the crc32 instruction
 * has a latency of three cycles and a throughput of one, so one chain
 * leaves two thirds of the unit idle.  The lanes' registers are joined
 * by linearity: reg(c, A.B) = shift(reg(c, A), |B|) ^ reg(0, B).
 */
__attribute__((target("sse4.2")))
static uint32_t hw_lanes(uint32_t c, const unsigned char *p, size_t lane)
{
	uint64_t c0 = c, c1 = 0, c2 = 0;
	const unsigned char *p1 = p + lane, *p2 = p + 2 * lane;

	for (size_t i = 0; i < lane; i += 8) {
		uint64_t v0, v1, v2;
		memcpy(&v0, p + i, 8);
		memcpy(&v1, p1 + i, 8);
		memcpy(&v2, p2 + i, 8);
		c0 = __builtin_ia32_crc32di(c0, v0);
		c1 = __builtin_ia32_crc32di(c1, v1);
		c2 = __builtin_ia32_crc32di(c2, v2);
	}
	uint32_t op = shift_bytes(lane);
	uint32_t r = multmodp(op, (uint32_t)c0) ^ (uint32_t)c1;
	return multmodp(op, r) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2")))
static uint32_t hw(uint32_t c, const unsigned char *p, size_t len)
{
	if (len >= 3 * LANES_MIN) {
		size_t lane = len / 3 & ~(size_t)7;
		c = hw_lanes(c, p, lane);
		p += 3 * lane;
		len -= 3 * lane;
	}
	uint64_t c64 = c;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&once, init);
	uint32_t c = ~crc;
#if defined(__x86_64__)
	if (have_sse42)
		return ~hw(c, data, len);
#endif
	return ~sw(c, data, len);
}

/* x^(8 * len) mod P: the factor that moves a CRC past len zero bytes. */
static uint32_t shift_bytes(uint64_t len)
{
	uint32_t p = 1u << 31;    /* x^0 */

	for (int k = 3; len; len >>= 1, k++)
		if (len & 1)
			p = multmodp(x2n[k & 31], p);
	return p;
}

uint32_t crc32c_shift_op(uint64_t len_b)
{
	pthread_once(&once, init);
	return shift_bytes(len_b);
}

uint32_t crc32c_combine_op(uint32_t crc_a, uint32_t crc_b, uint32_t op)
{
	return multmodp(op, crc_a) ^ crc_b;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	return crc32c_combine_op(crc_a, crc_b, crc32c_shift_op(len_b));
}
