"""A replica that swallows requests must not make every file wait.

The preferred replica (S3, behind tests/integration/proxy.py) accepts
connections and then never answers (a site whose packets vanish), or sends
its bodies a few bytes at a time, just above the stall threshold.  Twenty
files of 1 MiB read one after another must cost at most about one operation
timeout more than the same reads through a mount without the replica: the
replica gets a bounded share of each deadline, a timeout is not retried on
it, failed opens count against its health, and readers go on to the source
once it has not answered within its expected latency.

The replica can also be unreachable: its endpoint is an address whose TCP
connect never completes (a listener whose backlog is full and never
accepted, so the kernel drops the SYNs).  Then the cost is one connect
timeout, not one per file.

Reads run in a child process (hylib.child_call) so a hang fails the test."""

import os
import select
import socket

import pytest

from hylib import MiB
from lakelib import lake  # noqa: F401  (a fixture)

NFILES = 20
REQUEST_TIMEOUT, OP_TIMEOUT = 2, 6
MOUNT = {"request_timeout": f"{REQUEST_TIMEOUT}s", "op_timeout": f"{OP_TIMEOUT}s",
         "stall_timeout": "1s"}
MARGIN = 3.0

_READ_ALL = r"""
import hashlib, json, sys, time
out = {"files": [], "errors": []}
t = time.monotonic()
for p in sys.argv[1:]:
    t1 = time.monotonic()
    try:
        with open(p, "rb") as f:
            out["files"].append(hashlib.sha256(f.read()).hexdigest())
    except OSError as e:
        out["errors"].append([p, e.errno])
    out.setdefault("each", []).append(round(time.monotonic() - t1, 3))
out["total"] = time.monotonic() - t
print(json.dumps(out))
"""


def _run(m, names, timeout):
    from hylib import child_call
    res = child_call(_READ_ALL, *[m / n for n in names], timeout=timeout)
    assert not res.get("timed_out"), f"reading {len(names)} files took over {timeout} s"
    assert not res.get("errors"), res
    return res


def _lake_files(lake):
    names = [f"bh/f{i:02d}" for i in range(NFILES)]
    for n in names:
        lake.put(n, os.urandom(1 * MiB))
        lake.to_s3(n)
    return names


def _check(lake, names, res):
    import hashlib
    assert res["files"] == [hashlib.sha256(lake.data[n]).hexdigest() for n in names]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["hang", "trickle"])
def test_swallowing_replica_costs_at_most_one_timeout(lake, mounter, proxy, fault):
    names = _lake_files(lake)
    # without the replica: the source alone
    base = mounter.mount(lake.config(order=(), mount=MOUNT))
    before = _run(base, names, 60)
    _check(lake, names, before)
    base.unmount()

    if fault == "hang":
        proxy.set_fault("hang")
    else:
        # 2 KiB/s: over stall_bytes (1 KiB/s), so never a stall; 1 MiB
        # would take over eight minutes
        proxy.set_fault("trickle", match="GET", rate=2048)
    m = mounter.mount(lake.config(s3_endpoint=proxy.url, order=("s3",), mount=MOUNT))
    res = _run(m, names, 100)
    _check(lake, names, res)
    print(f"{fault}: {res['total']:.2f}s with the replica, {before['total']:.2f}s without")
    limit = before["total"] + OP_TIMEOUT + MARGIN
    assert res["total"] <= limit, (
        f"{NFILES} files took {res['total']:.1f}s with a {fault} replica, "
        f"{before['total']:.1f}s without (limit {limit:.1f}s); per file: {res['each']}")
    assert proxy.injected, "the replica was never asked"


CONNECT_TIMEOUT = 2


@pytest.fixture
def unconnectable():
    """An http:// URL on 127.0.0.1 whose TCP connect never completes.

    A listener with backlog 0 is never accepted from; connections are made
    to it until one stays unanswered, after which the kernel drops every
    further SYN (the accept queue is full) and a connect waits until its
    own timeout.  No root or netfilter needed."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fill = []
    try:
        for _ in range(16):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(ls.getsockname())
            fill.append(c)
            if not select.select([], [c], [], 0.3)[1]:
                break
        else:
            pytest.skip("could not fill the listen backlog")
        host, port = ls.getsockname()
        yield f"http://{host}:{port}"
    finally:
        for c in fill:
            c.close()
        ls.close()


@pytest.mark.timeout(120)
def test_unreachable_replica_costs_at_most_one_connect_timeout(lake, mounter,
                                                                unconnectable):
    names = _lake_files(lake)
    mount = {**MOUNT, "connect_timeout": f"{CONNECT_TIMEOUT}s"}
    base = mounter.mount(lake.config(order=(), mount=mount))
    before = _run(base, names, 60)
    _check(lake, names, before)
    base.unmount()

    # the address really is unreachable: a plain connect times out
    probe = socket.create_connection
    host, port = unconnectable[len("http://"):].rsplit(":", 1)
    with pytest.raises((socket.timeout, TimeoutError)):
        probe((host, int(port)), timeout=0.5).close()

    m = mounter.mount(lake.config(s3_endpoint=unconnectable, order=("s3",),
                                  mount=mount))
    res = _run(m, names, 100)
    _check(lake, names, res)
    print(f"unreachable: {res['total']:.2f}s with the replica, "
          f"{before['total']:.2f}s without; per file: {res['each']}")
    limit = before["total"] + CONNECT_TIMEOUT + MARGIN
    assert res["total"] <= limit, (
        f"{NFILES} files took {res['total']:.1f}s with an unreachable replica, "
        f"{before['total']:.1f}s without (limit {limit:.1f}s); per file: {res['each']}")
