"""freshness = lakehouse (the default): files table formats write once are
opened without asking GCS once their generation is known, and served by a
current replica; the log's listing and pointer files stay strict, so a
commit made in GCS is seen by the next read.

Tables are laid out the way Delta, Hudi and Iceberg write them; readers
walk them the way those formats' readers do."""

import errno
import json
import os
import time
import urllib.parse

import pytest

from hylib import child_call, run_hylake
from lakelib import drop_caches, lake, read_all, xattr  # noqa: F401  (lake: a fixture)

LOG = "tbl/_delta_log"
KERNEL_OFF = "entry_timeout=0,attr_timeout=0,negative_timeout=0"


def commit_name(v):
    return f"{LOG}/{v:020d}.json"


def delta_table(lake, nfiles=20):
    """A Delta table in GCS (data files, commit 0, _last_checkpoint),
    replicated to the nfs replica.  Returns the data file names."""
    names = [f"tbl/part-{i:05d}.parquet" for i in range(nfiles)]
    for n in names:
        lake.put(n, os.urandom(32 * 1024))
    add = "\n".join(json.dumps({"add": {"path": n.split("/", 1)[1]}}) for n in names)
    lake.put(commit_name(0), add.encode())
    lake.put(f"{LOG}/_last_checkpoint", b'{"version":0}')
    res = lake.replicate("nfs", "--prefix", "tbl/")
    assert res.returncode == 0, res.stderr
    return names


def read_table(root):
    """Read the table as a Delta reader does: the pointer file, the log's
    listing, every commit, every file the commits add.  Returns
    {name: bytes} of the data files."""
    read_all(root / LOG / "_last_checkpoint")
    out = {}
    for c in sorted(p for p in os.listdir(root / LOG) if p.endswith(".json")):
        for line in read_all(root / LOG / c).decode().splitlines():
            path = json.loads(line).get("add", {}).get("path")
            if path:
                out["tbl/" + path] = read_all(root / "tbl" / path)
    return out


def gcs_kinds(lake, mark):
    kinds = {}
    for e in lake.gcs.requests(mark, bucket=lake.bucket):
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    return kinds


def test_warm_query_asks_gcs_once_per_folder_not_per_file(lake, mounter):
    names = delta_table(lake)
    m = mounter.mount(lake.config(order=("nfs",)))
    got = read_table(m.path)                       # the first query learns
    assert got == {n: lake.data[n] for n in names}
    drop_caches()                                  # reads reach a store
    mark = lake.gcs.control.log_mark()
    got = read_table(m.path)                       # a warm query
    assert got == {n: lake.data[n] for n in names}
    kinds = gcs_kinds(lake, mark)
    assert kinds.get("objects.media", 0) <= 2, kinds   # pointer + newest commit at most
    total = sum(kinds.values())
    assert total <= 8, f"a warm query of {len(names)} files asked GCS {total} times: {kinds}"
    f = m / names[3]
    assert xattr(f, "source") == "nfs"
    assert xattr(f, "freshness") == "immutable (lakehouse: delta data file)"
    assert xattr(m / LOG / "_last_checkpoint", "freshness").startswith("strict")
    out = run_hylake("explain", f).stdout
    assert "freshness   immutable (lakehouse: delta data file)" in out, out

    # strict, for comparison: every open asks GCS, but once: one metadata
    # GET per open (the pointer, the commit and each data file are opened
    # once), and the lookups of a folder's files are answered by a page
    m.unmount()
    m = mounter.mount(lake.config(order=("nfs",), mount={"freshness": "strict"}))
    read_table(m.path)
    mark = lake.gcs.control.log_mark()
    read_table(m.path)
    kinds = gcs_kinds(lake, mark)
    opens = len(names) + 2
    assert kinds.get("objects.get", 0) == opens, kinds
    assert kinds.get("objects.list", 0) <= 3, kinds
    assert sum(kinds.values()) - kinds.get("objects.media", 0) <= opens + 3, kinds


