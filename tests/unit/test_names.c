/* Which object names may become paths. */
#include "fs/names.h"
#include "tests/unit/check.h"

int main(void)
{
	char longseg[300];
	memset(longseg, 'a', sizeof(longseg) - 1);
	longseg[299] = '\0';

	CHECK(names_segment_ok("a", 1));
	CHECK(names_segment_ok("été 2024.csv", strlen("été 2024.csv")));
	CHECK(names_segment_ok("...", 3));
	CHECK(names_segment_ok(".hidden", 7));
	CHECK(!names_segment_ok("", 0));
	CHECK(!names_segment_ok(".", 1));
	CHECK(!names_segment_ok("..", 2));
	CHECK(!names_segment_ok("a/b", 3));
	CHECK(!names_segment_ok("a\0b", 3));
	CHECK(names_segment_ok(longseg, 255));
	CHECK(!names_segment_ok(longseg, 256));

	CHECK(names_path_ok("a/b/c"));
	CHECK(names_path_ok("dir/"));
	CHECK(!names_path_ok("a//b"));
	CHECK(!names_path_ok("/a"));
	CHECK(!names_path_ok("./x"));
	CHECK(!names_path_ok("y/../z"));
	CHECK(!names_path_ok("c/./d"));
	CHECK(!names_path_ok(""));
	CHECK(!names_path_ok("a//"));
	CHECK(!names_path_ok(longseg));
	return check_summary();
}
