#!/usr/bin/env bash
# Create .venv and install the project into it; safe to run again (fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    python -m pip install -q --upgrade pip
    # --no-compile: Python compiles a module when it is first imported; compiling every file
    # of torch, Ray, Gradio and transformers at install, most never imported, is the slow part
    # (installing torch: 34.0 s vs 16.3 s wall; ray + transformers + gradio: 41.8 s vs 10.8 s,
    # on two shared cores).
    # The CPU build of torch first: anything else pulls a multi-GB CUDA build.
    python -m pip install -q --no-compile torch==2.13.0
    python -m pip install -q --no-compile -e ".[test]"
    # Bytecode for what the project imports, written once even where the environment sets
    # PYTHONDONTWRITEBYTECODE (each process would compile torch and Gradio again): see there.
    python scripts/precompile.py
    rm -f .venv/.installed-*
    touch "$stamp"
fi
