"""Helpers for the hylake integration tests: radosgw, S3, workspaces, mounts."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

REPO = Path(__file__).resolve().parents[2]
DUCKDB = REPO / "tests" / "bench" / "duckdb"   # DuckDB's Node API from npm
HYLAKE_BIN = Path(os.environ.get("HYLAKE_BIN") or (REPO / "build" / "hylake")).absolute()
RGW_SH = REPO / "tests" / "ceph" / "rgw.sh"
GCS_DIR = REPO / "tests" / "gcs"
PUBSUB_DIR = REPO / "tests" / "pubsub"
for _d in (GCS_DIR, PUBSUB_DIR):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))
PYTHON = sys.executable
MiB = 1024 * 1024


# --------------------------------------------------------------------------- misc


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, bufsize=4 * MiB) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                return h.hexdigest()
            h.update(b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def no_test_timeout():
    """Suspend pytest-timeout's SIGALRM timer (signal method) for slow session setup."""
    try:
        old = signal.setitimer(signal.ITIMER_REAL, 0)
    except (AttributeError, ValueError):  # not in the main thread
        old = (0, 0)
    try:
        yield
    finally:
        if old[0] > 0:
            # give the test back what it had left (at least a little)
            signal.setitimer(signal.ITIMER_REAL, max(old[0], 1.0))


def read_env_file(path) -> dict:
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        k, sep, v = line.partition("=")
        if not sep:
            continue
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        env[k.strip()] = v
    return env


# --------------------------------------------------------------------------- radosgw / S3


@dataclasses.dataclass(frozen=True)
class RGW:
    endpoint: str
    access_key: str
    secret_key: str
    owned: bool = False  # started by this test session


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError as e:
            last = e
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


def s3_client(rgw: RGW, access_key=None, secret_key=None, endpoint=None):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint or rgw.endpoint,
        aws_access_key_id=access_key or rgw.access_key,
        aws_secret_access_key=secret_key or rgw.secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=64,
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def put_many(s3, bucket: str, items: dict, threads: int = 32) -> None:
    """Upload {key: bytes} in parallel."""

    def one(kv):
        k, v = kv
        s3.put_object(Bucket=bucket, Key=k, Body=v)

    with ThreadPoolExecutor(max_workers=threads) as ex:
        for _ in ex.map(one, items.items()):
            pass


def list_all(s3, bucket: str, prefix: str = "") -> dict:
    """{key: object summary} for every key under prefix."""
    out = {}
    token = None
    while True:
        kw = dict(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            out[o["Key"]] = o
        if not r.get("IsTruncated"):
            return out
        token = r["NextContinuationToken"]


def empty_and_delete_bucket(s3, bucket: str) -> None:
    try:
        keys = list(list_all(s3, bucket))
    except Exception:
        return
    for i in range(0, len(keys), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True},
        )
    with contextlib.suppress(Exception):
        s3.delete_bucket(Bucket=bucket)


def make_bucket(s3, hint: str) -> str:
    name = unique("hyt-" + re.sub(r"[^a-z0-9-]", "-", hint.lower())[:40].strip("-"))
    s3.create_bucket(Bucket=name)
    return name


def drop_bucket(s3, rgw, name: str):
    if not rgw.owned:  # a scratch radosgw is thrown away whole
        empty_and_delete_bucket(s3, name)


LIST10K_COUNT = 10_000
LIST10K_DIR = "big/"


def list10k_keys():
    """Keys of the session's 10,000-object folder (conftest.bucket_10k)."""
    return [f"{LIST10K_DIR}f{i:05d}" for i in range(LIST10K_COUNT)]


def start_rgw(workdir: Path) -> RGW:
    """Run tests/ceph/rgw.sh start WORKDIR and read WORKDIR/env."""
    if not RGW_SH.exists():
        raise FileNotFoundError(str(RGW_SH))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / (workdir.name + ".start.log")
    with open(log, "wb") as f:
        # free ports, so that a radosgw someone else runs on the defaults is no obstacle
        env = dict(os.environ, RGW_PORT=str(free_port()), MON_PORT=str(free_port()),
                   RGW_B_PORT=str(free_port()))
        r = subprocess.run(["bash", str(RGW_SH), "start", str(workdir)], stdout=f,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=900,
                           env=env)
    if r.returncode != 0:
        tail = log.read_bytes()[-3000:].decode(errors="replace")
        raise RuntimeError(f"rgw.sh start failed (exit {r.returncode}); log {log}:\n{tail}")
    env = read_env_file(workdir / "env")
    return RGW(env["RGW_ENDPOINT"], env["RGW_ACCESS_KEY"], env["RGW_SECRET_KEY"], owned=True)


