"""The change feed ([changes]): a mount follows the Pub/Sub subscription of its
GCS bucket's notifications (tests/pubsub's server, fed by the GCS test
server's notification configs).  While the feed is healthy, bounded names
are opened from what it told, with no request to GCS, and a change made in
GCS reaches the mount without anyone asking; when it stalls, the mount asks
GCS again."""

import os
import time

import pytest

from feedlib import PROJECT, Churn, feed, figures, wait_for  # noqa: F401  (feed: a fixture)
from hylib import run_hylake


def config(ws, gcs_bucket, pubsub_server, sub, fresh, stall="2s"):
    cfg = ws.gcs_config(gcs_bucket, mount={"freshness": fresh})
    with open(cfg, "a") as f:
        f.write(f"\n[changes]\nsubscription = {sub}\n"
                f"endpoint = {pubsub_server.url}\nstall = {stall}\n")
    return cfg


def metadata_requests(gcs, bucket, mark, name):
    """GCS requests after mark that asked about name (not its bytes), and
    listings."""
    return [e for e in gcs.requests(mark, bucket=bucket)
            if e["kind"] == "objects.list" or
            (e["kind"] == "objects.get" and e.get("object") == name)]


def test_changes_reach_the_mount_and_opens_ask_nobody(gcs, gcs_bucket, ws, mounter,
                                                      pubsub_server, feed):
    _, sub = feed
    gcs.client.upload(gcs_bucket, "d/a", b"one")
    m = mounter.mount(config(ws, gcs_bucket, pubsub_server, sub, "bounded:10m"))
    wait_for(m, "the feed follows", lambda f: f.get("hylake_feed_healthy") == 1)
    assert (m / "d/a").read_bytes() == b"one"

    # an overwrite in GCS: bounded:10m alone would keep "one" for ten
    # minutes (and the kernel its size for five seconds); the feed says so
    applied = figures(m)["hylake_feed_applied_total"]
    gcs.client.upload(gcs_bucket, "d/a", b"two, longer")
    wait_for(m, "the overwrite applied",
             lambda f: f["hylake_feed_applied_total"] >= applied + 1)
    mark = gcs.control.log_mark()
    assert (m / "d/a").read_bytes() == b"two, longer"
    assert os.getxattr(m / "d/a", "user.hylake.freshness").decode() == \
        "bounded:10m (the mount's default); current by the change feed"
    assert (m / "d/a").stat().st_size == len(b"two, longer")
    assert [(e["kind"], e.get("object"))
            for e in metadata_requests(gcs, gcs_bucket, mark, "d/a")] == [], \
        "the open asked GCS what the feed had told"

    # a new file shows in the folder and opens
    applied = figures(m)["hylake_feed_applied_total"]
    gcs.client.upload(gcs_bucket, "d/new", b"new")
    wait_for(m, "the new file applied",
             lambda f: f["hylake_feed_applied_total"] >= applied + 1)
    assert sorted(os.listdir(m / "d")) == ["a", "new"]
    assert (m / "d/new").read_bytes() == b"new"

    # a deletion: the name is gone, and never served again
    applied = figures(m)["hylake_feed_applied_total"]
    gcs.client.delete(gcs_bucket, "d/a")
    wait_for(m, "the deletion applied",
             lambda f: f["hylake_feed_applied_total"] >= applied + 1)
    with pytest.raises(FileNotFoundError):
        (m / "d/a").read_bytes()
    assert os.listdir(m / "d") == ["new"]

    out = run_hylake("status", m.path).stdout
    assert "change feed   following" in out, out
    # the feed's requests carry the source's service account, with a token
    # whose scope allows Pub/Sub (a pull still waiting has no status yet)
    ps, _ = feed
    pulls = [e for e in ps.control.log() if e["kind"] == "subscriptions.pull"
             and e.get("subscription", "").endswith(sub.rsplit("/", 1)[1])]
    bad = [(e["status"], e["auth"], e["auth_ok"]) for e in pulls
           if e["auth_ok"] is not True or e["status"] not in (200, None)]
    assert pulls and not bad, bad[:5]


def test_a_change_leaves_the_pages_of_a_file_being_read(gcs, gcs_bucket, ws, mounter,
                                                        pubsub_server, feed):
    """A change told of a name whose file is open drops the name, not the
    pages the open file reads: that inode keeps its version until it is
    closed, and the next open takes a new one.  (Dropping its attributes
    raced its reads: a page read out meanwhile is not cut at its version's
    end, and returned the size told before, the missing bytes as zeros.)"""
    _, sub = feed
    old, new = os.urandom(3 << 20), os.urandom(1000)
    gcs.client.upload(gcs_bucket, "d/r", old)
    m = mounter.mount(config(ws, gcs_bucket, pubsub_server, sub, "bounded:10m"))
    wait_for(m, "the feed follows", lambda f: f.get("hylake_feed_healthy") == 1)
    with open(m / "d/r", "rb") as f:
        assert f.read() == old
        applied = figures(m)["hylake_feed_applied_total"]
        gcs.client.upload(gcs_bucket, "d/r", new)
        wait_for(m, "the overwrite applied",
                 lambda f: f["hylake_feed_applied_total"] >= applied + 1)
        served = figures(m)["hylake_read_bytes_total"]
        f.seek(0)
        assert f.read() == old
        assert os.fstat(f.fileno()).st_size == len(old)
        assert figures(m)["hylake_read_bytes_total"] == served, \
            "the open file's pages were dropped"
        assert (m / "d/r").read_bytes() == new
    assert (m / "d/r").stat().st_size == len(new)


