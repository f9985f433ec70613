"""Reads are pinned to the version seen at open: old bytes or ESTALE, never a mix."""

import errno
import os

import pytest

from hylib import MiB, sha256, sha256_file

SIZE = 20 * MiB
NOTIMEOUT = "entry_timeout=0,attr_timeout=0,negative_timeout=0"


def read_rest_pinned(fd: int, old: bytes, start: int, chunk: int = MiB, errnos=(errno.ESTALE,)):
    """Read from `start` to the end; every read must be old bytes or fail with
    ESTALE (or one of `errnos`).  Returns (bytes_read_after_start, got_error)."""
    off = start
    while True:
        try:
            b = os.pread(fd, chunk, off)
        except OSError as e:
            assert errnos is None or e.errno in errnos, (
                f"read at {off}: expected {[errno.errorcode[x] for x in errnos]}, got {e!r}")
            return off - start, True
        if not b:
            return off - start, False
        want = old[off:off + len(b)]
        assert b == want, (
            f"read at offset {off} returned {len(b)} bytes that are not the old version's "
            f"(old has {len(old) - off} bytes left; new bytes or a mix)")
        off += len(b)


def check_reopen_sees_new(path, new: bytes):
    st = os.stat(path)
    assert st.st_size == len(new), f"stat after overwrite: size {st.st_size} != {len(new)}"
    assert sha256_file(path) == sha256(new)
    with open(path, "rb") as f:
        assert f.read(4096) == new[:4096]
        f.seek(len(new) - 10)
        assert f.read() == new[-10:]


@pytest.mark.parametrize("new_size", [SIZE, SIZE + 7 * MiB + 3, 9 * MiB - 5],
                         ids=["same-size", "larger", "smaller"])
def test_s3_overwrite_while_open(s3, bucket, ws, mounter, new_size):
    old = os.urandom(SIZE)
    new = os.urandom(new_size)
    s3.put_object(Bucket=bucket, Key="data/blob.bin", Body=old)
    m = mounter.mount(ws.s3_config(bucket), opts=NOTIMEOUT)
    path = m / "data" / "blob.bin"

    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == SIZE
        first = os.pread(fd, MiB, 0)
        assert first == old[:MiB]
        s3.put_object(Bucket=bucket, Key="data/blob.bin", Body=new)

        n, stale = read_rest_pinned(fd, old, MiB)
        # and going back to an offset that was read before the overwrite
        try:
            again = os.pread(fd, 4096, 4096)
            assert again == old[4096:8192], "re-read of an early offset is not the old bytes"
        except OSError as e:
            assert e.errno == errno.ESTALE, repr(e)
        # a read from the middle of a region not read yet
        try:
            mid = os.pread(fd, 100_000, 15 * MiB + 17)
            assert mid == old[15 * MiB + 17:15 * MiB + 17 + len(mid)]
        except OSError as e:
            assert e.errno == errno.ESTALE, repr(e)
    finally:
        os.close(fd)

    check_reopen_sees_new(path, new)


def test_s3_overwrite_seen_by_new_open_after_attr_timeout(s3, bucket, ws, mounter):
    """Default caching (attr/entry timeouts of 1 s): a new open after the
    timeout sees the new version."""
    import time

    old = os.urandom(3 * MiB)
    new = os.urandom(2 * MiB + 11)
    s3.put_object(Bucket=bucket, Key="f.bin", Body=old)
    m = mounter.mount(ws.s3_config(bucket, mount={"attr_timeout": "1s", "entry_timeout": "1s"}))
    assert sha256_file(m / "f.bin") == sha256(old)
    s3.put_object(Bucket=bucket, Key="f.bin", Body=new)
    time.sleep(2.5)
    check_reopen_sees_new(m / "f.bin", new)


def test_s3_delete_while_open(s3, bucket, ws, mounter):
    old = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="gone.bin", Body=old)
    s3.put_object(Bucket=bucket, Key="stays.bin", Body=b"x")
    m = mounter.mount(ws.s3_config(bucket), opts=NOTIMEOUT)
    fd = os.open(m / "gone.bin", os.O_RDONLY)
    try:
        assert os.pread(fd, MiB, 0) == old[:MiB]
        s3.delete_object(Bucket=bucket, Key="gone.bin")
        # deletion is not overwriting: any error is fine, but bytes must be old ones
        read_rest_pinned(fd, old, MiB, errnos=None)
    finally:
        os.close(fd)
    assert not os.path.exists(m / "gone.bin")
    assert os.listdir(m.path) == ["stays.bin"]


def test_new_and_deleted_objects_are_seen(s3, bucket, ws, mounter):
    """negative_timeout defaults to 0: a name that did not exist is looked up
    again; a new listing shows new objects; deleted ones go after the timeouts."""
    import time

    s3.put_object(Bucket=bucket, Key="d/a.txt", Body=b"a")
    m = mounter.mount(ws.s3_config(bucket, mount={"entry_timeout": "1s", "attr_timeout": "1s"}))
    assert os.listdir(m / "d") == ["a.txt"]
    assert not os.path.exists(m / "d" / "b.txt")
    s3.put_object(Bucket=bucket, Key="d/b.txt", Body=b"bb")
    s3.put_object(Bucket=bucket, Key="e/c.txt", Body=b"ccc")
    assert os.stat(m / "d" / "b.txt").st_size == 2
    assert (m / "d" / "b.txt").read_bytes() == b"bb"
    assert sorted(os.listdir(m / "d")) == ["a.txt", "b.txt"]
    assert (m / "e" / "c.txt").read_bytes() == b"ccc"
    s3.delete_object(Bucket=bucket, Key="d/a.txt")
    time.sleep(2.5)
    assert os.listdir(m / "d") == ["b.txt"]
    assert not os.path.exists(m / "d" / "a.txt")


def _multipart_put(s3, bucket, key, data):
    import io

    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_fileobj(io.BytesIO(data), bucket, key, Config=cfg)


@pytest.mark.parametrize("variant", ["multipart", "versioned-bucket"])
def test_s3_overwrite_while_open_variants(s3, bucket, ws, mounter, variant):
    """Multipart objects (ETag "...-N") and versioned buckets are pinned too."""
    old = os.urandom(SIZE)
    new = os.urandom(SIZE - 3 * MiB)
    if variant == "versioned-bucket":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        put = lambda data: s3.put_object(Bucket=bucket, Key="blob.bin", Body=data)  # noqa: E731
    else:
        put = lambda data: _multipart_put(s3, bucket, "blob.bin", data)  # noqa: E731
    put(old)
    m = mounter.mount(ws.s3_config(bucket), opts=NOTIMEOUT)
    path = m / "blob.bin"
    assert os.stat(path).st_size == SIZE
    with open(path, "rb", buffering=0) as f:
        assert f.read(MiB) == old[:MiB]
        put(new)
        read_rest_pinned(f.fileno(), old, MiB)
    check_reopen_sees_new(path, new)
