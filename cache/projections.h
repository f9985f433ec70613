/*
 * projections.h - the columns scans of a table read, remembered.
 *
 * A query reads the same columns (its projection) in every row group of
 * every Parquet file of a table it scans.  A handle learns them as it
 * begins their chunks, so the first row group each handle takes would
 * cost one round trip per column, one after another.  This remembers,
 * per table, the columns the last scan of it read, so that a new handle
 * can fetch them together from its first row group on (readpath.c's
 * plan_columns).
 *
 * A table is a Parquet file's folder, less the Hive partition folders
 * (key=value) at its end: t/date=2026-01-01/part-0.parquet is of table
 * t.  Scans are told apart by the table's columns per row group and by
 * the column a scan began with, and the last scan that read a row group
 * through replaces what an earlier one left, so another query's
 * projection lasts until one of its own handles is done with a group.
 * A wrong guess costs bytes, never the answer.
 *
 * It also remembers how far into the end of a table's files its handles
 * read (the footer, and the column chunks there a query reads), the
 * most of any, so that the next file's open fetches that much of its
 * end rather than a fixed amount (readpath_open_tail).  Footers and
 * scans share the PROJECTION_TABLES places.
 *
 * Thread safety: all calls may come from any thread.
 */
#ifndef HYLAKE_PROJECTIONS_H
#define HYLAKE_PROJECTIONS_H

#include <stdbool.h>
#include <stdint.h>

#define PROJECTION_COLUMNS 1024u     /* columns remembered, at most */
#define PROJECTION_WORDS (PROJECTION_COLUMNS / 64)
#define PROJECTION_TABLES 64         /* scans remembered, the latest */

struct projections;

struct projections *projections_create(void);
void projections_destroy(struct projections *p);

/*
 * Add to cols (PROJECTION_WORDS words, a bit per column) the columns the
 * last scan of name's table with ncols columns per row group that began
 * at column `first` read.  Returns how many columns it added.
 */
unsigned projections_seed(struct projections *p, const char *name,
			  uint32_t ncols, uint32_t first, uint64_t *cols);

/*
 * Remember cols as what such a scan reads, in place of what was.  whole:
 * the handle read a row group through (it begins another); else it is
 * closing, and may have read only part of one, or had bytes from
 * elsewhere (its tail, the block cache) for some columns: then cols
 * replace a scan's columns only when they are not fewer of the same.
 */
void projections_keep(struct projections *p, const char *name,
		      uint32_t ncols, uint32_t first, const uint64_t *cols,
		      bool whole);

/* How far into the end of name's table's files its handles read, the
 * most any told (projections_footer_keep); 0: not known. */
uint64_t projections_footer(struct projections *p, const char *name);
void projections_footer_keep(struct projections *p, const char *name,
			     uint64_t bytes);

#endif
