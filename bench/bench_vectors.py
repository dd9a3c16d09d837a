"""L4's throughput against the model's own, on the same chunk texts, side by side in one run.

    .venv/bin/python bench/bench_vectors.py [--packages json,http,urllib,email]
"""

from __future__ import annotations

import argparse
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path

import codegraph
from codegraph import embed
from codegraph.pipeline import IndexOptions
from codegraph.stages import L2, IndexConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", default="json,http,urllib")
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for package in args.packages.split(","):
            shutil.copytree(stdlib / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
        db = str(Path(tmp) / "db")
        codegraph.index(str(src), db, options=IndexOptions(IndexConfig(vectors=False)))
        idx = codegraph.open(db)
        texts = [t for _, t in idx.store.texts_without_embedding(
            idx.snapshot.id, idx.snapshot.stage_keys[L2], "none")]

        t0 = time.perf_counter()
        embed.model()
        load = time.perf_counter() - t0

        t0 = time.perf_counter()
        embed.model().encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        direct = time.perf_counter() - t0

        result = codegraph.index(str(src), db)  # L2 outputs are reused; L4 embeds every text
        l4 = next(s for s in result["stages"] if s["name"] == "L4_vector")
        pipeline = l4["duration_ms"] / 1000
        assert l4["embedded"] == len(texts), (l4["embedded"], len(texts))

    print(f"texts: {len(texts)} distinct chunk texts; model load {load:.1f} s (once per process)")
    print(f"model.encode directly : {direct:7.2f} s  {len(texts) / direct:6.1f} chunks/s")
    print(f"L4 stage (pipeline)   : {pipeline:7.2f} s  {len(texts) / pipeline:6.1f} chunks/s")
    print(f"pipeline overhead     : {100 * (pipeline / direct - 1):+.1f}%")


if __name__ == "__main__":
    main()
