"""The block cache and read-ahead, through real mounts.

S3 sources sit behind a FaultProxy so every GET (and its Range) is seen; GCS
sources are the GCS test server, whose request log shows data reads.  The
kernel's page cache is dropped wherever it could stand in for the block
cache."""

import concurrent.futures as cf
import errno
import hashlib
import json
import os
import random
import re
import subprocess
import time

import pytest

from hylib import (DUCKDB, MiB, child_call, child_preads, child_read, duckdb_ready, run_hylake,
                   sha256, wait_until)
from lakelib import lake  # noqa: F401  (a fixture)

KiB = 1024


def drop_caches():
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)


def gets(proxy, key):
    return [r for r in proxy.requests("GET") if r.key == key]


def mount_s3(ws, mounter, proxy, bucket, **mount_keys):
    """A mount of bucket through proxy that stores every block read (most
    tests here are about what the cache does with a block it holds; the
    default, a block stored when read again, has a test of its own)."""
    mount_keys.setdefault("cache_first_read", "yes")
    cfg = ws.s3_config(bucket, endpoint=proxy.url, mount=mount_keys)
    return cfg, mounter.mount(cfg)


def cache_files(ws):
    root = ws.root / "cache" / "v1"
    return [p for p in root.glob("??/*") if p.is_file()]


def test_cached_read_survives_a_remount(s3, bucket, proxy, ws, mounter):
    body = os.urandom(9 * MiB + 4321)
    s3.put_object(Bucket=bucket, Key="d/data.bin", Body=body)
    cfg, m = mount_s3(ws, mounter, proxy, bucket)
    res = child_read(m / "d/data.bin")
    assert res["ok"] and res["sha256"] == sha256(body), res
    assert gets(proxy, "d/data.bin"), "the first read sent no GET"
    assert len(cache_files(ws)) == 10, "one cache file per 1 MiB block"

    m.unmount()
    drop_caches()
    proxy.reset_counts()
    m2 = mounter.mount(cfg)
    res = child_read(m2 / "d/data.bin")
    assert res["ok"] and res["sha256"] == sha256(body), res
    assert gets(proxy, "d/data.bin") == [], "a cached file was fetched again after a remount"
    # ranges inside, across blocks, at the end
    for off, n in ((0, 1), (MiB - 3, 10), (5 * MiB + 7, 2 * MiB), (len(body) - 100, 100)):
        res = child_read(m2 / "d/data.bin", offset=off, length=n)
        assert res["ok"] and res["sha256"] == sha256(body[off:off + n]), (off, n, res)
    assert gets(proxy, "d/data.bin") == []


def test_a_block_is_stored_when_it_is_read_again(s3, bucket, proxy, ws, mounter):
    """By default a block read once is only remembered: a cold scan writes
    nothing to the cache disk.  Read again, it is stored, and after a
    remount it comes from the cache.  `hylake warm` stores what it reads at
    once."""
    twice, warm = os.urandom(5 * MiB + 11), os.urandom(3 * MiB + 7)
    s3.put_object(Bucket=bucket, Key="a/twice.bin", Body=twice)
    s3.put_object(Bucket=bucket, Key="a/warm.bin", Body=warm)
    cfg = ws.s3_config(bucket, endpoint=proxy.url)
    m = mounter.mount(cfg)
    assert child_read(m / "a/twice.bin")["sha256"] == sha256(twice)
    time.sleep(0.3)                      # stores run off the reader's path
    assert cache_files(ws) == [], "a block read once was stored"
    st = run_hylake("status", m.path, "--prometheus")
    touches = re.search(r"^hylake_cache_first_touches_total (\S+)$", st.stdout, re.M)
    assert touches and float(touches.group(1)) == 6, st.stdout
    drop_caches()
    assert child_read(m / "a/twice.bin")["sha256"] == sha256(twice)
    assert wait_until(lambda: len(cache_files(ws)) == 6, 10), cache_files(ws)

    r = run_hylake("warm", m / "a/warm.bin")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: len(cache_files(ws)) == 6 + 4, 10), cache_files(ws)

    m.unmount()
    drop_caches()
    proxy.reset_counts()
    m = mounter.mount(cfg)
    assert child_read(m / "a/twice.bin")["sha256"] == sha256(twice)
    assert child_read(m / "a/warm.bin")["sha256"] == sha256(warm)
    assert gets(proxy, "a/twice.bin") == [] and gets(proxy, "a/warm.bin") == []


