#!/usr/bin/python3
"""pubsub_server.py - an in-memory Google Cloud Pub/Sub server for tests, on 127.0.0.1.

It follows Google's published Pub/Sub REST API v1
(https://cloud.google.com/pubsub/docs/reference/rest) closely enough that Google's
own client (REST transport) works against it:

  * topics         PUT    /v1/projects/P/topics/T            create (409 ALREADY_EXISTS)
                   GET    /v1/projects/P/topics/T            get
                   DELETE /v1/projects/P/topics/T            delete (its subscriptions stay,
                                                             their topic becomes
                                                             "_deleted-topic_")
                   POST   /v1/projects/P/topics/T:publish    {"messages": [{data (base64),
                                                             attributes, orderingKey}]}
                                                             -> {"messageIds": [...]}
                   GET    /v1/projects/P/topics              list (pageSize, pageToken)
                   GET    /v1/projects/P/topics/T/subscriptions
  * subscriptions  PUT    /v1/projects/P/subscriptions/S     create {"topic", ackDeadlineSeconds
                                                             (0/absent = 10; else 10..600),
                                                             enableMessageOrdering, labels}
                   GET / DELETE /v1/projects/P/subscriptions/S
                   GET    /v1/projects/P/subscriptions       list
                   POST   ...S:pull               {"maxMessages" >= 1, "returnImmediately"}
                   POST   ...S:acknowledge        {"ackIds": [...]}
                   POST   ...S:modifyAckDeadline  {"ackIds": [...], "ackDeadlineSeconds" 0..600}
  * delivery: a subscription gets every message published to its topic after it was
    created, at least once.  A pulled message is outstanding until its ack deadline;
    then (or at once on modifyAckDeadline 0, a "nack") it is delivered again with a
    new ackId.  receivedMessages carry ackId and message {data, attributes, messageId,
    publishTime (RFC 3339, nanoseconds, Z), orderingKey}; no deliveryAttempt (there
    is no dead-letter policy).  With enableMessageOrdering, messages of one
    orderingKey are delivered in publish order, and none of a key while an earlier one
    of that key is outstanding; when one is redelivered, the later outstanding ones of
    its key are too (as Google documents).
  * acks: acknowledge / modifyAckDeadline with an expired, superseded or unknown (but
    well-formed) ackId succeed and do nothing, as Pub/Sub does without exactly-once
    delivery; the latest ackId of a message still acks it after its deadline while it
    has not been delivered again ("may succeed").  A malformed ackId is 400
    INVALID_ARGUMENT, no ackIds at all 400 too.
  * pull with nothing to deliver waits up to pull_wait_ms (default 1000) for a message,
    then answers {} (at once with returnImmediately).
  * errors as Google sends them: {"error": {"code": 404, "message": "Resource not found
    (resource=T).", "status": "NOT_FOUND"}} -- 400 INVALID_ARGUMENT, 401
    UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS, 429
    RESOURCE_EXHAUSTED, ...  Unsupported features (push, filters, dead letters,
    exactly-once) are refused with 400, never silently ignored.
  * auth: with require_auth, API calls need "Authorization: Bearer <token>".  Started
    with --auth-url GCS_URL, tokens are checked with that GCS test server's
    /tokeninfo (it issues them; they need the pubsub or cloud-platform scope);
    without it any Bearer token is taken.
  * bounded: topics, subscriptions, messages per publish (1000), message size (10 MB),
    attributes (100; keys 256 bytes, values 1024), a subscription's backlog
    (MAX_BACKLOG messages) and all backlogs' bytes together (MAX_HELD_BYTES): a
    publish that would exceed them is 429 RESOURCE_EXHAUSTED; the request log.

Run:
    python3 tests/pubsub/pubsub_server.py --port 0 --port-file F [--require-auth]
        [--auth-url GCS_URL] [--pull-wait-ms N] [--request-log FILE] [--exit-with-parent]
Import:  PubsubServer(...).start() / .url / .stop()

Control API (never delayed, failed or logged, never needs auth), JSON in and out:
    GET  /_test/health                    {"ok": true, "pid": N}
    GET  /_test/config                    the current settings
    POST /_test/config    {...}           change settings (wakes waiting requests):
                                          delay_ms, delay_only (kinds; [] = all),
                                          hang (true: requests wait until it is false
                                            again or the server stops), hang_only (kinds),
                                          pull_wait_ms, ack_deadline_scale (deadlines are
                                            multiplied by it: 0.1 makes 10 s one second),
                                          stall (true, or a list of subscription names
                                            or ids: pulls deliver nothing, publishes still
                                            queue), require_auth, auth_url (the GCS test
                                            server whose /tokeninfo checks tokens; null:
                                            any Bearer token)
    POST /_test/fail      {"count": N, "status": 503, "kinds": [...]}  the next N requests
                                          (of those kinds; [] = any) fail with that status
                                          and Google's error body; GET shows what is left
    GET  /_test/log?since=N               {"requests": [...], "next": M}; each entry: seq, t,
                                          method, path, query, kind, project, topic,
                                          subscription, status, auth, auth_ok, fault,
                                          messages (pull: delivered; publish: published),
                                          ack_ids (acknowledge / modifyAckDeadline), user_agent,
                                          api_client (x-goog-api-client)
    POST /_test/log/clear
    GET  /_test/counters                  {"kinds": {kind: n}, "status": {code: n}}
    GET  /_test/state                     topics and subscriptions with their backlog:
                                          {"subscriptions": {name: {"topic", "backlog",
                                          "outstanding", "delivered", "redelivered",
                                          "acked", "nacked", "expired"}}, "topics": [..],
                                          "published": N, "held_bytes": N}
    POST /_test/reset                     drop topics, subscriptions, faults, the log;
                                          settings back to the start ones

Request kinds: topics.create, topics.get, topics.delete, topics.publish, topics.list,
topics.subscriptions, subscriptions.create, subscriptions.get, subscriptions.delete,
subscriptions.list, subscriptions.pull, subscriptions.acknowledge,
subscriptions.modifyAckDeadline, unknown.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import copy
import dataclasses
import json
import re
import secrets
import struct
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gcs"))
import gcs_server  # noqa: E402  (shared HTTP plumbing, RFC 3339, the serve loop)

MAX_TOPICS = 1000
MAX_SUBSCRIPTIONS = 1000
MAX_BACKLOG = 20000            # messages kept per subscription
MAX_PUBLISH_MESSAGES = 1000    # per publish request
MAX_REQUEST_BYTES = 10 * 1000 * 1000
MAX_ATTRIBUTES = 100
MAX_ATTR_KEY = 256
MAX_ATTR_VALUE = 1024
MAX_ORDERING_KEY = 1024
MAX_PULL = 1000                # messages returned by one pull at most
MAX_LOG = 20000
MAX_HELD_BYTES = 256 * 1024 * 1024  # message bytes held by all backlogs together
DEFAULT_ACK_DEADLINE = 10
RETENTION = "604800s"
DELETED_TOPIC = "_deleted-topic_"
SCOPES = {"https://www.googleapis.com/auth/pubsub",
          "https://www.googleapis.com/auth/cloud-platform"}

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
          429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
          501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
_PATH_RE = re.compile(r"^/v1/projects/([^/:]+)/(topics|subscriptions)(?:/([^/:]+))?"
                      r"(/subscriptions)?(?::([A-Za-z]+))?/?$")


def rfc3339_ns(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, as Pub/Sub writes publishTime."""
    return gcs_server.rfc3339(ns // 1000)[:-5] + f".{ns % 1_000_000_000:09d}Z"


class ApiError(Exception):
    """A Google API error: {"error": {"code", "message", "status"}}."""

    def __init__(self, code: int, message: str, status: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS.get(code, "UNKNOWN")

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid(msg):
    return ApiError(400, msg)


def not_found(short):
    return ApiError(404, f"Resource not found (resource={short}).")


# --------------------------------------------------------------------------- data


class Message:
    __slots__ = ("id", "data", "attributes", "ordering_key", "publish_ns", "size")

    def resource(self) -> dict:
        m = {"data": self.data, "messageId": self.id, "publishTime": rfc3339_ns(self.publish_ns)}
        if self.attributes:
            m["attributes"] = dict(self.attributes)
        if self.ordering_key:
            m["orderingKey"] = self.ordering_key
        return m


class Entry:
    """A message in one subscription's backlog."""
    __slots__ = ("msg", "ack_id", "deadline", "deliveries")

    def __init__(self, msg: Message):
        self.msg = msg
        self.ack_id: Optional[str] = None   # of the latest delivery
        self.deadline: Optional[float] = None  # monotonic; None = available
        self.deliveries = 0


@dataclasses.dataclass
class Subscription:
    uid: int
    name: str
    topic: str             # its full name, or DELETED_TOPIC
    ack_deadline: int      # seconds
    ordering: bool         # enableMessageOrdering
    labels: dict
    backlog: collections.OrderedDict = dataclasses.field(
        default_factory=collections.OrderedDict)       # entry seq -> Entry, publish order
    acks: dict = dataclasses.field(default_factory=dict)  # current ack id -> entry seq
    stats: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def resource(self) -> dict:
        r = {"name": self.name, "topic": self.topic, "pushConfig": {},
             "ackDeadlineSeconds": self.ack_deadline,
             "messageRetentionDuration": RETENTION,
             "expirationPolicy": {"ttl": "2678400s"}, "state": "ACTIVE"}
        if self.ordering:
            r["enableMessageOrdering"] = True
        if self.labels:
            r["labels"] = dict(self.labels)
        return r


def _ack_id(sub_uid: int, seq: int, delivery: int) -> str:
    raw = struct.pack(">QQI", sub_uid, seq, delivery) + secrets.token_bytes(8)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _ack_id_ok(ack_id) -> bool:
    if not isinstance(ack_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{38}", ack_id):
        return False
    try:
        return len(base64.urlsafe_b64decode(ack_id + "==")) == 28
    except (binascii.Error, ValueError):
        return False


DEFAULT_CONFIG = {
    "delay_ms": 0,
    "delay_only": [],
    "hang": False,
    "hang_only": [],
    "pull_wait_ms": 1000,
    "ack_deadline_scale": 1.0,
    "stall": False,
    "require_auth": False,
    "auth_url": None,
}


class State(gcs_server.StateBase):
    config_keys = DEFAULT_CONFIG

    def __init__(self, config: dict):
        super().__init__(config)
        self.topics: dict[str, dict] = {}      # name -> {"name", "labels", "subs": set}
        self.subs: dict[str, Subscription] = {}
        self.next_uid = 1
        self.next_msg = 1
        self.next_seq = 1
        self.published = 0
        self.log: collections.deque = collections.deque(maxlen=MAX_LOG)
        self.fail = {"count": 0, "status": 503, "kinds": []}
        self.token_cache: dict[str, tuple] = {}
        self.held_bytes = 0  # of the messages in all backlogs (a copy per subscription)

    def reset(self, keys=False):
        with self.cond:
            self.topics.clear()
            self.subs.clear()
            self.held_bytes = 0
            self.log.clear()
            self.kinds.clear()
            self.statuses.clear()
            self.fail = {"count": 0, "status": 503, "kinds": []}
            self.token_cache.clear()
            self.config = copy.deepcopy(self.start_config)
            self.cond.notify_all()

    def scale(self) -> float:
        return float(self.config.get("ack_deadline_scale") or 1.0)

    def stalled(self, sub: Subscription) -> bool:
        s = self.config.get("stall")
        if isinstance(s, list):
            return sub.name in s or sub.name.rsplit("/", 1)[-1] in s
        return bool(s)

    # ---- delivery (lock held)
    def _release(self, sub: Subscription, seq: int, entry: Entry, why: str):
        """Make an outstanding message deliverable again (deadline passed or nack);
        with ordering, the later outstanding messages of its key go back too."""
        entry.deadline = None
        sub.stats[why] += 1
        key = entry.msg.ordering_key
        if sub.ordering and key:
            after = False
            for s2, e2 in sub.backlog.items():
                if s2 == seq:
                    after = True
                elif after and e2.deadline is not None and e2.msg.ordering_key == key:
                    e2.deadline = None
                    sub.stats[why] += 1
        self.cond.notify_all()

    def expire(self, sub: Subscription, now: float) -> Optional[float]:
        """Release messages whose deadline passed; return the next deadline."""
        nxt = None
        for seq, e in list(sub.backlog.items()):
            if e.deadline is None:
                continue
            if e.deadline <= now:
                self._release(sub, seq, e, "expired")
            elif nxt is None or e.deadline < nxt:
                nxt = e.deadline
        return nxt

    def take(self, sub: Subscription, max_messages: int, now: float) -> list[dict]:
        out = []
        blocked = set()
        deadline = now + sub.ack_deadline * self.scale()
        for seq, e in sub.backlog.items():
            if len(out) >= max_messages:
                break
            key = e.msg.ordering_key if sub.ordering else ""
            if e.deadline is not None:
                if key:
                    blocked.add(key)
                continue
            if key and key in blocked:
                continue
            if e.ack_id:
                sub.acks.pop(e.ack_id, None)
                sub.stats["redelivered"] += 1
            e.deliveries += 1
            e.ack_id = _ack_id(sub.uid, seq, e.deliveries)
            e.deadline = deadline
            sub.acks[e.ack_id] = seq
            sub.stats["delivered"] += 1
            out.append({"ackId": e.ack_id, "message": e.msg.resource()})
        return out


# --------------------------------------------------------------------------- handler


def _kind(method: str, coll: str, rid: Optional[str], nested: bool, verb: Optional[str]):
    if nested:
        return "topics.subscriptions" if method == "GET" and coll == "topics" and rid else None
    if rid is None:
        return f"{coll}.list" if method == "GET" and not verb else None
    if verb:
        ok = {"topics": {"publish"},
              "subscriptions": {"pull", "acknowledge", "modifyAckDeadline"}}[coll]
        return f"{coll}.{verb}" if method == "POST" and verb in ok else None
    return {"PUT": f"{coll}.create", "GET": f"{coll}.get",
            "DELETE": f"{coll}.delete"}.get(method)


def _int(req: dict, key: str) -> int:
    """An int32 field of a request (proto3 JSON: a number or a decimal string; absent
    is 0)."""
    v = req.get(key, 0)
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise invalid(f"Invalid value at '{key}' (TYPE_INT32), {json.dumps(v)}")
    return v


def _matches(kind: str, kinds) -> bool:
    return not kinds or any(kind == k or kind.startswith(k + ".") for k in kinds)


class Handler(gcs_server.Handler):
    server_version = "ESF"

    def version_string(self):
        return "ESF"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("pubsub_server: " + (fmt % args) + "\n")

    def _out(self, status: int, obj: dict):
        self._send(status, (json.dumps(obj, indent=2) + "\n").encode(), (),
                   "application/json; charset=UTF-8")

    def _handle(self, method):
        cl = self.headers.get("Content-Length") or "0"
        if not cl.isdigit() or int(cl) > MAX_REQUEST_BYTES + 1024 * 1024:
            # refuse before reading it: a test cannot make the server hold any size
            self._status = None
            self.close_connection = True
            err = invalid(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
            return self._send(400, json.dumps(err.body()).encode(), [("Connection", "close")],
                              "application/json; charset=UTF-8")
        got = self._prelude(method)
        if got is None:
            return
        raw_path, query, body = got
        st: State = self.server.state
        path = urllib.parse.unquote(raw_path)
        m = _PATH_RE.match(path)
        kind = (_kind(method, m.group(2), m.group(3), bool(m.group(4)), m.group(5))
                if m else None) or "unknown"
        authz = self.headers.get("Authorization")
        with st.lock:
            st.seq += 1
            self.entry = {
                "seq": st.seq, "t": time.time(), "method": method, "path": raw_path,
                "query": query, "kind": kind, "project": m.group(1) if m else None,
                "topic": None, "subscription": None, "status": None,
                "auth": ("none" if not authz else "bearer" if authz.lower().startswith("bearer ")
                         else "other"),
                "auth_ok": None, "fault": None, "user_agent": self.headers.get("User-Agent"),
                "api_client": self.headers.get("x-goog-api-client"),
            }
            if m and m.group(3):
                self.entry["topic" if m.group(2) == "topics" else "subscription"] = (
                    f"projects/{m.group(1)}/{m.group(2)}/{m.group(3)}")
            st.log.append(self.entry)
        try:
            fault = self._faults(kind)
            if st.stopping:
                self.close_connection = True
                return
            try:
                if fault is not None:
                    raise fault
                if kind == "unknown":
                    raise ApiError(404, "Method not found.")
                if len(body) > MAX_REQUEST_BYTES:
                    raise invalid(f"Request payload size exceeds the limit: "
                                  f"{MAX_REQUEST_BYTES} bytes.")
                self._auth()
                try:
                    req = json.loads(body) if body.strip() else {}
                except ValueError:
                    raise invalid("Invalid JSON payload received.")
                if not isinstance(req, dict):
                    raise invalid("Invalid JSON payload received.")
                out = self._api(kind, m.group(1), m.group(3), req)
                self._out(200, out)
            except ApiError as e:
                self._out(e.code, e.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug here: answer 500 and say so
            import traceback

            traceback.print_exc()
            try:
                self._out(500, ApiError(500, f"test server bug: {e!r}").body())
            except OSError:
                self.close_connection = True
        finally:
            with st.lock:
                self.entry["status"] = self._status
                st.kinds[kind] += 1
                st.statuses[str(self._status)] += 1
            if self.server.request_log:
                with st.lock, open(self.server.request_log, "a") as f:
                    f.write(json.dumps(self.entry) + "\n")

    def _faults(self, kind: str) -> Optional[ApiError]:
        """Wait out a delay or a hang; the injected failure to answer, if any."""
        st: State = self.server.state
        start = time.monotonic()
        with st.cond:
            while not st.stopping:
                cfg = st.config
                if cfg["hang"] and _matches(kind, cfg["hang_only"]):
                    self.entry["fault"] = "hang"
                    st.cond.wait(1.0)
                    continue
                if _matches(kind, cfg["delay_only"]):
                    left = start + cfg["delay_ms"] / 1000.0 - time.monotonic()
                    if left > 0:
                        self.entry["fault"] = self.entry["fault"] or "delay"
                        st.cond.wait(min(left, 1.0))
                        continue
                break
            f = st.fail
            if f["count"] > 0 and _matches(kind, f["kinds"]):
                f["count"] -= 1
                self.entry["fault"] = "fail"
                code = int(f["status"])
                return ApiError(code, f"Injected failure ({STATUS.get(code, code)}).")
        return None

    def _auth(self):
        st: State = self.server.state
        authz = self.headers.get("Authorization")
        if not authz:
            if st.config["require_auth"]:
                self.entry["auth_ok"] = False
                raise ApiError(401, "Request is missing required authentication credential. "
                                    "Expected OAuth 2 access token, login cookie or other "
                                    "valid authentication credential. See "
                                    "https://developers.google.com/identity/sign-in/web/"
                                    "devconsole-project.")
            return
        scheme, _, tok = authz.partition(" ")
        tok = tok.strip()
        info = self._token_info(tok) if scheme.lower() == "bearer" and tok else None
        if info is None:
            self.entry["auth_ok"] = False
            raise ApiError(401, "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid "
                                "authentication credential.")
        self.entry["auth_ok"] = True
        if info is not True and not (set(info.get("scope", "").split()) & SCOPES):
            raise ApiError(403, "Request had insufficient authentication scopes.")

    def _token_info(self, tok: str):
        """True (no checking server), the tokeninfo dict, or None (not valid)."""
        st: State = self.server.state
        auth_url = (st.config.get("auth_url") or "").rstrip("/")
        if not auth_url:
            return True
        now = time.monotonic()
        with st.lock:
            hit = st.token_cache.get(tok)
        if hit and hit[0] > now:
            return hit[1]
        url = auth_url + "/tokeninfo?access_token=" + urllib.parse.quote(tok, safe="")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                info = json.loads(r.read())
        except Exception:
            info = None
        with st.lock:
            if len(st.token_cache) > 1000:
                st.token_cache.clear()
            st.token_cache[tok] = (now + 2.0, info)
        return info

    # ---- the API
    def _api(self, kind: str, project: str, rid: Optional[str], req: dict) -> dict:
        st: State = self.server.state
        coll, _, op = kind.partition(".")
        if rid is not None and (not _NAME_RE.match(rid) or rid.startswith("goog")):
            raise invalid(f"Invalid [{coll}] name: (name=projects/{project}/{coll}/{rid})")
        name = f"projects/{project}/{coll}/{rid}"
        if op == "list":
            return self._list(project, coll)
        if kind == "topics.subscriptions":
            with st.lock:
                t = st.topics.get(name)
                if t is None:
                    raise not_found(rid)
                return self._page([s for s in sorted(t["subs"])], "subscriptions")
        if coll == "topics":
            return getattr(self, "_topic_" + op)(name, rid, req)
        return getattr(self, "_sub_" + op)(name, rid, req)

    def _page(self, items: list, key: str) -> dict:
        try:
            size = int(self.params.get("pageSize") or 100)
            off = int(self.params.get("pageToken") or 0)
        except ValueError:
            raise invalid("Invalid page token or page size.")
        size = max(1, min(size, 1000))
        out = {}
        if items[off:off + size]:
            out[key] = items[off:off + size]
        if off + size < len(items):
            out["nextPageToken"] = str(off + size)
        return out

    def _list(self, project: str, coll: str) -> dict:
        st: State = self.server.state
        pre = f"projects/{project}/{coll}/"
        with st.lock:
            if coll == "topics":
                items = [self._topic_res(t) for n, t in sorted(st.topics.items())
                         if n.startswith(pre)]
            else:
                items = [s.resource() for n, s in sorted(st.subs.items()) if n.startswith(pre)]
        return self._page(items, coll)

    @staticmethod
    def _topic_res(t: dict) -> dict:
        r = {"name": t["name"]}
        if t["labels"]:
            r["labels"] = dict(t["labels"])
        return r

    @staticmethod
    def _labels(req: dict) -> dict:
        labels = req.get("labels") or {}
        if not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise invalid("Invalid value for labels.")
        return labels

    def _check_body_name(self, req: dict, name: str):
        if req.get("name") not in (None, "", name):
            raise invalid(f"The resource name in the request body ({req['name']}) does not "
                          f"match the one in the URL ({name}).")

    def _topic_create(self, name, rid, req):
        st: State = self.server.state
        self._check_body_name(req, name)
        for k in ("schemaSettings", "ingestionDataSourceSettings", "messageTransforms"):
            if req.get(k):
                raise invalid(f"{k} is not supported by this test server.")
        labels = self._labels(req)
        with st.lock:
            if name in st.topics:
                raise ApiError(409, "Resource already exists in the project "
                                    f"(resource={rid}).")
            if len(st.topics) >= MAX_TOPICS:
                raise ApiError(429, f"This test server keeps at most {MAX_TOPICS} topics.")
            st.topics[name] = {"name": name, "labels": labels, "subs": set()}
            return self._topic_res(st.topics[name])

    def _topic_get(self, name, rid, req):
        st: State = self.server.state
        with st.lock:
            if name not in st.topics:
                raise not_found(rid)
            return self._topic_res(st.topics[name])

    def _topic_delete(self, name, rid, req):
        st: State = self.server.state
        with st.lock:
            t = st.topics.pop(name, None)
            if t is None:
                raise not_found(rid)
            for s in t["subs"]:
                if s in st.subs:
                    st.subs[s].topic = DELETED_TOPIC
        return {}

    def _topic_publish(self, name, rid, req):
        st: State = self.server.state
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise invalid("The value for message_count is too small. You passed 0 in the "
                          "request, but the minimum value is 1.")
        if len(msgs) > MAX_PUBLISH_MESSAGES:
            raise invalid(f"The value for message_count is too large. You passed "
                          f"{len(msgs)} in the request, but the maximum value is "
                          f"{MAX_PUBLISH_MESSAGES}.")
        parsed = [self._parse_message(m) for m in msgs]
        with st.cond:
            t = st.topics.get(name)
            if t is None:
                raise not_found(rid)
            subs = [st.subs[s] for s in sorted(t["subs"]) if s in st.subs]
            for s in subs:
                if len(s.backlog) + len(parsed) > MAX_BACKLOG:
                    raise ApiError(429, f"Subscription {s.name} holds {len(s.backlog)} "
                                        f"messages; this test server keeps at most "
                                        f"{MAX_BACKLOG}.")
            size = sum(p[3] for p in parsed)
            if st.held_bytes + size * len(subs) > MAX_HELD_BYTES:
                raise ApiError(429, f"The subscriptions hold {st.held_bytes} bytes of "
                                    f"messages; this test server keeps at most "
                                    f"{MAX_HELD_BYTES}.")
            ids = []
            now_ns = time.time_ns()
            for data, attrs, key, msize in parsed:
                msg = Message()
                msg.id = str(st.next_msg)
                st.next_msg += 1
                msg.data, msg.attributes, msg.ordering_key = data, attrs, key
                msg.publish_ns = now_ns
                msg.size = msize
                ids.append(msg.id)
                for s in subs:
                    s.backlog[st.next_seq] = Entry(msg)
                    st.next_seq += 1
                    st.held_bytes += msg.size
            st.published += len(ids)
            self.entry["messages"] = len(ids)
            st.cond.notify_all()
        return {"messageIds": ids}

    @staticmethod
    def _parse_message(m) -> tuple:
        if not isinstance(m, dict):
            raise invalid("Invalid JSON payload received. Each message must be an object.")
        data = m.get("data") or ""
        if not isinstance(data, str):
            raise invalid("Invalid value at 'messages.data' (TYPE_BYTES).")
        try:
            raw = base64.b64decode(data.replace("-", "+").replace("_", "/")
                                   + "=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"Invalid value at 'messages.data' (TYPE_BYTES), Base64 decoding "
                          f"failed for \"{data[:40]}\"")
        attrs = m.get("attributes") or {}
        if not isinstance(attrs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
            raise invalid("Invalid value at 'messages.attributes'.")
        if not raw and not attrs:
            raise invalid("Some messages are empty. Each message must contain either "
                          "non-empty data, or at least one attribute.")
        if len(raw) > MAX_REQUEST_BYTES:
            raise invalid("Message data is larger than 10 MB.")
        if len(attrs) > MAX_ATTRIBUTES:
            raise invalid(f"A message has {len(attrs)} attributes; the maximum is "
                          f"{MAX_ATTRIBUTES}.")
        for k, v in attrs.items():
            for what, n, most in (("key", len(k.encode()), MAX_ATTR_KEY),
                                  ("value", len(v.encode()), MAX_ATTR_VALUE)):
                if n > most:  # Pub/Sub's wording
                    raise invalid(f"One of the attributes in the request has a {what} that "
                                  f"is too long. The length is {n} characters, but the "
                                  f"maximum allowed is {most}. Refer to "
                                  f"https://cloud.google.com/pubsub/quotas for more "
                                  f"information.")
            if not k or k.startswith("goog"):
                raise invalid(f"Invalid attribute key '{k}': a key must not be empty, and "
                              f"keys starting with 'goog' are reserved.")
        key = m.get("orderingKey") or ""
        if not isinstance(key, str) or len(key.encode()) > MAX_ORDERING_KEY:
            raise invalid(f"An ordering key is longer than {MAX_ORDERING_KEY} bytes.")
        size = len(raw) + sum(len(k.encode()) + len(v.encode()) for k, v in attrs.items()) \
            + len(key.encode())
        return base64.b64encode(raw).decode(), dict(attrs), key, size

    def _sub_create(self, name, rid, req):
        st: State = self.server.state
        self._check_body_name(req, name)
        topic = req.get("topic")
        if not topic or not isinstance(topic, str):
            raise invalid("Invalid resource name given (name=). Refer to "
                          "https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names "
                          "for more information.")
        tm = re.fullmatch(r"projects/([^/]+)/topics/([^/]+)", topic)
        if not tm or not _NAME_RE.match(tm.group(2)):
            raise invalid(f"Invalid [topics] name: (name={topic})")
        if (req.get("pushConfig") or {}).get("pushEndpoint") or req.get("bigqueryConfig") \
                or req.get("cloudStorageConfig"):
            raise invalid("Push, BigQuery and Cloud Storage subscriptions are not supported "
                          "by this test server (pull only).")
        for k in ("filter", "deadLetterPolicy", "enableExactlyOnceDelivery", "detached"):
            if req.get(k):
                raise invalid(f"{k} is not supported by this test server.")
        ack = _int(req, "ackDeadlineSeconds")
        if ack == 0:
            ack = DEFAULT_ACK_DEADLINE
        if not 10 <= ack <= 600:
            raise invalid(f"Invalid ack deadline given: {ack}. The ack deadline must be "
                          f"between 10 and 600 seconds.")
        labels = self._labels(req)
        with st.lock:
            if name in st.subs:
                raise ApiError(409, f"Resource already exists in the project (resource={rid}).")
            t = st.topics.get(topic)
            if t is None:
                raise not_found(tm.group(2))
            if len(st.subs) >= MAX_SUBSCRIPTIONS:
                raise ApiError(429, f"This test server keeps at most {MAX_SUBSCRIPTIONS} "
                                    f"subscriptions.")
            s = Subscription(st.next_uid, name, topic, ack,
                             bool(req.get("enableMessageOrdering")), labels)
            st.next_uid += 1
            st.subs[name] = s
            t["subs"].add(name)
            return s.resource()

    def _sub(self, name, rid) -> Subscription:
        s = self.server.state.subs.get(name)
        if s is None:
            raise not_found(rid)
        return s

    def _sub_get(self, name, rid, req):
        with self.server.state.lock:
            return self._sub(name, rid).resource()

    def _sub_delete(self, name, rid, req):
        st: State = self.server.state
        with st.cond:
            s = self._sub(name, rid)
            del st.subs[name]
            st.held_bytes -= sum(e.msg.size for e in s.backlog.values())
            if s.topic in st.topics:
                st.topics[s.topic]["subs"].discard(name)
            st.cond.notify_all()
        return {}

    def _sub_pull(self, name, rid, req):
        st: State = self.server.state
        n = _int(req, "maxMessages")
        if n < 1:
            raise invalid(f"The value for max_messages is too small. You passed {n} in the "
                          f"request, but the minimum value is 1.")
        n = min(n, MAX_PULL)
        immediately = bool(req.get("returnImmediately"))
        with st.cond:
            self._sub(name, rid)
            end = time.monotonic() + st.config["pull_wait_ms"] / 1000.0
            while True:
                s = st.subs.get(name)
                if s is None:
                    raise not_found(rid)  # deleted while we waited
                now = time.monotonic()
                nxt = st.expire(s, now)
                got = [] if st.stalled(s) else st.take(s, n, now)
                if got or immediately or now >= end or st.stopping:
                    break
                wait = end - now
                if nxt is not None:
                    wait = min(wait, max(0.001, nxt - now))
                st.cond.wait(wait)
        self.entry["messages"] = len(got)
        return {"receivedMessages": got} if got else {}

    def _ack_ids(self, req: dict) -> list:
        ids = req.get("ackIds")
        if not ids:
            raise invalid("You have not specified an ack ID in the request.")
        if not isinstance(ids, list) or not all(_ack_id_ok(a) for a in ids):
            raise invalid("Some acknowledgement ids in the request were invalid. This could "
                          "be because the acknowledgement ids have expired or the "
                          "acknowledgement ids were malformed.")
        self.entry["ack_ids"] = len(ids)
        return ids

    def _sub_acknowledge(self, name, rid, req):
        st: State = self.server.state
        ids = self._ack_ids(req)
        with st.cond:
            s = self._sub(name, rid)
            for a in ids:
                seq = s.acks.pop(a, None)
                if seq is None:
                    continue  # expired and redelivered, acked, or unknown: ignored
                e = s.backlog.pop(seq, None)
                if e is not None:
                    st.held_bytes -= e.msg.size
                s.stats["acked"] += 1
            st.cond.notify_all()  # an ordering key may be free now
        return {}

    def _sub_modifyAckDeadline(self, name, rid, req):
        st: State = self.server.state
        secs = _int(req, "ackDeadlineSeconds")
        if not 0 <= secs <= 600:
            raise invalid(f"Invalid ack deadline given: {secs}. The ack deadline must be "
                          f"between 0 and 600 seconds.")
        ids = self._ack_ids(req)
        with st.cond:
            s = self._sub(name, rid)
            now = time.monotonic()
            for a in ids:
                seq = s.acks.get(a)
                e = s.backlog.get(seq) if seq is not None else None
                if e is None:
                    continue
                if secs == 0:
                    if e.deadline is not None:
                        st._release(s, seq, e, "nacked")
                else:
                    e.deadline = now + secs * st.scale()
        return {}

    # ---- control API (health, config, log, counters and reset are gcs_server's)
    def _control_own(self, method, path, req):
        st: State = self.server.state
        if path == "/_test/fail":
            with st.lock:
                if method == "POST":
                    st.fail = {"count": int(req.get("count", 1)),
                               "status": int(req.get("status", 503)),
                               "kinds": list(req.get("kinds") or [])}
                return dict(st.fail)
        if path == "/_test/state":
            with st.lock:
                now = time.monotonic()
                subs = {}
                for n, s in st.subs.items():
                    st.expire(s, now)
                    subs[n] = {"topic": s.topic, "backlog": len(s.backlog),
                               "outstanding": sum(e.deadline is not None
                                                  for e in s.backlog.values()),
                               **{k: s.stats[k] for k in ("delivered", "redelivered", "acked",
                                                          "nacked", "expired")}}
                return {"topics": sorted(st.topics), "subscriptions": subs,
                        "published": st.published, "held_bytes": st.held_bytes}
        return 404, {"error": "no such control endpoint"}


# --------------------------------------------------------------------------- server


class PubsubServer(gcs_server.TestServer):
    """The server, in this process: PubsubServer(...).start(); .url; .stop()."""
    thread_name = "pubsub-server"

    def __init__(self, port: int = 0, *, require_auth=False, auth_url: Optional[str] = None,
                 pull_wait_ms: int = 1000, verbose=False, request_log: Optional[str] = None):
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        cfg.update(require_auth=require_auth, pull_wait_ms=pull_wait_ms, auth_url=auth_url)
        self._listen(port, Handler, State(cfg), verbose, request_log)


def main(argv=None):
    ap = argparse.ArgumentParser(description="In-memory Pub/Sub REST v1 server for tests "
                                             "(127.0.0.1 only).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--require-auth", action="store_true")
    ap.add_argument("--auth-url", help="a GCS test server whose /tokeninfo checks tokens")
    ap.add_argument("--pull-wait-ms", type=int, default=1000,
                    help="how long a pull with nothing to deliver waits")
    ap.add_argument("--request-log", help="append every request (JSON lines) to this file")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started this one goes away")
    a = ap.parse_args(argv)
    srv = PubsubServer(a.port, require_auth=a.require_auth, auth_url=a.auth_url,
                       pull_wait_ms=a.pull_wait_ms, verbose=a.verbose,
                       request_log=a.request_log)
    return gcs_server.serve(srv, a.port_file, a.exit_with_parent, "pubsub_server")


if __name__ == "__main__":
    sys.exit(main())
