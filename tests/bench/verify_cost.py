#!/usr/bin/python3
"""What checking every replica byte costs: random 1 MiB preads of one large
object through a mount whose posix replica holds a current copy, with the
replica's bytes checked block by block against the source's crc32c
(verify = whole-first, the copy's block manifest written by `hylake
replicate`) versus believed on its stamp alone (verify = trust, the
behaviour before the checks).  No block cache, kernel caches dropped before
each pass, so every read reaches the replica.  Prints the median throughput
of each mode over a few alternating runs and the ratio against trust.

    tests/bench/verify_cost.py [--size-mib 256] [--reads 400] [--runs 3]

Needs a built hylake (build/hylake), root (FUSE), python3-cryptography.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from gcslib import HYLAKE, GcsSource, drop_caches, mount, umount

MiB = 1 << 20


def preads(path, size, n, seed):
    """n random 1 MiB preads (unaligned); MB/s."""
    drop_caches()
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDONLY)
    t = time.monotonic()
    got = 0
    for _ in range(n):
        got += len(os.pread(fd, MiB, rng.randrange(0, size - MiB)))
    el = time.monotonic() - t
    os.close(fd)
    return got / el / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--reads", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    size = a.size_mib * MiB

    work = Path(tempfile.mkdtemp(prefix="hylake-bench-"))
    gcs = GcsSource()
    mnt = work / "mnt"
    mnt.mkdir()
    try:
        gcs.start(work)
        gcs.client.upload("lake", "t/big.parquet", os.urandom(size))
        cfgs = {}
        for mode in ("trust", "whole-first"):
            cfg = work / f"{mode}.conf"
            cfg.write_text(
                f"[mount]\nstate_dir = {work / ('state-' + mode)}\n"
                f"cache_size = 0\nhedge_budget = 0\n"
                + gcs.section() +
                f"[replica nfs]\ntype = posix\npath = {work / 'nfs'}\n"
                f"verify = {mode}\n")
            cfgs[mode] = cfg
        (work / "nfs").mkdir()
        subprocess.run([HYLAKE, "replicate", str(cfgs["trust"]), "--to", "nfs"],
                       check=True, stdout=subprocess.DEVNULL)
        res = {m: [] for m in cfgs}
        for run in range(a.runs):
            for mode, cfg in cfgs.items():
                mount(cfg, mnt)
                try:
                    f = mnt / "t/big.parquet"
                    with open(f, "rb") as fh:       # open once: the copy is
                        fh.read(1)                  # judged and proven
                    src = os.getxattr(f, "user.hylake.source").decode()
                    assert src == "nfs", f"{mode}: served by {src}"
                    res[mode].append(preads(f, size, a.reads, run))
                finally:
                    umount(mnt)
        base = statistics.median(res["trust"])
        print(f"\n{a.reads} random 1 MiB preads of a {a.size_mib} MiB object "
              f"served by a posix replica, no block cache, median of {a.runs}:")
        print(f"{'verify':12} {'MB/s':>8} {'vs trust':>9}   runs")
        for mode in ("trust", "whole-first"):
            med = statistics.median(res[mode])
            print(f"{mode:12} {med:8.0f} {med / base:8.2f}x   "
                  + " ".join(f"{x:.0f}" for x in res[mode]))
    finally:
        umount(mnt)
        gcs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
