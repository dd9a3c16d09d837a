"""Index the standard library without vectors; print files/s, seconds per stage, peak memory,
and how the cost grows with size (1/4, 1/2 and all of the files).

    .venv/bin/python bench/bench_index.py [--fractions 0.25,0.5,1]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fractions", default="0.25,0.5,1")
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fraction in (float(f) for f in args.fractions.split(",")):
            src = Path(tmp) / f"src-{fraction}"
            n = copy_fraction(stdlib, src, fraction)
            t0 = time.perf_counter()
            result = codegraph.index(str(src), str(Path(tmp) / f"db-{fraction}"),
                                     options=IndexOptions(IndexConfig(vectors=False)))
            wall = time.perf_counter() - t0
            assert result["state"] == "completed", result.get("error")
            stages = {s["name"]: s["duration_ms"] / 1000 for s in result["stages"]}
            rows.append((fraction, n, wall, stages, result))
    print(f"{'fraction':>8} {'files':>6} {'total s':>8} {'files/s':>8} {'L1 s':>6} {'L3 s':>6} "
          f"{'L2 s':>6} {'symbols':>8} {'edges':>8} {'chunks':>7}")
    for fraction, n, wall, stages, result in rows:
        print(f"{fraction:>8.2f} {n:>6} {wall:>8.2f} {n / wall:>8.1f} {stages['L1_ir']:>6.2f} "
              f"{stages['L3_lexical']:>6.2f} {stages['L2_chunk']:>6.2f} {result['symbols']:>8} "
              f"{result['edges']:>8} {result['chunks']:>7}")
    if len(rows) > 1:
        (_, n0, w0, *_), (_, n1, w1, *_) = rows[0], rows[-1]
        print(f"growth: {n1 / n0:.1f}x the files took {w1 / w0:.1f}x the time")
    own, children = peak_mb()
    print(f"peak RSS: main process {own:.0f} MB, largest worker process {children:.0f} MB")


if __name__ == "__main__":
    main()
