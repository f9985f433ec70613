"""test_tree.py's tree, on the GCS store: the same test functions, run against
a `tree` fixture that uploads the tree to the GCS test server (JSON API uploads,
resumable above 8 MiB) and mounts it with `type = gcs`.

Only the mtime check differs: GCS gives timeCreated in milliseconds, and the
mount must show exactly that (st_mtime_ns truncated to ms)."""

import os
import random
from types import SimpleNamespace

import pytest

from gcs_client import rfc3339_to_ns
from hylib import GCS_DEFAULTS, Mounter, Workspace
import test_tree
from test_tree import build_tree, files_of

# every test of test_tree.py but its S3-specific mtime check, collected here again
# (so with this module's `tree`); a test added there runs on GCS too
S3_ONLY = {"test_mtime_is_last_modified"}
globals().update({k: v for k, v in vars(test_tree).items()
                  if k.startswith("test_") and callable(v) and k not in S3_ONLY})


@pytest.fixture(scope="module")
def tree(gcs_server, base_dir):
    data = build_tree()
    gcs = gcs_server
    gcs.control.config(**GCS_DEFAULTS)
    name = gcs.make_bucket("tree")
    gcs.client.put_many(name, data, threads=16)
    listing = gcs.client.list_all(name)
    assert set(listing) == set(data), "the GCS server did not store the tree as uploaded"
    ws = Workspace(base_dir / "test_gcs_tree", get_gcs=lambda: gcs)
    mounter = Mounter(ws.root)
    try:
        m = mounter.mount(ws.gcs_config(name))
        yield SimpleNamespace(mnt=m.path, data=data, listing=listing, bucket=name)
    finally:
        problems = mounter.cleanup()
        gcs.drop_bucket(name)
    assert not problems, problems


def test_mtime_is_time_created_to_the_ms(tree):
    keys = [k for k in files_of(tree.data) if not k.startswith("many/")]
    keys += random.sample([k for k in tree.data if k.startswith("many/")], 50)
    bad = []
    for k in keys:
        want_ms = rfc3339_to_ns(tree.listing[k]["timeCreated"]) // 10**6
        got_ns = os.stat(tree.mnt / k).st_mtime_ns
        if got_ns // 10**6 != want_ms:
            bad.append(f"{k}: st_mtime_ns {got_ns} vs timeCreated {tree.listing[k]['timeCreated']}")
    assert not bad, "\n".join(bad[:20])
