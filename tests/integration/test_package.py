"""The Debian package: what it declares, what it installs, and that what it
installs works (binaries, man pages, example config, systemd units); then
that purging it leaves nothing behind.

Installs the package built from the plain build once for the module
(pkglib: skipped on sanitizer builds, when not root, or when a hylake not
from the package is installed).  Needs no radosgw and no GCS server.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hylib  # noqa: E402
import pkglib  # noqa: E402
from pkglib import run  # noqa: E402

pkglib.skip_module_unless_packageable()

pkg = pkglib.package_fixture()

DOC = Path("/usr/share/doc/hylake")
MAN_PAGES = {
    "hylake.8": Path("/usr/share/man/man8/hylake.8.gz"),
    "mount.hylake.8": Path("/usr/share/man/man8/mount.hylake.8.gz"),
    "hylake.conf.5": Path("/usr/share/man/man5/hylake.conf.5.gz"),
}
UNITS = (DOC / "examples" / "mnt-lake.mount", DOC / "examples" / "hylake-warm@.service")
EXPECTED_FILES = {
    "/usr/bin/hylake",
    "/usr/sbin/mount.hylake",
    *map(str, MAN_PAGES.values()),
    str(DOC / "copyright"),
    str(DOC / "changelog.gz"),
    str(DOC / "hylake.conf.example"),
    *map(str, UNITS),
}
EXPECTED_DIRS = {
    "/usr", "/usr/bin", "/usr/sbin", "/usr/share", "/usr/share/doc", str(DOC),
    str(DOC / "examples"), "/usr/share/man", "/usr/share/man/man5", "/usr/share/man/man8",
}
FSTAB_LINE = "/etc/hylake/lake.conf /mnt/lake hylake _netdev,nofail,allow_other 0 0"
# What mount.hylake(8) says mount(8) and systemd handle: dropped before FUSE
# would see them (ro is passed on: it keeps the mount read-only; rw is dropped, since
# mount(8) passes it to every mount: writable is the setting that makes a mount writable).
MOUNT8_OPTIONS = ("_netdev", "nofail", "noauto", "auto", "user", "users", "nouser",
                  "defaults", "rw", "ro", "owner", "group", "nosuid", "nodev", "exec",
                  "noexec", "dev", "suid")
MAN_ENV = {**os.environ, "LC_ALL": "C.UTF-8", "MANPAGER": "cat", "PAGER": "cat",
           "MANWIDTH": "80"}
MAN_ENV.pop("MANOPT", None)


# --------------------------------------------------------------------------- helpers


def help_settings() -> dict[tuple[str, str], str]:
    """{(scope, name): help text} from the settings table `hylake --help` prints."""
    out = run(["/usr/bin/hylake", "--help"]).stdout
    settings, scope = {}, None
    for line in out.splitlines():
        if line.startswith("[mount] settings"):
            scope = "mount"
        elif line.startswith("[source] / [replica NAME] settings"):
            scope = "store"
        elif line.startswith("[changes] settings"):
            scope = "changes"
        elif scope and re.match(r"  [a-z_]+ ", line):
            name, _, text = line.strip().partition(" ")
            settings[(scope, name)] = text.strip()
    scopes = {s for s, _ in settings}
    assert scopes == {"mount", "store", "changes"}, \
        f"cannot read the settings table of --help:\n{out}"
    return settings


def render(page: Path, width: int = 80) -> str:
    """man -l, checking that it renders without a warning."""
    env = {**MAN_ENV, "MANWIDTH": str(width)}
    r = run(["man", "--warnings", "-l", page], check=False, env=env)
    assert r.returncode == 0 and r.stderr.strip() == "", (
        f"man --warnings -l {page} (MANWIDTH={width}): exit {r.returncode}\n{r.stderr}")
    assert len(r.stdout) > 1000, f"{page} renders to almost nothing"
    return r.stdout


def section(text: str, name: str) -> str:
    """The rendered text of one .SH section."""
    m = re.search(rf"^{re.escape(name)}\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, f"no {name} section"
    return m.group(1)


def entry(text: str, tag: str) -> str:
    """The rendered .TP entry whose tag starts with `tag` (tag and body, one line)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf" {{7}}{re.escape(tag)}(\s|$)", line):
            body = [line.strip()]
            for nxt in lines[i + 1:]:
                if not nxt.startswith(" " * 14):
                    break
                body.append(nxt.strip())
            return " ".join(body)
    raise AssertionError(f"no entry for {tag!r}")


