"""Search variants that the stores cannot rank without changing what is stored: bench_search's
queries and stores, its three modes re-implemented in memory, and each variant against them.

    .venv/bin/python bench/bench_search_variants.py [--cache DIR] [--corpora stdlib,attrs]

Reads the stores `bench/bench_search.py` left in `--cache` (run it first: this script indexes
nothing new and embeds only variant texts, cached like the baselines' vectors). The in-memory
modes are the stores' own: BM25 as FTS5 ranks (`store.bm25`'s formula over the stored unit
documents, column weights, statistics over every stored document), each unit's best cosine
over its stored texts, and `query.fuse` over 50-deep rankings; a first row checks them against
the `Index`'s own answers on the same queries. Every row is MRR@10 on the tuning corpora by
default (ARCHITECTURE.md, "Search", quotes them); the held-out corpus is for bench_search.
"""

from __future__ import annotations

import argparse
import ast
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_search as bs

from codegraph import embed, lexical, query
from codegraph.names import L2, L3, L4
from codegraph.stages import IndexConfig
from codegraph.store import bm25

DEPTH = query.HYBRID_DEPTH


@dataclass
class Data:
    """One corpus: its queries, units, lexical columns and per-text cosines."""

    targets: list[bs.Target]
    units: list[tuple[str, int, int, str]]  # path, start, end, symbol
    columns: list[tuple[str, str, str]]  # head, body, subtokens
    n_rows: int  # every stored lexical document (FTS5's statistics)
    n_tokens: int
    text_unit: np.ndarray  # text -> its unit
    is_name: np.ndarray  # text is a unit's name text
    texts: list[str]
    text_vectors: np.ndarray
    query_vectors: np.ndarray
    cosines: np.ndarray  # queries x texts
    index_ranks: dict[str, list[int | None]]  # the Index's own lexical / vector / hybrid


def load(name: str, cache: Path, qcache: bs.VectorCache) -> Data:
    corpus = bs.build_corpus(name, cache)
    idx, _ = bs.index_corpus(corpus, cache, IndexConfig())
    (snap,) = [s for s in idx.snapshots if s.repo == str(corpus.root.resolve())] or idx.snapshots[:1]
    store = idx.store
    files, docs = store.lexical_documents(snap.id, snap.stage_keys[L3], set())
    units, columns = [], []
    for path, _, content_hash in files:
        for u in docs[content_hash][1] or []:
            units.append((path, u.start_line, u.end_line, u.symbol))
            columns.append((u.head, u.body, u.subtokens))
    n_rows, n_tokens, _ = store.lexical_statistics([])
    where = {(p, s, sym): i for i, (p, s, _, sym) in enumerate(units)}
    chunks = store.chunks_of_files(snap.id, snap.stage_keys[L2], sorted(idx.files(snap)))
    vectors = {h: np.frombuffer(bytes(v), dtype=np.float32) for h, v, _ in
               store.embeddings_of(snap.stage_keys[L4], sorted({c.text_hash for c in chunks}))}
    matrix = np.stack([vectors[c.text_hash] for c in chunks])
    embed.embed = lambda texts, model_name=None, batch_size=32: qcache.vectors(list(texts))
    try:
        # The queries as the Index embeds them (its query adapter applied, `embed.embed_query`).
        qv = embed.embed_query([t.query for t in corpus.targets], qcache.spec)
        lex = [idx.lexical(t.query, DEPTH) for t in corpus.targets]
        vec = [idx.vector(t.query, DEPTH) for t in corpus.targets]
    finally:
        embed.embed = bs._EMBED
    pairs = list(zip(lex, vec, corpus.targets, strict=True))
    ranks = {"lexical": [bs.first_right(bs.spans(a[:bs.K]), t) for a, _, t in pairs],
             "vector": [bs.first_right(bs.spans(b[:bs.K]), t) for _, b, t in pairs],
             "hybrid": [bs.first_right(bs.spans(query.fuse(a, b, bs.K)), t) for a, b, t in pairs]}
    return Data(corpus.targets, units, columns, n_rows, n_tokens,
                np.array([where[(c.path, c.start_line, c.symbol)] for c in chunks]),
                np.array(["\n" not in c.text for c in chunks]), [c.text for c in chunks], matrix, qv,
                qv @ matrix.T, ranks)


# ----- evaluation ---------------------------------------------------------------------------


