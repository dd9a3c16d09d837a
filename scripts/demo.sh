#!/usr/bin/env bash
# Set up, index real code (three packages of this Python's standard library, with vectors)
# and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STDLIB=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
DEMO=${TMPDIR:-/tmp}/codegraph-demo
rm -rf "$DEMO" && mkdir -p "$DEMO"
cp -r "$STDLIB/json" "$STDLIB/http" "$STDLIB/urllib" "$DEMO/"
.venv/bin/codegraph index "$DEMO" --db "$DEMO/.codegraph"
.venv/bin/codegraph search "parse the status line of an HTTP response" --db "$DEMO/.codegraph" --limit 5
.venv/bin/codegraph graph callers json.decoder.JSONDecoder.raw_decode --db "$DEMO/.codegraph"
