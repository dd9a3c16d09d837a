"""Queries over the latest complete snapshot of each repository in a store: lexical, vector and
hybrid search and graph lookups (across repositories, or in one), and the export (of one).

`Index` is the small public surface (`codegraph.open(db)`): the CLI and tests use only it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codegraph import lexical, vector_index
from codegraph.chunk_map import ChunkMap, ChunkSource, Entry
from codegraph.errors import DamagedIndexError, NoIndexError, UserError
from codegraph.names import DB_FILENAME, DEFAULT_DB_DIRNAME, L2, L3, L4, language_name
from codegraph.store import Store, bm25, open_store
from codegraph.store.base import ChunkRow, FileRow, LexicalHit, SnapshotInfo, SymbolRow, text_ok
from codegraph.units import window_body

if TYPE_CHECKING:  # imported on use: a CLI search, one query, asks the store's full-text index
    from codegraph.lexical_index import LexicalIndex

# Hybrid search (see `fuse`): the lexical ranking's weight against the vector's cosine, and how
# deep each ranking is read. Both chosen on bench/bench_search.py (ARCHITECTURE.md, "Search").
LEXICAL_WEIGHT = 0.12
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
    return {_unit_key(h): (h.score - bottom) / span if span > 0 else 1.0 for h in hits}


def _unit_key(hit: Hit) -> tuple[str, str, int, str]:
    return (hit.repo, hit.path, hit.start_line, hit.symbol)


def fuse(lexical_hits: list[Hit], vector_hits: list[Hit], limit: int,
         lexical_weight: float | None = None) -> list[Hit]:
    """Hybrid ranking: a unit's vector score (its cosine, as the vector ranking gives it) plus
    LEXICAL_WEIGHT x its lexical score min-max normalised over the lexical ranking (best 1,
    last 0, absent 0). A unit absent from the vector ranking scores that ranking's last cosine
    (it is at most that). The cosine is kept as it is, not stretched over its ranking: when the
    vector ranking's first units are close (it is unsure) the lexical score decides between
    them, and a unit whose cosine stands out keeps its place against a lexical first. The
    weight is chosen on the benchmark (bench/bench_search.py). Ties: repository, path, line."""
    weight = LEXICAL_WEIGHT if lexical_weight is None else lexical_weight
    lex = _normalised(lexical_hits)
    vec = {_unit_key(h): h.score for h in vector_hits}
    floor = vector_hits[-1].score if vector_hits else 0.0
    hits: dict[tuple[str, str, int, str], Hit] = {}
    for h in (*lexical_hits, *vector_hits):  # the lexical snippet (lines with query terms) first
        hits.setdefault(_unit_key(h), h)
    fused = {key: vec.get(key, floor) + weight * lex.get(key, 0.0) for key in hits}
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


# ----- live queries: definitions, call graph, impact, outline, overview, status (issue 14) ------
# What `codegraph mcp`, `serve` and the CLI's definition/outline/impact/overview/status answer
# (through `codegraph.tools`, which bounds and labels them). Every one reads only the store:
# sources come from the stored chunks, paths are matched against the snapshot's file list and
# never opened, so a name or path argument cannot reach anything outside the index.

MAX_DEPTH = 5
_PATH_LINE = re.compile(r"^(?P<path>.+):(?P<line>[0-9]+)$")


def _check_name(name: str, what: str = "name") -> str:
    name = name.strip()
    if not name:
        raise UserError(f"empty {what}")
    if len(name) > 1000:
        raise UserError(f"{what} is longer than 1000 characters")
    return name


def _check_depth(depth: int) -> int:
    if not 1 <= depth <= MAX_DEPTH:
        raise UserError(f"depth must be between 1 and {MAX_DEPTH}")
    return depth


def _edge_dict(edge: Any, depth: int | None = None) -> dict[str, Any]:
    """Every field the graph's edges have (kind, call line, and whatever else they carry)."""
    import msgspec

    row = msgspec.structs.asdict(edge)
    return {**row, "depth": depth} if depth is not None else row