def test_cold_query_learns_a_folder_of_data_files_with_one_listing(lake, mounter):
    """A fresh mount knows no generation: the first look-up of a data file
    lists its folder from that name on, which teaches the files after it,
    so the first query asks GCS about the folder once, not once a file,
    and reads their bytes from the replica."""
    names = delta_table(lake)
    m = mounter.mount(lake.config(order=("nfs",)))
    mark = lake.gcs.control.log_mark()
    got = read_table(m.path)
    assert got == {n: lake.data[n] for n in names}
    reqs = lake.gcs.requests(mark, bucket=lake.bucket)
    per_file = [(e["kind"], e["object"]) for e in reqs
                if (e["object"] or "").startswith("tbl/part-")]
    assert per_file == [], per_file
    kinds = gcs_kinds(lake, mark)
    assert kinds.get("objects.list", 0) <= 5, kinds
    assert sum(kinds.values()) <= 9, kinds
    assert xattr(m / names[7], "source") == "nfs"


def test_new_commit_and_rewritten_pointer_are_seen_at_once(lake, mounter):
    names = delta_table(lake, nfiles=4)
    m = mounter.mount(lake.config(order=("nfs",)), opts=KERNEL_OFF)
    assert set(read_table(m.path)) == set(names)
    # a writer commits version 1 in GCS (the replica has not caught up)
    new = "tbl/part-new.parquet"
    lake.put(new, os.urandom(10000))
    lake.put(commit_name(1), json.dumps({"add": {"path": "part-new.parquet"}}).encode())
    lake.put(f"{LOG}/_last_checkpoint", b'{"version":1}')
    got = read_table(m.path)
    assert new in got and got[new] == lake.data[new], sorted(got)
    assert read_all(m / LOG / "_last_checkpoint") == b'{"version":1}'


def test_probe_for_the_next_commit_is_not_remembered(lake, mounter):
    delta_table(lake, nfiles=2)
    m = mounter.mount(lake.config(order=("nfs",)))    # default kernel timeouts
    read_table(m.path)
    nxt = m / commit_name(1)
    res = child_call("import os, json\ntry:\n    os.stat(%r)\n    print(json.dumps({'e': 0}))\n"
                     "except OSError as e:\n    print(json.dumps({'e': e.errno}))" % str(nxt))
    assert res["e"] == errno.ENOENT, res
    lake.put(commit_name(1), b'{"commitInfo":{}}')
    assert read_all(nxt) == b'{"commitInfo":{}}'


def test_vacuumed_file_is_not_served_once_a_listing_shows_it_gone(lake, mounter):
    names = delta_table(lake, nfiles=6)
    m = mounter.mount(lake.config(order=("nfs",)), opts=KERNEL_OFF)
    read_table(m.path)
    gone = names[2]
    lake.gcs.client.delete(lake.bucket, gone)      # VACUUM; the replica keeps it
    assert (lake.nfs / gone).exists()
    # trusted as immutable, it is still served until something shows the
    # deletion; a listing of its folder does
    listed = os.listdir(m / "tbl")
    assert gone.split("/")[1] not in listed
    with pytest.raises(FileNotFoundError):
        read_all(m / gone)
    assert read_all(m / names[3]) == lake.data[names[3]]


def test_hudi_and_iceberg_layouts(lake, mounter):
    files = {
        "h/.hoodie/hoodie.properties": b"hoodie.table.name=h\n",
        "h/.hoodie/20240101120000000.commit": b"{}",
        "h/2024/01/01/.hoodie_partition_metadata": b"#partition\n",
        "h/2024/01/01/f1-0_0-1-1_20240101120000000.parquet": os.urandom(5000),
        "i/metadata/version-hint.text": b"1",
        "i/metadata/v1.metadata.json": b"{}",
        "i/metadata/snap-1-1-a.avro": os.urandom(300),
        "i/data/00000-0-a.parquet": os.urandom(4000),
    }
    for n, b in files.items():
        lake.put(n, b)
    assert lake.replicate("nfs").returncode == 0
    m = mounter.mount(lake.config(order=("nfs",)), opts=KERNEL_OFF)
    # readers start at the timeline / the version hint
    os.listdir(m / "h/.hoodie")
    read_all(m / "i/metadata/version-hint.text")
    want = {
        "h/.hoodie/hoodie.properties": "strict",
        "h/.hoodie/20240101120000000.commit": "immutable",
        "h/2024/01/01/f1-0_0-1-1_20240101120000000.parquet": "immutable",
        "i/metadata/version-hint.text": "strict",
        "i/metadata/v1.metadata.json": "immutable",
        "i/data/00000-0-a.parquet": "immutable",
    }
    for n, kind in want.items():
        assert read_all(m / n) == files[n]
        assert xattr(m / n, "freshness").startswith(kind), (n, xattr(m / n, "freshness"))
    # mutable pointers are seen at once
    lake.put("i/metadata/version-hint.text", b"2")
    lake.put("h/.hoodie/hoodie.properties", b"hoodie.table.name=h2\n")
    assert read_all(m / "i/metadata/version-hint.text") == b"2"
    assert read_all(m / "h/.hoodie/hoodie.properties") == b"hoodie.table.name=h2\n"


