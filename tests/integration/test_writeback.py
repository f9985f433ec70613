"""write_back (issue 14): a writable mount also puts each file it commits on
its own site's replica, stamped with the new generation and crc32c, block
manifest first, exactly as `hylake replicate` would, so the next read there
is local.  Only after GCS has the object; a failed write-back is logged and
counted, never an error to the application."""

import os
import time

import pytest

from hylib import MiB, metric, run_hylake
from lakelib import drop_caches, lake, read_all, xattr  # noqa: F401  (fixture)
from test_writes import close_errno, gcs_bytes, write_fd

WRITABLE = {"writable": "yes", "staging_size": "64M"}


def gcs_meta(lake, name) -> dict:
    return lake.gcs.client.get(lake.bucket, name)


def s3_copy(lake, name):
    """(bytes, user metadata) of the S3 replica's copy."""
    r = lake.s3.get_object(Bucket=lake.s3_bucket, Key=name)
    return r["Body"].read(), r["Metadata"]


def s3_has(lake, key) -> bool:
    try:
        lake.s3.head_object(Bucket=lake.s3_bucket, Key=key)
        return True
    except Exception as e:  # botocore ClientError 404
        assert "404" in str(e) or "Not Found" in str(e), e
        return False


def writer(lake, mounter, replica, *, order=("nfs", "s3"), s3_endpoint=None, **extra):
    cfg = lake.config(order=order, s3_endpoint=s3_endpoint,
                      mount={**WRITABLE, "write_back": replica, **extra})
    m = mounter.mount(cfg)
    os.mkdir(m / "t")
    return m


def reader(lake, mounter, order):
    """A read-only mount with its own version map: it knows nothing the
    writer learned."""
    state = lake.ws.root / f"state-reader-{order[0]}"
    cfg = lake.config(order=order, mount={"state_dir": str(state)})
    return mounter.mount(cfg)


