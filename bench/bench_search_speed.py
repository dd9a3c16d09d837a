"""Search speed from a long-running process (issue 12, point 6), measured side by side in one run.

Prints:
- vector queries/s through `codegraph.open(...)` on a 100,000-unit index (and a 10,000-unit one,
  for how the cost grows), exact and through the ANN graph, excluding the query's embedding:
  the query vectors are given (`Index.vector(..., query_vector=)`). The indexes are real stores
  built by the real pipeline from a generated repository (one function per chunk); their vectors
  are random unit vectors, a function of each text (the model is never loaded). Also: the cost
  of the first query (load + verify [+ graph build]) and of following a new snapshot that
  changed a few files (the incremental sync) next to a full reload.
- lexical queries/s on the standard library's index, through the same API.
- the wall time of `codegraph search --mode lexical` (a new process each time, start-up
  included) on a ~10,000-unit index (an eighth of the standard library) and on the whole one,
  and whether that process imported torch, sentence-transformers, numpy or psycopg.
- ANN recall@10 against exact search on `--ann-size` (1,000,000) random 384-d unit vectors with
  an embedding-like spectrum (`embedding_like`), for
  several search depths; the graph's build time; an incremental change (100 removed, 100
  added) next to it; peak RSS.

The machine may be shared: every ratio printed is of numbers measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

import codegraph
from codegraph import embed, vector_index
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig

DIM = embed.DIMENSIONS
HEAVY = ("torch", "sentence_transformers", "numpy", "psycopg")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    """The machine's load average (1, 5, 15 minutes): how shared it was while measuring."""
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


SPECTRUM_ALPHA = 0.6  # see embedding_like()


def unit_vectors(n: int, seed: int, alpha: float = 0.0) -> np.ndarray:
    """n random unit vectors. alpha 0: isotropic (uniform on the sphere). alpha > 0: a
    power-law spectrum (see `embedding_like`)."""
    rng = np.random.default_rng(seed)
    rotation = _ROTATION.astype(np.float32)
    scale = (np.arange(1, DIM + 1, dtype=np.float32) ** -alpha)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices: float64 temporaries of 1M x 384 are 3 GB
        part = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        if alpha:
            part = (part * scale) @ rotation.T
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start : start + len(part)] = part
    return out


def embedding_like(n: int, seed: int) -> np.ndarray:
    """Random unit vectors whose variance along the i-th principal axis falls as i^-1.2, in a
    random basis. MiniLM vectors of standard-library functions fall as about i^-1.07 over the
    first 100 axes (50 axes hold 83% of the variance; here 78%). Isotropic random vectors
    (uniform on the sphere) are no model of embeddings: their nearest neighbours are hardly
    nearer than any other point, and no ANN index finds them (HNSW: recall@10 0.55 at ef 200
    on 20,000 such vectors, measured)."""
    return unit_vectors(n, seed, SPECTRUM_ALPHA)


_ROTATION = np.linalg.qr(np.random.default_rng(99).standard_normal((DIM, DIM)))[0]


def fake_embed(texts: list[str], model_name: str = "", batch_size: int = 32) -> np.ndarray:
    """An embedding-like random unit vector per text (see `embedding_like`), a function of the
    text alone (no model)."""
    scale = np.arange(1, DIM + 1) ** -SPECTRUM_ALPHA
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        g = np.random.default_rng(xxhash.xxh3_64_intdigest(text.encode())).standard_normal(DIM)
        v = (g * scale) @ _ROTATION.T
        out[i] = v / np.linalg.norm(v)
    return out


# ----- ANN recall on synthetic vectors ------------------------------------------------------------


