"""The Debian package of hylake, built, installed and purged for a test module.

The package is built from the build directory of the binary under test
(HYLAKE_BIN's folder: `cmake --build DIR --target package`, which makes
DIR/hylake_<version>_<arch>.deb), installed with `dpkg -i` and purged with
`dpkg --purge hylake` when the module is done, even when a test failed.

Use it from a test module like this:

    import pkglib
    pkglib.skip_module_unless_packageable()     # at import: skips the module

    pkg = pkglib.package_fixture()              # a module-scoped fixture

    def test_something(pkg):                    # pkg: a pkglib.Package
        subprocess.run(["/sbin/mount.hylake", ...])
        assert pkg.version == "0.1.0"

or, outside pytest fixtures, as a context manager:

    with pkglib.installed_package() as pkg:
        ...

Rules it keeps, so that tests never damage the machine they run on:
  - it only runs as root, with dpkg and cmake, from a plain build: a
    sanitizer build (HYLAKE_SANITIZE:BOOL=ON in its CMakeCache.txt) is
    skipped, the package is tested once, from the plain build;
  - it skips rather than clobbers: when /usr/bin/hylake or
    /usr/sbin/mount.hylake exist and package hylake does not own them,
    or when package hylake is already installed (by someone else);
  - one install at a time on the machine: an exclusive lock on
    LOCK_PATH is held from install to purge, so two test runs (or two
    modules) never install or purge under each other.

Each module gets its own install and purge (a few seconds), so a module may
purge the package itself (Package.purge()) to test what is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import fnmatch
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

import hylib

PACKAGE = "hylake"
LOCK_PATH = Path("/run/lock/hylake-package-tests.lock")
LOCK_WAIT = 600            # seconds to wait for another run's install to end
BUILD_TIMEOUT = 1200       # `--target package` builds whatever is stale first
DPKG_TIMEOUT = 300
# Paths the package installs that another installation could already hold.
OWNED_BINARIES = ("/usr/bin/hylake", "/usr/sbin/mount.hylake")
DPKG_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}

_active: Optional["Package"] = None     # the install this process holds


@dataclasses.dataclass
class Package:
    deb: Path                  # the .deb that was installed
    version: str               # as the binary under test reports it
    arch: str                  # dpkg --print-architecture
    build_dir: Path
    purged: bool = False

    def control(self, field: str) -> str:
        """A field of the .deb's control file (dpkg-deb -f)."""
        return run(["dpkg-deb", "-f", str(self.deb), field]).stdout.strip()

    def listed(self) -> list[str]:
        """What `dpkg -L hylake` lists (files and folders)."""
        return run(["dpkg", "-L", PACKAGE]).stdout.splitlines()

    def purge(self) -> None:
        """dpkg --purge hylake (idempotent)."""
        if not self.purged:
            r = run(["dpkg", "--purge", PACKAGE], check=False, timeout=DPKG_TIMEOUT,
                    env=DPKG_ENV)
            self.purged = True
            assert r.returncode == 0, f"dpkg --purge {PACKAGE} failed:\n{r.stdout}{r.stderr}"


