"""Incremental update vs full rebuild on the standard library, side by side in one process.

The stdlib's .py files are copied into a temporary git repository and indexed once (the base).
Then for each scenario — body-only edits, signature changes and renames of exported functions, to
1%, 10% and 50% of the files — the base tree and store are restored, the edits applied, and both
an incremental update of the base store and a full build of the edited tree into a fresh store are
timed (`--repeat` full builds, `--updates` updates: the table shows medians; on a shared 2-core
machine single runs of a 0.5 s update vary by ±40%); their exports must be identical. The
edited files are a uniform sample of all files (see `apply_edits`). Also: a no-change update (in
process and from the CLI), the CLI's wall time for the 1% update, and a 1% update with vectors on
(on json/http/urllib: a full vector build of the whole stdlib would take ~40 minutes here).

    .venv/bin/python bench/bench_incremental.py [--sizes 0.01,0.1,0.5] [--kinds body,signature,rename]
                                                [--repeat 3] [--updates 5] [--skip-vectors]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import copy_fraction

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
RETURN_LINE = re.compile(r"^(\s+)return\b(.*)$", re.MULTILINE)
TOP_DEF = re.compile(r"^def ([A-Za-z]\w*)\(", re.MULTILINE)


def edit_body(text: str) -> str | None:
    """One more statement inside a function body: nothing another file can see changes."""
    m = RETURN_LINE.search(text)
    if m is None:
        return None
    return text[: m.start()] + f"{m[1]}_unused = 0\n{m[1]}return{m[2]}" + text[m.end():]


def edit_signature(text: str) -> str | None:
    """A new first parameter of the first top-level function."""
    m = TOP_DEF.search(text)
    return None if m is None else text[: m.end()] + "_extra, " + text[m.end():]


def edit_rename(text: str) -> str | None:
    """Rename the first public top-level function: what imported it no longer resolves."""
    m = TOP_DEF.search(text)
    if m is None or m[1].startswith("_"):
        return None
    return text[: m.start(1)] + m[1] + "_renamed" + text[m.end(1):]


def edit_statement(text: str) -> str:
    """A module-level `pass`: for files with no function body to edit (nothing visible changes)."""
    return text + ("" if text.endswith("\n") or not text else "\n") + "pass\n"


EDITS: dict[str, Callable[[str], str | None]] = {
    "body": edit_body, "signature": edit_signature, "rename": edit_rename,
}


def run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def make_repo(dest: Path, subset: tuple[str, ...] | None = None) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if subset is None:
        copy_fraction(stdlib, dest, 1.0)
    else:
        for name in subset:
            shutil.copytree(stdlib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    run(["git", "init", "-q", str(dest)])
    run(["git", "-C", str(dest), "add", "-A"])
    run(["git", "-C", str(dest), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "base"])
    # As after a checkout a while ago: mtimes older than git's "racily clean" window.
    old = time.time() - 600
    for path in dest.rglob("*.py"):
        os.utime(path, (old, old))


def checkpoint(db: Path) -> None:
    with sqlite3.connect(db / "index.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def restore(pristine: Path, repo: Path, paths: list[str], base_db: Path, db: Path) -> None:
    for rel in paths:
        target = repo / rel
        if (pristine / rel).exists():
            shutil.copy2(pristine / rel, target)  # bytes and mtime as in the base snapshot
    if db.exists():
        shutil.rmtree(db)
    shutil.copytree(base_db, db)
    os.sync()  # the copy's dirty pages would otherwise be flushed during the timed run


def apply_edits(repo: Path, kind: str, fraction: float, seed: int) -> list[str]:
    """Edit a uniform random sample of `fraction` of the files. A file the scenario's edit does
    not apply to (no top-level function, no `return`) gets a body edit, or else a module-level
    statement: sampling only the files an edit applies to would favour large files (at 50% of
    the files, two thirds of the bytes)."""
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*.py"))
    rng = random.Random(seed)
    rng.shuffle(files)
    want = max(1, round(len(files) * fraction))
    edited = []
    for rel in files:
        if len(edited) == want:
            break
        path = repo / rel
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue
        new = EDITS[kind](text) or edit_body(text) or edit_statement(text)
        path.write_text(new, "utf-8")
        edited.append(rel)
    return edited


def byte_share(repo: Path, paths: list[str]) -> float:
    total = sum(p.stat().st_size for p in repo.rglob("*.py"))
    return sum((repo / p).stat().st_size for p in paths) / total


def export(db: Path) -> list[list[Any]]:
    return list(codegraph.open(str(db)).export())


def timed(fn: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    result = fn()
    assert result["state"] == "completed", result.get("error")
    return time.perf_counter() - t0, result


def cli_index(repo: Path, db: Path, *flags: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "codegraph.cli", "index", str(repo), "--db", str(db),
                           "--json", *flags], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0.01,0.1,0.5")
    parser.add_argument("--kinds", default="body,signature,rename")
    parser.add_argument("--skip-vectors", action="store_true")
    parser.add_argument("--updates", type=int, default=5,
                        help="runs of each incremental update (cheap, and noisier): the median is shown")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each full build: the median is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        pristine, repo = tmp / "pristine", tmp / "repo"
        make_repo(pristine)
        shutil.copytree(pristine, repo, symlinks=True)
        base_db, db = tmp / "base-db", tmp / "db"
        base_time, base = timed(lambda: codegraph.index(str(repo), str(base_db), options=NO_VECTORS))
        checkpoint(base_db)
        print(f"base: {base['files_indexed']} files, full build {base_time:.2f} s "
              f"({base['files_indexed'] / base_time:.1f} files/s)")

        restore(pristine, repo, [], base_db, db)
        no_change, result = timed(lambda: codegraph.index(str(repo), str(db), options=NO_VECTORS))
        print(f"no-change update in process: {no_change * 1000:.0f} ms "
              f"(files read {result['files_read']}, stages run {len(result['stages'])})")
        cli_no_change, _ = cli_index(repo, db, "--no-vectors")
        print(f"no-change update from the CLI: {cli_no_change * 1000:.0f} ms wall")

        rows = []
        fresh = tmp / "full-db"
        for kind in args.kinds.split(","):
            for fraction in (float(s) for s in args.sizes.split(",")):
                edited = apply_edits(repo, kind, fraction, seed=round(fraction * 1000) + len(rows))
                inc_times, full_times = [], []
                for _ in range(args.updates):  # each from the same base store
                    restore(pristine, repo, [], base_db, db)
                    inc_time, inc = timed(lambda: codegraph.index(str(repo), str(db), options=NO_VECTORS))
                    inc_times.append(inc_time)
                for _ in range(args.repeat):
                    shutil.rmtree(fresh, ignore_errors=True)
                    full_times.append(timed(lambda: codegraph.index(str(repo), str(fresh),
                                                                    options=NO_VECTORS))[0])
                inc_time, full_time = statistics.median(inc_times), statistics.median(full_times)
                print(f"{kind} {fraction:.0%}: incremental " + " ".join(f"{t:.3f}" for t in inc_times)
                      + " s; full " + " ".join(f"{t:.2f}" for t in full_times) + " s", flush=True)
                same = export(db) == export(fresh)
                assert same, f"{kind} {fraction}: incremental export differs from the full rebuild"
                rows.append((f"{kind} {fraction:.0%}", full_time, inc_time, len(edited),
                             byte_share(repo, edited), len(inc["affected_files"]), same, inc["speedup"]))
                restore(pristine, repo, edited, base_db, db)

        print(f"\nmedians of {args.repeat} full builds and {args.updates} updates each; bytes: the edited "
              "files' share of the tree's bytes")
        print(f"{'scenario':<16} {'full s':>7} {'incr s':>7} {'speedup':>8} {'changed':>8} "
              f"{'bytes':>6} {'affected':>9} {'export':>7} {'speedup field':>14}")
        for name, full_time, inc_time, changed, share, affected, same, field in rows:
            print(f"{name:<16} {full_time:>7.2f} {inc_time:>7.3f} {full_time / inc_time:>7.1f}x "
                  f"{changed:>8} {share:>6.1%} {affected:>9} {'equal' if same else 'DIFFER':>7} "
                  f"{field!s:>14}")

        restore(pristine, repo, [], base_db, db)
        edited = apply_edits(repo, "body", 0.01, seed=1)
        cli_time, cli = cli_index(repo, db, "--no-vectors")
        print(f"\nCLI wall time, 1% body update ({len(edited)} files): {cli_time:.2f} s "
              f"(in-process duration {cli['duration_ms'] / 1000:.3f} s)")

        if not args.skip_vectors:
            small, small_db = tmp / "small", tmp / "small-db"
            make_repo(small, ("json", "http", "urllib"))
            vec_full, full = timed(lambda: codegraph.index(str(small), str(small_db)))
            edited = apply_edits(small, "body", 0.01, seed=2)
            vec_inc, inc = timed(lambda: codegraph.index(str(small), str(small_db)))
            print(f"with vectors (json/http/urllib, {full['files_indexed']} files, {full['vectors']} "
                  f"vectors): full build {vec_full:.1f} s embedding {full['embedded']} texts; "
                  f"1% body update ({len(edited)} file) {vec_inc:.2f} s embedding {inc['embedded']} "
                  f"texts of {inc['chunks']} chunks")


if __name__ == "__main__":
    main()
