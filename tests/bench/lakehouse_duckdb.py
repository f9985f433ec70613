#!/usr/bin/python3
"""A DuckDB query of a Delta table through hylake: GCS (the test server, with
a WAN-like delay on every request) as the source, a radosgw bucket made by
`hylake replicate` as the replica, under each freshness mode, against the
same table on local disk.

The table: FILES Parquet files of ROWS rows written by DuckDB itself and one
commit (`_delta_log/00000000000000000000.json`) adding them.  The default,
200 files of 2,000,000 rows (3.6 GB), makes the query on local disk take
about half a second, as a real table's would, so that what hylake adds is
seen against real work; `--rows 5000` (11 MB) is the small table of old,
where the fixed cost of a few GCS round trips is all there is to see.  The query
(tests/bench/duckdb/delta.mjs, DuckDB's Node API from npm) reads it the way a
Delta reader does: the pointer file `_last_checkpoint` (absent), the
listing of `_delta_log/`, the commits, then
`SELECT count(*), sum(v) FROM read_parquet([the files the commits add])`.

Per row: a fresh mount (empty version map and block cache); a first query
(cold); RUNS warm queries (median); the requests GCS and radosgw received
during the warm ones; then a writer commits version 1 in GCS only (a new
data file and `_delta_log/...1.json`) and the next query says whether it
sees it.

    tests/bench/lakehouse_duckdb.py [--files 200] [--rows 2000000] [--delay-ms 30]
        [--runs 3] [--rgw-dir DIR | --rgw-port 29480 --mon-port 29789]
        [--workdir DIR] [--keep]

Needs root (FUSE), a built hylake (build/hylake or $HYLAKE_BIN), node and
npm (DuckDB is installed from npm into tests/bench/duckdb by
tests/npm_ci.sh), radosgw (tests/ceph/rgw.sh; it starts its own, site a only,
on --rgw-port/--mon-port, unless --rgw-dir names one already running),
python3-boto3, python3-cryptography.  With the default table 8 to 9
minutes on 2 cores, 7.5 GB of disk under /var/tmp (the local table and one
row's cache_dir) and up to 12 GB of RAM (the GCS test server and radosgw's
memstore each hold the table); `--rows 5000`: about 2 minutes.  Progress goes to stderr, the
table to stdout.
"""
import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import rgwlog
from gcslib import HYLAKE, ROOT, GcsSource, log, mount, umount, write_secret

DUCKDB = ROOT / "tests" / "bench" / "duckdb"
RGW_SH = ROOT / "tests" / "ceph" / "rgw.sh"
TABLE = "tables/sales"              # the table's prefix in the bucket
LOG = f"{TABLE}/_delta_log"
REPLICA = "dc-east"


