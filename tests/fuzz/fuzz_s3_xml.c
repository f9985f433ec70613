/* libFuzzer target: S3 listing and error documents (untrusted input). */
#include "backends/s3/s3_xml.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_xml_listing l;
	char code[64], msg[256];

	if (s3_xml_parse_listing((const char *)data, size, &l) == 0) {
		for (size_t i = 0; i < l.n; i++)
			if (!l.entries[i].key || strlen(l.entries[i].etag) >= 96)
				__builtin_trap();
		s3_xml_listing_release(&l);
	}
	s3_xml_parse_error((const char *)data, size, code, sizeof(code), msg,
			   sizeof(msg));
	return 0;
}
