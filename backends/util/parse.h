/*
 * parse.h - numbers in text that servers send.
 *
 * One rule for every size, length, generation and header number that
 * comes from outside: ASCII digits only.  No leading space, no sign, no
 * "0x", no trailing junk, no overflow: strtoull() accepts " -1" and
 * returns 2^64-1, which is how a hostile or broken server would make a
 * listing's size or a Content-Length say anything.  Pure functions;
 * thread safe.
 */
#ifndef HYLAKE_PARSE_H
#define HYLAKE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parse the whole of s (len bytes; a NUL byte in them is junk) as an
 * unsigned decimal.  True and *out set, or false and *out untouched
 * when s is empty, holds anything but '0'..'9', or exceeds UINT64_MAX.
 */
bool parse_u64_digits(const char *s, size_t len, uint64_t *out);

/* The same for a NUL-terminated string. */
bool parse_u64_str(const char *s, uint64_t *out);

/*
 * Parse the run of digits at *p (at least one) and advance *p past it,
 * for numbers inside a larger field ("bytes 0-9/10").  False (and *p
 * unmoved) when *p is not a digit or the number exceeds UINT64_MAX.
 */
bool parse_u64_prefix(const char **p, uint64_t *out);

#endif
