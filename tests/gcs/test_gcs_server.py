"""The GCS test server itself, checked against what Google documents for the
Cloud Storage JSON API v1 (and the OAuth 2.0 service-account and GCE metadata
token flows).  Runs in a few seconds; needs no hylake binary.

    /usr/bin/python3 -m pytest -q tests/gcs
"""

import base64
import gzip
import hashlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from gcs_client import HTTP, GcsClient, GcsHTTPError, q, rfc3339_to_ns, sign_jwt

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KiB = 1024


def err_reason(e: GcsHTTPError):
    body = e.json
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == e.status
    assert isinstance(body["error"]["message"], str)
    errs = body["error"]["errors"]
    assert errs and errs[0]["domain"] == "global" and errs[0]["message"]
    return errs[0]["reason"]


def raises(fn, *a, **kw) -> GcsHTTPError:
    with pytest.raises(GcsHTTPError) as ei:
        fn(*a, **kw)
    return ei.value


# --------------------------------------------------------------------------- resources


def test_object_resource_format(gcs, bucket):
    res = gcs.upload(bucket, "dir/a b/é.txt", b"123456789", content_type="text/plain",
                     metadata={"k": "v"})
    assert res["kind"] == "storage#object"
    assert res["name"] == "dir/a b/é.txt" and res["bucket"] == bucket
    for k in ("generation", "metageneration", "size"):
        assert isinstance(res[k], str), k  # 64-bit fields are JSON strings
    assert res["size"] == "9" and res["metageneration"] == "1"
    assert res["crc32c"] == "4waSgw=="  # CRC32C("123456789") = 0xE3069283, big-endian
    assert res["md5Hash"] == base64.b64encode(hashlib.md5(b"123456789").digest()).decode()
    assert RFC3339_MS.match(res["timeCreated"]) and RFC3339_MS.match(res["updated"])
    assert rfc3339_to_ns(res["timeCreated"]) // 10**6 == int(res["generation"]) // 1000
    assert res["contentType"] == "text/plain" and res["metadata"] == {"k": "v"}
    assert "contentEncoding" not in res
    assert base64.b64decode(res["etag"])[0] == 0x08
    got = gcs.get(bucket, "dir/a b/é.txt")
    assert got == res
    # default content type; the media upload form
    res2 = gcs.request("POST", f"/upload/storage/v1/b/{bucket}/o",
                       params={"uploadType": "media", "name": "x"}, body=b"").json()
    assert res2["contentType"] == "application/octet-stream" and res2["size"] == "0"
    assert res2["crc32c"] == "AAAAAA=="


def test_name_is_one_percent_encoded_segment(gcs, bucket):
    gcs.upload(bucket, "a/b+c d%e?.txt", b"x")
    assert gcs.get(bucket, "a/b+c d%e?.txt")["name"] == "a/b+c d%e?.txt"
    r = gcs.request("GET", f"/storage/v1/b/{bucket}/o/a/b%2Bc%20d%25e%3F.txt", ok=None)
    assert r.status == 404  # a raw '/' is not part of the name
    e = raises(gcs.get, bucket, "a/nothing")
    assert e.status == 404 and err_reason(e) == "notFound"
    assert "No such object" in e.json["error"]["message"]


def test_fields_partial_response(gcs, bucket):
    gcs.upload(bucket, "f/x", b"x")
    gcs.upload(bucket, "f/y/z", b"z")
    r = gcs.get(bucket, "f/x", fields="name,size")
    assert r == {"name": "f/x", "size": "1"}
    page = gcs.list_page(bucket, prefix="f/", delimiter="/",
                         fields="items(name,generation),prefixes,nextPageToken")
    assert set(page) == {"items", "prefixes"}
    assert page["prefixes"] == ["f/y/"]
    assert [set(i) for i in page["items"]] == [{"name", "generation"}]
    e = raises(gcs.get, bucket, "f/x", fields="items(name")
    assert e.status == 400 and err_reason(e) == "invalid"


def test_generations_increase_and_old_ones_are_gone(gcs, bucket):
    gens = [int(gcs.upload(bucket, "g", bytes([i]))["generation"]) for i in range(20)]
    assert gens == sorted(set(gens)), "generations must strictly increase"
    assert abs(gens[-1] / 1e6 - time.time()) < 60, "generation is a microsecond timestamp"
    r = gcs.download(bucket, "g", generation=gens[-1])
    assert r.body == bytes([19]) and r.header("x-goog-generation") == str(gens[-1])
    e = raises(gcs.download, bucket, "g", generation=gens[0])
    assert e.status == 404
    e = raises(gcs.get, bucket, "g", generation=gens[0])
    assert e.status == 404


