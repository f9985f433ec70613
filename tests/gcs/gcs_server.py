#!/usr/bin/python3
"""gcs_server.py - an in-memory Google Cloud Storage server for tests, on 127.0.0.1.

It follows Google's published Cloud Storage JSON API v1 (and the OAuth 2.0 /
GCE metadata token flows) closely enough that Google's own client libraries
work against it, while checking what a sloppy client gets wrong:

  * buckets   POST /storage/v1/b?project=P, GET /storage/v1/b/B, GET /storage/v1/b?project=P,
              DELETE /storage/v1/b/B (only when empty)
  * objects   GET /storage/v1/b/B/o/NAME     NAME percent-encoded as ONE path segment
                                             ('/' must be %2F: a raw '/' is a 404)
              GET ...?alt=media and GET /download/storage/v1/b/B/o/NAME?alt=media
              PATCH /storage/v1/b/B/o/NAME   (metadata; metageneration + 1)
              DELETE /storage/v1/b/B/o/NAME  (204)
              POST /storage/v1/b/B/o/SRC/rewriteTo/b/B2/o/DST  (objects.rewrite: a server-side
                                             copy; sourceGeneration, ifSourceGeneration[Not]Match,
                                             ifSourceMetageneration[Not]Match, the destination's
                                             preconditions, maxBytesRewrittenPerCall (a multiple
                                             of 1 MiB), rewriteToken; the body, an object
                                             resource, overrides the metadata copied from the
                                             source; answers storage#rewriteResponse with done,
                                             totalBytesRewritten, objectSize, and rewriteToken
                                             until done, then resource)
              GET /storage/v1/b/B/o          (list: prefix, delimiter, pageToken,
                                              maxResults, startOffset, endOffset,
                                              includeTrailingDelimiter, versions)
  * uploads   POST /upload/storage/v1/b/B/o?uploadType=media&name=N
                                         ?uploadType=multipart  (multipart/related)
                                         ?uploadType=resumable  (-> 200 + Location)
              PUT <Location>  with Content-Range "bytes a-b/T", "bytes a-b/*",
                              "bytes a-*/T" (as the Node client sends), or "bytes */T"
                              (status query); every chunk but the last a multiple of
                              256 KiB (else 400); 308 "Resume Incomplete" with
                              "Range: bytes=0-N" (none while nothing is persisted)
              DELETE <Location>  cancels (499)
  * object resources: generation / metageneration / size as JSON strings, md5Hash and
    crc32c (big-endian CRC32C) base64, timeCreated / updated RFC 3339 with
    milliseconds, etag, contentType, contentEncoding, metadata; `fields=` partial
    responses; `prettyPrint=false`.
  * generations are microsecond timestamps, strictly increasing across the server;
    only the live generation of an object is kept (generation=G of an older one: 404)
  * preconditions ifGenerationMatch (0 = "no live object"), ifGenerationNotMatch,
    ifMetagenerationMatch, ifMetagenerationNotMatch: 412 conditionNotMet, or 304 on
    reads for the *NotMatch forms, as GCS does
  * media: Range (a-b, a-, -n) -> 206 + Content-Range, 416 when unsatisfiable;
    x-goog-generation, x-goog-metageneration, x-goog-hash, x-goog-stored-content-length,
    x-goog-stored-content-encoding, ETag, Last-Modified, Content-Type.
    Decompressive transcoding: an object stored with contentEncoding gzip is served
    gunzipped, chunked, without Content-Length and ignoring Range, unless the request
    accepts gzip (Accept-Encoding: gzip) -- then the stored bytes are served with
    Content-Encoding: gzip (and Range applies to them).  Cache-Control: no-transform
    on the object turns transcoding off.
  * errors as GCS sends them:
        {"error": {"code": 404, "message": "...",
                   "errors": [{"message": "...", "domain": "global", "reason": "notFound"}]}}
  * auth: POST /token (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer,
    assertion=JWT) verifies the RS256 signature against the registered public key of
    the JWT's `iss` (and `kid`, when the key was registered with one), `aud` (this
    server's /token URL, or one given with --audience), iat/exp (exp - iat <= 3600,
    not expired, iat not in the future) and `scope`; answers
    {"access_token", "expires_in", "token_type": "Bearer"} or 400
    {"error": "invalid_grant", "error_description": ...}.
    GET /computeMetadata/v1/instance/service-accounts/default/token (needs
    "Metadata-Flavor: Google", else 403) hands out tokens as a GCE metadata server.
    API calls need "Authorization: Bearer <live token>" when auth is required
    (else 401, reason "required"; a bad or expired token is always 401 "authError").
    Tokens carry scopes: writes need devstorage.read_write / full_control /
    cloud-platform (else 403 "forbidden").  --public-read lets anonymous callers read
    objects (metadata and media), not list them.
  * notifications: POST/GET/DELETE /storage/v1/b/B/notificationConfigs[/ID]; with
    --pubsub-url, uploads, patches and deletes publish Cloud Storage's notification
    messages to that Pub/Sub test server (tests/gcs/notify.py tells what and how).
    GET /tokeninfo?access_token=T answers as Google's tokeninfo endpoint does (the
    Pub/Sub test server checks tokens with it).
  * a delay added to every request but the control API (a WAN link, or a hanging
    store when large); changing it wakes requests that are waiting.

Run:
    python3 tests/gcs/gcs_server.py --port 0 --port-file F [--public-key EMAIL[#KID]=PEM ...]
        [--require-auth] [--public-read] [--delay-ms N] [--token-lifetime S]
        [--audience URL ...] [--request-log FILE] [--pubsub-url URL] [--exit-with-parent]
The port file is written (atomically) once the server listens.  SIGTERM/SIGINT stop it.
Import:  GcsServer(...).start() / .url / .stop()

Control API (never delayed, never logged, never needs auth), JSON in and out:
    GET  /_test/health                    {"ok": true, "pid": N}
    GET  /_test/config                    the current settings
    POST /_test/config    {...}           change settings; keys: delay_ms, require_auth,
                                          public_read, token_lifetime (s),
                                          metadata_enabled, metadata_scopes (list),
                                          audiences (list of extra accepted JWT aud),
                                          chunked ("transcode" (default) | "media" | "all"),
                                          delay_only (list of kinds the delay applies to,
                                            e.g. ["token"]; [] = every request),
                                          paging {...} (below),
                                          rewrite_bytes_per_call (0 = all; else N bytes, a
                                            multiple of 1 MiB, per rewrite call, as if each
                                            call sent maxBytesRewrittenPerCall=N)
    POST /_test/paging    {...}           set the listing mode (replaces it; {} = normal):
                                          page_size: N or [N, M, ...] (cycled per page;
                                            a page never exceeds maxResults)
                                          empty_every: K   every K-th page (2nd, 4th.. for
                                            K=2) is empty but carries a nextPageToken
                                          empty_first: true  the first page is empty
                                          repeat_prefix: true  a page that ends with a
                                            prefix makes the next page start with it again
                                          trailing_token: true  the last page with items
                                            still carries a token; the page after it is empty
    GET  /_test/log?since=N               {"requests": [...], "next": M}; each entry: seq,
                                          t, method, path (raw), query (raw), kind, bucket,
                                          object, status, auth ("bearer"|"none"|"other"),
                                          auth_ok, token_id (a hash, never the token),
                                          range, accept_encoding, metadata_flavor,
                                          content_range, jwt (iss/kid/aud/scope/verdict),
                                          fault (what /_test/faults did to it: the status
                                          sent, 0 for none, or "after")
    POST /_test/log/clear
    GET  /_test/counters                  {"kinds": {kind: n}, "status": {code: n}}
    POST /_test/keys      {"email", "pem", "kid"?}   register a public key (PEM public
                                          key, certificate or private key)
    POST /_test/keys/clear
    GET  /_test/notifications             {"queued", "published", "retries", "dropped",
                                          "pending"}: notification messages so far
    POST /_test/tokens/revoke             every access token issued so far stops working
    POST /_test/reset     {"keys": false}  drop all buckets, uploads, tokens, the log,
                                          the counters and the faults; settings back to the
                                          start ones (keys too when "keys": true)
    POST /_test/faults    [{...}, ...]    fail requests on purpose (replaces the rules; [] =
                                          none).  A rule:
                                          kind: "upload.chunk" (a PUT that carries data into
                                            an upload session, complete or not; status
                                            queries never match), or "objects.rewrite"
                                            (a rewrite call; keep and corrupt do not apply)
                                          skip: N    let the first N matching requests
                                            through (default 0), then
                                          count: N   fail this many (default 1)
                                          when: "before" (default): the request's data is
                                            not taken, but for its first `keep` bytes (a
                                            multiple of 256 KiB, as GCS persists), and the
                                            answer is `status` (default 503, with a GCS
                                            error document) or, for status 0, none: the
                                            connection closes
                                          when: "after": the request is carried out (the
                                            last chunk makes the object) and its answer is
                                            lost: the connection closes
                                          corrupt: true  instead, the data is taken with its
                                            first byte flipped and answered as usual (a bad
                                            link that only checksums catch)
    GET  /_test/faults                    the rules, each with "seen" and "fired" counts

Request kinds in the log: token, metadata, bucket.insert, bucket.get, bucket.list,
bucket.delete, objects.list, objects.get, objects.media (alt=media, either path),
objects.patch, objects.delete, objects.rewrite, notifications.insert / get / list / delete, tokeninfo,
upload.media, upload.multipart, upload.resumable (the initiation), upload.chunk
(PUT/status query on a session), upload.cancel, unknown.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import copy
import gzip
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
import zlib
from datetime import datetime, timezone
from typing import Optional

import notify  # Pub/Sub notifications (tests/gcs/notify.py)

CHUNK_GRANULARITY = 256 * 1024
MAX_RESULTS = 1000
DEFAULT_PROJECT = "hylake-test"
TOKEN_PATH = "/token"
TOKENINFO_PATH = "/tokeninfo"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_RO = "https://www.googleapis.com/auth/devstorage.read_only"
SCOPES_WRITE = {
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/cloud-platform",
}
SCOPES_READ = SCOPES_WRITE | {SCOPE_RO, "https://www.googleapis.com/auth/cloud-platform.read-only"}
JWT_TIME_MSG = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.")

# --------------------------------------------------------------------------- CRC32C


def _make_crc32c():
    """CRC32C (Castagnoli).  Debian's python3-crcmod has a C extension (fast); the
    pure-Python fallback is correct but slow (~1 s per 4 MiB)."""
    try:
        import crcmod.predefined  # type: ignore

        fn = crcmod.predefined.mkCrcFun("crc-32c")
        if fn(b"123456789") == 0xE3069283:
            return fn
    except Exception:  # pragma: no cover - depends on the machine
        pass
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)

    def crc32c(data: bytes) -> int:
        c = 0xFFFFFFFF
        t = table
        for b in data:
            c = t[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF

    return crc32c


crc32c = _make_crc32c()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def crc32c_b64(data: bytes) -> str:
    return b64(crc32c(data).to_bytes(4, "big"))


def md5_b64(data: bytes) -> str:
    return b64(hashlib.md5(data).digest())


def rfc3339(us: int) -> str:
    """RFC 3339 UTC with milliseconds, as GCS writes timeCreated/updated."""
    dt = datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(us % 1_000_000) // 1000:03d}Z"


def http_date(us: int) -> str:
    from email.utils import formatdate

    return formatdate(us / 1_000_000, usegmt=True)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def object_etag(gen: int, mg: int) -> str:
    # GCS's JSON-API etag is a base64 protobuf {1: generation, 2: metageneration}
    return b64(b"\x08" + _varint(gen) + b"\x10" + _varint(mg))


def quote_name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# --------------------------------------------------------------------------- errors


class HttpError(Exception):
    def __init__(self, status: int, reason: str, message: str, extra: Optional[dict] = None,
                 headers: Optional[list] = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.extra = extra or {}
        self.headers = headers or []

    def body(self) -> dict:
        err = {"message": self.message, "domain": "global", "reason": self.reason}
        err.update(self.extra)
        return {"error": {"code": self.status, "message": self.message, "errors": [err]}}


class OAuthError(Exception):
    """An OAuth token-endpoint error: {"error": code, "error_description": ...}."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