def gzip_header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(10)


def needed_libraries(binary: str) -> list[str]:
    out = run(["readelf", "-d", binary]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def library_package(soname: str, binary: str) -> str:
    """The package that ships the library the dynamic linker picks for soname."""
    out = run(["ldd", binary]).stdout
    m = re.search(rf"^\s*{re.escape(soname)} => (\S+)", out, re.M)
    assert m, f"ldd {binary} does not resolve {soname}:\n{out}"
    path = m.group(1)
    # merged /usr: dpkg may know the file under /lib or under /usr/lib
    candidates = [path, os.path.realpath(path)]
    candidates += [p.removeprefix("/usr") for p in candidates if p.startswith("/usr/")]
    candidates += ["/usr" + p for p in candidates if not p.startswith("/usr/")]
    for p in candidates:
        owner = pkglib.owner_of(p)
        if owner:
            return owner
    raise AssertionError(f"no package owns {soname} ({path})")


def depends_names(depends: str) -> dict[str, str]:
    """{package: its constraint or ""} from a Depends field."""
    out = {}
    for item in depends.split(","):
        m = re.fullmatch(r"\s*([a-z0-9][a-z0-9+.-]*)(?::\w+)?\s*(\(([^)]*)\))?\s*", item)
        assert m, f"cannot read Depends item {item!r}"
        out[m.group(1)] = m.group(3) or ""
    return out


def example_with_credentials(tmp: Path, text: str) -> Path:
    """The example config with each /etc/hylake/ credentials file replaced by
    an empty temp file of mode 0600 (mount.hylake -f checks they exist)."""
    def repl(m):
        f = tmp / Path(m.group(2)).name
        f.touch()
        os.chmod(f, 0o600)
        return f"{m.group(1)}{f}"
    text = re.sub(r"^(credentials = )(/etc/hylake/\S+)", repl, text, flags=re.M)
    conf = tmp / "lake.conf"
    conf.write_text(text)
    return conf


def uncomment_all(text: str, known: set[str]) -> str:
    """Turn every commented-out setting (`; key = value`) and section header
    of the example on; a key already set in its section takes the commented
    value instead of being set twice."""
    out: list[str] = []
    where: dict[str, int] = {}          # key -> line index, in the current section
    for line in text.splitlines():
        active, turned_on = line, True
        m = re.match(r";\s?(\[replica [^\]]+\])\s*$", line)
        k = re.match(r";\s?([a-z_]+) = (.*)$", line)
        if m:
            active = m.group(1)
        elif k and k.group(1) in known:
            active = f"{k.group(1)} = {k.group(2)}"
        else:
            turned_on = False
        if active.startswith("["):
            where = {}
        key = re.match(r"([a-z_]+) = ", active)
        if key and key.group(1) in where and turned_on:
            out[where[key.group(1)]] = active
            continue
        if key:
            where[key.group(1)] = len(out)
        out.append(active)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the .deb


@pytest.mark.timeout(60)
def test_control_fields(pkg):
    assert pkg.deb.name == f"hylake_{pkglib.project_version()}_{pkg.arch}.deb"
    assert pkg.control("Package") == "hylake"
    assert pkg.control("Version") == pkglib.project_version()
    assert pkg.control("Architecture") == pkg.arch
    assert pkg.control("Maintainer") == "hylake maintainers <hylake@localhost>"
    assert pkg.control("Section") in ("admin", "utils")
    assert pkg.control("Priority") == "optional"
    desc = pkg.control("Description").splitlines()
    assert desc[0].strip() and len(desc) > 2, "a synopsis and a long description"
    assert desc[0] not in "\n".join(desc[1:]), "the synopsis is repeated in the description"


@pytest.mark.timeout(60)
def test_depends_derived_from_the_binaries(pkg):
    """Every library the binaries link comes from a package named in Depends,
    with the minimum version dpkg-shlibdeps worked out; fuse3 is there for
    fusermount3."""
    deps = depends_names(pkg.control("Depends"))
    for must in ("fuse3", "libfuse3-3", "libcurl4", "liblmdb0", "libssl3", "libxxhash0",
                 "libexpat1", "libjansson4", "libinih1", "libc6"):
        assert must in deps, f"Depends lacks {must}: {deps}"
    for binary in ("/usr/bin/hylake", "/usr/sbin/mount.hylake"):
        needed = needed_libraries(binary)
        assert "libfuse3.so.3" in needed and "libcurl.so.4" in needed, needed
        for soname in needed:
            owner = library_package(soname, binary)
            assert owner in deps, f"{binary} needs {soname} from {owner}, not in Depends {deps}"
            assert deps[owner].startswith(">="), (
                f"{owner} has no minimum version ({deps[owner]!r}): not from dpkg-shlibdeps")


@pytest.mark.timeout(60)
def test_contents_modes_and_stripped_binaries(pkg):
    out = run(["dpkg-deb", "-c", pkg.deb]).stdout
    seen = set()
    for line in out.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        path = path.removeprefix(".")
        seen.add(path.rstrip("/") or "/")
        assert owner == "root/root", line
        if perms.startswith("d"):
            assert perms == "drwxr-xr-x", line
        elif path.startswith(("/usr/bin/", "/usr/sbin/")):
            assert perms == "-rwxr-xr-x", line
        else:
            assert perms == "-rw-r--r--", line
    assert seen - {"/"} == EXPECTED_FILES | EXPECTED_DIRS, sorted(seen)
    for binary in ("/usr/bin/hylake", "/usr/sbin/mount.hylake"):
        sections = run(["readelf", "-S", "-W", binary]).stdout
        for s in (".symtab", ".debug_info", ".debug_line", ".comment"):
            assert f" {s} " not in sections, f"{binary} is not stripped: it has {s}"
        data = Path(binary).read_bytes()
        for where in (pkg.build_dir, hylib.REPO):
            assert str(where).encode() not in data, f"{binary} names the build path {where}"


@pytest.mark.timeout(60)
def test_man_pages_and_changelog_are_gzip_n_9(pkg):
    for gz in [*MAN_PAGES.values(), DOC / "changelog.gz"]:
        h = gzip_header(gz)
        assert h[:3] == b"\x1f\x8b\x08", f"{gz} is not gzip"
        assert h[3] & 0x08 == 0, f"{gz} carries a file name (gzip without -n)"
        assert h[4:8] == b"\0\0\0\0", f"{gz} carries a time stamp (gzip without -n)"
        assert h[8] == 2, f"{gz} is not compressed with -9"
    entry_line = gzip.decompress((DOC / "changelog.gz").read_bytes()).decode().splitlines()[0]
    assert entry_line.startswith(f"hylake ({pkg.version}) "), entry_line


@pytest.mark.timeout(180)
def test_lintian(pkg):
    """No lintian error or warning but the maintainer address the project
    chose (hylake@localhost is not a deliverable address)."""
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (packaging/install-deps.sh installs it)")
    r = run(["lintian", "--fail-on", "error,warning", "--suppress-tags",
             "bogus-mail-host,bogus-mail-host-in-debian-changelog", pkg.deb],
            check=False, timeout=170)
    tags = [ln for ln in r.stdout.splitlines() if re.match(r"[EW]: ", ln)]
    assert r.returncode == 0 and not tags, f"lintian (exit {r.returncode}):\n{r.stdout}{r.stderr}"


# --------------------------------------------------------------------------- installed


@pytest.mark.timeout(60)
def test_installed_files_exactly(pkg):
    listed = set(pkg.listed())
    assert listed == EXPECTED_FILES | EXPECTED_DIRS, (
        f"missing {sorted((EXPECTED_FILES | EXPECTED_DIRS) - listed)}, "
        f"unexpected {sorted(listed - EXPECTED_FILES - EXPECTED_DIRS)}")
    for f in EXPECTED_FILES:
        assert os.path.isfile(f), f


@pytest.mark.timeout(60)
def test_binaries_run(pkg):
    # Debian 12 merged /usr: mount(8) looks for /sbin/mount.hylake
    assert os.path.realpath("/sbin/mount.hylake") == "/usr/sbin/mount.hylake"
    assert os.access("/sbin/mount.hylake", os.X_OK)
    r = run(["/usr/bin/hylake", "--version"])
    assert r.stdout == f"hylake {pkglib.project_version()}\n"
    for binary in ("/usr/bin/hylake", "/usr/sbin/mount.hylake"):
        assert "not found" not in run(["ldd", binary]).stdout
    r = run(["/sbin/mount.hylake"], check=False)
    assert r.returncode == 2 and "usage: mount.hylake" in r.stderr


# --------------------------------------------------------------------------- man pages


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", sorted(MAN_PAGES))
def test_man_page_renders_cleanly(pkg, page):
    path = MAN_PAGES[page]
    name, sect = page.rsplit(".", 1)
    # found by name, as users ask for it
    r = run(["man", "-w", sect, name], env=MAN_ENV)
    assert r.stdout.strip() == str(path)
    for width in (80, 200):
        render(path, width)
    source = gzip.decompress(path.read_bytes())
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=source,
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    r = run(["man", "-l", path], env=MAN_ENV, check=False)
    assert r.returncode == 0 and not r.stderr, r.stderr


@pytest.mark.timeout(60)
def test_hylake_conf_5_documents_every_setting(pkg):
    """Every key of the settings table (from `hylake --help`) has an entry in
    the right section of hylake.conf(5), and its default is the one the
    table gives."""
    text = render(MAN_PAGES["hylake.conf.5"], width=200)
    where = {"mount": section(text, "[mount] SETTINGS"),
             "store": section(text, "[source] AND [replica NAME] SETTINGS"),
             "changes": section(text, "[changes] SETTINGS")}
    settings = help_settings()
    for (scope, name), helptext in settings.items():
        body = entry(where[scope], name)
        default = re.search(r"\[([^\]\s]+)\]$", helptext)
        if default:
            assert f"[{default.group(1)}" in body, (
                f"hylake.conf(5) gives {name} another default than --help "
                f"([{default.group(1)}]):\n{body}")
    for fact in ("metrics_listen = 127.0.0.1:9464", "x-amz-meta-goog-generation",
                 "user.goog-generation", "strict", "bounded:DURATION", "0600",
                 "aws_access_key_id", "client_email", "/var/lib/hylake/BUCKET",
                 "/var/cache/hylake/BUCKET"):
        assert fact in text, f"hylake.conf(5) does not mention {fact}"
    for sect in ("FRESHNESS", "REPLICA CONTRACT", "CREDENTIALS", "FILES", "SEE ALSO"):
        section(text, sect)
    # the file modes the credentials check enforces
    assert "mode 0600 or 0400" in " ".join(section(text, "CREDENTIALS").split())


@pytest.mark.timeout(60)
def test_hylake_8_documents_every_command(pkg):
    text = render(MAN_PAGES["hylake.8"], width=200)
    commands = section(text, "COMMANDS")
    usage = run(["/usr/bin/hylake", "--help"]).stdout.split("\n\n")[0]
    listed = {}
    for cmd, rest in re.findall(r"hylake ([a-z]+)(.*)", usage):
        listed[cmd] = re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest)
    assert {"mount", "check", "explain", "status", "warm", "replicate"} <= set(listed), usage
    for cmd, flags in listed.items():
        documented = entry(commands, cmd)
        for flag in flags:
            assert flag in documented, f"hylake(8) does not document {cmd} {flag}"
    replicate = entry(commands, "replicate")
    flags = set(re.findall(r"--[a-z][a-z-]+",
                           run(["/usr/bin/hylake", "replicate", "--help"]).stdout))
    assert {"--to", "--prefix", "--jobs", "--dry-run"} <= flags
    for flag in flags - {"--help"}:
        assert flag in replicate, f"hylake(8) does not document replicate {flag}"
    assert "--prometheus" in entry(commands, "status")
    assert "--jobs N" in entry(commands, "warm")
    for flag in ("-f", "-d", "-o OPTIONS"):
        assert flag in entry(commands, "mount")
    exit_status = section(text, "EXIT STATUS")
    for code in ("0", "1", "2"):
        entry(exit_status, code)
    for sect in ("FILES", "SEE ALSO"):
        section(text, sect)
    assert "mount.hylake(8)" in text and "hylake.conf(5)" in text


