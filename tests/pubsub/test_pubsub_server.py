"""The Pub/Sub test server against Google's published REST API v1, and GCS bucket
notifications published into it by tests/gcs/gcs_server.py.

Run:  /usr/bin/python3 -m pytest -q tests/pubsub      (~10 s)
"""

from __future__ import annotations

import json
import re
import threading
import time
from types import SimpleNamespace

import pytest

from pubsub_client import PubsubClient, PubsubHTTPError, PubsubProcess, data_of
from gcs_client import GcsClient, GcsHTTPError, ServerProcess, rfc3339_to_ns

SCALE = 0.1  # ack deadlines run ten times faster: 10 s is 1 s
pytestmark = pytest.mark.timeout(60)


def error_of(excinfo):
    e = excinfo.value
    assert set(e.json) == {"error"} and set(e.json["error"]) >= {"code", "message", "status"}
    assert e.json["error"]["code"] == e.status
    return e.status, e.status_name


# --------------------------------------------------------------------------- topics


def test_topics(ps, names):
    assert ps.create_topic(names.topic, labels={"a": "b"}) == {
        "name": f"projects/hylake-test/topics/{names.topic}", "labels": {"a": "b"}}
    assert ps.get_topic(names.topic)["name"].endswith("/" + names.topic)
    with pytest.raises(PubsubHTTPError) as ei:
        ps.create_topic(names.topic)
    assert error_of(ei) == (409, "ALREADY_EXISTS")
    listed = ps.request("GET", "projects/hylake-test/topics?pageSize=1000")["topics"]
    assert {"name": ps.topic(names.topic), "labels": {"a": "b"}} in listed
    assert ps.delete_topic(names.topic) == {}
    for call in (ps.get_topic, ps.delete_topic):
        with pytest.raises(PubsubHTTPError) as ei:
            call(names.topic)
        assert error_of(ei) == (404, "NOT_FOUND")
        assert ei.value.json["error"]["message"] == f"Resource not found (resource={names.topic})."
    for bad in ("ab", "1abc", "goog-topic", "a" * 256):
        with pytest.raises(PubsubHTTPError) as ei:
            ps.create_topic(bad)
        assert error_of(ei) == (400, "INVALID_ARGUMENT"), bad
    with pytest.raises(PubsubHTTPError) as ei:
        ps.request("POST", ps.topic(names.topic) + ":frobnicate", {})
    assert error_of(ei) == (404, "NOT_FOUND")


def test_publish_validation(ps, names):
    ps.create_topic(names.topic)
    bad = [
        [],                                                # no messages
        [{}],                                              # neither data nor attributes
        [{"data": "!!not base64!!"}],
        [{"data": "eA==", "attributes": {"googKey": "v"}}],  # reserved prefix
        [{"data": "eA==", "attributes": {"k": "v" * 1025}}],
        [{"data": "eA=="}] * 1001,
    ]
    for msgs in bad:
        with pytest.raises(PubsubHTTPError) as ei:
            ps.request("POST", ps.topic(names.topic) + ":publish", {"messages": msgs})
        assert error_of(ei) == (400, "INVALID_ARGUMENT"), msgs[:1]
    with pytest.raises(PubsubHTTPError) as ei:
        ps.publish("no-such-topic", [{"data": b"x"}])
    assert error_of(ei) == (404, "NOT_FOUND")
    # a body past the 10 MB request limit is refused before it is read
    r = ps.http.request("POST", f"/v1/{ps.topic(names.topic)}:publish", b"",
                        {"Content-Length": str(64 * 1024 * 1024)})
    assert r.status == 400 and json.loads(r.body)["error"]["status"] == "INVALID_ARGUMENT"
    # attributes alone are a message; ids are distinct strings
    ids = ps.publish(names.topic, [{"attributes": {"only": "attrs"}}, {"data": b"d"}])
    assert len(set(ids)) == 2 and all(isinstance(i, str) for i in ids)


# --------------------------------------------------------------------------- subscriptions


