"""Index the standard library without vectors; print files/s, seconds per stage, peak memory,
and how the cost grows with size (1/4, 1/2 and all of the files).

With `--compare REV_DIR` (a checkout of another revision, e.g. a `git worktree` of the base),
the same builds run from both trees in turn, `--rounds` times (each in its own process, with
PYTHONPATH at that tree's `src`, on one copy of the files), and the table shows each round
and the ratio of this tree's medians to the other's: on a shared machine only builds measured
side by side in one run compare.

    .venv/bin/python bench/bench_index.py [--fractions 0.25,0.5,1]
    .venv/bin/python bench/bench_index.py --fractions 1 --compare /path/to/base --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def copy_fraction(stdlib: Path, dest: Path, fraction: float) -> int:
    files = sorted(
        p for p in stdlib.rglob("*.py")
        if "site-packages" not in p.parts and "__pycache__" not in p.parts
    )
    step = max(1, round(1 / fraction))
    chosen = files if fraction >= 1 else files[::step]
    for f in chosen:
        target = dest / f.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    return len(chosen)


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def build(src: Path, db: Path, l1_only: bool = False) -> dict[str, Any]:
    """One full build of `src` into a fresh `db`, with the codegraph on sys.path. `l1_only`: the
    IR stage alone (at the base of issue 13 L1 ran beside L3; here it runs before it), so that
    two trees' L1 compare without the other stages sharing the cores."""
    import codegraph
    from codegraph import pipeline
    from codegraph.pipeline import IndexOptions
    from codegraph.stages import IndexConfig

    if l1_only:
        every = pipeline.pipeline_stages
        pipeline.pipeline_stages = lambda config: [s for s in every(config) if s.name == "L1_ir"]  # type: ignore[assignment]

    shutil.rmtree(db, ignore_errors=True)
    t0 = time.perf_counter()
    result = codegraph.index(str(src), str(db), options=IndexOptions(IndexConfig(vectors=False)))
    wall = time.perf_counter() - t0
    assert result["state"] == "completed", result.get("error")
    stages = dict.fromkeys(("L1_ir", "L2_chunk", "L3_lexical"), 0.0)
    stages.update({s["name"]: s["duration_ms"] / 1000 for s in result["stages"]})
    return {"wall": wall, "stages": stages, "symbols": result["symbols"],
            "edges": result["edges"], "chunks": result["chunks"]}


def compare(other: Path, fraction: float, rounds: int, l1_only: bool = False) -> None:
    """Builds from this tree and from `other` in turn, each in a fresh process."""
    trees = {"other": other.resolve(), "this": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {"other": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        n = copy_fraction(Path(sysconfig.get_paths()["stdlib"]), src, fraction)
        for i in range(rounds):
            for label in (("other", "this") if i % 2 == 0 else ("this", "other")):
                env = {**os.environ, "PYTHONPATH": str(trees[label] / "src")}
                proc = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--build", str(src),
                     str(Path(tmp) / f"db-{label}"), *(["--l1-only"] if l1_only else [])],
                    env=env, capture_output=True, text=True, check=True)
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                runs[label].append(row)
                print(f"round {i + 1} {label:>5}: total {row['wall']:6.2f} s  L1 "
                      f"{row['stages']['L1_ir']:6.2f}  L2 {row['stages']['L2_chunk']:6.2f}  L3 "
                      f"{row['stages']['L3_lexical']:6.2f}  edges {row['edges']}", flush=True)
    print(f"{n} files ({fraction:.2f} of the stdlib), {rounds} rounds"
          f"{', L1 alone' if l1_only else ''}; this = {ROOT}, other = {trees['other']}")
    for name, get in (("total", lambda r: r["wall"]), ("L1", lambda r: r["stages"]["L1_ir"]),
                      ("L2", lambda r: r["stages"]["L2_chunk"]),
                      ("L3", lambda r: r["stages"]["L3_lexical"])):
        a = statistics.median(get(r) for r in runs["other"])
        b = statistics.median(get(r) for r in runs["this"])
        if not a:  # a stage not run (--l1-only)
            continue
        print(f"{name:>5}: other {a:6.2f} s, this {b:6.2f} s (medians): {b / a:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fractions", default="0.25,0.5,1")
    parser.add_argument("--compare", metavar="REV_DIR", type=Path, default=None,
                        help="a checkout of another revision to build side by side with this one")
    parser.add_argument("--rounds", type=int, default=3, help="with --compare: builds per tree")
    parser.add_argument("--l1-only", action="store_true",
                        help="with --compare: run the IR stage (L1) alone in both trees")
    parser.add_argument("--build", nargs=2, metavar=("SRC", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:  # one build, in a process of `compare`: its result as JSON
        print(json.dumps(build(Path(args.build[0]), Path(args.build[1]), args.l1_only)))
        return
    if args.compare is not None:
        compare(args.compare, float(args.fractions.split(",")[-1]), args.rounds, args.l1_only)
        return
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fraction in (float(f) for f in args.fractions.split(",")):
            src = Path(tmp) / f"src-{fraction}"
            n = copy_fraction(stdlib, src, fraction)
            row = build(src, Path(tmp) / f"db-{fraction}")
            rows.append((fraction, n, row))
    print(f"{'fraction':>8} {'files':>6} {'total s':>8} {'files/s':>8} {'L1 s':>6} {'L3 s':>6} "
          f"{'L2 s':>6} {'symbols':>8} {'edges':>8} {'chunks':>7}")
    for fraction, n, row in rows:
        wall, stages = row["wall"], row["stages"]
        print(f"{fraction:>8.2f} {n:>6} {wall:>8.2f} {n / wall:>8.1f} {stages['L1_ir']:>6.2f} "
              f"{stages['L3_lexical']:>6.2f} {stages['L2_chunk']:>6.2f} {row['symbols']:>8} "
              f"{row['edges']:>8} {row['chunks']:>7}")
    if len(rows) > 1:
        (_, n0, r0), (_, n1, r1) = rows[0], rows[-1]
        print(f"growth: {n1 / n0:.1f}x the files took {r1['wall'] / r0['wall']:.1f}x the time")
    own, children = peak_mb()
    print(f"peak RSS: main process {own:.0f} MB, largest worker process {children:.0f} MB")


if __name__ == "__main__":
    main()
