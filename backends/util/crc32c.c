/*
 * crc32c.c - CRC-32C, reflected polynomial 0x82F63B78.
 */
#include "backends/util/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static uint32_t table[256];
static bool have_sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
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

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t hw(uint32_t c, const unsigned char *p, size_t len)
{
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
