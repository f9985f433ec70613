"""CLI basics, mount/unmount life cycle, no leftover processes, no leaked secrets."""

import os
import subprocess
import time

import pytest

from hylib import HYLAKE_BIN, is_mounted, processes_for, run_hylake, sha256, sha256_file


def test_version():
    r = run_hylake("--version")
    assert r.returncode == 0, r
    assert r.stdout.strip(), r
    assert any(ch.isdigit() for ch in r.stdout), r


def test_help():
    r = run_hylake("--help")
    assert r.returncode == 0, r
    assert "mount" in r.output and "check" in r.output, r


def test_unknown_command_fails():
    r = run_hylake("frobnicate")
    assert r.returncode != 0, r
    assert r.stderr.strip(), r


def _source(kind, ws, s3=None, bucket=None):
    if kind == "s3":
        s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello\n")
        return ws.s3_config(bucket)
    src = ws.path("src")
    src.mkdir()
    (src / "hello.txt").write_bytes(b"hello\n")
    return ws.posix_config(src)


@pytest.mark.parametrize("how", ["fusermount3", "umount"])
@pytest.mark.parametrize("kind", ["s3", "posix"])
def test_daemon_mount_and_unmount_leaves_no_process(request, ws, mounter, kind, how):
    if kind == "s3":
        cfg = _source(kind, ws, request.getfixturevalue("s3"), request.getfixturevalue("bucket"))
    else:
        cfg = _source(kind, ws)
    m = mounter.mount(cfg)  # asserts exit 0 and that the mount is there at once
    assert (m / "hello.txt").read_bytes() == b"hello\n"
    pids = m.pids()
    assert len(pids) == 1, f"expected one hylake daemon for {m.path}, found {pids}"
    m.unmount(how)  # asserts: unmounted, and the daemon is gone
    assert not os.path.exists(m / "hello.txt")


def test_foreground_mount_exits_zero_on_unmount(ws, mounter):
    cfg = _source("posix", ws)
    m = mounter.mount(cfg, foreground=True)
    assert m.proc.poll() is None, "hylake -f returned while mounted"
    assert (m / "hello.txt").read_bytes() == b"hello\n"
    assert m.pids() == [m.proc.pid]
    m.unmount()
    assert m.returncode == 0, f"hylake -f exited {m.returncode} after unmount:\n{m.stderr}"


def test_mount_on_missing_mountpoint_fails(ws):
    cfg = _source("posix", ws)
    mnt = ws.path("no-such-dir")
    r = run_hylake("mount", cfg, mnt, timeout=60)
    assert r.returncode != 0, r
    assert r.stderr.strip(), r
    assert not is_mounted(mnt)
    assert not processes_for(mnt)


def test_debug_logs_never_contain_the_secret(s3, bucket, rgw, ws, mounter):
    body = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="d/f.bin", Body=body)
    cfg = ws.s3_config(bucket, mount={"log_level": "debug"})
    m = mounter.mount(cfg, foreground=True)
    assert sha256_file(m / "d" / "f.bin") == sha256(body)
    os.listdir(m / "d")
    assert not os.path.exists(m / "nope")
    m.unmount()
    logs = m.stderr + m.stdout
    assert logs.strip(), "log_level=debug in the foreground printed nothing at all"
    assert rgw.secret_key not in logs, "the secret key appears in the debug log"
    for root, _, files in os.walk(ws.state_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert rgw.secret_key.encode() not in fh.read(), f"secret in state file {f}"


def test_trace_level_logs_every_call_to_the_store(ws, mounter):
    """-o log_level=trace: one line per call a layer makes of the store below it."""
    cfg = _source("posix", ws)
    m = mounter.mount(cfg, foreground=True, opts="log_level=trace")
    assert (m / "hello.txt").read_bytes() == b"hello\n"
    assert not os.path.exists(m / "nope")
    m.unmount()
    logs = m.stderr + m.stdout
    lines = [ln for ln in logs.splitlines() if " trace: trace source: " in ln]
    assert any(" open 'hello.txt' -> ok size=6" in ln for ln in lines), logs
    assert any(" read 'hello.txt' 0+" in ln and " -> 6 (" in ln for ln in lines), logs
    assert any(" stat 'nope' -> No such file or directory" in ln for ln in lines), logs
    assert all(ln.rstrip().endswith(" us)") or " close '" in ln for ln in lines), lines


def test_no_trace_lines_below_trace_level(ws, mounter):
    cfg = _source("posix", ws)
    m = mounter.mount(cfg, foreground=True, opts="log_level=debug")
    assert (m / "hello.txt").read_bytes() == b"hello\n"
    m.unmount()
    assert " trace: " not in m.stderr + m.stdout


def test_killed_daemon_mount_can_be_cleaned_up(ws, mounter):
    """A SIGKILLed daemon leaves a dead mount (ENOTCONN) that fusermount3 -u removes."""
    cfg = _source("posix", ws)
    m = mounter.mount(cfg)
    (pid,) = m.pids()
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while processes_for(m.path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_for(m.path)
    r = subprocess.run(["fusermount3", "-u", str(m.path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert not is_mounted(m.path)
    # and it can be mounted again on the same mountpoint
    m2 = mounter.mount(cfg, mountpoint=m.path)
    assert (m2 / "hello.txt").read_bytes() == b"hello\n"
    m2.unmount()



def test_fuse_options_pass_through(ws, mounter):
    cfg = _source("posix", ws)
    m = mounter.mount(cfg, opts="allow_other,entry_timeout=0,attr_timeout=0")
    with open("/proc/self/mountinfo") as f:
        line = next(ln for ln in f if f" {m.path} " in ln)
    assert "allow_other" in line, line
    assert (m / "hello.txt").read_bytes() == b"hello\n"


def test_mount_helper_passes_noexec_nosuid_nodev(ws):
    """mount(8) hands the fstab options to mount.hylake: the restrictive
    noexec/nosuid/nodev reach the kernel mount (they used to be dropped, so
    an fstab 'noexec' silently allowed executing files from the lake);
    mount(8)-only ones (_netdev, nofail, x-*) still do not reach FUSE."""
    helper = HYLAKE_BIN.parent / "mount.hylake"
    if not helper.exists():
        pytest.skip(f"{helper} not built")
    cfg = _source("posix", ws)
    mnt = ws.path("helper-mnt")
    mnt.mkdir()
    r = subprocess.run([str(helper), str(cfg), str(mnt), "-o",
                        "_netdev,nofail,x-systemd.automount,noexec,nosuid,nodev"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        with open("/proc/self/mountinfo") as f:
            line = next(ln for ln in f if f" {mnt} " in ln)
        # field 6: the per-mount flags the kernel enforces
        flags = line.split()[5].split(",")
        assert {"noexec", "nosuid", "nodev"} <= set(flags), line
        assert (mnt / "hello.txt").read_bytes() == b"hello\n"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while processes_for(mnt, binary=helper) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not is_mounted(mnt)
