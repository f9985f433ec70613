"""Writes that need the old bytes or go out of order (issue 14): staged in a
bounded local folder and uploaded whole at close()/fsync() under the
precondition taken at open; ENOSPC when the folder is full; what a restart
does with files a killed daemon left; table writers (DuckDB, Delta commit
races) and a large sequential write under the memory budget."""

import ctypes
import errno
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hylib import DUCKDB, MiB, duckdb_ready, run_hylake, sha256, wait_until
from test_writes import (close_errno, expect_errno, gcs_bytes, gcs_exists, rw_mount,
                         write_fd)



def generation(gcs, bucket, name) -> int:
    return int(gcs.client.get(bucket, name)["generation"])


def kill9(m) -> None:
    """kill -9 the mount's daemon and drop the dead mount."""
    pids = m.pids()
    assert pids, "no daemon to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not m.pids(), 10)
    subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True, timeout=20)


def status(m) -> str:
    r = run_hylake("status", str(m.path))
    assert r.returncode == 0, r.output
    return r.stdout


@pytest.mark.timeout(120)
def test_random_writes_give_the_exact_bytes(gcs, gcs_bucket, ws, mounter):
    m = rw_mount(mounter, ws, gcs_bucket)
    rng = random.Random(14)
    model = bytearray()
    # O_RDWR: staged from the start; reads see what was written
    with open(m / "rand.bin", "w+b") as f:
        for _ in range(300):
            off = rng.randrange(0, 3 * MiB)
            chunk = os.urandom(rng.randrange(1, 64 * 1024))
            f.seek(off)
            f.write(chunk)
            if len(model) < off:
                model.extend(bytes(off - len(model)))
            model[off:off + len(chunk)] = chunk
        f.flush()
        # nothing in GCS before close; the writer reads its own bytes
        assert not gcs_exists(gcs, gcs_bucket, "rand.bin")
        f.seek(0)
        assert sha256(f.read()) == sha256(bytes(model))
        assert os.fstat(f.fileno()).st_size == len(model)
    assert sha256(gcs_bytes(gcs, gcs_bucket, "rand.bin")) == sha256(bytes(model))
    assert sha256((m / "rand.bin").read_bytes()) == sha256(bytes(model))
    # O_WRONLY, sequential, then a seek back while all of it is in memory:
    # moved to staging, no error
    fd = os.open(m / "hdr.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    body = os.urandom(2 * MiB)
    write_fd(fd, b"\0" * 16 + body)
    os.pwrite(fd, b"HEADER-PATCHED!!", 0)
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "hdr.bin") == b"HEADER-PATCHED!!" + body


