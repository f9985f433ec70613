"""The site journal: `hylake replicate --follow --to SITE` follows the
bucket's subscription once for a site, copies each new generation to the
site (an S3 bucket on radosgw) and keeps the site's journal there; mounts
with `journal = SITE` learn every change, and what the site holds, from it
with local reads: no request to GCS and none to Pub/Sub (their config has
no subscription).  GCS requests of the mounts are seen by a proxy in front
of the GCS test server that only the mounts use."""

import json
import os
import signal
import statistics
import subprocess
import time

import pytest

from feedlib import PROJECT, Churn, feed, figures, wait_for  # noqa: F401  (feed: a fixture)
from hylib import HYLAKE_BIN, run_hylake
from lakelib import lake  # noqa: F401  (a fixture)
from proxy import FaultProxy

STALL = "3s"
STALE_MAX = 5.0    # s: delivery delay, the follower, a poll and the stall time


class Follower:
    """One `hylake replicate --follow` process, output in files."""

    def __init__(self, lake, cfg, name, *args):
        self.out = lake.ws.root / f"{name}.out"
        self.err = lake.ws.root / f"{name}.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.p = subprocess.Popen(
                [str(HYLAKE_BIN), "replicate", str(cfg), "--to", "s3", "--follow",
                 "--heartbeat", "300ms", *args],
                stdout=o, stderr=e, stdin=subprocess.DEVNULL)

    def stderr(self):
        return self.err.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        """Stop it; the exit status (a killed process: the signal, negated)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout=30)
        err = self.stderr()
        assert "runtime error" not in err and "Sanitizer" not in err, err
        return rc


@pytest.fixture
def site(lake, feed, request):
    """The follower's config (the subscription, the S3 site) and a way to start
    followers; every follower is stopped at the end."""
    _, sub = feed
    cfg = lake.config(order=("s3",))
    with open(cfg, "a") as f:
        f.write(f"\n[changes]\nsubscription = {sub}\n"
                f"endpoint = {request.getfixturevalue('pubsub_server').url}\n")
    started = []

    def start(name="follower", *args, config=None):
        fol = Follower(lake, config or cfg, f"{name}{len(started)}", *args)
        started.append(fol)
        return fol

    start.cfg = cfg
    yield start
    for fol in started:
        if fol.p.poll() is None:
            fol.stop(signal.SIGKILL)


def mount_config(lake, gcs_proxy, s3_proxy=None, fresh="bounded:10m"):
    # no hedging: a read the site is slow to answer (a loaded machine)
    # would otherwise be asked of GCS too, within the hedge budget
    cfg = lake.config(order=("s3",), source_endpoint=gcs_proxy.url,
                      s3_endpoint=s3_proxy.url if s3_proxy else None,
                      mount={"freshness": fresh, "replica_recheck": "10m",
                             "hedge_budget": "0"})
    with open(cfg, "a") as f:
        f.write(f"\n[changes]\njournal = s3\nstall = {STALL}\n")
    return cfg


def journal(lake):
    """The journal's batches on the site, in order: [(seq, [change])]."""
    out, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = lake.s3.list_objects_v2(Bucket=lake.s3_bucket,
                                       Prefix=".hylake/journal/0", **kw)
        for o in page.get("Contents", []):
            doc = json.loads(lake.s3.get_object(Bucket=lake.s3_bucket,
                                                Key=o["Key"])["Body"].read())
            out.append((doc["seq"], doc["changes"]))
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


def head(lake):
    return json.loads(lake.s3.get_object(Bucket=lake.s3_bucket,
                                         Key=".hylake/journal/head")["Body"].read())


def wait_journal(lake, pred, what, timeout=20):
    end = time.monotonic() + timeout
    while True:
        try:
            j = journal(lake)
        except Exception:   # noqa: BLE001  (no journal yet)
            j = []
        if pred(j):
            return j
        assert time.monotonic() < end, f"{what}: {j[-3:]}"
        time.sleep(0.1)


def batch_of(j, name, gen):
    """The batch that journaled generation gen of name, or None."""
    for seq, changes in j:
        if any(c["kind"] == "finalize" and (c["name"], c["generation"]) == (name, gen)
               for c in changes):
            return seq
    return None


