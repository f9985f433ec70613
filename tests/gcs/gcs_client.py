"""A tiny GCS JSON API client and process wrapper for tests/gcs/gcs_server.py.

Test setup only: it talks to 127.0.0.1 and nothing else.

    proc = ServerProcess(workdir, require_auth=True, public_keys=[(email, kid, pem_path)])
    proc.start()                    # subprocess; waits for the port file
    c = GcsClient(proc.url)         # tokens from the server's metadata endpoint
    c.create_bucket("lake")
    c.upload("lake", "a/b.txt", b"data")                     # uploadType=media
    c.upload("lake", "big", data, method="resumable")         # 256 KiB-multiple chunks
    c.upload("lake", "z.gz", gz, content_encoding="gzip", method="multipart")
    c.list_all("lake", prefix="a/")  -> {name: resource}
    c.control.config(delay_ms=500); c.control.paging(page_size=3); c.control.log()
    proc.stop()                     # SIGTERM by PID, then SIGKILL
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
SERVER = HERE / "gcs_server.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
RW_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
RO_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
MiB = 1024 * 1024


def q(name: str) -> str:
    """An object name as one path segment ('/' -> %2F)."""
    return urllib.parse.quote(name, safe="")


class GcsHTTPError(Exception):
    def __init__(self, status, body, method, path):
        self.status = status
        self.body = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None
        super().__init__(f"{method} {path} -> {status}: {body[:500]!r}")

    @property
    def reason(self) -> Optional[str]:
        try:
            return self.json["error"]["errors"][0]["reason"]
        except (TypeError, KeyError, IndexError):
            return None


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)


class _Conn(threading.local):
    conn: Optional[http.client.HTTPConnection] = None


class HTTP:
    """Keep-alive HTTP/1.1 to one 127.0.0.1 port, one connection per thread."""

    def __init__(self, url: str, timeout: float = 60):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"refusing to talk to {url}: tests stay on 127.0.0.1")
        self.host, self.port = u.hostname, u.port
        self.timeout = timeout
        self._local = _Conn()

    def request(self, method, path, body=None, headers=None) -> Response:
        headers = dict(headers or {})
        for attempt in range(2):
            c = self._local.conn
            if c is None:
                c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self._local.conn = c
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self._local.conn = None
                return Response(r.status, r.headers, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                c.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Control:
    """The server's /_test/ API."""

    def __init__(self, http_: HTTP):
        self.http = http_

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = self.http.request(method, "/_test/" + path, data,
                              {"Content-Type": "application/json"} if data else None)
        if r.status != 200:
            raise RuntimeError(f"control {path}: {r.status} {r.body!r}")
        return r.json()

    def health(self):
        return self._call("GET", "health")

    def config(self, **kw):
        return self._call("POST", "config", kw) if kw else self._call("GET", "config")

    def paging(self, **kw):
        return self._call("POST", "paging", kw)

    def faults(self, rules=None) -> list[dict]:
        """Set the fault rules (a list; [] = none), or read them with their counts."""
        if rules is None:
            return self._call("GET", "faults")["faults"]
        return self._call("POST", "faults", rules)["faults"]

    def log(self, since: int = 0) -> list[dict]:
        return self._call("GET", f"log?since={since}")["requests"]

    def log_mark(self) -> int:
        """The sequence number of the last request so far (pass to log(since=))."""
        return self._call("GET", "log?since=999999999999")["next"]

    def clear_log(self):
        return self._call("POST", "log/clear", {})

    def counters(self):
        return self._call("GET", "counters")

    def add_key(self, email, pem, kid=None):
        return self._call("POST", "keys", {"email": email, "pem": pem, "kid": kid})

    def revoke_tokens(self):
        return self._call("POST", "tokens/revoke", {})

    def reset(self, keys=False):
        return self._call("POST", "reset", {"keys": keys})


