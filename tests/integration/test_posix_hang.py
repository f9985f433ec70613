"""A posix replica whose server is gone must not hang the mount.

The nfs replica's folder is a FUSE passthrough (freezefs.py) that can be
frozen: every request into it then blocks, as on a hard-mounted NFS whose
server has gone away, where open, getxattr, pread and readdir never return
and no timeout reaches into the kernel.  While it is frozen, files are read
concurrently, several readers on the same file among them: each read must
come back within its deadline plus a margin, with the source's bytes, the
replica must show as down, and once the folder thaws it serves again.

Reads run in child processes (hylib.child_call) so a hang fails the test
instead of wedging it; the freeze is lifted and both mounts are taken down
in a finally."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hylib import child_call, child_read, sha256
from lakelib import drop_caches, lake, stamp_posix  # noqa: F401  (a fixture)

pytest.importorskip("fusepy", reason="needs python3-fusepy")

NFILES = 8
SIZE = 256 * 1024
REQUEST_TIMEOUT, OP_TIMEOUT = 1, 4
MOUNT = {"request_timeout": f"{REQUEST_TIMEOUT}s", "op_timeout": f"{OP_TIMEOUT}s",
         "stall_timeout": "1s"}
MARGIN = 3.0
FREEZEFS = Path(__file__).with_name("freezefs.py")

# Read each path on its own thread, all at once; per path: sha256, seconds.
_READ_CONCURRENTLY = r"""
import hashlib, json, sys, threading, time
out = {}
def one(i, p):
    t = time.monotonic()
    try:
        with open(p, "rb") as f:
            r = {"sha256": hashlib.sha256(f.read()).hexdigest()}
    except OSError as e:
        r = {"errno": e.errno}
    r["took"] = round(time.monotonic() - t, 3)
    out[str(i)] = r
ths = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(sys.argv[1:])]
for t in ths: t.start()
for t in ths: t.join()
print(json.dumps(out))
"""

_XATTR = r"""
import json, os, sys
print(json.dumps({"v": os.getxattr(sys.argv[1], "user.hylake." + sys.argv[2]).decode()}))
"""


def _xattr(path, attr):
    res = child_call(_XATTR, path, attr, timeout=OP_TIMEOUT + 10)
    assert "v" in res, f"getxattr {attr} of {path}: {res}"
    return res["v"]


def _start_freezefs(backing, mnt, flag):
    proc = subprocess.Popen([sys.executable, str(FREEZEFS), str(backing), str(mnt),
                             str(flag)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("freezefs did not mount: "
                               + proc.communicate()[1].decode(errors="replace"))
        time.sleep(0.05)
    return proc


def _stop_freezefs(proc, mnt):
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], stderr=subprocess.DEVNULL)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.timeout(120)
def test_frozen_posix_replica_does_not_hang_readers(lake, mounter, ws):
    backing = ws.root / "nfs-backing"
    flag = ws.root / "nfs-frozen"
    names = [f"ph/f{i:02d}" for i in range(NFILES)]
    for n in names:
        lake.put(n, os.urandom(SIZE))
        stamp_posix(backing, n, lake.data[n], lake.gen(n), lake.crc(n))

    fz = _start_freezefs(backing, lake.nfs, flag)
    m = None
    try:
        m = mounter.mount(lake.config(order=("nfs",), mount=MOUNT))
        # the replica serves while its folder answers
        first = child_read(m / names[0], timeout=30)
        assert first.get("sha256") == sha256(lake.data[names[0]]), first
        assert _xattr(m / names[0], "source") == "nfs"

        flag.touch()                    # the NFS server is gone
        # every other file once, and three readers of one file at once
        paths = [m / n for n in names[1:]] + [m / names[1]] * 2
        res = child_call(_READ_CONCURRENTLY, *paths, timeout=60)
        assert not res.get("timed_out"), \
            "readers hung on a frozen posix replica (child killed after 60 s)"
        assert not res.get("crashed"), res
        limit = OP_TIMEOUT + MARGIN
        for i, p in enumerate(paths):
            r = res[str(i)]
            n = str(p.relative_to(m.path))
            assert r.get("sha256") == sha256(lake.data[n]), (n, r)
            assert r["took"] <= limit, (
                f"{n} took {r['took']} s with the replica frozen (limit {limit} s); "
                f"all: {res}")
        assert "nfs=down" in _xattr(m / names[1], "replicas")

        flag.unlink()                   # the server is back
        deadline = time.monotonic() + 40
        k = 0
        while True:
            n = names[2 + k % (NFILES - 2)]
            k += 1
            drop_caches()
            r = child_read(m / n, timeout=30)
            assert r.get("sha256") == sha256(lake.data[n]), (n, r)
            if _xattr(m / n, "source") == "nfs":
                break
            assert time.monotonic() < deadline, \
                "the replica did not come back within 40 s of thawing"
            time.sleep(1)
    finally:
        if flag.exists():
            flag.unlink()
        if m is not None and m.mounted():
            m.unmount()
        _stop_freezefs(fz, lake.nfs)
