#!/usr/bin/python3
"""Fast reads: hylake against the plain S3 client it sits on (curl, HTTP
ranged GETs, raw listing requests), against a local disk, and next to s3fs
and rclone mounts, all against one radosgw that this script starts itself.
Prints a table of medians over several runs, each a ratio against a
baseline measured in the same run (see tests/bench/README.md).

    sudo tests/bench/fast_reads.py [--runs 3] [--small] [--only 1,3-5]
                                   [--hylake-bin build/hylake] [--perf FILE [--perf-row N]]

BENCH_RGW_PORT, BENCH_RGW_B_PORT and BENCH_MON_PORT move radosgw's ports
(28480, 28481, 28789) for a second run beside another, and BENCH_PROXY_PORT
the ports of row 7's proxies (28482 and the next one); with --workdir it
needs its own scratch folder too.  BENCH_KERNEL_RA_KB sets the kernel's
read-ahead of the hylake mount, for trying other values, and
BENCH_HYLAKE_MOUNT more settings of hylake's [mount] section, as
"read_ahead = 8M; cache_first_read = yes".

Needs root (FUSE, drop_caches), a built hylake, radosgw (tests/ceph/rgw.sh),
python3-boto3, curl; s3fs and rclone for their columns
(packaging/install-deps.sh --bench).  Exit 0 when every measurement ran,
whatever the figures; 1 when the bench itself could not run.
"""
import argparse
import fcntl
import html
import http.client
import io
import json
import os
import platform
import random
import re
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rgwlog
from gcslib import ROOT, daemons_of, drop_caches, log, mounted

RGW_SH = ROOT / "tests" / "ceph" / "rgw.sh"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
MB = 1e6
BUCKET = "benchbucket"
# BENCH_RGW_PORT etc. move them, so that two runs on one machine can coexist
RGW_PORTS = {k: os.environ.get("BENCH_" + k, v) for k, v in
             (("RGW_PORT", "28480"), ("RGW_B_PORT", "28481"), ("MON_PORT", "28789"))}
# row 7: the proxy with the WAN's round trip, and one without delay beside it
PROXY_PORT = int(os.environ.get("BENCH_PROXY_PORT", "28482"))
# more [mount] settings for hylake, one "key = value" per line: for trying
# a setting against the same baselines
MOUNT_EXTRA = "".join(line.strip() + "\n" for line in
                      os.environ.get("BENCH_HYLAKE_MOUNT", "").split(";") if line.strip())
WAN_RTT_MS = 30
WANPROXY = Path(__file__).resolve().with_name("wanproxy.py")
REGION = "us-east-1"
MEMORY_LIMIT = 512 * MiB
CACHE_SIZE = "4G"
PQ_FILE_SIZE = 4 * MiB
PQ_TAIL = 48 * KiB
PQ_RANGE = 1 * MiB
PQ_SEED = 20240601
S3FS_OPTS = "parallel_count=8"          # other s3fs settings: its defaults
# --use-server-modtime: mtime from the listing's LastModified, as hylake and
# s3fs do, instead of one HEAD per file for rclone's own X-Amz-Meta-Mtime.
RCLONE_OPTS = ["--vfs-cache-mode", "off", "--use-server-modtime"]  # rest: defaults
CLK = os.sysconf("SC_CLK_TCK")
T_START = time.monotonic()
INSTALL_HINT = "not installed: run packaging/install-deps.sh --bench"


class Failed(Exception):
    """One measurement failed; the cell shows the reason."""


class Timeout(Failed):
    pass


# --------------------------------------------------------------------------- workers
# Reading patterns run in a child process of this script (`--worker KIND`):
# a read hanging in a FUSE mount is then killed by a timeout, and every
# pattern pays the same interpreter overhead.


def sigv4_get(conn, signer, endpoint, path, query="", headers=None):
    """One signed GET on a kept-alive connection: (status, body)."""
    from botocore.awsrequest import AWSRequest
    url = endpoint + path + ("?" + query if query else "")
    req = AWSRequest(method="GET", url=url, headers=dict(headers or {}))
    signer.add_auth(req)
    conn.request("GET", path + ("?" + query if query else ""), headers=dict(req.headers.items()))
    r = conn.getresponse()
    body = r.read()
    return r.status, body


def make_signer(plan):
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials
    return S3SigV4Auth(Credentials(plan["access_key"], plan["secret_key"]), "s3", REGION)


def http_conn(endpoint):
    u = urllib.parse.urlsplit(endpoint)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def worker_pq_fs(plan, root):
    """Parquet-like pattern through a mount: open, fstat, last 48 KiB, 3 x 1 MiB, close."""
    total = 0

    def pread_full(fd, n, off):
        got = 0
        while got < n:
            b = os.pread(fd, n - got, off + got)
            if not b:
                raise SystemExit(f"short read at {off + got}")
            got += len(b)
        return got

    # seconds spent in each step, summed over the files
    steps = {"open": 0.0, "fstat": 0.0, "tail": 0.0, "ranges": 0.0, "close": 0.0}
    t = time.monotonic()
    for f in plan["files"]:
        t0 = time.monotonic()
        fd = os.open(os.path.join(root, f["key"]), os.O_RDONLY)
        t1 = time.monotonic()
        try:
            size = os.fstat(fd).st_size
            t2 = time.monotonic()
            if size != f["size"]:
                raise SystemExit(f"{f['key']}: size {size}, expected {f['size']}")
            total += pread_full(fd, plan["tail"], size - plan["tail"])
            t3 = time.monotonic()
            for off in f["offsets"]:
                total += pread_full(fd, plan["range"], off)
            t4 = time.monotonic()
        finally:
            os.close(fd)
        t5 = time.monotonic()
        for k, a, b in (("open", t0, t1), ("fstat", t1, t2), ("tail", t2, t3),
                        ("ranges", t3, t4), ("close", t4, t5)):
            steps[k] += b - a
    return {"seconds": time.monotonic() - t, "bytes": total, "steps": steps}


def worker_pq_http(plan):
    """The same pattern as direct S3 requests on one kept-alive connection:
    the footer by a suffix range (no HEAD), then the 3 ranges."""
    signer = make_signer(plan)
    ep = plan["endpoint"]
    total = 0
    t = time.monotonic()
    conn = http_conn(ep)
    steps = {"tail": 0.0, "ranges": 0.0}
    for f in plan["files"]:
        path = f"/{plan['bucket']}/{f['key']}"
        ranges = [f"bytes=-{plan['tail']}"] + [
            f"bytes={o}-{o + plan['range'] - 1}" for o in f["offsets"]]
        for i, rg in enumerate(ranges):
            t0 = time.monotonic()
            st, body = sigv4_get(conn, signer, ep, path, headers={"Range": rg})
            if st != 206:
                raise SystemExit(f"GET {path} {rg}: HTTP {st}")
            total += len(body)
            steps["ranges" if i else "tail"] += time.monotonic() - t0
    conn.close()
    return {"seconds": time.monotonic() - t, "bytes": total, "steps": steps}


