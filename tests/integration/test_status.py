"""Operating a mount: `hylake status`, the Prometheus endpoint and textfile,
and how files appear to users (uid, gid, file_mode, dir_mode).

The lake: GCS (the test server) as the source, a posix folder and an S3
bucket (radosgw) as replicas.  Figures are checked against what the test
did (how many reads went to which store), not only for being present."""

import os
import re
import socket
import stat
import threading
import time
import urllib.error
import urllib.request

import pytest

from hylib import free_port, run_hylake
from lakelib import drop_caches, lake, read_all  # noqa: F401  (lake: a fixture)

SAMPLE = re.compile(r'^([a-z_0-9]+)(?:\{([a-z_]+)="([^"]*)"\})? (\S+)$')


def parse(text):
    """{(name, label value or None): value}; asserts the exposition format:
    every sample's family has one HELP and one TYPE line before it, counters
    end in _total."""
    out, typed, helped = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"two HELP lines for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in typed, f"two TYPE lines for {name}"
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name = m.group(1)
            assert name.startswith("hylake_"), name
            assert name in typed and name in helped, f"{name} without HELP/TYPE"
            assert (typed[name] == "counter") == name.endswith("_total"), name
            out[(name, m.group(3))] = float(m.group(4))
    return out


def test_status_and_metrics_follow_the_reads(lake, mounter):
    for n in ("s/a", "s/b", "s/c"):
        lake.put(n)
    lake.to_nfs("s/a")                      # a: the preferred replica serves
    lake.to_s3("s/b")                       # b: the second replica serves
    # c: no replica holds it, the source serves
    m = mounter.mount(lake.config())
    for n in ("s/a", "s/b", "s/c"):
        assert read_all(m / n) == lake.data[n]

    res = run_hylake("status", m.path)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[0]: ln.split() for ln in res.stdout.splitlines()
            if ln.split() and ln.split()[0] in ("nfs", "s3", "source")}
    assert set(rows) == {"nfs", "s3", "source"}, res.stdout
    for store in ("nfs", "s3", "source"):
        assert rows[store][1] == "ok", res.stdout
        assert int(rows[store][2]) >= 1, f"{store} served no read?\n{res.stdout}"
    assert rows["nfs"][-2] == "-", "posix is not HTTP: no request count"
    assert int(rows["s3"][-2]) >= 1 and int(rows["source"][-2]) >= 3, res.stdout
    assert "fell back to the source" in res.stdout and "block cache   off" in res.stdout

    res = run_hylake("status", m.path, "--prometheus")
    assert res.returncode == 0, res.stderr
    f = parse(res.stdout)
    for store in ("nfs", "s3", "source"):
        assert f[("hylake_store_reads_total", store)] >= 1
        assert f[("hylake_store_read_bytes_total", store)] == len(lake.data["s/a"]), store
        assert f[("hylake_store_breaker_open", store)] == 0
    assert f[("hylake_source_fallbacks_total", None)] >= 1
    # 3 reads of 1 MiB objects; a fallback only for s/c
    assert f[("hylake_source_fallbacks_total", None)] == f[("hylake_store_reads_total", "source")]
    assert f[("hylake_read_bytes_total", None)] == 3 * len(lake.data["s/a"])
    assert f[("hylake_store_requests_total", "source")] >= 3     # 3 opens at least
    # s3 was asked for s/c and answered 404: an answer, not an error
    assert f[("hylake_store_requests_total", "s3")] >= 2
    assert f[("hylake_store_request_errors_total", "s3")] == 0
    assert f[("hylake_store_request_errors_total", "source")] == 0
    assert ("hylake_store_requests_total", "nfs") not in f
    version = run_hylake("--version").stdout.split()[1]
    assert f[("hylake_build_info", version)] == 1
    assert abs(f[("hylake_start_time_seconds", None)] - time.time()) < 600