def test_freshness_patterns_come_first(lake, mounter, ws):
    lake.put("raw/a.csv", b"1")
    lake.put("raw/b.csv", b"2")
    cfg = lake.config(order=("nfs",))
    with open(cfg, "a") as f:
        f.write("\n[freshness]\nraw/* = immutable\n")
    m = mounter.mount(cfg, opts=KERNEL_OFF)
    assert read_all(m / "raw/a.csv") == b"1"
    assert xattr(m / "raw/a.csv", "freshness") == "immutable (pattern 'raw/*')"
    lake.put("raw/a.csv", b"changed")               # against the rule
    assert read_all(m / "raw/a.csv") == b"1", "an immutable name asked GCS"
    bad = lake.config(order=("nfs",))
    with open(bad, "a") as f:
        f.write("\n[freshness]\nraw/* = sometimes\n")
    res = run_hylake("check", bad)
    assert res.returncode == 2 and "bad freshness 'sometimes'" in res.stderr, res.stderr


def test_gcs_only_mount_opens_table_files_without_metadata_requests(lake, mounter):
    """No replica: the bytes come from GCS, but opening a known data file
    asks GCS nothing more (the version map holds its generation)."""
    names = delta_table(lake, nfiles=12)
    m = mounter.mount(lake.config(order=()))
    read_table(m.path)
    drop_caches()                                  # the bytes must be fetched
    mark = lake.gcs.control.log_mark()
    assert read_table(m.path) == {n: lake.data[n] for n in names}
    kinds = gcs_kinds(lake, mark)
    media = kinds.pop("objects.media", 0)
    assert media >= len(names), kinds          # the data itself
    assert sum(kinds.values()) <= 4, f"metadata requests of a warm query: {kinds}"
    assert xattr(m / names[0], "freshness").startswith("immutable")