def applied(m, seq):
    """Wait until mount m has applied the journal up to batch seq."""
    wait_for(m, f"batch {seq} applied", lambda f: f.get("hylake_journal_batch", 0) >= seq
             and f["hylake_feed_healthy"] == 1)


def finalized(j):
    """{(name, generation): times journaled} of the finalize changes that came
    from the subscription (a reconcile's come from a listing: no id)."""
    seen = {}
    for _, changes in j:
        for c in changes:
            if c["kind"] == "finalize" and c["id"]:
                k = (c["name"], c["generation"])
                seen[k] = seen.get(k, 0) + 1
    return seen


def test_a_change_reaches_the_mounts_through_the_journal(lake, site, mounter):
    """Two mounts of a site learn a new object and an overwrite from the
    journal: they look the names and their folder up, and read the site's
    copy, asking neither GCS nor Pub/Sub."""
    lake.put("t/a", b"first")
    fol = site()
    wait_for_head = time.monotonic() + 20
    while True:
        try:
            head(lake)
            break
        except Exception:   # noqa: BLE001
            assert time.monotonic() < wait_for_head, fol.stderr()
            time.sleep(0.1)
    with FaultProxy(lake.gcs.url) as gp, FaultProxy(lake.ws.rgw.endpoint) as sp:
        m1 = mounter.mount(mount_config(lake, gp, sp))
        m2 = mounter.mount(mount_config(lake, gp, sp))
        for m in (m1, m2):
            wait_for(m, "the journal is followed",
                     lambda f: f.get("hylake_feed_healthy") == 1)
        for m in (m1, m2):            # what came before the journal: asked once
            assert (m / "t/a").read_bytes() == b"first"
        lags = []
        for i in range(8):
            data = os.urandom(4096 + i)
            t0 = time.monotonic()
            lake.put("t/a", data)                    # an overwrite
            lake.put(f"t/new{i}", data)              # a new name
            want = [("t/a", lake.gen("t/a")), (f"t/new{i}", lake.gen(f"t/new{i}"))]
            j = wait_journal(lake, lambda j: all(batch_of(j, *w) for w in want),
                             "journaled")
            last = max(batch_of(j, *w) for w in want)
            gp.reset_counts()
            gp.log.clear()
            sp.log.clear()
            for m in (m1, m2):
                applied(m, last)
                assert (m / "t/a").stat().st_size == len(data)
                assert (m / "t/a").read_bytes() == data
                assert (m / f"t/new{i}").read_bytes() == data
            lags.append(time.monotonic() - t0)
            assert gp.log == [], ([(r.method, r.path, r.query[:60]) for r in gp.log],
                                  [figures(m) for m in (m1, m2)])
            site_reads = [r for r in sp.log if not r.key.startswith(".hylake/")]
            assert site_reads and all(r.kind == "GET" for r in site_reads), \
                [(r.kind, r.key) for r in site_reads]
        for m in (m1, m2):
            assert os.getxattr(m / "t/a", "user.hylake.source").decode() == "s3"
            f = figures(m)
            assert f["hylake_journal_heartbeat_age_seconds"] < 3, f
        out = run_hylake("status", m1.path).stdout
        assert "following the journal of s3" in out, out
        print(f"\nGCS write to both mounts reading it from the site: median "
              f"{statistics.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms "
              f"over {len(lags)} changes")
    assert fol.stop() == 0
    assert "journal at batch" in fol.out.read_text()