@pytest.mark.timeout(60)
def test_mount_hylake_8_documents_options(pkg):
    text = render(MAN_PAGES["mount.hylake.8"], width=200)
    flat = " ".join(text.split())
    assert FSTAB_LINE in text
    assert "mount -t hylake /etc/hylake/lake.conf /mnt/lake -o allow_other,ro" in text
    usage = run(["/sbin/mount.hylake"], check=False).stderr
    flags = re.search(r"\[-([a-z]+)\]", usage).group(1)
    options = section(text, "OPTIONS")
    for f in flags:
        entry(options, f"-{f}")
    dropped = section(text, "MOUNT OPTIONS")
    for o in MOUNT8_OPTIONS + ("x-", "comment="):
        assert re.search(rf"(^|[\s,(]){re.escape(o)}[,.\s)]", dropped), f"{o} is not documented"
    for o in ("allow_other", "default_permissions", "uid=N", "gid=N", "file_mode=OCTAL",
              "dir_mode=OCTAL", "freshness=bounded:30s", "log_level=debug"):
        assert o in flat, f"mount.hylake(8) does not document {o}"
    assert "(default 0444)" in entry(dropped, "file_mode=OCTAL")
    assert "(default 0555)" in entry(dropped, "dir_mode=OCTAL")


# --------------------------------------------------------------------------- behaviour


