#!/usr/bin/python3
"""Memory held by the read path under many files read at random: 256 files
of a posix source folder, all open at once, read at random offsets by a few
threads through a mount with memory_limit = 32M, and again with the limit
at its default.  Prints the daemon's peak RSS (VmHWM) against the limit,
the read path's own peak (its "memory peak" log line at unmount) and the
daemon's RSS just after mounting (the fixed overhead: threads, libraries,
FUSE buffers).

    sudo tests/bench/readpath_memory.py [--files 256] [--reads 6144]
                                        [--hylake-bin build/hylake]
                                        [--compare-bin OTHER/hylake]

--compare-bin adds the same rows for another build (an older commit, say).
Needs root (FUSE) and a built hylake; no server (the source is a folder).
The files are sparse (no disk used); cache_size = 0, so every byte the
daemon holds is the read path's or fixed.  Exit 0 whatever the figures, 1
when the bench could not run.  About 30 s.
"""
import argparse
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KiB, MiB = 1 << 10, 1 << 20
FILE_SIZE = 16 * MiB
READ_SIZE = 128 * KiB
THREADS = 8
SEED = 20240601
LIMIT = "32M"
DEFAULT_LIMIT = 512 * MiB       # mount/options.c


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def mounted(path):
    p = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == p for line in f)


def status_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def read_at_random(mnt, names, reads):
    """Open every file, then reads of READ_SIZE at random offsets across
    them from THREADS threads; returns (seconds, short reads)."""
    fds = [os.open(mnt / n, os.O_RDONLY) for n in names]
    rnd = random.Random(SEED)
    plan = [(rnd.randrange(len(fds)),
             rnd.randrange(FILE_SIZE // (4 * KiB)) * 4 * KiB) for _ in range(reads)]
    short = []

    def worker(part):
        for i, off in part:
            want = min(READ_SIZE, FILE_SIZE - off)
            if len(os.pread(fds[i], want, off)) != want:
                short.append((i, off))

    t = time.monotonic()
    th = [threading.Thread(target=worker, args=(plan[k::THREADS],))
          for k in range(THREADS)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    secs = time.monotonic() - t
    for fd in fds:
        os.close(fd)
    return secs, len(short)


def one_run(binary, work, src, names, limit, reads):
    """Mount (foreground, so the daemon is our child), read, unmount."""
    tag = f"{Path(binary).parent.name}-{limit or 'default'}"
    cfg = work / f"{tag}.conf"
    mem = f"memory_limit = {limit}\n" if limit else ""
    cfg.write_text(f"[mount]\nstate_dir = {work / ('state-' + tag)}\n"
                   f"cache_dir = {work / ('cache-' + tag)}\ncache_size = 0\n{mem}"
                   f"[source]\ntype = posix\npath = {src}\n")
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    err = open(work / f"{tag}.stderr", "w+")
    p = subprocess.Popen([binary, "mount", str(cfg), str(mnt), "-f"],
                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not mounted(mnt):
            if p.poll() is not None or time.monotonic() > deadline:
                err.seek(0)
                raise SystemExit(f"{binary} did not mount: {err.read()[-2000:]}")
            time.sleep(0.05)
        idle = status_kib(p.pid, "VmRSS")
        secs, short = read_at_random(mnt, names, reads)
        hwm = status_kib(p.pid, "VmHWM")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    err.seek(0)
    text = err.read()
    err.close()
    m = re.search(r"memory peak (\d+) MiB", text)
    q = re.search(r"store requests (\d+) \((\d+) read ahead, (\d+) unused\)", text)
    return {"idle": idle / KiB, "hwm": hwm / KiB, "rp_peak": int(m.group(1)) if m else None,
            "requests": q.groups() if q else None, "secs": secs, "short": short}


def parse_size(s):
    return int(s[:-1]) * MiB if s.endswith("M") else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--reads", type=int, default=6144, help="reads in all [6144]")
    ap.add_argument("--hylake-bin", default=os.environ.get(
        "HYLAKE_BIN", str(ROOT / "build" / "hylake")))
    ap.add_argument("--compare-bin", help="another hylake for the same rows")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("readpath_memory: run as root (FUSE mounts)", file=sys.stderr)
        return 1
    bins = [a.hylake_bin] + ([a.compare_bin] if a.compare_bin else [])
    for b in bins:
        if not os.access(b, os.X_OK):
            print(f"readpath_memory: no hylake binary at {b}", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="hylake-rpmem-"))
    t0 = time.monotonic()
    rows = []
    try:
        src = work / "src"
        src.mkdir()
        names = [f"part-{i:05d}.parquet" for i in range(a.files)]
        for n in names:
            with open(src / n, "wb") as f:
                f.truncate(FILE_SIZE)          # sparse: no disk, zeros
        for b in bins:
            for limit in (LIMIT, None):
                log(f"{b}: memory_limit {limit or 'default'} ...")
                rows.append((b, limit, one_run(b, work, src, names, limit, a.reads)))
    finally:
        if mounted(work / "mnt"):
            subprocess.run(["umount", "-l", str(work / "mnt")], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("hylake read path memory: many files read at random")
    print(f"command: {' '.join(shlex.quote(x) for x in sys.argv)}")
    print(f"{a.files} files of {FILE_SIZE // MiB} MiB (posix source, sparse), all open; "
          f"{a.reads} reads of {READ_SIZE // KiB} KiB at random 4 KiB-aligned offsets "
          f"from {THREADS} threads (seed {SEED}); cache_size 0, other settings default")
    print("MiB: peak RSS = the daemon's VmHWM; idle = its VmRSS after mounting; "
          "read path = its own peak; requests = its reads of the source, "
          "all/read ahead/read ahead never read (both from its log at unmount); s = time of the reads")
    print()
    head = f"{'binary':28}{'memory_limit':>13}{'peak RSS':>10}{'/ limit':>9}" \
           f"{'- idle':>9}{'idle':>7}{'read path':>11}{'requests':>17}{'s':>7}"
    print(head)
    for b, limit, r in rows:
        lim = parse_size(limit) if limit else DEFAULT_LIMIT
        name = str(Path(b).resolve().relative_to(ROOT)) if \
            Path(b).resolve().is_relative_to(ROOT) else b
        rp = f"{r['rp_peak']}" if r["rp_peak"] is not None else "-"
        rq = "{}/{}/{}".format(*r["requests"]) if r["requests"] else "-"
        lims = limit or f"{DEFAULT_LIMIT // MiB}M (dflt)"
        print(f"{name[-27:]:28}{lims:>13}{r['hwm']:10.0f}{r['hwm'] / (lim / MiB):8.2f}x"
              f"{r['hwm'] - r['idle']:9.0f}{r['idle']:7.0f}{rp:>11}{rq:>17}{r['secs']:7.1f}"
              + (f"  {r['short']} short reads!" if r["short"] else ""))
    print(f"total time {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
