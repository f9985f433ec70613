/*
 * secretfile.h - files that hold secrets (S3 credentials, service-account
 * keys).  A secret file must be a regular file that neither group nor
 * other can access; anything else is refused with a message that says
 * how to fix it.  The message never contains the file's content.
 */
#ifndef HYLAKE_SECRETFILE_H
#define HYLAKE_SECRETFILE_H

#include <stddef.h>

/* 0, or -errno with err filled ("... is readable by group/other ..."). */
int secretfile_check(const char *path, char *err, size_t errlen);

#endif
