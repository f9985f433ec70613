"""Replica routing: GCS (the test server) as the source, a posix folder and an
S3 bucket (radosgw) as replicas.  Each scenario checks the bytes and, through
the user.hylake.* xattrs and the stores' request logs, which store served them.

Replicas are made here the way a replicator makes them: a copy stamped with
the source generation (and crc32c) it holds, or an unstamped copy that only
its MD5 can prove."""

import os
import signal
import threading
import time

from proxy import FaultProxy
from hylib import MiB, child_call, child_read, metric, processes_for, run_hylake, sha256
from lakelib import OBJ, drop_caches, lake, read_all, xattr  # noqa: F401  (lake: a fixture)


def test_preferred_current_replica_serves_and_gcs_sends_no_bytes(lake, mounter):
    for n in ("t/a", "t/b"):
        lake.put(n)
        lake.to_nfs(n)
        lake.to_s3(n)
    m = mounter.mount(lake.config())
    mark = lake.gcs.control.log_mark()
    for n in ("t/a", "t/b"):
        assert read_all(m / n) == lake.data[n]
        assert xattr(m / n, "source") == "nfs"
        assert xattr(m / n, "generation") == str(lake.gen(n))
        assert xattr(m / n, "replicas").startswith("nfs=current ")
    assert lake.media_reads(mark) == [], "GCS served data bytes although replicas are current"
    out = run_hylake("explain", m / "t/a")
    assert out.returncode == 0, out.stderr
    assert f"version     {lake.gen('t/a')}" in out.stdout
    assert "served by   nfs" in out.stdout and "nfs          current" in out.stdout
    out = run_hylake("explain", m / "t")
    assert out.returncode == 1 and "is a folder" in out.stderr
    # the other order prefers the S3 site
    m2 = mounter.mount(lake.config(order=("s3", "nfs")))
    mark = lake.gcs.control.log_mark()
    assert read_all(m2 / "t/a") == lake.data["t/a"]
    assert xattr(m2 / "t/a", "source") == "s3"
    assert lake.media_reads(mark) == []


def test_lagging_preferred_replica_is_skipped(lake, mounter):
    lake.put("t/x")
    old_gen = lake.gen("t/x")
    old = lake.data["t/x"]
    lake.to_nfs("t/x")                       # nfs replicates generation 1
    lake.put("t/x")                          # GCS moves on
    lake.to_nfs("t/x", gen=old_gen, data=old)  # nfs still holds the old one
    lake.to_s3("t/x")                        # s3 has caught up
    m = mounter.mount(lake.config())
    mark = lake.gcs.control.log_mark()
    assert read_all(m / "t/x") == lake.data["t/x"]
    assert xattr(m / "t/x", "source") == "s3"
    assert f"nfs=lagging:{old_gen}" in xattr(m / "t/x", "replicas")
    assert lake.media_reads(mark) == []


def test_all_replicas_lag_or_lack_then_gcs_serves(lake, mounter):
    lake.put("t/old")
    old_gen, old = lake.gen("t/old"), lake.data["t/old"]
    lake.put("t/old")
    lake.to_nfs("t/old", gen=old_gen, data=old)
    lake.to_s3("t/old", gen=old_gen, data=old)
    lake.put("t/missing")                    # on no replica at all
    m = mounter.mount(lake.config())
    mark = lake.gcs.control.log_mark()
    for n in ("t/old", "t/missing"):
        assert read_all(m / n) == lake.data[n]
        assert xattr(m / n, "source") == "source"
        assert lake.media_reads(mark, n), f"{n}: GCS should have served it"
    assert "s3=absent" in xattr(m / "t/missing", "replicas")


def test_overwrite_after_replication_strict_serves_new_bytes(lake, mounter):
    lake.put("t/o")
    lake.to_nfs("t/o")
    lake.to_s3("t/o")
    m = mounter.mount(lake.config(mount={"replica_recheck": "1s"}),
                      opts="entry_timeout=0,attr_timeout=0")
    assert read_all(m / "t/o") == lake.data["t/o"]
    assert xattr(m / "t/o", "source") == "nfs"
    lake.put("t/o", os.urandom(OBJ + 4096))  # GCS overwrites; replicas lag now
    got = read_all(m / "t/o")
    assert got == lake.data["t/o"], "strict mode served a stale replica copy"
    assert xattr(m / "t/o", "source") == "source"
    # the replicas catch up: once a lagging replica is due to be asked again
    # (replica_recheck), it serves again
    lake.to_nfs("t/o")
    time.sleep(1.2)
    drop_caches()                    # else the kernel's pages answer
    assert read_all(m / "t/o") == lake.data["t/o"]
    assert xattr(m / "t/o", "source") == "nfs"


