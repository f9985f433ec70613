/*
 * fs_tree.c - what changes names on a writable mount: links, renames and
 * folders, each made of the store's conditional writes (backend.h), so
 * that nothing is overwritten that the mount did not see.
 *
 *   link(old, new)    a put-if-absent copy of the generation of old seen
 *                     now (ifGenerationMatch=0 on new): EEXIST when new
 *                     exists, also when another host made it first.  The
 *                     two names do not stay one file: each is an object.
 *                     This is how delta-rs and the Rust object_store crate
 *                     commit on a local path (write a staging file, link
 *                     it to the commit name, unlink the staging file).
 *   rename(old, new)  a copy of old's generation under new's generation
 *                     seen (or ifGenerationMatch=0 when new is missing),
 *                     then the removal of old under its generation;
 *                     RENAME_NOREPLACE makes the copy put-if-absent.  Not
 *                     atomic as a whole: for a moment both names exist.
 *                     If old changed between the copy and its removal, it
 *                     is left (ESTALE): new holds the copy, old the newer
 *                     bytes.  The kernel sends a rename that failed with
 *                     ESTALE once more, after looking again: that one
 *                     moves the newer bytes.  RENAME_EXCHANGE: EINVAL.
 *   mkdir(dir)        the zero-byte marker object "dir/", put-if-absent.
 *   rmdir(dir)        the removal of that marker under its generation,
 *                     when nothing else is in the folder (ENOTEMPTY).  A
 *                     folder without a marker exists only while it holds
 *                     something: once its last file is removed it is gone
 *                     already, and its rmdir (as `rm -r` sends) succeeds.
 *
 * A file still being written (a staging file linked before its close, as
 * object_store does) is committed first, as by fsync.
 *
 * The kernel holds the folders' locks while these run, so no entry
 * notice is sent from here (it would wait for those locks): the reply
 * itself tells the kernel of the new entry, the inode table follows a
 * renamed inode to its new name, and the metadata cache and the router
 * learn of every write from the write itself (read your own writes).
 */
#include "fs/fs_impl.h"
#include "backends/util/log.h"
#include "backends/util/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source of a link or rename, committed if still being written. */
static int stat_source(struct fs *fs, const char *path, int dir_err,
		       struct obj_info *info, const struct deadline *dl)
{
	uint64_t ino = itable_find(fs->inodes, path);
	int rc = ino ? fs_commit_writing(fs, ino, dl) : 0;
	return rc < 0 ? rc : fs_stat_file(fs, path, dir_err, info, dl);
}

void hy_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct write_pre pre = { .kind = WRITE_PRE_ABSENT };
	struct obj_info info, out;
	struct fuse_entry_param e;
	char *from = NULL;

	char *to = fs_changed_path(req, newparent, newname, EINVAL);
	if (!to)
		return;
	int rc = itable_get(fs->inodes, ino, &from, NULL);
	if (rc == 0)
		rc = fs_commit_writing(fs, ino, &dl);
	if (rc == 0)
		rc = fs_stat_file(fs, from, -EPERM, &info, &dl);
	if (rc == 0)
		rc = backend_copy(fs->src, from, info.generation, to, &pre,
				  &out, &dl);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		log_debug("'%s' linked (copied) to '%s', generation %llu", from,
			  to, (unsigned long long)out.generation);
		fs_make_entry(fs, itable_lookup(fs->inodes, to, &out), &out, &e);
		fuse_reply_entry(req, &e);
	}
	free(from);
	free(to);
}

/*
 * A folder is not renamed: on a flat bucket it is every object under its
 * prefix, and a copy of each cannot be atomic.  EXDEV, the kernel's
 * answer for "not in place", rather than ENOTSUP: `mv`, Python's
 * shutil.move and Hadoop's local file system then move the folder file
 * by file as they would across file systems (each file by link-like
 * copies under preconditions), which is the move the user asked for,
 * non-atomic as a move across file systems always is; ENOTSUP would only
 * make `mv` fail, and the libraries copy on any error anyway.
 */
#define FOLDER_RENAME_ERR (-EXDEV)

/* Copy from to to under the precondition rename() gives it. */
static int rename_copy(struct fs *fs, const char *from, const char *to,
		       unsigned int flags, const struct obj_info *src,
		       struct obj_info *out, const struct deadline *dl)
{
	struct write_pre pre = { .kind = WRITE_PRE_ABSENT };
	struct obj_info old;
	int rc = fs_stat_file(fs, to, -EISDIR, &old, dl);

	if (rc == 0 && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (rc == 0) {
		pre.kind = WRITE_PRE_GENERATION;     /* over what was seen */
		pre.generation = old.generation;
	} else if (rc != -ENOENT) {
		return rc;
	}
	return backend_copy(fs->src, from, src->generation, to, &pre, out, dl);
}

void hy_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct obj_info src, out;
	char *to = NULL;