def test_subscriptions(ps, names):
    ps.create_topic(names.topic)
    s = ps.create_subscription(names.sub, names.topic)
    assert s["name"] == ps.sub(names.sub) and s["topic"] == ps.topic(names.topic)
    assert s["ackDeadlineSeconds"] == 10  # the default
    assert ps.get_subscription(names.sub) == s
    with pytest.raises(PubsubHTTPError) as ei:
        ps.create_subscription(names.sub, names.topic)
    assert error_of(ei) == (409, "ALREADY_EXISTS")
    assert ps.create_subscription(names.sub2, names.topic,
                                  ackDeadlineSeconds=600)["ackDeadlineSeconds"] == 600
    for secs in (9, 601, -1):
        with pytest.raises(PubsubHTTPError) as ei:
            ps.create_subscription(f"bad-{secs}-{names.sub}", names.topic,
                                   ackDeadlineSeconds=secs)
        assert error_of(ei) == (400, "INVALID_ARGUMENT")
    with pytest.raises(PubsubHTTPError) as ei:
        ps.create_subscription("orphan-" + names.sub, "no-such-topic")
    assert error_of(ei) == (404, "NOT_FOUND")
    for unsupported in ({"filter": "attributes.k = \"v\""},
                        {"pushConfig": {"pushEndpoint": "http://127.0.0.1:1/"}},
                        {"enableExactlyOnceDelivery": True}):
        with pytest.raises(PubsubHTTPError) as ei:
            ps.create_subscription("x-" + names.sub, names.topic, **unsupported)
        assert error_of(ei) == (400, "INVALID_ARGUMENT")
    subs = ps.request("GET", f"{ps.topic(names.topic)}/subscriptions")["subscriptions"]
    assert sorted(subs) == sorted([ps.sub(names.sub), ps.sub(names.sub2)])
    # deleting the topic leaves the subscriptions, detached from it
    ps.delete_topic(names.topic)
    assert ps.get_subscription(names.sub)["topic"] == "_deleted-topic_"
    assert ps.delete_subscription(names.sub) == {}
    for call in (ps.get_subscription, ps.delete_subscription):
        with pytest.raises(PubsubHTTPError) as ei:
            call(names.sub)
        assert error_of(ei) == (404, "NOT_FOUND")
    with pytest.raises(PubsubHTTPError) as ei:
        ps.pull(names.sub, 1)
    assert error_of(ei) == (404, "NOT_FOUND")


# --------------------------------------------------------------------------- delivery


def test_publish_and_pull(ps, names):
    ps.create_topic(names.topic)
    ps.publish(names.topic, [{"data": b"before the subscription"}])
    ps.create_subscription(names.sub, names.topic)
    ps.create_subscription(names.sub2, names.topic)
    t0 = time.time_ns()
    ids = ps.publish(names.topic, [{"data": b"\x00\xffbinary", "attributes": {"k": "v"}},
                                   {"data": b"two", "orderingKey": "key-1"}])
    t1 = time.time_ns()
    got = ps.pull(names.sub, 10)
    assert [m["message"]["messageId"] for m in got] == ids  # not the one before
    a, b = got
    assert data_of(a) == b"\x00\xffbinary" and a["message"]["attributes"] == {"k": "v"}
    assert b["message"]["orderingKey"] == "key-1" and "attributes" not in b["message"]
    assert "deliveryAttempt" not in a  # no dead-letter policy
    for m in got:
        pt = m["message"]["publishTime"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", pt), pt
        assert t0 - 10**6 <= rfc3339_to_ns(pt) <= t1 + 10**6
    assert len({m["ackId"] for m in got}) == 2
    # every subscription gets its own copy
    assert [m["message"]["messageId"] for m in ps.pull(names.sub2, 10)] == ids
    # maxMessages is a limit, and required
    ps.publish(names.topic, [{"data": bytes([i])} for i in range(5)])
    assert len(ps.pull(names.sub, 3)) == 3
    assert len(ps.pull(names.sub, 10)) == 2
    with pytest.raises(PubsubHTTPError) as ei:
        ps.pull(names.sub, 0)
    assert error_of(ei) == (400, "INVALID_ARGUMENT")


def test_empty_pull_waits_then_answers_empty(ps, names, pull_wait_ms):
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)
    t = time.monotonic()
    assert ps.request("POST", ps.sub(names.sub) + ":pull", {"maxMessages": 5}) == {}
    waited = time.monotonic() - t
    assert pull_wait_ms / 1000 * 0.9 <= waited < pull_wait_ms / 1000 + 1
    t = time.monotonic()
    assert ps.pull(names.sub, 5, returnImmediately=True) == []
    assert time.monotonic() - t < pull_wait_ms / 1000 * 0.9
    # a waiting pull is answered as soon as a message arrives
    ps.control.config(pull_wait_ms=5000)
    out = []
    th = threading.Thread(target=lambda: out.append((ps_copy.pull(names.sub, 5),
                                                     time.monotonic())))
    ps_copy = PubsubClient(ps.url)
    th.start()
    time.sleep(0.3)
    ps.publish(names.topic, [{"data": b"wake"}])
    sent = time.monotonic()
    th.join(10)
    got, when = out[0]
    assert [data_of(m) for m in got] == [b"wake"] and when - sent < 1.0