def test_new_generation_is_never_answered_from_old_blocks(lake, mounter):
    """Strict freshness over GCS: the same name rewritten with bytes of the
    same size; the cached blocks of the old generation must not answer."""
    old = os.urandom(3 * MiB + 5)
    lake.put("t/same-size", old)
    cfg = lake.config(mount={"cache_size": "1G"})
    m = mounter.mount(cfg)
    assert child_read(m / "t/same-size")["sha256"] == sha256(old)
    new = os.urandom(len(old))
    lake.put("t/same-size", new)
    drop_caches()
    res = child_read(m / "t/same-size")
    assert res["ok"] and res["sha256"] == sha256(new), "old generation's cached bytes served"
    # and after a remount, from the cache, the newest generation still wins
    m.unmount()
    newer = os.urandom(len(old))
    lake.put("t/same-size", newer)
    m = mounter.mount(cfg)
    res = child_read(m / "t/same-size")
    assert res["ok"] and res["sha256"] == sha256(newer), res
    res = child_read(m / "t/same-size", offset=MiB, length=MiB)
    assert res["sha256"] == sha256(newer[MiB:2 * MiB])


def test_corrupt_blocks_are_fetched_again(s3, bucket, proxy, ws, mounter):
    body = os.urandom(4 * MiB)
    s3.put_object(Bucket=bucket, Key="c.bin", Body=body)
    cfg, m = mount_s3(ws, mounter, proxy, bucket)
    assert child_read(m / "c.bin")["sha256"] == sha256(body)
    m.unmount()
    files = cache_files(ws)
    assert len(files) == 4
    for p in files:                       # flip bytes in every block's data
        with open(p, "r+b") as f:
            f.seek(p.stat().st_size - 1000)
            f.write(b"\x00garbage\xff")
    drop_caches()
    proxy.reset_counts()
    m = mounter.mount(cfg)
    res = child_read(m / "c.bin")
    assert res["ok"] and res["sha256"] == sha256(body), "a corrupt cached block was served"
    assert gets(proxy, "c.bin"), "corrupt blocks were not fetched again"


def test_an_unusable_cache_folder_costs_nothing_but_speed(s3, bucket, ws, mounter):
    body = os.urandom(2 * MiB + 1)
    s3.put_object(Bucket=bucket, Key="x.bin", Body=body)
    blocker = ws.write("not-a-dir", "a file where the cache folder should go\n")
    cfg = ws.s3_config(bucket, mount={"cache_dir": str(blocker / "cache")})
    m = mounter.mount(cfg, foreground=True)
    res = child_read(m / "x.bin")
    assert res["ok"] and res["sha256"] == sha256(body), res
    m.unmount()
    assert "block cache off" in m.stderr, m.stderr


def test_the_cache_stays_under_its_ceiling(s3, bucket, ws, mounter):
    bodies = {f"f{i}": os.urandom(3 * MiB) for i in range(5)}
    for k, v in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    cfg = ws.s3_config(bucket, mount={"cache_size": "7M", "cache_min_free": "0",
                                      "cache_first_read": "yes"})
    m = mounter.mount(cfg)
    for k, v in bodies.items():
        res = child_read(m / k)
        assert res["ok"] and res["sha256"] == sha256(v), (k, res)
        held = sum(p.stat().st_size for p in cache_files(ws))
        assert held <= 7 * MiB, f"{held} bytes cached over a 7 MiB ceiling"
    assert cache_files(ws), "nothing cached at all"


def test_reads_in_order_become_few_large_requests(s3, bucket, proxy, ws, mounter):
    body = os.urandom(64 * MiB)
    s3.put_object(Bucket=bucket, Key="seq.bin", Body=body)
    _, m = mount_s3(ws, mounter, proxy, bucket, cache_size="0")
    t = time.monotonic()
    res = child_read(m / "seq.bin")
    assert res["ok"] and res["sha256"] == sha256(body), res
    reqs = gets(proxy, "seq.bin")
    sizes = []
    for r in reqs:
        a, b = r.range.split("=")[1].split("-")
        sizes.append(int(b) - int(a) + 1)
    assert sum(sizes) <= len(body) + 16 * MiB, "read-ahead fetched far more than the file"
    assert len(reqs) <= 40, f"{len(reqs)} GETs for 64 MiB read in order ({time.monotonic() - t:.1f}s)"
    assert max(sizes) >= 4 * MiB, f"no multi-MiB request: {sorted(set(sizes))}"


