"""Writes through a writable mount (issue 14, first slice): every write lands in
GCS under a precondition, appears at close() as one generation, and close()
reports what went wrong (EEXIST, ESTALE, EIO)."""

import errno
import os
import subprocess
import threading
import urllib.parse

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
def test_what_a_bucket_cannot_hold_says_enotsup(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "a.txt", b"a\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    # a bucket holds no symlinks, special files or extended attributes
    expect_errno(errno.ENOTSUP, os.symlink, "a.txt", m / "s")
    expect_errno(errno.ENOTSUP, os.mkfifo, m / "fifo")
    # a write out of order once the streamed bytes went to GCS (past the
    # first 8 MiB kept in memory) cannot be staged: it breaks the file,
    # close() says so, and nothing appears cut short
    fd = os.open(m / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    write_fd(fd, b"0123456789" * MiB)
    expect_errno(errno.ENOTSUP, os.pwrite, fd, b"x", 3)
    assert close_errno(fd) == errno.ENOTSUP
    assert gcs_bytes(gcs, gcs_bucket, "a.txt") == b"a\n"
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["a.txt"]
    # staging_size = 0: no staging folder, so writing into the old bytes
    # or out of order is refused
    m0 = rw_mount(mounter, ws, gcs_bucket, staging_size="0")
    expect_errno(errno.ENOTSUP, os.open, m0 / "a.txt", os.O_WRONLY | os.O_APPEND)
    expect_errno(errno.ENOTSUP, os.open, m0 / "a.txt", os.O_WRONLY)
    expect_errno(errno.ENOTSUP, os.truncate, m0 / "a.txt", 1)
    assert gcs_bytes(gcs, gcs_bucket, "a.txt") == b"a\n"


@pytest.mark.timeout(120)
def test_read_only_mount_refuses_writes_erofs(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "a.txt", b"a\n")
    m = mounter.mount(ws.gcs_config(gcs_bucket))
    expect_errno(errno.EROFS, os.open, m / "b.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.EROFS, os.open, m / "a.txt", os.O_WRONLY | os.O_TRUNC)
    expect_errno(errno.EROFS, os.unlink, m / "a.txt")
    expect_errno(errno.EROFS, os.mkdir, m / "d")
    expect_errno(errno.EROFS, os.link, m / "a.txt", m / "l.txt")
    expect_errno(errno.EROFS, os.rename, m / "a.txt", m / "r.txt")
    expect_errno(errno.EROFS, os.chmod, m / "a.txt", 0o600)
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
    # appending writes into the old bytes: staged, one new generation
    r = sh("echo more >> greet.txt")
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "greet.txt") == b"hello again\nmore\n"
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


# ------------------------------------------------------------ names: link, rename, folders


def rewrites(gcs, since) -> list[dict]:
    return [dict(urllib.parse.parse_qsl(e["query"]), object=e["object"], status=e["status"])
            for e in gcs.control.log(since) if e["kind"] == "objects.rewrite"]


@pytest.mark.timeout(120)
def test_link_is_put_if_absent(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "stage.tmp", b"staged\n")
    gcs.client.upload(gcs_bucket, "taken.json", b"theirs\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    src_gen = gcs.client.get(gcs_bucket, "stage.tmp")["generation"]
    mark = gcs.control.log_mark()
    os.link(m / "stage.tmp", m / "commit.json")
    # a copy in GCS of exactly the generation seen, put-if-absent
    assert gcs_bytes(gcs, gcs_bucket, "commit.json") == b"staged\n"
    (rw,) = rewrites(gcs, mark)
    assert (rw["object"], rw["status"], rw["ifGenerationMatch"]) == ("commit.json", 200, "0")
    assert rw["sourceGeneration"] == rw["ifSourceGenerationMatch"] == src_gen
    # the kernel sees the new name at once; the two names are two objects
    assert (m / "commit.json").read_bytes() == b"staged\n"
    assert os.stat(m / "commit.json").st_size == 7
    assert "commit.json" in os.listdir(m)
    # an existing target: EEXIST, and it keeps its bytes
    expect_errno(errno.EEXIST, os.link, m / "stage.tmp", m / "taken.json")
    expect_errno(errno.EEXIST, os.link, m / "stage.tmp", m / "commit.json")
    assert gcs_bytes(gcs, gcs_bucket, "taken.json") == b"theirs\n"
    assert (m / "taken.json").read_bytes() == b"theirs\n"
    # a name another host made after this mount looked (cached as absent)
    expect_errno(errno.ENOENT, os.stat, m / "late.json")
    gcs.client.upload(gcs_bucket, "late.json", b"late\n")
    expect_errno(errno.EEXIST, os.link, m / "stage.tmp", m / "late.json")
    assert gcs_bytes(gcs, gcs_bucket, "late.json") == b"late\n"
    expect_errno(errno.ENOENT, os.link, m / "nope", m / "x.json")
    os.mkdir(m / "d")
    expect_errno(errno.EPERM, os.link, m / "d", m / "d2")


@pytest.mark.timeout(180)
def test_two_mounts_race_to_link_exactly_one_wins(gcs, gcs_bucket, ws, mounter):
    a = rw_mount(mounter, ws, gcs_bucket)
    b = rw_mount(mounter, ws, gcs_bucket)
    os.mkdir(a / "_delta_log")
    for round_ in range(5):
        name = f"_delta_log/{round_:020d}.json"
        (a / f"a-{round_}.tmp").write_bytes(b"A" * 1000)
        (b / f"b-{round_}.tmp").write_bytes(b"B" * 1000)
        results = {}
        barrier = threading.Barrier(2)

        def go(who, m):
            barrier.wait()
            try:
                os.link(m / f"{who}-{round_}.tmp", m / name)
                results[who] = 0
            except OSError as e:
                results[who] = e.errno

        ts = [threading.Thread(target=go, args=w) for w in (("a", a), ("b", b))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert sorted(results.values()) == [0, errno.EEXIST], results
        winner = next(w for w, rc in results.items() if rc == 0)
        want = (b"A" if winner == "a" else b"B") * 1000
        assert gcs_bytes(gcs, gcs_bucket, name) == want
        assert (a / name).read_bytes() == want and (b / name).read_bytes() == want


@pytest.mark.timeout(120)
def test_delta_rs_style_commit_seen_by_a_second_mount(gcs, gcs_bucket, ws, mounter):
    """object_store's put-if-absent on a local path: a staging file written and,
    still open, hard-linked to the commit name; the staging file unlinked, then
    closed.  A read-only mount elsewhere reads the commit."""
    m = rw_mount(mounter, ws, gcs_bucket)
    reader = mounter.mount(ws.gcs_config(gcs_bucket))
    os.makedirs(m / "tbl/_delta_log", exist_ok=True)
    for v in range(3):
        commit = b'{"commitInfo":{"version":%d}}\n{"add":{"path":"part-%d.parquet"}}\n' % (v, v)
        staging = m / f"tbl/_delta_log/.tmp-{v}-{os.getpid()}"
        final = m / f"tbl/_delta_log/{v:020d}.json"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        write_fd(fd, commit)
        os.link(staging, final)            # still open, as object_store does
        os.unlink(staging)
        assert close_errno(fd) == 0
        # the same version again: another writer's attempt loses
        other = m / f"tbl/_delta_log/.tmp-{v}-other"
        other.write_bytes(b"loser\n")
        expect_errno(errno.EEXIST, os.link, other, final)
        os.unlink(other)
        assert gcs_bytes(gcs, gcs_bucket, f"tbl/_delta_log/{v:020d}.json") == commit
        assert (reader / f"tbl/_delta_log/{v:020d}.json").read_bytes() == commit
    logs = sorted(os.listdir(reader / "tbl/_delta_log"))
    assert logs == [f"{v:020d}.json" for v in range(3)], logs
    assert sorted(os.listdir(m / "tbl/_delta_log")) == logs
    assert sorted(gcs.client.list_all(gcs_bucket, "tbl/")) == [  # markers of makedirs
        "tbl/", "tbl/_delta_log/"] + [f"tbl/_delta_log/{v:020d}.json" for v in range(3)]


@pytest.mark.timeout(120)
def test_rename_over_missing_and_existing(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "a.txt", b"aaa\n")
    gcs.client.upload(gcs_bucket, "b.txt", b"bbb\n")
    gcs.client.upload(gcs_bucket, "c.txt", b"ccc\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    gen_b = gcs.client.get(gcs_bucket, "b.txt")["generation"]
    mark = gcs.control.log_mark()
    st = os.stat(m / "a.txt")
    # over a missing name: put-if-absent; the source goes
    os.rename(m / "a.txt", m / "moved.txt")
    assert gcs_bytes(gcs, gcs_bucket, "moved.txt") == b"aaa\n"
    assert not gcs_exists(gcs, gcs_bucket, "a.txt")
    assert not (m / "a.txt").exists()
    assert (m / "moved.txt").read_bytes() == b"aaa\n"
    assert os.stat(m / "moved.txt").st_ino == st.st_ino   # the kernel's inode moved
    # over an existing name: under the generation seen
    os.rename(m / "moved.txt", m / "b.txt")
    assert gcs_bytes(gcs, gcs_bucket, "b.txt") == b"aaa\n"
    assert (m / "b.txt").read_bytes() == b"aaa\n"
    assert sorted(os.listdir(m)) == ["b.txt", "c.txt"]
    rw = rewrites(gcs, mark)
    assert [(r["object"], r["ifGenerationMatch"]) for r in rw] == [
        ("moved.txt", "0"), ("b.txt", gen_b)], rw
    # the target changed behind the mount's back after the mount looked: the copy
    # carries the generation the mount knew and fails (412, ESTALE); the kernel
    # sends a rename that failed with ESTALE once more, after a fresh look, and
    # that one replaces the generation it found
    gcs.client.upload(gcs_bucket, "d.txt", b"ddd\n")
    os.stat(m / "c.txt")
    gcs.client.upload(gcs_bucket, "c.txt", b"changed\n")
    gen_c = gcs.client.get(gcs_bucket, "c.txt")["generation"]
    gen_d = gcs.client.get(gcs_bucket, "d.txt")["generation"]
    mark = gcs.control.log_mark()
    os.rename(m / "d.txt", m / "c.txt")
    rw = rewrites(gcs, mark)
    assert [(r["ifGenerationMatch"] == gen_c, r["status"]) for r in rw] == [
        (False, 412), (True, 200)], rw
    assert all(r["sourceGeneration"] == r["ifSourceGenerationMatch"] == gen_d for r in rw)
    assert gcs_bytes(gcs, gcs_bucket, "c.txt") == b"ddd\n"
    gcs.client.upload(gcs_bucket, "d.txt", b"ddd\n")
    # into another folder, and onto itself
    os.mkdir(m / "sub")
    os.rename(m / "d.txt", m / "sub/d.txt")
    assert gcs_bytes(gcs, gcs_bucket, "sub/d.txt") == b"ddd\n"
    os.rename(m / "sub/d.txt", m / "sub/d.txt")
    assert (m / "sub/d.txt").read_bytes() == b"ddd\n"


@pytest.mark.timeout(120)
def test_rename_noreplace_and_exchange(gcs, gcs_bucket, ws, mounter):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, RENAME_NOREPLACE, RENAME_EXCHANGE = -100, 1, 2

    def renameat2(a, b, flags):
        if libc.renameat2(AT_FDCWD, bytes(a), AT_FDCWD, bytes(b), flags) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    gcs.client.upload(gcs_bucket, "x.tmp", b"x\n")
    gcs.client.upload(gcs_bucket, "y.json", b"y\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    expect_errno(errno.EEXIST, renameat2, m / "x.tmp", m / "y.json", RENAME_NOREPLACE)
    assert gcs_bytes(gcs, gcs_bucket, "y.json") == b"y\n"
    assert gcs_exists(gcs, gcs_bucket, "x.tmp")
    expect_errno(errno.EINVAL, renameat2, m / "x.tmp", m / "y.json", RENAME_EXCHANGE)
    renameat2(m / "x.tmp", m / "z.json", RENAME_NOREPLACE)
    assert gcs_bytes(gcs, gcs_bucket, "z.json") == b"x\n"
    assert not gcs_exists(gcs, gcs_bucket, "x.tmp")


@pytest.mark.timeout(120)
def test_rename_of_a_folder_is_refused_exdev_and_mv_copies(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "dir/a.txt", b"a\n")
    gcs.client.upload(gcs_bucket, "dir/sub/b.txt", b"b\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    expect_errno(errno.EXDEV, os.rename, m / "dir", m / "dir2")
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["dir/a.txt", "dir/sub/b.txt"]
    # mv falls back to copying, file by file, as across file systems
    r = subprocess.run(["mv", str(m / "dir"), str(m / "moved")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = sorted(gcs.client.list_all(gcs_bucket))
    assert "moved/a.txt" in names and "moved/sub/b.txt" in names, names
    assert not [n for n in names if n.startswith("dir/")], names
    assert (m / "moved/sub/b.txt").read_bytes() == b"b\n"
    assert not (m / "dir").exists()


@pytest.mark.timeout(120)
def test_mkdir_and_rmdir(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "file", b"f\n")
    m = rw_mount(mounter, ws, gcs_bucket)
    expect_errno(errno.ENOENT, os.stat, m / "new")
    os.mkdir(m / "new")
    # a zero-byte marker object, made put-if-absent
    meta = gcs.client.get(gcs_bucket, "new/")
    assert meta["size"] == "0"
    assert os.path.isdir(m / "new") and os.listdir(m / "new") == []
    assert sorted(os.listdir(m)) == ["file", "new"]
    expect_errno(errno.EEXIST, os.mkdir, m / "new")
    expect_errno(errno.EEXIST, os.mkdir, m / "file")
    # a folder that shows through a second mount too
    other = mounter.mount(ws.gcs_config(gcs_bucket))
    assert os.path.isdir(other / "new")
    # not empty: ENOTEMPTY; a file is not a folder
    (m / "new/x.txt").write_bytes(b"x")
    expect_errno(errno.ENOTEMPTY, os.rmdir, m / "new")
    os.mkdir(m / "new/inner")
    os.unlink(m / "new/x.txt")
    expect_errno(errno.ENOTEMPTY, os.rmdir, m / "new")
    expect_errno(errno.ENOTDIR, os.rmdir, m / "file")
    os.rmdir(m / "new/inner")
    os.rmdir(m / "new")
    assert not (m / "new").exists()
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["file"]
    expect_errno(errno.ENOENT, os.rmdir, m / "new")
    # a folder without a marker goes with its last file; rm -r still succeeds
    gcs.client.upload(gcs_bucket, "implicit/a/b.txt", b"b")
    r = subprocess.run(["rm", "-r", str(m / "implicit")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert not (m / "implicit").exists()
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["file"]
    # makedirs builds a path of markers
    os.makedirs(m / "p/q/r")
    assert sorted(gcs.client.list_all(gcs_bucket)) == ["file", "p/", "p/q/", "p/q/r/"]


@pytest.mark.timeout(180)
def test_cp_p_and_rsync_a_into_the_mount(gcs, gcs_bucket, ws, mounter):
    """cp -p sets modes, owners and times; rsync -a writes a temporary file and
    renames it into place: both succeed, and the bytes land."""
    src = ws.root / "tree"
    (src / "sub").mkdir(parents=True)
    files = {"one.bin": os.urandom(300 * 1024), "sub/two.txt": b"two\n" * 1000,
             "sub/empty": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.chmod(src / name, 0o640)
    m = rw_mount(mounter, ws, gcs_bucket)
    r = subprocess.run(["cp", "-p", str(src / "one.bin"), str(m / "one.bin")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "one.bin") == files["one.bin"]
    r = subprocess.run(["cp", "-rp", str(src), str(m / "cp-tree")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["rsync", "-a", str(src) + "/", str(m / "rs-tree")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for top in ("cp-tree", "rs-tree"):
        for name, data in files.items():
            assert gcs_bytes(gcs, gcs_bucket, f"{top}/{name}") == data, (top, name)
            assert sha256((m / top / name).read_bytes()) == sha256(data)
    # rsync left no temporary file behind
    names = gcs.client.list_all(gcs_bucket, "rs-tree/")
    assert sorted(n for n in names if not n.endswith("/")) == sorted(
        f"rs-tree/{n}" for n in files), names
    # again, over the files it made: rsync -a renames over existing names
    (src / "sub/two.txt").write_bytes(b"changed\n")
    os.utime(src / "sub/two.txt", (1, 1))
    r = subprocess.run(["rsync", "-a", str(src) + "/", str(m / "rs-tree")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert gcs_bytes(gcs, gcs_bucket, "rs-tree/sub/two.txt") == b"changed\n"
