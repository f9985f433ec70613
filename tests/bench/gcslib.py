"""What the benches share: the GCS test server as a mount's source (with a
service account, as hylake meets GCS), FUSE mount helpers and a progress log.

    src = GcsSource().start(work)   # the server, its bucket, WORK/sa.json
    src.client.upload("lake", "t/a", data)
    cfg.write_text("[mount]\\n...\\n" + src.section())
    src.client.control.config(delay_ms=30)
    ...
    src.stop()                      # the server, by its PID

    mount(cfg, mnt); ...; umount(mnt)
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gcs"))
from gcs_client import (GcsClient, ServerProcess, openssl_genrsa,  # noqa: E402,F401
                        openssl_pubkey, service_account_json, write_secret)

HYLAKE = os.environ.get("HYLAKE_BIN", str(ROOT / "build" / "hylake"))
T0 = time.monotonic()


def log(msg):
    """A progress line on stderr, with the seconds since the bench started."""
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- GCS


class GcsSource:
    """tests/gcs/gcs_server.py with --require-auth, one bucket, and a
    service-account key it accepts: a source as hylake meets GCS."""

    EMAIL, KID = "bench@test.iam", "k1"

    def __init__(self, bucket="lake"):
        self.bucket = bucket
        self.srv = None
        self.client = None      # a GcsClient (the server's metadata tokens)
        self.sa = None          # the service-account JSON hylake is given

    def start(self, work, pubsub_url=None):
        """Key pair in WORK, the server (state in WORK/gcs; notifications
        published to pubsub_url, if given), the bucket, WORK/sa.json (mode
        0600).  Call stop() even when this raises."""
        work = Path(work)
        key = openssl_genrsa(work / "sa.pem")
        pub = openssl_pubkey(key, work / "sa.pub.pem")
        self.srv = ServerProcess(work / "gcs", require_auth=True, pubsub_url=pubsub_url,
                                 public_keys=[(self.EMAIL, self.KID, str(pub))])
        self.srv.start()
        self.client = GcsClient(self.srv.url)
        self.client.create_bucket(self.bucket)
        self.sa = write_secret(work / "sa.json", json.dumps(service_account_json(
            private_key_pem=key.read_text(), email=self.EMAIL, kid=self.KID,
            token_uri=self.srv.url + "/token")), 0o600)
        return self

    @property
    def url(self):
        return self.srv.url

    def section(self):
        """The [source] section of a mount configuration for the bucket."""
        return (f"[source]\ntype = gcs\nbucket = {self.bucket}\nendpoint = {self.srv.url}\n"
                f"credentials = {self.sa}\n")

    def stop(self):
        if self.srv:
            self.srv.stop()


# --------------------------------------------------------------------------- mounts


def mounted(path):
    """Whether `path` is a mountpoint now (/proc/self/mountinfo)."""
    path = str(path)
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if line.split()[4].encode().decode("unicode_escape") == path:
                return True
    except OSError:
        pass
    return False


def daemons_of(mnt, names=("hylake",)):
    """PIDs of live processes named in `names` with `mnt` as one argument
    (not this one, not zombies)."""
    out = []
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
            comm = (d / "comm").read_text().strip()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2:].split()[0]
        if comm in names and str(mnt).encode() in args and state not in ("Z", "X"):
            out.append(int(d.name))
    return out


def mount(cfg, mnt, timeout=60):
    """`hylake mount CFG MNT` (default kernel timeouts); raises if it fails."""
    subprocess.run([HYLAKE, "mount", str(cfg), str(mnt)], check=True, timeout=timeout)


def umount(mnt):
    """Unmount (lazily if it must) and wait up to 10 s for the hylake daemon
    of `mnt` to exit; SIGKILL it after that.  Nothing when not mounted."""
    if mounted(mnt):
        subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30,
                       stderr=subprocess.DEVNULL)
        if mounted(mnt):
            subprocess.run(["umount", "-l", str(mnt)], timeout=30,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while daemons_of(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in daemons_of(mnt):
        log(f"hylake daemon {pid} of {mnt} still runs after unmount: SIGKILL")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def drop_caches():
    """sync, then drop the kernel's page, dentry and inode caches (root)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