def _mount_helper(ws, conf: Path, opts: str) -> Path:
    """Mount through the installed helper, as mount(8) runs it."""
    mnt = ws.path(f"mnt-{len(list(ws.root.glob('mnt-*')))}")
    mnt.mkdir()
    out, err = ws.path("helper.out"), ws.path("helper.err")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        # files, not pipes: the daemon keeps its inherited ones until it is up
        r = subprocess.run(["/sbin/mount.hylake", str(conf), str(mnt), "-o", opts],
                           stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, f"mount.hylake -o {opts} exited {r.returncode}:\n{err.read_text()}"
    assert hylib.is_mounted(mnt), "mount.hylake exited 0 but nothing is mounted"
    return mnt


def _unmount(mnt: Path) -> None:
    helper = Path("/usr/sbin/mount.hylake")
    if hylib.is_mounted(mnt):
        r = subprocess.run(["umount", str(mnt)], capture_output=True, text=True, timeout=60)
        if hylib.is_mounted(mnt):
            hylib._run_quiet(["umount", "-l", str(mnt)])
        assert r.returncode == 0, f"umount {mnt}: {r.stderr}"
    assert hylib.wait_until(lambda: not hylib.processes_for(mnt, binary=helper), 20), (
        f"mount.hylake still running for {mnt}")


@pytest.mark.timeout(120)
def test_helper_drops_mount8_options_and_shows_documented_modes(pkg, ws):
    """mount.hylake(8)'s claims, through the installed helper: the options
    of mount(8) and systemd never reach FUSE (which would refuse them), and
    files and folders show 0444 and 0555 unless told otherwise."""
    src = ws.path("src")
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "f.txt").write_bytes(b"hello\n")
    conf = ws.posix_config(src, mount={"cache_size": "0"})
    opts = ",".join(MOUNT8_OPTIONS + ("x-systemd.automount", "x-foo=1", "comment=hylake",
                                      "allow_other", "default_permissions"))
    mnt = _mount_helper(ws, conf, opts)
    try:
        with open("/proc/self/mounts") as f:
            mine = [ln.split() for ln in f if hylib._unescape_mount(ln.split()[1]) == str(mnt)]
        assert len(mine) == 1, mine
        source, _, fstype, mnt_opts = mine[0][:4]
        assert fstype == "fuse.hylake" and "ro" in mnt_opts.split(","), mine[0]
        assert hylib._unescape_mount(source) == str(conf.resolve()), mine[0]
        assert stat.S_IMODE(os.stat(mnt / "dir").st_mode) == 0o555
        assert stat.S_IMODE(os.stat(mnt / "dir" / "f.txt").st_mode) == 0o444
        assert (mnt / "dir" / "f.txt").read_bytes() == b"hello\n"
    finally:
        _unmount(mnt)

    mnt = _mount_helper(ws, conf, "uid=4321,gid=8765,file_mode=0440,dir_mode=0550")
    try:
        d, f = os.stat(mnt / "dir"), os.stat(mnt / "dir" / "f.txt")
        assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (4321, 8765, 0o550)
        assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (4321, 8765, 0o440)
    finally:
        _unmount(mnt)


