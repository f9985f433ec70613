"""`hylake replicate`, the reference replicator: GCS (the test server) as the
source, a posix folder and an S3 bucket (radosgw) as the replicas it writes.
Each test checks what landed on the replica (bytes and stamp), what the
summary says, and that a mount then serves the copies."""

import os
import re
import time

from hylib import MiB
from lakelib import drop_caches, lake, read_all, stamp_s3, xattr  # noqa: F401  (lake: a fixture)
from proxy import FaultProxy


def summary(res):
    """The counts of the summary line, as a dict."""
    line = res.stdout.strip().splitlines()[-1]
    counts = {k: int(v) for v, k in re.findall(
        r"(\d+) (checked|copied|to copy|current|newer|skipped|failed)", line)}
    return counts


def s3_stamp(lake, name):
    h = lake.s3.head_object(Bucket=lake.s3_bucket, Key=name)
    return h["Metadata"].get("goog-generation"), h["Metadata"].get("goog-crc32c")


def s3_bytes(lake, name):
    return lake.s3.get_object(Bucket=lake.s3_bucket, Key=name)["Body"].read()


def test_copies_what_lacks_stamped_and_checked(lake):
    names = ["d/a", "d/sub/b", "d/empty", "e/c"]
    for n in names:
        lake.put(n, b"" if n == "d/empty" else os.urandom(300 * 1024 + len(n)))
    for to in ("s3", "nfs"):
        res = lake.replicate(to)
        assert res.returncode == 0, res.stderr
        c = summary(res)
        assert c["checked"] == 4 and c["copied"] == 4 and c["failed"] == 0, res.stdout
    for n in names:
        assert s3_bytes(lake, n) == lake.data[n]
        assert s3_stamp(lake, n) == (str(lake.gen(n)), lake.crc(n))
        p = lake.nfs / n
        assert p.read_bytes() == lake.data[n]
        assert os.getxattr(p, "user.goog-generation").decode() == str(lake.gen(n))
        assert os.getxattr(p, "user.goog-crc32c").decode() == lake.crc(n)
    # no temp files left beside the copies
    assert not [p for p in lake.nfs.rglob("*") if ".hylake-" in p.name]
    # a second run finds everything current and sends nothing
    mark = lake.gcs.control.log_mark()
    res = lake.replicate("s3")
    c = summary(res)
    assert res.returncode == 0 and c["current"] == 4 and c["copied"] == 0, res.stdout
    assert lake.media_reads(mark) == [], "a current replica made the replicator download"


def test_only_changed_objects_are_copied_again(lake, mounter):
    for n in ("p/x", "p/y", "q/z"):
        lake.put(n)
    assert lake.replicate("s3").returncode == 0
    old_gen = lake.gen("p/x")
    lake.put("p/x")                          # GCS moves on: the replica lags
    # --dry-run says so and copies nothing
    res = lake.replicate("s3", "--dry-run")
    assert res.returncode == 0 and summary(res)["to copy"] == 1, res.stdout
    assert "would copy p/x" in res.stderr and "older generation" in res.stderr
    assert s3_stamp(lake, "p/x")[0] == str(old_gen)
    # --prefix limits the walk
    res = lake.replicate("s3", "--prefix", "q/")
    assert summary(res)["checked"] == 1 and summary(res)["copied"] == 0, res.stdout
    res = lake.replicate("s3", "--prefix", "p/", "--jobs", "2")
    c = summary(res)
    assert res.returncode == 0 and c["copied"] == 1 and c["current"] == 1, res.stdout
    assert s3_stamp(lake, "p/x") == (str(lake.gen("p/x")), lake.crc("p/x"))
    assert s3_bytes(lake, "p/x") == lake.data["p/x"]


