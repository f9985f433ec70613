"""A tree uploaded to a fresh bucket shows up exactly, byte for byte, read-only."""

import errno
import os
import random
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from hylib import (
    MiB, Mounter, Workspace, drop_bucket, expected_tree, list_all, make_bucket, put_many, sha256,
    sha256_file, walk_tree,
)

MANY = 2500


def build_tree() -> dict:
    t = {
        "zero.bin": b"",
        "one.bin": os.urandom(1),
        "four-k.bin": os.urandom(4096),
        "big/twenty-mib.bin": os.urandom(20 * MiB),
        "nested/top.txt": b"top\n",
        "nested/a/sibling.txt": b"sibling\n",
        "nested/a/b/c/deep.txt": b"deep\n",
        "données/été 2024.csv": "année,valeur\n2024,été\n".encode(),
        "with space/file with space.txt": b"spaces\n",
        "日本/データ.bin": os.urandom(777),
        "empty-dir/": b"",
        "marked/": b"",
        "marked/inside.txt": b"inside a folder that also has a marker\n",
    }
    for n in [65536, 131072, MiB - 1, MiB, MiB + 1, 4 * MiB - 1, 4 * MiB, 8 * MiB + 1]:
        t[f"sizes/{n}.bin"] = os.urandom(n)
    for i in range(MANY):
        t[f"many/f{i:04d}.txt"] = f"file {i}\n".encode()
    return t


@pytest.fixture(scope="module")
def tree(rgw, s3, base_dir):
    data = build_tree()
    name = make_bucket(s3, "tree")
    put_many(s3, name, data)
    listing = list_all(s3, name)
    assert set(listing) == set(data), "radosgw did not store the tree as uploaded"
    ws = Workspace(base_dir / "test_tree", get_rgw=lambda: rgw)
    mounter = Mounter(ws.root)
    try:
        m = mounter.mount(ws.s3_config(name))
        yield SimpleNamespace(mnt=m.path, data=data, listing=listing, bucket=name)
    finally:
        problems = mounter.cleanup()
        drop_bucket(s3, rgw, name)
    assert not problems, problems


def files_of(data):
    return {k: v for k, v in data.items() if not k.endswith("/")}


def test_every_file_has_exact_size_and_sha256(tree):
    bad = []
    for key, body in files_of(tree.data).items():
        p = tree.mnt / key
        st = os.stat(p)
        if st.st_size != len(body):
            bad.append(f"{key}: size {st.st_size} != {len(body)}")
            continue
        if sha256_file(p) != sha256(body):
            bad.append(f"{key}: sha256 differs")
    assert not bad, "\n".join(bad[:20])


def test_walk_shows_exactly_the_uploaded_names(tree):
    files, dirs = walk_tree(tree.mnt)
    want_files, want_dirs = expected_tree(tree.data)
    assert files == want_files, (sorted(files ^ want_files)[:20])
    assert dirs == want_dirs, (sorted(dirs ^ want_dirs)[:20])
    assert set(os.listdir(tree.mnt)) == {k.split("/")[0] for k in tree.data}


