"""`prefix =` mounts only a sub-tree of the bucket."""

import os

import pytest

from hylib import expected_tree, put_many, sha256, sha256_file, walk_tree

KEYS = {
    "tables/t1/part-0.bin": os.urandom(100_000),
    "tables/t1/part-1.bin": os.urandom(3),
    "tables/t1/_SUCCESS": b"",
    "tables/t2/x.txt": b"x\n",
    "tables/top.txt": b"top of tables\n",
    "tables/empty/": b"",
    "tables.txt": b"a sibling object sharing the string prefix\n",
    "tablesX/z.txt": b"a sibling prefix sharing the string prefix\n",
    "other/y.txt": b"outside\n",
    "root-only.txt": b"bucket root\n",
}


@pytest.mark.parametrize("prefix", ["tables/", "tables/t1/"])
def test_prefix_mounts_only_the_subtree(s3, bucket, ws, mounter, prefix):
    put_many(s3, bucket, KEYS)
    m = mounter.mount(ws.s3_config(bucket, prefix=prefix))
    files, dirs = walk_tree(m.path)
    want_files, want_dirs = expected_tree(KEYS, prefix)
    assert files == want_files
    assert dirs == want_dirs
    for rel in files:
        body = KEYS[prefix + rel]
        assert os.stat(m / rel).st_size == len(body)
        assert sha256_file(m / rel) == sha256(body), rel
    for outside in ["other", "tables.txt", "tablesX", "root-only.txt", "tables", "t1/t1"]:
        assert not os.path.exists(m / outside), outside