def pagerank(nodes: list[str], links: list[tuple[str, str]], damping: float = 0.85,
             iterations: int = 50) -> dict[str, float]:
    """PageRank over `links` (src -> dst: dst gains rank from src), power iteration; a node
    with no out-links spreads its rank evenly. Deterministic; sums to 1."""
    import numpy as np

    if not nodes:
        return {}
    ids = {n: i for i, n in enumerate(nodes)}
    n = len(nodes)
    pairs = sorted({(ids[a], ids[b]) for a, b in links if a in ids and b in ids and a != b})
    src = np.array([a for a, _ in pairs], dtype=np.int64)
    dst = np.array([b for _, b in pairs], dtype=np.int64)
    out_degree = np.bincount(src, minlength=n).astype(np.float64)
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        share = np.divide(rank, out_degree, out=np.zeros(n), where=out_degree > 0)
        spread = np.bincount(dst, weights=share[src], minlength=n) if len(pairs) else np.zeros(n)
        dangling = rank[out_degree == 0].sum()
        new = (1 - damping) / n + damping * (spread + dangling / n)
        if np.abs(new - rank).sum() < 1e-10:
            rank = new
            break
        rank = new
    return {node: float(rank[i]) for node, i in ids.items()}


class LiveQueries:
    """The queries behind the MCP and HTTP tools, mixed into `Index`."""

    store: Store
    snapshots: list[SnapshotInfo]
    _repo_filter: str | None
    _files_cache: dict[int, dict[str, FileRow]]
    _rank_cache: dict[int, dict[str, Any]]

    # --- which snapshot, and is it fresh -------------------------------------------------

    def refresh(self) -> bool:
        """Follow the store: answer from each repository's latest complete snapshot from now on.
        True when any changed (a long-lived server calls this before every answer)."""
        latest = self.store.latest_snapshots()
        if not latest:
            return False
        chosen = select_repos(latest, self._repo_filter) if self._repo_filter else latest
        if [s.id for s in chosen] == [s.id for s in self.snapshots]:
            return False
        self.snapshots = chosen
        live = {s.id for s in chosen}
        for cache in (self._files_cache, self._rank_cache):
            for sid in [k for k in cache if k not in live]:
                del cache[sid]
        return True

    def view(self, repo: str | None) -> Any:
        """This index limited to one repository (by name, path or URL), sharing its caches."""
        if not repo:
            return self
        import copy

        view = copy.copy(self)
        view.snapshots = select_repos(self.snapshots, repo)
        view.warnings = []
        return view

    def files(self, snap: SnapshotInfo) -> dict[str, FileRow]:
        files = self._files_cache.get(snap.id)
        if files is None:
            files = self._files_cache[snap.id] = {r.path: r for r in self.store.snapshot_files(snap.id)}
        return files

    def _find_file(self, path: str) -> list[tuple[SnapshotInfo, FileRow]]:
        """The indexed files `path` names, matched against the snapshots' file lists only."""
        path = _check_name(path, "path")
        candidates = [path]
        for snap in self.snapshots:
            if path.startswith(snap.repo.rstrip("/") + "/"):  # an absolute path inside the repository
                candidates.append(path[len(snap.repo.rstrip("/")) + 1:])
        found = []
        for snap in self.snapshots:
            files = self.files(snap)
            for candidate in candidates:
                norm = candidate[2:] if candidate.startswith("./") else candidate
                if norm in files:
                    found.append((snap, files[norm]))
                    break
        return found

    def _require_file(self, path: str) -> list[tuple[SnapshotInfo, FileRow]]:
        found = self._find_file(path)
        if not found:
            raise UserError(f"no indexed file {path!r} (paths are relative to the repository root, "
                            "as search hits give them)")
        return found

    # --- definition, outline -------------------------------------------------------------

    def source_lines(self, snap: SnapshotInfo, path: str, start: int, end: int, qname: str = "") -> str:
        """A definition's text as indexed, from its unit's stored windows (the snapshot's text,
        not the disk's: never a file outside the index, never a newer version of this one),
        without their context headers. A function's is all of it; a class's is its header and
        own statements, each member outlined by its signature (the members are units too)."""
        rows = [r for r in self.store.chunks_of_files(snap.id, snap.stage_keys[L2], [path])
                if r.start_line == start and r.end_line == end and text_ok(r.text, r.text_hash)]
        named = [r for r in rows if r.symbol and qname.endswith(r.symbol)]
        return "".join(window_body(r.text) for r in named or rows).rstrip("\n")

    def definition(self, name: str) -> list[dict[str, Any]]:
        """A symbol's definitions: by qualified name, by short name (may match several), or the
        innermost symbol around `path:line`."""
        name = _check_name(name)
        rows: list[tuple[SnapshotInfo, SymbolRow]] = []
        match = _PATH_LINE.match(name)
        if match and self._find_file(match["path"]):
            line = int(match["line"])
            for snap, file in self._find_file(match["path"]):
                around = [r for r in self.store.symbols_in_file(snap.id, file.path)
                          if r.start_line <= line <= r.end_line]
                if around:
                    rows.append((snap, min(around, key=lambda r: (r.end_line - r.start_line, r.qname))))
            if not rows:
                raise UserError(f"no symbol at {name}")
        else:
            for snap in self.snapshots:
                found = self.store.find_symbols(snap.id, name)
                rows += [(snap, r) for r in found if r.qname == name or r.name == name] or [
                    (snap, r) for r in found]
        return [{"repo": snap.repo, "qname": r.qname, "name": r.name, "kind": r.kind, "path": r.path,
                 "start_line": r.start_line, "end_line": r.end_line, "signature": r.signature,
                 "docstring": r.docstring,
                 "source": self.source_lines(snap, r.path, r.start_line, r.end_line, r.qname)}
                for snap, r in rows]

    def outline(self, path: str) -> list[dict[str, Any]]:
        """A file's symbols, nested (a method inside its class), in line order."""
        out = []
        for snap, file in self._require_file(path):
            symbols = sorted(self.store.symbols_in_file(snap.id, file.path),
                             key=lambda r: (r.start_line, -r.end_line, r.qname))
            roots: list[dict[str, Any]] = []
            stack: list[tuple[SymbolRow, dict[str, Any]]] = []
            for r in symbols:
                if r.kind == "module":
                    continue
                node = {"name": r.name, "qname": r.qname, "kind": r.kind, "start_line": r.start_line,
                        "end_line": r.end_line, "signature": r.signature, "children": []}
                while stack and not (stack[-1][0].start_line <= r.start_line
                                     and r.end_line <= stack[-1][0].end_line):
                    stack.pop()
                (stack[-1][1]["children"] if stack else roots).append(node)
                stack.append((r, node))
            out.append({"repo": snap.repo, "path": file.path, "module": file.module, "symbols": roots})
        return out

    # --- call graph and impact -------------------------------------------------------------

    def _start(self, snap: SnapshotInfo, name: str) -> tuple[list[str], list[str]]:
        """(symbol qnames, file paths) that `name` designates in the snapshot."""
        files = self.files(snap)
        norm = name[2:] if name.startswith("./") else name
        if norm in files:
            return [], [norm]
        match = _PATH_LINE.match(name)
        if match and match["path"] in files:
            line = int(match["line"])
            around = [r for r in self.store.symbols_in_file(snap.id, match["path"])
                      if r.start_line <= line <= r.end_line and r.kind != "module"]
            if around:
                return [min(around, key=lambda r: (r.end_line - r.start_line, r.qname)).qname], []
            return [], [match["path"]]
        found = self.store.find_symbols(snap.id, name)
        exact = [r for r in found if r.qname == name or r.name == name] or found
        return sorted({r.qname for r in exact}), []

    def call_graph(self, name: str, direction: str, depth: int = 1) -> list[dict[str, Any]]:
        """Call edges reaching `name` (callers) or leaving it (callees), breadth first to
        `depth` levels: each edge with its kind, call line and level."""
        name, depth = _check_name(name), _check_depth(depth)
        if direction not in ("callers", "callees"):
            raise UserError("direction must be callers or callees")
        out = []
        matched = False
        for snap in self.snapshots:
            symbols, paths = self._start(snap, name)
            matched = matched or bool(symbols or paths)
            seen_edges: set[tuple[Any, ...]] = set()
            frontier, seen = set(symbols), set(symbols)
            for level in range(1, depth + 1):
                if paths and level == 1:
                    column = "dst_path" if direction == "callers" else "src_path"
                    edges = self.store.edges_where(snap.id, "calls", column, paths)
                elif frontier:
                    column = "dst" if direction == "callers" else "src"
                    edges = self.store.edges_where(snap.id, "calls", column, sorted(frontier))
                else:
                    break
                frontier = set()
                for e in edges:
                    key = (e.src, e.dst, e.src_path, e.line)
                    if key in seen_edges:
                        continue
                    seen_edges.add(key)
                    out.append({**_edge_dict(e, level), "repo": snap.repo})
                    nxt = e.src if direction == "callers" else e.dst
                    if nxt not in seen:
                        seen.add(nxt)
                        frontier.add(nxt)
        if not matched:
            raise UserError(f"no symbol or indexed file named {name!r} (try search)")
        return out

    def impact(self, name_or_path: str, depth: int = 2) -> dict[str, list[dict[str, Any]]]:
        """What an edit of a symbol or file can affect, transitively to `depth` levels: the
        symbols that call, subclass or import it, and the files whose resolution read its facts
        (the reverse-dependency index) or that import it."""
        from codegraph.store.base import read_key

        name, depth = _check_name(name_or_path, "name or path"), _check_depth(depth)
        files_out: list[dict[str, Any]] = []
        symbols_out: list[dict[str, Any]] = []
        matched = False
        for snap in self.snapshots:
            files = self.files(snap)
            start_symbols, start_files = self._start(snap, name)
            if not start_symbols and not start_files:
                continue
            matched = True
            seen_symbols, seen_files = set(start_symbols), set(start_files)
            sym_frontier, file_frontier = set(start_symbols), set(start_files)
            by_qname: dict[str, SymbolRow] = {}
            for q in start_symbols:
                for r in self.store.find_symbols(snap.id, q):
                    by_qname[r.qname] = r
            for level in range(1, depth + 1):
                keys: set[int] = set()
                # The facts of what changes: its symbols (a file: all of them) and modules.
                for path in file_frontier:
                    module = files[path].module if path in files else None
                    if module:
                        keys.add(read_key("", f"mod:{module}"))
                    for extra in ("stars", "all", "name"):
                        keys.add(read_key(path, extra))
                    for r in self.store.symbols_in_file(snap.id, path):
                        by_qname[r.qname] = r
                        prefix = f"{module}." if module else ""
                        local = r.qname[len(prefix):] if prefix and r.qname.startswith(prefix) else ""
                        if local:
                            keys.add(read_key(path, f"sym:{local}"))
                targets = set(sym_frontier) | {q for q, r in by_qname.items() if r.path in file_frontier}
                for q in sym_frontier:
                    r = by_qname.get(q)
                    module = files[r.path].module if r is not None and r.path in files else None
                    if r is not None and module and q.startswith(module + "."):
                        keys.add(read_key(r.path, f"sym:{q[len(module) + 1:]}"))
                new_files: dict[str, str] = {}
                for path in sorted(self.store.readers(snap.id, keys)):
                    new_files.setdefault(path, "reads")
                for path in sorted(self.store.dependents(snap.id, sorted(file_frontier))):
                    new_files.setdefault(path, "imports")
                new_symbols: dict[str, tuple[str, str, int]] = {}
                for kind in ("calls", "inherits", "imports"):
                    for e in self.store.edges_where(snap.id, kind, "dst", sorted(targets)):
                        new_files.setdefault(e.src_path, kind)
                        if kind != "imports" and e.src not in seen_symbols:
                            new_symbols.setdefault(e.src, (kind, e.src_path, e.line))
                file_frontier = {p for p in new_files if p not in seen_files}
                sym_frontier = set(new_symbols)
                for path in sorted(file_frontier):
                    files_out.append({"repo": snap.repo, "path": path, "depth": level,
                                      "via": new_files[path]})
                for q in sorted(sym_frontier):
                    kind, path, line = new_symbols[q]
                    symbols_out.append({"repo": snap.repo, "qname": q, "path": path, "line": line,
                                        "depth": level, "via": kind})
                seen_files |= file_frontier
                seen_symbols |= sym_frontier
                if not file_frontier and not sym_frontier:
                    break
        if not matched:
            raise UserError(f"no symbol or indexed file named {name!r} (try search)")
        return {"files": files_out, "symbols": symbols_out}

    # --- overview ----------------------------------------------------------------------------

    def ranking(self, snap: SnapshotInfo) -> dict[str, Any]:
        """PageRank of the snapshot's files (over file dependencies) and symbols (over calls,
        inheritance and imports), computed once per snapshot."""
        cached = self._rank_cache.get(snap.id)
        if cached is not None:
            return cached
        edges, deps = self.store.snapshot_graph(snap.id)
        files = sorted(self.files(snap))
        file_rank = pagerank(files, [(a, b) for a, b in deps])
        symbols: dict[str, str] = {}
        links = []
        for e in edges:
            if e.call_kind == "dispatch":  # a possible override, not a use: it would rank every
                continue  # override of a much-called method as if each were called that much
            symbols.setdefault(e.dst, e.dst_path)
            symbols.setdefault(e.src, e.src_path)
            links.append((e.src, e.dst))
        symbol_rank = pagerank(sorted(symbols), links)
        cached = self._rank_cache[snap.id] = {"files": file_rank, "symbols": symbol_rank,
                                              "symbol_paths": symbols}
        return cached

    def overview(self) -> list[dict[str, Any]]:
        """The most central files, each with its most central symbols, best first (across
        repositories by rank relative to each repository's size)."""
        out = []
        for snap in self.snapshots:
            rank = self.ranking(snap)
            if "overview" in rank:
                out += rank["overview"]
                continue
            mine: list[dict[str, Any]] = []
            n = max(1, len(rank["files"]))
            per_file: dict[str, list[tuple[float, str]]] = {}
            for q, score in rank["symbols"].items():
                per_file.setdefault(rank["symbol_paths"][q], []).append((score, q))
            for path, score in rank["files"].items():
                mine.append({"repo": snap.repo, "path": path, "score": round(score * n, 4),
                             "module": self.files(snap)[path].module,
                             "top_symbols": [q for _, q in sorted(per_file.get(path, []),
                                                                   key=lambda t: (-t[0], t[1]))[:5]]})
            rank["overview"] = mine
            out += mine
        out.sort(key=lambda r: (-r["score"], r["repo"], r["path"]))
        return out

    # --- status --------------------------------------------------------------------------

    def disk_changes(self, snap: SnapshotInfo) -> dict[str, Any]:
        """What changed in the repository's directory since the snapshot (a local repository):
        a scan that reads only files whose size or mtime moved. `available` False when the
        directory is gone (moved away) or the repository is a URL."""
        from codegraph.snapshot import scan

        root = Path(snap.repo)
        if "://" in snap.repo or not root.is_absolute():
            return {"available": False, "reason": "not a local directory"}
        if not root.is_dir():
            return {"available": False, "reason": f"{snap.repo} is gone (moved or deleted): serving "
                    "the last snapshot"}
        files = self.files(snap)
        try:
            now = scan(root, known={p: (r.size, r.mtime_ns, r.content_hash) for p, r in files.items()},
                       known_scanned_at=snap.created_at)
        except (OSError, UserError) as exc:
            return {"available": False, "reason": f"cannot scan {snap.repo}: {exc}"}
        current = {f.path: f.content_hash for f in now.files}
        changed = sorted([p for p, h in current.items() if p not in files or files[p].content_hash != h]
                         + [p for p in files if p not in current])
        return {"available": True, "changed": len(changed), "paths": changed[:20]}

    def repo_status(self, snap: SnapshotInfo, queue: Any | None, scan_disk: bool = True) -> dict[str, Any]:
        commit = None
        job_id = self.store.snapshot_job(snap.id)
        active: list[Any] = []
        if queue is not None:
            with contextlib.suppress(Exception):
                job = queue.get(job_id) if job_id is not None else None
                if job is not None and job.result:
                    commit = json.loads(job.result).get("commit")
                active = queue.active([snap.repo])
        return {
            "repo": snap.repo, "name": snap.repo_name, "snapshot": snap.manifest_hash,
            "snapshot_id": snap.id, "commit": commit,
            "indexed_at": _iso(snap.created_at), "mode": snap.mode,
            "files": len(self.files(snap)),
            "updating": any(j.state == "running" for j in active),
            "queued": sum(j.state == "queued" for j in active),
            **({"disk": self.disk_changes(snap)} if scan_disk else {}),
        }


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _score_runs(nearest: list[tuple[str, float]], chunks: ChunkMap) -> Iterator[tuple[float, list[Entry]]]:
    """The held chunks of the `nearest` texts (best first), as runs of one score each, a run
    ordered by repository, path and line (then the chunk's place in its file): the order of a
    sort of them all by (-score, repository, path, line), built a run at a time, so that a walk
    that stops after `limit` units sorts only what it reads."""
    i = 0
    while i < len(nearest):
        score = nearest[i][1]
        j = i + 1
        while j < len(nearest) and nearest[j][1] == score:
            j += 1
        run = [e for h, _ in nearest[i:j] for e in chunks.entries(h)]
        if len(run) > 1:
            run.sort(key=lambda e: (e.source, e.path, e.start_line, e.ordinal))
        yield score, run
        i = j


