#!/usr/bin/python3
"""DuckDB (from npm) querying 2 of the 6 columns of Parquet files through
hylake, near (radosgw on this machine) and 30 ms away (tests/bench/wanproxy.py
in front of it), against the same files on local disk.

The files: FILES Parquet files of ROWS rows written by DuckDB itself, six
columns (id, a, b, h: an md5 string, d, e), row groups of ROWS/5 rows; the
query, `SELECT sum(b), max(d), count(*) FROM read_parquet('DIR/*.parquet')`,
reads the columns b and d, about a sixth of the bytes.  hylake's source is
the bucket (S3), cache_size 0, a fresh mount and dropped caches per run; the
bytes hylake fetched come from its own trace of the store's calls.

    tests/bench/parquet_columns.py [--files 8] [--rows 1000000] [--runs 3]
        [--hylake-bin build/hylake] [--baseline-bin OTHER] [--rgw-env ENV]
        [--keep-logs DIR]

--keep-logs keeps each hylake run's trace log in DIR (the reads it sent to
the store, for finding where fetched bytes go).  --baseline-bin runs the same rows with another hylake binary (an older
build) in the same run, so the two compare on one machine state.  Needs
root (FUSE, drop_caches), node with DuckDB from npm (tests/npm_ci.sh
tests/bench/duckdb), python3-boto3 and a radosgw: --rgw-env names the env
file of one started by tests/ceph/rgw.sh (default: $HYLAKE_RGW_ENV).
Progress goes to stderr, the table to stdout.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DUCKDB = ROOT / "tests" / "bench" / "duckdb"
BUCKET = "parquet-columns"
RTT_MS = 30

JS = """
import { DuckDBInstance } from "@duckdb/node-api";
const c = await (await DuckDBInstance.create(":memory:")).connect();
await c.run("SET threads = 2");
const [cmd, dir, n, rows] = process.argv.slice(1);
if (cmd === "write") {
  for (let i = 0; i < Number(n); i++) {
    const lo = i * Number(rows), hi = lo + Number(rows);
    await c.run(`COPY (SELECT range AS id, hash(range) AS a, hash(range + 1) % 100000 AS b,
                              md5(range::VARCHAR) AS h, (hash(range + 2) % 1000000) * 1.5 AS d,
                              hash(range + 3) AS e FROM range(${lo}, ${hi}))
                 TO '${dir}/part-${i}.parquet' (FORMAT parquet, ROW_GROUP_SIZE ${Number(rows) / 5})`);
  }
} else {
  const t = performance.now();
  const r = await c.runAndReadAll(`SELECT sum(b)::BIGINT, max(d)::DOUBLE, count(*)::BIGINT
                                   FROM read_parquet('${dir}/*.parquet')`);
  console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000,
                               answer: r.getRows()[0].map(String) }));
}
"""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def drop_caches():
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)


def node(*args, timeout=600):
    import json
    r = subprocess.run(["node", "--input-type=module", "-e", JS, *map(str, args)],
                       cwd=DUCKDB, capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise SystemExit(f"node: {r.stderr.strip()[-2000:]}")
    out = r.stdout.strip().splitlines()
    return json.loads(out[-1]) if out else None


def read_env(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition("=")
        env[k.strip()] = v.strip()
    return env


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = read_env(a.rgw_env)
        self.work = Path(tempfile.mkdtemp(prefix="parquet-columns-", dir="/var/tmp"))
        self.kept = 0
        if a.keep_logs:
            Path(a.keep_logs).mkdir(parents=True, exist_ok=True)
        self.local = self.work / "local"
        self.mnt = self.work / "mnt"
        self.procs = []
        self.results = {}

    def setup(self):
        import boto3
        self.local.mkdir()
        self.mnt.mkdir()
        log(f"writing {self.a.files} files of {self.a.rows} rows with DuckDB")
        node("write", self.local, self.a.files, self.a.rows)
        self.bytes = sum(p.stat().st_size for p in self.local.iterdir())
        s3 = boto3.client("s3", endpoint_url=self.env["RGW_ENDPOINT"],
                          aws_access_key_id=self.env["RGW_ACCESS_KEY"],
                          aws_secret_access_key=self.env["RGW_SECRET_KEY"],
                          region_name="us-east-1")
        try:
            s3.create_bucket(Bucket=BUCKET)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for p in sorted(self.local.iterdir()):
            s3.upload_file(str(p), BUCKET, f"t/{p.name}")
        creds = self.work / "credentials"
        creds.write_text("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n"
                         .format(self.env["RGW_ACCESS_KEY"], self.env["RGW_SECRET_KEY"]))
        creds.chmod(0o600)
        port = self.env["RGW_ENDPOINT"].rsplit(":", 1)[1]
        wan_port = str(int(port) + 15)
        proxy = subprocess.Popen([sys.executable, str(ROOT / "tests/bench/wanproxy.py"),
                                  "--upstream", f"127.0.0.1:{port}",
                                  "--listen", f"127.0.0.1:{wan_port}",
                                  "--rtt-ms", str(RTT_MS)],
                                 stdout=subprocess.PIPE, text=True)
        self.procs.append(proxy)
        if "listening" not in proxy.stdout.readline():
            raise SystemExit("wanproxy did not start")
        self.confs = {}
        for where, ep in (("near", self.env["RGW_ENDPOINT"]),
                          ("30 ms", f"http://127.0.0.1:{wan_port}")):
            c = self.work / f"{where.replace(' ', '')}.conf"
            c.write_text(f"[mount]\nstate_dir = {self.work}/state\ncache_size = 0\n"
                         f"[source]\ntype = s3\nendpoint = {ep}\nbucket = {BUCKET}\n"
                         f"region = us-east-1\ncredentials = {creds}\n")
            self.confs[where] = c

    def query_hylake(self, binary, where):
        shutil.rmtree(self.work / "state", ignore_errors=True)
        logf = self.work / "daemon.log"
        with open(logf, "w") as out:
            d = subprocess.Popen([binary, "mount", str(self.confs[where]), str(self.mnt), "-f",
                                  "-o", "log_level=trace"], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 30
            while not os.path.ismount(self.mnt):
                if d.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{binary} did not mount: {logf.read_text()[-2000:]}")
                time.sleep(0.05)
            drop_caches()
            r = node("query", self.mnt / "t")
        finally:
            subprocess.run(["fusermount3", "-u", str(self.mnt)], check=False)
            d.wait(timeout=30)
        got = 0
        for line in logf.read_text().splitlines():
            m = re.search(r"trace source: read '[^']*' \d+\+\d+ -> (\d+) ", line)
            t = re.search(r"trace source: open '[^']*' -> ok .* tail=(\d+)/", line)
            got += int(m.group(1)) if m else int(t.group(1)) if t else 0
        r["fetched"] = got
        if self.a.keep_logs:
            self.kept += 1
            name = f"{self.kept:02d}-{Path(binary).name}-{where.replace(' ', '')}.log"
            shutil.copy(logf, Path(self.a.keep_logs) / name)
        return r

    def query_local(self):
        drop_caches()
        return node("query", self.local)

    def run(self):
        systems = [("hylake", self.a.hylake_bin)]
        if self.a.baseline_bin:
            systems.append(("baseline build", self.a.baseline_bin))
        want = None
        for i in range(1, self.a.runs + 1):
            r = self.query_local()
            want = want or r["answer"]
            self.results.setdefault(("local disk", "-"), []).append(r)
            log(f"run {i}: local disk {r['seconds']:.2f} s")
            for where in ("near", "30 ms"):
                for name, binary in systems:
                    r = self.query_hylake(binary, where)
                    if r["answer"] != want:
                        raise SystemExit(f"{name} {where}: answer {r['answer']}, want {want}")
                    self.results.setdefault((name, where), []).append(r)
                    log(f"run {i}: {name} {where}: {r['seconds']:.2f} s, "
                        f"{r['fetched'] / 2**20:.0f} MiB fetched")

    def report(self):
        a = self.a
        print()
        print("hylake parquet-columns bench")
        print(f"command: {' '.join(sys.argv)}")
        print(f"{a.files} files x {a.rows} rows, {self.bytes / 2**20:.0f} MiB; query reads "
              f"2 of 6 columns; median of {a.runs} runs; source 30 ms away through "
              "wanproxy.py, or near (radosgw here)")
        base = statistics.median(r["seconds"] for r in self.results[("local disk", "-")])
        print(f"{'system':16}{'source':8}{'seconds':>9}{'vs local':>10}{'MiB fetched':>13}")
        for (name, where), rs in self.results.items():
            s = statistics.median(r["seconds"] for r in rs)
            f = statistics.median(r.get("fetched", 0) for r in rs) / 2**20
            print(f"{name:16}{where:8}{s:9.2f}{s / base:9.2f}x"
                  f"{f if name != 'local disk' else 0:13.0f}")

    def cleanup(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", str(self.mnt)], check=False)
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hylake-bin", default=os.environ.get("HYLAKE_BIN",
                                                           str(ROOT / "build" / "hylake")))
    ap.add_argument("--baseline-bin", help="another hylake binary to run the same rows")
    ap.add_argument("--keep-logs", metavar="DIR", help="keep each hylake run's trace log here")
    ap.add_argument("--rgw-env", default=os.environ.get("HYLAKE_RGW_ENV"),
                    help="env file of a radosgw started by tests/ceph/rgw.sh")
    a = ap.parse_args()
    if not a.rgw_env:
        ap.error("--rgw-env (or HYLAKE_RGW_ENV) is needed")
    if os.geteuid() != 0:
        ap.error("run as root (FUSE mounts, drop_caches)")
    b = Bench(a)
    try:
        b.setup()
        b.run()
        b.report()
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
