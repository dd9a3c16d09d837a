"""Search quality: docstring -> function retrieval on code nobody here wrote, codegraph's three
modes against two baselines on the same queries in the same run.

    .venv/bin/python bench/bench_search.py [--cache DIR] [--tune] [--corpora stdlib,attrs,click]
        [--runtime auto|onnx|torch] [--quantize Q] [--against RUNTIME[:Q]] [--no-query-adapter]
        [--query-words N]

Corpora: part of the standard library (the packages in STDLIB_PACKAGES) and two PyPI packages
fetched as source (`pip download --no-deps --no-binary :all:`): attrs (tuning) and click (held
out: tuned on nothing). Every docstring is removed from the indexed copy; the first paragraph of
each removed function/method docstring is a query, whose answer is that function. Dunders, and
functions whose body without the docstring is trivial (one `pass`, `...`, `raise`, a bare
`return`), are left out. A hit is right when it is in the function's file and mostly covers it:
its lines overlap at least half of the function's and the function is at least half the hit's
lines (a class or module hit that merely contains the method is wrong).

Baselines, over whole function, method and class texts of the stripped code: BM25 (bm25s, its
defaults: Lucene BM25, k1=1.5, b=0.75) over identifiers whole and split plus words, and MiniLM
(the same model through codegraph.embed) over each definition's text. Baseline vectors are cached
on disk by text hash (`--cache`), and the codegraph stores are kept there too: a re-run with
nothing changed embeds nothing.

codegraph's queries are mapped by its query adapter (`embed.query_adapter`, trained by
`bench/train_query_adapter.py` on code in none of these corpora); each corpus also prints its
vector and hybrid MRR@10 without it, and `--no-query-adapter` prints the whole table without it.
The MiniLM baseline's queries are always the plain model's.

`--tune` also prints the hybrid's MRR@10 for a range of lexical weights (`query.fuse`), and the
lexical mode's for a range of head weights and without stop words, on the tuning corpora.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import math
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import codegraph
from codegraph import embed, lexical, query
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from codegraph.store import bm25

STDLIB_PACKAGES = ("json", "http", "logging", "urllib", "concurrent", "csv.py", "textwrap.py",
                   "shutil.py", "argparse.py", "configparser.py", "difflib.py", "pathlib.py",
                   "string.py", "calendar.py", "fractions.py")
PACKAGES = {"attrs": ("attrs==23.2.0", "src"), "click": ("click==8.1.7", "src")}
TUNING = ("stdlib", "attrs")
K = 10


@dataclass(frozen=True)
class Target:
    path: str  # relative to the corpus root
    qualname: str
    start: int  # 1-based, inclusive, decorators included
    end: int
    query: str


@dataclass(frozen=True)
class Definition:
    path: str
    qualname: str
    start: int
    end: int
    text: str


# ----- corpora ----------------------------------------------------------------------------


def fetch(cache: Path, name: str) -> Path:
    """The package's source tree (downloaded once into the cache)."""
    spec, sub = PACKAGES[name]
    root = cache / "src" / name
    if root.exists():
        return root / sub
    (cache / "dl").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    spec, "-d", str(cache / "dl")], check=True)
    tarball = next((cache / "dl").glob(spec.replace("==", "-") + ".tar.gz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(cache / "src" / "tmp", filter="data")
    (cache / "src" / "tmp" / tarball.name.removesuffix(".tar.gz")).rename(root)
    shutil.rmtree(cache / "src" / "tmp", ignore_errors=True)
    return root / sub


def sources(name: str, cache: Path) -> dict[str, str]:
    """path -> text of the corpus's Python files."""
    if name == "stdlib":
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        files = []
        for entry in STDLIB_PACKAGES:
            p = stdlib / entry
            files += [p] if p.is_file() else sorted(p.rglob("*.py"))
        base = stdlib
    else:
        base = fetch(cache, name)
        files = sorted(base.rglob("*.py"))
    out = {}
    for f in files:
        rel = f.relative_to(base).as_posix()
        if "/test" in f"/{rel}" or "__pycache__" in rel:
            continue
        try:
            out[rel] = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return out


def _docstring_node(node: ast.AST) -> ast.Expr | None:
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0]
    return None


def _trivial(body: list[ast.stmt]) -> bool:
    if len(body) != 1:
        return False
    stmt = body[0]
    return (isinstance(stmt, ast.Pass | ast.Raise) or (isinstance(stmt, ast.Return) and (
        stmt.value is None or isinstance(stmt.value, ast.Constant | ast.Name | ast.Attribute)))
            or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)))