def test_ls_lR_runs(tree):
    r = subprocess.run(["ls", "-lR", str(tree.mnt)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stderr == b""
    out = r.stdout.decode()
    assert "été 2024.csv" in out and "f2499.txt" in out and "twenty-mib.bin" in out
    assert "?" not in [line[:1] for line in out.splitlines()], "ls shows an unstat-able entry"


def test_folder_with_2500_entries_lists_exactly(tree):
    names = os.listdir(tree.mnt / "many")
    assert len(names) == MANY
    assert set(names) == {f"f{i:04d}.txt" for i in range(MANY)}
    with os.scandir(tree.mnt / "many") as it:
        entries = list(it)
    assert len(entries) == MANY
    assert all(e.is_file() for e in entries)


def test_mtime_is_last_modified(tree):
    keys = [k for k in files_of(tree.data) if not k.startswith("many/")]
    keys += random.sample([k for k in tree.data if k.startswith("many/")], 50)
    bad = []
    for k in keys:
        lm = tree.listing[k]["LastModified"].timestamp()
        mt = os.stat(tree.mnt / k).st_mtime
        if abs(mt - lm) > 3:
            bad.append(f"{k}: mtime {mt} vs LastModified {lm}")
    assert not bad, "\n".join(bad)


def test_folders_are_directories_files_are_regular(tree):
    _, want_dirs = expected_tree(tree.data)
    for d in want_dirs:
        assert stat.S_ISDIR(os.stat(tree.mnt / d).st_mode), d
    for k in ["zero.bin", "one.bin", "big/twenty-mib.bin", "données/été 2024.csv"]:
        assert stat.S_ISREG(os.stat(tree.mnt / k).st_mode), k
    assert os.listdir(tree.mnt / "empty-dir") == []
    assert sorted(os.listdir(tree.mnt / "marked")) == ["inside.txt"]
    assert stat.S_ISDIR(os.stat(tree.mnt).st_mode)


def test_missing_names_are_enoent(tree):
    for p in ["nope", "nested/nope", "many/f2500.txt", "empty-dir/x", "zero.bin/x",
              "nested/to", "nested/top.tx", "nested/top.txt2", "Zero.bin", "big/twenty",
              "donnée", "many/f000", "nested/a/b/c/deep.txt/"]:
        with pytest.raises(OSError) as ei:
            os.stat(os.path.join(tree.mnt, p))  # (a Path would drop the trailing slash)
            pytest.fail(f"{p} exists")
        assert ei.value.errno in (errno.ENOENT, errno.ENOTDIR), (p, ei.value)


def test_random_access_reads(tree):
    body = tree.data["big/twenty-mib.bin"]
    size = len(body)
    rnd = random.Random(7)
    offsets = [0, 1, 4095, 4096, MiB - 1, MiB, 8 * MiB + 123, size - 1, size - 10]
    offsets += [rnd.randrange(size) for _ in range(40)]
    fd = os.open(tree.mnt / "big/twenty-mib.bin", os.O_RDONLY)
    try:
        for off in offsets:
            n = rnd.choice([1, 100, 4096, 65536, 3 * MiB])
            got = os.pread(fd, n, off)
            assert got == body[off:off + n], f"pread({n}, {off})"
        assert os.pread(fd, 100, size) == b""
        assert os.pread(fd, 100, size + 12345) == b""
    finally:
        os.close(fd)


def _expect_erofs(fn, *args):
    with pytest.raises(OSError) as ei:
        fn(*args)
    assert ei.value.errno == errno.EROFS, f"{fn.__name__}{args}: {ei.value!r}"


def test_mount_is_read_only(tree):
    m: Path = tree.mnt
    _expect_erofs(os.open, m / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    _expect_erofs(os.open, m / "one.bin", os.O_WRONLY)
    _expect_erofs(os.open, m / "one.bin", os.O_RDWR)
    _expect_erofs(os.open, m / "one.bin", os.O_WRONLY | os.O_APPEND)
    _expect_erofs(os.open, m / "nested" / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    _expect_erofs(os.mkdir, m / "newdir")
    _expect_erofs(os.mkdir, m / "nested" / "newdir")
    _expect_erofs(os.unlink, m / "one.bin")
    _expect_erofs(os.rmdir, m / "empty-dir")
    _expect_erofs(os.rename, m / "one.bin", m / "uno.bin")
    _expect_erofs(os.truncate, m / "one.bin", 0)
    _expect_erofs(os.symlink, "one.bin", m / "link")
    # nothing changed
    assert os.stat(m / "one.bin").st_size == 1
    assert "new.txt" not in os.listdir(m) and "newdir" not in os.listdir(m)


def test_parallel_reads_of_one_file(tree):
    from concurrent.futures import ThreadPoolExecutor

    body = tree.data["big/twenty-mib.bin"]
    path = tree.mnt / "big/twenty-mib.bin"

    def worker(seed):
        rnd = random.Random(seed)
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(20):
                off = rnd.randrange(len(body))
                n = rnd.choice([4096, 100_000, MiB])
                if os.pread(fd, n, off) != body[off:off + n]:
                    return f"pread({n}, {off}) in worker {seed}"
        finally:
            os.close(fd)
        return None

    with ThreadPoolExecutor(8) as ex:
        errors = [e for e in ex.map(worker, range(8)) if e]
    assert not errors, errors


def test_mmap_read(tree):
    import mmap

    body = tree.data["big/twenty-mib.bin"]
    with open(tree.mnt / "big/twenty-mib.bin", "rb") as f:
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
            assert len(mm) == len(body)
            assert mm[:4096] == body[:4096]
            assert mm[-5000:] == body[-5000:]
            assert sha256(mm[:]) == sha256(body)


def test_telldir_seekdir_rewinddir(tree):
    """The directory stream is replayable: seekdir back to a telldir cookie
    and rewinddir give the same entries again."""
    import ctypes

    class Dirent(ctypes.Structure):
        _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                    ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                    ("d_name", ctypes.c_char * 256)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.rewinddir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]

    d = libc.opendir(os.fsencode(tree.mnt / "many"))
    assert d, ctypes.get_errno()

    def nxt():
        ctypes.set_errno(0)
        p = libc.readdir(d)
        if not p:
            assert ctypes.get_errno() == 0, os.strerror(ctypes.get_errno())
            return None
        return p.contents.d_name.decode()

    try:
        first = [nxt() for _ in range(60)]
        cookie = libc.telldir(d)
        after = [nxt() for _ in range(1500)]  # well past the first listing page
        libc.seekdir(d, cookie)
        assert [nxt() for _ in range(20)] == after[:20], "seekdir back did not replay"
        libc.rewinddir(d)
        assert [nxt() for _ in range(60)] == first, "rewinddir did not restart"
        rest = []
        while (n := nxt()) is not None:
            rest.append(n)
        names = [n for n in first + rest if n not in (".", "..")]
        assert len(names) == MANY and set(names) == {f"f{i:04d}.txt" for i in range(MANY)}
    finally:
        libc.closedir(d)


def test_listing_a_file_is_enotdir(tree):
    with pytest.raises(NotADirectoryError):
        os.listdir(tree.mnt / "one.bin")


def test_inode_numbers_unique_and_stable_blocks_set(tree):
    """du, tar, rsync -H and find rely on distinct inode numbers; sparse-file
    heuristics (tar --sparse, cp) rely on st_blocks covering the size."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(tree.mnt):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            assert st.st_ino not in seen, f"{p} and {seen[st.st_ino]} share inode {st.st_ino}"
            seen[st.st_ino] = p
            if stat.S_ISREG(st.st_mode):
                assert st.st_blocks * 512 >= st.st_size, (p, st.st_blocks, st.st_size)
    for p in ["one.bin", "nested/a/b/c/deep.txt", "nested/a", "many/f1234.txt"]:
        assert os.stat(tree.mnt / p).st_ino == os.stat(tree.mnt / p).st_ino
        assert seen[os.stat(tree.mnt / p).st_ino] == str(tree.mnt / p)