def ann_section(n: int, n_queries: int) -> None:
    large = n >= vector_index.LARGE_GRAPH
    m = vector_index.LARGE_CONNECTIVITY if large else vector_index.CONNECTIVITY
    ef_add = vector_index.LARGE_EXPANSION_ADD if large else vector_index.EXPANSION_ADD
    dtype = vector_index.LARGE_DTYPE if large else vector_index.DTYPE
    print(f"\n== ANN (usearch HNSW, M={m}, ef_add={ef_add}, {dtype})"
          f" on {n:,} embedding-like random {DIM}-d unit vectors, {n_queries} queries ==")
    rss0 = peak_rss_mb()
    x = embedding_like(n, 1)
    q = embedding_like(n_queries, 2)
    hashes = [f"{i:032x}" for i in range(n)]
    t = time.perf_counter()
    exact_top = []
    for qv in q:  # exact top-10 by the same float64 rescoring the index uses
        scores = x @ qv
        top = np.argpartition(-scores, 40)[:40]
        exact64 = x[top].astype(np.float64) @ qv.astype(np.float64)
        exact_top.append({hashes[i] for i in top[np.argsort(-exact64, kind="stable")][:10]})
    exact_s = (time.perf_counter() - t) / n_queries
    index = vector_index.VectorIndex(DIM, ann_threshold=0)
    index.add(hashes, x)
    del x
    t = time.perf_counter()
    index.update_ann()
    build = time.perf_counter() - t
    print(f"graph build: {build:.1f} s ({n / build:,.0f} vectors/s); peak RSS {peak_rss_mb():,.0f} MB "
          f"(vectors alone {n * DIM * 4 / 2**20:,.0f} MB, held twice: matrix + graph; "
          f"{peak_rss_mb() - rss0:,.0f} MB over the start)")
    print(f"exact scan: {1 / exact_s:,.1f} queries/s")
    print(f"{'ef':>6} {'recall@10':>10} {'queries/s':>10} {'x exact':>8}")
    for ef in (64, 128, 200, 256, 400, 800, 1600):
        index.expansion_search = ef
        t = time.perf_counter()
        found = [{h for h, _ in index.search(qv, 10)} for qv in q]
        per = (time.perf_counter() - t) / n_queries
        recall = statistics.mean(len(f & e) / 10 for f, e in zip(found, exact_top, strict=True))
        mark = "  <- default" if ef == vector_index.search_depth(n) else ""
        print(f"{ef:>6} {recall:>10.4f} {1 / per:>10,.0f} {exact_s / per:>8.1f}{mark}")
    index.expansion_search = None
    # An incremental change: 100 texts gone, 100 new ones, against the build above.
    gone = random.Random(3).sample(hashes, 100)
    t = time.perf_counter()
    index.remove(gone)
    index.add([f"new{i:029x}" for i in range(100)], embedding_like(100, 4))
    state = index.update_ann()
    change = time.perf_counter() - t
    print(f"incremental change (100 removed, 100 added): {change * 1000:.0f} ms ({state}), "
          f"{build / change:,.0f}x cheaper than the build")


def dtype_section(n: int, n_queries: int, dtypes: list[str]) -> None:
    """The graph's own copy of the vectors in each of `dtypes` (usearch's f32, f16, i8 ...), the
    index's M and ef_add: build time, then recall@10 (candidates rescored in float64 from the
    float32 vectors, as `VectorIndex` does) and search time per ef, the graphs timed in turns
    (3 rounds, the best of each), as a ratio to the first dtype."""
    from usearch.index import Index as Hnsw

    print(f"\n== ANN graph dtypes on {n:,} embedding-like vectors, {n_queries} queries, M "
          f"{vector_index.CONNECTIVITY}, ef_add {vector_index.EXPANSION_ADD} ({load()}) ==")
    x = embedding_like(n, 1)
    q = embedding_like(n_queries, 2)
    truth = []
    for qv in q:
        top = np.argpartition(-(x @ qv), 40)[:40]
        truth.append(set(top[np.argsort(-(x[top].astype(np.float64) @ qv.astype(np.float64)))][:10].tolist()))
    graphs = {}
    for dtype in dtypes:
        graph = Hnsw(ndim=DIM, metric="ip", dtype=dtype, connectivity=vector_index.CONNECTIVITY,
                     expansion_add=vector_index.EXPANSION_ADD)
        t = time.perf_counter()
        graph.add(np.arange(n, dtype=np.uint64), x, threads=0)
        print(f"{dtype}: build {time.perf_counter() - t:.1f} s")
        graphs[dtype] = graph
    for ef in (128, 256, 400):
        best: dict[str, float] = {}
        recall: dict[str, float] = {}
        for _ in range(3):
            for dtype, graph in graphs.items():
                graph.expansion_search = ef
                t = time.perf_counter()
                found = []
                for qv in q:
                    keys = np.asarray(graph.search(qv, 80).keys, dtype=np.int64)
                    exact = x[keys].astype(np.float64) @ qv.astype(np.float64)
                    found.append(set(keys[np.argsort(-exact)][:10].tolist()))
                per = (time.perf_counter() - t) / n_queries
                best[dtype] = min(best.get(dtype, per), per)
                recall[dtype] = statistics.mean(len(f & e) / 10 for f, e in zip(found, truth, strict=True))
        first = best[dtypes[0]]
        print(f"ef {ef:>4}: " + "; ".join(
            f"{d} recall@10 {recall[d]:.4f}, {1 / best[d]:,.0f} queries/s ({best[d] / first:.2f}x the time "
            f"of {dtypes[0]})" for d in dtypes))
    print(f"({load()})")


