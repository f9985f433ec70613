"""The change feed ([changes]): a mount follows the Pub/Sub subscription of its
GCS bucket's notifications (tests/pubsub's server, fed by the GCS test
server's notification configs).  While the feed is healthy, bounded names
are opened from what it told, with no request to GCS, and a change made in
GCS reaches the mount without anyone asking; when it stalls, the mount asks
GCS again."""

import json
import os
import time

import pytest

from hylib import run_hylake

PROJECT = "hylake-test"


@pytest.fixture
def feed(gcs, gcs_bucket, pubsub_server):
    """A topic and a subscription for the bucket's notifications (JSON_API_V1
    payloads, every event type).  Yields (client, subscription name)."""
    from pubsub_client import PubsubClient
    ps = PubsubClient(pubsub_server.url, project=PROJECT)
    topic, sub = f"t-{gcs_bucket}", f"s-{gcs_bucket}"
    ps.create_topic(topic)
    ps.create_subscription(sub, topic, ackDeadlineSeconds=10)
    gcs.client.request(
        "POST", f"/storage/v1/b/{gcs_bucket}/notificationConfigs",
        body=json.dumps({"topic": f"//pubsub.googleapis.com/projects/{PROJECT}/"
                                  f"topics/{topic}",
                         "payload_format": "JSON_API_V1"}).encode(),
        headers={"Content-Type": "application/json"}, ok=(200,))
    yield ps, f"projects/{PROJECT}/subscriptions/{sub}"
    ps.control.fail(count=0)


def config(ws, gcs_bucket, pubsub_server, sub, fresh, stall="2s"):
    cfg = ws.gcs_config(gcs_bucket, mount={"freshness": fresh})
    with open(cfg, "a") as f:
        f.write(f"\n[changes]\nsubscription = {sub}\n"
                f"endpoint = {pubsub_server.url}\nstall = {stall}\n")
    return cfg


def figures(m):
    """The mount's Prometheus figures without labels: {name: value}."""
    text = os.getxattr(m.path, "user.hylake.metrics").decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def wait_for(m, what, cond, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        f = figures(m)
        if cond(f):
            return f
        assert time.monotonic() < end, f"{what}: {f}"
        time.sleep(0.05)


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
    assert (m / "d/a").stat().st_size == len(b"two, longer")
    assert metadata_requests(gcs, gcs_bucket, mark, "d/a") == [], \
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