def test_a_killed_follower_loses_nothing_and_journals_nothing_twice(lake, site):
    """Killed (SIGKILL) while objects are being written, twice, then started
    again: every generation written is in the journal exactly once, and the
    site holds each name's newest generation."""
    import threading
    names = [f"k/{i % 23}" for i in range(90)]
    done = threading.Event()
    writes = []

    def writer():
        for n in names:
            writes.append((n, int(lake.put(n, os.urandom(1024))["generation"])))
            time.sleep(0.01)
        done.set()

    fol = site()
    wait_journal(lake, lambda j: True, "started")       # (no batch yet)
    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(2):
            wait_journal(lake, lambda j: len(j) >= 2, "a batch or two")
            time.sleep(0.15)
            assert fol.stop(signal.SIGKILL) == -signal.SIGKILL
            fol = site()
    finally:
        t.join(timeout=60)
    assert done.is_set()
    j = wait_journal(lake, lambda j: set(writes) <= set(finalized(j)),
                     "every generation journaled", timeout=40)
    seen = finalized(j)
    twice = {k: v for k, v in seen.items() if v > 1}
    assert not twice, f"journaled twice: {twice}"
    seqs = [s for s, _ in j]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert fol.stop() == 0
    for n in set(names):
        g = lake.gen(n)
        h = lake.s3.head_object(Bucket=lake.s3_bucket, Key=n)
        assert int(h["Metadata"]["goog-generation"]) == g, n


def test_two_followers_one_writes_and_the_other_takes_over(lake, site, mounter):
    """Two followers of one site: one holds the lease and writes; killed, the
    other takes over within the lease's time, and mounts stay current."""
    a = site("a")
    wait_journal(lake, lambda j: True, "started")
    time.sleep(0.5)
    b = site("b")
    lake.put("l/x", b"one")
    j = wait_journal(lake, lambda j: batch_of(j, "l/x", lake.gen("l/x")), "journaled")
    time.sleep(1.5)
    holders = [f for f in (a, b) if "holding the lease" in f.stderr()]
    assert holders == [a], (a.stderr(), b.stderr())
    with FaultProxy(lake.gcs.url) as gp:
        m = mounter.mount(mount_config(lake, gp))
        wait_for(m, "the journal is followed", lambda f: f.get("hylake_feed_healthy") == 1)
        assert (m / "l/x").read_bytes() == b"one"
        assert a.stop(signal.SIGKILL) == -signal.SIGKILL
        t0 = time.monotonic()
        lake.put("l/x", b"two")
        j = wait_journal(lake, lambda j: batch_of(j, "l/x", lake.gen("l/x")),
                         "journaled by the other", timeout=20)
        took = time.monotonic() - t0
        assert "holding the lease" in b.stderr()
        applied(m, batch_of(j, "l/x", lake.gen("l/x")))
        gp.log.clear()
        assert (m / "l/x").read_bytes() == b"two"
        assert [r for r in gp.log if "/o/" in r.path] == []
        print(f"\nthe standby took over and journaled a change {took:.1f} s after the "
              f"holder was killed (lease 3 s)")
    assert b.stop() == 0


def test_a_stopped_follower_sends_the_mounts_back_to_gcs(lake, site, mounter):
    """With no heartbeat for the stall time, the mounts stop trusting the journal
    and ask GCS: never silently stale."""
    lake.put("s/x", b"one")
    fol = site()
    wait_journal(lake, lambda j: True, "started")
    with FaultProxy(lake.gcs.url) as gp:
        m = mounter.mount(mount_config(lake, gp))
        wait_for(m, "the journal is followed", lambda f: f.get("hylake_feed_healthy") == 1)
        assert (m / "s/x").read_bytes() == b"one"
        assert fol.stop() == 0
        wait_for(m, "the journal stalls", lambda f: f["hylake_feed_healthy"] == 0,
                 timeout=10)
        assert "STALLED" in run_hylake("status", m.path).stdout
        lake.put("s/x", b"two, unjournaled")
        gp.log.clear()
        assert (m / "s/x").read_bytes() == b"two, unjournaled"
        assert [r for r in gp.log if r.path.endswith("/o/s/x")], "GCS was not asked"


def test_follow_and_journal_config_errors_are_clear(lake, ws):
    cfg = lake.config()
    res = run_hylake("replicate", cfg, "--to", "s3", "--follow")
    assert res.returncode == 2 and "no subscription in [changes]" in res.stderr, res.stderr
    res = run_hylake("replicate", cfg, "--to", "s3", "--follow", "--heartbeat", "5ms")
    assert res.returncode == 2 and "--heartbeat" in res.stderr, res.stderr
    bad = lake.config()
    with open(bad, "a") as f:
        f.write("\n[changes]\njournal = nowhere\n")
    res = run_hylake("check", bad)
    assert res.returncode != 0 and "journal = nowhere: no [replica nowhere]" in \
        res.stderr + res.stdout, res.stderr


