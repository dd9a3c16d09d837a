"""L4's embedding paths side by side in one run, on the same real chunk texts.

    .venv/bin/python bench/bench_vectors.py [--packages json,http,urllib] [--units 10000]
        [--quantisations fp32,int8,int8-ffn-in,int8-qkv-ffn-in]

Prints texts/s of: the torch path (sentence-transformers `model.encode`, batches of 32), the
ONNX model called directly (onnxruntime, each of `--quantisations`, each text alone, in the
pipeline's lanes), the pipeline's L4 stage (the default producer, a fresh store); the cosine of
each fast path's vectors to torch's (min and mean); the time to load each; and the wall time of
a CLI `search --mode vector` on an index of `--units` vectors. The paths are measured in rounds
that alternate between them (a slice of texts each), so a busy machine slows them alike and
the ratios stay comparable; absolute rates are only this run's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

import codegraph
from codegraph import embed
from codegraph.pipeline import IndexOptions
from codegraph.stages import L2, IndexConfig

TORCH = f"{embed.MODEL_NAME}:torch"


def chunk_texts(src: Path, db: str) -> list[str]:
    codegraph.index(str(src), db, options=IndexOptions(IndexConfig(vectors=False)))
    idx = codegraph.open(db)
    return [t for _, t in idx.store.texts_without_embedding(idx.snapshot.id, idx.snapshot.stage_keys[L2],
                                                            "none")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", default="json,http,urllib")
    parser.add_argument("--units", type=int, default=10_000, help="vectors in the search index")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--quantisations", default=",".join(embed.QUANTISATIONS),
                        help="the onnx models to call directly, beside torch")
    args = parser.parse_args()
    quantisations = args.quantisations.split(",")
    unknown = [q for q in quantisations if q not in embed.QUANTISATIONS]
    if unknown:
        parser.error(f"unknown quantisation {unknown[0]!r}: use {', '.join(embed.QUANTISATIONS)}")
    onnx_specs = {q: f"{embed.MODEL_NAME}:onnx-{q}" for q in quantisations}
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for package in args.packages.split(","):
            shutil.copytree(stdlib / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
        texts = chunk_texts(src, str(Path(tmp) / "texts"))
        print(f"texts: {len(texts)} distinct chunk texts of {args.packages}; {os.cpu_count()} cores, "
              f"onnxruntime threads {embed.embed_threads()}, load average {os.getloadavg()[0]:.1f}")

        loads: dict[str, float] = {}
        for spec in (TORCH, *onnx_specs.values()):
            embed.onnx_model(embed.parse(spec)) if spec != TORCH else None  # exported beforehand
            t0 = time.perf_counter()
            embed.embedder(spec)
            loads[spec] = time.perf_counter() - t0
        st = embed.model()

        # Rounds: each path embeds the same slice in turn (rotating who goes first).
        paths = {"torch model.encode": lambda b: st.encode(b, batch_size=32, normalize_embeddings=True,
                                                            show_progress_bar=False)}
        for q, spec in onnx_specs.items():
            paths[f"onnx {q} direct"] = lambda b, spec=spec: embed.embedder(spec).embed(b)
        seconds = dict.fromkeys(paths, 0.0)
        vectors: dict[str, list[np.ndarray]] = {name: [] for name in paths}
        order = sorted(range(len(texts)), key=lambda i: (i * 7919) % len(texts))  # mixed lengths
        slices = [order[k::args.rounds] for k in range(args.rounds)]
        names = list(paths)
        for r, indices in enumerate(slices):
            batch = [texts[i] for i in indices]
            for name in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                vectors[name].append(np.asarray(paths[name](batch), dtype=np.float32))
                seconds[name] += time.perf_counter() - t0
        ref = np.vstack(vectors["torch model.encode"])

        # The pipeline's L4 on the same texts (L2 reused from a copy of the store).
        pipeline: dict[str, float] = {}
        inside: dict[str, float] = {}
        model_embed = embed.embed
        spent = [0.0]

        def timed(texts: list[str], model_name: str | None = None, batch_size: int = 32) -> np.ndarray:
            t0 = time.perf_counter()
            try:
                return model_embed(texts, model_name, batch_size)
            finally:
                spent[0] += time.perf_counter() - t0

        embed.embed = timed  # type: ignore[assignment]  # what L4 spends outside the model
        for label, config in (("L4 stage, default " + IndexConfig().producer().tag, IndexConfig()),):
            db = Path(tmp) / f"db-{len(pipeline)}"
            shutil.copytree(Path(tmp) / "texts", db)
            result = codegraph.index(str(src), str(db), options=IndexOptions(config))
            l4 = next(s for s in result["stages"] if s["name"] == "L4_vector")
            assert l4["embedded"] == len(texts), (l4["embedded"], len(texts))
            pipeline[label] = l4["duration_ms"] / 1000
            inside[label], spent[0] = spent[0], 0.0
        embed.embed = model_embed
        torch_rate = len(texts) / seconds["torch model.encode"]

        print(f"model load: torch {loads[TORCH]:.2f} s, "
              + ", ".join(f"onnx {q} {loads[spec]:.2f} s" for q, spec in onnx_specs.items())
              + " (once per process; the export itself is cached)")
        print(f"{'path':30s} {'seconds':>8s} {'texts/s':>8s} {'vs torch':>8s}  cosine to torch (min / mean)")
        for name in names:
            got = np.vstack(vectors[name])
            cos = (got * ref).sum(axis=1)
            rate = len(texts) / seconds[name]
            print(f"{name:30s} {seconds[name]:8.2f} {rate:8.1f} {rate / torch_rate:7.2f}x  "
                  f"{cos.min():.5f} / {cos.mean():.5f}")
        direct = {f"onnx-{q}": len(texts) / seconds[f"onnx {q} direct"] for q in onnx_specs}
        for label, secs in pipeline.items():
            rate = len(texts) / secs
            own = direct.get(label.rsplit(" ", 1)[1])
            versus = f"{100 * (rate / own - 1):+.1f}% vs direct" if own else "not called directly"
            print(f"{label:30s} {secs:8.2f} {rate:8.1f} {rate / torch_rate:7.2f}x  "
                  f"(ran after the rounds: {versus}; of its time "
                  f"{100 * (1 - inside[label] / secs):.1f}% outside the model)")

        search_wall(Path(tmp), texts, args.units)


def search_wall(tmp: Path, texts: list[str], units: int) -> None:
    """A store of `units` vectors (the real texts' vectors, repeated under distinct files), then
    the wall time of `codegraph search --mode vector` as a user runs it."""
    src = tmp / "many"
    per_file = 10
    # Every function distinct, as in a real repository: a text held by many files makes a hit
    # read every file's chunk row (a thousand copies of one function are not what is measured).
    for n in range(units // per_file):
        body = "\n\n".join(f"def f{i}(x):\n    return x + {n * per_file + i}\n"
                             for i in range(per_file))
        (src / f"p{n // 100}").mkdir(parents=True, exist_ok=True)
        (src / f"p{n // 100}" / f"m{n}.py").write_text(f"# module {n}\n{body}\n")
    db = tmp / "search-db"
    config = IndexConfig(max_chunk_chars=60, min_chunk_chars=10)
    result = codegraph.index(str(src), str(db), options=IndexOptions(config))
    cli = [str(Path(sys.executable).with_name("codegraph")), "search", "add a number to x",
           "--mode", "vector", "--db", str(db), "--json"]
    # As an installed package runs: with its bytecode cached (this machine's environment may
    # set PYTHONDONTWRITEBYTECODE, and compiling codegraph's sources costs a search ~0.2 s).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    subprocess.run(cli, check=True, capture_output=True, env=env)  # writes the bytecode
    walls, cpus = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    probe = ("import sys, time; t0 = time.perf_counter(); import codegraph; from codegraph import embed;"
             "idx = codegraph.open(sys.argv[1]); t1 = time.perf_counter();"
             "embed.embedder(idx.snapshot.stage_keys['L4_vector'].split(':', 1)[1]);"
             "t2 = time.perf_counter();"
             "idx.search('x', mode='vector'); t3 = time.perf_counter();"
             "print(f'{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}',"
             "[m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe, str(db)], check=True, capture_output=True,
                         text=True, env=env).stdout.split(" ", 3)
    print(f"CLI search --mode vector on {result['vectors']} vectors ({result['chunks']} units): "
          f"wall {min(walls):.2f} s best of 5, median {sorted(walls)[2]:.2f} "
          f"({', '.join(f'{w:.2f}' for w in walls)}); CPU {min(cpus):.2f} s best, median "
          f"{sorted(cpus)[2]:.2f}; load average {os.getloadavg()[0]:.1f}")
    print(f"  in one process: import + open {out[0]} s, model load (session + tokenizer, imports "
          f"included) {out[1]} s, first search {out[2]} s; heavy modules imported: {out[3].strip()}")

if __name__ == "__main__":
    main()