class NotModified(Exception):
    pass


class DropAnswer(Exception):
    """A fault: close the connection without an answer."""


FAULT_KINDS = ("upload.chunk", "objects.rewrite")


def check_fault_rules(rules) -> list[dict]:
    if not isinstance(rules, list):
        raise ValueError("faults: a list of rules")
    out = []
    for r in rules:
        if not isinstance(r, dict) or r.get("kind") not in FAULT_KINDS:
            raise ValueError(f"faults: kind must be one of {FAULT_KINDS}")
        unknown = set(r) - {"kind", "skip", "count", "when", "status", "keep", "corrupt"}
        if unknown:
            raise ValueError(f"faults: unknown keys {sorted(unknown)}")
        if r.get("when", "before") not in ("before", "after"):
            raise ValueError("faults: when is 'before' or 'after'")
        rule = {"kind": r["kind"], "skip": int(r.get("skip", 0)),
                "count": int(r.get("count", 1)), "when": r.get("when", "before"),
                "status": int(r.get("status", 503)), "keep": int(r.get("keep", 0)),
                "corrupt": bool(r.get("corrupt", False)), "seen": 0, "fired": 0}
        if rule["keep"] % CHUNK_GRANULARITY:
            raise ValueError("faults: keep is a multiple of 256 KiB")
        out.append(rule)
    return out


def not_found_object(bucket, name):
    return HttpError(404, "notFound", f"No such object: {bucket}/{name}")


def not_found_bucket():
    return HttpError(404, "notFound", "The specified bucket does not exist.")


def precondition_failed():
    return HttpError(412, "conditionNotMet",
                     "At least one of the pre-conditions you specified did not hold.",
                     {"locationType": "header", "location": "If-Match"})


def invalid(msg):
    return HttpError(400, "invalid", msg)


def required(msg="Required"):
    return HttpError(400, "required", msg)


# --------------------------------------------------------------------------- data


class Obj:
    __slots__ = ("bucket", "name", "data", "generation", "metageneration", "content_type",
                 "content_encoding", "cache_control", "content_disposition",
                 "content_language", "metadata", "created_us", "updated_us", "md5", "crc")

    def resource(self, base: str) -> dict:
        q = quote_name(self.name)
        r = {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": f"{base}/storage/v1/b/{self.bucket}/o/{q}",
            "mediaLink": (f"{base}/download/storage/v1/b/{self.bucket}/o/{q}"
                          f"?generation={self.generation}&alt=media"),
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": str(self.metageneration),
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": str(len(self.data)),
            "md5Hash": self.md5,
            "crc32c": self.crc,
            "etag": object_etag(self.generation, self.metageneration),
            "timeCreated": rfc3339(self.created_us),
            "updated": rfc3339(self.updated_us),
            "timeStorageClassUpdated": rfc3339(self.created_us),
        }
        if self.content_encoding:
            r["contentEncoding"] = self.content_encoding
        if self.content_disposition:
            r["contentDisposition"] = self.content_disposition
        if self.content_language:
            r["contentLanguage"] = self.content_language
        if self.cache_control:
            r["cacheControl"] = self.cache_control
        if self.metadata:
            r["metadata"] = dict(self.metadata)
        return r


class Bucket:
    def __init__(self, name: str, project: str, created_us: int):
        self.name = name
        self.project = project
        self.created_us = created_us
        self.objects: dict[str, Obj] = {}
        self._sorted: Optional[list[str]] = None

    def names(self) -> list[str]:
        if self._sorted is None:
            # byte order of the UTF-8 names == code point order of the str
            self._sorted = sorted(self.objects)
        return self._sorted

    def changed(self):
        self._sorted = None

    def resource(self, base: str) -> dict:
        t = rfc3339(self.created_us)
        return {
            "kind": "storage#bucket",
            "selfLink": f"{base}/storage/v1/b/{self.name}",
            "id": self.name,
            "name": self.name,
            "projectNumber": "123456789012",
            "metageneration": "1",
            "location": "US",
            "storageClass": "STANDARD",
            "etag": "CAE=",
            "timeCreated": t,
            "updated": t,
            "locationType": "multi-region",
            "rpo": "DEFAULT",
        }


class Upload:
    def __init__(self, bucket, meta, params, content_type):
        self.id = secrets.token_urlsafe(24)
        self.bucket = bucket
        self.meta = meta
        self.params = params  # preconditions etc. of the initiation
        self.content_type = content_type
        self.data = bytearray()
        self.total: Optional[int] = None
        self.result: Optional[dict] = None


class Rewrite:
    """A rewrite that takes more than one call: what the first call pinned."""

    def __init__(self, src_bucket, src, dst_bucket, dst_name, meta):
        self.token = secrets.token_urlsafe(24)
        self.src_bucket, self.src_name, self.src_gen = src_bucket, src.name, src.generation
        self.data = src.data  # the source generation's bytes (immutable)
        self.dst_bucket, self.dst_name = dst_bucket, dst_name
        self.meta = meta
        self.done = 0


REWRITE_UNIT = 1024 * 1024  # maxBytesRewrittenPerCall is a multiple of this


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


def _valid_object_name(name: str) -> bool:
    b = name.encode("utf-8", "surrogatepass")
    return 0 < len(b) <= 1024 and "\r" not in name and "\n" not in name and name not in (".", "..")


# --------------------------------------------------------------------------- fields=


def parse_fields(spec: str):
    """Parse a `fields=` selector ("items(name,size),prefixes", "a/b", "*") into a
    tree {name: True | subtree}."""
    pos = 0
    n = len(spec)

    def parse_list(depth):
        nonlocal pos
        out = {}
        while True:
            start = pos
            while pos < n and spec[pos] not in ",()":
                pos += 1
            path = spec[start:pos].strip()
            if not path:
                raise invalid(f"Invalid field selection {spec}")
            sub = True
            if pos < n and spec[pos] == "(":
                pos += 1
                sub = parse_list(depth + 1)
                if pos >= n or spec[pos] != ")":
                    raise invalid(f"Invalid field selection {spec}")
                pos += 1
            parts = path.split("/")
            if any(not p for p in parts):
                raise invalid(f"Invalid field selection {spec}")
            node = sub
            for p in reversed(parts[1:]):
                node = {p: node}
            _merge(out, parts[0], node)
            if pos < n and spec[pos] == ",":
                pos += 1
                continue
            if depth == 0 and pos < n:
                raise invalid(f"Invalid field selection {spec}")
            return out

    tree = parse_list(0)
    if pos != n:
        raise invalid(f"Invalid field selection {spec}")
    return tree