def run(cmd, timeout=120, **kw):
    r = subprocess.run([str(c) for c in cmd], timeout=timeout, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise SystemExit(f"lakehouse_duckdb: {shlex.join(map(str, cmd))} exited "
                         f"{r.returncode}:\n{r.stderr[-2000:]}")
    return r


def commit_name(v):
    return f"{v:020d}.json"


def add_actions(names_sizes, version):
    """A Delta commit: protocol and metaData in version 0, one add per file."""
    now = int(time.time() * 1000)
    lines = [{"commitInfo": {"timestamp": now, "operation": "WRITE",
                             "operationParameters": {"mode": "Append"}}}]
    if version == 0:
        schema = {"type": "struct", "fields": [
            {"name": "id", "type": "long", "nullable": True, "metadata": {}},
            {"name": "v", "type": "long", "nullable": True, "metadata": {}},
            {"name": "s", "type": "string", "nullable": True, "metadata": {}}]}
        lines += [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                  {"metaData": {"id": "00000000-0000-0000-0000-000000000001",
                                "format": {"provider": "parquet", "options": {}},
                                "schemaString": json.dumps(schema),
                                "partitionColumns": [], "configuration": {},
                                "createdTime": now}}]
    lines += [{"add": {"path": n, "partitionValues": {}, "size": size,
                       "modificationTime": now, "dataChange": True}}
              for n, size in names_sizes]
    return ("\n".join(json.dumps(x) for x in lines) + "\n").encode()


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.workdir or tempfile.mkdtemp(prefix="hylake-lakebench-",
                                                       dir="/var/tmp")).absolute()
        self.work.mkdir(parents=True, exist_ok=True)
        self.mnt = self.work / "mnt"
        self.mnt.mkdir(exist_ok=True)
        self.source = GcsSource()
        self.rgw_dir = None
        self.rgw_started = False
        self.s3 = None
        self.bucket = f"lakebench-{os.getpid()}"

    # -- setup -------------------------------------------------------------

    def setup(self):
        a = self.a
        run([HYLAKE, "--version"], timeout=10)
        if not shutil.which("node") or not shutil.which("npm"):
            raise SystemExit("lakehouse_duckdb: needs node and npm "
                             "(packaging/install-deps.sh)")
        log("DuckDB from npm (tests/npm_ci.sh tests/bench/duckdb)")
        run(["bash", ROOT / "tests" / "npm_ci.sh", DUCKDB], timeout=300)
        self.duckdb_version = json.loads((DUCKDB / "node_modules" / "@duckdb" / "node-api"
                                          / "package.json").read_text())["version"]

        # the table, on local disk: the baseline, and what gets uploaded
        self.local = self.work / "local" / "sales"
        (self.local / "_delta_log").mkdir(parents=True, exist_ok=True)
        log(f"writing {a.files} Parquet files of {a.rows} rows with DuckDB")
        run(["node", DUCKDB / "delta.mjs", "write", self.local, 0, a.files, a.rows], timeout=300)
        newdir = self.work / "new"
        newdir.mkdir(exist_ok=True)
        run(["node", DUCKDB / "delta.mjs", "write", newdir, a.files, 1, a.rows], timeout=60)
        self.new_bytes = (newdir / f"part-{a.files:05d}.parquet").read_bytes()
        files = sorted(p for p in self.local.iterdir() if p.suffix == ".parquet")
        self.table_bytes = sum(p.stat().st_size for p in files)
        (self.local / "_delta_log" / commit_name(0)).write_bytes(
            add_actions([(p.name, p.stat().st_size) for p in files], 0))
        self.expect = a.files * a.rows

        # GCS: the test server, a service-account key, the table uploaded
        self.gcs = self.source.start(self.work).client
        paths = sorted(p for p in self.local.rglob("*") if p.is_file())
        log(f"uploading {len(paths)} objects ({self.table_bytes / 1e6:.1f} MB) to GCS")
        for i in range(0, len(paths), 16):     # 16 files in memory at a time
            self.gcs.put_many("lake", {f"{TABLE}/{p.relative_to(self.local)}": p.read_bytes()
                                       for p in paths[i:i + 16]})

        # the replica: a radosgw bucket
        self.start_rgw()
        import boto3
        self.s3 = boto3.client("s3", endpoint_url=self.rgw["RGW_ENDPOINT"],
                               region_name="us-east-1",
                               aws_access_key_id=self.rgw["RGW_ACCESS_KEY"],
                               aws_secret_access_key=self.rgw["RGW_SECRET_KEY"])
        self.s3.create_bucket(Bucket=self.bucket)
        self.creds = write_secret(self.work / "rgw.credentials", (
            f"[default]\naws_access_key_id = {self.rgw['RGW_ACCESS_KEY']}\n"
            f"aws_secret_access_key = {self.rgw['RGW_SECRET_KEY']}\n"), 0o600)
        log(f"hylake replicate --to {REPLICA} (radosgw bucket {self.bucket})")
        r = run([HYLAKE, "replicate", self.config("strict", True), "--to", REPLICA,
                 "--jobs", "4"], timeout=300)
        self.replicate_summary = r.stdout.strip().splitlines()[-1]
        log(self.replicate_summary)
        self.gcs.control.config(delay_ms=a.delay_ms)

    def start_rgw(self):
        a = self.a
        if a.rgw_dir:
            self.rgw_dir = Path(a.rgw_dir).absolute()
        else:
            self.rgw_dir = self.work / "rgw"
            # the OSD keeps objects in RAM: room for the table and 1 GiB more
            memstore = self.table_bytes + (1 << 30)
            env = dict(os.environ, RGW_PORT=str(a.rgw_port), MON_PORT=str(a.mon_port),
                       RGW_SITE_B="0", MEMSTORE_BYTES=str(memstore))
            log(f"starting radosgw in {self.rgw_dir} (port {a.rgw_port}, mon {a.mon_port}, "
                f"memstore {memstore / (1 << 30):.1f} GiB)")
            self.rgw_started = True
            run(["bash", RGW_SH, "start", self.rgw_dir], timeout=300, env=env)
        self.rgw = {}
        for line in (self.rgw_dir / "env").read_text().splitlines():
            k, _, v = line.partition("=")
            self.rgw[k] = shlex.split(v)[0] if v else ""
        self.rgw_log = self.rgw_dir / "log" / "client.rgw.log"

    def config(self, freshness, replica, name=None):
        """A mount configuration with its own (fresh) state and cache folders."""
        tag = name or f"{freshness.replace(':', '-')}-{'rep' if replica else 'gcs'}"
        for d in ("state", "cache"):
            shutil.rmtree(self.work / f"{d}-{tag}", ignore_errors=True)
        cfg = self.work / f"{tag}.conf"
        text = (f"[mount]\nstate_dir = {self.work}/state-{tag}\n"
                f"cache_dir = {self.work}/cache-{tag}\nfreshness = {freshness}\n"
                f"metrics_file = {self.work}/metrics-{tag}.prom\nmetrics_interval = 1s\n"
                + self.source.section())
        if replica:
            text += (f"[replica {REPLICA}]\ntype = s3\n"
                     f"endpoint = {self.rgw['RGW_ENDPOINT']}\nbucket = {self.bucket}\n"
                     f"region = us-east-1\ncredentials = {self.creds}\n")
        cfg.write_text(text)
        return cfg

    # -- measuring ---------------------------------------------------------

    def rgw_mark(self):
        return rgwlog.mark(self.rgw_log)

    def rgw_requests(self, pos):
        """Requests for our bucket radosgw logged since rgw_mark()."""
        text = rgwlog.since(self.rgw_log, pos)
        if text is None:
            return None
        return len(re.findall(rf'beast: \S+ .*?"[A-Z]+ /{self.bucket}\b', text))

    def query(self, table):
        """One query in its own process: (result dict, GCS request kinds, radosgw
        requests, GCS requests by what they asked for)."""
        mark, rmark = self.gcs.control.log_mark(), self.rgw_mark()
        r = run(["node", DUCKDB / "delta.mjs", "query", table], timeout=self.a.query_timeout)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        kinds, what = {}, {}
        for e in self.gcs.control.log(mark):
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
            w = request_text(e)
            what[w] = what.get(w, 0) + 1
        return res, kinds, self.rgw_requests(rmark), what

    def hedges(self, cfg):
        """(hedged reads, hedges won) so far, from the mount's metrics_file,
        rewritten every second: read once two rewrites have passed."""
        time.sleep(2.2)
        text = (self.work / f"metrics-{cfg.stem}.prom").read_text()
        got = [re.search(rf"^{m} (\S+)$", text, re.M)
               for m in ("hylake_hedged_reads_total", "hylake_hedge_wins_total")]
        return tuple(int(float(g.group(1))) if g else 0 for g in got)

    def new_commit(self):
        """A writer commits version 1 in GCS (the replica does not get it)."""
        name = f"part-{self.a.files:05d}-new.parquet"
        self.gcs.upload("lake", f"{TABLE}/{name}", self.new_bytes)
        self.gcs.upload("lake", f"{LOG}/{commit_name(1)}",
                        add_actions([(name, len(self.new_bytes))], 1))
        return name

    def undo_commit(self, name):
        self.gcs.delete("lake", f"{LOG}/{commit_name(1)}")
        self.gcs.delete("lake", f"{TABLE}/{name}")

    def measure(self, label, table, cfg=None):
        a = self.a
        log(f"{label}: first query")
        if cfg:
            mount(cfg, self.mnt)
        try:
            first, ckinds, crgw, _ = self.query(table)
            hedged = self.hedges(cfg) if cfg else None
            log(f"{label}: cold {first['seconds']:.2f}s, GCS {kinds_text(ckinds)}, "
                f"radosgw {crgw}, hedged reads (won) {hedged}")
            if first["count"] != self.expect:
                raise SystemExit(f"lakehouse_duckdb: {label}: count {first['count']}, "
                                 f"expected {self.expect}")
            warm, local = [], []
            for i in range(a.runs):
                if cfg:     # the local table alongside, under the same load
                    local.append(self.query(self.local)[0]["seconds"])
                res, kinds, rgw, what = self.query(table)
                warm.append((res["seconds"], sum(kinds.values()), kinds, rgw, what))
            log(f"{label}: warm {[round(w[0], 3) for w in warm]}"
                + (f", local disk alongside {[round(x, 3) for x in local]}" if cfg else ""))
            seen, source = "n/a (a copy)", "local disk"
            if cfg:
                source = os.getxattr(Path(table) / "part-00000.parquet",
                                     "user.hylake.source").decode()
                name = self.new_commit()
                try:
                    res, _, _, _ = self.query(table)
                    seen = "yes" if res["count"] == self.expect + a.rows else "no"
                    log(f"{label}: after a new commit in GCS: {res['count']} rows ({seen})")
                finally:
                    self.undo_commit(name)
        finally:
            if cfg:
                umount(self.mnt)
                if not a.keep:      # the cold query filled it with the whole table
                    shutil.rmtree(self.work / f"cache-{cfg.stem}", ignore_errors=True)
        med = statistics.median(w[0] for w in warm)
        # the requests of the run with the median count, so that the count
        # and its breakdown by kind come from one query
        mid = sorted(warm, key=lambda w: w[1])[len(warm) // 2]
        return {"label": label, "cold": first["seconds"], "warm": med,
                "local": statistics.median(local) if cfg else med,
                "cold_gcs": sum(ckinds.values()), "cold_kinds": ckinds,
                "cold_rgw": crgw if cfg else None, "hedged": hedged,
                "gcs": mid[1], "kinds": mid[2], "what": [w[4] for w in warm],
                "rgw": statistics.median(w[3] for w in warm) if cfg and mid[3] is not None
                else None, "seen": seen, "source": source}

    def rows(self):
        t = self.mnt / TABLE
        out = [self.measure("local disk", self.local)]
        out.append(self.measure("GCS only, strict", t, self.config("strict", False)))
        for fresh in ("strict", "bounded:10m", "lakehouse"):
            out.append(self.measure(f"GCS + replica, {fresh}", t, self.config(fresh, True)))
        return out

    # -- teardown ----------------------------------------------------------

    def cleanup(self):
        umount(self.mnt)
        self.source.stop()
        if self.s3 and not self.rgw_started:
            try:      # a radosgw we did not start: leave it as it was
                for page in self.s3.get_paginator("list_objects_v2").paginate(
                        Bucket=self.bucket):
                    for o in page.get("Contents", []):
                        self.s3.delete_object(Bucket=self.bucket, Key=o["Key"])
                self.s3.delete_bucket(Bucket=self.bucket)
            except Exception as e:        # noqa: BLE001  (best effort)
                log(f"could not delete bucket {self.bucket}: {e}")
        if self.rgw_started:
            subprocess.run(["bash", str(RGW_SH), "stop", str(self.rgw_dir)], timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def kinds_text(kinds):
    short = {"objects.list": "list", "objects.get": "get", "objects.media": "media",
             "token": "token"}
    parts = [f"{n} {short.get(k, k)}" for k, n in sorted(kinds.items())]
    return ", ".join(parts) if parts else "-"


def request_text(e):
    """One GCS request as `list tables/sales/_delta_log/` or `get
    tables/sales/part-*.parquet (404)`: the kind and the object or the listed
    prefix ('' for the bucket's root; data files as part-*)."""
    kind = {"objects.list": "list", "objects.get": "get",
            "objects.media": "media"}.get(e["kind"], e["kind"])
    name = e.get("object")
    if e["kind"] == "objects.list":
        q = urllib.parse.parse_qs(e.get("query") or "", keep_blank_values=True)
        name = q.get("prefix", [""])[0]
        if "delimiter" not in q:
            kind += " (no delimiter)"
    if name is not None:
        name = re.sub(r"/part-\d+\.parquet$", "/part-*.parquet", name)
        kind += f" {name or repr('')}"
    if e.get("status") not in (200, 206, None):
        kind += f" ({e['status']})"
    return kind


def report(b, rows, argv):
    a = b.a
    ver = run([HYLAKE, "--version"], timeout=10).stdout.strip()
    print(f"\n$ {shlex.join(argv)}")
    print(f"{ver}; DuckDB {b.duckdb_version} (npm @duckdb/node-api); "
          f"{os.cpu_count()} cores, {platform.release()}")
    print(f"Delta table: {a.files} Parquet files of {a.rows} rows "
          f"({b.table_bytes / 1e6:.1f} MB), one commit; GCS delay {a.delay_ms} ms per "
          f"request; replica: radosgw, made by hylake replicate ({b.replicate_summary})")
    print(f"warm: median of {a.runs} queries after a first (cold) one on a fresh mount "
          f"(empty version map and block cache), each right after a query of the local "
          f"table (local s: their median; vs local: warm s / local s, so both saw the "
          f"same load); default block cache and kernel timeouts\n")
    cbase = rows[0]["cold"]
    print("| row | warm s | local s | vs local | GCS requests, warm | radosgw, warm | cold s "
          "| vs local | GCS requests, cold | radosgw, cold | served by | new commit seen |")
    print("|" + "---|" * 12)
    for r in rows:
        local = r["label"] == "local disk"
        gcs = "-" if local else f"{r['gcs']:g} ({kinds_text(r['kinds'])})"
        cgcs = "-" if local else f"{r['cold_gcs']} ({kinds_text(r['cold_kinds'])})"
        rgw = "-" if r["rgw"] is None else f"{r['rgw']:g}"
        crgw = "-" if r["cold_rgw"] is None else f"{r['cold_rgw']}"
        print(f"| {r['label']} | {r['warm']:.3f} | {r['local']:.3f} "
              f"| {r['warm'] / r['local']:.2f}x | {gcs} | {rgw} "
              f"| {r['cold']:.2f} | {r['cold'] / cbase:.0f}x | {cgcs} | {crgw} "
              f"| {r['source']} | {r['seen']} |")
    print("\nwarm/cold s: the query's own time (pointer file to result, tests/bench/duckdb/"
          "delta.mjs), not node's start; requests: received by GCS / radosgw during it "
          "(warm GCS: the run with the median count, with its kinds; warm radosgw: the "
          "median); served by: user.hylake.source of a data file; "
          "new commit seen: a commit made in GCS only (a new data file and "
          "_delta_log/...1.json) is in the next query's count")
    print("\nreads the cold query hedged to the next store (hylake_hedged_reads_total), "
          "and how many of those the hedge answered first (hylake_hedge_wins_total):")
    for r in rows[1:]:
        print(f"- {r['label']}: {r['hedged'][0]} hedged, {r['hedged'][1]} won")
    print("\nGCS requests of each warm query, by what they asked for (the object or "
          "listed prefix; the status when not 200):")
    for r in rows[1:]:
        print(f"- {r['label']}:")
        for i, what in enumerate(r["what"], 1):
            text = ", ".join(f"{w} x{n}" for w, n in sorted(what.items()))
            print(f"  - run {i} ({sum(what.values())}): {text or 'none'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000,
                    help="rows per file (5000: the small table of old)")
    ap.add_argument("--delay-ms", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rgw-dir", help="use the radosgw running from this "
                    "tests/ceph/rgw.sh DIR (site a) instead of starting one")
    ap.add_argument("--rgw-port", type=int, default=29480)
    ap.add_argument("--mon-port", type=int, default=29789)
    ap.add_argument("--workdir", help="default: a new folder under /var/tmp")
    ap.add_argument("--query-timeout", type=float, default=120)
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(a)
    try:
        b.setup()
        rows = b.rows()
    finally:
        b.cleanup()
    report(b, rows, [sys.argv[0]] + sys.argv[1:])


if __name__ == "__main__":
    main()
