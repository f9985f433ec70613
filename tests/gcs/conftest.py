"""Fixtures for the GCS test server's own tests (tests/gcs/test_gcs_server.py) and
for hylake's GCS writes to it (tests/gcs/test_gcs_writes.py).

Run:  /usr/bin/python3 -m pytest -q tests/gcs
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gcs_client import (  # noqa: E402
    GcsClient, ServerProcess, openssl_genrsa, openssl_pubkey,
)

collect_ignore = ["conformance"]  # Node's (node_modules may hold stray .py files)

SA_EMAIL = "tester@hylake-test.iam.gserviceaccount.com"
SA_KID = "kid-" + "0" * 36


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60))


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="hylake-gcs-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def sa(workdir):
    key = openssl_genrsa(workdir / "sa.pem")
    pub = openssl_pubkey(key, workdir / "sa.pub.pem")
    other = openssl_genrsa(workdir / "other.pem")
    return SimpleNamespace(email=SA_EMAIL, kid=SA_KID, key=key, pub=pub, other=other,
                           key_pem=key.read_bytes(), other_pem=other.read_bytes())


@pytest.fixture(scope="session")
def server(workdir, sa):
    p = ServerProcess(workdir / "srv", require_auth=True,
                      public_keys=[(sa.email, sa.kid, sa.pub)]).start()
    yield p
    p.stop()
    assert not p.alive()


@pytest.fixture
def gcs(server):
    """A client with a read-write token from the metadata endpoint; the server's
    settings are back to their start values after each test."""
    c = GcsClient(server.url)
    yield c
    c.control.config(delay_ms=0, paging={}, token_lifetime=3600, require_auth=True,
                     public_read=False, metadata_enabled=True, chunked="transcode",
                     audiences=[], delay_only=[])
    c.control.faults([])


@pytest.fixture
def bucket(gcs):
    name = "b-" + secrets.token_hex(6)
    gcs.create_bucket(name)
    return name