def _merge(tree, key, node):
    if key in tree:
        if tree[key] is True or node is True:
            tree[key] = True
        else:
            for k, v in node.items():
                _merge(tree[key], k, v)
    else:
        tree[key] = node


def apply_fields(value, tree):
    if tree is True:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return value
    out = {}
    for k, sub in tree.items():
        if k in value:
            out[k] = apply_fields(value[k], sub)
    return out


# --------------------------------------------------------------------------- the server state


DEFAULT_CONFIG = {
    "delay_ms": 0,
    "require_auth": False,
    "public_read": False,
    "token_lifetime": 3600,
    "metadata_enabled": True,
    "metadata_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
    "metadata_email": "default@hylake-test.iam.gserviceaccount.com",
    "audiences": [],
    "chunked": "transcode",
    "paging": {},
    "delay_only": [],
    "rewrite_bytes_per_call": 0,
}


class StateBase:
    """What the request loop and the shared control API need of a test server's state:
    a lock and its condition, the settings (config_keys names them), request counters
    and the stopping flag."""
    config_keys: dict = {}

    def __init__(self, config: dict):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.start_config = copy.deepcopy(config)
        self.config = copy.deepcopy(config)
        self.seq = 0
        self.kinds = collections.Counter()
        self.statuses = collections.Counter()
        self.stopping = False

    def set_config(self, updates: dict):
        with self.cond:
            for k, v in updates.items():
                if k not in self.config_keys:
                    raise ValueError(f"unknown setting {k!r}")
                self.config[k] = v
            self.cond.notify_all()


class State(StateBase):
    config_keys = DEFAULT_CONFIG

    def __init__(self, config: dict):
        super().__init__(config)
        self.buckets: dict[str, Bucket] = {}
        self.uploads: dict[str, Upload] = {}
        self.rewrites: dict[str, Rewrite] = {}  # rewriteToken -> rewrite under way
        self.tokens: dict[str, dict] = {}
        self.keys: list[dict] = []  # {"email", "kid", "key"(public key object), "pem"}
        self.faults: list[dict] = []  # /_test/faults rules, with seen/fired counts
        self.start_keys: list[dict] = []
        self.log: list[dict] = []
        self.last_gen = 0
        self.base = "http://127.0.0.1"
        self.token_url = "http://127.0.0.1/token"
        self.notifier = notify.Notifier(self, None, HttpError, rfc3339)

    # ---- generations: microsecond timestamps, strictly increasing
    def new_generation(self) -> int:
        with self.lock:
            g = max(time.time_ns() // 1000, self.last_gen + 1)
            self.last_gen = g
            return g

    def now_us(self) -> int:
        return time.time_ns() // 1000

    # ---- delay
    def wait_delay(self, kind: str):
        start = time.monotonic()
        with self.cond:
            while not self.stopping:
                only = self.config.get("delay_only") or []
                if only and not any(kind == k or kind.startswith(k + ".") for k in only):
                    return
                left = start + self.config["delay_ms"] / 1000.0 - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(min(left, 1.0))

    # ---- keys
    def add_key(self, email: str, pem: bytes, kid: Optional[str] = None, start=False):
        key = load_public_key(pem)
        entry = {"email": email, "kid": kid, "key": key}
        with self.lock:
            self.keys.append(entry)
            if start:
                self.start_keys.append(entry)

    def reset(self, keys: bool):
        with self.cond:
            self.buckets.clear()
            self.uploads.clear()
            self.rewrites.clear()
            self.faults = []
            self.tokens.clear()
            self.log.clear()
            self.kinds.clear()
            self.statuses.clear()
            self.config = copy.deepcopy(self.start_config)
            if keys:
                self.keys = list(self.start_keys)
            self.cond.notify_all()

    def issue_token(self, email: str, scopes: list[str], lifetime: int) -> str:
        tok = "ya29.test-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[tok] = {"email": email, "scopes": set(scopes),
                                "expires": time.time() + lifetime}
        return tok


def load_public_key(pem: bytes):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if isinstance(pem, str):
        pem = pem.encode()
    if b"CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    if b"PRIVATE KEY" in pem:
        return serialization.load_pem_private_key(pem, password=None).public_key()
    return serialization.load_pem_public_key(pem)