@pytest.mark.timeout(60)
def test_example_config_is_valid(pkg, tmp_path):
    example = (DOC / "hylake.conf.example").read_text()
    helper = "/sbin/mount.hylake"
    # As shipped: only the credentials files it names are missing here.
    r = run([helper, "-f", DOC / "hylake.conf.example", tmp_path], check=False)
    if r.returncode != 0:
        errors = r.stderr.strip().splitlines()
        assert r.returncode == 2 and errors, r
        for e in errors:
            assert "credentials file /etc/hylake/" in e, f"the example has another problem: {e}"
    # With the credentials files present (mode 0600), it is valid as is...
    conf = example_with_credentials(tmp_path, example)
    r = run([helper, "-f", conf, tmp_path], check=False)
    assert r.returncode == 0 and not r.stderr, r
    # ...and with every commented-out setting and section turned on.
    full = uncomment_all(conf.read_text(), {name for _, name in help_settings()})
    for turned_on in ("[replica dc-east-nfs]", "metrics_listen = 127.0.0.1:9464",
                      "freshness = bounded:30s", "file_mode = 0444"):
        assert f"\n{turned_on}" in full, f"the example has no commented {turned_on!r}"
    conf.write_text(full)
    r = run([helper, "-f", conf, tmp_path], check=False)
    assert r.returncode == 0 and not r.stderr, f"{r}\n{full}"
    # hylake check reads it the same way (it then fails only on the stores)
    r = run(["/usr/bin/hylake", "check", conf], check=False, timeout=120)
    assert r.returncode in (0, 1), r


