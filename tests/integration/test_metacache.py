"""The metadata cache in the daemon (backends/composite/metacache.c), counted at the proxy.

What can be observed honestly: the mount's attr/entry/negative timeouts drive
both the kernel's caches and the daemon's, so with the kernel caching on, a
second `stat` never reaches the daemon and proves nothing about it.  The
daemon-side cache is therefore shown with the kernel's caches off
(entry_timeout=0, attr_timeout=0: every stat is a FUSE request) in bounded
freshness mode, where the daemon keeps attributes and listing pages for the
bound; a mount without the metadata cache is the control.  Strict mode (the
default) is checked for what it promises: `ls -l` costs its listing pages
only, a new listing shows new objects, opens confirm the version.
"""

import os
import subprocess
import time
from types import SimpleNamespace

import pytest

from hylib import drop_bucket, make_bucket, put_many

MANY = 2500          # three listing pages of 1,000
KERNEL_OFF = {"entry_timeout": "0", "attr_timeout": "0"}


@pytest.fixture(scope="module")
def many(rgw, s3, base_dir):
    """A bucket with dir/ holding MANY small objects, made once for the module."""
    name = make_bucket(s3, "metacache")
    put_many(s3, name, {f"dir/f{i:04d}": b"x" * (i % 7) for i in range(MANY)}, threads=64)
    yield SimpleNamespace(bucket=name, names=[f"f{i:04d}" for i in range(MANY)])
    drop_bucket(s3, rgw, name)


def dir_lists(proxy):
    return proxy.requests("LIST", lambda r: r.params.get("prefix", "") == "dir/"
                          and r.params.get("max-keys") == "1000")


