#!/usr/bin/env bash
# Set up, build index/ from corpus/ (incrementally), then open the chat UI on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rag build
exec rag serve "$@"
