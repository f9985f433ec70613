"""The GCS store (`type = gcs`) against tests/gcs/gcs_server.py, which follows the
Cloud Storage JSON API and requires OAuth tokens (one server per session; each
test gets its own bucket and the server's default settings back).

The byte-for-byte tree checks are test_tree.py's, parametrized with [gcs]."""

import errno
import gzip
import os
import secrets
import time
import urllib.parse

import pytest

from gcs_client import rfc3339_to_ns
from hylib import (
    GCS_SCOPE_RO, MiB, child_call, child_preads, child_read, expected_tree, is_mounted,
    processes_for, run_hylake, sha256, sha256_file, walk_tree,
)
from test_check import _mount_fails
from test_overwrite import NOTIMEOUT, SIZE, check_reopen_sees_new, read_rest_pinned

CACHED = "entry_timeout=60,attr_timeout=60"
SHORT = "request_timeout=2s,op_timeout=5s,retries=1"
HANG_TIMEOUTS = {"request_timeout": "1s", "op_timeout": "3s", "retries": "1"}
API_KINDS = ("objects.", "bucket.")


def api_requests(gcs, since, bucket):
    return [e for e in gcs.requests(since, kind=API_KINDS) if e["bucket"] == bucket]


def assert_all_bearer(reqs):
    bad = [(e["method"], e["path"], e["query"], e["auth"], e["auth_ok"], e["status"])
           for e in reqs if e["auth"] != "bearer" or e["auth_ok"] is not True]
    assert not bad, f"API requests without a valid Bearer token: {bad[:5]}"


def no_token_in(text: str):
    assert "ya29." not in text, "an access token appears in hylake's output"
    assert "PRIVATE KEY" not in text and "MII" not in text, "key material in hylake's output"


# --------------------------------------------------------------------------- check


def test_check_ok(gcs, gcs_bucket, ws):
    gcs.client.upload(gcs_bucket, "x", b"x")
    mark = gcs.control.log_mark()
    r = run_hylake("check", ws.gcs_config(gcs_bucket))
    assert r.returncode == 0, r
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, r
    assert "ok" in lines[0].lower().split(), r
    assert "gcs" in lines[0] and gcs_bucket in lines[0], r
    no_token_in(r.output)
    assert gcs.requests(mark, kind="token"), "check did not use the token endpoint"
    assert_all_bearer(api_requests(gcs, mark, gcs_bucket))


def test_check_ok_on_empty_bucket_and_prefix(gcs, gcs_bucket, ws):
    r = run_hylake("check", ws.gcs_config(gcs_bucket, prefix="nothing/here/"))
    assert r.returncode == 0, r
    assert "ok" in r.stdout.lower(), r


def test_check_bucket_not_found(gcs, ws):
    r = run_hylake("check", ws.gcs_config("hyt-no-such-bucket-4711"))
    assert r.returncode == 1, r
    assert "bucket not found" in r.output.lower(), r
    no_token_in(r.output)


def test_wrong_key_rejected_at_check_and_mount(gcs, gcs_bucket, ws):
    """A key file for the right account and key id but another RSA key: the
    token endpoint refuses the JWT's signature."""
    creds = ws.sa_key(key=gcs.other_key)
    mark = gcs.control.log_mark()
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds=creds), timeout=60)
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r
    assert "failed" in r.stdout.lower(), r
    no_token_in(r.output)
    toks = gcs.requests(mark, kind="token")
    assert toks and all(e["status"] == 400 for e in toks), toks
    assert all(e["jwt"]["verdict"] == "Invalid JWT Signature." for e in toks), toks
    assert not api_requests(gcs, mark, gcs_bucket) or all(
        e["auth"] == "none" for e in api_requests(gcs, mark, gcs_bucket))
    r = _mount_fails(ws, ws.gcs_config(gcs_bucket, creds=creds))
    assert "credentials rejected" in r.stderr.lower(), r
    no_token_in(r.output)


