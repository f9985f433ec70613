"""Never hang, retry transient faults, never return wrong bytes.

Every read of the mount here runs in a child process (hylib.child_read), so a
hung FUSE request fails the test instead of wedging the test runner."""

import os
import subprocess
import time

import pytest

from hylib import (
    PYTHON, MiB, child_call, child_read, is_mounted, processes_for, run_hylake, sha256,
)

SHORT = "request_timeout=2s,op_timeout=5s,retries=1"
CACHED = "entry_timeout=60,attr_timeout=60"
_HASH = "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())"


@pytest.fixture
def blob(s3, bucket):
    body = os.urandom(5 * MiB + 123)
    s3.put_object(Bucket=bucket, Key="dir/blob.bin", Body=body)
    s3.put_object(Bucket=bucket, Key="dir/other.bin", Body=os.urandom(1000))
    return body


def mount_via(proxy, ws, mounter, bucket, opts, **mount_keys):
    cfg = ws.s3_config(bucket, endpoint=proxy.url, mount=mount_keys or None)
    return mounter.mount(cfg, opts=opts)


def test_hanging_store_read_errors_in_time(s3, bucket, blob, proxy, ws, mounter):
    m = mount_via(proxy, ws, mounter, bucket, f"{SHORT},{CACHED}")
    os.stat(m / "dir" / "blob.bin")  # lookup done; the read itself must hit the store
    proxy.set_fault("hang")
    res = child_read(m / "dir" / "blob.bin", timeout=60)
    assert not res.get("timed_out"), "read of a file on a hanging store hung for 60 s"
    assert not res["ok"], f"read on a hanging store returned data: {res}"
    assert res["elapsed"] <= 15, f"read took {res['elapsed']:.1f}s to fail (limit ~15 s)"
    assert proxy.injected, "no request reached the store"

    # the mount recovers once the store answers again
    proxy.clear_faults()
    res = child_read(m / "dir" / "blob.bin", timeout=60)
    assert res["ok"] and res["sha256"] == sha256(blob), res


def test_hanging_store_lookup_errors_in_time(s3, bucket, blob, proxy, ws, mounter):
    # timeouts given in the config file this time
    m = mount_via(proxy, ws, mounter, bucket, None, request_timeout="2s", op_timeout="5s",
                  retries="1")
    proxy.set_fault("hang")
    code = r"""
import json, os, sys, time
t = time.monotonic(); out = {}
for name in ("stat", "listdir"):
    t1 = time.monotonic()
    try:
        (os.stat if name == "stat" else os.listdir)(sys.argv[1] if name == "stat" else sys.argv[2])
        out[name] = "ok"
    except OSError as e:
        out[name] = e.errno
    out[name + "_s"] = time.monotonic() - t1
print(json.dumps(out))
"""
    res = child_call(code, m / "dir" / "other.bin", m / "dir", timeout=90)
    assert not res.get("timed_out"), "stat/listdir on a hanging store hung for 90 s"
    assert res["stat"] != "ok" and res["listdir"] != "ok", res
    assert res["stat_s"] <= 15 and res["listdir_s"] <= 15, res


@pytest.mark.parametrize("fault,params", [
    ("reset", {}),
    ("status", {"status": 503}),
    ("status", {"status": 500}),
    ("truncate", {"after_bytes": 0}),
], ids=["reset", "503", "500", "headers-only"])
def test_first_two_gets_fail_then_read_is_correct(s3, bucket, blob, proxy, ws, mounter,
                                                  fault, params):
    m = mount_via(proxy, ws, mounter, bucket, CACHED, retries="3")
    os.stat(m / "dir" / "blob.bin")
    f = proxy.set_fault(fault, match="GET", count=2, **params)
    res = child_read(m / "dir" / "blob.bin", timeout=90)
    assert f.fired == 2, f"the fault was injected {f.fired} times (expected 2)"
    assert res["ok"], f"read failed although retries=3 covers 2 faults: {res}"
    assert res["size"] == len(blob) and res["sha256"] == sha256(blob)


