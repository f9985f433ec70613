"""hylake's GCS store writes to the GCS test server: gcs_write_check (a C program
built beside hylake, tests/gcs/gcs_write_check.c) opens the store as a mount opens
its source, built to write, and checks uploads, preconditions, aborts and removes;
the server's fault rules (/_test/faults) break chunk PUTs to prove the resumed
uploads.  The binary is looked for in HYLAKE_BIN's folder, else <repo>/build; a
missing binary fails these tests.

    /usr/bin/python3 -m pytest -q tests/gcs/test_gcs_writes.py
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from gcs_client import crc32c_b64, rfc3339_to_ns, service_account_json, write_secret

REPO = Path(__file__).resolve().parents[2]
BUILD = (Path(os.environ["HYLAKE_BIN"]).absolute().parent if os.environ.get("HYLAKE_BIN")
         else REPO / "build")
CHECK_BIN = BUILD / "gcs_write_check"
CHUNK = 8 << 20  # GCS_UPLOAD_CHUNK
KiB = 1024
RO_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
RW_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"


@pytest.fixture(scope="session")
def check_bin():
    assert CHECK_BIN.is_file() and os.access(CHECK_BIN, os.X_OK), (
        f"{CHECK_BIN} is missing: build it (cmake --build build) or set HYLAKE_BIN "
        f"to a hylake binary whose folder holds it")
    return CHECK_BIN


@pytest.fixture
def config(server, sa, workdir, bucket):
    """A hylake config whose [source] is the test server's bucket, under prefix w/,
    with a service-account key (so the token's scope shows in the server's log)."""
    d = workdir / ("w-" + secrets.token_hex(4))
    d.mkdir()
    key = write_secret(d / "sa.json", json.dumps(service_account_json(
        private_key_pem=sa.key_pem.decode(), email=sa.email, kid=sa.kid,
        token_uri=server.url + "/token")))
    conf = d / "hylake.conf"
    conf.write_text(f"[mount]\nstate_dir = {d}/state\ncache_dir = {d}/cache\n\n"
                    f"[source]\ntype = gcs\nendpoint = {server.url}\nbucket = {bucket}\n"
                    f"prefix = w/\ncredentials = {key}\n")
    return conf


def run(check_bin, config, *args, ok=True):
    p = subprocess.run([str(check_bin), str(config), *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    if ok:
        assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def result(p) -> dict:
    return dict(kv.split("=", 1) for kv in p.stdout.split())


def token_scopes(gcs, since):
    return [e["jwt"]["scope"] for e in gcs.control.log(since) if e["kind"] == "token"
            and e.get("jwt")]


def chunk_puts(gcs, since, name):
    return [e for e in gcs.control.log(since)
            if e["kind"] == "upload.chunk" and e["object"] == name]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("check", ["sizes", "preconditions", "abort", "remove", "copy",
                                   "tail"])
def test_store_writes(check_bin, config, gcs, bucket, check):
    mark = gcs.control.log_mark()
    run(check_bin, config, check)
    log = gcs.control.log(mark)
    # a store built to write asks for a token that may
    assert token_scopes(gcs, mark) == [RW_SCOPE]
    # every object went through a resumable session under the prefix
    kinds = {e["kind"] for e in log if e["object"]}
    assert not kinds & {"upload.media", "upload.multipart"}
    assert all(e["object"].startswith("w/") for e in log if e["object"])
    if check == "preconditions":
        starts = [urllib.parse.parse_qs(e["query"]) for e in log
                  if e["kind"] == "upload.resumable"]
        pre_a = [q["ifGenerationMatch"] for q in starts if q["name"] == ["w/pre/a"]]
        # three puts-if-absent, then three overwrites of the first generation
        assert [g for g, in pre_a] == ["0"] * 3 + [pre_a[3][0]] * 3, pre_a
    if check == "abort":
        cancelled = {e["object"] for e in log if e["kind"] == "upload.cancel"}
        assert cancelled == {"w/abort/big"}   # the other two never started one
        assert gcs.list(bucket, prefix="w/abort/")[0] == {}
    if check == "copy":
        rewrites = [(e["object"], urllib.parse.parse_qs(e["query"]), e["status"])
                    for e in log if e["kind"] == "objects.rewrite"]
        # every copy pins the source generation and carries the target's precondition
        assert all(q["sourceGeneration"] == q["ifSourceGenerationMatch"] for _, q, _ in rewrites)
        assert [(o, q.get("ifGenerationMatch"), st) for o, q, st in rewrites] == [
            ("w/cp/dst", ["0"], 200), ("w/cp/dst", ["0"], 412),
            ("w/cp/dst", rewrites[2][1]["ifGenerationMatch"], 200),
            ("w/cp/dst", rewrites[2][1]["ifGenerationMatch"], 412),
            ("w/cp/other", ["0"], 404), ("w/cp/other", ["0"], 404),
            ("w/cp/empty2", ["0"], 200)], rewrites
        assert rewrites[2][1]["ifGenerationMatch"] != ["0"]
    if check == "tail":
        # each open_tail was one media GET of the live object's last 64 KiB
        tails = [e for e in log if e["kind"] == "objects.media"
                 and "generation" not in urllib.parse.parse_qs(e["query"])]
        assert {e["object"] for e in tails} == {f"w/tail/{n}" for n in (
            0, 1, 100, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 3 << 20)} | {"w/tail/none"}
        assert all(e["range"] == f"bytes=-{64 * KiB}" for e in tails), tails
        assert all("gzip" in e["accept_encoding"] for e in tails), tails
        # only the empty one (416) and the missing one (404) asked for more
        assert {e["object"]: e["status"] for e in tails if e["status"] != 206} == {
            "w/tail/0": 416, "w/tail/none": 404}
    if check == "remove":
        deletes = [e for e in log if e["kind"] == "objects.delete"]
        assert [e["status"] for e in deletes] == [412, 204, 404, 404, 204]


def test_read_only_store_refuses_writes(check_bin, config, gcs):
    mark = gcs.control.log_mark()
    run(check_bin, config, "readonly")
    assert token_scopes(gcs, mark) == [RO_SCOPE]
    assert not [e for e in gcs.control.log(mark) if e["kind"].startswith("upload")]


def uploaded(gcs, bucket, name, p, size):
    r = result(p)
    res = gcs.get(bucket, "w/" + name)
    assert int(res["size"]) == size == int(r["size"])
    assert res["generation"] == r["generation"]
    crc = int.from_bytes(base64.b64decode(res["crc32c"]), "big")
    assert f"{crc:08x}" == r["crc32c"]


# libcurl sends a request again, once, by itself when a kept-alive connection
# closes before any answer: so a connection reset is made twice for hylake to see it.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", [
    {"status": 503},                                # refused, nothing taken
    {"status": 503, "keep": 256 * KiB},             # refused after part was stored
    {"status": 0, "count": 2},                      # no answer: the connection closes
    {"status": 0, "count": 2, "keep": 512 * KiB},
], ids=["503", "503-kept-part", "reset", "reset-kept-part"])
def test_upload_resumes_after_failed_chunk(check_bin, config, gcs, bucket, fault):
    size = CHUNK * 5 // 2
    gcs.control.faults([{"kind": "upload.chunk", "skip": 1, **fault}])
    mark = gcs.control.log_mark()
    p = run(check_bin, config, "put", "r", size)
    uploaded(gcs, bucket, "r", p, size)
    count = fault.get("count", 1)
    assert gcs.control.faults()[0]["fired"] == count
    puts = [(e["content_range"], e["status"]) for e in chunk_puts(gcs, mark, "w/r")]
    keep = fault.get("keep", 0)
    failed = (f"bytes {CHUNK}-{2 * CHUNK - 1}/*", fault["status"] or None)
    assert puts == [
        (f"bytes 0-{CHUNK - 1}/*", 308),
        *[failed] * count,
        ("bytes */*", 308),                        # where does it stand?
        # on from there, in whole chunks again: memory stays one chunk
        (f"bytes {CHUNK + keep}-{2 * CHUNK + keep - 1}/*", 308),
        (f"bytes {2 * CHUNK + keep}-{size - 1}/{size}", 200),
    ], puts


@pytest.mark.timeout(120)
def test_lost_answer_to_last_chunk(check_bin, config, gcs, bucket):
    """The object was made but the answer lost (twice, see above): the session says
    so, and no second object is made."""
    size = CHUNK + 3
    gcs.control.faults([{"kind": "upload.chunk", "skip": 1, "count": 2, "when": "after"}])
    mark = gcs.control.log_mark()
    p = run(check_bin, config, "put", "lost", size)
    uploaded(gcs, bucket, "lost", p, size)
    puts = [(e["content_range"], e["status"], e.get("generation"))
            for e in chunk_puts(gcs, mark, "w/lost")]
    gen = int(result(p)["generation"])
    final = f"bytes {CHUNK}-{size - 1}/{size}"
    assert [(cr, st) for cr, st, _ in puts] == [
        (f"bytes 0-{CHUNK - 1}/*", 308),
        (final, 0),
        (final, 0),
        (f"bytes */{size}", 200),
    ], puts
    assert puts[1][2] == gen   # the one object, made by the PUT whose answer was lost
    made = [e for e in gcs.control.log(mark) if e.get("generation") and
            e["object"] == "w/lost" and e["kind"].startswith("upload")]
    assert len(made) == 1, made


@pytest.mark.timeout(120)
def test_copy_follows_the_rewrite_token(check_bin, config, gcs, bucket):
    """A rewrite that takes several calls: each sends the token the last answered, and
    the copy appears once, at the last."""
    size = 2 * 1024 * KiB + 5
    gcs.control.config(rewrite_bytes_per_call=1024 * KiB)
    mark = gcs.control.log_mark()
    try:
        p = run(check_bin, config, "cp", "multi", size)
    finally:
        gcs.control.config(rewrite_bytes_per_call=0)
    uploaded(gcs, bucket, "multi.copy", p, size)
    calls = [urllib.parse.parse_qs(e["query"]) for e in gcs.control.log(mark)
             if e["kind"] == "objects.rewrite"]
    assert len(calls) == 3, calls
    assert "rewriteToken" not in calls[0]
    assert all("rewriteToken" in c and c["ifGenerationMatch"] == ["0"] for c in calls[1:])


@pytest.mark.timeout(120)
def test_lost_answer_to_a_copy(check_bin, config, gcs, bucket):
    """The copy was made but its answer lost (twice, see above): sent again it finds its
    own object (412); holding the source's bytes, it is taken as made."""
    gcs.control.faults([{"kind": "objects.rewrite", "count": 2, "when": "after"}])
    mark = gcs.control.log_mark()
    p = run(check_bin, config, "cp", "lostcp", 1000)
    uploaded(gcs, bucket, "lostcp.copy", p, 1000)
    calls = [(e["status"], e.get("fault")) for e in gcs.control.log(mark)
             if e["kind"] == "objects.rewrite"]
    assert calls[-1][0] == 412 and sum(1 for _, f in calls if f == "after") >= 1, calls
    made = [e for e in gcs.control.log(mark) if e.get("generation")
            and e["kind"] == "objects.rewrite"]
    assert len(made) == 1, made