def test_a_parquet_footer_costs_one_request(s3, bucket, proxy, ws, mounter):
    body = os.urandom(20 * MiB + 999)
    s3.put_object(Bucket=bucket, Key="part-0.parquet", Body=body)
    _, m = mount_s3(ws, mounter, proxy, bucket, cache_size="0")
    size = len(body)
    reads = [(size - 8, 8), (size - 48 * KiB, 48 * KiB), (size - 300 * KiB, 4 * KiB),
             (size - 8, 8)]
    res = child_preads(m / "part-0.parquet", reads)
    assert res.get("ok") and res["sums"] == [sha256(body[o:o + n]) for o, n in reads], res
    reqs = gets(proxy, "part-0.parquet")
    assert len(reqs) == 1, f"{len(reqs)} GETs for a footer: {[r.range for r in reqs]}"
    # the open asked for the version and the footer in that one GET
    assert reqs[0].range == f"bytes=-{MiB}", reqs
    assert not [r for r in proxy.requests("HEAD") if r.key == "part-0.parquet"]


def test_a_small_file_is_opened_and_read_in_one_request(s3, bucket, proxy, ws, mounter):
    """A file the mount knows to be small is read whole by its open: one
    GET, no HEAD, for each open in strict mode; a replacement of another
    size between the lookup and the open is read whole and exact, and the
    blocks it brought answer from the block cache after a remount (whose
    open then asks only for the version, with a HEAD)."""
    bodies = {f"s/{i}.json": os.urandom(1 + i * 997) for i in range(12)}
    for k, b in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=b)
    cfg, m = mount_s3(ws, mounter, proxy, bucket)
    assert sorted(os.listdir(m / "s")) == sorted(k[2:] for k in bodies)
    proxy.reset_counts()
    for k, b in bodies.items():
        assert (m / k).read_bytes() == b, k
    assert not proxy.requests("HEAD"), proxy.requests("HEAD")
    for k in bodies:
        reqs = gets(proxy, k)
        assert [r.range for r in reqs] == [f"bytes=-{2 * MiB}"], (k, reqs)

    # replaced by a larger version after the mount looked it up
    k = "s/3.json"
    os.stat(m / k)
    new = os.urandom(3 * MiB // 2 + 17)
    s3.put_object(Bucket=bucket, Key=k, Body=new)
    drop_caches()
    res = child_read(m / k)
    assert res["ok"] and res["size"] == len(new) and res["sha256"] == sha256(new), res
    assert os.stat(m / k).st_size == len(new)

    m.unmount()
    drop_caches()
    m = mounter.mount(cfg)
    proxy.reset_counts()
    assert child_read(m / k, offset=MiB + 5, length=1000)["sha256"] == \
        sha256(new[MiB + 5:MiB + 1005])
    # the cache holds its blocks: the open asks only for the version
    assert gets(proxy, k) == [], gets(proxy, k)
    assert [r.key for r in proxy.requests("HEAD")] == [k], proxy.requests()


def _prom(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _fill(path):
    """Write path until the disk says ENOSPC."""
    chunk = b"\0" * (64 * KiB)
    try:
        with open(path, "wb") as f:
            while True:
                f.write(chunk)
                f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC, e


def test_a_full_cache_disk_never_reaches_the_reader(gcs, gcs_bucket, ws, mounter):
    """cache_dir on a 2 MiB tmpfs, files of 3-5 MiB read through the mount,
    with the disk also filled behind the cache's back (so its free-space
    estimate is stale and writes meet a real ENOSPC): every read returns the
    right bytes, the mount keeps working, the failed puts are counted."""
    tiny = ws.root / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                    str(tiny)], check=True)
    try:
        bodies = {f"big/{i}": os.urandom((3 + i % 3) * MiB + 777 * i)
                  for i in range(6)}
        for name, body in bodies.items():
            gcs.client.upload(gcs_bucket, name, body)
        m = mounter.mount(ws.gcs_config(gcs_bucket, mount={
            "cache_dir": str(tiny / "cache"), "cache_size": "64M",
            "cache_min_free": "0"}))
        names = sorted(bodies)
        for name in names[:2]:                  # the disk fills up by itself
            res = child_read(m / name)
            assert res["ok"] and res["sha256"] == sha256(bodies[name]), (name, res)
        for rnd in range(2):                    # and behind the cache's back
            filler = tiny / f"filler{rnd}"
            _fill(filler)
            for name in names[2:]:
                drop_caches()
                res = child_read(m / name)
                assert res["ok"] and res["sha256"] == sha256(bodies[name]), (name, res)
                for off, n in ((MiB - 5, 10), (2 * MiB + 3, MiB + 9)):
                    res = child_read(m / name, offset=off, length=n)
                    assert res["ok"] and \
                        res["sha256"] == sha256(bodies[name][off:off + n]), (name, off, res)
            filler.unlink()
        assert sorted(os.listdir(m / "big")) == [n[4:] for n in names]  # still works
        res = run_hylake("status", m.path, "--prometheus")
        assert res.returncode == 0, res.stderr
        f = _prom(res.stdout)
        assert f["hylake_cache_enabled"] == 1
        assert f["hylake_cache_put_failures_total"] >= 1, res.stdout
        assert f["hylake_cache_bytes"] <= 2 * MiB
        m.unmount()
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)