def write_streamed(path, data) -> float:
    """Write data in order (a streamed upload); the seconds close() took."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(fd, data)
    t = time.monotonic()
    assert close_errno(fd) == 0
    return time.monotonic() - t


def check_s3_copy(lake, name, data):
    meta = gcs_meta(lake, name)
    body, user = s3_copy(lake, name)
    assert body == data
    assert user.get("goog-generation") == str(meta["generation"]), user
    assert user.get("goog-crc32c") == meta["crc32c"], user
    assert s3_has(lake, ".hylake/blocks/" + name), "no block manifest beside the copy"


def check_posix_copy(lake, name, data):
    meta = gcs_meta(lake, name)
    p = lake.nfs / name
    assert p.read_bytes() == data
    assert os.getxattr(p, "user.goog-generation").decode() == str(meta["generation"])
    assert (lake.nfs / ".hylake/blocks" / name).exists(), "no block manifest beside the copy"


@pytest.mark.timeout(180)
def test_streamed_file_written_back_to_s3_and_read_there(lake, mounter):
    m = writer(lake, mounter, "s3", order=("s3", "nfs"))
    data = os.urandom(20 * MiB + 12345)       # past the in-memory head: streamed
    write_streamed(m / "t/part-0.parquet", data)
    assert gcs_bytes(lake.gcs, lake.bucket, "t/part-0.parquet") == data
    check_s3_copy(lake, "t/part-0.parquet", data)
    assert not (lake.nfs / "t/part-0.parquet").exists(), "only the write_back replica"
    assert metric(m, "hylake_write_backs_total") == 1
    assert metric(m, "hylake_write_back_failures_total") == 0

    # the writer's next read is local: no GCS bytes
    mark = lake.gcs.control.log_mark()
    drop_caches()
    assert read_all(m / "t/part-0.parquet") == data
    assert xattr(m / "t/part-0.parquet", "source") == "s3"
    assert lake.media_reads(mark) == [], "GCS served bytes the site holds"

    # another mount of the site reads it there, never downloading from GCS
    r = reader(lake, mounter, ("s3",))
    mark = lake.gcs.control.log_mark()
    assert read_all(r / "t/part-0.parquet") == data
    assert xattr(r / "t/part-0.parquet", "source") == "s3"
    assert xattr(r / "t/part-0.parquet", "generation") == str(
        gcs_meta(lake, "t/part-0.parquet")["generation"])
    assert lake.media_reads(mark) == [], "GCS served bytes the site holds"
    st = run_hylake("status", str(m.path))
    assert st.returncode == 0, st.output
    assert "write-back    1 files put on the site" in st.stdout, st.stdout


@pytest.mark.timeout(180)
def test_staged_file_and_overwrite_written_back_to_posix(lake, mounter):
    m = writer(lake, mounter, "nfs")
    # random writes: staged, uploaded at close
    model = bytearray(2 * MiB + 300 * 1024)     # the last byte the writes reach
    with open(m / "t/rand.bin", "w+b") as f:
        for off in (2 * MiB, 5, MiB + 7, 0):
            chunk = os.urandom(300 * 1024)
            f.seek(off)
            f.write(chunk)
            model[off:off + len(chunk)] = chunk
    check_posix_copy(lake, "t/rand.bin", bytes(model))
    gen1 = int(gcs_meta(lake, "t/rand.bin")["generation"])

    # an append to it: a new generation, written back over the old copy
    with open(m / "t/rand.bin", "ab") as f:
        f.write(b"tail")
    model += b"tail"
    assert int(gcs_meta(lake, "t/rand.bin")["generation"]) > gen1
    check_posix_copy(lake, "t/rand.bin", bytes(model))

    # a small streamed file (all of it in the head) too
    write_streamed(m / "t/small.json", b'{"a": 1}\n')
    check_posix_copy(lake, "t/small.json", b'{"a": 1}\n')
    assert metric(m, "hylake_write_backs_total") == 3
    assert metric(m, "hylake_write_back_failures_total") == 0

    r = reader(lake, mounter, ("nfs",))
    mark = lake.gcs.control.log_mark()
    for name, data in (("t/rand.bin", bytes(model)), ("t/small.json", b'{"a": 1}\n')):
        assert read_all(r / name) == data
        assert xattr(r / name, "source") == "nfs"
    assert lake.media_reads(mark) == [], "GCS served bytes the site holds"


@pytest.mark.timeout(180)
def test_write_back_failure_does_not_fail_the_close(lake, mounter):
    # the S3 replica is down (nothing listens there)
    m = writer(lake, mounter, "s3", order=("s3",), s3_endpoint="http://127.0.0.1:9",
               op_timeout="5s")
    data = os.urandom(10 * MiB)
    write_streamed(m / "t/down.bin", data)
    with open(m / "t/down2.bin", "w+b") as f:          # staged
        f.write(b"x" * 1000)
        f.seek(10)
        f.write(b"y")
    assert gcs_bytes(lake.gcs, lake.bucket, "t/down.bin") == data
    assert gcs_bytes(lake.gcs, lake.bucket, "t/down2.bin")[:11] == b"x" * 10 + b"y"
    assert metric(m, "hylake_write_back_failures_total") == 2
    assert metric(m, "hylake_write_backs_total") == 0
    assert read_all(m / "t/down.bin") == data
    assert xattr(m / "t/down.bin", "source") == "source"


@pytest.mark.timeout(120)
def test_no_room_for_the_local_copy_skips_write_back(lake, mounter):
    m = writer(lake, mounter, "s3", order=("s3",), staging_size="4M")
    data = os.urandom(12 * MiB)                 # more than staging_size
    write_streamed(m / "t/big.bin", data)
    assert gcs_bytes(lake.gcs, lake.bucket, "t/big.bin") == data
    assert not s3_has(lake, "t/big.bin")
    assert metric(m, "hylake_write_back_failures_total") == 1
    # the room the copy took is given back: a staged file still fits
    with open(m / "t/after.bin", "w+b") as f:
        f.write(os.urandom(3 * MiB))
    assert s3_has(lake, "t/after.bin")


@pytest.mark.parametrize("value,says", [
    ("nosuch", "no [replica nosuch] in this file"),
])
def test_write_back_must_name_a_replica(lake, value, says):
    cfg = lake.config(mount={**WRITABLE, "write_back": value})
    r = run_hylake("check", cfg)
    assert r.returncode == 2, r
    assert says in r.output, r.output
