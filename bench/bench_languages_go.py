"""Go: full-build and 1%-update rates on the Go standard library, side by side with Python on
about the same bytes of Python's standard library, and resolution accuracy against go/types.

The Go corpus is `$GOROOT/src` without `cmd/` and `testdata/` (code nobody here wrote: Debian's
golang-1.19 sources), copied to a temporary directory. The oracle is `bench/go_oracle`, a small
Go program built here offline (GO111MODULE=off GOPROXY=off) that type-checks every package with
go/types for the default build context and prints, for every non-test file it compiled, the
`types.Info.Uses` object of every call's callee (functions and methods of the corpus, by
qualified name `importpath.Func` / `importpath.Type.Method`) and every import of a corpus
package. codegraph's call edges `(file, line, dst)` and import edges are compared with those on
the files the oracle compiled: precision and recall. Edges to interface implementations
(`call_kind` "dispatch" to a type other than the interface) are extra facts go/types does not
state and are left out of the precision.

    .venv/bin/python bench/bench_languages_go.py [--goroot DIR] [--fraction 0.01] [--no-check]

Prints one table and a JSON line. Rates on this shared 2-core machine vary a lot from run to run;
the Go/Python ratio is measured in the same run, one build after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
RETURN_LINE = re.compile(r"^(\t+)return\b", re.MULTILINE)
ORACLE_SRC = Path(__file__).parent / "go_oracle"


def go_binary(goroot: Path | None) -> Path:
    for candidate in ([goroot / "bin" / "go"] if goroot else []) + [Path("/usr/lib/go-1.19/bin/go")]:
        if candidate.exists():
            return candidate
    found = shutil.which("go")
    if found is None:
        sys.exit("no go toolchain: apt-get install golang-go")
    return Path(found)


def copy_go_corpus(goroot: Path, dest: Path) -> tuple[int, int]:
    shutil.copytree(goroot / "src", dest, ignore=shutil.ignore_patterns("testdata", "cmd"), symlinks=True)
    files = [p for p in dest.rglob("*.go")]
    return len(files), sum(p.stat().st_size for p in files)


def copy_python_corpus(dest: Path, target_bytes: int) -> tuple[int, int]:
    """Python's stdlib .py files in path order until about `target_bytes`."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = size = 0
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib)
        if "site-packages" in rel.parts or "test" in rel.parts or "__pycache__" in rel.parts:
            continue
        if size >= target_bytes:
            break
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        count += 1
        size += path.stat().st_size
    return count, size


def timed_index(root: Path, db: Path, full: bool) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    result = codegraph.index(str(root), str(db), options=NO_VECTORS, full=full)
    elapsed = time.perf_counter() - t0
    assert result["state"] == "completed", result.get("error")
    return elapsed, result


def run_oracle(go: Path, goroot: Path, corpus: Path, tmp: Path) -> tuple[Path, float]:
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "GOROOT": str(goroot),
           "GOCACHE": str(tmp / "gocache"), "CGO_ENABLED": "0", "PATH": f"{go.parent}:{os.environ['PATH']}"}
    binary = tmp / "go_oracle"
    subprocess.run([str(go), "build", "-o", str(binary), "."], cwd=ORACLE_SRC, env=env, check=True)
    out = tmp / "oracle.jsonl"
    t0 = time.perf_counter()
    with out.open("w") as sink:
        subprocess.run([str(binary), str(corpus), "std"], env=env, stdout=sink, check=True)
    return out, time.perf_counter() - t0


def accuracy(db: Path, oracle: Path) -> dict[str, Any]:
    files: set[str] = set()
    want: dict[str, set[tuple[str, int, str]]] = {"calls": set(), "imports": set()}
    for line in oracle.open():
        r = json.loads(line)
        if r["kind"] == "file":
            files.add(r["file"])
        else:
            want["calls" if r["kind"] == "call" else "imports"].add((r["file"], r["line"], r["dst"]))
    got: dict[str, set[tuple[str, int, str]]] = {"calls": set(), "imports": set()}
    interfaces: set[str] = set()
    for row in codegraph.open(str(db)).export():
        if row[0] == "symbol" and row[2] == "interface":
            interfaces.add(row[1])
        if row[0] != "edge" or row[3] not in files or row[1] not in got:
            continue
        got[row[1]].add((row[3], row[6], row[4]))
    # A call of an interface's method also has dispatch edges to the snapshot's implementations
    # of it: facts go/types does not state (it names the interface's method), left out here.
    abstract = {(f, line, dst.rpartition(".")[2]) for f, line, dst in got["calls"]
                if dst.rpartition(".")[0] in interfaces}
    edges = {e for e in got["calls"] if e[2].rpartition(".")[0] in interfaces
             or (e[0], e[1], e[2].rpartition(".")[2]) not in abstract}
    implementations = len(got["calls"]) - len(edges)
    out: dict[str, Any] = {"files_checked": len(files), "implementation_edges": implementations}
    for kind in ("calls", "imports"):
        mine = edges if kind == "calls" else got[kind]
        hit = len(mine & want[kind])
        out[kind] = {"codegraph": len(mine), "oracle": len(want[kind]), "both": hit,
                     "precision": round(hit / max(1, len(mine)), 4),
                     "recall": round(hit / max(1, len(want[kind])), 4)}
    return out


