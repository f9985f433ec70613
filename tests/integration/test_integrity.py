"""Never a wrong byte: a replica copy stamped with the right generation and
crc32c but holding one wrong byte is never served, through ranged reads of
any size, and nothing it held reaches the block cache.

The copy is made two ways: stamped by hand with no block manifest (the mount
proves it by reading it whole once: verify = whole-first), and by `hylake
replicate` (with its manifest), then damaged in place, so the mount's
per-block checks find the bad block in the middle of serving the file."""

import os
import random
import re

import pytest

from hylib import MiB, child_call, run_hylake
from lakelib import drop_caches, lake, xattr  # noqa: F401  (lake: a fixture)

SIZE = 64 * MiB

# 1,000 random 1 MiB preads; prints how many bytes differ from the expected
# file and how many reads failed.
_PREADS = r"""
import json, os, random, sys
path, want_path, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = open(want_path, "rb").read()
rng = random.Random(seed)
fd = os.open(path, os.O_RDONLY)
wrong = failed = 0
for _ in range(n):
    off = rng.randrange(0, len(want) - 1)
    got = None
    try:
        got = os.pread(fd, 1 << 20, off)
    except OSError:
        failed += 1
        continue
    exp = want[off:off + (1 << 20)]
    if got != exp:
        wrong += sum(a != b for a, b in zip(got, exp)) + abs(len(got) - len(exp))
os.close(fd)
print(json.dumps({"wrong": wrong, "failed": failed}))
"""


def preads(path, want_path, n=1000, seed=1):
    res = child_call(_PREADS, path, want_path, n, seed, timeout=300)
    assert "wrong" in res, res
    return res


def bad_copy(lake, ws, name, how):
    """The source holds good bytes; the nfs replica a copy with one byte
    flipped that claims the source's generation and crc32c.  Returns the
    path of a file with the good bytes, and the flipped offset."""
    good = os.urandom(SIZE)
    lake.put(name, good)
    off = random.Random(name).randrange(SIZE)
    if how == "stamped":
        bad = bytearray(good)
        bad[off] ^= 0x40
        lake.to_nfs(name, data=bytes(bad))
    else:
        res = lake.replicate("nfs", "--prefix", name)
        assert res.returncode == 0, res.stderr
        assert (lake.nfs / ".hylake/blocks" / name).is_file(), "no manifest"
        with open(lake.nfs / name, "r+b") as f:      # damage in place
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x40]))
    want = ws.root / (name.replace("/", "_") + ".want")
    want.write_bytes(good)
    return want, off


@pytest.mark.timeout(400)
@pytest.mark.parametrize("how", ["stamped", "replicated"])
def test_wrong_byte_in_a_replica_copy_is_never_served(lake, mounter, ws, how):
    want, off = bad_copy(lake, ws, f"t/{how}.parquet", how)
    m = mounter.mount(lake.config(order=("nfs",)))
    f = m / f"t/{how}.parquet"
    res = preads(f, want)
    assert res["wrong"] == 0 and res["failed"] == 0, res
    # ... and the reads that cover the flipped byte itself
    res = child_call(_PREADS.replace("rng.randrange(0, len(want) - 1)",
                                     f"max(0, {off} - rng.randrange(0, 1 << 20))"),
                     f, want, 50, 2, timeout=120)
    assert res.get("wrong") == 0 and res.get("failed") == 0, res
    assert "nfs=bad" in xattr(f, "replicas")
    out = run_hylake("explain", f)
    assert out.returncode == 0, out.stderr
    assert re.search(r"nfs\s+bad \(stamped with this version, but its bytes differ",
                     out.stdout), out.stdout
    assert xattr(f, "source") == "source"
    prom = run_hylake("status", m.path, "--prometheus").stdout
    assert re.search(r"^hylake_replica_bad_copies_total [1-9]", prom, re.M), prom


@pytest.mark.timeout(400)
def test_block_cache_never_keeps_a_bad_copys_bytes(lake, mounter, ws):
    """Fill the block cache through a mount whose replica copy is bad, then
    remount and read everything again from the cache: the right bytes."""
    want, _ = bad_copy(lake, ws, "t/cached.parquet", "replicated")
    cfg = lake.config(order=("nfs",), mount={"cache_size": "512M", "cache_first_read": "yes"})
    m = mounter.mount(cfg)
    f = m / "t/cached.parquet"
    assert preads(f, want, n=300, seed=3)["wrong"] == 0
    m.unmount()
    m = mounter.mount(cfg)
    drop_caches()
    res = preads(m / "t/cached.parquet", want, n=300, seed=4)
    assert res["wrong"] == 0 and res["failed"] == 0, res
    # and the cache did serve them: the bytes kept are the right ones
    # (spliced replies count the bytes they serve, not whole blocks)
    st = run_hylake("status", m.path, "--prometheus")
    hit = re.search(r"^hylake_cache_read_bytes_total (\S+)$", st.stdout, re.M)
    served = re.search(r"^hylake_read_bytes_total (\S+)$", st.stdout, re.M)
    assert hit and served, st.stdout
    assert float(served.group(1)) >= 32 * MiB, st.stdout
    assert float(hit.group(1)) >= float(served.group(1)), st.stdout


def test_good_copy_is_served_by_the_replica(lake, mounter, ws):
    """The checks do not turn good copies away: a replicated copy, and one
    stamped by hand (proven whole once), both serve every read, and GCS
    sends no data."""
    good = os.urandom(8 * MiB + 3)
    lake.put("t/good-r", good)
    lake.put("t/good-s", good)
    assert lake.replicate("nfs", "--prefix", "t/good-r").returncode == 0
    lake.to_nfs("t/good-s")
    m = mounter.mount(lake.config(order=("nfs",)))
    mark = lake.gcs.control.log_mark()
    for name in ("t/good-r", "t/good-s"):
        want = ws.root / (name.replace("/", "_") + ".want")
        want.write_bytes(good)
        res = preads(m / name, want, n=60, seed=5)
        assert res["wrong"] == 0 and res["failed"] == 0, res
        assert xattr(m / name, "source") == "nfs"
    assert lake.media_reads(mark) == [], "a good copy was passed over"


def test_verify_blocks_turns_away_a_copy_nothing_proves(lake, mounter, ws):
    """`verify = blocks` in a replica's section: a copy stamped by hand (no
    block manifest) is never read, GCS serves, and explain says why; the
    default (whole-first) would have proven it by one whole read."""
    data = os.urandom(4 * MiB + 1)
    lake.put("t/unproven", data)
    lake.to_nfs("t/unproven")
    cfg = lake.config(order=("nfs",))
    with open(cfg, "a") as f:
        f.write("verify = blocks\n")
    m = mounter.mount(cfg)
    mark = lake.gcs.control.log_mark()
    assert (m / "t/unproven").read_bytes() == data
    assert lake.media_reads(mark, "t/unproven"), "the unproven copy was read"
    assert xattr(m / "t/unproven", "source") == "source"
    out = run_hylake("explain", m / "t/unproven").stdout
    assert re.search(r"nfs\s.*unproven", out), out