def test_patch_metadata_bumps_metageneration(gcs, bucket):
    res = gcs.upload(bucket, "m", b"data", metadata={"a": "1", "b": "2"})
    time.sleep(0.002)
    p = gcs.patch(bucket, "m", {"metadata": {"a": None, "c": "3"}, "contentType": "text/x"})
    assert p["generation"] == res["generation"] and p["metageneration"] == "2"
    assert p["metadata"] == {"b": "2", "c": "3"} and p["contentType"] == "text/x"
    assert p["updated"] > res["updated"] and p["timeCreated"] == res["timeCreated"]
    e = raises(gcs.patch, bucket, "m", {"metadata": {}}, ifMetagenerationMatch="1")
    assert e.status == 412 and err_reason(e) == "conditionNotMet"
    assert gcs.patch(bucket, "m", {}, ifMetagenerationMatch="2")["metageneration"] == "3"
    # a lease's renewal: both preconditions; the generation must match too
    gen = res["generation"]
    e = raises(gcs.patch, bucket, "m", {"metadata": {"r": "1"}},
               ifGenerationMatch=str(int(gen) + 1), ifMetagenerationMatch="3")
    assert e.status == 412 and err_reason(e) == "conditionNotMet"
    p = gcs.patch(bucket, "m", {"metadata": {"r": "1"}}, ifGenerationMatch=gen,
                  ifMetagenerationMatch="3")
    assert p["metageneration"] == "4" and p["generation"] == gen and p["metadata"]["r"] == "1"
    e = raises(gcs.patch, bucket, "gone", {"metadata": {}}, ifMetagenerationMatch="1")
    assert e.status == 404
    # a lease's takeover: a new generation only over the metageneration seen
    for method in ("media", "resumable"):
        e = raises(gcs.upload, bucket, "m", b"x", method=method, preconditions={
            "ifGenerationMatch": gen, "ifMetagenerationMatch": "3"})
        assert e.status == 412
    assert gcs.upload(bucket, "m", b"x", method="resumable", preconditions={
        "ifGenerationMatch": gen, "ifMetagenerationMatch": "4"})["metageneration"] == "1"


def test_preconditions(gcs, bucket):
    res = gcs.upload(bucket, "p", b"one")
    gen = res["generation"]
    # ifGenerationMatch=0: only if there is no live object
    e = raises(gcs.upload, bucket, "p", b"two", preconditions={"ifGenerationMatch": 0})
    assert e.status == 412 and err_reason(e) == "conditionNotMet"
    e = raises(gcs.upload, bucket, "p", b"two", method="multipart",
               preconditions={"ifGenerationMatch": 0})
    assert e.status == 412
    e = raises(gcs.upload, bucket, "p", b"two" * 100000, method="resumable", chunk=256 * KiB,
               preconditions={"ifGenerationMatch": 0})
    assert e.status == 412
    assert gcs.download(bucket, "p").body == b"one"
    gcs.upload(bucket, "new", b"n", preconditions={"ifGenerationMatch": 0})
    # reads
    assert gcs.get(bucket, "p", ifGenerationMatch=gen)["generation"] == gen
    e = raises(gcs.get, bucket, "p", ifGenerationMatch=int(gen) + 1)
    assert e.status == 412
    r = gcs.request("GET", f"/storage/v1/b/{bucket}/o/p", params={"ifGenerationNotMatch": gen},
                    ok=None)
    assert r.status == 304 and r.body == b""
    r = gcs.download(bucket, "p", ifMetagenerationNotMatch="1", ok=None)
    assert r.status == 304
    e = raises(gcs.download, bucket, "p", ifMetagenerationMatch="7")
    assert e.status == 412
    # writes: the NotMatch forms give 412, not 304
    e = raises(gcs.upload, bucket, "p", b"x", preconditions={"ifGenerationNotMatch": gen})
    assert e.status == 412
    res2 = gcs.upload(bucket, "p", b"two", preconditions={"ifGenerationMatch": gen})
    assert res2["generation"] != gen
    # delete with a stale generation precondition, then the right one
    e = raises(gcs.delete, bucket, "p", ifGenerationMatch=gen)
    assert e.status == 412
    e = raises(gcs.delete, bucket, "p", generation=gen)
    assert e.status == 404
    gcs.delete(bucket, "p", ifGenerationMatch=res2["generation"])
    assert raises(gcs.get, bucket, "p").status == 404


# --------------------------------------------------------------------------- media


