"""Writes through a writable mount (issue 14, first slice): every write lands in
GCS under a precondition, appears at close() as one generation, and close()
reports what went wrong (EEXIST, ESTALE, EIO)."""

import errno
import os
import subprocess
import threading

import pytest

from gcs_client import GcsHTTPError
from hylib import MiB, sha256

WRITABLE = {"writable": "yes"}


def rw_mount(mounter, ws, bucket, **extra):
    return mounter.mount(ws.gcs_config(bucket, mount={**WRITABLE, **extra}))


def gcs_bytes(gcs, bucket, name) -> bytes:
    return gcs.client.download(bucket, name).body


def gcs_exists(gcs, bucket, name) -> bool:
    try:
        gcs.client.get(bucket, name)
        return True
    except GcsHTTPError as e:
        assert e.status == 404, e
        return False


def write_fd(fd: int, data: bytes, piece: int = MiB) -> None:
    for off in range(0, len(data), piece):
        assert os.write(fd, data[off:off + piece]) == len(data[off:off + piece])


def close_errno(fd: int) -> int:
    """close(fd): 0, or the errno it failed with."""
    try:
        os.close(fd)
        return 0
    except OSError as e:
        return e.errno


def expect_errno(want: int, fn, *args):
    with pytest.raises(OSError) as ei:
        fn(*args)
    assert ei.value.errno == want, (
        f"expected {errno.errorcode[want]}, got {errno.errorcode.get(ei.value.errno)}: "
        f"{ei.value!r}")


