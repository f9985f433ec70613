"""A posix source mounts a local folder with identical bytes, pinned like S3."""

import errno
import os
import stat

import pytest

from hylib import EROFS, MiB, sha256, sha256_file, walk_tree

NOTIMEOUT = "entry_timeout=0,attr_timeout=0,negative_timeout=0"


def make_tree(root):
    files = {
        "zero.bin": b"",
        "one.bin": os.urandom(1),
        "four-k.bin": os.urandom(4096),
        "big/eight-mib.bin": os.urandom(8 * MiB + 5),
        "nested/a/b/c/deep.txt": b"deep\n",
        "données/été 2024.csv": "année,valeur\n".encode(),
        "with space/a b.txt": b"spaces\n",
    }
    for i in range(300):
        files[f"many/f{i:03d}"] = f"{i}\n".encode()
    for rel, body in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
    (root / "empty-dir").mkdir()
    return files


def test_posix_source_identical(ws, mounter):
    src = ws.path("src")
    src.mkdir()
    files = make_tree(src)
    m = mounter.mount(ws.posix_config(src))
    got_files, got_dirs = walk_tree(m.path)
    want_files, want_dirs = walk_tree(src)
    assert got_files == want_files == set(files)
    assert got_dirs == want_dirs
    for rel, body in files.items():
        st = os.stat(m / rel)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_size == len(body), rel
        assert sha256_file(m / rel) == sha256(body), rel
        assert abs(st.st_mtime - os.stat(src / rel).st_mtime) < 1.01, rel
    assert stat.S_ISDIR(os.stat(m / "empty-dir").st_mode)
    with pytest.raises(OSError) as ei:
        open(m / "zero.bin", "wb")
    assert ei.value.errno == EROFS
    with pytest.raises(OSError) as ei:
        os.mkdir(m / "newdir")
    assert ei.value.errno == EROFS
    assert not (src / "newdir").exists()


@pytest.mark.parametrize("how", ["rewrite-in-place", "replace-by-rename"])
def test_posix_rewrite_while_open(ws, mounter, how):
    src = ws.path("src")
    src.mkdir()
    size = 16 * MiB
    old = os.urandom(size)
    new = os.urandom(size)
    (src / "f.bin").write_bytes(old)
    m = mounter.mount(ws.posix_config(src), opts=NOTIMEOUT)
    fd = os.open(m / "f.bin", os.O_RDONLY)
    try:
        assert os.pread(fd, MiB, 0) == old[:MiB]
        if how == "rewrite-in-place":
            with open(src / "f.bin", "r+b") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
        else:
            tmp = src / ".f.bin.tmp"
            tmp.write_bytes(new)
            os.rename(tmp, src / "f.bin")
        off = MiB
        while True:
            try:
                b = os.pread(fd, MiB, off)
            except OSError as e:
                assert e.errno == errno.ESTALE, f"read at {off}: {e!r}"
                break
            if not b:
                break
            assert b == old[off:off + len(b)], f"read at {off}: not the old bytes (new or mixed)"
            off += len(b)
    finally:
        os.close(fd)
    assert os.stat(m / "f.bin").st_size == size
    assert sha256_file(m / "f.bin") == sha256(new)
    assert ".f.bin.tmp" not in os.listdir(m.path)


def test_posix_inplace_rewrite_keeping_size_and_mtime(ws, mounter):
    """`rsync --inplace -t` rewrites a file in place and sets the old mtime
    back: size and mtime match the old version, only ctime moves.  The new
    bytes are served, within one mount and after a remount whose block cache
    holds the old version's blocks."""
    src = ws.path("src")
    src.mkdir()
    size = 3 * MiB + 7
    old = os.urandom(size)
    new = os.urandom(size)
    f = src / "table.parquet"
    f.write_bytes(old)
    st0 = os.stat(f)
    cache = {"cache_size": "256M"}
    m = mounter.mount(ws.posix_config(src, mount=cache), opts=NOTIMEOUT)
    assert sha256_file(m / "table.parquet") == sha256(old)  # now in the block cache

    def rewrite():
        with open(f, "r+b") as fh:
            fh.write(new)
            fh.flush()
            os.fsync(fh.fileno())
        os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))
        st = os.stat(f)
        assert (st.st_size, st.st_mtime_ns, st.st_ino) == \
            (st0.st_size, st0.st_mtime_ns, st0.st_ino)

    rewrite()
    assert sha256_file(m / "table.parquet") == sha256(new)
    m.unmount()

    # back to the old bytes, cached again, then the rewrite happens while
    # nothing is mounted: only the block cache remembers the old version
    f.write_bytes(old)
    os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))
    m = mounter.mount(ws.posix_config(src, mount=cache), opts=NOTIMEOUT)
    assert sha256_file(m / "table.parquet") == sha256(old)
    m.unmount()
    rewrite()
    m = mounter.mount(ws.posix_config(src, mount=cache), opts=NOTIMEOUT)
    assert sha256_file(m / "table.parquet") == sha256(new)
