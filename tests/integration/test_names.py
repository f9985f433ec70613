"""Object names that cannot be paths are hidden; object+prefix collisions are dirs."""

import os
import stat
from types import SimpleNamespace

import pytest

from hylib import (
    Mounter, Workspace, drop_bucket, expected_tree, list_all, make_bucket, put_many, sha256,
    sha256_file, walk_tree,
)

LONG = "L" * 300  # a segment longer than NAME_MAX (255)

# Safe objects: all of them must be visible.
SAFE = {
    "a/ok.txt": b"a ok\n",
    "x_safe.txt": b"x safe\n",
    "y/keep.txt": b"y keep\n",
    "c/keep.txt": b"c keep\n",
    "long/keep.txt": b"long keep\n",
    "e/keep.txt": b"e keep\n",
    "trailing/keep.txt": b"trailing keep\n",
    "dots/..hidden-looking": b"a name that merely starts with dots is fine\n",
    "dots/.dotfile": b"dotfile\n",
    "dots/...": b"three dots is a valid name\n",
    "max/" + "M" * 255: b"a 255-byte segment is still a valid name\n",
}

# (unsafe key, folder whose listing must not change, names that must not exist anywhere)
UNSAFE = {
    "a//b": ("a", ["a/b", "b"]),
    "./x": ("", ["x"]),
    "../up": ("", ["up"]),
    "y/../z": ("y", ["z", "y/z"]),
    "c/./d": ("c", ["d", "c/d"]),
    "e/..": ("e", []),
    "long/" + LONG: ("long", []),
    "long/" + LONG + "/inner.txt": ("long", ["inner.txt", "long/inner.txt"]),
    "/leading-slash": ("", ["leading-slash"]),
    "trailing//": ("trailing", []),
}


@pytest.fixture(scope="module")
def names(rgw, s3, base_dir):
    bucket = make_bucket(s3, "names")
    put_many(s3, bucket, SAFE)
    for key in UNSAFE:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"unsafe:" + key.encode())
        except Exception:  # radosgw refused the name
            pass
    stored = set(list_all(s3, bucket))
    landed = {k for k in UNSAFE if k in stored}
    # anything radosgw stored under another (normalized) name would be a
    # legitimately visible object: remove it so the expectations stay exact
    strays = stored - set(SAFE) - landed
    for k in strays:
        s3.delete_object(Bucket=bucket, Key=k)
    ws = Workspace(base_dir / "test_names", get_rgw=lambda: rgw)
    mounter = Mounter(ws.root)
    try:
        m = mounter.mount(ws.s3_config(bucket))
        yield SimpleNamespace(mnt=m.path, landed=landed, strays=strays)
    finally:
        problems = mounter.cleanup()
        drop_bucket(s3, rgw, bucket)
    assert not problems, problems


@pytest.mark.parametrize("key", list(UNSAFE), ids=lambda k: k if len(k) < 40 else k[:20] + "...")
def test_unsafe_name_is_hidden(names, key):
    if key not in names.landed:
        pytest.skip(f"radosgw refused or normalized the key {key!r}; nothing to test")
    folder, absent = UNSAFE[key]
    want_files, want_dirs = expected_tree(SAFE)
    in_folder = {p.split("/")[-1] for p in want_files | want_dirs
                 if p.rpartition("/")[0] == folder}
    listing = os.listdir(names.mnt / folder)
    assert sorted(listing) == sorted(in_folder)
    for p in absent:
        assert not os.path.lexists(names.mnt / p), p


def test_whole_tree_is_exactly_the_safe_objects(names):
    files, dirs = walk_tree(names.mnt)
    want_files, want_dirs = expected_tree(SAFE)
    assert files == want_files
    assert dirs == want_dirs
    for k, body in SAFE.items():
        assert sha256_file(names.mnt / k) == sha256(body), k


def test_lookup_of_unsafe_components_fails(names):
    # a lookup can never reach a hidden object through some other spelling
    for p in ["a/b", "x", "z", "c/d", "long/inner.txt", "up", "leading-slash"]:
        assert not os.path.exists(names.mnt / p), p


