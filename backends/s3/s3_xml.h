/*
 * s3_xml.h - parsers (expat) for the XML bodies S3 servers send:
 * ListObjectsV2 results and error documents.  Input is untrusted: sizes
 * are bounded, malformed documents are rejected with -EBADMSG, never
 * half-used.  Pure functions; thread safe.
 */
#ifndef HYLAKE_S3_XML_H
#define HYLAKE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3_xml_entry {
	char *key;              /* decoded (see url_encoded); no NUL byte */
	bool is_prefix;
	uint64_t size;
	int64_t mtime_ns;
	char etag[96];          /* HY_ETAG_MAX; quotes stripped */
};

struct s3_xml_listing {
	struct s3_xml_entry *entries;
	size_t n, alloc;
	bool truncated;
	bool url_encoded;       /* <EncodingType>url</EncodingType>: the
	                           keys were sent %-encoded and are given
	                           here decoded */
	uint64_t hidden;        /* keys dropped: their decoded bytes hold a
	                           NUL ("a%00b"), so no C string or path
	                           can name them */
	char *next_token;       /* NULL when absent */
};

int s3_xml_parse_listing(const char *xml, size_t len,
			 struct s3_xml_listing *out);
void s3_xml_listing_release(struct s3_xml_listing *l);

/* <Error><Code>..</Code><Message>..</Message></Error>.  Returns 0 when a
 * Code was found. */
int s3_xml_parse_error(const char *xml, size_t len, char *code,
		       size_t codelen, char *msg, size_t msglen);

#endif