def test_copies_of_another_version_are_never_served(lake, mounter):
    lake.put("t/g")
    # nfs: right bytes, stamped with another generation -> not proven
    lake.to_nfs("t/g", gen=lake.gen("t/g") + 1)
    # s3: unstamped, with other bytes of the same size -> MD5 differs
    lake.to_s3("t/g", data=os.urandom(OBJ), stamped=False)
    # t/m: small enough to come in one read, so the whole-object crc32c
    # check applies.  nfs has the right stamp over other bytes; s3 holds an
    # unstamped copy with the right bytes, which its MD5 proves.
    small = 32 * 1024
    lake.put("t/m", os.urandom(small))
    lake.to_s3("t/m", stamped=False)
    lake.to_nfs("t/m", gen=lake.gen("t/m"), data=os.urandom(small), crc=True)
    m = mounter.mount(lake.config())
    assert read_all(m / "t/g") == lake.data["t/g"]
    assert xattr(m / "t/g", "source") == "source"
    assert "s3=unproven" in xattr(m / "t/g", "replicas")
    assert read_all(m / "t/m") == lake.data["t/m"], "a corrupt stamped copy was served"
    assert "nfs=bad" in xattr(m / "t/m", "replicas")
    assert xattr(m / "t/m", "source") == "s3"


def test_replica_failing_mid_read_fails_over_at_the_same_offset(lake, mounter, proxy):
    big = os.urandom(24 * MiB)
    lake.put("t/big", big)
    lake.to_s3("t/big")
    m = mounter.mount(lake.config(s3_endpoint=proxy.url, order=("s3",)))
    os.stat(m / "t/big")
    # every ranged GET to the S3 site dies 64 KiB into its body
    proxy.set_fault("reset", match=lambda r: r.method == "GET" and r.range is not None,
                    after_bytes=64 * 1024)
    res = child_read(m / "t/big", timeout=120)
    proxy.clear_faults()
    assert res["ok"], res
    assert res["sha256"] == sha256(big), "fail-over returned wrong bytes"
    assert proxy.injected, "the S3 site never saw a read"


def test_source_down_serves_known_names_from_replicas(lake, mounter, gcs):
    lake.put("t/known")
    lake.to_nfs("t/known")
    lake.put("t/unknown")
    lake.to_nfs("t/unknown")
    cfg = lake.config(mount={"serve_stale_when_source_down": "10m",
                             "request_timeout": "1s", "op_timeout": "4s", "retries": "0"})
    m = mounter.mount(cfg, opts="entry_timeout=0,attr_timeout=0,negative_timeout=0")
    assert read_all(m / "t/known") == lake.data["t/known"]   # now in the map
    gcs.control.config(delay_ms=60_000)                      # GCS stops answering
    try:
        res = child_read(m / "t/known", timeout=60)
        assert res["ok"] and res["sha256"] == sha256(lake.data["t/known"]), res
        res = child_read(m / "t/unknown", timeout=60)
        assert not res["ok"] and not res.get("timed_out"), res
        assert res["elapsed"] < 20, f"failing took {res['elapsed']:.1f}s"
    finally:
        gcs.control.config(delay_ms=0)


def test_map_survives_kill9_and_is_reused(lake, mounter, proxy, ws):
    names = [f"t/k{i}" for i in range(20)]
    for n in names:
        lake.put(n, os.urandom(4096))
        lake.to_s3(n)
    # No hedging: a read the source answered first would leave a copy's
    # bytes unproven, and proving them after the remount costs a request.
    cfg = lake.config(s3_endpoint=proxy.url, order=("s3",),
                      mount={"hedge_budget": "0"})
    m = mounter.mount(cfg)
    for n in names:
        assert read_all(m / n) == lake.data[n]
    time.sleep(0.2)                          # let the last batch commit
    for pid in processes_for(m.path):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    m.unmount()
    proxy.reset_counts()
    m = mounter.mount(cfg)
    for n in names:
        assert read_all(m / n) == lake.data[n]
    heads = proxy.counts.get("HEAD", 0)
    assert heads == 0, f"remount after kill -9 asked the replica {heads} HEADs (map lost?)"
    # a deleted map only costs round trips
    m.unmount()
    import shutil
    shutil.rmtree(ws.state_dir)
    proxy.reset_counts()
    m = mounter.mount(cfg)
    for n in names:
        assert read_all(m / n) == lake.data[n]
    # one HEAD for the copy, one for its block manifest (none here: the
    # copy is then proven by its first read)
    assert proxy.counts.get("HEAD", 0) == 2 * len(names)


