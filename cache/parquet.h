/*
 * parquet.h - where the column chunks of a Parquet file lie, from its
 * footer.
 *
 * A Parquet reader reads the file's tail first, then the column chunks
 * its query needs.  Knowing the footer, the read path can tell which
 * byte ranges come next: the chunk a read falls in, and the chunks of
 * one row group that lie close enough together to fetch as one request.
 *
 * The end of a Parquet file:
 *
 *   ... column chunks ... | footer (FileMetaData, Thrift compact) |
 *   u32 LE footer length | "PAR1"
 *
 * Only what says where the bytes are is kept: for each row group its
 * row count, and for each column chunk its first byte (the dictionary
 * page when there is one before the first data page, else the first
 * data page) and its length (total_compressed_size).  A footer is
 * outside input: the reader is bounded in nesting depth, list lengths
 * and chunk count, never reads past the buffer, and refuses ranges that
 * leave the file's data.  Files with an encrypted footer ("PARE"),
 * encrypted column metadata or chunks in other files are not supported.
 *
 * Errors are negative errnos:
 *   -EINVAL   an argument is NULL or otherwise unusable
 *   -EBADMSG  not a Parquet tail or footer, or a range outside the file
 *   -E2BIG    more than the limits below (footer length, chunks, groups)
 *   -ENOTSUP  a valid footer this module cannot use (encryption, a
 *             chunk in another file)
 *   -ENOMEM
 *
 * Thread safety: a layout is not changed after parquet_footer_parse
 * returns; any number of threads may query it at once.  Its owner
 * destroys it once nobody queries it.
 */
#ifndef HYLAKE_PARQUET_H
#define HYLAKE_PARQUET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARQUET_TAIL 8                      /* u32 length + "PAR1" */
#define PARQUET_FOOTER_MAX ((uint32_t)64 << 20)
#define PARQUET_CHUNKS_MAX ((size_t)1 << 20) /* column chunks, all groups */
#define PARQUET_GROUPS_MAX ((size_t)1 << 20)

struct parquet_chunk {
	uint64_t off;             /* first byte in the file */
	uint64_t len;             /* > 0; off + len <= the footer's start */
	uint32_t group;           /* row group, in footer order */
	uint32_t column;          /* its place in the row group's list */
};

struct parquet_group {
	size_t first;             /* its chunks: chunks[first .. first+n) */
	size_t n;
	int64_t num_rows;
	int64_t total_byte_size;  /* uncompressed, as the writer says */
};

/*
 * The chunks of each group are sorted by offset (ties, never overlaps:
 * a parsed layout has no two chunks sharing a byte); by_off indexes all
 * chunks in offset order.
 */
struct parquet_layout {
	struct parquet_chunk *chunks;
	size_t n_chunks;
	struct parquet_group *groups;
	size_t n_groups;
	uint32_t *by_off;         /* n_chunks indexes into chunks */
	uint64_t data_end;        /* file size less footer and tail */
};

/*
 * The footer's length from the file's last 8 bytes (last8) and its size.
 * 0 and *footer_len set, or -EBADMSG (no "PAR1", a length of 0 or one
 * that does not fit between the leading "PAR1" and the tail), -ENOTSUP
 * (an encrypted footer, "PARE"), -E2BIG (over PARQUET_FOOTER_MAX).
 */
int parquet_tail_len(const void *last8, uint64_t file_size,
		     uint32_t *footer_len);

/*
 * Parse the footer (len bytes, the FileMetaData without the 8-byte tail)
 * of a file of file_size bytes into a new layout, which the caller frees
 * with parquet_layout_destroy.  0, or an error above with *out NULL.
 * Unknown fields of any type are skipped; a known field of another
 * type, a missing required one or one given twice is -EBADMSG.
 */
int parquet_footer_parse(const void *footer, size_t len, uint64_t file_size,
			 struct parquet_layout **out);

void parquet_layout_destroy(struct parquet_layout *l);

/* The chunk holding byte off of the file, or NULL. */
const struct parquet_chunk *parquet_find(const struct parquet_layout *l,
					 uint64_t off);

/*
 * A run of chunks of one row group, close enough to fetch as one range:
 * group chunks [first, first + n) (indexes into l->chunks), covering
 * [off, off + len), gaps between them included.
 */
struct parquet_run {
	size_t first, n;
	uint64_t off, len;
};

/*
 * The next run of row group `group` from *pos (start at 0; it is advanced
 * past the run).  Chunks join a run while the gap before each is at most
 * max_gap bytes and the run stays within max_len bytes (0: no cap; a
 * chunk longer than max_len is a run of its own).  True and *run set, or
 * false when the group has no more chunks (or no such group).
 */
bool parquet_run_next(const struct parquet_layout *l, size_t group,
		      uint64_t max_gap, uint64_t max_len, size_t *pos,
		      struct parquet_run *run);

#endif
