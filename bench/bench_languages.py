"""Per-language benchmark on real code nobody here wrote: build speed (full and a 1% update,
beside Python on the same number of bytes, in one run) and resolution accuracy against the
language's own compiler as the oracle (precision and recall of codegraph's call and import edges).

One section per language (`SECTIONS`); each prepares its corpus in a scratch directory with the
ecosystem's ordinary client and prints its table:

Full builds: medians of 3, alternating with Python's on stdlib files matched one to one in size
(the same bytes and the same number of files).

- typescript: packages from the npm registry that ship their TypeScript sources (`npm pack`),
  the TypeScript compiler API as the oracle (`npm install typescript`; `ts_oracle.js`: the
  resolved signature's declaration of every call and `new`, the resolved module of every import).

    .venv/bin/python bench/bench_languages.py [--lang typescript] [--scratch DIR]
                                              [--packages rxjs@7.8.1,immer@10.1.1] [--json]

Timing numbers are noisy on a shared machine: compare the ratios, measured side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
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
from codegraph.languages.typescript.resolve import module_names as ts_module_names
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
HERE = Path(__file__).parent
TARGETS = {"import_recall": 0.98, "call_precision": 0.95, "call_recall": 0.80, "speed_ratio": 0.5}


# ----- shared -----------------------------------------------------------------------------


def timed_index(repo: Path, db: Path, full: bool) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    result = codegraph.index(str(repo), str(db), options=NO_VECTORS, full=full)
    elapsed = time.perf_counter() - t0
    if result["state"] != "completed":
        raise SystemExit(f"index of {repo} failed: {result.get('error')}")
    return elapsed, result


def code_bytes(root: Path, suffixes: tuple[str, ...]) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes]
    return len(files), sum(p.stat().st_size for p in files)


def python_corpus(sizes: list[int], dest: Path) -> Path:
    """Standard-library .py files matched one to one to the given file sizes (for each, the
    unused file nearest in size): Python's baseline with the same bytes *and* file count, so
    per-file costs (and the worker pool a larger batch starts) weigh the same on both sides."""
    import bisect

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pool = sorted((p.stat().st_size, str(p)) for p in stdlib.rglob("*.py")
                  if "site-packages" not in p.parts and p.stat().st_size > 0)
    for size in sorted(sizes, reverse=True):
        if not pool:
            break
        i = bisect.bisect_left(pool, (size, ""))
        candidates = [j for j in (i - 1, i) if 0 <= j < len(pool)]
        j = min(candidates, key=lambda k: abs(pool[k][0] - size))
        _, chosen = pool.pop(j)
        rel = Path(chosen).relative_to(stdlib)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chosen, dest / rel)
    return dest


def speed(repo: Path, baseline: Path, work: Path, suffixes: tuple[str, ...],
          edit: Callable[[str], str], repeat: int = 3) -> dict[str, Any]:
    """Full builds of `repo` and of the Python `baseline`, alternating, `repeat` times each into
    fresh stores (medians); then an update of `repo` after editing 1% of its files."""
    files, size = code_bytes(repo, suffixes)
    py_files, py_size = code_bytes(baseline, (".py",))
    full, py_full = [], []
    for i in range(repeat):
        full.append(timed_index(repo, work / f"lang-{i}.db", full=True)[0])
        py_full.append(timed_index(baseline, work / f"py-{i}.db", full=True)[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process, so far
    sources = sorted(p for p in repo.rglob("*") if p.is_file() and p.suffix in suffixes)
    count = max(1, math.ceil(len(sources) * 0.01))
    edited = sources[:: max(1, len(sources) // count)][:count]
    for path in edited:
        path.write_text(edit(path.read_text()))
    db = work / f"lang-{repeat - 1}.db"
    update_s, update = timed_index(repo, db, full=False)
    full_s, py_s = statistics.median(full), statistics.median(py_full)
    return {"files": files, "bytes": size, "full_s": round(full_s, 2),
            "full_files_per_s": round(files / full_s, 1), "full_kb_per_s": round(size / 1024 / full_s, 1),
            "py_files": py_files, "py_bytes": py_size, "py_full_s": round(py_s, 2),
            "py_files_per_s": round(py_files / py_s, 1), "py_kb_per_s": round(py_size / 1024 / py_s, 1),
            "update_files": len(edited), "update_s": round(update_s, 3),
            "update_resolved": len(update["affected_files"]), "peak_rss_mb": round(peak, 1),
            "db": db}


def precision_recall(found: set[Any], oracle: set[Any]) -> tuple[float, float]:
    hit = len(found & oracle)
    return (hit / len(found) if found else 1.0), (hit / len(oracle) if oracle else 1.0)


def edges_of(db: Path) -> list[list[Any]]:
    return [row for row in codegraph.open(str(db)).export() if row[0] == "edge"]


# ----- typescript ---------------------------------------------------------------------------

TS_SUFFIXES = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")


def _npm(args: list[str], cwd: Path) -> None:
    subprocess.run(["npm", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def ts_corpus(scratch: Path, package: str) -> Path:
    """The package's sources (`NAME@VERSION:DIR`: its DIR, else its `src/`, else the whole
    package), unpacked once."""
    package, _, subdir = package.partition(":")
    name = package.replace("/", "-").replace("@", "", 1) if package.startswith("@") else package
    unpacked = scratch / name.replace("@", "-")
    if not unpacked.exists():
        before = set(scratch.glob("*.tgz"))
        _npm(["pack", package], scratch)
        tarball = next(iter(set(scratch.glob("*.tgz")) - before), None)
        if tarball is None:
            raise SystemExit(f"npm pack {package} made no tarball")
        unpacked.mkdir()
        subprocess.run(["tar", "xzf", str(tarball), "-C", str(unpacked)], check=True)
    root = unpacked / "package"
    if subdir:
        return root / subdir
    return root / "src" if (root / "src").is_dir() else root


def ts_oracle(scratch: Path, corpus: Path, cache: Path) -> dict[str, Any]:
    if cache.exists():
        oracle: dict[str, Any] = json.loads(cache.read_text())
        return oracle
    if not (scratch / "node_modules" / "typescript").is_dir():
        _npm(["install", "--no-save", "typescript@5.6.3"], scratch)
    configs = [corpus / n for n in ("tsconfig.json", "tsconfig.base.json", "../tsconfig.json")
               if (corpus / n).is_file()]
    args = ["node", str(HERE / "ts_oracle.js"), str(scratch / "node_modules" / "typescript"),
            str(corpus), *([str(configs[0])] if configs else [])]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    cache.write_text(out)
    oracle = json.loads(out)
    return oracle


def ts_accuracy(db: Path, oracle: dict[str, Any]) -> dict[str, Any]:
    calls: set[tuple[str, int, str, str]] = set()
    imports: set[tuple[str, int, str]] = set()
    for _, kind, _src, src_path, dst, dst_path, line, *_ in edges_of(db):
        if kind == "calls":
            calls.add((src_path, line, dst_path, dst.rpartition(".")[2]))
        elif kind == "imports" and dst == ts_module_names([dst_path])[dst_path]:
            imports.add((src_path, line, dst_path))  # the module edge, not the imported names
    oracle_calls = {tuple(c) for c in oracle["calls"]}
    oracle_imports = {tuple(i) for i in oracle["imports"]}
    call_p, call_r = precision_recall(calls, oracle_calls)  # type: ignore[arg-type]
    imp_p, imp_r = precision_recall(imports, oracle_imports)  # type: ignore[arg-type]
    return {"oracle_calls": len(oracle_calls), "codegraph_calls": len(calls),
            "call_precision": round(call_p, 4), "call_recall": round(call_r, 4),
            "oracle_imports": len(oracle_imports), "codegraph_imports": len(imports),
            "import_precision": round(imp_p, 4), "import_recall": round(imp_r, 4),
            "call_misses": sorted(oracle_calls - calls)[:8],  # type: ignore[operator]
            "call_extras": sorted(calls - oracle_calls)[:8],  # type: ignore[operator]
            "import_misses": sorted(oracle_imports - imports)[:5]}  # type: ignore[operator]


def typescript_section(scratch: Path, packages: list[str]) -> list[dict[str, Any]]:
    rows = []
    for package in packages:
        corpus = ts_corpus(scratch, package)
        label = package.replace("/", "-").replace(":", "-").replace("@", "-")
        oracle = ts_oracle(scratch, corpus, scratch / f"oracle-{label}.json")
        with tempfile.TemporaryDirectory(prefix="bench-lang-") as tmp:
            work = Path(tmp)
            repo = work / "ts"
            shutil.copytree(corpus, repo)
            # Python on the same bytes, in the same process, builds alternating with these.
            sizes = [p.stat().st_size for p in repo.rglob("*") if p.suffix in TS_SUFFIXES]
            py_repo = python_corpus(sizes, work / "py")
            ts = speed(repo, py_repo, work, TS_SUFFIXES, lambda t: t + "\n// edited\n")
            accuracy = ts_accuracy(Path(ts.pop("db")), oracle)
        rows.append({"package": package, "typescript": ts,
                     "speed_ratio_kb_per_s": round(ts["full_kb_per_s"] / ts["py_kb_per_s"], 2),
                     **accuracy})
    return rows


def print_typescript(rows: list[dict[str, Any]]) -> None:
    print("typescript (oracle: the TypeScript compiler API, bench/ts_oracle.js)")
    print(f"{'package':<16} {'files':>5} {'KB':>6} {'full s':>7} {'files/s':>8} {'KB/s':>7} "
          f"{'py files':>8} {'py KB/s':>8} {'ratio':>6} {'1% upd s':>9} {'resolved':>8} "
          f"{'imp P':>6} {'imp R':>6} {'call P':>7} {'call R':>7}")
    for r in rows:
        ts = r["typescript"]
        print(f"{r['package']:<16} {ts['files']:>5} {ts['bytes'] // 1024:>6} {ts['full_s']:>7} "
              f"{ts['full_files_per_s']:>8} {ts['full_kb_per_s']:>7} {ts['py_files']:>8} "
              f"{ts['py_kb_per_s']:>8} "
              f"{r['speed_ratio_kb_per_s']:>6} {ts['update_s']:>9} {ts['update_resolved']:>8} "
              f"{r['import_precision']:>6} {r['import_recall']:>6} {r['call_precision']:>7} "
              f"{r['call_recall']:>7}")
    print(f"targets: import recall >= {TARGETS['import_recall']}, call precision >= "
          f"{TARGETS['call_precision']}, call recall >= {TARGETS['call_recall']}, "
          f"KB/s ratio to Python >= {TARGETS['speed_ratio']}")
    for r in rows:
        print(f"{r['package']}: oracle calls {r['oracle_calls']}, codegraph calls "
              f"{r['codegraph_calls']}, oracle imports {r['oracle_imports']}, codegraph imports "
              f"{r['codegraph_imports']}")
        for label in ("call_misses", "call_extras", "import_misses"):
            for item in r[label][:5]:
                print(f"  {label[:-2] if label.endswith('es') else label}: {item}")


SECTIONS: dict[str, tuple[Callable[[Path, list[str]], list[dict[str, Any]]],
                          Callable[[list[dict[str, Any]]], None], list[str]]] = {
    "typescript": (typescript_section, print_typescript,
                   ["rxjs@7.8.1", "immer@10.1.1", "axios@1.7.7:lib", "express@4.21.1"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "bench-languages"))
    parser.add_argument("--packages", help="comma-separated, for a single --lang")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    results = {}
    for lang in args.lang or sorted(SECTIONS):
        run, show, default = SECTIONS[lang]
        packages = args.packages.split(",") if args.packages else default
        results[lang] = run(scratch, packages)
        if not args.json:
            show(results[lang])
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)


if __name__ == "__main__":
    main()