def test_ack_and_redelivery_after_the_deadline(ps, names):
    ps.control.config(ack_deadline_scale=SCALE)
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)  # 10 s -> 1 s
    ps.publish(names.topic, [{"data": b"acked"}, {"data": b"dropped"}])
    first = {data_of(m): m for m in ps.pull(names.sub, 10)}
    assert set(first) == {b"acked", b"dropped"}
    assert ps.ack(names.sub, [first[b"acked"]["ackId"]]) == {}
    assert ps.pull(names.sub, 10, returnImmediately=True) == []  # outstanding, not due yet
    again = ps.pull_until(names.sub, 1, timeout=5)
    assert [data_of(m) for m in again] == [b"dropped"]
    assert again[0]["message"]["messageId"] == first[b"dropped"]["message"]["messageId"]
    assert again[0]["ackId"] != first[b"dropped"]["ackId"]
    # the superseded ackId is ignored (200): the message stays outstanding
    assert ps.ack(names.sub, [first[b"dropped"]["ackId"]]) == {}
    assert ps.control.state()["subscriptions"][ps.sub(names.sub)]["backlog"] == 1
    ps.ack(names.sub, [again[0]["ackId"]])
    time.sleep(1.2)
    assert ps.pull(names.sub, 10, returnImmediately=True) == []  # acked: never again
    st = ps.control.state()["subscriptions"][ps.sub(names.sub)]
    assert (st["backlog"], st["acked"], st["expired"], st["redelivered"]) == (0, 2, 1, 1)


def test_ack_ids_unknown_expired_and_malformed(ps, names):
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)
    ps.publish(names.topic, [{"data": b"m"}])
    (m,) = ps.pull(names.sub, 1)
    ps.ack(names.sub, [m["ackId"]])
    # acking again, or a well-formed id nobody issued: OK and no effect
    assert ps.ack(names.sub, [m["ackId"]]) == {}
    forged = m["ackId"][:-6] + ("AAAAAA" if not m["ackId"].endswith("AAAAAA") else "BBBBBB")
    assert ps.ack(names.sub, [forged]) == {}
    assert ps.modack(names.sub, [forged], 30) == {}
    for body in ({"ackIds": []}, {}, {"ackIds": ["not an ack id"]}, {"ackIds": [17]}):
        for verb in ("acknowledge", "modifyAckDeadline"):
            with pytest.raises(PubsubHTTPError) as ei:
                ps.request("POST", f"{ps.sub(names.sub)}:{verb}",
                           dict(body, ackDeadlineSeconds=10) if verb[0] == "m" else body)
            assert error_of(ei) == (400, "INVALID_ARGUMENT")