def test_bounded_freshness_trusts_recent_versions_only(lake, mounter):
    lake.put("t/b")
    lake.to_nfs("t/b")
    old = lake.data["t/b"]
    m = mounter.mount(lake.config(mount={"freshness": "bounded:3s"}),
                      opts="entry_timeout=0,attr_timeout=0")
    assert read_all(m / "t/b") == old
    t0 = time.monotonic()
    lake.put("t/b", os.urandom(OBJ))
    stale_seen = 0
    while time.monotonic() - t0 < 10:
        got = read_all(m / "t/b")
        assert got in (old, lake.data["t/b"]), "a mix of versions"
        if got == old:
            stale_seen = time.monotonic() - t0
        else:
            break
        time.sleep(0.2)
    assert got == lake.data["t/b"], "the new version never showed"
    assert stale_seen <= 3.5, f"served a version {stale_seen:.1f}s past the 3 s bound"


def test_gcs_bucket_as_replica_is_judged_by_its_stamp(lake, mounter, gcs, ws):
    """A GCS bucket can be a replica too: its copies count by the stamped
    source generation in their metadata, never by the bucket's own."""
    rep = gcs.make_bucket("gcs-replica")
    try:
        lake.put("t/s")
        lake.put("t/u")
        own = gcs.client.upload(rep, "t/s", lake.data["t/s"],
                                metadata={"goog-generation": str(lake.gen("t/s"))})
        gcs.client.upload(rep, "t/u", os.urandom(OBJ))   # other bytes, no stamp
        cfg = lake.config(order=())
        with open(cfg, "a") as f:
            f.write(f"\n[replica far]\ntype = gcs\nendpoint = {gcs.url}\n"
                    f"bucket = {rep}\ncredentials = {ws.sa_key()}\n")
        m = mounter.mount(cfg)
        mark = gcs.control.log_mark()
        assert read_all(m / "t/s") == lake.data["t/s"]
        assert xattr(m / "t/s", "source") == "far"
        assert lake.media_reads(mark, "t/s") == [], "the source served a replicated file"
        reads = gcs.requests(mark, kind="objects.media", bucket=rep)
        assert reads, "the replica bucket served nothing"
        assert read_all(m / "t/u") == lake.data["t/u"]
        assert xattr(m / "t/u", "source") == "source"
        assert "far=unproven" in xattr(m / "t/u", "replicas")
        assert own["generation"] != str(lake.gen("t/s"))
    finally:
        gcs.drop_bucket(rep)


def _gets(proxy, name):
    return [r for r in proxy.requests("GET") if r.key.endswith(name)]


def test_slow_read_is_hedged_to_the_next_store(lake, mounter, proxy):
    """A read stuck past its store's p95 is also asked of the next store;
    the first answer wins.  With hedge_budget = 0 the reader waits."""
    for n, size in (("t/warm", 20 * MiB), ("t/slow", 4 * MiB), ("t/slow2", 4 * MiB)):
        lake.put(n, os.urandom(size))
        lake.to_s3(n)
    # no read-ahead: one request per 1 MiB block, enough of them for a p95
    cfg = lake.config(s3_endpoint=proxy.url, order=("s3",), mount={"read_ahead": "0"})
    # A budget of 5% is about what the slowest 5% of ordinary reads spend
    # (the hedge fires past p95), so the stuck read might find none left:
    # give it room.  test_hedges_stay_within_the_budget checks the budget.
    m = mounter.mount(cfg, opts="hedge_budget=50")
    assert read_all(m / "t/warm") == lake.data["t/warm"]   # p95 learned
    assert len(_gets(proxy, "t/warm")) >= 16
    proxy.set_fault("delay", match=lambda r: r.method == "GET" and r.key.endswith("t/slow"),
                    count=1, seconds=8)
    mark = lake.gcs.control.log_mark()
    res = child_read(m / "t/slow", timeout=60)
    assert res["ok"] and res["sha256"] == sha256(lake.data["t/slow"]), res
    assert res["elapsed"] < 5, f"a stuck read was not hedged ({res['elapsed']:.1f}s)"
    assert lake.media_reads(mark, "t/slow"), "the hedge never reached the source"
    proxy.clear_faults()
    m.unmount()

    m = mounter.mount(cfg, opts="hedge_budget=0")
    assert read_all(m / "t/warm") == lake.data["t/warm"]
    proxy.set_fault("delay", match=lambda r: r.method == "GET" and r.key.endswith("t/slow2"),
                    count=1, seconds=3)
    mark = lake.gcs.control.log_mark()
    res = child_read(m / "t/slow2", timeout=60)
    proxy.clear_faults()
    assert res["ok"] and res["sha256"] == sha256(lake.data["t/slow2"]), res
    assert lake.media_reads(mark, "t/slow2") == [], "hedge_budget=0 still hedged"
    assert res["elapsed"] >= 2.9, "the delayed read did not wait"