@pytest.mark.parametrize("order", ["object-first", "prefix-first"])
def test_object_and_prefix_collision_is_a_directory(s3, bucket, ws, mounter, order):
    objs = [("both", b"I am the object\n"), ("both/child", b"child\n")]
    if order == "prefix-first":
        objs.reverse()
    for k, v in objs:
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    # object + zero-byte marker with the same name
    s3.put_object(Bucket=bucket, Key="marker", Body=b"object named like a marker\n")
    s3.put_object(Bucket=bucket, Key="marker/", Body=b"")
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain\n")
    m = mounter.mount(ws.s3_config(bucket))

    assert sorted(os.listdir(m.path)) == ["both", "marker", "plain.txt"]
    assert stat.S_ISDIR(os.stat(m / "both").st_mode)
    assert os.listdir(m / "both") == ["child"]
    assert (m / "both" / "child").read_bytes() == b"child\n"
    assert stat.S_ISDIR(os.stat(m / "marker").st_mode)
    assert os.listdir(m / "marker") == []
    with os.scandir(m.path) as it:
        kinds = {e.name: e.is_dir() for e in it}
    assert kinds == {"both": True, "marker": True, "plain.txt": False}
    with pytest.raises(IsADirectoryError):
        open(m / "both", "rb").close()


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
def test_collision_across_listing_pages(s3, bucket, ws, mounter, page):
    """'x' and 'x/' are one folder even when names sorting between them
    ('x-a', 'x.b' sort before 'x/') and page boundaries separate them."""
    keys = ["both", "both-a", "both.b", "both/child", "both0", "m", "m!", "m/", "m/in",
            "hidden/../h", "ok/..", "ok/fine", "z//z", "zz"]
    put_many(s3, bucket, {k: k.encode() for k in keys})
    m = mounter.mount(ws.s3_config(bucket), opts=f"list_page_size={page}")
    names = os.listdir(m.path)
    required = {"both", "both-a", "both.b", "both0", "m", "m!", "ok", "zz"}
    # 'hidden/' and 'z/' are prefixes made only of hidden names: showing them as
    # empty folders or not at all are both acceptable
    assert required <= set(names) <= required | {"hidden", "z"}, sorted(names)
    assert len(names) == len(set(names)), f"duplicate entries: {sorted(names)}"
    assert stat.S_ISDIR(os.stat(m / "both").st_mode)
    assert stat.S_ISDIR(os.stat(m / "m").st_mode)
    assert os.listdir(m / "both") == ["child"]
    assert os.listdir(m / "m") == ["in"]
    assert os.listdir(m / "ok") == ["fine"]
    for d in {"hidden", "z"} & set(names):
        assert os.listdir(m / d) == [], d
    assert (m / "both-a").read_bytes() == b"both-a"
    with os.scandir(m.path) as it:
        kinds = {e.name: e.is_dir() for e in it}
    assert kinds["both"] and kinds["m"] and not kinds["both-a"] and not kinds["both0"]


SPECIAL = [
    "plus+sign.txt", "100%.txt", "%20literal.txt", "q?.txt", "hash#.txt", "amp&eq=.txt",
    "tilde~.txt", "star*.txt", "paren(1).txt", "colon:x.txt", "comma,semi;.txt",
    "quote'dq\".txt", "back\\slash.txt", "caret^.txt", "[brackets].txt", "{braces}.txt",
    "at@.txt", "dollar$.txt", "excl!.txt", "pipe|.txt", "lt<gt>.txt", "grave`.txt",
    "sp  two spaces .txt", " leading-space.txt", "über.txt", "emoji-😀.txt", "日本語.txt",
    "crème brûlée.txt",
]


@pytest.mark.parametrize("prefix", ["", "dir with + and %/"])
def test_special_characters_in_names(s3, bucket, ws, mounter, prefix):
    """Names that need percent-encoding in URLs (SigV4 canonical URI, list
    prefixes, continuation tokens) work everywhere: listing, lookup, read."""
    items = {f"{prefix}{n}": f"content of {n}".encode() for n in SPECIAL}
    items.update({f"{prefix}sub+dir/{n}": n.encode() for n in SPECIAL[:8]})
    put_many(s3, bucket, items)
    cfg = ws.s3_config(bucket, prefix=prefix or None)
    m = mounter.mount(cfg, opts="list_page_size=5")  # continuation tokens full of specials
    assert sorted(os.listdir(m.path)) == sorted(SPECIAL + ["sub+dir"])
    assert sorted(os.listdir(m / "sub+dir")) == sorted(SPECIAL[:8])
    for k, v in items.items():
        rel = k[len(prefix):]
        assert (m / rel).read_bytes() == v, rel