def run(argv, *, check: bool = True, timeout: float = 60, env=None,
        cwd=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout, env=env, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {r.returncode}:\n"
                             f"{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r


def build_dir() -> Path:
    """The CMake build directory of the binary under test."""
    return hylib.HYLAKE_BIN.parent


def cache_value(build: Path, name: str) -> Optional[str]:
    """A CMakeCache.txt entry (NAME:TYPE=VALUE), or None."""
    try:
        text = (build / "CMakeCache.txt").read_text(errors="replace")
    except OSError:
        return None
    m = re.search(rf"^{re.escape(name)}:[A-Z]+=(.*)$", text, re.M)
    return m.group(1).strip() if m else None


def is_sanitizer_build(build: Path) -> bool:
    return (cache_value(build, "HYLAKE_SANITIZE") or "").upper() in ("ON", "1", "TRUE", "YES")


def project_version() -> str:
    """The version in the top-level CMakeLists.txt's project()."""
    text = (hylib.REPO / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*hylake\s+VERSION\s+([0-9][0-9.]*)", text)
    assert m, "no project(hylake VERSION ...) in CMakeLists.txt"
    return m.group(1)


def package_status() -> str:
    """dpkg's status of package hylake ("" when dpkg does not know it)."""
    r = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def owner_of(path: str) -> Optional[str]:
    """The package that owns path, or None."""
    r = run(["dpkg-query", "-S", path], check=False)
    if r.returncode != 0:
        return None
    return r.stdout.split(":", 1)[0].strip()


def dpkg_excluded(path: str) -> Optional[str]:
    """The path-exclude pattern of dpkg's configuration (as slim container
    images set for /usr/share/man and /usr/share/doc) that drops path on
    install, or None."""
    patterns, includes = [], []
    for conf in [Path("/etc/dpkg/dpkg.cfg"), *sorted(Path("/etc/dpkg/dpkg.cfg.d").glob("*"))]:
        with contextlib.suppress(OSError):
            for line in conf.read_text(errors="replace").splitlines():
                m = re.match(r"\s*path-(exclude|include)[=\s]+(\S+)", line)
                if m:
                    (patterns if m.group(1) == "exclude" else includes).append(m.group(2))
    for pat in patterns:
        if fnmatch.fnmatch(path, pat) and not any(fnmatch.fnmatch(path, i) for i in includes):
            return pat
    return None


def skip_reason() -> Optional[str]:
    """Why the package cannot be tested here, or None."""
    if os.geteuid() != 0:
        return "installing a package needs root"
    for path in ("/usr/share/man/man8/hylake.8.gz", "/usr/share/doc/hylake/copyright"):
        pat = dpkg_excluded(path)
        if pat:
            return f"dpkg is configured to leave out {pat} (/etc/dpkg/dpkg.cfg.d)"
    for tool in ("dpkg", "dpkg-deb", "dpkg-query", "cmake", "cpack", "dpkg-shlibdeps"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (packaging/install-deps.sh installs it)"
    build = build_dir()
    if not (build / "CMakeCache.txt").is_file():
        return f"{build} is not a CMake build directory"
    if is_sanitizer_build(build):
        return f"{build} is a sanitizer build: the package is tested from the plain build"
    return None


def skip_module_unless_packageable() -> None:
    """Skip the calling test module when skip_reason() says so."""
    why = skip_reason()
    if why:
        pytest.skip(why, allow_module_level=True)


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{LOCK_PATH} held for over {LOCK_WAIT}s by another "
                                f"package test", pytrace=False)
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)        # releases the lock


def _refuse_to_clobber() -> None:
    status = package_status()
    if status == "install ok installed":
        pytest.skip(f"package {PACKAGE} is already installed and was not installed by "
                    f"these tests; `dpkg --purge {PACKAGE}` to test the package")
    for path in OWNED_BINARIES:
        if os.path.lexists(path) and owner_of(path) != PACKAGE:
            pytest.skip(f"{path} exists and is not from package {PACKAGE}: not replacing it")


def build_deb(build: Path) -> tuple[Path, str, str]:
    """Build the .deb in build; return (path, version, arch)."""
    r = run([hylib.HYLAKE_BIN, "--version"])
    m = re.fullmatch(r"hylake (\S+)\s*", r.stdout)
    assert m, f"unexpected `hylake --version` output: {r.stdout!r}"
    version = m.group(1)
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    deb = build / f"{PACKAGE}_{version}_{arch}.deb"
    with contextlib.suppress(FileNotFoundError):
        deb.unlink()        # a stale package must not pass for a new one
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    # First the default target: it regenerates a build system configured
    # before the package rules existed (which knows no `package` target yet)
    # and brings the binaries up to date.
    for target in ([], ["--target", "package"]):
        r = run(["cmake", "--build", build, "-j", jobs, *target], check=False,
                timeout=BUILD_TIMEOUT)
        assert r.returncode == 0, (f"cmake --build {build} {' '.join(target)} failed:\n"
                                   f"{r.stdout[-4000:]}{r.stderr[-4000:]}")
    assert deb.is_file(), (f"`--target package` did not make {deb.name}; it made "
                           f"{sorted(p.name for p in build.glob('*.deb'))}\n{r.stdout[-2000:]}")
    return deb, version, arch


@contextlib.contextmanager
def installed_package() -> Iterator[Package]:
    """Build, install, yield a Package, purge.  Skips (pytest.skip) where the
    package cannot or must not be installed (see the module's docstring)."""
    global _active
    why = skip_reason()
    if why:
        pytest.skip(why)
    assert _active is None, "installed_package() is already active in this process"
    build = build_dir()
    # Waiting for the lock, building, installing and purging are bounded by
    # their own timeouts, not by the timeout of the test that happens to set
    # the fixture up or tear it down.
    with contextlib.ExitStack() as held:
        with hylib.no_test_timeout():
            held.enter_context(_machine_lock())
            _refuse_to_clobber()
            deb, version, arch = build_deb(build)
        pkg = Package(deb=deb, version=version, arch=arch, build_dir=build)
        _active = pkg
        try:
            with hylib.no_test_timeout():
                r = run(["dpkg", "-i", deb], check=False, timeout=DPKG_TIMEOUT, env=DPKG_ENV)
            assert r.returncode == 0, f"dpkg -i {deb.name} failed:\n{r.stdout}{r.stderr}"
            yield pkg
        finally:
            _active = None
            # Purge even after a failed install: dpkg may have unpacked it.
            with hylib.no_test_timeout():
                if package_status() and not pkg.purged:
                    pkg.purge()


def package_fixture(scope: str = "module"):
    """A pytest fixture (module-scoped by default) yielding an installed
    Package.  Assign it to a name in the test module:
    `pkg = pkglib.package_fixture()`."""

    @pytest.fixture(scope=scope)
    def _pkg():
        with installed_package() as pkg:
            yield pkg

    return _pkg
