"""A small threaded HTTP/1.1 reverse proxy with fault injection.

It sits between hylake and radosgw on 127.0.0.1 and forwards every request
unchanged (request line, headers -- Host included, since SigV4 signs it --
and body), streaming bodies in both directions.  Each client connection gets
its own upstream connection, so keep-alive works end to end.

    p = FaultProxy("http://127.0.0.1:7480")
    p.start()
    p.url                      # "http://127.0.0.1:<port>"
    p.counts["LIST"]           # requests seen, by kind
    p.log                      # [Req(method, path, query, range), ...]
    p.reset_counts()
    p.set_fault("hang")                       # every request, until cleared
    p.set_fault("reset", match="GET", count=2)  # next 2 object GETs
    p.set_fault("status", status=503, count=1)
    p.set_fault("truncate", match="GET", count=1)
    p.set_fault("corrupt", match="GET", count=1, offset=10)
    p.set_fault("delay", seconds=3, count=1)
    p.set_fault("stall", match="GET", after_bytes=65536)  # body stops, connection stays
    p.set_fault("trickle", match="GET", rate=2048)  # body at 2 KiB/s, never stalls
    p.set_fault("status", status=503, retry_after="1")  # with a Retry-After header
    p.clear_faults()
    p.stop()

Request kinds (Req.kind): "LIST" (GET on a bucket with list-type=2),
"LISTV1" (GET on a bucket without list-type), "GET" (GET of an object),
"HEAD" (HEAD of an object), "HEADBUCKET", "GETBUCKET" (other bucket GETs
such as ?location), otherwise the method name.

A `match` is None (every request), a kind string, a tuple/list/set of kinds,
or a callable taking a Req and returning a bool.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time
import urllib.parse
from typing import Callable, NamedTuple, Optional

__all__ = ["FaultProxy", "Req", "FAULT_KINDS"]

FAULT_KINDS = ("delay", "hang", "reset", "status", "truncate", "corrupt", "stall", "trickle")

_BUF = 256 * 1024
_MAX_HEADER = 64 * 1024


class Req(NamedTuple):
    """One request as the proxy saw it."""

    method: str
    path: str  # percent-decoded path (without the query)
    query: str  # raw query string
    range: Optional[str]  # the Range header, if any

    @property
    def params(self) -> dict:
        """Query parameters, decoded (last value wins)."""
        return {k: v for k, v in urllib.parse.parse_qsl(self.query, keep_blank_values=True)}

    @property
    def bucket(self) -> str:
        return self.path.lstrip("/").split("/", 1)[0]

    @property
    def key(self) -> str:
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def kind(self) -> str:
        is_bucket = self.key == ""
        if self.method == "GET":
            if is_bucket:
                p = self.params
                if p.get("list-type") == "2":
                    return "LIST"
                # a plain GET on the bucket (no sub-resource) is ListObjects v1
                subresources = set(p) - {
                    "prefix", "delimiter", "marker", "max-keys", "encoding-type",
                }
                return "LISTV1" if not subresources else "GETBUCKET"
            return "GET"
        if self.method == "HEAD":
            return "HEADBUCKET" if is_bucket else "HEAD"
        return self.method


class _Fault:
    def __init__(self, kind, match, count, params):
        if kind in ("500", "503", 500, 503):
            params = dict(params, status=int(kind))
            kind = "status"
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        self.kind = kind
        self.match = match
        self.remaining = count  # None = unlimited
        self.params = params
        self.fired = 0

    def matches(self, req: Req) -> bool:
        m = self.match
        if m is None:
            return True
        if callable(m):
            return bool(m(req))
        if isinstance(m, str):
            return req.kind == m
        return req.kind in m

    def __repr__(self):
        return (f"_Fault({self.kind!r}, remaining={self.remaining}, fired={self.fired}, "
                f"params={self.params})")


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reader on a socket that lets us get lines and exact byte counts."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(_BUF)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> Optional[bytes]:
        """Read up to and including the blank line. None on clean EOF before any byte."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[: i + 4])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > _MAX_HEADER:
                raise _Closed("header too large")
            if not self._fill():
                if self.buf:
                    raise _Closed("EOF inside header")
                return None

    def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[: i + 2])
                del self.buf[: i + 2]
                return line
            if not self._fill():
                raise _Closed("EOF inside chunked framing")

    def read_some(self, limit: int) -> bytes:
        """Return between 1 and `limit` bytes; raise _Closed on EOF."""
        if not self.buf and not self._fill():
            raise _Closed("EOF inside body")
        n = min(limit, len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_to_eof(self):
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            yield data
        while True:
            try:
                data = self.sock.recv(_BUF)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            yield data


def _parse_head(head: bytes):
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return start, headers


def _header(headers, name) -> Optional[str]:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _body_frames(reader: _Reader, headers, *, no_body: bool, until_eof_ok: bool):
    """Yield raw body bytes exactly as they appear on the wire (framing included)."""
    if no_body:
        return
    te = (_header(headers, "Transfer-Encoding") or "").lower()
    if "chunked" in te:
        while True:
            line = reader.read_line()
            yield line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers, until an empty line
                while True:
                    t = reader.read_line()
                    yield t
                    if t == b"\r\n":
                        return
            left = size + 2  # data + CRLF
            while left:
                data = reader.read_some(min(left, _BUF))
                left -= len(data)
                yield data
    cl = _header(headers, "Content-Length")
    if cl is not None:
        left = int(cl)
        while left:
            data = reader.read_some(min(left, _BUF))
            left -= len(data)
            yield data
        return
    if until_eof_ok:
        yield from reader.read_to_eof()


def _rst_close(sock: socket.socket):
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _alive(sock: socket.socket) -> bool:
    """False if the peer has closed an idle connection (EOF or error pending),
    or the socket was closed here while its client went away."""
    if sock.fileno() < 0:
        return False
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return True
        return sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def _close(sock: Optional[socket.socket]):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    def __init__(self, upstream_url: str, host: str = "127.0.0.1", port: int = 0):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme != "http":
            raise ValueError("only http:// upstreams are supported")
        self.upstream = (u.hostname, u.port or 80)
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._stop = threading.Event()
        self._lsock: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []
        self._socks: set[socket.socket] = set()
        self.counts: collections.Counter = collections.Counter()
        self.log: list[Req] = []
        self.injected: list[tuple[str, Req]] = []  # (fault kind, request) actually applied
        self.errors: list[str] = []  # proxy-side problems, for debugging
        self.connections = 0

    # ---------------------------------------------------------------- control
    @property
    def url(self) -> str:
        host, port = self._lsock.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._lsock.getsockname()[1]

    def start(self) -> "FaultProxy":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(self._bind)
        s.listen(128)
        s.settimeout(0.2)
        self._lsock = s
        t = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _close(s)
        for t in list(self._threads):
            t.join(timeout=5)
        if self._lsock is not None:
            try:
                self._lsock.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset_counts(self):
        with self._lock:
            self.counts.clear()
            self.log.clear()
            self.injected.clear()

    def set_fault(self, kind, match=None, count: Optional[int] = None, **params) -> _Fault:
        """Inject `kind` into the next `count` requests matching `match`
        (count=None: every matching request until clear_faults()).

        params: delay -> seconds (default 2); status -> status (default 503);
        truncate -> after_bytes (default: half the body), reset -> after_bytes
        (default None: reset before any response byte); stall -> after_bytes
        (default: half the body; then silence with the connection open);
        corrupt -> offset (default: middle of the body); trickle -> rate
        (bytes a second, default 2048: the body comes in small pieces, just
        fast enough never to look stalled); status -> retry_after (a
        Retry-After header value, default none).  hang takes no parameter:
        the request is read and never answered.
        """
        f = _Fault(kind, match, count, params)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def requests(self, kind=None, pred: Optional[Callable[[Req], bool]] = None) -> list[Req]:
        with self._lock:
            log = list(self.log)
        return [r for r in log if (kind is None or r.kind == kind) and (pred is None or pred(r))]

    # ---------------------------------------------------------------- internals
    def _track(self, s):
        with self._lock:
            self._socks.add(s)

    def _untrack(self, s):
        with self._lock:
            self._socks.discard(s)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            self._track(c)
            t = threading.Thread(target=self._serve, args=(c,), name="faultproxy-conn", daemon=True)
            t.start()
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)

    def _pick_fault(self, req: Req) -> Optional[_Fault]:
        with self._lock:
            for f in self._faults:
                if f.remaining is not None and f.remaining <= 0:
                    continue
                if f.matches(req):
                    if f.remaining is not None:
                        f.remaining -= 1
                    f.fired += 1
                    self.injected.append((f.kind, req))
                    return f
        return None

    def _connect_upstream(self) -> socket.socket:
        u = socket.create_connection(self.upstream, timeout=30)
        u.settimeout(None)
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(u)
        return u

    def _hang(self, client: socket.socket):
        """Never answer; return once the client goes away or the proxy stops."""
        client.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = client.recv(_BUF)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return

    def _serve(self, client: socket.socket):
        up: Optional[socket.socket] = None
        up_reader: Optional[_Reader] = None
        creader = _Reader(client)
        try:
            while not self._stop.is_set():
                head = creader.read_head()
                if head is None:
                    return
                start, headers = _parse_head(head)
                try:
                    method, target, _version = start.split(" ", 2)
                except ValueError:
                    raise _Closed(f"bad request line {start!r}")
                path_raw, _, query = target.partition("?")
                req = Req(method, urllib.parse.unquote(path_raw), query, _header(headers, "Range"))
                with self._lock:
                    self.counts[req.kind] += 1
                    self.log.append(req)
                fault = self._pick_fault(req)

                if fault is not None and fault.kind == "hang":
                    self._hang(client)
                    return
                if (fault is not None and fault.kind == "delay"
                        and fault.params.get("when", "request") == "request"):
                    self._sleep(float(fault.params.get("seconds", 2)))
                if (fault is not None and fault.kind == "reset"
                        and fault.params.get("after_bytes") is None):
                    _rst_close(client)
                    return
                if fault is not None and fault.kind == "status":
                    # consume the request body, then answer with an S3-style error
                    for _ in _body_frames(creader, headers, no_body=False, until_eof_ok=False):
                        pass
                    self._send_error(client, int(fault.params.get("status", 503)), req,
                                     fault.params.get("retry_after"))
                    continue

                if up is not None and not _alive(up):
                    # the upstream closed the idle keep-alive connection: reconnect
                    self._untrack(up)
                    _close(up)
                    up = None
                if up is None:
                    up = self._connect_upstream()
                    up_reader = _Reader(up)
                up.sendall(head)
                expect = (_header(headers, "Expect") or "").lower() == "100-continue"
                if expect:
                    # wait for the interim (or final) response before the body
                    rhead = up_reader.read_head()
                    if rhead is None:
                        raise _Closed("upstream closed")
                    rstart, _ = _parse_head(rhead)
                    client.sendall(rhead)
                    if not rstart.split(" ")[1].startswith("1"):
                        return  # final answer without reading the body: drop the connection
                for data in _body_frames(creader, headers, no_body=False, until_eof_ok=False):
                    up.sendall(data)

                if (fault is not None and fault.kind == "delay"
                        and fault.params.get("when") == "response"):
                    # the upstream has the request (and answers from the
                    # state it sees now); its answer reaches the client late
                    self._sleep(float(fault.params.get("seconds", 2)))
                keep = self._relay_response(req, up_reader, client, fault)
                if not keep:
                    return
        except _Closed as e:
            if not self._stop.is_set():
                self.errors.append(str(e))
        except OSError as e:
            if not self._stop.is_set():
                self.errors.append(repr(e))
        finally:
            self._untrack(client)
            _close(client)
            if up is not None:
                self._untrack(up)
                _close(up)

    def _sleep(self, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)

    def _send_error(self, client, status, req: Req, retry_after=None):
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        code = {500: "InternalError", 503: "SlowDown"}.get(status, "InternalError")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>injected by FaultProxy</Message>"
            f"<Resource>{req.path}</Resource><RequestId>faultproxy</RequestId></Error>"
        ).encode()
        if req.method == "HEAD":
            payload = b""
        else:
            payload = body
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n"
            + (f"Retry-After: {retry_after}\r\n" if retry_after is not None else "")
            + "x-amz-request-id: faultproxy\r\n"
            "\r\n"
        ).encode()
        client.sendall(head + payload)

    def _relay_response(self, req: Req, up_reader: _Reader, client, fault) -> bool:
        """Forward one response; return True if both connections may be reused."""
        while True:
            rhead = up_reader.read_head()
            if rhead is None:
                raise _Closed("upstream closed before answering")
            rstart, rheaders = _parse_head(rhead)
            status = int(rstart.split(" ")[1])
            if 100 <= status < 200:
                client.sendall(rhead)
                continue
            break
        no_body = req.method == "HEAD" or status in (204, 304)
        conn_hdr = (_header(rheaders, "Connection") or "").lower()
        has_len = _header(rheaders, "Content-Length") is not None or "chunked" in (
            _header(rheaders, "Transfer-Encoding") or "").lower()
        keep = "close" not in conn_hdr and (no_body or has_len)

        kind = fault.kind if fault is not None else None
        if kind == "trickle" and not no_body:
            # the whole body, a few bytes at a time: slow, never silent
            rate = max(1, int(fault.params.get("rate", 2048)))
            piece = max(1, rate // 8)
            client.sendall(rhead)
            for data in _body_frames(up_reader, rheaders, no_body=False, until_eof_ok=True):
                for i in range(0, len(data), piece):
                    if self._stop.is_set():
                        return False
                    client.sendall(data[i:i + piece])
                    time.sleep(piece / rate)
            return keep
        if kind in ("truncate", "reset", "corrupt", "stall") and not no_body:
            total = int(_header(rheaders, "Content-Length") or 0)
            client.sendall(rhead)
            if kind == "corrupt":
                off = fault.params.get("offset")
                off = total // 2 if off is None else int(off)
                pos = 0
                for data in _body_frames(up_reader, rheaders, no_body=False, until_eof_ok=True):
                    if pos <= off < pos + len(data):
                        b = bytearray(data)
                        b[off - pos] ^= 0xFF
                        data = bytes(b)
                    pos += len(data)
                    client.sendall(data)
                return keep
            # truncate / reset / stall part way: send `cut` bytes, then drop both
            # connections (truncate: FIN, reset: RST) or go silent (stall)
            cut = fault.params.get("after_bytes")
            cut = total // 2 if cut is None else int(cut)
            sent = 0
            for data in _body_frames(up_reader, rheaders, no_body=False, until_eof_ok=True):
                if sent + len(data) >= cut:
                    client.sendall(data[: cut - sent])
                    sent = cut
                    break
                client.sendall(data)
                sent += len(data)
            if kind == "reset":
                _rst_close(client)
            elif kind == "stall":
                self._hang(client)
            return False

        client.sendall(rhead)
        for data in _body_frames(up_reader, rheaders, no_body=no_body, until_eof_ok=True):
            client.sendall(data)
        return keep