def _first_paragraph(doc: str) -> str:
    import inspect

    para = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return " ".join(para.split())


def strip(text: str) -> tuple[str, dict[str, str]] | None:
    """The text without docstrings (a docstring that was a body's only statement becomes `pass`),
    and qualname -> query for the functions that make queries."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    lines = text.splitlines(keepends=True)
    drop: dict[int, str | None] = {}  # 0-based line -> replacement (None: removed)
    queries: dict[str, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qual = f"{prefix}{child.name}"
                doc = _docstring_node(child)
                if doc is not None:
                    first, last = doc.lineno - 1, (doc.end_lineno or doc.lineno) - 1
                    same_line = first == child.body[0].lineno - 1 and lines[first].lstrip().startswith(
                        ("def ", "async ", "class "))
                    if same_line or doc.col_offset == 0 or lines[first][: doc.col_offset].strip() \
                            or lines[last][doc.end_col_offset or 0:].strip() not in ("", ";"):
                        return  # docstring shares lines with code: leave this definition be
                    for n in range(first, last + 1):
                        drop[n] = None
                    if len(child.body) == 1:
                        drop[first] = " " * doc.col_offset + "pass\n"
                    rest = child.body[1:]
                    if (not isinstance(child, ast.ClassDef) and not (child.name.startswith("__")
                            and child.name.endswith("__")) and not _trivial(rest) and rest):
                        q = _first_paragraph(doc.value.value)  # type: ignore[attr-defined]
                        if len(q.split()) >= 3:
                            queries.setdefault(qual, q)
                visit(child, f"{qual}.")

    module_doc = _docstring_node(tree)
    if module_doc is not None and module_doc.col_offset == 0:
        for n in range(module_doc.lineno - 1, (module_doc.end_lineno or module_doc.lineno)):
            drop[n] = None
    visit(tree, "")
    out = [drop.get(i, line) for i, line in enumerate(lines)]
    stripped = "".join(line for line in out if line is not None)
    try:
        ast.parse(stripped)
    except SyntaxError:
        return None
    return stripped, queries


def definitions(path: str, text: str) -> list[Definition]:
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    out: list[Definition] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                end = child.end_lineno or child.lineno
                qual = f"{prefix}{child.name}"
                out.append(Definition(path, qual, start, end, "".join(lines[start - 1 : end])))
                visit(child, f"{qual}.")

    visit(tree, "")
    return out


@dataclass
class Corpus:
    name: str
    root: Path
    targets: list[Target]
    definitions: list[Definition]
    files: int
    lines: int


def build_corpus(name: str, cache: Path, texts: dict[str, str] | None = None) -> Corpus:
    """`texts`: path -> text of another corpus's files (default: `sources(name)`)."""
    root = cache / "stripped" / name
    texts = sources(name, cache) if texts is None else texts
    targets: list[Target] = []
    defs: list[Definition] = []
    wanted: dict[str, str] = {}
    for rel, text in sorted(texts.items()):
        result = strip(text)
        if result is None:
            continue
        stripped, queries = result
        wanted[rel] = stripped
        file_defs = definitions(rel, stripped)
        defs += file_defs
        seen: set[str] = set()
        for d in file_defs:
            if d.qualname in queries and d.qualname not in seen:
                seen.add(d.qualname)
                targets.append(Target(rel, d.qualname, d.start, d.end, queries[d.qualname]))
    # Rewritten only when different: the stored index of a previous run stays valid.
    for rel, stripped in wanted.items():
        dest = root / rel
        if not dest.exists() or dest.read_text(encoding="utf-8") != stripped:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(stripped, encoding="utf-8")
    return Corpus(name, root, targets, defs, len(wanted), sum(t.count("\n") for t in wanted.values()))


# ----- metrics ----------------------------------------------------------------------------