@pytest.mark.timeout(120)
def test_append_truncate_and_write_into_an_existing_object(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "log.txt", b"line 1\n")
    gen0 = generation(gcs, gcs_bucket, "log.txt")
    m = rw_mount(mounter, ws, gcs_bucket)
    r = subprocess.run(["sh", "-c", "echo 'line 2' >> log.txt"], cwd=m,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\nline 2\n"
    gen1 = generation(gcs, gcs_bucket, "log.txt")
    assert gen1 > gen0
    with open(m / "log.txt", "ab") as f:
        f.write(b"line 3\n")
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\nline 2\nline 3\n"
    # write into the middle, no O_TRUNC
    fd = os.open(m / "log.txt", os.O_WRONLY)
    os.pwrite(fd, b"LINE", 7)
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\nLINE 2\nline 3\n"
    # opened to write, never written: no new generation
    gen = generation(gcs, gcs_bucket, "log.txt")
    with open(m / "log.txt", "r+b") as f:
        assert f.read() == b"line 1\nLINE 2\nline 3\n"
    assert generation(gcs, gcs_bucket, "log.txt") == gen
    # truncate(2) to a size: cut in one new generation
    os.truncate(m / "log.txt", 7)
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\n"
    assert os.stat(m / "log.txt").st_size == 7
    # fsync uploads what is staged; writes go on, and close uploads again
    with open(m / "log.txt", "r+b") as f:
        f.seek(0, os.SEEK_END)
        f.write(b"a\n")
        f.flush()
        os.fsync(f.fileno())
        assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\na\n"
        f.write(b"b\n")
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"line 1\na\nb\n"
    # a change elsewhere meanwhile: close() says ESTALE, nothing overwritten
    fd = os.open(m / "log.txt", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"mine\n")
    gcs.client.upload(gcs_bucket, "log.txt", b"theirs\n")
    assert close_errno(fd) == errno.ESTALE
    assert gcs_bytes(gcs, gcs_bucket, "log.txt") == b"theirs\n"


@pytest.mark.timeout(120)
def test_full_staging_folder_enospc_and_nothing_uploaded(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "big.bin", b"x" * (3 * MiB))
    m = rw_mount(mounter, ws, gcs_bucket, staging_size="2M",
                 staging_dir=str(ws.root / "stg"))
    fd = os.open(m / "new.bin", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(fd, os.urandom(2 * MiB))          # exactly the limit
    expect_errno(errno.ENOSPC, os.write, fd, b"one byte too many")
    # the file is broken: close says so, and no object appears cut short
    assert close_errno(fd) == errno.ENOSPC
    assert not gcs_exists(gcs, gcs_bucket, "new.bin")
    # an existing object larger than the folder cannot be written into
    fd = os.open(m / "big.bin", os.O_WRONLY | os.O_APPEND)
    expect_errno(errno.ENOSPC, os.write, fd, b"more")
    assert close_errno(fd) == errno.ENOSPC
    assert gcs_bytes(gcs, gcs_bucket, "big.bin") == b"x" * (3 * MiB)
    # the space is given back
    with open(m / "small.bin", "w+b") as f:
        f.write(os.urandom(MiB))
    assert len(gcs_bytes(gcs, gcs_bucket, "small.bin")) == MiB
    # the staged files go when the kernel releases them (after close returns)
    assert wait_until(lambda: not [p for p in os.listdir(ws.root / "stg")
                                   if p != "reported"], 10), os.listdir(ws.root / "stg")


@pytest.mark.timeout(180)
def test_kill9_during_uploads_then_restart_finishes_or_reports(gcs, gcs_bucket, ws, mounter):
    """Killed with a streamed upload under way, a staged upload under way (close
    waiting on a slow server) and a staged file still open: GCS holds none of
    them partly; the restart uploads the one close() asked for, exactly, and
    reports the open one (log, status, kept in reported/)."""
    gcs.client.upload(gcs_bucket, "keep.txt", b"original\n")
    gen0 = generation(gcs, gcs_bucket, "keep.txt")
    stg = ws.root / "stg"
    cfg = ws.gcs_config(gcs_bucket, mount={"writable": "yes", "staging_dir": str(stg)})
    m = mounter.mount(cfg)
    streamed = os.open(m / "streamed.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(streamed, os.urandom(24 * MiB))    # chunks went to the session
    still_open = os.open(m / "keep.txt", os.O_WRONLY | os.O_APPEND)
    os.write(still_open, b"never closed\n")
    body = os.urandom(20 * MiB)
    fd = os.open(m / "staged.bin", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(fd, body)
    gcs.control.config(delay_ms=1500, delay_only=["upload"])
    closing = threading.Thread(target=close_errno, args=(fd,))
    closing.start()
    assert wait_until(lambda: any(b"\nstate commit\n" in open(p, "rb").read()
                                  for p in stg.glob("*.meta")), 20)
    time.sleep(1)
    kill9(m)
    closing.join(30)
    for fdx in (streamed, still_open):
        close_errno(fdx)
    gcs.control.config(delay_ms=0, delay_only=[])
    # no partial object, nothing replaced
    assert not gcs_exists(gcs, gcs_bucket, "streamed.bin")
    assert not gcs_exists(gcs, gcs_bucket, "staged.bin")
    assert gcs_bytes(gcs, gcs_bucket, "keep.txt") == b"original\n"
    m2 = mounter.mount(cfg)
    # the staged upload close() asked for is finished, under its precondition
    assert sha256(gcs_bytes(gcs, gcs_bucket, "staged.bin")) == sha256(body)
    assert sha256((m2 / "staged.bin").read_bytes()) == sha256(body)
    # the file still open is reported, not uploaded
    assert generation(gcs, gcs_bucket, "keep.txt") == gen0
    assert not gcs_exists(gcs, gcs_bucket, "streamed.bin")
    out = status(m2)
    assert "1 uploads finished" in out and "1 NOT uploaded" in out, out
    reported = list((stg / "reported").glob("*.data"))
    assert [p.read_bytes() for p in reported] == [b"original\nnever closed\n"]
    assert not list(stg.glob("*.data"))


@pytest.mark.timeout(120)
def test_restart_reports_a_conflicting_precondition(gcs, gcs_bucket, ws, mounter):
    """A staged upload left with state commit whose precondition no longer holds
    (the name was created elsewhere meanwhile) is reported, never forced."""
    from gcs_server import crc32c
    gcs.client.upload(gcs_bucket, "taken.json", b"the other writer\n")
    stg = ws.root / "stg"
    # the source's identity, as a mount records it in its manifests
    m0 = rw_mount(mounter, ws, gcs_bucket, staging_dir=str(stg))
    with open(m0 / "probe", "w+b") as f:
        f.write(b"probe")
        store = next(stg.glob("*.meta")).read_bytes().split(b"\n")[1]
    assert store.startswith(b"store ")
    m0.unmount()
    data = b'{"mine": true}\n'
    (stg / "5f00-1-0.data").write_bytes(data)
    name = b"taken.json"
    (stg / "5f00-1-0.meta").write_bytes(
        b"hylake-staged 1\n%s\nstate commit\npre absent\nsize %d\ncrc32c %d\nname %d\n%s"
        % (store, len(data), crc32c(data), len(name), name))
    # and one for another source: left alone
    (stg / "5f00-1-1.data").write_bytes(data)
    (stg / "5f00-1-1.meta").write_bytes(
        b"hylake-staged 1\nstore gcs elsewhere\nstate commit\npre absent\nsize %d\n"
        b"crc32c %d\nname %d\n%s" % (len(data), crc32c(data), len(name), name))
    m = rw_mount(mounter, ws, gcs_bucket, staging_dir=str(stg))
    assert (stg / "5f00-1-1.meta").exists()
    assert gcs_bytes(gcs, gcs_bucket, "taken.json") == b"the other writer\n"
    out = status(m)
    assert "1 NOT uploaded" in out and "1 kept to retry" in out, out
    assert (stg / "reported" / "5f00-1-0.data").read_bytes() == data
    assert b"state reported" in (stg / "reported" / "5f00-1-0.meta").read_bytes()


COUNT_JS = """
import { DuckDBInstance } from "@duckdb/node-api";
const db = await DuckDBInstance.create(":memory:");
const c = await db.connect();
const r = await c.runAndReadAll(`SELECT count(*)::BIGINT AS n, sum(v)::BIGINT AS s
                                 FROM read_parquet('${process.argv[1]}')`);
const row = r.getRows()[0];
console.log(JSON.stringify({ n: Number(row[0]), s: Number(row[1]) }));
"""


@pytest.mark.timeout(300)
def test_duckdb_copy_to_parquet_through_the_mount(gcs, gcs_bucket, ws, mounter):
    if not duckdb_ready():
        pytest.skip("node and DuckDB from npm (tests/npm_ci.sh tests/bench/duckdb) needed")
    m = rw_mount(mounter, ws, gcs_bucket)
    os.mkdir(m / "sales")
    rows = 200_000
    r = subprocess.run(["node", str(DUCKDB / "delta.mjs"), "write", str(m / "sales"), "0",
                        "2", str(rows)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr + m.stderr[-2000:]
    reader = mounter.mount(ws.gcs_config(gcs_bucket))
    for i in range(2):
        name = f"sales/part-{i:05d}.parquet"
        want = gcs_bytes(gcs, gcs_bucket, name)
        assert want[:4] == b"PAR1" and want[-4:] == b"PAR1"
        assert sha256((reader / name).read_bytes()) == sha256(want)
        assert sha256((m / name).read_bytes()) == sha256(want)
        q = subprocess.run(["node", "--input-type=module", "-e", COUNT_JS, str(reader / name)],
                           cwd=DUCKDB, capture_output=True, text=True, timeout=120)
        assert q.returncode == 0, q.stderr
        got = json.loads(q.stdout.strip().splitlines()[-1])
        ids = range(i * rows, (i + 1) * rows)
        assert got == {"n": rows, "s": sum(x % 1000 for x in ids)}, got


RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)


def rename_noreplace(src, dst) -> None:
    if _libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), RENAME_NOREPLACE):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(dst))


def commit(m, log: Path, v: int, body: bytes, how: str, who: str) -> int:
    """Try to commit version v by one of the three put-if-absent primitives
    delta writers use; 0 or the errno."""
    final = m / log / f"{v:020d}.json"
    try:
        if how == "excl":
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, body)
            rc = close_errno(fd)
            return rc
        tmp = m / log / f".{v:020d}.json.{who}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, body)
        try:
            if how == "link":
                os.link(tmp, final)        # still open, as object_store does
            else:
                assert close_errno(fd) == 0
                fd = None
                rename_noreplace(tmp, final)
                return 0
        finally:
            if fd is not None:
                close_errno(fd)
            if how == "link":
                os.unlink(tmp)
        return 0
    except OSError as e:
        if how == "rename":
            os.unlink(tmp)
        return e.errno


@pytest.mark.timeout(180)
def test_delta_commit_race_two_mounts_100_versions(gcs, gcs_bucket, ws, mounter):
    a = rw_mount(mounter, ws, gcs_bucket)
    b = rw_mount(mounter, ws, gcs_bucket)
    log = Path("tbl/_delta_log")
    os.makedirs(a / log)
    assert wait_until(lambda: (b / log).is_dir(), 10)
    versions = 100
    hows = ["excl", "link", "rename"]
    results = {"a": {}, "b": {}}
    barrier = threading.Barrier(2)

    def writer(who, m, shift):
        for v in range(versions):
            barrier.wait(timeout=60)
            body = b'{"commitInfo":{"version":%d,"writer":"%s"}}\n' % (v, who.encode())
            results[who][v] = commit(m, log, v, body, hows[(v + shift) % 3], who)

    t0 = time.monotonic()
    ts = [threading.Thread(target=writer, args=("a", a, 0)),
          threading.Thread(target=writer, args=("b", b, 1))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(150)
    elapsed = time.monotonic() - t0
    assert elapsed < 60, f"100 contested commits took {elapsed:.1f}s"
    names = sorted(n for n in gcs.client.list_all(gcs_bucket, "tbl/_delta_log/")
                   if n.endswith(".json") and "/." not in n)
    assert names == [f"tbl/_delta_log/{v:020d}.json" for v in range(versions)]
    for v in range(versions):
        ra, rb = results["a"][v], results["b"][v]
        assert sorted([ra, rb]) == [0, errno.EEXIST], (v, ra, rb)
        winner = "a" if ra == 0 else "b"
        want = b'{"commitInfo":{"version":%d,"writer":"%s"}}\n' % (v, winner.encode())
        assert gcs_bytes(gcs, gcs_bucket, f"tbl/_delta_log/{v:020d}.json") == want
        # one generation each: nothing overwritten
        assert int(gcs.client.get(gcs_bucket, f"tbl/_delta_log/{v:020d}.json")
                   ["metageneration"]) == 1
    assert not [n for n in gcs.client.list_all(gcs_bucket, "tbl/") if ".tmp" in n]


def vm_kib(pid: int, key: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@pytest.mark.timeout(300)
def test_large_sequential_write_stays_in_the_memory_budget(gcs, gcs_bucket, ws, mounter):
    """1 GiB written in order (16 times the memory limit): streamed, so the
    daemon's peak RSS grows by a few chunks, far below memory_limit; GCS
    holds every byte.  (Under a sanitizer, whose quarantine keeps freed
    memory, RSS says nothing: 256 MiB prove the streaming path.)"""
    budget = 64 * MiB
    m = rw_mount(mounter, ws, gcs_bucket, memory_limit="64M")
    pid = m.pids()[0]
    sanitized = "libasan" in open(f"/proc/{pid}/maps").read()
    size = int(os.environ.get("HYLAKE_BIG_WRITE_MIB",
                              "256" if sanitized else "1024")) * MiB
    rss0 = vm_kib(pid, "VmRSS") * 1024
    piece = os.urandom(MiB)
    fd = os.open(m / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    t0 = time.monotonic()
    for i in range(size // MiB):
        os.write(fd, piece[i % 997:] + piece[:i % 997])
    assert close_errno(fd) == 0
    secs = time.monotonic() - t0
    peak = vm_kib(pid, "VmHWM") * 1024
    meta = gcs.client.get(gcs_bucket, "big.bin")
    assert int(meta["size"]) == size
    print(f"{size >> 20} MiB in {secs:.1f}s ({size / secs / MiB:.0f} MiB/s); "
          f"RSS {rss0 >> 20} -> peak {peak >> 20} MiB")
    if not sanitized:       # ASan's quarantine keeps freed memory
        assert peak - rss0 < budget, f"peak RSS grew by {(peak - rss0) >> 20} MiB"
    # spot-check bytes at the start, middle and end
    for i in (0, size // MiB // 2, size // MiB - 1):
        got = gcs.client.download(gcs_bucket, "big.bin",
                                  headers={"Range": f"bytes={i * MiB}-{(i + 1) * MiB - 1}"}).body
        assert got == piece[i % 997:] + piece[:i % 997], i