@pytest.mark.parametrize("what", ["unknown-account", "wrong-token-uri-audience"])
def test_other_rejected_key_files(gcs, gcs_bucket, ws, what):
    if what == "unknown-account":
        creds = ws.sa_key(email="nobody@hylake-test.iam.gserviceaccount.com")
    else:
        # token_uri with a query string: the request reaches /token, but aud differs
        creds = ws.sa_key(token_uri=gcs.token_uri + "?x=1")
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds=creds), timeout=60)
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused(gcs, gcs_bucket, ws, mode):
    creds = ws.sa_key(mode=mode)
    mark = gcs.control.log_mark()
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds=creds))
    assert r.returncode != 0, r
    assert "readable by group/other" in r.output, r
    no_token_in(r.output)
    r = _mount_fails(ws, ws.gcs_config(gcs_bucket, creds=creds))
    assert "readable by group/other" in r.stderr, r
    assert not gcs.requests(mark, kind="token"), "a refused key file was used anyway"


# --------------------------------------------------------------------------- auth


def test_key_file_auth_tokens_and_bearer(gcs, gcs_bucket, ws, mounter):
    body = os.urandom(300_000)
    gcs.client.upload(gcs_bucket, "d/f.bin", body)
    mark = gcs.control.log_mark()
    m = mounter.mount(ws.gcs_config(gcs_bucket, mount={"log_level": "debug"}), foreground=True)
    assert os.listdir(m / "d") == ["f.bin"]
    assert sha256_file(m / "d" / "f.bin") == sha256(body)
    toks = gcs.requests(mark, kind="token")
    assert toks, "the token endpoint was never used"
    for e in toks:
        assert e["status"] == 200 and e["jwt"]["verdict"] == "ok", e
        j = e["jwt"]
        assert j["iss"] == gcs.email and j["aud"] == gcs.token_uri, j
        assert j["scope"] == GCS_SCOPE_RO, j
        assert j["alg"] == "RS256" and j["kid"] in (None, gcs.kid), j
        assert 0 < j["exp"] - j["iat"] <= 3600, j
    api = api_requests(gcs, mark, gcs_bucket)
    assert api, "no API requests"
    assert_all_bearer(api)
    assert not gcs.requests(mark, kind="metadata"), "key-file auth asked a metadata server"
    m.unmount()
    no_token_in(m.stderr + m.stdout)


def test_metadata_server_auth(gcs, gcs_bucket, ws, mounter):
    body = os.urandom(70_000)
    gcs.client.upload(gcs_bucket, "m.bin", body)
    mark = gcs.control.log_mark()
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds="metadata"))
    assert r.returncode == 0, r
    m = mounter.mount(ws.gcs_config(gcs_bucket, creds="metadata"))
    assert sha256_file(m / "m.bin") == sha256(body)
    md = gcs.requests(mark, kind="metadata")
    assert md, "the metadata endpoint was never asked"
    assert all(e["metadata_flavor"] == "Google" and e["status"] == 200 for e in md), md
    assert all(e["path"] == "/computeMetadata/v1/instance/service-accounts/default/token"
               for e in md), md
    assert not gcs.requests(mark, kind="token")
    assert_all_bearer(api_requests(gcs, mark, gcs_bucket))


def test_metadata_server_unavailable(gcs, gcs_bucket, ws):
    gcs.control.config(metadata_enabled=False)
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds="metadata"), timeout=60)
    assert r.returncode == 1, r
    assert "metadata" in r.output.lower(), r


def test_credentials_none(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "pub.txt", b"public\n")
    # the server requires auth: anonymous listing is refused
    r = run_hylake("check", ws.gcs_config(gcs_bucket, creds="none"))
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r
    # without auth required, `none` works and sends no Authorization at all
    gcs.control.config(require_auth=False)
    mark = gcs.control.log_mark()
    m = mounter.mount(ws.gcs_config(gcs_bucket, creds="none"))
    assert (m / "pub.txt").read_bytes() == b"public\n"
    api = api_requests(gcs, mark, gcs_bucket)
    assert api and all(e["auth"] == "none" for e in api), api
    assert not gcs.requests(mark, kind=("token", "metadata"))