def test_a_stalled_feed_sends_opens_back_to_gcs(gcs, gcs_bucket, ws, mounter,
                                               pubsub_server, feed):
    ps, sub = feed
    gcs.client.upload(gcs_bucket, "d/b", b"bee")
    m = mounter.mount(config(ws, gcs_bucket, pubsub_server, sub, "bounded:1s"))
    wait_for(m, "the feed follows", lambda f: f.get("hylake_feed_healthy") == 1)
    assert (m / "d/b").read_bytes() == b"bee"
    time.sleep(1.5)                        # past the bound: the feed covers it
    mark = gcs.control.log_mark()
    with open(m / "d/b", "rb") as f:
        assert f.read() == b"bee"
    assert [e for e in gcs.requests(mark, bucket=gcs_bucket)
            if e["kind"] == "objects.get"] == [], "a covered open asked GCS"

    ps.control.fail(count=1_000_000, status=503)     # every pull fails
    f = wait_for(m, "the feed stalls", lambda f: f["hylake_feed_healthy"] == 0,
                 timeout=15)
    assert f["hylake_feed_pull_failures_total"] >= 1
    out = run_hylake("status", m.path).stdout
    assert "change feed   STALLED" in out, out
    assert "not covered by the change feed" in \
        os.getxattr(m / "d/b", "user.hylake.freshness").decode()
    mark = gcs.control.log_mark()
    with open(m / "d/b", "rb") as f:
        assert f.read() == b"bee"
    assert [e for e in gcs.requests(mark, bucket=gcs_bucket)
            if e["kind"] == "objects.get" and e.get("object") == "d/b"], \
        "a stalled feed still answered for GCS"

    ps.control.fail(count=0)
    wait_for(m, "the feed follows again",
             lambda f: f["hylake_feed_healthy"] == 1, timeout=15)


def test_changes_config_errors_are_clear(gcs_bucket, ws, pubsub_server, mounter):
    cfg = ws.gcs_config(gcs_bucket)
    with open(cfg, "a") as f:
        f.write("\n[changes]\nsubscription = lake-changes\n")
    r = run_hylake("mount", cfg, ws.root / "mnt-bad")
    assert r.returncode != 0
    assert "expected projects/PROJECT/subscriptions/NAME" in r.output, r


# --------------------------------------------------------------------------- churn

STALE_MAX = 5.0          # s: delivery delay + a pull + the stall time, with slack


def test_churn_with_a_faulty_feed_stays_consistent(gcs, gcs_bucket, ws, mounter,
                                                   pubsub_server, feed):
    """Writers overwrite and delete in GCS while the feed duplicates every
    message, shuffles each pull and delivers late; two mounts (each with its
    own subscription) read all the while.  Every read returns exactly the
    bytes of one state of its name (or ENOENT for a deleted one); with the
    feed healthy a read is at most STALE_MAX behind GCS; while the feed is
    stalled, none is stale at all (opens ask GCS).  bounded:10m alone would
    serve a replaced file for ten minutes.  A read pinned to a generation GCS
    replaced just before (within STALE_MAX) may be refused ESTALE, as in
    strict mode when the overwrite comes between the open and the read:
    counted, not an error."""
    ps, sub = feed
    topic = f"t-{gcs_bucket}"
    sub2 = f"s2-{gcs_bucket}"
    ps.create_subscription(sub2, topic, ackDeadlineSeconds=10)
    churn = Churn(gcs, gcs_bucket)
    mounts = [mounter.mount(config(ws, gcs_bucket, pubsub_server, s, "bounded:10m"))
              for s in (sub, f"projects/{PROJECT}/subscriptions/{sub2}")]
    for m in mounts:
        wait_for(m, "the feed follows", lambda f: f.get("hylake_feed_healthy") == 1)
    ps.control.config(duplicate=True, reorder=True, deliver_after_ms=100)

    def stall():
        """Pulls fail until both mounts have said so for a while."""
        ps.control.fail(count=1_000_000, status=503)
        for m in mounts:
            wait_for(m, "the feed stalls", lambda f: f["hylake_feed_healthy"] == 0,
                     timeout=20)
        yield
        ps.control.fail(count=0)

    try:
        churn.run(mounts, stall)
    finally:
        ps.control.config(duplicate=False, reorder=False, deliver_after_ms=0)
    churn.judge(STALE_MAX)