@pytest.mark.parametrize("match", ["LIST", "HEAD"])
def test_metadata_requests_are_retried(s3, bucket, blob, proxy, ws, mounter, match):
    m = mount_via(proxy, ws, mounter, bucket, "entry_timeout=0,attr_timeout=0", retries="3")
    f = proxy.set_fault("status", match=match, count=2, status=503)
    res = child_call(r"""
import hashlib, json, os, sys
d = sys.argv[1]
try:
    names = sorted(os.listdir(d)); size = os.stat(os.path.join(d, "blob.bin")).st_size
    with open(os.path.join(d, "blob.bin"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(json.dumps({"names": names, "size": size, "sha256": digest}))
except OSError as e:
    print(json.dumps({"errno": e.errno}))
""", m / "dir", timeout=90)
    if f.fired == 0:
        pytest.skip(f"hylake made no {match} request for listdir + stat + open + read")
    assert res.get("names") == ["blob.bin", "other.bin"], res
    assert res.get("size") == len(blob), res
    assert res.get("sha256") == sha256(blob), res


@pytest.mark.parametrize("fault", ["truncate", "reset-mid-body", "stall"])
def test_broken_body_is_never_returned(s3, bucket, blob, proxy, ws, mounter, fault):
    m = mount_via(proxy, ws, mounter, bucket, CACHED, retries="3", stall_timeout="2s",
                  request_timeout="10s")
    os.stat(m / "dir" / "blob.bin")
    kind = {"reset-mid-body": "reset"}.get(fault, fault)
    f = proxy.set_fault(kind, match="GET", count=1, after_bytes=100_000)
    res = child_read(m / "dir" / "blob.bin", timeout=90)
    assert not res.get("timed_out"), f"read hung after a {fault}"
    assert f.fired == 1
    if res["ok"]:
        assert res["size"] == len(blob) and res["sha256"] == sha256(blob), \
            f"read after a {fault} returned wrong bytes"
    else:
        assert res.get("errno"), res
    assert res["elapsed"] < 30, res


