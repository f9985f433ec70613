#!/usr/bin/python3
"""Writes through a writable mount against direct uploads to the same GCS
test server, in the same run:

  1. one large file written in order (default 1 GiB): through the mount
     (1 MiB write()s, then close(), which returns when the object exists)
     versus curl uploading the same file from local disk as a resumable
     upload (session POST, then the whole file in one PUT).  The ratio is
     direct time / mount time (1.0: as fast as curl; the target is >= 0.8).
  2. many small files (default 1,000 of 16 KiB): created through the mount
     (open O_CREAT|O_EXCL, write, close) versus uploaded directly by one
     keep-alive client, as a single-request media upload and as a
     resumable upload (two requests, what the mount sends); cost per file.

    tests/bench/writes.py [--size-mib 1024] [--runs 2] [--files 1000] [--file-kib 16]

Needs root (FUSE), a built hylake (build/hylake or $HYLAKE_BIN), curl, and
python3-cryptography (the service account the server trusts).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from gcslib import GcsSource, log, mount, umount

MiB = 1 << 20


def curl_resumable(gcs, name, path) -> float:
    """Seconds for curl to upload path as name: a resumable session, one PUT."""
    tok = gcs.client.token()
    q = urllib.parse.urlencode({"uploadType": "resumable", "name": name,
                                "ifGenerationMatch": "0"})
    t = time.monotonic()
    r = subprocess.run(["curl", "-sS", "-f", "-D", "-", "-o", "/dev/null", "-X", "POST",
                        "-H", f"Authorization: Bearer {tok}", "-H", "Content-Length: 0",
                        f"{gcs.url}/upload/storage/v1/b/{gcs.bucket}/o?{q}"],
                       capture_output=True, text=True, timeout=60, check=True)
    loc = next(line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
               if line.lower().startswith("location:"))
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(path),
                    "-H", f"Authorization: Bearer {tok}", loc],
                   timeout=600, check=True)
    return time.monotonic() - t


def through_mount(src, dst) -> float:
    """Seconds to write src to dst in 1 MiB write()s, close() included."""
    t = time.monotonic()
    with open(src, "rb") as f:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            while True:
                b = f.read(MiB)
                if not b:
                    break
                os.write(fd, b)
        finally:
            os.close(fd)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--file-kib", type=int, default=16)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hylake-bench-writes-"))
    gcs = GcsSource()
    mnt = work / "mnt"
    mnt.mkdir()
    try:
        gcs.start(work)
        cfg = work / "rw.conf"
        cfg.write_text(f"[mount]\nwritable = yes\nstate_dir = {work}/state\n"
                       f"cache_dir = {work}/cache\n\n" + gcs.section())
        mount(cfg, mnt)
        size = a.size_mib * MiB
        big = work / "big.bin"
        log(f"making a {a.size_mib} MiB file")
        with open(big, "wb") as f:
            piece = os.urandom(MiB)
            for i in range(a.size_mib):
                f.write(piece[i % 1000:] + piece[:i % 1000])
        with open(big, "rb") as f:      # in the page cache for both sides
            while f.read(16 * MiB):
                pass
        direct, viamount = [], []
        for run in range(a.runs):
            log(f"run {run + 1}: curl")
            direct.append(curl_resumable(gcs, f"direct-{run}.bin", big))
            log(f"run {run + 1}: through the mount")
            viamount.append(through_mount(big, mnt / f"mount-{run}.bin"))
            assert int(gcs.client.get(gcs.bucket, f"mount-{run}.bin")["size"]) == size
            for n in (f"direct-{run}.bin", f"mount-{run}.bin"):
                gcs.client.request("DELETE", f"/storage/v1/b/{gcs.bucket}/o/{n}",
                                   ok=(204,))
        d, m = statistics.median(direct), statistics.median(viamount)

        body = os.urandom(a.file_kib * 1024)
        log(f"{a.files} files of {a.file_kib} KiB through the mount")
        os.mkdir(mnt / "small")
        t = time.monotonic()
        for i in range(a.files):
            fd = os.open(mnt / "small" / f"f{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o644)
            os.write(fd, body)
            os.close(fd)
        small_mount = (time.monotonic() - t) / a.files
        small_direct = {}
        for method in ("media", "resumable"):
            log(f"{a.files} files of {a.file_kib} KiB uploaded directly ({method})")
            t = time.monotonic()
            for i in range(a.files):
                gcs.client.upload(gcs.bucket, f"{method}/f{i:05d}", body, method=method,
                                  preconditions={"ifGenerationMatch": "0"})
            small_direct[method] = (time.monotonic() - t) / a.files

        print(f"\nsequential write, {a.size_mib} MiB, median of {a.runs} "
              f"(GCS test server on 127.0.0.1)")
        print(f"{'':34s} {'seconds':>8s} {'MiB/s':>8s}")
        print(f"{'direct (curl, resumable, 1 PUT)':34s} {d:8.2f} {a.size_mib / d:8.0f}")
        print(f"{'through the mount (1 MiB writes)':34s} {m:8.2f} {a.size_mib / m:8.0f}")
        print(f"{'ratio (direct time / mount time)':34s} {d / m:8.2f}   target >= 0.8")
        print(f"\n{a.files} files of {a.file_kib} KiB, one after another")
        print(f"{'':34s} {'ms/file':>8s}")
        print(f"{'through the mount (create+close)':34s} {small_mount * 1e3:8.2f}")
        print(f"{'direct, media upload (1 request)':34s} "
              f"{small_direct['media'] * 1e3:8.2f}")
        print(f"{'direct, resumable (2 requests)':34s} "
              f"{small_direct['resumable'] * 1e3:8.2f}")
    finally:
        umount(mnt)
        gcs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