@pytest.mark.timeout(150)
def test_lakehouse_churn_stays_consistent(lake, mounter):
    """A writer that follows the table format (new data files and commits,
    never rewritten; _last_checkpoint rewritten), a replicator catching the
    nfs replica up at random moments, and readers walking the table all the
    while: every read returns the bytes its name was written with, and the
    pointer file is never older than the newest write finished before the
    open (close-to-open, as strict)."""
    import random
    import threading
    import time
    seed = int(os.environ.get("HYLAKE_SEED") or random.SystemRandom().randrange(2**32))
    secs = float(os.environ.get("HYLAKE_CONSISTENCY_SECS") or 20)
    print(f"\nHYLAKE_SEED={seed}")
    rng = random.Random(seed)
    lock = threading.Lock()
    files, commits = {}, []            # name -> bytes; [(version, data file)]
    pointer = []                       # [[t_done, bytes]] in write order; t_done
                                       # None while the write is in flight

    def commit(v):
        name = f"tbl/part-{v:05d}.parquet"
        data = rng.randbytes(rng.randrange(1, 300 * 1024))
        lake.put(name, data)
        lake.put(commit_name(v), json.dumps({"add": {"path": name[4:]}}).encode())
        body = json.dumps({"version": v}).encode()
        entry = [None, body]           # a read may see it before put returns
        with lock:
            pointer.append(entry)
        lake.put(f"{LOG}/_last_checkpoint", body)
        with lock:
            files[name] = data
            commits.append((v, name))
            entry[0] = time.monotonic()

    for v in range(5):
        commit(v)
    cfg = lake.config(order=("nfs",))
    assert lake.replicate("nfs", cfg=cfg).returncode == 0
    m = mounter.mount(cfg, opts=KERNEL_OFF)
    stop = threading.Event()
    errors, bad, stats = [], [], {"reads": 0, "pointer": 0, "commits": 0,
                                  "estale": 0}

    def writer():
        v = 5
        try:
            while not stop.wait(rng.uniform(0.2, 0.5)):
                commit(v)
                v += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"writer: {e!r}")

    def replicator():
        rr = random.Random(seed + 1)
        try:
            while not stop.wait(rr.uniform(0.5, 2)):
                lake.replicate("nfs", cfg=cfg, timeout=60)
        except Exception as e:  # noqa: BLE001
            errors.append(f"replicator: {e!r}")

    def reader(k):
        rr = random.Random(seed + 10 + k)
        try:
            while not stop.is_set():
                t_open = time.monotonic()
                with lock:
                    floor = max((i for i, (t, _) in enumerate(pointer)
                                 if t is not None and t < t_open), default=-1)
                    known = list(commits)
                try:
                    body = read_all(m / LOG / "_last_checkpoint")
                except OSError as e:
                    if e.errno != errno.ESTALE:   # rewritten while open:
                        raise                     # a refusal, never old bytes
                    with lock:
                        stats["estale"] += 1
                    continue
                with lock:
                    idx = [i for i, (_, b) in enumerate(pointer) if b == body]
                    stats["pointer"] += 1
                if not idx or max(idx) < floor:
                    bad.append(("pointer", body, floor))
                log = sorted(p for p in os.listdir(m / LOG) if p.endswith(".json"))
                if len(log) < len(known):
                    bad.append(("listing older than finished commits", len(log), len(known)))
                v, name = rr.choice(known)
                entry = json.loads(read_all(m / commit_name(v)))
                if entry != {"add": {"path": name[4:]}}:
                    bad.append(("commit", v, entry))
                data = files[name]
                off = rr.randrange(len(data))
                with open(m / name, "rb") as f:
                    got = os.pread(f.fileno(), rr.randrange(1, 200 * 1024), off)
                if got != data[off:off + len(got)] or not got:
                    bad.append(("data", name, off))
                with lock:
                    stats["reads"] += 1
                    stats["commits"] = len(commits)
        except Exception as e:  # noqa: BLE001
            errors.append(f"reader {k}: {e!r}")

    threads = [threading.Thread(target=writer, daemon=True),
               threading.Thread(target=replicator, daemon=True)]
    threads += [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    try:
        stop.wait(secs)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    report = f"seed {seed}: {stats}"
    print(report)
    assert not errors, f"{errors}\n{report}"
    assert not bad, f"{bad[:5]}\n{report}"
    assert stats["reads"] >= 30 and stats["commits"] >= 20, report
    assert stats["estale"] <= 0.3 * stats["pointer"], f"too many refused reads\n{report}"


def test_table_folders_outlive_the_kernels_timeouts(lake, mounter):
    """A table's folders (its root, its log folder) last as long as the
    table: once recognised, the kernel keeps their entries, so a query after
    the entry timeout lists only the log folder, not the path to it.  (The
    first lookup of the root came before the table was recognised: the
    entry it made expires once, the next one does not.)"""
    names = delta_table(lake, nfiles=4)
    m = mounter.mount(lake.config(order=("nfs",), mount={
        "entry_timeout": "1s", "attr_timeout": "1s"}))
    read_table(m.path)
    time.sleep(1.5)
    read_table(m.path)
    time.sleep(1.5)                                # past the entry timeout
    mark = lake.gcs.control.log_mark()
    got = read_table(m.path)
    assert got == {n: lake.data[n] for n in names}
    lists = [urllib.parse.parse_qs(e.get("query") or "")
             for e in lake.gcs.requests(mark, bucket=lake.bucket)
             if e["kind"] == "objects.list"]
    asked = [(q.get("prefix", [""])[0], q.get("startOffset", [""])[0]) for q in lists]
    # the log's own listing (the pointer's lookup, the reader's listing),
    # and no lookup of a folder on the way (a file's entry the kernel
    # dropped under memory pressure may be looked up again: not a folder)
    assert ("tbl/_delta_log/", "") in asked, asked
    assert not [a for a in asked if a[1] in ("tbl", "tbl/_delta_log")], asked
    # the log folder's listing stays strict: a new commit shows at once
    lake.put(commit_name(1), b"{}")
    assert commit_name(1).rsplit("/", 1)[1] in os.listdir(m / LOG)