def test_modify_ack_deadline(ps, names):
    ps.control.config(ack_deadline_scale=SCALE)
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)  # 1 s (scaled)
    ps.publish(names.topic, [{"data": b"extended"}, {"data": b"nacked"}])
    got = {data_of(m): m for m in ps.pull(names.sub, 10)}
    ps.modack(names.sub, [got[b"extended"]["ackId"]], 60)  # 6 s (scaled)
    t = time.monotonic()
    ps.modack(names.sub, [got[b"nacked"]["ackId"]], 0)  # redeliver now
    (n,) = ps.pull(names.sub, 10, returnImmediately=True)
    assert data_of(n) == b"nacked" and n["ackId"] != got[b"nacked"]["ackId"]
    ps.ack(names.sub, [n["ackId"]])
    # the extended one is not back after the subscription's 1 s deadline
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t)))
    assert ps.pull(names.sub, 10, returnImmediately=True) == []
    # its ack id still works after a modack
    ps.ack(names.sub, [got[b"extended"]["ackId"]])
    assert ps.control.state()["subscriptions"][ps.sub(names.sub)]["backlog"] == 0
    for secs in (-1, 601):
        with pytest.raises(PubsubHTTPError) as ei:
            ps.modack(names.sub, [n["ackId"]], secs)
        assert error_of(ei) == (400, "INVALID_ARGUMENT")


def test_ordering_key(ps, names):
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic, enableMessageOrdering=True)
    assert ps.get_subscription(names.sub)["enableMessageOrdering"] is True
    msgs = []
    for i in range(6):
        msgs.append({"data": f"a{i}".encode(), "orderingKey": "A"})
        msgs.append({"data": f"b{i}".encode(), "orderingKey": "B"})
    ps.publish(names.topic, msgs)
    # one at a time: each key in publish order, never two of a key outstanding
    seen = []
    first = ps.pull(names.sub, 1)
    assert [data_of(m) for m in first] == [b"a0"]
    nxt = ps.pull(names.sub, 1, returnImmediately=True)
    assert [data_of(m) for m in nxt] == [b"b0"]  # A is blocked while a0 is outstanding
    assert ps.pull(names.sub, 5, returnImmediately=True) == []
    # nack a0 (after a1 could not have been delivered): a0 comes back first
    ps.modack(names.sub, [first[0]["ackId"]], 0)
    ps.ack(names.sub, [nxt[0]["ackId"]])
    seen.append(b"b0")
    while len(seen) < 12:
        batch = ps.pull(names.sub, 3, returnImmediately=True)
        assert batch, seen
        seen += [data_of(m) for m in batch]
        ps.ack(names.sub, [m["ackId"] for m in batch])
    for k in "ab":
        assert [s for s in seen if s.startswith(k.encode())] == [f"{k}{i}".encode()
                                                                 for i in range(6)]
    # a batch that is nacked as a whole is redelivered in the same order
    ps.publish(names.topic, [{"data": f"c{i}".encode(), "orderingKey": "C"} for i in range(4)])
    batch = ps.pull(names.sub, 10)
    assert [data_of(m) for m in batch] == [b"c0", b"c1", b"c2", b"c3"]
    ps.modack(names.sub, [batch[2]["ackId"]], 0)  # c2 and everything after it in C
    ps.ack(names.sub, [batch[0]["ackId"], batch[1]["ackId"]])
    again = ps.pull(names.sub, 10, returnImmediately=True)
    assert [data_of(m) for m in again] == [b"c2", b"c3"]


# --------------------------------------------------------------------------- control API


