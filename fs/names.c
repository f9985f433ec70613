/*
 * names.c - object names versus path names.
 */
#include "fs/names.h"

#include <string.h>

bool names_segment_ok(const char *seg, size_t len)
{
	if (len == 0 || len > NAMES_SEGMENT_MAX)
		return false;
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return false;
	return memchr(seg, '\0', len) == NULL && memchr(seg, '/', len) == NULL;
}

bool names_path_ok(const char *name)
{
	size_t len = strlen(name);
	if (len && name[len - 1] == '/')
		len--;
	if (len == 0)
		return false;
	const char *p = name, *end = name + len;
	while (p <= end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *seg_end = slash ? slash : end;
		if (!names_segment_ok(p, (size_t)(seg_end - p)))
			return false;
		p = seg_end + 1;
	}
	return true;
}