def _written(m):
    """Bytes the mount's daemon has passed to write(2)-like calls: what a
    reply copied out of the process costs; spliced replies do not count."""
    total = 0
    for pid in m.pids():
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("wchar:"):
                total += int(line.split()[1])
    return total


def test_warm_reads_are_spliced_and_exact(s3, bucket, proxy, ws, mounter):
    """Reads the block cache holds whole are spliced from its files into
    the FUSE device: the daemon writes none of their bytes itself, and the
    reader gets exactly the object's bytes, in and across blocks and at the
    end, after a remount (blocks checked at first use) and after."""
    body = os.urandom(9 * MiB + 4321)
    s3.put_object(Bucket=bucket, Key="w/warm.bin", Body=body)
    cfg, m = mount_s3(ws, mounter, proxy, bucket)
    assert child_read(m / "w/warm.bin")["sha256"] == sha256(body)
    m.unmount()
    drop_caches()
    proxy.reset_counts()
    m = mounter.mount(cfg)
    ranges = ((0, -1), (0, 1), (MiB - 3, 10), (5 * MiB + 7, 2 * MiB + 1),
              (3 * MiB, 3 * MiB), (len(body) - 100, 100), (len(body) - 5000, -1))
    for rnd in range(2):
        before = _written(m)
        for off, n in ranges:
            drop_caches()
            res = child_read(m / "w/warm.bin", offset=off, length=n)
            want = body[off:] if n < 0 else body[off:off + n]
            assert res["ok"] and res["sha256"] == sha256(want), (rnd, off, n, res)
        read = 2 * len(body) + 9 * MiB
        wrote = _written(m) - before
        assert wrote < read // 8, f"round {rnd}: {wrote} of {read} bytes written, not spliced"
    assert gets(proxy, "w/warm.bin") == [], "a cached block was fetched again"


_EVICT_CHILD = r"""
import hashlib, json, os, random, sys
root, rounds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = json.loads(sys.argv[4])
rng = random.Random(seed)
bad = []
reads = 0
for i in range(rounds):
    name = rng.choice(sorted(want))
    fd = os.open(os.path.join(root, name), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        size = os.fstat(fd).st_size
        off = rng.randrange(0, size)
        n = rng.choice([4096, 300000, 1 << 20, 3 << 20])
        got = b""
        while len(got) < n:
            b = os.pread(fd, n - len(got), off + len(got))
            if not b:
                break
            got += b
        reads += 1
        if hashlib.sha256(got).hexdigest() != want[name].get(f"{off}:{n}"):
            bad.append([name, off, n])
    finally:
        os.close(fd)
print(json.dumps({"ok": not bad, "bad": bad[:5], "reads": reads}))
"""