def stop_rgw(workdir: Path) -> None:
    log = workdir.parent / (workdir.name + ".stop.log")
    with open(log, "wb") as f:
        subprocess.run(["bash", str(RGW_SH), "stop", str(workdir)], stdout=f,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)


# --------------------------------------------------------------------------- radosgw site b


@dataclasses.dataclass(frozen=True)
class RGWSite(RGW):
    """Site b of the test cluster (tests/ceph/rgw.sh): a second radosgw on the same
    Ceph cluster with its own realm/zonegroup/zone, so its own users and buckets
    (site a's credentials get 403 InvalidAccessKeyId there, site a's buckets do not
    exist there).  stop()/kill()/start() restart only this radosgw; its data live
    in the OSD and survive.  Usable wherever an RGW is (s3_client, Workspace)."""

    workdir: Optional[Path] = None  # rgw.sh's DIR (RGW_DIR in the env file)
    site: str = "b"

    def _rgw_sh(self, cmd: str, timeout: float) -> str:
        if self.workdir is None:
            raise RuntimeError(f"rgw.sh {cmd}: the env file names no RGW_DIR")
        r = subprocess.run(["bash", str(RGW_SH), cmd, str(self.workdir), self.site],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            raise RuntimeError(f"rgw.sh {cmd} {self.workdir} {self.site} failed "
                               f"(exit {r.returncode}):\n{out[-3000:]}")
        return out

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s); returns once the radosgw is gone."""
        self._rgw_sh("stop-site", 60)

    def kill(self) -> None:
        """SIGKILL at once; returns once the radosgw is gone."""
        self._rgw_sh("kill-site", 60)

    def start(self) -> None:
        """Start the radosgw again; returns once it answers HTTP."""
        self._rgw_sh("start-site", 180)

    def running(self) -> bool:
        """The radosgw runs and answers HTTP."""
        if self.workdir is None:
            raise RuntimeError("rgw.sh status-site: the env file names no RGW_DIR")
        return _run_quiet(["bash", str(RGW_SH), "status-site", str(self.workdir), self.site]) == 0


def rgw_site_b(env: dict, owned: bool = False) -> Optional[RGWSite]:
    """Site b from an rgw.sh env file's keys (RGW_B_*, RGW_DIR); None without them."""
    if not env.get("RGW_B_ENDPOINT"):
        return None
    workdir = Path(env["RGW_DIR"]) if env.get("RGW_DIR") else None
    return RGWSite(env["RGW_B_ENDPOINT"].rstrip("/"), env["RGW_B_ACCESS_KEY"],
                   env["RGW_B_SECRET_KEY"], owned=owned, workdir=workdir, site="b")


# --------------------------------------------------------------------------- GCS


GCS_SA_EMAIL = "hylake-it@hylake-test.iam.gserviceaccount.com"
GCS_SCOPE_RO = "https://www.googleapis.com/auth/devstorage.read_only"
# the server settings every test starts from (conftest's `gcs` fixture restores them)
GCS_DEFAULTS = dict(delay_ms=0, paging={}, token_lifetime=3600, require_auth=True,
                    public_read=False, metadata_enabled=True, chunked="transcode",
                    audiences=[], delay_only=[])


