"""Replica routing across the two on-prem sites of the test cluster: GCS (the
test server) as the source, radosgw site a as replica `east` and site b as
replica `west`, each with its own users and buckets.  Replicas are made with
`hylake replicate`; which store served a read is told by user.hylake.* and
the stores' request logs."""

import os
import threading
import time

import pytest

from hylib import MiB, child_read, run_hylake, sha256
from lakelib import Lake, drop_caches, read_all, xattr
from proxy import FaultProxy


class TwoSites(Lake):
    """A Lake whose replicas are the two radosgw sites."""

    def __init__(self, gcs, bucket, ws, east, west):
        super().__init__(gcs, bucket, east[1], east[2], ws)
        self.east, self.west = east, west      # (rgw, s3 client, bucket)

    def config(self, order=("east", "west"), endpoints=None, mount=None):
        endpoints = endpoints or {}
        mount = {"cache_size": "0", **(mount or {})}     # see Lake.config
        cfg = self.ws.gcs_config(self.bucket, mount=mount)
        with open(cfg, "a") as f:
            for site in order:
                rgw, _, bucket = getattr(self, site)
                creds = self.ws.creds(rgw.access_key, rgw.secret_key)
                f.write(f"\n[replica {site}]\ntype = s3\n"
                        f"endpoint = {endpoints.get(site, rgw.endpoint)}\n"
                        f"bucket = {bucket}\nregion = us-east-1\ncredentials = {creds}\n")
        return cfg

    def replicate(self, to, *args, cfg=None, timeout=300):
        res = super().replicate(to, *args, cfg=cfg, timeout=timeout)
        assert res.returncode == 0, res.stdout + res.stderr
        return res

    def stamp(self, site, name):
        _, s3, bucket = getattr(self, site)
        return s3.head_object(Bucket=bucket, Key=name)["Metadata"].get("goog-generation")


@pytest.fixture
def sites(gcs, gcs_bucket, ws, rgw, s3, bucket, rgw_b, s3_b, bucket_b):
    return TwoSites(gcs, gcs_bucket, ws, (rgw, s3, bucket), (rgw_b, s3_b, bucket_b))


def test_each_site_serves_what_it_holds_current(sites, mounter):
    sites.put("t/a", os.urandom(2 * MiB))
    sites.replicate("east")
    sites.replicate("west")
    m = mounter.mount(sites.config(mount={"replica_recheck": "0s"}),
                      opts="entry_timeout=0,attr_timeout=0")
    # 1. both current: the preferred site serves, GCS sends no data bytes
    mark = sites.gcs.control.log_mark()
    assert read_all(m / "t/a") == sites.data["t/a"]
    assert xattr(m / "t/a", "source") == "east"
    assert sites.media_reads(mark, "t/a") == []
    # 2. GCS moves on and only west catches up: east lags, west serves
    old = sites.gen("t/a")
    sites.put("t/a", os.urandom(2 * MiB + 1))
    sites.replicate("west")
    mark = sites.gcs.control.log_mark()
    assert read_all(m / "t/a") == sites.data["t/a"]
    assert xattr(m / "t/a", "source") == "west"
    assert f"east=lagging:{old}" in xattr(m / "t/a", "replicas")
    assert sites.media_reads(mark, "t/a") == []
    # 3. both lag: GCS serves
    sites.put("t/a", os.urandom(2 * MiB + 2))
    mark = sites.gcs.control.log_mark()
    assert read_all(m / "t/a") == sites.data["t/a"]
    assert xattr(m / "t/a", "source") == "source"
    assert sites.media_reads(mark, "t/a")
    # ... until the replicator catches east up
    sites.replicate("east")
    assert sites.stamp("east", "t/a") == str(sites.gen("t/a"))
    drop_caches()                    # else the kernel's pages answer
    assert read_all(m / "t/a") == sites.data["t/a"]
    assert xattr(m / "t/a", "source") == "east"


def test_a_replica_pointed_at_the_other_site_fails_and_costs_nothing(sites, mounter):
    sites.put("t/x", os.urandom(1 * MiB))
    sites.replicate("west")
    # east's bucket and credentials, but west's endpoint
    cfg = sites.config(endpoints={"east": sites.west[0].endpoint})
    res = run_hylake("check", cfg)
    assert res.returncode == 1
    east_line = [ln for ln in res.stdout.splitlines() if ln.startswith("east")][0]
    assert "FAILED" in east_line and "credentials rejected" in east_line, res.stdout
    m = mounter.mount(cfg)
    mark = sites.gcs.control.log_mark()
    assert read_all(m / "t/x") == sites.data["t/x"]
    assert xattr(m / "t/x", "source") == "west"
    assert sites.media_reads(mark, "t/x") == []


def test_site_killed_in_the_middle_of_a_200mib_read(sites, mounter):
    big = os.urandom(200 * MiB)
    sites.put("t/big", big)
    sites.replicate("east")
    sites.replicate("west")
    west = sites.west[0]
    # West is preferred and slowed a little, so the read is still going
    # when west's radosgw is killed.
    with FaultProxy(west.endpoint) as p:
        cfg = sites.config(order=("west", "east"), endpoints={"west": p.url})
        m = mounter.mount(cfg)
        os.stat(m / "t/big")
        p.set_fault("delay", match=lambda r: r.method == "GET", seconds=0.01)
        out = {}
        reader = threading.Thread(target=lambda: out.update(
            child_read(m / "t/big", timeout=240)))
        reader.start()
        try:
            def asked():   # bytes asked of west so far (reads ahead come in chunks)
                return sum(int(b) - int(a) + 1 for a, b in
                           (r.range.split("=")[1].split("-") for r in p.requests("GET")
                            if r.range))

            deadline = time.monotonic() + 30
            while asked() < 40 * MiB and time.monotonic() < deadline:
                time.sleep(0.05)
            before = asked()
            west.kill()
            reader.join(240)
            source_after = xattr(m / "t/big", "source")     # west still down
        finally:
            west.start()
        assert not reader.is_alive(), "the read hung after the site died"
        assert before >= 40 * MiB, "west served nothing before it was killed"
    assert out.get("ok"), out
    assert out["sha256"] == sha256(big), "the read returned wrong bytes across the kill"
    assert source_after == "east", "the next read would go to the dead site"