	char *from = fs_changed_path(req, parent, name, ENOENT);
	if (!from)
		return;
	to = fs_child_path(fs, newparent, newname);
	int rc = to ? 0 : -EINVAL;
	if (rc == 0 && (flags & ~(unsigned int)RENAME_NOREPLACE))
		rc = -EINVAL;                 /* RENAME_EXCHANGE, WHITEOUT */
	if (rc == 0 && !strcmp(from, to))
		goto out_reply;               /* a rename onto itself */
	if (rc == 0)
		rc = stat_source(fs, from, FOLDER_RENAME_ERR, &src, &dl);
	if (rc == 0)
		rc = rename_copy(fs, from, to, flags, &src, &out, &dl);
	if (rc == 0) {
		struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
					 .generation = src.generation };
		rc = backend_remove(fs->src, from, &pre, &dl);
		if (rc == -ENOENT)
			rc = 0;               /* gone already, as asked */
		if (rc < 0)
			log_notice("'%s' copied to '%s' but not removed: %s",
				   from, to, strerror(-rc));
		else
			itable_rename(fs->inodes, from, to, &out);
	}
out_reply:
	fuse_reply_err(req, -rc);
	free(from);
	free(to);
}

void hy_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode)
{
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	struct write_pre pre = { .kind = WRITE_PRE_ABSENT };
	struct obj_info info;
	struct fuse_entry_param e;
	struct bwriter *w = NULL;
	(void)mode;

	char *path = fs_changed_path(req, parent, name, EINVAL);
	if (!path)
		return;
	struct strbuf marker = STRBUF_INIT;
	strbuf_addf(&marker, "%s/", path);
	int rc = backend_stat(fs->src, path, &info, &dl);
	if (rc == 0)
		rc = -EEXIST;                 /* a file or a folder */
	else if (rc == -ENOENT)
		rc = backend_writer_open(fs->src, marker.buf, &pre, &w, &dl);
	if (rc == 0)
		rc = bwriter_commit(w, &info, &dl);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		info.is_dir = true;
		info.size = 0;
		fs_make_entry(fs, itable_lookup(fs->inodes, path, &info),
			      &info, &e);
		fuse_reply_entry(req, &e);
	}
	strbuf_release(&marker);
	free(path);
}

/* What a listing of a folder found: its marker, and anything else. */
struct folder_scan {
	const char *marker;       /* "dir/" */
	struct obj_info marker_info;
	bool has_marker, has_entries;
};

static int scan_entry(void *arg, const struct list_entry *e)
{
	struct folder_scan *s = arg;
	if (!e->is_prefix && !strcmp(e->name, s->marker)) {
		s->marker_info = e->info;
		s->has_marker = true;
		return 0;
	}
	s->has_entries = true;
	return -ECANCELED;                /* enough: it is not empty */
}

/* List marker's folder until it shows an entry or ends. */
static int scan_folder(struct fs *fs, struct folder_scan *s,
		       const struct deadline *dl)
{
	char *token = NULL;
	int rc;

	do {
		char *next = NULL;
		struct list_req lr = { .prefix = s->marker, .delimiter = "/",
				       .token = token, .max_keys = 2 };
		rc = backend_list(fs->src, &lr, scan_entry, s, &next, dl);
		free(token);
		token = next;
	} while (rc == 0 && token);
	free(token);
	return rc == -ECANCELED ? 0 : rc;
}

/* Remove the empty folder path: its marker, under its generation. */
static int remove_folder(struct fs *fs, const char *path,
			 const struct deadline *dl)
{
	struct strbuf marker = STRBUF_INIT;
	struct obj_info info;

	strbuf_addf(&marker, "%s/", path);
	struct folder_scan scan = { .marker = marker.buf };
	int rc = backend_stat(fs->src, path, &info, dl);
	if (rc == 0 && !info.is_dir)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = scan_folder(fs, &scan, dl);
	if (rc == 0 && scan.has_entries)
		rc = -ENOTEMPTY;
	if (rc == -ENOENT || (rc == 0 && !scan.has_marker))
		rc = 0;                       /* empty and unmarked: gone */
	else if (rc == 0 && !scan.marker_info.generation)
		rc = -ENOTSUP;
	else if (rc == 0) {
		struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
					 .generation = scan.marker_info.generation };
		rc = backend_remove(fs->src, marker.buf, &pre, dl);
	}
	strbuf_release(&marker);
	return rc;
}

void hy_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *path = fs_changed_path(req, parent, name, ENOENT);
	if (!path)
		return;
	struct fs *fs = req_fs(req);
	struct deadline dl = op_deadline(fs);
	fuse_reply_err(req, -remove_folder(fs, path, &dl));
	free(path);
}
