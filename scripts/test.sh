#!/usr/bin/env bash
# The whole test suite (unit, end-to-end, the real model, the standard library).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest -q "$@"