def _b64url_decode(s: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# --------------------------------------------------------------------------- listing


def _prefix_end(names: list[str], p: str, lo: int) -> int:
    """Index of the first name at or after lo that does not start with p."""
    # names starting with p are contiguous; the successor string of all of them:
    last = p[-1]
    if ord(last) < 0x10FFFF:
        return bisect.bisect_left(names, p[:-1] + chr(ord(last) + 1), lo)
    i = lo
    while i < len(names) and names[i].startswith(p):
        i += 1
    return i


def encode_token(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode()


def decode_token(t: str) -> dict:
    try:
        d = json.loads(base64.urlsafe_b64decode(t.encode() + b"=" * (-len(t) % 4)))
        if not isinstance(d, dict):
            raise ValueError
        return d
    except Exception:
        raise invalid("Invalid page token.")


def list_page(bucket: Bucket, params: dict, paging: dict, base: str):
    prefix = params.get("prefix", "")
    delim = params.get("delimiter", "")
    start_off = params.get("startOffset", "")
    end_off = params.get("endOffset", "")
    incl_trailing = params.get("includeTrailingDelimiter", "false").lower() == "true"
    try:
        max_results = int(params.get("maxResults", MAX_RESULTS))
    except ValueError:
        raise invalid(f"Invalid value for maxResults: {params.get('maxResults')}")
    if max_results < 0:
        raise invalid(f"Invalid value for maxResults: {max_results}")
    if max_results == 0 or max_results > MAX_RESULTS:
        max_results = MAX_RESULTS
    tok = decode_token(params["pageToken"]) if params.get("pageToken") else {}
    page_no = int(tok.get("n", 0))
    after = tok.get("a")  # resume strictly after this name (None: from the start)
    at = tok.get("at")  # or at this name (inclusive), for repeated prefixes

    # paging adversities
    limit = max_results
    ps = paging.get("page_size")
    if isinstance(ps, list) and ps:
        limit = min(limit, max(1, int(ps[page_no % len(ps)])))
    elif ps:
        limit = min(limit, max(1, int(ps)))
    empty_every = int(paging.get("empty_every") or 0)
    if empty_every == 1:
        empty_every = 2  # every page empty would never end
    make_empty = (page_no == 0 and paging.get("empty_first")) or (
        empty_every > 0 and page_no % empty_every == empty_every - 1)

    names = bucket.names()
    lo_key = max(prefix, start_off)
    lo = bisect.bisect_left(names, lo_key)
    if at is not None:
        lo = max(lo, bisect.bisect_left(names, at))
    elif after is not None:
        lo = max(lo, bisect.bisect_right(names, after))

    def in_range(name):
        return name.startswith(prefix) and (not end_off or name < end_off)

    if make_empty or tok.get("done"):
        resp = {"kind": "storage#objects"}
        if make_empty and not tok.get("done"):
            nt = dict(tok, n=page_no + 1)
            resp["nextPageToken"] = encode_token(nt)
        return resp

    items, prefixes = [], []
    count = 0
    i = lo
    last = None  # ("item", name) or ("prefix", p, first_index, end_index)
    first_elem = None
    while i < len(names) and count < limit:
        name = names[i]
        if not in_range(name):
            break
        rest = name[len(prefix):]
        k = rest.find(delim) if delim else -1
        if k >= 0:
            p = prefix + rest[:k + len(delim)]
            end = _prefix_end(names, p, i)
            prefixes.append(p)
            count += 1
            if incl_trailing and p in bucket.objects:
                # the object named exactly like the prefix is listed as well
                items.append(bucket.objects[p].resource(base))
            last = ("prefix", p, i, end)
            if first_elem is None:
                first_elem = ("prefix", p)
            i = end
            continue
        items.append(bucket.objects[name].resource(base))
        count += 1
        last = ("item", name)
        if first_elem is None:
            first_elem = ("item", name)
        i += 1

    # anything left after this page? (names from lo on are >= prefix, sorted)
    more = i < len(names) and in_range(names[i])

    resp = {"kind": "storage#objects"}
    nt = None
    if more and last is not None:
        if last[0] == "item":
            nt = {"a": last[1]}
        else:
            _, p, first_i, end = last
            if paging.get("repeat_prefix") and first_elem != ("prefix", p):
                nt = {"at": names[first_i]}  # the next page starts with p again
            else:
                nt = {"a": names[end - 1]}
    elif not more and last is not None and paging.get("trailing_token"):
        nt = {"done": True}
    if nt is not None:
        nt["n"] = page_no + 1
        resp["nextPageToken"] = encode_token(nt)
    if prefixes:
        resp["prefixes"] = prefixes
    if items:
        resp["items"] = items
    return resp


# --------------------------------------------------------------------------- request handler


def _parse_range(value: Optional[str], size: int):
    """None (serve all), (start, end) inclusive, or "unsatisfiable"."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if not m:
        return None  # invalid or multiple ranges: ignored
    a, b = m.group(1), m.group(2)
    if a == "" and b == "":
        return None
    if a == "":
        n = int(b)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1)
    start = int(a)
    end = int(b) if b != "" else size - 1
    if b != "" and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return (start, min(end, size - 1))


def _accepts_gzip(value: Optional[str]) -> bool:
    if not value:
        return False
    for part in value.split(","):
        bits = part.strip().split(";")
        coding = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip") and q > 0:
            return True
    return False


def _parse_multipart(body: bytes, ctype: str):
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not m:
        raise invalid("Missing boundary in multipart/related Content-Type")
    boundary = m.group(1).encode()
    delim = b"--" + boundary
    parts = []
    pos = body.find(delim)
    if pos < 0:
        raise invalid("Multipart body does not contain the boundary")
    pos += len(delim)
    while True:
        if body[pos:pos + 2] == b"--":
            break
        if body[pos:pos + 2] == b"\r\n":
            pos += 2
        nxt = body.find(b"\r\n" + delim, pos)
        if nxt < 0:
            raise invalid("Multipart body is not terminated")
        part = body[pos:nxt]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            if part.startswith(b"\r\n"):
                head, content = b"", part[2:]
            else:
                raise invalid("Malformed multipart part")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        parts.append((headers, content))
        pos = nxt + 2 + len(delim)
    return parts


def _coarse_kind(method: str, path: str, params: dict) -> str:
    """The request's kind as far as the path tells before routing (for delay_only)."""
    if path == TOKEN_PATH:
        return "token"
    if path.startswith("/computeMetadata/"):
        return "metadata"
    if path.startswith("/upload/"):
        return "upload"
    if path.startswith("/download/") or params.get("alt") == "media":
        return "objects.media"
    if re.match(r"^/storage/v1/b/[^/]+/o/?$", path):
        return "objects.list"
    if "/rewriteTo/" in path:
        return "objects.rewrite"
    if "/o/" in path:
        return {"PATCH": "objects.patch", "DELETE": "objects.delete"}.get(method, "objects.get")
    return "bucket"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "UploadServer"
    sys_version = ""
    _lose_answer = False  # a fault: the request is carried out, its answer not sent
    entry = None          # the request's line in the log, once it has one

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without this, Nagle plus the
        # peer's delayed ACK cost 40 ms per response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # quiet
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("gcs_server: " + (fmt % args) + "\n")

    @property
    def state(self) -> State:
        return self.server.state

    def version_string(self):
        return "UploadServer"

    # ---- plumbing
    def send_response(self, code, message=None):
        # the log has the status before the client has the answer: a test
        # that reads the log right after its request finds it there
        self._status = code
        if self.entry is not None:
            with self.state.lock:
                self.entry["status"] = code
        super().send_response(code, message)

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        cl = self.headers.get("Content-Length")
        if cl:
            n = int(cl)
            data = self.rfile.read(n)
            if len(data) != n:
                raise ConnectionError("EOF in body")
            return data
        return b""

    def _write_body(self, body, chunked: bool):
        if chunked:
            mv = memoryview(body)
            step = 64 * 1024
            for off in range(0, len(mv), step):
                piece = mv[off:off + step]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + bytes(piece) + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            mv = memoryview(body)
            step = 1 << 20
            for off in range(0, len(mv), step):
                self.wfile.write(mv[off:off + step])

    def _send(self, status, body=b"", headers=(), content_type=None, chunked=False,
              message=None, head_only=False):
        if self._lose_answer:  # a fault: done, but nothing is said
            self._status = 0
            self.close_connection = True
            return
        self.send_response(status, message)
        for k, v in headers:
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        if self.command == "HEAD":
            head_only = True
        if status in (204, 304) or 100 <= status < 200:
            self.end_headers()
            return
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and (body or chunked):
            self._write_body(body, chunked)

    def _json(self, status, obj, headers=(), params=None, chunked=None):
        pretty = True
        if params is not None and params.get("prettyPrint", "true").lower() == "false":
            pretty = False
        if params is not None and params.get("fields") and status < 300:
            obj = apply_fields(obj, parse_fields(params["fields"]))
        text = json.dumps(obj, indent=1 if pretty else None, ensure_ascii=False,
                          separators=None if pretty else (",", ":"))
        if chunked is None:
            chunked = self.state.config.get("chunked") == "all"
        self._send(status, (text + "\n").encode(), headers,
                   "application/json; charset=UTF-8", chunked=chunked)

    def _error(self, e: HttpError):
        hdrs = list(e.headers)
        if e.status == 401:
            hdrs.append(("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"'))
        self._json(e.status, e.body(), hdrs)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_HEAD(self):
        self._handle("HEAD")

    def _prelude(self, method):
        """Parse the target, read the body and answer the control API (/_test/...):
        (raw_path, query, body), or None when the request is done with."""
        self._status = None
        self._lose_answer = False
        target = self.path
        if "://" in target.split("?", 1)[0]:
            target = "/" + target.split("://", 1)[1].split("/", 1)[-1]
        raw_path, _, query = target.partition("?")
        self.raw_path = raw_path
        self.query = query
        self.params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        self.entry = None
        try:
            body = self._read_body()
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True
            return None
        if raw_path.startswith("/_test/") or raw_path == "/_test":
            try:
                self._control(method, raw_path, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return None
        return raw_path, query, body

    def _handle(self, method):
        got = self._prelude(method)
        if got is None:
            return
        raw_path, query, body = got
        st = self.state
        with st.lock:
            st.seq += 1
            self.entry = {
                "seq": st.seq, "t": time.time(), "method": method, "path": raw_path,
                "query": query, "kind": "unknown", "bucket": None, "object": None,
                "status": None, "auth": "none", "auth_ok": None, "token_id": None,
                "range": self.headers.get("Range"),
                "accept_encoding": self.headers.get("Accept-Encoding"),
                "metadata_flavor": self.headers.get("Metadata-Flavor"),
                "content_range": self.headers.get("Content-Range"),
                "user_agent": self.headers.get("User-Agent"),
            }
            st.log.append(self.entry)
        authz = self.headers.get("Authorization")
        if authz:
            self.entry["auth"] = "bearer" if authz.lower().startswith("bearer ") else "other"
        try:
            st.wait_delay(_coarse_kind(method, raw_path, self.params))
            if st.stopping:
                self.close_connection = True
                return
            try:
                self._route(method, raw_path, body)
            except HttpError as e:
                self._error(e)
            except NotModified:
                self._send(304)
            except DropAnswer:
                self.close_connection = True
            except OAuthError as e:
                self._send(e.status, json.dumps({"error": e.code,
                                                 "error_description": e.description}).encode(),
                           content_type="application/json; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug here: answer 500 and say so
            import traceback

            traceback.print_exc()
            try:
                self._error(HttpError(500, "backendError", f"test server bug: {e!r}"))
            except OSError:
                self.close_connection = True
        finally:
            with st.lock:
                self.entry["status"] = self._status
                st.kinds[self.entry["kind"]] += 1
                st.statuses[str(self._status)] += 1
            if self.server.request_log:
                with st.lock, open(self.server.request_log, "a") as f:
                    f.write(json.dumps(self.entry) + "\n")

    # ---- auth
    def _auth(self, *, write=False, anonymous_ok=False):
        st = self.state
        authz = self.headers.get("Authorization")
        if authz:
            scheme, _, tok = authz.partition(" ")
            tok = tok.strip()
            self.entry["token_id"] = hashlib.sha256(tok.encode()).hexdigest()[:12]
            with st.lock:
                info = st.tokens.get(tok) if scheme.lower() == "bearer" else None
                live = info is not None and info["expires"] > time.time()
            if not live:
                self.entry["auth_ok"] = False
                raise HttpError(401, "authError", "Invalid Credentials",
                                {"locationType": "header", "location": "Authorization"})
            self.entry["auth_ok"] = True
            scopes = info["scopes"]
            if not (scopes & (SCOPES_WRITE if write else SCOPES_READ)):
                raise HttpError(403, "forbidden", "Provided scope(s) are not authorized")
            return info
        if st.config["require_auth"] and not (anonymous_ok and st.config["public_read"]):
            self.entry["auth_ok"] = False
            op = "storage.objects.create" if write else "storage.objects.get"
            raise HttpError(401, "required",
                            f"Anonymous caller does not have {op} access to the Google Cloud "
                            f"Storage object. Permission '{op}' denied on resource (or it may "
                            f"not exist).",
                            {"locationType": "header", "location": "Authorization"})
        return None

    # ---- routing
    _REWRITE = re.compile(r"^/storage/v1/b/([^/]+)/o/([^/]+)/rewriteTo/b/([^/]+)/o/([^/]+)$")
    _OBJ = re.compile(r"^/storage/v1/b/([^/]+)/o/(.+)$")
    _DL = re.compile(r"^/download/storage/v1/b/([^/]+)/o/(.+)$")
    _LIST = re.compile(r"^/storage/v1/b/([^/]+)/o/?$")
    _BKT = re.compile(r"^/storage/v1/b/([^/]+)/?$")
    _UPL = re.compile(r"^/upload/storage/v1/b/([^/]+)/o/?$")

    def _decode_name(self, raw: str) -> str:
        if "/" in raw:
            # the JSON API wants the name as one percent-encoded segment
            raise HttpError(404, "notFound", "Not Found")
        try:
            name = urllib.parse.unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise invalid("The object name is not valid UTF-8.")
        return name

    def _route(self, method, path, body):
        e = self.entry
        if path == TOKEN_PATH:
            e["kind"] = "token"
            if method != "POST":
                raise HttpError(405, "methodNotAllowed", "Method Not Allowed")
            return self._token(body)
        if path.startswith("/computeMetadata/"):
            e["kind"] = "metadata"
            return self._metadata(method, path)
        if path == TOKENINFO_PATH:
            e["kind"] = "tokeninfo"
            return self._tokeninfo()
        if "/notificationConfigs" in path and self.state.notifier.route(self, method, path, body):
            return
        if path in ("/storage/v1/b", "/storage/v1/b/"):
            if method == "POST":
                e["kind"] = "bucket.insert"
                return self._bucket_insert(body)
            if method == "GET":
                e["kind"] = "bucket.list"
                return self._bucket_list()
        m = self._BKT.match(path)
        if m:
            e["bucket"] = m.group(1)
            if method == "GET":
                e["kind"] = "bucket.get"
                return self._bucket_get(m.group(1))
            if method == "DELETE":
                e["kind"] = "bucket.delete"
                return self._bucket_delete(m.group(1))
        m = self._LIST.match(path)
        if m and method == "GET":
            e["kind"] = "objects.list"
            e["bucket"] = m.group(1)
            return self._list(m.group(1))
        m = self._REWRITE.match(path)
        if m and method == "POST":
            e["kind"] = "objects.rewrite"
            e["bucket"] = m.group(3)
            src, dst = self._decode_name(m.group(2)), self._decode_name(m.group(4))
            e["object"] = dst
            return self._rewrite(m.group(1), src, m.group(3), dst, body)
        m = self._OBJ.match(path)
        if m:
            bucket = m.group(1)
            e["bucket"] = bucket
            name = self._decode_name(m.group(2))
            e["object"] = name
            alt = self.params.get("alt", "json")
            if alt not in ("json", "media"):
                raise invalid(f"Invalid value for alt: {alt}")
            if method in ("GET", "HEAD"):
                if alt == "media":
                    e["kind"] = "objects.media"
                    return self._media(bucket, name, head=method == "HEAD")
                e["kind"] = "objects.get"
                return self._object_get(bucket, name)
            if method == "PATCH" or (method == "PUT" and alt == "json"):
                e["kind"] = "objects.patch"
                return self._object_patch(bucket, name, body, replace=method == "PUT")
            if method == "DELETE":
                e["kind"] = "objects.delete"
                return self._object_delete(bucket, name)
        m = self._DL.match(path)
        if m and method in ("GET", "HEAD"):
            e["kind"] = "objects.media"
            e["bucket"] = m.group(1)
            name = self._decode_name(m.group(2))
            e["object"] = name
            return self._media(m.group(1), name, head=method == "HEAD")
        m = self._UPL.match(path)
        if m:
            e["bucket"] = m.group(1)
            return self._upload(method, m.group(1), body)
        raise HttpError(404, "notFound", "Not Found")

    # ---- token endpoints
    def _token(self, body: bytes):
        st = self.state
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/json"):
            try:
                form = json.loads(body or b"{}")
            except ValueError:
                raise OAuthError(400, "invalid_request", "Invalid JSON payload")
        else:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                               keep_blank_values=True))
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant != JWT_BEARER:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        info = {"verdict": None}
        self.entry["jwt"] = info
        email, scopes = self._verify_jwt(assertion, info)
        lifetime = int(st.config["token_lifetime"])
        tok = st.issue_token(email, scopes, lifetime)
        info["verdict"] = "ok"
        out = {"access_token": tok, "expires_in": lifetime, "token_type": "Bearer"}
        self._send(200, json.dumps(out, indent=2).encode(),
                   [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                    ("Pragma", "no-cache")],
                   "application/json; charset=utf-8")

    def _verify_jwt(self, assertion: str, info: dict):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        st = self.state

        def fail(desc, code="invalid_grant"):
            info["verdict"] = desc
            raise OAuthError(400, code, desc)

        parts = assertion.split(".")
        if len(parts) != 3:
            fail("Invalid JWT Signature.")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            sig = _b64url_decode(parts[2])
        except ValueError:
            fail("Invalid JWT Signature.")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            fail("Invalid JWT Signature.")
        info.update({"alg": header.get("alg"), "kid": header.get("kid"),
                     "iss": claims.get("iss"), "aud": claims.get("aud"),
                     "scope": claims.get("scope"), "iat": claims.get("iat"),
                     "exp": claims.get("exp"), "sub": claims.get("sub")})
        if header.get("alg") != "RS256":
            fail("Invalid JWT Signature.")
        iss = claims.get("iss")
        with st.lock:
            keys = [k for k in st.keys if k["email"] == iss]
        if not iss or not keys:
            fail("Invalid grant: account not found")
        kid = header.get("kid")
        if kid is not None:
            with_kid = [k for k in keys if k["kid"] == kid]
            keys = with_kid or [k for k in keys if k["kid"] is None]
            if not keys:
                fail("Invalid JWT Signature.")
        signing_input = (parts[0] + "." + parts[1]).encode()
        ok = False
        for k in keys:
            pub = k["key"]
            if not isinstance(pub, rsa.RSAPublicKey):
                continue
            try:
                pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
                ok = True
                break
            except InvalidSignature:
                continue
        if not ok:
            fail("Invalid JWT Signature.")
        aud = claims.get("aud")
        host = self.headers.get("Host") or ""
        good_aud = {st.token_url, f"http://{host}{TOKEN_PATH}"} | set(st.config["audiences"])
        if aud not in good_aud:
            fail(f"Invalid JWT: Failed audience check. The right audience is {st.token_url}")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float))
                or isinstance(iat, bool) or isinstance(exp, bool)):
            fail(JWT_TIME_MSG)
        if exp <= iat or exp - iat > 3600 or exp <= now or iat > now + 60 or iat < now - 3600:
            fail(JWT_TIME_MSG)
        sub = claims.get("sub")
        if sub not in (None, iss):
            fail("Client is unauthorized to retrieve access tokens using this method, or "
                 "client not authorized for any of the scopes requested.",
                 code="unauthorized_client")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.strip():
            fail("Invalid OAuth scope or ID token audience provided.", code="invalid_scope")
        return iss, scope.split()

    def _tokeninfo(self):
        """GET /tokeninfo?access_token=T, as https://oauth2.googleapis.com/tokeninfo
        answers it (the Pub/Sub test server checks the tokens it gets here)."""
        st = self.state
        with st.lock:
            info = st.tokens.get(self.params.get("access_token", ""))
        left = int(info["expires"] - time.time()) if info else 0
        if left <= 0:
            raise OAuthError(400, "invalid_token", "Invalid Value")
        out = {"azp": info["email"], "aud": info["email"], "email": info["email"],
               "scope": " ".join(sorted(info["scopes"])), "exp": str(int(info["expires"])),
               "expires_in": str(left), "email_verified": "true", "access_type": "online"}
        self._send(200, json.dumps(out).encode(), content_type="application/json; charset=UTF-8")

    def _metadata(self, method, path):
        st = self.state
        flavor_hdr = [("Metadata-Flavor", "Google")]
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, b"Missing required header \"Metadata-Flavor\": \"Google\"\n",
                       flavor_hdr, "text/html; charset=UTF-8")
            return
        if not st.config["metadata_enabled"] or method != "GET":
            self._send(404, b"Not Found\n", flavor_hdr, "text/html; charset=UTF-8")
            return
        if path == METADATA_TOKEN_PATH:
            scopes = st.config["metadata_scopes"]
            if self.params.get("scopes"):
                scopes = self.params["scopes"].split(",")
            lifetime = int(st.config["token_lifetime"])
            tok = st.issue_token(st.config["metadata_email"], scopes, lifetime)
            out = {"access_token": tok, "expires_in": lifetime, "token_type": "Bearer"}
            self._send(200, json.dumps(out).encode(), flavor_hdr, "application/json")
            return
        simple = {
            "/computeMetadata/v1/project/project-id": DEFAULT_PROJECT,
            "/computeMetadata/v1/project/numeric-project-id": "123456789012",
            "/computeMetadata/v1/instance/service-accounts/default/email":
                st.config["metadata_email"],
            "/computeMetadata/v1/instance/service-accounts/default/scopes":
                "\n".join(st.config["metadata_scopes"]) + "\n",
            "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
            "/computeMetadata/v1/instance": "attributes/\nservice-accounts/\n",
            "/computeMetadata/v1/instance/": "attributes/\nservice-accounts/\n",
            "/computeMetadata/v1/": "instance/\nproject/\n",
        }
        if path in simple:
            self._send(200, simple[path].encode(), flavor_hdr, "application/text")
            return
        self._send(404, b"Not Found\n", flavor_hdr, "text/html; charset=UTF-8")

    # ---- buckets
    def _bucket(self, name) -> Bucket:
        b = self.state.buckets.get(name)
        if b is None:
            raise not_found_bucket()
        return b

    def _bucket_insert(self, body):
        self._auth(write=True)
        if not self.params.get("project"):
            raise required("Required parameter: project")
        try:
            meta = json.loads(body or b"{}")
        except ValueError:
            raise HttpError(400, "parseError", "Parse Error")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not name:
            raise required("Required")
        if not _BUCKET_RE.match(name) or ".." in name:
            raise invalid("Invalid bucket name: '" + name + "'")
        st = self.state
        with st.lock:
            if name in st.buckets:
                raise HttpError(409, "conflict",
                                "Your previous request to create the named bucket succeeded "
                                "and you already own it.")
            b = Bucket(name, self.params["project"], st.now_us())
            st.buckets[name] = b
            res = b.resource(st.base)
        self._json(200, res, params=self.params)

    def _bucket_list(self):
        self._auth()
        if not self.params.get("project"):
            raise required("Required parameter: project")
        st = self.state
        with st.lock:
            items = [b.resource(st.base) for n, b in sorted(st.buckets.items())
                     if b.project == self.params["project"]]
        resp = {"kind": "storage#buckets"}
        if items:
            resp["items"] = items
        self._json(200, resp, params=self.params)

    def _bucket_get(self, name):
        self._auth()
        st = self.state
        with st.lock:
            res = self._bucket(name).resource(st.base)
        self._json(200, res, params=self.params)

    def _bucket_delete(self, name):
        self._auth(write=True)
        st = self.state
        with st.lock:
            b = self._bucket(name)
            if b.objects:
                raise HttpError(409, "conflict", "The bucket you tried to delete is not empty.")
            del st.buckets[name]
        self._send(204)

    # ---- objects
    def _int_param(self, name):
        v = self.params.get(name)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise invalid(f"Invalid value for {name}: {v}")

    def _check_preconditions(self, obj: Optional[Obj], *, read: bool, params=None):
        p = params if params is not None else self.params
        saved, self.params = self.params, p
        try:
            igm = self._int_param("ifGenerationMatch")
            ignm = self._int_param("ifGenerationNotMatch")
            imm = self._int_param("ifMetagenerationMatch")
            imnm = self._int_param("ifMetagenerationNotMatch")
        finally:
            self.params = saved
        gen = obj.generation if obj else 0
        if igm is not None and gen != igm:
            raise precondition_failed()
        if imm is not None and (obj is None or obj.metageneration != imm):
            raise precondition_failed()
        if ignm is not None and gen == ignm:
            if read:
                raise NotModified()
            raise precondition_failed()
        if imnm is not None and obj is not None and obj.metageneration == imnm:
            if read:
                raise NotModified()
            raise precondition_failed()

    def _lookup(self, bucket: str, name: str) -> Obj:
        """The live object (as of the generation= parameter), 404 otherwise; call
        with the state lock held."""
        b = self._bucket(bucket)
        obj = b.objects.get(name)
        gen = self._int_param("generation")
        if obj is None or (gen is not None and obj.generation != gen):
            raise not_found_object(bucket, name)
        return obj

    def _object_get(self, bucket, name):
        self._auth(anonymous_ok=True)
        st = self.state
        with st.lock:
            obj = self._lookup(bucket, name)
            self._check_preconditions(obj, read=True)
            res = obj.resource(st.base)
        self._json(200, res, params=self.params)

    def _media(self, bucket, name, head=False):
        self._auth(anonymous_ok=True)
        st = self.state
        with st.lock:
            obj = self._lookup(bucket, name)
            self._check_preconditions(obj, read=True)
            data = obj.data
            gen, mg = obj.generation, obj.metageneration
            ctype, cenc = obj.content_type, obj.content_encoding
            cache_control = obj.cache_control
            hashes = f"crc32c={obj.crc},md5={obj.md5}"
            etag = object_etag(gen, mg)
            updated = obj.updated_us
            disp = obj.content_disposition
        self.entry["generation"] = gen
        headers = [
            ("X-GUploader-UploadID", "hylake-test-" + secrets.token_hex(8)),
            ("x-goog-generation", str(gen)),
            ("x-goog-metageneration", str(mg)),
            ("x-goog-stored-content-encoding", cenc or "identity"),
            ("x-goog-stored-content-length", str(len(data))),
            ("x-goog-hash", hashes),
            ("x-goog-storage-class", "STANDARD"),
            ("ETag", etag),
            ("Last-Modified", http_date(updated)),
            ("Cache-Control", cache_control or "private, max-age=0"),
            ("Expires", http_date(st.now_us())),
        ]
        if disp:
            headers.append(("Content-Disposition", disp))
        chunk_cfg = st.config.get("chunked")
        transcode = (cenc == "gzip" and not _accepts_gzip(self.headers.get("Accept-Encoding"))
                     and "no-transform" not in (cache_control or "").lower())
        if transcode:
            try:
                plain = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                raise HttpError(500, "backendError", "Stored gzip data is corrupt")
            headers.append(("Warning", "214 UploadServer gunzipped"))
            self._send(200, plain, headers, ctype, chunked=True, head_only=head)
            return
        if cenc:
            headers.append(("Content-Encoding", cenc))
        rng = _parse_range(self.headers.get("Range"), len(data))
        chunked = chunk_cfg in ("media", "all")
        if rng == "unsatisfiable":
            err = HttpError(416, "requestedRangeNotSatisfiable",
                            "The requested range cannot be satisfied.",
                            {"locationType": "header", "location": "Range"},
                            headers=[("Content-Range", f"bytes */{len(data)}")])
            raise err
        if rng is None:
            headers.append(("Accept-Ranges", "bytes"))
            self._send(200, data, headers, ctype, chunked=chunked, head_only=head)
            return
        a, b = rng
        headers.append(("Content-Range", f"bytes {a}-{b}/{len(data)}"))
        self._send(206, memoryview(data)[a:b + 1], headers, ctype, chunked=chunked,
                   head_only=head)

    def _object_patch(self, bucket, name, body, replace=False):
        self._auth(write=True)
        try:
            meta = json.loads(body or b"{}")
        except ValueError:
            raise HttpError(400, "parseError", "Parse Error")
        if not isinstance(meta, dict):
            raise invalid("Invalid JSON payload")
        st = self.state
        with st.lock:
            obj = self._lookup(bucket, name)
            self._check_preconditions(obj, read=False)
            if replace:
                obj.metadata = {}
                obj.content_disposition = obj.content_language = obj.cache_control = None
            _apply_meta(obj, meta)
            obj.metageneration += 1
            obj.updated_us = max(st.now_us(), obj.updated_us + 1)
            res = obj.resource(st.base)
            st.notifier.metadata_updated(st.buckets[bucket], obj)
        self._json(200, res, params=self.params)

    def _object_delete(self, bucket, name):
        self._auth(write=True)
        st = self.state
        with st.lock:
            obj = self._lookup(bucket, name)
            self._check_preconditions(obj, read=False)
            b = st.buckets[bucket]
            del b.objects[name]
            b.changed()
            st.notifier.deleted(b, obj)
        self._send(204)

    # ---- rewrite (a server-side copy)
    def _source_preconditions(self, src: Obj):
        """ifSource* parameters, checked against the source: 412 when one fails."""
        p = {k[len("ifSource"):]: v for k, v in self.params.items() if k.startswith("ifSource")}
        self._check_preconditions(src, read=False,
                                  params={"if" + k: v for k, v in p.items()})

    def _rewrite_step(self) -> int:
        per_call = self._int_param("maxBytesRewrittenPerCall")
        if per_call is not None and (per_call <= 0 or per_call % REWRITE_UNIT):
            raise invalid("maxBytesRewrittenPerCall must be a positive multiple of 1048576")
        configured = int(self.state.config.get("rewrite_bytes_per_call") or 0)
        return per_call or configured or (1 << 62)

    def _rewrite(self, src_bucket, src_name, dst_bucket, dst_name, body):
        self._auth(write=True)
        try:
            override = json.loads(body) if body else {}
        except ValueError:
            raise HttpError(400, "parseError", "Parse Error")
        if not isinstance(override, dict):
            raise invalid("Invalid JSON payload")
        if not _valid_object_name(dst_name):
            raise invalid("The specified object name is not valid.")
        step = self._rewrite_step()
        self._fault_strike(self._fault("objects.rewrite"))
        st = self.state
        with st.lock:
            token = self.params.get("rewriteToken")
            if token:
                rw = st.rewrites.get(token)
                if rw is None or (rw.src_bucket, rw.src_name, rw.dst_bucket, rw.dst_name) != (
                        src_bucket, src_name, dst_bucket, dst_name):
                    raise invalid("Invalid rewrite token.")
                live = self._bucket(src_bucket).objects.get(src_name)
                if live is None or live.generation != rw.src_gen:
                    st.rewrites.pop(token, None)  # the source generation is gone
                    raise not_found_object(src_bucket, src_name)
            else:
                saved = self.params
                self.params = {"generation": saved["sourceGeneration"]} \
                    if "sourceGeneration" in saved else {}
                try:
                    src = self._lookup(src_bucket, src_name)
                finally:
                    self.params = saved
                self._source_preconditions(src)
                self._bucket(dst_bucket)
                meta = {"contentType": src.content_type,
                        "contentEncoding": src.content_encoding,
                        "cacheControl": src.cache_control,
                        "contentDisposition": src.content_disposition,
                        "contentLanguage": src.content_language,
                        "metadata": dict(src.metadata or {})}
                meta.update({k: v for k, v in override.items()
                             if k not in ("name", "bucket", "crc32c", "md5Hash")})
                meta["name"] = dst_name
                rw = Rewrite(src_bucket, src, dst_bucket, dst_name, meta)
            # the destination's preconditions hold at every call (checked again, atomically,
            # when the object is made)
            self._check_preconditions(self._bucket(dst_bucket).objects.get(dst_name),
                                      read=False)
            rw.done = min(len(rw.data), rw.done + step)
            out = {"kind": "storage#rewriteResponse", "totalBytesRewritten": str(rw.done),
                   "objectSize": str(len(rw.data))}
            if rw.done < len(rw.data):
                st.rewrites[rw.token] = rw
                out.update(done=False, rewriteToken=rw.token)
            else:
                st.rewrites.pop(rw.token, None)
                res = self._store(dst_bucket, rw.meta, rw.data, self.params,
                                  rw.meta.get("contentType"))
                out.update(done=True, resource=res)
        self._json(200, out, params=self.params)

    def _list(self, bucket):
        self._auth()
        st = self.state
        with st.lock:
            b = self._bucket(bucket)
            resp = list_page(b, self.params, st.config.get("paging") or {}, st.base)
        self._json(200, resp, params=self.params)

    # ---- uploads
    def _store(self, bucket: str, meta: dict, data: bytes, params: dict,
               content_type: Optional[str]) -> dict:
        name = meta.get("name") or params.get("name")
        if not name:
            raise required("Required")
        if not _valid_object_name(name):
            raise invalid("The specified object name is not valid.")
        self.entry["object"] = name
        st = self.state
        crc = crc32c_b64(data)
        md5 = md5_b64(data)
        if meta.get("crc32c") and meta["crc32c"] != crc:
            raise invalid(f"Provided CRC32C \"{meta['crc32c']}\" doesn't match calculated "
                          f"CRC32C \"{crc}\".")
        if meta.get("md5Hash") and meta["md5Hash"] != md5:
            raise invalid(f"Provided MD5 hash \"{meta['md5Hash']}\" doesn't match calculated "
                          f"MD5 hash \"{md5}\".")
        with st.lock:
            b = self._bucket(bucket)
            old = b.objects.get(name)
            self._check_preconditions(old, read=False, params=params)
            o = Obj()
            o.bucket, o.name, o.data = bucket, name, bytes(data)
            o.generation = st.new_generation()
            o.metageneration = 1
            o.created_us = o.updated_us = o.generation
            o.content_type = (meta.get("contentType") or content_type
                              or "application/octet-stream")
            o.content_encoding = meta.get("contentEncoding") or params.get("contentEncoding")
            o.cache_control = meta.get("cacheControl")
            o.content_disposition = meta.get("contentDisposition")
            o.content_language = meta.get("contentLanguage")
            md = meta.get("metadata") or {}
            o.metadata = {str(k): str(v) for k, v in md.items() if v is not None}
            o.md5, o.crc = md5, crc
            b.objects[name] = o
            b.changed()
            st.notifier.finalized(b, o, old)
            self.entry["generation"] = o.generation
            return o.resource(st.base)

    def _upload(self, method, bucket, body):
        st = self.state
        upload_id = self.params.get("upload_id")
        if upload_id:
            return self._upload_session(method, bucket, upload_id, body)
        if method != "POST":
            raise HttpError(404, "notFound", "Not Found")
        utype = self.params.get("uploadType")
        if utype not in ("media", "multipart", "resumable"):
            self.entry["kind"] = "upload.unknown"
            raise invalid(f"Invalid upload type: {utype}" if utype else
                          "Upload requests must include an uploadType URL parameter and a "
                          "URL path beginning with /upload/")
        self.entry["kind"] = "upload." + utype
        self._auth(write=True)
        with st.lock:
            self._bucket(bucket)
        ctype = self.headers.get("Content-Type")
        if utype == "media":
            res = self._store(bucket, {}, body, self.params, ctype)
            return self._json(200, res, params=self.params)
        if utype == "multipart":
            if not ctype or not ctype.lower().startswith("multipart/related"):
                raise invalid("Invalid multipart request: Content-Type must be "
                              "multipart/related")
            parts = _parse_multipart(body, ctype)
            if len(parts) != 2:
                raise invalid(f"Invalid multipart request with {len(parts)} parts "
                              f"(expected 2)")
            try:
                meta = json.loads(parts[0][1] or b"{}")
            except ValueError:
                raise HttpError(400, "parseError", "Parse Error")
            res = self._store(bucket, meta, parts[1][1], self.params,
                              parts[1][0].get("content-type"))
            return self._json(200, res, params=self.params)
        # resumable: initiate
        try:
            meta = json.loads(body) if body else {}
        except ValueError:
            raise HttpError(400, "parseError", "Parse Error")
        name = meta.get("name") or self.params.get("name")
        if not name:
            raise required("Required")
        with st.lock:
            self._check_preconditions(self._bucket(bucket).objects.get(name), read=False)
        up = Upload(bucket, dict(meta, name=name), dict(self.params),
                    self.headers.get("X-Upload-Content-Type"))
        xlen = self.headers.get("X-Upload-Content-Length")
        if xlen:
            up.total = int(xlen)
        with st.lock:
            st.uploads[up.id] = up
        loc = (f"{st.base}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
               f"&name={quote_name(name)}&upload_id={up.id}")
        self._send(200, b"", [("Location", loc), ("X-GUploader-UploadID", up.id)])

    def _upload_session(self, method, bucket, upload_id, body):
        st = self.state
        self.entry["kind"] = "upload.chunk"
        self._auth(write=True)
        with st.lock:
            up = st.uploads.get(upload_id)
        if up is None or up.bucket != bucket:
            raise HttpError(404, "notFound", "No such upload session.")
        self.entry["object"] = up.meta.get("name")
        if method == "DELETE":
            self.entry["kind"] = "upload.cancel"
            with st.lock:
                st.uploads.pop(upload_id, None)
            self._send(499, b"", message="Client Closed Request")
            return
        if method not in ("PUT", "POST"):
            raise HttpError(405, "methodNotAllowed", "Method Not Allowed")
        with st.lock:
            cr = self.headers.get("Content-Range")
            query = cr is not None and re.fullmatch(r"\s*bytes\s+\*/(?:\d+|\*)\s*", cr)
            fault = None if query else self._fault("upload.chunk")
            if up.result is not None:
                self._fault_strike(fault)  # the session is complete: nothing to keep
                return self._json(200, up.result, params=self.params)
            if cr is None:
                start, end, total = 0, len(body) - 1, len(body)
                if len(up.data):
                    raise invalid("Missing Content-Range for a resumed upload")
            else:
                m = re.fullmatch(r"\s*bytes\s+(?:\*|(\d+)-(\d+|\*))/(\d+|\*)\s*", cr)
                if not m:
                    raise invalid(f"Invalid Content-Range: {cr}")
                total = None if m.group(3) == "*" else int(m.group(3))
                if m.group(1) is None:  # status query
                    if body:
                        raise invalid("A status query carries no data")
                    if total is not None:
                        self._set_total(up, total)
                    if up.total is not None and len(up.data) == up.total:
                        return self._finish(up)
                    return self._incomplete(up)
                start = int(m.group(1))
                if m.group(2) == "*":
                    end = start + len(body) - 1
                    if total is None:
                        total = start + len(body)
                else:
                    end = int(m.group(2))
                    if end - start + 1 != len(body):
                        raise invalid(f"Content-Range {cr} does not match the "
                                      f"{len(body)} bytes sent")
            if total is not None:
                self._set_total(up, total)
                if end + 1 > total:
                    raise invalid(f"Content-Range {cr} goes past the total size")
            have = len(up.data)
            if start > have:
                raise invalid(f"Content-Range starts at {start} but only {have} bytes "
                              f"are persisted")
            final = up.total is not None and end + 1 == up.total
            if not final and len(body) % CHUNK_GRANULARITY:
                raise invalid(f"Invalid request. The number of bytes uploaded is required "
                              f"to be equal or greater than {CHUNK_GRANULARITY}, except for "
                              f"the final request (it's recommended to be the exact multiple "
                              f"of {CHUNK_GRANULARITY} bytes for optimal performance). The "
                              f"received request contained {len(body)} bytes, which does not "
                              f"meet this requirement.")
            if fault and fault["corrupt"] and body:
                self.entry["fault"] = "corrupt"
                body = bytes([body[0] ^ 0xFF]) + body[1:]
                fault = None
            if fault and fault["when"] == "before":
                keep = min(fault["keep"], len(body))
                if start + keep > have:
                    up.data += body[have - start:keep]
            self._fault_strike(fault)
            if end + 1 > have:
                up.data += body[have - start:]
            if up.total is not None and len(up.data) == up.total:
                return self._finish(up)
            return self._incomplete(up)

    def _fault(self, kind: str) -> Optional[dict]:
        """The fault rule that this request (of kind) fires, if any."""
        st = self.state
        with st.lock:
            for rule in st.faults:
                if rule["kind"] != kind:
                    continue
                rule["seen"] += 1
                if rule["seen"] > rule["skip"] and rule["fired"] < rule["count"]:
                    rule["fired"] += 1
                    return rule
        return None

    def _fault_strike(self, fault: Optional[dict]):
        """Carry out a fault rule that fired: fail now ("before") or lose the answer
        to come ("after")."""
        if not fault or fault["corrupt"]:
            return
        if fault["when"] == "after":
            self.entry["fault"] = "after"
            self._lose_answer = True
            return
        self.entry["fault"] = fault["status"]
        if not fault["status"]:
            raise DropAnswer()
        raise HttpError(fault["status"], "backendError",
                        "Backend Error (a fault injected by the test)")

    def _set_total(self, up: Upload, total: int):
        if up.total is not None and up.total != total:
            raise invalid(f"The total size {total} differs from the one given before "
                          f"({up.total})")
        if total < len(up.data):
            raise invalid("The total size is smaller than the bytes already persisted")
        up.total = total

    def _incomplete(self, up: Upload):
        hdrs = []
        if len(up.data):
            hdrs.append(("Range", f"bytes=0-{len(up.data) - 1}"))
        hdrs.append(("X-GUploader-UploadID", up.id))
        self._send(308, b"", hdrs, message="Resume Incomplete")

    def _finish(self, up: Upload):
        res = self._store(up.bucket, up.meta, bytes(up.data), up.params,
                          up.content_type or up.meta.get("contentType"))
        up.result = res
        up.data = bytearray()
        self._json(200, res, params=self.params)

    # ---- control API
    def _control(self, method, path, body):
        try:
            req = json.loads(body) if body else {}
            out = self._control_shared(method, path, req)
            if out is None:
                out = self._control_own(method, path, req)
        except ValueError as e:  # bad JSON, a bad setting
            out = (400, {"error": str(e)})
        status, out = out if isinstance(out, tuple) else (200, out)
        self._send(status, json.dumps(out).encode(), content_type="application/json")

    def _control_shared(self, method, path, req):
        """The control endpoints every test server here has (health, config, log,
        counters, reset): the answer, or None for another path."""
        st = self.state
        if path == "/_test/health":
            return {"ok": True, "pid": os.getpid()}
        if path == "/_test/config" and method in ("GET", "POST"):
            if method == "POST":
                st.set_config(req)
            with st.lock:
                return copy.deepcopy(st.config)
        if path == "/_test/log" and method == "GET":
            since = int(self.params.get("since", 0))
            with st.lock:
                return {"requests": [dict(e) for e in st.log if e["seq"] > since],
                        "next": st.seq}
        if path == "/_test/log/clear" and method == "POST":
            with st.lock:
                st.log.clear()
        elif path == "/_test/counters":
            with st.lock:
                return {"kinds": dict(st.kinds), "status": dict(st.statuses)}
        elif path == "/_test/reset" and method == "POST":
            st.reset(keys=bool(req.get("keys", False)))
        else:
            return None
        return {"ok": True}

    def _control_own(self, method, path, req):
        st = self.state
        out = {"ok": True}
        if path == "/_test/paging" and method == "POST":
            st.set_config({"paging": req})
        elif path == "/_test/faults" and method == "POST":
            try:
                rules = check_fault_rules(req)
            except TypeError as e:
                raise ValueError(f"faults: {e}")
            with st.lock:
                st.faults = rules
            out["faults"] = copy.deepcopy(rules)
        elif path == "/_test/faults" and method == "GET":
            with st.lock:
                out = {"faults": copy.deepcopy(st.faults)}
        elif path == "/_test/keys" and method == "POST":
            try:
                st.add_key(req["email"], req["pem"].encode(), req.get("kid"))
            except Exception as e:
                return 400, {"error": repr(e)}
        elif path == "/_test/keys/clear" and method == "POST":
            with st.lock:
                st.keys = []
        elif path == "/_test/notifications":
            out = st.notifier.stats()
        elif path == "/_test/tokens/revoke" and method == "POST":
            with st.lock:
                st.tokens.clear()
        else:
            return 404, {"error": "no such control endpoint"}
        return out


