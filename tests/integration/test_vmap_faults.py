"""The version map is a cache: a damaged map file costs round trips, never
the mount or the bytes.  A corrupt data.mdb is moved aside at mount and an
empty map started; a map deleted while mounted leaves every read correct,
because every read re-verifies the version it receives."""

import os

from lakelib import lake, read_all  # noqa: F401  (lake: a fixture)

NAMES = [f"t/v{i}" for i in range(10)]


def fill(lake):
    for n in NAMES:
        lake.put(n, os.urandom(8192))
        lake.to_s3(n)
        lake.to_nfs(n)


def map_written(lake, mounter, ws):
    """Mount, read everything (so the map holds facts), unmount; returns the
    config and the map file."""
    fill(lake)
    cfg = lake.config()
    m = mounter.mount(cfg)
    check_reads(m, lake)
    m.unmount()
    data = ws.state_dir / "data.mdb"
    assert data.exists(), sorted(os.listdir(ws.state_dir))
    return cfg, data


def check_reads(m, lake, names=NAMES):
    for n in names:
        assert read_all(m / n) == lake.data[n]


def test_corrupt_map_is_moved_aside_and_the_mount_reads(lake, mounter, ws):
    cfg, data = map_written(lake, mounter, ws)
    with open(data, "r+b") as f:             # both meta pages scribbled over
        f.write(b"\xa5" * 8192)

    m = mounter.mount(cfg)
    check_reads(m, lake)
    aside = [p for p in os.listdir(ws.state_dir) if p.startswith("data.mdb.corrupt-")]
    assert len(aside) == 1, sorted(os.listdir(ws.state_dir))


def test_truncated_map_is_moved_aside_and_the_mount_reads(lake, mounter, ws):
    cfg, data = map_written(lake, mounter, ws)
    os.truncate(data, data.stat().st_size // 2)

    m = mounter.mount(cfg)
    check_reads(m, lake)
    assert any(p.startswith("data.mdb.corrupt-") for p in os.listdir(ws.state_dir))


def test_map_deleted_while_mounted_reads_stay_correct(lake, mounter, ws):
    fill(lake)
    m = mounter.mount(lake.config(), opts="entry_timeout=0,attr_timeout=0")
    check_reads(m, lake)
    for f in ("data.mdb", "lock.mdb"):
        (ws.state_dir / f).unlink()
    check_reads(m, lake)
    # a new version at the source: the re-verified read has the new bytes,
    # whatever the (now unlinked) map remembers
    lake.put(NAMES[0], os.urandom(8192))
    lake.to_s3(NAMES[0])
    assert read_all(m / NAMES[0]) == lake.data[NAMES[0]]
    lake.put(NAMES[1], os.urandom(8192))       # replicas not updated yet
    assert read_all(m / NAMES[1]) == lake.data[NAMES[1]]
    m.unmount()
    # and the next mount starts an empty map where the deleted one was
    m = mounter.mount(lake.config())
    check_reads(m, lake, NAMES[2:])