class Index(LiveQueries):
    """A read handle on the latest complete snapshot of every repository in one store, or of
    the one `repo` names. Search and graph queries answer across them (each hit and row carries
    its repository); `export` is of one repository."""

    def __init__(self, store: Store, repo: str | None = None,
                 ann_threshold: int | None = vector_index.ANN_THRESHOLD,
                 hold_lexical: bool = True, hold_chunks: bool = True) -> None:
        self.store = store
        self._repo = repo
        # Ordered by identity: ties across repositories break by repository, then path and line.
        self.snapshots: list[SnapshotInfo] = self._latest()
        self._repo_filter = repo
        self._files_cache: dict[int, dict[str, FileRow]] = {}
        self._rank_cache: dict[int, dict[str, Any]] = {}
        # What the last search skipped because its stored rows are damaged (`index --full`
        # repairs them): a query never returns garbage, and never fails over it either.
        self.warnings: list[str] = []
        # The snapshots' vectors, loaded (and verified) by the first vector search and kept:
        # a long-running process answers from memory until a repository has a new snapshot.
        # None: always exact (a one-query process: building an ANN graph costs more than a scan).
        self.ann_threshold = ann_threshold
        self._vectors: vector_index.VectorIndex | None = None
        # The snapshots' lexical documents, held the same way (`lexical_index`) by the first
        # lexical search; False: every search asks the store (one FTS5 query is cheaper than
        # loading every document, for a process that asks one).
        self.hold_lexical = hold_lexical
        self._lexical: LexicalIndex | None = None
        # The snapshots' chunk rows (which units hold a text), held the same way
        # (`chunk_map`) by the first vector search: a hit is built from memory, not a store query
        # and a chunk-set check per hit's file. False: every vector search asks the store for
        # its hits' chunks and checks their files' sets (a one-query process).
        self.hold_chunks = hold_chunks
        self._chunks: ChunkMap | None = None
        self._damaged_vector_paths: dict[int, dict[str, str]] = {}
        # (stage key, content hash) of the outputs that passed their checks (`_unverified`),
        # and each snapshot's path -> content hash for it.
        self._verified: set[tuple[str, str | None]] = set()
        self._file_hashes: dict[int, dict[str, str]] = {}

    def _latest(self) -> list[SnapshotInfo]:
        snapshots = self.store.latest_snapshots()
        if not snapshots:
            raise NoIndexError(f"{self.store.url} holds no completed index yet: run `codegraph index` first")
        return select_repos(snapshots, self._repo) if self._repo else snapshots

    def refresh(self) -> bool:
        """Follow each repository's latest complete snapshot (one small query): a long-running
        process opens its Index once and still answers from the newest index. True when a
        snapshot changed; held vectors are then brought up to date by the next vector search."""
        latest = self._latest()
        if [s.id for s in latest] == [s.id for s in self.snapshots]:
            return False
        self.snapshots = latest
        self._file_hashes = {s.id: self._file_hashes[s.id] for s in latest if s.id in self._file_hashes}
        return True

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
        self.refresh()
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
        held = self._held_lexical(match, limit) if self.hold_lexical else None
        if held is not None:
            for snap in self.snapshots:
                self._skipped(snap, "L3 lexical document", self._lexical.damaged.get(snap.id, {})
                              if self._lexical else {})
            ranked = [(h.score, i, h.path, h.start_line, h) for i, h in held]
        for i, snap in enumerate(self.snapshots if held is None else []):
            try:
                found = self.store.lexical_search(snap.id, snap.stage_keys[L3], match, limit)
            except DamagedIndexError as exc:
                self._warn(f"no lexical hits: {exc} (run `codegraph index --full`)")
                continue
            # A damaged document ranks wrongly, and answers wrongly: skipped.
            bad = self._damaged_lexical(snap, sorted({h.path for h in found}))
            self._skipped(snap, "L3 lexical document", bad)
            ranked += [(h.score, i, h.path, h.start_line, h) for h in found if h.path not in bad]
        ranked.sort(key=lambda r: (-r[0], r[1], r[2], r[3]))
        return [Hit(h.path, h.start_line, h.end_line, _qualify_name(h.module, h.symbol), round(score, 4),
                    _snippet(h.body, terms), self.snapshots[i].repo)
                for score, i, _, _, h in ranked[:limit]]

    def _held_lexical(self, match: str, limit: int) -> list[tuple[int, LexicalHit]] | None:
        """The held documents' ranking (`lexical_index`), synced to the current snapshots; None
        where the store must answer (a phrase of several tokens)."""
        from codegraph.lexical_index import LexicalIndex, LexicalSource

        if self._lexical is None:
            self._lexical = LexicalIndex()
        self._lexical.sync(self.store, [LexicalSource(s.id, s.stage_keys[L3]) for s in self.snapshots])
        return self._lexical.search(self.store, [bm25.tokenize_phrase(p) for p in bm25.parse_match(match)],
                                    limit)

    def vector(self, query: str, limit: int, query_vector: Any = None) -> list[Hit]:
        """Cosine similarity to each unit window's vector (its context header and lines); a
        unit scores its best window, which is its snippet. One hit per unit. (`query_vector`:
        the query already embedded, e.g. by a caller that measures search without the model;
        otherwise `embed.embed_query`'s vector, the model's query adapter applied.)"""
        from codegraph import embed

        if query_vector is None:
            query_vector = embed.embed_query([query], self._model_key().split(":", 1)[1])[0]
        # Stored vectors must have the query vector's length (the model's dimensions).
        index = self.vector_index(len(query_vector))
        chunks = self.chunk_map() if self.hold_chunks else None
        self._skip_damaged_vectors(chunks)
        # A unit may have several windows near the query: read deeper until `limit` units.
        k = max(4 * limit, 32)
        while True:
            nearest = index.search(query_vector, k)
            hits = (self._held_unit_hits(chunks, nearest, query, limit) if chunks is not None
                    else self._unit_hits(nearest, query, limit))
            if len(hits) >= limit or len(nearest) < k:
                return hits
            k *= 4

    def _model_key(self) -> str:
        models = sorted({s.stage_keys[L4] for s in self.snapshots})
        if len(models) > 1:  # vectors of different models are not comparable
            raise UserError(f"the repositories were embedded with different models ({', '.join(models)}):"
                            " pass --repo NAME")
        return models[0]

    def vector_index(self, dimensions: int | None = None) -> vector_index.VectorIndex:
        """The held vectors of the current snapshots, synced (see `vector_index`), of
        `dimensions` floats each (default: the model's)."""
        from codegraph import embed

        model_key = self._model_key()
        dimensions = dimensions or embed.dimensions(model_key.split(":", 1)[1])
        if self._vectors is None or self._vectors.dimensions != dimensions:
            self._vectors = vector_index.VectorIndex(dimensions, self.ann_threshold)
        if self._vectors.sync(self.store, [vector_index.VectorSource(s.id, s.stage_keys[L2], model_key)
                               for s in self.snapshots]):
            self._damaged_vector_paths = {}
        return self._vectors

    def chunk_map(self) -> ChunkMap:
        """The held chunk rows of the current snapshots, synced (see `chunk_map`)."""
        if self._chunks is None:
            self._chunks = ChunkMap()
        if self._chunks.sync(self.store, [ChunkSource(s.id, s.stage_keys[L2]) for s in self.snapshots]):
            self._damaged_vector_paths = {}
        return self._chunks

    def _skip_damaged_vectors(self, chunks: ChunkMap | None = None) -> None:
        """Warn of the files whose texts' stored vectors failed their check when loaded."""
        assert self._vectors is not None
        damaged = sorted(self._vectors.damaged)
        for i, snap in enumerate(self.snapshots):
            if snap.id not in self._damaged_vector_paths:
                if chunks is not None:
                    paths = {e.path for h in damaged for e in chunks.entries(h) if e.source == i}
                else:
                    paths = {c.path for c in self.store.chunks_of_texts(
                        snap.id, snap.stage_keys[L2], damaged)} if damaged else set()
                self._damaged_vector_paths[snap.id] = dict.fromkeys(paths, "")
            self._skipped(snap, "L4 vector", self._damaged_vector_paths[snap.id])

    def _held_unit_hits(self, chunks: ChunkMap, nearest: list[tuple[str, float]], query: str,
                        limit: int) -> list[Hit]:
        """`_unit_hits` from the held chunk rows (verified when loaded): the same hits in the
        same order. Only the hits' own texts are read (for their snippets), each checked
        against its hash; a file whose text fails is skipped and reported, as a damaged set."""
        for snap in self.snapshots:
            self._skipped(snap, "L2 chunk set", chunks.damaged.get(snap.id, {}))
        skip: set[tuple[int, str]] = set()  # (snapshot, path) of texts damaged since loaded
        while True:
            picked: list[tuple[float, Entry]] = []
            seen: set[tuple[int, str, int, str]] = set()
            for score, group in _score_runs(nearest, chunks):
                for e in group:
                    unit = (e.source, e.path, e.start_line, e.symbol)
                    if unit in seen or (e.source, e.path) in skip:
                        continue
                    seen.add(unit)
                    picked.append((score, e))
                    if len(picked) == limit:
                        break
                if len(picked) == limit:
                    break
            texts = self.store.texts_of(sorted({e.text_hash for _, e in picked}))
            bad = {(e.source, e.path) for _, e in picked if not text_ok(texts.get(e.text_hash), e.text_hash)}
            if not bad:
                break
            skip |= bad
            for source, path in sorted(bad):
                self._skipped(self.snapshots[source], "L2 chunk set", {path: ""})
        terms = lexical.query_terms(query)
        out = []
        for score, e in picked:
            text = texts[e.text_hash] or ""
            out.append(Hit(e.path, e.start_line, e.end_line, _qualify_name(e.module, e.symbol),
                           round(score, 4), _snippet(window_body(text) or text, terms),
                           self.snapshots[e.source].repo))
        return out

    def _unit_hits(self, nearest: list[tuple[str, float]], query: str, limit: int) -> list[Hit]:
        """Nearest window texts best first ((text hash, score)) -> the first `limit` distinct
        units, each scored by its best text (a window or its name text: `units.unit_chunks`).
        Exact: a unit's score is the max over its texts, so the first text of each unit in
        this order is its best. A hit through the name text shows that line as its snippet."""
        score = dict(nearest)
        found: list[tuple[int, ChunkRow]] = []
        for i, snap in enumerate(self.snapshots):
            rows = self.store.chunks_of_texts(snap.id, snap.stage_keys[L2], list(score))
            damaged = self._damaged_chunks(snap, sorted({c.path for c in rows}))
            found += [(i, c) for c in rows if c.path not in damaged and text_ok(c.text, c.text_hash)]
        # Best first; ties by repository, path and line, for stable output.
        found.sort(key=lambda item: (-score[item[1].text_hash], item[0], item[1].path, item[1].start_line))
        terms = lexical.query_terms(query)
        hits: list[Hit] = []
        seen: set[tuple[int, str, int, str]] = set()
        for i, c in found:
            unit = (i, c.path, c.start_line, c.symbol)
            if unit in seen:
                continue
            seen.add(unit)
            hits.append(Hit(c.path, c.start_line, c.end_line, _qualify(c), round(score[c.text_hash], 4),
                            _snippet(window_body(c.text) or c.text, terms), self.snapshots[i].repo))
            if len(hits) == limit:
                break
        return hits

    def _damaged_chunks(self, snap: SnapshotInfo, paths: list[str]) -> set[str]:
        """The `paths` whose stored chunks (lines, symbols or texts) fail their checks."""
        bad = self._unverified(snap, L2, paths, lambda todo: self.store.damaged_chunk_sets(
            snap.id, snap.stage_keys[L2], todo)[0])
        self._skipped(snap, "L2 chunk set", bad)
        return set(bad)

    def _damaged_lexical(self, snap: SnapshotInfo, paths: list[str]) -> dict[str, str]:
        """The `paths` whose stored lexical documents fail their checks."""
        return self._unverified(snap, L3, paths, lambda todo: self.store.damaged_lexical(
            snap.id, snap.stage_keys[L3], todo))

    def _unverified(self, snap: SnapshotInfo, stage: str, paths: list[str],
                    check: Callable[[list[str]], dict[str, str]]) -> dict[str, str]:
        """`check` (path -> content hash of each damaged output) of the `paths` whose output for
        `stage` this Index has not seen pass yet. Outputs are keyed by content and never change,
        so each is verified once per Index, not on every query that returns it; a damaged one
        is checked (and reported) again each time."""
        files = self._file_hashes.get(snap.id)
        if files is None:
            files = self._file_hashes[snap.id] = {f.path: f.content_hash for f in
                                                  self.store.snapshot_files(snap.id)}
        key = snap.stage_keys[stage]
        todo = sorted({p for p in paths if (key, files.get(p)) not in self._verified})
        if not todo:
            return {}
        bad = check(todo)
        self._verified.update((key, files[p]) for p in todo if p not in bad and p in files)
        return bad

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
        self.refresh()
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

    def graph(self, query: str, name: str, dispatch: bool = True) -> list[dict[str, Any]]:
        """Rows of every repository (in identity order), each with its `repo`. Call edges carry
        their `call_kind`; `dispatch=False` leaves out the overrides a call may reach."""
        if query not in GRAPH_QUERIES:
            raise UserError(f"unknown graph query {query!r}: use one of {', '.join(GRAPH_QUERIES)}")
        self.refresh()
        return [{**row, "repo": snap.repo} for snap in self.snapshots
                for row in self._graph(snap.id, query, name, dispatch)]

    def _graph(self, sid: int, query: str, name: str, dispatch: bool) -> list[dict[str, Any]]:
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
             "dst_path": e.dst_path, "line": e.line, "call_kind": e.call_kind,
             "language": language_name(e.src_path), "dst_language": language_name(e.dst_path)}
            for e in edges if dispatch or e.call_kind != "dispatch"
        ]

    def repo_name(self, identity: str) -> str:
        return next((s.repo_name for s in self.snapshots if s.repo == identity), identity)


def open_index(db: str | None = None, repo: str | None = None,
               ann_threshold: int | None = vector_index.ANN_THRESHOLD, hold_lexical: bool = True,
               hold_chunks: bool = True) -> Index:
    """`ann_threshold=None, hold_lexical=False, hold_chunks=False` for a process that asks one
    query (the CLI): exact vector search, lexical search straight from the store's full-text
    index, and a vector hit's chunk rows read (and checked) per search."""
    url = find_db(db)
    if "://" not in url and not Path(url).exists():
        raise UserError(f"no index at {url}")
    return Index(open_store(url, create=False), repo, ann_threshold, hold_lexical, hold_chunks)
