"""mount(8) and fstab with the installed package: `mount -t hylake`, fstab
entries mounted with `mount DIR` and `mount -a` (a temporary fstab, `-T`,
never /etc/fstab), `umount`, and the failures an SRE meets (bad config,
missing mountpoint, already mounted, unreachable store), each with a clear
message, a non-zero exit and nothing left mounted or running."""

import os
import subprocess
from pathlib import Path

import pytest

import hylib
import pkglib

pkglib.skip_module_unless_packageable()
pkg = pkglib.package_fixture()

HELPER = Path("/usr/sbin/mount.hylake")


def run(argv, timeout=90):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def mount_cmd(*args, timeout=90):
    # files, not pipes: the daemon keeps its inherited descriptors until it is up
    return run(["mount", *args], timeout=timeout)


def gone(mnt) -> bool:
    return hylib.wait_until(lambda: not hylib.processes_for(mnt, binary=HELPER), 20)


@pytest.fixture
def lake(ws):
    """A posix source with a few files; returns (config, files)."""
    src = ws.path("src")
    (src / "t").mkdir(parents=True)
    files = {"t/a.parquet": os.urandom(300_000), "t/b.txt": b"hello\n"}
    for n, d in files.items():
        (src / n).write_bytes(d)
    return ws.posix_config(src, mount={"cache_size": "0"}), files


@pytest.fixture
def cleanup():
    mnts = []
    yield mnts
    for m in mnts:
        if hylib.is_mounted(m):
            hylib._run_quiet(["umount", str(m)])
            if hylib.is_mounted(m):
                hylib._run_quiet(["umount", "-l", str(m)])


def test_mount_t_hylake_and_umount(pkg, ws, lake, cleanup):
    conf, files = lake
    mnt = ws.path("mnt")
    mnt.mkdir()
    cleanup.append(mnt)
    r = mount_cmd("-t", "hylake", conf, mnt, "-o", "allow_other,ro")
    assert r.returncode == 0, r.stderr
    # it returned only once the mount answers: no waiting here
    for n, d in files.items():
        assert (mnt / n).read_bytes() == d
    st = run(["hylake", "status", mnt])
    assert st.returncode == 0 and "reads" in st.stdout, st
    opts = [ln.split() for ln in open("/proc/self/mounts")
            if hylib._unescape_mount(ln.split()[1]) == str(mnt)][0][3].split(",")
    assert "allow_other" in opts and "ro" in opts, opts
    r = run(["umount", mnt])
    assert r.returncode == 0, r.stderr
    assert not hylib.is_mounted(mnt)
    assert gone(mnt), "the daemon outlived umount"


def test_fstab_entries_with_mount_dir_and_mount_a(pkg, ws, lake, cleanup):
    conf, files = lake
    a, b, c = ws.path("fa"), ws.path("fb"), ws.path("fc")
    for d in (a, b, c):
        d.mkdir()
        cleanup.append(d)
    fstab = ws.path("fstab")
    fstab.write_text(
        "# a temporary fstab: the real one is never touched\n"
        f"{conf} {a} hylake _netdev,nofail,allow_other 0 0\n"
        f"{conf} {b} hylake noauto,_netdev,x-systemd.automount,freshness=bounded:30s 0 0\n"
        f"{conf} {c} hylake defaults,_netdev,uid=4321,file_mode=0440 0 0\n")
    r = mount_cmd("-T", fstab, b)                 # `mount DIR` of a noauto entry
    assert r.returncode == 0, r.stderr
    assert (b / "t/b.txt").read_bytes() == b"hello\n"
    assert run(["umount", b]).returncode == 0 and gone(b)
    r = mount_cmd("-a", "-T", fstab)
    assert r.returncode == 0, r.stderr
    assert hylib.is_mounted(a) and hylib.is_mounted(c)
    assert not hylib.is_mounted(b), "mount -a mounted a noauto entry"
    assert (a / "t/a.parquet").read_bytes() == files["t/a.parquet"]
    s = os.stat(c / "t/b.txt")
    assert s.st_uid == 4321 and s.st_mode & 0o777 == 0o440
    for d in (a, c):
        assert run(["umount", d]).returncode == 0
        assert gone(d)


def test_failures_are_clear_and_leave_nothing(pkg, ws, lake, cleanup):
    conf, _ = lake
    mnt = ws.path("mnt")
    mnt.mkdir()
    cleanup.append(mnt)

    bad = ws.path("bad.conf")
    bad.write_text(conf.read_text().replace("[mount]\n", "[mount]\nfreshnes = strict\n"))
    r = mount_cmd("-t", "hylake", bad, mnt)
    assert r.returncode != 0 and f"{bad}:" in r.stderr and "freshnes" in r.stderr, r.stderr

    r = mount_cmd("-t", "hylake", conf, ws.path("no-such-dir"))
    assert r.returncode != 0 and "no-such-dir" in r.stderr, r.stderr

    r = mount_cmd("-t", "hylake", conf, mnt, "-o", "freshness=sometimes")
    assert r.returncode != 0 and "bad freshness 'sometimes'" in r.stderr, r.stderr

    unreachable = ws.path("down.conf")
    unreachable.write_text(f"[mount]\nstate_dir = {ws.state_dir}\nop_timeout = 3s\n"
                           f"[source]\ntype = gcs\nbucket = lake\ncredentials = none\n"
                           f"endpoint = http://127.0.0.1:{hylib.free_port()}\n")
    r = mount_cmd("-t", "hylake", unreachable, mnt, timeout=60)
    assert r.returncode != 0 and "cannot mount" in r.stderr, r.stderr
    assert not hylib.is_mounted(mnt) and gone(mnt)

    # nofail: mount -a goes on past an entry that cannot mount
    fstab = ws.path("fstab")
    other = ws.path("other")
    other.mkdir()
    cleanup.append(other)
    fstab.write_text(f"{unreachable} {mnt} hylake _netdev,nofail 0 0\n"
                     f"{conf} {other} hylake _netdev 0 0\n")
    r = mount_cmd("-a", "-T", fstab, timeout=60)
    assert hylib.is_mounted(other) and not hylib.is_mounted(mnt), r
    assert run(["umount", other]).returncode == 0 and gone(other)

    r = mount_cmd("-t", "hylake", conf, mnt)
    assert r.returncode == 0, r.stderr
    r = mount_cmd("-t", "hylake", conf, mnt)
    assert r.returncode != 0 and "already mounted" in r.stderr, r.stderr
    assert (mnt / "t/b.txt").read_bytes() == b"hello\n", "the first mount was harmed"
    assert run(["umount", mnt]).returncode == 0 and gone(mnt)
    assert not hylib.is_mounted(mnt)
