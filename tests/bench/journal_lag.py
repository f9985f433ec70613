#!/usr/bin/env python3
"""The site journal's figures: how many changes per second one follower
journals, and how long a GCS write takes to reach a mount that follows the
journal (served from the site), against a mount that follows the Pub/Sub
subscription itself, measured in the same run.

    tests/bench/journal_lag.py [--changes N] [--overwrites N] [--workdir DIR]

Starts the Pub/Sub and GCS test servers (notifications on), a posix folder
as the site, one `hylake replicate --follow` and two mounts (bounded:10m,
no block cache): one with `journal = site`, one with the subscription.
Prints a table; stops everything it started.
"""
import argparse
import errno
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gcslib import HYLAKE, ROOT, GcsSource, log, mount, umount  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "pubsub"))
from pubsub_client import PubsubClient, PubsubProcess  # noqa: E402

PROJECT = "hylake-bench"


def figures(mnt):
    out = {}
    for line in os.getxattr(mnt, "user.hylake.metrics").decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, v = line.split()
            out[k] = float(v)
    return out


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--overwrites", type=int, default=40)
    ap.add_argument("--workdir", default="/var/tmp/hylake-bench-journal")
    a = ap.parse_args()
    work = Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ps_srv = PubsubProcess(work / "pubsub")
    src = GcsSource()
    follower = None
    mnts = {"journal": work / "mnt-journal", "subscription": work / "mnt-sub"}
    try:
        ps_srv.start()
        src.start(work, pubsub_url=ps_srv.url)
        PubsubClient(ps_srv.url).control.config(auth_url=src.url)
        ps = PubsubClient(ps_srv.url, project=PROJECT)
        ps.create_topic("lake-changes")
        for s in ("follower", "mount"):
            ps.create_subscription(f"lake-{s}", "lake-changes", ackDeadlineSeconds=10)
        src.client.request(
            "POST", f"/storage/v1/b/{src.bucket}/notificationConfigs",
            body=json.dumps({"topic": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/lake-changes",
                             "payload_format": "JSON_API_V1"}).encode(),
            headers={"Content-Type": "application/json"}, ok=(200,))
        site = work / "site"
        site.mkdir()
        base = (f"[mount]\nstate_dir = {{state}}\ncache_size = 0\n"
                f"freshness = bounded:10m\nhedge_budget = 0\n\n{src.section()}\n"
                f"[replica site]\ntype = posix\npath = {site}\n\n"
                f"[changes]\nendpoint = {ps_srv.url}\nstall = 5s\n")
        cfgs = {}
        for k, extra in (("follower", f"subscription = projects/{PROJECT}/subscriptions/lake-follower\n"),
                         ("journal", "journal = site\n"),
                         ("subscription",
                          f"subscription = projects/{PROJECT}/subscriptions/lake-mount\n")):
            (work / f"state-{k}").mkdir()
            cfgs[k] = work / f"{k}.conf"
            cfgs[k].write_text(base.format(state=work / f"state-{k}") + extra)
        src.client.upload(src.bucket, "d/warm", b"x")
        log("starting the follower")
        follower = subprocess.Popen(
            [HYLAKE, "replicate", str(cfgs["follower"]), "--to", "site", "--follow",
             "--heartbeat", "300ms"], stdout=open(work / "follower.out", "wb"),
            stderr=open(work / "follower.err", "wb"))
        wait(lambda: (site / ".hylake/journal/head").exists(), 30, "the journal's head")
        for k, m in mnts.items():
            m.mkdir()
            mount(cfgs[k], m)
            wait(lambda: figures(m).get("hylake_feed_healthy") == 1, 30, f"{k} follows")
            (m / "d/warm").read_bytes()

        # 1: throughput.  N uploads from 8 threads; the time until the
        # journal-following mount has applied all of them.
        jm = mnts["journal"]
        start_applied = figures(jm)["hylake_feed_applied_total"]
        names = [f"d/f{i:05d}" for i in range(a.changes)]
        t0 = time.monotonic()

        def up(chunk):
            for n in chunk:
                src.client.upload(src.bucket, n, n.encode() * 64)

        threads = [threading.Thread(target=up, args=(names[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_up = time.monotonic() - t0
        wait(lambda: figures(jm)["hylake_feed_applied_total"] - start_applied >= a.changes,
             600, "all applied")
        t_all = time.monotonic() - t0
        log(f"{a.changes} uploads in {t_up:.1f} s; applied by the journal mount "
            f"{t_all:.1f} s after the first")

        # 2: latency.  One overwrite at a time; how long until each mount
        # reads the new bytes.
        lat = {k: [] for k in mnts}
        for i in range(a.overwrites):
            data = f"version {i} ".encode() * 100
            t0 = time.monotonic()
            src.client.upload(src.bucket, "d/hot", data)
            pending = set(mnts)
            while pending:
                for k in list(pending):
                    try:
                        if (mnts[k] / "d/hot").read_bytes() == data:
                            lat[k].append(time.monotonic() - t0)
                            pending.discard(k)
                    except FileNotFoundError:
                        pass                     # not there yet
                    except OSError as e:         # replaced mid-read
                        if e.errno != errno.ESTALE:
                            raise
                if time.monotonic() - t0 > 30:
                    raise TimeoutError("overwrite not seen")
                time.sleep(0.005)
        jf = figures(jm)

        def ms(v):
            return f"{v * 1000:.0f} ms"

        print(f"\n{a.changes} new objects, {a.overwrites} overwrites; follower heartbeat 300ms, "
              f"mounts poll the journal every 200 ms")
        print("| figure | value |")
        print("|---|---|")
        print(f"| follower: changes journaled per second (uploads took {t_up:.1f} s) | "
              f"{a.changes / t_all:.0f}/s |")
        for k in mnts:
            v = sorted(lat[k])
            print(f"| GCS write to a read of it, mount following the {k}: median / p90 / max | "
                  f"{ms(statistics.median(v))} / {ms(v[int(len(v) * 0.9) - 1])} / {ms(v[-1])} |")
        print(f"| ratio journal / subscription (median) | "
              f"{statistics.median(lat['journal']) / statistics.median(lat['subscription']):.2f}x |")
        print(f"| journal mount: batches read {jf.get('hylake_journal_batches_total', 0):.0f}, "
              f"heartbeat age at the end {jf.get('hylake_journal_heartbeat_age_seconds', 0):.2f} s | |")
    finally:
        for m in mnts.values():
            umount(m)
        if follower and follower.poll() is None:
            follower.send_signal(signal.SIGTERM)
            try:
                follower.wait(30)
            except subprocess.TimeoutExpired:
                follower.kill()
        src.stop()
        ps_srv.stop()


if __name__ == "__main__":
    main()
