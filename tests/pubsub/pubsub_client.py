"""A tiny Pub/Sub REST v1 client and process wrapper for tests/pubsub/pubsub_server.py.

Test setup only: it talks to 127.0.0.1 and nothing else.  The HTTP plumbing, the
control API shape and the process wrapper are tests/gcs/gcs_client.py's.

    proc = PubsubProcess(workdir).start()       # subprocess; waits for the port file
    ps = PubsubClient(proc.url, project="hylake-test")
    ps.create_topic("lake-events")
    ps.create_subscription("lake-sub", "lake-events", ackDeadlineSeconds=10)
    ps.publish("lake-events", [{"data": b"x", "attributes": {"k": "v"}}])  -> ["1"]
    msgs = ps.pull("lake-sub", 10)              # [{"ackId", "message": {...}}]
    ps.ack("lake-sub", [m["ackId"] for m in msgs])
    ps.control.config(ack_deadline_scale=0.1); ps.control.fail(count=2, status=503)
    proc.stop()                                 # SIGTERM by PID, then SIGKILL

    # GCS notifications into it: gcs_client.ServerProcess(dir, pubsub_url=proc.url)
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "gcs"))

from gcs_client import HTTP, Control, GcsHTTPError, ServerProcess  # noqa: E402

SERVER = HERE / "pubsub_server.py"


class PubsubHTTPError(GcsHTTPError):
    @property
    def status_name(self) -> Optional[str]:
        try:
            return self.json["error"]["status"]
        except (TypeError, KeyError):
            return None


class PubsubControl(Control):
    """/_test/ of the Pub/Sub server: the GCS server's calls plus fail() and state()."""

    def fail(self, count=1, status=503, kinds=()):
        return self._call("POST", "fail", {"count": count, "status": status,
                                           "kinds": list(kinds)})

    def state(self) -> dict:
        return self._call("GET", "state")


class PubsubClient:
    def __init__(self, url: str, *, project: str = "hylake-test", token: Optional[str] = None,
                 timeout: float = 60):
        self.url = url.rstrip("/")
        self.http = HTTP(self.url, timeout)
        self.control = PubsubControl(self.http)
        self.project = project
        self.token = token

    def topic(self, t: str) -> str:
        return t if t.startswith("projects/") else f"projects/{self.project}/topics/{t}"

    def sub(self, s: str) -> str:
        return s if s.startswith("projects/") else f"projects/{self.project}/subscriptions/{s}"

    def request(self, method: str, path: str, body: Optional[dict] = None,
                ok=(200,)) -> dict:
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        data = json.dumps(body).encode() if body is not None else None
        r = self.http.request(method, "/v1/" + path, data, h)
        if ok is not None and r.status not in ok:
            raise PubsubHTTPError(r.status, r.body, method, path)
        return r.json() if r.body else {}

    # ---- topics
    def create_topic(self, t: str, **fields) -> dict:
        return self.request("PUT", self.topic(t), fields)

    def get_topic(self, t: str) -> dict:
        return self.request("GET", self.topic(t))

    def delete_topic(self, t: str) -> dict:
        return self.request("DELETE", self.topic(t))

    def publish(self, t: str, messages: list[dict]) -> list[str]:
        """messages: {"data": bytes, "attributes": {...}, "orderingKey": str}."""
        out = []
        for m in messages:
            m = dict(m)
            if "data" in m:
                m["data"] = base64.b64encode(m["data"]).decode()
            out.append(m)
        return self.request("POST", self.topic(t) + ":publish",
                            {"messages": out})["messageIds"]

    # ---- subscriptions
    def create_subscription(self, s: str, topic: str, **fields) -> dict:
        return self.request("PUT", self.sub(s), {"topic": self.topic(topic), **fields})

    def get_subscription(self, s: str) -> dict:
        return self.request("GET", self.sub(s))

    def delete_subscription(self, s: str) -> dict:
        return self.request("DELETE", self.sub(s))

    def pull(self, s: str, max_messages: int = 100, **fields) -> list[dict]:
        r = self.request("POST", self.sub(s) + ":pull", {"maxMessages": max_messages, **fields})
        return r.get("receivedMessages", [])

    def pull_until(self, s: str, n: int, timeout: float = 10) -> list[dict]:
        """Pull (without acking) until n messages came or timeout; returns them all."""
        got: list[dict] = []
        end = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < end:
            got += self.pull(s, n - len(got))
        return got

    def ack(self, s: str, ack_ids: list[str]) -> dict:
        return self.request("POST", self.sub(s) + ":acknowledge", {"ackIds": list(ack_ids)})

    def modack(self, s: str, ack_ids: list[str], seconds: int) -> dict:
        return self.request("POST", self.sub(s) + ":modifyAckDeadline",
                            {"ackIds": list(ack_ids), "ackDeadlineSeconds": seconds})


def data_of(received: dict) -> bytes:
    return base64.b64decode(received["message"].get("data", ""))


class PubsubProcess(ServerProcess):
    """pubsub_server.py as a subprocess on a free 127.0.0.1 port; stopped by PID."""
    SCRIPT = SERVER
    NAME = "pubsub_server"

    def __init__(self, workdir: Path, *, require_auth=False, auth_url: Optional[str] = None,
                 pull_wait_ms: Optional[int] = None, extra_args=()):
        args = ["--require-auth"] if require_auth else []
        if auth_url:
            args += ["--auth-url", auth_url]
        if pull_wait_ms is not None:
            args += ["--pull-wait-ms", str(pull_wait_ms)]
        super().__init__(workdir, extra_args=[*args, *extra_args])
