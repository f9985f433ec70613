#!/usr/bin/python3
"""A long fat pipe on 127.0.0.1: a TCP proxy that holds every byte for half
a round trip in each direction, as a wide-area link would, without netem.

    tests/bench/wanproxy.py --upstream 127.0.0.1:28480 --listen 127.0.0.1:28482
                            [--rtt-ms 30] [--window 64M] [--log FILE]

It prints `listening HOST:PORT` once it accepts connections and runs until
SIGTERM or SIGINT.

The model, for a round trip of R ms:
  - each direction of each connection is a delay line: a byte read from one
    side at t is written to the other side at t + R/2, so the first byte of
    every response comes R after its request was sent, on a kept-alive
    connection as on a new one, and a body streams at full speed behind it;
  - a new connection pays one more round trip (the TCP handshake): the
    client's connect() returns at once here, so its first bytes are held
    until R after the accept before they start their R/2;
  - at most `--window` bytes are in flight per direction of a connection
    (a TCP window): the upstream is held back when the line is full.  The
    default, 64 MiB, covers 4 GB/s at 15 ms, so only the delay limits a
    stream, not the window; a smaller one models a peer with a small window.
Bandwidth is not limited (whatever loopback, the server and this process
give), and neither loss nor slow start is modelled.

Responses travel by splice(2) through a pipe that is the delay line
(sized to the window), so their bytes are never copied into this process;
requests are read into memory, which is where the log comes from.

The log (--log) has one tab-separated line per event, for the bench to
read (time is time.monotonic() seconds):
    C  time  conn                    a client connected
    R  time  conn  METHOD  PATH  RANGE-or-"-"   a request head was forwarded
    A  time  active  bytes           every 20 ms with responses streaming:
                                     how many connections moved response
                                     bytes in that interval, and how many
    X  time  conn  bytes             a connection closed, response bytes in all
"""
import argparse
import collections
import fcntl
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import traceback

F_SETPIPE_SZ = 1031


def pipe_max():
    """The largest pipe an unprivileged process may have (1 MiB by default)."""
    try:
        return int(open("/proc/sys/fs/pipe-max-size").read())
    except (OSError, ValueError):
        return 1 << 20