def worker_list_http(plan):
    """ListObjectsV2 pages of 1000 keys under the folder, one connection."""
    signer = make_signer(plan)
    ep = plan["endpoint"]
    q = urllib.parse.quote
    keys = pages = 0
    token = None
    t = time.monotonic()
    conn = http_conn(ep)
    while True:
        params = {"list-type": "2", "prefix": plan["prefix"], "delimiter": "/",
                  "max-keys": "1000"}
        if token:
            params["continuation-token"] = token
        query = "&".join(f"{q(k, safe='-_.~')}={q(v, safe='-_.~')}"
                         for k, v in sorted(params.items()))
        st, body = sigv4_get(conn, signer, ep, f"/{plan['bucket']}", query)
        if st != 200:
            raise SystemExit(f"LIST: HTTP {st}: {body[:200]!r}")
        pages += 1
        keys += body.count(b"<Key>")
        m = re.search(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>", body)
        if b"<IsTruncated>true</IsTruncated>" not in body or not m:
            break
        token = html.unescape(m.group(1).decode())
    conn.close()
    return {"seconds": time.monotonic() - t, "keys": keys, "pages": pages}


def worker_main(argv):
    kind, planfile = argv[0], argv[1]
    plan = json.loads(Path(planfile).read_text())
    if kind == "pq-fs":
        out = worker_pq_fs(plan, argv[2])
    elif kind == "pq-http":
        out = worker_pq_http(plan)
    elif kind == "list-http":
        out = worker_list_http(plan)
    else:
        raise SystemExit(f"unknown worker {kind}")
    print(json.dumps(out))


# --------------------------------------------------------------------------- processes


def proc_cpu(pid):
    """utime+stime of a process (all its threads), seconds; None when gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / CLK


def proc_alive(pid, starttime=None):
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    f = s[s.rindex(")") + 2:].split()
    if f[0] in ("Z", "X"):
        return False
    return starttime is None or f[19] == starttime


def proc_starttime(pid):
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
        return s[s.rindex(")") + 2:].split()[19]
    except OSError:
        return None


def proc_status_kib(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, timeout=60, check=True, env=None, **kw):
    try:
        r = subprocess.run(cmd, timeout=timeout, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    except subprocess.TimeoutExpired:
        raise Failed(f"{Path(cmd[0]).name} timed out after {timeout:.0f}s")
    if check and r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise Failed(f"{Path(cmd[0]).name} exited {r.returncode}: "
                     f"{msg[-1] if msg else ''}")
    return r


# --------------------------------------------------------------------------- mounts


def mount_dir(work, kind, wan):
    return work / (f"mnt-{kind}-wan" if wan else f"mnt-{kind}")


class Mount:
    """One FUSE mount of hylake, s3fs or rclone, remounted between runs;
    `wan`: its source is radosgw behind row 7's WAN proxy."""

    def __init__(self, bench, kind, wan=False):
        self.b, self.kind, self.wan = bench, kind, wan
        self.mnt = mount_dir(bench.work, kind, wan)
        self.mnt.mkdir(exist_ok=True)
        self.pid = None
        self.start = None

    def _cmd(self):
        b = self.b
        if self.kind == "hylake":
            conf = b.hylake_wan_conf if self.wan else b.hylake_conf
            return [str(b.hylake), "mount", str(conf), str(self.mnt)], None
        if self.kind == "s3fs":
            url = b.wan.url if self.wan else b.endpoint
            opts = (f"ro,url={url},use_path_request_style,endpoint={REGION},"
                    f"passwd_file={b.s3fs_pw},{S3FS_OPTS}")
            return ["s3fs", BUCKET, str(self.mnt), "-o", opts], None
        env = dict(os.environ)
        env.pop("AWS_CA_BUNDLE", None)   # rclone refuses to start with it on this image
        remote = "benchwan" if self.wan else "bench"
        return (["rclone", "--config", str(b.rclone_conf), "mount",
                 f"{remote}:{BUCKET}", str(self.mnt), "--read-only", "--daemon"]
                + RCLONE_OPTS, env)

    def mount(self):
        if mounted(self.mnt):
            self.umount()
        cmd, env = self._cmd()
        run(cmd, timeout=60, env=env)
        deadline = time.monotonic() + 30
        while not mounted(self.mnt):
            if time.monotonic() > deadline:
                raise Failed(f"{self.kind} did not mount {self.mnt} within 30s")
            time.sleep(0.05)
        names = {"hylake": ("hylake",), "s3fs": ("s3fs",), "rclone": ("rclone",)}[self.kind]
        deadline = time.monotonic() + 10
        pids = daemons_of(self.mnt, names)
        while len(pids) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = daemons_of(self.mnt, names)
        if len(pids) != 1:
            raise Failed(f"cannot tell the {self.kind} daemon of {self.mnt}: {pids}")
        self.pid = pids[0]
        self.start = proc_starttime(self.pid)
        self.b.daemons.add((self.pid, self.start))
        os.listdir(self.mnt)       # answers
        ra = os.environ.get("BENCH_KERNEL_RA_KB")
        if ra and self.kind == "hylake":   # an experiment: the kernel's read-ahead
            dev = os.stat(self.mnt).st_dev
            Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").write_text(ra)

    def umount(self):
        if mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", str(self.mnt)], timeout=30,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mnt)], timeout=30,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pid:
            stop_pid(self.pid, self.start, grace=15)
            self.b.daemons.discard((self.pid, self.start))
        self.pid = None


def stop_pid(pid, start, grace=10.0):
    """Wait for pid to exit by itself, then SIGTERM, then SIGKILL."""
    for sig, wait in ((None, grace), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if sig is not None and proc_alive(pid, start):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while proc_alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not proc_alive(pid, start):
            return


class Proxy:
    """tests/bench/wanproxy.py in a process of its own (its CPU is not the
    bench's), between the clients and radosgw; its event log says what
    passed during a measurement."""

    def __init__(self, bench, port, rtt_ms):
        self.b, self.port, self.rtt_ms = bench, port, rtt_ms
        self.logfile = bench.work / f"proxy-{rtt_ms}ms.log"
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        u = urllib.parse.urlsplit(self.b.endpoint)
        self.logfile.unlink(missing_ok=True)
        err = open(self.b.work / f"proxy-{self.rtt_ms}ms.err", "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WANPROXY), "--upstream", f"{u.hostname}:{u.port}",
             "--listen", f"127.0.0.1:{self.port}", "--rtt-ms", str(self.rtt_ms),
             "--log", str(self.logfile)], stdout=subprocess.PIPE, stderr=err, text=True)
        err.close()
        if not select.select([self.proc.stdout], [], [], 10)[0] or \
                not self.proc.stdout.readline().startswith("listening"):
            self.stop()
            raise SystemExit(f"fast_reads: the proxy on port {self.port} did not start "
                             f"(see {err.name})")
        log(f"proxy {self.url} -> {self.b.endpoint}, {self.rtt_ms} ms round trip")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cpu(self):
        return proc_cpu(self.proc.pid) or 0

    def mark(self):
        return rgwlog.mark(self.logfile), self.cpu()

    def stats(self, mark):
        """What passed since mark(): object GETs, their Range sizes, new
        connections, and how many connections streamed response bytes at
        once (sampled every 20 ms while any did)."""
        pos, cpu0 = mark
        text = rgwlog.since(self.logfile, pos) or ""
        gets, ranges, conns, active = 0, [], 0, []
        for line in text.splitlines():
            f = line.split("\t")
            if f[0] == "C":
                conns += 1
            elif f[0] == "A":
                active.append(int(f[2]))
            elif f[0] == "R" and f[3] == "GET" and "/" in f[4].lstrip("/").split("?")[0]:
                gets += 1
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", f[5])
                if m:
                    ranges.append(int(m.group(2)) - int(m.group(1)) + 1)
        return {"gets": gets, "range_kib": statistics.median(ranges) / KiB if ranges else None,
                "conns": conns, "streams": statistics.mean(active) if active else 0,
                "streams_max": max(active, default=0), "cpu": self.cpu() - cpu0}


class RssSampler(threading.Thread):
    """Peak RSS (KiB) of some PIDs: sampled VmRSS and the final VmHWM."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = [p for p in pids if p]
        self.peak = {p: 0 for p in self.pids}
        self.stop_ev = threading.Event()

    def sample(self, field):
        for p in self.pids:
            v = proc_status_kib(p, field)
            if v:
                self.peak[p] = max(self.peak[p], v)

    def run(self):
        while not self.stop_ev.wait(0.05):
            self.sample("VmRSS")

    def finish(self):
        self.stop_ev.set()
        self.join()
        self.sample("VmHWM")
        return self.peak


# --------------------------------------------------------------------------- the bench


def parse_rows(spec):
    rows = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        rows.update(range(int(a), int(b or a) + 1))
    if not rows or not rows <= set(range(1, 8)):
        raise argparse.ArgumentTypeError(f"rows are 1..7: {spec!r}")
    return rows


class Bench:
    def __init__(self, a):
        self.a = a
        self.hylake_src = Path(a.hylake_bin).absolute()
        self.hylake = self.hylake_src
        self.hylake_built = "?"
        self.work = Path(a.workdir).absolute()
        self.rgw_dir = self.work / "rgw"
        self.deadline = T_START + a.budget
        self.daemons = set()
        self.mounts = {}
        self.rgw_started = False
        self.wan = self.wan0 = None   # row 7's proxies: 30 ms, and 0 ms
        self.results = {}      # (row, system) -> list of measurement dicts
        self.errors = {}       # (row, system) -> reason
        self.notes = []
        small = a.small
        self.seq_size = 64 * MiB if small else GiB
        self.par_size = 16 * MiB if small else 256 * MiB
        self.par_n = 8
        self.pq_n = 50 if small else 500
        self.ls_n = 1000 if small else 10000
        self.have = {t: shutil.which(t) is not None for t in ("s3fs", "rclone")}

    # -- setup ---------------------------------------------------------------

    def setup(self):
        self.work.mkdir(parents=True, exist_ok=True)
        self.lock = open(self.work / ".lock", "w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SystemExit(f"fast_reads: another run uses {self.work}")
        self.kill_leftovers()
        self.snapshot_hylake()
        data = (self.seq_size + self.par_n * self.par_size + self.pq_n * PQ_FILE_SIZE
                + self.ls_n * 16)
        env = dict(os.environ, **RGW_PORTS, RGW_SITE_B="0",
                   MEMSTORE_BYTES=str(data + 2 * GiB))
        log(f"starting radosgw in {self.rgw_dir} (ports {RGW_PORTS['RGW_PORT']}, "
            f"mon {RGW_PORTS['MON_PORT']}; memstore {(data + 2 * GiB) / GiB:.1f} GiB)")
        self.rgw_started = True
        r = subprocess.run(["bash", str(RGW_SH), "start", str(self.rgw_dir)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        if r.returncode != 0:
            sys.stderr.write(r.stdout)
            raise SystemExit("fast_reads: radosgw did not start (see above)")
        e = {}
        for line in (self.rgw_dir / "env").read_text().splitlines():
            k, _, v = line.partition("=")
            e[k] = shlex.split(v)[0] if v else ""
        self.endpoint = e["RGW_ENDPOINT"]
        self.ak, self.sk = e["RGW_ACCESS_KEY"], e["RGW_SECRET_KEY"]
        self.rgw_log = self.rgw_dir / "log" / "client.rgw.log"
        self.server_pids = []
        for n in ("rgw", "osd"):
            self.server_pids.append(int((self.rgw_dir / "pids" / f"{n}.pid").read_text()))
        if 7 in self.a.only:
            self.wan = Proxy(self, PROXY_PORT, WAN_RTT_MS)
            self.wan0 = Proxy(self, PROXY_PORT + 1, 0)
            for p in (self.wan, self.wan0):
                p.start()

        def secret(name, text):
            p = self.work / name
            p.write_text(text)
            p.chmod(0o600)
            return p
        self.creds = secret("credentials", "[default]\naws_access_key_id = "
                            f"{self.ak}\naws_secret_access_key = {self.sk}\n")
        self.s3fs_pw = secret("s3fs.passwd", f"{self.ak}:{self.sk}\n")
        self.curl_cfg = secret("curl.conf", f'user = "{self.ak}:{self.sk}"\n')
        self.rclone_conf = secret("rclone.conf", "".join(
            f"[{name}]\ntype = s3\nprovider = Ceph\n"
            f"access_key_id = {self.ak}\nsecret_access_key = {self.sk}\n"
            f"endpoint = {url}\nregion = {REGION}\n"
            for name, url in (("bench", self.endpoint),
                              ("benchwan", self.wan.url if self.wan else self.endpoint))))
        self.plan_common = {"endpoint": self.endpoint, "bucket": BUCKET,
                            "access_key": self.ak, "secret_key": self.sk}
        self.hy_state = self.work / "hylake-state"
        self.hy_cache = self.work / "hylake-cache"
        self.hylake_conf = self.work / "hylake.conf"
        self.hylake_wan_conf = self.work / "hylake-wan.conf"
        for conf, url in ((self.hylake_conf, self.endpoint),
                          (self.hylake_wan_conf, self.wan.url if self.wan else None)):
            if url:
                conf.write_text(
                    f"[mount]\nstate_dir = {self.hy_state}\ncache_dir = {self.hy_cache}\n"
                    f"cache_size = {CACHE_SIZE}\nmemory_limit = {MEMORY_LIMIT // MiB}M\n"
                    f"{MOUNT_EXTRA}"
                    f"[source]\ntype = s3\nendpoint = {url}\nbucket = {BUCKET}\n"
                    f"region = {REGION}\ncredentials = {self.creds}\n")
        self.upload()

    def snapshot_hylake(self):
        """Run a copy of the binary: a rebuild during the run must not change it
        (nor make it briefly unreadable)."""
        src = self.hylake_src
        dst = self.work / "bin" / "hylake"
        dst.parent.mkdir(exist_ok=True)
        tmp = dst.with_name("hylake.tmp")
        err = None
        for _ in range(30):
            try:
                mtime = src.stat().st_mtime
                shutil.copyfile(src, tmp)
                tmp.chmod(0o755)
                run([str(tmp), "--version"], timeout=10)
                if src.stat().st_mtime == mtime:
                    tmp.rename(dst)
                    self.hylake = dst
                    self.hylake_built = time.strftime("%Y-%m-%d %H:%M:%S",
                                                      time.localtime(mtime))
                    return
            except (OSError, Failed) as e:
                err = e
            time.sleep(2)
        raise SystemExit(f"fast_reads: cannot copy a working {src}: {err}")

    def kill_leftovers(self):
        """Mounts and daemons left by a run of this script that was killed."""
        for kind in ("hylake", "s3fs", "rclone"):
            for wan in (False, True):
                mnt = mount_dir(self.work, kind, wan)
                if mounted(mnt):
                    log(f"unmounting leftover {mnt}")
                    subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30,
                                   stderr=subprocess.DEVNULL)
                    if mounted(mnt):
                        subprocess.run(["umount", "-l", str(mnt)], timeout=30,
                                       stderr=subprocess.DEVNULL)
                for pid in daemons_of(mnt, (kind,)):
                    stop_pid(pid, proc_starttime(pid), grace=2)

    def s3(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.ak,
                            aws_secret_access_key=self.sk, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"},
                                          max_pool_connections=32,
                                          retries={"max_attempts": 5, "mode": "standard"}))

    def keys(self):
        k = {"seq": f"seq/{self.seq_size}.bin",
             "par": [f"par/{self.par_size}/part-{i}.bin" for i in range(self.par_n)],
             "pq": [f"pq/{PQ_FILE_SIZE}/f-{i:05d}.parquet" for i in range(self.pq_n)],
             "ls": f"ls{self.ls_n}/"}
        k["ls_keys"] = [f"{k['ls']}e-{i:05d}" for i in range(self.ls_n)]
        return k

    def upload(self):
        from boto3.s3.transfer import TransferConfig
        s3 = self.s3()
        try:
            s3.create_bucket(Bucket=BUCKET)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        have = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for o in page.get("Contents", []):
                have[o["Key"]] = o["Size"]
        k = self.keys()
        rows = self.a.only
        big, many = [], []
        if rows & {1, 2, 7}:
            big.append((k["seq"], self.seq_size))
        if rows & {3, 6}:
            big += [(x, self.par_size) for x in k["par"]]
        if 4 in rows:
            many += [(x, PQ_FILE_SIZE) for x in k["pq"]]
        if 5 in rows:
            many += [(x, 16) for x in k["ls_keys"]]
        big = [(x, n) for x, n in big if have.get(x) != n]
        many = [(x, n) for x, n in many if have.get(x) != n]
        total = sum(n for _, n in big + many)
        if not total:
            log("objects already in the bucket")
            return
        log(f"uploading {len(big) + len(many)} objects, {total / GiB:.2f} GiB")
        t = time.monotonic()
        tc = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB,
                            max_concurrency=8)
        for key, n in big:
            s3.upload_fileobj(io.BytesIO(os.urandom(n)), BUCKET, key, Config=tc)

        def put(kv):
            s3.put_object(Bucket=BUCKET, Key=kv[0], Body=os.urandom(kv[1]))
        with ThreadPoolExecutor(max_workers=16) as ex:
            list(ex.map(put, many))
        dt = time.monotonic() - t
        log(f"uploaded in {dt:.1f}s ({total / MB / dt:.0f} MB/s)")
        self.settle()

    def settle(self, quiet=0.10, limit=60.0):
        """Wait until radosgw and ceph-osd use under `quiet` of a core over
        a second (at most `limit` seconds): the work an upload leaves behind
        would otherwise land on the first measurement, which is hylake's."""
        t = time.monotonic()
        prev = self.server_cpu()
        while time.monotonic() - t < limit:
            time.sleep(1.0)
            now = self.server_cpu()
            if now - prev < quiet:
                break
            prev = now
        log(f"server quiet after {time.monotonic() - t:.0f}s")

    # -- helpers ---------------------------------------------------------------

    def mount(self, kind, wan=False):
        if (kind, wan) not in self.mounts:
            self.mounts[(kind, wan)] = Mount(self, kind, wan)
        return self.mounts[(kind, wan)]

    def prep(self, kind, cold=True, wan=False):
        """Remount (for hylake: empty block cache and state when cold) and drop caches."""
        m = self.mount(kind, wan)
        m.umount()
        if kind == "hylake" and cold:
            for d in (self.hy_cache, self.hy_state):
                shutil.rmtree(d, ignore_errors=True)
        if kind == "hylake":
            self.hy_cache.mkdir(exist_ok=True)
            self.hy_state.mkdir(exist_ok=True)
        m.mount()
        drop_caches()
        return m

    def remaining(self):
        return self.deadline - time.monotonic()

    def op_timeout(self, nbytes=0, base=30.0):
        """Limit for one measurement: 30 s + the bytes at 20 MB/s, within the budget."""
        t = base + nbytes / (20 * MB)
        return max(1.0, min(t, self.remaining()))

    def req_mark(self):
        """Position in radosgw's log (one "beast:" line per request)."""
        return rgwlog.mark(self.rgw_log)

    def req_count(self, pos):
        """Requests radosgw logged since req_mark(): {"GET", "HEAD", "LIST", "other"}."""
        text = rgwlog.since(self.rgw_log, pos)
        if text is None:
            return None
        n = {"GET": 0, "HEAD": 0, "LIST": 0, "other": 0}
        for m in re.finditer(r'beast: \S+ .*?"([A-Z]+) (/[^ "?]*)(\?[^ "]*)? HTTP', text):
            meth, path = m.group(1), m.group(2)
            if meth == "GET" and path.strip("/") == BUCKET:
                n["LIST"] += 1
            elif meth in n:
                n[meth] += 1
            else:
                n["other"] += 1
        return n

    def server_cpu(self):
        return sum(proc_cpu(p) or 0 for p in self.server_pids)

    def readers(self, cmds, expect, timeout, daemon=None, rss=None, proxy=None):
        """Run reader processes at once; wall time, bytes, client and server CPU
        (and what passed through `proxy`, when given)."""
        pos = self.req_mark()
        pmark = proxy.mark() if proxy else None
        s0, c0 = self.server_cpu(), children_cpu()
        d0 = proc_cpu(daemon) if daemon else 0
        sampler = RssSampler(rss or []) if rss else None
        if sampler:
            sampler.start()
        t0 = time.monotonic()
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for c in cmds]
        outs = []
        try:
            for p in procs:
                left = t0 + timeout - time.monotonic()
                try:
                    outs.append(p.communicate(timeout=max(left, 0.1)))
                except subprocess.TimeoutExpired:
                    raise Timeout(f"timeout ({timeout:.0f}s)")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            peak = sampler.finish() if sampler else None
        t1 = time.monotonic()
        d1 = proc_cpu(daemon) if daemon else 0
        reader_cpu = children_cpu() - c0
        daemon_cpu = (d1 or d0) - d0 if daemon else 0
        res = {"seconds": t1 - t0, "server_cpu": self.server_cpu() - s0,
               "client_cpu": reader_cpu + daemon_cpu, "reader_cpu": reader_cpu,
               "daemon_cpu": daemon_cpu, "peak_kib": peak}
        got = 0
        for p, (out, err) in zip(procs, outs):
            if p.returncode != 0:
                lines = (err or out).strip().splitlines()
                raise Failed(f"{Path(p.args[0]).name} exited {p.returncode}: "
                             f"{lines[-1] if lines else ''}")
            if p.args[0] == "dd":
                m = re.search(r"^(\d+) bytes", err, re.M)
                got += int(m.group(1)) if m else 0
            else:
                got += int(float(out.strip() or 0))
        if got != expect:
            raise Failed(f"read {got} bytes, expected {expect}")
        res["bytes"] = got
        res["mbps"] = got / MB / res["seconds"]
        res["requests"] = self.req_count(pos)
        if proxy:
            res["wan"] = proxy.stats(pmark)
        return res

    def dd(self, path):
        return ["dd", f"if={path}", "of=/dev/null", "bs=1M"]

    def curl(self, key, endpoint=None):
        return ["curl", "-sS", "-f", "-K", str(self.curl_cfg), "--aws-sigv4",
                f"aws:amz:{REGION}:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "-o", "/dev/null", "-w", "%{size_download}",
                f"{endpoint or self.endpoint}/{BUCKET}/{key}"]

    def worker(self, args, timeout):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"] + args
        pos = self.req_mark()
        try:
            r = subprocess.run(cmd, timeout=timeout, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            raise Timeout(f"timeout ({timeout:.0f}s)")
        if r.returncode != 0:
            lines = r.stderr.strip().splitlines()
            raise Failed(f"worker {args[0]}: {lines[-1] if lines else r.returncode}")
        out = json.loads(r.stdout)
        out["requests"] = self.req_count(pos)
        return out

    def measure(self, row, system, run_no, fn):
        """Run one measurement unless its system has failed or the budget is spent."""
        key = (row, system)
        if key in self.errors:
            return
        if system in ("s3fs", "rclone") and not self.have[system]:
            self.errors[key] = f"n/a ({INSTALL_HINT})"
            return
        if self.remaining() < 5:
            self.errors[key] = "skipped (time budget)"
            return
        try:
            r = fn()
        except Timeout as e:
            self.errors[key] = str(e)
            log(f"row {row} {system} run {run_no}: {e}")
            return
        except (Failed, OSError, subprocess.SubprocessError) as e:
            self.errors[key] = f"failed: {e}"
            log(f"row {row} {system} run {run_no}: FAILED: {e}")
            return
        self.results.setdefault(key, []).append(r)
        fig = (f"{r['mbps']:.0f} MB/s" if "mbps" in r else f"{r['seconds']:.2f} s")
        extra = f", peak RSS {max(r['peak_kib'].values()) / 1024:.0f} MiB" \
            if r.get("peak_kib") else ""
        log(f"row {row} {system} run {run_no}/{self.a.runs}: {fig}{extra}")

    # -- rows ------------------------------------------------------------------

    def measure_all(self, row, i, fs, baseline, others=True):
        """One run of a row: hylake, the baseline, then s3fs and rclone."""
        self.measure(row, "hylake", i, fs("hylake"))
        if others:
            self.measure(row, "baseline", i, baseline)
            self.measure(row, "s3fs", i, fs("s3fs"))
            self.measure(row, "rclone", i, fs("rclone"))

    def read_seq(self, kind, cold=True, wan=False):
        """Remount and read the sequential object with dd."""
        m = self.prep(kind, cold, wan)
        n = self.seq_size
        return self.readers([self.dd(m.mnt / self.keys()["seq"])], n, self.op_timeout(n),
                            m.pid, proxy=self.wan if wan else None)

    def fill_twice(self):
        """Read the sequential object twice in one mount: hylake stores a block
        when it is read the second time (cache_first_read = no), so data read
        twice is what the warm row reads."""
        m = self.prep("hylake")
        n = self.seq_size
        for _ in range(2):
            drop_caches()
            r = self.readers([self.dd(m.mnt / self.keys()["seq"])], n, self.op_timeout(n),
                             m.pid)
        return r

    def row1(self, i):
        key = self.keys()["seq"]
        n = self.seq_size

        def curl():
            drop_caches()
            return self.readers([self.curl(key)], n, self.op_timeout(n))
        self.measure_all(1, i, lambda kind: lambda: self.read_seq(kind), curl)
        if i == self.a.runs and self.a.perf and self.a.perf_row == 1:
            self.profile(1)

    def row2(self, i):
        n = self.seq_size
        local = self.work / "local.bin"
        if i == 1:
            log(f"row 2: writing the local file {local} and filling hylake's cache "
                "(the object read twice)")
            with open(local, "wb") as f:
                for off in range(0, n, 64 * MiB):
                    f.write(os.urandom(min(64 * MiB, n - off)))
                f.flush()
                os.fsync(f.fileno())
            self.measure(2, "hylake-fill", 0, self.fill_twice)
            if (2, "hylake-fill") in self.errors:
                self.errors[(2, "hylake")] = self.errors[(2, "hylake-fill")]

        def disk():
            drop_caches()
            return self.readers([self.dd(local)], n, self.op_timeout(n))
        self.measure(2, "hylake", i, lambda: self.read_seq("hylake", cold=False))
        self.measure(2, "baseline", i, disk)
        if i == self.a.runs and self.a.perf and self.a.perf_row == 2:
            self.profile(2)

    def profile(self, row):
        """One more read of row 1, 2 or 3 (not counted) with `perf record -g`
        attached to the hylake daemon; the report's top entries go to the log."""
        m = self.prep("hylake", cold=row != 2)
        keys = self.keys()["par"] if row == 3 else [self.keys()["seq"]]
        n = self.par_size * self.par_n if row == 3 else self.seq_size
        out = Path(self.a.perf).absolute()
        perf = subprocess.Popen(["perf", "record", "-g", "-o", str(out), "-p", str(m.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        try:
            r = self.readers([self.dd(m.mnt / k) for k in keys], n, self.op_timeout(n),
                             m.pid)
            log(f"row {row} hylake under perf: {r['mbps']:.0f} MB/s")
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        rep = run(["perf", "report", "-i", str(out), "--no-children", "--sort",
                   "symbol", "--stdio", "-g", "none", "--percent-limit", "1"],
                  timeout=300, check=False)
        log("perf top entries (self time):\n" + "\n".join(
            ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")))

    def row3(self, i):
        keys = self.keys()["par"]
        n = self.par_size * self.par_n
        full = 3 in self.a.only   # --only 6: hylake's runs alone

        def fs(kind):
            def go():
                m = self.prep(kind)
                return self.readers([self.dd(m.mnt / k) for k in keys], n,
                                    self.op_timeout(n), m.pid, rss=[m.pid])
            return go

        def curl():
            drop_caches()
            return self.readers([self.curl(k) for k in keys], n, self.op_timeout(n))
        self.measure_all(3, i, fs, curl, others=full)
        if i == self.a.runs and self.a.perf and self.a.perf_row == 3:
            self.profile(3)

    def pq_plan(self):
        rng = random.Random(PQ_SEED)
        files = [{"key": k, "size": PQ_FILE_SIZE,
                  "offsets": [rng.randrange(0, PQ_FILE_SIZE - PQ_RANGE + 1) for _ in range(3)]}
                 for k in self.keys()["pq"]]
        p = self.work / "pq-plan.json"
        p.write_text(json.dumps(dict(self.plan_common, files=files, tail=PQ_TAIL,
                                     range=PQ_RANGE)))
        p.chmod(0o600)
        return p, self.pq_n * (PQ_TAIL + 3 * PQ_RANGE)

    def row4(self, i):
        plan, nbytes = self.pq_plan()

        def fs(kind):
            def go():
                m = self.prep(kind)
                r = self.worker(["pq-fs", str(plan), str(m.mnt)], self.op_timeout(nbytes))
                if r["bytes"] != nbytes:
                    raise Failed(f"read {r['bytes']} bytes, expected {nbytes}")
                return r
            return go

        def http():
            drop_caches()
            r = self.worker(["pq-http", str(plan)], self.op_timeout(nbytes))
            if r["bytes"] != nbytes:
                raise Failed(f"read {r['bytes']} bytes, expected {nbytes}")
            return r
        self.measure_all(4, i, fs, http)

    def ls_l(self, d):
        """Seconds `ls -l d > /dev/null` takes; checks the entry count."""
        t = time.monotonic()
        try:
            r = subprocess.run(["ls", "-l", str(d)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               timeout=self.op_timeout(base=120))
        except subprocess.TimeoutExpired:
            raise Timeout(f"timeout ({self.op_timeout(base=120):.0f}s)")
        dt = time.monotonic() - t
        if r.returncode != 0:
            raise Failed(f"ls exited {r.returncode}: {r.stderr.strip()[-200:]}")
        got = len(os.listdir(d))
        if got != self.ls_n:
            raise Failed(f"listed {got} entries, expected {self.ls_n}")
        return dt

    def local_ls_dir(self):
        """A local folder with the listing's names and sizes (16 bytes), made once."""
        d = self.work / f"local-ls{self.ls_n}"
        if d.is_dir() and len(os.listdir(d)) == self.ls_n:
            return d
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        for k in self.keys()["ls_keys"]:
            (d / k.rsplit("/", 1)[1]).write_bytes(os.urandom(16))
        os.sync()
        return d

    def row5(self, i):
        folder = self.keys()["ls"]
        local = self.local_ls_dir()

        def fs(kind):
            def go():
                m = self.prep(kind)
                pos = self.req_mark()
                dt = self.ls_l(m.mnt / folder)
                return {"seconds": dt, "requests": self.req_count(pos)}
            return go

        def raw_and_local():
            p = self.work / "list-plan.json"
            p.write_text(json.dumps(dict(self.plan_common, prefix=folder)))
            p.chmod(0o600)
            r = self.worker(["list-http", str(p)], self.op_timeout(base=60))
            if r["keys"] != self.ls_n:
                raise Failed(f"listed {r['keys']} keys, expected {self.ls_n}")
            drop_caches()
            r["list_s"], r["local_s"] = r["seconds"], self.ls_l(local)
            r["seconds"] = r["list_s"] + r["local_s"]
            return r
        self.measure_all(5, i, fs, raw_and_local)

    def row7(self, i):
        key = self.keys()["seq"]
        n = self.seq_size

        def curl(proxy):
            def go():
                drop_caches()
                return self.readers([self.curl(key, proxy.url if proxy else None)], n,
                                    self.op_timeout(n), proxy=proxy)
            return go

        def fs(kind):
            return lambda: self.read_seq(kind, wan=True)
        self.measure_all(7, i, fs, curl(self.wan))
        # is the proxy itself a limit? curl straight to radosgw, and through
        # the same proxy code with no delay
        self.measure(7, "curl-direct", i, curl(None))
        self.measure(7, "curl-proxy0", i, curl(self.wan0))

    def run_rows(self):
        rows = self.a.only
        for row, fn in ((1, self.row1), (2, self.row2), (3, self.row3), (4, self.row4),
                        (5, self.row5), (7, self.row7)):
            if row in rows or (row == 3 and 6 in rows):
                for i in range(1, self.a.runs + 1):
                    fn(i)
                for m in self.mounts.values():
                    m.umount()

    # -- report ----------------------------------------------------------------

    def med(self, row, system, field):
        rs = [r[field] for r in self.results.get((row, system), []) if r.get(field) is not None]
        return statistics.median(rs) if rs else None, len(rs)

    def cell(self, row, system, field, fmt, base=None, ratio=False):
        v, n = self.med(row, system, field)
        if v is None:
            return self.error_cell(row, system), None
        s = fmt.format(v)
        if n < self.a.runs:
            why = (", " + self.error_cell(row, system)) if (row, system) in self.errors else ""
            s += f" [{n}/{self.a.runs} runs{why}]"
        if ratio and base:
            s += f" ({v / base:.2f}x)"
        return s, v

    def error_cell(self, row, system):
        """Why a cell is empty; long reasons go to a numbered note under the table."""
        e = self.errors.get((row, system), "n/a")
        if not e.startswith("failed"):
            return e
        self.notes.append(f"[{len(self.notes) + 1}] row {row} {system}: {e}")
        return f"failed [{len(self.notes)}]"

    def report(self):
        a = self.a
        rows = a.only
        print()
        print("hylake fast-reads bench")
        print(f"command: {' '.join(shlex.quote(x) for x in sys.argv)}")
        cpu = ""
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
        print(f"machine: nproc {os.cpu_count()}, {cpu}, {mem:.0f} GiB RAM, "
              f"kernel {platform.release()}, {platform.machine()}")
        print(f"versions: {self.versions()}")
        print(f"hylake binary: {self.hylake_src} (built {self.hylake_built}, "
              "copied at the start)")
        print(f"sizes: seq {self.seq_size // MiB} MiB; parallel {self.par_n} x "
              f"{self.par_size // MiB} MiB; parquet-like {self.pq_n} files x "
              f"{PQ_FILE_SIZE // MiB} MiB; listing {self.ls_n} entries; "
              f"median of {a.runs} runs")
        extra = "; ".join(MOUNT_EXTRA.split("\n")[:-1])
        print(f"hylake: memory_limit {MEMORY_LIMIT // MiB}M, cache_size {CACHE_SIZE}, "
              + (f"{extra}, " if extra else "") +
              f"other settings default; s3fs -o {S3FS_OPTS} (rest default); rclone "
              f"{' '.join(RCLONE_OPTS)} (rest default)")
        print("ratio = hylake / baseline in the row's unit (MB/s: higher is better; "
              "s: lower is better); s3fs/rclone show (their own ratio)")
        print()
        w = (34, 16, 28, 8, 24, 24)
        head = ("row", "hylake", "baseline", "ratio", "s3fs", "rclone")
        print("".join(h.ljust(x) for h, x in zip(head, w)).rstrip())
        table = []
        spec = [
            (1, "cold seq read (MB/s)", "mbps", "curl GET", "{:.0f}"),
            (2, "warm seq read (MB/s)", "mbps", "local disk", "{:.0f}"),
            (3, f"{self.par_n} parallel cold (MB/s)", "mbps", f"{self.par_n} curl GETs", "{:.0f}"),
            (4, f"parquet-like {self.pq_n} files (s)", "seconds", "ranged GETs", "{:.2f}"),
            (5, f"ls -l {self.ls_n} entries (s)", "seconds", "LIST+local ls", "{:.2f}"),
            (7, f"cold seq, {WAN_RTT_MS} ms RTT (MB/s)", "mbps", "curl via proxy", "{:.0f}"),
        ]
        for row, name, field, bname, fmt in spec:
            if row not in rows:
                continue
            base_s, base = self.cell(row, "baseline", field, fmt)
            hy_s, hy = self.cell(row, "hylake", field, fmt)
            ratio = f"{hy / base:.2f}x" if hy and base else "-"
            if row == 2:
                s3, rc = "-", "-"
            else:
                s3, _ = self.cell(row, "s3fs", field, fmt, base, True)
                rc, _ = self.cell(row, "rclone", field, fmt, base, True)
            table.append((f"{row}. {name}", hy_s, f"{bname} {base_s}", ratio, s3, rc))
        if 6 in rows:
            peaks = {}
            for sysname in ("hylake", "s3fs", "rclone"):
                vals = [max(r["peak_kib"].values()) / 1024
                        for r in self.results.get((3, sysname), []) if r.get("peak_kib")]
                peaks[sysname] = statistics.median(vals) if vals else None
            hy = peaks["hylake"]
            lim = MEMORY_LIMIT / MiB

            def pk(s):
                if s == "hylake" and hy is None:
                    return self.error_cell(3, "hylake")
                if s != "hylake" and 3 not in rows:
                    return "-"
                return f"{peaks[s]:.0f}" if peaks[s] is not None else \
                    self.error_cell(3, s)
            table.append(("6. peak RSS during row 3 (MiB)", pk("hylake"),
                          f"memory_limit {lim:.0f}", f"{hy / lim:.2f}x" if hy else "-",
                          pk("s3fs"), pk("rclone")))
        for t in table:
            print("".join(str(c).ljust(x - 1) + " " for c, x in zip(t, w)).rstrip())
        for n in self.notes:
            print(n)
        if 4 in rows:
            self.report_row4()
        if 5 in rows:
            self.report_row5()
        if 7 in rows:
            self.report_row7()
        cpu_rows = [r for r in (1, 2, 3, 7) if r in rows]
        if cpu_rows:
            print()
            print("CPU per run (median; % of one core over the run's wall time, "
                  "2 cores = 200%): client = reader processes + the FUSE daemon; "
                  "server = radosgw + ceph-osd")
            print(f"{'row':6}{'system':10}{'MB/s':>8}{'wall s':>9}{'client cpu':>18}"
                  f"{'server cpu':>18}{'readers':>10}{'daemon':>10}{'client/GiB':>12}")
            for row in cpu_rows:
                for s in ("hylake", "baseline", "s3fs", "rclone"):
                    rs = self.results.get((row, s))
                    if not rs:
                        continue
                    name = {"baseline": "local" if row == 2 else "curl"}.get(s, s)
                    wall = statistics.median(r["seconds"] for r in rs)
                    mbps = statistics.median(r["mbps"] for r in rs)
                    cc = statistics.median(r["client_cpu"] for r in rs)
                    sc = statistics.median(r["server_cpu"] for r in rs)
                    dc = statistics.median(r["daemon_cpu"] for r in rs)
                    gib = statistics.median(r["bytes"] for r in rs) / GiB
                    print(f"{row:<6}{name:10}{mbps:8.0f}{wall:9.2f}"
                          f"{f'{cc:.2f} s ({100 * cc / wall:.0f}%)':>18}"
                          f"{f'{sc:.2f} s ({100 * sc / wall:.0f}%)':>18}"
                          f"{cc - dc:10.2f}{dc:10.2f}{cc / gib:12.2f}")
        req = [(row, s, [r["requests"] for r in self.results.get((row, s), [])
                         if r.get("requests")])
               for row in sorted(rows - {6}) for s in ("hylake", "baseline", "s3fs", "rclone")]
        req = [x for x in req if x[2]]
        if req:
            print()
            print("requests radosgw logged during the timed part of a run (median)")
            print(f"{'row':6}{'system':10}{'GET':>8}{'HEAD':>8}{'LIST':>8}{'other':>8}"
                  f"{'KiB/GET':>10}")
            for row, s, rs in req:
                name = {"baseline": ("curl", "local", "curl", "http", "http", "-",
                                     "curl")[row - 1]}.get(s, s)
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                b = [r.get("bytes") for r in self.results[(row, s)] if r.get("bytes")]
                per = (f"{statistics.median(b) / med['GET'] / KiB:10.0f}"
                       if b and med["GET"] else f"{'-':>10}")
                print(f"{row:<6}{name:10}{med['GET']:8.0f}{med['HEAD']:8.0f}"
                      f"{med['LIST']:8.0f}{med['other']:8.0f}{per}")
        print(f"total time {time.monotonic() - T_START:.0f}s")
        sys.stdout.flush()

    def report_row4(self):
        """Where a file's time goes: each step's milliseconds per file (median of runs)."""
        names = ("open", "fstat", "tail", "ranges", "close")
        lines = []
        for sysname in ("hylake", "baseline", "s3fs", "rclone"):
            rs = [r for r in self.results.get((4, sysname), []) if r.get("steps")]
            if not rs:
                continue
            cells = []
            for k in names:
                v = [r["steps"][k] for r in rs if k in r["steps"]]
                cells.append(f"{1e3 * statistics.median(v) / self.pq_n:8.2f}" if v
                             else f"{'-':>8}")
            label = "http" if sysname == "baseline" else sysname
            lines.append(f"{label:10}" + "".join(cells))
        if lines:
            print("row 4 per file (ms, median of runs):  "
                  + "".join(f"{k:>8}" for k in names))
            for line in lines:
                print(" " * 26 + line)

    def report_row5(self):
        parts = [self.med(5, "baseline", f)[0] for f in ("list_s", "local_s")]
        if None not in parts:
            print(f"row 5 baseline, each run's sum of: raw LIST pages {parts[0]:.2f} s + "
                  f"`ls -l` of a local folder of the same names {parts[1]:.2f} s (medians)")

    def report_row7(self):
        """The proxy check, and what passed through the WAN proxy."""
        d, _ = self.med(7, "curl-direct", "mbps")
        z, _ = self.med(7, "curl-proxy0", "mbps")
        if d and z:
            zc = statistics.median(r["wan"]["cpu"] for r in self.results[(7, "curl-proxy0")])
            print(f"row 7 proxy check: curl straight to radosgw {d:.0f} MB/s, through the "
                  f"proxy with 0 ms {z:.0f} MB/s ({z / d:.2f}x; the proxy's CPU "
                  f"{zc / (self.seq_size / GiB):.2f} s per GiB)")
        else:
            print("row 7 proxy check: " + ", ".join(
                f"{s} {self.error_cell(7, s)}" for s in ("curl-direct", "curl-proxy0")))
        print()
        print(f"row 7 through the proxy ({WAN_RTT_MS} ms round trip; median of runs): object "
              "GETs, median KiB a GET asks for (Range; whole object without one), new "
              "connections, connections streaming at once (mean/max of 20 ms samples), "
              "the proxy's CPU")
        print(f"{'system':10}{'MB/s':>8}{'GETs':>8}{'KiB/GET':>10}{'conns':>7}"
              f"{'streams':>13}{'proxy cpu':>11}")
        for sysname in ("hylake", "baseline", "s3fs", "rclone"):
            rs = [r for r in self.results.get((7, sysname), []) if r.get("wan")]
            if not rs:
                continue
            w = [r["wan"] for r in rs]

            def m(k):
                vals = [x[k] for x in w if x[k] is not None]
                return statistics.median(vals) if vals else None
            kib = m("range_kib")
            if kib is None and m("gets"):
                kib = self.seq_size / KiB / m("gets")
            name = "curl" if sysname == "baseline" else sysname
            streams = f"{m('streams'):.1f}/{m('streams_max'):.0f}"
            print(f"{name:10}{statistics.median(r['mbps'] for r in rs):8.0f}{m('gets'):8.0f}"
                  f"{kib or 0:10.0f}{m('conns'):7.0f}{streams:>13}{m('cpu'):10.2f}s")

    def versions(self):
        def v(cmd, pat=None):
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=10)
                out = r.stdout.strip().splitlines()
                return out[0] if out else "?"
            except (OSError, subprocess.SubprocessError):
                return "not installed"
        vs = [v([str(self.hylake_src), "--version"]),  # the copy is gone by now
              v(["radosgw", "--version"]).split("(")[0],
              v(["curl", "--version"]).split("(")[0]]
        vs.append(v(["s3fs", "--version"]) if self.have["s3fs"] else "s3fs not installed")
        vs.append(v(["rclone", "--version"]) if self.have["rclone"] else "rclone not installed")
        return "; ".join(x.strip() for x in vs)

    # -- cleanup ---------------------------------------------------------------

    def cleanup(self):
        if getattr(self, "_cleaned", False):
            return
        self._cleaned = True
        for m in list(self.mounts.values()):
            try:
                m.umount()
            except Exception as e:  # noqa: BLE001 - keep cleaning
                log(f"unmount {m.mnt}: {e}")
        for pid, start in list(self.daemons):
            stop_pid(pid, start, grace=2)
        self.kill_leftovers()
        for p in (self.wan, self.wan0):
            if p:
                p.stop()
        if self.rgw_started:
            log("stopping radosgw")
            subprocess.run(["bash", str(RGW_SH), "stop", str(self.rgw_dir)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            self.rgw_started = False
        if not self.a.keep:
            for name in ("hylake-cache", "hylake-state", "rgw", "bin"):
                shutil.rmtree(self.work / name, ignore_errors=True)
            shutil.rmtree(self.work / f"local-ls{self.ls_n}", ignore_errors=True)
            for name in ("local.bin", "credentials", "curl.conf", "s3fs.passwd",
                         "rclone.conf", "hylake.conf", "hylake-wan.conf", "pq-plan.json",
                         "list-plan.json"):
                (self.work / name).unlink(missing_ok=True)
            for rtt in (WAN_RTT_MS, 0):
                for ext in ("log", "err"):
                    (self.work / f"proxy-{rtt}ms.{ext}").unlink(missing_ok=True)
            for kind in ("hylake", "s3fs", "rclone"):
                for wan in (False, True):
                    mnt = mount_dir(self.work, kind, wan)
                    if mnt.is_dir() and not mounted(mnt):
                        try:
                            mnt.rmdir()
                        except OSError:
                            pass


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median) [3]")
    ap.add_argument("--small", action="store_true",
                    help="quick smoke run: 64 MiB, 8 x 16 MiB, 50 files, 1000 entries")
    ap.add_argument("--only", type=parse_rows, default=set(range(1, 8)),
                    help="rows to run, e.g. 1,3-5 (6 needs row 3's hylake runs) [1-7]")
    ap.add_argument("--hylake-bin", default=os.environ.get("HYLAKE_BIN",
                                                           str(ROOT / "build" / "hylake")))
    ap.add_argument("--workdir", default="/var/tmp/hylake-bench",
                    help="scratch folder; hylake's cache_dir and the local file live "
                    "there [/var/tmp/hylake-bench]")
    ap.add_argument("--budget", type=float, default=1080,
                    help="seconds after which measurements still to run are skipped [1080]")
    ap.add_argument("--keep", action="store_true", help="keep the scratch files")
    ap.add_argument("--perf", metavar="FILE",
                    help="after the timed runs of the row --perf-row names, profile one "
                    "more hylake read of it (cold for 1 and 3, warm for 2) with "
                    "`perf record -g` attached to the daemon, into FILE")
    ap.add_argument("--perf-row", type=int, choices=(1, 2, 3), default=2,
                    help="the row --perf profiles [2]")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    if os.geteuid() != 0:
        print("fast_reads: run as root (FUSE mounts, drop_caches)", file=sys.stderr)
        return 1
    if not os.access(a.hylake_bin, os.X_OK):
        print(f"fast_reads: no hylake binary at {a.hylake_bin} (build it, or --hylake-bin)",
              file=sys.stderr)
        return 1
    for t in ("curl", "dd", "fusermount3", "radosgw"):
        if not shutil.which(t):
            print(f"fast_reads: {t} not found (packaging/install-deps.sh)", file=sys.stderr)
            return 1
    b = Bench(a)

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    import atexit
    atexit.register(b.cleanup)
    try:
        b.setup()
        b.run_rows()
        b.cleanup()
        b.report()
    except KeyboardInterrupt:
        log("interrupted")
        b.cleanup()
        return 130
    finally:
        b.cleanup()
    hy = [k for k in b.results if k[1] == "hylake"]
    if not hy:
        print("fast_reads: no hylake measurement succeeded", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