@pytest.mark.timeout(120)
def test_upload_fails_when_retries_run_out(check_bin, config, gcs, bucket):
    gcs.control.faults([{"kind": "upload.chunk", "count": 100, "status": 503}])
    mark = gcs.control.log_mark()
    p = run(check_bin, config, "fail", "gone", CHUNK + 1)
    assert result(p) == {"error": "EIO"}
    fired = gcs.control.faults()[0]["fired"]
    assert fired == 4, fired   # one PUT and the engine's 3 retries, each after a query
    log = gcs.control.log(mark)
    assert [e["kind"] for e in log if e["object"] == "w/gone"
            and e["kind"].startswith("upload")][-1] == "upload.cancel"
    assert gcs.list(bucket, prefix="w/")[0] == {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("size", [1000, CHUNK + 1])
def test_commit_refuses_other_bytes(check_bin, config, gcs, bucket, size):
    """The server keeps a chunk with a byte flipped: the object's crc32c is not that
    of the bytes written, so the commit fails and the object is removed again,
    under its own generation."""
    gcs.control.faults([{"kind": "upload.chunk", "corrupt": True}])
    mark = gcs.control.log_mark()
    p = run(check_bin, config, "fail", "bad", size)
    assert result(p) == {"error": "EIO"}
    log = gcs.control.log(mark)
    made = [e["generation"] for e in log if e["kind"] == "upload.chunk"
            and e["object"] == "w/bad" and e.get("generation")]
    deletes = [(urllib.parse.parse_qs(e["query"]), e["status"]) for e in log
               if e["kind"] == "objects.delete"]
    assert len(made) == 1 and deletes == [({"ifGenerationMatch": [str(made[0])]}, 204)]
    assert gcs.list(bucket, prefix="w/")[0] == {}



def crc_hex(data: bytes) -> str:
    return base64.b64decode(crc32c_b64(data)).hex()


def tail_requests(gcs, since, name):
    return [(e["kind"], e["range"], e["status"]) for e in gcs.control.log(since)
            if e["object"] == name]


@pytest.mark.parametrize("size", [10, 300 * KiB])
def test_open_tail_is_one_request(check_bin, config, gcs, bucket, size):
    """open_tail of a file: one media GET of the last N bytes, and the version it
    names is the one objects.get gives (mtime is timeCreated, to the ms)."""
    body = os.urandom(size)
    res = gcs.upload(bucket, "w/t/x", body)
    mark = gcs.control.log_mark()
    got = result(run(check_bin, config, "tailone", "t/x", 64 * KiB))
    assert tail_requests(gcs, mark, "w/t/x") == [
        ("objects.media", f"bytes=-{64 * KiB}", 206)]
    tail = body[-64 * KiB:]
    assert got == {"generation": res["generation"], "metageneration": "1",
                   "size": str(size), "mtime": str(rfc3339_to_ns(res["timeCreated"])),
                   "crc32c": base64.b64decode(res["crc32c"]).hex(),
                   "tail": str(len(tail)), "tailcrc": got["tailcrc"]}
    assert got["tailcrc"] == crc_hex(tail)


def test_open_tail_of_updated_or_empty_objects(check_bin, config, gcs, bucket):
    """A media answer does not say timeCreated once the metadata was updated:
    the object resource is asked too, and the tail kept.  An empty object
    answers 416: the plain open (objects.get) follows."""
    res = gcs.upload(bucket, "w/t/p", b"0123456789")
    gcs.patch(bucket, "w/t/p", {"metadata": {"k": "v"}})
    gcs.upload(bucket, "w/t/e", b"")
    mark = gcs.control.log_mark()
    got = result(run(check_bin, config, "tailone", "t/p", 4))
    assert tail_requests(gcs, mark, "w/t/p") == [
        ("objects.media", "bytes=-4", 206), ("objects.get", None, 200)]
    assert (got["metageneration"], got["mtime"], got["tail"]) == (
        "2", str(rfc3339_to_ns(res["timeCreated"])), "4")
    assert got["tailcrc"] == crc_hex(b"6789")
    mark = gcs.control.log_mark()
    got = result(run(check_bin, config, "tailone", "t/e", 4))
    assert tail_requests(gcs, mark, "w/t/e") == [
        ("objects.media", "bytes=-4", 416), ("objects.get", None, 200)]
    assert (got["size"], got["tail"]) == ("0", "0")
    mark = gcs.control.log_mark()
    assert result(run(check_bin, config, "tailone", "t/none", 4)) == {"error": "ENOENT"}
    assert tail_requests(gcs, mark, "w/t/none") == [("objects.media", "bytes=-4", 404)]


def test_open_tail_of_a_gzip_object_is_of_the_stored_bytes(check_bin, config, gcs, bucket):
    """contentEncoding gzip: the tail is of the bytes as stored (Accept-Encoding:
    gzip), in one request, as reads are."""
    plain = b"".join(b"line %06d\n" % i for i in range(20_000))
    gz = gzip.compress(plain)
    res = gcs.upload(bucket, "w/t/z.gz", gz, content_encoding="gzip", method="multipart")
    mark = gcs.control.log_mark()
    got = result(run(check_bin, config, "tailone", "t/z.gz", 1000))
    assert [k for k, _, _ in tail_requests(gcs, mark, "w/t/z.gz")] == ["objects.media"]
    assert (got["generation"], got["size"], got["tail"]) == (
        res["generation"], str(len(gz)), "1000")
    assert got["tailcrc"] == crc_hex(gz[-1000:])