def test_hedges_stay_within_the_budget(lake, mounter, proxy):
    """A browned-out site: every read is slow.  Only about hedge_budget of
    them may go to the source as well."""
    for n, size in (("t/warm", 16 * MiB), ("t/brown", 32 * MiB)):
        lake.put(n, os.urandom(size))
        lake.to_s3(n)
    m = mounter.mount(lake.config(s3_endpoint=proxy.url, order=("s3",),
                                  mount={"read_ahead": "0"}))
    assert read_all(m / "t/warm") == lake.data["t/warm"]
    proxy.set_fault("delay", match=lambda r: r.method == "GET", seconds=0.15)
    mark = lake.gcs.control.log_mark()
    sent = metric(m, "hylake_hedged_reads_total")
    res = child_read(m / "t/brown", timeout=120)
    proxy.clear_faults()
    assert res["ok"] and res["sha256"] == sha256(lake.data["t/brown"]), res
    sent = metric(m, "hylake_hedged_reads_total") - sent
    reads = len(_gets(proxy, "t/brown")) + len(lake.media_reads(mark, "t/brown"))
    media = len(lake.media_reads(mark, "t/brown"))
    # budget 5%: one saved-up hedge plus 5% of the (32) reads of 1 MiB.
    # Counted where they are sent: once the replica's p95 has taken the
    # brown-out in, a hedge races the replica's answer and may be
    # cancelled before GCS sees it
    assert 1 <= sent <= 4, f"{sent:g} of {reads} reads were hedged to the source"
    assert media <= sent, f"GCS served {media} reads of t/brown, {sent:g} hedged"


def test_breaker_keeps_reads_away_from_a_failing_replica(lake, mounter, proxy):
    names = [f"t/f{i}" for i in range(8)]
    for n in names:
        lake.put(n, os.urandom(256 * 1024))
        lake.to_s3(n)
    m = mounter.mount(lake.config(s3_endpoint=proxy.url, order=("s3",),
                                  mount={"retries": "0"}))
    for n in names:
        os.stat(m / n)
    proxy.set_fault("reset", match=lambda r: r.method == "GET")
    for n in names[:6]:
        assert read_all(m / n) == lake.data[n]
    tried = [n for n in names[:6] if _gets(proxy, n)]
    # three failures in a row open the breaker: later files do not try
    assert len(tried) <= 4, f"files that still tried the failing replica: {tried}"
    assert xattr(m / names[6], "source") == "source", "the next read would go to s3"
    proxy.clear_faults()
    time.sleep(1.2)                  # the cooldown ends; reads go back
    assert read_all(m / names[7]) == lake.data[names[7]]
    assert xattr(m / names[7], "source") == "s3"


def test_clearly_slower_replica_is_ranked_behind(lake, mounter, proxy):
    """Configured order first, unless a replica is clearly slower (EWMA)
    than a later one."""
    # 24 reads of 1 MiB: the first, which verifies the whole copy, is
    # not timed, and 16 timed ones make a latency the ranking uses
    lake.put("t/nfsonly", os.urandom(24 * MiB))
    lake.to_nfs("t/nfsonly")
    lake.put("t/both", os.urandom(64 * MiB))
    lake.to_nfs("t/both")
    lake.to_s3("t/both")
    m = mounter.mount(lake.config(s3_endpoint=proxy.url, order=("s3", "nfs"),
                                  mount={"hedge_budget": "0", "read_ahead": "0"}))
    assert read_all(m / "t/nfsonly") == lake.data["t/nfsonly"]   # nfs measured
    proxy.set_fault("delay", match=lambda r: r.method == "GET", seconds=0.05)
    assert read_all(m / "t/both") == lake.data["t/both"]
    proxy.clear_faults()
    s3_reads = len(_gets(proxy, "t/both"))
    assert 16 <= s3_reads <= 40, f"s3 served {s3_reads} of 64 reads"
    assert xattr(m / "t/both", "source") == "nfs"