def test_spliced_reads_stay_exact_while_blocks_are_evicted(s3, bucket, proxy, ws, mounter):
    """A cache of four blocks under readers of two 4 MiB files, in parallel:
    blocks are evicted and put again while others are spliced from it, and
    every byte read is the object's."""
    bodies = {f"e/{c}.bin": os.urandom(4 * MiB - 123 * i) for i, c in enumerate("ab")}
    for k, b in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=b)
    _, m = mount_s3(ws, mounter, proxy, bucket, cache_size="4300K", cache_min_free="0")
    for k, b in bodies.items():
        assert child_read(m / k)["sha256"] == sha256(b)
    # each reader draws its ranges from its seed, as the plan here does,
    # and checks them against the true bytes' sha256
    plans = []
    for seed in range(3):
        rng = random.Random(seed)
        want = {k: {} for k in bodies}
        for _ in range(40):
            k = rng.choice(sorted(bodies))
            size = len(bodies[k])
            off = rng.randrange(0, size)
            n = rng.choice([4096, 300000, 1 << 20, 3 << 20])
            want[k][f"{off}:{n}"] = hashlib.sha256(bodies[k][off:off + n]).hexdigest()
        plans.append(want)
    with cf.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(child_call, _EVICT_CHILD, m.path, 40, seed, json.dumps(plans[seed]),
                          timeout=120) for seed in range(3)]
        results = [f.result() for f in futs]
    for r in results:
        assert r.get("ok"), r
        assert r["reads"] == 40
    res = run_hylake("status", m.path, "--prometheus")
    assert res.returncode == 0, res.stderr
    f = _prom(res.stdout)
    assert f["hylake_cache_evictions_total"] >= 4, "no block was evicted"
    assert f["hylake_cache_hits_total"] >= 10, "nothing was read from the cache"


PARQUET_JS = """
import { DuckDBInstance } from "@duckdb/node-api";
const c = await (await DuckDBInstance.create(":memory:")).connect();
const [cmd, path] = process.argv.slice(1);
if (cmd === "write") {
  await c.run(`COPY (SELECT range AS id, hash(range) AS a, hash(range + 1) % 100000 AS b,
                            md5(range::VARCHAR) AS h, (hash(range + 2) % 1000000) * 1.5 AS d,
                            hash(range + 3) AS e FROM range(1000000))
               TO '${path}' (FORMAT parquet, ROW_GROUP_SIZE 250000)`);
  const r = await c.runAndReadAll(`SELECT path_in_schema,
        (CASE WHEN dictionary_page_offset > 0 AND dictionary_page_offset < data_page_offset
              THEN dictionary_page_offset ELSE data_page_offset END)::BIGINT,
        total_compressed_size::BIGINT FROM parquet_metadata('${path}')`);
  console.log(JSON.stringify(r.getRows().map((x) => x.map(String))));
} else {
  const r = await c.runAndReadAll(`SELECT sum(b)::BIGINT, max(d)::DOUBLE, count(*)::BIGINT
                                   FROM read_parquet('${path}')`);
  console.log(JSON.stringify(r.getRows()[0].map(String)));
}
"""


def duckdb(*args):
    r = subprocess.run(["node", "--input-type=module", "-e", PARQUET_JS, *map(str, args)],
                       cwd=DUCKDB, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(300)
def test_a_query_of_two_columns_fetches_their_chunks_not_the_file(
        s3, bucket, proxy, ws, mounter):
    """DuckDB reads 2 of a Parquet file's 6 columns through the mount.  The
    footer tells where their column chunks lie: each is fetched whole when
    its first page is read, and neither read-ahead (the daemon's or the
    kernel's) runs on into the columns between them."""
    if not duckdb_ready():
        pytest.skip("node and DuckDB from npm (tests/npm_ci.sh tests/bench/duckdb) needed")
    local = ws.root / "wide.parquet"
    chunks = duckdb("write", local)
    body = local.read_bytes()
    s3.put_object(Bucket=bucket, Key="t/wide.parquet", Body=body)
    want = duckdb("query", local)
    needed = [(int(at), int(n)) for col, at, n in chunks if col in ("b", "d")]
    assert len(body) > 5 * sum(n for _, n in needed)  # the other columns are most of it

    _, m = mount_s3(ws, mounter, proxy, bucket, cache_size="0")
    drop_caches()
    proxy.reset_counts()
    assert duckdb("query", m / "t/wide.parquet") == want
    reqs = gets(proxy, "t/wide.parquet")
    spans = []
    for r in reqs:
        first, _, last = r.range.split("=", 1)[1].partition("-")
        spans.append((len(body) - int(last), len(body)) if not first
                     else (int(first), int(last) + 1))
    # chunks came whole in one request (the kernel reads ahead through
    # either of DuckDB's handles, which can hide a chunk's start from the
    # daemon now and then: most, not all)
    whole = [(at, n) for at, n in needed if any(a <= at and at + n <= b for a, b in spans)]
    assert len(whole) >= len(needed) // 2, (whole, needed, spans)
    # and little else: the blocks the chunks end in, what the kernel read
    # ahead past them, the tail each open brought (reading every column
    # on the way, as read-ahead did, fetched 2.7 times the file)
    fetched = sum(b - a for a, b in spans)
    assert fetched < 0.75 * len(body), (fetched, needed, len(body), spans)
