"""notify.py - Pub/Sub notifications for gcs_server.py, as Cloud Storage sends them.

Sources: https://cloud.google.com/storage/docs/pubsub-notifications and
https://cloud.google.com/storage/docs/json_api/v1/notifications

The notification-config resource (JSON API v1):

    POST   /storage/v1/b/B/notificationConfigs        insert {"topic", "payload_format"
                                                      (JSON_API_V1 | NONE), "event_types",
                                                      "object_name_prefix",
                                                      "custom_attributes"} -> 200 resource
    GET    /storage/v1/b/B/notificationConfigs        list {"kind": "storage#notifications",
                                                      "items": [...]}
    GET    /storage/v1/b/B/notificationConfigs/ID     get
    DELETE /storage/v1/b/B/notificationConfigs/ID     204

`topic` may be given as "projects/P/topics/T" or "//pubsub.googleapis.com/projects/P/
topics/T" and is answered in the second form; the topic must exist on the Pub/Sub
server (else 400 invalid, as GCS answers when the topic is missing or it may not
publish to it).  At most 100 configs a bucket.  Without a Pub/Sub server (gcs_server
started without --pubsub-url) insert is 400.

Events (hook calls from gcs_server.py, made with its state lock held so they are
queued in the order of the changes; a background thread publishes them, in order,
retrying while the Pub/Sub server fails, as GCS delivers notifications
asynchronously and does not fail the write):

    finalized(bucket, obj, old)    OBJECT_FINALIZE (upload, copy/rewrite, compose) with
                                   overwroteGeneration when it replaced a live object,
                                   and then OBJECT_DELETE of the replaced generation with
                                   overwrittenByGeneration (the bucket keeps no versions,
                                   so never OBJECT_ARCHIVE)
    deleted(bucket, obj)           OBJECT_DELETE
    metadata_updated(bucket, obj)  OBJECT_METADATA_UPDATE

(bucket is gcs_server's Bucket, obj its Obj after the change, old the Obj it replaced
or None.)  Uploads reach finalized() through Handler._store; a new way to write an
object (copy, rewrite, compose) that does not go through _store calls
st.notifier.finalized(b, new, old) itself, with the state lock held, right after it
puts the new object in place.

Each message has the attributes notificationConfig ("projects/_/buckets/B/
notificationConfigs/ID"), eventType, payloadFormat, bucketId, objectId,
objectGeneration, eventTime (RFC 3339), overwroteGeneration / overwrittenByGeneration
where they apply, and the config's custom_attributes; with JSON_API_V1 its data is the
object resource (JSON), with NONE it has no data.

stats() -> {"queued", "published", "retries", "dropped", "pending"} for the control API
(GET /_test/notifications).
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Optional

EVENT_TYPES = ("OBJECT_FINALIZE", "OBJECT_METADATA_UPDATE", "OBJECT_DELETE", "OBJECT_ARCHIVE")
PAYLOAD_FORMATS = ("JSON_API_V1", "NONE")
TOPIC_PREFIX = "//pubsub.googleapis.com/"
MAX_CONFIGS = 100
MAX_QUEUE = 10000
SERVICE_AGENT = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
_TOPIC_RE = re.compile(r"^(?://pubsub\.googleapis\.com/)?projects/([^/]+)/topics/([^/]+)$")
_PATH_RE = re.compile(r"^/storage/v1/b/([^/]+)/notificationConfigs(?:/([^/]+))?/?$")


class Notifier:
    def __init__(self, state, pubsub_url: Optional[str], http_error, rfc3339):
        """state: gcs_server's State (lock, buckets, base, issue_token);
        http_error(status, reason, message) builds its HttpError; rfc3339(us) formats a
        time as GCS does."""
        self.state = state
        self.url = pubsub_url.rstrip("/") if pubsub_url else None
        self.err = http_error
        self.rfc3339 = rfc3339
        self.cond = threading.Condition()
        self.queue: collections.deque = collections.deque()
        self.stats_ = collections.Counter()
        self.token: Optional[str] = None
        self.stopping = False
        self.thread: Optional[threading.Thread] = None
        self.next_id = 1

    # ---- lifecycle
    def start(self):
        if self.url and self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True, name="gcs-notify")
            self.thread.start()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread:
            self.thread.join(timeout=5)

    def stats(self) -> dict:
        with self.cond:
            return {k: self.stats_[k] for k in ("queued", "published", "retries", "dropped")} | {
                "pending": len(self.queue)}

    # ---- the REST resource (called from the request handler)
    def route(self, handler, method: str, path: str, body: bytes) -> bool:
        m = _PATH_RE.match(path)
        if not m:
            return False
        bucket, cid = m.group(1), m.group(2)
        e = handler.entry
        e["bucket"] = bucket
        e["kind"] = "notifications." + {"POST": "insert", "DELETE": "delete",
                                         "GET": "get" if cid else "list"}.get(method, "unknown")
        if method not in ("GET", "POST", "DELETE") or (method == "POST" and cid) \
                or (method == "DELETE" and not cid):
            raise self.err(404, "notFound", "Not Found")
        handler._auth(write=method != "GET")
        st = handler.state
        base = f"{st.base}/storage/v1/b/{bucket}/notificationConfigs"
        with st.lock:
            b = st.buckets.get(bucket)
            if b is None:
                raise self.err(404, "notFound", "The specified bucket does not exist.")
            configs = b.__dict__.setdefault("notification_configs", {})
            if method == "GET" and not cid:
                out = {"kind": "storage#notifications"}
                if configs:
                    out["items"] = [self._resource(c, base) for c in configs.values()]
                return handler._json(200, out, params=handler.params) or True
            if cid:
                c = configs.get(cid)
                if c is None:
                    raise self.err(404, "notFound", f"No such notification config: {cid}")
                if method == "DELETE":
                    del configs[cid]
                    handler._send(204)
                    return True
                return handler._json(200, self._resource(c, base), params=handler.params) or True
        cfg = self._parse(body)
        self._check_topic(cfg["topic"])
        with st.lock:
            b = st.buckets.get(bucket)
            if b is None:
                raise self.err(404, "notFound", "The specified bucket does not exist.")
            configs = b.__dict__.setdefault("notification_configs", {})
            if len(configs) >= MAX_CONFIGS:
                raise self.err(400, "invalid", f"A bucket may have at most {MAX_CONFIGS} "
                                               f"notification configurations.")
            cfg["id"] = str(self.next_id)
            self.next_id += 1
            configs[cfg["id"]] = cfg
            res = self._resource(cfg, base)
        handler._json(200, res, params=handler.params)
        return True

    def _parse(self, body: bytes) -> dict:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            raise self.err(400, "parseError", "Parse Error")
        if not isinstance(req, dict):
            raise self.err(400, "invalid", "Invalid JSON payload")
        if not self.url:
            raise self.err(400, "invalid", "This test server has no Pub/Sub server "
                                           "(start gcs_server.py with --pubsub-url).")
        m = _TOPIC_RE.match(req.get("topic") or "")
        if not m:
            raise self.err(400, "invalid", "Invalid Google Cloud Pub/Sub topic. It should look "
                                           "like '//pubsub.googleapis.com/projects/*/topics/*'.")
        fmt = req.get("payload_format")
        if fmt not in PAYLOAD_FORMATS:
            raise self.err(400, "invalid", f"Invalid payload format: {fmt}. It must be one of "
                                           f"{', '.join(PAYLOAD_FORMATS)}.")
        events = req.get("event_types") or []
        if not isinstance(events, list) or any(t not in EVENT_TYPES for t in events):
            raise self.err(400, "invalid", f"Invalid event types: {events}.")
        attrs = req.get("custom_attributes") or {}
        if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
            raise self.err(400, "invalid", "Invalid custom_attributes.")
        prefix = req.get("object_name_prefix") or ""
        if not isinstance(prefix, str):
            raise self.err(400, "invalid", "Invalid object_name_prefix.")
        return {"topic": f"projects/{m.group(1)}/topics/{m.group(2)}", "payload_format": fmt,
                "event_types": list(events), "custom_attributes": dict(attrs),
                "object_name_prefix": prefix}

    def _check_topic(self, topic: str):
        try:
            status, _ = self._call("GET", f"/v1/{topic}", None)
        except OSError:
            status = None
        if status != 200:
            raise self.err(400, "invalid",
                           f"Cloud Pub/Sub topic '{TOPIC_PREFIX}{topic}' not found, or user "
                           f"'{SERVICE_AGENT}' does not have permission to it.")

    @staticmethod
    def _resource(c: dict, base: str) -> dict:
        r = {"kind": "storage#notification", "id": c["id"], "selfLink": f"{base}/{c['id']}",
             "topic": TOPIC_PREFIX + c["topic"], "payload_format": c["payload_format"],
             "etag": c["id"]}
        if c["event_types"]:
            r["event_types"] = list(c["event_types"])
        if c["custom_attributes"]:
            r["custom_attributes"] = dict(c["custom_attributes"])
        if c["object_name_prefix"]:
            r["object_name_prefix"] = c["object_name_prefix"]
        return r

    # ---- events (called with gcs_server's state lock held)
    # eventTime: the new generation's timeCreated, the metadata's new `updated`, or now
    # for a delete
    def finalized(self, bucket, obj, old=None):
        extra = {"overwroteGeneration": str(old.generation)} if old is not None else {}
        self._event(bucket, obj, "OBJECT_FINALIZE", extra, obj.created_us)
        if old is not None:
            self._event(bucket, old, "OBJECT_DELETE",
                        {"overwrittenByGeneration": str(obj.generation)}, obj.created_us)

    def deleted(self, bucket, obj):
        self._event(bucket, obj, "OBJECT_DELETE", {}, time.time_ns() // 1000)

    def metadata_updated(self, bucket, obj):
        self._event(bucket, obj, "OBJECT_METADATA_UPDATE", {}, obj.updated_us)

    def _event(self, bucket, obj, event: str, extra: dict, when_us: int):
        configs = getattr(bucket, "notification_configs", None)
        if not configs or not self.url:
            return
        now = self.rfc3339(when_us)
        for c in configs.values():
            if c["event_types"] and event not in c["event_types"]:
                continue
            if not obj.name.startswith(c["object_name_prefix"]):
                continue
            attrs = dict(c["custom_attributes"])
            attrs.update({
                "notificationConfig": f"projects/_/buckets/{bucket.name}/notificationConfigs/"
                                      f"{c['id']}",
                "eventType": event, "payloadFormat": c["payload_format"],
                "bucketId": bucket.name, "objectId": obj.name,
                "objectGeneration": str(obj.generation), "eventTime": now, **extra})
            msg = {"attributes": attrs}
            if c["payload_format"] == "JSON_API_V1":
                msg["data"] = base64.b64encode(
                    json.dumps(obj.resource(self.state.base)).encode()).decode()
            with self.cond:
                if len(self.queue) >= MAX_QUEUE:
                    self.queue.popleft()
                    self.stats_["dropped"] += 1
                self.queue.append((c["topic"], msg))
                self.stats_["queued"] += 1
                self.cond.notify_all()

    # ---- publishing
    def _call(self, method: str, path: str, body: Optional[dict]):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", "Bearer " + self._token())
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def _token(self) -> str:
        """GCS publishes as its own service agent: a token this server issued (again
        after a /_test/reset dropped it), which the Pub/Sub server can check with
        /tokeninfo."""
        st = self.state
        with st.lock:
            if self.token not in st.tokens:
                self.token = st.issue_token(SERVICE_AGENT, [PUBSUB_SCOPE], 7 * 86400)
            return self.token

    def _run(self):
        delay = 0.05
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait(1.0)
                if self.stopping:
                    return
                topic, msg = self.queue[0]
            try:
                status, _ = self._call("POST", f"/v1/{topic}:publish", {"messages": [msg]})
            except OSError:
                status = None
            with self.cond:
                if status == 200 or status == 404:  # 404: the topic is gone; GCS drops it
                    if self.queue and self.queue[0][1] is msg:
                        self.queue.popleft()
                    self.stats_["published" if status == 200 else "dropped"] += 1
                    delay = 0.05
                    continue
                self.stats_["retries"] += 1
                self.cond.wait(delay)
                delay = min(delay * 2, 1.0)