def right(path: str, start: int, end: int, t: Target) -> bool:
    if path != t.path:
        return False
    overlap = min(end, t.end) - max(start, t.start) + 1
    return overlap >= 0.5 * (t.end - t.start + 1) and overlap >= 0.5 * (end - start + 1)


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """ranks: 1-based rank of the first right hit within K, or None."""
    n = len(ranks)
    found = [r for r in ranks if r is not None]
    return {"MRR@10": sum(1 / r for r in found) / n,
            "nDCG@10": sum(1 / math.log2(r + 1) for r in found) / n,
            "R@1": sum(r <= 1 for r in found) / n, "R@5": sum(r <= 5 for r in found) / n,
            "R@10": len(found) / n}


def first_right(hits: Sequence[tuple[str, int, int]], t: Target) -> int | None:
    for rank, (path, start, end) in enumerate(hits[:K], 1):
        if right(path, start, end, t):
            return rank
    return None


# ----- baselines --------------------------------------------------------------------------


def code_tokens(text: str) -> list[str]:
    """Words and identifiers, lower-cased, whole and split (the baseline's tokenizer)."""
    out = []
    for word in re.findall(r"\w+", text):
        out.append(word.lower())
        out.extend(lexical.split_identifier(word))
    return out


_EMBED = embed.embed  # the model itself, whatever `cached_queries` does to the module


class VectorCache:
    """Baseline (and query) vectors on disk, one .npy per text hash and producer (model,
    runtime, quantisation: `embed.Producer.spec`)."""

    def __init__(self, directory: Path, spec: str | None = None) -> None:
        self.dir = directory
        self.spec = spec or embed.default_spec()
        directory.mkdir(parents=True, exist_ok=True)

    def vectors(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(f"{self.spec}\0{t}".encode("utf-8", "surrogatepass")).hexdigest()
                for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True)
                          if not (self.dir / f"{k}.npy").exists()}.items())
        for i in range(0, len(missing), 256):
            part = missing[i : i + 256]
            for (k, _), v in zip(part, _EMBED([t for _, t in part], self.spec), strict=True):
                np.save(self.dir / f"{k}.npy", v)
        return np.stack([np.load(self.dir / f"{k}.npy") for k in keys]) if keys else np.zeros((0, 384))


def baseline_rankings(corpus: Corpus, cache: VectorCache) -> dict[str, list[list[tuple[str, int, int]]]]:
    import bm25s

    defs = corpus.definitions
    spans = [(d.path, d.start, d.end) for d in defs]
    retriever = bm25s.BM25()
    retriever.index([code_tokens(f"{d.qualname} {d.text}") for d in defs], show_progress=False)
    bm25_hits = []
    for t in corpus.targets:
        tokens = [w for w in code_tokens(t.query) if w in retriever.vocab_dict] or [""]
        docs, _ = retriever.retrieve([tokens], k=min(K, len(defs)), show_progress=False)
        bm25_hits.append([spans[int(i)] for i in docs[0]])
    matrix = cache.vectors([d.text for d in defs])
    queries = cache.vectors([t.query for t in corpus.targets])
    scores = queries @ matrix.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    minilm_hits = [[spans[int(i)] for i in row] for row in top]
    return {"BM25 (bm25s)": bm25_hits, "MiniLM": minilm_hits}


# ----- codegraph --------------------------------------------------------------------------


def index_corpus(corpus: Corpus, cache: Path, config: IndexConfig) -> tuple[query.Index, dict[str, object]]:
    # One store per producer: switching it re-embeds everything (the L4 key names it).
    producer = hashlib.sha1(config.producer().spec.encode()).hexdigest()[:12]
    db = str(cache / "stores" / producer / corpus.name)
    t0 = time.perf_counter()
    result = codegraph.index(str(corpus.root), db, options=IndexOptions(config))
    result["seconds"] = time.perf_counter() - t0
    # This corpus's repository alone: a store copied with its cache also holds the corpus indexed
    # at the old path, another repository, whose hits would come twice.
    return codegraph.open(db, repo=str(Path(corpus.root).resolve())), result


def spans(hits: list[query.Hit]) -> list[tuple[str, int, int]]:
    return [(h.path, h.start_line, h.end_line) for h in hits]