@pytest.mark.timeout(90)
def test_short_lived_tokens_are_refreshed(gcs, gcs_bucket, ws, mounter):
    """Tokens that live 5 s, reads for 12 s: hylake renews them before they
    expire (the server answers 401 to an expired one)."""
    files = {f"r/f{i}.bin": os.urandom(50_000 + i) for i in range(4)}
    gcs.client.put_many(gcs_bucket, files)
    gcs.control.config(token_lifetime=5)
    mark = gcs.control.log_mark()
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="entry_timeout=0,attr_timeout=0")
    t_end = time.monotonic() + 12
    n = 0
    while time.monotonic() < t_end:
        k = f"r/f{n % 4}.bin"
        res = child_read(m / k, timeout=30)
        assert res["ok"] and res["sha256"] == sha256(files[k]), (n, res)
        n += 1
        time.sleep(0.3)
    toks = gcs.requests(mark, kind="token")
    api = api_requests(gcs, mark, gcs_bucket)
    assert len(toks) >= 3, f"{len(toks)} token requests in 12 s with 5 s tokens"
    assert all(e["status"] == 200 for e in toks)
    used = {e["token_id"] for e in api}
    assert len(used) >= 3, f"only {len(used)} distinct tokens used over 12 s"
    expired = [e for e in api if e["status"] == 401]
    assert not expired, f"{len(expired)} requests went out with an expired token"
    assert len(toks) <= len(api), "a token request for every API request"


def test_revoked_token_is_replaced(gcs, gcs_bucket, ws, mounter):
    """A 401 (token revoked server-side) drops the cached token; the next
    attempt gets a new one and succeeds."""
    body = os.urandom(10_000)
    gcs.client.upload(gcs_bucket, "a.bin", body)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="entry_timeout=0,attr_timeout=0")
    assert sha256_file(m / "a.bin") == sha256(body)
    gcs.control.revoke_tokens()
    mark = gcs.control.log_mark()
    res = child_read(m / "a.bin", timeout=30)
    assert res["ok"] and res["sha256"] == sha256(body), res
    assert any(e["status"] == 401 for e in api_requests(gcs, mark, gcs_bucket))
    assert gcs.requests(mark, kind="token"), "no new token after a 401"


# --------------------------------------------------------------------------- reads


def test_reads_pin_the_generation_and_accept_gzip(gcs, gcs_bucket, ws, mounter):
    body = os.urandom(3 * MiB + 5)
    res = gcs.client.upload(gcs_bucket, "p/x.bin", body)
    m = mounter.mount(ws.gcs_config(gcs_bucket))
    mark = gcs.control.log_mark()
    with open(m / "p" / "x.bin", "rb") as f:
        assert f.read() == body
    media = gcs.requests(mark, kind="objects.media")
    assert media, "no media request"
    for e in media:
        q = urllib.parse.parse_qs(e["query"])
        assert q.get("generation") == [res["generation"]], e["query"]
        assert q.get("alt") == ["media"], e["query"]
        assert "gzip" in (e["accept_encoding"] or ""), e
        assert e["status"] in (200, 206), e
    st = os.stat(m / "p" / "x.bin")
    assert st.st_size == len(body)
    assert st.st_mtime_ns // 10**6 == rfc3339_to_ns(res["timeCreated"]) // 10**6


def test_gzip_object_is_read_as_stored(gcs, gcs_bucket, ws, mounter):
    """contentEncoding gzip: the file is the stored (compressed) bytes with the
    stored size -- never what decompressive transcoding would serve."""
    plain = b"".join(b"line %06d of a compressible text file\n" % i for i in range(200_000))
    gz = gzip.compress(plain, compresslevel=6)
    assert len(gz) > 256 * 1024
    gcs.client.upload(gcs_bucket, "logs/app.log.gz", gz, content_type="text/plain",
                      content_encoding="gzip", method="multipart")
    gcs.client.upload(gcs_bucket, "logs/small.txt", gzip.compress(b"tiny\n"),
                      content_type="text/plain", content_encoding="gzip")
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=NOTIMEOUT)
    p = m / "logs" / "app.log.gz"
    assert os.stat(p).st_size == len(gz)
    assert sha256_file(p) == sha256(gz)
    with open(p, "rb") as f:
        f.seek(100_000)
        assert f.read(5000) == gz[100_000:105_000]
    assert gzip.decompress((m / "logs" / "small.txt").read_bytes()) == b"tiny\n"
    assert os.stat(m / "logs" / "small.txt").st_size == len(gzip.compress(b"tiny\n"))


def opens(gcs, since, bucket, name):
    """The API requests for object name after mark since: (kind, Range)."""
    return [(e["kind"], e["range"]) for e in api_requests(gcs, since, bucket)
            if e["object"] == name]