def test_rewrite_copies_one_generation_under_preconditions(gcs, bucket):
    """objects.rewrite: a server-side copy of exactly the source generation asked for, with
    the destination's preconditions checked when the copy appears."""
    src = gcs.upload(bucket, "src.bin", b"source bytes", content_type="text/plain",
                     metadata={"k": "v"})
    gen = src["generation"]
    r = gcs.rewrite_call(bucket, "src.bin", "dst.bin", sourceGeneration=gen,
                         ifSourceGenerationMatch=gen, ifGenerationMatch=0)
    assert r["kind"] == "storage#rewriteResponse" and r["done"] is True
    assert r["totalBytesRewritten"] == r["objectSize"] == "12"  # 64-bit: JSON strings
    assert "rewriteToken" not in r
    res = r["resource"]
    assert res["kind"] == "storage#object" and res["name"] == "dst.bin"
    assert int(res["generation"]) > int(gen) and res["metageneration"] == "1"
    assert (res["crc32c"], res["md5Hash"], res["size"]) == (src["crc32c"], src["md5Hash"], "12")
    assert res["contentType"] == "text/plain" and res["metadata"] == {"k": "v"}
    assert gcs.get(bucket, "dst.bin") == res
    assert gcs.download(bucket, "dst.bin").body == b"source bytes"
    # put-if-absent on the destination: it exists now
    e = raises(gcs.rewrite_call, bucket, "src.bin", "dst.bin", ifGenerationMatch=0)
    assert e.status == 412 and err_reason(e) == "conditionNotMet"
    # an overwrite of the generation seen, and of no other
    e = raises(gcs.rewrite_call, bucket, "src.bin", "dst.bin",
               ifGenerationMatch=int(res["generation"]) + 1)
    assert e.status == 412
    again = gcs.rewrite_call(bucket, "src.bin", "dst.bin", {"contentType": "x/y"},
                             ifGenerationMatch=res["generation"])["resource"]
    assert int(again["generation"]) > int(res["generation"])
    assert again["contentType"] == "x/y" and again["metadata"] == {"k": "v"}  # body overrides
    # the source's preconditions
    e = raises(gcs.rewrite_call, bucket, "src.bin", "d2", ifSourceGenerationMatch=int(gen) + 1)
    assert e.status == 412 and err_reason(e) == "conditionNotMet"
    e = raises(gcs.rewrite_call, bucket, "src.bin", "d2", ifSourceGenerationNotMatch=gen)
    assert e.status == 412
    e = raises(gcs.rewrite_call, bucket, "src.bin", "d2", ifSourceMetagenerationMatch=2)
    assert e.status == 412
    # a source generation that is not the live one, and a missing source, are 404
    gcs.upload(bucket, "src.bin", b"newer")
    e = raises(gcs.rewrite_call, bucket, "src.bin", "d2", sourceGeneration=gen)
    assert e.status == 404 and err_reason(e) == "notFound"
    e = raises(gcs.rewrite_call, bucket, "nope", "d2")
    assert e.status == 404
    e = raises(gcs.rewrite_call, bucket, "src.bin", "d2", dst_bucket="no-such-bucket")
    assert e.status == 404
    with pytest.raises(GcsHTTPError):
        gcs.get(bucket, "d2")  # nothing appeared on any failure


def test_rewrite_in_several_calls(gcs, bucket):
    """maxBytesRewrittenPerCall (a multiple of 1 MiB) makes a rewrite take several calls,
    each answering a rewriteToken; nothing appears before the last."""
    data = os.urandom(2 * 1024 * KiB + 5)
    gcs.upload(bucket, "big", data, method="resumable", chunk=1024 * KiB)
    e = raises(gcs.rewrite_call, bucket, "big", "copy", maxBytesRewrittenPerCall=1000)
    assert e.status == 400 and err_reason(e) == "invalid"
    r = gcs.rewrite_call(bucket, "big", "copy", maxBytesRewrittenPerCall=1024 * KiB)
    assert r["done"] is False and r["rewriteToken"] and "resource" not in r
    assert (r["totalBytesRewritten"], r["objectSize"]) == (str(1024 * KiB), str(len(data)))
    with pytest.raises(GcsHTTPError):
        gcs.get(bucket, "copy")
    e = raises(gcs.rewrite_call, bucket, "big", "other", rewriteToken=r["rewriteToken"])
    assert e.status == 400  # a token belongs to its source and destination
    res, calls = gcs.rewrite(bucket, "big", "copy", maxBytesRewrittenPerCall=1024 * KiB,
                             rewriteToken=r["rewriteToken"])
    assert calls == 2 and gcs.download(bucket, "copy").body == data
    # the server-wide setting does the same for clients that do not ask
    gcs.control.config(rewrite_bytes_per_call=1024 * KiB)
    try:
        res2, calls = gcs.rewrite(bucket, "big", "copy2", ifGenerationMatch=0)
    finally:
        gcs.control.config(rewrite_bytes_per_call=0)
    assert calls == 3 and res2["crc32c"] == res["crc32c"]
    # the source replaced under a rewrite under way: the rest is refused
    r = gcs.rewrite_call(bucket, "big", "copy3", maxBytesRewrittenPerCall=1024 * KiB)
    gcs.upload(bucket, "big", b"replaced")
    e = raises(gcs.rewrite_call, bucket, "big", "copy3", rewriteToken=r["rewriteToken"])
    assert e.status == 404
    with pytest.raises(GcsHTTPError):
        gcs.get(bucket, "copy3")