def codegraph_rankings(idx: query.Index, corpus: Corpus, qcache: VectorCache
                       ) -> tuple[list[list[query.Hit]], list[list[query.Hit]], float, float]:
    """Lexical and vector hits of every query (HYBRID_DEPTH deep) and the seconds each took."""
    lex, vec = [], []
    # Query vectors from the cache: the same function of the same text, so the same vector
    # (embed.embed is per text, batch-independent); the timings then exclude the model.
    qcache.vectors([t.query for t in corpus.targets])  # embedded (and cached) before timing
    embed.embed = lambda texts, model_name=None, batch_size=32: qcache.vectors(list(texts))
    try:
        t0 = time.perf_counter()
        for t in corpus.targets:
            lex.append(idx.lexical(t.query, query.HYBRID_DEPTH))
        t_lex = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in corpus.targets:
            vec.append(idx.vector(t.query, query.HYBRID_DEPTH))
        t_vec = time.perf_counter() - t0
    finally:
        embed.embed = _EMBED
    return lex, vec, t_lex, t_vec


def mrr(hits: list[list[tuple[str, int, int]]], targets: list[Target]) -> float:
    return metrics([first_right(h, t) for h, t in zip(hits, targets, strict=True)])["MRR@10"]


def compare(corpus: Corpus, cache: Path, reference: IndexConfig, config: IndexConfig,
            lex: list[list[query.Hit]], vec: list[list[query.Hit]]) -> None:
    """Vector and hybrid MRR@10 of codegraph with `reference`'s producer against `config`'s, on
    the same queries, to four decimals, and the mean cosine of the two producers' vectors of
    every query and definition text."""
    ref_spec, spec = reference.producer().spec, config.producer().spec
    idx, _ = index_corpus(corpus, cache, reference)
    ref_cache = VectorCache(cache / "baseline-vectors", ref_spec)
    ref_lex, ref_vec, _, _ = codegraph_rankings(idx, corpus, ref_cache)
    texts = [t.query for t in corpus.targets] + [d.text for d in corpus.definitions]
    ours = VectorCache(cache / "baseline-vectors", spec)
    cosine = (ref_cache.vectors(texts) * ours.vectors(texts)).sum(axis=1)
    targets = list(corpus.targets)

    Spans = list[list[tuple[str, int, int]]]

    def fused(lexical: list[list[query.Hit]], vector: list[list[query.Hit]]) -> Spans:
        return [spans(query.fuse(x, y, K)) for x, y in zip(lexical, vector, strict=True)]

    row = []
    for mode, (a, b) in {"vector": ([spans(h[:K]) for h in ref_vec], [spans(h[:K]) for h in vec]),
                         "hybrid": (fused(ref_lex, ref_vec), fused(lex, vec))}.items():
        before, after = mrr(a, targets), mrr(b, targets)
        row.append(f"{mode} {before:.4f} -> {after:.4f} ({after - before:+.4f})")
    print(f"MRR@10 {ref_spec.rsplit(':', 1)[1]} -> {spec.rsplit(':', 1)[1]}: " + "; ".join(row)
          + f"; cosine of their vectors (queries and definitions) mean {cosine.mean():.5f}, "
          f"min {cosine.min():.5f}")


def adapter_effect(idx: query.Index, corpus: Corpus, qcache: VectorCache, lex: list[list[query.Hit]],
                   vec: list[list[query.Hit]]) -> None:
    """Vector and hybrid MRR@10 without the query adapter (`embed.query_adapter`) against with
    it (`vec`), to four decimals: the same stores and lexical rankings, only the queries change."""
    embed.QUERY_ADAPTER = False
    try:
        _, plain, _, _ = codegraph_rankings(idx, corpus, qcache)
    finally:
        embed.QUERY_ADAPTER = True
    targets = list(corpus.targets)
    row = []
    for mode, (a, b) in {"vector": ([spans(h[:K]) for h in plain], [spans(h[:K]) for h in vec]),
                         "hybrid": ([spans(query.fuse(x, y, K)) for x, y in zip(lex, plain, strict=True)],
                                    [spans(query.fuse(x, y, K)) for x, y in zip(lex, vec, strict=True)])
                         }.items():
        before, after = mrr(a, targets), mrr(b, targets)
        row.append(f"{mode} {before:.4f} -> {after:.4f} ({after - before:+.4f})")
    print("MRR@10 without -> with the query adapter: " + "; ".join(row))