def test_a_small_file_is_opened_and_read_in_one_request(gcs, gcs_bucket, ws, mounter):
    """A file the mount knows to be small is read whole by its open: one media
    GET of its tail and no objects.get, for each open in strict mode; the
    version it pins is told as objects.get tells it (mtime is timeCreated)."""
    bodies = {f"s/{i}.json": os.urandom(1 + i * 997) for i in range(12)}
    created = {k: gcs.client.upload(gcs_bucket, k, b)["timeCreated"] for k, b in bodies.items()}
    m = mounter.mount(ws.gcs_config(gcs_bucket))
    assert sorted(os.listdir(m / "s")) == sorted(k[2:] for k in bodies)
    mark = gcs.control.log_mark()
    for k, b in bodies.items():
        assert (m / k).read_bytes() == b, k
    for k in bodies:
        assert opens(gcs, mark, gcs_bucket, k) == [("objects.media", f"bytes=-{2 * MiB}")], k
    for k in bodies:
        st = os.stat(m / k)
        assert (st.st_size, st.st_mtime_ns) == (len(bodies[k]), rfc3339_to_ns(created[k])), k


def test_a_parquet_footer_costs_one_request(gcs, gcs_bucket, ws, mounter):
    body = os.urandom(20 * MiB + 999)
    gcs.client.upload(gcs_bucket, "part-0.parquet", body, method="resumable", chunk=4 * MiB)
    m = mounter.mount(ws.gcs_config(gcs_bucket, mount={"cache_size": "0"}))
    size = len(body)
    reads = [(size - 8, 8), (size - 48 * 1024, 48 * 1024), (size - 8, 8)]
    os.stat(m / "part-0.parquet")
    mark = gcs.control.log_mark()
    res = child_preads(m / "part-0.parquet", reads)
    assert res.get("ok") and res["sums"] == [sha256(body[o:o + n]) for o, n in reads], res
    # the open asked for the generation and the footer in one media GET
    assert opens(gcs, mark, gcs_bucket, "part-0.parquet") == [("objects.media", f"bytes=-{MiB}")]


def test_prefix_mounts_only_the_subtree(gcs, gcs_bucket, ws, mounter):
    from test_prefix import KEYS

    gcs.client.put_many(gcs_bucket, KEYS)
    m = mounter.mount(ws.gcs_config(gcs_bucket, prefix="tables/"))
    files, dirs = walk_tree(m.path)
    want_files, want_dirs = expected_tree(KEYS, "tables/")
    assert files == want_files
    assert dirs == want_dirs
    for rel in files:
        assert sha256_file(m / rel) == sha256(KEYS["tables/" + rel]), rel
    for outside in ["other", "tables.txt", "tablesX", "root-only.txt", "tables"]:
        assert not os.path.exists(m / outside), outside


# --------------------------------------------------------------------------- listing


def _paging_tree():
    t = {f"top{i:03d}.txt": f"top {i}\n".encode() for i in range(40)}
    for d in range(30):
        for j in range(3):
            t[f"dir{d:02d}/f{j}.txt"] = f"{d}/{j}\n".encode()
    t["dir05/deeper/x.txt"] = b"x\n"
    t["dir07/"] = b""  # a marker inside a repeated prefix
    t["marker-only/"] = b""
    for i in range(300):
        t[f"wide/n{i:04d}"] = b"w"
    t["wide/sub/a"] = b"a"
    return t


@pytest.mark.parametrize("mode", [
    {"page_size": [3, 1, 2], "empty_every": 3, "empty_first": True, "repeat_prefix": True,
     "trailing_token": True},
    {"page_size": 1, "repeat_prefix": True},
    {"empty_every": 2, "empty_first": True, "trailing_token": True},
], ids=["all", "one-per-page-repeats", "empty-pages"])
def test_listing_under_adversarial_paging(gcs, gcs_bucket, ws, mounter, mode):
    """Empty pages that carry a nextPageToken, tiny pages, a prefix repeated at
    the start of the next page: no duplicate and no missing name."""
    data = _paging_tree()
    gcs.client.put_many(gcs_bucket, data)
    gcs.control.paging(**mode)
    mark = gcs.control.log_mark()
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="entry_timeout=0,attr_timeout=0")
    files, dirs = walk_tree(m.path)  # asserts no duplicate names per folder
    want_files, want_dirs = expected_tree(data)
    assert files == want_files, sorted(files ^ want_files)[:20]
    assert dirs == want_dirs, sorted(dirs ^ want_dirs)[:20]
    root = os.listdir(m.path)
    assert len(root) == len(set(root)) == 40 + 30 + 2
    wide = os.listdir(m / "wide")
    assert len(wide) == len(set(wide)) == 301
    # stat goes through listings too
    for k in ["top000.txt", "top039.txt", "dir29/f2.txt", "dir05/deeper/x.txt", "wide/n0299"]:
        assert os.stat(m / k).st_size == len(data[k]), k
    assert os.path.isdir(m / "dir07") and os.path.isdir(m / "marker-only")
    lists = gcs.requests(mark, kind="objects.list")
    assert len(lists) > 20, f"only {len(lists)} listing requests: was the paging mode in force?"