def ls_l(path) -> list[str]:
    r = subprocess.run(["ls", "-l", "--", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.splitlines() if not ln.startswith("total")]


def settle(proxy):
    """Let requests in flight land, then count from zero."""
    time.sleep(0.2)
    proxy.reset_counts()


def test_strict_ls_l_costs_only_its_listing_pages(many, s3, proxy, ws, mounter):
    m = mounter.mount(ws.s3_config(many.bucket, endpoint=proxy.url))  # defaults: strict
    os.stat(m / "dir")
    settle(proxy)
    lines = ls_l(m / "dir")
    assert len(lines) == MANY
    assert len(dir_lists(proxy)) == 3
    assert sum(proxy.counts.values()) == 3, dict(proxy.counts)

    # strict: listings are never kept, so a new object shows in the next one
    s3.put_object(Bucket=many.bucket, Key="dir/zz-new", Body=b"new")
    try:
        settle(proxy)
        names = os.listdir(m / "dir")
        assert "zz-new" in names and len(names) == MANY + 1
        assert len(dir_lists(proxy)) == 3
    finally:
        s3.delete_object(Bucket=many.bucket, Key="dir/zz-new")


def test_bounded_daemon_answers_stats_and_listings(many, proxy, ws, mounter):
    mount = {**KERNEL_OFF, "freshness": "bounded:30s"}
    control = mounter.mount(ws.s3_config(many.bucket, endpoint=proxy.url,
                                         mount={**mount, "metadata_cache_size": "0"}))
    m = mounter.mount(ws.s3_config(many.bucket, endpoint=proxy.url, mount=mount))

    # the control: with the kernel's caches off, every stat reaches the daemon
    os.listdir(control / "dir")
    settle(proxy)
    for n in many.names[:20]:
        os.stat(control / "dir" / n)
    assert sum(proxy.counts.values()) >= 20, dict(proxy.counts)

    os.stat(m / "dir")
    settle(proxy)
    lines = ls_l(m / "dir")          # getattr of each entry: from the listing
    assert len(lines) == MANY
    assert len(dir_lists(proxy)) == 3
    assert sum(proxy.counts.values()) == 3, dict(proxy.counts)

    settle(proxy)
    sizes = {n: os.stat(m / "dir" / n).st_size for n in many.names}   # lookups
    assert sizes == {f"f{i:04d}": i % 7 for i in range(MANY)}
    assert len(ls_l(m / "dir")) == MANY                               # pages kept
    assert sum(proxy.counts.values()) == 0, dict(proxy.counts)


def test_new_name_after_negative_lookup(s3, bucket, proxy, ws, mounter):
    s3.put_object(Bucket=bucket, Key="d/a", Body=b"a")
    neg = mounter.mount(ws.s3_config(bucket, endpoint=proxy.url,
                                     mount={"negative_timeout": "2s"}))
    default = mounter.mount(ws.s3_config(bucket, endpoint=proxy.url))   # negative_timeout=0

    assert not os.path.exists(neg / "d" / "b")
    assert not os.path.exists(default / "d" / "c")
    settle(proxy)
    # remembered (by the kernel's negative entry and the daemon's: both last
    # negative_timeout, so this alone cannot tell them apart): no request
    assert not os.path.exists(neg / "d" / "b")
    assert sum(proxy.counts.values()) == 0, dict(proxy.counts)
    t_put = time.monotonic()
    s3.put_object(Bucket=bucket, Key="d/b", Body=b"bb")
    s3.put_object(Bucket=bucket, Key="d/c", Body=b"ccc")

    assert os.stat(default / "d" / "c").st_size == 3    # not remembered: seen at once
    assert (default / "d" / "c").read_bytes() == b"ccc"
    if time.monotonic() - t_put < 1.5:
        assert not os.path.exists(neg / "d" / "b")      # still within the 2 s
    time.sleep(2.2)
    assert os.stat(neg / "d" / "b").st_size == 2
    assert (neg / "d" / "b").read_bytes() == b"bb"


@pytest.mark.parametrize("new_size", [3000, 300], ids=["larger", "smaller"])
def test_strict_open_confirms_while_attributes_are_cached(s3, bucket, ws, mounter, new_size):
    old, new = os.urandom(1000), os.urandom(new_size)
    s3.put_object(Bucket=bucket, Key="t/f.bin", Body=old)
    m = mounter.mount(ws.s3_config(bucket, mount={"attr_timeout": "30s",
                                                  "entry_timeout": "30s"}))
    p = m / "t" / "f.bin"
    assert os.stat(p).st_size == 1000
    assert p.read_bytes() == old
    s3.put_object(Bucket=bucket, Key="t/f.bin", Body=new)
    # Attributes are cached for 30 s, but an open asks the source; the new
    # version it finds drops the kernel's attributes (fs.c) and replaces the
    # daemon's, so the next stat (a FUSE getattr with no open file, answered
    # from the daemon's cache) shows the new size at once.
    os.close(os.open(p, os.O_RDONLY))
    assert os.stat(p).st_size == new_size
    assert p.read_bytes() == new
    with open(p, "rb") as f:
        assert os.fstat(f.fileno()).st_size == new_size
        assert f.read() == new


def test_ls_l_stops_asking_for_selinux_and_acl_xattrs(many, ws, mounter):
    """GNU ls -l asks every file for security.selinux and
    system.posix_acl_access, each a round trip to the daemon.  hylake says
    those namespaces are not supported, so ls stops asking after the first
    file; its own user.hylake.* attributes still answer."""
    m = mounter.mount(ws.s3_config(many.bucket))
    r = subprocess.run(["strace", "-f", "-c", "-e", "trace=getxattr,lgetxattr",
                        "ls", "-l", str(m / "dir")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    calls = sum(int(line.split()[3]) for line in r.stderr.splitlines()
                if line.strip().endswith("getxattr"))
    assert calls <= 4, f"ls -l of {MANY} files made {calls} getxattr calls:\n{r.stderr}"
    f = m / "dir" / many.names[0]
    for name in ("security.selinux", "system.posix_acl_access", "trusted.x"):
        with pytest.raises(OSError) as e:
            os.getxattr(f, name)
        assert e.value.errno == 95, (name, e.value)          # EOPNOTSUPP
    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.other")
    assert e.value.errno == 61                                # ENODATA
    assert os.getxattr(f, "user.hylake.source") == b"source"


def test_strict_burst_of_opens_in_one_folder_costs_a_page_not_a_lookup_each(
        many, proxy, ws, mounter):
    """A query engine opens the files of a table by name, in order, without
    listing the folder first.  Each lookup the daemon cannot answer lists a
    page of the folder from that name on (start-after), so 300 opens cost
    two pages of lookups, not 300; every open still confirms its version
    with the store (strict), and the bytes are right."""
    m = mounter.mount(ws.s3_config(many.bucket, endpoint=proxy.url))  # defaults: strict
    settle(proxy)
    names = many.names[1000:1300]
    for n in names:
        with open(m / "dir" / n, "rb") as f:
            assert f.read() == b"x" * (int(n[1:]) % 7)
    lists = proxy.requests("LIST", lambda r: r.params.get("prefix") == "dir/")
    assert all(r.params.get("start-after", "").startswith("dir/f") for r in lists), lists[:3]
    assert 1 <= len(lists) <= 3, f"{len(lists)} pages of dir/ for {len(names)} lookups"
    assert len(proxy.requests("LIST")) <= len(lists) + 1, "lookups listed name by name"
    # strict: each open asks the store for the current version, with a
    # HEAD or (a small file, read whole) a GET of its end
    asks = proxy.requests("HEAD") + [r for r in proxy.requests("GET")
                                     if (r.range or "").startswith("bytes=-")]
    assert len(asks) >= len(names) - 5, f"{len(asks)} questions for {len(names)} opens"
    # a name that does not exist is decided by the same kind of page
    settle(proxy)
    assert not os.path.exists(m / "dir" / "f99999")
    assert len(proxy.requests("LIST")) == 1 and not proxy.requests("HEAD"), proxy.requests()
