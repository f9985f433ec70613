"""The lake the routing tests run against: a GCS bucket (the test server) as the
source, a posix folder and an S3 bucket (radosgw) as replicas, and ways to make
replicas the way a replicator makes them: a copy stamped with the source
generation (and crc32c) it holds, or an unstamped copy only its MD5 proves."""

import os
import subprocess

import pytest

from hylib import MiB, run_hylake

OBJ = 1 * MiB


def stamp_posix(root, name, data, gen, crc=None):
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    if gen is not None:
        os.setxattr(tmp, "user.goog-generation", str(gen).encode())
    if crc is not None:
        os.setxattr(tmp, "user.goog-crc32c", crc.encode())
    os.rename(tmp, p)


def stamp_s3(s3, bucket, name, data, gen=None, crc=None):
    meta = {}
    if gen is not None:
        meta["goog-generation"] = str(gen)
    if crc is not None:
        meta["goog-crc32c"] = crc
    s3.put_object(Bucket=bucket, Key=name, Body=data, Metadata=meta)


class Lake:
    """A GCS bucket with objects, a posix replica folder and an S3 replica."""

    def __init__(self, gcs, gcs_bucket, s3, s3_bucket, ws):
        self.gcs, self.bucket, self.s3, self.s3_bucket, self.ws = (
            gcs, gcs_bucket, s3, s3_bucket, ws)
        self.nfs = ws.root / "nfs-replica"
        self.nfs.mkdir()
        self.data, self.res = {}, {}

    def put(self, name, data=None):
        data = data if data is not None else os.urandom(OBJ)
        self.data[name] = data
        self.res[name] = self.gcs.client.upload(self.bucket, name, data)
        return self.res[name]

    def gen(self, name):
        return int(self.res[name]["generation"])

    def crc(self, name):
        return self.res[name]["crc32c"]

    def to_nfs(self, name, gen=None, data=None, crc=True):
        stamp_posix(self.nfs, name, data if data is not None else self.data[name],
                    self.gen(name) if gen is None else gen,
                    self.crc(name) if crc else None)

    def to_s3(self, name, gen=None, data=None, stamped=True):
        stamp_s3(self.s3, self.s3_bucket, name,
                 data if data is not None else self.data[name],
                 (self.gen(name) if gen is None else gen) if stamped else None,
                 self.crc(name) if stamped else None)

    def config(self, *, s3_endpoint=None, order=("nfs", "s3"), mount=None,
               source_endpoint=None):
        """A mount of the lake.  Without a block cache unless `mount` asks for
        one: routing is judged by which store each read reaches, and cached
        blocks would answer instead."""
        mount = {"cache_size": "0", **(mount or {})}
        cfg = self.ws.gcs_config(self.bucket, mount=mount, endpoint=source_endpoint)
        sections = {
            "nfs": f"[replica nfs]\ntype = posix\npath = {self.nfs}\n",
            "s3": (f"[replica s3]\ntype = s3\n"
                   f"endpoint = {s3_endpoint or self.ws.rgw.endpoint}\n"
                   f"bucket = {self.s3_bucket}\nregion = us-east-1\n"
                   f"credentials = {self.ws.creds()}\n"),
        }
        with open(cfg, "a") as f:
            for r in order:
                f.write("\n" + sections[r])
        return cfg

    def replicate(self, to, *args, cfg=None, timeout=120):
        """Run `hylake replicate` into replica `to`; the finished process."""
        return run_hylake("replicate", cfg or self.config(), "--to", to, *args,
                          timeout=timeout)

    def media_reads(self, since, name=None):
        """GCS data requests (alt=media) after log mark `since`."""
        return [e for e in self.gcs.requests(since, kind="objects.media", bucket=self.bucket)
                if name is None or e["object"] == name]


def drop_caches():
    """Empty the kernel's page cache: an open of an unchanged version keeps
    its pages, and a read they answer reaches no store."""
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)


def xattr(path, attr):
    return os.getxattr(path, "user.hylake." + attr).decode()


@pytest.fixture
def lake(gcs, gcs_bucket, s3, bucket, ws):
    return Lake(gcs, gcs_bucket, s3, bucket, ws)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()
