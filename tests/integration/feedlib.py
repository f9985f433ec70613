"""The change feed's test parts, shared: a Pub/Sub topic and subscription
for a GCS test bucket's notifications, and a mount's figures."""

import json
import os
import time

import pytest

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
