#!/usr/bin/python3
"""Time to read 200 small files through a mount, served by a current posix
replica (scenario 1) versus by GCS alone (scenario 3), with a WAN-like
delay added to every GCS request by the GCS test server.  Strict and
bounded freshness.  Prints a table of medians over a few runs, each a
ratio against the GCS-only time measured in the same run.

    tests/bench/route_small_files.py [--files 200] [--delay-ms 30] [--runs 3]

Needs a built hylake (build/hylake), root (FUSE), python3-cryptography.
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gcslib import GcsSource, drop_caches, mount, umount


def read_tree(mnt, names):
    drop_caches()
    t = time.monotonic()
    for n in names:
        with open(mnt / n, "rb") as f:
            f.read()
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--delay-ms", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hylake-bench-"))
    gcs = GcsSource()
    try:
        gcs.start(work)
        c = gcs.client
        nfs = work / "nfs"
        names = [f"t/part-{i:05d}.parquet" for i in range(a.files)]
        for n in names:
            body = os.urandom(16 * 1024)
            r = c.upload("lake", n, body)
            if n.startswith("t/"):
                p = nfs / ("rep" + "/" + n)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(body)
                os.setxattr(p, "user.goog-generation", r["generation"].encode())
        cfgs = {}
        for mode, fresh in (("strict", "strict"), ("bounded", "bounded:10m")):
            for scen, rep in (("replica", nfs / "rep"), ("gcs-only", work / "empty")):
                (work / "empty").mkdir(exist_ok=True)
                state = work / f"state-{mode}-{scen}"
                cfg = work / f"{mode}-{scen}.conf"
                cfg.write_text(
                    f"[mount]\nstate_dir = {state}\nfreshness = {fresh}\n"
                    f"cache_size = 0\n"        # every read reaches a store
                    + gcs.section() +
                    f"[replica nfs]\ntype = posix\npath = {rep}\n")
                cfgs[(mode, scen)] = cfg
        c.control.config(delay_ms=a.delay_ms)
        mnt = work / "mnt"
        mnt.mkdir()
        results = {}
        for key_ in cfgs:
            first, second = [], []
            for _ in range(a.runs):
                # a fresh node: no version map (the first pass learns it)
                shutil.rmtree(work / f"state-{key_[0]}-{key_[1]}", ignore_errors=True)
                # default kernel timeouts: strict opens confirm with GCS
                # whatever the kernel caches, so this is what a user gets
                mount(cfgs[key_], mnt)
                try:
                    first.append(read_tree(mnt, names))    # lookups, facts learnt
                    second.append(read_tree(mnt, names))
                finally:
                    umount(mnt)
            results[key_] = (statistics.median(first), statistics.median(second))
        print(f"\nreading {a.files} files of 16 KiB, GCS delay {a.delay_ms} ms per "
              f"request, median of {a.runs}; first pass of a fresh mount with an "
              f"empty version map, then a second pass (kernel caches dropped):")
        print(f"{'freshness':10} {'served by':12} {'1st s':>7} {'vs GCS-only':>12} "
              f"{'2nd s':>7} {'vs GCS-only':>12}")
        for mode in ("strict", "bounded"):
            b1, b2 = results[(mode, "gcs-only")]
            for scen in ("replica", "gcs-only"):
                t1, t2 = results[(mode, scen)]
                print(f"{mode:10} {scen:12} {t1:7.2f} {t1 / b1:11.2f}x {t2:7.2f} "
                      f"{t2 / b2:11.2f}x")
    finally:
        gcs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