def test_bounded_freshness_keeps_trusting_a_reconfirmed_version(lake, mounter):
    """Once the bound has passed, one confirmation by the source makes the
    version trusted for another bound: opens within it ask nothing."""
    lake.put("t/r")
    lake.to_nfs("t/r")
    m = mounter.mount(lake.config(mount={"freshness": "bounded:2s"}),
                      opts="entry_timeout=0,attr_timeout=0")
    assert read_all(m / "t/r") == lake.data["t/r"]
    time.sleep(2.3)                              # the bound has passed
    assert read_all(m / "t/r") == lake.data["t/r"]   # the source confirms
    time.sleep(0.3)                              # the batch is written
    mark = lake.gcs.control.log_mark()
    for _ in range(3):
        assert read_all(m / "t/r") == lake.data["t/r"]
    asked = [e["kind"] for e in lake.gcs.requests(mark, kind="objects.")]
    assert asked == [], f"a version confirmed 0.3 s ago was asked again: {asked}"


def test_concurrent_opens_of_one_name_share_one_source_request(lake, mounter, gcs):
    lake.put("t/hot", os.urandom(64 * 1024))
    lake.to_nfs("t/hot")
    m = mounter.mount(lake.config(), opts="entry_timeout=0,attr_timeout=0")
    os.stat(m / "t/hot")
    gcs.control.config(delay_ms=400)     # a slow source: the opens overlap
    try:
        mark = gcs.control.log_mark()
        res = child_call(r"""
import hashlib, json, sys, threading
path, n = sys.argv[1], 8
out, barrier = [], threading.Barrier(n)
def one():
    barrier.wait()
    with open(path, "rb") as f:
        out.append(hashlib.sha256(f.read()).hexdigest())
ts = [threading.Thread(target=one) for _ in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps({"ok": True, "sums": out}))
""", m / "t/hot", timeout=60)
    finally:
        gcs.control.config(delay_ms=0)
    assert res.get("ok") and res["sums"] == [sha256(lake.data["t/hot"])] * 8, res
    gets = [e for e in gcs.requests(mark, kind="objects.get") if e["object"] == "t/hot"]
    assert 1 <= len(gets) <= 2, f"8 concurrent opens sent {len(gets)} metadata requests"


def test_an_open_never_shares_a_source_answer_older_than_itself(lake, mounter):
    """Single flight keeps close-to-open: open A's request reaches GCS, the
    object is overwritten, then open B begins while A's answer (the old
    generation) is still on its way.  B must not take A's answer."""
    lake.put("t/c2o")
    old = lake.data["t/c2o"]
    with FaultProxy(lake.gcs.url) as p:
        m = mounter.mount(lake.config(source_endpoint=p.url),
                          opts="entry_timeout=0,attr_timeout=0")
        os.stat(m / "t/c2o")

        def metadata_get(r):
            return r.method == "GET" and "/o/" in r.path and "alt=media" not in r.query

        f = p.set_fault("delay", match=metadata_get, count=1, seconds=2, when="response")
        out = {}
        a = threading.Thread(target=lambda: out.update(a=child_read(m / "t/c2o")))
        a.start()
        t = time.monotonic() + 10
        while not f.fired and time.monotonic() < t:
            time.sleep(0.01)
        assert f.fired, "open A never asked GCS"
        time.sleep(0.3)                  # A's request is at GCS
        lake.put("t/c2o")                # overwritten: B begins after this
        b = child_read(m / "t/c2o")
        a.join(timeout=30)
    assert b["ok"] and b["sha256"] == sha256(lake.data["t/c2o"]), \
        "an open that began after the overwrite got the old generation"
    a = out["a"]     # pinned the old generation, now gone: bytes of one or ESTALE
    assert (a["ok"] and a["sha256"] in (sha256(old), sha256(lake.data["t/c2o"]))
            or a.get("errno") == 116), a
