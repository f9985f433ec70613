"""Two independent on-prem S3 sites on the one Ceph test cluster (tests/ceph/rgw.sh):
site a (fixtures rgw, s3, bucket) and site b (rgw_b, s3_b, bucket_b) have their own
users and buckets, so a replica pointed at the wrong site fails; site b can be
stopped or killed alone, site a keeps serving, and site b comes back with its data."""

import os
import socket
import time
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from hylib import MiB, list_all, make_bucket, run_hylake, s3_client, sha256


def error_of(excinfo) -> tuple:
    """(S3 error code, HTTP status) of a botocore ClientError."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def one_shot_client(rgw):
    """A client that does not retry (a stopped site fails at once)."""
    return boto3.client(
        "s3", endpoint_url=rgw.endpoint, aws_access_key_id=rgw.access_key,
        aws_secret_access_key=rgw.secret_key, region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1, "mode": "standard"},
                      connect_timeout=5, read_timeout=30))


def refuses_connections(endpoint: str) -> bool:
    u = urllib.parse.urlsplit(endpoint)
    try:
        socket.create_connection((u.hostname, u.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def body(s3, bucket, key, **kw) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def put_multipart(s3, bucket, key, data: bytes, part: int = 5 * MiB) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for n, off in enumerate(range(0, len(data), part), start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n,
                           Body=data[off:off + part])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": parts})


# --------------------------------------------------------------------------- separation


def test_both_sites_answer_with_their_own_credentials(rgw, rgw_b, s3, s3_b):
    assert rgw.endpoint != rgw_b.endpoint
    assert rgw.access_key != rgw_b.access_key
    a = s3.list_buckets()
    b = s3_b.list_buckets()
    assert a["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert b["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert a["Owner"]["ID"] != b["Owner"]["ID"], "both sites answer as the same user"


def test_bucket_of_site_a_does_not_exist_at_site_b(rgw, rgw_b, s3, s3_b, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"on site a")

    # site b's own user: the bucket does not exist there
    assert bucket not in [x["Name"] for x in s3_b.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3_b.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3_b.list_objects_v2(Bucket=bucket)
    assert error_of(e) == ("NoSuchBucket", 404)

    # site a's credentials are unknown at site b (and the other way round)
    a_at_b = s3_client(rgw, endpoint=rgw_b.endpoint)
    with pytest.raises(ClientError) as e:
        a_at_b.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as e:
        a_at_b.list_buckets()
    assert error_of(e) == ("InvalidAccessKeyId", 403)
    b_at_a = s3_client(rgw_b, endpoint=rgw.endpoint)
    with pytest.raises(ClientError) as e:
        b_at_a.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == ("InvalidAccessKeyId", 403)

    assert body(s3, bucket, "k") == b"on site a"


def test_same_bucket_name_at_both_sites_is_two_buckets(rgw, rgw_b, s3, s3_b):
    name = make_bucket(s3, "same-name")
    try:
        # would be BucketAlreadyExists if the sites shared a bucket namespace
        s3_b.create_bucket(Bucket=name)
        try:
            s3.put_object(Bucket=name, Key="k", Body=b"site a")
            s3_b.put_object(Bucket=name, Key="k", Body=b"site b")
            s3_b.put_object(Bucket=name, Key="only-b", Body=b"b")
            assert body(s3, name, "k") == b"site a"
            assert body(s3_b, name, "k") == b"site b"
            assert set(list_all(s3, name)) == {"k"}
            assert set(list_all(s3_b, name)) == {"k", "only-b"}
            s3_b.delete_object(Bucket=name, Key="k")
            assert body(s3, name, "k") == b"site a"
        finally:
            for k in list_all(s3_b, name):
                s3_b.delete_object(Bucket=name, Key=k)
            s3_b.delete_bucket(Bucket=name)
        assert body(s3, name, "k") == b"site a", "deleting site b's bucket touched site a's"
    finally:
        for k in list_all(s3, name):
            s3.delete_object(Bucket=name, Key=k)
        s3.delete_bucket(Bucket=name)


def test_objects_put_on_site_b_are_read_back_from_site_b(s3_b, bucket_b):
    objs = {
        "empty": b"",
        "small.txt": b"hello from site b\n",
        "dir/one-mib.bin": os.urandom(MiB),
    }
    for k, v in objs.items():
        s3_b.put_object(Bucket=bucket_b, Key=k, Body=v)
    big = os.urandom(11 * MiB + 3)
    put_multipart(s3_b, bucket_b, "dir/multipart.bin", big)
    objs["dir/multipart.bin"] = big

    listing = list_all(s3_b, bucket_b)
    assert set(listing) == set(objs)
    for k, v in objs.items():
        assert listing[k]["Size"] == len(v), k
        assert sha256(body(s3_b, bucket_b, k)) == sha256(v), k
    assert body(s3_b, bucket_b, "dir/multipart.bin", Range="bytes=5242870-5242889") == \
        big[5242870:5242890]


# --------------------------------------------------------------------------- hylake against the sites


def test_hylake_check_fails_against_the_wrong_site(ws, rgw, rgw_b, s3, s3_b, bucket, bucket_b):
    """A source configured with site b's endpoint but site a's credentials and
    bucket fails, and so does site b's user asking for site a's bucket."""
    s3.put_object(Bucket=bucket, Key="x", Body=b"a")
    s3_b.put_object(Bucket=bucket_b, Key="x", Body=b"b")
    creds_a = ws.creds(rgw.access_key, rgw.secret_key)
    creds_b = ws.creds(rgw_b.access_key, rgw_b.secret_key)

    r = run_hylake("check", ws.s3_config(bucket, creds=creds_a))
    assert r.returncode == 0, r
    r = run_hylake("check", ws.s3_config(bucket_b, endpoint=rgw_b.endpoint, creds=creds_b))
    assert r.returncode == 0, r

    r = run_hylake("check", ws.s3_config(bucket, endpoint=rgw_b.endpoint, creds=creds_a))
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r
    r = run_hylake("check", ws.s3_config(bucket, endpoint=rgw_b.endpoint, creds=creds_b))
    assert r.returncode == 1, r
    assert "bucket not found" in r.output.lower(), r
    r = run_hylake("check", ws.s3_config(bucket_b, creds=creds_b))  # site a's endpoint
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r


def test_mount_of_site_b(ws, mounter, rgw_b, s3_b, bucket_b):
    data = os.urandom(2 * MiB + 5)
    s3_b.put_object(Bucket=bucket_b, Key="d/f.bin", Body=data)
    cfg = ws.s3_config(bucket_b, endpoint=rgw_b.endpoint,
                       creds=ws.creds(rgw_b.access_key, rgw_b.secret_key))
    m = mounter.mount(cfg)
    assert os.listdir(m.path) == ["d"]
    assert sha256((m.path / "d" / "f.bin").read_bytes()) == sha256(data)


# --------------------------------------------------------------------------- stop / kill / start


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_site_b_goes_down_alone_and_comes_back_with_its_data(
        how, ws, rgw, rgw_b, s3, s3_b, bucket, bucket_b):
    data_b = os.urandom(3 * MiB + 1)
    s3_b.put_object(Bucket=bucket_b, Key="keep.bin", Body=data_b)
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"site a")
    cfg_b = ws.s3_config(bucket_b, endpoint=rgw_b.endpoint,
                         creds=ws.creds(rgw_b.access_key, rgw_b.secret_key),
                         mount={"connect_timeout": "2s", "retries": "1"})
    try:
        t = time.monotonic()
        rgw_b.kill() if how == "kill" else rgw_b.stop()
        took = time.monotonic() - t
        assert took < 15, f"{how} of site b took {took:.1f}s"

        assert refuses_connections(rgw_b.endpoint), f"site b still accepts connections after {how}"
        assert not rgw_b.running()
        with pytest.raises(EndpointConnectionError):
            one_shot_client(rgw_b).list_buckets()
        r = run_hylake("check", cfg_b, timeout=60)
        assert r.returncode == 1, r
        assert "unreachable" in r.output.lower(), r

        # site a is not affected
        assert body(s3, bucket, "a.txt") == b"site a"
        s3.put_object(Bucket=bucket, Key="while-b-down", Body=b"x")
        assert set(list_all(s3, bucket)) == {"a.txt", "while-b-down"}
        assert run_hylake("check", ws.s3_config(bucket)).returncode == 0
    finally:
        t = time.monotonic()
        rgw_b.start()
        took = time.monotonic() - t
    assert took < 30, f"start of site b took {took:.1f}s"
    assert rgw_b.running()

    # the data live in the OSD: a radosgw restart loses nothing
    assert sha256(body(one_shot_client(rgw_b), bucket_b, "keep.bin")) == sha256(data_b)
    assert sha256(body(s3_b, bucket_b, "keep.bin")) == sha256(data_b)
    assert set(list_all(s3_b, bucket_b)) == {"keep.bin"}
    assert run_hylake("check", cfg_b, timeout=60).returncode == 0

    # and the restarted site is fully usable at once: creating a bucket makes
    # radosgw notify its peers, which waits ~30 s for a SIGKILLed radosgw's
    # leftover watches unless rgw.sh drops them
    t = time.monotonic()
    name = make_bucket(s3_b, "after-" + how)
    try:
        took = time.monotonic() - t
        assert took < 10, f"creating a bucket on the restarted site b took {took:.1f}s"
        s3_b.put_object(Bucket=name, Key="k", Body=b"new")
        assert body(s3_b, name, "k") == b"new"
    finally:
        s3_b.delete_object(Bucket=name, Key="k")
        s3_b.delete_bucket(Bucket=name)
