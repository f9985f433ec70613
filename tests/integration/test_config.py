"""Config validation: FILE:LINE: messages, exit code 2, secrets never printed."""

import os

import pytest

from hylib import is_mounted, processes_for, run_hylake

SECRET = "zzTopSecretValue0123456789abcdefghijklmnop"


def source_lines(ws, creds=None):
    creds = creds or ws.creds("AKIAEXAMPLE", SECRET)
    return ["[source]", "type = s3", "endpoint = http://127.0.0.1:9", "bucket = lake",
            "region = us-east-1", f"credentials = {creds}"]


def write_cfg(ws, lines, name="bad.conf"):
    return ws.write(name, "\n".join(lines) + "\n")


def assert_file_line(r, cfg, line, *phrases):
    hits = [ln for ln in r.stderr.splitlines() + r.stdout.splitlines()
            if ln.startswith(f"{cfg}:{line}:")]
    assert hits, f"no line starting with {cfg}:{line}:\n{r}"
    for p in phrases:
        assert any(p in h.lower() for h in hits), f"{p!r} not in {hits}"


def run_both(cfg, ws):
    """`check` and `mount` on the same config."""
    r1 = run_hylake("check", cfg)
    mnt = ws.path("mnt")
    mnt.mkdir(exist_ok=True)
    r2 = run_hylake("mount", cfg, mnt, timeout=60)
    assert not is_mounted(mnt), "a bad config got mounted"
    assert not processes_for(mnt)
    return r1, r2


def test_unknown_key(ws):
    cfg = write_cfg(ws, ["[mount]", f"state_dir = {ws.state_dir}", "bogus = 1", *source_lines(ws)])
    for r in run_both(cfg, ws):
        assert r.returncode == 2, r
        assert_file_line(r, cfg, 3, "unknown key")
        assert SECRET not in r.output


def test_unknown_key_in_source_section(ws):
    lines = ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws), "colour = blue"]
    cfg = write_cfg(ws, lines)
    r = run_hylake("check", cfg)
    assert r.returncode == 2, r
    assert_file_line(r, cfg, len(lines), "unknown key")


def test_unknown_section(ws):
    lines = ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws), "", "[bogus]", "a = b"]
    cfg = write_cfg(ws, lines)
    for r in run_both(cfg, ws):
        assert r.returncode == 2, r
        assert_file_line(r, cfg, lines.index("[bogus]") + 1)


@pytest.mark.parametrize("value", ["5 parsecs", "soon", "10x", "s"])
def test_bad_duration(ws, value):
    lines = ["[mount]", f"state_dir = {ws.state_dir}", "; comment line",
             f"connect_timeout = {value}", *source_lines(ws)]
    cfg = write_cfg(ws, lines)
    r = run_hylake("check", cfg)
    assert r.returncode == 2, r
    assert_file_line(r, cfg, 4)


@pytest.mark.parametrize("key,value", [("retries", "many"), ("threads", "-4"),
                                       ("list_page_size", "lots"), ("log_level", "shouty")])
def test_bad_mount_values(ws, key, value):
    lines = ["[mount]", f"state_dir = {ws.state_dir}", f"{key} = {value}", *source_lines(ws)]
    cfg = write_cfg(ws, lines)
    r = run_hylake("check", cfg)
    assert r.returncode == 2, r
    assert_file_line(r, cfg, 3)


def test_bad_source_type(ws):
    lines = ["[mount]", f"state_dir = {ws.state_dir}", "[source]", "type = ftp", "path = /tmp"]
    cfg = write_cfg(ws, lines)
    r = run_hylake("check", cfg)
    assert r.returncode == 2, r
    assert_file_line(r, cfg, 4)


def test_missing_bucket_key(ws):
    lines = [ln for ln in ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws)]
             if not ln.startswith("bucket")]
    cfg = write_cfg(ws, lines)
    for r in run_both(cfg, ws):
        assert r.returncode == 2, r
        assert str(cfg) in r.output, r
        assert "bucket" in r.output.lower(), r
        assert SECRET not in r.output


def test_missing_config_file(ws):
    r = run_hylake("check", ws.path("nope.conf"))
    assert r.returncode != 0 and r.returncode in (1, 2), r
    assert "nope.conf" in r.output, r


def test_credentials_file_mode_0644(ws):
    creds = ws.creds("AKIAEXAMPLE", SECRET, mode=0o644)
    lines = ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws, creds)]
    cfg = write_cfg(ws, lines)
    for r in run_both(cfg, ws):
        assert r.returncode != 0, r
        assert "readable by group/other" in r.output.lower(), r
        assert SECRET not in r.output


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_credentials_file_group_or_other_readable(ws, mode):
    creds = ws.creds("AKIAEXAMPLE", SECRET, mode=mode)
    cfg = write_cfg(ws, ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws, creds)])
    r = run_hylake("check", cfg)
    assert r.returncode != 0, r
    assert "readable by group/other" in r.output.lower(), r


@pytest.mark.parametrize("text", [
    f"[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key {SECRET}\n",
    f"[default]\naws_access_key_id = AKIAEXAMPLE\n{SECRET}\n",
    f"[default\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = {SECRET}\n",
    f"[other]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = {SECRET}\n",
    f"[default]\naws_secret_access_key = {SECRET}\n",
], ids=["no-equals", "bare-secret-line", "bad-section", "no-such-profile", "no-access-key"])
def test_bad_credentials_file_never_prints_secret(ws, text):
    creds = ws.creds(text=text)
    cfg = write_cfg(ws, ["[mount]", f"state_dir = {ws.state_dir}", *source_lines(ws, creds)])
    r = run_hylake("check", cfg)
    assert r.returncode != 0, r
    assert SECRET not in r.output, f"secret printed:\n{r}"
    assert SECRET[:12] not in r.output, f"part of the secret printed:\n{r}"


def test_bad_option_on_command_line(ws):
    d = ws.path("tree")
    d.mkdir()
    cfg = ws.posix_config(d)
    mnt = ws.path("mnt")
    mnt.mkdir()
    for opt in ["entry_timeout=banana", "retries=-x"]:
        r = run_hylake("mount", cfg, mnt, "-o", opt, timeout=60)
        assert r.returncode != 0, r
        assert r.stderr.strip(), r
        assert not is_mounted(mnt)
        assert not processes_for(mnt)
    assert os.listdir(mnt) == []