# --------------------------------------------------------------------------- overwrite


@pytest.mark.parametrize("new_size", [SIZE, 9 * MiB - 5], ids=["same-size", "smaller"])
def test_overwrite_while_open(gcs, gcs_bucket, ws, mounter, new_size):
    """The server keeps only the live generation: after an overwrite a read of
    the pinned one is old bytes (kernel cache) or ESTALE, never new or mixed."""
    old = os.urandom(SIZE)
    new = os.urandom(new_size)
    gcs.client.upload(gcs_bucket, "data/blob.bin", old, method="resumable", chunk=4 * MiB)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=NOTIMEOUT)
    path = m / "data" / "blob.bin"
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == SIZE
        assert os.pread(fd, MiB, 0) == old[:MiB]
        res = gcs.client.upload(gcs_bucket, "data/blob.bin", new, method="resumable",
                                chunk=4 * MiB)
        n, stale = read_rest_pinned(fd, old, MiB)
        assert stale or n == SIZE - MiB
        try:
            mid = os.pread(fd, 100_000, 15 * MiB + 17)
            assert mid == old[15 * MiB + 17:15 * MiB + 17 + len(mid)]
        except OSError as e:
            assert e.errno == errno.ESTALE, repr(e)
    finally:
        os.close(fd)
    check_reopen_sees_new(path, new)
    assert os.stat(path).st_mtime_ns // 10**6 == rfc3339_to_ns(res["timeCreated"]) // 10**6


def test_delete_while_open(gcs, gcs_bucket, ws, mounter):
    old = os.urandom(6 * MiB)
    gcs.client.upload(gcs_bucket, "gone.bin", old)
    gcs.client.upload(gcs_bucket, "stays.bin", b"x")
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=NOTIMEOUT)
    fd = os.open(m / "gone.bin", os.O_RDONLY)
    try:
        assert os.pread(fd, MiB, 0) == old[:MiB]
        gcs.client.delete(gcs_bucket, "gone.bin")
        read_rest_pinned(fd, old, MiB, errnos=None)
    finally:
        os.close(fd)
    assert not os.path.exists(m / "gone.bin")
    assert os.listdir(m.path) == ["stays.bin"]


# --------------------------------------------------------------------------- faults


def test_hanging_server_read_errors_in_time(gcs, gcs_bucket, ws, mounter):
    body = os.urandom(2 * MiB + 1)
    gcs.client.upload(gcs_bucket, "h/blob.bin", body)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=f"{SHORT},{CACHED}")
    os.stat(m / "h" / "blob.bin")  # lookup done; the read must reach the server
    gcs.control.config(delay_ms=120_000)
    try:
        res = child_read(m / "h" / "blob.bin", timeout=60)
    finally:
        gcs.control.config(delay_ms=0)
    assert not res.get("timed_out"), "read on a hanging GCS hung for 60 s"
    assert not res["ok"], f"read on a hanging server returned data: {res}"
    assert res["elapsed"] <= 15, f"read took {res['elapsed']:.1f}s to fail (limit ~15 s)"
    res = child_read(m / "h" / "blob.bin", timeout=60)
    assert res["ok"] and res["sha256"] == sha256(body), res


def test_hanging_server_lookup_and_check_give_up(gcs, gcs_bucket, ws, mounter):
    gcs.client.upload(gcs_bucket, "h/x", b"x")
    m = mounter.mount(ws.gcs_config(gcs_bucket, mount=HANG_TIMEOUTS))
    gcs.control.config(delay_ms=120_000)
    try:
        _hanging_lookup_and_check(gcs, gcs_bucket, ws, m)
    finally:
        gcs.control.config(delay_ms=0)