# ----- vector queries through the API on real stores ---------------------------------------------


def synthetic_repo(root: Path, units: int, per_file: int = 100) -> None:
    for f in range(-(-units // per_file)):
        body = "".join(f"def f_{f}_{j}(x):\n    return x * {f * per_file + j} + 1\n\n\n"
                       for j in range(min(per_file, units - f * per_file)))
        path = root / f"pkg{f // 100}" / f"m{f}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


ONE_CHUNK_PER_FUNCTION = IndexConfig(max_chunk_chars=60, min_chunk_chars=1)  # type: ignore[arg-type]


def build_vector_store(tmp: Path, units: int) -> tuple[Path, str, int]:
    """The store of a generated repository of `units` functions (kept in `tmp` when that is
    --cache: a later run indexes it again, which changes nothing)."""
    repo = tmp / f"repo{units}"
    if not repo.exists():
        synthetic_repo(repo, units)
    db = str(tmp / f"db{units}")
    t = time.perf_counter()
    result = codegraph.index(str(repo), db, options=IndexOptions(ONE_CHUNK_PER_FUNCTION))
    assert result["state"] == "completed", result.get("error")
    print(f"indexed {units:,} units ({result['chunks']:,} chunks, {result['vectors']:,} vectors) "
          f"in {time.perf_counter() - t:.0f} s")
    return repo, db, int(result["vectors"])


EF_SWEEP = (64, 100, 128, 160, 200, 256, 400)


def ef_sweep(idx: Any, exact: Any, queries: list[Any]) -> list[tuple[int, float, float]]:
    """(ef_search, top-10 units equal to the exact scan's, queries/s) through the API, each ef
    forced on the held graph; the index's own choice is restored after."""
    held = idx.vector_index()
    chosen = held.expansion_search  # None: by size
    truth = [{(h.path, h.start_line) for h in exact.vector("", 10, query_vector=qv)} for qv in queries]
    out = []
    try:
        for ef in EF_SWEEP:
            held.expansion_search = ef
            same = statistics.mean(len({(h.path, h.start_line) for h in idx.vector("", 10, query_vector=qv)}
                                       & t) / 10 for qv, t in zip(queries, truth, strict=True))
            out.append((ef, same, rate(lambda qv: idx.vector("", 10, query_vector=qv), queries, 1.0)))
    finally:
        held.expansion_search = chosen
    return out


def graph_variants(idx: Any, exact: Any, queries: list[Any], variants: list[str],
                   efs: tuple[int, ...] = (128, 200, 256, 400)) -> list[str]:
    """Other HNSW graphs over the held vectors ("M:ef_add:dtype", e.g. "16:64:f16"), each built
    here and swapped into the held index, the index's own graph among them: per ef, top-10 units
    equal to the exact scan's and queries/s through the API, the graphs timed in turns (two
    rounds, the better of each), so their ratios are of one machine state."""
    from usearch.index import Index as Hnsw

    held = idx.vector_index()
    own, chosen = held._ann, held.expansion_search
    rows = np.flatnonzero(held._live[: len(held._hashes)])
    graphs: dict[str, Any] = {"default": own}
    lines = []
    for v in variants:
        m, ef_add, dtype = v.split(":")
        graph = Hnsw(ndim=held.dimensions, metric="ip", dtype=dtype, connectivity=int(m),
                     expansion_add=int(ef_add))
        t = time.perf_counter()
        graph.add(rows.astype(np.uint64), held._matrix[rows], threads=0)
        lines.append(f"graph {v}: built in {time.perf_counter() - t:.1f} s ({load()})")
        graphs[v] = graph
    truth = [{(h.path, h.start_line) for h in exact.vector("", 10, query_vector=qv)} for qv in queries]
    try:
        for ef in efs:
            same: dict[str, float] = {}
            qps: dict[str, float] = {}
            for turn in range(2):
                for label, graph in graphs.items():
                    held._ann, held.expansion_search = graph, ef
                    if not turn:
                        same[label] = statistics.mean(
                            len({(h.path, h.start_line) for h in idx.vector("", 10, query_vector=qv)} & want)
                            / 10 for qv, want in zip(queries, truth, strict=True))
                    qps[label] = max(qps.get(label, 0.0),
                                     rate(lambda qv: idx.vector("", 10, query_vector=qv), queries, 1.0))
            lines.append(f"ef {ef:>4}: " + "; ".join(f"{label} {same[label]:.3f} / {qps[label]:,.0f} q/s"
                                                    for label in graphs) + f" ({load()})")
    finally:
        held._ann, held.expansion_search = own, chosen
    return lines


def rate(fn: Any, queries: list[Any], min_seconds: float = 2.0) -> float:
    done, t = 0, time.perf_counter()
    while True:
        for qv in queries:
            fn(qv)
        done += len(queries)
        elapsed = time.perf_counter() - t
        if elapsed >= min_seconds:
            return done / elapsed


def vector_section(tmp: Path, sizes: list[int], variants: list[str]) -> None:
    print("\n== vector search through codegraph.open(): queries/s, query embedding excluded ==")
    embed.embed = fake_embed  # type: ignore[assignment]
    queries = list(embedding_like(100, 5))
    rows = []
    for units in sizes:
        repo, db, n = build_vector_store(tmp, units)
        print(f"  ({load()})")
        row: dict[str, Any] = {"units": units, "vectors": n}
        for label, threshold in (("exact", None), ("ann", 0)):
            idx = codegraph.open(db)
            idx.ann_threshold = threshold
            t = time.perf_counter()
            idx.vector("", 10, query_vector=queries[0])
            row[f"{label}_first_s"] = time.perf_counter() - t
            row[label] = rate(lambda qv, idx=idx: idx.vector("", 10, query_vector=qv), queries)
            if label == "ann":
                exact = codegraph.open(db)
                exact.ann_threshold = None
                same = statistics.mean(
                    len({(h.path, h.start_line) for h in idx.vector("", 10, query_vector=qv)}
                        & {(h.path, h.start_line) for h in exact.vector("", 10, query_vector=qv)}) / 10
                    for qv in queries)
                row["ann_recall"] = same
                row["ef"] = vector_index.search_depth(len(idx.vector_index()))
                row["sweep"] = ef_sweep(idx, exact, queries)
                row["variants"] = graph_variants(idx, exact, queries, variants) if variants else []
                # A new snapshot that changed 10 files: the held index follows it incrementally
                # (every function's constant changed; back again in the next run of a --cache).
                for path in sorted(repo.rglob("*.py"))[:10]:
                    text = path.read_text()
                    path.write_text(text.replace("+ 2\n", "+ 1\n") if "+ 2\n" in text
                                    else text.replace("+ 1\n", "+ 2\n"))
                codegraph.index(str(repo), db, options=IndexOptions(ONE_CHUNK_PER_FUNCTION))
                t = time.perf_counter()
                idx.refresh()
                idx.vector("", 10, query_vector=queries[0])
                row["sync_s"] = time.perf_counter() - t
                row["sync"] = idx.vector_index().stats
        rows.append(row)
    print(f"{'units':>8} {'exact q/s':>10} {'ANN q/s':>9} {'ANN/exact':>9} {'ANN = exact@10':>14}"
          f" {'1st exact s':>11} {'1st ANN s':>10} {'sync after 10 files s':>21}")
    for r in rows:
        print(f"{r['units']:>8,} {r['exact']:>10,.0f} {r['ann']:>9,.0f} {r['ann'] / r['exact']:>9.1f} "
              f"{r['ann_recall']:>14.3f} {r['exact_first_s']:>11.2f} {r['ann_first_s']:>10.2f} "
              f"{r['sync_s']:>21.3f}")
        s = r["sync"]
        print(f"         sync: {s.loaded} vectors read and verified, {s.removed} removed, graph {s.ann}"
              f" (full load: {r['vectors']:,} vectors)")
        print(f"         ANN search depth: ef {r['ef']} chosen for {r['vectors']:,} vectors; forced:")
        for ef, same, qps in r["sweep"]:
            mark = "  <- chosen" if ef == r["ef"] else ""
            print(f"           ef {ef:>4}: ANN = exact@10 {same:.3f}, {qps:,.0f} queries/s{mark}")
        if r["variants"]:
            g = vector_index
            print(f"         graphs side by side (default: M {g.CONNECTIVITY}, ef_add {g.EXPANSION_ADD}, "
                  f"{g.DTYPE}; ANN = exact@10 / queries/s):")
            for line in r["variants"]:
                print(f"           {line}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"growth {b['units'] / a['units']:.0f}x the units: exact query cost "
              f"{a['exact'] / b['exact']:.1f}x, ANN query cost {a['ann'] / b['ann']:.1f}x")
    print(f"default: exact up to {vector_index.ANN_THRESHOLD:,} vectors, ANN above ({load()})")


# ----- lexical ---------------------------------------------------------------------------------


def stdlib_copy(dest: Path, fraction: float) -> int:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py")
                   if "site-packages" not in p.parts and "__pycache__" not in p.parts)
    chosen = files if fraction >= 1 else files[:: max(1, round(1 / fraction))]
    for f in chosen:
        target = dest / f.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
    return len(chosen)


def lexical_db(tmp: Path, fraction: float, given: str | None) -> str:
    if given:
        return given
    src, db = tmp / f"std{fraction}", str(tmp / f"stddb{fraction}")
    n = stdlib_copy(src, fraction)
    result = codegraph.index(str(src), db, options=IndexOptions(IndexConfig(vectors=False)))
    assert result["state"] == "completed", result.get("error")
    print(f"indexed {fraction:.0%} of the stdlib: {n} files, {result['chunks']:,} chunks")
    return db


def docstring_queries(n: int) -> list[str]:
    """First lines of stdlib docstrings: the kind of query an agent asks."""
    import ast

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split("\n")[0]) > 20:
                    out.append(doc.split("\n")[0])
    return random.Random(0).sample(out, min(n, len(out)))