def test_unproven_and_wrongly_stamped_copies_are_replaced(lake):
    lake.put("w/stamp")
    lake.put("w/plain")
    lake.put("w/good")
    # stamped with the right generation, but its stamped crc32c disagrees
    stamp_s3(lake.s3, lake.s3_bucket, "w/stamp", os.urandom(1 * MiB),
             lake.gen("w/stamp"), "AAAAAA==")
    lake.to_s3("w/plain", data=os.urandom(1 * MiB), stamped=False)            # MD5 differs
    lake.to_s3("w/good", stamped=False)       # unstamped, but its MD5 proves it
    res = lake.replicate("s3")
    c = summary(res)
    assert res.returncode == 0 and c["copied"] == 2 and c["current"] == 1, res.stdout
    for n in ("w/stamp", "w/plain"):
        assert s3_bytes(lake, n) == lake.data[n]
        assert s3_stamp(lake, n)[0] == str(lake.gen(n))


def test_bytes_that_fail_the_crc32c_are_never_stamped(lake):
    lake.put("c/ok", os.urandom(64 * 1024))
    lake.put("c/bad", os.urandom(64 * 1024))
    with FaultProxy(lake.gcs.url) as p:
        p.set_fault("corrupt", match=lambda r: r.params.get("alt") == "media"
                    and r.path.endswith("/c/bad"))
        res = lake.replicate("s3", cfg=lake.config(source_endpoint=p.url))
        assert p.injected, "the corrupting fault never fired"
    c = summary(res)
    assert res.returncode == 1, res.stdout
    assert c["copied"] == 1 and c["failed"] == 1, res.stdout
    assert "c/bad" in res.stderr and "crc32c" in res.stderr
    assert s3_bytes(lake, "c/ok") == lake.data["c/ok"]
    import botocore.exceptions
    try:
        lake.s3.head_object(Bucket=lake.s3_bucket, Key="c/bad")
        raise AssertionError("a copy that failed its crc32c was written")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchKey")


def test_mount_serves_from_the_replica_once_it_catches_up(lake, mounter):
    lake.put("t/o")
    assert lake.replicate("nfs").returncode == 0
    m = mounter.mount(lake.config(mount={"replica_recheck": "1s"}),
                      opts="entry_timeout=0,attr_timeout=0")
    assert read_all(m / "t/o") == lake.data["t/o"]
    assert xattr(m / "t/o", "source") == "nfs"
    lake.put("t/o", os.urandom(2 * MiB))      # overwritten after replication
    mark = lake.gcs.control.log_mark()
    assert read_all(m / "t/o") == lake.data["t/o"], "strict mode served the stale copy"
    assert xattr(m / "t/o", "source") == "source"
    assert lake.media_reads(mark, "t/o")
    res = lake.replicate("nfs")
    assert res.returncode == 0 and summary(res)["copied"] == 1, res.stdout
    time.sleep(1.2)                           # replica_recheck: ask it again
    drop_caches()                             # the kernel's pages would answer
    mark = lake.gcs.control.log_mark()
    assert read_all(m / "t/o") == lake.data["t/o"]
    assert xattr(m / "t/o", "source") == "nfs"
    assert lake.media_reads(mark, "t/o") == []


def test_bad_invocations_say_what_is_wrong(lake, ws):
    cfg = lake.config()
    res = lake.replicate("nowhere")
    assert res.returncode == 2 and "no [replica nowhere]" in res.stderr
    assert "nfs" in res.stderr and "s3" in res.stderr
    from hylib import run_hylake
    res = run_hylake("replicate", cfg)
    assert res.returncode == 2 and "usage" in res.stderr
    res = run_hylake("replicate", cfg, "--to", "s3", "--jobs", "0")
    assert res.returncode == 2 and "--jobs" in res.stderr
    res = run_hylake("replicate", cfg, "--to", "s3", "--prefix", "/abs")
    assert res.returncode == 2 and "prefix" in res.stderr
    # a replica that does not answer: a clear message, no hang
    bad = lake.config(s3_endpoint="http://127.0.0.1:1")
    res = run_hylake("replicate", bad, "--to", "s3", timeout=60)
    assert res.returncode == 1 and "replica s3" in res.stderr, res.stderr
