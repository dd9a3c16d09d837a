"""The tools agents and services call — search, definition, callers, callees, impact, outline,
overview, status — as bounded, labelled answers over one `query.Index`.

`codegraph mcp` (stdio), `codegraph serve` (MCP over streamable HTTP, and a JSON HTTP API) and
the CLI's `definition|outline|impact|overview|status` all answer through `Tools`: the servers
only translate arguments and errors. Every answer carries

- `snapshots`: for each repository it answered from, the snapshot (manifest hash and id), when
  it was indexed and whether it is `fresh` — the repository's latest complete snapshot, no update
  of it running or queued, and no file on disk changed since (a watcher's pending changes, or a
  scan that reads only files whose size or mtime moved, at most every `disk_ttl` seconds) —
  with the reasons when it is not;
- `truncated`: how many items the limit left out and how many characters the character budget
  cut, so a caller knows it did not see everything.

Bad arguments raise `UserError` (one line, no traceback): the MCP server turns it into a tool
error, the HTTP API into a 400.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from codegraph.errors import UserError
from codegraph.query import MODES, Index, select_repos

DEFAULT_MAX_CHARS = 24_000  # about 6,000 tokens: an answer never floods an agent's context
MAX_LIMIT = 200
MAX_BUDGET_TOKENS = 50_000


class LiveState(Protocol):
    """What a watcher knows about a repository it keeps up to date (`watch.Watcher`)."""

    def live_state(self, repo: str) -> dict[str, Any] | None:
        """None when the repository is not watched; else `pending` (paths changed and not yet
        indexed), `updating` (bool) and `problem` (why it cannot be updated now, or None)."""


TOOL_DESCRIPTIONS = {
    "search": "Search the indexed code (lexical BM25, vector or hybrid). Hits: path, lines, "
              "qualified symbol, score, snippet.",
    "definition": "A symbol's source, signature, docstring and location. NAME: a qualified name "
                  "(pkg.mod.Class.method), a short name (may match several) or path:line.",
    "callers": "Who calls NAME (a symbol, or a file for all its symbols), to DEPTH levels: each "
               "call edge with its kind and call line.",
    "callees": "What NAME calls, to DEPTH levels: each call edge with its kind and call line.",
    "impact": "What an edit of NAME_OR_PATH can affect, transitively: dependent files (from the "
              "reverse-dependency index) and symbols that call, subclass or import it.",
    "outline": "A file's symbols (classes, functions, methods, variables), nested, with lines "
               "and signatures. PATH as search hits give it.",
    "overview": "The repository's most central files and their key symbols (PageRank over the "
                "code graph), fitted to BUDGET_TOKENS.",
    "status": "Per repository: snapshot, commit, when indexed, files changed on disk since, "
              "whether an update is running.",
}


def _limit(limit: int, default_max: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= default_max:
        raise UserError(f"limit must be between 1 and {default_max}")
    return limit


def _bound(items: list[Any], limit: int, max_chars: int, cut_fields: tuple[str, ...] = ()) -> tuple[
        list[Any], dict[str, int]]:
    """At most `limit` items and about `max_chars` characters of JSON; the first item that
    does not fit has its longest text field (`cut_fields`) shortened, later ones are left out."""
    kept: list[Any] = []
    omitted = max(0, len(items) - limit)
    used = cut = 0
    for i, item in enumerate(items[:limit]):
        size = len(json.dumps(item, ensure_ascii=False))
        if used + size > max_chars:
            room = max_chars - used
            field = max((f for f in cut_fields if isinstance(item.get(f), str)),
                        key=lambda f: len(item[f]), default=None) if isinstance(item, dict) else None
            if field is not None and size - len(item[field]) < room:
                keep = max(0, room - (size - len(item[field])) - 40)
                cut += len(item[field]) - keep
                item = {**item, field: item[field][:keep] + "\n… [cut]"}
                kept.append(item)
                used += len(json.dumps(item, ensure_ascii=False))
                omitted += len(items[:limit]) - i - 1
            else:
                omitted += len(items[:limit]) - i
            break
        kept.append(item)
        used += size
    return kept, {"items_omitted": omitted, "chars_cut": cut}


class Tools:
    """One index, shared by every request: answers are serialised (the index keeps per-snapshot
    caches and the last search's warnings), each from the store's latest snapshots."""

    def __init__(self, index: Index, queue: Any | None = None, live: LiveState | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, disk_ttl: float = 2.0) -> None:
        self.index, self.queue, self.live = index, queue, live
        self.max_chars = max_chars
        self.disk_ttl = disk_ttl
        self.lock = threading.Lock()
        self._disk: dict[int, tuple[float, dict[str, Any]]] = {}

    @classmethod
    def open(cls, db: str | None = None, repo: str | None = None, live: LiveState | None = None,
             **kwargs: Any) -> Tools:
        from codegraph.query import open_index
        from codegraph.queue import open_queue

        index = open_index(db, repo)
        try:
            queue = open_queue(index.store.url)
        except Exception:  # status still answers, without jobs
            queue = None
        return cls(index, queue, live, **kwargs)

    # ----- the envelope ----------------------------------------------------------------------

    def _call(self, fn: Callable[[Index], dict[str, Any]], repo: str | None = None) -> dict[str, Any]:
        if not self.lock.acquire(timeout=30):
            raise UserError("the server is busy: try again")
        try:
            self.index.refresh()
            idx = self.index.view(repo) if repo else self.index
            answer = fn(idx)
            snapshots = [self._freshness(s) for s in idx.snapshots]
            return {**answer, "fresh": all(s["fresh"] for s in snapshots), "snapshots": snapshots,
                    "warnings": list(idx.warnings)}
        finally:
            self.index.warnings = []
            self.lock.release()

    def _live(self, repo: str) -> dict[str, Any] | None:
        return self.live.live_state(repo) if self.live is not None else None

    def _disk_changes(self, snap: Any) -> dict[str, Any]:
        cached = self._disk.get(snap.id)
        if cached is None or time.monotonic() - cached[0] > self.disk_ttl:
            cached = self._disk[snap.id] = (time.monotonic(), self.index.disk_changes(snap))
        return cached[1]

    def _jobs(self, repo: str) -> list[Any]:
        if self.queue is None:
            return []
        try:
            return list(self.queue.active([repo]))
        except Exception:
            return []

    def _freshness(self, snap: Any) -> dict[str, Any]:
        reasons = []
        live = self._live(snap.repo)
        jobs = self._jobs(snap.repo)
        if live is not None:
            if live.get("updating"):
                reasons.append("an update is running")
            if live.get("pending"):
                reasons.append(f"{len(live['pending'])} changed file(s) not indexed yet")
            if live.get("problem"):
                reasons.append(live["problem"])
        else:
            disk = self._disk_changes(snap)
            if not disk.get("available") and disk.get("reason") != "not a local directory":
                reasons.append(disk["reason"])
            elif disk.get("changed"):
                reasons.append(f"{disk['changed']} file(s) changed on disk since")
        if any(j.state == "running" for j in jobs) and not (live and live.get("updating")):
            reasons.append("an update is running")
        if any(j.state == "queued" for j in jobs):
            reasons.append("an update is queued")
        return {"repo": snap.repo, "snapshot": snap.manifest_hash, "snapshot_id": snap.id,
                "indexed_at": snap.created_at, "fresh": not reasons, "stale_because": reasons}

    # ----- the tools -------------------------------------------------------------------------

    def search(self, query: str, mode: str | None = None, limit: int = 10, repo: str | None = None,
               path_glob: str | None = None) -> dict[str, Any]:
        _limit(limit)
        if mode is not None and mode not in MODES:
            raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if len(query) > 2000:
            raise UserError("query is longer than 2000 characters")
        match = _glob(path_glob) if path_glob else None

        def run(idx: Index) -> dict[str, Any]:
            chosen = mode or ("hybrid" if idx.has_vectors else "lexical")
            depth = limit if match is None else min(limit * 10, 1000)
            hits = [h.as_dict() for h in idx.search(query, chosen, depth)]
            if match is not None:
                hits = [h for h in hits if match(h["path"])]
            kept, cut = _bound(hits, limit, self.max_chars, ("snippet",))
            return {"query": query, "mode": chosen, "hits": kept, "truncated": cut}

        return self._call(run, repo)

    def definition(self, name: str, limit: int = 5) -> dict[str, Any]:
        _limit(limit, 50)

        def run(idx: Index) -> dict[str, Any]:
            found = idx.definition(name)
            if not found:
                raise UserError(f"no symbol named {name!r} (try search)")
            kept, cut = _bound(found, limit, self.max_chars, ("source", "docstring"))
            return {"name": name, "matches": len(found), "definitions": kept, "truncated": cut}

        return self._call(run)

    def callers(self, name: str, depth: int = 1, limit: int = 50) -> dict[str, Any]:
        return self._graph(name, "callers", depth, limit)

    def callees(self, name: str, depth: int = 1, limit: int = 50) -> dict[str, Any]:
        return self._graph(name, "callees", depth, limit)

    def _graph(self, name: str, direction: str, depth: int, limit: int) -> dict[str, Any]:
        _limit(limit, 1000)

        def run(idx: Index) -> dict[str, Any]:
            edges = idx.call_graph(name, direction, depth)
            kept, cut = _bound(edges, limit, self.max_chars)
            return {"name": name, "direction": direction, "depth": depth, "edges": kept, "truncated": cut}

        return self._call(run)

    def impact(self, name_or_path: str, depth: int = 2, limit: int = 100) -> dict[str, Any]:
        _limit(limit, 1000)

        def run(idx: Index) -> dict[str, Any]:
            found = idx.impact(name_or_path, depth)
            files, cut_files = _bound(found["files"], limit, self.max_chars // 2)
            symbols, cut_symbols = _bound(found["symbols"], limit, self.max_chars // 2)
            return {"name": name_or_path, "depth": depth, "files": files, "symbols": symbols,
                    "total_files": len(found["files"]), "total_symbols": len(found["symbols"]),
                    "truncated": {k: cut_files[k] + cut_symbols[k] for k in cut_files}}

        return self._call(run)

    def outline(self, path: str) -> dict[str, Any]:
        def run(idx: Index) -> dict[str, Any]:
            files = idx.outline(path)
            kept, cut = _bound(files, len(files), self.max_chars)
            if files and not kept:  # one huge file: keep its top level, without children
                flat = [{**files[0], "symbols": [{**s, "children": []} for s in files[0]["symbols"]]}]
                kept, cut = _bound(flat, 1, self.max_chars)
                cut["items_omitted"] = 0
                cut["nested_omitted"] = 1
            return {"path": path, "files": kept, "truncated": cut}

        return self._call(run)

    def overview(self, budget_tokens: int = 1000) -> dict[str, Any]:
        if not 50 <= budget_tokens <= MAX_BUDGET_TOKENS:
            raise UserError(f"budget_tokens must be between 50 and {MAX_BUDGET_TOKENS}")

        def run(idx: Index) -> dict[str, Any]:
            ranked = idx.overview()
            budget = min(budget_tokens * 4, self.max_chars)  # ~4 characters a token
            kept, cut = _bound(ranked, len(ranked), budget)
            return {"budget_tokens": budget_tokens, "files": kept, "total_files": len(ranked),
                    "truncated": cut}

        return self._call(run)

    def status(self) -> dict[str, Any]:
        def run(idx: Index) -> dict[str, Any]:
            repos = []
            for snap in idx.snapshots:
                row = idx.repo_status(snap, self.queue, scan_disk=self._live(snap.repo) is None)
                live = self._live(snap.repo)
                if live is not None:
                    row["watch"] = {"pending": len(live.get("pending") or []),
                                    "updating": bool(live.get("updating")), "problem": live.get("problem")}
                    row["updating"] = row["updating"] or bool(live.get("updating"))
                else:
                    self._disk[snap.id] = (time.monotonic(), row["disk"])
                repos.append(row)
            return {"repositories": repos}

        return self._call(run)


def _glob(pattern: str) -> Callable[[str], bool]:
    """A gitignore-style glob (`src/**/*.py`, `*.py`, `docs/`) matched against hit paths."""
    import pathspec

    if len(pattern) > 500:
        raise UserError("path_glob is longer than 500 characters")
    try:
        spec = pathspec.GitIgnoreSpec.from_lines([pattern])
    except Exception as exc:
        raise UserError(f"bad path_glob {pattern!r}: {exc}") from exc
    return spec.match_file


__all__ = ["DEFAULT_MAX_CHARS", "TOOL_DESCRIPTIONS", "LiveState", "Tools", "select_repos"]