def test_unmount_with_a_hung_request_leaves_no_process(s3, bucket, blob, proxy, ws, mounter):
    m = mount_via(proxy, ws, mounter, bucket, f"{SHORT},{CACHED}")
    os.stat(m / "dir" / "blob.bin")
    proxy.set_fault("hang")
    reader = subprocess.Popen([PYTHON, "-c", "import sys; open(sys.argv[1],'rb').read()",
                               str(m / "dir" / "blob.bin")], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    reader.kill()
    reader.wait(timeout=30)
    m.unmount(timeout=20)  # asserts that the daemon is gone


def test_check_and_mount_against_a_hanging_store_give_up(bucket, proxy, ws):
    proxy.set_fault("hang")
    cfg = ws.s3_config(bucket, endpoint=proxy.url,
                       mount={"request_timeout": "2s", "op_timeout": "5s", "retries": "1"})
    t = time.monotonic()
    r = run_hylake("check", cfg, timeout=60)
    took = time.monotonic() - t
    assert r.returncode == 1, r
    assert took < 20, f"check took {took:.1f}s against a hanging store"
    mnt = ws.path("mnt")
    mnt.mkdir()
    t = time.monotonic()
    r = run_hylake("mount", cfg, mnt, timeout=60)
    took = time.monotonic() - t
    assert r.returncode != 0, r
    assert took < 20, f"mount took {took:.1f}s to give up on a hanging store"
    assert not is_mounted(mnt)
    assert not processes_for(mnt)


def test_one_thread_serves_concurrent_readers(s3, bucket, proxy, ws, mounter):
    bodies = {f"p/f{i}.bin": os.urandom(2 * MiB + i) for i in range(6)}
    for k, v in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    m = mount_via(proxy, ws, mounter, bucket, None, threads="1")
    procs = [(k, subprocess.Popen([PYTHON, "-c", _HASH, str(m / k)], stdout=subprocess.PIPE))
             for k in bodies]
    procs.append(("listing", subprocess.Popen(
        [PYTHON, "-c", "import os,sys; print(len(os.listdir(sys.argv[1])))", str(m / "p")],
        stdout=subprocess.PIPE)))
    out = {}
    try:
        for k, p in procs:
            out[k] = p.communicate(timeout=60)[0].decode().strip()
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for k, v in bodies.items():
        assert out[k] == sha256(v), k
    assert out["listing"] == "6"


_STORM_READS = r"""
import json, os, sys, time
n = int(sys.argv[2]); out = {"errnos": [], "each": []}
fd = os.open(sys.argv[1], os.O_RDONLY)
for i in range(n):
    t = time.monotonic()
    try:
        os.pread(fd, 4096, (i % 5) * 1048576)
        out["errnos"].append(0)
    except OSError as e:
        out["errnos"].append(e.errno)
    out["each"].append(round(time.monotonic() - t, 3))
print(json.dumps(out))
"""


def test_throttling_storm_is_eio_within_the_retry_budget(s3, bucket, blob, proxy, ws, mounter):
    """A sustained 503 storm: every read fails with EIO (not EAGAIN) within
    its deadline, the retries stay within the store's budget instead of
    multiplying the storm by 1 + retries, and reads work once it ends."""
    nreads, retries = 40, 3
    # no read-ahead: one call per read, so requests - reads = retries
    m = mount_via(proxy, ws, mounter, bucket, CACHED, retries=str(retries),
                  request_timeout="2s", op_timeout="5s", read_ahead="0")
    os.stat(m / "dir" / "blob.bin")
    proxy.reset_counts()
    proxy.set_fault("status", match="GET", status=503)
    res = child_call(_STORM_READS, m / "dir" / "blob.bin", nreads, timeout=150)
    assert not res.get("timed_out"), res
    assert set(res["errnos"]) == {5}, f"reads in a 503 storm: {res['errnos']}"
    assert max(res["each"]) <= 5 + 1, f"a read outlived its deadline: {res['each']}"
    gets = proxy.counts["GET"]
    # without a budget: nreads * (1 + retries) = 160 requests; with one,
    # the calls plus a tenth of them, a burst of 10 and one a second (with
    # room for the engine's other calls)
    assert gets >= nreads, proxy.counts
    assert gets <= nreads * 1.5 + 10 + 1 * res["wall"], \
        f"{gets} GETs for {nreads} reads in a storm (retries={retries})"

    # a Retry-After past the deadline: no retry at all, and no waiting
    proxy.clear_faults()
    proxy.reset_counts()
    proxy.set_fault("status", match="GET", status=503, retry_after="60")
    res = child_call(_STORM_READS, m / "dir" / "blob.bin", 5, timeout=60)
    assert set(res["errnos"]) == {5}, res
    assert max(res["each"]) < 2, f"waited on a Retry-After past the deadline: {res}"
    assert proxy.counts["GET"] <= 5 * 2, proxy.counts

    # the storm ends: reads work again
    proxy.clear_faults()
    r = child_read(m / "dir" / "blob.bin", timeout=60)
    assert r["ok"] and r["sha256"] == sha256(blob), r


def test_retry_after_is_honoured(s3, bucket, blob, proxy, ws, mounter):
    m = mount_via(proxy, ws, mounter, bucket, CACHED, retries="3", op_timeout="10s")
    os.stat(m / "dir" / "blob.bin")
    proxy.set_fault("status", match="GET", status=503, retry_after="2", count=1)
    r = child_read(m / "dir" / "blob.bin", timeout=60)
    assert r["ok"] and r["sha256"] == sha256(blob), r
    assert r["elapsed"] >= 1.9, f"the retry did not wait for Retry-After: {r}"
