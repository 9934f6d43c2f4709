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
exec python -m pytest "$@"