@pytest.mark.timeout(180)
def test_cp_20mib_reads_back_through_mount_and_gcs(gcs, gcs_bucket, ws, mounter):
    data = os.urandom(20 * MiB)
    src = ws.root / "src.bin"
    src.write_bytes(data)
    m = rw_mount(mounter, ws, gcs_bucket)
    r = subprocess.run(["cp", str(src), str(m / "big.bin")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"cp failed: {r.stderr}\n{m.stderr[-2000:]}"
    # the kernel sees the new file and its size at once
    assert os.stat(m / "big.bin").st_size == len(data)
    assert "big.bin" in os.listdir(m)
    # GCS holds it, byte for byte, as one object
    meta = gcs.client.get(gcs_bucket, "big.bin")
    assert int(meta["size"]) == len(data)
    assert sha256(gcs_bytes(gcs, gcs_bucket, "big.bin")) == sha256(data)
    # and the mount reads it back (the writer reads its own write)
    assert sha256((m / "big.bin").read_bytes()) == sha256(data)
    # a second mount, which never saw the write, reads the same bytes
    m2 = mounter.mount(ws.gcs_config(gcs_bucket))
    assert sha256((m2 / "big.bin").read_bytes()) == sha256(data)


@pytest.mark.timeout(120)
def test_o_excl_twice_second_fails_eexist(gcs, gcs_bucket, ws, mounter):
    m = rw_mount(mounter, ws, gcs_bucket)
    path = m / "commit-0.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(fd, b'{"first": true}\n')
    assert close_errno(fd) == 0
    expect_errno(errno.EEXIST, os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    assert gcs_bytes(gcs, gcs_bucket, "commit-0.json") == b'{"first": true}\n'
    assert path.read_bytes() == b'{"first": true}\n'


@pytest.mark.timeout(120)
def test_two_mounts_race_o_excl_exactly_one_wins(gcs, gcs_bucket, ws, mounter):
    """The delta-rs commit rule: both open the next commit file with O_EXCL
    (each mount finds the name free), both write; exactly one close()
    succeeds and the other gets EEXIST; the winner's bytes are the object."""
    a = rw_mount(mounter, ws, gcs_bucket)
    b = rw_mount(mounter, ws, gcs_bucket)
    name = "_delta_log/00000000000000000001.json"
    # the folder exists in GCS once some object is under it
    gcs.client.upload(gcs_bucket, "_delta_log/00000000000000000000.json", b"{}\n")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fa = os.open(a / name, flags, 0o644)
    fb = os.open(b / name, flags, 0o644)
    body = {fa: b"writer A\n" * 1000, fb: b"writer B\n" * 1000}
    write_fd(fa, body[fa])
    write_fd(fb, body[fb])
    results = {}

    def close(fd):
        results[fd] = close_errno(fd)

    threads = [threading.Thread(target=close, args=(fd,)) for fd in (fa, fb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = sorted(results.values())
    assert got == [0, errno.EEXIST], f"close() results {results}"
    winner = next(fd for fd, rc in results.items() if rc == 0)
    assert gcs_bytes(gcs, gcs_bucket, name) == body[winner]
    # both mounts read the winner's bytes
    for m in (a, b):
        assert (m / name).read_bytes() == body[winner]


@pytest.mark.timeout(120)
def test_overwrite_loses_to_a_change_meanwhile_estale(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "table/_last_checkpoint", b"old\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    path = m / "table/_last_checkpoint"
    assert path.read_bytes() == b"old\n"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    write_fd(fd, b"mine\n" * 100)
    # another writer changes the object while this one writes
    gcs.client.upload(gcs_bucket, "table/_last_checkpoint", b"theirs\n")
    assert close_errno(fd) == errno.ESTALE
    assert gcs_bytes(gcs, gcs_bucket, "table/_last_checkpoint") == b"theirs\n"
    assert path.read_bytes() == b"theirs\n"
    # without a change meanwhile, the overwrite goes through
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    write_fd(fd, b"mine again\n")
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "table/_last_checkpoint") == b"mine again\n"
    assert path.read_bytes() == b"mine again\n"
    assert os.stat(path).st_size == len(b"mine again\n")


@pytest.mark.timeout(120)
def test_unlink_removes(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "dir/gone.txt", b"bye\n")
    gcs.client.upload(gcs_bucket, "dir/stays.txt", b"hi\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    os.unlink(m / "dir/gone.txt")
    assert not gcs_exists(gcs, gcs_bucket, "dir/gone.txt")
    assert gcs_exists(gcs, gcs_bucket, "dir/stays.txt")
    assert not (m / "dir/gone.txt").exists()
    assert sorted(os.listdir(m / "dir")) == ["stays.txt"]
    expect_errno(errno.ENOENT, os.unlink, m / "dir/gone.txt")


@pytest.mark.timeout(120)
def test_not_yet_supported_changes_say_enotsup(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "a.txt", b"a\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    expect_errno(errno.ENOTSUP, os.rename, m / "a.txt", m / "b.txt")
    expect_errno(errno.ENOTSUP, os.link, m / "a.txt", m / "c.txt")
    expect_errno(errno.ENOTSUP, os.mkdir, m / "newdir")
    expect_errno(errno.ENOTSUP, os.chmod, m / "a.txt", 0o600)
    # writing into the old bytes (no O_TRUNC) is not done yet
    expect_errno(errno.ENOTSUP, os.open, m / "a.txt", os.O_WRONLY)
    expect_errno(errno.ENOTSUP, os.open, m / "a.txt", os.O_WRONLY | os.O_APPEND)
    # a write that is not at the end
    fd = os.open(m / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"0123456789")
    expect_errno(errno.ENOTSUP, os.pwrite, fd, b"x", 3)
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "new.txt") == b"0123456789"
    assert gcs_bytes(gcs, gcs_bucket, "a.txt") == b"a\n"
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["a.txt", "new.txt"]


@pytest.mark.timeout(120)
def test_read_only_mount_refuses_writes_erofs(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "a.txt", b"a\n")
    m = mounter.mount(ws.gcs_config(gcs_bucket))
    expect_errno(errno.EROFS, os.open, m / "b.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.EROFS, os.open, m / "a.txt", os.O_WRONLY | os.O_TRUNC)
    expect_errno(errno.EROFS, os.unlink, m / "a.txt")
    expect_errno(errno.EROFS, os.mkdir, m / "d")
    assert os.statvfs(m).f_flag & os.ST_RDONLY
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["a.txt"]
    # -o rw makes the same config writable
    m2 = mounter.mount(ws.gcs_config(gcs_bucket), opts="rw")
    assert not os.statvfs(m2).f_flag & os.ST_RDONLY
    (m2 / "b.txt").write_bytes(b"b\n")
    assert gcs_bytes(gcs, gcs_bucket, "b.txt") == b"b\n"


@pytest.mark.timeout(60)
def test_writable_needs_a_gcs_source(ws, mounter, tmp_path):
    from hylib import MountFailed
    cfg = ws.posix_config(tmp_path, mount=WRITABLE)
    with pytest.raises(MountFailed) as ei:
        mounter.mount(cfg)
    assert "needs a source of type gcs" in str(ei.value)


@pytest.mark.timeout(120)
def test_failed_upload_leaves_nothing_and_close_says_eio(gcs, gcs_bucket, ws, mounter):
    m = rw_mount(mounter, ws, gcs_bucket, retries="1")
    gcs.control.faults([{"kind": "upload.chunk", "count": 100, "status": 503}])
    try:
        fd = os.open(m / "doomed.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        write_fd(fd, os.urandom(300 * 1024))
        assert close_errno(fd) == errno.EIO
        assert gcs.control.faults()[0]["fired"] >= 1
    finally:
        gcs.control.faults([])
    assert not gcs_exists(gcs, gcs_bucket, "doomed.bin")
    assert not (m / "doomed.bin").exists()


@pytest.mark.timeout(120)
def test_shell_redirects_touch_and_fsync(gcs, gcs_bucket, ws, mounter):
    """What tools do: `>` creates, `>` again replaces (O_TRUNC), touch creates
    and sets times (accepted), fsync commits (a later write fails EBADF).  The
    stack is traced (log_level=trace wraps every store), which writes must pass
    through as well."""
    m = rw_mount(mounter, ws, gcs_bucket, log_level="trace")
    sh = lambda cmd: subprocess.run(["sh", "-c", cmd], cwd=m, capture_output=True,
                                    text=True, timeout=60)
    r = sh("echo hello > greet.txt")
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "greet.txt") == b"hello\n"
    gen1 = int(gcs.client.get(gcs_bucket, "greet.txt")["generation"])
    r = sh("echo 'hello again' > greet.txt")
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "greet.txt") == b"hello again\n"
    assert int(gcs.client.get(gcs_bucket, "greet.txt")["generation"]) > gen1
    assert (m / "greet.txt").read_text() == "hello again\n"
    assert os.stat(m / "greet.txt").st_size == len("hello again\n")
    # appending would write into the old bytes: refused, nothing changes
    r = sh("echo more >> greet.txt")
    assert r.returncode != 0
    assert gcs_bytes(gcs, gcs_bucket, "greet.txt") == b"hello again\n"
    r = sh("touch empty.txt")
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "empty.txt") == b""
    assert os.stat(m / "empty.txt").st_size == 0
    fd = os.open(m / "synced.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    assert gcs_bytes(gcs, gcs_bucket, "synced.bin") == b"durable"
    expect_errno(errno.EBADF, os.write, fd, b"late")
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "synced.bin") == b"durable"


@pytest.mark.timeout(120)
def test_writer_sees_its_file_listed_under_bounded_freshness(gcs, gcs_bucket, ws, mounter):
    """bounded:1h keeps listing pages in the metadata cache for an hour; a
    write drops them, so the writer lists its new file at once (and stops
    listing a removed one)."""
    gcs.client.upload(gcs_bucket, "t/a.parquet", b"a")
    m = rw_mount(mounter, ws, gcs_bucket, freshness="bounded:1h")
    assert sorted(os.listdir(m / "t")) == ["a.parquet"]
    # a name GCS learns of behind the mount's back stays unlisted (the page
    # is kept): the test would prove nothing otherwise
    gcs.client.upload(gcs_bucket, "t/behind.parquet", b"b")
    assert sorted(os.listdir(m / "t")) == ["a.parquet"]
    (m / "t/b.parquet").write_bytes(b"bb")
    assert sorted(os.listdir(m / "t")) == ["a.parquet", "b.parquet", "behind.parquet"]
    os.unlink(m / "t/a.parquet")
    assert sorted(os.listdir(m / "t")) == ["b.parquet", "behind.parquet"]
    assert (m / "t/b.parquet").read_bytes() == b"bb"


@pytest.mark.timeout(120)
def test_children_closing_inherited_descriptors_do_not_commit(gcs, gcs_bucket, ws, mounter):
    """`(cmd1; cmd2) > f`: each command inherits the descriptor and closes it
    when it exits, which flushes; only the process that opened the file
    commits at close, so both commands' bytes land, in one object."""
    m = rw_mount(mounter, ws, gcs_bucket)
    r = subprocess.run(["sh", "-c", "( /bin/echo a; /bin/echo b; /bin/echo c ) > out.txt"],
                       cwd=m, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "out.txt") == b"a\nb\nc\n"
    assert (m / "out.txt").read_bytes() == b"a\nb\nc\n"
    # a child that inherits a descriptor of a file this process writes, and
    # exits (closing it), does not end the file either
    fd = os.open(m / "parent.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"before\n")
    r = subprocess.run(["/bin/true"], pass_fds=(fd,), timeout=60)
    assert r.returncode == 0
    os.write(fd, b"after\n")
    assert close_errno(fd) == 0
    assert gcs_bytes(gcs, gcs_bucket, "parent.txt") == b"before\nafter\n"
