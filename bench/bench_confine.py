"""What reading inside the root costs: every .py file of the standard library read three ways,
side by side in one process, alternating, best of `--repeat`:

- `plain`: `open(root/path).read()` — what the scan and `read_text` did before (follows any link);
- `shared`: `RootDir.read` on one `RootDir` for all files — the scan, and a stage's batch;
- `one-off`: `read_inside`, a `RootDir` per file — `read_text` without a shared one;

and the stat alone (a file the scan proves unchanged): `os.lstat(root/path)` as before against
`RootDir.lstat` on one `RootDir`.

    .venv/bin/python bench/bench_confine.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from codegraph.confine import RootDir, read_inside


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(sysconfig.get_paths()["stdlib"]).resolve()
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "site-packages" not in p.parts and p.is_file() and not p.is_symlink())

    def plain() -> int:
        total = 0
        for rel in paths:
            with open(os.path.join(root, rel), "rb") as f:
                total += len(f.read())
        return total

    def shared() -> int:
        with RootDir(root) as tree:
            return sum(len(tree.read(rel)[0]) for rel in paths)

    def one_off() -> int:
        return sum(len(read_inside(root, rel)) for rel in paths)

    def plain_stat() -> int:  # the scan of an unchanged file: stat only (before: one lstat)
        return sum(os.lstat(os.path.join(root, rel)).st_size for rel in paths)

    def shared_stat() -> int:
        with RootDir(root) as tree:
            return sum(tree.lstat(rel)[0].st_size for rel in paths)

    ways: dict[str, Callable[[], int]] = {"plain": plain, "shared": shared, "one-off": one_off,
                                          "plain stat": plain_stat, "shared stat": shared_stat}
    best = {name: float("inf") for name in ways}
    sizes = set()
    for _ in range(args.repeat):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            sizes.add(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    assert len(sizes) == 1, "the ways read different bytes"
    print(f"{len(paths)} files, {sizes.pop() / 1e6:.1f} MB of {root}; best of {args.repeat}")
    print(f"{'way':12} {'seconds':>8} {'files/s':>9} {'vs plain':>9} {'µs/file extra':>14}")
    for name, seconds in best.items():
        base = best["plain stat" if name.endswith("stat") else "plain"]
        extra = (seconds - base) / len(paths) * 1e6
        print(f"{name:12} {seconds:8.3f} {len(paths) / seconds:9.0f} {seconds / base:8.2f}x "
              f"{extra:14.1f}")


if __name__ == "__main__":
    main()
