#!/usr/bin/env bash
# tests/npm_ci.sh DIR - install DIR's npm packages exactly as DIR/package-lock.json
# pins them (npm ci, quiet), only when DIR/node_modules does not match the lock
# file already.  Used by tests/gcs/conformance/run.sh and
# tests/pubsub/conformance/run.sh (Google's GCS and Pub/Sub clients),
# tests/bench/lakehouse_duckdb.py and tests/demo (DuckDB, tests/bench/duckdb).
# Needs node >= 18 and npm (packaging/install-deps.sh installs them).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$1"
stamp=node_modules/.hylake-lock.sha256
if [ -f "$stamp" ] && sha256sum --check --status "$stamp" 2>/dev/null; then
	exit 0
fi
rm -f "$stamp"
log=$(mktemp)
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	echo "npm_ci.sh: npm ci in $1 failed" >&2
	exit 1
fi
rm -f "$log"
sha256sum package-lock.json package.json >"$stamp"