def mrr(d: Data, scores: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """MRR@10 of a queries x units score matrix (`allowed`: units that are in the ranking)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :bs.K]
    ranks: list[int | None] = []
    for qi, t in enumerate(d.targets):
        found = None
        for rank, u in enumerate(top[qi], 1):
            if allowed is not None and not allowed[qi, u]:
                break
            path, start, end, _ = d.units[u]
            if bs.right(path, start, end, t):
                found = rank
                break
        ranks.append(found)
    return bs.metrics(ranks)["MRR@10"]


# ----- lexical: FTS5's BM25 in memory -----------------------------------------------------


@cache
def porter(token: str) -> str:
    """SQLite FTS5's own Porter stemmer (its `porter` tokenizer) on one token."""
    conn = _porter_conn()
    conn.execute("INSERT INTO p(rowid, body) VALUES (1, ?)", (token,))
    out = [t for (t,) in conn.execute("SELECT term FROM p_i ORDER BY offset")]
    conn.execute("DELETE FROM p")
    return out[0] if len(out) == 1 else token


@lru_cache(maxsize=1)
def _porter_conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(f"CREATE VIRTUAL TABLE p USING fts5(body, tokenize = \"porter {bm25.TOKENIZE}\")")
    conn.execute("CREATE VIRTUAL TABLE p_i USING fts5vocab(p, 'instance')")
    return conn


def s_stem(token: str) -> str:
    """Harman's S stemmer: plurals only (`ies` -> `y`, `es` -> `e`, `s` -> ``)."""
    if len(token) > 3 and token.endswith("ies") and not token.endswith(("eies", "aies")):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("es") and not token.endswith(("aes", "ees", "oes")):
        return token[:-1]
    if len(token) > 2 and token.endswith("s") and not token.endswith(("us", "ss")):
        return token[:-1]
    return token


class Postings:
    """Per term: the units holding it and its count in each column; per unit its length."""

    def __init__(self, d: Data, stem: Callable[[str], str] | None) -> None:
        self.stem = stem
        self.lengths = np.zeros(len(d.units))
        self.column_lengths = np.zeros((3, len(d.units)))
        found: dict[str, dict[int, list[int]]] = {}
        for u, columns in enumerate(d.columns):
            for c, text in enumerate(columns):
                tokens = bm25.tokens(text)
                self.lengths[u] += len(tokens)
                self.column_lengths[c, u] = len(tokens)
                for t, n in Counter(stem(x) for x in tokens).items() if stem else Counter(tokens).items():
                    found.setdefault(t, {}).setdefault(u, [0, 0, 0])[c] = n
        self.terms = {t: (np.array(list(by_unit)), np.array(list(by_unit.values()), dtype=float))
                      for t, by_unit in found.items()}

    def query_tokens(self, text: str) -> list[str]:
        tokens = [tt[0] for t in lexical.query_terms(text) if len(tt := bm25.tokens(t)) == 1]
        return list(dict.fromkeys(self.stem(t) for t in tokens)) if self.stem else tokens


def bm25_scores(d: Data, p: Postings, weights: tuple[float, ...] = bm25.COLUMN_WEIGHTS, k1: float = bm25.K1,
                b: float = bm25.B, field_b: tuple[float, ...] | None = None) -> np.ndarray:
    """queries x units. `field_b`: BM25F instead (each column's count normalised by its own
    length before the weighted sum; FTS5 normalises the weighted sum by the whole length)."""
    out = np.zeros((len(d.targets), len(d.units)))
    avgdl = d.n_tokens / d.n_rows
    norm = k1 * (1 - b + b * p.lengths / avgdl)
    col_avg = p.column_lengths.mean(axis=1)
    for qi, t in enumerate(d.targets):
        for token in p.query_tokens(t.query):
            if token not in p.terms:
                continue
            units, counts = p.terms[token]
            idf = bm25.idf(d.n_rows, len(units))
            if field_b is None:
                f = counts @ np.array(weights)
                out[qi, units] += idf * (f * (k1 + 1)) / (f + norm[units])
            else:
                f = sum(w * counts[:, c] / (1 - fb + fb * p.column_lengths[c, units] / col_avg[c])
                        for c, (w, fb) in enumerate(zip(weights, field_b, strict=True)))
                out[qi, units] += idf * f * (k1 + 1) / (f + k1)
    return out


# ----- vector and fusion ------------------------------------------------------------------


def unit_max(d: Data, cosines: np.ndarray, which: np.ndarray) -> np.ndarray:
    """queries x units: each unit's best cosine over its texts selected by `which` (-1: none)."""
    out = np.full((cosines.shape[0], len(d.units)), -1.0)
    np.maximum.at(out.T, d.text_unit[which], cosines[:, which].T)
    return out


def minmax(scores: np.ndarray, positive: bool = False) -> np.ndarray:
    """Each query's ranking DEPTH deep, min-max normalised (best 1, last 0, absent 0)."""
    out = np.zeros_like(scores)
    for q, row in enumerate(scores):
        top = np.argsort(-row, kind="stable")[:DEPTH]
        if positive:
            top = top[row[top] > 0]
        if len(top) == 0:
            continue
        span = row[top[0]] - row[top[-1]]
        out[q, top] = (row[top] - row[top[-1]]) / span if span > 0 else 1.0
    return out


def floored(scores: np.ndarray) -> np.ndarray:
    """Each query's ranking DEPTH deep as it is, every other unit at its last score."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :DEPTH]
    out = np.repeat(np.take_along_axis(scores, top[:, -1:], 1), scores.shape[1], axis=1)
    np.put_along_axis(out, top, np.take_along_axis(scores, top, 1), 1)
    return out


def fuse(lex: np.ndarray, vec: np.ndarray, weight: float = query.LEXICAL_WEIGHT) -> np.ndarray:
    """`query.fuse`: the vector ranking's cosines + weight x the lexical ranking min-max."""
    return floored(vec) + weight * minmax(lex, positive=True)


def params_only(signature: str) -> str | None:
    """`def f(a: int = 1, *, b: str)` -> `def f(a, b)` (None: not a def/class line)."""
    try:
        node = ast.parse(signature.strip().rstrip(":") + ":\n pass").body[0]
    except (SyntaxError, IndexError):
        return None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)] + ([f"*{a.vararg.arg}"] if a.vararg else [])
    names += [x.arg for x in a.kwonlyargs] + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
    return f"def {node.name}({', '.join(names)})"


