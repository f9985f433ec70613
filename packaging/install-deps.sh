#!/usr/bin/env bash
# packaging/install-deps.sh - install everything hylake needs to build,
# test and demo on Debian 12.  Idempotent: installs only what is missing,
# and refreshes the package index only when it has to.
#
#   packaging/install-deps.sh          build + test dependencies
#   packaging/install-deps.sh --bench  also what tests/bench/fast_reads.py compares
#                                      against (s3fs, rclone)
set -euo pipefail

BENCH=0
for a in "$@"; do
	case $a in
	--bench) BENCH=1 ;;
	*) echo "usage: $0 [--bench]" >&2; exit 2 ;;
	esac
done

BUILD_PKGS=(build-essential cmake pkg-config fuse3 libfuse3-dev
	libcurl4-openssl-dev libssl-dev liblmdb-dev lmdb-utils libxxhash-dev
	libexpat1-dev libjansson-dev libinih-dev libcsv-dev)
# radosgw (a real S3 server) and the Python side of the integration tests
TEST_PKGS=(ceph-mon ceph-osd radosgw ceph-common python3 python3-pytest
	python3-pytest-timeout python3-boto3 attr curl procps psmisc util-linux
	clang libclang-rt-14-dev python3-cryptography python3-crcmod strace)
# The .deb (cpack: dpkg-shlibdeps works out its library dependencies) and
# tests/integration/test_package.py (man pages rendered, units verified,
# the package linted)
TEST_PKGS+=(dpkg-dev man-db groff-base systemd lintian)
# tests/integration/test_posix_hang.py: a folder that freezes like a dead NFS
TEST_PKGS+=(python3-fusepy)
# tests/integration/test_writes.py: rsync -a into a writable mount
TEST_PKGS+=(rsync)
# Node.js runs Google's official GCS client against the GCS test server;
# it is preinstalled on some images (newer than Debian's), else Debian's.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	TEST_PKGS+=(nodejs npm)
# tests/bench/fast_reads.py: the mounts it compares hylake with
BENCH_PKGS=(s3fs rclone)
[ "$BENCH" = 1 ] || BENCH_PKGS=()

missing=()
for p in "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all packages present"
	exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
