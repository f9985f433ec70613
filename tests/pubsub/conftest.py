"""Fixtures for the Pub/Sub test server's own tests (tests/pubsub/test_pubsub_server.py).

Run:  /usr/bin/python3 -m pytest -q tests/pubsub
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pubsub_client import PubsubClient, PubsubProcess  # noqa: E402
from pubsub_server import DEFAULT_CONFIG  # noqa: E402

collect_ignore = ["conformance"]  # Node's (node_modules may hold stray .py files)

PULL_WAIT_MS = 300  # how long an empty pull waits here (the server's default is 1 s)


@pytest.fixture(scope="session")
def pull_wait_ms():
    return PULL_WAIT_MS


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("pubsub")


@pytest.fixture(scope="session")
def server(workdir):
    p = PubsubProcess(workdir / "ps", pull_wait_ms=PULL_WAIT_MS).start()
    yield p
    p.stop()
    assert not p.alive()


@pytest.fixture
def ps(server):
    """A client; the server's settings and faults are back to their start values after
    each test."""
    c = PubsubClient(server.url)
    yield c
    c.control.config(**dict(DEFAULT_CONFIG, pull_wait_ms=PULL_WAIT_MS))
    c.control.fail(count=0)


@pytest.fixture
def names():
    """Fresh topic and subscription ids for one test."""
    tag = secrets.token_hex(4)
    return type("Names", (), {"topic": f"topic-{tag}", "sub": f"sub-{tag}",
                              "sub2": f"sub2-{tag}"})