def with_name_texts(d: Data, qcache: bs.VectorCache, rewrite: Callable[[str, str], str]) -> np.ndarray:
    """Unit scores with each name text (`words: signature`) replaced by rewrite(words, signature)."""
    names = np.where(d.is_name)[0]
    texts = []
    for i in names:
        words, _, signature = d.texts[i].partition(": ")
        texts.append(rewrite(words, signature))
    cosines = d.cosines.copy()
    cosines[:, names] = d.query_vectors @ qcache.vectors(texts).T
    return unit_max(d, cosines, np.ones(len(d.texts), bool))


def feedback(d: Data, ranking: np.ndarray, k: int, beta: float) -> np.ndarray:
    """Unit scores for the query moved towards its first k units' best texts (Rocchio)."""
    top = np.argsort(-ranking, axis=1, kind="stable")[:, :k]
    moved = d.query_vectors.copy()
    for q in range(len(d.targets)):
        for u in top[q]:
            texts = np.where(d.text_unit == u)[0]
            moved[q] += beta / k * d.text_vectors[texts[np.argmax(d.cosines[q, texts])]]
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    return unit_max(d, moved @ d.text_vectors.T, np.ones(len(d.texts), bool))


def whole_texts(d: Data, name: str, cache: Path, vcache: bs.VectorCache) -> np.ndarray:
    """The MiniLM baseline's vector of each unit's whole definition text, as unit scores (-1:
    a unit that is no definition)."""
    defs = bs.build_corpus(name, cache).definitions
    at = {(p, s, e): i for i, (p, s, e, _) in enumerate(d.units)}
    cosines = d.query_vectors @ vcache.vectors([x.text for x in defs]).T
    out = np.full((len(d.targets), len(d.units)), -1.0)
    for j, x in enumerate(defs):
        if (u := at.get((x.path, x.start, x.end))) is not None:
            out[:, u] = np.maximum(out[:, u], cosines[:, j])
    return out


Row = Callable[[str, float], None]