def test_faults_stall_and_log(ps, names):
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)
    mark = ps.control.log_mark()
    ps.control.fail(count=2, status=503, kinds=["subscriptions.pull"])
    ps.publish(names.topic, [{"data": b"x"}])  # not a pull: not failed
    for _ in range(2):
        with pytest.raises(PubsubHTTPError) as ei:
            ps.pull(names.sub, 1)
        assert error_of(ei) == (503, "UNAVAILABLE")
    assert ps.control.fail(count=0)["count"] == 0
    # stall: the backlog is there, pulls get nothing, until it is lifted
    ps.control.config(stall=[names.sub])
    assert ps.pull(names.sub, 1) == []
    assert ps.control.state()["subscriptions"][ps.sub(names.sub)]["backlog"] == 1
    ps.control.config(stall=False)
    (m,) = ps.pull(names.sub, 1)
    ps.ack(names.sub, [m["ackId"]])
    # delay
    ps.control.config(delay_ms=400)
    t = time.monotonic()
    ps.get_topic(names.topic)
    assert time.monotonic() - t >= 0.38
    ps.control.config(delay_ms=0)
    # hang: a request waits until the hang is lifted
    ps.control.config(hang=True, hang_only=["topics.get"])
    done = []
    th = threading.Thread(target=lambda: done.append(PubsubClient(ps.url).get_topic(names.topic)))
    th.start()
    time.sleep(0.5)
    assert not done and th.is_alive()
    ps.get_subscription(names.sub)  # not hung
    ps.control.config(hang=False)
    th.join(5)
    assert done and done[0]["name"] == ps.topic(names.topic)
    log = ps.control.log(since=mark)
    kinds = [e["kind"] for e in log]
    assert kinds[:3] == ["topics.publish", "subscriptions.pull", "subscriptions.pull"]
    assert [e["status"] for e in log[1:3]] == [503, 503] and log[1]["fault"] == "fail"
    assert any(e["kind"] == "topics.get" and e["fault"] == "hang" for e in log)
    pulls = [e for e in log if e["kind"] == "subscriptions.pull" and e["status"] == 200]
    assert [e["messages"] for e in pulls] == [0, 1]
    assert all(e["subscription"] == ps.sub(names.sub) for e in pulls)


# --------------------------------------------------------------------------- auth


@pytest.fixture(scope="module")
def gcs_and_pubsub(workdir, pull_wait_ms):
    """A GCS test server publishing into a Pub/Sub test server that needs tokens and
    checks them with the GCS server's /tokeninfo."""
    # each needs the other's URL: Pub/Sub first, then GCS, then Pub/Sub learns GCS's
    ps = PubsubProcess(workdir / "ps-auth", require_auth=True,
                       pull_wait_ms=pull_wait_ms).start()
    gcs = ServerProcess(workdir / "gcs-for-ps", require_auth=True, pubsub_url=ps.url).start()
    PubsubClient(ps.url).control.config(auth_url=gcs.url)
    yield gcs, ps
    ps.stop()
    gcs.stop()


def test_auth_with_gcs_tokens(gcs_and_pubsub, names):
    gcs, ps = gcs_and_pubsub
    anon = PubsubClient(ps.url)
    with pytest.raises(PubsubHTTPError) as ei:
        anon.create_topic(names.topic)
    assert error_of(ei) == (401, "UNAUTHENTICATED")
    with pytest.raises(PubsubHTTPError) as ei:
        PubsubClient(ps.url, token="ya29.made-up").create_topic(names.topic)
    assert error_of(ei) == (401, "UNAUTHENTICATED")
    storage_only = GcsClient(gcs.url).token()  # devstorage.read_write only
    with pytest.raises(PubsubHTTPError) as ei:
        PubsubClient(ps.url, token=storage_only).create_topic(names.topic)
    assert error_of(ei) == (403, "PERMISSION_DENIED")
    tok = GcsClient(gcs.url, scopes=("https://www.googleapis.com/auth/pubsub",)).token()
    assert PubsubClient(ps.url, token=tok).create_topic(names.topic)["name"]
    log = anon.control.log()
    assert [e["auth_ok"] for e in log[-4:]] == [False, False, True, True]


# --------------------------------------------------------------------------- GCS notifications


