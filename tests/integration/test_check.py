"""`hylake check` and failing `hylake mount`: clear messages, exit codes, no leftovers."""

import os

import pytest

from hylib import free_port, is_mounted, processes_for, run_hylake, wait_until

WRONG_SECRET = "wrongSecretKey0123456789abcdefghijklmnopq"


def assert_no_secret(text, rgw, *extra):
    for s in (rgw.secret_key, *extra):
        assert s not in text, "a secret key appears in hylake's output"


def test_check_ok(s3, bucket, ws, rgw):
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    cfg = ws.s3_config(bucket)
    r = run_hylake("check", cfg)
    assert r.returncode == 0, r
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, r
    assert "ok" in lines[0].lower().split(), r
    assert "s3" in lines[0] and bucket in lines[0], r
    assert_no_secret(r.output, rgw)


def test_check_ok_on_empty_bucket_and_prefix(bucket, ws, rgw):
    r = run_hylake("check", ws.s3_config(bucket, prefix="nothing/here/"))
    assert r.returncode == 0, r
    assert "ok" in r.stdout.lower(), r


@pytest.mark.parametrize("what", ["wrong-secret", "unknown-access-key"])
def test_check_credentials_rejected(bucket, ws, rgw, what):
    if what == "wrong-secret":
        creds = ws.creds(rgw.access_key, WRONG_SECRET)
    else:
        creds = ws.creds("NOSUCHACCESSKEY0000", rgw.secret_key)
    r = run_hylake("check", ws.s3_config(bucket, creds=creds))
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r
    assert "failed" in r.stdout.lower(), r
    assert_no_secret(r.output, rgw, WRONG_SECRET)


def test_check_bucket_not_found(ws, rgw):
    r = run_hylake("check", ws.s3_config("hyt-no-such-bucket-4711"))
    assert r.returncode == 1, r
    assert "bucket not found" in r.output.lower(), r
    assert_no_secret(r.output, rgw)


def test_check_unreachable(ws, rgw):
    cfg = ws.s3_config("lake", endpoint=f"http://127.0.0.1:{free_port()}",
                       mount={"connect_timeout": "2s", "retries": "1"})
    r = run_hylake("check", cfg, timeout=60)
    assert r.returncode == 1, r
    assert "unreachable" in r.output.lower(), r
    assert_no_secret(r.output, rgw)


def test_check_posix_source(ws):
    d = ws.path("tree")
    d.mkdir()
    (d / "f").write_text("x")
    r = run_hylake("check", ws.posix_config(d))
    assert r.returncode == 0, r
    assert "ok" in r.stdout.lower()
    r = run_hylake("check", ws.posix_config(ws.path("does-not-exist")))
    assert r.returncode in (1, 2), r


def _mount_fails(ws, cfg, mnt_name="mnt"):
    mnt = ws.path(mnt_name)
    mnt.mkdir()
    r = run_hylake("mount", cfg, mnt, timeout=90)
    assert r.returncode != 0, r
    assert not is_mounted(mnt), f"{mnt} is mounted after a failed mount"
    assert wait_until(lambda: not processes_for(mnt), 5), \
        f"hylake process left after a failed mount: {processes_for(mnt)}"
    assert os.listdir(mnt) == []
    return r


@pytest.mark.parametrize("what,phrase", [
    ("wrong-secret", "credentials rejected"),
    ("unknown-access-key", "credentials rejected"),
    ("missing-bucket", "bucket not found"),
    ("unreachable", "unreachable"),
])
def test_mount_fails_cleanly(bucket, ws, rgw, what, phrase):
    kw = {}
    if what == "wrong-secret":
        kw["creds"] = ws.creds(rgw.access_key, WRONG_SECRET)
    elif what == "unknown-access-key":
        kw["creds"] = ws.creds("NOSUCHACCESSKEY0000", rgw.secret_key)
    elif what == "missing-bucket":
        bucket = "hyt-no-such-bucket-4712"
    elif what == "unreachable":
        kw["endpoint"] = f"http://127.0.0.1:{free_port()}"
        kw["mount"] = {"connect_timeout": "2s", "retries": "1"}
    r = _mount_fails(ws, ws.s3_config(bucket, **kw))
    assert phrase in r.stderr.lower(), r
    assert_no_secret(r.output, rgw, WRONG_SECRET)


def test_mount_foreground_fails_cleanly(ws, rgw):
    mnt = ws.path("mnt")
    mnt.mkdir()
    r = run_hylake("mount", ws.s3_config("hyt-no-such-bucket-4713"), mnt, "-f", timeout=90)
    assert r.returncode != 0, r
    assert "bucket not found" in r.stderr.lower(), r
    assert not is_mounted(mnt)
    assert not processes_for(mnt)


def test_check_uses_the_named_profile(bucket, ws, rgw):
    text = (f"[default]\naws_access_key_id = {rgw.access_key}\n"
            f"aws_secret_access_key = {WRONG_SECRET}\n\n"
            f"[good]\naws_access_key_id = {rgw.access_key}\n"
            f"aws_secret_access_key = {rgw.secret_key}\n")
    creds = ws.creds(text=text)
    r = run_hylake("check", ws.s3_config(bucket, creds=creds, profile="good"))
    assert r.returncode == 0, r
    r = run_hylake("check", ws.s3_config(bucket, creds=creds))
    assert r.returncode == 1, r
    assert "credentials rejected" in r.output.lower(), r
    assert_no_secret(r.output, rgw, WRONG_SECRET)