def targets_line(mrr10: dict[str, float]) -> str:
    """Issue 12's targets on one corpus, MRR@10 to four decimals: lexical against BM25, vector
    against MiniLM, hybrid against the better baseline + 0.04 (met: the margin is >= 0)."""
    better = max(mrr10["BM25 (bm25s)"], mrr10["MiniLM"])
    margins = {"lexical - BM25": mrr10["codegraph lexical"] - mrr10["BM25 (bm25s)"],
               "vector - MiniLM": mrr10["codegraph vector"] - mrr10["MiniLM"],
               "hybrid - (better baseline + 0.04)": mrr10["codegraph hybrid"] - better - 0.04,
               "hybrid - better input": mrr10["codegraph hybrid"]
               - max(mrr10["codegraph lexical"], mrr10["codegraph vector"])}
    return "targets (MRR@10): " + "; ".join(
        f"{name} {margin:+.4f} {'met' if margin >= 0 else 'NOT met'}" for name, margin in margins.items())


def run(corpora: list[str], cache: Path, tune: bool, config: IndexConfig,
        reference: IndexConfig | None = None, query_words: int = 0) -> None:
    # The MiniLM baseline: the plain model at full precision (onnx fp32 gives torch's vectors),
    # whatever producer codegraph is measured with.
    vcache = VectorCache(cache / "baseline-vectors", embed.producer(quantisation="fp32").spec)
    qcache = VectorCache(cache / "baseline-vectors", config.producer().spec)  # codegraph's queries
    adapter = "with its query adapter" if embed.query_adapter(config.producer().spec) is not None \
        else "no query adapter"
    print(f"codegraph embeds with {config.producer().spec} ({adapter}); the MiniLM baseline with "
          f"{vcache.spec} (plain)")
    tuning_lists: dict[str, tuple[list[list[query.Hit]], list[list[query.Hit]], list[Target]]] = {}
    for name in corpora:
        corpus = build_corpus(name, cache)
        if query_words:  # shorter questions than a docstring's paragraph; the same answers
            corpus.targets = [replace(t, query=" ".join(t.query.split()[:query_words]))
                              for t in corpus.targets]
        idx, result = index_corpus(corpus, cache, config)
        print(f"\n== {name}{' (held out: tuned on nothing)' if name not in TUNING else ' (tuning)'}: "
              f"{corpus.files} files, {corpus.lines} lines, {len(corpus.definitions)} definitions, "
              f"{len(corpus.targets)} queries; codegraph: {result['chunks']} unit windows, "
              f"indexed in {result['seconds']:.1f} s ({result['embedded']} texts embedded)")
        rankings = baseline_rankings(corpus, vcache)  # embeds (and caches) every query too
        lex, vec, t_lex, t_vec = codegraph_rankings(idx, corpus, qcache)
        rankings["codegraph lexical"] = [spans(h[:K]) for h in lex]
        rankings["codegraph vector"] = [spans(h[:K]) for h in vec]
        rankings["codegraph hybrid"] = [spans(query.fuse(a, b, K)) for a, b in zip(lex, vec, strict=True)]
        print(f"{'mode':<20}" + "".join(f"{m:>9}" for m in ("MRR@10", "nDCG@10", "R@1", "R@5", "R@10")))
        mrr10: dict[str, float] = {}
        for mode, hits in rankings.items():
            m = metrics([first_right(h, t) for h, t in zip(hits, corpus.targets, strict=True)])
            mrr10[mode] = m["MRR@10"]
            print(f"{mode:<20}" + "".join(f"{v:>9.3f}" for v in m.values()))
        print(targets_line(mrr10))
        n = len(corpus.targets)
        print(f"(query time, the query's embedding excluded: lexical {1000 * t_lex / n:.1f} ms, "
              f"vector {1000 * t_vec / n:.1f} ms per query)")
        if reference is not None:
            compare(corpus, cache, reference, config, lex, vec)
        if embed.QUERY_ADAPTER and embed.query_adapter(config.producer().spec) is not None:
            adapter_effect(idx, corpus, qcache, lex, vec)
        if tune and name in TUNING:
            tuning_lists[name] = (lex, vec, corpus.targets)
            head_weights(idx, corpus)
    if tune and tuning_lists:
        print("\nhybrid MRR@10 by lexical weight (tuning corpora; 0: the vector ranking alone):")
        for w in (0.0, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3):
            row = []
            for name, (lex, vec, targets) in tuning_lists.items():
                ranks = [first_right(spans(query.fuse(a, b, K, w)), t)
                         for a, b, t in zip(lex, vec, targets, strict=True)]
                row.append(f"{name} {metrics(ranks)['MRR@10']:.3f}")
            print(f"  w={w:.2f}: " + ", ".join(row))