def edit_fraction(root: Path, fraction: float, seed: int = 1) -> list[str]:
    """A body-only edit (`_ = 0` before a `return`) in a uniform sample of the .go files."""
    files = sorted(p for p in root.rglob("*.go") if RETURN_LINE.search(p.read_text(errors="replace")))
    picked = random.Random(seed).sample(files, max(1, round(len(files) * fraction)))
    for path in picked:
        text = path.read_text()
        m = RETURN_LINE.search(text)
        assert m is not None
        path.write_text(text[: m.start()] + f"{m[1]}_ = 0\n" + text[m.start():])
    return sorted(str(p.relative_to(root)) for p in picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goroot", type=Path, default=None)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--no-check", action="store_true", help="skip the export check of the update")
    args = parser.parse_args()
    go = go_binary(args.goroot)
    goroot = args.goroot or Path(subprocess.run([str(go), "env", "GOROOT"], capture_output=True,
                                                text=True, check=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="bench-go-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "go" / "src"
        go_files, go_bytes = copy_go_corpus(goroot, corpus)
        py_root = tmp / "py"
        py_files, py_bytes = copy_python_corpus(py_root, go_bytes)

        go_full, go_result = timed_index(corpus, tmp / "db-go", full=True)
        py_full, _ = timed_index(py_root, tmp / "db-py", full=True)

        edited = edit_fraction(corpus, args.fraction)
        go_update, update_result = timed_index(corpus, tmp / "db-go", full=False)
        assert update_result["affected_files"] == edited, "a body-only edit re-resolved other files"
        equal = None
        if not args.no_check:
            timed_index(corpus, tmp / "db-check", full=True)
            equal = list(codegraph.open(str(tmp / "db-go")).export()) == \
                list(codegraph.open(str(tmp / "db-check")).export())
        oracle, oracle_s = run_oracle(go, goroot, corpus, tmp)
        scores = accuracy(tmp / "db-go", oracle)

    report = {
        "go": {"files": go_files, "mb": round(go_bytes / 1e6, 2), "full_s": round(go_full, 1),
               "files_per_s": round(go_files / go_full, 1), "mb_per_s": round(go_bytes / 1e6 / go_full, 3),
               "update_files": len(edited), "update_s": round(go_update, 2),
               "update_speedup": round(go_full / go_update, 1), "update_equals_full": equal,
               "symbols": go_result["symbols"], "edges": go_result["edges"],
               "unresolved_calls": go_result["unresolved_calls"]},
        "python": {"files": py_files, "mb": round(py_bytes / 1e6, 2), "full_s": round(py_full, 1),
                   "files_per_s": round(py_files / py_full, 1),
                   "mb_per_s": round(py_bytes / 1e6 / py_full, 3)},
        "oracle_s": round(oracle_s, 1),
        "accuracy": scores,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }
    g, p = report["go"], report["python"]
    print(f"{'':14}{'files':>7}{'MB':>7}{'full s':>8}{'files/s':>9}{'MB/s':>7}")
    for name, r in (("Go stdlib", g), ("Python stdlib", p)):
        print(f"{name:14}{r['files']:>7}{r['mb']:>7}{r['full_s']:>8}{r['files_per_s']:>9}{r['mb_per_s']:>7}")
    print(f"Go/Python bytes/s: {g['mb_per_s'] / p['mb_per_s']:.2f}")
    print(f"Go {args.fraction:.0%} update: {g['update_files']} files in {g['update_s']} s "
          f"({g['update_speedup']}x faster than the full build), export equal to a full build: {equal}")
    for kind in ("calls", "imports"):
        s = scores[kind]
        print(f"{kind:8} vs go/types: precision {s['precision']:.4f} recall {s['recall']:.4f} "
              f"(codegraph {s['codegraph']}, oracle {s['oracle']}, both {s['both']}; "
              f"{scores['files_checked']} files)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
