"""Call-graph quality and cost of codegraph's Python resolution.

1. Micro-programs (`tests/callgraph_cases/<construct>/`, each with its expected call graph):
   precision and recall per construct and overall.
2. A dynamic oracle on real code nobody here wrote: a PyPI package's own test suite runs under
   `sys.setprofile`, which records caller -> callee pairs between the package's functions where
   the call is explicit on the calling line; codegraph's recall of them, by kind (a method of
   the same class, a constructor, a call on another object, a plain function).
3. Cost: the standard library's full build with this checkout and with the commit before the
   value analysis (`--base`, default 5cac3fa, unpacked with `git archive`), side by side in one
   run, as the ratio of the two.

    python bench/bench_callgraph.py [--micro] [--oracle PKG==VERSION] [--cost] [--json]

The machine this ran on is shared: read the cost as a ratio of two builds measured in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "callgraph_cases"
sys.path.insert(0, str(ROOT / "src"))

import codegraph  # noqa: E402
from codegraph.pipeline import IndexOptions  # noqa: E402
from codegraph.stages import IndexConfig  # noqa: E402

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
Triple = tuple[str, str, str]


def index_rows(repo: Path, db: Path) -> list[Any]:
    if db.exists():
        shutil.rmtree(db)
    result = codegraph.index(str(repo), str(db), options=NO_VECTORS, full=True)
    assert result["state"] == "completed", result.get("error")
    return list(codegraph.open(str(db)).export())


def index_edges(repo: Path, db: Path) -> list[Any]:
    return [row for row in index_rows(repo, db) if row[0] == "edge" and row[1] == "calls"]


def expected_edges(case: Path) -> set[Triple]:
    out = set()
    for line in (case / "expected.txt").read_text().splitlines():
        if line.strip():
            src, _, rest = line.partition(" -> ")
            dst, kind = rest.split()
            out.add((f"{case.name}.{src}", f"{case.name}.{dst}", kind))
    return out


def micro(scratch: Path) -> dict[str, dict[str, Any]]:
    """Per construct: expected, found, missing and unexpected edges (src, dst, kind)."""
    edges = index_edges(CASES, scratch / "micro-db")
    found: dict[str, set[Triple]] = defaultdict(set)
    for row in edges:
        _, _, src, src_path, dst, _, _, kind = row
        found[src_path.partition("/")[0]].add((src, dst, kind))
    out = {}
    for case in sorted(p for p in CASES.iterdir() if (p / "expected.txt").exists()):
        want, got = expected_edges(case), found.get(case.name, set())
        out[case.name] = {"expected": len(want), "found": len(got), "tp": len(want & got),
                          "missing": sorted(want - got), "unexpected": sorted(got - want)}
    return out


def scores(tp: int, expected: int, found: int) -> tuple[float, float]:
    return (tp / found if found else 1.0), (tp / expected if expected else 1.0)


def print_micro(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["tp"] for r in results.values())
    expected = sum(r["expected"] for r in results.values())
    found = sum(r["found"] for r in results.values())
    print(f"{'construct':<14} {'precision':>9} {'recall':>7}  expected")
    for name, r in results.items():
        p, rc = scores(r["tp"], r["expected"], r["found"])
        print(f"{name:<14} {p:>9.2f} {rc:>7.2f}  {r['expected']}")
        for e in r["missing"]:
            print(f"    missing    {e[0]} -> {e[1]} [{e[2]}]")
        for e in r["unexpected"]:
            print(f"    unexpected {e[0]} -> {e[1]} [{e[2]}]")
    p, rc = scores(tp, expected, found)
    print(f"{'overall':<14} {p:>9.3f} {rc:>7.3f}  {expected}")
    return {"precision": p, "recall": rc, "expected": expected, "found": found, "tp": tp,
            "per_construct": {n: dict(zip(("precision", "recall"), scores(r["tp"], r["expected"],
                                                                          r["found"]), strict=True))
                              for n, r in results.items()}}


# ----- dynamic oracle ------------------------------------------------------------------------

TRACER = r'''
import ast, json, os, sys, pytest
PKG_DIR, OUT = os.path.realpath(sys.argv[1]), sys.argv[2]
edges = {}
def names_on(filename):
    """Per line, the names called there (the last attribute or the name before "(")."""
    try:
        tree = ast.parse(open(filename, encoding="utf-8").read())
    except Exception:
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name:
                for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                    out.setdefault(line, set()).add(name)
    return out

_calls_by_file = {}
_starts_by_file = {}
lines = {}  # (caller file, line) -> {(callee file, callee qualname)}: every call made there

def starts_on(filename):
    """Per line, the first lines of the calls spanning it (a call's events come from any of
    its lines; codegraph gives a call its first line)."""
    try:
        tree = ast.parse(open(filename, encoding="utf-8").read())
    except Exception:
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                out.setdefault(line, set()).add(node.lineno)
    return out

_real = {}

def real(filename):
    hit = _real.get(filename)
    if hit is None:
        hit = _real[filename] = os.path.realpath(filename)
    return hit

def executed(frame, callee):
    cfile = frame.f_code.co_filename
    starts = _starts_by_file.get(cfile)
    if starts is None:
        starts = _starts_by_file[cfile] = starts_on(cfile)
    line = frame.f_lineno
    for start in starts.get(line, (line,)):
        called = lines.setdefault((real(cfile), start), set())
        if callee is not None:
            called.add(callee)

def qual(code):
    return getattr(code, "co_qualname", code.co_name)

_inside = {}

def inside(filename):
    hit = _inside.get(filename)
    if hit is None:
        hit = _inside[filename] = os.path.realpath(filename).startswith(PKG_DIR + os.sep)
    return hit

def profile(frame, event, arg):
    if event == "c_call":
        if inside(frame.f_code.co_filename):
            executed(frame, None)
        return
    if event != "call":
        return
    code = frame.f_code
    caller = frame.f_back
    if caller is None or not inside(caller.f_code.co_filename):
        return
    if not inside(code.co_filename):
        executed(caller, None)
        return
    executed(caller, (real(code.co_filename), qual(code)))
    cfile = caller.f_code.co_filename
    calls = _calls_by_file.get(cfile)
    if calls is None:
        calls = _calls_by_file[cfile] = names_on(cfile)
    name = code.co_name
    on_line = calls.get(caller.f_lineno, ())
    cls_name = None
    if name == "__init__" or name == "__new__":
        slf = frame.f_locals.get("self") if name == "__init__" else frame.f_locals.get("cls")
        cls = type(slf) if name == "__init__" else slf
        cls_name = getattr(cls, "__name__", None)
        if cls_name not in on_line:
            return
        kind = "constructor"
    elif name not in on_line:
        return
    else:
        kind = None
    if "<" in qual(code) or "<" in qual(caller.f_code):
        return
    key = (os.path.realpath(cfile), qual(caller.f_code), os.path.realpath(code.co_filename), qual(code))
    if kind is None:
        src_cls = qual(caller.f_code).rpartition(".")[0]
        dst_cls = qual(code).rpartition(".")[0]
        self_obj = caller.f_locals.get("self")
        callee_self = frame.f_locals.get("self") if code.co_argcount else None
        if dst_cls and self_obj is not None and callee_self is self_obj:
            kind = "same-class method"
        elif dst_cls and code.co_varnames[:1] in (("self",), ("cls",)):
            kind = "call on another object"
        else:
            kind = "plain function"
    edges.setdefault(key, kind)

sys.setprofile(profile)
import threading
threading.setprofile(profile)
try:
    code = pytest.main(sys.argv[3:] + ["-q", "-p", "no:cacheprovider", "-o", "filterwarnings="])
finally:
    sys.setprofile(None)
    json.dump({"edges": [[*k, v] for k, v in edges.items()],
               "lines": [[f, n, sorted(c)] for (f, n), c in lines.items()]}, open(OUT, "w"))
'''


def module_of(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def oracle(spec: str, scratch: Path, python: str) -> dict[str, Any]:
    """Download the sdist, run its tests under the tracer, index the package, compare."""
    work = scratch / "oracle"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    subprocess.run([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec,
                    "-d", str(work)], check=True, capture_output=True)
    (archive,) = [p for p in work.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    shutil.unpack_archive(archive, work)
    (src_root,) = [p for p in work.iterdir() if p.is_dir()]
    name = spec.split("==")[0].replace("-", "_").lower()
    pkg = next((p for p in (src_root / name, src_root / "src" / name) if p.is_dir()), None)
    if pkg is None:
        raise SystemExit(f"cannot find the package directory {name} in {src_root}")
    # Tests beside the package, or inside it (then their calls into the package count too).
    tests = next((p for p in (src_root / "tests", src_root / "test", src_root / "t",
                              pkg / "tests") if p.is_dir()), None)
    if tests is None:
        raise SystemExit(f"{spec}: no tests in its sdist")
    tracer = work / "tracer.py"
    tracer.write_text(TRACER)
    out = work / "edges.json"
    env = {**os.environ, "PYTHONPATH": str(pkg.parent)}
    started = time.perf_counter()
    subprocess.run([python, str(tracer), str(pkg), str(out), str(tests)], cwd=src_root, env=env,
                   capture_output=True, text=True)
    traced_s = time.perf_counter() - started
    traced = json.loads(out.read_text())
    dynamic = traced["edges"]
    # The index: the package directory itself (its modules named from the package down).
    repo = work / "indexed"
    shutil.copytree(pkg, repo / pkg.name)
    rows = index_rows(repo, work / "db")
    call_rows = [row for row in rows if row[0] == "edge" and row[1] == "calls"]
    static = {(row[2], row[4]) for row in call_rows}
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: dict[str, list[str]] = defaultdict(list)
    for caller_file, caller, callee_file, callee, kind in dynamic:
        src = f"{module_of(os.path.relpath(caller_file, pkg.parent))}.{caller}"
        dst = f"{module_of(os.path.relpath(callee_file, pkg.parent))}.{callee}"
        src = src.removesuffix(".<module>") if caller == "<module>" else src
        hit = (src, dst) in static
        by_kind[kind][0] += hit
        by_kind[kind][1] += 1
        if not hit and len(misses[kind]) < 60:
            misses[kind].append(f"{src} -> {dst}")
    total_hit = sum(h for h, _ in by_kind.values())
    total = sum(n for _, n in by_kind.values())
    return {"package": spec, "traced_edges": total, "recall": total_hit / total if total else 0.0,
            "by_kind": {k: {"edges": n, "recall": h / n if n else 0.0}
                        for k, (h, n) in sorted(by_kind.items())},
            "missed_examples": dict(misses), "tests_s": round(traced_s, 1),
            "precision": precision(rows, call_rows, traced["lines"], pkg.parent)}


def precision(rows: list[Any], call_rows: list[Any], lines: list[Any], parent: Path
              ) -> dict[str, Any]:
    """Of the call edges codegraph gives from a line the tests executed, to a function or method
    of the package, the fraction whose target the tests really called from that line, by call
    kind. Edges to a class itself (a constructor's first edge) are left out: calling a class
    runs no code of its own. A lower bound: a line that ran partly (`a() or b()`, an exception
    raised before the call) counts its uncalled edges as wrong, and so does a call the tests
    made only with other receivers."""
    # A nested function's qualified name has "<locals>" at run time, not in codegraph.
    called = {(f, n): {(cf, cq.replace(".<locals>", "")) for cf, cq in callees}
              for f, n, callees in lines}
    functions = {row[1] for row in rows if row[0] == "symbol" and row[2] in ("function", "method")}
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    wrong: dict[str, list[str]] = defaultdict(list)
    for _, _, src, src_path, dst, dst_path, line, kind in call_rows:
        if dst not in functions:
            continue
        there = called.get((os.path.realpath(parent / src_path), line))
        if there is None:
            continue  # the line never ran
        module = module_of(dst_path)
        target = (os.path.realpath(parent / dst_path), dst[len(module) + 1:])
        hit = target in there
        by_kind[kind][0] += hit
        by_kind[kind][1] += 1
        if not hit and len(wrong[kind]) < 40:
            wrong[kind].append(f"{src}:{line} -> {dst}")
    hits = sum(h for h, _ in by_kind.values())
    total = sum(n for _, n in by_kind.values())
    return {"edges": total, "precision": hits / total if total else 1.0,
            "by_kind": {k: {"edges": n, "precision": h / n if n else 1.0}
                        for k, (h, n) in sorted(by_kind.items())},
            "wrong_examples": dict(wrong)}


# ----- cost --------------------------------------------------------------------------------

BUILD = r'''
import sys, time, shutil, resource
def main():
    import codegraph
    from codegraph.pipeline import IndexOptions
    from codegraph.stages import IndexConfig
    repo, db = sys.argv[1:3]
    shutil.rmtree(db, ignore_errors=True)
    cpu = time.process_time()
    t = time.perf_counter()
    r = codegraph.index(repo, db, options=IndexOptions(IndexConfig(vectors=False)), full=True)
    l1 = next(s for s in r["stages"] if s["name"] == "L1_ir")
    print(f"{time.perf_counter() - t} {r['edges']} {r['unresolved_calls']} {l1['duration_ms']}")
if __name__ == "__main__":
    main()
'''


def cost(scratch: Path, base: str, python: str, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_incremental

    repo = scratch / "stdlib"
    if not repo.exists():
        bench_incremental.make_repo(repo)
    old_src = scratch / "base-src"
    if not old_src.exists():
        old_src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", base, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
    script = scratch / "build.py"
    script.write_text(BUILD)
    runs: dict[str, list[list[float]]] = {"base": [], "this": []}
    for _ in range(rounds):
        for label, src in (("base", old_src / "src"), ("this", ROOT / "src")):
            env = {**os.environ, "PYTHONPATH": str(src)}
            proc = subprocess.run([python, str(script), str(repo), str(scratch / f"db-{label}")],
                                  env=env, capture_output=True, text=True, check=True)
            runs[label].append([float(x) for x in proc.stdout.split()])
    def median(label: str, i: int) -> float:
        values = sorted(r[i] for r in runs[label])
        return values[len(values) // 2]
    out = {label: {"full_build_s": median(label, 0), "l1_s": median(label, 3) / 1000,
                   "call_edges_and_others": int(median(label, 1)),
                   "unresolved_calls": int(median(label, 2))} for label in runs}
    out["ratio"] = out["this"]["full_build_s"] / out["base"]["full_build_s"]
    out["l1_ratio"] = out["this"]["l1_s"] / out["base"]["l1_s"]
    out["runs"] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro", action="store_true")
    parser.add_argument("--oracle", action="append", default=[], metavar="PKG==VERSION")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--base", default="5cac3fa")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scratch", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.micro or args.oracle or args.cost):
        args.micro = True
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="bench-callgraph-"))
    scratch.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    if args.micro:
        report["micro"] = print_micro(micro(scratch))
    for spec in args.oracle:
        result = oracle(spec, scratch, sys.executable)
        report.setdefault("oracle", []).append(result)
        print(f"\ndynamic oracle {spec}: {result['traced_edges']} traced edges, recall "
              f"{result['recall']:.3f} (tests ran {result['tests_s']} s under the tracer)")
        for kind, r in result["by_kind"].items():
            print(f"  {kind:<24} {r['recall']:.3f} of {r['edges']}")
        for kind, examples in result["missed_examples"].items():
            print(f"  missed ({kind}): " + "; ".join(examples[:4]))
        prec = result["precision"]
        print(f"  precision of the {prec['edges']} edges from executed lines to package functions:"
              f" {prec['precision']:.3f}")
        for kind, r in prec["by_kind"].items():
            print(f"    {kind:<22} {r['precision']:.3f} of {r['edges']}")
        for kind, examples in prec["wrong_examples"].items():
            print(f"  not called ({kind}): " + "; ".join(examples[:4]))
    if args.cost:
        result = cost(scratch, args.base, sys.executable, args.rounds)
        report["cost"] = result
        print(f"\nstdlib full build (medians of {args.rounds}): base {args.base} "
              f"{result['base']['full_build_s']:.1f} s, this {result['this']['full_build_s']:.1f} s:"
              f" {result['ratio']:.2f}x (L1 {result['l1_ratio']:.2f}x); unresolved calls "
              f"{result['base']['unresolved_calls']} -> {result['this']['unresolved_calls']}")
    if args.json:
        print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