def test_status_shows_the_version_map(lake, mounter):
    """The version map's figures: the names it holds once opens have taught
    it, its lookups, and those answered from the records held in memory
    (an open asks for the source's fact, then each replica's: the second
    open of a name finds its record in memory after the first lookup)."""
    names = ("v/a", "v/b", "v/c")
    for n in names:
        lake.put(n)
        lake.to_nfs(n)
    m = mounter.mount(lake.config())
    for _ in range(2):
        for n in names:
            assert read_all(m / n) == lake.data[n]
    deadline = time.monotonic() + 10
    while True:             # the writer commits facts within milliseconds
        res = run_hylake("status", m.path, "--prometheus")
        assert res.returncode == 0, res.stderr
        f = parse(res.stdout)
        if f[("hylake_vmap_names", None)] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert f[("hylake_vmap_names", None)] == 3, res.stdout
    assert f[("hylake_vmap_lookups_total", None)] >= 6
    assert 1 <= f[("hylake_vmap_memory_hits_total", None)] < f[("hylake_vmap_lookups_total", None)]
    assert f[("hylake_vmap_commits_total", None)] >= 1
    assert f[("hylake_vmap_limit_bytes", None)] == 1 << 30       # map_size's default
    assert 0 < f[("hylake_vmap_bytes", None)] < 1 << 30
    for gone in ("evicted_total", "dropped_facts_total", "lost_facts_total"):
        assert f[("hylake_vmap_" + gone, None)] == 0, gone
    res = run_hylake("status", m.path)
    assert res.returncode == 0, res.stderr
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("version map")]
    assert len(line) == 1 and "3 names in" in line[0] and "lookups from memory" in line[0], \
        res.stdout


def test_metrics_endpoint_and_textfile(lake, mounter, ws):
    lake.put("p/x")
    lake.to_nfs("p/x")
    port = free_port()
    prom_file = ws.root / "textfile" / "hylake.prom"
    prom_file.parent.mkdir()
    m = mounter.mount(lake.config(mount={
        "metrics_listen": f"127.0.0.1:{port}", "metrics_file": str(prom_file),
        "metrics_interval": "1s", "cache_size": "64M", "cache_first_read": "yes"}),
        opts="entry_timeout=0")
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        before = parse(r.read().decode())
    assert before[("hylake_store_reads_total", "nfs")] == 0
    assert before[("hylake_cache_enabled", None)] == 1
    assert read_all(m / "p/x") == lake.data["p/x"]
    drop_caches()
    assert read_all(m / "p/x") == lake.data["p/x"]          # from the block cache
    with urllib.request.urlopen(url, timeout=10) as r:
        after = parse(r.read().decode())
    assert after[("hylake_store_reads_total", "nfs")] >= 1
    assert after[("hylake_store_read_bytes_total", "nfs")] == len(lake.data["p/x"])
    assert after[("hylake_cache_hits_total", None)] >= 1
    assert after[("hylake_cache_bytes", None)] >= len(lake.data["p/x"])
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=10)
    assert e.value.code == 404
    # the textfile catches up within its interval, and is whole when read
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if prom_file.exists():
            f = parse(prom_file.read_text())
            if f.get(("hylake_cache_hits_total", None), 0) >= 1:
                break
        time.sleep(0.2)
    else:
        pytest.fail(f"{prom_file} never showed the cache hit")
    assert [p.name for p in prom_file.parent.iterdir()] == ["hylake.prom"], \
        "a temporary file was left behind"
    m.unmount()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)              # the listener went with it