def lexical_variants(d: Data, plain: Postings, lex: np.ndarray, vec: np.ndarray, win: np.ndarray,
                     nam: np.ndarray, row: Row) -> None:
    """Fusions of the stored rankings, and lexical rankings the stored documents cannot give."""
    pos = minmax(lex, positive=True)
    for w in (0.5, 0.6, 0.7):
        row(f"fusion: min-max both, {w} x vector + {1 - w:.1f} x lexical (previous)",
            mrr(d, w * minmax(vec) + (1 - w) * pos))
    best = lex / np.maximum(lex.max(axis=1, keepdims=True), 1e-12) * (pos > 0)
    for w in (0.1, 0.12, 0.15):
        row(f"fusion: cosine + {w} x lexical / its best", mrr(d, floored(vec) + w * best))
    names = minmax(np.where(nam > -1, nam, win))
    for ww, wn in ((0.4, 0.2), (0.3, 0.3)):
        row(f"fusion: 0.4 x lexical + {ww} x best window + {wn} x name text (all min-max)",
            mrr(d, 0.4 * pos + ww * minmax(win) + wn * names))
    for label, stem in (("Porter stemming (FTS5's)", porter), ("S stemming (plurals)", s_stem)):
        scores = bm25_scores(d, Postings(d, stem))
        row(f"lexical: {label}, documents and queries", mrr(d, scores, scores > 0))
        row(f"hybrid: {label}, documents and queries", mrr(d, fuse(scores, vec)))
    for k1, fb in ((1.2, (0.75, 0.75, 0.75)), (2.0, (0.75, 0.75, 0.75)), (2.0, (0.3, 0.75, 0.75))):
        scores = bm25_scores(d, plain, k1=k1, field_b=fb)
        row(f"lexical: BM25F, k1 {k1}, b per column {fb}", mrr(d, scores, scores > 0))


def vector_variants(d: Data, name: str, cache: Path, vcache: bs.VectorCache, qcache: bs.VectorCache,
                    lex: np.ndarray, vec: np.ndarray, win: np.ndarray, nam: np.ndarray, row: Row) -> None:
    """Unit vector scores from other combinations of the stored texts, or other texts."""
    variants: list[tuple[str, np.ndarray]] = []
    for bias in (-0.02, 0.02, 0.04):
        shifted = np.where(nam > -1, nam + bias, -1.0)
        variants.append((f"name texts' cosine {bias:+}", np.maximum(win, shifted)))
    whole = whole_texts(d, name, cache, vcache)
    variants.append(("+ the whole definition text (max)", np.maximum(vec, whole)))
    variants.append(("name text with parameter names only", with_name_texts(
        d, qcache, lambda w, s: f"{w}: {params_only(s) or s}" if s else w)))
    variants.append(("name text without the signature", with_name_texts(d, qcache, lambda w, s: w)))
    for label, scores in variants:
        row(f"vector: {label}", mrr(d, scores))
        row(f"hybrid: {label}", mrr(d, fuse(lex, scores)))
    for source, ranking in (("vector", vec), ("hybrid", fuse(lex, vec))):
        for k in (1, 3, 5):
            moved = feedback(d, ranking, k, 0.2)
            row(f"hybrid: the query moved to its {source} first {k} (beta 0.2)", mrr(d, fuse(lex, moved)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "codegraph-bench-search"))
    parser.add_argument("--corpora", default=",".join(bs.TUNING))
    args = parser.parse_args()
    cache = Path(args.cache)
    config = IndexConfig()
    vcache = bs.VectorCache(cache / "baseline-vectors")
    qcache = bs.VectorCache(cache / "baseline-vectors", config.producer().spec)
    names = args.corpora.split(",")
    rows: dict[str, list[float]] = {}

    def row(label: str, value: float) -> None:
        rows.setdefault(label, []).append(value)

    for name in names:
        d = load(name, cache, qcache)
        plain = Postings(d, None)
        lex = bm25_scores(d, plain)
        every = np.ones(len(d.texts), bool)
        win, nam = unit_max(d, d.cosines, ~d.is_name), unit_max(d, d.cosines, d.is_name)
        vec = np.maximum(win, nam)
        for mode, ranks in d.index_ranks.items():
            row(f"check: the Index's {mode}", bs.metrics(ranks)["MRR@10"])
        row("check: in memory, lexical", mrr(d, lex, lex > 0))
        row("check: in memory, vector", mrr(d, unit_max(d, d.cosines, every)))
        row("check: in memory, hybrid", mrr(d, fuse(lex, vec)))
        lexical_variants(d, plain, lex, vec, win, nam, row)
        vector_variants(d, name, cache, vcache, qcache, lex, vec, win, nam, row)
    print(f"MRR@10 ({', '.join(names)}); the stores of bench_search.py in {cache}")
    for label, values in rows.items():
        print(f"{label:<78}" + "".join(f"{v:>8.3f}" for v in values))


if __name__ == "__main__":
    main()