def test_churn_through_the_journal_stays_consistent(lake, site, mounter, feed):
    """Writers overwrite and delete in GCS while the subscription duplicates,
    shuffles and delays what the follower pulls; two mounts follow the journal
    and read the site's copies all the while.  Every read is exactly one state
    of its name; with the follower running, at most STALE_MAX behind GCS;
    while it is stopped (SIGSTOP: no heartbeat), none is stale (the mounts
    ask GCS)."""
    ps, _ = feed
    churn = Churn(lake.gcs, lake.bucket)
    fol = site()
    wait_journal(lake, lambda j: True, "started")
    with FaultProxy(lake.gcs.url) as gp:
        mounts = [mounter.mount(mount_config(lake, gp)) for _ in range(2)]
        for m in mounts:
            wait_for(m, "the journal is followed",
                     lambda f: f.get("hylake_feed_healthy") == 1)
        ps.control.config(duplicate=True, reorder=True, deliver_after_ms=100)

        def stall():
            # stalled: no heartbeat for the stall time (a mount catching up
            # on batches is not drained for a moment either, and healthy
            # again right after: that is no stall)
            fol.p.send_signal(signal.SIGSTOP)
            for m in mounts:
                wait_for(m, "the journal stalls",
                         lambda f: f["hylake_feed_healthy"] == 0 and
                         f["hylake_journal_heartbeat_age_seconds"] > 3.0, timeout=20)
            yield
            fol.p.send_signal(signal.SIGCONT)

        try:
            churn.run(mounts, stall)
        finally:
            ps.control.config(duplicate=False, reorder=False, deliver_after_ms=0)
            fol.p.send_signal(signal.SIGCONT)
        media = [r for r in gp.log if "alt=media" in r.query]
    churn.judge(STALE_MAX)
    print(f"reads that went to GCS (the site lagged, or the journal was stopped): "
          f"{len(media)} of {len(churn.results)}")
    assert fol.stop() == 0


def test_a_follower_that_missed_changes_reconciles_by_listing(lake, site, mounter, feed,
                                                              pubsub_server):
    """Changes the subscription no longer holds (past its retention: here, a
    new subscription) are learnt by listing: --reconcile journals a gap, then
    every object as listed.  A mount trusting what it knew before the gap asks
    GCS again; the names listed are current by the journal once more."""
    ps, _ = feed
    lake.put("r/x", b"one")
    lake.put("r/y", b"doomed")
    fol = site()
    wait_journal(lake, lambda j: len(j) >= 1, "reconciled at start")
    with FaultProxy(lake.gcs.url) as gp:
        m = mounter.mount(mount_config(lake, gp))
        wait_for(m, "the journal is followed", lambda f: f.get("hylake_feed_healthy") == 1)
        assert (m / "r/x").read_bytes() == b"one"
        assert (m / "r/y").read_bytes() == b"doomed"
        assert fol.stop() == 0
        # while nobody follows, GCS changes; the messages are lost
        lake.put("r/x", b"two")
        lake.gcs.client.delete(lake.bucket, "r/y")
        lake.put("r/z", b"new")
        topic = f"t-{lake.bucket}"
        ps.create_subscription(f"fresh-{lake.bucket}", topic, ackDeadlineSeconds=10)
        fresh = lake.ws.root / "fresh.conf"
        fresh.write_text(open(site.cfg).read().replace(
            f"subscriptions/s-{lake.bucket}", f"subscriptions/fresh-{lake.bucket}"))
        before = head(lake)["seq"]
        fol = site("again", "--reconcile", config=fresh)
        j = wait_journal(lake, lambda j: batch_of(j, "r/x", lake.gen("r/x")),
                         "reconciled again")
        gaps = [s for s, ch in j if s > before and any(c["kind"] == "gap" for c in ch)]
        assert gaps, j[-2:]
        applied(m, batch_of(j, "r/x", lake.gen("r/x")))
        gp.log.clear()
        assert (m / "r/x").read_bytes() == b"two"
        assert (m / "r/z").read_bytes() == b"new"
        assert [r for r in gp.log if "/o/r/x" in r.path or "/o/r/z" in r.path] == [], \
            "a listed name was asked about"
        # the deletion itself was missed: the mount asks GCS about r/y again,
        # once the kernel's own entry (entry_timeout, 5 s) has expired
        t0 = time.monotonic()
        while (m / "r/y").exists():
            assert time.monotonic() - t0 < 7, "a deletion the journal missed is served"
            time.sleep(0.1)
    assert fol.stop() == 0