def head_weights(idx: query.Index, corpus: Corpus) -> None:
    saved = bm25.COLUMN_WEIGHTS
    row = []
    # The store ranks with the current weights; a held index (`lexical_index`) keeps the
    # weighted frequencies of its first load, so it would print one number for every weight.
    held, idx.hold_lexical = idx.hold_lexical, False
    try:
        for w in (1.0, 2.0, 3.0, 5.0, 8.0):
            bm25.COLUMN_WEIGHTS = (w, *saved[1:])
            ranks = [first_right(spans(idx.lexical(t.query, K)), t) for t in corpus.targets]
            row.append(f"{w:g}: {metrics(ranks)['MRR@10']:.3f}")
        bm25.COLUMN_WEIGHTS = saved
        stop, lexical.STOPWORDS = lexical.STOPWORDS, frozenset()
        try:
            ranks = [first_right(spans(idx.lexical(t.query, K)), t) for t in corpus.targets]
        finally:
            lexical.STOPWORDS = stop
        row.append(f"without stop words: {metrics(ranks)['MRR@10']:.3f}")
    finally:
        bm25.COLUMN_WEIGHTS = saved
        idx.hold_lexical = held
    print("lexical MRR@10 by head weight: " + ", ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "codegraph-bench-search"))
    parser.add_argument("--corpora", default="stdlib,attrs,click")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--runtime", choices=embed.RUNTIMES, default=embed.DEFAULT_RUNTIME,
                        help="codegraph's embedding runtime (the baselines keep the default)")
    parser.add_argument("--quantize", choices=embed.QUANTISATIONS, default=embed.DEFAULT_QUANTISATION)
    parser.add_argument("--against", metavar="RUNTIME[:QUANTISATION]",
                        help="also print vector and hybrid MRR@10 (4 decimals) with this producer "
                        "against the one measured, e.g. torch or onnx:fp32, and their vectors' cosine")
    parser.add_argument("--no-query-adapter", action="store_true",
                        help="codegraph's queries as the plain model embeds them (no `embed.query_adapter`)")
    parser.add_argument("--query-words", type=int, default=0, metavar="N",
                        help="each query cut to its first N words (a robustness check: the targets "
                        "are set for whole first paragraphs)")
    args = parser.parse_args()
    embed.QUERY_ADAPTER = not args.no_query_adapter
    names = args.corpora.split(",")
    unknown = [n for n in names if n != "stdlib" and n not in PACKAGES]
    if unknown:
        parser.error(f"unknown corpus {unknown[0]!r}")
    print("search benchmark (machine shared with other work: timings are indicative only)")
    config = IndexConfig(embed_runtime=args.runtime, quantisation=args.quantize)
    reference = None
    if args.against:
        runtime, _, quantisation = args.against.partition(":")
        if runtime not in embed.RUNTIMES or (quantisation or "fp32") not in embed.QUANTISATIONS:
            parser.error(f"--against {args.against}: a runtime ({', '.join(embed.RUNTIMES)}), then "
                         f"optionally ':' and a quantisation ({', '.join(embed.QUANTISATIONS)})")
        reference = IndexConfig(embed_runtime=runtime, quantisation=quantisation or "fp32")
    run(names, Path(args.cache), args.tune, config, reference, max(0, args.query_words))


if __name__ == "__main__":
    main()