@pytest.fixture
def notif(gcs_and_pubsub, names):
    """Clients of both servers (one cloud-platform token), a fresh bucket, and topic
    names.topic with subscription names.sub."""
    gcs_p, ps_p = gcs_and_pubsub
    gcs = GcsClient(gcs_p.url, scopes=("https://www.googleapis.com/auth/cloud-platform",))
    ps = PubsubClient(ps_p.url, token=gcs.token())
    bucket = "bkt-" + names.topic[6:]
    gcs.create_bucket(bucket)
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)
    base = f"/storage/v1/b/{bucket}/notificationConfigs"

    def insert(cfg, ok=(200,)):
        return gcs.request("POST", base, body=json.dumps(cfg).encode(), ok=ok,
                           headers={"Content-Type": "application/json"})

    yield SimpleNamespace(gcs=gcs, ps=ps, bucket=bucket, base=base, insert=insert)
    ps.control.fail(count=0)


def test_gcs_notifications(notif, names):
    gcs, ps, bucket, base, insert = notif.gcs, notif.ps, notif.bucket, notif.base, notif.insert
    ps.create_topic(names.topic + "-none")
    ps.create_subscription(names.sub2, names.topic + "-none")
    full = insert({"topic": f"//pubsub.googleapis.com/{ps.topic(names.topic)}",
                   "payload_format": "JSON_API_V1",
                   "custom_attributes": {"lake": "main"}}).json()
    assert full["kind"] == "storage#notification" and full["payload_format"] == "JSON_API_V1"
    assert full["topic"] == f"//pubsub.googleapis.com/{ps.topic(names.topic)}"
    assert full["custom_attributes"] == {"lake": "main"}
    assert full["selfLink"].endswith(f"{base}/{full['id']}")
    narrow = insert({"topic": ps.topic(names.topic + "-none"), "payload_format": "NONE",
                     "event_types": ["OBJECT_DELETE"], "object_name_prefix": "logs/"}).json()
    assert gcs.request("GET", f"{base}/{narrow['id']}").json() == narrow
    assert [c["id"] for c in gcs.request("GET", base).json()["items"]] == [full["id"],
                                                                          narrow["id"]]
    for bad in ({"topic": "projects/p/subscriptions/x", "payload_format": "NONE"},
                {"topic": ps.topic("no-such-topic"), "payload_format": "NONE"},
                {"topic": ps.topic(names.topic), "payload_format": "XML"},
                {"topic": ps.topic(names.topic), "payload_format": "NONE",
                 "event_types": ["OBJECT_CREATE"]}):
        assert insert(bad, ok=(400,)).json()["error"]["errors"][0]["reason"] == "invalid"

    a1 = gcs.upload(bucket, "logs/a.txt", b"one")
    a2 = gcs.upload(bucket, "logs/a.txt", b"two", method="multipart")  # overwrite
    p = gcs.patch(bucket, "logs/a.txt", {"metadata": {"k": "v"}})
    gcs.delete(bucket, "logs/a.txt")
    other = gcs.upload(bucket, "data/b.bin", b"bbb")

    got = ps.pull_until(names.sub, 6, timeout=10)
    ps.ack(names.sub, [m["ackId"] for m in got])
    events = [(m["message"]["attributes"], json.loads(data_of(m))) for m in got]
    common = {"notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/"
                                    f"{full['id']}",
              "payloadFormat": "JSON_API_V1", "bucketId": bucket, "lake": "main"}
    want = [
        ("OBJECT_FINALIZE", "logs/a.txt", a1, {}, a1["timeCreated"]),
        ("OBJECT_FINALIZE", "logs/a.txt", a2, {"overwroteGeneration": a1["generation"]},
         a2["timeCreated"]),
        ("OBJECT_DELETE", "logs/a.txt", a1, {"overwrittenByGeneration": a2["generation"]},
         a2["timeCreated"]),
        ("OBJECT_METADATA_UPDATE", "logs/a.txt", p, {}, p["updated"]),
        ("OBJECT_DELETE", "logs/a.txt", p, {}, None),
        ("OBJECT_FINALIZE", "data/b.bin", other, {}, other["timeCreated"]),
    ]
    assert len(events) == len(want), [e[0]["eventType"] for e in events]
    for (attrs, payload), (etype, name, res, extra, when) in zip(events, want):
        t = attrs.pop("eventTime")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t)
        assert t == when or (when is None and p["updated"] <= t <= other["timeCreated"])
        assert attrs == {**common, "eventType": etype, "objectId": name,
                         "objectGeneration": res["generation"], **extra}
        assert payload == res  # the object resource as the JSON API returns it
    # the narrow config: deletes under logs/ only, without payload
    narrow_got = ps.pull_until(names.sub2, 2, timeout=5)
    assert [m["message"]["attributes"]["eventType"] for m in narrow_got] == ["OBJECT_DELETE"] * 2
    assert all("data" not in m["message"] or m["message"]["data"] == "" for m in narrow_got)
    assert {m["message"]["attributes"].get("overwrittenByGeneration") for m in narrow_got} == {
        a2["generation"], None}
    ps.ack(names.sub2, [m["ackId"] for m in narrow_got])
    # after the configs are deleted, nothing more is published
    for c in (full, narrow):
        gcs.request("DELETE", f"{base}/{c['id']}", ok=(204,))
    gcs.request("GET", f"{base}/{full['id']}", ok=(404,))
    gcs.upload(bucket, "logs/late.txt", b"late")
    assert ps.pull(names.sub, 10) == [] and ps.pull(names.sub2, 10) == []
    stats = gcs.control._call("GET", "notifications")
    assert stats["pending"] == 0 and stats["published"] >= 8 and stats["dropped"] == 0


