/*
 * names.h - which object names can be paths.
 *
 * An object name maps onto a path only when every '/'-separated segment
 * is a valid file name: not empty, not "." or "..", at most 255 bytes, no
 * NUL.  Names that fail are hidden (and counted by the caller), never
 * mapped onto some other path.  Pure functions; thread safe.
 */
#ifndef HYLAKE_NAMES_H
#define HYLAKE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAMES_SEGMENT_MAX 255

bool names_segment_ok(const char *seg, size_t len);
/* Every segment of name ok?  A single trailing '/' (folder marker) is
 * allowed. */
bool names_path_ok(const char *name);

#endif
