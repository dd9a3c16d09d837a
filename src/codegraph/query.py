"""Queries over the latest complete snapshot of each repository in a store: lexical, vector and
hybrid search and graph lookups (across repositories, or in one), and the export (of one).

`Index` is the small public surface (`codegraph.open(db)`): the CLI and tests use only it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codegraph import lexical
from codegraph.errors import DamagedIndexError, NoIndexError, UserError
from codegraph.languages import language_name
from codegraph.pipeline import DEFAULT_DB_DIRNAME
from codegraph.stages import L2, L3, L4
from codegraph.store import Store, open_store
from codegraph.store.base import ChunkRow, LexicalHit, SnapshotInfo, text_ok, vectors_ok
from codegraph.store.sqlite import DB_FILENAME
from codegraph.units import window_body

# Hybrid search (see `fuse`): the vector ranking's weight and how deep each ranking is read.
# Both chosen on bench/bench_search.py (ARCHITECTURE.md, "Search").
VECTOR_WEIGHT = 0.6
HYBRID_DEPTH = 50
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
    repo: str = ""  # the repository's identity (a path or a normalised URL)
    language: str | None = None  # the file's language (None: plain text); set from the path

    def __post_init__(self) -> None:
        if self.language is None:
            self.language = language_name(self.path)

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
    return _qualify_name(row.module, row.symbol)


def _qualify_name(module: str | None, symbol: str) -> str:
    if module and symbol:
        return f"{module}.{symbol}"
    return symbol or module or ""


def _normalised(hits: list[Hit]) -> dict[tuple[str, str, int, str], float]:
    """Min-max normalised scores of one ranking, by unit: its best 1, its worst 0."""
    if not hits:
        return {}
    top, bottom = hits[0].score, hits[-1].score
    span = top - bottom
    return {(h.repo, h.path, h.start_line, h.symbol): (h.score - bottom) / span if span > 0 else 1.0
            for h in hits}


def fuse(lexical_hits: list[Hit], vector_hits: list[Hit], limit: int,
         vector_weight: float | None = None) -> list[Hit]:
    """Hybrid ranking: VECTOR_WEIGHT x the vector score + (1 - VECTOR_WEIGHT) x the lexical
    score, each min-max normalised over its own ranking (a unit absent from one ranking scores
    0 there). Unlike reciprocal rank fusion this keeps how far apart the scores are, so a weak
    ranking's noise cannot drag a confident strong one down; the weight is chosen on the
    benchmark (bench/bench_search.py). Ties: repository, path, line."""
    weight = VECTOR_WEIGHT if vector_weight is None else vector_weight
    lex, vec = _normalised(lexical_hits), _normalised(vector_hits)
    hits: dict[tuple[str, str, int, str], Hit] = {}
    for h in (*lexical_hits, *vector_hits):  # the lexical snippet (lines with query terms) first
        hits.setdefault((h.repo, h.path, h.start_line, h.symbol), h)
    fused = {key: weight * vec.get(key, 0.0) + (1.0 - weight) * lex.get(key, 0.0) for key in hits}
    order = sorted(fused, key=lambda k: (-fused[k], k))[:limit]
    out = []
    for key in order:
        hit = hits[key]
        out.append(Hit(hit.path, hit.start_line, hit.end_line, hit.symbol, round(fused[key], 6),
                       hit.snippet, hit.repo))
    return out


def _snippet(text: str, terms: list[str]) -> str:
    lines = text.splitlines()
    if terms:
        for i, line in enumerate(lines):
            lowered = line.lower()
            if any(t in lowered for t in terms):
                start = max(0, i - 1)
                return "\n".join(lines[start : start + SNIPPET_LINES])
    return "\n".join(lines[:SNIPPET_LINES])


def select_repos(snapshots: list[SnapshotInfo], repo: str) -> list[SnapshotInfo]:
    """The snapshot of the repository `repo` names: its identity (a path, a URL in any of its
    spellings) or its short name, which must then be unambiguous."""
    from codegraph.source import repo_identity

    identity = repo_identity(repo)
    chosen = [s for s in snapshots if s.repo in (repo, identity)] or [
        s for s in snapshots if s.repo_name == repo]
    if not chosen:
        known = ", ".join(s.repo for s in snapshots)
        raise UserError(f"no indexed repository {repo!r} (indexed: {known})")
    if len(chosen) > 1:
        raise UserError(f"{len(chosen)} repositories are named {repo!r}: pass one of "
                        f"{', '.join(s.repo for s in chosen)}")
    return chosen


class Index:
    """A read handle on the latest complete snapshot of every repository in one store, or of
    the one `repo` names. Search and graph queries answer across them (each hit and row carries
    its repository); `export` is of one repository."""

    def __init__(self, store: Store, repo: str | None = None) -> None:
        self.store = store
        snapshots = store.latest_snapshots()
        if not snapshots:
            raise NoIndexError(f"{store.url} holds no completed index yet: run `codegraph index` first")
        # Ordered by identity: ties across repositories break by repository, then path and line.
        self.snapshots: list[SnapshotInfo] = select_repos(snapshots, repo) if repo else snapshots
        # What the last search skipped because its stored rows are damaged (`index --full`
        # repairs them): a query never returns garbage, and never fails over it either.
        self.warnings: list[str] = []

    @property
    def snapshot(self) -> SnapshotInfo:
        """The one repository's snapshot (export, single-repository callers)."""
        if len(self.snapshots) > 1:
            names = ", ".join(s.repo_name for s in self.snapshots)
            raise UserError(f"{len(self.snapshots)} repositories in {self.store.url}: pass --repo NAME "
                            f"(one of: {names})")
        return self.snapshots[0]

    @property
    def has_vectors(self) -> bool:
        return all(L4 in s.stage_keys for s in self.snapshots)

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
        """BM25 over units (definitions and module-level code), their head weighted above
        their body (`store.bm25.COLUMN_WEIGHTS`); one hit per unit, its snippet the lines that
        hold query terms.

        Across repositories the scores are on one scale (N, average length and document
        frequencies are over every stored document), so the per-snapshot rankings merge by score."""
        terms = lexical.query_terms(query)
        if not terms:
            return []
        match = lexical.fts_query(terms)
        ranked: list[tuple[float, int, str, int, LexicalHit]] = []
        for i, snap in enumerate(self.snapshots):
            try:
                found = self.store.lexical_search(snap.id, snap.stage_keys[L3], match, limit)
            except DamagedIndexError as exc:
                self._warn(f"no lexical hits: {exc} (run `codegraph index --full`)")
                continue
            # A damaged document ranks and answers wrongly: skipped.
            bad = self.store.damaged_lexical(snap.id, snap.stage_keys[L3], sorted({h.path for h in found}))
            self._skipped(snap, "L3 lexical document", bad)
            ranked += [(h.score, i, h.path, h.start_line, h) for h in found if h.path not in bad]
        ranked.sort(key=lambda r: (-r[0], r[1], r[2], r[3]))
        return [Hit(h.path, h.start_line, h.end_line, _qualify_name(h.module, h.symbol), round(score, 4),
                    _snippet(h.body, terms), self.snapshots[i].repo)
                for score, i, _, _, h in ranked[:limit]]

    def vector(self, query: str, limit: int) -> list[Hit]:
        """Cosine similarity to each unit window's vector (its context header and lines); a
        unit scores its best window, which is its snippet. One hit per unit."""
        from codegraph import embed

        models = sorted({s.stage_keys[L4] for s in self.snapshots})
        if len(models) > 1:  # vectors of different models are not comparable
            raise UserError(f"the repositories were embedded with different models ({', '.join(models)}):"
                            " pass --repo NAME")
        rows: list[tuple[int, int, str, bytes, str | None]] = []  # (snapshot index, chunk id, path,
        for i, snap in enumerate(self.snapshots):                  # vector, stored checksum)
            keys = snap.stage_keys
            rows += [(i, cid, path, vec, checksum) for cid, path, vec, checksum in
                     self.store.snapshot_vectors(snap.id, keys[L2], keys[L4])]
        if not rows:
            return []
        model_name = models[0].split(":", 1)[1]
        q = embed.embed([query], model_name)[0]
        # A stored vector must pass its checksum and have the query vector's length.
        good = vectors_ok([bytes(r[3]) for r in rows], [r[4] for r in rows], len(q))
        for i, snap in enumerate(self.snapshots):
            self._skipped(snap, "L4 vector", {r[2]: "" for r, ok in zip(rows, good, strict=True)
                                               if not ok and r[0] == i})
        rows = [r for r, ok in zip(rows, good, strict=True) if ok]
        if not rows:
            return []
        import numpy as np  # here: numpy costs a CLI that never searches vectors ~0.2 s to import

        matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ q
        # Ties broken by repository, path and line (rows come sorted that way) for stable output.
        order = [int(k) for k in np.argsort(-scores, kind="stable")]
        return self._unit_hits(order, [(r[0], r[1], r[2]) for r in rows],
                               [float(x) for x in scores[order]], query, limit)

    def _unit_hits(self, order: list[int], windows: list[tuple[int, int, str]], scores: list[float],
                   query: str, limit: int) -> list[Hit]:
        """Windows best first (`order` into `windows`: (snapshot index, chunk id, path), with
        their `scores`) -> the first `limit` distinct units, each scored by its best window.
        Exact: a unit's score is the max over its windows, so the first window of each unit
        in this order is its best. Window rows are read a batch at a time."""
        terms = lexical.query_terms(query)
        hits: list[Hit] = []
        seen: set[tuple[int, str, int, str]] = set()
        batch = max(4 * limit, 32)
        for start in range(0, len(order), batch):
            picked = list(range(start, min(start + batch, len(order))))
            chunk_rows: dict[int, ChunkRow] = {}
            damaged: set[tuple[int, str]] = set()
            for i, snap in enumerate(self.snapshots):
                mine = [n for n in picked if windows[order[n]][0] == i]
                if mine:
                    found = self.store.chunks_by_ids(snap.id, [windows[order[n]][1:] for n in mine])
                    chunk_rows.update(zip(mine, found, strict=True))
                    damaged |= {(i, p) for p in self._damaged_chunks(
                        snap, sorted({windows[order[n]][2] for n in mine}))}
            for n in picked:
                i = windows[order[n]][0]
                c = chunk_rows[n]
                if (i, c.path) in damaged or not text_ok(c.text, c.text_hash):
                    continue
                unit = (i, c.path, c.start_line, c.symbol)
                if unit in seen:
                    continue
                seen.add(unit)
                hits.append(Hit(c.path, c.start_line, c.end_line, _qualify(c), round(scores[n], 4),
                                _snippet(window_body(c.text), terms), self.snapshots[i].repo))
                if len(hits) == limit:
                    return hits
        return hits

    def _damaged_chunks(self, snap: SnapshotInfo, paths: list[str]) -> set[str]:
        """The `paths` whose stored chunks (lines, symbols or texts) fail their checks."""
        bad, _ = self.store.damaged_chunk_sets(snap.id, snap.stage_keys[L2], paths)
        self._skipped(snap, "L2 chunk set", bad)
        return set(bad)

    def _skipped(self, snap: SnapshotInfo, what: str, paths: dict[str, str]) -> None:
        where = f"{snap.repo_name}:" if len(self.snapshots) > 1 else ""
        for path in sorted(paths):
            self._warn(f"skipped {where}{path}: its stored {what} is damaged (run `codegraph index --full`)")

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def hybrid(self, query: str, limit: int) -> list[Hit]:
        """The lexical and vector rankings (each `HYBRID_DEPTH` units deep) fused by `fuse`."""
        depth = max(limit, HYBRID_DEPTH)
        return fuse(self.lexical(query, depth), self.vector(query, depth), limit)

    # ----- export ------------------------------------------------------------------------

    def export(self) -> Iterator[list[Any]]:
        """The snapshot's whole index, canonically: two indexes of one snapshot export equal.
        One repository: with several in the store, open the index with `repo`."""
        snapshot = self.snapshot
        for row in self.store.export_rows(snapshot.id, snapshot.stage_keys):
            yield list(row)

    # ----- graph -------------------------------------------------------------------------

    def _is_path(self, sid: int, name: str) -> bool:
        # A file of the snapshot; else a path-like name that no symbol has (TS/JS qualified
        # names are paths too: `src/lib/client.Client.get`).
        if self.store.symbols_in_file(sid, name):
            return True
        return ("/" in name or name.endswith(".py")) and not any(
            r.qname == name for r in self.store.find_symbols(sid, name))

    def graph(self, query: str, name: str) -> list[dict[str, Any]]:
        """Rows of every repository (in identity order), each with its `repo`."""
        if query not in GRAPH_QUERIES:
            raise UserError(f"unknown graph query {query!r}: use one of {', '.join(GRAPH_QUERIES)}")
        return [{**row, "repo": snap.repo} for snap in self.snapshots
                for row in self._graph(snap.id, query, name)]

    def _graph(self, sid: int, query: str, name: str) -> list[dict[str, Any]]:
        store = self.store
        if query == "defs":
            rows = store.find_symbols(sid, name)
            return [{**r._asdict(), "language": language_name(r.path)} for r in rows]
        path_query = self._is_path(sid, name)
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
             "dst_path": e.dst_path, "line": e.line, "language": language_name(e.src_path),
             "dst_language": language_name(e.dst_path)}
            for e in edges
        ]

    def repo_name(self, identity: str) -> str:
        return next((s.repo_name for s in self.snapshots if s.repo == identity), identity)


def open_index(db: str | None = None, repo: str | None = None) -> Index:
    url = find_db(db)
    if "://" not in url and not Path(url).exists():
        raise UserError(f"no index at {url}")
    return Index(open_store(url, create=False), repo)