@dataclasses.dataclass
class GCS:
    """The session's GCS test server (tests/gcs/gcs_server.py, auth required) and
    the service account it trusts."""

    proc: object  # gcs_client.ServerProcess
    client: object  # gcs_client.GcsClient (read-write tokens from the metadata endpoint)
    email: str
    kid: str
    key: Path  # the service account's private key (PKCS#8 PEM)
    other_key: Path  # an RSA key the server does not know

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def token_uri(self) -> str:
        return self.proc.url + "/token"

    @property
    def control(self):
        return self.client.control

    def make_bucket(self, hint: str) -> str:
        name = unique("hyt-" + re.sub(r"[^a-z0-9-]", "-", hint.lower())[:40].strip("-"))
        self.client.create_bucket(name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Free the server's memory: delete every object, then the bucket."""
        with contextlib.suppress(Exception):
            items = self.client.list_all(name)
            with ThreadPoolExecutor(max_workers=16) as ex:
                list(ex.map(lambda n: self.client.delete(name, n), items))
            self.client.request("DELETE", f"/storage/v1/b/{name}", ok=(204,))

    def requests(self, since: int = 0, kind=None, bucket=None) -> list[dict]:
        """The server's request log after mark `since` (see Control.log_mark)."""
        out = self.control.log(since)
        if kind is not None:
            kinds = {kind} if isinstance(kind, str) else set(kind)
            out = [e for e in out if e["kind"] in kinds or any(
                k.endswith(".") and e["kind"].startswith(k) for k in kinds)]
        if bucket is not None:
            out = [e for e in out if e["bucket"] == bucket]
        return out


def start_gcs(workdir: Path, pubsub_url: Optional[str] = None) -> GCS:
    """A key pair (openssl genrsa), the server with auth required trusting its
    public key, and a setup client.  With pubsub_url, buckets' notification
    configs publish to that Pub/Sub test server."""
    from gcs_client import GcsClient, ServerProcess, openssl_genrsa, openssl_pubkey

    workdir.mkdir(parents=True, exist_ok=True)
    key = openssl_genrsa(workdir / "sa.pem")
    pub = openssl_pubkey(key, workdir / "sa.pub.pem")
    other = openssl_genrsa(workdir / "other.pem")
    kid = secrets.token_hex(20)
    proc = ServerProcess(workdir, require_auth=True, pubsub_url=pubsub_url,
                         public_keys=[(GCS_SA_EMAIL, kid, pub)]).start()
    return GCS(proc, GcsClient(proc.url), GCS_SA_EMAIL, kid, key, other)


# --------------------------------------------------------------------------- running hylake


@dataclasses.dataclass
class Result:
    args: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self):
        return (f"$ {' '.join(map(str, self.args))}\n-> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


def run_hylake(*args, timeout: float = 60, env=None) -> Result:
    """Run the binary with stdout/stderr captured through files (a daemon that
    inherits them can never block us)."""
    argv = [str(HYLAKE_BIN), *map(str, args)]
    with open_tmp() as out, open_tmp() as err:
        r = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=env)
        out.seek(0)
        err.seek(0)
        return Result(argv, r.returncode, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"))


def open_tmp():
    return tempfile.TemporaryFile()


# --------------------------------------------------------------------------- mounts / processes


def _unescape_mount(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mountpoints() -> list[tuple[str, str]]:
    """[(mountpoint, fstype)] from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "surrogateescape")
            left, _, right = line.partition(" - ")
            fields = left.split()
            out.append((_unescape_mount(fields[4]), right.split()[0] if right else ""))
    return out


def is_mounted(path) -> bool:
    p = os.path.realpath(str(path))
    return any(mp == p for mp, _ in mountpoints())


def metric(m, name) -> float:
    """A metric without labels of mount m, from its user.hylake.metrics."""
    text = os.getxattr(m.path, "user.hylake.metrics").decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the mount's metrics")


def processes_for(path, binary: Path = HYLAKE_BIN) -> list[int]:
    """PIDs of live (non-zombie) hylake processes whose command line names `path`
    (what `pgrep -f <path>` would find, restricted to the hylake binary)."""
    targets = {str(path), os.path.realpath(str(path))}
    binreal = os.path.realpath(str(binary))
    me = os.getpid()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0") if a]
            if not argv:
                continue  # kernel thread or zombie
            with open(f"/proc/{d}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            if not any(a.rstrip("/") in targets for a in argv):
                continue
            try:
                exe = os.readlink(f"/proc/{d}/exe")
            except OSError:
                exe = ""
            if exe.removesuffix(" (deleted)") == binreal or os.path.basename(argv[0]).startswith(
                    ("hylake", "mount.hylake")):
                pids.append(int(d))
        except (OSError, IndexError):
            continue
    return pids


def wait_until(pred, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _run_quiet(argv, timeout=30) -> int:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1


class MountFailed(AssertionError):
    pass


class Mount:
    def __init__(self, path: Path, config: Path, argv: list, foreground: bool,
                 out: Path, err: Path):
        self.path = path
        self.config = config
        self.argv = argv
        self.foreground = foreground
        self.out = out
        self.err = err
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self.pids_at_start: list[int] = []
        self.unmounted = False

    def __fspath__(self):
        return str(self.path)

    def __truediv__(self, other):
        return self.path / other

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def pids(self) -> list[int]:
        pids = set(processes_for(self.path))
        if self.proc is not None and self.proc.poll() is None:
            pids.add(self.proc.pid)
        return sorted(pids)

    def mounted(self) -> bool:
        return is_mounted(self.path)

    def unmount(self, method: str = "fusermount3", timeout: float = 20) -> None:
        """Unmount cleanly and assert the daemon is gone."""
        argv = ["fusermount3", "-u", str(self.path)] if method == "fusermount3" else [
            "umount", str(self.path)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(argv)} failed: {r.stderr.strip()}"
        assert not self.mounted(), f"{self.path} still mounted after {method}"
        self.unmounted = True
        gone = wait_until(lambda: not self.pids(), timeout)
        assert gone, (f"hylake process(es) {self.pids()} still alive {timeout}s after "
                      f"{method} of {self.path}\nstderr:\n{self.stderr[-2000:]}")
        if self.proc is not None:
            self.returncode = self.proc.wait(timeout=5)


class Mounter:
    """Starts mounts and guarantees they are torn down (see cleanup())."""

    def __init__(self, base: Path):
        self.base = base
        self.mounts: list[Mount] = []
        self.n = 0

    def mount(self, config, *, opts: Optional[Iterable[str] | str] = None,
              foreground: bool = False, check: bool = True, timeout: float = 60,
              mountpoint: Optional[Path] = None) -> Mount:
        self.n += 1
        mnt = Path(mountpoint) if mountpoint else self.base / f"mnt{self.n}"
        mnt.mkdir(parents=True, exist_ok=True)
        argv = [str(HYLAKE_BIN), "mount", str(config), str(mnt)]
        if foreground:
            argv.append("-f")
        if opts:
            argv += ["-o", opts if isinstance(opts, str) else ",".join(opts)]
        out = self.base / f"mount{self.n}.stdout"
        err = self.base / f"mount{self.n}.stderr"
        m = Mount(mnt, Path(config), argv, foreground, out, err)
        self.mounts.append(m)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            if foreground:
                m.proc = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
                deadline = time.monotonic() + timeout
                while not m.mounted():
                    if m.proc.poll() is not None:
                        m.returncode = m.proc.returncode
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                if check and not m.mounted():
                    raise MountFailed(f"{' '.join(argv)} did not mount (exit {m.proc.poll()}):\n"
                                      f"{m.stderr[-3000:]}")
            else:
                try:
                    r = subprocess.run(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                       timeout=timeout)
                    m.returncode = r.returncode
                except subprocess.TimeoutExpired:
                    m.returncode = None
                    if check:
                        raise MountFailed(f"{' '.join(argv)} did not return within {timeout}s")
                if check:
                    if m.returncode != 0:
                        raise MountFailed(f"{' '.join(argv)} exited {m.returncode}:\n"
                                          f"{m.stderr[-3000:]}")
                    # "returns only after the mount answers": no polling here
                    if not m.mounted():
                        raise MountFailed(f"{' '.join(argv)} exited 0 but {mnt} is not "
                                          f"mounted yet")
        m.pids_at_start = m.pids()
        return m

    def cleanup(self) -> list[str]:
        """Unmount everything, kill leftovers; return a list of problems."""
        problems = []
        for m in self.mounts:
            forced = False
            if m.mounted():
                _run_quiet(["fusermount3", "-u", str(m.path)])
                if m.mounted():
                    forced = True
                    _run_quiet(["umount", "-l", str(m.path)])
                if m.mounted():
                    _run_quiet(["fusermount3", "-uz", str(m.path)])
                if m.mounted():
                    problems.append(f"{m.path} is still mounted")
            if not wait_until(lambda: not m.pids(), 15):
                left = m.pids()
                if not forced:
                    problems.append(f"hylake process(es) {left} for {m.path} still alive after "
                                    f"unmount; killed.\nstderr tail:\n{m.stderr[-1500:]}")
                for pid in left:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait(timeout=5)
        return problems


# --------------------------------------------------------------------------- workspace


class Workspace:
    def __init__(self, root: Path, get_rgw=None, get_gcs=None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.state_dir = root / "state"
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        self._get_rgw = get_rgw
        self._get_gcs = get_gcs
        self._n = 0

    @property
    def rgw(self) -> RGW:
        return self._get_rgw()

    @property
    def gcs(self) -> GCS:
        return self._get_gcs()

    def path(self, name) -> Path:
        return self.root / name

    def creds(self, access_key=None, secret_key=None, *, mode=0o600, name=None,
              profile="default", text=None) -> Path:
        self._n += 1
        p = self.root / (name or f"creds{self._n}")
        if text is None:
            rgw = self.rgw if (access_key is None or secret_key is None) else None
            text = (f"[{profile}]\n"
                    f"aws_access_key_id = {access_key or rgw.access_key}\n"
                    f"aws_secret_access_key = {secret_key or rgw.secret_key}\n")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def write(self, name, text) -> Path:
        p = self.root / name
        p.write_text(text)
        return p

    def config(self, source: dict, mount: Optional[dict] = None, name=None) -> Path:
        """Write an INI config with [mount] (state_dir and cache_dir defaulted to
        this workspace) and [source]."""
        self._n += 1
        mount = {"state_dir": str(self.state_dir), "cache_dir": str(self.root / "cache"),
                 **(mount or {})}
        lines = ["[mount]"]
        lines += [f"{k} = {v}" for k, v in mount.items()]
        lines += ["", "[source]"]
        lines += [f"{k} = {v}" for k, v in source.items() if v is not None]
        return self.write(name or f"hylake{self._n}.conf", "\n".join(lines) + "\n")

    def s3_config(self, bucket, *, endpoint=None, prefix=None, creds=None, mount=None,
                  name=None, **extra) -> Path:
        rgw = self.rgw
        source = {
            "type": "s3",
            "endpoint": endpoint or rgw.endpoint,
            "bucket": bucket,
            "prefix": prefix,
            "region": "us-east-1",
            "credentials": str(creds or self.creds()),
            **extra,
        }
        return self.config(source, mount, name=name)

    def sa_key(self, *, key: Optional[Path] = None, email=None, kid=None, token_uri=None,
               mode=0o600, name=None) -> Path:
        """A service-account key file for the session's GCS server (its trusted key
        unless `key` names another PEM), mode 0600 unless told."""
        from gcs_client import service_account_json, write_secret

        gcs = self.gcs
        self._n += 1
        doc = service_account_json(
            private_key_pem=Path(key or gcs.key).read_text(), email=email or gcs.email,
            kid=kid or gcs.kid, token_uri=token_uri or gcs.token_uri)
        return write_secret(self.root / (name or f"sa{self._n}.json"),
                            json.dumps(doc, indent=2) + "\n", mode)

    def gcs_config(self, bucket, *, endpoint=None, prefix=None, creds=None,
                   metadata_endpoint=None, mount=None, name=None, **extra) -> Path:
        """[source] type = gcs against the session's server; creds: a key file path
        (default: a fresh one for the trusted key), "metadata" (then
        metadata_endpoint defaults to the server) or "none"."""
        gcs = self.gcs
        creds = str(creds) if creds is not None else str(self.sa_key())
        if creds == "metadata" and metadata_endpoint is None:
            metadata_endpoint = gcs.url
        source = {
            "type": "gcs",
            "endpoint": endpoint or gcs.url,
            "bucket": bucket,
            "prefix": prefix,
            "credentials": creds,
            "metadata_endpoint": metadata_endpoint,
            **extra,
        }
        return self.config(source, mount, name=name)

    def posix_config(self, path, *, mount=None, name=None) -> Path:
        return self.config({"type": "posix", "path": str(path)}, mount, name=name)


# --------------------------------------------------------------------------- reads in a child


_CHILD = r"""
import hashlib, json, os, sys, time
path, offset, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = time.monotonic()
res = {}
try:
    fd = os.open(path, os.O_RDONLY)
    try:
        h = hashlib.sha256(); n = 0; off = offset
        while length < 0 or n < length:
            want = 1 << 20 if length < 0 else min(1 << 20, length - n)
            b = os.pread(fd, want, off)
            if not b:
                break
            h.update(b); n += len(b); off += len(b)
        res = {"ok": True, "sha256": h.hexdigest(), "size": n}
    finally:
        os.close(fd)
except OSError as e:
    res = {"ok": False, "errno": e.errno, "error": str(e)}
res["elapsed"] = time.monotonic() - t
print(json.dumps(res))
"""


def child_call(code: str, *args, timeout: float = 60) -> dict:
    """Run a snippet in a separate process, so a hung FUSE request cannot wedge
    the test runner; the snippet prints a JSON object as its last line.
    Returns that object, or {"timed_out": True} / {"crashed": True, "stderr"},
    always with "wall" (wall time, s) and "elapsed" (the snippet's own, else wall)."""
    t = time.monotonic()
    p = subprocess.Popen([PYTHON, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.communicate(timeout=10)
        res = {"timed_out": True}
    else:
        try:
            res = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"crashed": True, "stderr": err.decode(errors="replace")}
    res["wall"] = time.monotonic() - t
    res.setdefault("elapsed", res["wall"])
    return res


def child_read(path, *, offset: int = 0, length: int = -1, timeout: float = 60) -> dict:
    """Read a file in a child process (see child_call).  Returns {"ok", "sha256",
    "size"} or {"ok": False, "errno"} or {"ok": False, "timed_out": True}."""
    res = child_call(_CHILD, path, offset, length, timeout=timeout)
    res.setdefault("ok", False)
    return res


_PREADS = r"""
import hashlib, json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out = [hashlib.sha256(os.pread(fd, int(n), int(o))).hexdigest()
       for o, n in (a.split(":") for a in sys.argv[2:])]
print(json.dumps({"ok": True, "sums": out}))
"""


def child_preads(path, reads, *, timeout: float = 60) -> dict:
    """pread each (offset, length) of reads from one open of path, in a child
    process (see child_call).  Returns {"ok": True, "sums": [sha256 of each]}."""
    return child_call(_PREADS, path, *[f"{o}:{n}" for o, n in reads], timeout=timeout)


ESTALE = errno.ESTALE
EROFS = errno.EROFS


def walk_tree(root) -> tuple[set, set]:
    """(files, dirs) as '/'-joined paths relative to root; also checks that no
    directory listing holds a duplicate name."""
    files, dirs = set(), set()
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        names = dirnames + filenames
        assert len(names) == len(set(names)), f"duplicate names in {dirpath}: {sorted(names)}"
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        for d in dirnames:
            dirs.add(rel + d)
        for f in filenames:
            files.add(rel + f)
    return files, dirs


def _raise(e):
    raise e


def expected_tree(keys, prefix: str = "") -> tuple[set, set]:
    """(files, dirs) that a mount of `keys` under `prefix` must show, for keys
    that are all representable as paths.  Folder markers (`name/`) are dirs; a
    name that is both an object and a prefix is a dir."""
    files, dirs = set(), set()
    for k in keys:
        if not k.startswith(prefix):
            continue
        rel = k[len(prefix):]
        if not rel:
            continue
        parts = rel.split("/")
        leaf_is_dir = rel.endswith("/")
        if leaf_is_dir:
            parts = parts[:-1]
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
        if leaf_is_dir:
            dirs.add("/".join(parts))
        else:
            files.add("/".join(parts))
    return files - dirs, dirs


def duckdb_ready() -> bool:
    """node and DuckDB from npm (tests/npm_ci.sh installs it into DUCKDB)."""
    if not shutil.which("node"):
        return False
    if not (DUCKDB / "node_modules" / "@duckdb" / "node-api").exists():
        r = subprocess.run(["bash", str(REPO / "tests" / "npm_ci.sh"), str(DUCKDB)],
                           capture_output=True, text=True, timeout=300)
        return r.returncode == 0
    return True