@pytest.mark.timeout(120)
def test_systemd_units_verify(pkg, tmp_path):
    """systemd-analyze verify on the installed examples (it also checks that
    the ExecStart binary exists and the man pages they cite are found)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units = list(UNITS)
    # a real instance of the template, as an administrator would enable it
    instance = tmp_path / "hylake-warm@mnt-lake-tables-dim.service"
    shutil.copy(UNITS[1], instance)
    units.append(instance)
    for unit in units:
        r = run(["systemd-analyze", "verify", unit], check=False, timeout=60)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (
            f"systemd-analyze verify {unit}:\n{r.stdout}{r.stderr}")
    mount = UNITS[0].read_text()
    for line in ("What=/etc/hylake/lake.conf", "Where=/mnt/lake", "Type=hylake",
                 "Options=_netdev,nofail,allow_other"):
        assert f"\n{line}\n" in mount, f"mnt-lake.mount lacks {line}"
    assert "ExecStart=/usr/bin/hylake warm %f" in UNITS[1].read_text()


# --------------------------------------------------------------------------- last


@pytest.mark.timeout(120)
def test_purge_leaves_nothing(pkg):
    """Runs last in this module: after dpkg --purge, no file of the package
    is left (the fixture's own purge then has nothing to do)."""
    listed = pkg.listed()
    pkg.purge()
    assert pkglib.package_status() in ("", "unknown ok not-installed"), pkglib.package_status()
    for path in listed:
        if path in EXPECTED_DIRS - {str(DOC), str(DOC / "examples")}:
            continue    # shared folders stay
        assert not os.path.lexists(path), f"{path} is still there after the purge"
    r = run(["man", "-w", "8", "hylake"], check=False, env=MAN_ENV)
    assert r.returncode != 0, "man still finds hylake(8)"