class GcsClient:
    def __init__(self, url: str, *, auth: str = "metadata", timeout: float = 60,
                 scopes=(RW_SCOPE,)):
        """auth: "metadata" (tokens from the server's metadata endpoint) or "none"."""
        self.url = url.rstrip("/")
        self.http = HTTP(self.url, timeout)
        self.control = Control(self.http)
        self.auth = auth
        self.scopes = ",".join(scopes)
        self._tok = None
        self._tok_exp = 0.0
        self._tok_lock = threading.Lock()

    # ---- auth
    def token(self) -> Optional[str]:
        if self.auth == "none":
            return None
        with self._tok_lock:
            if self._tok and time.monotonic() < self._tok_exp:
                return self._tok
            r = self.http.request(
                "GET", "/computeMetadata/v1/instance/service-accounts/default/token?scopes="
                + urllib.parse.quote(self.scopes, safe=","),
                headers={"Metadata-Flavor": "Google"})
            if r.status != 200:
                raise GcsHTTPError(r.status, r.body, "GET", "metadata token")
            d = r.json()
            self._tok = d["access_token"]
            self._tok_exp = time.monotonic() + max(0.5, min(d["expires_in"] - 2,
                                                            d["expires_in"] * 0.5))
            return self._tok

    def request(self, method, path, *, params=None, body=None, headers=None,
                ok=(200,)) -> Response:
        if params:
            path += "?" + urllib.parse.urlencode(params)
        h = dict(headers or {})
        tok = self.token()
        if tok:
            h["Authorization"] = "Bearer " + tok
        r = self.http.request(method, path, body, h)
        if r.status == 401 and tok:  # token expired in between: once more
            with self._tok_lock:
                self._tok = None
            h["Authorization"] = "Bearer " + self.token()
            r = self.http.request(method, path, body, h)
        if ok is not None and r.status not in ok:
            raise GcsHTTPError(r.status, r.body, method, path)
        return r

    # ---- buckets
    def create_bucket(self, name: str, project: str = "hylake-test") -> dict:
        return self.request("POST", "/storage/v1/b", params={"project": project},
                            body=json.dumps({"name": name}).encode(),
                            headers={"Content-Type": "application/json"}).json()

    def get_bucket(self, name: str) -> dict:
        return self.request("GET", f"/storage/v1/b/{name}").json()

    # ---- objects
    def upload(self, bucket: str, name: str, data: bytes, *, method: str = "media",
               content_type: Optional[str] = None, content_encoding: Optional[str] = None,
               metadata: Optional[dict] = None, chunk: int = 1 * MiB,
               preconditions: Optional[dict] = None) -> dict:
        base = f"/upload/storage/v1/b/{bucket}/o"
        pre = {k: str(v) for k, v in (preconditions or {}).items()}
        meta = {"name": name}
        if content_type:
            meta["contentType"] = content_type
        if content_encoding:
            meta["contentEncoding"] = content_encoding
        if metadata:
            meta["metadata"] = metadata
        if method == "media" and not metadata:
            params = {"uploadType": "media", "name": name, **pre}
            if content_encoding:
                params["contentEncoding"] = content_encoding
            return self.request("POST", base, params=params, body=data, headers={
                "Content-Type": content_type or "application/octet-stream"}).json()
        if method in ("media", "multipart"):
            boundary = "hylake_" + os.urandom(8).hex()
            body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
                    + json.dumps(meta) + f"\r\n--{boundary}\r\n"
                    + f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
                    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
            return self.request("POST", base, params={"uploadType": "multipart", **pre},
                                body=body, headers={
                                    "Content-Type": f"multipart/related; boundary={boundary}"}
                                ).json()
        if method != "resumable":
            raise ValueError(method)
        if chunk % (256 * 1024):
            raise ValueError("resumable chunks are multiples of 256 KiB")
        r = self.request("POST", base, params={"uploadType": "resumable", **pre},
                         body=json.dumps(meta).encode(), headers={
                             "Content-Type": "application/json; charset=UTF-8",
                             "X-Upload-Content-Type": content_type or "application/octet-stream",
                             "X-Upload-Content-Length": str(len(data))})
        loc = urllib.parse.urlsplit(r.header("Location"))
        session = loc.path + "?" + loc.query
        total = len(data)
        off = 0
        while True:
            piece = data[off:off + chunk]
            end = off + len(piece) - 1
            cr = f"bytes {off}-{end}/{total}" if piece else f"bytes */{total}"
            r = self.request("PUT", session, body=piece, headers={"Content-Range": cr},
                             ok=(200, 201, 308))
            if r.status in (200, 201):
                return r.json()
            rng = r.header("Range")
            off = int(rng.split("-")[1]) + 1 if rng else 0

    def get(self, bucket: str, name: str, **params) -> dict:
        return self.request("GET", f"/storage/v1/b/{bucket}/o/{q(name)}",
                            params=params or None).json()

    def download(self, bucket: str, name: str, *, headers=None, ok=(200, 206),
                 path="storage", **params) -> Response:
        prefix = "/download/storage/v1" if path == "download" else "/storage/v1"
        return self.request("GET", f"{prefix}/b/{bucket}/o/{q(name)}",
                            params={"alt": "media", **params}, headers=headers, ok=ok)

    def patch(self, bucket: str, name: str, meta: dict, **params) -> dict:
        return self.request("PATCH", f"/storage/v1/b/{bucket}/o/{q(name)}",
                            params=params or None, body=json.dumps(meta).encode(),
                            headers={"Content-Type": "application/json"}).json()

    def rewrite_call(self, bucket: str, src: str, dst: str, body: Optional[dict] = None,
                     *, dst_bucket: Optional[str] = None, **params) -> dict:
        """One objects.rewrite call: the rewriteResponse."""
        return self.request(
            "POST", f"/storage/v1/b/{bucket}/o/{q(src)}/rewriteTo/b/{dst_bucket or bucket}"
                    f"/o/{q(dst)}", params=params or None,
            body=json.dumps(body).encode() if body is not None else b"",
            headers={"Content-Type": "application/json"}).json()

    def rewrite(self, bucket: str, src: str, dst: str, body: Optional[dict] = None,
                **params) -> tuple[dict, int]:
        """Copy src to dst, following rewriteToken until done: (the new object, calls)."""
        calls = 0
        while True:
            r = self.rewrite_call(bucket, src, dst, body, **params)
            calls += 1
            if r["done"]:
                return r["resource"], calls
            params["rewriteToken"] = r["rewriteToken"]

    def delete(self, bucket: str, name: str, **params):
        self.request("DELETE", f"/storage/v1/b/{bucket}/o/{q(name)}", params=params or None,
                     ok=(204,))

    def list_page(self, bucket: str, **params) -> dict:
        return self.request("GET", f"/storage/v1/b/{bucket}/o", params=params or None).json()

    def list(self, bucket: str, *, prefix="", delimiter=None, max_pages=100000, **params):
        """(items {name: resource}, prefixes [..] in order, pages) following every
        nextPageToken; a prefix repeated across pages is kept once."""
        items, prefixes, seen = {}, [], set()
        token = None
        pages = 0
        while pages < max_pages:
            p = dict(params)
            if prefix:
                p["prefix"] = prefix
            if delimiter:
                p["delimiter"] = delimiter
            if token:
                p["pageToken"] = token
            page = self.list_page(bucket, **p)
            pages += 1
            for it in page.get("items", []):
                items[it["name"]] = it
            for pf in page.get("prefixes", []):
                if pf not in seen:
                    seen.add(pf)
                    prefixes.append(pf)
            token = page.get("nextPageToken")
            if not token:
                break
        return items, prefixes, pages

    def list_all(self, bucket: str, prefix: str = "") -> dict:
        return self.list(bucket, prefix=prefix)[0]

    def put_many(self, bucket: str, objects: dict, threads: int = 16, **kw) -> dict:
        """Upload {name: bytes} in parallel (media uploads; resumable above 8 MiB).
        Returns {name: resource}."""

        def one(kv):
            k, v = kv
            method = "resumable" if len(v) > 8 * MiB else "media"
            return k, self.upload(bucket, k, v, method=method, **kw)

        with ThreadPoolExecutor(max_workers=threads) as ex:
            return dict(ex.map(one, objects.items()))


