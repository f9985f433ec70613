/*
 * secretfile.h - files that hold secrets (S3 credentials, service-account
 * keys).  A secret file must be a regular file, not reached through a
 * symbolic link in its last component, owned by the running user or
 * root, that neither group nor other can access; anything else is
 * refused with a message that says how to fix it.  The checks run on
 * the opened descriptor, so the file checked is the file read.  The
 * message never contains the file's content.
 */
#ifndef HYLAKE_SECRETFILE_H
#define HYLAKE_SECRETFILE_H

#include <stddef.h>

#include "backends/util/strbuf.h"

/* Largest secret file read (a service-account key is ~2.4 KiB). */
#define SECRETFILE_MAX (1 << 20)

/* 0, or -errno with err filled ("... is readable by group/other ...").
 * -ELOOP for a symbolic link, -EPERM for mode or owner, -EINVAL for
 * what is no regular file, -EFBIG past SECRETFILE_MAX. */
int secretfile_check(const char *path, char *err, size_t errlen);

/*
 * Check path as above and append its content to out.  From the first
 * secret read on, the process is not dumpable (no core file, no ptrace
 * by other users).  The caller scrubs out with secretfile_scrub() when
 * done; on error nothing is appended.
 */
int secretfile_read(const char *path, struct strbuf *out, char *err,
		    size_t errlen);

/* Overwrite sb's bytes (not optimised away) and empty it. */
void secretfile_scrub(struct strbuf *sb);

#endif
