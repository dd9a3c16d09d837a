#!/usr/bin/env bash
# Creates .venv and installs codegraph with embeddings and test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch is pinned to 2.13.0 in pyproject.toml: the CPU build (a newer one pulls GBs of CUDA).
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[vectors,dev,bench]'
