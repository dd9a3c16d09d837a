"""Queries over the latest complete snapshot: lexical, vector and hybrid search; graph lookups.

`Index` is the small public surface (`codegraph.open(db)`): the CLI and tests use only it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codegraph import lexical
from codegraph.errors import DamagedIndexError, NoIndexError, UserError
from codegraph.pipeline import DEFAULT_DB_DIRNAME
from codegraph.stages import L2, L3, L4
from codegraph.store import Store, open_store
from codegraph.store.base import ChunkRow, SnapshotInfo, text_ok, vector_ok
from codegraph.store.sqlite import DB_FILENAME

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.)
SNIPPET_LINES = 6
MODES = ("lexical", "vector", "hybrid")
GRAPH_QUERIES = ("defs", "callers", "callees", "imports", "importers")


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_db(explicit: str | None, start: Path | None = None) -> str:
    """--db, else CODEGRAPH_DB, else the nearest `.codegraph/` above the working directory."""
    if explicit:
        return explicit
    env = os.environ.get("CODEGRAPH_DB")
    if env:
        return env
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_DB_DIRNAME
        if (candidate / DB_FILENAME).is_file():
            return str(candidate)
    raise NoIndexError(
        "no index found: pass --db, set CODEGRAPH_DB, or run `codegraph index` in this repository"
    )


def _qualify(row: ChunkRow) -> str:
    if row.module and row.symbol:
        return f"{row.module}.{row.symbol}"
    return row.symbol or row.module or ""


def _snippet(text: str, terms: list[str]) -> str:
    lines = text.splitlines()
    if terms:
        for i, line in enumerate(lines):
            lowered = line.lower()
            if any(t in lowered for t in terms):
                start = max(0, i - 1)
                return "\n".join(lines[start : start + SNIPPET_LINES])
    return "\n".join(lines[:SNIPPET_LINES])


class Index:
    """A read handle on one store's latest complete snapshot (optionally of one repo)."""

    def __init__(self, store: Store, repo: str | None = None) -> None:
        self.store = store
        snapshot = store.latest_snapshot(repo)
        if snapshot is None:
            raise NoIndexError(f"{store.url} holds no completed index yet: run `codegraph index` first")
        self.snapshot: SnapshotInfo = snapshot
        # What the last search skipped because its stored rows are damaged (`index --full`
        # repairs them): a query never returns garbage, and never fails over it either.
        self.warnings: list[str] = []

    @property
    def has_vectors(self) -> bool:
        return L4 in self.snapshot.stage_keys

    # ----- search ------------------------------------------------------------------------

    def search(self, query: str, mode: str | None = None, limit: int = 10) -> list[Hit]:
        if not query.strip():
            raise UserError("empty query")
        if limit < 1:
            raise UserError("--limit must be at least 1")
        mode = mode or ("hybrid" if self.has_vectors else "lexical")
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if mode in ("vector", "hybrid") and not self.has_vectors:
            raise UserError("this index has no vectors (it was built with --no-vectors)")
        self.warnings = []
        if mode == "lexical":
            return self.lexical(query, limit)
        if mode == "vector":
            return self.vector(query, limit)
        return self.hybrid(query, limit)

    def lexical(self, query: str, limit: int) -> list[Hit]:
        """BM25 over files, then each file's chunk with the most query terms as the hit."""
        terms = lexical.query_terms(query)
        if not terms:
            return []
        keys = self.snapshot.stage_keys
        try:
            files = self.store.lexical_search(self.snapshot.id, keys[L3], lexical.fts_query(terms), limit)
        except DamagedIndexError as exc:
            self.warnings.append(f"no lexical hits: {exc} (run `codegraph index --full`)")
            return []
        bad = self.store.damaged_lexical(self.snapshot.id, keys[L3], [p for p, _ in files])
        self._skipped("L3 lexical document", bad)
        files = [(p, score) for p, score in files if p not in bad]
        files = [(p, score) for p, score in files if p not in self._damaged_chunks([p for p, _ in files])]
        chunks = self.store.chunks_of_files(self.snapshot.id, keys[L2], [p for p, _ in files])
        by_path: dict[str, list[ChunkRow]] = {}
        for row in chunks:
            by_path.setdefault(row.path, []).append(row)
        hits = []
        for path, score in files:
            candidates = by_path.get(path)
            if not candidates:
                continue
            best = max(candidates, key=lambda c: (lexical.term_hits(c.text, terms), -c.start_line))
            hits.append(Hit(path, best.start_line, best.end_line, _qualify(best), round(score, 4),
                            _snippet(best.text, terms)))
        return hits

    def vector(self, query: str, limit: int) -> list[Hit]:
        from codegraph import embed

        keys = self.snapshot.stage_keys
        model_name = keys[L4].split(":", 1)[1]
        rows = self.store.snapshot_vectors(self.snapshot.id, keys[L2], keys[L4])
        if not rows:
            return []
        q = embed.embed([query], model_name)[0]
        # A stored vector must pass its checksum and have the query vector's length.
        good = [vector_ok(bytes(r[2]), r[3], len(q)) for r in rows]
        self._skipped("L4 vector", {r[1]: "" for r, ok in zip(rows, good, strict=True) if not ok})
        rows = [r for r, ok in zip(rows, good, strict=True) if ok]
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ q
        # Ties broken by path and line (rows come sorted that way) for stable output.
        order = np.argsort(-scores, kind="stable")[:limit]
        picked = [(int(rows[i][0]), rows[i][1]) for i in order]
        chunk_rows = self.store.chunks_by_ids(self.snapshot.id, picked)
        damaged = self._damaged_chunks(sorted({p for _, p in picked}))
        terms = lexical.query_terms(query)
        return [
            Hit(c.path, c.start_line, c.end_line, _qualify(c), round(float(scores[i]), 4),
                _snippet(c.text, terms))
            for i, c in zip(order, chunk_rows, strict=True)
            if c.path not in damaged and text_ok(c.text, c.text_hash)
        ]

    def _damaged_chunks(self, paths: list[str]) -> set[str]:
        """The `paths` whose stored chunks (lines, symbols or texts) fail their checks."""
        bad, _ = self.store.damaged_chunk_sets(self.snapshot.id, self.snapshot.stage_keys[L2], paths)
        self._skipped("L2 chunks", bad)
        return set(bad)

    def _skipped(self, what: str, paths: dict[str, str]) -> None:
        for path in sorted(paths):
            message = f"skipped {path}: its stored {what} is damaged (run `codegraph index --full`)"
            if message not in self.warnings:
                self.warnings.append(message)

    def hybrid(self, query: str, limit: int) -> list[Hit]:
        """Reciprocal rank fusion of the lexical and vector rankings (each 3x deep)."""
        depth = limit * 3
        fused: dict[tuple[str, int], float] = {}
        hits: dict[tuple[str, int], Hit] = {}
        for ranking in (self.lexical(query, depth), self.vector(query, depth)):
            for rank, hit in enumerate(ranking):
                key = (hit.path, hit.start_line)
                fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
                hits.setdefault(key, hit)
        order = sorted(fused, key=lambda k: (-fused[k], k))[:limit]
        out = []
        for key in order:
            hit = hits[key]
            hit.score = round(fused[key], 6)
            out.append(hit)
        return out

    # ----- export ------------------------------------------------------------------------

    def export(self) -> Iterator[list[Any]]:
        """The snapshot's whole index, canonically: two indexes of one snapshot export equal."""
        for row in self.store.export_rows(self.snapshot.id, self.snapshot.stage_keys):
            yield list(row)

    # ----- graph -------------------------------------------------------------------------

    def _is_path(self, name: str) -> bool:
        return "/" in name or name.endswith(".py") or bool(
            self.store.symbols_in_file(self.snapshot.id, name)
        )

    def graph(self, query: str, name: str) -> list[dict[str, Any]]:
        sid = self.snapshot.id
        if query not in GRAPH_QUERIES:
            raise UserError(f"unknown graph query {query!r}: use one of {', '.join(GRAPH_QUERIES)}")
        store = self.store
        if query == "defs":
            rows = store.find_symbols(sid, name)
            return [r._asdict() for r in rows]
        path_query = self._is_path(name)
        if query in ("callers", "callees"):
            if path_query:
                column = "dst_path" if query == "callers" else "src_path"
                edges = store.edges_where(sid, "calls", column, [name])
            else:
                targets = sorted({r.qname for r in store.find_symbols(sid, name)})
                column = "dst" if query == "callers" else "src"
                edges = store.edges_where(sid, "calls", column, targets)
        else:
            if path_query:
                column = "src_path" if query == "imports" else "dst_path"
                edges = store.edges_where(sid, "imports", column, [name])
            else:
                targets = sorted({r.qname for r in store.find_symbols(sid, name)} | {name})
                column = "src" if query == "imports" else "dst"
                edges = store.edges_where(sid, "imports", column, targets)
        return [
            {"kind": e.kind, "src": e.src, "src_path": e.src_path, "dst": e.dst,
             "dst_path": e.dst_path, "line": e.line}
            for e in edges
        ]


def open_index(db: str | None = None, repo: str | None = None) -> Index:
    url = find_db(db)
    if "://" not in url and not Path(url).exists():
        raise UserError(f"no index at {url}")
    return Index(open_store(url, create=False), repo)