def test_rewrite_notifies_as_an_upload(notif, names):
    """A rewrite makes a new object: OBJECT_FINALIZE; over an existing one also the
    OBJECT_DELETE of the generation it replaced.  A failed rewrite sends nothing."""
    gcs, ps, bucket = notif.gcs, notif.ps, notif.bucket
    notif.insert({"topic": ps.topic(names.topic), "payload_format": "JSON_API_V1",
                  "object_name_prefix": "copy/"})
    gcs.upload(bucket, "src", b"bytes")
    c1 = gcs.rewrite_call(bucket, "src", "copy/a", ifGenerationMatch=0)["resource"]
    with pytest.raises(GcsHTTPError):
        gcs.rewrite_call(bucket, "src", "copy/a", ifGenerationMatch=0)
    c2 = gcs.rewrite_call(bucket, "src", "copy/a", ifGenerationMatch=c1["generation"])["resource"]
    got = ps.pull_until(names.sub, 3, timeout=10)
    ps.ack(names.sub, [m["ackId"] for m in got])
    events = [(m["message"]["attributes"], json.loads(data_of(m))) for m in got]
    want = [("OBJECT_FINALIZE", c1, {}),
            ("OBJECT_FINALIZE", c2, {"overwroteGeneration": c1["generation"]}),
            ("OBJECT_DELETE", c1, {"overwrittenByGeneration": c2["generation"]})]
    assert len(events) == len(want), [e[0]["eventType"] for e in events]
    for (attrs, payload), (etype, res, extra) in zip(events, want):
        assert attrs["eventType"] == etype and attrs["objectId"] == "copy/a"
        assert attrs["objectGeneration"] == res["generation"]
        assert {k: attrs.get(k) for k in extra} == extra
        assert payload == res
    assert ps.pull(names.sub, 10) == []


def test_failed_upload_sends_nothing_and_publish_retries(notif, names):
    gcs, ps, bucket = notif.gcs, notif.ps, notif.bucket
    notif.insert({"topic": ps.topic(names.topic), "payload_format": "NONE"})
    gcs.upload(bucket, "x", b"1")
    with pytest.raises(GcsHTTPError) as ei:
        gcs.upload(bucket, "x", b"2", preconditions={"ifGenerationMatch": 0})
    assert ei.value.status == 412
    ps.control.fail(count=3, status=503, kinds=["topics.publish"])
    gcs.upload(bucket, "y", b"3")  # published after three failures
    got = ps.pull_until(names.sub, 2, timeout=10)
    assert [(m["message"]["attributes"]["objectId"],
             m["message"]["attributes"]["eventType"]) for m in got] == [
        ("x", "OBJECT_FINALIZE"), ("y", "OBJECT_FINALIZE")]
    ps.ack(names.sub, [m["ackId"] for m in got])
    assert ps.pull(names.sub, 10) == []
    assert gcs.control._call("GET", "notifications")["retries"] >= 3


