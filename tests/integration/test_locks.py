"""flock() and fcntl() locks on read-write mounts become leases in GCS (issue
14, write leases across hosts): two mounts exclude each other, a dead holder's
lease is taken over after it expires and not before, and the lease objects
stay hylake's own (hidden, never replicated)."""

import errno
import fcntl
import os
import signal
import struct
import subprocess
import sys
import time
from datetime import datetime

import pytest

from hylib import run_hylake, wait_until
from lakelib import lake  # noqa: F401  (a fixture)

LEASE_S = 3
RW = {"writable": "yes", "lease": f"{LEASE_S}s"}

# holds a lock on argv[1] until stdin closes: flock LOCK_EX, or an fcntl
# read lock (the file is open read-only: opened to write, it would be
# replaced at close); across hosts every lock is exclusive
_HOLDER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
if sys.argv[2] == "flock":
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    def __init__(self, path, kind="flock"):
        self.p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), kind],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line == "locked\n", self.p.stderr.read()

    def release(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


def rw_mounts(mounter, ws, bucket, n=2):
    return [mounter.mount(ws.gcs_config(bucket, mount=RW)) for _ in range(n)]


def make_file(m, name="f", data=b"table"):
    (m / name).write_bytes(data)
    return name


def try_flock(path) -> int:
    """flock(LOCK_EX|LOCK_NB) on path and unlock: 0 or the errno."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def getlk(fd):
    """F_GETLK for a write lock of the whole file: (l_type, l_pid)."""
    fmt = "@hhqqi4x"
    buf = struct.pack(fmt, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    out = fcntl.fcntl(fd, fcntl.F_GETLK, buf)
    t, _, _, _, pid = struct.unpack(fmt, out)
    return t, pid


@pytest.mark.timeout(120)
def test_flock_n_on_two_mounts_one_wins(gcs, gcs_bucket, ws, mounter):
    m1, m2 = rw_mounts(mounter, ws, gcs_bucket)
    name = make_file(m1)
    h = Holder(m1 / name)
    # the other host: EWOULDBLOCK, and flock(1) says so too
    assert try_flock(m2 / name) == errno.EWOULDBLOCK
    r = subprocess.run(["flock", "-n", str(m2 / name), "true"], timeout=30)
    assert r.returncode == 1
    # who holds it: the xattr and hylake explain, on either mount
    who = os.getxattr(m2 / name, "user.hylake.lease").decode()
    assert "held by" in who and str(m1.path) in who, who
    assert "(this mount)" in os.getxattr(m1 / name, "user.hylake.lease").decode()
    ex = run_hylake("explain", str(m2 / name))
    assert ex.returncode == 0 and "lease" in ex.stdout and str(m1.path) in ex.stdout, ex
    # the lease is an object in GCS, renewed by metadata updates only
    items, _, _ = gcs.client.list(gcs_bucket, prefix=".hylake/locks/")
    assert list(items) == [".hylake/locks/" + name]
    gen = items[".hylake/locks/" + name]["generation"]
    time.sleep(LEASE_S)
    res = gcs.client.get(gcs_bucket, ".hylake/locks/" + name)
    assert res["generation"] == gen and int(res["metageneration"]) >= 2, res
    # ... but no path shows it
    assert ".hylake" not in os.listdir(m2)
    assert not os.path.exists(m2 / ".hylake")
    assert try_flock(m2 / name) == errno.EWOULDBLOCK
    # unlocked (here: the holder closes), the other host gets it at once
    h.release()
    assert try_flock(m2 / name) == 0
    # the lease goes with the last lock (at the release after close(),
    # which the kernel sends without waiting)
    assert wait_until(lambda: gcs.client.list(gcs_bucket, prefix=".hylake/")[0] == {}, 10), \
        "an unlocked lease is removed"
    assert os.getxattr(m1 / name, "user.hylake.lease") == b"none"


@pytest.mark.timeout(120)
def test_same_mount_processes_keep_flock_and_fcntl_rules(gcs, gcs_bucket, ws, mounter):
    (m,) = rw_mounts(mounter, ws, gcs_bucket, 1)
    name = make_file(m)
    h = Holder(m / name)
    assert try_flock(m / name) == errno.EWOULDBLOCK       # another open file
    # fcntl locks do not see flock locks (Linux), and share the lease
    fd = os.open(m / name, os.O_RDONLY)
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    os.close(fd)                                          # close unlocks
    h.release()
    # shared locks share; an exclusive one waits for them
    a, b = os.open(m / name, os.O_RDONLY), os.open(m / name, os.O_RDONLY)
    fcntl.flock(a, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)
    assert try_flock(m / name) == errno.EWOULDBLOCK
    os.close(a)
    os.close(b)
    assert try_flock(m / name) == 0


@pytest.mark.timeout(120)
def test_fcntl_setlk_and_getlk_across_mounts(gcs, gcs_bucket, ws, mounter):
    m1, m2 = rw_mounts(mounter, ws, gcs_bucket)
    name = make_file(m1)
    fd = os.open(m2 / name, os.O_RDONLY)
    assert getlk(fd)[0] == fcntl.F_UNLCK
    h = Holder(m1 / name, "fcntl")
    # a read lock too: across hosts a lease is exclusive
    with pytest.raises(OSError) as ei:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    assert ei.value.errno in (errno.EAGAIN, errno.EACCES)
    t, pid = getlk(fd)
    assert t == fcntl.F_WRLCK and pid == 0                 # a holder elsewhere
    # on the holder's own mount another process sees the holder's lock
    fd1 = os.open(m1 / name, os.O_RDONLY)
    assert getlk(fd1) == (fcntl.F_RDLCK, h.p.pid)
    os.close(fd1)
    h.release()
    assert getlk(fd)[0] == fcntl.F_UNLCK
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fd1 = os.open(m1 / name, os.O_RDONLY)
    assert getlk(fd1) == (fcntl.F_WRLCK, 0)
    os.close(fd1)
    os.close(fd)


@pytest.mark.timeout(120)
def test_blocking_flock_waits_for_the_unlock(gcs, gcs_bucket, ws, mounter):
    m1, m2 = rw_mounts(mounter, ws, gcs_bucket)
    name = make_file(m1)
    h = Holder(m1 / name)
    t0 = time.monotonic()
    waiter = subprocess.Popen(["flock", str(m2 / name), "true"])
    time.sleep(2)
    assert waiter.poll() is None, "did not wait for the holder"
    h.release()
    assert waiter.wait(timeout=30) == 0
    took = time.monotonic() - t0
    assert 2 <= took < 2 + LEASE_S * 2, took
    # a blocking lock is interrupted by a signal (FUSE INTERRUPT)
    h = Holder(m1 / name)
    waiter = subprocess.Popen(["flock", str(m2 / name), "true"])
    time.sleep(1)
    waiter.send_signal(signal.SIGTERM)
    assert waiter.wait(timeout=10) != 0
    h.release()


@pytest.mark.timeout(180)
def test_killed_holder_lease_taken_after_expiry_not_before(gcs, gcs_bucket, ws, mounter):
    m1, m2 = rw_mounts(mounter, ws, gcs_bucket)
    name = make_file(m1)
    h = Holder(m1 / name)       # keeps holding: its mount daemon dies
    assert try_flock(m2 / name) == errno.EWOULDBLOCK
    time.sleep(LEASE_S / 2)     # renewed meanwhile
    pids = m1.pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert wait_until(lambda: not m1.pids(), 10)
    # the lease's last renewal, by the server's clock (this host's)
    res = gcs.client.get(gcs_bucket, ".hylake/locks/" + name)
    renewed = datetime.fromisoformat(res["updated"].replace("Z", "+00:00")).timestamp()
    while try_flock(m2 / name) == errno.EWOULDBLOCK:
        assert time.monotonic() - t0 < LEASE_S * 5, "never taken over"
        time.sleep(0.1)
    took, since_renewal = time.monotonic() - t0, time.time() - renewed
    print(f"\nlease taken over {took:.2f} s after its holder was killed, "
          f"{since_renewal:.2f} s after its last renewal (lease {LEASE_S} s)")
    assert since_renewal >= LEASE_S, "taken over before the lease expired"
    # renewed every third of the lease, so at most that long before the kill
    assert took >= LEASE_S * 2 / 3 - 0.1, took
    h.p.kill()
    h.p.wait(timeout=10)


@pytest.mark.timeout(240)
def test_lease_objects_are_hidden_and_not_replicated(lake, mounter):  # noqa: F811
    m = mounter.mount(lake.config(mount=RW))
    make_file(m, "t.parquet")
    h = Holder(m / "t.parquet")
    items, _, _ = lake.gcs.client.list(lake.bucket, prefix=".hylake/locks/")
    assert list(items) == [".hylake/locks/t.parquet"]
    assert ".hylake" not in os.listdir(m)
    with pytest.raises(FileNotFoundError):
        os.stat(m / ".hylake")
    for to in ("nfs", "s3"):
        res = lake.replicate(to)
        assert res.returncode == 0, res.stderr
    assert not (lake.nfs / ".hylake/locks").exists()
    assert (lake.nfs / "t.parquet").is_file()
    keys = [o["Key"] for o in lake.s3.list_objects_v2(
        Bucket=lake.s3_bucket).get("Contents", [])]
    assert "t.parquet" in keys and not [k for k in keys if k.startswith(".hylake/locks")]
    h.release()


@pytest.mark.timeout(120)
def test_read_only_mount_keeps_local_locks(gcs, gcs_bucket, ws, mounter):
    (rw,) = rw_mounts(mounter, ws, gcs_bucket, 1)
    make_file(rw)
    ro = mounter.mount(ws.gcs_config(gcs_bucket))
    fd = os.open(ro / "f", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # works, locally
    assert try_flock(ro / "f") == errno.EWOULDBLOCK      # between processes
    assert try_flock(rw / "f") == 0                      # no lease in GCS
    os.close(fd)