def _mtimes(path, seconds):
    """The distinct mtimes path shows over the next seconds."""
    seen, end = set(), time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            seen.add(path.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return seen


def _scrape(url, timeout):
    """(status, seconds taken); 503 counts as an answer (the cap)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.monotonic() - t0


def test_slow_clients_hold_neither_the_endpoint_nor_the_textfile(gcs, gcs_bucket, ws,
                                                                 mounter):
    """A client that sends a byte a second (slowloris), or connects and says
    nothing, costs one connection until its deadline: other scrapes are
    answered at once, the textfile keeps its interval, and the slow client
    is cut off after the per-connection deadline (2 s), not per byte."""
    gcs.client.upload(gcs_bucket, "x", b"x")
    port = free_port()
    prom_file = ws.root / "tf" / "hylake.prom"
    prom_file.parent.mkdir()
    mounter.mount(ws.gcs_config(gcs_bucket, mount={
        "metrics_listen": f"127.0.0.1:{port}", "metrics_file": str(prom_file),
        "metrics_interval": "1s"}))
    url = f"http://127.0.0.1:{port}/metrics"
    assert _scrape(url, 5)[0] == 200

    cut_after = []

    def slowloris():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        t0 = time.monotonic()
        try:
            for ch in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                s.send(bytes([ch]))
                time.sleep(1)
                if time.monotonic() - t0 > 9:
                    break
        except OSError:
            pass
        cut_after.append(time.monotonic() - t0)
        s.close()

    t = threading.Thread(target=slowloris, daemon=True)
    t.start()
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    time.sleep(0.3)
    for _ in range(3):                       # while both are connected
        status, took = _scrape(url, 1.5)
        assert status == 200 and took < 1.0, (status, took)
        time.sleep(0.2)
    # the textfile is rewritten every second meanwhile
    assert len(_mtimes(prom_file, 2.5)) >= 2, "the textfile stood still"
    t.join(12)
    assert cut_after and cut_after[0] < 6, \
        f"the slowloris client was served {cut_after} s: no deadline per connection"
    silent.settimeout(5)
    assert silent.recv(100) == b"", "the silent client was not closed"
    silent.close()

    # a flood of 20 silent clients: 8 (the cap) are held until their
    # deadline, the other 12 are told 503 at once, and so is a scrape
    # while the 8 are held; the textfile goes on
    flood = [socket.create_connection(("127.0.0.1", port), timeout=10)
             for _ in range(20)]
    try:
        time.sleep(0.3)
        status, took = _scrape(url, 1.5)
        assert status == 503 and took < 1.0, (status, took)
        told = 0
        for s in flood:
            s.setblocking(False)
            try:
                told += s.recv(64, socket.MSG_PEEK).startswith(b"HTTP/1.1 503")
            except BlockingIOError:
                pass
        assert told == 12, f"{told} of 20 silent clients were told 503 at once"
        assert len(_mtimes(prom_file, 2.5)) >= 2, "the textfile stood still"
    finally:
        for s in flood:
            s.close()
    deadline = time.monotonic() + 5
    while _scrape(url, 5)[0] != 200:
        assert time.monotonic() < deadline, "scrapes refused after the flood"
        time.sleep(0.2)


def test_textfile_temporary_is_not_a_predictable_name(gcs, gcs_bucket, ws, mounter):
    """The temporary textfile is made with mkstemp: a link planted at any name
    the writer could use (here the old <file>.<pid>.tmp) is never followed."""
    gcs.client.upload(gcs_bucket, "x", b"x")
    prom_file = ws.root / "tf" / "hylake.prom"
    prom_file.parent.mkdir()
    victim = ws.root / "victim"
    victim.write_text("do not touch\n")
    m = mounter.mount(ws.gcs_config(gcs_bucket, mount={
        "metrics_file": str(prom_file), "metrics_interval": "1s"}))
    for pid in m.pids():
        os.symlink(victim, f"{prom_file}.{pid}.tmp")
    before = prom_file.stat().st_mtime_ns if prom_file.exists() else 0
    assert max(_mtimes(prom_file, 2.5)) > before, "the textfile was not rewritten"
    assert victim.read_text() == "do not touch\n", "the writer followed a planted link"
    assert not prom_file.is_symlink() and prom_file.is_file()
    assert stat.S_IMODE(prom_file.stat().st_mode) == 0o644
    parse(prom_file.read_text())


def test_metrics_port_in_use_fails_the_mount_clearly(lake, mounter):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        m = mounter.mount(lake.config(mount={"metrics_listen": f"127.0.0.1:{port}"}),
                          check=False)
        assert m.returncode == 1
        assert "metrics_listen" in m.stderr and "in use" in m.stderr, m.stderr
        assert not m.mounted()
    res = run_hylake("mount", lake.config(mount={"metrics_listen": "nowhere"}),
                     mounter.base / "mnt-bad")
    assert res.returncode != 0


def test_status_of_a_folder_that_is_not_a_mount(ws):
    res = run_hylake("status", ws.root)
    assert res.returncode == 1
    assert "not the mount point of a hylake mount" in res.stderr
    res = run_hylake("status")
    assert res.returncode == 2 and "usage" in res.stderr


def test_owner_and_modes_are_as_configured(lake, mounter):
    lake.put("o/f")
    m = mounter.mount(lake.config(), opts="uid=nobody,gid=1234,file_mode=0440,dir_mode=0750")
    st = os.stat(m / "o/f")
    assert st.st_uid == 65534 and st.st_gid == 1234
    assert stat.S_IMODE(st.st_mode) == 0o440 and stat.S_ISREG(st.st_mode)
    d = os.stat(m / "o")
    assert stat.S_IMODE(d.st_mode) == 0o750 and stat.S_ISDIR(d.st_mode)
    assert d.st_uid == 65534
    for bad, word in (("uid=no-such-user-here", "unknown user"),
                      ("file_mode=0999", "bad mode"), ("gid=-5", "unknown group")):
        res = run_hylake("mount", lake.config(), mounter.base / "mnt-x", "-o", bad)
        assert res.returncode == 2, (bad, res.stderr)
        assert word in res.stderr, (bad, res.stderr)