def test_media_download_headers_and_ranges(gcs, bucket):
    data = os.urandom(100_000)
    res = gcs.upload(bucket, "r/x.bin", data, content_type="application/x-test")
    for path in ("storage", "download"):
        r = gcs.download(bucket, "r/x.bin", path=path)
        assert r.status == 200 and r.body == data
        assert r.header("Content-Length") == str(len(data))
        assert r.header("Content-Type") == "application/x-test"
        assert r.header("x-goog-generation") == res["generation"]
        assert r.header("x-goog-metageneration") == "1"
        assert r.header("x-goog-hash") == f"crc32c={res['crc32c']},md5={res['md5Hash']}"
        assert r.header("x-goog-stored-content-length") == str(len(data))
        assert r.header("x-goog-stored-content-encoding") == "identity"
        assert r.header("ETag") and r.header("Last-Modified")

    def rng(h):
        return gcs.download(bucket, "r/x.bin", headers={"Range": h}, ok=None)

    r = rng("bytes=10-19")
    assert r.status == 206 and r.body == data[10:20]
    assert r.header("Content-Range") == f"bytes 10-19/{len(data)}"
    r = rng("bytes=99990-")
    assert r.status == 206 and r.body == data[99990:]
    r = rng("bytes=-5")
    assert r.status == 206 and r.body == data[-5:]
    assert r.header("Content-Range") == f"bytes 99995-99999/{len(data)}"
    r = rng("bytes=99999-200000")
    assert r.status == 206 and r.body == data[99999:]
    r = rng("bytes=100000-")
    assert r.status == 416 and r.header("Content-Range") == f"bytes */{len(data)}"
    assert json.loads(r.body)["error"]["code"] == 416
    r = rng("bytes=-0")
    assert r.status == 416
    r = rng("bytes=5-2")  # syntactically invalid: ignored
    assert r.status == 200 and r.body == data
    # a suffix longer than the object is all of it (RFC 7233 2.1) ...
    r = rng("bytes=-200000")
    assert r.status == 206 and r.body == data
    assert r.header("Content-Range") == f"bytes 0-99999/{len(data)}"
    # ... and no suffix of an empty object can be satisfied
    gcs.upload(bucket, "r/empty", b"")
    r = gcs.download(bucket, "r/empty", headers={"Range": "bytes=-5"}, ok=None)
    assert r.status == 416 and r.header("Content-Range") == "bytes */0"