def rfc3339_to_ns(s: str) -> int:
    """'2024-05-01T12:34:56.789Z' -> nanoseconds since the epoch (exact)."""
    from datetime import datetime, timezone

    main, _, frac = s.rstrip("Z").partition(".")
    dt = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    frac = (frac + "000000000")[:9]
    return int(dt.timestamp()) * 1_000_000_000 + int(frac)


def crc32c_b64(data: bytes) -> str:
    sys.path.insert(0, str(HERE))
    import gcs_server

    return gcs_server.crc32c_b64(data)


# --------------------------------------------------------------------------- keys


def openssl_genrsa(path: Path, bits: int = 2048) -> Path:
    """A PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----"), mode 0600."""
    path = Path(path)
    raw = path.with_suffix(".raw.pem")
    subprocess.run(["openssl", "genrsa", "-out", str(raw), str(bits)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    # OpenSSL 3 already writes PKCS#8; make sure of it whatever the version
    subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(raw), "-out", str(path)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    raw.unlink()
    os.chmod(path, 0o600)
    return path


def openssl_pubkey(private_pem: Path, out: Path) -> Path:
    subprocess.run(["openssl", "pkey", "-in", str(private_pem), "-pubout", "-out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return Path(out)


def service_account_json(*, private_key_pem: str, email: str, kid: str, token_uri: str,
                         project: str = "hylake-test") -> dict:
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": kid,
        "private_key": private_key_pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "http://127.0.0.1/unused-auth-uri",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "http://127.0.0.1/unused-certs",
        "client_x509_cert_url": "http://127.0.0.1/unused-cert",
        "universe_domain": "googleapis.com",
    }


def write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return Path(path)


# --------------------------------------------------------------------------- the server process


class ServerProcess:
    """gcs_server.py as a subprocess on a free 127.0.0.1 port; stopped by PID.
    (Subclasses run another server script that takes the same --port, --port-file and
    --exit-with-parent options: SCRIPT, NAME and their own arguments.)"""
    SCRIPT = SERVER
    NAME = "gcs_server"

    def __init__(self, workdir: Path, *, require_auth=False, public_read=False, delay_ms=0,
                 token_lifetime=None, public_keys=(), audiences=(), pubsub_url=None,
                 extra_args=()):
        self.workdir = Path(workdir)
        self.args = ["--pubsub-url", pubsub_url] if pubsub_url else []
        if require_auth:
            self.args.append("--require-auth")
        if public_read:
            self.args.append("--public-read")
        if delay_ms:
            self.args += ["--delay-ms", str(delay_ms)]
        if token_lifetime:
            self.args += ["--token-lifetime", str(token_lifetime)]
        for email, kid, pem_path in public_keys:
            self.args += ["--public-key", f"{email}#{kid}={pem_path}" if kid else
                          f"{email}={pem_path}"]
        for a in audiences:
            self.args += ["--audience", a]
        self.args += list(extra_args)
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.url: Optional[str] = None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 20) -> "ServerProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        name = self.NAME
        port_file = self.workdir / f"{name}.port"
        with contextlib.suppress(FileNotFoundError):
            port_file.unlink()
        self.stderr_path = self.workdir / f"{name}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [PYTHON, str(self.SCRIPT), "--port", "0", "--port-file", str(port_file),
                 "--exit-with-parent", *self.args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name}.py exited {self.proc.returncode}:\n"
                                   f"{self.stderr_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name}.py did not write its port file in time")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"
        Control(HTTP(self.url, 10)).health()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(private_pem: bytes, claims: dict, header: Optional[dict] = None) -> str:
    """An RS256 JWT (for tests of the token endpoint itself)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_pem, password=None)
    h = header or {"alg": "RS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode()))
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)
