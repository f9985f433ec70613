"""Fixtures for the hylake integration suite (real FUSE mounts, real radosgw).

Run:  /usr/bin/python3 -m pytest -q tests/integration
Env:  HYLAKE_BIN      the binary (default <repo>/build/hylake)
      HYLAKE_RGW_ENV  an env file (RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY) of a
                      running radosgw; without it tests/ceph/rgw.sh starts one.
                      Site b (fixtures rgw_b, s3_b, bucket_b) comes from its
                      RGW_B_ENDPOINT, RGW_B_ACCESS_KEY, RGW_B_SECRET_KEY and RGW_DIR.
      HYLAKE_IT_KEEP  keep the session's scratch folder even when all tests pass.

The GCS tests (-k gcs) need no radosgw: they run tests/gcs/gcs_server.py (one
process per session, auth required) with a service-account key made by openssl.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hylib  # noqa: E402
from hylib import (  # noqa: E402
    HYLAKE_BIN, RGW, RGW_SH, Mounter, Workspace, mountpoints,
    drop_bucket, make_bucket, no_test_timeout, read_env_file, s3_client, start_rgw, stop_rgw,
    wait_http,
)

DEFAULT_TIMEOUT = 180


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


# --------------------------------------------------------------------------- session


@pytest.fixture(scope="session", autouse=True)
def hylake_bin():
    if not (HYLAKE_BIN.is_file() and os.access(HYLAKE_BIN, os.X_OK)):
        pytest.skip(f"hylake binary not found at {HYLAKE_BIN}: build it "
                    f"(cmake -S . -B build && cmake --build build) or set HYLAKE_BIN")
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("FUSE is not available here (/dev/fuse or fusermount3 missing)")
    return HYLAKE_BIN


@pytest.fixture(scope="session")
def base_dir(request):
    base = Path(tempfile.mkdtemp(prefix="hylake-it-", dir="/tmp"))
    yield base
    # last line of defence: nothing may stay mounted under our scratch folder
    left = [mp for mp, _ in mountpoints() if mp == str(base) or mp.startswith(str(base) + "/")]
    for mp in left:
        hylib._run_quiet(["fusermount3", "-u", mp])
        if hylib.is_mounted(mp):
            hylib._run_quiet(["umount", "-l", mp])
    still = [mp for mp, _ in mountpoints() if mp.startswith(str(base) + "/")]
    if not still and request.session.testsfailed == 0 and not os.environ.get("HYLAKE_IT_KEEP"):
        shutil.rmtree(base, ignore_errors=True)
    elif request.session.testsfailed:
        sys.stderr.write(f"\nhylake integration scratch kept in {base}\n")


@pytest.fixture(scope="session")
def rgw(base_dir):
    envfile = os.environ.get("HYLAKE_RGW_ENV")
    if envfile:
        env = read_env_file(envfile)
        r = RGW(env["RGW_ENDPOINT"].rstrip("/"), env["RGW_ACCESS_KEY"], env["RGW_SECRET_KEY"])
        wait_http(r.endpoint, 30)
        yield r
        return
    if not RGW_SH.exists():
        pytest.skip(f"no radosgw: set HYLAKE_RGW_ENV or provide {RGW_SH}")
    workdir = base_dir / "rgw"
    with no_test_timeout():
        try:
            r = start_rgw(workdir)
            r = RGW(r.endpoint.rstrip("/"), r.access_key, r.secret_key, owned=True)
            wait_http(r.endpoint, 60)
        except Exception as e:
            with contextlib.suppress(Exception):
                stop_rgw(workdir)
            pytest.fail(f"could not start radosgw with {RGW_SH}: {e}", pytrace=False)
    try:
        yield r
    finally:
        stop_rgw(workdir)


@pytest.fixture(scope="session")
def s3(rgw):
    return s3_client(rgw)


@pytest.fixture(scope="session")
def rgw_b(rgw, base_dir):
    """Site b: a second radosgw on the same Ceph cluster with its own users and
    buckets (hylib.RGWSite: endpoint, access_key, secret_key, stop(), kill(),
    start()).  From HYLAKE_RGW_ENV's RGW_B_* keys (rgw.sh's DIR from its RGW_DIR),
    else from the cluster the `rgw` fixture started.  Session-wide: a test that
    stops or kills it must start() it again (try/finally)."""
    envfile = os.environ.get("HYLAKE_RGW_ENV")
    path = Path(envfile) if envfile else base_dir / "rgw" / "env"
    site = hylib.rgw_site_b(read_env_file(path), owned=rgw.owned)
    if site is None:
        pytest.skip(f"no radosgw site b in {path} (started by an older rgw.sh, or RGW_SITE_B=0)")
    wait_http(site.endpoint, 30)
    yield site
    # leave a long-lived cluster as we found it, even if a test forgot to restart
    if not rgw.owned and site.workdir is not None and not site.running():
        site.start()


@pytest.fixture(scope="session")
def s3_b(rgw_b):
    """boto3 client for site b with site b's credentials."""
    return s3_client(rgw_b)


