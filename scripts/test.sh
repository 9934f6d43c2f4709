#!/usr/bin/env bash
# Set up (Python packages and Debian's chromium for the browser tests), then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
bash scripts/setup.sh
. .venv/bin/activate
# Two test processes (pytest-xdist): most tests wait on subprocesses, servers and the browser
# more than they compute. Each test file runs whole in one process, so a module's shared
# server, cluster or browser starts once (the long files first: tests/conftest.py).
# Arguments come after, so `bash scripts/test.sh -n 0` runs in one process.
exec python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