def test_a_site_seeded_from_an_inventory_report(lake, site, mounter, feed):
    """--seed REPORT: the journal learns the whole bucket from a Storage
    Insights inventory report (CSV), not from a listing; an object deleted
    since the report is not journaled as present.  A mount following the
    journal then opens every listed name with no request to GCS."""
    import base64
    ps, _ = feed
    names = [f"inv/o{i}" for i in range(12)]
    for n in names:
        lake.put(n, os.urandom(2048))
    lake.put("inv/gone", b"deleted after the report")
    rows = ["project,bucket,name,location,size,timeCreated,timeDeleted,updated,"
            "storageClass,etag,retentionExpirationTime,crc32c,md5Hash,generation,"
            "metageneration,contentType"]
    for n in names + ["inv/gone"]:
        r = lake.res[n]
        rows.append(",".join([
            "p", lake.bucket, f'"{n}"', "US", r["size"], r["timeCreated"], "", r["updated"],
            "STANDARD", r.get("etag", ""), "", r["crc32c"], r["md5Hash"], r["generation"],
            r["metageneration"], "application/octet-stream"]))
    report = lake.ws.root / "inventory.csv"
    report.write_text("\n".join(rows) + "\n")
    lake.gcs.client.delete(lake.bucket, "inv/gone")
    # a subscription from now on: the report is all the follower knows.
    # (GCS publishes notifications a moment after the change: wait until
    # the bucket's other subscription holds all 14, so none reaches it)
    other = f"projects/{PROJECT}/subscriptions/s-{lake.bucket}"
    end = time.monotonic() + 10
    while ps.control.state()["subscriptions"][other]["backlog"] < len(names) + 2:
        assert time.monotonic() < end, ps.control.state()["subscriptions"][other]
        time.sleep(0.05)
    topic = f"t-{lake.bucket}"
    ps.create_subscription(f"seed-{lake.bucket}", topic, ackDeadlineSeconds=10)
    cfg = lake.ws.root / "seed.conf"
    cfg.write_text(open(site.cfg).read().replace(
        f"subscriptions/s-{lake.bucket}", f"subscriptions/seed-{lake.bucket}"))
    mark = lake.gcs.control.log_mark()
    fol = site("seed", "--seed", report, config=cfg)
    j = wait_journal(lake, lambda j: all(batch_of_any(j, n) for n in names), "seeded")
    assert not batch_of_any(j, "inv/gone")
    assert any(c["kind"] == "gap" for _, ch in j for c in ch)
    listings = [e["query"] for e in lake.gcs.requests(mark, kind="objects.list",
                                                      bucket=lake.bucket)
                # (not its lease's stat, nor the one-name probe at start)
                if "prefix=.hylake%2F" not in e["query"] and "maxResults=1&" not in e["query"]]
    assert listings == [], f"the follower listed the bucket: {listings}"
    assert "inventory report" in fol.stderr()
    with FaultProxy(lake.gcs.url) as gp:
        m = mounter.mount(mount_config(lake, gp))
        wait_for(m, "the journal is followed", lambda f: f.get("hylake_feed_healthy") == 1)
        for n in names:
            assert (m / n).read_bytes() == lake.data[n]
        assert [r for r in gp.log if "/o/inv%2Fo" in r.path or "/o/inv/o" in r.path] == []
    assert fol.stop() == 0


def batch_of_any(j, name):
    """The batch that journaled name as present (any generation), or None."""
    for seq, changes in j:
        if any(c["kind"] == "finalize" and c["name"] == name for c in changes):
            return seq
    return None
