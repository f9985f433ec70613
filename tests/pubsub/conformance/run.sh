#!/usr/bin/env bash
# tests/pubsub/conformance/run.sh - check tests/pubsub/pubsub_server.py against
# Google's official Node client (@google-cloud/pubsub v1 clients over REST, pinned
# by package-lock.json), with tokens from tests/gcs/gcs_server.py.
#
#   1. npm ci (quiet), only when node_modules does not match package-lock.json
#   2. node --test conformance.test.mjs  (starts both servers itself, 127.0.0.1 only)
#
# Needs node >= 18 and npm; PYTHON (default /usr/bin/python3) with python3-cryptography.
set -euo pipefail
cd "$(dirname "$0")"
../../npm_ci.sh .
exec node --test conformance.test.mjs