def _apply_meta(obj: Obj, meta: dict):
    fields = {"contentType": "content_type", "contentEncoding": "content_encoding",
              "cacheControl": "cache_control", "contentDisposition": "content_disposition",
              "contentLanguage": "content_language"}
    for k, attr in fields.items():
        if k in meta:
            v = meta[k]
            if k == "contentType" and v is None:
                v = "application/octet-stream"
            setattr(obj, attr, v)
    if "metadata" in meta:
        md = meta["metadata"]
        if md is None:
            obj.metadata = {}
        elif isinstance(md, dict):
            cur = dict(obj.metadata or {})
            for k, v in md.items():
                if v is None:
                    cur.pop(k, None)
                else:
                    cur[str(k)] = str(v)
            obj.metadata = cur
        else:
            raise invalid("Invalid value for metadata")


# --------------------------------------------------------------------------- server


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class TestServer:
    """A test server in this process, served by a thread: start(); .url; stop()."""
    thread_name = "test-server"

    def _listen(self, port: int, handler, state, verbose: bool, request_log: Optional[str]):
        """state needs cond (a Condition) and stopping (set when stopping)."""
        self.state = state
        self.httpd = _HTTPServer(("127.0.0.1", port), handler)
        self.httpd.state = state
        self.httpd.verbose = verbose
        self.httpd.request_log = request_log
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: Optional[threading.Thread] = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True,
                                        name=self.thread_name)
        self._thread.start()
        return self

    def stop(self):
        with self.state.cond:
            self.state.stopping = True
            self.state.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class GcsServer(TestServer):
    """The server, in this process: GcsServer(...).start(); .url; .stop()."""
    thread_name = "gcs-server"

    def __init__(self, port: int = 0, *, require_auth=False, public_read=False, delay_ms=0,
                 token_lifetime=3600, audiences=(), public_keys=(), verbose=False,
                 request_log: Optional[str] = None, pubsub_url: Optional[str] = None):
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        cfg.update(require_auth=require_auth, public_read=public_read, delay_ms=delay_ms,
                   token_lifetime=token_lifetime, audiences=list(audiences))
        self._listen(port, Handler, State(cfg), verbose, request_log)
        self.state.notifier.url = pubsub_url.rstrip("/") if pubsub_url else None
        for email, kid, pem in public_keys:
            self.state.add_key(email, pem, kid, start=True)
        self.state.base = self.url
        self.state.token_url = self.url + TOKEN_PATH

    def start(self) -> "GcsServer":
        super().start()
        self.state.notifier.start()
        return self

    def stop(self):
        self.state.notifier.stop()
        super().stop()