def test_decompressive_transcoding(gcs, bucket):
    plain = b"hello transcoding\n" * 5000
    gz = gzip.compress(plain)
    res = gcs.upload(bucket, "t.txt.gz", gz, content_type="text/plain",
                     content_encoding="gzip", method="multipart")
    assert res["contentEncoding"] == "gzip" and res["size"] == str(len(gz))
    # no Accept-Encoding: served gunzipped, chunked, no Content-Length, Range ignored
    r = gcs.download(bucket, "t.txt.gz", headers={"Range": "bytes=0-9"})
    assert r.status == 200 and r.body == plain
    assert r.header("Content-Length") is None
    assert "chunked" in r.header("Transfer-Encoding")
    assert r.header("x-goog-stored-content-encoding") == "gzip"
    assert r.header("x-goog-stored-content-length") == str(len(gz))
    assert r.header("Content-Encoding") is None
    # Accept-Encoding: gzip: the stored bytes, and Range applies to them
    r = gcs.download(bucket, "t.txt.gz", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.body == gz and r.header("Content-Encoding") == "gzip"
    assert r.header("Content-Length") == str(len(gz))
    r = gcs.download(bucket, "t.txt.gz", headers={"Accept-Encoding": "gzip, deflate",
                                                   "Range": "bytes=3-12"})
    assert r.status == 206 and r.body == gz[3:13]
    r = gcs.download(bucket, "t.txt.gz", headers={"Accept-Encoding": "gzip;q=0"})
    assert r.body == plain
    # simple upload with the contentEncoding parameter
    res = gcs.upload(bucket, "s.gz", gz, content_encoding="gzip")
    assert res["contentEncoding"] == "gzip"


# --------------------------------------------------------------------------- listing


def _tree(gcs, bucket):
    names = ["a.txt", "b/", "b/1", "b/2", "c/d/e", "c/x", "d", "e/", "e/f/", "e/f/g",
             "é/ü", "z y/1"]
    gcs.put_many(bucket, {n: n.encode() for n in names}, threads=8)
    return names


def test_list_semantics(gcs, bucket):
    names = _tree(gcs, bucket)
    page = gcs.list_page(bucket)
    assert set(page) == {"kind", "items"} and page["kind"] == "storage#objects"
    assert [i["name"] for i in page["items"]] == sorted(names, key=lambda s: s.encode())
    page = gcs.list_page(bucket, delimiter="/")
    assert [i["name"] for i in page["items"]] == ["a.txt", "d"]
    assert page["prefixes"] == ["b/", "c/", "e/", "z y/", "é/"]
    page = gcs.list_page(bucket, prefix="e/", delimiter="/")
    assert [i["name"] for i in page["items"]] == ["e/"] and page["prefixes"] == ["e/f/"]
    page = gcs.list_page(bucket, prefix="e/", delimiter="/", includeTrailingDelimiter="true")
    assert [i["name"] for i in page["items"]] == ["e/", "e/f/"]
    page = gcs.list_page(bucket, prefix="nothing/")
    assert page == {"kind": "storage#objects"}  # keys omitted when empty
    page = gcs.list_page(bucket, startOffset="b/2", endOffset="d")
    assert [i["name"] for i in page["items"]] == ["b/2", "c/d/e", "c/x"]
    # maxResults counts items and prefixes together; follow the tokens
    seen = []
    token = None
    while True:
        p = {"delimiter": "/", "maxResults": 2}
        if token:
            p["pageToken"] = token
        page = gcs.list_page(bucket, **p)
        got = [i["name"] for i in page.get("items", [])] + page.get("prefixes", [])
        assert len(got) <= 2
        seen += got
        token = page.get("nextPageToken")
        if not token:
            break
    assert sorted(seen) == sorted(["a.txt", "d", "b/", "c/", "e/", "z y/", "é/"])
    e = raises(gcs.list_page, bucket, pageToken="!!garbage")
    assert e.status == 400
    e = raises(gcs.list_page, "no-such-bucket-here")
    assert e.status == 404 and err_reason(e) == "notFound"


def test_adversarial_paging(gcs, bucket):
    names = [f"dir{i:02d}/f{j}" for i in range(12) for j in range(3)] + [
        f"top{i:02d}" for i in range(10)]
    gcs.put_many(bucket, {n: b"x" for n in names}, threads=16)
    gcs.control.paging(page_size=[3, 1, 2], empty_every=3, empty_first=True,
                       repeat_prefix=True, trailing_token=True)
    mark = gcs.control.log_mark()
    raw_pages = []
    token = None
    while True:
        p = {"delimiter": "/"}
        if token:
            p["pageToken"] = token
        page = gcs.list_page(bucket, **p)
        raw_pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            break
        assert len(raw_pages) < 500
    empties = [p for p in raw_pages if not p.get("items") and not p.get("prefixes")]
    assert any("nextPageToken" in p for p in empties), "no empty page with a token"
    assert raw_pages[0] == {"kind": "storage#objects", "nextPageToken": raw_pages[0][
        "nextPageToken"]}
    all_prefixes = [pf for p in raw_pages for pf in p.get("prefixes", [])]
    assert len(all_prefixes) > len(set(all_prefixes)), "no prefix was repeated across pages"
    for a, b in zip(raw_pages, raw_pages[1:]):
        if a.get("prefixes") and b.get("prefixes") and a["prefixes"][-1] == b["prefixes"][0]:
            break
    else:
        pytest.fail("no page started with the prefix the previous page ended with")
    items, prefixes, _ = gcs.list(bucket, delimiter="/")
    assert sorted(items) == [f"top{i:02d}" for i in range(10)]
    assert prefixes == [f"dir{i:02d}/" for i in range(12)]
    assert len(gcs.list(bucket)[0]) == len(names)
    assert all(e["kind"] == "objects.list" for e in gcs.control.log(mark))


# --------------------------------------------------------------------------- uploads


def test_resumable_upload_protocol(gcs, bucket):
    data = os.urandom(600 * KiB + 5)
    r = gcs.request("POST", f"/upload/storage/v1/b/{bucket}/o",
                    params={"uploadType": "resumable"},
                    body=json.dumps({"name": "res.bin", "metadata": {"m": "1"}}).encode(),
                    headers={"Content-Type": "application/json",
                             "X-Upload-Content-Type": "application/x-r"})
    assert r.status == 200 and r.body == b""
    loc = urllib.parse.urlsplit(r.header("Location"))
    assert loc.hostname == "127.0.0.1" and "upload_id=" in loc.query
    sess = loc.path + "?" + loc.query

    def put(body, cr, ok=(200, 308)):
        return gcs.request("PUT", sess, body=body, headers={"Content-Range": cr}, ok=ok)

    r = put(b"", "bytes */*")
    assert r.status == 308 and r.header("Range") is None  # nothing persisted yet
    e = raises(put, data[:1000], f"bytes 0-999/{len(data)}", ok=(308,))
    assert e.status == 400  # not a multiple of 256 KiB and not the last chunk
    r = put(data[:256 * KiB], f"bytes 0-{256 * KiB - 1}/*")
    assert r.status == 308 and r.header("Range") == f"bytes=0-{256 * KiB - 1}"
    r = put(b"", f"bytes */{len(data)}")
    assert r.status == 308 and r.header("Range") == f"bytes=0-{256 * KiB - 1}"
    # a resend of a persisted chunk is harmless
    r = put(data[:256 * KiB], f"bytes 0-{256 * KiB - 1}/{len(data)}")
    assert r.status == 308
    r = put(data[256 * KiB:512 * KiB], f"bytes {256 * KiB}-{512 * KiB - 1}/{len(data)}")
    assert r.header("Range") == f"bytes=0-{512 * KiB - 1}"
    r = put(data[512 * KiB:], f"bytes {512 * KiB}-{len(data) - 1}/{len(data)}")
    assert r.status == 200
    res = r.json()
    assert res["size"] == str(len(data)) and res["contentType"] == "application/x-r"
    assert res["metadata"] == {"m": "1"}
    assert gcs.download(bucket, "res.bin").body == data
    # the node client's single-request form: bytes 0-*/*
    r = gcs.request("POST", f"/upload/storage/v1/b/{bucket}/o",
                    params={"uploadType": "resumable", "name": "one-shot"})
    loc = urllib.parse.urlsplit(r.header("Location"))
    r = gcs.request("PUT", loc.path + "?" + loc.query, body=b"abc",
                    headers={"Content-Range": "bytes 0-*/*"})
    assert r.json()["size"] == "3"
    r = gcs.request("DELETE", loc.path + "?" + loc.query, ok=None)
    assert r.status in (200, 499)
    # helper round trip
    big = os.urandom(3 * 256 * KiB + 17)
    assert gcs.upload(bucket, "big", big, method="resumable", chunk=256 * KiB)["size"] == str(
        len(big))
    assert gcs.download(bucket, "big").body == big


def test_fault_rules_on_upload_chunks(gcs, bucket):
    """/_test/faults: a chunk PUT fails before its data is taken (but for `keep`
    bytes), with a status or no answer at all, or is carried out and its answer
    lost; status queries never match."""
    data = os.urandom(3 * 256 * KiB + 7)
    r = gcs.request("POST", f"/upload/storage/v1/b/{bucket}/o",
                    params={"uploadType": "resumable", "name": "f.bin"})
    loc = urllib.parse.urlsplit(r.header("Location"))
    sess = loc.path + "?" + loc.query

    def lost(lo, hi, total="*"):  # one attempt, on its own connection: no answer comes
        c = http.client.HTTPConnection(gcs.http.host, gcs.http.port, timeout=30)
        try:
            with pytest.raises(http.client.RemoteDisconnected):
                c.request("PUT", sess, body=data[lo:hi], headers={
                    "Content-Range": f"bytes {lo}-{hi - 1}/{total}",
                    "Authorization": "Bearer " + gcs.token()})
                c.getresponse()
        finally:
            c.close()

    def put(lo, hi, total="*", ok=(200, 308)):
        cr = f"bytes {lo}-{hi - 1}/{total}" if hi > lo else f"bytes */{total}"
        return gcs.request("PUT", sess, body=data[lo:hi], headers={"Content-Range": cr},
                           ok=ok)

    for bad in ([{"kind": "objects.get"}], [{"kind": "upload.chunk", "keep": 5}],
                [{"kind": "upload.chunk", "when": "later"}], {"kind": "upload.chunk"}):
        with pytest.raises(RuntimeError):
            gcs.control.faults(bad)
    rules = gcs.control.faults([{"kind": "upload.chunk", "skip": 1, "keep": 256 * KiB}])
    assert rules[0]["status"] == 503 and rules[0]["count"] == 1
    assert put(0, 256 * KiB).header("Range") == f"bytes=0-{256 * KiB - 1}"
    e = raises(put, 256 * KiB, 3 * 256 * KiB)
    assert e.status == 503 and err_reason(e) == "backendError"
    # the status query is not a match; the first 256 KiB of the failed PUT were kept
    assert put(0, 0).header("Range") == f"bytes=0-{512 * KiB - 1}"
    assert gcs.control.faults()[0]["fired"] == 1
    # no answer at all: the connection closes
    gcs.control.faults([{"kind": "upload.chunk", "status": 0}])
    lost(512 * KiB, 768 * KiB)
    assert put(0, 0).header("Range") == f"bytes=0-{512 * KiB - 1}"
    # carried out, answer lost: the last chunk made the object
    gcs.control.faults([{"kind": "upload.chunk", "when": "after"}])
    lost(512 * KiB, len(data), total=len(data))
    r = put(0, 0, total=len(data))
    assert r.status == 200 and r.json()["size"] == str(len(data))
    assert gcs.download(bucket, "f.bin").body == data
    faults = [e.get("fault") for e in gcs.control.log() if e["kind"] == "upload.chunk"]
    assert faults.count(503) == 1 and faults.count(0) == 1 and faults.count("after") == 1
    # taken with its first byte flipped, answered as usual
    gcs.control.faults([{"kind": "upload.chunk", "corrupt": True}])
    res = gcs.upload(bucket, "c.bin", b"abc", method="resumable")
    assert res["size"] == "3"
    assert gcs.download(bucket, "c.bin").body == bytes([ord("a") ^ 0xFF]) + b"bc"
    gcs.control.faults([])
    assert gcs.control.faults() == []


def test_multipart_upload_and_errors(gcs, bucket):
    res = gcs.upload(bucket, "mp", b"\r\n--not-a-boundary\r\n", method="multipart",
                     content_type="x/y", metadata={"a": "b"})
    assert gcs.download(bucket, "mp").body == b"\r\n--not-a-boundary\r\n"
    assert res["contentType"] == "x/y"
    e = raises(gcs.request, "POST", f"/upload/storage/v1/b/{bucket}/o",
               params={"uploadType": "media"}, body=b"x")
    assert e.status == 400 and err_reason(e) == "required"
    e = raises(gcs.request, "POST", f"/upload/storage/v1/b/{bucket}/o",
               params={"uploadType": "bogus", "name": "x"}, body=b"x")
    assert e.status == 400 and err_reason(e) == "invalid"
    e = raises(gcs.upload, "no-such-bucket-x", "x", b"x")
    assert e.status == 404


def test_buckets(gcs):
    name = "bkt-" + os.urandom(4).hex()
    res = gcs.create_bucket(name)
    assert res["kind"] == "storage#bucket" and res["name"] == name
    assert gcs.get_bucket(name)["name"] == name
    e = raises(gcs.create_bucket, name)
    assert e.status == 409
    e = raises(gcs.create_bucket, "Bad_Name!")
    assert e.status == 400 and err_reason(e) == "invalid"
    e = raises(gcs.request, "POST", "/storage/v1/b", body=b'{"name":"x-y-z"}')
    assert e.status == 400 and err_reason(e) == "required"
    e = raises(gcs.get_bucket, "no-such-bucket-y")
    assert e.status == 404 and err_reason(e) == "notFound"
    listed = gcs.request("GET", "/storage/v1/b", params={"project": "hylake-test"}).json()
    assert name in [b["name"] for b in listed["items"]]


# --------------------------------------------------------------------------- auth


def _token_req(server_url, assertion, grant="urn:ietf:params:oauth:grant-type:jwt-bearer"):
    h = HTTP(server_url)
    body = urllib.parse.urlencode({"grant_type": grant, "assertion": assertion}).encode()
    r = h.request("POST", "/token", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return r.status, json.loads(r.body)


def _claims(server, sa, **over):
    now = int(time.time())
    c = {"iss": sa.email, "scope": "https://www.googleapis.com/auth/devstorage.read_only",
         "aud": server.url + "/token", "iat": now, "exp": now + 3600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def test_token_endpoint_verifies_the_jwt(server, gcs, bucket, sa):
    gcs.upload(bucket, "o", b"obj")
    hdr = {"alg": "RS256", "typ": "JWT", "kid": sa.kid}
    st, body = _token_req(server.url, sign_jwt(sa.key_pem, _claims(server, sa), hdr))
    assert st == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    tok = body["access_token"]
    # the token reads, but its read-only scope cannot write
    c = HTTP(server.url)
    r = c.request("GET", f"/storage/v1/b/{bucket}/o/o?alt=media",
                  headers={"Authorization": "Bearer " + tok})
    assert r.status == 200 and r.body == b"obj"
    r = c.request("POST", f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name=w", b"w",
                  {"Authorization": "Bearer " + tok})
    assert r.status == 403 and json.loads(r.body)["error"]["errors"][0]["reason"] == "forbidden"
    # no kid is fine too
    st, body = _token_req(server.url, sign_jwt(sa.key_pem, _claims(server, sa)))
    assert st == 200, body
    bad = {
        "wrong key": sign_jwt(sa.other_pem, _claims(server, sa), hdr),
        "wrong kid": sign_jwt(sa.key_pem, _claims(server, sa),
                              {"alg": "RS256", "kid": "nope"}),
        "unknown iss": sign_jwt(sa.key_pem, _claims(server, sa, iss="x@y.z")),
        "wrong aud": sign_jwt(sa.key_pem, _claims(server, sa,
                                                  aud="https://oauth2.googleapis.com/token")),
        "too long": sign_jwt(sa.key_pem, _claims(server, sa, exp=int(time.time()) + 3700)),
        "expired": sign_jwt(sa.key_pem, _claims(server, sa, iat=int(time.time()) - 3000,
                                                exp=int(time.time()) - 10)),
        "future": sign_jwt(sa.key_pem, _claims(server, sa, iat=int(time.time()) + 600,
                                               exp=int(time.time()) + 1200)),
        "no scope": sign_jwt(sa.key_pem, _claims(server, sa, scope=None)),
        "alg none": sign_jwt(sa.key_pem, _claims(server, sa), {"alg": "none"}),
        "garbage": "a.b.c",
    }
    for what, jwt in bad.items():
        st, body = _token_req(server.url, jwt)
        assert st == 400, (what, body)
        assert body["error"] in ("invalid_grant", "invalid_scope"), (what, body)
        assert body["error_description"], what
    st, body = _token_req(server.url, "x", grant="client_credentials")
    assert st == 400 and body["error"] == "unsupported_grant_type"


def test_api_needs_a_live_bearer_token(server, gcs, bucket):
    gcs.upload(bucket, "o", b"obj")
    c = HTTP(server.url)
    r = c.request("GET", f"/storage/v1/b/{bucket}/o/o")
    assert r.status == 401 and r.header("WWW-Authenticate")
    assert json.loads(r.body)["error"]["errors"][0]["reason"] == "required"
    r = c.request("GET", f"/storage/v1/b/{bucket}/o/o",
                  headers={"Authorization": "Bearer ya29.made-up"})
    assert r.status == 401
    assert json.loads(r.body)["error"]["errors"][0]["reason"] == "authError"
    r = c.request("GET", f"/download/storage/v1/b/{bucket}/o/o?alt=media")
    assert r.status == 401
    gcs.control.config(public_read=True)
    r = c.request("GET", f"/download/storage/v1/b/{bucket}/o/o?alt=media")
    assert r.status == 200 and r.body == b"obj"
    r = c.request("GET", f"/storage/v1/b/{bucket}/o")
    assert r.status == 401  # public objects, not a public listing
    # metadata server: needs Metadata-Flavor, echoes it
    r = c.request("GET", "/computeMetadata/v1/instance/service-accounts/default/token")
    assert r.status == 403
    r = c.request("GET", "/computeMetadata/v1/instance/service-accounts/default/token",
                  headers={"Metadata-Flavor": "Google"})
    assert r.status == 200 and r.header("Metadata-Flavor") == "Google"
    assert set(json.loads(r.body)) == {"access_token", "expires_in", "token_type"}


def test_tokens_expire(server, gcs, bucket):
    gcs.upload(bucket, "o", b"obj")
    gcs.control.config(token_lifetime=1)
    c = HTTP(server.url)
    r = c.request("GET", "/computeMetadata/v1/instance/service-accounts/default/token",
                  headers={"Metadata-Flavor": "Google"})
    tok = json.loads(r.body)
    assert tok["expires_in"] == 1
    h = {"Authorization": "Bearer " + tok["access_token"]}
    assert c.request("GET", f"/storage/v1/b/{bucket}/o/o", headers=h).status == 200
    time.sleep(1.2)
    assert c.request("GET", f"/storage/v1/b/{bucket}/o/o", headers=h).status == 401
    gcs.control.revoke_tokens()


def test_tokeninfo_and_notification_configs_without_pubsub(server, gcs, bucket):
    """/tokeninfo answers as Google's does (the Pub/Sub test server relies on it);
    bucket notifications need a Pub/Sub server (tests/pubsub has the real tests)."""
    c = HTTP(server.url)
    tok = gcs.token()
    r = c.request("GET", "/tokeninfo?access_token=" + urllib.parse.quote(tok))
    info = json.loads(r.body)
    assert r.status == 200 and info["scope"].split() == gcs.scopes.split(",")
    assert 0 < int(info["expires_in"]) <= 3600 and info["email"]
    for bad in ("ya29.made-up", ""):
        r = c.request("GET", "/tokeninfo?access_token=" + bad)
        assert r.status == 400 and json.loads(r.body)["error"] == "invalid_token"
    base = f"/storage/v1/b/{bucket}/notificationConfigs"
    assert gcs.request("GET", base).json() == {"kind": "storage#notifications"}
    r = gcs.request("POST", base, body=b'{"topic": "projects/p/topics/t", '
                                       b'"payload_format": "NONE"}', ok=(400,))
    assert "--pubsub-url" in r.json()["error"]["message"]
    gcs.request("GET", "/storage/v1/b/no-such-bucket/notificationConfigs", ok=(404,))
    gcs.request("DELETE", f"{base}/1", ok=(404,))
    assert c.request("GET", base).status == 401  # no token: refused like any bucket call


def test_request_log(server, gcs, bucket):
    mark = gcs.control.log_mark()
    gcs.upload(bucket, "l", b"x")
    gcs.download(bucket, "l", headers={"Range": "bytes=0-0", "Accept-Encoding": "gzip"})
    log = gcs.control.log(mark)
    kinds = [e["kind"] for e in log]
    assert kinds[-2:] == ["upload.media", "objects.media"]
    media = log[-1]
    assert media["auth"] == "bearer" and media["auth_ok"] is True and media["token_id"]
    assert media["range"] == "bytes=0-0" and media["accept_encoding"] == "gzip"
    assert media["status"] == 206 and media["object"] == "l" and media["bucket"] == bucket
    assert "ya29" not in json.dumps(log), "tokens never appear in the log"


# --------------------------------------------------------------------------- delay, concurrency


def test_delay_applies_and_changes_wake_waiters(server, gcs, bucket):
    gcs.upload(bucket, "d", b"x")
    gcs.token()
    gcs.control.config(delay_ms=300)
    t = time.monotonic()
    gcs.get(bucket, "d")
    assert time.monotonic() - t >= 0.3
    gcs.control.config(delay_ms=60_000)
    out = {}

    def slow():
        t = time.monotonic()
        out["meta"] = GcsClient(server.url).get(bucket, "d")
        out["took"] = time.monotonic() - t

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)
    assert th.is_alive()
    gcs.control.config(delay_ms=0)  # the control API itself is never delayed
    th.join(10)
    assert not th.is_alive() and out["meta"]["name"] == "d" and out["took"] < 10
    # delay_only: just the named kinds
    gcs.control.config(delay_ms=400, delay_only=["token"])
    t = time.monotonic()
    gcs.get(bucket, "d")
    assert time.monotonic() - t < 0.3
    t = time.monotonic()
    GcsClient(server.url).token()  # the metadata endpoint is not "token"
    assert time.monotonic() - t < 0.3
    gcs.control.config(delay_only=["objects.get"])
    t = time.monotonic()
    gcs.get(bucket, "d")
    assert time.monotonic() - t >= 0.4


def test_concurrent_writers_and_readers(gcs, bucket):
    def work(i):
        c = GcsClient(gcs.url)
        gens = []
        for j in range(10):
            body = f"{i}-{j}".encode() * 1000
            res = c.upload(bucket, f"k{i % 4}", body)
            gens.append(int(res["generation"]))
            r = c.download(bucket, f"k{i % 4}", generation=res["generation"], ok=(200, 404))
            assert r.status == 404 or r.body == body
        return gens

    with ThreadPoolExecutor(16) as ex:
        allgens = [g for gens in ex.map(work, range(16)) for g in gens]
    assert len(allgens) == len(set(allgens)) == 160
    items = gcs.list_all(bucket)
    assert sorted(items) == ["k0", "k1", "k2", "k3"]


def test_quote_helper():
    assert q("a/b c") == "a%2Fb%20c"