def _hanging_lookup_and_check(gcs, gcs_bucket, ws, m):
    res = child_call(r"""
import json, os, sys, time
out = {}
for name, fn, arg in (("stat", os.stat, sys.argv[1]), ("listdir", os.listdir, sys.argv[2])):
    t = time.monotonic()
    try:
        fn(arg); out[name] = "ok"
    except OSError as e:
        out[name] = e.errno
    out[name + "_s"] = time.monotonic() - t
print(json.dumps(out))
""", m / "h" / "x", m / "h", timeout=90)
    assert not res.get("timed_out"), "stat/listdir on a hanging GCS hung for 90 s"
    assert res["stat"] != "ok" and res["listdir"] != "ok", res
    assert res["stat_s"] <= 10 and res["listdir_s"] <= 10, res
    cfg = ws.gcs_config(gcs_bucket, mount=HANG_TIMEOUTS)
    t = time.monotonic()
    r = run_hylake("check", cfg, timeout=60)
    assert r.returncode == 1, r
    assert time.monotonic() - t < 20, "check took too long against a hanging server"
    mnt = ws.path("mnt-hang")
    mnt.mkdir()
    t = time.monotonic()
    r = run_hylake("mount", cfg, mnt, timeout=60)
    assert r.returncode != 0, r
    assert time.monotonic() - t < 20, "mount took too long to give up on a hanging server"
    assert not is_mounted(mnt) and not processes_for(mnt)


def test_hanging_token_endpoint_errors_in_time(gcs, gcs_bucket, ws, mounter):
    """Only the token endpoint hangs, once the token has expired: reads (two at
    once, sharing the single-flight token fetch) fail in bounded time and
    recover when it answers again."""
    bodies = {f"t/f{i}.bin": os.urandom(100_000 + i) for i in range(2)}
    gcs.client.put_many(gcs_bucket, bodies)
    gcs.control.config(token_lifetime=2)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=f"{SHORT},{CACHED}")
    for k in bodies:
        os.stat(m / k)
    gcs.control.config(delay_ms=120_000, delay_only=["token"])
    try:
        time.sleep(2.2)  # the cached token has expired by now
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as ex:
            results = list(ex.map(lambda k: child_read(m / k, timeout=60), bodies))
    finally:
        gcs.control.config(delay_ms=0, delay_only=[])
    for res in results:
        assert not res.get("timed_out"), "a read hung behind a hanging token endpoint"
        assert not res["ok"], res
        assert res["elapsed"] <= 20, f"read took {res['elapsed']:.1f}s to fail"
    for k, v in bodies.items():
        res = child_read(m / k, timeout=60)
        assert res["ok"] and res["sha256"] == sha256(v), res


@pytest.mark.parametrize("what,phrase", [("missing-bucket", "bucket not found"),
                                         ("unreachable", "unreachable")])
def test_mount_fails_cleanly(gcs, ws, what, phrase):
    from hylib import free_port

    kw = {}
    bucket = "hyt-no-such-bucket-4712"
    if what == "unreachable":
        bucket = "lake"
        kw["endpoint"] = f"http://127.0.0.1:{free_port()}"
        kw["mount"] = {"connect_timeout": "2s", "retries": "1"}
    cfg = ws.gcs_config(bucket, **kw)
    r = _mount_fails(ws, cfg)
    assert phrase in r.stderr.lower(), r
    r = run_hylake("check", cfg, timeout=60)
    assert r.returncode == 1 and phrase in r.output.lower(), r
    no_token_in(r.output)


_MATCH = {
    "media": lambda r: "alt=media" in r.query,
    "list": lambda r: r.method == "GET" and r.path.endswith("/o"),
    "object": lambda r: "/o/" in r.path and "alt=media" not in r.query,
}


@pytest.mark.parametrize("kind,status", [("media", 503), ("media", 500), ("media", 429),
                                         ("list", 503), ("object", 429)])