PIPE_MAX = pipe_max()
SAMPLE = 0.02
REQ_RE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r\n")
RANGE_RE = re.compile(rb"\r\nRange:[ \t]*([^\r]*)", re.I)


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {s!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def __call__(self, *fields):
        if self.f is None:
            return
        line = "\t".join(str(x) for x in fields) + "\n"
        with self.lock:
            self.f.write(line)


class Line:
    """One direction of one connection: what is read from `src` at t is
    written to `dst` at t + owd (never before `hold_until` + owd), at most
    `window` bytes in between.  Responses (splice) pass through a ring of
    pipes (an unprivileged pipe holds 1 MiB at most): each is filled in
    turn, and the queue says which pipe holds the next bytes.  Requests
    (not splice) pass through memory and are logged."""

    def __init__(self, conn, src, dst, splice):
        self.conn, self.src, self.dst, self.splice = conn, src, dst, splice
        self.q = collections.deque()     # (due, item); item None = EOF
        self.cond = threading.Condition()
        self.inflight = 0                # bytes read, not yet written (cond)
        self.moved = 0                   # bytes written to dst (read by the sampler)
        self.head = b""                  # request bytes not yet parsed
        self.reader_done = False
        self.pipes = []                  # [read fd, write fd, bytes held] (cond)
        self.cur = 0                     # the pipe being filled (reader only)
        self.npipes = max(1, conn.p.window // PIPE_MAX)

    def close_pipes(self):
        for p in self.pipes:
            for fd in p[:2]:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def due(self):
        now = time.monotonic()
        return max(now, self.conn.hold_until) + self.conn.p.owd

    def room(self):
        """A pipe with room for a useful splice (cond held): its index and
        room, waiting while the window is full."""
        while not self.conn.dead:
            for _ in range(self.npipes):
                if self.cur < len(self.pipes):
                    p = self.pipes[self.cur]
                    if PIPE_MAX - p[2] >= PIPE_MAX // 4:
                        return self.cur, PIPE_MAX - p[2]
                    self.cur = (self.cur + 1) % self.npipes
                    continue
                r, w = os.pipe()
                fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_MAX)
                self.pipes.append([r, w, 0])
                return self.cur, PIPE_MAX
            self.cond.wait(0.5)
        raise OSError("connection ended")

    def read_one(self):
        """Read what the source has (blocking); (item, nbytes), nbytes 0 at EOF."""
        if not self.splice:
            data = self.src.recv(256 << 10)
            self.note_requests(data)
            with self.cond:
                while self.inflight >= self.conn.p.window and not self.conn.dead:
                    self.cond.wait(0.5)
            return data, len(data)
        # A splice from a socket holds the pipe's lock while it waits for
        # data, which would keep the writer from the bytes already in that
        # pipe: wait for data first, then splice without waiting.
        fd = self.src.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        busy = 0
        while True:
            if not poll.poll(500):
                if self.conn.dead:
                    raise OSError("connection ended")
                continue
            with self.cond:
                k, room = self.room()
            try:
                n = os.splice(fd, self.pipes[k][1], room, flags=os.SPLICE_F_NONBLOCK)
                break
            except BlockingIOError:     # that pipe is full (of small pieces)
                with self.cond:
                    self.cur = (k + 1) % self.npipes
                busy += 1
                if busy % 64 == 0:
                    time.sleep(0.001)
        with self.cond:
            self.pipes[k][2] += n
        return (k, n), n

    def reader(self):
        try:
            while True:
                item, n = self.read_one()
                if not n:
                    break
                with self.cond:
                    self.inflight += n
                    self.q.append((self.due(), item))
                    self.cond.notify_all()
        except OSError:
            pass
        with self.cond:
            self.q.append((self.due(), None))
            self.reader_done = True
            self.cond.notify_all()

    def note_requests(self, data):
        """Log each request head that passes (no request here has a body)."""
        self.head = (self.head + data)[-(64 << 10):]
        while True:
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                return
            h, self.head = self.head[:i + 2], self.head[i + 4:]
            m = REQ_RE.match(h)
            if m:
                r = RANGE_RE.search(h)
                self.conn.p.log("R", f"{time.monotonic():.6f}", self.conn.id,
                                m.group(1).decode(), m.group(2).decode("latin-1"),
                                r.group(1).decode("latin-1") if r else "-")

    def next_due(self):
        """Wait for the queue's head to be due; pop and return every item due."""
        with self.cond:
            while True:
                while not self.q:
                    self.cond.wait()
                wait = self.q[0][0] - time.monotonic()
                if wait <= 0:
                    break
                self.cond.wait(wait)
            items, now = [], time.monotonic()
            while self.q and self.q[0][0] <= now:
                if self.q[0][1] is None:
                    if not items:
                        items.append(self.q.popleft()[1])
                    break
                items.append(self.q.popleft()[1])
            return items

    def write(self, items):
        if not self.splice:
            data = b"".join(items)
            self.dst.sendall(data)
            done = len(data)
        else:
            done = 0
            for k, n in items:
                left = n
                while left:
                    m = os.splice(self.pipes[k][0], self.dst.fileno(), left)
                    if not m:
                        raise OSError("pipe drained early")
                    left -= m
                    self.moved += m
                with self.cond:
                    self.pipes[k][2] -= n
                    self.cond.notify_all()
                done += n
        with self.cond:
            self.inflight -= done
            self.cond.notify_all()

    def writer(self):
        try:
            while True:
                items = self.next_due()
                if items == [None]:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.write(items)
        except OSError:
            self.conn.kill()


class Conn:
    def __init__(self, proxy, cid, client, upstream):
        self.p, self.id = proxy, cid
        self.client, self.up = client, upstream
        self.hold_until = time.monotonic() + proxy.rtt   # the handshake's round trip
        self.dead = False
        self.up_line = Line(self, client, upstream, splice=False)
        self.down = Line(self, upstream, client, splice=True)
        self.left = 4
        self.lock = threading.Lock()

    def start(self):
        for fn in (self.up_line.reader, self.up_line.writer, self.down.reader,
                   self.down.writer):
            threading.Thread(target=self.run, args=(fn,), daemon=True).start()

    def run(self, fn):
        try:
            fn()
        except Exception:
            traceback.print_exc()       # a bug here: end the connection, not hang it
            self.kill()
        with self.lock:
            self.left -= 1
            last = self.left == 0
        if last:
            self.finish()

    def kill(self):
        """A side failed: end both connections, which ends every thread."""
        self.dead = True
        for s in (self.client, self.up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for line in (self.up_line, self.down):
            with line.cond:
                line.q.append((0.0, None))
                line.cond.notify_all()

    def finish(self):
        self.p.log("X", f"{time.monotonic():.6f}", self.id, self.down.moved)
        for s in (self.client, self.up):
            try:
                s.close()
            except OSError:
                pass
        for line in (self.up_line, self.down):
            line.close_pipes()
        self.p.forget(self)


class WanProxy:
    def __init__(self, listen, upstream, rtt_ms=30.0, window=64 << 20, log=None):
        self.upstream = upstream
        self.rtt = rtt_ms / 1000.0
        self.owd = self.rtt / 2
        self.window = window
        self.log = Log(log)
        self.conns = set()
        self.lock = threading.Lock()
        self.next_id = 0
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(listen)
        self.ls.listen(256)

    @property
    def addr(self):
        return self.ls.getsockname()[:2]

    def forget(self, conn):
        with self.lock:
            self.conns.discard(conn)

    def serve(self):
        threading.Thread(target=self.sampler, daemon=True).start()
        while True:
            c, _ = self.ls.accept()
            try:
                u = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.next_id += 1
                conn = Conn(self, self.next_id, c, u)
                self.conns.add(conn)
            self.log("C", f"{time.monotonic():.6f}", conn.id)
            conn.start()

    def sampler(self):
        last = {}
        while True:
            time.sleep(SAMPLE)
            with self.lock:
                conns = list(self.conns)
            active = moved = 0
            now = {}
            for c in conns:
                m = c.down.moved
                now[c.id] = m
                d = m - last.get(c.id, 0)
                if d:
                    active += 1
                    moved += d
            last = now
            if active:
                self.log("A", f"{time.monotonic():.6f}", active, moved)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", type=parse_addr, required=True, help="HOST:PORT")
    ap.add_argument("--listen", type=parse_addr, default=("127.0.0.1", 0), help="HOST:PORT")
    ap.add_argument("--rtt-ms", type=float, default=30.0,
                    help="round trip added to every request and connection [30]")
    ap.add_argument("--window", type=parse_size, default=64 << 20,
                    help="bytes in flight per direction of a connection [64M]")
    ap.add_argument("--log", help="event log (appended)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    p = WanProxy(a.listen, a.upstream, a.rtt_ms, a.window, a.log)
    print("listening %s:%d" % p.addr, flush=True)
    p.serve()


if __name__ == "__main__":
    sys.exit(main())