@pytest.fixture
def bucket_b(request, s3_b, rgw_b):
    """A fresh bucket on site b."""
    name = make_bucket(s3_b, request.node.name)
    yield name
    drop_bucket(s3_b, rgw_b, name)


def _node_dirname(request) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:70]


# --------------------------------------------------------------------------- per test


@pytest.fixture
def ws(request, base_dir) -> Workspace:
    root = Path(tempfile.mkdtemp(prefix=_node_dirname(request) + "-", dir=base_dir))
    return Workspace(root, get_rgw=lambda: request.getfixturevalue("rgw"),
                     get_gcs=lambda: request.getfixturevalue("gcs_server"))


@pytest.fixture
def bucket(request, s3, rgw):
    name = make_bucket(s3, request.node.name)
    yield name
    drop_bucket(s3, rgw, name)


@pytest.fixture
def mounter(ws):
    m = Mounter(ws.root)
    yield m
    problems = m.cleanup()
    if problems:
        pytest.fail("mount teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def proxy(rgw):
    from proxy import FaultProxy

    p = FaultProxy(rgw.endpoint).start()
    yield p
    p.clear_faults()
    p.stop()


# --------------------------------------------------------------------------- GCS


@pytest.fixture(scope="session")
def pubsub_server(base_dir):
    """The Pub/Sub test server (tests/pubsub) for the session; the GCS test
    server publishes its buckets' notifications to it."""
    from pubsub_client import PubsubProcess
    with no_test_timeout():
        try:
            p = PubsubProcess(base_dir / "pubsub", pull_wait_ms=500).start()
        except Exception as e:
            pytest.fail(f"could not start tests/pubsub/pubsub_server.py: {e}",
                        pytrace=False)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def gcs_server(base_dir, pubsub_server):
    """The GCS test server for the whole session (stopped by PID at the end)."""
    with no_test_timeout():
        try:
            g = hylib.start_gcs(base_dir / "gcs", pubsub_url=pubsub_server.url)
        except Exception as e:
            pytest.fail(f"could not start tests/gcs/gcs_server.py: {e}", pytrace=False)
    # the Pub/Sub server checks the tokens it is sent against this GCS
    # server's /tokeninfo (a token without the pubsub scope is refused)
    from pubsub_client import PubsubClient
    PubsubClient(pubsub_server.url).control.config(auth_url=g.url)
    try:
        yield g
    finally:
        g.proc.stop()


@pytest.fixture
def gcs(gcs_server):
    """The session's GCS server with its settings at their defaults before and
    after the test (delay, paging, token lifetime, auth)."""
    gcs_server.control.config(**hylib.GCS_DEFAULTS)
    yield gcs_server
    gcs_server.control.config(**hylib.GCS_DEFAULTS)
    assert gcs_server.proc.alive(), "the GCS test server died during the test"


@pytest.fixture
def gcs_bucket(request, gcs):
    name = gcs.make_bucket(request.node.name)
    yield name
    gcs.control.config(**hylib.GCS_DEFAULTS)  # a delay left set would slow the clean-up
    gcs.drop_bucket(name)


# --------------------------------------------------------------------------- shared data

@pytest.fixture(scope="session")
def bucket_10k(rgw, s3):
    """A bucket with 10,000 one-byte objects under big/ (and a couple of others),
    made once per session; on a long-lived radosgw (HYLAKE_RGW_ENV) it is reused
    across sessions when it is already complete."""
    name = "hylake-it-list10k" if not rgw.owned else hylib.unique("hyt-list10k")
    want = set(hylib.list10k_keys()) | {"other/x", "zzz.txt"}
    with no_test_timeout():
        try:
            have = set(hylib.list_all(s3, name))
        except s3.exceptions.NoSuchBucket:
            s3.create_bucket(Bucket=name)
            have = set()
        for extra in have - want:
            s3.delete_object(Bucket=name, Key=extra)
        missing = want - have
        if missing:
            hylib.put_many(s3, name, {k: b"x" for k in sorted(missing)}, threads=32)
        assert set(hylib.list_all(s3, name)) == want
    return name