def lexical_section(db: str) -> None:
    print("\n== lexical search through codegraph.open() on the stdlib index ==")
    from codegraph.query import open_index

    queries = docstring_queries(200)
    idx = codegraph.open(db)  # holds the documents (codegraph.lexical_index)
    rss = peak_rss_mb()
    t = time.perf_counter()
    idx.search(queries[0], "lexical")
    first = time.perf_counter() - t
    # Each query once: its terms' document counts are read from the store (SQLite keeps them
    # while the full-text index is unchanged), then all of them again and again.
    t = time.perf_counter()
    for q in queries[1:]:
        idx.search(q, "lexical")
    once = (len(queries) - 1) / (time.perf_counter() - t)
    held = rate(lambda q: idx.search(q, "lexical"), queries, 5.0)
    sync = idx._lexical.last_sync if idx._lexical is not None else None
    print(f"held documents: {held:,.1f} lexical queries/s ({len(queries)} docstring first lines, "
          f"limit 10, asked again; {once:,.1f}/s the first time each); first query {first:.2f} s "
          f"(loads {sync.units if sync else 0:,} units, verified and tokenized); "
          f"peak RSS +{peak_rss_mb() - rss:,.0f} MB")
    # The same queries asked of the store itself (FTS5's MATCH per query, as the CLI does).
    plain = open_index(db, hold_lexical=False)
    few = queries[:10]
    t = time.perf_counter()
    answers = [plain.search(q, "lexical") for q in few]
    store = len(few) / (time.perf_counter() - t)
    same = sum(a == idx.search(q, "lexical") for q, a in zip(few, answers, strict=True))
    print(f"store per query: {store:,.2f} lexical queries/s on the first {len(few)}; held / store "
          f"{held / store:,.0f}x; identical answers {same}/{len(few)} ({load()})")