def test_transient_errors_are_retried(gcs, gcs_bucket, ws, mounter, kind, status):
    """Through FaultProxy: two 5xx / 429 answers in a row are retried (retries=3)."""
    from proxy import FaultProxy

    body = os.urandom(5 * MiB + 123)
    gcs.client.upload(gcs_bucket, "dir/blob.bin", body)
    gcs.client.upload(gcs_bucket, "dir/other.bin", b"other")
    with FaultProxy(gcs.url) as p:
        m = mounter.mount(ws.gcs_config(gcs_bucket, endpoint=p.url, mount={"retries": "3"}),
                          opts="entry_timeout=0,attr_timeout=0")
        assert os.stat(m / "dir" / "other.bin").st_size == 5
        f = p.set_fault("status", match=_MATCH[kind], count=2, status=status)
        res = child_call(r"""
import hashlib, json, os, sys
d = sys.argv[1]
try:
    names = sorted(os.listdir(d))
    with open(os.path.join(d, "blob.bin"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(json.dumps({"names": names, "sha256": digest}))
except OSError as e:
    print(json.dumps({"errno": e.errno}))
""", m / "dir", timeout=90)
        assert f.fired == 2, f"the fault was injected {f.fired} times"
        assert res.get("names") == ["blob.bin", "other.bin"], res
        assert res.get("sha256") == sha256(body), res
        m.unmount()


def test_names_need_percent_encoding(gcs, gcs_bucket, ws, mounter):
    """Names with characters that URLs treat specially reach the server as one
    percent-encoded segment (the server 404s a raw '/')."""
    names = ["a/b+c.txt", "a/100% sure.txt", "a/q?x=1#frag", "a/semi;colon", "a/tilde~ok",
             "a/é ü.txt", "a/[brackets]", "a/plus+and space"]
    data = {n: secrets.token_bytes(100) for n in names}
    gcs.client.put_many(gcs_bucket, data)
    m = mounter.mount(ws.gcs_config(gcs_bucket))
    assert sorted(os.listdir(m / "a")) == sorted(n[2:] for n in names)
    for n, b in data.items():
        assert (m / n).read_bytes() == b, n


def test_metadata_patch_while_open_is_not_a_new_version(gcs, gcs_bucket, ws, mounter):
    """A metadata PATCH bumps metageneration and `updated`, not the generation:
    an open file reads on, and mtime stays timeCreated."""
    body = os.urandom(4 * MiB)
    res = gcs.client.upload(gcs_bucket, "meta.bin", body, metadata={"v": "1"})
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts=NOTIMEOUT)
    with open(m / "meta.bin", "rb", buffering=0) as f:
        assert f.read(MiB) == body[:MiB]
        time.sleep(0.01)
        p = gcs.client.patch(gcs_bucket, "meta.bin", {"metadata": {"v": "2"},
                                                     "contentType": "text/x"})
        assert p["metageneration"] == "2" and p["updated"] != p["timeCreated"]
        assert f.read() == body[MiB:]
    st = os.stat(m / "meta.bin")
    assert st.st_mtime_ns // 10**6 == rfc3339_to_ns(res["timeCreated"]) // 10**6
    assert sha256_file(m / "meta.bin") == sha256(body)


@pytest.mark.parametrize("chunked", ["all", "media"])
def test_chunked_responses(gcs, gcs_bucket, ws, mounter, chunked):
    """JSON documents and media bodies sent with Transfer-Encoding: chunked."""
    data = {f"c/f{i:03d}": os.urandom(1000 + i * 3000) for i in range(40)}
    gcs.client.put_many(gcs_bucket, data)
    gcs.control.config(chunked=chunked)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="list_page_size=7")
    assert sorted(os.listdir(m / "c")) == sorted(k[2:] for k in data)
    for k, v in data.items():
        assert os.stat(m / k).st_size == len(v)
        assert sha256_file(m / k) == sha256(v), k


# --------------------------------------------------------------------------- names


def _put_names(gcs, bucket, names: dict) -> set:
    """Upload what the server accepts; return the names that landed."""
    from gcs_client import GcsHTTPError

    landed = set()
    for k, v in names.items():
        try:
            gcs.client.upload(bucket, k, v)
            landed.add(k)
        except GcsHTTPError as e:
            assert e.status == 400, e
    return landed


