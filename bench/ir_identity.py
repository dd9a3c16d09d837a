"""Is the Python IR unchanged? Hash L1's IR (msgpack, as stored) of every standard-library file
from this tree and from another checkout (each in its own process, PYTHONPATH at its `src`) and
list the files whose IR differs. For changes meant to make extraction cheaper without changing
what it gives (its cost is measured elsewhere: one process per tree, in turn, is no comparison).

    .venv/bin/python bench/ir_identity.py --compare /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stdlib_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in stdlib.rglob("*.py")
                  if "site-packages" not in p.parts and "__pycache__" not in p.parts)


def hashes() -> dict[str, str]:
    """In this process (the tree on sys.path): path -> sha256 of its encoded IR."""
    import msgspec

    from codegraph.languages.python import PYTHON

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    encoder = msgspec.msgpack.Encoder()
    out: dict[str, str] = {}
    for path in stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        ir = PYTHON.extract(text)
        out[str(path.relative_to(stdlib))] = hashlib.sha256(encoder.encode(ir)).hexdigest()
    return out


def run_in(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--hashes"], env=env,
                          capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", metavar="REV_DIR", type=Path,
                        help="a checkout of another revision (e.g. a `git worktree`)")
    parser.add_argument("--hashes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hashes:
        print(json.dumps(hashes()))
        return
    if args.compare is None:
        parser.error("--compare REV_DIR is required")
    a, b = run_in(args.compare.resolve()), run_in(ROOT)
    differ = sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))
    print(f"{len(b)} files in this tree, {len(a)} in the other")
    if differ:
        print(f"IR differs on {len(differ)} files:", *differ[:20], sep="\n  ")
        sys.exit(1)
    print("IR identical on all files")


if __name__ == "__main__":
    main()