# --------------------------------------------------------------------------- bounds


def test_bounded_backlogs_in_process(monkeypatch, names):
    """The in-process server (PubsubServer) with small limits: a publish that would
    grow a backlog or the bytes held past them is 429, and acks and deletes give the
    room back."""
    import pubsub_server

    monkeypatch.setattr(pubsub_server, "MAX_BACKLOG", 4)
    monkeypatch.setattr(pubsub_server, "MAX_HELD_BYTES", 100)
    with pubsub_server.PubsubServer(pull_wait_ms=50) as srv:
        ps = PubsubClient(srv.url)
        ps.create_topic(names.topic)
        ps.create_subscription(names.sub, names.topic)
        ps.create_subscription(names.sub2, names.topic)
        ps.publish(names.topic, [{"data": b"x" * 10, "attributes": {"k": "vv"}}] * 3)
        assert ps.control.state()["held_bytes"] == 2 * 3 * 13
        with pytest.raises(PubsubHTTPError) as ei:  # 4 + 1 messages
            ps.publish(names.topic, [{"data": b"y"}] * 2)
        assert error_of(ei) == (429, "RESOURCE_EXHAUSTED")
        with pytest.raises(PubsubHTTPError) as ei:  # 78 + 2 * 20 bytes
            ps.publish(names.topic, [{"data": b"z" * 20}])
        assert error_of(ei) == (429, "RESOURCE_EXHAUSTED")
        ps.ack(names.sub, [m["ackId"] for m in ps.pull(names.sub, 2)])
        assert ps.control.state()["held_bytes"] == 4 * 13
        ps.delete_subscription(names.sub2)
        assert ps.control.state()["held_bytes"] == 13
        ps.publish(names.topic, [{"data": b"z" * 20}, {"data": b"w"}])
        assert [data_of(m) for m in ps.pull(names.sub, 10)] == [b"x" * 10, b"z" * 20, b"w"]


def test_faults_duplicates_reordering_and_delay(ps, names):
    """What a consumer must survive: each message a second time (same
    messageId, another ackId), pulls out of publish order, and messages that
    arrive late."""
    ps.create_topic(names.topic)
    ps.create_subscription(names.sub, names.topic)
    ps.control.config(duplicate=True)
    ids = ps.publish(names.topic, [{"data": bytes([i])} for i in range(3)])
    first = ps.pull(names.sub, 10)
    assert [m["message"]["messageId"] for m in first] == ids
    ps.ack(names.sub, [m["ackId"] for m in first])
    again = ps.pull(names.sub, 10)
    assert [m["message"]["messageId"] for m in again] == ids, "no duplicates"
    assert not {m["ackId"] for m in again} & {m["ackId"] for m in first}
    ps.ack(names.sub, [m["ackId"] for m in again])
    assert ps.pull(names.sub, 10, returnImmediately=True) == []  # once more only
    ps.control.config(duplicate=False, reorder=True)
    ids = ps.publish(names.topic, [{"data": bytes([i])} for i in range(30)])
    got = ps.pull(names.sub, 30)
    assert sorted(m["message"]["messageId"] for m in got) == sorted(ids)
    assert [m["message"]["messageId"] for m in got] != ids, "not reordered"
    ps.ack(names.sub, [m["ackId"] for m in got])
    ps.control.config(reorder=False, deliver_after_ms=600)
    t0 = time.monotonic()
    ps.publish(names.topic, [{"data": b"late"}])
    assert ps.pull(names.sub, 10, returnImmediately=True) == []
    got = ps.pull_until(names.sub, 1, timeout=5)
    assert [data_of(m) for m in got] == [b"late"]
    assert time.monotonic() - t0 >= 0.6
    ps.control.config(deliver_after_ms=0)