def test_unsafe_names_are_hidden(gcs, gcs_bucket, ws, mounter):
    """test_names.py's unsafe names ('a//b', '../up', 'c/./d', 300-byte segments,
    '/leading-slash', ...) stored in GCS are hidden; the safe ones all show."""
    from test_names import SAFE, UNSAFE

    gcs.client.put_many(gcs_bucket, SAFE)
    landed = _put_names(gcs, gcs_bucket, {k: b"unsafe:" + k.encode() for k in UNSAFE})
    assert len(landed) >= len(UNSAFE) - 1, landed  # GCS takes all of these names
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="list_page_size=2")
    files, dirs = walk_tree(m.path)
    want_files, want_dirs = expected_tree(SAFE)
    assert files == want_files
    assert dirs == want_dirs
    for k, body in SAFE.items():
        assert sha256_file(m / k) == sha256(body), k
    for p in ["a/b", "x", "z", "c/d", "long/inner.txt", "up", "leading-slash"]:
        assert not os.path.exists(m / p), p


def test_special_characters_and_collisions(gcs, gcs_bucket, ws, mounter):
    from test_names import SPECIAL

    items = {f"dir with + and %/{n}": f"content of {n}".encode() for n in SPECIAL}
    items.update({f"dir with + and %/sub+dir/{n}": n.encode() for n in SPECIAL[:8]})
    items.update({"both": b"I am the object\n", "both/child": b"child\n", "both-a": b"a",
                  "both.b": b"b", "m": b"m", "m/": b"", "m/in": b"in"})
    gcs.client.put_many(gcs_bucket, items)
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="list_page_size=3")
    assert sorted(os.listdir(m.path)) == ["both", "both-a", "both.b", "dir with + and %", "m"]
    assert os.listdir(m / "both") == ["child"] and os.listdir(m / "m") == ["in"]
    d = m / "dir with + and %"
    assert sorted(os.listdir(d)) == sorted(SPECIAL + ["sub+dir"])
    assert sorted(os.listdir(d / "sub+dir")) == sorted(SPECIAL[:8])
    for k, v in items.items():
        if k.startswith("dir with"):
            assert (m / k).read_bytes() == v, k


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("drop,add,phrase", [
    ("credentials", None, "needs 'credentials'"),
    ("bucket", None, "needs 'bucket'"),
    (None, "region = us-east-1", "'region' does not apply"),
    (None, "profile = default", "'profile' does not apply"),
], ids=["no-credentials", "no-bucket", "region", "profile"])
def test_config_validation(gcs, ws, drop, add, phrase):
    """FILE:LINE: messages and exit code 2, for check and mount (test_config.py's
    helpers); the endpoint is always the local server."""
    from test_config import run_both

    src = {"type": "gcs", "endpoint": gcs.url, "bucket": "lake",
           "credentials": str(ws.sa_key())}
    if drop:
        del src[drop]
    lines = ["[mount]", f"state_dir = {ws.state_dir}", "[source]"]
    lines += [f"{k} = {v}" for k, v in src.items()]
    if add:
        lines.append(add)
    cfg = ws.write("bad.conf", "\n".join(lines) + "\n")
    for r in run_both(cfg, ws):
        assert r.returncode == 2, r
        assert f"{cfg}:" in r.output and phrase in r.output, r
        no_token_in(r.output)


def test_key_file_that_is_not_a_service_account(gcs, gcs_bucket, ws):
    from gcs_client import write_secret

    for text, phrase in [('{"type": "authorized_user", "client_id": "x"}', "service_account"),
                         ('{"type": "service_account"}', "client_email"),
                         ("not json at all", "not json")]:
        creds = write_secret(ws.path(f"k{len(phrase)}.json"), text)
        r = run_hylake("check", ws.gcs_config(gcs_bucket, creds=creds))
        assert r.returncode in (1, 2), r
        assert phrase in r.output.lower(), (phrase, r)


def test_empty_bucket_and_empty_folder_listings(gcs, gcs_bucket, ws, mounter):
    """An empty listing page (an empty bucket, a prefix with nothing under it,
    a page that only carries a token) lists as an empty folder."""
    m = mounter.mount(ws.gcs_config(gcs_bucket), opts="entry_timeout=0,attr_timeout=0")
    assert os.listdir(m.path) == []
    m2 = mounter.mount(ws.gcs_config(gcs_bucket, prefix="nothing/here/"))
    assert os.listdir(m2.path) == []
    gcs.client.upload(gcs_bucket, "a/x", b"x")
    gcs.control.paging(empty_first=True)
    assert os.listdir(m.path) == ["a"]
    assert os.listdir(m / "a") == ["x"]