def _parse_key_arg(s: str):
    left, sep, path = s.partition("=")
    if not sep or not left or not path:
        raise argparse.ArgumentTypeError("expected EMAIL[#KID]=PEMFILE")
    email, _, kid = left.partition("#")
    with open(path, "rb") as f:
        pem = f.read()
    return email, (kid or None), pem


def main(argv=None):
    ap = argparse.ArgumentParser(description="In-memory GCS JSON API server for tests "
                                             "(127.0.0.1 only).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--public-key", action="append", default=[], type=_parse_key_arg,
                    metavar="EMAIL[#KID]=PEMFILE",
                    help="a service account's public key (or certificate / private key)")
    ap.add_argument("--require-auth", action="store_true")
    ap.add_argument("--public-read", action="store_true",
                    help="anonymous callers may read objects (not list)")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--token-lifetime", type=int, default=3600, metavar="SECONDS")
    ap.add_argument("--audience", action="append", default=[],
                    help="another accepted JWT aud (besides this server's /token URL)")
    ap.add_argument("--request-log", help="append every request (JSON lines) to this file")
    ap.add_argument("--pubsub-url", help="the Pub/Sub test server that bucket notification "
                                         "configs publish to (tests/pubsub/pubsub_server.py)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started this one goes away")
    a = ap.parse_args(argv)
    parent = os.getppid()
    srv = GcsServer(a.port, require_auth=a.require_auth, public_read=a.public_read,
                    delay_ms=a.delay_ms, token_lifetime=a.token_lifetime,
                    audiences=a.audience, public_keys=a.public_key, verbose=a.verbose,
                    request_log=a.request_log, pubsub_url=a.pubsub_url)
    return serve(srv, a.port_file, a.exit_with_parent, "gcs_server", parent)


def serve(srv, port_file: Optional[str], exit_with_parent: bool, name: str,
          parent: Optional[int] = None) -> int:
    """Start srv (.start/.port/.url/.stop), write the port file atomically, announce
    it on stderr, and run until SIGTERM/SIGINT (or the parent goes away)."""
    parent = parent if parent is not None else os.getppid()
    srv.start()
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{srv.port}\n")
        os.replace(tmp, port_file)
    sys.stderr.write(f"{name}: listening on {srv.url} (pid {os.getpid()})\n")
    sys.stderr.flush()
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(1.0):
        if exit_with_parent and os.getppid() != parent:
            break
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
