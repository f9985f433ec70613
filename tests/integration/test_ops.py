"""Operating a mount, beyond status: logging to syslog when daemonized (the
suite listens on /dev/log itself: this machine has no syslog daemon), and
`hylake warm` filling the block cache."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from hylib import MiB, run_hylake, sha256
from lakelib import drop_caches, lake, read_all  # noqa: F401  (lake: a fixture)

DEVLOG = "/dev/log"


class SyslogListener:
    """A datagram socket on /dev/log that keeps every message it gets."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(DEVLOG)
        self.sock.settimeout(0.2)
        self.lines = []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace"))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.th.join(5)
        self.sock.close()
        os.unlink(DEVLOG)

    def wait_for(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [ln for ln in list(self.lines) if rx.search(ln)]
            if hits:
                return hits
            time.sleep(0.05)
        return []


@pytest.fixture
def syslog():
    if os.path.exists(DEVLOG):
        pytest.skip("/dev/log exists here (a syslog daemon runs): not ours to listen on")
    s = SyslogListener()
    try:
        yield s
    finally:
        s.close()


def test_daemon_logs_mount_and_unmount_to_syslog(lake, mounter, syslog):
    lake.put("l/a")
    m = mounter.mount(lake.config(mount={"freshness": "bounded:30s"}))
    # <PRI>: facility daemon (3) * 8 + notice (5) = 29
    hits = syslog.wait_for(r"^<29>.*hylake\[\d+\]: mounted .* on " + re.escape(str(m.path)))
    assert hits, f"no mount line in syslog: {syslog.lines[-5:]}"
    line = hits[0]
    assert "freshness bounded:30s" in line and "no block cache" in line, line
    assert "+ nfs (posix" in line and "+ s3 (s3 " in line, line
    assert read_all(m / "l/a") == lake.data["l/a"]
    m.unmount()
    assert syslog.wait_for(r"hylake\[\d+\]: unmounted " + re.escape(str(m.path))), syslog.lines[-5:]
    assert not any("secret" in ln.lower() for ln in syslog.lines)


def test_log_level_err_keeps_syslog_quiet(lake, mounter, syslog):
    m = mounter.mount(lake.config(), opts="log_level=err")
    time.sleep(0.5)
    m.unmount()
    time.sleep(0.3)
    ours = [ln for ln in syslog.lines if str(m.path) in ln]
    assert ours == [], ours
    # and debug shows more than the default
    m2 = mounter.mount(lake.config(), opts="log_level=debug")
    assert syslog.wait_for(r"^<31>.*hylake\[\d+\]: "), "no debug-level (<31>) line"
    m2.unmount()


def test_warm_fills_the_block_cache(lake, mounter):
    names = [f"w/d{i % 2}/f{i}" for i in range(6)]
    for n in names:
        lake.put(n, os.urandom(3 * MiB + 17))
    cfg = lake.config(mount={"cache_size": "256M"})
    m = mounter.mount(cfg)
    res = run_hylake("warm", m.path / "w", "--jobs", "3", timeout=120)
    assert res.returncode == 0, res.stderr
    assert re.search(r"warm: 6/6 files, 18\.0 MiB of 18\.0 MiB", res.stdout), res.stdout
    m.unmount()
    # after a remount the bytes come from the cache: GCS sends no data
    m = mounter.mount(cfg)
    drop_caches()
    mark = lake.gcs.control.log_mark()
    for n in names:
        assert sha256(read_all(m / n)) == sha256(lake.data[n])
    assert lake.media_reads(mark) == [], "warmed files were fetched again"
    # errors are reported, counted, and the others still read
    res = run_hylake("warm", m.path / "w/d0", m.path / "w/missing")
    assert res.returncode == 1 and "w/missing" in res.stderr, res.stderr
    assert "3/3 files" in res.stdout, res.stdout
    res = run_hylake("warm")
    assert res.returncode == 2 and "usage" in res.stderr


def test_warm_shows_progress_on_a_terminal(lake, mounter):
    lake.put("t/big", os.urandom(24 * MiB))
    m = mounter.mount(lake.config(mount={"cache_size": "256M"}))
    # script(1) gives the command a terminal; progress lines end in \r
    out = subprocess.run(["script", "-qec", f"{run_hylake.__globals__['HYLAKE_BIN']} warm "
                          f"{m.path / 't'}", "/dev/null"],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out
    text = out.stdout.decode(errors="replace")
    assert "\r" in text and "1/1 files, 24.0 MiB of 24.0 MiB" in text, text[-500:]


def test_warm_blocks_outlive_a_change_of_replicas(lake, mounter):
    """Blocks are kept under the source's identity, not under the shape of
    the stack: adding a replica, then renaming it, keeps the cache warm."""
    names = [f"r/f{i}" for i in range(3)]
    for n in names:
        lake.put(n, os.urandom(2 * MiB + 5))
    m = mounter.mount(lake.config(order=(), mount={"cache_size": "256M"}))
    res = run_hylake("warm", m.path / "r", timeout=120)
    assert res.returncode == 0, res.stderr
    m.unmount()
    for order in (("nfs",), ("s3",)):
        m = mounter.mount(lake.config(order=order, mount={"cache_size": "256M"}))
        drop_caches()
        mark = lake.gcs.control.log_mark()
        for n in names:
            assert sha256(read_all(m / n)) == sha256(lake.data[n])
        assert lake.media_reads(mark) == [], f"replicas {order}: warmed blocks were fetched again"
        m.unmount()