def units(db: str) -> int:
    """The retrievable units (lexical documents) a SQLite store holds."""
    import sqlite3

    with sqlite3.connect(f"file:{Path(db) / 'index.sqlite'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM lexical_units").fetchone()[0])


def cli_section(dbs: dict[str, str]) -> None:
    print("\n== `codegraph search --mode lexical` wall time, a new process each (start-up included) ==")
    # As installed: bytecode cached. (PYTHONDONTWRITEBYTECODE set to anything, even "0", stops
    # Python writing it: every run then compiled whatever source had changed.) One warm-up run
    # writes it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "codegraph.cli", "search", "warm up", "--mode", "lexical", "--db",
                    next(iter(dbs.values())), "--json"], capture_output=True, env=env, check=True)
    for label, db in dbs.items():
        times, cpu = [], []
        for q in ("parse http header", "open a file for reading", "thread pool executor", "socket timeout",
                  "format a date"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "codegraph.cli", "search", q, "--mode", "lexical",
                                   "--db", db, "--json"], capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            assert proc.returncode == 0, proc.stderr
            json.loads(proc.stdout)
        # CPU time is what the process itself costs; wall time includes waiting for a core.
        print(f"{label}: wall median {statistics.median(times):.2f} s (min {min(times):.2f}, "
              f"max {max(times):.2f}); CPU (user+sys) median {statistics.median(cpu):.2f} s")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "codegraph.cli", "search", "parse",
                           "--mode", "lexical", "--db", next(iter(dbs.values()))],
                          capture_output=True, text=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    print("imported by a lexical CLI search: " + ", ".join(f"{m} {'YES' if m in imported else 'no'}"
                                                         for m in HEAVY))
    py = subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    t = time.perf_counter()
    py = subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    print(f"(a bare `python -c pass` takes {time.perf_counter() - t:.2f} s here now; {load()})")
    del py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann-size", type=int, default=1_000_000)
    parser.add_argument("--ann-connectivity", type=int, default=0,
                        help="HNSW M for the ANN section (default: the index's, by its size)")
    parser.add_argument("--ann-expansion-add", type=int, default=0)
    parser.add_argument("--ann-queries", type=int, default=200)
    parser.add_argument("--ann-dtypes", default="",
                        help="also compare the graph's vector types on --ann-size vectors, e.g. f32,f16,i8")
    parser.add_argument("--vector-sizes", default="10000,100000")
    parser.add_argument("--graph-variants", default="",
                        help="also compare other HNSW graphs through the API, side by side with the "
                             "default one, e.g. 16:64:f16,24:96:i8 (M:ef_add:dtype)")
    parser.add_argument("--stdlib-db", help="an existing index of the whole stdlib (else built here)")
    parser.add_argument("--small-db", help="an existing index of an eighth of the stdlib (else built here)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: ann,vector,lexical,cli")
    parser.add_argument("--cache", help="keep the generated vector stores in this directory for later runs")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"start: {load()} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        vector_tmp = Path(args.cache) if args.cache else tmp
        vector_tmp.mkdir(parents=True, exist_ok=True)
        if "lexical" not in skip or "cli" not in skip:
            full = lexical_db(tmp, 1.0, args.stdlib_db)
            if "lexical" not in skip:
                lexical_section(full)
            if "cli" not in skip:
                small = lexical_db(tmp, 0.125, args.small_db)
                cli_section({f"an eighth of the stdlib ({units(small):,} units)": small,
                             f"whole stdlib ({units(full):,} units)": full})
        if "vector" not in skip:
            vector_section(vector_tmp, [int(s) for s in args.vector_sizes.split(",")],
                           [v for v in args.graph_variants.split(",") if v])
        if "ann" not in skip:
            if args.ann_connectivity or args.ann_expansion_add:  # one graph, these parameters
                vector_index.LARGE_GRAPH = 1 << 62
                vector_index.CONNECTIVITY = args.ann_connectivity or vector_index.CONNECTIVITY
                vector_index.EXPANSION_ADD = args.ann_expansion_add or vector_index.EXPANSION_ADD
            ann_section(args.ann_size, args.ann_queries)
        if args.ann_dtypes:
            dtype_section(args.ann_size, args.ann_queries, args.ann_dtypes.split(","))
    print(f"\npeak RSS of this process: {peak_rss_mb():,.0f} MB; end: {load()}")


if __name__ == "__main__":
    main()
